//! The beacon-node mock against the project's beacon-node client: duties,
//! attestations in both layouts, aggregation, blocks of every fork from
//! Capella on, sync committees, exits, events, the spec and outages.
//! Minimal preset, one-second slots, 127.0.0.1 only.

use std::time::Duration;

use futures::StreamExt;
use phalanx_crypto::SecretKey;
use phalanx_eth::api::Event;
use phalanx_eth::attestation::{
    AggregateAndProofBase, AggregateAndProofElectra, Attestation, AttestationBase,
    SignedAggregateAndProofBase, SignedAggregateAndProofElectra, SingleAttestation,
};
use phalanx_eth::block_contents::{ProducedBlockData, Signed, SignedBlockContents};
use phalanx_eth::client::{BeaconNodeClient, Timeouts};
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::devnet::Devnet;
use phalanx_eth::signing::{
    compute_signing_root, voluntary_exit_domain, DOMAIN_AGGREGATE_AND_PROOF,
    DOMAIN_BEACON_ATTESTER, DOMAIN_BEACON_PROPOSER, DOMAIN_CONTRIBUTION_AND_PROOF, DOMAIN_RANDAO,
    DOMAIN_SELECTION_PROOF, DOMAIN_SYNC_COMMITTEE, DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF,
};
use phalanx_eth::sync_committee::{
    ContributionAndProof, SignedContributionAndProof, SyncAggregatorSelectionData,
    SyncCommitteeMessage,
};
use phalanx_eth::validator::{SignedVoluntaryExit, VoluntaryExit};
use phalanx_eth::{
    CommitteeIndex, DomainType, Epoch, ForkName, MinimalEthSpec, PublicKeyBytes, Root,
    SignatureBytes, Slot, ValidatorIndex,
};
use phalanx_sim::beacon::{BeaconMock, BeaconMockConfig, Submission, SubmissionKind};
use phalanx_sim::cluster::unix_ms;
use rand::SeedableRng;
use serde_json::Value;
use ssz_types::BitList;
use tree_hash::TreeHash;

const VALIDATORS: u64 = 64;
const SLOTS_PER_EPOCH: u64 = 8;
const GENESIS_VALIDATORS_ROOT: Root = Root::repeat_byte(0x42);

/// The wall clock in Unix seconds: tests place genesis in the past of the
/// real clock the mock follows.
fn unix_seconds() -> u64 {
    unix_ms() / 1000
}

fn secret_keys() -> Vec<SecretKey> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    (0..VALIDATORS)
        .map(|_| SecretKey::random(&mut rng))
        .collect()
}

fn sign(key: &SecretKey, signing_root: Root) -> SignatureBytes {
    SignatureBytes::from(key.sign(signing_root.as_slice()).to_bytes())
}

/// A mock whose chain is `slots` slots past genesis, with a client for it.
struct Harness {
    mock: BeaconMock,
    client: BeaconNodeClient,
    keys: Vec<SecretKey>,
    network: NetworkConfig,
}

impl Harness {
    async fn start(network: NetworkConfig, slots: u64, seed: u64) -> Harness {
        Harness::start_recording(network, slots, seed, None).await
    }

    async fn start_recording(
        network: NetworkConfig,
        slots: u64,
        seed: u64,
        record: Option<std::path::PathBuf>,
    ) -> Harness {
        let keys = secret_keys();
        let config = BeaconMockConfig {
            network: network.clone(),
            genesis_time: unix_seconds() - slots * network.slot_duration_ms / 1000,
            genesis_validators_root: GENESIS_VALIDATORS_ROOT,
            validators: keys
                .iter()
                .map(|k| PublicKeyBytes::from(k.public_key().to_bytes()))
                .collect(),
            seed,
            record,
            listen: "127.0.0.1:0".parse().expect("address"),
        };
        let mock = BeaconMock::start(config).await.expect("mock starts");
        let client = BeaconNodeClient::new(&[mock.url()], Timeouts::default()).expect("client");
        Harness {
            mock,
            client,
            keys,
            network,
        }
    }

