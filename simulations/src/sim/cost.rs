//! What a node's processor spends on each event: the work the core really
//! does while it handles one (signatures decoded, messages hashed to the
//! curve, Miller loops and final exponentiations of batch checks, partials
//! combined, consensus signatures checked and made, bytes decoded), counted
//! as it happens, and turned into virtual time by [`CostModel`].
//!
//! The count comes from [`Metered`], the signature scheme the simulated
//! cores run with: it wraps the scheme of the run (real BLS or the cheap
//! one), counts into a per-thread tally, and models a batch check as
//! `phalanx-crypto`'s `find_invalid` performs it, bisection included, from
//! which sets turned out invalid. The cost is therefore the same whichever
//! scheme computed the answer: a run on the cheap signatures takes as long,
//! in virtual time, as one on BLS.
//!
//! The figures are those of `BENCHMARKS.md` (one core of the project's
//! standard machine); a scenario's `node_speed` divides them.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;

use phalanx_consensus::{MessageSignature, OperatorIndex, Signer, Verifier};
use phalanx_eth::{PublicKeyBytes, SignatureBytes};
use phalanx_node::scheme::{Check, Partial, SignatureScheme};
use rand::{CryptoRng, RngCore};

use super::signing::{ConsensusKeys, Dealt, SimScheme};

/// Virtual nanoseconds of each operation, at `node_speed` 1.0.
///
/// Calibration (`BENCHMARKS.md`, one core): `bls/verify` 1.40 ms =
/// decode with subgroup check (105 µs) + hash to G2 + two Miller loops +
/// one final exponentiation + one weighted set; 1,000 partials over
/// distinct roots batch-verify in 484 ms (a hash, a Miller loop and a set
/// each: 485 µs); 1,000 over four roots in 24.9 ms and 100 in 6.3 ms (25 µs
/// per set, 63 µs at 100); combining t = 3 / 5 / 7 decoded partials takes
/// 275 / 290 / 410 µs; a secp256k1 prepare verifies in 77.5 µs and is signed
/// in 43.3 µs. The model gives 1.40 ms, 486 ms, 27.7 ms, 5.2 ms and 290 /
/// 350 / 410 µs for those.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostModel {
    /// Decompressing a G2 signature with its subgroup check.
    pub decode_signature: u64,
    /// Hashing one distinct message to G2 (once per batch).
    pub hash_to_curve: u64,
    /// One Miller loop.
    pub miller_loop: u64,
    /// One final exponentiation (one per batch check).
    pub final_exponentiation: u64,
    /// Per set in a batch check: its 64-bit weight applied to its key and
    /// to its signature.
    pub per_set: u64,
    /// Combining partials: a fixed part ...
    pub combine: u64,
    /// ... and per partial combined.
    pub combine_per_partial: u64,
    /// Checking a consensus message's secp256k1 signature.
    pub consensus_verify: u64,
    /// Signing a consensus message.
    pub consensus_sign: u64,
    /// Receiving one peer message (transport: decryption, stream, frame).
    /// From the p2p throughput figures: 8,257 messages/s each to 3 peers on
    /// two cores, about 80 µs per delivery for both ends.
    pub per_message: u64,
    /// Per byte of a peer message: decoding it (389 MiB/s in the decoding
    /// benchmark) and hashing what it carries.
    pub per_byte: u64,
}

impl CostModel {
    /// The machine of `BENCHMARKS.md`.
    pub const BENCHMARKED: CostModel = CostModel {
        decode_signature: 105_000,
        hash_to_curve: 250_000,
        miller_loop: 210_000,
        final_exponentiation: 600_000,
        per_set: 25_000,
        combine: 200_000,
        combine_per_partial: 30_000,
        consensus_verify: 77_500,
        consensus_sign: 43_300,
        per_message: 40_000,
        per_byte: 5,
    };

    /// Virtual nanoseconds `work` takes on a node of speed `speed` (1.0:
    /// the benchmarked machine; 2.0: twice as fast).
    pub fn nanos(&self, work: &Work, speed: f64) -> u64 {
        let m = self;
        let total = work.decodes * m.decode_signature
            + work.hashes * m.hash_to_curve
            + work.batch_checks * (m.miller_loop + m.final_exponentiation)
            + work.pairings * m.miller_loop
            + work.sets * m.per_set
            + work.combines * m.combine
            + work.combined_partials * m.combine_per_partial
            + work.consensus_verifies * m.consensus_verify
            + work.consensus_signs * m.consensus_sign
            + work.messages * m.per_message
            + work.bytes * m.per_byte;
        (total as f64 / speed).round() as u64
    }
}

