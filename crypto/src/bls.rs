//! BLS signatures exactly as Ethereum uses them: minimal-pubkey-size variant
//! (public keys in G1, 48 bytes; signatures in G2, 96 bytes) with the
//! proof-of-possession ciphersuite.
//!
//! Every `PublicKey` and `Signature` value has passed the checks Ethereum
//! requires when it was decoded (on the curve, in the subgroup, and for keys
//! not the point at infinity), so verification never repeats them.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use blst::min_pk;
use blst::{blst_p2, blst_p2_affine, blst_p2_affine_serialize, blst_p2_to_affine, BLST_ERROR};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::error::Error;

/// The domain-separation tag of Ethereum's BLS ciphersuite.
pub const DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// Length of a compressed public key.
pub const PUBLIC_KEY_LEN: usize = 48;
/// Length of a compressed signature.
pub const SIGNATURE_LEN: usize = 96;
/// Length of a secret key.
pub const SECRET_KEY_LEN: usize = 32;

/// A BLS secret key. Zeroized on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey(min_pk::SecretKey);

impl SecretKey {
    /// A new random key from 32 bytes of the given RNG, via the IETF KeyGen.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> SecretKey {
        let mut ikm = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(ikm.as_mut());
        // KeyGen only refuses input keying material shorter than 32 bytes.
        match min_pk::SecretKey::key_gen(ikm.as_ref(), &[]) {
            Ok(key) => SecretKey(key),
            Err(_) => unreachable!("32 bytes of key material is always accepted"),
        }
    }

    /// Decodes a 32-byte big-endian scalar; zero and values ≥ r are refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<SecretKey, Error> {
        if bytes.len() != SECRET_KEY_LEN {
            return Err(Error::InvalidLength {
                what: "secret key",
                expected: SECRET_KEY_LEN,
                got: bytes.len(),
            });
        }
        min_pk::SecretKey::from_bytes(bytes)
            .map(SecretKey)
            .map_err(|_| Error::InvalidSecretKey)
    }

    /// The 32-byte big-endian encoding, wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SECRET_KEY_LEN]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_point(self.0.sk_to_pk())
    }

    /// Signs `message` with Ethereum's domain-separation tag.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message, DST, &[]))
    }

    pub(crate) fn from_blst(key: min_pk::SecretKey) -> SecretKey {
        SecretKey(key)
    }

    pub(crate) fn as_blst(&self) -> &min_pk::SecretKey {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A validated BLS public key: in G1's subgroup and never the point at infinity.
#[derive(Clone, Copy)]
pub struct PublicKey {
    point: min_pk::PublicKey,
    compressed: [u8; PUBLIC_KEY_LEN],
}

impl PublicKey {
    /// Decodes a compressed key and applies Ethereum's KeyValidate.
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicKey, Error> {
        if bytes.len() != PUBLIC_KEY_LEN {
            return Err(Error::InvalidLength {
                what: "public key",
                expected: PUBLIC_KEY_LEN,
                got: bytes.len(),
            });
        }
        let point =
            min_pk::PublicKey::uncompress(bytes).map_err(|e| Error::from_blst(e, "public key"))?;
        point
            .validate()
            .map_err(|e| Error::from_blst(e, "public key"))?;
        let mut compressed = [0u8; PUBLIC_KEY_LEN];
        compressed.copy_from_slice(bytes);
        Ok(PublicKey { point, compressed })
    }

    /// Decodes `0x`-prefixed (or bare) hex.
    pub fn from_hex(text: &str) -> Result<PublicKey, Error> {
        PublicKey::from_bytes(&decode_hex(text, "public key")?)
    }

    /// The 48-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.compressed
    }

    /// The 48-byte compressed encoding, borrowed.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.compressed
    }

    /// `0x`-prefixed lower-case hex, as the beacon API writes keys.
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.compressed))
    }

    /// Wraps a point the caller knows is valid (derived from a secret key or
    /// computed from validated points) and checks it is not infinity.
    pub(crate) fn from_point_checked(point: min_pk::PublicKey) -> Result<PublicKey, Error> {
        // Sums and multiples of subgroup points stay in the subgroup, so
        // only infinity needs refusing (a subgroup check costs about as
        // much as the arithmetic that produced the point).
        let affine: &blst::blst_p1_affine = (&point).into();
        // SAFETY: blst reads a plain fixed-size value.
        if unsafe { blst::blst_p1_affine_is_inf(affine) } {
            return Err(Error::InfinityPublicKey);
        }
        Ok(PublicKey::from_point(point))
    }

    fn from_point(point: min_pk::PublicKey) -> PublicKey {
        PublicKey {
            point,
            compressed: point.compress(),
        }
    }

    pub(crate) fn as_blst(&self) -> &min_pk::PublicKey {
        &self.point
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.compressed == other.compressed
    }
}

