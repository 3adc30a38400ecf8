//! Sealing a message to one operator's node key (ECIES on secp256k1) so
//! that a dispute about it can be settled by everyone.
//!
//! The sender picks an ephemeral key e, publishes E = e·G, and derives the
//! symmetric key from the shared point S = e·P (P the recipient's key),
//! the context and both public points; the message is encrypted with
//! AES-256-CTR and authenticated with HMAC-SHA256. The recipient finds S =
//! x·E. If it must prove what a sealed message contained (to accuse its
//! sender), it reveals S with a Chaum–Pedersen proof that log_G(P) =
//! log_E(S), so anyone can open the message without learning x.

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use k256::elliptic_curve::group::GroupEncoding;
use k256::elliptic_curve::ops::Reduce;
use k256::{ProjectivePoint, Scalar};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::NodeKey;

type Aes256Ctr = ctr::Ctr64BE<aes::Aes256>;

const KDF_DOMAIN: &[u8] = b"PHALANX-SEAL-SECP256K1-AES256CTR-HMACSHA256-V1";
const DLEQ_DOMAIN: &[u8] = b"PHALANX-SEAL-DLEQ-SECP256K1-V1";

/// A message sealed to one recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The sender's ephemeral public key E, compressed.
    pub ephemeral: Vec<u8>,
    /// The encrypted message.
    pub ciphertext: Vec<u8>,
    /// HMAC-SHA256 over the ciphertext.
    pub tag: [u8; 32],
}

/// The recipient's disclosure of a sealed message's shared point, with a
/// proof that it is the right one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disclosure {
    /// S = x·E, compressed.
    pub shared: Vec<u8>,
    /// Proof: A = k·G, compressed.
    pub a: Vec<u8>,
    /// Proof: B = k·E, compressed.
    pub b: Vec<u8>,
    /// Proof: z = k + c·x.
    pub z: [u8; 32],
}

/// Why a sealed message cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// A point that is not on the curve.
    #[error("invalid point")]
    InvalidPoint,
    /// The tag does not match: wrong key, wrong context, or a corrupt message.
    #[error("authentication failed")]
    Authentication,
    /// A disclosure whose proof does not verify.
    #[error("disclosure proof does not verify")]
    BadDisclosure,
}

fn decode_point(bytes: &[u8]) -> Result<ProjectivePoint, SealError> {
    let array = k256::CompressedPoint::try_from(bytes).map_err(|_| SealError::InvalidPoint)?;
    Option::<ProjectivePoint>::from(ProjectivePoint::from_bytes(&array))
        .filter(|p| !bool::from(k256::elliptic_curve::group::Group::is_identity(p)))
        .ok_or(SealError::InvalidPoint)
}

fn encode_point(point: &ProjectivePoint) -> Vec<u8> {
    point.to_bytes().to_vec()
}

fn random_scalar() -> Scalar {
    let mut wide = [0u8; 64];
    rand::rngs::OsRng.fill_bytes(&mut wide);
    let scalar = Scalar::reduce(&k256::WideBytes::from(wide));
    wide.fill(0);
    scalar
}

fn secret_scalar(key: &NodeKey) -> Scalar {
    let bytes = k256::FieldBytes::from(key.secret_bytes());
    Scalar::reduce(&bytes)
}

/// (encryption key, MAC key) from the shared point and everything public.
fn derive_keys(
    shared: &[u8],
    ephemeral: &[u8],
    recipient: &[u8],
    context: &[u8],
) -> ([u8; 32], [u8; 32]) {
    let part = |label: u8| -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(KDF_DOMAIN);
        hash.update([label]);
        hash.update(shared);
        hash.update(ephemeral);
        hash.update(recipient);
        hash.update((context.len() as u64).to_be_bytes());
        hash.update(context);
        hash.finalize().into()
    };
    (part(1), part(2))
}

fn mac(key: &[u8; 32], ciphertext: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(ciphertext);
    mac.finalize().into_bytes().into()
}

fn apply_keystream(key: &[u8; 32], data: &mut [u8]) {
    // Each key encrypts one message, so a zero IV is safe.
    let mut cipher = Aes256Ctr::new(key.into(), &[0u8; 16].into());
    cipher.apply_keystream(data);
}

/// Seals `plaintext` to the holder of `recipient` (a compressed public key).
pub fn seal(recipient: &[u8; 33], plaintext: &[u8], context: &[u8]) -> Result<Sealed, SealError> {
    let recipient_point = decode_point(recipient)?;
    let e = random_scalar();
    let ephemeral = encode_point(&(ProjectivePoint::GENERATOR * e));
    let shared = encode_point(&(recipient_point * e));
    let (enc_key, mac_key) = derive_keys(&shared, &ephemeral, recipient, context);
    let mut ciphertext = plaintext.to_vec();
    apply_keystream(&enc_key, &mut ciphertext);
    let tag = mac(&mac_key, &ciphertext);
    Ok(Sealed {
        ephemeral,
        ciphertext,
        tag,
    })
}