    fn domain(&self, domain_type: DomainType, epoch: Epoch) -> phalanx_eth::Domain {
        self.network
            .domain_at(domain_type, epoch, GENESIS_VALIDATORS_ROOT)
    }

    fn key(&self, index: ValidatorIndex) -> &SecretKey {
        &self.keys[index.0 as usize]
    }

    /// A key that is not `index`'s.
    fn other_key(&self, index: ValidatorIndex) -> &SecretKey {
        &self.keys[((index.0 + 1) % VALIDATORS) as usize]
    }

    async fn head_slot(&self) -> Slot {
        self.client.syncing().await.expect("syncing").head_slot
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(format!("{}{path}", self.mock.url()))
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: &impl serde::Serialize) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.mock.url()))
            .json(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn block_root(&self, slot: Slot) -> Root {
        let (status, body) = self
            .get(&format!("/eth/v1/beacon/blocks/{slot}/root"))
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body["data"]["root"].clone()).expect("root")
    }
}

fn all_indices() -> Vec<ValidatorIndex> {
    (0..VALIDATORS).map(ValidatorIndex).collect()
}

fn minimal(genesis_fork: ForkName) -> NetworkConfig {
    Devnet::new(genesis_fork, 1000).build()
}

#[tokio::test]
async fn duties_are_deterministic_and_complete() {
    let a = Harness::start(minimal(ForkName::Electra), 20, 7).await;
    let b = Harness::start(minimal(ForkName::Electra), 20, 7).await;
    let other = Harness::start(minimal(ForkName::Electra), 20, 8).await;
    let current = a.head_slot().await.epoch(SLOTS_PER_EPOCH);
    for epoch in 0..=current.0 + 1 {
        let epoch = Epoch(epoch);
        let duties = a
            .client
            .attester_duties(epoch, &all_indices())
            .await
            .expect("duties");
        let again = b
            .client
            .attester_duties(epoch, &all_indices())
            .await
            .expect("duties");
        assert_eq!(duties, again, "same seed, same duties");
        let reshuffled = other
            .client
            .attester_duties(epoch, &all_indices())
            .await
            .expect("duties");
        assert_ne!(
            duties.data, reshuffled.data,
            "another seed shuffles otherwise"
        );

        // Every validator exactly once, in a committee laid out as the API says.
        let mut validators: Vec<u64> = duties.data.iter().map(|d| d.validator_index.0).collect();
        validators.sort_unstable();
        assert_eq!(validators, (0..VALIDATORS).collect::<Vec<_>>());
        let mut committees: std::collections::BTreeMap<(Slot, CommitteeIndex), Vec<u64>> =
            Default::default();
        for duty in &duties.data {
            assert_eq!(duty.slot.epoch(SLOTS_PER_EPOCH), epoch);
            assert_eq!(
                duty.committees_at_slot, 2,
                "64 / (8 · 4) committees per slot"
            );
            assert!(duty.committee_index.0 < duty.committees_at_slot);
            assert_eq!(
                duty.pubkey.0,
                a.key(duty.validator_index).public_key().to_bytes()
            );
            committees
                .entry((duty.slot, duty.committee_index))
                .or_default()
                .push(duty.validator_committee_index);
        }
        assert_eq!(committees.len() as u64, SLOTS_PER_EPOCH * 2);
        for ((slot, index), mut positions) in committees {
            let length = duties
                .data
                .iter()
                .find(|d| d.slot == slot && d.committee_index == index)
                .map(|d| d.committee_length)
                .expect("a member");
            positions.sort_unstable();
            assert_eq!(positions, (0..length).collect::<Vec<_>>());
        }

        let proposers = a.client.proposer_duties(epoch).await.expect("proposers");
        assert_eq!(
            proposers,
            b.client.proposer_duties(epoch).await.expect("proposers")
        );
        let expected_slots = if epoch.0 == 0 { 7 } else { 8 };
        assert_eq!(
            proposers.data.len(),
            expected_slots,
            "one per slot but genesis"
        );
    }

    let sync = a
        .client
        .sync_duties(current, &all_indices())
        .await
        .expect("sync duties");
    assert_eq!(
        sync,
        b.client
            .sync_duties(current, &all_indices())
            .await
            .expect("sync duties")
    );
    let mut positions: Vec<u64> = sync
        .data
        .iter()
        .flat_map(|d| d.validator_sync_committee_indices.clone())
        .collect();
    positions.sort_unstable();
    assert_eq!(
        positions,
        (0..32).collect::<Vec<_>>(),
        "32 positions, each held once"
    );

    // Too far ahead is refused, as a beacon node does.
    let error = a
        .client
        .attester_duties(Epoch(current.0 + 2), &all_indices())
        .await
        .expect_err("two epochs ahead");
    assert_eq!(error.status(), Some(400));
}

