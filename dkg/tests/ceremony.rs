//! The key-generation ceremony among in-memory operators: every honest
//! outcome is identical, keys work, and each kind of misbehaviour is named
//! identically by every honest operator with no lock written anywhere.

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use phalanx_crypto::threshold::combine;
use phalanx_dkg::ceremony::{Abort, Action, Body, Ceremony, Envelope, Outcome};
use phalanx_dkg::definition::{BuilderSpec, NetworkSpec, ValidatorSpec};
use phalanx_dkg::ClusterDefinition;
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::ExecutionAddress;
use phalanx_p2p::NodeKey;

fn setup(n: usize, t: u32, validators: usize) -> (ClusterDefinition, Vec<NodeKey>) {
    let keys: Vec<NodeKey> = (0..n).map(|_| NodeKey::generate()).collect();
    let enrs: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| k.enr(1, Some(Ipv4Addr::LOCALHOST), Some(4000 + i as u16), None))
        .collect();
    let network = NetworkConfig::built_in("hoodi").expect("hoodi");
    let definition = ClusterDefinition::new(
        "ceremony test",
        NetworkSpec::of(&network),
        t,
        &enrs,
        (0..validators)
            .map(|_| {
                ValidatorSpec::standard(
                    ExecutionAddress::repeat_byte(1),
                    ExecutionAddress::repeat_byte(2),
                )
            })
            .collect(),
        BuilderSpec {
            gas_limit: 36_000_000,
            timestamp: 1_742_213_400,
        },
        "2026-11-23T00:00:00Z",
    );
    (definition, keys)
}

/// Re-signs an envelope as its sender (the test holds every node key).
fn resign(definition: &ClusterDefinition, keys: &[NodeKey], body: Body, sender: u32) -> Envelope {
    // Build a throwaway ceremony for the sender just to sign: the signing
    // bytes are the same for everyone.
    let mut rng = rand::rngs::OsRng;
    let ceremony = Ceremony::new(definition.clone(), keys[sender as usize].clone(), &mut rng)
        .expect("ceremony");
    ceremony.sign_for_tests(body)
}

type Tamper<'a> = Box<dyn FnMut(u32, u32, Envelope) -> Vec<Envelope> + 'a>;

/// Runs all operators to the end; `tamper(from, to, envelope)` may change
/// or multiply what `from` sends to `to`.
fn run(
    definition: &ClusterDefinition,
    keys: &[NodeKey],
    mut tamper: Tamper<'_>,
) -> Vec<Option<Result<Outcome, Abort>>> {
    let n = keys.len() as u32;
    let mut rng = rand::rngs::OsRng;
    let mut ceremonies: Vec<Ceremony> = keys
        .iter()
        .map(|k| Ceremony::new(definition.clone(), k.clone(), &mut rng).expect("ceremony"))
        .collect();
    let mut results: Vec<Option<Result<Outcome, Abort>>> = (0..n).map(|_| None).collect();
    let mut queue: VecDeque<(u32, u32, Envelope)> = VecDeque::new();
    let mut handle = |from: u32,
                      actions: Vec<Action>,
                      queue: &mut VecDeque<_>,
                      results: &mut Vec<Option<Result<Outcome, Abort>>>| {
        for action in actions {
            match action {
                Action::Broadcast(envelope) => {
                    for to in (0..n).filter(|&to| to != from) {
                        for e in tamper(from, to, envelope.clone()) {
                            queue.push_back((from, to, e));
                        }
                    }
                }
                Action::Send(to, envelope) => {
                    for e in tamper(from, to, envelope) {
                        queue.push_back((from, to, e));
                    }
                }
                Action::Done(outcome) => results[from as usize] = Some(Ok(*outcome)),
                Action::Abort(abort) => results[from as usize] = Some(Err(abort)),
            }
        }
    };
    for (i, ceremony) in ceremonies.iter_mut().enumerate() {
        let actions = ceremony.start(&mut rng).expect("starts");
        handle(i as u32, actions, &mut queue, &mut results);
    }
    while let Some((_, to, envelope)) = queue.pop_front() {
        let actions = ceremonies[to as usize].receive(envelope);
        handle(to, actions, &mut queue, &mut results);
    }
    results
}

