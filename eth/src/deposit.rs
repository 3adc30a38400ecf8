//! Deposits as the staking launchpad takes them: withdrawal credentials,
//! deposit messages and their roots, and the `deposit-data-*.json` format.
//!
//! A distributed validator's deposit is signed by the cluster (partial
//! signatures combined), so building the message and attaching the
//! signature are separate steps: [`DepositMessage::signing_root`] gives the
//! bytes to sign, [`LaunchpadDeposit::new`] takes the combined signature and
//! refuses one that does not verify.

use phalanx_crypto::{PublicKey, Signature};
use serde::{Deserialize, Serialize};
use tree_hash::TreeHash;

use crate::primitives::{ExecutionAddress, Gwei, PublicKeyBytes, Root, Version};
use crate::signing::{compute_signing_root, deposit_domain};
use crate::validator::{DepositData, DepositMessage};

/// 1 ETH, the smallest deposit the contract accepts.
pub const MIN_DEPOSIT_AMOUNT: Gwei = Gwei(1_000_000_000);
/// 32 ETH, the activation balance.
pub const ACTIVATION_AMOUNT: Gwei = Gwei(32_000_000_000);
/// 2048 ETH, the largest effective balance of a compounding (0x02) validator.
pub const MAX_COMPOUNDING_AMOUNT: Gwei = Gwei(2_048_000_000_000);
/// The deposit-cli version written in deposit files. The launchpad checks
/// it against a minimum; it names the file format, not the tool that wrote it.
pub const DEPOSIT_CLI_VERSION: &str = "2.7.0";

/// Where a validator's withdrawals go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithdrawalCredentials {
    /// 0x01: an execution address; balance above 32 ETH is swept.
    Execution(ExecutionAddress),
    /// 0x02 (EIP-7251): an execution address; balance compounds up to 2048 ETH.
    Compounding(ExecutionAddress),
}

impl WithdrawalCredentials {
    /// The 32-byte credentials: prefix, 11 zero bytes, the address.
    pub fn to_root(self) -> Root {
        let (prefix, address) = match self {
            WithdrawalCredentials::Execution(address) => (0x01, address),
            WithdrawalCredentials::Compounding(address) => (0x02, address),
        };
        let mut bytes = [0u8; 32];
        bytes[0] = prefix;
        bytes[12..].copy_from_slice(address.as_slice());
        Root::from(bytes)
    }

    /// Reads 0x01 or 0x02 credentials.
    pub fn from_root(root: Root) -> Result<Self, DepositError> {
        if root[1..12].iter().any(|&b| b != 0) {
            return Err(DepositError::Credentials(
                "bytes 1 to 11 of execution credentials must be zero".into(),
            ));
        }
        let address = ExecutionAddress::from_slice(&root[12..]);
        match root[0] {
            0x01 => Ok(WithdrawalCredentials::Execution(address)),
            0x02 => Ok(WithdrawalCredentials::Compounding(address)),
            other => Err(DepositError::Credentials(format!(
                "prefix 0x{other:02x} is not 0x01 (execution) or 0x02 (compounding)"
            ))),
        }
    }

    /// The largest amount worth depositing with these credentials.
    pub fn max_amount(self) -> Gwei {
        match self {
            WithdrawalCredentials::Execution(_) => ACTIVATION_AMOUNT,
            WithdrawalCredentials::Compounding(_) => MAX_COMPOUNDING_AMOUNT,
        }
    }
}

/// Why a deposit cannot be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepositError {
    /// Withdrawal credentials that are not 0x01 or 0x02.
    #[error("invalid withdrawal credentials: {0}")]
    Credentials(String),
    /// An amount the contract would refuse, or more than the credentials allow.
    #[error("deposit amount {amount} gwei is outside {min}..={max} gwei for these credentials")]
    Amount {
        /// The amount asked for.
        amount: u64,
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
    /// The signature does not verify against the validator key.
    #[error("the deposit signature does not verify for validator {0}")]
    BadSignature(String),
    /// The public key is not a valid BLS key.
    #[error("invalid validator public key: {0}")]
    PublicKey(phalanx_crypto::Error),
    /// A field of a deposit file is malformed or inconsistent.
    #[error("deposit file entry: {0}")]
    File(String),
}

impl DepositMessage {
    /// A deposit message, checking the amount against the credentials.
    pub fn new(
        pubkey: &PublicKey,
        credentials: WithdrawalCredentials,
        amount: Gwei,
    ) -> Result<DepositMessage, DepositError> {
        let max = credentials.max_amount();
        if amount < MIN_DEPOSIT_AMOUNT || amount > max {
            return Err(DepositError::Amount {
                amount: amount.0,
                min: MIN_DEPOSIT_AMOUNT.0,
                max: max.0,
            });
        }
        Ok(DepositMessage {
            pubkey: PublicKeyBytes::from(pubkey.to_bytes()),
            withdrawal_credentials: credentials.to_root(),
            amount,
        })
    }

