//! Arithmetic in the BLS12-381 scalar field, the field Shamir shares and
//! Lagrange coefficients live in. A thin safe layer over blst's `blst_fr`
//! (Montgomery form) so that the threshold code reads as algebra.

use std::ops::{Add, Mul, Sub};

use blst::{
    blst_fr, blst_fr_add, blst_fr_eucl_inverse, blst_fr_from_scalar, blst_fr_from_uint64,
    blst_fr_mul, blst_fr_sub, blst_scalar, blst_scalar_from_be_bytes, blst_scalar_from_fr,
};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroize;

/// An element of the scalar field Fr (order r).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Fr(blst_fr);

impl Fr {
    pub(crate) const ZERO: Fr = Fr(blst_fr { l: [0; 4] });

    pub(crate) fn from_u64(value: u64) -> Fr {
        let mut out = blst_fr::default();
        let limbs = [value, 0, 0, 0];
        // SAFETY: blst reads four limbs from `limbs` and writes `out`.
        unsafe { blst_fr_from_uint64(&mut out, limbs.as_ptr()) };
        Fr(out)
    }

    pub(crate) fn from_u128(value: u128) -> Fr {
        let mut out = blst_fr::default();
        let limbs = [value as u64, (value >> 64) as u64, 0, 0];
        // SAFETY: blst reads four limbs from `limbs` and writes `out`.
        unsafe { blst_fr_from_uint64(&mut out, limbs.as_ptr()) };
        Fr(out)
    }

    /// Interprets a canonical scalar (already reduced below r) as a field element.
    pub(crate) fn from_scalar(scalar: &blst_scalar) -> Fr {
        let mut out = blst_fr::default();
        // SAFETY: both are plain fixed-size values owned here.
        unsafe { blst_fr_from_scalar(&mut out, scalar) };
        Fr(out)
    }

    /// The canonical little-endian scalar encoding blst's point multiplications take.
    pub(crate) fn to_scalar(self) -> blst_scalar {
        let mut out = blst_scalar::default();
        // SAFETY: both are plain fixed-size values owned here.
        unsafe { blst_scalar_from_fr(&mut out, &self.0) };
        out
    }

    /// A uniformly random field element: 64 bytes reduced modulo r, so the
    /// bias is below 2^-250.
    pub(crate) fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Fr {
        let mut wide = [0u8; 64];
        rng.fill_bytes(&mut wide);
        let mut scalar = blst_scalar::default();
        // SAFETY: blst reads exactly `wide.len()` bytes.
        unsafe { blst_scalar_from_be_bytes(&mut scalar, wide.as_ptr(), wide.len()) };
        wide.zeroize();
        let out = Fr::from_scalar(&scalar);
        scalar.b.zeroize();
        out
    }

    /// Reduces a big-endian byte string of any length modulo r (64 bytes
    /// of hash output give a uniform scalar).
    pub(crate) fn from_be_bytes_wide(bytes: &[u8]) -> Fr {
        let mut scalar = blst_scalar::default();
        // SAFETY: blst reads exactly `bytes.len()` bytes.
        unsafe { blst_scalar_from_be_bytes(&mut scalar, bytes.as_ptr(), bytes.len()) };
        Fr::from_scalar(&scalar)
    }

    pub(crate) fn is_zero(&self) -> bool {
        *self == Fr::ZERO
    }

    /// The multiplicative inverse. Variable-time: only ever applied to
    /// public values (share indices and their differences).
    pub(crate) fn inverse_public(self) -> Fr {
        let mut out = blst_fr::default();
        // SAFETY: both are plain fixed-size values owned here.
        unsafe { blst_fr_eucl_inverse(&mut out, &self.0) };
        Fr(out)
    }
}

// Field elements can be secret (polynomial coefficients, shares): never shown.
impl std::fmt::Debug for Fr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fr(<redacted>)")
    }
}

impl Zeroize for Fr {
    fn zeroize(&mut self) {
        self.0.l.zeroize();
    }
}

