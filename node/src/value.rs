//! The values the cluster agrees on, as consensus carries them: the SSZ
//! bytes of a duty's unsigned data. SSZ makes the bytes, and so the value
//! hash every operator signs, the same on every node.

use phalanx_consensus::{Value, ValueHash};
use phalanx_eth::attestation::AttestationData;
use phalanx_eth::CommitteeIndex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ssz::{Decode, Encode};

/// A duty's unsigned data, encoded.
///
/// On the wire it is its length and its bytes, as a sequence of bytes
/// would be, but read in one allocation of its size: read element by
/// element, a block-sized value grew by doubling, with a copy at each
/// step and a quarter of its size left unused.
#[derive(Clone, PartialEq, Eq)]
pub struct DutyValue(pub Vec<u8>);

impl Serialize for DutyValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for DutyValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_byte_buf(BytesVisitor)
            .map(DutyValue)
    }
}

/// Reads bytes from a format that has them (one allocation of their
/// length, checked against the input first), or from a sequence of
/// numbers (JSON).
struct BytesVisitor;

impl<'de> serde::de::Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bytes")
    }

    fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(bytes)
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
        Ok(bytes.to_vec())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        // As serde does for any sequence: no more than 1 MiB before the
        // elements are there.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(byte) = seq.next_element()? {
            bytes.push(byte);
        }
        Ok(bytes)
    }
}

impl std::fmt::Debug for DutyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DutyValue({} bytes)", self.0.len())
    }
}

impl Value for DutyValue {
    fn value_hash(&self) -> ValueHash {
        ValueHash(Sha256::digest(&self.0).into())
    }

    fn byte_len(&self) -> usize {
        self.0.len()
    }
}

/// Bytes of one committee's entry: the committee index and its data.
const ATTESTER_ENTRY: usize = 8 + 128;

/// The attestation data of a slot's committees (sorted by committee).
pub fn encode_attestation_data(entries: &[(CommitteeIndex, AttestationData)]) -> DutyValue {
    let mut bytes = Vec::with_capacity(entries.len() * ATTESTER_ENTRY);
    for (committee, data) in entries {
        bytes.extend_from_slice(&committee.0.to_le_bytes());
        bytes.extend_from_slice(&data.as_ssz_bytes());
    }
    DutyValue(bytes)
}

/// Decodes [`encode_attestation_data`]'s bytes; committees must be sorted
/// and distinct.
pub fn decode_attestation_data(
    value: &DutyValue,
) -> Result<Vec<(CommitteeIndex, AttestationData)>, String> {
    if value.0.is_empty() || !value.0.len().is_multiple_of(ATTESTER_ENTRY) {
        return Err(format!(
            "{} bytes is not a list of committees' attestation data",
            value.0.len()
        ));
    }
    let mut entries: Vec<(CommitteeIndex, AttestationData)> = Vec::new();
    for chunk in value.0.chunks_exact(ATTESTER_ENTRY) {
        let mut index = [0u8; 8];
        index.copy_from_slice(&chunk[..8]);
        let committee = CommitteeIndex(u64::from_le_bytes(index));
        let data = AttestationData::from_ssz_bytes(&chunk[8..])
            .map_err(|e| format!("attestation data: {e:?}"))?;
        if entries.last().is_some_and(|(last, _)| *last >= committee) {
            return Err("committees are not sorted and distinct".into());
        }
        entries.push((committee, data));
    }
    Ok(entries)
}

/// A list of keyed, variable-length entries (aggregates by committee,
/// contributions by subcommittee): per entry the key (u64 LE), the length
/// (u32 LE) and the bytes; keys sorted and distinct.
pub fn encode_entries(entries: &[(u64, Vec<u8>)]) -> DutyValue {
    let mut bytes = Vec::with_capacity(entries.iter().map(|(_, b)| 12 + b.len()).sum());
    for (key, entry) in entries {
        bytes.extend_from_slice(&key.to_le_bytes());
        bytes.extend_from_slice(&(entry.len() as u32).to_le_bytes());
        bytes.extend_from_slice(entry);
    }
    DutyValue(bytes)
}

