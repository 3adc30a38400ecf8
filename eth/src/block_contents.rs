//! What block production returns and block publishing takes: the block with
//! its blobs and KZG proofs (Deneb on), or a blinded block, and their signed
//! forms.
//!
//! `GET /eth/v3/validator/blocks/{slot}` answers with the fork in
//! `version` (and the `Eth-Consensus-Version` header), whether the payload
//! is blinded, and the block's value to the proposer; [`ProducedBlock`]
//! decodes that by fork.

use alloy_primitives::{FixedBytes, U256};
use serde::{Deserialize, Serialize};
use ssz_types::typenum::U131072;
use ssz_types::FixedVector;

use crate::block::{BeaconBlock, BlindedBeaconBlock};
use crate::error::Error;
use crate::fork::ForkName;
use crate::preset::EthSpec;
use crate::primitives::SignatureBytes;

/// A KZG proof (of a blob before Fulu, of a cell from Fulu on).
pub type KzgProof = FixedBytes<48>;

/// A blob: 4096 field elements of 32 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Blob(
    #[serde(with = "ssz_types::serde_utils::hex_fixed_vec")] pub FixedVector<u8, U131072>,
);

/// A block with the blobs its commitments refer to (Deneb on).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(bound = "E: EthSpec")]
pub struct BlockContents<E: EthSpec> {
    /// The block.
    pub block: BeaconBlock<E>,
    /// One proof per blob (Deneb, Electra) or per cell (Fulu: 128 per blob).
    pub kzg_proofs: Vec<KzgProof>,
    /// The blobs.
    pub blobs: Vec<Blob>,
}

/// A produced block in the form its fork and the builder choice give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProducedBlockData<E: EthSpec> {
    /// Capella: the full block alone.
    Full(BeaconBlock<E>),
    /// Deneb on: the full block with blobs and proofs.
    Contents(BlockContents<E>),
    /// A blinded block from a builder (payload header only).
    Blinded(BlindedBeaconBlock<E>),
}

/// The answer of `GET /eth/v3/validator/blocks/{slot}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducedBlock<E: EthSpec> {
    /// The fork of the block (`version`).
    pub fork: ForkName,
    /// The block.
    pub data: ProducedBlockData<E>,
    /// Wei paid to the fee recipient by the execution payload.
    pub execution_payload_value: U256,
    /// Gwei of consensus rewards the block earns its proposer.
    pub consensus_block_value: U256,
}

#[derive(Deserialize)]
struct RawProduced {
    version: String,
    // Absent from the v2 endpoint's answers, which are never blinded.
    #[serde(default)]
    execution_payload_blinded: bool,
    #[serde(default, with = "serde_utils::quoted_u256")]
    execution_payload_value: U256,
    #[serde(default, with = "serde_utils::quoted_u256")]
    consensus_block_value: U256,
    data: serde_json::Value,
}

#[derive(Deserialize)]
struct RawContents {
    block: serde_json::Value,
    kzg_proofs: Vec<KzgProof>,
    blobs: Vec<Blob>,
}

impl<E: EthSpec> ProducedBlock<E> {
    /// Decodes the JSON body of a produceBlockV3 response. `header_fork` is
    /// the `Eth-Consensus-Version` header, if any; it must agree with the
    /// body's `version`.
    pub fn from_json(body: &[u8], header_fork: Option<ForkName>) -> Result<Self, Error> {
        let json_error = |reason: String| Error::Json {
            container: "produceBlockV3 response",
            reason,
        };
        let raw: RawProduced =
            serde_json::from_slice(body).map_err(|e| json_error(e.to_string()))?;
        let fork: ForkName = raw.version.parse()?;
        if let Some(header) = header_fork {
            if header != fork {
                return Err(json_error(format!(
                    "Eth-Consensus-Version header says {header} but the body says {fork}"
                )));
            }
        }
        let data = if raw.execution_payload_blinded {
            ProducedBlockData::Blinded(BlindedBeaconBlock::from_json_value(raw.data, fork)?)
        } else if fork >= ForkName::Deneb {
            let contents: RawContents =
                serde_json::from_value(raw.data).map_err(|e| json_error(e.to_string()))?;
            ProducedBlockData::Contents(BlockContents {
                block: BeaconBlock::from_json_value(contents.block, fork)?,
                kzg_proofs: contents.kzg_proofs,
                blobs: contents.blobs,
            })
        } else {
            ProducedBlockData::Full(BeaconBlock::from_json_value(raw.data, fork)?)
        };
        Ok(ProducedBlock {
            fork,
            data,
            execution_payload_value: raw.execution_payload_value,
            consensus_block_value: raw.consensus_block_value,
        })
    }

    /// The JSON body a beacon node would send for this block.
    pub fn to_json(&self) -> serde_json::Value {
        let (blinded, data) = match &self.data {
            ProducedBlockData::Full(block) => (false, serde_json::to_value(block)),
            ProducedBlockData::Contents(contents) => (false, serde_json::to_value(contents)),
            ProducedBlockData::Blinded(block) => (true, serde_json::to_value(block)),
        };
        serde_json::json!({
            "version": self.fork.as_str(),
            "execution_payload_blinded": blinded,
            "execution_payload_value": self.execution_payload_value.to_string(),
            "consensus_block_value": self.consensus_block_value.to_string(),
            "data": data.unwrap_or(serde_json::Value::Null),
        })
    }
}

/// A signed message of any fork-aware type (`{"message": …, "signature": …}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Signed<T> {
    /// The message.
    pub message: T,
    /// The signature over its signing root.
    pub signature: SignatureBytes,
}

/// `SignedBeaconBlock` of any fork.
pub type SignedBeaconBlock<E> = Signed<BeaconBlock<E>>;
/// `SignedBlindedBeaconBlock` of any fork.
pub type SignedBlindedBeaconBlock<E> = Signed<BlindedBeaconBlock<E>>;

/// What `POST /eth/v2/beacon/blocks` takes from Deneb on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(bound = "E: EthSpec")]
pub struct SignedBlockContents<E: EthSpec> {
    /// The signed block.
    pub signed_block: SignedBeaconBlock<E>,
    /// The proofs, as produced.
    pub kzg_proofs: Vec<KzgProof>,
    /// The blobs, as produced.
    pub blobs: Vec<Blob>,
}
