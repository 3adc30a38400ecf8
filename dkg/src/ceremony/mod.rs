//! The key-generation ceremony as a state machine (sans-IO): operator
//! messages in, messages to broadcast or send out, and finally a lock and
//! this operator's key shares — or an abort that names who misbehaved.
//!
//! Phases, each waiting for every operator:
//!
//! 1. **Deal.** Each operator deals, for every validator, a random
//!    polynomial: Feldman commitments and a proof of knowledge of its
//!    constant term bound to the definition hash, the dealer and the
//!    validator (FROST key generation). Broadcast.
//! 2. **Echo.** Each operator broadcasts the hash of every dealer's deal as
//!    it received it. Point-to-point links are not a broadcast channel: a
//!    dealer whose deals differ between operators is caught here, before
//!    anyone uses its commitments.
//! 3. **Shares.** Each dealer seals to each operator its shares of every
//!    validator (to the operator's node key) and signs the message.
//! 4. **Complaints.** Each operator checks its shares against the
//!    dealers' commitments and broadcasts its complaints — each with the
//!    dealer-signed message and a verifiable disclosure of its key, so every
//!    operator can open it and judge who lied. Any complaint aborts,
//!    naming the same culprit everywhere.
//! 5. **Partials.** Each operator's key share is the sum of its shares; the
//!    group keys and public shares follow from the commitments. Operators
//!    broadcast partial signatures of every deposit and builder
//!    registration, which are verified against the sender's public share
//!    and combined.
//! 6. **Lock.** Operators sign the lock hash with their node key and with
//!    every share; the lock is complete with all signatures.
//!
//! Every message is signed by its sender's node key and bound to the
//! definition hash. A second, different message of one kind from one
//! operator is equivocation and aborts the ceremony, naming it. The group
//! secret is never computed: no code here adds dealers' constant terms or
//! interpolates secret shares.
//!
//! The parts: `message` is what operators send (signed envelopes);
//! `dealing` checks deals and echoes and sends the shares (phases 1 to
//! 3); `complaints` checks the shares received, judges complaints and
//! forms the keys (phases 4 and 5); `signatures` combines the partial
//! signatures and assembles the lock (phase 6).

mod complaints;
mod dealing;
mod message;
mod signatures;

use std::collections::BTreeMap;

use phalanx_crypto::dkg::{Commitments, Dealing, KnowledgeProof};
use phalanx_crypto::threshold::{PublicShare, SecretShare};
use phalanx_crypto::SecretKey;
use phalanx_p2p::{Enr, NodeKey};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::definition::ClusterDefinition;
use crate::error::DkgError;
use crate::lock::{ClusterLock, DistributedValidator};

use message::signing_bytes;
pub use message::{max_envelope_size, Body, Complaint, Envelope};

/// Why a ceremony stopped without a lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abort {
    /// The operators found to have misbehaved (indices).
    pub culprits: Vec<u32>,
    /// What happened.
    pub reason: String,
}

/// A ceremony's saved state (see [`Ceremony::snapshot`]).
#[derive(Clone, Serialize, Deserialize)]
pub struct Snapshot {
    definition_hash: [u8; 32],
    dealings: Vec<String>,
    received: Vec<Envelope>,
    sent_shares: Vec<Envelope>,
    sent_phase: usize,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        for dealing in &mut self.dealings {
            zeroize::Zeroize::zeroize(dealing);
        }
    }
}

/// A finished ceremony: the lock and this operator's shares.
pub struct Outcome {
    /// The verified lock, identical at every operator.
    pub lock: ClusterLock,
    /// This operator's share of each validator.
    pub shares: Vec<SecretShare>,
}

/// What the driver must do.
pub enum Action {
    /// Send to every other operator.
    Broadcast(Envelope),
    /// Send to one operator.
    Send(u32, Envelope),
    /// The ceremony succeeded.
    Done(Box<Outcome>),
    /// The ceremony stopped.
    Abort(Abort),
}

/// One operator's ceremony.
pub struct Ceremony {
    definition: ClusterDefinition,
    definition_hash: [u8; 32],
    enrs: Vec<Enr>,
    me: u32,
    node_key: NodeKey,
    dealings: Vec<Dealing>,
    received: BTreeMap<(usize, u32), Envelope>,
    /// Shares sealed to other operators (the only messages not broadcast).
    sent_shares: BTreeMap<u32, Envelope>,
    /// The shares each dealer gave this operator, once checked.
    verified_shares: BTreeMap<u32, Vec<SecretKey>>,
    sent_phase: usize,
    shares: Option<Vec<SecretShare>>,
    public: Option<Vec<(phalanx_crypto::PublicKey, Vec<PublicShare>)>>,
    validators: Option<Vec<DistributedValidator>>,
    finished: bool,
}

