//! Four node cores wired in memory: duties resolve, consensus decides one
//! attestation per slot, each operator's validator client signs with its
//! share, partials are exchanged and combined, and what reaches the beacon
//! node verifies under the group key. Faulty partials are dropped and
//! named; a core with one silent peer still completes every duty. The
//! wiring, the simulated beacon node and validator clients are in
//! `pipeline/harness`.

mod harness;

use std::collections::VecDeque;

use phalanx_crypto::Signature;
use phalanx_eth::attestation::{
    AggregateAndProof, AttestationData, BeaconCommitteeSelection, SyncCommitteeSelection,
};
use phalanx_eth::signing::roots;
use phalanx_eth::{
    CommitteeIndex, Epoch, ForkName, PublicKeyBytes, Root, SignatureBytes, Slot, ValidatorIndex,
};
use phalanx_node::core::{
    Action, AggregateSubmission, Attester, Event, Submission, VcAttestation, VcRequest, VcResponse,
    VcSigned, HOUSEKEEPING_MS,
};
use phalanx_node::duty::DutyType;
use phalanx_node::tracker::Outcome;

use harness::{cluster, data_for, verify_submissions, Cluster, Verified, GENESIS_MS, SLOT_MS};

#[test]
fn four_nodes_attest_and_sign_sync_messages_on_electra() {
    let mut cluster = cluster(ForkName::Electra, 8);
    // Two epochs of eight slots.
    cluster.run(GENESIS_MS, GENESIS_MS + 16 * SLOT_MS, &[]);
    let Verified {
        attestations,
        sync_messages: sync,
        ..
    } = verify_submissions(&cluster);
    // Every node submits every validator's attestation once per epoch.
    assert_eq!(attestations, 4 * 8 * 2);
    // Two sync-committee members in each of the 16 slots.
    assert_eq!(sync, 4 * 2 * 16);
    assert!(cluster.dropped.is_empty(), "{:?}", cluster.dropped);
    let failed: Vec<_> = cluster
        .outcomes
        .iter()
        .filter(|(_, _, o)| *o != Outcome::Success)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(cluster.outcomes.len() >= 4 * 16 * 2 - 8);
    // A reorganisation makes the node resolve the epoch's duties again,
    // and the next epoch's.
    let now = GENESIS_MS + 16 * SLOT_MS + 100;
    let core = &mut cluster.cores[0];
    // The epoch's first tick asks for the next epoch's duties; then nothing.
    core.handle(now, Event::Tick);
    assert!(!core
        .handle(now, Event::Tick)
        .iter()
        .any(|a| matches!(a, Action::ResolveDuties { .. })));
    core.handle(now, Event::Reorg { epoch: Epoch(2) });
    let epochs: Vec<Epoch> = core
        .handle(now, Event::Tick)
        .into_iter()
        .filter_map(|a| match a {
            Action::ResolveDuties { epoch, .. } => Some(epoch),
            _ => None,
        })
        .collect();
    assert_eq!(epochs, vec![Epoch(2), Epoch(3)]);
}

#[test]
fn the_core_asks_for_a_tick_at_every_duty_start() {
    let cluster = cluster(ForkName::Electra, 4);
    let core = &cluster.cores[0];
    let start = core.slot_start_ms(Slot(2));
    let (third, two_thirds) = (SLOT_MS / 3, 2 * SLOT_MS / 3);
    assert!(HOUSEKEEPING_MS < third, "the cases below assume it");
    // Just before a start, the tick falls on it, to the millisecond.
    assert_eq!(core.next_tick_ms(start + third - 10), start + third);
    assert_eq!(
        core.next_tick_ms(start + two_thirds - 1),
        start + two_thirds
    );
    assert_eq!(core.next_tick_ms(start + SLOT_MS - 5), start + SLOT_MS);
    // At a start the next one is further away than housekeeping allows.
    assert_eq!(
        core.next_tick_ms(start + third),
        start + third + HOUSEKEEPING_MS
    );
}