#[tokio::test]
async fn electra_single_attestations_are_checked_recorded_and_aggregated() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let record = directory.path().join("submissions.jsonl");
    let h = Harness::start_recording(minimal(ForkName::Electra), 20, 7, Some(record.clone())).await;
    let current = h.head_slot().await;
    let epoch = current.epoch(SLOTS_PER_EPOCH);
    let duties = h
        .client
        .attester_duties(epoch, &all_indices())
        .await
        .expect("duties")
        .data;
    let duty = duties
        .iter()
        .filter(|d| d.slot <= current)
        .max_by_key(|d| d.slot)
        .expect("a duty in a slot that has started");
    let data = h
        .client
        .attestation_data(duty.slot, duty.committee_index)
        .await
        .expect("attestation data");
    assert_eq!(data.index, CommitteeIndex(0), "Electra votes carry index 0");
    assert_eq!(data.slot, duty.slot);
    assert_eq!(data.beacon_block_root, h.block_root(duty.slot).await);

    let signing_root =
        compute_signing_root(&data, h.domain(DOMAIN_BEACON_ATTESTER, data.target.epoch));
    let good = SingleAttestation {
        committee_index: duty.committee_index,
        attester_index: duty.validator_index,
        data,
        signature: sign(h.key(duty.validator_index), signing_root),
    };
    h.client
        .submit_attestations(ForkName::Electra, vec![good.clone()])
        .await
        .expect("a correct attestation is accepted");
    let wrong_key = SingleAttestation {
        signature: sign(h.other_key(duty.validator_index), signing_root),
        ..good.clone()
    };
    let error = h
        .client
        .submit_attestations(ForkName::Electra, vec![wrong_key])
        .await
        .expect_err("a wrong key is refused");
    assert_eq!(error.status(), Some(400));

    let submissions = h.mock.submissions();
    assert_eq!(submissions.len(), 2);
    let accepted = &submissions[0];
    assert_eq!(accepted.kind, SubmissionKind::Attestation);
    assert_eq!(accepted.fork, "electra");
    assert_eq!(accepted.slot, duty.slot.0);
    assert_eq!(accepted.validator_index, duty.validator_index.0);
    assert_eq!(accepted.pubkey, duty.pubkey.to_string());
    assert_eq!(accepted.signing_root, signing_root.to_string());
    assert_eq!(accepted.signature, good.signature.to_string());
    assert!(accepted.valid && accepted.accepted && accepted.error.is_none());
    assert_eq!(
        accepted.body["attester_index"],
        duty.validator_index.0.to_string()
    );
    let refused = &submissions[1];
    assert!(!refused.valid && !refused.accepted);
    assert!(refused
        .error
        .as_deref()
        .is_some_and(|e| e.contains("signature")));

    // The aggregate of what was received: one bit, the same signature.
    let aggregate = h
        .client
        .aggregate_attestation::<MinimalEthSpec>(
            ForkName::Electra,
            duty.slot,
            data.tree_hash_root(),
            duty.committee_index,
        )
        .await
        .expect("an aggregate");
    let Attestation::Electra(aggregate) = aggregate else {
        panic!("an Electra aggregate");
    };
    assert_eq!(
        aggregate.aggregation_bits.len() as u64,
        duty.committee_length
    );
    let set: Vec<usize> = (0..aggregate.aggregation_bits.len())
        .filter(|&i| aggregate.aggregation_bits.get(i).unwrap_or(false))
        .collect();
    assert_eq!(set, vec![duty.validator_committee_index as usize]);
    assert!(aggregate
        .committee_bits
        .get(duty.committee_index.0 as usize)
        .expect("bit"));
    assert_eq!(aggregate.signature, good.signature);

    // The attester aggregates it (committees under 16 make everyone an aggregator).
    let selection_proof = sign(
        h.key(duty.validator_index),
        compute_signing_root(&duty.slot, h.domain(DOMAIN_SELECTION_PROOF, epoch)),
    );
    let message = AggregateAndProofElectra {
        aggregator_index: duty.validator_index,
        aggregate,
        selection_proof,
    };
    let signed = SignedAggregateAndProofElectra {
        signature: sign(
            h.key(duty.validator_index),
            compute_signing_root(&message, h.domain(DOMAIN_AGGREGATE_AND_PROOF, epoch)),
        ),
        message,
    };
    h.client
        .submit_aggregate_and_proofs(ForkName::Electra, vec![signed])
        .await
        .expect("the aggregate is accepted");

    // Every submission is also a JSON line of the record.
    let lines: Vec<Submission> = std::fs::read_to_string(&record)
        .expect("record")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a submission per line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2].kind, SubmissionKind::Aggregate);
    assert!(lines[2].valid && lines[2].accepted, "{:?}", lines[2].error);
    assert!(lines[0].valid && !lines[1].valid);
}

