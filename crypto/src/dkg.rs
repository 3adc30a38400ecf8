//! The arithmetic of FROST key generation (Komlo–Goldberg, "FROST:
//! Flexible Round-Optimized Schnorr Threshold Signatures", §5.1), on
//! BLS12-381 G1 where Ethereum's public keys live.
//!
//! Every operator deals: a random polynomial fᵢ of degree t−1, Feldman
//! commitments Cᵢₖ = aᵢₖ·G to its coefficients, a Schnorr proof that it
//! knows aᵢ₀ (bound to a context: the cluster definition, the dealer, the
//! validator), and a share fᵢ(j) for every operator j. Operator j checks
//! each share against the dealer's commitments, and its key share is the
//! sum of the shares dealt to it. The group public key is Σᵢ Cᵢ₀, and every
//! operator's public share follows from the commitments alone. The group
//! secret Σᵢ aᵢ₀ is never formed: nothing in this module adds the
//! constant terms of different dealers.

use blst::blst_p1_affine;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::bls::{PublicKey, SecretKey};
use crate::error::Error;
use crate::msm::{msm_g1_public_key, SCALAR_BITS};
use crate::scalar::Fr;
use crate::threshold::{evaluate, fr_to_secret_key, ShareIndex, MAX_SHARES};

/// Domain separation of the proof-of-knowledge challenge.
const POK_DOMAIN: &[u8] = b"PHALANX-DKG-POK-BLS12381G1-SHA256-V1";

/// One dealer's secret polynomial for one validator. Zeroized on drop.
pub struct Dealing {
    coefficients: Zeroizing<Vec<Fr>>,
}

impl std::fmt::Debug for Dealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Dealing(threshold {}, <redacted>)",
            self.coefficients.len()
        )
    }
}

/// Feldman commitments to a dealer's coefficients: `t` points of G1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitments(pub Vec<PublicKey>);

/// A Schnorr proof of knowledge of a dealer's constant term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnowledgeProof {
    /// The commitment R = k·G.
    pub r: PublicKey,
    /// The response z = k + a₀·c, big-endian.
    #[serde(with = "hex32")]
    pub z: [u8; 32],
}

impl Dealing {
    /// A random polynomial of degree `threshold − 1`.
    pub fn random<R: RngCore + CryptoRng>(threshold: usize, rng: &mut R) -> Result<Dealing, Error> {
        check_threshold(threshold)?;
        let coefficients = (0..threshold).map(|_| Fr::random(rng)).collect();
        Ok(Dealing {
            coefficients: Zeroizing::new(coefficients),
        })
    }