impl Ceremony {
    /// Prepares this operator's part; `start` then deals.
    pub fn new<R: RngCore + CryptoRng>(
        definition: ClusterDefinition,
        node_key: NodeKey,
        rng: &mut R,
    ) -> Result<Ceremony, DkgError> {
        let definition_hash = definition.validate()?;
        let enrs = definition.enrs()?;
        let me = enrs
            .iter()
            .position(|e| e.public_key() == node_key.public_key())
            .ok_or_else(|| {
                DkgError::Input(format!(
                    "this node key ({}) is not one of the definition's operators",
                    node_key.peer_id()
                ))
            })? as u32;
        let t = definition.threshold as usize;
        let dealings = (0..definition.validators.len())
            .map(|_| Dealing::random(t, rng))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Ceremony {
            definition,
            definition_hash,
            enrs,
            me,
            node_key,
            dealings,
            received: BTreeMap::new(),
            sent_shares: BTreeMap::new(),
            verified_shares: BTreeMap::new(),
            sent_phase: 0,
            shares: None,
            public: None,
            validators: None,
            finished: false,
        })
    }

    /// Everything needed to resume after a restart: the dealings (secret:
    /// persist only encrypted) and every message sent and received.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            definition_hash: self.definition_hash,
            dealings: self
                .dealings
                .iter()
                .map(|d| hex::encode(d.to_secret_bytes().as_slice()))
                .collect(),
            received: self.received.values().cloned().collect(),
            sent_shares: self.sent_shares.values().cloned().collect(),
            sent_phase: self.sent_phase,
        }
    }

    /// Resumes from a snapshot: the same dealings, the same messages. The
    /// actions re-send this operator's own messages (byte-identical, so the
    /// others take them as duplicates) and continue where it stopped.
    pub fn restore(
        definition: ClusterDefinition,
        node_key: NodeKey,
        mut snapshot: Snapshot,
    ) -> Result<(Ceremony, Vec<Action>), DkgError> {
        let mut rng = rand::rngs::OsRng;
        let mut ceremony = Ceremony::new(definition, node_key, &mut rng)?;
        if snapshot.definition_hash != ceremony.definition_hash {
            return Err(DkgError::Input(
                "the saved ceremony state belongs to another cluster definition".into(),
            ));
        }
        ceremony.dealings = snapshot
            .dealings
            .iter()
            .map(|h| {
                let bytes = zeroize::Zeroizing::new(
                    hex::decode(h).map_err(|_| DkgError::Input("corrupt ceremony state".into()))?,
                );
                Dealing::from_secret_bytes(&bytes).map_err(DkgError::from)
            })
            .collect::<Result<Vec<_>, _>>()?;
        for envelope in std::mem::take(&mut snapshot.received) {
            ceremony
                .received
                .insert((envelope.body.phase(), envelope.sender), envelope);
        }
        for envelope in std::mem::take(&mut snapshot.sent_shares) {
            if let Body::Shares { recipient, .. } = envelope.body {
                ceremony.sent_shares.insert(recipient, envelope);
            }
        }
        ceremony.sent_phase = snapshot.sent_phase;
        if ceremony.sent_phase >= 5 {
            ceremony.form_keys()?;
        }
        if ceremony.sent_phase >= 6 {
            let validators = ceremony
                .build_validators()
                .map_err(|(_, reason)| DkgError::Input(reason))?;
            ceremony.validators = Some(validators);
        }
        let mut actions = ceremony.own_messages(None);
        actions.extend(ceremony.progress());
        Ok((ceremony, actions))
    }

    /// This operator's messages so far, for everyone or for one operator
    /// that asks for them again.
    pub fn own_messages(&self, to: Option<u32>) -> Vec<Action> {
        let mut actions = Vec::new();
        for ((phase, sender), envelope) in &self.received {
            if *sender == self.me && *phase != 2 {
                actions.push(match to {
                    Some(to) => Action::Send(to, envelope.clone()),
                    None => Action::Broadcast(envelope.clone()),
                });
            }
        }
        for (recipient, envelope) in &self.sent_shares {
            if to.is_none_or(|to| to == *recipient) {
                actions.push(Action::Send(*recipient, envelope.clone()));
            }
        }
        actions
    }

    /// The phase this operator is waiting in, as `(number, of, name)`.
    pub fn phase(&self) -> (usize, usize, &'static str) {
        let names = [
            "deal",
            "echo",
            "shares",
            "complaints",
            "partial signatures",
            "lock signatures",
        ];
        let index = self.sent_phase.clamp(1, names.len()) - 1;
        (index + 1, names.len(), names[index])
    }

    /// This operator's index.
    pub fn me(&self) -> u32 {
        self.me
    }

    fn n(&self) -> usize {
        self.enrs.len()
    }

    /// Signs a body as this operator: for tests that play a misbehaving operator.
    #[doc(hidden)]
    pub fn sign_for_tests(&self, body: Body) -> Envelope {
        self.sign(body)
    }

    fn sign(&self, body: Body) -> Envelope {
        let signature = self
            .node_key
            .sign(&signing_bytes(&self.definition_hash, self.me, &body));
        Envelope {
            sender: self.me,
            body,
            signature,
        }
    }

    fn context(&self, dealer: u32, validator: usize) -> Vec<u8> {
        let mut context = self.definition_hash.to_vec();
        context.extend_from_slice(&dealer.to_be_bytes());
        context.extend_from_slice(&(validator as u64).to_be_bytes());
        context
    }

    fn seal_context(&self, dealer: u32, recipient: u32) -> Vec<u8> {
        let mut context = b"shares".to_vec();
        context.extend_from_slice(&self.definition_hash);
        context.extend_from_slice(&dealer.to_be_bytes());
        context.extend_from_slice(&recipient.to_be_bytes());
        context
    }

    /// Deals: the first broadcast.
    pub fn start<R: RngCore + CryptoRng>(&mut self, rng: &mut R) -> Result<Vec<Action>, DkgError> {
        let commitments = self
            .dealings
            .iter()
            .map(Dealing::commitments)
            .collect::<Result<Vec<_>, _>>()?;
        let proofs = self
            .dealings
            .iter()
            .enumerate()
            .map(|(v, d)| d.prove(&self.context(self.me, v), rng))
            .collect::<Result<Vec<_>, _>>()?;
        let deal = self.sign(Body::Deal {
            commitments,
            proofs,
        });
        self.sent_phase = 1;
        let mut actions = vec![Action::Broadcast(deal.clone())];
        actions.extend(self.receive(deal));
        Ok(actions)
    }

    /// Processes a message from an operator (or this one's own).
    pub fn receive(&mut self, envelope: Envelope) -> Vec<Action> {
        if self.finished {
            return Vec::new();
        }
        let sender = envelope.sender;
        let Some(enr) = self.enrs.get(sender as usize) else {
            return Vec::new(); // not an operator: nothing to name
        };
        let bytes = signing_bytes(&self.definition_hash, sender, &envelope.body);
        if !phalanx_p2p::verify(&enr.public_key(), &bytes, &envelope.signature) {
            tracing::warn!(sender, "dropped a ceremony message with a bad signature");
            return Vec::new();
        }
        if let Body::Shares { recipient, .. } = &envelope.body {
            if *recipient != self.me {
                return Vec::new();
            }
        }
        let key = (envelope.body.phase(), sender);
        if let Some(previous) = self.received.get(&key) {
            if *previous == envelope {
                return Vec::new();
            }
            let kind = envelope.body.name();
            return self.abort(
                vec![sender],
                format!("operator {sender} sent two different {kind} messages"),
            );
        }
        self.received.insert(key, envelope);
        self.progress()
    }

    fn abort(&mut self, culprits: Vec<u32>, reason: String) -> Vec<Action> {
        self.finished = true;
        tracing::error!(?culprits, %reason, "key-generation ceremony aborted");
        vec![Action::Abort(Abort { culprits, reason })]
    }

    fn phase_complete(&self, phase: usize) -> bool {
        (0..self.n() as u32).all(|sender| self.received.contains_key(&(phase, sender)))
    }

    fn progress(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        loop {
            if self.finished {
                return actions;
            }
            let step = match self.sent_phase {
                1 if self.phase_complete(0) => self.after_deals(),
                2 if self.phase_complete(1) => self.after_echoes(),
                3 if self.phase_complete(2) => self.after_shares(),
                4 if self.phase_complete(3) => self.after_complaints(),
                5 if self.phase_complete(4) => self.after_partials(),
                6 if self.phase_complete(5) => self.after_lock_signatures(),
                _ => return actions,
            };
            let more = match step {
                Ok(more) => more,
                Err((culprits, reason)) => self.abort(culprits, reason),
            };
            for action in more {
                match action {
                    Action::Broadcast(envelope) => {
                        actions.push(Action::Broadcast(envelope.clone()));
                        let key = (envelope.body.phase(), envelope.sender);
                        self.received.insert(key, envelope);
                    }
                    other => actions.push(other),
                }
            }
        }
    }

    fn deal_of(&self, dealer: u32) -> (&[Commitments], &[KnowledgeProof]) {
        match self.received.get(&(0, dealer)).map(|e| &e.body) {
            Some(Body::Deal {
                commitments,
                proofs,
            }) => (commitments, proofs),
            _ => (&[], &[]),
        }
    }
}