/// Work a node did while it handled one event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Signatures decoded.
    pub decodes: u64,
    /// Distinct messages hashed to the curve.
    pub hashes: u64,
    /// Batch checks (each one final exponentiation and the signature
    /// side's Miller loop); a single verification counts as one.
    pub batch_checks: u64,
    /// Miller loops of the keys' side: one per distinct message per check.
    pub pairings: u64,
    /// Sets weighted, over all checks.
    pub sets: u64,
    /// Combinations of partials.
    pub combines: u64,
    /// Partials in those combinations.
    pub combined_partials: u64,
    /// Consensus signatures checked.
    pub consensus_verifies: u64,
    /// Consensus signatures made.
    pub consensus_signs: u64,
    /// Peer messages received.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl Work {
    /// Adds `other` to this.
    pub fn add(&mut self, other: &Work) {
        self.decodes += other.decodes;
        self.hashes += other.hashes;
        self.batch_checks += other.batch_checks;
        self.pairings += other.pairings;
        self.sets += other.sets;
        self.combines += other.combines;
        self.combined_partials += other.combined_partials;
        self.consensus_verifies += other.consensus_verifies;
        self.consensus_signs += other.consensus_signs;
        self.messages += other.messages;
        self.bytes += other.bytes;
    }

    /// Counts a batch check of `messages` (one per set) in which the sets
    /// at `invalid` fail, as `find_invalid` does it: every distinct message
    /// hashed once, the whole checked, and on failure the left half
    /// re-checked and the fault searched where it must be.
    pub fn batch(&mut self, messages: &[&[u8]], invalid: &[usize]) {
        if messages.is_empty() {
            return;
        }
        let mut ids: BTreeMap<&[u8], u32> = BTreeMap::new();
        let sets: Vec<u32> = messages
            .iter()
            .map(|m| {
                let next = ids.len() as u32;
                *ids.entry(*m).or_insert(next)
            })
            .collect();
        self.hashes += ids.len() as u64;
        // bad_before[i]: invalid sets among the first i.
        let mut bad_before = vec![0u32; sets.len() + 1];
        let invalid: BTreeSet<usize> = invalid.iter().copied().collect();
        for i in 0..sets.len() {
            bad_before[i + 1] = bad_before[i] + u32::from(invalid.contains(&i));
        }
        self.locate(&sets, &bad_before, 0, sets.len(), false);
    }

    fn check(&mut self, sets: &[u32], from: usize, to: usize) {
        let distinct: BTreeSet<u32> = sets[from..to].iter().copied().collect();
        self.batch_checks += 1;
        self.pairings += distinct.len() as u64;
        self.sets += (to - from) as u64;
    }

    fn locate(&mut self, sets: &[u32], bad: &[u32], from: usize, to: usize, known_bad: bool) {
        let any_bad = |a: usize, b: usize| bad[b] > bad[a];
        if !known_bad {
            self.check(sets, from, to);
            if !any_bad(from, to) {
                return;
            }
        }
        if to - from == 1 {
            return;
        }
        let middle = from + (to - from) / 2;
        self.check(sets, from, middle);
        if any_bad(from, middle) {
            self.locate(sets, bad, from, middle, true);
            self.locate(sets, bad, middle, to, false);
        } else {
            self.locate(sets, bad, middle, to, true);
        }
    }
}

thread_local! {
    static TALLY: RefCell<Work> = RefCell::new(Work::default());
}

fn tally(count: impl FnOnce(&mut Work)) {
    TALLY.with(|t| count(&mut t.borrow_mut()));
}

/// The work counted on this thread since the last call, and a fresh count.
pub fn take() -> Work {
    TALLY.with(|t| std::mem::take(&mut *t.borrow_mut()))
}

/// The signature scheme `S` with its work counted (see the module).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metered<S>(PhantomData<S>);

impl<S: SimScheme> SignatureScheme for Metered<S> {
    type PublicKey = S::PublicKey;
    type Signature = S::Signature;

    fn public_key_bytes(key: &S::PublicKey) -> PublicKeyBytes {
        S::public_key_bytes(key)
    }

    fn decode_signature(bytes: &[u8]) -> Result<S::Signature, String> {
        tally(|w| w.decodes += 1);
        S::decode_signature(bytes)
    }

    fn signature_bytes(signature: &S::Signature) -> SignatureBytes {
        S::signature_bytes(signature)
    }

    fn verify(key: &S::PublicKey, message: &[u8], signature: &S::Signature) -> bool {
        tally(|w| {
            w.hashes += 1;
            w.batch_checks += 1;
            w.pairings += 1;
            w.sets += 1;
        });
        S::verify(key, message, signature)
    }

