//! EIP-2335 keystores: a BLS secret key encrypted with a password, in the
//! JSON format every validator client imports.
//!
//! decryption key = KDF(normalised password, salt) (scrypt or PBKDF2, 32 bytes)
//! checksum       = SHA-256(key[16..32] ‖ ciphertext)
//! ciphertext     = AES-128-CTR(key[0..16], iv, secret)
//!
//! A file is fully validated when it is parsed ([`Keystore::from_json`]):
//! unknown functions, malformed hex, out-of-range KDF parameters and an
//! invalid `pubkey` are refused there, before any expensive work.

use std::fmt;

use aes::cipher::{KeyIvInit, StreamCipher};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use crate::bls::{PublicKey, SecretKey, SECRET_KEY_LEN};
use crate::error::KeystoreError;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// The only keystore version EIP-2335 defines.
const VERSION: u64 = 4;
/// Length of the derived key: 16 bytes of AES key, 16 of checksum key.
const DERIVED_KEY_LEN: usize = 32;
const SALT_LEN: usize = 32;
const IV_LEN: usize = 16;
/// Refuse files whose scrypt would need more memory than this (128·r·n
/// bytes; the standard parameters need 256 MiB)…
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
/// …or more work than this (128·r·n·p, the p passes running one after the
/// other): eight times the standard cost, so a hostile file cannot stall
/// an import for minutes.
const MAX_SCRYPT_WORK: u64 = 1 << 31;
/// Refuse files whose PBKDF2 would take minutes.
const MAX_PBKDF2_ROUNDS: u32 = 1 << 24;
const MAX_SALT_LEN: usize = 1024;

/// How hard the key-derivation function is made to work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KdfSetting {
    /// scrypt with EIP-2335's parameters (n = 2^18, r = 8, p = 1): the default.
    #[default]
    StandardScrypt,
    /// PBKDF2-HMAC-SHA256 with EIP-2335's 2^18 rounds.
    StandardPbkdf2,
    /// scrypt with n = 16: trivially brute-forced. Only for tests,
    /// simulations and devnets, and logged as a warning whenever used.
    InsecureLowCost,
}

impl KdfSetting {
    fn kdf<R: RngCore + CryptoRng>(self, rng: &mut R) -> Kdf {
        let mut salt = vec![0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        match self {
            KdfSetting::StandardScrypt => Kdf::Scrypt {
                n: 1 << 18,
                r: 8,
                p: 1,
                salt,
            },
            KdfSetting::StandardPbkdf2 => Kdf::Pbkdf2 { c: 1 << 18, salt },
            KdfSetting::InsecureLowCost => {
                tracing::warn!(
                    "encrypting a keystore with the insecure low-cost KDF setting: \
                     its password can be brute-forced; use it only for tests and devnets"
                );
                Kdf::Scrypt {
                    n: 16,
                    r: 8,
                    p: 1,
                    salt,
                }
            }
        }
    }
}

/// The key-derivation function of a keystore and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kdf {
    /// scrypt with cost `n` (a power of two), block size `r`, parallelism `p`.
    Scrypt {
        /// CPU/memory cost.
        n: u32,
        /// Block size.
        r: u32,
        /// Parallelism.
        p: u32,
        /// Salt.
        salt: Vec<u8>,
    },
    /// PBKDF2 with HMAC-SHA256 and `c` rounds.
    Pbkdf2 {
        /// Iteration count.
        c: u32,
        /// Salt.
        salt: Vec<u8>,
    },
}

