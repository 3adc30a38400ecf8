//! Multi-scalar multiplication in G1 and G2: Σ s_i·P_i with shared
//! doublings (blst's windowed method for few points, Pippenger for many),
//! over scalars packed little-endian, `ceil(bits / 8)` bytes each.

use blst::{
    blst_p1, blst_p1_affine, blst_p1s_mult_pippenger, blst_p1s_mult_pippenger_scratch_sizeof,
    blst_p2, blst_p2_affine, blst_p2s_mult_pippenger, blst_p2s_mult_pippenger_scratch_sizeof,
    limb_t,
};

/// Bits in a scalar of the BLS12-381 group order.
pub(crate) const SCALAR_BITS: usize = 255;

/// Σ scalars[i]·points[i] in G2 over the low `bits` bits of each scalar.
pub(crate) fn msm_g2(points: &[blst_p2_affine], scalars: &[u8], bits: usize) -> blst_p2 {
    assert_eq!(scalars.len(), points.len() * bits.div_ceil(8));
    let mut out = blst_p2::default();
    if points.is_empty() {
        return out;
    }
    // SAFETY: blst reads `points.len()` contiguous points and packed scalars
    // (a null second pointer marks a contiguous array; the length is checked
    // above) and writes `out` and a scratch buffer of the size it asked for.
    unsafe {
        let mut scratch = scratch_buffer(blst_p2s_mult_pippenger_scratch_sizeof(points.len()));
        let point_ptrs = [points.as_ptr(), std::ptr::null()];
        let scalar_ptrs = [scalars.as_ptr(), std::ptr::null()];
        blst_p2s_mult_pippenger(
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

/// Σ scalars[i]·points[i] in G1 over the low `bits` bits of each scalar.
pub(crate) fn msm_g1(points: &[blst_p1_affine], scalars: &[u8], bits: usize) -> blst_p1 {
    assert_eq!(scalars.len(), points.len() * bits.div_ceil(8));
    let mut out = blst_p1::default();
    if points.is_empty() {
        return out;
    }
    // SAFETY: as in `msm_g2`.
    unsafe {
        let mut scratch = scratch_buffer(blst_p1s_mult_pippenger_scratch_sizeof(points.len()));
        let point_ptrs = [points.as_ptr(), std::ptr::null()];
        let scalar_ptrs = [scalars.as_ptr(), std::ptr::null()];
        blst_p1s_mult_pippenger(
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

fn scratch_buffer(bytes: usize) -> Vec<limb_t> {
    vec![0; bytes.div_ceil(std::mem::size_of::<limb_t>()).max(1)]
}

/// Σ scalarᵢ·pointᵢ in G1 as a public key (refusing the point at infinity):
/// the shape every interpolation and commitment evaluation ends in.
pub(crate) fn msm_g1_public_key(
    points: &[blst_p1_affine],
    scalars: &[u8],
    bits: usize,
) -> Result<crate::bls::PublicKey, crate::error::Error> {
    let sum = msm_g1(points, scalars, bits);
    let mut affine = blst_p1_affine::default();
    // SAFETY: both are plain fixed-size values owned here.
    unsafe { blst::blst_p1_to_affine(&mut affine, &sum) };
    crate::bls::PublicKey::from_point_checked(blst::min_pk::PublicKey::from(affine))
}
