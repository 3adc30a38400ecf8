//! The slashing-protection database: the consensus rules, persistence
//! across restarts (including a torn last write), refusal of damaged or
//! foreign files, EIP-3076 import with watermarks and export, and a
//! property test against a brute-force slashability check.

use phalanx_eth::interchange::Interchange;
use phalanx_eth::{Epoch, PublicKeyBytes, Root, Slot};
use phalanx_node::slashing::{MemoryDisk, NotSafe, Safety, SlashingDb, SlashingDbError};
use proptest::prelude::*;

fn key(byte: u8) -> PublicKeyBytes {
    PublicKeyBytes::repeat_byte(byte)
}

fn root(byte: u8) -> Root {
    Root::repeat_byte(byte)
}

const NETWORK: Root = Root::ZERO;

fn not_safe(result: Result<Safety, SlashingDbError>) -> NotSafe {
    match result {
        Err(SlashingDbError::NotSafe(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn blocks_and_attestations_follow_the_rules_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("slashing.jsonl");
    {
        let mut db = SlashingDb::open(&path, NETWORK).expect("opens");
        assert_eq!(
            db.check_and_insert_block(key(1), Slot(10), root(1))
                .expect("safe"),
            Safety::Safe
        );
        assert_eq!(
            db.check_and_insert_block(key(1), Slot(10), root(1))
                .expect("same"),
            Safety::SameData
        );
        assert_eq!(
            not_safe(db.check_and_insert_block(key(1), Slot(10), root(2))),
            NotSafe::DoubleProposal(10)
        );
        // Another validator is independent.
        assert_eq!(
            db.check_and_insert_block(key(2), Slot(10), root(2))
                .expect("safe"),
            Safety::Safe
        );

        db.check_and_insert_attestation(key(1), Epoch(2), Epoch(3), root(3))
            .expect("safe");
        assert_eq!(
            not_safe(db.check_and_insert_attestation(key(1), Epoch(2), Epoch(3), root(4))),
            NotSafe::DoubleVote(3)
        );
        assert!(matches!(
            not_safe(db.check_and_insert_attestation(key(1), Epoch(1), Epoch(4), root(5))),
            NotSafe::Surrounds { .. }
        ));
        db.check_and_insert_attestation(key(1), Epoch(1), Epoch(10), root(6))
            .expect_err("surrounds (2,3)");
        db.check_and_insert_attestation(key(1), Epoch(5), Epoch(8), root(7))
            .expect("safe");
        assert!(matches!(
            not_safe(db.check_and_insert_attestation(key(1), Epoch(6), Epoch(7), root(8))),
            NotSafe::Surrounded { .. }
        ));
        assert_eq!(
            not_safe(db.check_and_insert_attestation(key(1), Epoch(9), Epoch(8), root(9))),
            NotSafe::SourceAfterTarget(9, 8)
        );
    }
    // After a restart the history is still there.
    let mut db = SlashingDb::open(&path, NETWORK).expect("reopens");
    assert_eq!(
        not_safe(db.check_and_insert_block(key(1), Slot(10), root(9))),
        NotSafe::DoubleProposal(10)
    );
    assert_eq!(
        not_safe(db.check_and_insert_attestation(key(1), Epoch(5), Epoch(8), root(1))),
        NotSafe::DoubleVote(8)
    );
    assert_eq!(
        db.check_and_insert_attestation(key(1), Epoch(5), Epoch(8), root(7))
            .expect("same data"),
        Safety::SameData
    );
}

#[test]
fn a_simulated_disk_keeps_the_history_only_for_whoever_reopens_it() {
    let disk = MemoryDisk::new();
    {
        let mut db = SlashingDb::open_in_memory(&disk, NETWORK).expect("opens");
        db.check_and_insert_attestation(key(1), Epoch(2), Epoch(3), root(3))
            .expect("safe");
        db.check_and_insert_block(key(1), Slot(9), root(1))
            .expect("safe");
    }
    // Restarted with its disk: the history is there.
    let mut db = SlashingDb::open_in_memory(&disk, NETWORK).expect("reopens");
    assert_eq!(
        not_safe(db.check_and_insert_attestation(key(1), Epoch(2), Epoch(3), root(4))),
        NotSafe::DoubleVote(3)
    );
    assert_eq!(
        not_safe(db.check_and_insert_block(key(1), Slot(9), root(2))),
        NotSafe::DoubleProposal(9)
    );
    // Another network's disk is refused, as a file would be.
    assert!(matches!(
        SlashingDb::open_in_memory(&disk, root(9)),
        Err(SlashingDbError::Corrupt { .. })
    ));
    // Restarted without it: a new disk knows nothing.
    let mut fresh = SlashingDb::open_in_memory(&MemoryDisk::new(), NETWORK).expect("opens");
    fresh
        .check_and_insert_attestation(key(1), Epoch(2), Epoch(3), root(4))
        .expect("nothing recorded");
}

#[test]
fn a_torn_last_write_is_dropped_and_damage_elsewhere_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("slashing.jsonl");
    {
        let mut db = SlashingDb::open(&path, NETWORK).expect("opens");
        db.check_and_insert_block(key(1), Slot(1), root(1))
            .expect("safe");
        db.check_and_insert_block(key(1), Slot(2), root(2))
            .expect("safe");
    }
    let good = std::fs::read_to_string(&path).expect("read");
    // A crash in the middle of writing a third record.
    std::fs::write(&path, format!("{good}{{\"kind\":\"block\",\"pub")).expect("write");
    {
        let mut db = SlashingDb::open(&path, NETWORK).expect("a torn tail is dropped");
        assert_eq!(
            not_safe(db.check_and_insert_block(key(1), Slot(2), root(9))),
            NotSafe::DoubleProposal(2)
        );
        db.check_and_insert_block(key(1), Slot(3), root(3))
            .expect("appends on a fresh line");
    }
    SlashingDb::open(&path, NETWORK).expect("still readable");

    // Damage in the middle is refused, with the line.
    let lines: Vec<String> = std::fs::read_to_string(&path)
        .expect("read")
        .lines()
        .map(String::from)
        .collect();
    let mut damaged = lines.clone();
    damaged[1] = "{\"kind\":\"block\",".into();
    std::fs::write(&path, damaged.join("\n") + "\n").expect("write");
    let error = SlashingDb::open(&path, NETWORK).err().expect("refused");
    assert!(error.to_string().contains("line 2"), "{error}");

    // Another network's database is refused.
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let error = SlashingDb::open(&path, root(0xaa)).err().expect("refused");
    assert!(
        error.to_string().contains("genesis validators root"),
        "{error}"
    );
}

#[test]
fn an_interchange_import_sets_watermarks_and_exports_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut db = SlashingDb::open(&dir.path().join("db"), NETWORK).expect("opens");
    let text = format!(
        r#"{{"metadata": {{"interchange_format_version": "5", "genesis_validators_root": "{NETWORK}"}},
          "data": [{{"pubkey": "{}",
            "signed_blocks": [{{"slot": "100"}}, {{"slot": "90", "signing_root": "{}"}}],
            "signed_attestations": [{{"source_epoch": "10", "target_epoch": "12"}}]}}]}}"#,
        key(7),
        root(1)
    );
    let interchange = Interchange::from_json(&text).expect("parses");
    db.import(&interchange).expect("imports");
    assert!(matches!(
        not_safe(db.check_and_insert_block(key(7), Slot(99), root(2))),
        NotSafe::BelowWatermark(_)
    ));
    assert_eq!(
        not_safe(db.check_and_insert_block(key(7), Slot(100), root(2))),
        NotSafe::DoubleProposal(100)
    );
    db.check_and_insert_block(key(7), Slot(101), root(2))
        .expect("above the watermark");
    assert!(matches!(
        not_safe(db.check_and_insert_attestation(key(7), Epoch(11), Epoch(12), root(3))),
        NotSafe::DoubleVote(12)
    ));
    assert!(matches!(
        not_safe(db.check_and_insert_attestation(key(7), Epoch(9), Epoch(13), root(3))),
        NotSafe::BelowWatermark(_)
    ));
    db.check_and_insert_attestation(key(7), Epoch(12), Epoch(13), root(3))
        .expect("safe");

    let exported = db.export();
    let history = &exported.data[0];
    assert_eq!(history.signed_blocks.len(), 3);
    assert_eq!(history.signed_attestations.len(), 2);
    // Importing its own export into a fresh database protects the same way.
    let mut fresh = SlashingDb::open(&dir.path().join("fresh"), NETWORK).expect("opens");
    fresh.import(&exported).expect("imports");
    assert!(fresh
        .check_and_insert_block(key(7), Slot(101), root(9))
        .is_err());
    // The database reopens with the network it records, for an export.
    drop(db);
    let reopened = SlashingDb::open_existing(&dir.path().join("db")).expect("reopens");
    assert_eq!(reopened.export(), exported);
    std::fs::write(dir.path().join("blank"), "").expect("write");
    assert!(SlashingDb::open_existing(&dir.path().join("blank")).is_err());
    // Another network's file is refused.
    let mut foreign = exported.clone();
    foreign.metadata.genesis_validators_root = root(5);
    assert!(matches!(
        fresh.import(&foreign),
        Err(SlashingDbError::Interchange(_))
    ));
}

