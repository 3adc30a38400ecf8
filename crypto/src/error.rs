//! Errors of the crypto crate: one enum for keys, signatures and threshold
//! arithmetic, one for EIP-2335 keystores.

use blst::BLST_ERROR;

/// What went wrong with a key, a signature or a threshold operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input has the wrong number of bytes.
    #[error("{what} must be {expected} bytes, got {got}")]
    InvalidLength {
        /// The kind of value being decoded.
        what: &'static str,
        /// Bytes the encoding requires.
        expected: usize,
        /// Bytes supplied.
        got: usize,
    },
    /// The flag bits or coordinates are not a valid compressed point encoding.
    #[error("{what} is not a valid compressed point encoding")]
    BadEncoding {
        /// The kind of value being decoded.
        what: &'static str,
    },
    /// The encoded coordinates do not lie on the curve.
    #[error("{what} is not a point on the BLS12-381 curve")]
    NotOnCurve {
        /// The kind of value being decoded.
        what: &'static str,
    },
    /// The point lies on the curve but outside the prime-order subgroup.
    #[error("{what} is not in the prime-order subgroup")]
    NotInSubgroup {
        /// The kind of value being decoded.
        what: &'static str,
    },
    /// The point at infinity is a valid encoding but not a usable public key.
    #[error("the public key is the point at infinity, which Ethereum refuses")]
    InfinityPublicKey,
    /// A secret key that is zero or not below the group order.
    #[error("secret key must be a non-zero scalar below the BLS12-381 group order")]
    InvalidSecretKey,
    /// Aggregation or verification was asked for over nothing.
    #[error("cannot {operation} an empty list")]
    Empty {
        /// The operation that got no input.
        operation: &'static str,
    },
    /// Parallel lists whose lengths differ.
    #[error("{left} has {left_len} entries but {right} has {right_len}")]
    LengthMismatch {
        /// Name of the first list.
        left: &'static str,
        /// Its length.
        left_len: usize,
        /// Name of the second list.
        right: &'static str,
        /// Its length.
        right_len: usize,
    },
    /// A threshold that cannot work with this number of shares.
    #[error("threshold {threshold} is invalid for {shares} shares: need 1 <= threshold <= shares")]
    InvalidThreshold {
        /// Requested threshold.
        threshold: usize,
        /// Requested number of shares.
        shares: usize,
    },
    /// More shares than a split may make.
    #[error("cannot split into {shares} shares: at most {max}")]
    TooManyShares {
        /// Requested number of shares.
        shares: usize,
        /// The limit.
        max: usize,
    },
    /// Share indices start at 1; 0 would be the secret itself.
    #[error("share index must be at least 1")]
    ZeroShareIndex,
    /// The same share index appears twice in one interpolation.
    #[error("share index {0} appears more than once")]
    DuplicateShareIndex(u64),
    /// Fewer shares or partial signatures than the threshold.
    #[error("need {needed} shares to reach the threshold, got {got}")]
    NotEnoughShares {
        /// The threshold.
        needed: usize,
        /// Shares supplied.
        got: usize,
    },
    /// EIP-2333 requires at least 32 bytes of seed.
    #[error("key-derivation seed must be at least 32 bytes, got {0}")]
    SeedTooShort(usize),
    /// An EIP-2334 path that cannot be parsed.
    #[error("invalid derivation path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Text that is not `0x`-prefixed (or bare) hexadecimal.
    #[error("{what} is not valid hexadecimal")]
    InvalidHex {
        /// The kind of value being decoded.
        what: &'static str,
    },
}

impl Error {
    /// Maps a blst decoding failure to the error a caller can act on.
    pub(crate) fn from_blst(err: BLST_ERROR, what: &'static str) -> Self {
        match err {
            BLST_ERROR::BLST_POINT_NOT_ON_CURVE => Error::NotOnCurve { what },
            BLST_ERROR::BLST_POINT_NOT_IN_GROUP => Error::NotInSubgroup { what },
            BLST_ERROR::BLST_PK_IS_INFINITY => Error::InfinityPublicKey,
            _ => Error::BadEncoding { what },
        }
    }
}

/// Why an EIP-2335 keystore could not be read, decrypted or written.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// The file is not JSON of the keystore's shape.
    #[error("keystore is not valid EIP-2335 JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Only version 4 keystores exist.
    #[error("keystore version {0} is not supported (EIP-2335 defines version 4)")]
    UnsupportedVersion(u64),
    /// A KDF, checksum or cipher function this implementation does not know.
    #[error("keystore {module} function {function:?} is not supported (expected {expected})")]
    UnsupportedFunction {
        /// `kdf`, `checksum` or `cipher`.
        module: &'static str,
        /// The function named in the file.
        function: String,
        /// What EIP-2335 allows there.
        expected: &'static str,
    },
    /// A parameter that is missing, malformed or out of the accepted range.
    #[error("keystore {module} parameter {param}: {reason}")]
    InvalidParameter {
        /// `kdf`, `checksum` or `cipher`.
        module: &'static str,
        /// The parameter's name.
        param: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The checksum does not match: the password is wrong or the file is corrupt.
    #[error("wrong password, or the keystore's ciphertext or checksum is corrupt")]
    WrongPassword,
    /// Decryption worked but did not give a valid BLS secret key.
    #[error("the decrypted secret is not a valid BLS secret key: {0}")]
    InvalidSecret(Error),
    /// The decrypted key does not belong to the keystore's `pubkey` field.
    #[error(
        "the decrypted secret key belongs to {actual}, not to the keystore's pubkey {expected}"
    )]
    PublicKeyMismatch {
        /// The `pubkey` field of the file.
        expected: String,
        /// The public key of the decrypted secret.
        actual: String,
    },
    /// The KDF library refused its parameters.
    #[error("key derivation failed: {0}")]
    Kdf(String),
}
