//! What a peer's batch of partial signatures costs the node that receives
//! it: the core runs with a signature scheme that is BLS but counts the
//! signature sets its batch checks cover, so a byzantine operator's batch
//! can be priced in verification work.

use std::cell::Cell;

use phalanx_crypto::batch::{
    find_invalid_metered, verify_signature_sets_metered, SignatureSet, Work,
};
use phalanx_crypto::threshold::{split, SecretShare};
use phalanx_crypto::{PublicKey, SecretKey, Signature};
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::{ForkName, MinimalEthSpec, PublicKeyBytes, Root, SignatureBytes, Slot};
use phalanx_node::core::{Action, Core, CoreConfig, Defects, Event, ValidatorKeys};
use phalanx_node::duty::{Duty, DutyType};
use phalanx_node::parsigex::PartialMessage;
use phalanx_node::qbft::{LockVerifier, NodeSigner};
use phalanx_node::scheme::{Bls, Check, Partial, SignatureScheme};
use phalanx_node::slashing::SlashingDb;
use phalanx_p2p::NodeKey;
use rand::{CryptoRng, RngCore};

thread_local! {
    /// The work this thread's batch checks did.
    static WORK: Cell<Work> = Cell::new(Work::default());
}

fn take_work() -> Work {
    WORK.with(|w| w.replace(Work::default()))
}

fn add_work(more: Work) {
    WORK.with(|w| {
        let mut work = w.get();
        work.checks += more.checks;
        work.sets += more.sets;
        w.set(work);
    });
}

/// BLS, with every check counted.
#[derive(Clone, Copy, Debug)]
struct Metered;