    /// The coefficients as 32-byte big-endian scalars, for a ceremony to
    /// persist (encrypted) so that a restarted operator deals the same
    /// polynomial instead of a new one.
    pub fn to_secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(32 * self.coefficients.len()));
        for coefficient in self.coefficients.iter() {
            let mut bytes = fr_to_be_bytes(coefficient);
            out.extend_from_slice(&bytes);
            bytes.zeroize();
        }
        out
    }

    /// The dealing [`Dealing::to_secret_bytes`] wrote.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Dealing, Error> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(32) {
            return Err(Error::InvalidLength {
                what: "dealing",
                expected: 32,
                got: bytes.len(),
            });
        }
        let coefficients = bytes
            .chunks(32)
            .map(|chunk| {
                let value = Fr::from_be_bytes_wide(chunk);
                if fr_to_be_bytes(&value) != chunk {
                    return Err(Error::InvalidSecretKey);
                }
                Ok(value)
            })
            .collect::<Result<Vec<_>, _>>()?;
        check_threshold(coefficients.len())?;
        Ok(Dealing {
            coefficients: Zeroizing::new(coefficients),
        })
    }

    /// The threshold t (number of coefficients).
    pub fn threshold(&self) -> usize {
        self.coefficients.len()
    }

    /// The Feldman commitments aₖ·G.
    pub fn commitments(&self) -> Result<Commitments, Error> {
        self.coefficients
            .iter()
            .map(|a| {
                fr_to_secret_key(a)
                    .map(|key| key.public_key())
                    .ok_or(Error::InvalidSecretKey)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Commitments)
    }

    /// The share f(index) for the operator at `index`.
    pub fn share(&self, index: ShareIndex) -> Result<SecretKey, Error> {
        let mut value = evaluate(&self.coefficients, Fr::from_u64(index.get()));
        let key = fr_to_secret_key(&value).ok_or(Error::InvalidSecretKey);
        value.zeroize();
        key
    }

    /// Proves knowledge of the constant term, bound to `context` (the
    /// cluster definition hash, the dealer's index, the validator's index).
    pub fn prove<R: RngCore + CryptoRng>(
        &self,
        context: &[u8],
        rng: &mut R,
    ) -> Result<KnowledgeProof, Error> {
        let constant = fr_to_secret_key(&self.coefficients[0])
            .ok_or(Error::InvalidSecretKey)?
            .public_key();
        loop {
            let mut k = Fr::random(rng);
            let Some(nonce) = fr_to_secret_key(&k) else {
                continue;
            };
            let r = nonce.public_key();
            let c = challenge(context, &constant, &r);
            let mut z = k + self.coefficients[0] * c;
            k.zeroize();
            let bytes = fr_to_be_bytes(&z);
            z.zeroize();
            return Ok(KnowledgeProof { r, z: bytes });
        }
    }
}

impl Commitments {
    /// The threshold these commitments are for.
    pub fn threshold(&self) -> usize {
        self.0.len()
    }

    /// C₀, the dealer's contribution to the group public key.
    pub fn constant(&self) -> Option<&PublicKey> {
        self.0.first()
    }

    /// Σₖ Cₖ·indexᵏ: the public key of the share dealt to `index`.
    pub fn evaluate(&self, index: ShareIndex) -> Result<PublicKey, Error> {
        if self.0.is_empty() {
            return Err(Error::InvalidThreshold {
                threshold: 0,
                shares: 0,
            });
        }
        // The powers indexᵏ are small integers for real clusters (index ≤ n,
        // k < t): a multi-scalar multiplication over that many bits only is
        // far cheaper than over 255. Powers that outgrow 128 bits fall back
        // to field arithmetic.
        let powers: Option<Vec<u128>> = (0..self.0.len() as u32)
            .map(|k| u128::from(index.get()).checked_pow(k))
            .collect();
        let (scalars, bits) = match powers {
            Some(powers) => {
                let max = powers.iter().copied().max().unwrap_or(1);
                let bits = (128 - max.leading_zeros() as usize).max(1);
                let stride = bits.div_ceil(8);
                let scalars: Vec<u8> = powers
                    .iter()
                    .flat_map(|p| p.to_le_bytes().into_iter().take(stride))
                    .collect();
                (scalars, bits)
            }
            None => {
                let x = Fr::from_u64(index.get());
                let mut power = Fr::from_u64(1);
                let mut scalars = Vec::with_capacity(self.0.len() * 32);
                for _ in 0..self.0.len() {
                    scalars.extend_from_slice(&power.to_scalar().b);
                    power = power * x;
                }
                (scalars, SCALAR_BITS)
            }
        };
        let points: Vec<blst_p1_affine> = self
            .0
            .iter()
            .map(|c| *<&blst_p1_affine>::from(c.as_blst()))
            .collect();
        msm_g1_public_key(&points, &scalars, bits)
    }

    /// Whether `share` is the value these commitments fix for `index`.
    pub fn verify_share(&self, index: ShareIndex, share: &SecretKey) -> bool {
        self.evaluate(index)
            .is_ok_and(|expected| expected == share.public_key())
    }