#[test]
fn aggregates_and_contributions_combine_on_deneb_and_electra() {
    for fork in [ForkName::Deneb, ForkName::Electra] {
        let mut cluster = cluster(fork, 8);
        cluster.aggregation = true;
        cluster.run(GENESIS_MS, GENESIS_MS + 8 * SLOT_MS, &[]);
        let Verified {
            attestations,
            sync_messages: sync,
            aggregates,
            contributions,
            ..
        } = verify_submissions(&cluster);
        assert_eq!((attestations, sync), (4 * 8, 4 * 2 * 8), "{fork}");
        // Committees of 16 make every attester an aggregator (modulo 1),
        // and the minimal preset's subcommittees of 8 every sync member:
        // one aggregate per validator, two contributions per slot, from
        // each of the four nodes.
        assert_eq!(aggregates, 4 * 8, "{fork}");
        assert_eq!(contributions, 4 * 2 * 8, "{fork}");
        let failed: Vec<_> = cluster
            .outcomes
            .iter()
            .filter(|(_, _, o)| *o != Outcome::Success)
            .collect();
        assert!(failed.is_empty(), "{fork}: {failed:?}");
        assert!(cluster.dropped.is_empty(), "{:?}", cluster.dropped);
        // An aggregate whose selection proof is not the cluster's combined
        // one (here: the share's own) is refused, not forwarded.
        let last = cluster
            .submissions
            .iter()
            .rev()
            .find_map(|(node, s)| match s {
                Submission::Aggregate(_, signed) if *node == 0 => Some(signed.clone()),
                _ => None,
            })
            .expect("an aggregate of node 0");
        let mut message = match last {
            AggregateSubmission::Base(s) => AggregateAndProof::Base(s.message),
            AggregateSubmission::Electra(s) => AggregateAndProof::Electra(s.message),
        };
        let (slot, validator) = match &mut message {
            AggregateAndProof::Base(m) => {
                let slot = m.aggregate.data.slot;
                m.selection_proof = own_selection_proof(&cluster, slot, m.aggregator_index);
                (slot, m.aggregator_index)
            }
            AggregateAndProof::Electra(m) => {
                let slot = m.aggregate.data.slot;
                m.selection_proof = own_selection_proof(&cluster, slot, m.aggregator_index);
                (slot, m.aggregator_index)
            }
        };
        let root = roots::aggregate_and_proof(&cluster.network, cluster.gvr, &message, slot);
        let signature = cluster.partial(0, (validator.0 - 100) as usize, root);
        let now = cluster.cores[0].slot_start_ms(slot) + SLOT_MS - 100;
        let actions = cluster.cores[0].handle(
            now,
            Event::Vc {
                id: 1,
                request: VcRequest::AggregateAndProofs(vec![VcSigned { message, signature }]),
            },
        );
        assert!(
            actions.iter().any(|a| matches!(
                a,
                Action::Reply { result: Err(f), .. }
                    if f.status == 400 && f.failures[0].1.contains("combined")
            )),
            "{fork}: {actions:?}"
        );
        assert!(!actions.iter().any(|a| matches!(a, Action::SendPartials(_))));
    }
}

/// Operator 0's own (uncombined) selection proof of a validator.
fn own_selection_proof(cluster: &Cluster, slot: Slot, validator: ValidatorIndex) -> SignatureBytes {
    cluster.partial(
        0,
        (validator.0 - 100) as usize,
        roots::selection_proof(&cluster.network, cluster.gvr, slot),
    )
}

#[test]
fn blocks_with_blobs_are_proposed_on_deneb_with_one_node_silent() {
    let mut cluster = cluster(ForkName::Deneb, 8);
    cluster.proposals = true;
    cluster.run(GENESIS_MS, GENESIS_MS + 8 * SLOT_MS, &[3]);
    let verified = verify_submissions(&cluster);
    // Every slot's block is published by each of the three running nodes.
    assert_eq!(verified.blocks, 3 * 8);
    let failed: Vec<_> = cluster
        .outcomes
        .iter()
        .filter(|(_, kind, o)| *kind == DutyType::Proposer && *o != Outcome::Success)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    // The same with a builder's blinded blocks: the VC signs the blinded
    // block, the node publishes it blinded.
    let mut builder = self::cluster(ForkName::Deneb, 8);
    builder.proposals = true;
    builder.blinded = true;
    builder.run(GENESIS_MS, GENESIS_MS + 3 * SLOT_MS, &[]);
    assert_eq!(verify_submissions(&builder).blocks, 4 * 3);
    // A signature of any block but the decided one is refused.
    let slot = Slot(5);
    let at = cluster.cores[0].slot_start_ms(slot) + 500;
    let actions = cluster.cores[0].handle(
        at,
        Event::Vc {
            id: 1,
            request: VcRequest::PublishBlock {
                slot,
                block_root: Root::repeat_byte(9),
                signature: SignatureBytes::from([0xc0; 96]),
            },
        },
    );
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Reply { result: Err(f), .. } if f.status == 400 && f.message.contains("differs")
    )));
}

