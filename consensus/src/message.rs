//! What operators send each other: the signed QBFT messages, which carry
//! only value hashes, and the wire forms that attach the full value and the
//! justifications where the receiver needs them.

use serde::{Deserialize, Serialize};

use crate::types::{OperatorIndex, Round, Value, ValueHash};

/// Domain separation for the signed bytes, versioned with what they cover
/// (v2: the cluster's lock hash).
const SIGNING_DOMAIN: &[u8] = b"phalanx/qbft/v2";

/// What a signed message says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// PRE-PREPARE: the round's leader proposes the value with this hash.
    Proposal(ValueHash),
    /// PREPARE: the sender accepted the round's proposal of this value.
    Prepare(ValueHash),
    /// COMMIT: the sender saw a quorum prepare this value in this round.
    Commit(ValueHash),
    /// ROUND-CHANGE: the sender moves to this round, reporting the last
    /// round and value it prepared, if any.
    RoundChange(Option<Prepared>),
}

impl Kind {
    fn tag(self) -> u8 {
        match self {
            Kind::Proposal(_) => 1,
            Kind::Prepare(_) => 2,
            Kind::Commit(_) => 3,
            Kind::RoundChange(_) => 4,
        }
    }

    /// A short name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Proposal(_) => "proposal",
            Kind::Prepare(_) => "prepare",
            Kind::Commit(_) => "commit",
            Kind::RoundChange(_) => "round_change",
        }
    }
}

/// A prepared round and value, as a round change reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepared {
    /// The round in which a quorum prepared.
    pub round: Round,
    /// The value they prepared.
    pub value: ValueHash,
}

/// The signed part of every QBFT message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message<K> {
    /// The instance (duty) the message belongs to.
    pub instance: K,
    /// The round it is sent in.
    pub round: Round,
    /// Who sent it.
    pub sender: OperatorIndex,
    /// What it says.
    pub kind: Kind,
}

impl<K: crate::InstanceKey> Message<K> {
    /// The bytes the sender signs: a domain tag, the cluster's lock hash,
    /// the instance key, the round, the sender and the kind with its hashes,
    /// at fixed widths. The lock hash binds every message to its cluster: an
    /// operator in two clusters, at the same index with the same node key,
    /// cannot carry messages (or a decided certificate) from one into the
    /// other.
    pub fn signing_bytes(&self, lock_hash: &[u8; 32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(SIGNING_DOMAIN.len() + 160);
        out.extend_from_slice(SIGNING_DOMAIN);
        out.extend_from_slice(lock_hash);
        let key_start = out.len();
        out.extend_from_slice(&[0; 4]);
        self.instance.write_bytes(&mut out);
        // The key's length is written ahead of it so no key can end where
        // another's round begins.
        let key_len = u32::try_from(out.len() - key_start - 4).unwrap_or(u32::MAX);
        out[key_start..key_start + 4].copy_from_slice(&key_len.to_be_bytes());
        out.extend_from_slice(&self.round.0.to_be_bytes());
        out.extend_from_slice(&self.sender.0.to_be_bytes());
        out.push(self.kind.tag());
        match self.kind {
            Kind::Proposal(hash) | Kind::Prepare(hash) | Kind::Commit(hash) => {
                out.extend_from_slice(&hash.0);
            }
            Kind::RoundChange(None) => out.push(0),
            Kind::RoundChange(Some(prepared)) => {
                out.push(1);
                out.extend_from_slice(&prepared.round.0.to_be_bytes());
                out.extend_from_slice(&prepared.value.0);
            }
        }
        out
    }
}

/// A sender's signature over [`Message::signing_bytes`], in the signer's format.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSignature(pub Vec<u8>);

impl std::fmt::Debug for MessageSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sig(")?;
        for byte in self.0.iter().take(4) {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A message with its sender's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedMessage<K> {
    /// The message.
    pub message: Message<K>,
    /// The sender's signature over its signing bytes.
    pub signature: MessageSignature,
}

impl<K> SignedMessage<K> {
    /// The round the message was sent in.
    pub fn round(&self) -> Round {
        self.message.round
    }

    /// Who sent it.
    pub fn sender(&self) -> OperatorIndex {
        self.message.sender
    }
}

/// The justification a proposal in a round above 1 carries: a quorum of
/// round changes for its round and, if any of them prepared, the prepare
/// certificate of the highest prepared round among them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalJustification<K> {
    /// A quorum of ROUND-CHANGE messages for the proposal's round.
    pub round_changes: Vec<SignedMessage<K>>,
    /// A quorum of PREPARE messages for the highest prepared round and value.
    pub prepares: Vec<SignedMessage<K>>,
}

impl<K> Default for ProposalJustification<K> {
    fn default() -> Self {
        ProposalJustification {
            round_changes: Vec::new(),
            prepares: Vec::new(),
        }
    }
}

/// A prepared value with the quorum of prepares that proves it, as a round
/// change carries it so the next leader can re-propose the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedCertificate<K, V> {
    /// The prepared value itself.
    pub value: V,
    /// A quorum of PREPARE messages for it.
    pub prepares: Vec<SignedMessage<K>>,
}