    /// The bytes the validator key signs: in the deposit domain of the
    /// network's genesis fork version.
    pub fn signing_root(&self, genesis_fork_version: Version) -> Root {
        compute_signing_root(self, deposit_domain(genesis_fork_version))
    }
}

/// One entry of a `deposit-data-*.json` file, as the launchpad reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchpadDeposit {
    /// The validator's public key, hex without `0x`.
    pub pubkey: String,
    /// Withdrawal credentials, hex without `0x`.
    pub withdrawal_credentials: String,
    /// Gwei, as a JSON number.
    pub amount: u64,
    /// The deposit signature, hex without `0x`.
    pub signature: String,
    /// hash_tree_root of the deposit message.
    pub deposit_message_root: String,
    /// hash_tree_root of the deposit data (what the contract checks).
    pub deposit_data_root: String,
    /// The network's genesis fork version, hex without `0x`.
    pub fork_version: String,
    /// The network's name (`mainnet`, `hoodi`, …).
    pub network_name: String,
    /// The deposit-cli format version.
    pub deposit_cli_version: String,
}

impl LaunchpadDeposit {
    /// Attaches `signature` to `message` after checking it verifies.
    pub fn new(
        message: &DepositMessage,
        signature: &Signature,
        genesis_fork_version: Version,
        network_name: &str,
    ) -> Result<LaunchpadDeposit, DepositError> {
        let pubkey =
            PublicKey::from_bytes(message.pubkey.as_slice()).map_err(DepositError::PublicKey)?;
        if !signature.verify(
            &pubkey,
            message.signing_root(genesis_fork_version).as_slice(),
        ) {
            return Err(DepositError::BadSignature(pubkey.to_hex()));
        }
        Ok(LaunchpadDeposit::assemble(
            message,
            signature,
            genesis_fork_version,
            network_name,
        ))
    }

    /// Attaches a signature the caller has already verified (for example
    /// in a batch with many others).
    pub fn assemble(
        message: &DepositMessage,
        signature: &Signature,
        genesis_fork_version: Version,
        network_name: &str,
    ) -> LaunchpadDeposit {
        let data = DepositData {
            pubkey: message.pubkey,
            withdrawal_credentials: message.withdrawal_credentials,
            amount: message.amount,
            signature: signature.to_bytes().into(),
        };
        LaunchpadDeposit {
            pubkey: hex::encode(message.pubkey),
            withdrawal_credentials: hex::encode(message.withdrawal_credentials),
            amount: message.amount.0,
            signature: hex::encode(signature.to_bytes()),
            deposit_message_root: hex::encode(message.tree_hash_root()),
            deposit_data_root: hex::encode(data.tree_hash_root()),
            fork_version: hex::encode(genesis_fork_version),
            network_name: network_name.into(),
            deposit_cli_version: DEPOSIT_CLI_VERSION.into(),
        }
    }

    /// Checks an entry read from a file: the roots match the fields, the
    /// credentials are 0x01/0x02 and the signature verifies.
    pub fn verify(&self) -> Result<(), DepositError> {
        let check = self.verify_fields()?;
        if !check
            .signature
            .verify(&check.public_key, check.signing_root.as_slice())
        {
            return Err(DepositError::BadSignature(check.public_key.to_hex()));
        }
        Ok(())
    }

