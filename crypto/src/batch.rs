//! Batch verification of many (message, public key, signature) sets.
//!
//! The RNG passed in must be unpredictable to whoever supplied the
//! signatures (`OsRng` in production): a sender who knows the weights can
//! forge sets that cancel out. Seed it only in tests and simulations.
//!
//! Each set is weighted by a random 64-bit scalar r_i and all are checked
//! with one multi-Miller loop and one final exponentiation:
//! Π e(r_i·pk_i, H(m_i)) = e(G1, Σ r_i·σ_i), the signature sum computed as
//! one multi-scalar multiplication. Without the random weights, two bad
//! signatures could cancel out. Sets that share a message share its pairing,
//! e(Σ r_i·pk_i, H(m)): a distributed validator's partials mostly do (every
//! attester of a committee signs one attestation root, every selection
//! proof of a slot one slot root), so a batch of them costs one Miller loop
//! per distinct message plus a 64-bit multiplication per set.
//!
//! When a batch fails the node must still name who sent the bad partial, so
//! [`find_invalid`] bisects: it re-checks the left half, and if that passes
//! the fault must be in the right half, which is then split without being
//! checked as a whole. Each message is hashed to G2 once, up front, and
//! every check of the bisection reuses the hashes: finding one bad entry
//! among 1,000 costs about two passing batches, well under verifying each.

use blst::{
    blst_fp12, blst_fp12_is_one, blst_p1, blst_p1_affine, blst_p1_affine_generator,
    blst_p1_from_affine, blst_p1_mult, blst_p1_to_affine, blst_p2_affine, blst_p2_affine_is_inf,
    blst_p2_to_affine,
};
use std::collections::HashMap;

use rand_core::{CryptoRng, RngCore};

use crate::bls::{hash_to_g2_affine, PublicKey, Signature, DST};
use crate::msm::{msm_g1, msm_g2};

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

/// The work batch checks did, for callers that bound or measure it: how
/// many checks ran and how many sets they covered in all (a set checked by
/// several checks of a bisection counts once per check). Each check costs
/// one Miller loop per distinct message among its sets plus a share of two
/// multi-scalar multiplications per set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Checks run.
    pub checks: usize,
    /// Sets covered by those checks.
    pub sets: usize,
}

impl Work {
    fn add(&mut self, sets: usize) {
        self.checks += 1;
        self.sets += sets;
    }
}

