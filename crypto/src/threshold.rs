//! Threshold BLS: a secret key split into `n` Shamir shares of which any `t`
//! sign for the whole.
//!
//! Share `i` (counting from 1) holds `f(i)` for a random polynomial `f` of
//! degree `t − 1` with `f(0)` the group secret. Public shares are `f(i)·G1`;
//! a partial signature is `f(i)·H(m)`. Any `t` of them give `f(0)·H(m)`, the
//! ordinary signature of the group key, by Lagrange interpolation at zero,
//! evaluated as one multi-scalar multiplication.
//!
//! The Lagrange coefficients are ratios of small integers (products of share
//! indices and of their differences), so `combine` scales them by their
//! common denominator `D`: σ = D⁻¹ · Σ c_i·σ_i with integer c_i of a few
//! bits. The multi-scalar multiplication then runs over short scalars, and
//! one full-width multiplication by D⁻¹ (blst uses the GLS endomorphism for
//! it) finishes the job: several times faster than interpolating with
//! 255-bit field elements.

use std::fmt;
use std::num::NonZeroU64;

use blst::{blst_fp2_cneg, blst_p1_affine, blst_p2_affine, blst_p2_mult, blst_scalar};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::bls::{PublicKey, SecretKey, Signature};
use crate::error::Error;
use crate::msm::{msm_g1_public_key, msm_g2, SCALAR_BITS};
use crate::scalar::{lagrange_coefficients_at_zero, Fr};

/// The most shares [`split`] makes: far beyond any real cluster, low enough
/// that a mistaken count is an error rather than an allocation failure.
pub const MAX_SHARES: usize = 4096;

/// The x coordinate of a share: 1 for the first operator, 2 for the second, …
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct ShareIndex(NonZeroU64);

impl ShareIndex {
    /// A share index; 0 is refused because f(0) is the group secret.
    pub fn new(index: u64) -> Result<ShareIndex, Error> {
        NonZeroU64::new(index)
            .map(ShareIndex)
            .ok_or(Error::ZeroShareIndex)
    }

    /// The index as a number.
    pub fn get(self) -> u64 {
        self.0.get()
    }
}

impl TryFrom<u64> for ShareIndex {
    type Error = Error;
    fn try_from(index: u64) -> Result<Self, Error> {
        ShareIndex::new(index)
    }
}

impl From<ShareIndex> for u64 {
    fn from(index: ShareIndex) -> u64 {
        index.get()
    }
}

impl fmt::Display for ShareIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One operator's share of a group secret key.
#[derive(Clone, Debug)]
pub struct SecretShare {
    index: ShareIndex,
    key: SecretKey,
}

impl SecretShare {
    /// Pairs a share key with its index.
    pub fn new(index: ShareIndex, key: SecretKey) -> SecretShare {
        SecretShare { index, key }
    }

    /// The share's index.
    pub fn index(&self) -> ShareIndex {
        self.index
    }

    /// The share as an ordinary BLS secret key (what a validator client holds).
    pub fn secret_key(&self) -> &SecretKey {
        &self.key
    }

    /// The public share matching this secret share.
    pub fn public_share(&self) -> PublicShare {
        PublicShare::new(self.index, self.key.public_key())
    }

    /// A partial signature over `message`.
    pub fn sign(&self, message: &[u8]) -> PartialSignature {
        PartialSignature::new(self.index, self.key.sign(message))
    }
}

/// The public key of one share, which its partial signatures verify against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublicShare {
    /// The share's index.
    pub index: ShareIndex,
    /// The share's public key.
    pub key: PublicKey,
}

impl PublicShare {
    /// Pairs a public key with its share index.
    pub fn new(index: ShareIndex, key: PublicKey) -> PublicShare {
        PublicShare { index, key }
    }

    /// Whether `partial` is this share's signature over `message`. A partial
    /// carrying another index never verifies.
    pub fn verify(&self, partial: &PartialSignature, message: &[u8]) -> bool {
        partial.index == self.index && partial.signature.verify(&self.key, message)
    }
}

/// A signature made with one share, tagged with the share's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartialSignature {
    /// The index of the share that signed.
    pub index: ShareIndex,
    /// The signature by that share.
    pub signature: Signature,
}

impl PartialSignature {
    /// Pairs a signature with the index of the share that made it.
    pub fn new(index: ShareIndex, signature: Signature) -> PartialSignature {
        PartialSignature { index, signature }
    }

