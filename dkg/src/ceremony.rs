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

use std::collections::BTreeMap;

use phalanx_crypto::dkg::{sum_shares, Commitments, Dealing, KnowledgeProof};
use phalanx_crypto::threshold::{combine, PartialSignature, PublicShare, SecretShare, ShareIndex};
use phalanx_crypto::{SecretKey, Signature};
use phalanx_eth::deposit::LaunchpadDeposit;
use phalanx_eth::signing::{application_builder_domain, compute_signing_root};
use phalanx_eth::validator::{DepositMessage, SignedValidatorRegistration, ValidatorRegistration};
use phalanx_eth::PublicKeyBytes;
use phalanx_p2p::seal::{self, Disclosure, Sealed};
use phalanx_p2p::{Enr, NodeKey};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::definition::ClusterDefinition;
use crate::error::DkgError;
use crate::lock::{lock_hash, ClusterLock, DistributedValidator};

/// What an operator says in one phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Commitments and proofs of knowledge, one per validator.
    Deal {
        /// Per validator, the dealer's commitments.
        commitments: Vec<Commitments>,
        /// Per validator, the proof of knowledge of the constant term.
        proofs: Vec<KnowledgeProof>,
    },
    /// The hash of each dealer's deal as received, by dealer index.
    Echo {
        /// Hashes of the deal envelopes.
        deals: Vec<[u8; 32]>,
    },
    /// The shares of every validator for one operator, sealed to it.
    Shares {
        /// The recipient's index.
        recipient: u32,
        /// 32 bytes per validator.
        sealed: Sealed,
    },
    /// Complaints against dealers (empty: all shares verified).
    Complaints {
        /// The complaints.
        complaints: Vec<Complaint>,
    },
    /// Partial signatures of every deposit and builder registration.
    Partials {
        /// Per validator, the partial signature of its deposit message.
        deposits: Vec<Signature>,
        /// Per validator, the partial signature of its registration.
        registrations: Vec<Signature>,
    },
    /// The sender's signatures of the lock hash.
    LockSignature {
        /// The lock hash it signs.
        lock_hash: [u8; 32],
        /// Its node key's signature (DER).
        operator_signature: Vec<u8>,
        /// The aggregate of its shares' signatures over the lock hash.
        share_signature: Signature,
    },
}

impl Body {
    fn phase(&self) -> usize {
        match self {
            Body::Deal { .. } => 0,
            Body::Echo { .. } => 1,
            Body::Shares { .. } => 2,
            Body::Complaints { .. } => 3,
            Body::Partials { .. } => 4,
            Body::LockSignature { .. } => 5,
        }
    }

    fn name(&self) -> &'static str {
        [
            "deal",
            "echo",
            "shares",
            "complaints",
            "partials",
            "lock signature",
        ][self.phase()]
    }
}

/// A complaint: the dealer-signed shares and the disclosure that opens them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Complaint {
    /// The accused dealer.
    pub dealer: u32,
    /// The dealer's signed `Shares` message.
    pub shares: Box<Envelope>,
    /// The accuser's disclosure of the sealed message's key.
    pub disclosure: Disclosure,
}

/// A signed message of the ceremony.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sender's operator index.
    pub sender: u32,
    /// What it says.
    pub body: Body,
    /// The sender's node-key signature over the definition hash, its index and the body.
    pub signature: Vec<u8>,
}

/// The largest envelope any phase sends, for a given cluster.
pub fn max_envelope_size(operators: usize, threshold: usize, validators: usize) -> usize {
    let deal = validators * (threshold * 60 + 140);
    let complaints = operators * (validators * 40 + 600);
    let partials = validators * 2 * 110;
    64 * 1024 + deal.max(complaints).max(partials)
}

fn signing_bytes(definition_hash: &[u8; 32], sender: u32, body: &Body) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(b"PHALANX-DKG-ENVELOPE-V1");
    hash.update(definition_hash);
    hash.update(sender.to_be_bytes());
    hash.update(serde_json::to_vec(body).unwrap_or_default());
    hash.finalize().to_vec()
}