#[test]
fn three_of_four_complete_every_duty_on_capella() {
    let mut cluster = cluster(ForkName::Capella, 8);
    cluster.run(GENESIS_MS, GENESIS_MS + 8 * SLOT_MS, &[3]);
    let Verified {
        attestations,
        sync_messages: sync,
        ..
    } = verify_submissions(&cluster);
    assert_eq!(attestations, 3 * 8);
    assert_eq!(sync, 3 * 2 * 8);
    assert!(cluster
        .outcomes
        .iter()
        .all(|(_, _, o)| *o == Outcome::Success));
}

#[test]
fn bad_partials_are_refused_or_dropped_and_named() {
    let mut cluster = cluster(ForkName::Electra, 8);
    // Slot 1's attestation is decided by two thirds into the slot.
    let now = GENESIS_MS + SLOT_MS + 2 * SLOT_MS / 3 - 50;
    cluster.run(GENESIS_MS, now, &[]);
    let data = data_for(Slot(1), CommitteeIndex(1), true);
    let attest = |signature: SignatureBytes, data: AttestationData| VcAttestation {
        data,
        attester: Attester::Index(ValidatorIndex(101)),
        committee_index: CommitteeIndex(1),
        signature,
    };
    let root = roots::attestation(&cluster.network, cluster.gvr, &data);
    let other_share = cluster.shares[1][1]
        .sign(root.as_slice())
        .signature
        .to_bytes();
    let mut other_data = data;
    other_data.beacon_block_root = Root::repeat_byte(0xee);
    let own = cluster.shares[0][1]
        .sign(root.as_slice())
        .signature
        .to_bytes();
    let cases = [
        (
            attest(SignatureBytes::repeat_byte(0x11), data),
            "not a valid BLS signature",
        ),
        (
            attest(SignatureBytes::from(other_share), data),
            "does not verify under this operator's share",
        ),
        (
            attest(SignatureBytes::from(own), other_data),
            "differs from the data the cluster decided",
        ),
    ];
    for (attestation, expected) in cases {
        let actions = cluster.cores[0].handle(
            now,
            Event::Vc {
                id: 1,
                request: VcRequest::Attestations(vec![attestation]),
            },
        );
        let reply = actions
            .iter()
            .find_map(|a| match a {
                Action::Reply { result, .. } => Some(result.clone()),
                _ => None,
            })
            .expect("a reply");
        let failure = reply.expect_err("refused");
        assert_eq!(failure.status, 400);
        assert!(failure.failures[0].1.contains(expected), "{failure:?}");
        assert!(!actions.iter().any(|a| matches!(a, Action::SendPartials(_))));
    }
    // A peer's partial signed with another operator's share is dropped and
    // its sender named.
    let forged = phalanx_node::parsigex::PartialMessage {
        duty: phalanx_node::duty::Duty::new(Slot(1), DutyType::Attester),
        validator: cluster.groups[1].to_bytes().to_vec(),
        signing_root: root.0,
        signature: cluster.shares[2][1]
            .sign(root.as_slice())
            .signature
            .to_bytes()
            .to_vec(),
        block_root: None,
        registration: None,
    };
    let actions = cluster.cores[0].handle(
        now,
        Event::Partials {
            from: phalanx_consensus::OperatorIndex(1),
            partials: vec![forged.clone()],
        },
    );
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Dropped { from: phalanx_consensus::OperatorIndex(1), reason, .. } if reason.label() == "invalid_batch"
    )));
    let forged_copy = forged;
    // A valid signature over another root than the decided data's is
    // dropped before it is verified or stored. (From operator 3: the bad
    // batch above spent operator 1's verification budget for the slot.)
    let other_root = roots::attestation(&cluster.network, cluster.gvr, &other_data);
    let contradicting = phalanx_node::parsigex::PartialMessage {
        signing_root: other_root.0,
        signature: cluster.shares[3][1]
            .sign(other_root.as_slice())
            .signature
            .to_bytes()
            .to_vec(),
        ..forged_copy
    };
    let stored = cluster.cores[0].stored_partials();
    let actions = cluster.cores[0].handle(
        now,
        Event::Partials {
            from: phalanx_consensus::OperatorIndex(3),
            partials: vec![contradicting],
        },
    );
    let dropped: Vec<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Dropped { reason, .. } => Some(reason.label()),
            _ => None,
        })
        .collect();
    assert_eq!(dropped, vec!["decided_root_mismatch"]);
    assert_eq!(cluster.cores[0].stored_partials(), stored);
}

