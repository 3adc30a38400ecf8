//! An operator of a local cluster: its folder, its node key and the
//! loopback addresses its node listens on.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use phalanx_p2p::{Enr, Multiaddr, NodeKey, NODE_KEY_FILE};

use super::error::ClusterError;
use super::ports;

/// An operator of a local cluster.
#[derive(Clone, Debug)]
pub struct Operator {
    /// Its index in the cluster.
    pub index: usize,
    /// Its folder (`phalanx run --data-dir`).
    pub dir: PathBuf,
    /// Its node key, kept in the folder.
    pub node_key: NodeKey,
    /// The TCP port its p2p listens on.
    pub p2p: u16,
    /// Where its validator API listens.
    pub validator_api: SocketAddr,
    /// Where its monitoring server (metrics, readiness) listens.
    pub monitoring: SocketAddr,
}

impl Operator {
    /// A new operator in `dir` (created if absent), with the node key the
    /// folder holds or a new one kept there, and free ports.
    pub fn create(index: usize, dir: PathBuf) -> Result<Operator, ClusterError> {
        std::fs::create_dir_all(&dir)
            .map_err(ClusterError::io(format!("creating {}", dir.display())))?;
        let key_path = dir.join(NODE_KEY_FILE);
        let node_key = if key_path.exists() {
            NodeKey::load(&key_path)
        } else {
            NodeKey::create(&key_path)
        }
        .map_err(|source| ClusterError::NodeKey {
            operator: index,
            source,
        })?;
        Operator::with_key(index, dir, node_key, ports::tcp().map_err(no_port)?)
    }

    /// `count` new operators in folders of `root` named by `folder`.
    pub fn create_all(
        root: &Path,
        count: usize,
        folder: impl Fn(usize) -> String,
    ) -> Result<Vec<Operator>, ClusterError> {
        (0..count)
            .map(|i| Operator::create(i, root.join(folder(i))))
            .collect()
    }

    /// An operator whose folder another tool wrote (`phalanx create
    /// cluster`), its p2p listening on the port that tool chose.
    pub fn open(index: usize, dir: PathBuf, p2p: u16) -> Result<Operator, ClusterError> {
        let node_key =
            NodeKey::load(&dir.join(NODE_KEY_FILE)).map_err(|source| ClusterError::NodeKey {
                operator: index,
                source,
            })?;
        Operator::with_key(index, dir, node_key, p2p)
    }

    fn with_key(
        index: usize,
        dir: PathBuf,
        node_key: NodeKey,
        p2p: u16,
    ) -> Result<Operator, ClusterError> {
        Ok(Operator {
            index,
            dir,
            node_key,
            p2p,
            validator_api: ports::loopback_tcp().map_err(no_port)?,
            monitoring: ports::loopback_tcp().map_err(no_port)?,
        })
    }

    /// Its ENR: 127.0.0.1, its p2p port, and a UDP port if given.
    pub fn enr(&self, udp: Option<u16>) -> Enr {
        self.node_key
            .enr(1, Some(Ipv4Addr::LOCALHOST), Some(self.p2p), udp)
    }

    /// Where its p2p listens: `/ip4/127.0.0.1/tcp/<p2p>`.
    pub fn p2p_listen(&self) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{}", self.p2p)
            .parse()
            .unwrap_or_else(|_| unreachable!("an IPv4 address and a port make a multiaddr"))
    }

    /// `phalanx run` of this operator (the executable `exe`) against the
    /// beacon nodes `beacon_nodes` (comma-separated URLs), with JSON logs
    /// or text, and with or without the builder API.
    pub fn run_command(
        &self,
        exe: &Path,
        beacon_nodes: &str,
        json_logs: bool,
        builder_api: bool,
    ) -> Command {
        let mut command = Command::new(exe);
        if json_logs {
            command.args(["--log-format", "json"]);
        }
        command.arg("run").arg("--data-dir").arg(&self.dir).args([
            "--beacon-node-endpoints",
            beacon_nodes,
            "--validator-api-address",
            &self.validator_api.to_string(),
            "--monitoring-address",
            &self.monitoring.to_string(),
            "--p2p-tcp-address",
            &format!("127.0.0.1:{}", self.p2p),
        ]);
        if builder_api {
            command.arg("--builder-api");
        }
        command
    }
}

fn no_port(source: std::io::Error) -> ClusterError {
    ClusterError::Io {
        what: "finding a free port".into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operator_keeps_its_key_and_gets_its_own_ports() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Operator::create(0, dir.path().join("op")).expect("created");
        let again = Operator::create(0, dir.path().join("op")).expect("reopened");
        assert_eq!(first.node_key.public_key(), again.node_key.public_key());
        let ports = [
            first.p2p,
            first.validator_api.port(),
            first.monitoring.port(),
            again.p2p,
            again.validator_api.port(),
            again.monitoring.port(),
        ];
        let distinct: std::collections::BTreeSet<u16> = ports.into_iter().collect();
        assert_eq!(distinct.len(), ports.len());
        assert_eq!(
            first.p2p_listen().to_string(),
            format!("/ip4/127.0.0.1/tcp/{}", first.p2p)
        );
        let opened = Operator::open(0, dir.path().join("op"), 9000).expect("opened");
        assert_eq!(opened.node_key.public_key(), first.node_key.public_key());
        let args: Vec<String> = opened
            .run_command(Path::new("phalanx"), "http://b", true, true)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(&args[..3], ["--log-format", "json", "run"]);
        assert!(args.contains(&"127.0.0.1:9000".to_string()));
        assert_eq!(args.last().map(String::as_str), Some("--builder-api"));
    }
}