fn envelope_hash(envelope: &Envelope) -> [u8; 32] {
    Sha256::digest(serde_json::to_vec(envelope).unwrap_or_default()).into()
}

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

    /// All deals in: check their shape and proofs, then echo them.
    fn after_deals(&mut self) -> Result<Vec<Action>, (Vec<u32>, String)> {
        let validators = self.definition.validators.len();
        let t = self.definition.threshold as usize;
        for dealer in 0..self.n() as u32 {
            let (commitments, proofs) = self.deal_of(dealer);
            if commitments.len() != validators
                || proofs.len() != validators
                || commitments.iter().any(|c| c.threshold() != t)
            {
                return Err((
                    vec![dealer],
                    format!("operator {dealer}'s deal has the wrong shape"),
                ));
            }
            for (v, (c, proof)) in commitments.iter().zip(proofs).enumerate() {
                if !c.verify_proof(proof, &self.context(dealer, v)) {
                    return Err((
                        vec![dealer],
                        format!("operator {dealer}'s proof of knowledge for validator {v} does not verify"),
                    ));
                }
            }
        }
        let deals = (0..self.n() as u32)
            .map(|d| envelope_hash(&self.received[&(0, d)]))
            .collect();
        self.sent_phase = 2;
        Ok(vec![Action::Broadcast(self.sign(Body::Echo { deals }))])
    }

    /// All echoes in: every operator saw the same deals; send shares.
    fn after_echoes(&mut self) -> Result<Vec<Action>, (Vec<u32>, String)> {
        let n = self.n() as u32;
        for dealer in 0..n {
            let mine = envelope_hash(&self.received[&(0, dealer)]);
            for echoer in 0..n {
                let seen = match &self.received[&(1, echoer)].body {
                    Body::Echo { deals } => deals.get(dealer as usize).copied(),
                    _ => None,
                };
                if seen != Some(mine) {
                    return Err((
                        vec![dealer],
                        format!(
                            "operator {dealer} sent different commitments to different operators \
                             (operator {echoer} saw another deal than operator {})",
                            self.me
                        ),
                    ));
                }
            }
        }
        let mut actions = Vec::new();
        for recipient in 0..n {
            let index =
                ShareIndex::new(u64::from(recipient) + 1).map_err(|e| (vec![], e.to_string()))?;
            let mut plaintext = Vec::with_capacity(32 * self.dealings.len());
            for dealing in &self.dealings {
                let share = dealing.share(index).map_err(|e| (vec![], e.to_string()))?;
                plaintext.extend_from_slice(share.to_bytes().as_ref());
            }
            let recipient_key = self.enrs[recipient as usize].public_key();
            let sealed = seal::seal(
                &recipient_key,
                &plaintext,
                &self.seal_context(self.me, recipient),
            )
            .map_err(|e| (vec![recipient], format!("operator {recipient}'s key: {e}")))?;
            plaintext.iter_mut().for_each(|b| *b = 0);
            let envelope = self.sign(Body::Shares { recipient, sealed });
            if recipient == self.me {
                self.received.insert((2, self.me), envelope);
            } else {
                self.sent_shares.insert(recipient, envelope.clone());
                actions.push(Action::Send(recipient, envelope));
            }
        }
        self.sent_phase = 3;
        Ok(actions)
    }

    /// Opens and checks the shares a dealer sent to `recipient`.
    fn check_shares(
        &self,
        dealer: u32,
        recipient: u32,
        plaintext: &[u8],
    ) -> Result<Vec<SecretKey>, String> {
        let validators = self.definition.validators.len();
        if plaintext.len() != 32 * validators {
            return Err("wrong length".into());
        }
        let index = ShareIndex::new(u64::from(recipient) + 1).map_err(|e| e.to_string())?;
        let (commitments, _) = self.deal_of(dealer);
        plaintext
            .chunks(32)
            .zip(commitments)
            .enumerate()
            .map(|(v, (bytes, c))| {
                let share = SecretKey::from_bytes(bytes)
                    .map_err(|_| format!("validator {v}: not a key"))?;
                if c.verify_share(index, &share) {
                    Ok(share)
                } else {
                    Err(format!(
                        "validator {v}: share does not match the commitments"
                    ))
                }
            })
            .collect()
    }

    /// All shares in: check mine, broadcast complaints (or none).
    fn after_shares(&mut self) -> Result<Vec<Action>, (Vec<u32>, String)> {
        let mut complaints = Vec::new();
        for dealer in 0..self.n() as u32 {
            let envelope = self.received[&(2, dealer)].clone();
            let Body::Shares { sealed, .. } = &envelope.body else {
                continue;
            };
            let context = self.seal_context(dealer, self.me);
            let valid = seal::open(&self.node_key, sealed, &context)
                .map_err(|e| e.to_string())
                .and_then(|plaintext| self.check_shares(dealer, self.me, &plaintext));
            if let Ok(shares) = &valid {
                self.verified_shares.insert(dealer, shares.clone());
            }
            if let Err(problem) = valid {
                tracing::warn!(dealer, %problem, "shares from a dealer do not verify");
                let disclosure = seal::disclose(&self.node_key, sealed)
                    .map_err(|e| (vec![dealer], e.to_string()))?;
                complaints.push(Complaint {
                    dealer,
                    shares: Box::new(envelope),
                    disclosure,
                });
            }
        }
        self.sent_phase = 4;
        Ok(vec![Action::Broadcast(
            self.sign(Body::Complaints { complaints }),
        )])
    }

    /// All complaints in: judge them; without any, form the keys and sign
    /// deposits and registrations.
    fn after_complaints(&mut self) -> Result<Vec<Action>, (Vec<u32>, String)> {
        let mut culprits = Vec::new();
        let mut reasons = Vec::new();
        for accuser in 0..self.n() as u32 {
            let Body::Complaints { complaints } = &self.received[&(3, accuser)].body else {
                continue;
            };
            for complaint in complaints {
                let (guilty, why) = self.judge(accuser, complaint);
                culprits.push(guilty);
                reasons.push(why);
            }
        }
        if !culprits.is_empty() {
            culprits.sort_unstable();
            culprits.dedup();
            return Err((culprits, reasons.join("; ")));
        }
        self.form_keys().map_err(|e| (vec![], e.to_string()))?;
        let shares = self.shares.as_ref().map_or(&[][..], Vec::as_slice);
        let fork_version = self.definition.network.genesis_fork_version;
        let public = self.public.as_ref().map_or(&[][..], Vec::as_slice);
        let mut deposits = Vec::new();
        let mut registrations = Vec::new();
        for ((share, spec), (group, _)) in
            shares.iter().zip(&self.definition.validators).zip(public)
        {
            let message = DepositMessage::new(group, spec.credentials(), spec.deposit_amount)
                .map_err(|e| (vec![], e.to_string()))?;
            deposits.push(
                share
                    .sign(message.signing_root(fork_version).as_slice())
                    .signature,
            );
            let registration = self.registration(group, spec.fee_recipient);
            let root =
                compute_signing_root(&registration, application_builder_domain(fork_version));
            registrations.push(share.sign(root.as_slice()).signature);
        }
        self.sent_phase = 5;
        Ok(vec![Action::Broadcast(self.sign(Body::Partials {
            deposits,
            registrations,
        }))])
    }

    fn registration(
        &self,
        group: &phalanx_crypto::PublicKey,
        fee_recipient: phalanx_eth::ExecutionAddress,
    ) -> ValidatorRegistration {
        ValidatorRegistration {
            fee_recipient,
            gas_limit: self.definition.builder.gas_limit,
            timestamp: self.definition.builder.timestamp,
            pubkey: PublicKeyBytes::from(group.to_bytes()),
        }
    }

    /// Decides a complaint: the dealer if the disclosed shares are bad,
    /// the accuser if they are good or the complaint does not hold up.
    fn judge(&self, accuser: u32, complaint: &Complaint) -> (u32, String) {
        let dealer = complaint.dealer;
        let envelope = &complaint.shares;
        let Some(enr) = self.enrs.get(dealer as usize) else {
            return (
                accuser,
                format!("operator {accuser} accused a non-operator"),
            );
        };
        let signed = phalanx_p2p::verify(
            &enr.public_key(),
            &signing_bytes(&self.definition_hash, dealer, &envelope.body),
            &envelope.signature,
        );
        let Body::Shares { recipient, sealed } = &envelope.body else {
            return (
                accuser,
                format!("operator {accuser}'s complaint holds no shares"),
            );
        };
        if !signed || envelope.sender != dealer || *recipient != accuser {
            return (accuser, format!("operator {accuser}'s complaint against {dealer} is not backed by {dealer}'s signed shares"));
        }
        let accuser_key = self.enrs[accuser as usize].public_key();
        match seal::open_disclosed(
            &accuser_key,
            sealed,
            &complaint.disclosure,
            &self.seal_context(dealer, accuser),
        ) {
            Err(seal::SealError::BadDisclosure) | Err(seal::SealError::InvalidPoint) => (
                accuser,
                format!("operator {accuser}'s disclosure against {dealer} does not verify"),
            ),
            Err(seal::SealError::Authentication) => (
                dealer,
                format!("operator {dealer} sent operator {accuser} shares that do not decrypt"),
            ),
            Ok(plaintext) => match self.check_shares(dealer, accuser, &plaintext) {
                Err(problem) => (
                    dealer,
                    format!("operator {dealer} sent operator {accuser} bad shares ({problem})"),
                ),
                Ok(_) => (
                    accuser,
                    format!("operator {accuser} falsely accused operator {dealer}"),
                ),
            },
        }
    }

    /// This operator's key shares and every validator's public keys, from
    /// the verified shares and the agreed commitments.
    fn form_keys(&mut self) -> Result<(), DkgError> {
        let n = self.n() as u32;
        let index = ShareIndex::new(u64::from(self.me) + 1)?;
        let mut per_validator: Vec<Vec<SecretKey>> =
            vec![Vec::new(); self.definition.validators.len()];
        for dealer in 0..n {
            let Body::Shares { sealed, .. } = &self.received[&(2, dealer)].body else {
                continue;
            };
            let shares = match self.verified_shares.get(&dealer) {
                Some(shares) => shares.clone(),
                None => {
                    let plaintext =
                        seal::open(&self.node_key, sealed, &self.seal_context(dealer, self.me))
                            .map_err(|e| DkgError::Input(e.to_string()))?;
                    self.check_shares(dealer, self.me, &plaintext)
                        .map_err(DkgError::Input)?
                }
            };
            for (v, share) in shares.into_iter().enumerate() {
                per_validator[v].push(share);
            }
        }
        let mut shares = Vec::new();
        let mut public = Vec::new();
        for (v, dealt) in per_validator.iter().enumerate() {
            shares.push(SecretShare::new(index, sum_shares(dealt)?));
            let all: Vec<Commitments> = (0..n).map(|d| self.deal_of(d).0[v].clone()).collect();
            let total = Commitments::sum(&all)?;
            let group = *total
                .constant()
                .ok_or_else(|| DkgError::Input("empty commitments".into()))?;
            let public_shares = (0..n)
                .map(|j| {
                    let index = ShareIndex::new(u64::from(j) + 1)?;
                    Ok(PublicShare::new(index, total.evaluate(index)?))
                })
                .collect::<Result<Vec<_>, phalanx_crypto::Error>>()?;
            public.push((group, public_shares));
        }
        self.shares = Some(shares);
        self.public = Some(public);
        self.verified_shares.clear();
        Ok(())
    }

    /// All partials in: verify each, combine, and sign the lock.
    fn after_partials(&mut self) -> Result<Vec<Action>, (Vec<u32>, String)> {
        let validators = self.build_validators()?;
        let hash = lock_hash(&self.definition, &validators);
        let shares = self.shares.as_ref().map_or(&[][..], Vec::as_slice);
        let share_signatures: Vec<Signature> =
            shares.iter().map(|s| s.sign(&hash).signature).collect();
        let share_signature =
            Signature::aggregate(&share_signatures).map_err(|e| (vec![], e.to_string()))?;
        self.validators = Some(validators);
        self.sent_phase = 6;
        Ok(vec![Action::Broadcast(self.sign(Body::LockSignature {
            lock_hash: hash,
            operator_signature: self.node_key.sign(&hash),
            share_signature,
        }))])
    }

    /// The lock's validators from the agreed keys and everyone's partials.
    ///
    /// Partials are combined first and the combined signatures verified in
    /// one batch against the group keys; only if that fails are partials
    /// checked one by one, to name who sent a bad one.
    fn build_validators(&self) -> Result<Vec<DistributedValidator>, (Vec<u32>, String)> {
        let t = self.definition.threshold as usize;
        let fork_version = self.definition.network.genesis_fork_version;
        let public = self.public.clone().unwrap_or_default();
        struct Combined {
            message: DepositMessage,
            deposit_root: phalanx_eth::Root,
            registration: ValidatorRegistration,
            registration_root: phalanx_eth::Root,
            deposit_partials: Vec<PartialSignature>,
            registration_partials: Vec<PartialSignature>,
            deposit: Signature,
            registration_signature: Signature,
        }
        let mut combined = Vec::with_capacity(public.len());
        for (v, ((group, public_shares), spec)) in
            public.iter().zip(&self.definition.validators).enumerate()
        {
            let message = DepositMessage::new(group, spec.credentials(), spec.deposit_amount)
                .map_err(|e| (vec![], e.to_string()))?;
            let registration = self.registration(group, spec.fee_recipient);
            let mut deposit_partials = Vec::with_capacity(public_shares.len());
            let mut registration_partials = Vec::with_capacity(public_shares.len());
            for (sender, public_share) in public_shares.iter().enumerate() {
                let Body::Partials {
                    deposits,
                    registrations,
                } = &self.received[&(4, sender as u32)].body
                else {
                    continue;
                };
                let (Some(deposit), Some(registration_signature)) =
                    (deposits.get(v), registrations.get(v))
                else {
                    return Err((
                        vec![sender as u32],
                        format!("operator {sender} sent too few partial signatures"),
                    ));
                };
                deposit_partials.push(PartialSignature::new(public_share.index, *deposit));
                registration_partials.push(PartialSignature::new(
                    public_share.index,
                    *registration_signature,
                ));
            }
            let deposit = combine(&deposit_partials, t).map_err(|e| (vec![], e.to_string()))?;
            let registration_signature =
                combine(&registration_partials, t).map_err(|e| (vec![], e.to_string()))?;
            combined.push(Combined {
                deposit_root: message.signing_root(fork_version),
                registration_root: compute_signing_root(
                    &registration,
                    application_builder_domain(fork_version),
                ),
                message,
                registration,
                deposit_partials,
                registration_partials,
                deposit,
                registration_signature,
            });
        }
        let sets: Vec<phalanx_crypto::SignatureSet<'_>> = combined
            .iter()
            .zip(&public)
            .flat_map(|(c, (group, _))| {
                [
                    phalanx_crypto::SignatureSet::new(c.deposit_root.as_slice(), group, &c.deposit),
                    phalanx_crypto::SignatureSet::new(
                        c.registration_root.as_slice(),
                        group,
                        &c.registration_signature,
                    ),
                ]
            })
            .collect();
        let mut rng = rand::rngs::OsRng;
        if !phalanx_crypto::batch::verify_signature_sets(&sets, &mut rng) {
            let bad = phalanx_crypto::batch::find_invalid(&sets, &mut rng);
            let v = bad.first().map_or(0, |i| i / 2);
            let (c, (_, public_shares)) = (&combined[v], &public[v]);
            let culprits: Vec<u32> = public_shares
                .iter()
                .zip(c.deposit_partials.iter().zip(&c.registration_partials))
                .enumerate()
                .filter(|(_, (share, (deposit, registration)))| {
                    !share.verify(deposit, c.deposit_root.as_slice())
                        || !share.verify(registration, c.registration_root.as_slice())
                })
                .map(|(sender, _)| sender as u32)
                .collect();
            return Err((
                culprits.clone(),
                format!(
                    "validator {v}: partial signatures from operators {culprits:?} do not verify"
                ),
            ));
        }
        Ok(combined
            .into_iter()
            .zip(&public)
            .map(|(c, (group, public_shares))| DistributedValidator {
                public_key: *group,
                public_shares: public_shares.iter().map(|s| s.key).collect(),
                deposit_data: LaunchpadDeposit::assemble(
                    &c.message,
                    &c.deposit,
                    fork_version,
                    &self.definition.network.name,
                ),
                builder_registration: SignedValidatorRegistration {
                    message: c.registration,
                    signature: c.registration_signature.to_bytes().into(),
                },
            })
            .collect())
    }

    /// All lock signatures in: assemble and verify the lock.
    fn after_lock_signatures(&mut self) -> Result<Vec<Action>, (Vec<u32>, String)> {
        let validators = self.validators.clone().unwrap_or_default();
        let hash = lock_hash(&self.definition, &validators);
        let mut operator_signatures = Vec::new();
        let mut share_signatures = Vec::new();
        for sender in 0..self.n() as u32 {
            let Body::LockSignature {
                lock_hash,
                operator_signature,
                share_signature,
            } = &self.received[&(5, sender)].body
            else {
                continue;
            };
            if *lock_hash != hash {
                return Err((
                    vec![sender],
                    format!("operator {sender} signed a different lock"),
                ));
            }
            operator_signatures.push(hex::encode(operator_signature));
            share_signatures.push(*share_signature);
        }
        let lock = ClusterLock {
            definition: self.definition.clone(),
            validators,
            lock_hash: format!("0x{}", hex::encode(hash)),
            operator_signatures,
            share_signature: Signature::aggregate(&share_signatures)
                .map_err(|e| (vec![], e.to_string()))?,
        };
        // The validators were built and checked here; what is new is the
        // signatures.
        if let Err(error) = lock.verify_signatures() {
            // Find whose signatures fail, to name them.
            let culprits = self.lock_culprits(&hash);
            return Err((
                culprits,
                format!("the assembled lock does not verify: {error}"),
            ));
        }
        self.finished = true;
        let shares = self.shares.take().unwrap_or_default();
        Ok(vec![Action::Done(Box::new(Outcome { lock, shares }))])
    }

    fn lock_culprits(&self, hash: &[u8; 32]) -> Vec<u32> {
        let public = self.public.clone().unwrap_or_default();
        (0..self.n() as u32)
            .filter(|&sender| {
                let Body::LockSignature {
                    operator_signature,
                    share_signature,
                    ..
                } = &self.received[&(5, sender)].body
                else {
                    return true;
                };
                let keys: Vec<_> = public
                    .iter()
                    .map(|(_, shares)| shares[sender as usize].key)
                    .collect();
                !phalanx_p2p::verify(
                    &self.enrs[sender as usize].public_key(),
                    hash,
                    operator_signature,
                ) || !share_signature.fast_aggregate_verify(hash, &keys)
            })
            .collect()
    }
}
