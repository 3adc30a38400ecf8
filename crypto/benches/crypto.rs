//! Criterion benchmarks of the crypto crate, with `threshold_crypto` and the
//! bare blst multi-scalar multiplication as baselines for `combine`.
//!
//! `cargo bench -p phalanx-crypto --bench crypto`; results go to BENCHMARKS.md.

#![allow(missing_docs, reason = "criterion_group! generates undocumented items")]

use std::hint::black_box;

use blst::{blst_p2, blst_p2_affine, blst_scalar, blst_scalar_from_be_bytes};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use phalanx_crypto::batch::{find_invalid, verify_signature_sets};
use phalanx_crypto::threshold::{combine, split, IntegerLagrange};
use phalanx_crypto::{
    KdfSetting, Keystore, PartialSignature, PublicKey, SecretKey, Signature, SignatureSet,
};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

const MESSAGE: &[u8; 32] = b"an attestation data signing root";
const THRESHOLDS: [usize; 3] = [3, 5, 7];

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(0x5eed)
}

fn single(c: &mut Criterion) {
    let mut rng = rng();
    let secret = SecretKey::random(&mut rng);
    let public = secret.public_key();
    let signature = secret.sign(MESSAGE);
    let split = split(&secret, 3, 4, &mut rng).expect("valid threshold");
    let share = split.secret_shares[1].clone();
    let public_share = share.public_share();
    let partial = share.sign(MESSAGE);

    let mut group = c.benchmark_group("bls");
    group.bench_function("sign", |b| b.iter(|| secret.sign(black_box(MESSAGE))));
    group.bench_function("verify", |b| {
        b.iter(|| signature.verify(&public, black_box(MESSAGE)))
    });
    group.bench_function("partial_sign", |b| {
        b.iter(|| share.sign(black_box(MESSAGE)))
    });
    group.bench_function("partial_verify", |b| {
        b.iter(|| public_share.verify(&partial, black_box(MESSAGE)))
    });
    group.bench_function("signature_decode_with_subgroup_check", |b| {
        let bytes = signature.to_bytes();
        b.iter(|| Signature::from_bytes(black_box(&bytes)))
    });
    group.finish();
}

/// Σ s_i·P_i by blst's multi-scalar multiplication over packed
/// little-endian scalars of `bits` bits, as `combine` calls it.
fn bare_msm(points: &[blst_p2_affine], scalars: &[u8], bits: usize) -> blst_p2 {
    let mut out = blst_p2::default();
    // SAFETY: contiguous arrays of `points.len()` points and scalars, and a
    // scratch buffer of the size blst asks for.
    unsafe {
        let size = blst::blst_p2s_mult_pippenger_scratch_sizeof(points.len());
        let mut scratch = vec![0 as blst::limb_t; size.div_ceil(8).max(1)];
        let point_ptrs = [points.as_ptr(), std::ptr::null()];
        let scalar_ptrs = [scalars.as_ptr(), std::ptr::null()];
        blst::blst_p2s_mult_pippenger(
            &mut out,
            point_ptrs.as_ptr(),
            points.len(),
            scalar_ptrs.as_ptr(),
            bits,
            scratch.as_mut_ptr(),
        );
    }
    out
}

/// The blst operations `combine` is built on, with everything else
/// (coefficients, negations, packing, the inverse) precomputed: the
/// short-scalar multi-scalar multiplication and one multiplication by D⁻¹.
struct BareCombine {
    points: Vec<blst_p2_affine>,
    scalars: Vec<u8>,
    bits: usize,
    denominator_inverse: Option<blst_scalar>,
}

impl BareCombine {
    fn new(partials: &[PartialSignature]) -> BareCombine {
        let indices: Vec<_> = partials.iter().map(|p| p.index).collect();
        let lagrange = IntegerLagrange::new(&indices).expect("small indices");
        let widest = lagrange
            .numerators
            .iter()
            .map(|c| c.unsigned_abs())
            .max()
            .expect("t > 0");
        let bits = (128 - widest.leading_zeros() as usize).max(1);
        let width = bits.div_ceil(8);
        let mut points = Vec::new();
        let mut scalars = Vec::new();
        for (partial, c) in partials.iter().zip(&lagrange.numerators) {
            let mut point = *<&blst_p2_affine>::from(&bls_signature(&partial.signature));
            if *c < 0 {
                let y = point.y;
                // SAFETY: reads the copy `y`, writes the point's own coordinate.
                unsafe { blst::blst_fp2_cneg(&mut point.y, &y, true) };
            }
            points.push(point);
            scalars.extend_from_slice(&c.unsigned_abs().to_le_bytes()[..width]);
        }
        let denominator_inverse = (lagrange.denominator != 1).then(|| {
            let mut d = blst_scalar::default();
            d.b[..16].copy_from_slice(&lagrange.denominator.to_le_bytes());
            let mut inverse = blst_scalar::default();
            // SAFETY: plain fixed-size values owned here.
            unsafe { blst::blst_sk_inverse(&mut inverse, &d) };
            inverse
        });
        BareCombine {
            points,
            scalars,
            bits,
            denominator_inverse,
        }
    }