#[tokio::test]
async fn capella_attestations_use_the_committee_layout_on_v1() {
    let h = Harness::start(minimal(ForkName::Capella), 20, 7).await;
    let current = h.head_slot().await;
    let epoch = current.epoch(SLOTS_PER_EPOCH);
    let duties = h
        .client
        .attester_duties(epoch, &all_indices())
        .await
        .expect("duties")
        .data;
    let duty = duties
        .iter()
        .filter(|d| d.slot <= current)
        .max_by_key(|d| d.slot)
        .expect("a duty in a slot that has started");
    let data = h
        .client
        .attestation_data(duty.slot, duty.committee_index)
        .await
        .expect("attestation data");
    assert_eq!(
        data.index, duty.committee_index,
        "pre-Electra votes name the committee"
    );
    let signing_root =
        compute_signing_root(&data, h.domain(DOMAIN_BEACON_ATTESTER, data.target.epoch));
    let mut aggregation_bits =
        BitList::with_capacity(duty.committee_length as usize).expect("bits");
    aggregation_bits
        .set(duty.validator_committee_index as usize, true)
        .expect("bit");
    let good = AttestationBase::<MinimalEthSpec> {
        aggregation_bits,
        data,
        signature: sign(h.key(duty.validator_index), signing_root),
    };
    let (status, body) = h
        .post("/eth/v1/beacon/pool/attestations", &vec![good.clone()])
        .await;
    assert_eq!(status, 200, "{body}");
    let wrong_key = AttestationBase {
        signature: sign(h.other_key(duty.validator_index), signing_root),
        ..good.clone()
    };
    let error = h
        .client
        .submit_attestations(ForkName::Capella, vec![wrong_key])
        .await
        .expect_err("a wrong key is refused");
    assert_eq!(error.status(), Some(400));
    // An Electra-layout attestation in a Capella slot is refused too.
    let electra_shaped = SingleAttestation {
        committee_index: duty.committee_index,
        attester_index: duty.validator_index,
        data,
        signature: good.signature,
    };
    let error = h
        .client
        .submit_attestations(ForkName::Electra, vec![electra_shaped])
        .await
        .expect_err("the wrong fork is refused");
    assert_eq!(error.status(), Some(400));

    let submissions = h.mock.submissions();
    assert_eq!(submissions.len(), 3);
    assert!(submissions[0].valid && submissions[0].accepted);
    assert_eq!(submissions[0].fork, "capella");
    assert_eq!(submissions[0].validator_index, duty.validator_index.0);
    assert!(!submissions[1].valid && !submissions[1].accepted);
    assert!(!submissions[2].accepted);
    assert!(submissions[2]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("capella")));

    let Attestation::Base(aggregate) = h
        .client
        .aggregate_attestation::<MinimalEthSpec>(
            ForkName::Capella,
            duty.slot,
            data.tree_hash_root(),
            duty.committee_index,
        )
        .await
        .expect("an aggregate")
    else {
        panic!("a pre-Electra aggregate");
    };
    assert_eq!(aggregate, good);

    let selection_proof = sign(
        h.key(duty.validator_index),
        compute_signing_root(&duty.slot, h.domain(DOMAIN_SELECTION_PROOF, epoch)),
    );
    let message = AggregateAndProofBase {
        aggregator_index: duty.validator_index,
        aggregate,
        selection_proof,
    };
    let signed = SignedAggregateAndProofBase {
        signature: sign(
            h.key(duty.validator_index),
            compute_signing_root(&message, h.domain(DOMAIN_AGGREGATE_AND_PROOF, epoch)),
        ),
        message,
    };
    let (status, body) = h
        .post("/eth/v1/validator/aggregate_and_proofs", &vec![signed])
        .await;
    assert_eq!(status, 200, "{body}");
    let last = h.mock.submissions().pop().expect("the aggregate");
    assert_eq!(last.kind, SubmissionKind::Aggregate);
    assert!(last.valid && last.accepted);
}

