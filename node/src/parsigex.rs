//! Partial-signature exchange: what one node tells the others after its
//! validator client signed. Each partial travels with the signing root it
//! signs, so a receiver verifies it against the sender's public share
//! before it counts, whatever the receiver has decided so far.

use phalanx_p2p::Protocol;
use serde::{Deserialize, Serialize};

use crate::duty::Duty;

/// One partial signature of one validator for one duty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialMessage {
    /// The duty.
    pub duty: Duty,
    /// The validator's group public key (48 bytes).
    pub validator: Vec<u8>,
    /// The signing root signed.
    pub signing_root: [u8; 32],
    /// The sender's partial signature (96 bytes, compressed).
    pub signature: Vec<u8>,
    /// The head block root a sync-committee message signs: sync messages
    /// need no consensus, so the receiver learns it here.
    pub block_root: Option<[u8; 32]>,
    /// A new builder registration's message (SSZ): it is not agreed on
    /// either, and every node needs it to combine and keep the result.
    pub registration: Option<Vec<u8>>,
}

/// The partials one node sends in one go (one duty's worth, usually).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialBatch(pub Vec<PartialMessage>);

/// The most partials in one batch: every validator of a large cluster.
pub const MAX_PARTIALS_PER_BATCH: usize = 20_000;

/// The partial-signature protocol's name on p2p.
pub const PARSIGEX_PROTOCOL_NAME: &str = "parsigex";
/// The partial-signature protocol's version; a change of
/// [`PartialMessage`]'s encoding takes a new one (1.1.0 added the
/// registration).
pub const PARSIGEX_PROTOCOL_VERSION: &str = "1.1.0";

/// The protocol, sized for [`MAX_PARTIALS_PER_BATCH`] partials of about
/// 240 bytes each, or about 330 with a registration.
pub fn parsigex_protocol() -> Protocol {
    Protocol {
        name: PARSIGEX_PROTOCOL_NAME,
        version: PARSIGEX_PROTOCOL_VERSION,
        max_size: MAX_PARTIALS_PER_BATCH * 384,
        queue_per_peer: 1024,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duty::DutyType;
    use phalanx_eth::Slot;

    #[test]
    fn a_full_batch_fits_the_protocol_limit() {
        let message = PartialMessage {
            duty: Duty::new(Slot(u64::MAX), DutyType::SyncMessage),
            validator: vec![0xaa; 48],
            signing_root: [1; 32],
            signature: vec![0xbb; 96],
            block_root: Some([2; 32]),
            registration: Some(vec![3; 84]),
        };
        let batch = PartialBatch(vec![message; MAX_PARTIALS_PER_BATCH]);
        let bytes = bincode::serialize(&batch).expect("encodes");
        assert!(bytes.len() <= parsigex_protocol().max_size);
        assert_eq!(
            bincode::deserialize::<PartialBatch>(&bytes).expect("decodes"),
            batch
        );
    }
}