    fn run(&self) -> blst_p2 {
        let mut sum = bare_msm(&self.points, &self.scalars, self.bits);
        if let Some(inverse) = &self.denominator_inverse {
            let scaled = sum;
            // SAFETY: distinct input and output; the scalar holds 32 bytes.
            unsafe { blst::blst_p2_mult(&mut sum, &scaled, inverse.b.as_ptr(), 255) };
        }
        sum
    }
}

fn random_scalar(rng: &mut ChaCha20Rng) -> blst_scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    let mut scalar = blst_scalar::default();
    // SAFETY: blst reads exactly 64 bytes.
    unsafe { blst_scalar_from_be_bytes(&mut scalar, wide.as_ptr(), wide.len()) };
    scalar
}

fn combine_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("combine");
    for t in THRESHOLDS {
        let n = t + t / 2;
        let mut rng = rng();
        let secret = SecretKey::random(&mut rng);
        let split = split(&secret, t, n, &mut rng).expect("valid threshold");
        // Operators 1..t-1 and n sign: a gap in the indices makes the
        // Lagrange coefficients fractions (D > 1), the costlier case.
        let signers: Vec<usize> = (0..t - 1).chain([n - 1]).collect();
        let partials: Vec<PartialSignature> = signers
            .iter()
            .map(|&i| split.secret_shares[i].sign(MESSAGE))
            .collect();
        let denominator =
            IntegerLagrange::new(&partials.iter().map(|p| p.index).collect::<Vec<_>>())
                .expect("small indices")
                .denominator;
        assert!(denominator > 1, "the gapped signer set must need D^-1");
        // Consecutive operators (the last t): every coefficient is an integer.
        let consecutive: Vec<PartialSignature> = split.secret_shares[n - t..]
            .iter()
            .map(|s| s.sign(MESSAGE))
            .collect();
        group.bench_with_input(BenchmarkId::new("decoded_consecutive", t), &t, |b, &t| {
            b.iter(|| combine(black_box(&consecutive), t))
        });
        let encoded: Vec<(PartialSignature, [u8; 96])> = partials
            .iter()
            .map(|p| (*p, p.signature.to_bytes()))
            .collect();

        group.bench_with_input(BenchmarkId::new("decoded", t), &t, |b, &t| {
            b.iter(|| combine(black_box(&partials), t))
        });
        group.bench_with_input(BenchmarkId::new("from_bytes", t), &t, |b, &t| {
            b.iter(|| {
                let decoded: Vec<PartialSignature> = encoded
                    .iter()
                    .map(|(p, bytes)| PartialSignature::from_bytes(p.index, bytes))
                    .collect::<Result<_, _>>()
                    .expect("valid partials");
                combine(&decoded, t)
            })
        });

        let bare = BareCombine::new(&partials);
        group.bench_with_input(BenchmarkId::new("bare_ops", t), &t, |b, _| {
            b.iter(|| black_box(&bare).run())
        });

        // For reference: the multi-scalar multiplication a combine over
        // full-width (255-bit) Lagrange coefficients would need.
        let points: Vec<blst_p2_affine> = partials
            .iter()
            .map(|p| *<&blst_p2_affine>::from(&bls_signature(&p.signature)))
            .collect();
        let scalars: Vec<u8> = (0..t).flat_map(|_| random_scalar(&mut rng).b).collect();
        group.bench_with_input(BenchmarkId::new("full_width_msm", t), &t, |b, _| {
            b.iter(|| bare_msm(black_box(&points), black_box(&scalars), 255))
        });

        let mut tc_rng = <rand07::rngs::StdRng as rand07::SeedableRng>::seed_from_u64(7);
        let tc_secret = threshold_crypto::SecretKeySet::random(t - 1, &mut tc_rng);
        let tc_public = tc_secret.public_keys();
        let tc_shares: Vec<(usize, threshold_crypto::SignatureShare)> = signers
            .iter()
            .map(|&i| (i, tc_secret.secret_key_share(i).sign(MESSAGE)))
            .collect();
        group.bench_with_input(BenchmarkId::new("threshold_crypto", t), &t, |b, _| {
            b.iter(|| {
                tc_public
                    .combine_signatures(tc_shares.iter().map(|(i, s)| (*i, s)))
                    .expect("enough shares")
            })
        });
    }
    group.finish();
}

