//! The deployment files, checked without a container engine (there is none
//! on CI machines): the compose file parses and validates under the Compose
//! specification (`compose_spec`) once `.env.sample` is interpolated, and
//! wires the stack as documented; the Dockerfile parses
//! (`dockerfile-parser`) and builds a small image run by an unprivileged
//! user; the Grafana dashboard asks only for metrics the node exports; the
//! validator client's start script lays out Phalanx's share keystores as
//! Lighthouse reads them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use dockerfile_parser::{Dockerfile, Instruction};
use serde_yaml::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every Rust file under a folder of the workspace, concatenated in path
/// order.
fn read_tree(path: &str) -> String {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo().join(path), &mut files);
    files.sort();
    assert!(!files.is_empty(), "{path} holds no Rust file");
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect()
}

/// `KEY=value` lines of an env file.
fn env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=value: {l}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Compose's `${NAME}` and `${NAME:-default}` interpolation; every name
/// must be set in `env` or carry a default, and the default must be the
/// value `.env.sample` documents.
fn interpolate(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closing brace") + start;
        let inner = &rest[start + 2..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        let value = env
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in .env.sample"));
        if let Some(default) = default {
            assert_eq!(
                default, value,
                "the compose default of {name} differs from .env.sample"
            );
        }
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"]
        .get(name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| {
            items
                .iter()
                .map(|v| v.as_str().expect("a string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_compose_file_is_valid_and_wires_one_operators_stack() {
    let env = env_file(&read(".env.sample"));
    let text = interpolate(&read("docker-compose.yml"), &env);
    let compose = compose_spec::Compose::options()
        .apply_merge(true)
        .from_yaml_str(&text)
        .unwrap_or_else(|e| panic!("docker-compose.yml against the Compose spec: {e}"));
    compose
        .validate_all()
        .expect("networks, volumes, configs, secrets");

    let mut yaml: Value = serde_yaml::from_str(&text).expect("YAML");
    yaml.apply_merge().expect("merge keys");
    let services: BTreeSet<&str> = yaml["services"]
        .as_mapping()
        .expect("services")
        .keys()
        .filter_map(Value::as_str)
        .collect();
    for expected in [
        "execution",
        "beacon",
        "phalanx",
        "validator",
        "prometheus",
        "grafana",
    ] {
        assert!(services.contains(expected), "no {expected} in {services:?}");
    }

    // Phalanx: built here, on the beacon node, its validator API and
    // metrics on the compose network only.
    let phalanx = service(&yaml, "phalanx");
    assert_eq!(phalanx["build"].as_str(), Some("."));
    let command = strings(&phalanx["command"]);
    assert_eq!(command.first().map(String::as_str), Some("run"));
    assert!(command.contains(&"--beacon-node-endpoints=http://beacon:5052".to_string()));
    let published: Vec<String> = strings(&phalanx["ports"]);
    assert_eq!(published.len(), 2, "{published:?}");
    for port in &published {
        assert!(
            port.ends_with(":3610/tcp") || port.ends_with(":3630/udp"),
            "only p2p is published: {port}"
        );
    }
    // Every flag it passes is one `phalanx run` takes.
    let help = Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args(["run", "--help"])
        .output()
        .expect("phalanx run --help");
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in command.iter().skip(1) {
        let name = flag.split('=').next().expect("a flag");
        assert!(help.contains(name), "phalanx run has no {name}");
    }

    // The validator client talks to its own Phalanx node, DV-aware.
    let validator = service(&yaml, "validator");
    assert_eq!(
        validator["environment"]["BEACON_NODES"].as_str(),
        Some("http://phalanx:3600")
    );
    assert!(read("deploy/lighthouse/run.sh").contains("--distributed"));
    // Grafana only on the host's loopback; nothing else but p2p published.
    let grafana_ports = strings(&service(&yaml, "grafana")["ports"]);
    assert!(grafana_ports.iter().all(|p| p.starts_with("127.0.0.1:")));
    for name in ["validator", "prometheus", "jwt"] {
        assert!(
            service(&yaml, name).get("ports").is_none(),
            "{name} publishes ports"
        );
    }

    // Every file the stack mounts from the repository exists.
    for name in &services {
        for volume in strings(&service(&yaml, name)["volumes"]) {
            let source = volume.split(':').next().expect("a source");
            if source.starts_with("./deploy/") {
                assert!(
                    repo().join(source).exists(),
                    "{name} mounts missing {source}"
                );
            }
        }
    }
    // Prometheus scrapes the node's monitoring address.
    let prometheus = read("deploy/prometheus/prometheus.yml");
    assert!(prometheus.contains("phalanx:3620"), "{prometheus}");
}

#[test]
fn the_dockerfile_builds_a_small_image_run_by_an_unprivileged_user() {
    let dockerfile = Dockerfile::parse(&read("Dockerfile")).expect("the Dockerfile parses");
    let stages: Vec<_> = dockerfile.iter_stages().collect();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let text = |i: &Instruction| {
        let span = i.span();
        dockerfile.content[span.start..span.end].to_string()
    };
    let build: Vec<String> = stages[0].instructions.iter().map(|i| text(i)).collect();
    assert!(
        build
            .iter()
            .any(|i| i.contains("cargo build --release --locked -p phalanx")),
        "{build:?}"
    );
    let runtime: Vec<String> = stages[1].instructions.iter().map(|i| text(i)).collect();
    assert!(
        runtime[0].contains("-slim"),
        "a slim runtime base: {runtime:?}"
    );
    assert!(
        runtime
            .iter()
            .any(|i| i.starts_with("COPY --from=builder") && i.contains("/usr/local/bin/phalanx")),
        "only the binary is carried over: {runtime:?}"
    );
    assert!(
        !runtime.iter().any(|i| i.contains("cargo")),
        "no toolchain in the runtime image"
    );
    let user = runtime
        .iter()
        .rev()
        .find(|i| i.starts_with("USER "))
        .expect("a USER instruction");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    assert!(
        runtime
            .iter()
            .any(|i| i.starts_with("ENTRYPOINT") && i.contains("\"phalanx\"")),
        "{runtime:?}"
    );
    let ignored = read(".dockerignore");
    assert!(ignored.lines().any(|l| l.trim() == "target/"), "{ignored}");
}

/// The metric names a PromQL expression uses.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("phalanx_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        names.insert(expr[start..end].to_string());
        i = end;
    }
    names
}

#[test]
fn the_dashboard_shows_only_metrics_the_node_exports() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/dashboards/phalanx.json")).expect("JSON");
    // The node registers its metrics in its runtime (a folder of modules),
    // p2p in its metrics module.
    let sources = [read_tree("node/src/runtime"), read("p2p/src/metrics.rs")].concat();
    let mut titles = Vec::new();
    let mut used = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        titles.push(panel["title"].as_str().unwrap_or_default().to_lowercase());
        for target in panel["targets"].as_array().into_iter().flatten() {
            used.extend(metric_names(target["expr"].as_str().expect("expr")));
        }
    }
    assert!(!used.is_empty());
    for name in &used {
        // Counters gain _total and histograms _bucket, _sum, _count.
        let base = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        let registered = sources.contains(&format!("\"{base}\""))
            || base
                .strip_prefix("phalanx_p2p_")
                .is_some_and(|short| sources.contains(&format!("\"{short}\"")));
        assert!(
            registered,
            "the dashboard asks for {name}, which no node registers"
        );
    }
    // What an operator watches: duties, latency, rounds, timeouts, peers,
    // partials per operator, the beacon node.
    for topic in [
        "duty success",
        "broadcast delay",
        "round",
        "timeouts",
        "round-trip",
        "partial signatures received per operator",
        "beacon-node latency",
        "beacon-node errors",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(topic)),
            "no panel about {topic}: {titles:?}"
        );
    }
    // Provisioned by the compose stack, from the folder it mounts.
    let provider = read("deploy/grafana/provisioning/dashboards/phalanx.yml");
    assert!(provider.contains("/etc/grafana/dashboards"), "{provider}");
    assert!(
        read("docker-compose.yml").contains("./deploy/grafana/dashboards:/etc/grafana/dashboards")
    );
}