impl Eq for PublicKey {}

impl Hash for PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.compressed.hash(state);
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.compressed.cmp(&other.compressed)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for PublicKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        PublicKey::from_hex(s)
    }
}

/// A BLS signature in G2's subgroup. The point at infinity is a valid
/// encoding (it is the aggregate of nothing) but verifies against no key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(min_pk::Signature);

impl Signature {
    /// Decodes a compressed signature and checks subgroup membership.
    pub fn from_bytes(bytes: &[u8]) -> Result<Signature, Error> {
        if bytes.len() != SIGNATURE_LEN {
            return Err(Error::InvalidLength {
                what: "signature",
                expected: SIGNATURE_LEN,
                got: bytes.len(),
            });
        }
        let point =
            min_pk::Signature::uncompress(bytes).map_err(|e| Error::from_blst(e, "signature"))?;
        point
            .validate(false)
            .map_err(|e| Error::from_blst(e, "signature"))?;
        Ok(Signature(point))
    }

    /// Decodes `0x`-prefixed (or bare) hex.
    pub fn from_hex(text: &str) -> Result<Signature, Error> {
        Signature::from_bytes(&decode_hex(text, "signature")?)
    }

    /// The 96-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_LEN] {
        self.0.compress()
    }

    /// `0x`-prefixed lower-case hex, as the beacon API writes signatures.
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.to_bytes()))
    }

    /// The point at infinity: the signature the spec gives an empty aggregate.
    pub fn infinity() -> Signature {
        Signature(min_pk::Signature::from(blst_p2_affine::default()))
    }

    /// Whether this is the point at infinity.
    pub fn is_infinity(&self) -> bool {
        *self == Signature::infinity()
    }

    /// Ethereum's `Verify(pk, message, signature)`.
    pub fn verify(&self, public_key: &PublicKey, message: &[u8]) -> bool {
        // Both points were checked when decoded.
        self.0
            .verify(false, message, DST, &[], public_key.as_blst(), false)
            == BLST_ERROR::BLST_SUCCESS
    }

    /// Ethereum's `FastAggregateVerify`: many keys, one message. False for no keys.
    pub fn fast_aggregate_verify(&self, message: &[u8], public_keys: &[PublicKey]) -> bool {
        if public_keys.is_empty() {
            return false;
        }
        let keys: Vec<&min_pk::PublicKey> = public_keys.iter().map(PublicKey::as_blst).collect();
        self.0.fast_aggregate_verify(false, message, DST, &keys) == BLST_ERROR::BLST_SUCCESS
    }

    /// Ethereum's `AggregateVerify`: one message per key. False for no keys
    /// or lists of different lengths.
    pub fn aggregate_verify(&self, messages: &[&[u8]], public_keys: &[PublicKey]) -> bool {
        if public_keys.is_empty() || messages.len() != public_keys.len() {
            return false;
        }
        let keys: Vec<&min_pk::PublicKey> = public_keys.iter().map(PublicKey::as_blst).collect();
        self.0.aggregate_verify(false, messages, DST, &keys, false) == BLST_ERROR::BLST_SUCCESS
    }

    /// Ethereum's `Aggregate`: the sum of the signatures. Refuses an empty list.
    pub fn aggregate(signatures: &[Signature]) -> Result<Signature, Error> {
        if signatures.is_empty() {
            return Err(Error::Empty {
                operation: "aggregate",
            });
        }
        let refs: Vec<&min_pk::Signature> = signatures.iter().map(|s| &s.0).collect();
        let aggregate = min_pk::AggregateSignature::aggregate(&refs, false)
            .map_err(|e| Error::from_blst(e, "signature"))?;
        Ok(Signature(aggregate.to_signature()))
    }

    pub(crate) fn from_projective(point: &blst_p2) -> Signature {
        let mut affine = blst_p2_affine::default();
        // SAFETY: both are plain fixed-size values owned here.
        unsafe { blst_p2_to_affine(&mut affine, point) };
        Signature(min_pk::Signature::from(affine))
    }

    pub(crate) fn as_affine(&self) -> &blst_p2_affine {
        (&self.0).into()
    }
}

