//! Test helpers shared by the crates: finding the public test vectors.
//!
//! The vectors live in `../shared/vectors` beside the workspace, or under
//! `$PHALANX_SHARED/vectors`. Absent, the vector tests say so and pass over
//! them, except under CI (`CI=true`), where an absent folder is a failure.

use std::path::PathBuf;

/// The vectors folder, or `None` (after saying so) when it is absent outside CI.
#[allow(
    clippy::print_stderr,
    reason = "telling the tester that vectors were skipped is the point"
)]
pub fn vectors_dir(sub: &str) -> Option<PathBuf> {
    let shared = match std::env::var_os("PHALANX_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let dir = shared.join("vectors").join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !in_ci,
        "test vectors are absent at {} and CI=true: put the shared folder beside the clone or set PHALANX_SHARED",
        dir.display()
    );
    eprintln!(
        "test vectors absent at {}: skipping them (set PHALANX_SHARED to run them)",
        dir.display()
    );
    None
}

/// Every `*.json` file in `dir`, sorted, as (file name, parsed JSON).
pub fn json_cases(dir: &std::path::Path) -> Vec<(String, serde_json::Value)> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    entries.sort();
    entries
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (name, value)
        })
        .collect()
}

/// Decodes `0x`-prefixed hex from a JSON string.
pub fn hex_bytes(value: &serde_json::Value) -> Vec<u8> {
    let text = value.as_str().expect("hex string");
    hex::decode(text.trim_start_matches("0x")).expect("valid hex in a vector")
}