#[tokio::test]
async fn produced_blocks_signed_by_the_proposer_are_accepted_in_every_fork() {
    for fork in [
        ForkName::Altair,
        ForkName::Bellatrix,
        ForkName::Capella,
        ForkName::Deneb,
        ForkName::Electra,
        ForkName::Fulu,
    ] {
        let h = Harness::start(minimal(fork), 12, 7).await;
        let slot = h.head_slot().await;
        let epoch = slot.epoch(SLOTS_PER_EPOCH);
        let duty = h
            .client
            .proposer_duties(epoch)
            .await
            .expect("proposer duties")
            .data
            .into_iter()
            .find(|d| d.slot == slot)
            .expect("a proposer for the slot");
        let proposer = duty.validator_index;
        let randao_reveal = sign(
            h.key(proposer),
            compute_signing_root(&epoch, h.domain(DOMAIN_RANDAO, epoch)),
        );
        let graffiti = Root::repeat_byte(0x67);

        // A randao reveal by someone else is refused at production.
        let wrong_randao = sign(
            h.other_key(proposer),
            compute_signing_root(&epoch, h.domain(DOMAIN_RANDAO, epoch)),
        );
        let error = h
            .client
            .produce_block::<MinimalEthSpec>(slot, &wrong_randao, Some(graffiti), None)
            .await
            .expect_err("a wrong randao reveal is refused");
        assert_eq!(error.status(), Some(400));

        let produced = h
            .client
            .produce_block::<MinimalEthSpec>(slot, &randao_reveal, Some(graffiti), None)
            .await
            .expect("a block");
        assert_eq!(produced.fork, fork);
        let block = match produced.data {
            ProducedBlockData::Full(block) => {
                assert!(fork <= ForkName::Capella);
                block
            }
            ProducedBlockData::Contents(contents) => {
                assert!(fork >= ForkName::Deneb);
                assert!(contents.blobs.is_empty() && contents.kzg_proofs.is_empty());
                contents.block
            }
            ProducedBlockData::Blinded(_) => panic!("the mock has no builder"),
        };
        assert_eq!(block.fork_name(), fork);
        assert_eq!(block.slot(), slot);
        assert_eq!(block.proposer_index(), proposer);
        assert_eq!(
            block.header().parent_root,
            h.block_root(Slot(slot.0 - 1)).await
        );
        let json = serde_json::to_value(&block).expect("json");
        assert_eq!(json["body"]["graffiti"], graffiti.to_string());
        assert_eq!(json["body"]["randao_reveal"], randao_reveal.to_string());
        assert!(json["body"]["sync_aggregate"]["sync_committee_signature"]
            .as_str()
            .is_some_and(|s| s.starts_with("0xc0")));

        let signing_root = compute_signing_root(
            &block.tree_hash_root(),
            h.domain(DOMAIN_BEACON_PROPOSER, epoch),
        );
        for key in [h.other_key(proposer), h.key(proposer)] {
            let signed = Signed {
                message: block.clone(),
                signature: sign(key, signing_root),
            };
            let result = if fork >= ForkName::Deneb {
                let contents = SignedBlockContents {
                    signed_block: signed,
                    kzg_proofs: Vec::new(),
                    blobs: Vec::new(),
                };
                h.client.publish_block(fork, &contents, false).await
            } else {
                h.client.publish_block(fork, &signed, false).await
            };
            if std::ptr::eq(key, h.key(proposer)) {
                result.expect("the proposer's block is accepted");
            } else {
                assert_eq!(result.expect_err("refused").status(), Some(400), "{fork}");
            }
        }
        let submissions = h.mock.submissions();
        assert_eq!(submissions.len(), 2);
        assert!(!submissions[0].valid && !submissions[0].accepted);
        let accepted = &submissions[1];
        assert_eq!(accepted.kind, SubmissionKind::Block);
        assert_eq!(accepted.fork, fork.as_str());
        assert_eq!(accepted.validator_index, proposer.0);
        assert_eq!(accepted.signing_root, signing_root.to_string());
        assert!(
            accepted.valid && accepted.accepted,
            "{fork}: {:?}",
            accepted.error
        );

        // The blinded form has the same root, so the same signature serves
        // (from Bellatrix: Altair has no payload to blind).
        match block.to_blinded() {
            None => assert_eq!(fork, ForkName::Altair),
            Some(blinded) => {
                let signed = Signed {
                    message: blinded,
                    signature: sign(h.key(proposer), signing_root),
                };
                h.client
                    .publish_block(fork, &signed, true)
                    .await
                    .expect("the blinded block is accepted");
                let last = h.mock.submissions().pop().expect("the blinded block");
                assert_eq!(last.kind, SubmissionKind::BlindedBlock);
                assert!(last.valid && last.accepted, "{fork}: {:?}", last.error);
            }
        }

        // v2 production: the same block, versioned by body and header.
        let response = reqwest::get(format!(
            "{}/eth/v2/validator/blocks/{slot}?randao_reveal={randao_reveal}&graffiti={graffiti}",
            h.mock.url()
        ))
        .await
        .expect("v2 production");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response
                .headers()
                .get("Eth-Consensus-Version")
                .and_then(|v| v.to_str().ok()),
            Some(fork.as_str())
        );
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["version"], fork.as_str());
        let v2_block = if fork >= ForkName::Deneb {
            body["data"]["block"].clone()
        } else {
            body["data"].clone()
        };
        assert_eq!(v2_block, json);
    }
}