impl Hash for Signature {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.to_bytes().hash(state);
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for Signature {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Signature::from_hex(s)
    }
}

/// Hashes `message` to G2 with the given tag and returns the 192-byte
/// uncompressed encoding (x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0, big-endian). Exposed so
/// the hash-to-curve conformance vectors can be checked directly.
pub fn hash_to_g2(message: &[u8], dst: &[u8]) -> [u8; 192] {
    let affine = hash_to_g2_affine(message, dst);
    let mut out = [0u8; 192];
    // SAFETY: writes exactly 192 bytes into `out`.
    unsafe { blst_p2_affine_serialize(out.as_mut_ptr(), &affine) };
    out
}

/// `message` hashed to G2 with the given tag, as an affine point.
pub(crate) fn hash_to_g2_affine(message: &[u8], dst: &[u8]) -> blst_p2_affine {
    let mut point = blst_p2::default();
    let mut affine = blst_p2_affine::default();
    // SAFETY: pointers and lengths come from live slices; outputs are owned here.
    unsafe {
        blst::blst_hash_to_g2(
            &mut point,
            message.as_ptr(),
            message.len(),
            dst.as_ptr(),
            dst.len(),
            std::ptr::null(),
            0,
        );
        blst_p2_to_affine(&mut affine, &point);
    }
    affine
}

/// Decodes `0x`-prefixed or bare hexadecimal.
pub(crate) fn decode_hex(text: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    hex::decode(digits).map_err(|_| Error::InvalidHex { what })
}

macro_rules! serde_as_hex {
    ($type:ty, $expecting:literal) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                <$type>::from_hex(&text)
                    .map_err(|e| serde::de::Error::custom(format_args!("{}: {e}", $expecting)))
            }
        }
    };
}

serde_as_hex!(PublicKey, "expected a 0x-hex BLS public key");
serde_as_hex!(Signature, "expected a 0x-hex BLS signature");

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn sign_then_verify_and_reject_other_message() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let sk = SecretKey::random(&mut rng);
        let pk = sk.public_key();
        let sig = sk.sign(b"duty");
        assert!(sig.verify(&pk, b"duty"));
        assert!(!sig.verify(&pk, b"other duty"));
        assert!(!sig.verify(&SecretKey::random(&mut rng).public_key(), b"duty"));
    }

    #[test]
    fn encodings_round_trip() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let sk = SecretKey::random(&mut rng);
        let pk = sk.public_key();
        let sig = sk.sign(b"m");
        assert_eq!(PublicKey::from_bytes(&pk.to_bytes()).ok(), Some(pk));
        assert_eq!(Signature::from_bytes(&sig.to_bytes()).ok(), Some(sig));
        assert_eq!(
            SecretKey::from_bytes(sk.to_bytes().as_ref())
                .ok()
                .map(|k| k.public_key()),
            Some(pk)
        );
        let json = serde_json::to_string(&pk).expect("serialize");
        assert_eq!(json, format!("\"{}\"", pk.to_hex()));
        let back: PublicKey = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, pk);
    }

    #[test]
    fn bad_lengths_and_hex_are_typed_errors() {
        assert_eq!(
            PublicKey::from_bytes(&[0u8; 47]),
            Err(Error::InvalidLength {
                what: "public key",
                expected: 48,
                got: 47
            })
        );
        assert!(matches!(
            Signature::from_hex("0xzz"),
            Err(Error::InvalidHex { .. })
        ));
        assert_eq!(
            SecretKey::from_bytes(&[0u8; 32]).map(|_| ()),
            Err(Error::InvalidSecretKey)
        );
        assert!(serde_json::from_str::<PublicKey>("\"0x00\"").is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let sk = SecretKey::random(&mut rng);
        let shown = format!("{sk:?}");
        assert_eq!(shown, "SecretKey(<redacted>)");
        assert!(!shown.contains(&hex::encode(sk.to_bytes().as_ref())));
    }

    #[test]
    fn infinity_signature_is_recognised() {
        let inf = Signature::infinity();
        assert!(inf.is_infinity());
        assert_eq!(inf.to_bytes()[0], 0xc0);
        assert_eq!(Signature::from_bytes(&inf.to_bytes()).ok(), Some(inf));
    }
}