fn honest(definition: &ClusterDefinition, keys: &[NodeKey]) {
    let results = run(definition, keys, Box::new(|_, _, e| vec![e]));
    let outcomes: Vec<Outcome> = results
        .into_iter()
        .map(|r| {
            r.expect("every operator finished")
                .expect("ceremony succeeds")
        })
        .collect();
    let first = serde_json::to_vec(&outcomes[0].lock).expect("json");
    for outcome in &outcomes {
        assert_eq!(
            serde_json::to_vec(&outcome.lock).expect("json"),
            first,
            "identical locks"
        );
        outcome.lock.verify().expect("lock verifies");
    }
    let t = definition.threshold as usize;
    for (v, validator) in outcomes[0].lock.validators.iter().enumerate() {
        let message = b"a duty";
        let partials: Vec<_> = outcomes
            .iter()
            .rev()
            .take(t)
            .map(|o| o.shares[v].sign(message))
            .collect();
        assert!(combine(&partials, t)
            .expect("combines")
            .verify(&validator.public_key, message));
        for (i, outcome) in outcomes.iter().enumerate() {
            assert_eq!(
                outcome.shares[v].public_share().key,
                validator.public_shares[i]
            );
        }
    }
}

#[test]
fn honest_ceremonies_agree_on_one_working_lock() {
    for (n, t, v) in [(4, 3, 1), (4, 3, 10), (7, 5, 3)] {
        let (definition, keys) = setup(n, t, v);
        honest(&definition, &keys);
    }
}

/// Every honest operator aborts naming exactly `culprit`.
fn assert_named(results: Vec<Option<Result<Outcome, Abort>>>, culprit: u32) {
    for (i, result) in results.into_iter().enumerate() {
        if i as u32 == culprit {
            assert!(
                !matches!(result, Some(Ok(_))),
                "the culprit wrote no lock either"
            );
            continue;
        }
        match result.unwrap_or_else(|| panic!("honest operator {i} did not finish")) {
            Ok(_) => panic!("operator {i} wrote a lock despite misbehaviour"),
            Err(abort) => assert_eq!(
                abort.culprits,
                vec![culprit],
                "operator {i}: {}",
                abort.reason
            ),
        }
    }
}

#[test]
fn a_dealer_with_a_bad_proof_is_named() {
    let (definition, keys) = setup(4, 3, 2);
    let results = run(
        &definition,
        &keys,
        Box::new(|from, _, e| {
            if from == 1 {
                if let Body::Deal {
                    commitments,
                    mut proofs,
                } = e.body.clone()
                {
                    proofs[1].z[31] ^= 1;
                    return vec![resign(
                        &definition,
                        &keys,
                        Body::Deal {
                            commitments,
                            proofs,
                        },
                        1,
                    )];
                }
            }
            vec![e]
        }),
    );
    assert_named(results, 1);
}

#[test]
fn a_dealer_with_different_commitments_for_different_operators_is_named() {
    let (definition, keys) = setup(4, 3, 2);
    let other_deal = {
        let mut rng = rand::rngs::OsRng;
        let mut twin =
            Ceremony::new(definition.clone(), keys[2].clone(), &mut rng).expect("ceremony");
        match twin.start(&mut rng).expect("deals").remove(0) {
            Action::Broadcast(e) => e,
            _ => unreachable!("the first action is the deal"),
        }
    };
    let results = run(
        &definition,
        &keys,
        Box::new(|from, to, e| {
            if from == 2 && to == 3 && matches!(e.body, Body::Deal { .. }) {
                return vec![other_deal.clone()];
            }
            vec![e]
        }),
    );
    assert_named(results, 2);
}

#[test]
fn a_dealer_re_dealing_with_fresh_randomness_is_named() {
    let (definition, keys) = setup(4, 3, 1);
    let second_deal = {
        let mut rng = rand::rngs::OsRng;
        let mut restarted =
            Ceremony::new(definition.clone(), keys[0].clone(), &mut rng).expect("ceremony");
        match restarted.start(&mut rng).expect("deals").remove(0) {
            Action::Broadcast(e) => e,
            _ => unreachable!("the first action is the deal"),
        }
    };
    let results = run(
        &definition,
        &keys,
        Box::new(|from, _, e| {
            if from == 0 && matches!(e.body, Body::Deal { .. }) {
                // The first deal, then the same dealer deals again after a "resume".
                return vec![e, second_deal.clone()];
            }
            vec![e]
        }),
    );
    assert_named(results, 0);
}

