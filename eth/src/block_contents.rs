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
use ssz_types::typenum::Unsigned;
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

    /// Decodes an SSZ produceBlock body: `fork`, `blinded` and the values
    /// come from the response's headers.
    pub fn from_ssz(
        bytes: &[u8],
        fork: ForkName,
        blinded: bool,
        execution_payload_value: U256,
        consensus_block_value: U256,
    ) -> Result<Self, Error> {
        let data = if blinded {
            ProducedBlockData::Blinded(BlindedBeaconBlock::from_ssz_bytes(bytes, fork)?)
        } else if fork >= ForkName::Deneb {
            let (block, kzg_proofs, blobs) = split_contents::<E>(bytes, fork, "BlockContents")?;
            ProducedBlockData::Contents(BlockContents {
                block: BeaconBlock::from_ssz_bytes(block, fork)?,
                kzg_proofs,
                blobs,
            })
        } else {
            ProducedBlockData::Full(BeaconBlock::from_ssz_bytes(bytes, fork)?)
        };
        Ok(ProducedBlock {
            fork,
            data,
            execution_payload_value,
            consensus_block_value,
        })
    }

    /// The SSZ body a beacon node sends for this block when asked for
    /// `application/octet-stream`: the block, `BlockContents` (Deneb on),
    /// or the blinded block. The other fields go in headers.
    pub fn data_as_ssz_bytes(&self) -> Vec<u8> {
        match &self.data {
            ProducedBlockData::Full(block) => block.as_ssz_bytes(),
            ProducedBlockData::Contents(contents) => contents_ssz_bytes(
                &contents.block.as_ssz_bytes(),
                &contents.kzg_proofs,
                &contents.blobs,
            ),
            ProducedBlockData::Blinded(block) => block.as_ssz_bytes(),
        }
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

/// `container(block, kzg_proofs, blobs)` with `block` already encoded: the
/// SSZ of `BlockContents` and of `SignedBlockContents`.
fn contents_ssz_bytes(block: &[u8], kzg_proofs: &[KzgProof], blobs: &[Blob]) -> Vec<u8> {
    let fixed = 3 * OFFSET_LEN;
    let proofs_at = fixed + block.len();
    let blobs_at = proofs_at + kzg_proofs.len() * PROOF_LEN;
    let mut out = Vec::with_capacity(blobs_at + blobs.len() * BLOB_LEN);
    for offset in [fixed, proofs_at, blobs_at] {
        out.extend_from_slice(&(offset as u32).to_le_bytes());
    }
    out.extend_from_slice(block);
    for proof in kzg_proofs {
        out.extend_from_slice(proof.as_slice());
    }
    for blob in blobs {
        out.extend_from_slice(&blob.0);
    }
    out
}

/// A block's encoding, its proofs and its blobs.
type ContentsParts<'a> = (&'a [u8], Vec<KzgProof>, Vec<Blob>);

/// The block's bytes, the proofs and the blobs of an SSZ
/// `container(block, kzg_proofs, blobs)` in the layout of `fork` (Deneb or
/// later), with the offsets and the preset's list limits checked.
fn split_contents<'a, E: EthSpec>(
    bytes: &'a [u8],
    fork: ForkName,
    what: &'static str,
) -> Result<ContentsParts<'a>, Error> {
    if fork < ForkName::Deneb {
        return Err(Error::NotAtFork {
            container: what,
            fork,
        });
    }
    let fixed = 3 * OFFSET_LEN;
    if bytes.len() < fixed {
        return Err(ssz_error(
            what,
            format!("{} bytes is too short", bytes.len()),
        ));
    }
    let (block_at, proofs_at, blobs_at) = (
        read_offset(bytes, 0),
        read_offset(bytes, 4),
        read_offset(bytes, 8),
    );
    if block_at != fixed || proofs_at < block_at || blobs_at < proofs_at || blobs_at > bytes.len() {
        return Err(ssz_error(what, "offsets out of order or out of range"));
    }
    let proofs = &bytes[proofs_at..blobs_at];
    let blobs = &bytes[blobs_at..];
    if !proofs.len().is_multiple_of(PROOF_LEN) || !blobs.len().is_multiple_of(BLOB_LEN) {
        return Err(ssz_error(what, "proofs or blobs are not whole items"));
    }
    let max_proofs = if fork >= ForkName::Fulu {
        E::MaxCellProofsPerBlock::to_usize()
    } else {
        E::MaxBlobCommitmentsPerBlock::to_usize()
    };
    if proofs.len() / PROOF_LEN > max_proofs
        || blobs.len() / BLOB_LEN > E::MaxBlobCommitmentsPerBlock::to_usize()
    {
        return Err(ssz_error(
            what,
            "more proofs or blobs than the preset allows",
        ));
    }
    let blobs = blobs
        .chunks(BLOB_LEN)
        .map(|chunk| {
            FixedVector::new(chunk.to_vec())
                .map(Blob)
                .map_err(|e| ssz_error(what, format!("blob: {e:?}")))
        })
        .collect::<Result<_, _>>()?;
    Ok((
        &bytes[block_at..proofs_at],
        proofs.chunks(PROOF_LEN).map(KzgProof::from_slice).collect(),
        blobs,
    ))
}

/// A signed message of any fork-aware type (`{"message": …, "signature": …}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Signed<T> {
    /// The message.
    pub message: T,
    /// The signature over its signing root.
    pub signature: SignatureBytes,
}