#[test]
fn a_new_registration_combines_on_a_node_whose_operator_did_not_sign() {
    let mut cluster = cluster(ForkName::Electra, 2);
    let now = GENESIS_MS + SLOT_MS + 100;
    cluster.run(GENESIS_MS, now, &[]);
    let message = phalanx_eth::validator::ValidatorRegistration {
        fee_recipient: phalanx_eth::ExecutionAddress::repeat_byte(0xaa),
        gas_limit: 36_000_000,
        // Agreed, and passed: in the epoch of the duty below.
        timestamp: GENESIS_MS / 1000 + 5,
        pubkey: PublicKeyBytes::from(cluster.groups[1].to_bytes()),
    };
    let root = roots::validator_registration(&cluster.network, &message);
    let partial = |operator: usize,
                   registration: &phalanx_eth::validator::ValidatorRegistration| {
        phalanx_node::parsigex::PartialMessage {
            duty: phalanx_node::duty::Duty::new(Slot(0), DutyType::BuilderRegistration),
            validator: cluster.groups[1].to_bytes().to_vec(),
            signing_root: root.0,
            signature: cluster.shares[operator][1]
                .sign(root.as_slice())
                .signature
                .to_bytes()
                .to_vec(),
            block_root: None,
            registration: Some(ssz::Encode::as_ssz_bytes(registration)),
        }
    };
    // A partial whose message does not give its root, or whose duty is not
    // its timestamp's epoch, is dropped; so is one for a slot far ahead.
    let mut other = message.clone();
    other.gas_limit = 1;
    let mut wrong_epoch = partial(0, &message);
    wrong_epoch.duty.slot = Slot(8);
    let mut far_ahead = partial(0, &message);
    far_ahead.duty.slot = Slot(64);
    for (forged, reason) in [
        (partial(0, &other), "registration_mismatch"),
        (wrong_epoch, "registration_mismatch"),
        (far_ahead, "duty_out_of_window"),
    ] {
        let actions = cluster.cores[3].handle(
            now,
            Event::Partials {
                from: phalanx_consensus::OperatorIndex(0),
                partials: vec![forged],
            },
        );
        assert!(
            actions.iter().any(|a| matches!(
                a,
                Action::Dropped { from: phalanx_consensus::OperatorIndex(0), reason: r, .. } if r.label() == reason
            )),
            "{reason}: {actions:?}"
        );
    }
    // Operators 0, 1 and 2 signed; operator 3's node combines and keeps
    // the new registration from their partials alone.
    let mut registered = Vec::new();
    for operator in 0..3 {
        let actions = cluster.cores[3].handle(
            now,
            Event::Partials {
                from: phalanx_consensus::OperatorIndex(operator as u32),
                partials: vec![partial(operator, &message)],
            },
        );
        registered.extend(actions.into_iter().filter_map(|a| match a {
            Action::Registered(signed) => Some(signed),
            _ => None,
        }));
    }
    assert_eq!(registered.len(), 1, "{registered:?}");
    assert_eq!(registered[0].message, message);
    let signature = Signature::from_bytes(registered[0].signature.as_slice()).expect("decodes");
    assert!(signature.verify(&cluster.groups[1], root.as_slice()));
}