#[tokio::test]
async fn sync_committee_messages_and_contributions_are_checked() {
    let h = Harness::start(minimal(ForkName::Deneb), 20, 7).await;
    let slot = h.head_slot().await;
    let epoch = slot.epoch(SLOTS_PER_EPOCH);
    let duty = h
        .client
        .sync_duties(epoch, &all_indices())
        .await
        .expect("sync duties")
        .data
        .into_iter()
        .next()
        .expect("a member");
    let member = duty.validator_index;
    let root = h.block_root(slot).await;
    let message = SyncCommitteeMessage {
        slot,
        beacon_block_root: root,
        validator_index: member,
        signature: sign(
            h.key(member),
            compute_signing_root(&root, h.domain(DOMAIN_SYNC_COMMITTEE, epoch)),
        ),
    };
    h.client
        .submit_sync_committee_messages(std::slice::from_ref(&message))
        .await
        .expect("the member's message is accepted");
    let forged = SyncCommitteeMessage {
        // The right key over the wrong root.
        signature: sign(h.key(member), Root::repeat_byte(0x99)),
        ..message.clone()
    };
    let error = h
        .client
        .submit_sync_committee_messages(&[forged])
        .await
        .expect_err("a wrong signature is refused");
    assert_eq!(error.status(), Some(400));

    let position = duty.validator_sync_committee_indices[0];
    let subcommittee = position / 8;
    let contribution = h
        .client
        .sync_committee_contribution::<MinimalEthSpec>(slot, subcommittee, root)
        .await
        .expect("a contribution");
    assert!(contribution
        .aggregation_bits
        .get((position % 8) as usize)
        .expect("bit"));

    let selection_proof = sign(
        h.key(member),
        compute_signing_root(
            &SyncAggregatorSelectionData {
                slot,
                subcommittee_index: subcommittee,
            },
            h.domain(DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF, epoch),
        ),
    );
    let message = ContributionAndProof {
        aggregator_index: member,
        contribution,
        selection_proof,
    };
    let signed = SignedContributionAndProof {
        signature: sign(
            h.key(member),
            compute_signing_root(&message, h.domain(DOMAIN_CONTRIBUTION_AND_PROOF, epoch)),
        ),
        message,
    };
    h.client
        .submit_contribution_and_proofs(&[signed])
        .await
        .expect("the contribution is accepted");
    let kinds: Vec<(SubmissionKind, bool)> = h
        .mock
        .submissions()
        .iter()
        .map(|s| (s.kind, s.accepted))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (SubmissionKind::SyncMessage, true),
            (SubmissionKind::SyncMessage, false),
            (SubmissionKind::Contribution, true),
        ]
    );
}

