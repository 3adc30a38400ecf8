//! The signature scheme the core checks and combines the validators'
//! signatures with. A real node uses [`Bls`], Ethereum's BLS12-381
//! signatures; the simulator may plug in a cheap scheme with the same
//! threshold behaviour (t partials combine, t − 1 do not, a wrong partial
//! is detected) to sweep thousands of runs.
//!
//! The core never holds a secret: validator clients sign, and the core only
//! decodes, verifies and combines.

use std::fmt::Debug;

use phalanx_crypto::batch::SignatureSet;
use phalanx_crypto::threshold::{PartialSignature, ShareIndex};
use phalanx_crypto::{PublicKey, Signature};
use phalanx_eth::{PublicKeyBytes, SignatureBytes};
use rand::{CryptoRng, RngCore};

/// One signature to check: `signature` over `message` by `public_key`.
pub struct Check<'a, S: SignatureScheme> {
    /// The signed bytes (a signing root).
    pub message: &'a [u8],
    /// The key that should have signed.
    pub public_key: &'a S::PublicKey,
    /// The signature.
    pub signature: &'a S::Signature,
}

/// A share's signature, tagged with the share's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partial<G> {
    /// The signer's share index (operator index + 1).
    pub index: ShareIndex,
    /// The signature.
    pub signature: G,
}

impl From<PartialSignature> for Partial<Signature> {
    fn from(partial: PartialSignature) -> Self {
        Partial {
            index: partial.index,
            signature: partial.signature,
        }
    }
}

/// What the core needs of a threshold signature scheme.
pub trait SignatureScheme: Clone + Debug + Send + Sync + 'static {
    /// A decoded public key (group key or share).
    type PublicKey: Clone + Debug + Send + Sync;
    /// A decoded signature.
    type Signature: Copy + Debug + PartialEq + Send + Sync;

    /// The key as the beacon chain names it.
    fn public_key_bytes(key: &Self::PublicKey) -> PublicKeyBytes;

    /// Decodes a signature, refusing what is not one.
    fn decode_signature(bytes: &[u8]) -> Result<Self::Signature, String>;

    /// The signature as the beacon chain carries it.
    fn signature_bytes(signature: &Self::Signature) -> SignatureBytes;

    /// Whether `signature` over `message` verifies under `key`.
    fn verify(key: &Self::PublicKey, message: &[u8], signature: &Self::Signature) -> bool;

    /// The indices in `checks` of the signatures that do not verify (all are checked
    /// together where the scheme allows; `rng` draws the batch weights).
    fn find_invalid<R: RngCore + CryptoRng>(checks: &[Check<'_, Self>], rng: &mut R) -> Vec<usize>;

    /// Whether every signature in `checks` verifies, checked together
    /// (false for none). Unlike [`Self::find_invalid`] it never bisects: a
    /// failing batch costs what a passing one does, so a peer's batch is
    /// checked with it and refused whole. The default asks `find_invalid`;
    /// a scheme whose bisection costs more than one check overrides it.
    fn verify_all<R: RngCore + CryptoRng>(checks: &[Check<'_, Self>], rng: &mut R) -> bool {
        !checks.is_empty() && Self::find_invalid(checks, rng).is_empty()
    }

    /// Combines the first `threshold` partials into the group signature,
    /// without verifying it.
    fn combine(
        partials: &[Partial<Self::Signature>],
        threshold: usize,
    ) -> Result<Self::Signature, String>;
}

/// Ethereum's BLS signatures (`phalanx-crypto`, on blst): what every real
/// node uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bls;

impl SignatureScheme for Bls {
    type PublicKey = PublicKey;
    type Signature = Signature;

    fn public_key_bytes(key: &PublicKey) -> PublicKeyBytes {
        PublicKeyBytes::from(key.to_bytes())
    }

    fn decode_signature(bytes: &[u8]) -> Result<Signature, String> {
        Signature::from_bytes(bytes).map_err(|e| format!("not a valid BLS signature: {e}"))
    }

    fn signature_bytes(signature: &Signature) -> SignatureBytes {
        SignatureBytes::from(signature.to_bytes())
    }

    fn verify(key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
        signature.verify(key, message)
    }

    fn find_invalid<R: RngCore + CryptoRng>(checks: &[Check<'_, Self>], rng: &mut R) -> Vec<usize> {
        let sets: Vec<SignatureSet<'_>> = checks
            .iter()
            .map(|c| SignatureSet::new(c.message, c.public_key, c.signature))
            .collect();
        phalanx_crypto::batch::find_invalid(&sets, rng)
    }

    fn verify_all<R: RngCore + CryptoRng>(checks: &[Check<'_, Self>], rng: &mut R) -> bool {
        let sets: Vec<SignatureSet<'_>> = checks
            .iter()
            .map(|c| SignatureSet::new(c.message, c.public_key, c.signature))
            .collect();
        phalanx_crypto::batch::verify_signature_sets(&sets, rng)
    }

    fn combine(partials: &[Partial<Signature>], threshold: usize) -> Result<Signature, String> {
        let partials: Vec<PartialSignature> = partials
            .iter()
            .map(|p| PartialSignature::new(p.index, p.signature))
            .collect();
        phalanx_crypto::threshold::combine(&partials, threshold).map_err(|e| e.to_string())
    }
}