    /// Decodes the signature bytes (with the subgroup check) for `index`.
    pub fn from_bytes(index: ShareIndex, bytes: &[u8]) -> Result<PartialSignature, Error> {
        Ok(PartialSignature::new(index, Signature::from_bytes(bytes)?))
    }
}

/// A key split into shares, as a trusted dealer produces it.
#[derive(Debug)]
pub struct KeySplit {
    /// Shares needed to sign.
    pub threshold: usize,
    /// The public key the shares sign for.
    pub group_public_key: PublicKey,
    /// One share per operator, indices 1..=n.
    pub secret_shares: Vec<SecretShare>,
}

impl KeySplit {
    /// The public shares, in index order.
    pub fn public_shares(&self) -> Vec<PublicShare> {
        self.secret_shares
            .iter()
            .map(SecretShare::public_share)
            .collect()
    }
}

/// Splits `secret` into `shares` Shamir shares (indices 1..=shares) of which
/// any `threshold` recover it.
pub fn split<R: RngCore + CryptoRng>(
    secret: &SecretKey,
    threshold: usize,
    shares: usize,
    rng: &mut R,
) -> Result<KeySplit, Error> {
    if threshold == 0 || threshold > shares {
        return Err(Error::InvalidThreshold { threshold, shares });
    }
    if shares > MAX_SHARES {
        return Err(Error::TooManyShares {
            shares,
            max: MAX_SHARES,
        });
    }
    let secret_scalar: &blst_scalar = secret.as_blst().into();
    // f(x) = a0 + a1·x + … + a_{t−1}·x^{t−1}, a0 the secret. A share that
    // comes out zero (probability ~n/2^255) would be an invalid key: redraw.
    loop {
        let mut coefficients: Zeroizing<Vec<Fr>> = Zeroizing::new(Vec::with_capacity(threshold));
        coefficients.push(Fr::from_scalar(secret_scalar));
        for _ in 1..threshold {
            coefficients.push(Fr::random(rng));
        }
        let mut secret_shares = Vec::with_capacity(shares);
        for x in 1..=shares as u64 {
            let mut value = evaluate(&coefficients, Fr::from_u64(x));
            let key = fr_to_secret_key(&value);
            value.zeroize();
            match key {
                Some(key) => secret_shares.push(SecretShare::new(ShareIndex::new(x)?, key)),
                None => break,
            }
        }
        if secret_shares.len() == shares {
            return Ok(KeySplit {
                threshold,
                group_public_key: secret.public_key(),
                secret_shares,
            });
        }
    }
}

/// Recovers the group secret key from at least `threshold` shares (the first
/// `threshold` are used). Needed to rebuild a validator key for an exit or
/// a migration back to solo staking.
pub fn recover_secret_key(shares: &[SecretShare], threshold: usize) -> Result<SecretKey, Error> {
    let used = first_threshold(shares, threshold, |s| s.index)?;
    let indices: Vec<u64> = used.iter().map(|s| s.index.get()).collect();
    let lambdas = lagrange_coefficients_at_zero(&indices);
    let mut secret = Fr::ZERO;
    for (share, lambda) in used.iter().zip(lambdas) {
        let mut value = Fr::from_scalar(share.key.as_blst().into());
        secret = secret + lambda * value;
        value.zeroize();
    }
    let key = fr_to_secret_key(&secret).ok_or(Error::InvalidSecretKey);
    secret.zeroize();
    key
}

/// Recovers the group public key from at least `threshold` public shares
/// (the first `threshold` are used), by interpolation in G1.
pub fn recover_public_key(shares: &[PublicShare], threshold: usize) -> Result<PublicKey, Error> {
    let used = first_threshold(shares, threshold, |s| s.index)?;
    let indices: Vec<u64> = used.iter().map(|s| s.index.get()).collect();
    let scalars: Vec<u8> = lagrange_coefficients_at_zero(&indices)
        .into_iter()
        .flat_map(|lambda| lambda.to_scalar().b)
        .collect();
    let points: Vec<blst_p1_affine> = used
        .iter()
        .map(|s| *<&blst_p1_affine>::from(s.key.as_blst()))
        .collect();
    msm_g1_public_key(&points, &scalars, SCALAR_BITS)
}