#[test]
fn selection_proofs_combine_across_the_cluster() {
    let mut cluster = cluster(ForkName::Electra, 8);
    let now = GENESIS_MS + SLOT_MS + 100;
    cluster.run(GENESIS_MS, now, &[]);
    // Validator 1 attests at slot 1 and sits in the sync committee: its
    // peers' proofs are refused for any slot it has no duty in.
    let slot = Slot(1);
    let (network, gvr, shares) = (cluster.network.clone(), cluster.gvr, cluster.shares.clone());
    let selection_root = roots::selection_proof(&network, gvr, slot);
    let sync_root =
        |subcommittee_index| roots::sync_selection_proof(&network, gvr, slot, subcommittee_index);
    let sign = |node: usize, root: Root| {
        SignatureBytes::from(shares[node][1].sign(root.as_slice()).signature.to_bytes())
    };
    let mut queue = VecDeque::new();
    // Three operators' validator clients ask; the fourth stays silent.
    for node in 0..3 {
        queue.push_back((
            node,
            Event::Vc {
                id: 900 + node as u64,
                request: VcRequest::BeaconCommitteeSelections(vec![BeaconCommitteeSelection {
                    validator_index: ValidatorIndex(101),
                    slot,
                    selection_proof: sign(node, selection_root),
                }]),
            },
        ));
        // Two subcommittees of one validator: each combines on its own.
        queue.push_back((
            node,
            Event::Vc {
                id: 950 + node as u64,
                request: VcRequest::SyncCommitteeSelections(
                    [0, 1]
                        .map(|sub| SyncCommitteeSelection {
                            validator_index: ValidatorIndex(101),
                            slot,
                            subcommittee_index: sub,
                            selection_proof: sign(node, sync_root(sub)),
                        })
                        .to_vec(),
                ),
            },
        ));
    }
    cluster.vc_id = 5000;
    cluster.replies.clear();
    cluster.drain(now, &mut queue, &[3]);
    let group = cluster.groups[1];
    let (mut beacon, mut sync) = (0, 0);
    for (node, reply) in &cluster.replies {
        match reply {
            VcResponse::BeaconCommitteeSelections(list) => {
                let proof =
                    Signature::from_bytes(list[0].selection_proof.as_slice()).expect("proof");
                assert!(
                    proof.verify(&group, selection_root.as_slice()),
                    "node {node}"
                );
                beacon += 1;
            }
            VcResponse::SyncCommitteeSelections(list) => {
                for (item, sub) in list.iter().zip([0, 1]) {
                    let proof =
                        Signature::from_bytes(item.selection_proof.as_slice()).expect("proof");
                    assert!(
                        proof.verify(&group, sync_root(sub).as_slice()),
                        "node {node}"
                    );
                }
                sync += 1;
            }
            other => panic!("unexpected reply {other:?}"),
        }
    }
    assert_eq!(
        (beacon, sync),
        (3, 3),
        "every asking client gets the combined proofs"
    );
    // A proof for a validator outside the cluster is refused at once.
    let actions = cluster.cores[0].handle(
        now,
        Event::Vc {
            id: 1,
            request: VcRequest::BeaconCommitteeSelections(vec![BeaconCommitteeSelection {
                validator_index: ValidatorIndex(7),
                slot,
                selection_proof: sign(0, selection_root),
            }]),
        },
    );
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Reply { result: Err(f), .. } if f.status == 400
    )));
}

/// Blocks of Phase 0, Altair and Bellatrix (full, and blinded from
/// Bellatrix) go through the same pipeline as later forks' blocks.
#[test]
fn blocks_are_proposed_in_the_forks_before_capella() {
    // Test chains (Lodestar's dev chain among them) start at Altair or
    // earlier: a validator client asks for its blocks there too.
    for fork in [ForkName::Phase0, ForkName::Altair, ForkName::Bellatrix] {
        let mut cluster = cluster(fork, 8);
        cluster.proposals = true;
        cluster.run(GENESIS_MS, GENESIS_MS + 8 * SLOT_MS, &[3]);
        let verified = verify_submissions(&cluster);
        // Every slot's block, published by each of the three running nodes.
        assert_eq!(verified.blocks, 3 * 8, "{fork}");
        let failed: Vec<_> = cluster
            .outcomes
            .iter()
            .filter(|(_, kind, o)| *kind == DutyType::Proposer && *o != Outcome::Success)
            .collect();
        assert!(failed.is_empty(), "{fork}: {failed:?}");
    }
    // A builder's blinded blocks exist from Bellatrix on.
    let mut builder = cluster(ForkName::Bellatrix, 8);
    builder.proposals = true;
    builder.blinded = true;
    builder.run(GENESIS_MS, GENESIS_MS + 3 * SLOT_MS, &[]);
    assert_eq!(verify_submissions(&builder).blocks, 4 * 3);
}