    /// Checks a proof of knowledge of the constant term for `context`:
    /// z·G = R + c·C₀.
    pub fn verify_proof(&self, proof: &KnowledgeProof, context: &[u8]) -> bool {
        let Some(constant) = self.constant() else {
            return false;
        };
        let c = challenge(context, constant, &proof.r);
        let z = Fr::from_be_bytes_wide(&proof.z);
        if fr_to_be_bytes(&z) != proof.z || z.is_zero() {
            return false; // z must be reduced and non-zero
        }
        // R = z·G − c·C₀, as one two-point multi-scalar multiplication.
        // SAFETY: blst returns a pointer to its static generator.
        let generator = unsafe { *blst::blst_p1_affine_generator() };
        let points = [generator, *<&blst_p1_affine>::from(constant.as_blst())];
        let mut scalars = Vec::with_capacity(64);
        scalars.extend_from_slice(&z.to_scalar().b);
        scalars.extend_from_slice(&(Fr::ZERO - c).to_scalar().b);
        msm_g1_public_key(&points, &scalars, SCALAR_BITS).is_ok_and(|lhs| lhs == proof.r)
    }

    /// Coefficient-wise sum of several dealers' commitments: the
    /// commitments of the summed polynomial, whose constant term is the
    /// group public key and whose evaluations are the public shares.
    pub fn sum(all: &[Commitments]) -> Result<Commitments, Error> {
        let threshold = all.first().map_or(0, Commitments::threshold);
        if threshold == 0 || all.iter().any(|c| c.threshold() != threshold) {
            return Err(Error::InvalidThreshold {
                threshold,
                shares: all.len(),
            });
        }
        // Adding points: a one-bit scalar 1 for each.
        let scalars: Vec<u8> = vec![1u8; all.len()];
        (0..threshold)
            .map(|k| {
                let points: Vec<blst_p1_affine> = all
                    .iter()
                    .map(|c| *<&blst_p1_affine>::from(c.0[k].as_blst()))
                    .collect();
                msm_g1_public_key(&points, &scalars, 1)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Commitments)
    }
}

/// An operator's key share: the sum of the shares every dealer gave it.
pub fn sum_shares(shares: &[SecretKey]) -> Result<SecretKey, Error> {
    let mut total = Fr::ZERO;
    for share in shares {
        let mut value = Fr::from_scalar(share.as_blst().into());
        total = total + value;
        value.zeroize();
    }
    let key = fr_to_secret_key(&total).ok_or(Error::InvalidSecretKey);
    total.zeroize();
    key
}

fn check_threshold(threshold: usize) -> Result<(), Error> {
    if threshold == 0 || threshold > MAX_SHARES {
        return Err(Error::InvalidThreshold {
            threshold,
            shares: MAX_SHARES,
        });
    }
    Ok(())
}

/// c = H(domain, context, C₀, R) reduced from 64 bytes.
fn challenge(context: &[u8], constant: &PublicKey, r: &PublicKey) -> Fr {
    let mut wide = [0u8; 64];
    for (half, out) in wide.chunks_mut(32).enumerate() {
        let mut hash = Sha256::new();
        hash.update(POK_DOMAIN);
        hash.update([half as u8]);
        hash.update((context.len() as u64).to_be_bytes());
        hash.update(context);
        hash.update(constant.to_bytes());
        hash.update(r.to_bytes());
        out.copy_from_slice(&hash.finalize());
    }
    Fr::from_be_bytes_wide(&wide)
}

fn fr_to_be_bytes(value: &Fr) -> [u8; 32] {
    let mut scalar = value.to_scalar();
    let mut out = [0u8; 32];
    for (dst, src) in out.iter_mut().zip(scalar.b.iter().rev()) {
        *dst = *src;
    }
    scalar.b.zeroize();
    out
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(bytes)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text.trim_start_matches("0x"), &mut out)
            .map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;
    use crate::threshold::{combine, recover_public_key, PublicShare, SecretShare};

    fn index(i: u64) -> ShareIndex {
        ShareIndex::new(i).expect("index")
    }