fn open_with_shared(
    shared: &[u8],
    recipient: &[u8; 33],
    sealed: &Sealed,
    context: &[u8],
) -> Result<Vec<u8>, SealError> {
    let (enc_key, mac_key) = derive_keys(shared, &sealed.ephemeral, recipient, context);
    let expected = mac(&mac_key, &sealed.ciphertext);
    if !constant_time_eq(&expected, &sealed.tag) {
        return Err(SealError::Authentication);
    }
    let mut plaintext = sealed.ciphertext.clone();
    apply_keystream(&enc_key, &mut plaintext);
    Ok(plaintext)
}

/// Opens a message sealed to `key`.
pub fn open(key: &NodeKey, sealed: &Sealed, context: &[u8]) -> Result<Vec<u8>, SealError> {
    let ephemeral = decode_point(&sealed.ephemeral)?;
    let shared = encode_point(&(ephemeral * secret_scalar(key)));
    open_with_shared(&shared, &key.public_key(), sealed, context)
}

fn dleq_challenge(p: &[u8], e: &[u8], s: &[u8], a: &[u8], b: &[u8]) -> Scalar {
    let mut wide = [0u8; 64];
    for (half, out) in wide.chunks_mut(32).enumerate() {
        let mut hash = Sha256::new();
        hash.update(DLEQ_DOMAIN);
        hash.update([half as u8]);
        for part in [p, e, s, a, b] {
            hash.update(part);
        }
        out.copy_from_slice(&hash.finalize());
    }
    Scalar::reduce(&k256::WideBytes::from(wide))
}

/// Discloses the shared point of a message sealed to `key`, with its proof.
pub fn disclose(key: &NodeKey, sealed: &Sealed) -> Result<Disclosure, SealError> {
    let e_point = decode_point(&sealed.ephemeral)?;
    let x = secret_scalar(key);
    let shared = encode_point(&(e_point * x));
    let k = random_scalar();
    let a = encode_point(&(ProjectivePoint::GENERATOR * k));
    let b = encode_point(&(e_point * k));
    let c = dleq_challenge(&key.public_key(), &sealed.ephemeral, &shared, &a, &b);
    let z = k + c * x;
    Ok(Disclosure {
        shared,
        a,
        b,
        z: z.to_bytes().into(),
    })
}

/// Opens a sealed message with a recipient's disclosure, after checking
/// its proof: anyone can do this, nobody learns the recipient's key.
pub fn open_disclosed(
    recipient: &[u8; 33],
    sealed: &Sealed,
    disclosure: &Disclosure,
    context: &[u8],
) -> Result<Vec<u8>, SealError> {
    let p = decode_point(recipient)?;
    let e = decode_point(&sealed.ephemeral)?;
    let s = decode_point(&disclosure.shared)?;
    let a = decode_point(&disclosure.a)?;
    let b = decode_point(&disclosure.b)?;
    let z_bytes = k256::FieldBytes::from(disclosure.z);
    let z = Option::<Scalar>::from(<Scalar as k256::elliptic_curve::PrimeField>::from_repr(
        z_bytes,
    ))
    .ok_or(SealError::BadDisclosure)?;
    let c = dleq_challenge(
        recipient,
        &sealed.ephemeral,
        &disclosure.shared,
        &disclosure.a,
        &disclosure.b,
    );
    if ProjectivePoint::GENERATOR * z != a + p * c || e * z != b + s * c {
        return Err(SealError::BadDisclosure);
    }
    open_with_shared(&disclosure.shared, recipient, sealed, context)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_recipient_opens_and_a_disclosure_lets_anyone_check() {
        let recipient = NodeKey::generate();
        let other = NodeKey::generate();
        let sealed = seal(&recipient.public_key(), b"share bytes", b"ctx").expect("seals");
        assert_eq!(
            open(&recipient, &sealed, b"ctx").expect("opens"),
            b"share bytes"
        );
        assert_eq!(
            open(&other, &sealed, b"ctx"),
            Err(SealError::Authentication)
        );
        assert_eq!(
            open(&recipient, &sealed, b"other ctx"),
            Err(SealError::Authentication)
        );

        let disclosure = disclose(&recipient, &sealed).expect("discloses");
        assert_eq!(
            open_disclosed(&recipient.public_key(), &sealed, &disclosure, b"ctx").expect("opens"),
            b"share bytes"
        );
        // A disclosure by the wrong key, or a forged shared point, fails its proof.
        let wrong = disclose(&other, &sealed).expect("discloses");
        assert_eq!(
            open_disclosed(&recipient.public_key(), &sealed, &wrong, b"ctx"),
            Err(SealError::BadDisclosure)
        );
        let mut forged = disclosure.clone();
        forged.shared = wrong.shared.clone();
        assert_eq!(
            open_disclosed(&recipient.public_key(), &sealed, &forged, b"ctx"),
            Err(SealError::BadDisclosure)
        );
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(
            open(&recipient, &tampered, b"ctx"),
            Err(SealError::Authentication)
        );
    }
}