/// Combines at least `threshold` partial signatures (the first `threshold`
/// are used) into the group signature: Σ λ_i·σ_i, evaluated as one
/// multi-scalar multiplication over the integer form of the coefficients.
///
/// Partials are not verified here: verify each against its public share
/// first (or in a batch), so that a bad one can be blamed on its sender
/// instead of silently spoiling the result.
pub fn combine(partials: &[PartialSignature], threshold: usize) -> Result<Signature, Error> {
    let used = first_threshold(partials, threshold, |p| p.index)?;
    let indices: Vec<ShareIndex> = used.iter().map(|p| p.index).collect();
    let mut points: Vec<blst_p2_affine> = used.iter().map(|p| *p.signature.as_affine()).collect();
    let Some(lagrange) = IntegerLagrange::new(&indices) else {
        // Indices too large for 128-bit integers: interpolate in the field.
        let xs: Vec<u64> = indices.iter().map(|i| i.get()).collect();
        let scalars: Vec<u8> = lagrange_coefficients_at_zero(&xs)
            .into_iter()
            .flat_map(|lambda| lambda.to_scalar().b)
            .collect();
        return Ok(Signature::from_projective(&msm_g2(
            &points,
            &scalars,
            SCALAR_BITS,
        )));
    };

    let widest = lagrange
        .numerators
        .iter()
        .map(|c| c.unsigned_abs())
        .max()
        .unwrap_or(1);
    let bits = (128 - widest.leading_zeros() as usize).max(1);
    // blst reads packed little-endian scalars, ceil(bits / 8) bytes each.
    let width = bits.div_ceil(8);
    let mut scalars = Vec::with_capacity(width * points.len());
    for (&c, point) in lagrange.numerators.iter().zip(points.iter_mut()) {
        if c < 0 {
            negate_g2(point);
        }
        scalars.extend_from_slice(&c.unsigned_abs().to_le_bytes()[..width]);
    }
    let mut sum = msm_g2(&points, &scalars, bits);
    if lagrange.denominator != 1 {
        let inverse = Fr::from_u128(lagrange.denominator)
            .inverse_public()
            .to_scalar();
        let scaled = sum;
        // SAFETY: distinct input and output values owned here; the scalar holds 32 bytes.
        unsafe { blst_p2_mult(&mut sum, &scaled, inverse.b.as_ptr(), SCALAR_BITS) };
    }
    Ok(Signature::from_projective(&sum))
}

/// Lagrange coefficients at zero as signed integers over one common
/// denominator: λ_i = numerators\[i\] / denominator, in lowest terms.
///
/// λ_i = Π_{j≠i} x_j / Π_{j≠i} (x_j − x_i); with D the least common
/// multiple of the reduced denominators, c_i = D·λ_i is an integer, and
/// Σ c_i = D because the λ_i sum to one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntegerLagrange {
    /// c_i = D·λ_i, one per index, in the order given.
    pub numerators: Vec<i128>,
    /// D, the common denominator (at least 1).
    pub denominator: u128,
}