impl Kdf {
    fn derive_key(
        &self,
        password: &[u8],
    ) -> Result<Zeroizing<[u8; DERIVED_KEY_LEN]>, KeystoreError> {
        let mut key = Zeroizing::new([0u8; DERIVED_KEY_LEN]);
        match self {
            Kdf::Scrypt { n, r, p, salt } => {
                let params = scrypt::Params::new(n.trailing_zeros() as u8, *r, *p, DERIVED_KEY_LEN)
                    .map_err(|e| KeystoreError::Kdf(e.to_string()))?;
                scrypt::scrypt(password, salt, &params, key.as_mut())
                    .map_err(|e| KeystoreError::Kdf(e.to_string()))?;
            }
            Kdf::Pbkdf2 { c, salt } => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, *c, key.as_mut());
            }
        }
        Ok(key)
    }

    fn to_module(&self) -> Module {
        let mut params = Map::new();
        params.insert("dklen".into(), DERIVED_KEY_LEN.into());
        let function = match self {
            Kdf::Scrypt { n, r, p, salt } => {
                params.insert("n".into(), (*n).into());
                params.insert("r".into(), (*r).into());
                params.insert("p".into(), (*p).into());
                params.insert("salt".into(), hex::encode(salt).into());
                "scrypt"
            }
            Kdf::Pbkdf2 { c, salt } => {
                params.insert("c".into(), (*c).into());
                params.insert("prf".into(), "hmac-sha256".into());
                params.insert("salt".into(), hex::encode(salt).into());
                "pbkdf2"
            }
        };
        Module {
            function: function.into(),
            params,
            message: String::new(),
        }
    }

    fn from_module(module: &Module) -> Result<Kdf, KeystoreError> {
        let params = Params::new("kdf", &module.params);
        let dklen = params.integer("dklen", 1, u32::MAX)?;
        if dklen as usize != DERIVED_KEY_LEN {
            return Err(params.invalid("dklen", format!("must be 32, got {dklen}")));
        }
        let salt = params.hex("salt")?;
        if salt.len() > MAX_SALT_LEN {
            return Err(params.invalid("salt", format!("longer than {MAX_SALT_LEN} bytes")));
        }
        match module.function.as_str() {
            "scrypt" => {
                let n = params.integer("n", 2, u32::MAX)?;
                if !n.is_power_of_two() {
                    return Err(params.invalid("n", format!("must be a power of two, got {n}")));
                }
                let r = params.integer("r", 1, 64)?;
                let p = params.integer("p", 1, 16)?;
                let memory = 128 * u64::from(r) * u64::from(n);
                if memory > MAX_SCRYPT_MEMORY {
                    return Err(params.invalid(
                        "n",
                        format!("n = {n} with r = {r} needs more than 1 GiB of memory"),
                    ));
                }
                if memory * u64::from(p) > MAX_SCRYPT_WORK {
                    return Err(params.invalid(
                        "p",
                        format!("n = {n}, r = {r}, p = {p} is over 8 times the standard cost"),
                    ));
                }
                // The library's own rules (such as log2(n) < 16·r), checked now
                // rather than at decryption.
                scrypt::Params::new(n.trailing_zeros() as u8, r, p, DERIVED_KEY_LEN)
                    .map_err(|e| params.invalid("n", e.to_string()))?;
                Ok(Kdf::Scrypt { n, r, p, salt })
            }
            "pbkdf2" => {
                let c = params.integer("c", 1, MAX_PBKDF2_ROUNDS)?;
                let prf = params.string("prf")?;
                if prf != "hmac-sha256" {
                    return Err(params.invalid("prf", format!("must be hmac-sha256, got {prf:?}")));
                }
                Ok(Kdf::Pbkdf2 { c, salt })
            }
            other => Err(KeystoreError::UnsupportedFunction {
                module: "kdf",
                function: other.into(),
                expected: "scrypt or pbkdf2",
            }),
        }
    }
}

/// An EIP-2335 keystore, validated.
#[derive(Clone, PartialEq, Eq)]
pub struct Keystore {
    kdf: Kdf,
    checksum: [u8; 32],
    iv: [u8; IV_LEN],
    ciphertext: Vec<u8>,
    public_key: Option<PublicKey>,
    path: String,
    uuid: Uuid,
    description: String,
}

impl Keystore {
    /// Encrypts `secret` under `password`. `path` is the EIP-2334 path the
    /// key came from, or empty for keys (such as shares) that have none.
    pub fn encrypt<R: RngCore + CryptoRng>(
        secret: &SecretKey,
        password: &str,
        path: &str,
        setting: KdfSetting,
        rng: &mut R,
    ) -> Result<Keystore, KeystoreError> {
        let kdf = setting.kdf(rng);
        let mut iv = [0u8; IV_LEN];
        rng.fill_bytes(&mut iv);
        let mut uuid_bytes = [0u8; 16];
        rng.fill_bytes(&mut uuid_bytes);

        let key = kdf.derive_key(&normalize_password(password))?;
        let mut ciphertext = secret.to_bytes().to_vec();
        aes_128_ctr(&key, &iv, &mut ciphertext);
        Ok(Keystore {
            checksum: checksum(&key, &ciphertext),
            kdf,
            iv,
            ciphertext,
            public_key: Some(secret.public_key()),
            path: path.into(),
            uuid: uuid::Builder::from_random_bytes(uuid_bytes).into_uuid(),
            description: String::new(),
        })
    }