    /// Everything [`Self::verify`] checks but the signature, which it
    /// returns with its key and signing root for the caller to verify (in
    /// a batch with others).
    pub fn verify_fields(&self) -> Result<DepositSignature, DepositError> {
        let bytes = |name: &str, text: &str, len: usize| -> Result<Vec<u8>, DepositError> {
            let decoded = hex::decode(text.trim_start_matches("0x"))
                .map_err(|e| DepositError::File(format!("{name} is not hex: {e}")))?;
            if decoded.len() != len {
                return Err(DepositError::File(format!(
                    "{name} must be {len} bytes, got {}",
                    decoded.len()
                )));
            }
            Ok(decoded)
        };
        let public_key = PublicKey::from_bytes(&bytes("pubkey", &self.pubkey, 48)?)
            .map_err(DepositError::PublicKey)?;
        let credentials = WithdrawalCredentials::from_root(Root::from_slice(&bytes(
            "withdrawal_credentials",
            &self.withdrawal_credentials,
            32,
        )?))?;
        let fork_version = Version::from_slice(&bytes("fork_version", &self.fork_version, 4)?);
        let signature = Signature::from_bytes(&bytes("signature", &self.signature, 96)?)
            .map_err(|e| DepositError::File(format!("signature: {e}")))?;
        let message = DepositMessage::new(&public_key, credentials, Gwei(self.amount))?;
        let rebuilt =
            LaunchpadDeposit::assemble(&message, &signature, fork_version, &self.network_name);
        for (name, ours, theirs) in [
            (
                "deposit_message_root",
                &rebuilt.deposit_message_root,
                &self.deposit_message_root,
            ),
            (
                "deposit_data_root",
                &rebuilt.deposit_data_root,
                &self.deposit_data_root,
            ),
        ] {
            if !ours.eq_ignore_ascii_case(theirs.trim_start_matches("0x")) {
                return Err(DepositError::File(format!(
                    "{name} {theirs} does not match the entry's fields (expected {ours})"
                )));
            }
        }
        Ok(DepositSignature {
            signing_root: message.signing_root(fork_version),
            public_key,
            signature,
        })
    }
}

/// A deposit's signature with what it must verify against.
#[derive(Clone, Copy, Debug)]
pub struct DepositSignature {
    /// The validator's key.
    pub public_key: PublicKey,
    /// The deposit message's signing root.
    pub signing_root: Root,
    /// The deposit signature.
    pub signature: Signature,
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_crypto::SecretKey;

    fn key() -> SecretKey {
        SecretKey::from_bytes(&[0x11; 32]).expect("valid scalar")
    }

    #[test]
    fn credentials_layout_and_round_trip() {
        let address = ExecutionAddress::repeat_byte(0xab);
        let root = WithdrawalCredentials::Compounding(address).to_root();
        assert_eq!(root[0], 0x02);
        assert!(root[1..12].iter().all(|&b| b == 0));
        assert_eq!(&root[12..], address.as_slice());
        assert_eq!(
            WithdrawalCredentials::from_root(root),
            Ok(WithdrawalCredentials::Compounding(address))
        );
        let mut bls = root;
        bls[0] = 0x00;
        assert!(WithdrawalCredentials::from_root(bls).is_err());
    }

    #[test]
    fn amounts_are_bounded_by_the_credentials() {
        let pk = key().public_key();
        let address = ExecutionAddress::repeat_byte(1);
        assert!(DepositMessage::new(
            &pk,
            WithdrawalCredentials::Execution(address),
            Gwei(33_000_000_000)
        )
        .is_err());
        assert!(DepositMessage::new(
            &pk,
            WithdrawalCredentials::Compounding(address),
            Gwei(33_000_000_000)
        )
        .is_ok());
        assert!(DepositMessage::new(
            &pk,
            WithdrawalCredentials::Compounding(address),
            Gwei(999_999_999)
        )
        .is_err());
    }

    #[test]
    fn a_signed_deposit_verifies_and_tampering_is_caught() {
        let sk = key();
        let version = Version::ZERO;
        let message = DepositMessage::new(
            &sk.public_key(),
            WithdrawalCredentials::Execution(ExecutionAddress::repeat_byte(7)),
            ACTIVATION_AMOUNT,
        )
        .expect("valid");
        let signature = sk.sign(message.signing_root(version).as_slice());
        let deposit =
            LaunchpadDeposit::new(&message, &signature, version, "mainnet").expect("verifies");
        assert_eq!(deposit.verify(), Ok(()));
        assert_eq!(deposit.fork_version, "00000000");

        let json = serde_json::to_value(&deposit).expect("json");
        assert!(json["amount"].is_u64(), "the launchpad wants a JSON number");

        // A changed field no longer matches its root.
        let mut wrong_amount = deposit.clone();
        wrong_amount.amount = 31_000_000_000;
        assert!(matches!(wrong_amount.verify(), Err(DepositError::File(_))));
        let mut wrong_root = deposit.clone();
        wrong_root.deposit_data_root = "00".repeat(32);
        assert!(matches!(wrong_root.verify(), Err(DepositError::File(_))));
        let other = sk.sign(b"not a deposit");
        assert!(LaunchpadDeposit::new(&message, &other, version, "mainnet").is_err());
        // Consistent roots over a bad signature: the fields pass, the
        // signature does not.
        let forged = LaunchpadDeposit::assemble(&message, &other, version, "mainnet");
        let check = forged.verify_fields().expect("the fields are consistent");
        assert!(!check
            .signature
            .verify(&check.public_key, check.signing_root.as_slice()));
        assert!(matches!(
            forged.verify(),
            Err(DepositError::BadSignature(_))
        ));
    }
}