impl IntegerLagrange {
    /// The coefficients for distinct `indices`, or `None` when some product
    /// does not fit in 128 bits (only for very large or very many indices).
    pub fn new(indices: &[ShareIndex]) -> Option<IntegerLagrange> {
        // Per index: the reduced fraction |num| / |den| and its sign.
        let mut fractions: Vec<(u128, u128, bool)> = Vec::with_capacity(indices.len());
        for (i, xi) in indices.iter().enumerate() {
            let (mut num, mut den, mut negative) = (1u128, 1u128, false);
            for (j, xj) in indices.iter().enumerate() {
                if i == j {
                    continue;
                }
                num = num.checked_mul(u128::from(xj.get()))?;
                let diff = i128::from(xj.get()) - i128::from(xi.get());
                if diff == 0 {
                    return None;
                }
                negative ^= diff < 0;
                den = den.checked_mul(diff.unsigned_abs())?;
            }
            let g = gcd(num, den);
            fractions.push((num / g, den / g, negative));
        }
        let denominator = fractions.iter().try_fold(1u128, |acc, &(_, den, _)| {
            acc.checked_mul(den / gcd(acc, den))
        })?;
        let numerators = fractions
            .iter()
            .map(|&(num, den, negative)| {
                let magnitude = i128::try_from(num.checked_mul(denominator / den)?).ok()?;
                Some(if negative { -magnitude } else { magnitude })
            })
            .collect::<Option<Vec<i128>>>()?;
        Some(IntegerLagrange {
            numerators,
            denominator,
        })
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// −P for an affine G2 point: negate y.
fn negate_g2(point: &mut blst_p2_affine) {
    let y = point.y;
    // SAFETY: reads the copy `y`, writes the point's own coordinate.
    unsafe { blst_fp2_cneg(&mut point.y, &y, true) };
}

/// The first `threshold` items, after checking there are enough and that
/// their indices are distinct.
fn first_threshold<T>(
    items: &[T],
    threshold: usize,
    index_of: impl Fn(&T) -> ShareIndex,
) -> Result<&[T], Error> {
    if threshold == 0 {
        return Err(Error::InvalidThreshold {
            threshold,
            shares: items.len(),
        });
    }
    if items.len() < threshold {
        return Err(Error::NotEnoughShares {
            needed: threshold,
            got: items.len(),
        });
    }
    let used = &items[..threshold];
    let mut seen: Vec<u64> = used.iter().map(|item| index_of(item).get()).collect();
    seen.sort_unstable();
    if let Some(pair) = seen.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(Error::DuplicateShareIndex(pair[0]));
    }
    Ok(used)
}

/// Horner evaluation of the polynomial with the given coefficients (lowest first).
pub(crate) fn evaluate(coefficients: &[Fr], x: Fr) -> Fr {
    coefficients
        .iter()
        .rev()
        .fold(Fr::ZERO, |acc, &coefficient| acc * x + coefficient)
}

pub(crate) fn fr_to_secret_key(value: &Fr) -> Option<SecretKey> {
    if value.is_zero() {
        return None;
    }
    let mut scalar = value.to_scalar();
    let mut bytes = Zeroizing::new([0u8; 32]);
    for (dst, src) in bytes.iter_mut().zip(scalar.b.iter().rev()) {
        *dst = *src;
    }
    scalar.b.zeroize();
    SecretKey::from_bytes(bytes.as_ref()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn setup(t: usize, n: usize, seed: u64) -> (SecretKey, KeySplit) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let sk = SecretKey::random(&mut rng);
        let split = split(&sk, t, n, &mut rng).expect("valid threshold");
        (sk, split)
    }

    #[test]
    fn split_recover_round_trip() {
        let (sk, split) = setup(3, 5, 7);
        let shares = &split.secret_shares;
        let recovered = recover_secret_key(
            &[shares[4].clone(), shares[0].clone(), shares[2].clone()],
            3,
        )
        .expect("three shares");
        assert_eq!(recovered.to_bytes(), sk.to_bytes());
        let group = recover_public_key(&split.public_shares()[1..4], 3).expect("three shares");
        assert_eq!(group, sk.public_key());
        assert_eq!(group, split.group_public_key);
    }

    #[test]
    fn too_few_or_duplicated_shares_are_refused() {
        let (_, split) = setup(3, 4, 8);
        let shares = &split.secret_shares;
        assert_eq!(
            recover_secret_key(&shares[..2], 3).map(|_| ()),
            Err(Error::NotEnoughShares { needed: 3, got: 2 })
        );
        let dup = [shares[0].clone(), shares[1].clone(), shares[0].clone()];
        assert_eq!(
            recover_secret_key(&dup, 3).map(|_| ()),
            Err(Error::DuplicateShareIndex(1))
        );
        let partials: Vec<_> = shares.iter().map(|s| s.sign(b"m")).collect();
        assert_eq!(
            combine(&partials[..2], 3),
            Err(Error::NotEnoughShares { needed: 3, got: 2 })
        );
    }

    #[test]
    fn invalid_thresholds_are_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let sk = SecretKey::random(&mut rng);
        for (t, n) in [(0, 3), (4, 3)] {
            assert_eq!(
                split(&sk, t, n, &mut rng).map(|_| ()),
                Err(Error::InvalidThreshold {
                    threshold: t,
                    shares: n
                })
            );
        }
        assert_eq!(ShareIndex::new(0), Err(Error::ZeroShareIndex));
        assert_eq!(
            split(&sk, 2, usize::MAX, &mut rng).map(|_| ()),
            Err(Error::TooManyShares {
                shares: usize::MAX,
                max: MAX_SHARES
            })
        );
    }

    #[test]
    fn combine_gives_the_group_signature() {
        let (sk, split) = setup(4, 7, 10);
        let partials: Vec<_> = split.secret_shares[2..6]
            .iter()
            .map(|s| s.sign(b"block"))
            .collect();
        let combined = combine(&partials, 4).expect("enough partials");
        assert_eq!(combined, sk.sign(b"block"));
        assert!(combined.verify(&split.group_public_key, b"block"));
    }