#[tokio::test]
async fn exits_and_registrations_are_checked() {
    let h = Harness::start(minimal(ForkName::Electra), 20, 7).await;
    let validator = ValidatorIndex(5);
    let exit = VoluntaryExit {
        epoch: Epoch(1),
        validator_index: validator,
    };
    let domain = voluntary_exit_domain(
        ForkName::Electra,
        h.network.fork_version_at(Epoch(1)),
        h.network
            .fork_version(ForkName::Capella)
            .expect("capella version"),
        GENESIS_VALIDATORS_ROOT,
    );
    let signing_root = compute_signing_root(&exit, domain);
    h.client
        .submit_voluntary_exit(&SignedVoluntaryExit {
            message: exit,
            signature: sign(h.key(validator), signing_root),
        })
        .await
        .expect("the exit is accepted");
    let error = h
        .client
        .submit_voluntary_exit(&SignedVoluntaryExit {
            message: exit,
            signature: sign(h.other_key(validator), signing_root),
        })
        .await
        .expect_err("a wrong key is refused");
    assert_eq!(error.status(), Some(400));

    let registration = phalanx_eth::validator::ValidatorRegistration {
        fee_recipient: phalanx_eth::ExecutionAddress::repeat_byte(0x11),
        gas_limit: 30_000_000,
        timestamp: unix_seconds(),
        pubkey: PublicKeyBytes::from(h.key(validator).public_key().to_bytes()),
    };
    let signing_root = compute_signing_root(
        &registration,
        phalanx_eth::signing::application_builder_domain(h.network.genesis_fork_version),
    );
    h.client
        .register_validators(&[phalanx_eth::validator::SignedValidatorRegistration {
            message: registration,
            signature: sign(h.key(validator), signing_root),
        }])
        .await
        .expect("the registration is accepted");
    let accepted: Vec<(SubmissionKind, bool)> = h
        .mock
        .submissions()
        .iter()
        .map(|s| (s.kind, s.valid && s.accepted))
        .collect();
    assert_eq!(
        accepted,
        vec![
            (SubmissionKind::VoluntaryExit, true),
            (SubmissionKind::VoluntaryExit, false),
            (SubmissionKind::Registration, true),
        ]
    );
}

#[tokio::test]
async fn set_down_answers_503_and_ends_event_streams() {
    let h = Harness::start(minimal(ForkName::Electra), 20, 7).await;
    h.client.genesis().await.expect("up");
    let mut events = Box::pin(h.client.events().await.expect("subscribed"));

    // A head and a block event at the next slot start, naming the slot's block.
    let mut seen = (None, None);
    while seen.0.is_none() || seen.1.is_none() {
        let event = tokio::time::timeout(Duration::from_secs(3), events.next())
            .await
            .expect("an event within a slot")
            .expect("the stream is open")
            .expect("a well-formed event");
        match event {
            Event::Head(head) => seen.0 = Some(head),
            Event::Block(block) => seen.1 = Some(block),
            Event::ChainReorg(_) => panic!("the mock never reorganises"),
        }
    }
    let (head, block) = (seen.0.expect("head"), seen.1.expect("block"));
    assert_eq!(head.block, block.block);
    assert_eq!(head.block, h.block_root(head.slot).await);

    h.mock.set_down(true);
    let error = h.client.genesis().await.expect_err("down");
    assert_eq!(error.status(), Some(503));
    let (status, body) = h.get("/eth/v1/node/syncing").await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], 503);
    let end = tokio::time::timeout(Duration::from_secs(3), events.next())
        .await
        .expect("the stream ends at once");
    assert!(end.is_none(), "the event stream ends while down");

    h.mock.set_down(false);
    h.client.genesis().await.expect("up again");

    // After shutdown nothing answers.
    let url = h.mock.url();
    h.mock.shutdown();
    let mut closed = false;
    for _ in 0..20 {
        if reqwest::get(format!("{url}/eth/v1/node/health"))
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed, "the server stops");
}

