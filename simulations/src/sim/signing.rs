//! The signature schemes a simulation runs with: Ethereum's BLS (what real
//! nodes use) or [`Cheap`], which keeps the threshold behaviour at a tiny
//! fraction of the cost, for sweeps over many seeds.
//!
//! The node's cores take either through
//! [`SignatureScheme`](phalanx_node::scheme::SignatureScheme); the simulated
//! validator clients and beacon nodes also deal keys, sign and aggregate,
//! which is [`SimScheme`].

use std::fmt::Debug;

use phalanx_consensus::{MessageSignature, OperatorIndex, Signer, Verifier};
use phalanx_crypto::threshold::split;
use phalanx_crypto::{SecretKey, Signature};
use phalanx_eth::{PublicKeyBytes, SignatureBytes};
use phalanx_node::qbft::{LockVerifier, NodeSigner};
use phalanx_node::scheme::{Bls, Check, Partial, SignatureScheme};
use phalanx_p2p::NodeKey;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Which signatures a run uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signatures {
    /// Ethereum's BLS12-381 signatures, as real nodes use them.
    #[default]
    Bls,
    /// [`Cheap`] signatures.
    Cheap,
}

impl Signatures {
    /// The name in scenario files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Signatures::Bls => "bls",
            Signatures::Cheap => "cheap",
        }
    }
}

/// One validator's key, dealt among the operators.
pub struct Dealt<S: SimScheme> {
    /// The whole secret key (only the simulator's referee uses it).
    pub secret: S::SecretKey,
    /// The group public key.
    pub group: S::PublicKey,
    /// Operator i's secret share at position i (share index i + 1).
    pub secret_shares: Vec<S::SecretKey>,
    /// Operator i's public share.
    pub public_shares: Vec<S::PublicKey>,
}

/// The consensus signer and verifier of one node.
pub type ConsensusKeys = (Box<dyn Signer + Send>, Box<dyn Verifier + Send>);

/// What the simulated clients and beacon nodes do with a scheme besides
/// what the node does.
pub trait SimScheme: SignatureScheme {
    /// A secret key or share.
    type SecretKey: Clone + Debug;

    /// A fresh key split `threshold` of `operators`.
    fn deal<R: RngCore + CryptoRng>(threshold: usize, operators: usize, rng: &mut R)
        -> Dealt<Self>;

    /// Signs `message`.
    fn sign(secret: &Self::SecretKey, message: &[u8]) -> Self::Signature;

    /// Aggregates signatures of several keys (attestations into an
    /// aggregate, sync messages into a contribution).
    fn aggregate(signatures: &[Self::Signature]) -> Result<Self::Signature, String>;

    /// How node `me` signs its consensus messages and checks its peers',
    /// given every node's 32-byte key (`secrets[i]` is node i's).
    fn consensus_keys(secrets: &[[u8; 32]], me: usize) -> ConsensusKeys;
}

/// Node i's secp256k1 key from its 32 bytes.
fn node_key(secret: &[u8; 32]) -> NodeKey {
    NodeKey::from_bytes(*secret).unwrap_or_else(|e| unreachable!("a simulated node key: {e}"))
}

impl SimScheme for Bls {
    type SecretKey = SecretKey;

    fn deal<R: RngCore + CryptoRng>(threshold: usize, operators: usize, rng: &mut R) -> Dealt<Bls> {
        let secret = SecretKey::random(rng);
        let split = split(&secret, threshold, operators, rng)
            .unwrap_or_else(|e| unreachable!("a validated scenario splits: {e}"));
        Dealt {
            group: secret.public_key(),
            public_shares: split
                .secret_shares
                .iter()
                .map(|s| s.public_share().key)
                .collect(),
            secret_shares: split
                .secret_shares
                .iter()
                .map(|s| s.secret_key().clone())
                .collect(),
            secret,
        }
    }

    fn sign(secret: &SecretKey, message: &[u8]) -> Signature {
        secret.sign(message)
    }