/// Decodes [`encode_entries`]'s bytes.
pub fn decode_entries(value: &DutyValue) -> Result<Vec<(u64, &[u8])>, String> {
    let mut rest = value.0.as_slice();
    let mut entries: Vec<(u64, &[u8])> = Vec::new();
    if rest.is_empty() {
        return Err("an empty list".into());
    }
    while !rest.is_empty() {
        if rest.len() < 12 {
            return Err("an entry is cut short".into());
        }
        let key = u64::from_le_bytes(rest[..8].try_into().unwrap_or_default());
        let length = u32::from_le_bytes(rest[8..12].try_into().unwrap_or_default()) as usize;
        rest = &rest[12..];
        if rest.len() < length {
            return Err(format!(
                "entry {key} claims {length} bytes, {} remain",
                rest.len()
            ));
        }
        if entries.last().is_some_and(|(last, _)| *last >= key) {
            return Err("entries are not sorted and distinct".into());
        }
        entries.push((key, &rest[..length]));
        rest = &rest[length..];
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_eth::attestation::Checkpoint;
    use phalanx_eth::{Epoch, Root, Slot};

    #[test]
    fn attestation_data_round_trips_and_bad_bytes_are_refused() {
        let data = |index| AttestationData {
            slot: Slot(9),
            index: CommitteeIndex(index),
            beacon_block_root: Root::repeat_byte(1),
            source: Checkpoint {
                epoch: Epoch(0),
                root: Root::ZERO,
            },
            target: Checkpoint {
                epoch: Epoch(1),
                root: Root::repeat_byte(2),
            },
        };
        let entries = vec![(CommitteeIndex(0), data(0)), (CommitteeIndex(3), data(3))];
        let value = encode_attestation_data(&entries);
        assert_eq!(decode_attestation_data(&value), Ok(entries.clone()));
        let other = encode_attestation_data(&entries[..1]);
        assert_ne!(value.value_hash(), other.value_hash());
        let mut cut = value.clone();
        cut.0.pop();
        assert!(decode_attestation_data(&cut).is_err());
        let unsorted = encode_attestation_data(&[entries[1], entries[0]]);
        assert!(decode_attestation_data(&unsorted).is_err());
        assert!(decode_attestation_data(&DutyValue(Vec::new())).is_err());
    }

    #[test]
    fn entries_round_trip_and_bad_bytes_are_refused() {
        let entries = vec![(1, vec![1, 2, 3]), (4, Vec::new()), (9, vec![7; 300])];
        let value = encode_entries(&entries);
        let decoded: Vec<(u64, Vec<u8>)> = decode_entries(&value)
            .unwrap()
            .into_iter()
            .map(|(k, b)| (k, b.to_vec()))
            .collect();
        assert_eq!(decoded, entries);
        let mut cut = value.clone();
        cut.0.pop();
        assert!(decode_entries(&cut).is_err());
        let unsorted = encode_entries(&[entries[1].clone(), entries[0].clone()]);
        assert!(decode_entries(&unsorted).is_err());
        assert!(decode_entries(&DutyValue(Vec::new())).is_err());
        assert!(decode_entries(&DutyValue(vec![0; 11])).is_err());
    }

    /// The encoding of the value before it was read as bytes: a sequence
    /// of u8.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct AsSequence(Vec<u8>);

    #[test]
    fn a_value_reads_in_one_allocation_of_its_size_with_the_same_bytes() {
        // A block-sized value (13 MB): read element by element it grew
        // by doubling, to 16 MiB, with a copy at each step.
        let len = 13_000_003;
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let limit = len + 64;
        let encoded = phalanx_p2p::encode(&DutyValue(bytes.clone()), limit).expect("encode");
        assert_eq!(
            encoded,
            phalanx_p2p::encode(&AsSequence(bytes.clone()), limit).expect("encode"),
            "the wire does not change"
        );
        let decoded: DutyValue = phalanx_p2p::decode(&encoded, limit).expect("decode");
        assert_eq!(decoded.0, bytes);
        assert_eq!(decoded.0.capacity(), len);
        // A length beyond the bytes given is refused before any allocation.
        let mut cut = encoded.clone();
        cut.truncate(1000);
        assert!(phalanx_p2p::decode::<DutyValue>(&cut, limit).is_err());
        // JSON (traces and files) keeps its list of numbers.
        let small = DutyValue(vec![1, 2, 250]);
        let json = serde_json::to_string(&small).expect("json");
        assert_eq!(
            json,
            serde_json::to_string(&AsSequence(vec![1, 2, 250])).unwrap()
        );
        assert_eq!(
            serde_json::from_str::<DutyValue>(&json).expect("json"),
            small
        );
    }
}
