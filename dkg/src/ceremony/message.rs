//! The ceremony's messages: what an operator says in each phase
//! ([`Body`]), signed by its node key and bound to the definition hash
//! ([`Envelope`]), and the size limit the transport enforces.

use phalanx_crypto::dkg::{Commitments, KnowledgeProof};
use phalanx_crypto::Signature;
use phalanx_p2p::seal::{Disclosure, Sealed};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
    pub(super) fn phase(&self) -> usize {
        match self {
            Body::Deal { .. } => 0,
            Body::Echo { .. } => 1,
            Body::Shares { .. } => 2,
            Body::Complaints { .. } => 3,
            Body::Partials { .. } => 4,
            Body::LockSignature { .. } => 5,
        }
    }

    pub(super) fn name(&self) -> &'static str {
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

pub(super) fn signing_bytes(definition_hash: &[u8; 32], sender: u32, body: &Body) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(b"PHALANX-DKG-ENVELOPE-V1");
    hash.update(definition_hash);
    hash.update(sender.to_be_bytes());
    hash.update(serde_json::to_vec(body).unwrap_or_default());
    hash.finalize().to_vec()
}

pub(super) fn envelope_hash(envelope: &Envelope) -> [u8; 32] {
    Sha256::digest(serde_json::to_vec(envelope).unwrap_or_default()).into()
}