fn slashable(a: (u64, u64, u8), b: (u64, u64, u8)) -> bool {
    let double = a.1 == b.1 && (a.0, a.2) != (b.0, b.2);
    let surround = (a.0 < b.0 && b.1 < a.1) || (b.0 < a.0 && a.1 < b.1);
    double || surround
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever the order of requests, the accepted attestations never
    /// contain a slashable pair, and a request is refused only when it
    /// would make one with an accepted attestation.
    #[test]
    fn accepted_attestations_are_never_slashable(
        requests in proptest::collection::vec((0u64..12, 0u64..12, 0u8..3), 1..40)
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = SlashingDb::open(&dir.path().join("db"), NETWORK).expect("opens");
        let mut accepted: Vec<(u64, u64, u8)> = Vec::new();
        for (source, target, data) in requests {
            let result = db.check_and_insert_attestation(key(1), Epoch(source), Epoch(target), root(data));
            let conflicts = source > target
                || accepted.iter().any(|&prior| slashable(prior, (source, target, data)));
            match result {
                Ok(Safety::Safe) => {
                    prop_assert!(!conflicts, "accepted a slashable ({source},{target})");
                    accepted.push((source, target, data));
                }
                Ok(Safety::SameData) => prop_assert!(accepted.contains(&(source, target, data))),
                Err(_) => prop_assert!(conflicts, "refused a safe ({source},{target})"),
            }
        }
    }
}