    fn aggregate(signatures: &[Signature]) -> Result<Signature, String> {
        Signature::aggregate(signatures).map_err(|e| e.to_string())
    }

    /// The node's own secp256k1 signatures, as in `phalanx run`.
    fn consensus_keys(secrets: &[[u8; 32]], me: usize) -> ConsensusKeys {
        let publics = secrets.iter().map(|s| node_key(s).public_key()).collect();
        (
            Box::new(NodeSigner(node_key(&secrets[me]))),
            Box::new(LockVerifier::new(publics)),
        )
    }
}

/// [`Cheap`]'s consensus signatures: a keyed hash, SHA-256(key ‖ bytes).
/// Every simulated node's verifier knows every key, but no node's code
/// signs with another's, so a forged or altered message is still refused.
struct CheapConsensus {
    keys: Vec<[u8; 32]>,
    me: usize,
}

fn keyed_hash(key: &[u8; 32], bytes: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(key);
    hasher.update(bytes);
    hasher.finalize().to_vec()
}

impl Signer for CheapConsensus {
    fn sign(&self, bytes: &[u8]) -> MessageSignature {
        MessageSignature(keyed_hash(&self.keys[self.me], bytes))
    }
}

impl Verifier for CheapConsensus {
    fn verify(&self, sender: OperatorIndex, bytes: &[u8], signature: &MessageSignature) -> bool {
        self.keys
            .get(sender.as_usize())
            .is_some_and(|key| keyed_hash(key, bytes) == signature.0)
    }
}

/// The prime of [`Cheap`]'s field: 2^61 − 1.
const P: u64 = (1 << 61) - 1;

/// Marks the bytes of a [`Cheap`] key.
const KEY_TAG: &[u8; 8] = b"cheap-pk";
/// Marks the bytes of a [`Cheap`] signature.
const SIGNATURE_TAG: &[u8; 8] = b"cheapsig";

/// Threshold signatures in a prime field, for simulations only: a key is a
/// field element k, the signature of m is σ = k·h(m), with h a hash into the
/// field. Shares are Shamir shares of k, so partials combine by Lagrange
/// interpolation exactly like BLS partials: t of them give k·h(m), t − 1 give
/// a value that does not verify, and a partial over another message or by
/// another share does not verify under its share. The "public" key is k
/// itself — there is no secrecy here, only the same behaviour at a fraction
/// of a microsecond per operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cheap;

/// A [`Cheap`] key: the field element (public and secret alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheapKey(u64);

/// A [`Cheap`] signature: a field element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheapSignature(u64);

fn mul(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    // 2^61 ≡ 1 (mod p): fold the high bits onto the low ones.
    let folded = (product & u128::from(P)) + (product >> 61);
    reduce(folded as u64)
}

fn reduce(a: u64) -> u64 {
    let a = (a & P) + (a >> 61);
    if a >= P {
        a - P
    } else {
        a
    }
}

fn add(a: u64, b: u64) -> u64 {
    reduce(a + b)
}

fn sub(a: u64, b: u64) -> u64 {
    reduce(a + P - b)
}

fn inverse(a: u64) -> u64 {
    // Fermat: a^(p − 2).
    let (mut result, mut base, mut exponent) = (1, a, P - 2);
    while exponent > 0 {
        if exponent & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        exponent >>= 1;
    }
    result
}

/// A non-zero field element from a hash of `message`.
fn hash_to_field(message: &[u8]) -> u64 {
    let digest = Sha256::digest(message);
    let mut word = [0u8; 8];
    word.copy_from_slice(&digest[..8]);
    match reduce(u64::from_le_bytes(word) >> 3) {
        0 => 1,
        h => h,
    }
}

fn random_element<R: RngCore>(rng: &mut R) -> u64 {
    loop {
        let candidate = rng.next_u64() >> 3;
        if candidate != 0 && candidate < P {
            return candidate;
        }
    }
}

impl SignatureScheme for Cheap {
    type PublicKey = CheapKey;
    type Signature = CheapSignature;

