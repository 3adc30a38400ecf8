//! `phalanx create dkg`, `phalanx create cluster` and `phalanx combine`:
//! cluster definitions, trusted-dealer clusters and rebuilding full keys.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use clap::Args;
use phalanx_crypto::keystore::KdfSetting;
use phalanx_crypto::SecretKey;
use phalanx_dkg::dealer::deal;
use phalanx_dkg::definition::{
    crash_tolerance, default_threshold, BuilderSpec, NetworkSpec, ValidatorSpec,
};
use phalanx_dkg::files::{write_keystores, write_operator_files, write_private};
use phalanx_dkg::ClusterDefinition;
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::interchange::Interchange;
use phalanx_eth::{ExecutionAddress, Gwei, PublicKeyBytes};
use phalanx_p2p::{Enr, NodeKey, NODE_KEY_FILE};

/// What every definition needs besides its operators.
#[derive(Args)]
pub(crate) struct DefinitionArgs {
    /// A name for the cluster.
    #[arg(long, env = "PHALANX_NAME", default_value = "phalanx cluster")]
    name: String,
    /// mainnet, hoodi, sepolia, or the path of a devnet's config.yaml.
    #[arg(long, env = "PHALANX_NETWORK", default_value = "hoodi")]
    network: String,
    /// Partial signatures needed; default ceil(2n/3), the QBFT quorum.
    #[arg(long, env = "PHALANX_THRESHOLD")]
    threshold: Option<u32>,
    /// Validators to create (ignored with --split-existing-keys).
    #[arg(long, env = "PHALANX_NUM_VALIDATORS", default_value_t = 1)]
    num_validators: usize,
    /// Withdrawal addresses: one for all validators, or one per validator.
    #[arg(
        long,
        env = "PHALANX_WITHDRAWAL_ADDRESSES",
        value_delimiter = ',',
        required = true
    )]
    withdrawal_addresses: Vec<ExecutionAddress>,
    /// Fee recipients: one for all validators, or one per validator.
    #[arg(
        long,
        env = "PHALANX_FEE_RECIPIENT_ADDRESSES",
        value_delimiter = ',',
        required = true
    )]
    fee_recipient_addresses: Vec<ExecutionAddress>,
    /// Use 0x02 (compounding) withdrawal credentials.
    #[arg(long, env = "PHALANX_COMPOUNDING")]
    compounding: bool,
    /// Deposit amounts in ETH: one for all validators, or one per validator.
    #[arg(
        long,
        env = "PHALANX_DEPOSIT_AMOUNTS",
        value_delimiter = ',',
        default_value = "32"
    )]
    deposit_amounts: Vec<String>,
    /// Gas limit in the validators' builder registrations.
    #[arg(long, env = "PHALANX_GAS_LIMIT", default_value_t = 36_000_000)]
    gas_limit: u64,
    /// Timestamp of the builder registrations (unix seconds); default the network's genesis time.
    #[arg(long, env = "PHALANX_BUILDER_TIMESTAMP")]
    builder_timestamp: Option<u64>,
}

fn load_network(name: &str) -> Result<NetworkConfig> {
    match NetworkConfig::built_in(name) {
        Ok(config) => Ok(config),
        Err(_) if Path::new(name).exists() => {
            let text = std::fs::read_to_string(name).with_context(|| format!("reading {name}"))?;
            NetworkConfig::from_yaml(&text)
                .with_context(|| format!("parsing the network config {name}"))
        }
        Err(e) => bail!(
            "unknown network {name:?} ({e}): use mainnet, hoodi, sepolia or a config.yaml path"
        ),
    }
}

fn per_validator<T: Clone>(values: &[T], count: usize, what: &str) -> Result<Vec<T>> {
    match values.len() {
        1 => Ok(vec![values[0].clone(); count]),
        n if n == count => Ok(values.to_vec()),
        n => bail!("{n} {what} for {count} validators: give one for all or one per validator"),
    }
}

fn parse_eth(amount: &str) -> Result<Gwei> {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    ensure!(
        fraction.len() <= 9,
        "deposit amount {amount} has more than 9 decimals"
    );
    let whole: u64 = whole
        .parse()
        .with_context(|| format!("deposit amount {amount:?}"))?;
    let fraction: u64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}")
            .parse()
            .with_context(|| format!("deposit amount {amount:?}"))?
    };
    whole
        .checked_mul(1_000_000_000)
        .and_then(|g| g.checked_add(fraction))
        .map(Gwei)
        .with_context(|| format!("deposit amount {amount} is too large"))
}