    fn find_invalid<R: RngCore + CryptoRng>(checks: &[Check<'_, Self>], rng: &mut R) -> Vec<usize> {
        let inner: Vec<Check<'_, S>> = checks
            .iter()
            .map(|c| Check {
                message: c.message,
                public_key: c.public_key,
                signature: c.signature,
            })
            .collect();
        let invalid = S::find_invalid(&inner, rng);
        let messages: Vec<&[u8]> = checks.iter().map(|c| c.message).collect();
        tally(|w| w.batch(&messages, &invalid));
        invalid
    }

    fn combine(
        partials: &[Partial<S::Signature>],
        threshold: usize,
    ) -> Result<S::Signature, String> {
        tally(|w| {
            w.combines += 1;
            w.combined_partials += threshold.min(partials.len()) as u64;
        });
        S::combine(partials, threshold)
    }
}

impl<S: SimScheme> SimScheme for Metered<S> {
    type SecretKey = S::SecretKey;

    fn deal<R: RngCore + CryptoRng>(
        threshold: usize,
        operators: usize,
        rng: &mut R,
    ) -> Dealt<Self> {
        let dealt = S::deal(threshold, operators, rng);
        Dealt {
            secret: dealt.secret,
            group: dealt.group,
            secret_shares: dealt.secret_shares,
            public_shares: dealt.public_shares,
        }
    }

    fn sign(secret: &S::SecretKey, message: &[u8]) -> S::Signature {
        S::sign(secret, message)
    }

    fn aggregate(signatures: &[S::Signature]) -> Result<S::Signature, String> {
        S::aggregate(signatures)
    }

    fn consensus_keys(secrets: &[[u8; 32]], me: usize) -> ConsensusKeys {
        let (signer, verifier) = S::consensus_keys(secrets, me);
        (
            Box::new(MeteredSigner(signer)),
            Box::new(MeteredVerifier(verifier)),
        )
    }
}

struct MeteredSigner(Box<dyn Signer + Send>);

impl Signer for MeteredSigner {
    fn sign(&self, bytes: &[u8]) -> MessageSignature {
        tally(|w| w.consensus_signs += 1);
        self.0.sign(bytes)
    }
}

struct MeteredVerifier(Box<dyn Verifier + Send>);

impl Verifier for MeteredVerifier {
    fn verify(&self, sender: OperatorIndex, bytes: &[u8], signature: &MessageSignature) -> bool {
        tally(|w| w.consensus_verifies += 1);
        self.0.verify(sender, bytes, signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(work: &Work) -> f64 {
        CostModel::BENCHMARKED.nanos(work, 1.0) as f64 / 1e6
    }

    fn batch(roots: usize, sets: usize, invalid: &[usize]) -> Work {
        let messages: Vec<[u8; 8]> = (0..sets)
            .map(|i| ((i % roots) as u64).to_le_bytes())
            .collect();
        let slices: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
        let mut work = Work::default();
        work.batch(&slices, invalid);
        work
    }

    /// The model against the figures of `BENCHMARKS.md` (one core).
    #[test]
    fn the_model_matches_the_benchmarks() {
        let mut verify = batch(1, 1, &[]);
        verify.decodes = 1;
        assert!((1.3..1.5).contains(&ms(&verify)), "{}", ms(&verify));
        let distinct = ms(&batch(1000, 1000, &[]));
        assert!((440.0..530.0).contains(&distinct), "{distinct}");
        let four_roots = ms(&batch(4, 1000, &[]));
        assert!((20.0..30.0).contains(&four_roots), "{four_roots}");
        // One forged partial among 1,000 over four roots: 90.4 ms measured.
        let one_bad = ms(&batch(4, 1000, &[637]));
        assert!((60.0..100.0).contains(&one_bad), "{one_bad}");
        // One forged among 100 distinct: 114 ms measured.
        let one_bad = ms(&batch(100, 100, &[37]));
        assert!((80.0..130.0).contains(&one_bad), "{one_bad}");
        let combine = Work {
            combines: 1,
            combined_partials: 3,
            ..Work::default()
        };
        assert!((0.25..0.32).contains(&ms(&combine)));
    }

    #[test]
    fn bisection_checks_what_find_invalid_checks() {
        // All valid: one check of the whole.
        let work = batch(2, 8, &[]);
        assert_eq!((work.batch_checks, work.sets, work.hashes), (1, 8, 2));
        // The last one bad: the whole, then each left half down to it.
        let work = batch(1, 8, &[7]);
        assert_eq!(work.batch_checks, 4);
        assert_eq!(work.sets, 8 + 4 + 2 + 1);
        // Everything bad: every node of the tree but the leaves' right
        // siblings' re-checks.
        let all: Vec<usize> = (0..8).collect();
        let work = batch(1, 8, &all);
        assert!(work.batch_checks > 8, "{work:?}");
    }
}