/// A message as it travels between operators.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Wire<K, V> {
    /// The leader's proposal with the full value and, above round 1, its
    /// justification.
    Proposal {
        /// The signed PRE-PREPARE.
        proposal: SignedMessage<K>,
        /// The proposed value; its hash is the one signed.
        value: V,
        /// Empty in round 1.
        justification: ProposalJustification<K>,
    },
    /// A PREPARE (hash only).
    Prepare(SignedMessage<K>),
    /// A COMMIT (hash only).
    Commit(SignedMessage<K>),
    /// A ROUND-CHANGE with the prepared value and its certificate, if the
    /// sender prepared.
    RoundChange {
        /// The signed ROUND-CHANGE.
        round_change: SignedMessage<K>,
        /// Present exactly when the round change reports a prepared value.
        prepared: Option<PreparedCertificate<K, V>>,
    },
    /// A decided value with the quorum of commits that decided it, sent to
    /// an operator that is still trying so that it decides at once.
    Decided {
        /// The decided value.
        value: V,
        /// A quorum of COMMIT messages for it, all of one round.
        commits: Vec<SignedMessage<K>>,
    },
}

impl<K, V> Wire<K, V> {
    /// The same message with its value (a message carries at most one:
    /// a proposal's, a round change's prepared one, a decided one) turned
    /// into another type by `f`.
    pub fn map_value<W>(self, f: impl FnOnce(V) -> W) -> Wire<K, W> {
        match self {
            Wire::Proposal {
                proposal,
                value,
                justification,
            } => Wire::Proposal {
                proposal,
                value: f(value),
                justification,
            },
            Wire::Prepare(m) => Wire::Prepare(m),
            Wire::Commit(m) => Wire::Commit(m),
            Wire::RoundChange {
                round_change,
                prepared,
            } => Wire::RoundChange {
                round_change,
                prepared: prepared.map(|p| PreparedCertificate {
                    value: f(p.value),
                    prepares: p.prepares,
                }),
            },
            Wire::Decided { value, commits } => Wire::Decided {
                value: f(value),
                commits,
            },
        }
    }

    /// The instance the message belongs to, if it names one (a decided
    /// message without commits names none and is malformed).
    pub fn instance(&self) -> Option<&K> {
        match self {
            Wire::Proposal { proposal: m, .. }
            | Wire::Prepare(m)
            | Wire::Commit(m)
            | Wire::RoundChange {
                round_change: m, ..
            } => Some(&m.message.instance),
            Wire::Decided { commits, .. } => commits.first().map(|m| &m.message.instance),
        }
    }

    /// The buffer slot of the message: its round, its sender (for a decided
    /// message, which nobody signs as a whole, the transport peer `from`) and
    /// its kind. An honest node sends at most one message per slot.
    pub(crate) fn slot(&self, from: OperatorIndex) -> Option<(Round, OperatorIndex, &'static str)> {
        let kind = self.kind_name();
        match self {
            Wire::Proposal { proposal: m, .. }
            | Wire::Prepare(m)
            | Wire::Commit(m)
            | Wire::RoundChange {
                round_change: m, ..
            } => Some((m.round(), m.sender(), kind)),
            Wire::Decided { commits, .. } => commits.first().map(|m| (m.round(), from, kind)),
        }
    }

    /// A short name for logs and metrics.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Wire::Proposal { .. } => "proposal",
            Wire::Prepare(_) => "prepare",
            Wire::Commit(_) => "commit",
            Wire::RoundChange { .. } => "round_change",
            Wire::Decided { .. } => "decided",
        }
    }
}

impl<K, V: Value> Wire<K, V> {
    /// The bytes ([`Value::byte_len`]) of the value the message carries:
    /// a proposal's, a round change's prepared one, a decided one; 0 for
    /// prepares, commits and round changes without a value.
    pub fn value_bytes(&self) -> usize {
        match self {
            Wire::Proposal { value, .. } | Wire::Decided { value, .. } => value.byte_len(),
            Wire::RoundChange {
                prepared: Some(prepared),
                ..
            } => prepared.value.byte_len(),
            Wire::Prepare(_) | Wire::Commit(_) | Wire::RoundChange { prepared: None, .. } => 0,
        }
    }

    /// The memory the message holds, near enough for limits: the bytes of
    /// the values it carries ([`Value::byte_len`]) and each signed message
    /// with its signature.
    pub fn size(&self) -> usize {
        let signed = |m: &SignedMessage<K>| {
            std::mem::size_of::<SignedMessage<K>>().saturating_add(m.signature.0.len())
        };
        let all = |ms: &[SignedMessage<K>]| {
            ms.iter()
                .fold(0usize, |total, m| total.saturating_add(signed(m)))
        };
        match self {
            Wire::Proposal {
                proposal,
                value,
                justification,
            } => signed(proposal)
                .saturating_add(value.byte_len())
                .saturating_add(all(&justification.round_changes))
                .saturating_add(all(&justification.prepares)),
            Wire::Prepare(m) | Wire::Commit(m) => signed(m),
            Wire::RoundChange {
                round_change,
                prepared,
            } => signed(round_change).saturating_add(
                prepared
                    .as_ref()
                    .map_or(0, |p| p.value.byte_len().saturating_add(all(&p.prepares))),
            ),
            Wire::Decided { value, commits } => value.byte_len().saturating_add(all(commits)),
        }
    }
}

/// Signs messages with this operator's node key (`p2p` supplies secp256k1).
pub trait Signer {
    /// Signs `bytes`, the output of [`Message::signing_bytes`].
    fn sign(&self, bytes: &[u8]) -> MessageSignature;
}

/// Checks signatures against the operators' node keys.
pub trait Verifier {
    /// Whether `signature` over `bytes` was made by `sender`'s key.
    fn verify(&self, sender: OperatorIndex, bytes: &[u8], signature: &MessageSignature) -> bool;
}