#[expect(
    clippy::disallowed_methods,
    reason = "the definition records when it was made: a CLI edge"
)]
fn now_rfc3339() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Civil date from unix days (Howard Hinnant's algorithm).
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn build_definition(
    args: &DefinitionArgs,
    enrs: &[Enr],
    validators: usize,
) -> Result<ClusterDefinition> {
    let network = load_network(&args.network)?;
    let n = enrs.len();
    let threshold = args.threshold.unwrap_or_else(|| default_threshold(n));
    phalanx_dkg::definition::check_threshold(n, threshold)?;
    if args.threshold.is_some_and(|t| t != default_threshold(n)) {
        tracing::warn!(
            threshold,
            operators = n,
            crash_tolerance = crash_tolerance(n, threshold),
            "custom threshold: the cluster keeps working with this many operators down"
        );
    }
    let withdrawals = per_validator(
        &args.withdrawal_addresses,
        validators,
        "withdrawal addresses",
    )?;
    let fees = per_validator(&args.fee_recipient_addresses, validators, "fee recipients")?;
    let amounts = per_validator(&args.deposit_amounts, validators, "deposit amounts")?;
    let specs = withdrawals
        .into_iter()
        .zip(fees)
        .zip(amounts)
        .map(|((withdrawal_address, fee_recipient), amount)| {
            Ok(ValidatorSpec {
                withdrawal_address,
                compounding: args.compounding,
                fee_recipient,
                deposit_amount: parse_eth(&amount)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let timestamp = match (args.builder_timestamp, network.genesis_time) {
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => {
            bail!("--builder-timestamp is needed for a network without a known genesis time")
        }
    };
    let definition = ClusterDefinition::new(
        &args.name,
        NetworkSpec::of(&network),
        threshold,
        enrs,
        specs,
        BuilderSpec {
            gas_limit: args.gas_limit,
            timestamp,
        },
        &now_rfc3339(),
    );
    definition.validate()?;
    Ok(definition)
}

/// `phalanx create dkg`.
#[derive(Args)]
pub(crate) struct CreateDkgArgs {
    /// The operators' ENRs, comma-separated, in share order.
    #[arg(
        long,
        env = "PHALANX_OPERATOR_ENRS",
        value_delimiter = ',',
        required = true
    )]
    operator_enrs: Vec<String>,
    #[command(flatten)]
    definition: DefinitionArgs,
    /// Where to write the definition.
    #[arg(
        long,
        env = "PHALANX_OUTPUT_FILE",
        default_value = "cluster-definition.json"
    )]
    output_file: PathBuf,
}

#[expect(clippy::print_stdout, reason = "the command reports what it wrote")]
pub(crate) fn create_dkg(args: &CreateDkgArgs) -> Result<()> {
    let enrs = args
        .operator_enrs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            text.parse::<Enr>()
                .with_context(|| format!("operator {i}'s ENR"))
        })
        .collect::<Result<Vec<_>>>()?;
    let definition = build_definition(&args.definition, &enrs, args.definition.num_validators)?;
    ensure!(
        !args.output_file.exists(),
        "{} already exists; choose another --output-file",
        args.output_file.display()
    );
    std::fs::write(
        &args.output_file,
        serde_json::to_string_pretty(&definition)?,
    )
    .with_context(|| format!("writing {}", args.output_file.display()))?;
    println!("wrote {}", args.output_file.display());
    println!("definition hash: {}", definition.definition_hash);
    println!(
        "{} operators, threshold {}: keeps working with {} operators down",
        enrs.len(),
        definition.threshold,
        crash_tolerance(enrs.len(), definition.threshold)
    );
    Ok(())
}

/// `phalanx create cluster`.
#[derive(Args)]
pub(crate) struct CreateClusterArgs {
    /// Number of operators.
    #[arg(long, env = "PHALANX_NODES", default_value_t = 4)]
    nodes: usize,
    #[command(flatten)]
    definition: DefinitionArgs,
    /// Split these EIP-2335 keystores (`*.json`, each with its password in
    /// the `.txt` of the same name) instead of generating new keys.
    #[arg(long, env = "PHALANX_SPLIT_EXISTING_KEYS")]
    split_existing_keys: Option<PathBuf>,
    /// The validators' EIP-3076 slashing-protection history, copied into
    /// every operator's folder (with --split-existing-keys).
    #[arg(long, env = "PHALANX_SLASHING_PROTECTION")]
    slashing_protection: Option<PathBuf>,
    /// Where to write one folder per operator (`node0`, `node1`, …).
    #[arg(long, env = "PHALANX_CLUSTER_DIR", default_value = "cluster")]
    cluster_dir: PathBuf,
    /// First TCP port of the operators' ENRs (operator i uses port + i); the ENRs use 127.0.0.1.
    #[arg(long, env = "PHALANX_P2P_TCP_PORT", default_value_t = 3610)]
    p2p_tcp_port: u16,
    /// First UDP (QUIC) port of the operators' ENRs.
    #[arg(long, env = "PHALANX_P2P_UDP_PORT", default_value_t = 3630)]
    p2p_udp_port: u16,
    /// Encrypt keystores with a trivially weak KDF (tests and devnets only).
    #[arg(long, env = "PHALANX_INSECURE_KEYS")]
    insecure_keys: bool,
}