    /// Decrypts the secret key. A wrong password and a corrupt ciphertext
    /// both show as [`KeystoreError::WrongPassword`]; a key that does not
    /// match the `pubkey` field is refused.
    pub fn decrypt(&self, password: &str) -> Result<SecretKey, KeystoreError> {
        let key = self.kdf.derive_key(&normalize_password(password))?;
        if !constant_time_eq(&checksum(&key, &self.ciphertext), &self.checksum) {
            return Err(KeystoreError::WrongPassword);
        }
        let mut plaintext = Zeroizing::new(self.ciphertext.clone());
        aes_128_ctr(&key, &self.iv, &mut plaintext);
        let secret = SecretKey::from_bytes(&plaintext).map_err(KeystoreError::InvalidSecret)?;
        if let Some(expected) = &self.public_key {
            let actual = secret.public_key();
            if actual != *expected {
                return Err(KeystoreError::PublicKeyMismatch {
                    expected: expected.to_hex(),
                    actual: actual.to_hex(),
                });
            }
        }
        Ok(secret)
    }

    /// Parses and validates keystore JSON.
    pub fn from_json(text: &str) -> Result<Keystore, KeystoreError> {
        let raw: KeystoreJson = serde_json::from_str(text)?;
        Keystore::try_from(raw)
    }

    /// The keystore as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // A map of strings and integers always serializes.
        serde_json::to_string_pretty(&KeystoreJson::from(self)).unwrap_or_default()
    }

    /// The public key the keystore declares (`pubkey`), if any.
    pub fn public_key(&self) -> Option<&PublicKey> {
        self.public_key.as_ref()
    }

    /// The EIP-2334 derivation path (empty when the key has none).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The keystore's UUID.
    pub fn uuid(&self) -> Uuid {
        self.uuid
    }

    /// The key-derivation function and its parameters.
    pub fn kdf(&self) -> &Kdf {
        &self.kdf
    }

    /// The free-text description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Sets the free-text description.
    pub fn set_description(&mut self, description: impl Into<String>) {
        self.description = description.into();
    }
}

impl fmt::Debug for Keystore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keystore")
            .field("public_key", &self.public_key)
            .field("path", &self.path)
            .field("uuid", &self.uuid)
            .finish_non_exhaustive()
    }
}

impl Serialize for Keystore {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        KeystoreJson::from(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Keystore {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = KeystoreJson::deserialize(deserializer)?;
        Keystore::try_from(raw).map_err(serde::de::Error::custom)
    }
}

/// EIP-2335 password processing: NFKD, then the C0, C1 and DEL control
/// codes removed.
pub fn normalize_password(password: &str) -> Zeroizing<Vec<u8>> {
    let kept = || {
        password
            .nfkd()
            .filter(|c| !matches!(*c as u32, 0x00..=0x1f | 0x7f..=0x9f))
    };
    // Sized first so that no reallocation leaves a copy of the password behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(kept().map(char::len_utf8).sum()));
    let mut buffer = [0u8; 4];
    for c in kept() {
        bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
    }
    buffer.zeroize();
    bytes
}

fn checksum(key: &[u8; DERIVED_KEY_LEN], ciphertext: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(&key[16..]);
    hasher.update(ciphertext);
    hasher.finalize().into()
}

fn aes_128_ctr(key: &[u8; DERIVED_KEY_LEN], iv: &[u8; IV_LEN], data: &mut [u8]) {
    let mut cipher = Aes128Ctr::new(key[..16].into(), iv.into());
    cipher.apply_keystream(data);
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The file format, field for field.
#[derive(Serialize, Deserialize)]
struct KeystoreJson {
    crypto: CryptoJson,
    #[serde(default)]
    description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pubkey: Option<String>,
    path: String,
    uuid: Uuid,
    version: u64,
}

#[derive(Serialize, Deserialize)]
struct CryptoJson {
    kdf: Module,
    checksum: Module,
    cipher: Module,
}

#[derive(Serialize, Deserialize)]
struct Module {
    function: String,
    #[serde(default)]
    params: Map<String, Value>,
    message: String,
}

impl TryFrom<KeystoreJson> for Keystore {
    type Error = KeystoreError;

    fn try_from(raw: KeystoreJson) -> Result<Keystore, KeystoreError> {
        if raw.version != VERSION {
            return Err(KeystoreError::UnsupportedVersion(raw.version));
        }
        let kdf = Kdf::from_module(&raw.crypto.kdf)?;

        let checksum_module = &raw.crypto.checksum;
        if checksum_module.function != "sha256" {
            return Err(KeystoreError::UnsupportedFunction {
                module: "checksum",
                function: checksum_module.function.clone(),
                expected: "sha256",
            });
        }
        let checksum = fixed_hex::<32>("checksum", "message", &checksum_module.message)?;

        let cipher = &raw.crypto.cipher;
        if cipher.function != "aes-128-ctr" {
            return Err(KeystoreError::UnsupportedFunction {
                module: "cipher",
                function: cipher.function.clone(),
                expected: "aes-128-ctr",
            });
        }
        let iv = fixed_hex::<IV_LEN>(
            "cipher",
            "iv",
            Params::new("cipher", &cipher.params).string("iv")?,
        )?;
        let ciphertext =
            fixed_hex::<SECRET_KEY_LEN>("cipher", "message", &cipher.message)?.to_vec();

        let public_key =
            match raw.pubkey.as_deref() {
                None | Some("") => None,
                Some(text) => Some(PublicKey::from_hex(text).map_err(|e| {
                    KeystoreError::InvalidParameter {
                        module: "keystore",
                        param: "pubkey",
                        reason: e.to_string(),
                    }
                })?),
            };

        Ok(Keystore {
            kdf,
            checksum,
            iv,
            ciphertext,
            public_key,
            path: raw.path,
            uuid: raw.uuid,
            description: raw.description,
        })
    }
}

impl From<&Keystore> for KeystoreJson {
    fn from(keystore: &Keystore) -> KeystoreJson {
        KeystoreJson {
            crypto: CryptoJson {
                kdf: keystore.kdf.to_module(),
                checksum: Module {
                    function: "sha256".into(),
                    params: Map::new(),
                    message: hex::encode(keystore.checksum),
                },
                cipher: Module {
                    function: "aes-128-ctr".into(),
                    params: Map::from_iter([("iv".to_string(), hex::encode(keystore.iv).into())]),
                    message: hex::encode(&keystore.ciphertext),
                },
            },
            description: keystore.description.clone(),
            pubkey: keystore.public_key.map(|key| hex::encode(key.as_bytes())),
            path: keystore.path.clone(),
            uuid: keystore.uuid,
            version: VERSION,
        }
    }
}

/// Typed access to a module's `params`, with errors that name the parameter.
struct Params<'a> {
    module: &'static str,
    map: &'a Map<String, Value>,
}

impl<'a> Params<'a> {
    fn new(module: &'static str, map: &'a Map<String, Value>) -> Params<'a> {
        Params { module, map }
    }