/// Bytes of one SSZ offset.
const OFFSET_LEN: usize = 4;
/// Bytes of a compressed signature.
const SIGNATURE_LEN: usize = 96;
/// Bytes of a KZG proof (`BYTES_PER_PROOF`).
pub const BYTES_PER_PROOF: usize = 48;
/// Bytes of a blob (`BYTES_PER_BLOB`: 4096 field elements of 32 bytes).
pub const BYTES_PER_BLOB: usize = 131_072;
const PROOF_LEN: usize = BYTES_PER_PROOF;
const BLOB_LEN: usize = BYTES_PER_BLOB;

fn ssz_error(container: &'static str, reason: impl Into<String>) -> Error {
    Error::Ssz {
        container,
        reason: reason.into(),
    }
}

fn json_error(container: &'static str, reason: impl Into<String>) -> Error {
    Error::Json {
        container,
        reason: reason.into(),
    }
}

fn read_offset(bytes: &[u8], at: usize) -> usize {
    let mut word = [0u8; OFFSET_LEN];
    word.copy_from_slice(&bytes[at..at + OFFSET_LEN]);
    u32::from_le_bytes(word) as usize
}

/// Takes a field out of a JSON object.
fn take(
    map: &mut serde_json::Map<String, serde_json::Value>,
    container: &'static str,
    field: &str,
) -> Result<serde_json::Value, Error> {
    map.remove(field)
        .ok_or_else(|| json_error(container, format!("missing field `{field}`")))
}

macro_rules! signed_fork_codec {
    ($block:ident, $what:literal) => {
        impl<E: EthSpec> Signed<$block<E>> {
            /// The SSZ encoding: `container(message, signature)`.
            pub fn as_ssz_bytes(&self) -> Vec<u8> {
                let message = self.message.as_ssz_bytes();
                let mut out = Vec::with_capacity(OFFSET_LEN + SIGNATURE_LEN + message.len());
                out.extend_from_slice(&((OFFSET_LEN + SIGNATURE_LEN) as u32).to_le_bytes());
                out.extend_from_slice(self.signature.as_slice());
                out.extend_from_slice(&message);
                out
            }

            /// Decodes SSZ in the layout of `fork`.
            pub fn from_ssz_bytes(bytes: &[u8], fork: ForkName) -> Result<Self, Error> {
                let fixed = OFFSET_LEN + SIGNATURE_LEN;
                if bytes.len() < fixed {
                    return Err(ssz_error(
                        $what,
                        format!("{} bytes is too short", bytes.len()),
                    ));
                }
                if read_offset(bytes, 0) != fixed {
                    return Err(ssz_error($what, "the message offset must be 100"));
                }
                Ok(Signed {
                    message: $block::from_ssz_bytes(&bytes[fixed..], fork)?,
                    signature: SignatureBytes::from_slice(&bytes[OFFSET_LEN..fixed]),
                })
            }

            /// Decodes JSON in the layout of `fork`.
            pub fn from_json_value(
                value: serde_json::Value,
                fork: ForkName,
            ) -> Result<Self, Error> {
                let serde_json::Value::Object(mut map) = value else {
                    return Err(json_error($what, "expected an object"));
                };
                let message = take(&mut map, $what, "message")?;
                let signature = serde_json::from_value(take(&mut map, $what, "signature")?)
                    .map_err(|e| json_error($what, format!("signature: {e}")))?;
                Ok(Signed {
                    message: $block::from_json_value(message, fork)?,
                    signature,
                })
            }
        }
    };
}

signed_fork_codec!(BeaconBlock, "SignedBeaconBlock");
signed_fork_codec!(BlindedBeaconBlock, "SignedBlindedBeaconBlock");

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

impl<E: EthSpec> SignedBlockContents<E> {
    const WHAT: &'static str = "SignedBlockContents";

    /// The SSZ encoding: `container(signed_block, kzg_proofs, blobs)`.
    pub fn as_ssz_bytes(&self) -> Vec<u8> {
        contents_ssz_bytes(
            &self.signed_block.as_ssz_bytes(),
            &self.kzg_proofs,
            &self.blobs,
        )
    }

    /// Decodes SSZ in the layout of `fork` (Deneb or later), checking the
    /// offsets and the list limits of the preset.
    pub fn from_ssz_bytes(bytes: &[u8], fork: ForkName) -> Result<Self, Error> {
        let (block, kzg_proofs, blobs) = split_contents::<E>(bytes, fork, Self::WHAT)?;
        Ok(SignedBlockContents {
            signed_block: SignedBeaconBlock::from_ssz_bytes(block, fork)?,
            kzg_proofs,
            blobs,
        })
    }

    /// Decodes JSON in the layout of `fork`.
    pub fn from_json_value(value: serde_json::Value, fork: ForkName) -> Result<Self, Error> {
        let serde_json::Value::Object(mut map) = value else {
            return Err(json_error(Self::WHAT, "expected an object"));
        };
        let signed_block = take(&mut map, Self::WHAT, "signed_block")?;
        let kzg_proofs = serde_json::from_value(take(&mut map, Self::WHAT, "kzg_proofs")?)
            .map_err(|e| json_error(Self::WHAT, format!("kzg_proofs: {e}")))?;
        let blobs = serde_json::from_value(take(&mut map, Self::WHAT, "blobs")?)
            .map_err(|e| json_error(Self::WHAT, format!("blobs: {e}")))?;
        Ok(SignedBlockContents {
            signed_block: SignedBeaconBlock::from_json_value(signed_block, fork)?,
            kzg_proofs,
            blobs,
        })
    }
}
