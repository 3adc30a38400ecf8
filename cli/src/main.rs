//! `phalanx`: the command-line tool of Phalanx distributed-validator
//! middleware. Every flag can also be set with a `PHALANX_*` environment
//! variable (shown in `--help`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use phalanx_p2p::{Enr, Multiaddr, NodeKey, RelayAccess, RelayLimits, RelayServer, NODE_KEY_FILE};
use prometheus_client::registry::Registry;

mod cluster;
mod devnet;
mod exit;
mod memory;
mod monitoring;
mod node;
mod register;
mod simnet;
mod slashing;

#[derive(Parser)]
#[command(
    name = "phalanx",
    version,
    about = "Distributed-validator middleware for Ethereum"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Args)]
struct LogArgs {
    /// Log level: error, warn, info, debug, trace (or a tracing filter).
    #[arg(long, env = "PHALANX_LOG_LEVEL", default_value = "info", global = true)]
    log_level: String,
    /// Log format.
    #[arg(long, env = "PHALANX_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Create things: an operator's node key and ENR.
    #[command(subcommand)]
    Create(CreateCommand),
    /// Print the ENR of this operator's existing node key.
    Enr(EnrArgs),
    /// Run a circuit-relay server that operators behind NAT reach each other through.
    Relay(RelayArgs),
    /// Rebuild validators' full keys from at least threshold operators' folders.
    Combine(cluster::CombineArgs),
    /// Run this operator's part of the key-generation ceremony.
    Dkg(cluster::DkgArgs),
    /// Run this operator's distributed-validator node.
    Run(node::RunArgs),
    /// Sign this operator's part of a validator's voluntary exit; the
    /// cluster broadcasts it once enough operators have.
    Exit(exit::ExitArgs),
    /// Sign this operator's part of a validator's new builder registration
    /// (fee recipient, gas limit); the cluster combines identical ones.
    Register(register::RegisterArgs),
    /// Export or import the validators' slashing-protection history (EIP-3076).
    #[command(subcommand)]
    SlashingProtection(slashing::SlashingCommand),
    /// Run a whole 4-operator cluster on this machine on a simulated beacon chain.
    Devnet(devnet::DevnetArgs),
    /// Simulate whole clusters in virtual time, reproducibly from a seed,
    /// with faults, and check the safety and liveness invariants.
    Simnet(simnet::SimnetArgs),
}

#[derive(Subcommand)]
enum CreateCommand {
    /// Create this operator's node key (secp256k1, mode 0600) and print its ENR.
    Enr(EnrArgs),
    /// Write a cluster definition for a key-generation ceremony from the operators' ENRs.
    Dkg(cluster::CreateDkgArgs),
    /// Create a whole cluster with a trusted dealer (tests, devnets, migrating existing keys).
    Cluster(cluster::CreateClusterArgs),
}