    /// n dealers, threshold t: every operator's share verifies, the public
    /// shares follow from the commitments, and any t partial signatures
    /// combine into a signature under the group key.
    #[test]
    fn a_full_key_generation_gives_a_working_threshold_key() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let (n, t) = (5u64, 4usize);
        let dealings: Vec<Dealing> = (0..n)
            .map(|_| Dealing::random(t, &mut rng).expect("deal"))
            .collect();
        let commitments: Vec<Commitments> = dealings
            .iter()
            .map(|d| d.commitments().expect("commit"))
            .collect();
        for (dealer, (dealing, commitment)) in dealings.iter().zip(&commitments).enumerate() {
            let context = format!("definition/dealer {dealer}/validator 0");
            let proof = dealing.prove(context.as_bytes(), &mut rng).expect("prove");
            assert!(commitment.verify_proof(&proof, context.as_bytes()));
            assert!(!commitment.verify_proof(&proof, b"another context"));
            assert!(
                !commitments[(dealer + 1) % n as usize].verify_proof(&proof, context.as_bytes())
            );
        }
        let mut shares = Vec::new();
        for j in 1..=n {
            let dealt: Vec<SecretKey> = dealings
                .iter()
                .zip(&commitments)
                .map(|(d, c)| {
                    let share = d.share(index(j)).expect("share");
                    assert!(c.verify_share(index(j), &share));
                    assert!(!c.verify_share(index(j % n + 1), &share));
                    share
                })
                .collect();
            shares.push(SecretShare::new(index(j), sum_shares(&dealt).expect("sum")));
        }
        let total = Commitments::sum(&commitments).expect("sum");
        let group = *total.constant().expect("constant");
        let public_shares: Vec<PublicShare> = shares
            .iter()
            .map(|s| {
                let public = total.evaluate(s.index()).expect("evaluate");
                assert_eq!(public, s.public_share().key);
                s.public_share()
            })
            .collect();
        assert_eq!(
            recover_public_key(&public_shares[1..], t).expect("recover"),
            group
        );
        let message = b"attestation data root";
        let partials: Vec<_> = shares[..t].iter().map(|s| s.sign(message)).collect();
        let signature = combine(&partials, t).expect("combine");
        assert!(signature.verify(&group, message));
        let partials: Vec<_> = shares[1..].iter().map(|s| s.sign(message)).collect();
        assert_eq!(combine(&partials, t).expect("combine"), signature);
    }

    #[test]
    fn short_and_long_scalar_evaluations_agree() {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let dealing = Dealing::random(40, &mut rng).expect("deal");
        let commitments = dealing.commitments().expect("c");
        // 5^39 fits 128 bits; 4000^39 does not and takes the field path.
        for i in [1, 5, 4000] {
            let share = dealing.share(index(i)).expect("share");
            assert_eq!(
                commitments.evaluate(index(i)).expect("eval"),
                share.public_key()
            );
        }
    }

    #[test]
    fn a_dealing_survives_persistence() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let dealing = Dealing::random(4, &mut rng).expect("deal");
        let restored = Dealing::from_secret_bytes(&dealing.to_secret_bytes()).expect("restores");
        assert_eq!(
            restored.commitments().expect("c"),
            dealing.commitments().expect("c")
        );
        assert!(
            Dealing::from_secret_bytes(&[0xff; 32]).is_err(),
            "not reduced"
        );
        assert!(Dealing::from_secret_bytes(&[1; 31]).is_err());
    }

    #[test]
    fn a_tampered_proof_or_share_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let dealing = Dealing::random(3, &mut rng).expect("deal");
        let commitments = dealing.commitments().expect("commit");
        let mut proof = dealing.prove(b"ctx", &mut rng).expect("prove");
        proof.z[31] ^= 1;
        assert!(!commitments.verify_proof(&proof, b"ctx"));
        let share = dealing.share(index(2)).expect("share");
        let other = Dealing::random(3, &mut rng)
            .expect("deal")
            .share(index(2))
            .expect("share");
        assert!(commitments.verify_share(index(2), &share));
        assert!(!commitments.verify_share(index(2), &other));
        assert!(format!("{dealing:?}").contains("redacted"));
    }
}