#[test]
fn the_validator_client_script_lays_out_the_share_keystores_for_lighthouse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let data = dir.path().join("data");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&keys).expect("keys");
    std::fs::create_dir_all(&bin).expect("bin");
    let pubkeys = ["a1".repeat(48), "b2".repeat(48)];
    for (i, pubkey) in pubkeys.iter().enumerate() {
        std::fs::write(
            keys.join(format!("keystore-{i}.json")),
            format!("{{\n  \"crypto\": {{}},\n  \"pubkey\": \"{pubkey}\",\n  \"version\": 4\n}}\n"),
        )
        .expect("keystore");
        std::fs::write(
            keys.join(format!("keystore-{i}.txt")),
            format!("password {i}"),
        )
        .expect("password");
    }
    // A stand-in for the lighthouse binary that prints its arguments.
    let fake = bin.join("lighthouse");
    std::fs::write(&fake, "#!/bin/sh\necho lighthouse \"$@\"\n").expect("fake");
    Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .expect("chmod");
    let run = |keys: &Path| {
        Command::new("sh")
            .arg(repo().join("deploy/lighthouse/run.sh"))
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("KEYS_DIR", keys)
            .env("DATA_DIR", &data)
            .env("NETWORK", "hoodi")
            .env(
                "FEE_RECIPIENT",
                "0x000000000000000000000000000000000000dead",
            )
            .env("BEACON_NODES", "http://phalanx:3600")
            .output()
            .expect("runs")
    };
    let output = run(&keys);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("2 key share(s) ready"), "{stdout}");
    assert!(stdout.contains("validator_client"), "{stdout}");
    assert!(
        stdout.contains("--beacon-nodes http://phalanx:3600"),
        "{stdout}"
    );
    assert!(stdout.contains("--distributed"), "{stdout}");
    for (i, pubkey) in pubkeys.iter().enumerate() {
        let keystore = data.join(format!("validators/0x{pubkey}/voting-keystore.json"));
        assert!(std::fs::read_to_string(keystore)
            .expect("laid out")
            .contains(pubkey));
        let secret =
            std::fs::read_to_string(data.join(format!("secrets/0x{pubkey}"))).expect("secret");
        assert_eq!(secret, format!("password {i}"));
    }
    // A keystore without its password is refused, with the reason.
    std::fs::remove_file(keys.join("keystore-1.txt")).expect("remove");
    let output = run(&keys);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("keystore-1.txt is missing"));
    // No keystores at all: refused too.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("empty");
    let output = run(&empty);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no keystore-*.json"));
}