#[derive(Args)]
struct EnrArgs {
    /// The operator's data directory; the key is `<data-dir>/enr-private-key`.
    #[arg(long, env = "PHALANX_DATA_DIR", default_value = ".phalanx")]
    data_dir: PathBuf,
    /// The public IPv4 address other operators reach this node at.
    #[arg(long, env = "PHALANX_P2P_EXTERNAL_IP", default_value_t = Ipv4Addr::LOCALHOST)]
    p2p_external_ip: Ipv4Addr,
    /// The TCP port of the p2p listener.
    #[arg(long, env = "PHALANX_P2P_TCP_PORT", default_value_t = 3610)]
    p2p_tcp_port: u16,
    /// The UDP port of the QUIC listener.
    #[arg(long, env = "PHALANX_P2P_UDP_PORT", default_value_t = 3630)]
    p2p_udp_port: u16,
    /// Also print the peer id and the record's fields.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Args)]
struct RelayArgs {
    /// The relay's data directory; its key is created there on first start.
    #[arg(long, env = "PHALANX_DATA_DIR", default_value = ".phalanx-relay")]
    data_dir: PathBuf,
    /// TCP address to listen on.
    #[arg(long, env = "PHALANX_P2P_TCP_ADDRESS", default_value = "0.0.0.0:3640")]
    p2p_tcp_address: SocketAddr,
    /// UDP address for QUIC.
    #[arg(long, env = "PHALANX_P2P_UDP_ADDRESS", default_value = "0.0.0.0:3641")]
    p2p_udp_address: Option<SocketAddr>,
    /// Public addresses to announce (multiaddrs, repeatable); without one the
    /// relay serves on every address it listens on.
    #[arg(long, env = "PHALANX_P2P_EXTERNAL_ADDRESS", value_delimiter = ',')]
    external_address: Vec<Multiaddr>,
    /// Reservations held at once.
    #[arg(long, env = "PHALANX_RELAY_MAX_RESERVATIONS", default_value_t = RelayLimits::default().max_reservations)]
    max_reservations: usize,
    /// Reservations per peer.
    #[arg(long, env = "PHALANX_RELAY_MAX_RESERVATIONS_PER_PEER", default_value_t = RelayLimits::default().max_reservations_per_peer)]
    max_reservations_per_peer: usize,
    /// Circuits open at once.
    #[arg(long, env = "PHALANX_RELAY_MAX_CIRCUITS", default_value_t = RelayLimits::default().max_circuits)]
    max_circuits: usize,
    /// Circuits per peer.
    #[arg(long, env = "PHALANX_RELAY_MAX_CIRCUITS_PER_PEER", default_value_t = RelayLimits::default().max_circuits_per_peer)]
    max_circuits_per_peer: usize,
    /// Bytes a circuit may carry before it is closed (the peers open another).
    #[arg(long, env = "PHALANX_RELAY_MAX_CIRCUIT_BYTES", default_value_t = RelayLimits::default().max_circuit_bytes)]
    max_circuit_bytes: u64,
    /// Serve only the operators of this cluster lock (repeatable); with
    /// neither this nor --serve-peer the relay serves any peer.
    #[arg(long, env = "PHALANX_RELAY_SERVE_LOCKS", value_delimiter = ',')]
    serve_lock: Vec<PathBuf>,
    /// Serve only this peer id, e.g. an operator's (repeatable).
    #[arg(long, env = "PHALANX_RELAY_SERVE_PEERS", value_delimiter = ',')]
    serve_peer: Vec<phalanx_p2p::PeerId>,
    /// Prometheus metrics at http://<address>/metrics.
    #[arg(
        long,
        env = "PHALANX_MONITORING_ADDRESS",
        default_value = "127.0.0.1:3620"
    )]
    monitoring_address: SocketAddr,
}

fn main() -> Result<()> {
    memory::give_back_freed_memory();
    let mut cli = Cli::parse();
    if let Command::Devnet(args) = &mut cli.command {
        // The devnet's output is its live table: logs of its eight
        // processes' worth of parts go to a file beside its other output.
        let dir = args.prepare_dir()?;
        args.set_dir(dir.clone());
        init_file_logging(&cli.log, &dir.join("devnet.log"))?;
    } else {
        init_logging(&cli.log)?;
    }
    match cli.command {
        Command::Create(CreateCommand::Enr(args)) => create_enr(&args),
        Command::Create(CreateCommand::Dkg(args)) => cluster::create_dkg(&args),
        Command::Create(CreateCommand::Cluster(args)) => cluster::create_cluster(&args),
        Command::Combine(args) => cluster::combine(&args),
        Command::Dkg(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(cluster::dkg(args))
        }
        Command::Enr(args) => print_enr(&args),
        Command::Devnet(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(devnet::devnet(args))
        }
        Command::SlashingProtection(command) => slashing::run(command),
        Command::Simnet(args) => simnet::simnet(args),
        Command::Register(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(register::register(args))
        }
        Command::Exit(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(exit::exit(args))
        }
        Command::Run(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(node::run(args))
        }
        Command::Relay(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(relay(args))
        }
    }
}

fn init_logging(args: &LogArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .with_context(|| format!("invalid --log-level {:?}", args.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

fn init_file_logging(args: &LogArgs, path: &Path) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .with_context(|| format!("invalid --log-level {:?}", args.log_level))?;
    let file = std::fs::File::create(path)
        .with_context(|| format!("creating the log file {}", path.display()))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file));
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(NODE_KEY_FILE)
}

fn enr_of(key: &NodeKey, args: &EnrArgs) -> Enr {
    key.enr(
        1,
        Some(args.p2p_external_ip),
        Some(args.p2p_tcp_port),
        Some(args.p2p_udp_port),
    )
}