/// The blst signature inside ours, for the bare baseline.
fn bls_signature(signature: &Signature) -> blst::min_pk::Signature {
    blst::min_pk::Signature::from_bytes(&signature.to_bytes()).expect("valid signature")
}

/// `n` partial signatures over distinct messages by distinct keys.
struct Partials {
    messages: Vec<[u8; 32]>,
    keys: Vec<PublicKey>,
    signatures: Vec<Signature>,
}

impl Partials {
    fn new(n: usize) -> Partials {
        let mut rng = rng();
        let mut messages = Vec::with_capacity(n);
        let mut keys = Vec::with_capacity(n);
        let mut signatures = Vec::with_capacity(n);
        for _ in 0..n {
            let share = SecretKey::random(&mut rng);
            let mut message = [0u8; 32];
            rng.fill_bytes(&mut message);
            signatures.push(share.sign(&message));
            keys.push(share.public_key());
            messages.push(message);
        }
        Partials {
            messages,
            keys,
            signatures,
        }
    }

    /// `n` partials by distinct keys, partial i over root i mod `roots`.
    fn over_roots(n: usize, roots: usize) -> Partials {
        let mut rng = rng();
        let mut distinct = vec![[0u8; 32]; roots];
        for root in &mut distinct {
            rng.fill_bytes(root);
        }
        let messages: Vec<[u8; 32]> = (0..n).map(|i| distinct[i % roots]).collect();
        let secrets: Vec<SecretKey> = (0..n).map(|_| SecretKey::random(&mut rng)).collect();
        Partials {
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

fn batch_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch");
    group.sample_size(10);
    for n in [100usize, 1000] {
        let partials = Partials::new(n);
        let sets = partials.sets();
        let mut rng = rng();
        group.bench_with_input(BenchmarkId::new("verify_batch", n), &n, |b, _| {
            b.iter(|| assert!(verify_signature_sets(black_box(&sets), &mut rng)))
        });
        group.bench_with_input(BenchmarkId::new("verify_each", n), &n, |b, _| {
            b.iter(|| assert!(black_box(&sets).iter().all(SignatureSet::verify)))
        });
        // One forged partial: the batch fails and bisection names it.
        let mut forged = Partials::new(n);
        forged.signatures[n / 3] = forged.signatures[n / 3 + 1];
        let forged_sets = forged.sets();
        group.bench_with_input(BenchmarkId::new("find_one_invalid", n), &n, |b, _| {
            b.iter(|| assert_eq!(find_invalid(black_box(&forged_sets), &mut rng), vec![n / 3]))
        });
        // A distributed validator's usual batch: every partial over one of
        // four roots (a slot's committees, or its selection-proof root).
        let shared = Partials::over_roots(n, 4);
        let shared_sets = shared.sets();
        group.bench_with_input(BenchmarkId::new("verify_batch_4_roots", n), &n, |b, _| {
            b.iter(|| assert!(verify_signature_sets(black_box(&shared_sets), &mut rng)))
        });
        let mut forged = Partials::over_roots(n, 4);
        forged.signatures[n / 3] = forged.signatures[n / 3 + 1];
        let forged_sets = forged.sets();
        group.bench_with_input(
            BenchmarkId::new("find_one_invalid_4_roots", n),
            &n,
            |b, _| {
                b.iter(|| assert_eq!(find_invalid(black_box(&forged_sets), &mut rng), vec![n / 3]))
            },
        );
    }
    group.finish();
}

fn keystore_benches(c: &mut Criterion) {
    let mut rng = rng();
    let secret = SecretKey::random(&mut rng);
    let mut group = c.benchmark_group("keystore");
    group.sample_size(10);
    for (name, setting) in [
        ("decrypt_scrypt_standard", KdfSetting::StandardScrypt),
        ("decrypt_pbkdf2_standard", KdfSetting::StandardPbkdf2),
        ("decrypt_insecure_low_cost", KdfSetting::InsecureLowCost),
    ] {
        let keystore =
            Keystore::encrypt(&secret, "password", "", setting, &mut rng).expect("encrypt");
        group.bench_function(name, |b| {
            b.iter_batched(
                || keystore.clone(),
                |k| k.decrypt("password").expect("right password"),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    single,
    combine_benches,
    batch_benches,
    keystore_benches
);
criterion_main!(benches);
