//! Writes the seed inputs of every fuzz target into `fuzz/corpus/<target>/`:
//! valid encodings made with the project's own encoders, and the hostile
//! shapes every decoder must refuse cheaply (lengths that announce more
//! than the input holds). Run once; the coverage-guided runs grow the
//! corpus from there.
//!
//! `cargo run -p phalanx-fuzz --bin fuzz-seeds -- fuzz/corpus`

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use phalanx_consensus::{
    Kind, Message, MessageSignature, OperatorIndex, Prepared, PreparedCertificate,
    ProposalJustification, Round, SignedMessage, ValueHash, Wire,
};
use phalanx_crypto::keystore::{KdfSetting, Keystore};
use phalanx_crypto::SecretKey;
use phalanx_dkg::definition::{BuilderSpec, NetworkSpec, ValidatorSpec};
use phalanx_dkg::ClusterDefinition;
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::{ExecutionAddress, Slot};
use phalanx_node::duty::{Duty, DutyType};
use phalanx_node::parsigex::{PartialBatch, PartialMessage};
use phalanx_node::value::{encode_entries, DutyValue};
use phalanx_p2p::{NodeKey, PeerInfo};
use rand::SeedableRng;

fn main() -> Result<(), String> {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("fuzz/corpus"));
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(19);
    let bincode = |value: &dyn erased::Encode| value.encode();

    // p2p frames: a whole one, an empty one, one announcing 4 GiB.
    let mut frame = 5u32.to_be_bytes().to_vec();
    frame.extend_from_slice(b"hello");
    write(&root, "p2p_frame", "whole", &frame)?;
    write(&root, "p2p_frame", "empty", &0u32.to_be_bytes())?;
    write(
        &root,
        "p2p_frame",
        "announces_4_gib",
        &[0xff, 0xff, 0xff, 0xff, 1],
    )?;

    // QBFT: each wire kind.
    let duty = Duty::new(Slot(12), DutyType::Attester);
    let signed = |round: u64, sender: u32, kind: Kind| SignedMessage {
        message: Message {
            instance: duty,
            round: Round(round),
            sender: OperatorIndex(sender),
            kind,
        },
        signature: MessageSignature(vec![0x5a; 65]),
    };
    let value = encode_entries(&[(0, vec![1; 40]), (3, vec![2; 8])]);
    let hash = ValueHash([7; 32]);
    let prepares: Vec<_> = (0..3).map(|s| signed(1, s, Kind::Prepare(hash))).collect();
    let wires: Vec<(&str, Wire<Duty, DutyValue>)> = vec![
        (
            "proposal",
            Wire::Proposal {
                proposal: signed(1, 0, Kind::Proposal(hash)),
                value: value.clone(),
                justification: ProposalJustification::default(),
            },
        ),
        (
            "proposal_round_2",
            Wire::Proposal {
                proposal: signed(2, 1, Kind::Proposal(hash)),
                value: value.clone(),
                justification: ProposalJustification {
                    round_changes: (0..3)
                        .map(|s| {
                            signed(
                                2,
                                s,
                                Kind::RoundChange(Some(Prepared {
                                    round: Round(1),
                                    value: hash,
                                })),
                            )
                        })
                        .collect(),
                    prepares: prepares.clone(),
                },
            },
        ),
        ("prepare", Wire::Prepare(signed(1, 2, Kind::Prepare(hash)))),
        ("commit", Wire::Commit(signed(1, 3, Kind::Commit(hash)))),
        (
            "round_change",
            Wire::RoundChange {
                round_change: signed(
                    2,
                    0,
                    Kind::RoundChange(Some(Prepared {
                        round: Round(1),
                        value: hash,
                    })),
                ),
                prepared: Some(PreparedCertificate {
                    value: value.clone(),
                    prepares,
                }),
            },
        ),
        (
            "decided",
            Wire::Decided {
                value,
                commits: (0..3).map(|s| signed(1, s, Kind::Commit(hash))).collect(),
            },
        ),
    ];
    for (name, wire) in &wires {
        write(&root, "qbft_message", name, &bincode(wire))?;
    }
    // A vector announcing u64::MAX entries.
    let mut huge = bincode(&wires[2].1);
    huge.truncate(8);
    huge.extend_from_slice(&[0xff; 8]);
    write(&root, "qbft_message", "announces_u64_max", &huge)?;

    // Partial signatures.
    let partial = |kind: DutyType| PartialMessage {
        duty: Duty::new(Slot(40), kind),
        validator: vec![0xa1; 48],
        signing_root: [3; 32],
        signature: vec![0xb2; 96],
        block_root: (kind == DutyType::SyncMessage).then_some([4; 32]),
        registration: (kind == DutyType::BuilderRegistration).then(|| vec![5; 84]),
    };
    let batch = PartialBatch(
        [
            DutyType::Attester,
            DutyType::SyncMessage,
            DutyType::BuilderRegistration,
        ]
        .into_iter()
        .map(partial)
        .collect(),
    );
    write(&root, "partial_batch", "three_kinds", &bincode(&batch))?;
    write(
        &root,
        "partial_batch",
        "announces_u64_max",
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0],
    )?;

    // peerinfo.
    let info = PeerInfo {
        version: "phalanx/0.1.0".into(),
        lock_hash: [9; 32],
        unix_millis: 1_765_000_000_000,
    };
    write(&root, "peerinfo", "ours", &bincode(&info))?;

    // Key generation: an echo and complaints.
    let envelopes = [
        (
            "echo",
            phalanx_dkg::ceremony::Envelope {
                sender: 1,
                body: phalanx_dkg::ceremony::Body::Echo {
                    deals: vec![[6; 32]; 4],
                },
                signature: vec![7; 65],
            },
        ),
        (
            "complaints",
            phalanx_dkg::ceremony::Envelope {
                sender: 2,
                body: phalanx_dkg::ceremony::Body::Complaints {
                    complaints: Vec::new(),
                },
                signature: vec![8; 65],
            },
        ),
    ];
    for (name, envelope) in &envelopes {
        write(&root, "dkg_envelope", name, &bincode(envelope))?;
    }

    // A cluster definition of 4 operators and its ENRs.
    let keys: Vec<NodeKey> = (0..4).map(|_| NodeKey::generate()).collect();
    let enrs: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            k.enr(
                1,
                Some(Ipv4Addr::LOCALHOST),
                Some(3610 + i as u16),
                Some(3630 + i as u16),
            )
        })
        .collect();
    let network = NetworkConfig::built_in("hoodi").map_err(|e| e.to_string())?;
    let definition = ClusterDefinition::new(
        "fuzz seed",
        NetworkSpec::of(&network),
        3,
        &enrs,
        vec![ValidatorSpec::standard(
            ExecutionAddress::repeat_byte(0x11),
            ExecutionAddress::repeat_byte(0x22),
        )],
        BuilderSpec {
            gas_limit: 36_000_000,
            timestamp: 1_700_000_000,
        },
        "2026-12-07T00:00:00Z",
    );
    let json = serde_json::to_vec_pretty(&definition).map_err(|e| e.to_string())?;
    write(&root, "cluster_definition", "four_operators", &json)?;
    let dealt =
        phalanx_dkg::dealer::deal(&definition, keys, None, &mut rng).map_err(|e| e.to_string())?;
    let json = serde_json::to_vec_pretty(&dealt.lock).map_err(|e| e.to_string())?;
    write(&root, "cluster_lock", "four_operators", &json)?;
    write(&root, "enr", "operator", enrs[0].to_string().as_bytes())?;

    // A keystore (cheap parameters: the target parses, never decrypts).
    let secret = SecretKey::random(&mut rng);
    for (name, setting) in [
        ("scrypt", KdfSetting::InsecureLowCost),
        ("pbkdf2", KdfSetting::StandardPbkdf2),
    ] {
        let keystore = Keystore::encrypt(&secret, "password", "", setting, &mut rng)
            .map_err(|e| e.to_string())?;
        write(&root, "keystore", name, keystore.to_json().as_bytes())?;
    }

    // Validator API bodies: route byte, mode byte (bit 0 SSZ, fork above), body.
    let api = |route: u8, mode: u8, body: &str| {
        let mut input = vec![route, mode];
        input.extend_from_slice(body.as_bytes());
        input
    };
    let data = r#"{"slot":"1","index":"0","beacon_block_root":"0x0000000000000000000000000000000000000000000000000000000000000000","source":{"epoch":"0","root":"0x0000000000000000000000000000000000000000000000000000000000000000"},"target":{"epoch":"0","root":"0x0000000000000000000000000000000000000000000000000000000000000000"}}"#;
    let signature = format!("0x{}", "c0".to_string() + &"00".repeat(95));
    let single = format!(
        r#"[{{"committee_index":"0","attester_index":"1","data":{data},"signature":"{signature}"}}]"#
    );
    write(
        &root,
        "validator_api",
        "single_attestations",
        &api(0, 10, &single),
    )?;
    let base =
        format!(r#"[{{"aggregation_bits":"0x03","data":{data},"signature":"{signature}"}}]"#);
    write(&root, "validator_api", "attestations", &api(1, 4, &base))?;
    let exit =
        format!(r#"{{"message":{{"epoch":"1","validator_index":"2"}},"signature":"{signature}"}}"#);
    write(&root, "validator_api", "exit", &api(5, 10, &exit))?;
    let preparation =
        r#"[{"validator_index":"1","fee_recipient":"0x1111111111111111111111111111111111111111"}]"#;
    write(
        &root,
        "validator_api",
        "preparations",
        &api(10, 10, preparation),
    )?;
    write(
        &root,
        "validator_api",
        "selections",
        &api(
            8,
            10,
            &format!(r#"[{{"validator_index":"1","slot":"2","selection_proof":"{signature}"}}]"#),
        ),
    )?;
    write(&root, "validator_api", "ssz_list_empty", &[4, 11])?;
    write(
        &root,
        "validator_api",
        "ssz_block_short",
        &[11, 11, 4, 0, 0, 0, 0xff],
    )?;
    Ok(())
}

fn write(root: &Path, target: &str, name: &str, bytes: &[u8]) -> Result<(), String> {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("seed-{name}"));
    std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Encoding any message the way the p2p layer does.
mod erased {
    pub(crate) trait Encode {
        fn encode(&self) -> Vec<u8>;
    }

    impl<T: serde::Serialize> Encode for T {
        fn encode(&self) -> Vec<u8> {
            phalanx_p2p::encode(self, usize::MAX >> 1).unwrap_or_default()
        }
    }
}