#[expect(
    clippy::print_stdout,
    reason = "printing the ENR is the command's output"
)]
fn show(enr: &Enr, verbose: bool) {
    println!("{enr}");
    if verbose {
        println!("peer id:   {}", enr.peer_id());
        println!("node id:   0x{}", hex_lower(&enr.node_id()));
        if let Some(ip) = enr.ip() {
            println!("ip:        {ip}");
        }
        if let Some(tcp) = enr.tcp() {
            println!("tcp:       {tcp}");
        }
        if let Some(udp) = enr.udp() {
            println!("udp/quic:  {udp}");
        }
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn create_enr(args: &EnrArgs) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data directory {}", args.data_dir.display()))?;
    let path = key_path(&args.data_dir);
    let key = NodeKey::create(&path).context("creating the node key")?;
    tracing::info!(path = %path.display(), peer = %key.peer_id(), "node key created; back it up");
    show(&enr_of(&key, args), args.verbose);
    Ok(())
}

fn print_enr(args: &EnrArgs) -> Result<()> {
    let path = key_path(&args.data_dir);
    if !path.exists() {
        bail!(
            "no node key at {}: create one with `phalanx create enr --data-dir {}`",
            path.display(),
            args.data_dir.display()
        );
    }
    let key = NodeKey::load(&path).context("loading the node key")?;
    show(&enr_of(&key, args), args.verbose);
    Ok(())
}

pub(crate) fn socket_multiaddr(address: SocketAddr, quic: bool) -> Multiaddr {
    let ip = match address.ip() {
        IpAddr::V4(ip) => format!("/ip4/{ip}"),
        IpAddr::V6(ip) => format!("/ip6/{ip}"),
    };
    let text = if quic {
        format!("{ip}/udp/{}/quic-v1", address.port())
    } else {
        format!("{ip}/tcp/{}", address.port())
    };
    text.parse()
        .unwrap_or_else(|_| unreachable!("a socket address always makes a multiaddr"))
}

/// The peers a relay serves: the operators of the given locks and the
/// given peers, or anyone if neither is given.
fn relay_access(locks: &[PathBuf], peers: &[phalanx_p2p::PeerId]) -> Result<RelayAccess> {
    if locks.is_empty() && peers.is_empty() {
        return Ok(RelayAccess::Anyone);
    }
    let mut served: std::collections::BTreeSet<phalanx_p2p::PeerId> =
        peers.iter().copied().collect();
    for path in locks {
        let lock = phalanx_dkg::ClusterLock::load(path)
            .with_context(|| format!("reading the cluster lock {}", path.display()))?;
        let enrs = lock
            .definition
            .enrs()
            .with_context(|| format!("the operators of {}", path.display()))?;
        served.extend(enrs.iter().map(Enr::peer_id));
    }
    Ok(RelayAccess::Only(served))
}

async fn relay(args: RelayArgs) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data directory {}", args.data_dir.display()))?;
    let path = key_path(&args.data_dir);
    let key = if path.exists() {
        NodeKey::load(&path).context("loading the relay's key")?
    } else {
        NodeKey::create(&path).context("creating the relay's key")?
    };
    let mut listen = vec![socket_multiaddr(args.p2p_tcp_address, false)];
    if let Some(udp) = args.p2p_udp_address {
        listen.push(socket_multiaddr(udp, true));
    }
    let limits = RelayLimits {
        max_reservations: args.max_reservations,
        max_reservations_per_peer: args.max_reservations_per_peer,
        max_circuits: args.max_circuits,
        max_circuits_per_peer: args.max_circuits_per_peer,
        max_circuit_bytes: args.max_circuit_bytes,
        ..RelayLimits::default()
    };
    let access = relay_access(&args.serve_lock, &args.serve_peer)?;
    match &access {
        RelayAccess::Anyone => {
            tracing::info!("serving any peer (--serve-lock or --serve-peer limit it)")
        }
        RelayAccess::Only(peers) => {
            tracing::info!(peers = peers.len(), "serving only the given peers")
        }
    }
    let mut registry = Registry::default();
    let server = RelayServer::start(
        &key,
        &listen,
        &args.external_address,
        limits,
        access,
        &mut registry,
    )
    .context("starting the relay")?;
    let monitoring = monitoring::serve(args.monitoring_address, registry)
        .await
        .with_context(|| format!("serving metrics on {}", args.monitoring_address))?;
    for address in server.listen_addresses(listen.len()).await {
        tracing::info!(%address, "relay address for operators' --p2p-relays");
    }
    tracing::info!(metrics = %monitoring, "relay running; Ctrl-C to stop");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    server.shutdown();
    Ok(())
}
