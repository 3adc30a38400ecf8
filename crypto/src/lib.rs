//! Threshold BLS signatures that Ethereum accepts, and the key files around them.
//!
//! - [`bls`]: Ethereum's BLS (keys in G1, signatures in G2, the POP
//!   ciphersuite) over blst. [`PublicKey`] and [`Signature`] are validated
//!   when decoded, so holding one means it is on the curve and in the subgroup.
//! - [`threshold`]: a key split into Shamir shares with indices from 1;
//!   [`SecretShare::sign`] makes a [`PartialSignature`], [`PublicShare::verify`]
//!   checks one against its sender, and [`threshold::combine`] turns any `t`
//!   of them into the group signature with one multi-scalar multiplication.
//! - [`batch`]: many signatures checked at once with random weights, and
//!   [`batch::find_invalid`] to name exactly which ones are bad.
//! - [`keystore`]: EIP-2335 keystores, the format validator clients import.
//! - [`derivation`]: EIP-2333/EIP-2334 key derivation from a seed.
//!
//! Secrets ([`SecretKey`], [`SecretShare`]) are zeroized on drop and their
//! `Debug` output shows nothing secret. Randomness is always passed in, so
//! a seeded RNG reproduces a run.

pub mod batch;
pub mod bls;
pub mod derivation;
pub mod dkg;
mod error;
pub mod keystore;
mod msm;
mod scalar;
pub mod threshold;

pub use batch::SignatureSet;
pub use bls::{PublicKey, SecretKey, Signature, DST};
pub use error::{Error, KeystoreError};
pub use keystore::{KdfSetting, Keystore};
pub use threshold::{KeySplit, PartialSignature, PublicShare, SecretShare, ShareIndex};