fn kdf(insecure: bool) -> KdfSetting {
    if insecure {
        KdfSetting::InsecureLowCost
    } else {
        KdfSetting::StandardScrypt
    }
}

/// Reads `*.json` keystores of a folder in name order, each with its `.txt` password.
fn read_existing_keys(dir: &Path) -> Result<Vec<SecretKey>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    ensure!(
        !paths.is_empty(),
        "no keystores (*.json) in {}",
        dir.display()
    );
    paths
        .iter()
        .map(|path| phalanx_dkg::files::read_keystore(path).map_err(anyhow::Error::from))
        .collect()
}

#[expect(clippy::print_stdout, reason = "the command reports what it wrote")]
pub(crate) fn create_cluster(args: &CreateClusterArgs) -> Result<()> {
    ensure!(args.nodes >= 1, "--nodes must be at least 1");
    ensure!(
        !args.cluster_dir.join("node0").exists(),
        "{} already holds a cluster; choose another --cluster-dir",
        args.cluster_dir.display()
    );
    let secrets = match &args.split_existing_keys {
        Some(dir) => Some(read_existing_keys(dir)?),
        None => None,
    };
    let validators = secrets
        .as_ref()
        .map_or(args.definition.num_validators, Vec::len);
    let history = match &args.slashing_protection {
        Some(path) => {
            ensure!(
                secrets.is_some(),
                "--slashing-protection goes with --split-existing-keys"
            );
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let all = Interchange::from_json(&text).map_err(anyhow::Error::msg)?;
            let keys: Vec<PublicKeyBytes> = secrets
                .iter()
                .flatten()
                .map(|s| PublicKeyBytes::from(s.public_key().to_bytes()))
                .collect();
            Some(all.filtered(&keys))
        }
        None => None,
    };
    let node_keys: Vec<NodeKey> = (0..args.nodes).map(|_| NodeKey::generate()).collect();
    let enrs: Vec<Enr> = node_keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            key.enr(
                1,
                Some(Ipv4Addr::LOCALHOST),
                Some(args.p2p_tcp_port.saturating_add(i as u16)),
                Some(args.p2p_udp_port.saturating_add(i as u16)),
            )
        })
        .collect();
    let definition = build_definition(&args.definition, &enrs, validators)?;
    let mut rng = rand::rngs::OsRng;
    let cluster = deal(&definition, node_keys, secrets, &mut rng)?;
    for (i, operator) in cluster.operators.iter().enumerate() {
        let dir = args.cluster_dir.join(format!("node{i}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        operator
            .node_key
            .save(&dir.join(NODE_KEY_FILE))
            .with_context(|| format!("writing node {i}'s key"))?;
        write_operator_files(
            &dir,
            &cluster.lock,
            &operator.shares,
            kdf(args.insecure_keys),
            history.as_ref(),
        )
        .with_context(|| format!("writing node {i}'s folder"))?;
    }
    println!(
        "wrote {} operator folders to {} ({} validators, threshold {}, lock hash {})",
        args.nodes,
        args.cluster_dir.display(),
        validators,
        definition.threshold,
        cluster.lock.lock_hash
    );
    Ok(())
}

/// `phalanx combine`.
#[derive(Args)]
pub(crate) struct CombineArgs {
    /// Operator folders (at least the threshold), comma-separated.
    #[arg(
        long,
        env = "PHALANX_OPERATOR_DIRS",
        value_delimiter = ',',
        required = true
    )]
    operator_dirs: Vec<PathBuf>,
    /// Where to write the validators' full keystores.
    #[arg(long, env = "PHALANX_OUTPUT_DIR", default_value = "validator_keys")]
    output_dir: PathBuf,
    /// Encrypt the keystores with a trivially weak KDF (tests only).
    #[arg(long, env = "PHALANX_INSECURE_KEYS")]
    insecure_keys: bool,
}