impl Add for Fr {
    type Output = Fr;
    fn add(self, rhs: Fr) -> Fr {
        let mut out = blst_fr::default();
        // SAFETY: all operands are plain fixed-size values owned here.
        unsafe { blst_fr_add(&mut out, &self.0, &rhs.0) };
        Fr(out)
    }
}

impl Sub for Fr {
    type Output = Fr;
    fn sub(self, rhs: Fr) -> Fr {
        let mut out = blst_fr::default();
        // SAFETY: all operands are plain fixed-size values owned here.
        unsafe { blst_fr_sub(&mut out, &self.0, &rhs.0) };
        Fr(out)
    }
}

impl Mul for Fr {
    type Output = Fr;
    fn mul(self, rhs: Fr) -> Fr {
        let mut out = blst_fr::default();
        // SAFETY: all operands are plain fixed-size values owned here.
        unsafe { blst_fr_mul(&mut out, &self.0, &rhs.0) };
        Fr(out)
    }
}

/// Inverts every element with one field inversion (Montgomery's trick).
/// All inputs must be non-zero and public.
pub(crate) fn batch_inverse_public(values: &mut [Fr]) {
    let mut prefix = Vec::with_capacity(values.len());
    let mut acc = Fr::from_u64(1);
    for value in values.iter() {
        prefix.push(acc);
        acc = acc * *value;
    }
    let mut inv = acc.inverse_public();
    for (value, before) in values.iter_mut().zip(prefix).rev() {
        let next = inv * *value;
        *value = inv * before;
        inv = next;
    }
}

/// The Lagrange coefficients that interpolate a polynomial at x = 0 from its
/// values at the given distinct, non-zero x coordinates.
///
/// λ_i = Π_{j≠i} x_j / (x_j − x_i), computed with a single inversion.
pub(crate) fn lagrange_coefficients_at_zero(xs: &[u64]) -> Vec<Fr> {
    let points: Vec<Fr> = xs.iter().map(|&x| Fr::from_u64(x)).collect();
    let numerator = points.iter().fold(Fr::from_u64(1), |acc, &x| acc * x);
    // λ_i = N / (x_i · Π_{j≠i} (x_j − x_i)) with N = Π x_j.
    let mut denominators: Vec<Fr> = points
        .iter()
        .enumerate()
        .map(|(i, &xi)| {
            points
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .fold(xi, |acc, (_, &xj)| acc * (xj - xi))
        })
        .collect();
    batch_inverse_public(&mut denominators);
    denominators.into_iter().map(|d| d * numerator).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_laws_hold() {
        let a = Fr::from_u64(7);
        let b = Fr::from_u64(5);
        assert_eq!(a - b, Fr::from_u64(2));
        assert_eq!(a * b, Fr::from_u64(35));
        assert_eq!(a * a.inverse_public(), Fr::from_u64(1));
        assert_eq!(
            Fr::from_u64(0) - Fr::from_u64(1) + Fr::from_u64(1),
            Fr::ZERO
        );
    }

    #[test]
    fn batch_inverse_matches_single_inverses() {
        let mut values: Vec<Fr> = (1..=9).map(Fr::from_u64).collect();
        let expected: Vec<Fr> = values.iter().map(|v| v.inverse_public()).collect();
        batch_inverse_public(&mut values);
        assert_eq!(values, expected);
    }

    #[test]
    fn lagrange_coefficients_reconstruct_a_polynomial_at_zero() {
        // f(x) = 11 + 3x + 2x^2, sampled at x = 2, 5, 9.
        let f = |x: u64| Fr::from_u64(11 + 3 * x + 2 * x * x);
        let xs = [2u64, 5, 9];
        let lambdas = lagrange_coefficients_at_zero(&xs);
        let at_zero = xs
            .iter()
            .zip(&lambdas)
            .fold(Fr::ZERO, |acc, (&x, &l)| acc + l * f(x));
        assert_eq!(at_zero, Fr::from_u64(11));
    }

    #[test]
    fn scalar_round_trip() {
        let x = Fr::from_u64(123_456_789);
        assert_eq!(Fr::from_scalar(&x.to_scalar()), x);
        assert_eq!(&x.to_scalar().b[..4], &123_456_789u32.to_le_bytes());
    }
}