fn sets<'a>(checks: &'a [Check<'_, Metered>]) -> Vec<SignatureSet<'a>> {
    checks
        .iter()
        .map(|c| SignatureSet::new(c.message, c.public_key, c.signature))
        .collect()
}

impl SignatureScheme for Metered {
    type PublicKey = PublicKey;
    type Signature = Signature;

    fn public_key_bytes(key: &PublicKey) -> PublicKeyBytes {
        Bls::public_key_bytes(key)
    }

    fn decode_signature(bytes: &[u8]) -> Result<Signature, String> {
        Bls::decode_signature(bytes)
    }

    fn signature_bytes(signature: &Signature) -> SignatureBytes {
        Bls::signature_bytes(signature)
    }

    fn verify(key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
        add_work(Work { checks: 1, sets: 1 });
        Bls::verify(key, message, signature)
    }

    fn find_invalid<R: RngCore + CryptoRng>(checks: &[Check<'_, Self>], rng: &mut R) -> Vec<usize> {
        let mut work = Work::default();
        let invalid = find_invalid_metered(&sets(checks), rng, &mut work);
        add_work(work);
        invalid
    }

    fn verify_all<R: RngCore + CryptoRng>(checks: &[Check<'_, Self>], rng: &mut R) -> bool {
        let mut work = Work::default();
        let verified = verify_signature_sets_metered(&sets(checks), rng, &mut work);
        add_work(work);
        verified
    }

    fn combine(partials: &[Partial<Signature>], threshold: usize) -> Result<Signature, String> {
        Bls::combine(partials, threshold)
    }
}

const SLOT_MS: u64 = 1200;
const GENESIS_MS: u64 = 1_000_000;
const OPERATORS: usize = 4;
const THRESHOLD: usize = 3;

/// Operator 0's core of a cluster of `validators`, and every operator's
/// shares (by operator, then validator).
struct Node {
    core: Core<MinimalEthSpec, Metered>,
    shares: Vec<Vec<SecretShare>>,
    groups: Vec<PublicKeyBytes>,
    now: u64,
    _dir: tempfile::TempDir,
}

fn node(validators: usize) -> Node {
    let mut rng = rand::rngs::OsRng;
    let network = NetworkConfig::devnet(ForkName::Electra, SLOT_MS);
    let gvr = Root::repeat_byte(7);
    let secrets: Vec<SecretKey> = (0..validators)
        .map(|_| SecretKey::random(&mut rng))
        .collect();
    let splits: Vec<_> = secrets
        .iter()
        .map(|s| split(s, THRESHOLD, OPERATORS, &mut rng).expect("split"))
        .collect();
    let keys: Vec<ValidatorKeys<Metered>> = secrets
        .iter()
        .zip(&splits)
        .map(|(s, k)| ValidatorKeys {
            group: s.public_key(),
            shares: k
                .secret_shares
                .iter()
                .map(|x| x.public_share().key)
                .collect(),
            fee_recipient: None,
            registration: None,
        })
        .collect();
    let node_keys: Vec<NodeKey> = (0..OPERATORS).map(|_| NodeKey::generate()).collect();
    let publics: Vec<[u8; 33]> = node_keys.iter().map(NodeKey::public_key).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let slashing = SlashingDb::open(&dir.path().join("slashing.jsonl"), gvr).expect("db");
    let mut core = Core::new(
        CoreConfig {
            me: phalanx_consensus::OperatorIndex(0),
            threshold: THRESHOLD,
            validators: keys,
            network,
            genesis_time_ms: GENESIS_MS,
            genesis_validators_root: gvr,
            seed: [9; 32],
            graffiti: None,
            builder_api: false,
            defects: Defects::default(),
            lock_hash: [0x19; 32],
        },
        Box::new(NodeSigner(node_keys[0].clone())),
        Box::new(LockVerifier::new(publics)),
        slashing,
    )
    .expect("core");
    let now = GENESIS_MS + SLOT_MS + 10;
    core.handle(now, Event::Tick);
    Node {
        core,
        shares: (0..OPERATORS)
            .map(|op| splits.iter().map(|k| k.secret_shares[op].clone()).collect())
            .collect(),
        groups: secrets
            .iter()
            .map(|s| PublicKeyBytes::from(s.public_key().to_bytes()))
            .collect(),
        now,
        _dir: dir,
    }
}

impl Node {
    /// Operator `from`'s attester partial of validator `v` at slot 1 over
    /// `root`, signed over `signed` by the operator's share.
    fn partial(&self, from: usize, v: usize, root: Root, signed: Root) -> PartialMessage {
        PartialMessage {
            duty: Duty::new(Slot(1), DutyType::Attester),
            validator: self.groups[v].to_vec(),
            signing_root: root.0,
            signature: self.shares[from][v]
                .sign(signed.as_slice())
                .signature
                .to_bytes()
                .to_vec(),
            block_root: None,
            registration: None,
        }
    }

    /// Gives the core epoch 0's duties: `attesters` and `proposers` as
    /// (validator, slot), `sync` the validators in the sync committee.
    fn give_epoch_0_duties(
        &mut self,
        attesters: &[(usize, u64)],
        proposers: &[(usize, u64)],
        sync: &[usize],
    ) {
        use phalanx_eth::api::{AttesterDuty, ProposerDuty, SyncDuty};
        use phalanx_eth::{CommitteeIndex, Epoch, ValidatorIndex};
        let attester = attesters
            .iter()
            .map(|&(v, slot)| AttesterDuty {
                pubkey: self.groups[v],
                validator_index: ValidatorIndex(v as u64),
                committee_index: CommitteeIndex(0),
                committee_length: 4,
                committees_at_slot: 1,
                validator_committee_index: v as u64,
                slot: Slot(slot),
            })
            .collect();
        let sync = sync
            .iter()
            .map(|&v| SyncDuty {
                pubkey: self.groups[v],
                validator_index: ValidatorIndex(v as u64),
                validator_sync_committee_indices: vec![0],
            })
            .collect();
        let proposers = proposers
            .iter()
            .map(|&(v, slot)| ProposerDuty {
                pubkey: self.groups[v],
                validator_index: ValidatorIndex(v as u64),
                slot: Slot(slot),
            })
            .collect();
        let epoch = Epoch(0);
        self.core.handle(
            self.now,
            Event::Duties {
                epoch,
                attester,
                sync,
            },
        );
        let result = Ok(proposers);
        self.core
            .handle(self.now, Event::Proposers { epoch, result });
    }

    fn receive(&mut self, from: usize, partials: Vec<PartialMessage>) -> Vec<String> {
        let actions = self.core.handle(
            self.now,
            Event::Partials {
                from: phalanx_consensus::OperatorIndex(from as u32),
                partials,
            },
        );
        actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Dropped { reason, .. } => {
                    assert!(reason.is_fault(), "{reason}");
                    Some(reason.label().to_string())
                }
                _ => None,
            })
            .collect()
    }
}

/// A distinct root per validator.
fn root(v: usize) -> Root {
    let mut bytes = [0xa0; 32];
    bytes[..8].copy_from_slice(&(v as u64).to_le_bytes());
    Root::from(bytes)
}

#[test]
fn a_peer_batch_where_every_partial_is_bad_costs_one_check() {
    let validators = 32;
    let mut node = node(validators);
    // Each partial claims a root of the sender's choice and signs another.
    let batch: Vec<PartialMessage> = (0..validators)
        .map(|v| node.partial(1, v, root(v), Root::repeat_byte(0xee)))
        .collect();
    take_work();
    let dropped = node.receive(1, batch);
    let work = take_work();
    // Bisection would check every node of the tree: n·(log2 n + 1) sets.
    assert!(
        work.sets <= validators,
        "{} sets checked for a batch of {validators}: {work:?}",
        work.sets
    );
    assert_eq!(dropped, vec!["invalid_batch".to_string()]);

    // An honest batch costs one check too, and counts.
    let batch: Vec<PartialMessage> = (0..validators)
        .map(|v| node.partial(2, v, root(v), root(v)))
        .collect();
    let dropped = node.receive(2, batch);
    let work = take_work();
    assert!(dropped.is_empty(), "{dropped:?}");
    assert_eq!(
        work,
        Work {
            checks: 1,
            sets: validators
        }
    );
}

#[test]
fn a_batch_beyond_what_the_duties_carry_is_refused_unread() {
    // Four validators, one attester duty each per epoch, and a batch
    // spans at most three epochs: twelve attester partials at most.
    let mut node = node(4);
    let batch: Vec<PartialMessage> = (0..13)
        .map(|i| node.partial(1, i % 4, root(i), root(i)))
        .collect();
    take_work();
    assert_eq!(node.receive(1, batch), vec!["batch_too_large".to_string()]);
    assert_eq!(take_work(), Work::default());
    assert_eq!(node.core.stored_partials(), 0);
}

#[test]
fn a_sender_whose_batch_fails_is_not_verified_again_until_its_budget_is_back() {
    let mut node = node(4);
    let bad: Vec<PartialMessage> = (0..4)
        .map(|v| node.partial(1, v, root(v), Root::repeat_byte(0xee)))
        .collect();
    take_work();
    assert_eq!(
        node.receive(1, bad.clone()),
        vec!["invalid_batch".to_string()]
    );
    assert_eq!(take_work().sets, 4);
    // The failed batch spent the sender's whole allowance: in the same
    // slot nothing more of it is verified, bad or good.
    for _ in 0..5 {
        assert_eq!(
            node.receive(1, bad.clone()),
            vec!["over_budget".to_string()]
        );
    }
    let good: Vec<PartialMessage> = (0..4)
        .map(|v| node.partial(1, v, root(v), root(v)))
        .collect();
    assert_eq!(
        node.receive(1, good.clone()),
        vec!["over_budget".to_string()]
    );
    assert_eq!(take_work(), Work::default());
    // Other senders have their own budgets.
    assert_eq!(
        node.receive(2, bad[..1].to_vec()),
        vec!["invalid_batch".to_string()]
    );
    // A slot later a slot's share of the budget is back (on the minimal
    // preset, 4 validators: 16 partials and 14 distinct roots a slot).
    node.now += SLOT_MS;
    node.core.handle(node.now, Event::Tick);
    take_work();
    assert!(node.receive(1, good).is_empty());
    assert_eq!(take_work().sets, 4);
}

#[test]
fn distinct_roots_are_budgeted_per_sender() {
    // Valid partials over a new root each (the sender holds its shares),
    // one per duty and validator as the store allows, over every slot of
    // the window and duty types whose root this node cannot check before
    // it decides: each distinct root costs a hash to the curve and a
    // Miller loop. On the minimal preset four validators have 2 × 112
    // distinct roots in their budget.
    let mut node = node(4);
    take_work();
    let (mut verified, mut over, mut sent) = (0, 0, 0);
    for slot in 1..16u64 {
        let kinds = [
            DutyType::Attester,
            DutyType::Aggregator,
            DutyType::Proposer,
            DutyType::SyncContribution,
            DutyType::SyncContribution,
            DutyType::SyncContribution,
            DutyType::SyncContribution,
        ];
        for kind in kinds {
            let batch: Vec<PartialMessage> = (0..4)
                .map(|v| {
                    sent += 1;
                    let r = root(sent);
                    let mut partial = node.partial(1, v, r, r);
                    partial.duty = Duty::new(Slot(slot), kind);
                    partial
                })
                .collect();
            for label in node.receive(1, batch) {
                assert_eq!(label, "over_budget");
                over += 1;
            }
            verified += take_work().sets;
        }
    }
    assert_eq!(sent, 15 * 7 * 4);
    assert!(verified <= 2 * 112, "{verified} roots verified in one slot");
    assert!(over > 0);
}

#[test]
fn a_sender_keeps_one_root_per_duty_and_validator() {
    let mut node = node(4);
    let roots = 24;
    let mut dropped = Vec::new();
    take_work();
    for i in 0..roots {
        // Each signed validly over a root of the sender's choice, for a
        // duty this node has not decided.
        dropped.extend(node.receive(1, vec![node.partial(1, 0, root(i), root(i))]));
    }
    assert_eq!(node.core.stored_partials(), 1);
    // Only the first was verified: the others were refused before.
    assert_eq!(take_work().sets, 1);
    assert_eq!(dropped, vec!["too_many_roots".to_string(); roots - 1]);
}

#[test]
fn a_peer_has_a_budget_of_consensus_messages() {
    use phalanx_consensus::{
        Kind, Message, MessageSignature, Round, SignedMessage, ValueHash, Wire,
    };
    let mut node = node(4);
    let from = phalanx_consensus::OperatorIndex(1);
    let mut labels = std::collections::BTreeMap::<String, usize>::new();
    // Prepares with signatures that check out under nothing: each costs a
    // signature check until the peer's budget (an epoch of 512 messages a
    // slot on the minimal preset's 8 slots) is spent.
    let sent = 8 * 512 + 100;
    for i in 0..sent {
        let message = Wire::<Duty, phalanx_node::value::DutyValue>::Prepare(SignedMessage {
            message: Message {
                instance: Duty::new(Slot(1), DutyType::Attester),
                round: Round(1 + (i % 60) as u64),
                sender: from,
                kind: Kind::Prepare(ValueHash([i as u8; 32])),
            },
            signature: MessageSignature(vec![0; 65]),
        });
        for action in node
            .core
            .handle(node.now, Event::Consensus { from, message })
        {
            if let Action::Dropped { reason, .. } = action {
                *labels.entry(reason.label().to_string()).or_default() += 1;
            }
        }
    }
    assert_eq!(labels.get("over_budget").copied(), Some(100), "{labels:?}");
}

#[test]
fn partials_of_duties_the_validator_does_not_have_are_not_kept() {
    let mut node = node(4);
    // Epoch 0 (minimal preset: slots 0–7): validator 0 attests at slot 1,
    // validator 1 at slot 2, validator 2 proposes at slot 2, validator 3
    // is in the sync committee; epoch 1's duties are not known yet.
    node.give_epoch_0_duties(&[(0, 1), (1, 2)], &[(2, 2)], &[3]);

    let mut sent = 0;
    let mut partial = |node: &Node, kind: DutyType, slot: u64, v: usize| {
        sent += 1;
        let r = root(sent);
        let mut partial = node.partial(1, v, r, r);
        partial.duty = Duty::new(Slot(slot), kind);
        partial
    };
    let scheduled = vec![
        partial(&node, DutyType::Attester, 1, 0),
        partial(&node, DutyType::Aggregator, 2, 1),
        partial(&node, DutyType::Proposer, 2, 2),
        partial(&node, DutyType::SyncContribution, 3, 3),
        // Epoch 1: not known, so not refused.
        partial(&node, DutyType::Attester, 9, 2),
    ];
    let unscheduled = vec![
        partial(&node, DutyType::Attester, 1, 1),
        partial(&node, DutyType::Aggregator, 3, 0),
        partial(&node, DutyType::Proposer, 2, 0),
        partial(&node, DutyType::Proposer, 3, 2),
        partial(&node, DutyType::SyncContribution, 3, 0),
    ];
    // Beyond the epoch after the next, where no honest node signs.
    let beyond = vec![partial(&node, DutyType::Attester, 16, 0)];
    let count = scheduled.len();
    let mut batch = scheduled;
    batch.extend(unscheduled);
    batch.extend(beyond);
    let actions = node.core.handle(
        node.now,
        Event::Partials {
            from: phalanx_consensus::OperatorIndex(1),
            partials: batch,
        },
    );
    let mut labels = std::collections::BTreeMap::<String, (usize, bool)>::new();
    for action in actions {
        if let Action::Dropped { reason, .. } = action {
            let entry = labels
                .entry(reason.label().to_string())
                .or_insert((0, reason.is_fault()));
            entry.0 += 1;
        }
    }
    assert_eq!(
        labels,
        [
            ("unscheduled".to_string(), (5, false)),
            ("duty_out_of_window".to_string(), (1, true)),
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(node.core.stored_partials(), count);
}

#[test]
fn consensus_on_duties_the_cluster_does_not_have_is_refused_unread() {
    use phalanx_consensus::{
        Kind, Message, MessageSignature, Round, SignedMessage, ValueHash, Wire,
    };
    use phalanx_node::value::DutyValue;
    let mut node = node(4);
    // Epoch 0: the cluster proposes at slot 2 only and attests at slot 1
    // only; it has no sync-committee member.
    node.give_epoch_0_duties(&[(0, 1)], &[(1, 2)], &[]);
    let from = phalanx_consensus::OperatorIndex(1);
    let mut label = |kind: DutyType, slot: u64| {
        let value = DutyValue(vec![7; 100_000]);
        let message = Wire::Proposal {
            proposal: SignedMessage {
                message: Message {
                    instance: Duty::new(Slot(slot), kind),
                    round: Round(1),
                    sender: from,
                    kind: Kind::Proposal(ValueHash([1; 32])),
                },
                signature: MessageSignature(vec![0; 65]),
            },
            value,
            justification: Default::default(),
        };
        node.core
            .handle(node.now, Event::Consensus { from, message })
            .into_iter()
            .find_map(|action| match action {
                Action::Dropped { reason, .. } => {
                    Some((reason.label().to_string(), reason.is_fault()))
                }
                _ => None,
            })
    };
    let unscheduled = Some(("unscheduled".to_string(), false));
    assert_eq!(label(DutyType::Proposer, 1), unscheduled);
    assert_eq!(label(DutyType::Attester, 2), unscheduled);
    assert_eq!(label(DutyType::Aggregator, 2), unscheduled);
    assert_eq!(label(DutyType::SyncContribution, 1), unscheduled);
    // The cluster's own duties go on to the engine (which checks the
    // signature), and so do those of epochs not known yet.
    assert_ne!(label(DutyType::Proposer, 2), unscheduled);
    assert_ne!(label(DutyType::Attester, 1), unscheduled);
    assert_ne!(label(DutyType::Attester, 8), unscheduled);
}