#[test]
fn a_dealer_sending_a_bad_share_is_named_and_a_false_accuser_too() {
    let (definition, keys) = setup(4, 3, 2);
    // Dealer 3 sends operator 1 shares sealed from garbage.
    let results = run(
        &definition,
        &keys,
        Box::new(|from, to, e| {
            if from == 3 && to == 1 {
                if let Body::Shares { recipient, .. } = e.body {
                    let sealed = phalanx_p2p::seal::seal(
                        &keys[1].public_key(),
                        &[7u8; 64],
                        b"wrong context",
                    )
                    .expect("seals");
                    return vec![resign(
                        &definition,
                        &keys,
                        Body::Shares { recipient, sealed },
                        3,
                    )];
                }
            }
            vec![e]
        }),
    );
    assert_named(results, 3);

    // Operator 2 accuses dealer 0 although its shares were good.
    let (definition, keys) = setup(4, 3, 2);
    let mut stored_shares: Option<Envelope> = None;
    let results = run(
        &definition,
        &keys,
        Box::new(|from, to, e| {
            if from == 0 && to == 2 && matches!(e.body, Body::Shares { .. }) {
                stored_shares = Some(e.clone());
            }
            if from == 2 {
                if let Body::Complaints { .. } = e.body {
                    let shares = stored_shares
                        .clone()
                        .expect("dealer 0's shares arrived first");
                    let Body::Shares { sealed, .. } = &shares.body else {
                        unreachable!("shares")
                    };
                    let disclosure =
                        phalanx_p2p::seal::disclose(&keys[2], sealed).expect("discloses");
                    let complaint = phalanx_dkg::ceremony::Complaint {
                        dealer: 0,
                        shares: Box::new(shares),
                        disclosure,
                    };
                    return vec![resign(
                        &definition,
                        &keys,
                        Body::Complaints {
                            complaints: vec![complaint],
                        },
                        2,
                    )];
                }
            }
            vec![e]
        }),
    );
    assert_named(results, 2);
}

#[test]
fn an_operator_sending_a_bad_partial_signature_is_named() {
    let (definition, keys) = setup(4, 3, 2);
    let results = run(
        &definition,
        &keys,
        Box::new(|from, _, e| {
            if from == 1 {
                if let Body::Partials {
                    mut deposits,
                    registrations,
                } = e.body.clone()
                {
                    // Sign something else with a valid-looking signature.
                    deposits[1] = registrations[0];
                    return vec![resign(
                        &definition,
                        &keys,
                        Body::Partials {
                            deposits,
                            registrations,
                        },
                        1,
                    )];
                }
            }
            vec![e]
        }),
    );
    assert_named(results, 1);
}

/// The group secret never exists: the only code that can rebuild a secret
/// from shares (`recover_secret_key`, used by `phalanx combine`) is not
/// reachable from the ceremony or its runner.
#[test]
fn the_ceremony_never_rebuilds_a_secret() {
    for (name, source) in [
        ("ceremony/mod.rs", include_str!("../src/ceremony/mod.rs")),
        (
            "ceremony/message.rs",
            include_str!("../src/ceremony/message.rs"),
        ),
        (
            "ceremony/dealing.rs",
            include_str!("../src/ceremony/dealing.rs"),
        ),
        (
            "ceremony/complaints.rs",
            include_str!("../src/ceremony/complaints.rs"),
        ),
        (
            "ceremony/signatures.rs",
            include_str!("../src/ceremony/signatures.rs"),
        ),
        ("runner.rs", include_str!("../src/runner.rs")),
    ] {
        for forbidden in ["recover_secret_key", "combine::combine", "crate::combine"] {
            assert!(!source.contains(forbidden), "{name} mentions {forbidden}");
        }
    }
}