#[tokio::test]
async fn the_spec_round_trips_through_the_client() {
    let networks = [
        minimal(ForkName::Electra),
        Devnet::new(ForkName::Deneb, 1500)
            .upgrade(ForkName::Electra, Epoch(3))
            .upgrade(ForkName::Fulu, Epoch(9))
            .build(),
        {
            let mut hoodi = NetworkConfig::built_in("hoodi").expect("hoodi");
            hoodi.genesis_validators_root = None;
            hoodi.genesis_time = None;
            hoodi
        },
    ];
    for network in networks {
        let h = Harness::start(network.clone(), 20, 7).await;
        assert_eq!(h.client.spec().await.expect("spec"), network);
        let genesis = h.client.genesis().await.expect("genesis");
        assert_eq!(genesis.genesis_validators_root, GENESIS_VALIDATORS_ROOT);
        assert_eq!(genesis.genesis_fork_version, network.genesis_fork_version);
        let schedule = h.client.fork_schedule().await.expect("fork schedule");
        assert_eq!(schedule.len(), network.forks.len() + 1);
        for pair in schedule.windows(2) {
            assert_eq!(pair[1].previous_version, pair[0].current_version);
            assert!(pair[0].epoch <= pair[1].epoch);
        }
        let validators = h
            .client
            .validators("head", &["3".to_string(), h.keys[9].public_key().to_hex()])
            .await
            .expect("validators");
        let indices: Vec<u64> = validators.iter().map(|v| v.index.0).collect();
        assert_eq!(indices, vec![3, 9]);
        assert!(validators.iter().all(|v| v.status == "active_ongoing"));
    }
}

#[tokio::test]
async fn bad_requests_get_beacon_api_errors() {
    let h = Harness::start(minimal(ForkName::Electra), 20, 7).await;
    let (status, body) = h.get("/eth/v1/validator/attestation_data").await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], 400);
    assert!(body["message"].as_str().is_some_and(|m| m.contains("slot")));

    let (status, body) = h.get("/eth/v1/no/such/endpoint").await;
    assert_eq!((status, body["code"].clone()), (404, Value::from(404)));

    let (status, body) = h
        .post("/eth/v2/beacon/pool/attestations", &"not a list")
        .await;
    assert_eq!((status, body["code"].clone()), (400, Value::from(400)));

    let (status, body) = h
        .post(
            "/eth/v2/beacon/pool/attestations",
            &vec![serde_json::json!({"nonsense": 1})],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["failures"][0]["index"], 0);
    assert!(
        h.mock.submissions().is_empty(),
        "what does not decode is not a submission"
    );

    let (status, body) = h
        .get(&format!(
            "/eth/v2/validator/aggregate_attestation?attestation_data_root={}&slot=3&committee_index=0",
            Root::repeat_byte(1)
        ))
        .await;
    assert_eq!((status, body["code"].clone()), (404, Value::from(404)));

    let (status, _) = h
        .get("/eth/v1/validator/duties/proposer/not-an-epoch")
        .await;
    assert_eq!(status, 400);
    let (status, _) = h.get("/eth/v1/beacon/states/99999/fork").await;
    assert_eq!(status, 404);
    let (status, body) = h
        .get("/eth/v1/beacon/states/head/finality_checkpoints")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["finalized"]["epoch"], "0");
    let (status, _) = h.get("/eth/v1/node/health").await;
    assert_eq!(status, 200);
}
