//! `phalanx register`: this operator's part of a new builder registration
//! (a new fee recipient or gas limit) for a validator.
//!
//! A registration combines only if every operator signs identical bytes, so
//! the operators agree on the fee recipient, gas limit and timestamp and
//! each runs this command with them. Each partial names the validator's
//! group key and goes to the operator's own node, which combines it with
//! the others'; the new registration then replaces the lock's, and blocks
//! must pay its fee recipient.

use anyhow::{Context, Result};
use clap::Args;
use phalanx_eth::client::{BeaconNodeClient, Timeouts};
use phalanx_eth::signing::{application_builder_domain, compute_signing_root};
use phalanx_eth::validator::{SignedValidatorRegistration, ValidatorRegistration};
use phalanx_eth::{ExecutionAddress, SignatureBytes};

use crate::exit::{load_share, OperatorShare, ShareArgs};

#[derive(Args, Clone)]
pub(crate) struct RegisterArgs {
    #[command(flatten)]
    share: ShareArgs,
    /// The new fee recipient.
    #[arg(long)]
    fee_recipient: ExecutionAddress,
    /// The gas limit to ask builders for.
    #[arg(long)]
    gas_limit: u64,
    /// Unix seconds written in the registration: the same on every
    /// operator, later than the current registration's.
    #[arg(long)]
    timestamp: u64,
}

#[expect(
    clippy::print_stdout,
    reason = "the command reports what the node accepted"
)]
pub(crate) async fn register(args: RegisterArgs) -> Result<()> {
    let OperatorShare {
        lock,
        operator,
        share,
    } = load_share(&args.share.data_dir, args.share.validator_public_key)?;
    let message = ValidatorRegistration {
        fee_recipient: args.fee_recipient,
        gas_limit: args.gas_limit,
        timestamp: args.timestamp,
        pubkey: args.share.validator_public_key,
    };
    let domain = application_builder_domain(lock.definition.network.genesis_fork_version);
    let root = compute_signing_root(&message, domain);
    let signature = SignatureBytes::from(share.sign(root.as_slice()).to_bytes());
    let client = BeaconNodeClient::new(
        std::slice::from_ref(&args.share.validator_api_url),
        Timeouts::default(),
    )
    .context("the validator API URL")?;
    client
        .register_validators(&[SignedValidatorRegistration { message, signature }])
        .await
        .context("handing the partial registration to the node")?;
    println!(
        "Operator {operator}'s partial registration of validator {} (fee recipient {}, gas limit {}, timestamp {}) was accepted by the node.",
        args.share.validator_public_key, args.fee_recipient, args.gas_limit, args.timestamp
    );
    println!(
        "It combines once {} of {} operators have run `phalanx register` with the same values.",
        lock.definition.threshold,
        lock.definition.operators.len()
    );
    Ok(())
}