    #[test]
    fn integer_lagrange_matches_the_field_coefficients() {
        let idx = |xs: &[u64]| -> Vec<ShareIndex> {
            xs.iter()
                .map(|&x| ShareIndex::new(x).expect("non-zero"))
                .collect()
        };
        // x = 1, 2, 3: λ = 3, −3, 1 (integers already).
        assert_eq!(
            IntegerLagrange::new(&idx(&[1, 2, 3])),
            Some(IntegerLagrange {
                numerators: vec![3, -3, 1],
                denominator: 1
            })
        );
        // x = 2, 4, 5: λ = 10/3, −5, 8/3.
        assert_eq!(
            IntegerLagrange::new(&idx(&[2, 4, 5])),
            Some(IntegerLagrange {
                numerators: vec![10, -15, 8],
                denominator: 3
            })
        );
        for xs in [&[1u64][..], &[3, 9, 4, 16, 1, 7, 12], &[1000, 2, 77, 5]] {
            let lagrange = IntegerLagrange::new(&idx(xs)).expect("fits in 128 bits");
            assert_eq!(
                lagrange.numerators.iter().sum::<i128>(),
                lagrange.denominator as i128
            );
            let d_inverse = Fr::from_u128(lagrange.denominator).inverse_public();
            for (c, lambda) in lagrange
                .numerators
                .iter()
                .zip(lagrange_coefficients_at_zero(xs))
            {
                let c_field = if *c < 0 {
                    Fr::ZERO - Fr::from_u128(c.unsigned_abs())
                } else {
                    Fr::from_u128(c.unsigned_abs())
                };
                assert_eq!(c_field * d_inverse, lambda);
            }
        }
        // Huge indices overflow 128 bits and fall back to the field path.
        assert_eq!(
            IntegerLagrange::new(&idx(&[u64::MAX, u64::MAX - 1, 1, 2])),
            None
        );
    }

    #[test]
    fn combine_with_huge_indices_takes_the_field_path() {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        let sk = SecretKey::random(&mut rng);
        let polynomial = [
            Fr::from_scalar(sk.as_blst().into()),
            Fr::random(&mut rng),
            Fr::random(&mut rng),
        ];
        let indices: Vec<ShareIndex> = [u64::MAX, u64::MAX - 1, 1 << 62]
            .iter()
            .map(|&x| ShareIndex::new(x).expect("non-zero"))
            .collect();
        assert_eq!(IntegerLagrange::new(&indices), None);
        let partials: Vec<PartialSignature> = indices
            .iter()
            .map(|&index| {
                let value = evaluate(&polynomial, Fr::from_u64(index.get()));
                let key = fr_to_secret_key(&value).expect("non-zero share");
                SecretShare::new(index, key).sign(b"m")
            })
            .collect();
        assert_eq!(combine(&partials, 3), Ok(sk.sign(b"m")));
    }

    #[test]
    fn an_infinity_partial_counts_as_zero() {
        let (_, split) = setup(2, 2, 14);
        let first = split.secret_shares[0].sign(b"m");
        let infinity = PartialSignature::new(split.secret_shares[1].index(), Signature::infinity());
        // Indices 1 and 2: λ1 = 2, λ2 = −1, so the result is 2·σ1.
        let doubled = Signature::aggregate(&[first.signature, first.signature]).expect("two");
        assert_eq!(combine(&[first, infinity], 2), Ok(doubled));
        let also_infinity = PartialSignature::new(first.index, Signature::infinity());
        assert_eq!(
            combine(&[also_infinity, infinity], 2),
            Ok(Signature::infinity())
        );
    }

    #[test]
    fn a_one_of_one_split_is_the_key_itself() {
        let (sk, split) = setup(1, 1, 11);
        assert_eq!(
            split.secret_shares[0].secret_key().to_bytes(),
            sk.to_bytes()
        );
    }

    #[test]
    fn partial_with_other_index_does_not_verify() {
        let (_, split) = setup(2, 3, 12);
        let publics = split.public_shares();
        let partial = split.secret_shares[0].sign(b"m");
        assert!(publics[0].verify(&partial, b"m"));
        let relabelled = PartialSignature::new(publics[1].index, partial.signature);
        assert!(!publics[1].verify(&relabelled, b"m"));
        assert!(!publics[0].verify(&relabelled, b"m"));
    }

    #[test]
    fn share_index_serde_refuses_zero() {
        assert!(serde_json::from_str::<ShareIndex>("0").is_err());
        assert_eq!(
            serde_json::from_str::<ShareIndex>("3").ok(),
            ShareIndex::new(3).ok()
        );
    }
}