    fn public_key_bytes(key: &CheapKey) -> PublicKeyBytes {
        let mut bytes = [0u8; 48];
        bytes[..8].copy_from_slice(KEY_TAG);
        bytes[8..16].copy_from_slice(&key.0.to_le_bytes());
        PublicKeyBytes::from(bytes)
    }

    fn decode_signature(bytes: &[u8]) -> Result<CheapSignature, String> {
        let malformed = || "not a signature of the simulator's cheap scheme".to_string();
        if bytes.len() != 96 || &bytes[..8] != SIGNATURE_TAG || bytes[16..].iter().any(|&b| b != 0)
        {
            return Err(malformed());
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[8..16]);
        let value = u64::from_le_bytes(word);
        if value >= P {
            return Err(malformed());
        }
        Ok(CheapSignature(value))
    }

    fn signature_bytes(signature: &CheapSignature) -> SignatureBytes {
        let mut bytes = [0u8; 96];
        bytes[..8].copy_from_slice(SIGNATURE_TAG);
        bytes[8..16].copy_from_slice(&signature.0.to_le_bytes());
        SignatureBytes::from(bytes)
    }

    fn verify(key: &CheapKey, message: &[u8], signature: &CheapSignature) -> bool {
        mul(key.0, hash_to_field(message)) == signature.0
    }

    fn find_invalid<R: RngCore + CryptoRng>(
        checks: &[Check<'_, Self>],
        _rng: &mut R,
    ) -> Vec<usize> {
        checks
            .iter()
            .enumerate()
            .filter(|(_, c)| !Cheap::verify(c.public_key, c.message, c.signature))
            .map(|(i, _)| i)
            .collect()
    }

    fn combine(
        partials: &[Partial<CheapSignature>],
        threshold: usize,
    ) -> Result<CheapSignature, String> {
        if threshold == 0 || partials.len() < threshold {
            return Err(format!(
                "{} partial signatures, {threshold} needed",
                partials.len()
            ));
        }
        let used = &partials[..threshold];
        let xs: Vec<u64> = used.iter().map(|p| p.index.get() % P).collect();
        for (i, x) in xs.iter().enumerate() {
            if *x == 0 || xs[..i].contains(x) {
                return Err(format!(
                    "share index {} repeated or out of range",
                    used[i].index
                ));
            }
        }
        // σ = Σ λ_i σ_i with λ_i = Π_{j≠i} x_j / (x_j − x_i).
        let mut sum = 0;
        for (i, partial) in used.iter().enumerate() {
            let (mut numerator, mut denominator) = (1, 1);
            for (j, &xj) in xs.iter().enumerate() {
                if j != i {
                    numerator = mul(numerator, xj);
                    denominator = mul(denominator, sub(xj, xs[i]));
                }
            }
            let lambda = mul(numerator, inverse(denominator));
            sum = add(sum, mul(lambda, partial.signature.0));
        }
        Ok(CheapSignature(sum))
    }
}

impl SimScheme for Cheap {
    type SecretKey = CheapKey;

    fn deal<R: RngCore + CryptoRng>(
        threshold: usize,
        operators: usize,
        rng: &mut R,
    ) -> Dealt<Cheap> {
        // f(x) = k + a_1 x + … + a_{t−1} x^{t−1}; share i is f(i).
        let coefficients: Vec<u64> = (0..threshold.max(1)).map(|_| random_element(rng)).collect();
        let shares: Vec<CheapKey> = (1..=operators as u64)
            .map(|x| {
                let value = coefficients
                    .iter()
                    .rev()
                    .fold(0, |acc, &c| add(mul(acc, x), c));
                CheapKey(value)
            })
            .collect();
        let secret = CheapKey(coefficients[0]);
        Dealt {
            secret,
            group: secret,
            secret_shares: shares.clone(),
            public_shares: shares,
        }
    }

    fn sign(secret: &CheapKey, message: &[u8]) -> CheapSignature {
        CheapSignature(mul(secret.0, hash_to_field(message)))
    }

