//! The faults a client can inject: how each [`Misbehaviour`] signs, and
//! malformed bodies posted past the typed client.

use std::time::Duration;

use phalanx_crypto::SecretKey;
use phalanx_eth::client::CONSENSUS_VERSION_HEADER;
use phalanx_eth::{ForkName, PublicKeyBytes, Root, SignatureBytes};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::stats::DutyError;
use super::Misbehaviour;

/// One key the client signs with.
pub(super) struct Validator {
    key: SecretKey,
    pub(super) pubkey: PublicKeyBytes,
    /// The key [`Misbehaviour::WrongKey`] signs with instead: derived from
    /// the public key, so a run is reproducible.
    impostor: Option<SecretKey>,
}

impl Validator {
    pub(super) fn new(key: SecretKey, misbehaviour: Misbehaviour) -> Validator {
        let public = key.public_key();
        let impostor = (misbehaviour == Misbehaviour::WrongKey)
            .then(|| {
                let seed = tagged_hash(b"phalanx-sim vc impostor key", public.as_bytes());
                phalanx_crypto::derivation::derive_master_sk(&seed).ok()
            })
            .flatten();
        Validator {
            pubkey: PublicKeyBytes::from(public.to_bytes()),
            key,
            impostor,
        }
    }

    /// The signature over `root`, as `misbehaviour` would send it.
    pub(super) fn sign(&self, root: Root, misbehaviour: Misbehaviour) -> SignatureBytes {
        match misbehaviour {
            Misbehaviour::Honest | Misbehaviour::MalformedJson => {
                SignatureBytes::from(self.key.sign(root.as_slice()).to_bytes())
            }
            Misbehaviour::GarbageSignatures => {
                let mut bytes = [0u8; 96];
                for (i, chunk) in bytes.chunks_mut(32).enumerate() {
                    chunk.copy_from_slice(&tagged_hash(&[i as u8], root.as_slice()));
                }
                // Without the compression flag 96 bytes never decode as a
                // G2 point, so the garbage is never accidentally valid.
                bytes[0] &= 0x1f;
                SignatureBytes::from(bytes)
            }
            Misbehaviour::WrongKey => {
                let key = self.impostor.as_ref().unwrap_or(&self.key);
                SignatureBytes::from(key.sign(root.as_slice()).to_bytes())
            }
            Misbehaviour::WrongMessage => {
                let other = tagged_hash(b"phalanx-sim vc wrong message", root.as_slice());
                SignatureBytes::from(self.key.sign(&other).to_bytes())
            }
        }
    }
}

/// `sha256(tag ‖ data)`, for the misbehaviours' deterministic substitutes.
fn tagged_hash(tag: &[u8], data: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(tag);
    hasher.update(data);
    hasher.finalize().into()
}

/// A body that is not valid JSON for its endpoint: the real one cut in half.
fn malformed(body: &impl Serialize) -> Vec<u8> {
    let mut json = serde_json::to_vec(body).unwrap_or_else(|_| b"[{".to_vec());
    json.truncate((json.len() / 2).max(1));
    json
}

/// Posts deliberately malformed bodies, which the typed client cannot send.
pub(super) struct RawPoster {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) timeout: Duration,
}

impl RawPoster {
    pub(super) async fn post(
        &self,
        endpoint: &'static str,
        path: &str,
        fork: Option<ForkName>,
        body: &impl Serialize,
    ) -> Result<(), DutyError> {
        let mut request = self
            .http
            .post(format!("{}/{path}", self.base))
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(malformed(body));
        if let Some(fork) = fork {
            request = request.header(CONSENSUS_VERSION_HEADER, fork.as_str());
        }
        let response = request.send().await.map_err(|error| DutyError::Transport {
            endpoint,
            reason: error.without_url().to_string(),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let bytes = response.bytes().await.unwrap_or_default();
        Err(DutyError::Rejected {
            endpoint,
            status: status.as_u16(),
            message: server_message(&bytes),
        })
    }
}

/// The `message` of a beacon-API error body, or the start of the body.
fn server_message(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ApiError {
        message: String,
    }
    match serde_json::from_slice::<ApiError>(bytes) {
        Ok(error) => error.message,
        Err(_) => String::from_utf8_lossy(bytes).chars().take(300).collect(),
    }
}

/// A node that accepts a malformed selection request answers nothing usable.
pub(super) fn accepted_malformed() -> DutyError {
    DutyError::Unusable("the node accepted a malformed body; no selections came back".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_eth::api::ProposerPreparation;
    use phalanx_eth::ValidatorIndex;

    use crate::vc::FEE_RECIPIENT;
    use phalanx_crypto::{PublicKey, Signature};

    fn key(byte: u8) -> SecretKey {
        phalanx_crypto::derivation::derive_master_sk(&[byte; 32]).expect("32-byte seed")
    }

    fn decode(signature: &SignatureBytes) -> Option<Signature> {
        Signature::from_bytes(signature.as_slice()).ok()
    }

    #[test]
    fn each_misbehaviour_breaks_signatures_its_own_way() {
        let root = Root::repeat_byte(9);
        let public = key(1).public_key();

        let honest = Validator::new(key(1), Misbehaviour::Honest);
        let signature = decode(&honest.sign(root, Misbehaviour::Honest)).expect("a G2 point");
        assert!(signature.verify(&public, root.as_slice()));
        assert_eq!(
            honest.sign(root, Misbehaviour::MalformedJson),
            honest.sign(root, Misbehaviour::Honest)
        );

        let garbage = honest.sign(root, Misbehaviour::GarbageSignatures);
        assert!(decode(&garbage).is_none());

        let wrong_key = Validator::new(key(1), Misbehaviour::WrongKey);
        let impostor: PublicKey = wrong_key
            .impostor
            .as_ref()
            .expect("an impostor key")
            .public_key();
        assert_ne!(impostor, public);
        let signature = decode(&wrong_key.sign(root, Misbehaviour::WrongKey)).expect("a G2 point");
        assert!(!signature.verify(&public, root.as_slice()));
        assert!(signature.verify(&impostor, root.as_slice()));

        let signature = decode(&honest.sign(root, Misbehaviour::WrongMessage)).expect("a G2 point");
        assert!(!signature.verify(&public, root.as_slice()));
    }

    #[test]
    fn malformed_bodies_do_not_parse() {
        let body = vec![ProposerPreparation {
            validator_index: ValidatorIndex(1),
            fee_recipient: FEE_RECIPIENT,
        }];
        assert!(serde_json::to_vec(&body).is_ok());
        assert!(serde_json::from_slice::<serde_json::Value>(&malformed(&body)).is_err());
        let empty: Vec<u8> = Vec::new();
        assert!(serde_json::from_slice::<serde_json::Value>(&malformed(&empty)).is_err());
    }
}