/// True when every set verifies. An empty batch is refused (false), as in
/// Ethereum's `batch_verify`, so that "nothing checked" never reads as "valid".
pub fn verify_signature_sets<R: RngCore + CryptoRng>(
    sets: &[SignatureSet<'_>],
    rng: &mut R,
) -> bool {
    verify_signature_sets_metered(sets, rng, &mut Work::default())
}

/// [`verify_signature_sets`], adding its work to `work`: one check of
/// every set.
pub fn verify_signature_sets_metered<R: RngCore + CryptoRng>(
    sets: &[SignatureSet<'_>],
    rng: &mut R,
    work: &mut Work,
) -> bool {
    match sets {
        [] => false,
        [single] => {
            work.add(1);
            single.verify()
        }
        _ => {
            let prepared = Prepared::new(sets);
            prepared.verify(&prepared.sets, rng, work)
        }
    }
}

/// The positions in `sets` of every set that does not verify, in ascending
/// order; empty when all verify.
///
/// A batch that verifies costs one check; one with b bad sets among n about
/// 2·b·log2(n) checks, and one where every set is bad checks every node of
/// the bisection tree, n·(log2(n) + 1) sets in all: only for batches whose signers
/// are trusted to be mostly right (the own validator client's), never for
/// what a peer chose.
pub fn find_invalid<R: RngCore + CryptoRng>(sets: &[SignatureSet<'_>], rng: &mut R) -> Vec<usize> {
    find_invalid_metered(sets, rng, &mut Work::default())
}

/// [`find_invalid`], adding its work to `work`.
pub fn find_invalid_metered<R: RngCore + CryptoRng>(
    sets: &[SignatureSet<'_>],
    rng: &mut R,
    work: &mut Work,
) -> Vec<usize> {
    let mut invalid = Vec::new();
    if !sets.is_empty() {
        let prepared = Prepared::new(sets);
        prepared.locate(&prepared.sets, 0, false, rng, work, &mut invalid);
    }
    invalid
}

/// The sets with each distinct message hashed to G2 once, so that sets
/// sharing a message share a pairing and bisection never hashes again.
struct Prepared {
    /// One hash per distinct message, in order of first appearance.
    hashes: Vec<blst_p2_affine>,
    sets: Vec<PreparedSet>,
}

/// A set whose message is `hashes[message]`.
struct PreparedSet {
    message: usize,
    key: blst_p1_affine,
    signature: blst_p2_affine,
}

impl Prepared {
    fn new(sets: &[SignatureSet<'_>]) -> Prepared {
        let mut first_seen: HashMap<&[u8], usize> = HashMap::new();
        let mut distinct: Vec<&[u8]> = Vec::new();
        let sets = sets
            .iter()
            .map(|set| PreparedSet {
                message: *first_seen.entry(set.message).or_insert_with(|| {
                    distinct.push(set.message);
                    distinct.len() - 1
                }),
                key: *<&blst_p1_affine>::from(set.public_key.as_blst()),
                signature: *set.signature.as_affine(),
            })
            .collect();
        Prepared {
            hashes: hash_all(&distinct),
            sets,
        }
    }

    /// Appends to `invalid` the positions (offset by `base`) of the bad sets
    /// in `sets`. With `known_invalid` the caller has already seen `sets`
    /// fail as a whole, so that check is skipped.
    fn locate<R: RngCore + CryptoRng>(
        &self,
        sets: &[PreparedSet],
        base: usize,
        known_invalid: bool,
        rng: &mut R,
        work: &mut Work,
        invalid: &mut Vec<usize>,
    ) {
        if !known_invalid && self.verify(sets, rng, work) {
            return;
        }
        if sets.len() == 1 {
            invalid.push(base);
            return;
        }
        let (left, right) = sets.split_at(sets.len() / 2);
        let right_base = base + left.len();
        if self.verify(left, rng, work) {
            // The whole failed and the left half passed: the fault is on the right.
            self.locate(right, right_base, true, rng, work, invalid);
        } else {
            self.locate(left, base, true, rng, work, invalid);
            self.locate(right, right_base, false, rng, work, invalid);
        }
    }

    /// Π_m e(Σ_{i: m_i = m} r_i·pk_i, H(m)) = e(G1, Σ r_i·σ_i) over `sets`:
    /// one Miller loop per distinct message, however many sets share it.
    fn verify<R: RngCore + CryptoRng>(
        &self,
        sets: &[PreparedSet],
        rng: &mut R,
        work: &mut Work,
    ) -> bool {
        if sets.is_empty() {
            return false;
        }
        work.add(sets.len());
        let weights: Vec<[u8; 8]> = sets
            .iter()
            .map(|_| random_weight(rng).to_le_bytes())
            .collect();

        // Group the weighted keys by message, in order of first appearance.
        let mut group_of: HashMap<usize, usize> = HashMap::new();
        let mut groups: Vec<(usize, Vec<blst_p1_affine>, Vec<u8>)> = Vec::new();
        for (set, weight) in sets.iter().zip(&weights) {
            let group = *group_of.entry(set.message).or_insert_with(|| {
                groups.push((set.message, Vec::new(), Vec::new()));
                groups.len() - 1
            });
            groups[group].1.push(set.key);
            groups[group].2.extend_from_slice(weight);
        }
        let mut hashes = Vec::with_capacity(groups.len());
        let mut keys = Vec::with_capacity(groups.len());
        for (message, group_keys, group_weights) in &groups {
            let mut affine = blst_p1_affine::default();
            // SAFETY: plain fixed-size values owned here.
            unsafe { blst_p1_to_affine(&mut affine, &weighted_sum_g1(group_keys, group_weights)) };
            hashes.push(self.hashes[*message]);
            keys.push(affine);
        }

        let signatures: Vec<blst_p2_affine> = sets.iter().map(|set| set.signature).collect();
        let packed: Vec<u8> = weights.concat();
        let mut signature_sum = blst_p2_affine::default();
        // SAFETY: plain fixed-size values owned here.
        unsafe {
            blst_p2_to_affine(
                &mut signature_sum,
                &msm_g2(&signatures, &packed, RANDOM_BITS),
            )
        };

        let keys_side = blst_fp12::miller_loop_n(&hashes, &keys);
        // SAFETY: the generator is a static inside blst; `signature_sum` is owned here.
        unsafe {
            if blst_p2_affine_is_inf(&signature_sum) {
                // e(G1, O) = 1.
                return blst_fp12_is_one(&keys_side.final_exp());
            }
            let signature_side =
                blst_fp12::miller_loop(&signature_sum, &*blst_p1_affine_generator());
            blst_fp12::finalverify(&keys_side, &signature_side)
        }
    }
}

/// Σ weights[i]·keys[i], each weight [`RANDOM_BITS`] wide: one windowed
/// multiplication for a single key, Pippenger for many.
fn weighted_sum_g1(keys: &[blst_p1_affine], weights: &[u8]) -> blst_p1 {
    if let [key] = keys {
        let mut point = blst_p1::default();
        let mut scaled = blst_p1::default();
        // SAFETY: plain fixed-size values owned here; the weight is 8 bytes.
        unsafe {
            blst_p1_from_affine(&mut point, key);
            blst_p1_mult(&mut scaled, &point, weights.as_ptr(), RANDOM_BITS);
        }
        return scaled;
    }
    msm_g1(keys, weights, RANDOM_BITS)
}

/// Hashes every message to G2, spread over the available cores.
fn hash_all(messages: &[&[u8]]) -> Vec<blst_p2_affine> {
    let hash_one = |message: &&[u8]| hash_to_g2_affine(message, DST);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = messages.len().div_ceil(threads).max(16);
    if messages.len() <= chunk {
        return messages.iter().map(hash_one).collect();
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = messages
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(hash_one).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| match worker.join() {
                Ok(part) => part,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// A random non-zero 64-bit weight (zero would drop a set from the check).
fn random_weight<R: RngCore + CryptoRng>(rng: &mut R) -> u64 {
    loop {
        let weight = rng.next_u64();
        if weight != 0 {
            return weight;
        }
    }
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
        /// `n` keys, each signing a message of its own.
        fn new(n: usize, rng: &mut ChaCha20Rng) -> Fixture {
            shared_messages(n, n, rng)
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
    fn the_prehashed_check_agrees_with_blst() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let mut fixture = Fixture::new(40, &mut rng);
        let work = &mut Work::default();
        let prepared = Prepared::new(&fixture.sets());
        assert!(prepared.verify(&prepared.sets, &mut rng, work));
        assert!(!prepared.verify(&[], &mut rng, work));
        fixture.messages[17] = b"tampered".to_vec();
        let prepared = Prepared::new(&fixture.sets());
        assert!(!prepared.verify(&prepared.sets, &mut rng, work));
        // Infinity signatures make the signature sum infinity.
        let infinity = Signature::infinity();
        let sets: Vec<SignatureSet<'_>> = (0..2)
            .map(|i| SignatureSet::new(&fixture.messages[i], &fixture.keys[i], &infinity))
            .collect();
        let prepared = Prepared::new(&sets);
        assert!(!prepared.verify(&prepared.sets, &mut rng, work));
        assert_eq!(find_invalid(&sets, &mut rng), vec![0, 1]);
    }

    /// `n` keys signing `messages[i % messages.len()]`.
    fn shared_messages(n: usize, messages: usize, rng: &mut ChaCha20Rng) -> Fixture {
        let secrets: Vec<SecretKey> = (0..n).map(|_| SecretKey::random(rng)).collect();
        let messages: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("root {}", i % messages).into_bytes())
            .collect();
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

    #[test]
    fn sets_sharing_messages_share_their_hash_and_are_checked_alike() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let mut fixture = shared_messages(30, 3, &mut rng);
        let prepared = Prepared::new(&fixture.sets());
        assert_eq!(prepared.hashes.len(), 3);
        assert!(verify_signature_sets(&fixture.sets(), &mut rng));
        assert!(find_invalid(&fixture.sets(), &mut rng).is_empty());

        // A signature over a message of another group is caught and named.
        fixture.messages[4] = fixture.messages[5].clone();
        assert!(!verify_signature_sets(&fixture.sets(), &mut rng));
        assert_eq!(find_invalid(&fixture.sets(), &mut rng), vec![4]);
    }

    #[test]
    fn swapped_signatures_over_one_message_cannot_cancel_out() {
        // With one message, Σσ under Σpk is unchanged by handing each key the
        // other's signature; only the per-set weights catch it.
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut fixture = shared_messages(8, 1, &mut rng);
        fixture.signatures.swap(2, 6);
        assert!(!verify_signature_sets(&fixture.sets(), &mut rng));
        assert_eq!(find_invalid(&fixture.sets(), &mut rng), vec![2, 6]);
        // So is a key counted twice whose partner's signature is missing.
        let mut fixture = shared_messages(8, 1, &mut rng);
        fixture.keys[1] = fixture.keys[0];
        fixture.signatures[1] = fixture.signatures[0];
        fixture.signatures[0] = Signature::infinity();
        assert_eq!(find_invalid(&fixture.sets(), &mut rng), vec![0]);
    }

    #[test]
    fn a_batch_where_everything_is_bad() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let mut fixture = Fixture::new(5, &mut rng);
        fixture.signatures.rotate_left(1);
        assert_eq!(find_invalid(&fixture.sets(), &mut rng), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn an_all_bad_batch_costs_one_check_to_refuse_and_n_log_n_to_bisect() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let n = 64;
        let mut fixture = Fixture::new(n, &mut rng);
        fixture.signatures.rotate_left(1);
        let mut whole = Work::default();
        assert!(!verify_signature_sets_metered(
            &fixture.sets(),
            &mut rng,
            &mut whole
        ));
        assert_eq!(whole, Work { checks: 1, sets: n });
        let mut bisection = Work::default();
        let bad = find_invalid_metered(&fixture.sets(), &mut rng, &mut bisection);
        assert_eq!(bad, (0..n).collect::<Vec<_>>());
        // Every node of the bisection tree is checked: n·(log2(n) + 1) sets
        // in 2n − 1 checks.
        assert_eq!(bisection.sets, n * (n.ilog2() as usize + 1));
        assert_eq!(bisection.checks, 2 * n - 1);
    }
}
