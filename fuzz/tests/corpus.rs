//! Replays every committed corpus input through its target: no input may
//! panic, and none may make an allocation beyond the target's limit.
//! The coverage-guided runs that grow the corpus are a bench (`fuzz/afl`).

use std::path::PathBuf;

#[global_allocator]
static GUARD: phalanx_fuzz::Guard = phalanx_fuzz::Guard;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_input_is_decoded_within_its_limits() {
    let mut replayed = 0;
    for target in phalanx_fuzz::TARGETS {
        let files = corpus(target.name);
        assert!(!files.is_empty(), "{}: no corpus", target.name);
        for path in files {
            let data = std::fs::read(&path).expect("readable");
            let outcome = std::panic::catch_unwind(|| phalanx_fuzz::check(target, &data));
            match outcome {
                Ok(Ok(())) => replayed += 1,
                Ok(Err(over)) => panic!("{}: {over}", path.display()),
                Err(_) => panic!("{}: the decoder panicked", path.display()),
            }
        }
    }
    assert!(replayed >= phalanx_fuzz::TARGETS.len(), "{replayed} inputs");
}

#[test]
fn the_guard_sees_an_allocation_beyond_a_limit() {
    // The replay above is only as good as the guard: an allocation beyond a
    // target's limit must be reported.
    let target = phalanx_fuzz::Target {
        name: "over",
        run: |data| {
            let v: Vec<u8> = Vec::with_capacity(data.len() * 1000);
            std::hint::black_box(v);
        },
        limit: |len| len * 10,
    };
    let error = phalanx_fuzz::check(&target, &[0; 100]).expect_err("over the limit");
    assert!(error.contains("100000 bytes"), "{error}");
}
