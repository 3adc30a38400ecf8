//! `phalanx exit`: this operator's part of a validator's voluntary exit.
//!
//! Each operator signs the exit with its key share and hands the partial
//! signature to its own node (through the validator API, where a validator
//! client's exit command would post it too). The nodes exchange the
//! partials and broadcast the exit once `threshold` operators have signed
//! the same one: no hosted service, and no full key anywhere.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Args;
use phalanx_dkg::files::{read_keystore, KEYS_DIR, LOCK_FILE};
use phalanx_dkg::lock::ClusterLock;
use phalanx_eth::client::{BeaconNodeClient, Timeouts};
use phalanx_eth::config::UnknownFork;
use phalanx_eth::signing::roots;
use phalanx_eth::validator::{SignedVoluntaryExit, VoluntaryExit};
use phalanx_eth::{Epoch, PublicKeyBytes, SignatureBytes, Slot};
use phalanx_p2p::{NodeKey, NODE_KEY_FILE};

/// Which operator signs for which validator, and through which node.
#[derive(Args, Clone)]
pub(crate) struct ShareArgs {
    /// The operator's data directory (cluster-lock.json, enr-private-key,
    /// validator_keys/).
    #[arg(long, env = "PHALANX_DATA_DIR", default_value = ".phalanx")]
    pub(crate) data_dir: PathBuf,
    /// The validator: its public key (the group key in the lock).
    #[arg(long)]
    pub(crate) validator_public_key: PublicKeyBytes,
    /// This operator's running node's validator API.
    #[arg(
        long,
        env = "PHALANX_VALIDATOR_API_URL",
        default_value = "http://127.0.0.1:3600"
    )]
    pub(crate) validator_api_url: String,
}

#[derive(Args, Clone)]
pub(crate) struct ExitArgs {
    #[command(flatten)]
    share: ShareArgs,
    /// The epoch the exit takes effect from (default: the current epoch).
    #[arg(long)]
    epoch: Option<u64>,
}

#[expect(
    clippy::print_stdout,
    reason = "the command reports what the node accepted"
)]
pub(crate) async fn exit(args: ExitArgs) -> Result<()> {
    let chosen_epoch = args.epoch;
    let args = args.share;
    let OperatorShare {
        lock,
        operator,
        share,
    } = load_share(&args.data_dir, args.validator_public_key)?;

    // The chain, through the node (it serves these read-only endpoints).
    let client = BeaconNodeClient::new(
        std::slice::from_ref(&args.validator_api_url),
        Timeouts::default(),
    )
    .context("the validator API URL")?;
    let genesis = client
        .genesis()
        .await
        .with_context(|| format!("asking {} for the chain's genesis", args.validator_api_url))?;
    let network = client
        .spec()
        .await
        .context("asking the node for the chain's config")?;
    let records = client
        .validators("head", &[args.validator_public_key.to_string()])
        .await
        .context("looking up the validator's index")?;
    let Some(record) = records.first() else {
        bail!(
            "the beacon node does not know validator {}: was it deposited?",
            args.validator_public_key
        );
    };
    let now = unix_seconds();
    let slot_seconds = (network.slot_duration_ms / 1000).max(1);
    let current =
        Epoch(now.saturating_sub(genesis.genesis_time) / slot_seconds / network.slots_per_epoch());
    let epoch = chosen_epoch.map_or(current, Epoch);
    if epoch > current {
        bail!("epoch {epoch} has not begun (the current epoch is {current}): the chain would refuse the exit");
    }

    let message = VoluntaryExit {
        epoch,
        validator_index: record.index,
    };
    // The exit is signed as the chain verifies it now: a fork unknown to
    // this build is refused rather than signed in the latest's layout.
    let current_slot = Slot(current.0.saturating_mul(network.slots_per_epoch()));
    network
        .fork_at_slot(current_slot)
        .map_err(|UnknownFork(name)| {
            anyhow::anyhow!("the chain is in fork {name}, unknown to this build")
        })?;
    let root = roots::voluntary_exit(
        &network,
        genesis.genesis_validators_root,
        &message,
        current_slot,
    );
    let signature = SignatureBytes::from(share.sign(root.as_slice()).to_bytes());
    client
        .submit_voluntary_exit(&SignedVoluntaryExit { message, signature })
        .await
        .context("handing the partial exit to the node")?;
    println!(
        "Operator {operator}'s partial exit of validator {} (index {}) for epoch {epoch} was accepted by the node.",
        args.validator_public_key, record.index
    );
    println!(
        "The cluster broadcasts the exit once {} of {} operators have run `phalanx exit` for it; watch the nodes' logs for \"voluntary exit broadcast\".",
        lock.definition.threshold,
        lock.definition.operators.len()
    );
    Ok(())
}

#[expect(
    clippy::disallowed_methods,
    reason = "the command reads the clock at the edge to know the current epoch"
)]
fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// This operator's share of one validator, checked against the lock.
pub(crate) struct OperatorShare {
    pub(crate) lock: ClusterLock,
    pub(crate) operator: usize,
    pub(crate) share: phalanx_crypto::SecretKey,
}

/// Loads the lock and node key of `data_dir` and decrypts this operator's
/// share of `validator`, refusing anything that does not fit the lock.
pub(crate) fn load_share(data_dir: &Path, validator: PublicKeyBytes) -> Result<OperatorShare> {
    let lock_path = data_dir.join(LOCK_FILE);
    let lock = ClusterLock::load(&lock_path).with_context(|| {
        format!(
            "the cluster lock {} does not load and verify",
            lock_path.display()
        )
    })?;
    let key_path = data_dir.join(NODE_KEY_FILE);
    let node_key = NodeKey::load(&key_path)
        .with_context(|| format!("loading the node key {}", key_path.display()))?;
    let Some(operator) = lock.operator_index(&node_key.public_key()) else {
        bail!(
            "the node key {} is not one of the operators of {}",
            key_path.display(),
            lock_path.display()
        );
    };
    let Some(position) = lock
        .validators
        .iter()
        .position(|v| PublicKeyBytes::from(v.public_key.to_bytes()) == validator)
    else {
        bail!(
            "{} is not a validator of the cluster in {}",
            validator,
            lock_path.display()
        );
    };
    let keystore = data_dir
        .join(KEYS_DIR)
        .join(format!("keystore-{position}.json"));
    let share = read_keystore(&keystore).with_context(|| {
        format!(
            "decrypting this operator's key share {}",
            keystore.display()
        )
    })?;
    if share.public_key() != lock.validators[position].public_shares[operator] {
        bail!(
            "{} is not operator {operator}'s share of validator {}",
            keystore.display(),
            validator
        );
    }

    Ok(OperatorShare {
        lock,
        operator,
        share,
    })
}
