//! What the node benches share: the cluster's definition, the clock, and
//! a process's CPU time and memory from /proc.

use std::process::Command;

use anyhow::Result;
use phalanx_dkg::definition::{BuilderSpec, NetworkSpec, ValidatorSpec};
use phalanx_dkg::ClusterDefinition;
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::ExecutionAddress;
use phalanx_sim::cluster::Operator;
use phalanx_sim::vc::{FEE_RECIPIENT, GAS_LIMIT};

/// The definition `name` of a cluster of `validators` for `operators`
/// with `threshold`, every validator paying to the mocks' fee recipient.
pub(crate) fn definition(
    name: &str,
    validators: usize,
    threshold: u32,
    network: &NetworkConfig,
    operators: &[Operator],
) -> Result<ClusterDefinition> {
    let enrs: Vec<_> = operators.iter().map(|o| o.enr(None)).collect();
    let definition = ClusterDefinition::new(
        name,
        NetworkSpec::of(network),
        threshold,
        &enrs,
        (0..validators)
            .map(|_| ValidatorSpec::standard(ExecutionAddress::repeat_byte(0x10), FEE_RECIPIENT))
            .collect(),
        BuilderSpec {
            gas_limit: GAS_LIMIT,
            timestamp: 1_700_000_000,
        },
        "2026-11-23T00:00:00Z",
    );
    definition.validate()?;
    Ok(definition)
}

#[expect(clippy::disallowed_methods, reason = "a benchmark reads the clock")]
pub(crate) fn instant() -> std::time::Instant {
    std::time::Instant::now()
}

/// Clock ticks per second of /proc/<pid>/stat.
pub(crate) fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// utime + stime of a process (all its threads), in clock ticks.
pub(crate) fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Busy time of the whole machine (all cores, every process), in clock
/// ticks: what else ran beside the cluster shows up here.
pub(crate) fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let fields: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user).
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    total.saturating_sub(idle)
}

/// A `Vm…:` line of /proc/<pid>/status, in KiB.
pub(crate) fn status_kib(pid: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
