//! `phalanx create enr` and `phalanx enr`, run as an operator would.

use std::process::Command;

fn phalanx() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_phalanx"));
    command.env_remove("PHALANX_DATA_DIR");
    command
}

#[test]
fn create_enr_writes_an_owner_only_key_and_enr_prints_the_same_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("node0");
    let created = phalanx()
        .args(["create", "enr", "--data-dir"])
        .arg(&data_dir)
        .output()
        .expect("runs");
    assert!(created.status.success(), "{created:?}");
    let record = String::from_utf8(created.stdout).expect("utf-8");
    let record = record.trim();
    assert!(record.starts_with("enr:"), "{record}");
    let enr: phalanx_p2p::Enr = record.parse().expect("a valid, signed ENR");
    assert_eq!(enr.tcp(), Some(3610));
    assert_eq!(enr.udp(), Some(3630));

    let key = data_dir.join("enr-private-key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The same key, read back through the environment variable.
    let printed = phalanx()
        .arg("enr")
        .env("PHALANX_DATA_DIR", &data_dir)
        .output()
        .expect("runs");
    assert!(printed.status.success(), "{printed:?}");
    assert_eq!(
        String::from_utf8(printed.stdout).expect("utf-8").trim(),
        record
    );

    // Never overwrite an operator's identity.
    let again = phalanx()
        .args(["create", "enr", "--data-dir"])
        .arg(&data_dir)
        .output()
        .expect("runs");
    assert!(!again.status.success());
    let stderr = String::from_utf8(again.stderr).expect("utf-8");
    assert!(stderr.contains("already exists"), "{stderr}");
}

#[test]
fn enr_explains_a_missing_or_exposed_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = phalanx()
        .args(["enr", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(!missing.status.success());
    let stderr = String::from_utf8(missing.stderr).expect("utf-8");
    assert!(stderr.contains("phalanx create enr"), "{stderr}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let created = phalanx()
            .args(["create", "enr", "--data-dir"])
            .arg(dir.path())
            .output()
            .expect("runs");
        assert!(created.status.success());
        let key = dir.path().join("enr-private-key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let exposed = phalanx()
            .args(["enr", "--data-dir"])
            .arg(dir.path())
            .output()
            .expect("runs");
        assert!(!exposed.status.success());
        let stderr = String::from_utf8(exposed.stderr).expect("utf-8");
        assert!(stderr.contains("chmod 600"), "{stderr}");
    }
}

#[test]
fn flags_and_environment_set_the_record_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = phalanx()
        .args(["create", "enr", "--p2p-tcp-port", "4000", "--data-dir"])
        .arg(dir.path())
        .env("PHALANX_P2P_EXTERNAL_IP", "203.0.113.9")
        .env("PHALANX_P2P_UDP_PORT", "4001")
        .output()
        .expect("runs");
    assert!(output.status.success(), "{output:?}");
    let enr: phalanx_p2p::Enr = String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .parse()
        .expect("ENR");
    assert_eq!(enr.ip(), Some("203.0.113.9".parse().expect("ip")));
    assert_eq!(enr.tcp(), Some(4000));
    assert_eq!(enr.udp(), Some(4001));
    let bad = phalanx()
        .args(["enr", "--p2p-tcp-port", "70000"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
}