    fn aggregate(signatures: &[CheapSignature]) -> Result<CheapSignature, String> {
        if signatures.is_empty() {
            return Err("no signatures to aggregate".into());
        }
        Ok(CheapSignature(
            signatures.iter().fold(0, |acc, s| add(acc, s.0)),
        ))
    }

    fn consensus_keys(secrets: &[[u8; 32]], me: usize) -> ConsensusKeys {
        let keys = || CheapConsensus {
            keys: secrets.to_vec(),
            me,
        };
        (Box::new(keys()), Box::new(keys()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_crypto::threshold::ShareIndex;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn share_index(position: usize) -> ShareIndex {
        ShareIndex::new(position as u64 + 1).expect("positions start at 0")
    }

    /// The threshold behaviour every scheme must have, checked through the
    /// node's interface.
    fn threshold_behaviour<S: SimScheme>() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let (t, n) = (3, 4);
        let dealt = S::deal(t, n, &mut rng);
        let message = b"a signing root of thirty-two byt";
        let partials: Vec<Partial<S::Signature>> = dealt
            .secret_shares
            .iter()
            .enumerate()
            .map(|(i, share)| Partial {
                index: share_index(i),
                signature: S::sign(share, message),
            })
            .collect();
        // Each partial verifies under its own share, not another's.
        for (i, p) in partials.iter().enumerate() {
            assert!(S::verify(&dealt.public_shares[i], message, &p.signature));
            assert!(!S::verify(
                &dealt.public_shares[(i + 1) % n],
                message,
                &p.signature
            ));
        }
        // Any t combine into the whole key's signature.
        let whole = S::sign(&dealt.secret, message);
        for skip in 0..n {
            let some: Vec<_> = (0..n).filter(|&i| i != skip).map(|i| partials[i]).collect();
            let combined = S::combine(&some, t).expect("combines");
            assert_eq!(combined, whole);
            assert!(S::verify(&dealt.group, message, &combined));
        }
        // t − 1 do not: combined as if t − 1 were enough, the result fails.
        let short = S::combine(&partials[..t - 1], t - 1).expect("combines");
        assert!(!S::verify(&dealt.group, message, &short));
        // A wrong partial is detected, alone and inside a combination.
        let wrong = S::sign(&dealt.secret_shares[0], b"another message");
        let checks: Vec<Check<'_, S>> = (0..n)
            .map(|i| Check {
                message,
                public_key: &dealt.public_shares[i],
                signature: if i == 2 {
                    &wrong
                } else {
                    &partials[i].signature
                },
            })
            .collect();
        assert_eq!(S::find_invalid(&checks, &mut rng), vec![2]);
        let mut spoiled = partials[..t].to_vec();
        spoiled[1].signature = wrong;
        let combined = S::combine(&spoiled, t).expect("combines");
        assert!(!S::verify(&dealt.group, message, &combined));
        // Signatures round-trip through their bytes; other bytes are refused.
        let bytes = S::signature_bytes(&whole);
        assert_eq!(S::decode_signature(bytes.as_slice()), Ok(whole));
        assert!(S::decode_signature(&[0x11; 96]).is_err());
    }

    #[test]
    fn bls_has_the_threshold_behaviour() {
        threshold_behaviour::<Bls>();
    }

    #[test]
    fn the_cheap_scheme_has_the_same_threshold_behaviour() {
        threshold_behaviour::<Cheap>();
    }

    #[test]
    fn cheap_aggregates_verify_under_the_sum_of_keys() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let keys: Vec<CheapKey> = (0..5).map(|_| Cheap::deal(1, 1, &mut rng).secret).collect();
        let message = b"one root";
        let signatures: Vec<_> = keys.iter().map(|k| Cheap::sign(k, message)).collect();
        let aggregate = Cheap::aggregate(&signatures).expect("aggregates");
        let sum = CheapKey(keys.iter().fold(0, |acc, k| add(acc, k.0)));
        assert!(Cheap::verify(&sum, message, &aggregate));
        assert_eq!(mul(inverse(12_345), 12_345), 1);
    }
}
