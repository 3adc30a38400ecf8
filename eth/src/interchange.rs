//! The slashing-protection interchange format of EIP-3076 (version 5):
//! what a validator has signed, carried between clients so a migrated key
//! cannot be made to sign a conflicting block or attestation.

use serde::{Deserialize, Serialize};

use crate::primitives::{Epoch, PublicKeyBytes, Root, Slot};

/// The only interchange version in use.
pub const INTERCHANGE_FORMAT_VERSION: &str = "5";

/// An interchange file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interchange {
    /// Format version and network.
    pub metadata: InterchangeMetadata,
    /// Per validator, what it signed.
    pub data: Vec<InterchangeValidator>,
}

/// The file's metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterchangeMetadata {
    /// Always "5".
    pub interchange_format_version: String,
    /// The network the history belongs to.
    pub genesis_validators_root: Root,
}

/// One validator's signing history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterchangeValidator {
    /// The validator.
    pub pubkey: PublicKeyBytes,
    /// Blocks it signed.
    pub signed_blocks: Vec<SignedBlock>,
    /// Attestations it signed.
    pub signed_attestations: Vec<SignedAttestation>,
}

/// A signed block's slot (and signing root, if known).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBlock {
    /// Its slot.
    pub slot: Slot,
    /// Its signing root, if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_root: Option<Root>,
}

/// A signed attestation's source and target (and signing root, if known).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAttestation {
    /// Source epoch.
    pub source_epoch: Epoch,
    /// Target epoch.
    pub target_epoch: Epoch,
    /// Its signing root, if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_root: Option<Root>,
}

impl Interchange {
    /// Parses a file and checks its version.
    pub fn from_json(text: &str) -> Result<Interchange, String> {
        let interchange: Interchange = serde_json::from_str(text)
            .map_err(|e| format!("not an EIP-3076 interchange file: {e}"))?;
        if interchange.metadata.interchange_format_version != INTERCHANGE_FORMAT_VERSION {
            return Err(format!(
                "interchange format version {:?} is not supported (only \"5\")",
                interchange.metadata.interchange_format_version
            ));
        }
        Ok(interchange)
    }

    /// Only the history of the given validators.
    pub fn filtered(&self, keys: &[PublicKeyBytes]) -> Interchange {
        Interchange {
            metadata: self.metadata.clone(),
            data: self
                .data
                .iter()
                .filter(|v| keys.contains(&v.pubkey))
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interchange_file_round_trips_and_filters() {
        let text = r#"{
          "metadata": {"interchange_format_version": "5",
            "genesis_validators_root": "0x04700007fabc8282644aed6d1c7c9e21d38a03a0c4ba193f3afe428824b3a673"},
          "data": [{
            "pubkey": "0xb845089a1457f811bfc000588fbb4e713669be8ce060ea6be3c6ece09afc3794106c91ca73acda5e5457122d58723bed",
            "signed_blocks": [{"slot": "81952", "signing_root": "0x4ff6f743a43f3b4f95350831aeaf0a122a1a392922c45d804280284a69eb850b"}, {"slot": "81951"}],
            "signed_attestations": [{"source_epoch": "2290", "target_epoch": "3007"}]
          }]
        }"#;
        let interchange = Interchange::from_json(text).expect("parses");
        assert_eq!(interchange.data[0].signed_blocks[0].slot, Slot(81952));
        assert_eq!(interchange.data[0].signed_blocks[1].signing_root, None);
        let back: Interchange =
            serde_json::from_str(&serde_json::to_string(&interchange).expect("json"))
                .expect("parses");
        assert_eq!(back, interchange);
        assert!(interchange
            .filtered(&[PublicKeyBytes::ZERO])
            .data
            .is_empty());
        assert!(Interchange::from_json(&text.replace("\"5\"", "\"4\"")).is_err());
    }
}