    fn invalid(&self, param: &'static str, reason: String) -> KeystoreError {
        KeystoreError::InvalidParameter {
            module: self.module,
            param,
            reason,
        }
    }

    fn integer(&self, param: &'static str, min: u32, max: u32) -> Result<u32, KeystoreError> {
        let value = self
            .map
            .get(param)
            .ok_or_else(|| self.invalid(param, "missing".into()))?;
        value
            .as_u64()
            .filter(|v| (u64::from(min)..=u64::from(max)).contains(v))
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| {
                self.invalid(
                    param,
                    format!("must be an integer in {min}..={max}, got {value}"),
                )
            })
    }

    fn string(&self, param: &'static str) -> Result<&'a str, KeystoreError> {
        match self.map.get(param) {
            Some(Value::String(text)) => Ok(text),
            Some(other) => Err(self.invalid(param, format!("must be a string, got {other}"))),
            None => Err(self.invalid(param, "missing".into())),
        }
    }

    fn hex(&self, param: &'static str) -> Result<Vec<u8>, KeystoreError> {
        let text = self.string(param)?;
        hex::decode(text).map_err(|e| self.invalid(param, format!("not hex: {e}")))
    }
}

fn fixed_hex<const N: usize>(
    module: &'static str,
    param: &'static str,
    text: &str,
) -> Result<[u8; N], KeystoreError> {
    let invalid = |reason: String| KeystoreError::InvalidParameter {
        module,
        param,
        reason,
    };
    let bytes = hex::decode(text).map_err(|e| invalid(format!("not hex: {e}")))?;
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| invalid(format!("must be {N} bytes, got {}", bytes.len())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn low_cost_keystore(password: &str) -> (SecretKey, Keystore) {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let secret = SecretKey::random(&mut rng);
        let keystore = Keystore::encrypt(
            &secret,
            password,
            "m/12381/3600/0/0/0",
            KdfSetting::InsecureLowCost,
            &mut rng,
        )
        .expect("encrypt");
        (secret, keystore)
    }

    #[test]
    fn encrypt_then_decrypt_through_json() {
        let (secret, keystore) = low_cost_keystore("correct horse");
        let reparsed = Keystore::from_json(&keystore.to_json()).expect("parse own output");
        assert_eq!(reparsed, keystore);
        let decrypted = reparsed.decrypt("correct horse").expect("right password");
        assert_eq!(decrypted.to_bytes(), secret.to_bytes());
        assert_eq!(reparsed.public_key(), Some(&secret.public_key()));
        assert_eq!(reparsed.uuid().get_version_num(), 4);
    }

    #[test]
    fn wrong_password_is_refused() {
        let (_, keystore) = low_cost_keystore("correct horse");
        assert!(matches!(
            keystore.decrypt("correct horsE"),
            Err(KeystoreError::WrongPassword)
        ));
    }

    #[test]
    fn control_characters_do_not_change_the_password() {
        let (secret, keystore) = low_cost_keystore("correct horse");
        let decrypted = keystore
            .decrypt("correct\u{7f} horse\u{0}\u{85}")
            .expect("control codes are stripped");
        assert_eq!(decrypted.to_bytes(), secret.to_bytes());
    }

    #[test]
    fn corrupt_files_are_refused_with_the_reason() {
        let (_, keystore) = low_cost_keystore("pw");
        let json: Value = serde_json::from_str(&keystore.to_json()).expect("json");
        let edited = |path: &[&str], value: Value| {
            let mut copy = json.clone();
            let mut node = &mut copy;
            for key in &path[..path.len() - 1] {
                node = &mut node[*key];
            }
            node[path[path.len() - 1]] = value;
            Keystore::from_json(&copy.to_string())
        };
        let err = edited(&["crypto", "kdf", "function"], "argon2".into()).unwrap_err();
        assert!(err.to_string().contains("argon2"), "{err}");
        let err = edited(&["crypto", "kdf", "params", "n"], 1000.into()).unwrap_err();
        assert!(err.to_string().contains("power of two"), "{err}");
        let mut slow = json.clone();
        slow["crypto"]["kdf"]["params"]["n"] = (1u64 << 18).into();
        slow["crypto"]["kdf"]["params"]["p"] = 16.into();
        let err = Keystore::from_json(&slow.to_string()).unwrap_err();
        assert!(err.to_string().contains("standard cost"), "{err}");
        let err = edited(&["crypto", "kdf", "params", "n"], (1u64 << 24).into()).unwrap_err();
        assert!(err.to_string().contains("1 GiB"), "{err}");
        let err = edited(&["crypto", "kdf", "params", "dklen"], 16.into()).unwrap_err();
        assert!(err.to_string().contains("dklen"), "{err}");
        let err = edited(&["crypto", "cipher", "params", "iv"], "abcd".into()).unwrap_err();
        assert!(err.to_string().contains("16 bytes"), "{err}");
        let err = edited(&["crypto", "checksum", "message"], "zz".into()).unwrap_err();
        assert!(err.to_string().contains("not hex"), "{err}");
        let err = edited(&["version"], 3.into()).unwrap_err();
        assert!(matches!(err, KeystoreError::UnsupportedVersion(3)));
        let err = edited(&["pubkey"], "abcd".into()).unwrap_err();
        assert!(err.to_string().contains("pubkey"), "{err}");
        assert!(matches!(
            Keystore::from_json("{\"crypto\": 1}"),
            Err(KeystoreError::Json(_))
        ));

        // A flipped ciphertext bit fails the checksum, not silently.
        let mut message =
            hex::decode(json["crypto"]["cipher"]["message"].as_str().expect("hex")).expect("hex");
        message[0] ^= 1;
        let tampered = edited(
            &["crypto", "cipher", "message"],
            hex::encode(message).into(),
        )
        .expect("still well-formed");
        assert!(matches!(
            tampered.decrypt("pw"),
            Err(KeystoreError::WrongPassword)
        ));
    }

    #[test]
    fn a_pubkey_that_does_not_match_is_refused() {
        let (_, keystore) = low_cost_keystore("pw");
        let mut json: Value = serde_json::from_str(&keystore.to_json()).expect("json");
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let other = SecretKey::random(&mut rng).public_key();
        json["pubkey"] = hex::encode(other.as_bytes()).into();
        let keystore = Keystore::from_json(&json.to_string()).expect("well-formed");
        assert!(matches!(
            keystore.decrypt("pw"),
            Err(KeystoreError::PublicKeyMismatch { .. })
        ));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let (_, keystore) = low_cost_keystore("pw");
        let shown = format!("{keystore:?}");
        assert!(!shown.contains(&hex::encode(&keystore.ciphertext)));
        assert!(!shown.contains(&hex::encode(keystore.checksum)));
    }
}
