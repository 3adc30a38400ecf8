//! Batch verification of many (message, public key, signature) sets.
//!
//! Each set is weighted by a random 64-bit scalar r_i and all are checked
//! with one final exponentiation: Π e(r_i·pk_i, H(m_i)) = e(G1, Σ r_i·σ_i).
//! Without the random weights, two bad signatures could cancel out.
//!
//! When a batch fails the node must still name who sent the bad partial, so
//! [`find_invalid`] bisects: it re-checks the left half, and if that passes
//! the fault must be in the right half, which is then split without being
//! checked as a whole. One bad entry among n costs about n further pairings.

use blst::{blst_scalar, min_pk, BLST_ERROR};
use rand_core::{CryptoRng, RngCore};

use crate::bls::{PublicKey, Signature, DST};

/// Bits of randomness per set: forging a batch succeeds with probability 2^-64.
const RANDOM_BITS: usize = 64;

/// One signature to check: `signature` by `public_key` over `message`.
#[derive(Clone, Copy, Debug)]
pub struct SignatureSet<'a> {
    /// The signed bytes (a signing root).
    pub message: &'a [u8],
    /// The key that should have signed.
    pub public_key: &'a PublicKey,
    /// The signature to check.
    pub signature: &'a Signature,
}

impl<'a> SignatureSet<'a> {
    /// A set from its three parts.
    pub fn new(
        message: &'a [u8],
        public_key: &'a PublicKey,
        signature: &'a Signature,
    ) -> SignatureSet<'a> {
        SignatureSet {
            message,
            public_key,
            signature,
        }
    }

    /// Checks this one set on its own.
    pub fn verify(&self) -> bool {
        self.signature.verify(self.public_key, self.message)
    }
}

/// True when every set verifies. An empty batch is refused (false), as in
/// Ethereum's `batch_verify`, so that "nothing checked" never reads as "valid".
pub fn verify_signature_sets<R: RngCore + CryptoRng>(
    sets: &[SignatureSet<'_>],
    rng: &mut R,
) -> bool {
    match sets {
        [] => false,
        [single] => single.verify(),
        _ => verify_weighted(sets, rng),
    }
}

/// The positions in `sets` of every set that does not verify, in ascending
/// order; empty when all verify.
pub fn find_invalid<R: RngCore + CryptoRng>(sets: &[SignatureSet<'_>], rng: &mut R) -> Vec<usize> {
    let mut invalid = Vec::new();
    if !sets.is_empty() {
        locate(sets, 0, false, rng, &mut invalid);
    }
    invalid
}

/// Appends to `invalid` the positions (offset by `base`) of the bad sets in
/// `sets`. With `known_invalid` the caller has already seen `sets` fail as a
/// whole, so that check is skipped.
fn locate<R: RngCore + CryptoRng>(
    sets: &[SignatureSet<'_>],
    base: usize,
    known_invalid: bool,
    rng: &mut R,
    invalid: &mut Vec<usize>,
) {
    if !known_invalid && verify_signature_sets(sets, rng) {
        return;
    }
    if sets.len() == 1 {
        invalid.push(base);
        return;
    }
    let (left, right) = sets.split_at(sets.len() / 2);
    let right_base = base + left.len();
    if verify_signature_sets(left, rng) {
        // The whole failed and the left half passed: the fault is on the right.
        locate(right, right_base, true, rng, invalid);
    } else {
        locate(left, base, true, rng, invalid);
        locate(right, right_base, false, rng, invalid);
    }
}

fn verify_weighted<R: RngCore + CryptoRng>(sets: &[SignatureSet<'_>], rng: &mut R) -> bool {
    let weights: Vec<blst_scalar> = sets
        .iter()
        .map(|_| {
            let mut weight = blst_scalar::default();
            // Zero would drop the set from the equation.
            let mut r = 0u64;
            while r == 0 {
                r = rng.next_u64();
            }
            weight.b[..8].copy_from_slice(&r.to_le_bytes());
            weight
        })
        .collect();
    let messages: Vec<&[u8]> = sets.iter().map(|s| s.message).collect();
    let keys: Vec<&min_pk::PublicKey> = sets.iter().map(|s| s.public_key.as_blst()).collect();
    let signatures: Vec<&min_pk::Signature> = sets.iter().map(|s| s.signature.as_blst()).collect();
    // Keys and signatures were validated when decoded.
    min_pk::Signature::verify_multiple_aggregate_signatures(
        &messages,
        DST,
        &keys,
        false,
        &signatures,
        false,
        &weights,
        RANDOM_BITS,
    ) == BLST_ERROR::BLST_SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bls::SecretKey;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    struct Fixture {
        messages: Vec<Vec<u8>>,
        keys: Vec<PublicKey>,
        signatures: Vec<Signature>,
    }

    impl Fixture {
        fn new(n: usize, rng: &mut ChaCha20Rng) -> Fixture {
            let secrets: Vec<SecretKey> = (0..n).map(|_| SecretKey::random(rng)).collect();
            let messages: Vec<Vec<u8>> = (0..n).map(|i| format!("msg {i}").into_bytes()).collect();
            Fixture {
                keys: secrets.iter().map(SecretKey::public_key).collect(),
                signatures: secrets
                    .iter()
                    .zip(&messages)
                    .map(|(k, m)| k.sign(m))
                    .collect(),
                messages,
            }
        }

        fn sets(&self) -> Vec<SignatureSet<'_>> {
            (0..self.keys.len())
                .map(|i| SignatureSet::new(&self.messages[i], &self.keys[i], &self.signatures[i]))
                .collect()
        }
    }

    #[test]
    fn all_valid_batches_pass() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let fixture = Fixture::new(9, &mut rng);
        assert!(verify_signature_sets(&fixture.sets(), &mut rng));
        assert!(find_invalid(&fixture.sets(), &mut rng).is_empty());
        assert!(!verify_signature_sets(&[], &mut rng));
    }

    #[test]
    fn every_bad_entry_is_named() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let mut fixture = Fixture::new(13, &mut rng);
        for bad in [0usize, 5, 6, 12] {
            fixture.messages[bad] = b"tampered".to_vec();
        }
        assert!(!verify_signature_sets(&fixture.sets(), &mut rng));
        assert_eq!(find_invalid(&fixture.sets(), &mut rng), vec![0, 5, 6, 12]);
    }

    #[test]
    fn swapped_signatures_cannot_cancel_out() {
        // σ_a + σ_b is unchanged by swapping them; only random weights catch it.
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut fixture = Fixture::new(4, &mut rng);
        fixture.signatures.swap(1, 2);
        assert!(!verify_signature_sets(&fixture.sets(), &mut rng));
        assert_eq!(find_invalid(&fixture.sets(), &mut rng), vec![1, 2]);
    }

    #[test]
    fn a_batch_where_everything_is_bad() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let mut fixture = Fixture::new(5, &mut rng);
        fixture.signatures.rotate_left(1);
        assert_eq!(find_invalid(&fixture.sets(), &mut rng), vec![0, 1, 2, 3, 4]);
    }
}