#[expect(clippy::print_stdout, reason = "the command reports what it wrote")]
pub(crate) fn combine(args: &CombineArgs) -> Result<()> {
    let dirs: Vec<&Path> = args.operator_dirs.iter().map(PathBuf::as_path).collect();
    let (lock, secrets) = phalanx_dkg::combine::combine(&dirs)?;
    std::fs::create_dir_all(&args.output_dir)
        .with_context(|| format!("creating {}", args.output_dir.display()))?;
    ensure!(
        std::fs::read_dir(&args.output_dir)?.next().is_none(),
        "{} is not empty; refusing to mix full keys with other files",
        args.output_dir.display()
    );
    write_keystores(
        &args.output_dir,
        secrets.iter().collect(),
        kdf(args.insecure_keys),
    )?;
    let keys: Vec<String> = lock
        .validators
        .iter()
        .map(|v| v.public_key.to_hex())
        .collect();
    write_private(
        &args.output_dir.join("public-keys.txt"),
        keys.join("\n").as_bytes(),
    )?;
    println!(
        "recovered {} validator keys into {}: each is a full validator key now — guard it, and never run it beside the cluster",
        secrets.len(),
        args.output_dir.display()
    );
    Ok(())
}

/// `phalanx dkg`.
#[derive(Args)]
pub(crate) struct DkgArgs {
    /// The cluster definition every operator received.
    #[arg(
        long,
        env = "PHALANX_DEFINITION_FILE",
        default_value = "cluster-definition.json"
    )]
    definition_file: PathBuf,
    /// This operator's data directory: holds `enr-private-key`, receives the lock and keys.
    #[arg(long, env = "PHALANX_DATA_DIR", default_value = ".phalanx")]
    data_dir: PathBuf,
    /// TCP address to listen on.
    #[arg(long, env = "PHALANX_P2P_TCP_ADDRESS", default_value = "0.0.0.0:3610")]
    p2p_tcp_address: std::net::SocketAddr,
    /// UDP address for QUIC.
    #[arg(long, env = "PHALANX_P2P_UDP_ADDRESS")]
    p2p_udp_address: Option<std::net::SocketAddr>,
    /// Relays to reach the other operators through (multiaddrs ending in /p2p/<id>).
    #[arg(long, env = "PHALANX_P2P_RELAYS", value_delimiter = ',')]
    p2p_relays: Vec<phalanx_p2p::Multiaddr>,
    /// How long to wait for the other operators and the ceremony, in seconds.
    #[arg(long, env = "PHALANX_DKG_TIMEOUT", default_value_t = 600)]
    timeout: u64,
    /// Encrypt keystores with a trivially weak KDF (tests and devnets only).
    #[arg(long, env = "PHALANX_INSECURE_KEYS")]
    insecure_keys: bool,
}

#[expect(clippy::print_stdout, reason = "the command reports what it wrote")]
pub(crate) async fn dkg(args: DkgArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.definition_file)
        .with_context(|| format!("reading {}", args.definition_file.display()))?;
    let definition: ClusterDefinition = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a cluster definition",
            args.definition_file.display()
        )
    })?;
    definition.validate()?;
    let key_path = args.data_dir.join(NODE_KEY_FILE);
    let node_key = NodeKey::load(&key_path).with_context(|| {
        format!(
            "loading this operator's key (create it with `phalanx create enr --data-dir {}`)",
            args.data_dir.display()
        )
    })?;
    ensure!(
        !args.data_dir.join(phalanx_dkg::files::LOCK_FILE).exists(),
        "{} already holds a cluster lock; use another --data-dir",
        args.data_dir.display()
    );
    let mut listen = vec![crate::socket_multiaddr(args.p2p_tcp_address, false)];
    if let Some(udp) = args.p2p_udp_address {
        listen.push(crate::socket_multiaddr(udp, true));
    }
    let config = phalanx_dkg::runner::RunConfig {
        definition,
        node_key,
        listen,
        relays: args.p2p_relays.clone(),
        extra_addresses: Vec::new(),
        timeout: std::time::Duration::from_secs(args.timeout),
        state_file: Some(args.data_dir.join("dkg-state.json")),
        interrupt_after: None,
    };
    let mut registry = prometheus_client::registry::Registry::default();
    let outcome = phalanx_dkg::runner::run_ceremony(config, &mut registry).await?;
    tracing::info!("ceremony complete; encrypting keystores");
    write_operator_files(
        &args.data_dir,
        &outcome.lock,
        &outcome.shares,
        kdf(args.insecure_keys),
        None,
    )?;
    println!(
        "wrote the cluster lock ({}), {} share keystores and deposit data to {}",
        outcome.lock.lock_hash,
        outcome.shares.len(),
        args.data_dir.display()
    );
    Ok(())
}
