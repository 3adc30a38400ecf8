//! What a simulated run is: the cluster, the chain, the network and the
//! faults, from flags or a TOML file. Everything random in a run comes from
//! its seed.

use phalanx_eth::config::PresetBase;
use phalanx_eth::ForkName;
use std::collections::BTreeSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

pub use super::flood::FloodStrategy;
use super::signing::Signatures;

/// One simulated run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A name for reports.
    #[serde(default = "default_name")]
    pub name: String,
    /// Operators (nodes) in the cluster.
    pub operators: usize,
    /// Partial signatures needed to combine (0: the default, ceil(2n/3)).
    #[serde(default)]
    pub threshold: usize,
    /// Distributed validators of the cluster.
    pub validators: usize,
    /// Epochs to simulate.
    pub epochs: u64,
    /// The preset (`minimal`: 8-slot epochs, 32-member sync committees).
    #[serde(default)]
    pub preset: Preset,
    /// The fork in force from genesis.
    #[serde(default = "default_fork")]
    pub fork: ForkName,
    /// Slot duration in milliseconds (virtual time).
    #[serde(default = "default_slot_ms")]
    pub slot_ms: u64,
    /// Validators on the chain besides the cluster's (the chain's size
    /// shapes committees).
    #[serde(default = "default_other_validators")]
    pub other_validators: usize,
    /// The network between the nodes.
    #[serde(default)]
    pub network: NetworkModel,
    /// Faults, by time.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Faults drawn from the seed, besides `faults`.
    #[serde(default)]
    pub random_faults: Option<RandomFaults>,
    /// Whether duties may fail by design in this scenario (too many faults,
    /// a partition): the run then reports failed duties without treating
    /// them as a broken invariant.
    #[serde(default)]
    pub liveness_may_fail: bool,
    /// The seed every random choice of the run comes from.
    #[serde(default)]
    pub seed: u64,
    /// The signature scheme: `bls` (real, the default) or `cheap` (the same
    /// threshold behaviour, for sweeps).
    #[serde(default)]
    pub signatures: Signatures,
    /// How fast the nodes' processors are: the virtual time each event
    /// keeps a node busy (see `sim::cost`) is divided by it. 1.0 (the
    /// default) is the machine of `BENCHMARKS.md`; 2.0 twice as fast.
    #[serde(default = "default_node_speed")]
    pub node_speed: f64,
}

fn default_node_speed() -> f64 {
    1.0
}

fn default_name() -> String {
    "custom".into()
}

/// The consensus preset of a simulated chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// 8-slot epochs, 32-member sync committees.
    #[default]
    Minimal,
    /// 32-slot epochs, 512-member sync committees.
    Mainnet,
}

impl Preset {
    /// Slots per epoch.
    pub fn slots_per_epoch(self) -> u64 {
        match self {
            Preset::Minimal => 8,
            Preset::Mainnet => 32,
        }
    }
}

impl From<Preset> for PresetBase {
    fn from(preset: Preset) -> PresetBase {
        match preset {
            Preset::Minimal => PresetBase::Minimal,
            Preset::Mainnet => PresetBase::Mainnet,
        }
    }
}

fn default_fork() -> ForkName {
    ForkName::Electra
}

fn default_slot_ms() -> u64 {
    6_000
}

fn default_other_validators() -> usize {
    64
}

/// Delays, loss and duplication of every link between two nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkModel {
    /// The shortest one-way delay, in milliseconds.
    pub min_delay_ms: u64,
    /// The longest one-way delay. The spread between the two is the jitter;
    /// messages on a link overtake each other within it (reordering).
    pub max_delay_ms: u64,
    /// How delays fall between the two bounds.
    #[serde(default)]
    pub distribution: DelayDistribution,
    /// The share of messages lost (0 to 1).
    #[serde(default)]
    pub loss: f64,
    /// The share of messages delivered twice (0 to 1).
    #[serde(default)]
    pub duplication: f64,
    /// Links that differ from the above (both directions).
    #[serde(default)]
    pub links: Vec<LinkModel>,
}

/// One link's own delays, loss and duplication.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkModel {
    /// The two nodes it joins.
    pub between: [usize; 2],
    /// The shortest one-way delay, in milliseconds.
    pub min_delay_ms: u64,
    /// The longest one-way delay.
    pub max_delay_ms: u64,
    /// How delays fall between the bounds (the network's if not given).
    #[serde(default)]
    pub distribution: Option<DelayDistribution>,
    /// The share of messages lost (0 to 1).
    #[serde(default)]
    pub loss: f64,
    /// The share of messages delivered twice (0 to 1).
    #[serde(default)]
    pub duplication: f64,
}

/// What one message meets on a link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    /// The delay's bounds, in milliseconds.
    pub delay_ms: (u64, u64),
    /// How delays fall between them.
    pub distribution: DelayDistribution,
    /// The share of messages lost.
    pub loss: f64,
    /// The share of messages delivered twice.
    pub duplication: f64,
}

/// How a link's delays fall between their bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelayDistribution {
    /// Every delay between the bounds equally likely.
    #[default]
    Uniform,
    /// Bell-shaped around the middle of the bounds, with a standard
    /// deviation of a sixth of their spread, cut at the bounds.
    Normal,
    /// Long-tailed, as across the internet: most delays close to the
    /// minimum (a tenth of the spread above it on average) and a few far
    /// out, about one in 200 at the maximum (Pareto, shape 3, cut there).
    Pareto,
}

impl DelayDistribution {
    /// One delay between `low` and `high` (inclusive).
    pub fn sample(self, (low, high): (u64, u64), rng: &mut impl Rng) -> u64 {
        if high <= low {
            return low;
        }
        // The share of the spread above `low`, in 0..=1.
        let share = match self {
            DelayDistribution::Uniform => return rng.gen_range(low..=high),
            DelayDistribution::Normal => {
                // Box–Muller: a standard normal from two uniforms.
                let u1: f64 = 1.0 - rng.gen::<f64>();
                let u2: f64 = rng.gen();
                // libm, not the platform's maths: the same seed must give
                // the same delays on every machine.
                let z = libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(std::f64::consts::TAU * u2);
                0.5 + z / 6.0
            }
            DelayDistribution::Pareto => {
                // Excess over the minimum, Pareto with shape 3 by inverse
                // transform: its mean is 0.5, scaled to a tenth of the spread.
                let u: f64 = 1.0 - rng.gen::<f64>();
                (libm::pow(u, -1.0 / 3.0) - 1.0) * 0.2
            }
        };
        let spread = (high - low) as f64;
        low + (share.clamp(0.0, 1.0) * spread).round() as u64
    }

    /// The name in scenario files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DelayDistribution::Uniform => "uniform",
            DelayDistribution::Normal => "normal",
            DelayDistribution::Pareto => "pareto",
        }
    }
}

impl std::str::FromStr for DelayDistribution {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "uniform" => Ok(DelayDistribution::Uniform),
            "normal" => Ok(DelayDistribution::Normal),
            "pareto" => Ok(DelayDistribution::Pareto),
            other => Err(format!(
                "unknown delay distribution {other}: uniform, normal or pareto"
            )),
        }
    }
}

impl NetworkModel {
    /// Delays, loss and duplication in a few words.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "delays {}-{} ms {}",
            self.min_delay_ms,
            self.max_delay_ms,
            self.distribution.name()
        );
        if self.loss > 0.0 {
            text += &format!(", {:.2}% lost", self.loss * 100.0);
        }
        if self.duplication > 0.0 {
            text += &format!(", {:.2}% duplicated", self.duplication * 100.0);
        }
        if !self.links.is_empty() {
            text += &format!(", {} link(s) of their own", self.links.len());
        }
        text
    }

    /// What a message from `from` to `to` meets.
    pub fn link(&self, from: usize, to: usize) -> Link {
        match self
            .links
            .iter()
            .find(|l| l.between == [from, to] || l.between == [to, from])
        {
            Some(l) => Link {
                delay_ms: (l.min_delay_ms, l.max_delay_ms),
                distribution: l.distribution.unwrap_or(self.distribution),
                loss: l.loss,
                duplication: l.duplication,
            },
            None => Link {
                delay_ms: (self.min_delay_ms, self.max_delay_ms),
                distribution: self.distribution,
                loss: self.loss,
                duplication: self.duplication,
            },
        }
    }
}

impl Default for NetworkModel {
    fn default() -> Self {
        NetworkModel {
            min_delay_ms: 5,
            max_delay_ms: 40,
            distribution: DelayDistribution::Uniform,
            loss: 0.0,
            duplication: 0.0,
            links: Vec::new(),
        }
    }
}

/// Something that goes wrong, from one slot to another (virtual time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// A node's process stops at `from_slot` and, with `until_slot`,
    /// restarts then, with its disk (slashing database) or without it.
    Crash {
        /// The operator (0-based).
        node: usize,
        /// The slot it stops at (its start).
        from_slot: u64,
        /// The slot it restarts at, if it does.
        #[serde(default)]
        until_slot: Option<u64>,
        /// Whether it restarts with an empty disk.
        #[serde(default)]
        lose_disk: bool,
        /// Milliseconds into `from_slot` it stops at.
        #[serde(default)]
        offset_ms: u64,
        /// Milliseconds into `until_slot` it restarts at.
        #[serde(default)]
        restart_offset_ms: u64,
    },
    /// The nodes split into groups that cannot reach each other.
    Partition {
        /// The groups (nodes not named form one more group).
        groups: Vec<Vec<usize>>,
        /// The slot it starts at.
        from_slot: u64,
        /// The slot it heals at.
        until_slot: u64,
    },
    /// A node's beacon node answers slowly.
    SlowBeaconNode {
        /// The operator.
        node: usize,
        /// Added to every answer, in milliseconds.
        delay_ms: u64,
        /// From this slot.
        from_slot: u64,
        /// Until this slot.
        until_slot: u64,
    },
    /// A node's beacon node is down (every call fails).
    BeaconNodeDown {
        /// The operator.
        node: usize,
        /// From this slot.
        from_slot: u64,
        /// Until this slot.
        until_slot: u64,
    },
    /// A node's beacon node follows another head: the attestation data of
    /// `slot` it gives from `from_ms` into the slot on votes for another
    /// block (as after a reorg).
    DivergingBeaconNode {
        /// The operator.
        node: usize,
        /// The slot whose data diverges.
        slot: u64,
        /// From this many milliseconds into the slot.
        from_ms: u64,
    },
    /// A node's validator client asks for its attestation data a second
    /// time, later in the slot, and signs whatever it gets.
    DoubleSubmittingValidatorClient {
        /// The operator.
        node: usize,
    },
    /// A node's validator client acts late: every request it makes comes
    /// `delay_ms` later than it would.
    SlowValidatorClient {
        /// The operator.
        node: usize,
        /// Added to the client's every move, in milliseconds.
        delay_ms: u64,
        /// From this slot.
        from_slot: u64,
        /// Until this slot.
        until_slot: u64,
    },
    /// A node's validator client sends nothing.
    ValidatorClientOffline {
        /// The operator.
        node: usize,
        /// From this slot.
        from_slot: u64,
        /// Until this slot.
        until_slot: u64,
    },
    /// A node's validator client sends partials signed over the wrong
    /// message, which its node must refuse.
    ByzantineValidatorClient {
        /// The operator.
        node: usize,
    },
    /// A node sends its peers partial signatures that do not verify, and
    /// replays the consensus messages it receives to everyone.
    ByzantineNode {
        /// The operator.
        node: usize,
    },
    /// A byzantine operator (valid node key, valid share, any bytes at
    /// line rate) floods its peers: from `from_slot` until `until_slot`,
    /// `per_slot` times per slot (evenly spread), it runs each of its
    /// strategies once against every peer. What it sent is counted in the
    /// report, per strategy.
    ByzantineFlood {
        /// The operator.
        node: usize,
        /// What it does; every strategy if empty.
        #[serde(default)]
        strategies: Vec<FloodStrategy>,
        /// Bursts per slot.
        #[serde(default = "default_flood_per_slot")]
        per_slot: u64,
        /// Items per burst of one strategy: partials in a batch, consensus
        /// messages of a kind.
        #[serde(default = "default_flood_batch")]
        batch: usize,
        /// The size of its oversized proposals, in bytes.
        #[serde(default = "default_proposal_bytes")]
        proposal_bytes: usize,
        /// From this slot.
        #[serde(default)]
        from_slot: u64,
        /// Until this slot (to the end if not given).
        #[serde(default)]
        until_slot: Option<u64>,
    },
    /// A node's clock runs ahead (positive) or behind.
    ClockSkew {
        /// The operator.
        node: usize,
        /// Milliseconds added to its view of the time.
        skew_ms: i64,
    },
}

fn default_flood_per_slot() -> u64 {
    12
}

fn default_flood_batch() -> usize {
    256
}

fn default_proposal_bytes() -> usize {
    1 << 20
}

/// Faults drawn from the seed: each hits one of at most `operators`
/// operators (chosen apart in the leaders' rotation), at a random time for a
/// random while — crashes with or without the disk, slow, failing or
/// diverging beacon nodes, offline, byzantine or double-submitting
/// validator clients, isolation from the peers, clock skew, byzantine nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomFaults {
    /// How many faults to draw.
    #[serde(default = "default_random_count")]
    pub count: usize,
    /// How many operators they may hit: at most the tolerance f keeps every
    /// duty live (the default).
    #[serde(default)]
    pub operators: Option<usize>,
}

fn default_random_count() -> usize {
    4
}

impl Default for RandomFaults {
    fn default() -> Self {
        RandomFaults {
            count: default_random_count(),
            operators: None,
        }
    }
}

/// A scenario that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A field is out of range.
    #[error("invalid scenario: {0}")]
    Invalid(String),
    /// The TOML does not parse.
    #[error("scenario file: {0}")]
    Toml(String),
}

impl Scenario {
    /// A fault-free scenario of `operators`, `validators` and `epochs`.
    pub fn new(operators: usize, validators: usize, epochs: u64) -> Scenario {
        Scenario {
            name: default_name(),
            operators,
            threshold: 0,
            validators,
            epochs,
            preset: Preset::Minimal,
            fork: default_fork(),
            slot_ms: default_slot_ms(),
            other_validators: default_other_validators(),
            network: NetworkModel::default(),
            faults: Vec::new(),
            liveness_may_fail: false,
            seed: 0,
            signatures: Signatures::Bls,
            random_faults: None,
            node_speed: default_node_speed(),
        }
    }

    /// Reads a scenario from TOML.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario =
            toml::from_str(text).map_err(|e| ScenarioError::Toml(e.to_string()))?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// The threshold in force: the given one, or ceil(2n/3).
    pub fn threshold(&self) -> usize {
        if self.threshold == 0 {
            (2 * self.operators).div_ceil(3)
        } else {
            self.threshold
        }
    }

    /// Operators that may fail while the cluster stays live and safe:
    /// min(n − t, n − quorum) with quorum ceil(2n/3).
    pub fn tolerance(&self) -> usize {
        let quorum = (2 * self.operators).div_ceil(3);
        (self.operators - self.threshold()).min(self.operators - quorum)
    }

    /// The cluster, chain and timing in one line, for summaries and reports.
    pub fn describe(&self) -> String {
        format!(
            "{} operators (threshold {}, tolerance {}), {} validators, {} epochs, {:?} preset, {}, {} ms slots; {}",
            self.operators,
            self.threshold(),
            self.tolerance(),
            self.validators,
            self.epochs,
            self.preset,
            self.fork,
            self.slot_ms,
            self.network.describe()
        )
    }

    /// The scenario with its random faults drawn from its seed and added to
    /// its faults: what a run actually simulates.
    pub fn with_drawn_faults(&self) -> Scenario {
        let mut scenario = self.clone();
        let Some(random) = scenario.random_faults.take() else {
            return scenario;
        };
        // A stream of its own, so that drawing faults does not shift the
        // run's other random choices.
        let mut rng = ChaCha20Rng::seed_from_u64(self.seed ^ 0x6661_756c_7473);
        let n = self.operators;
        let hit = random.operators.unwrap_or(self.tolerance()).min(n);
        if hit == 0 {
            return scenario;
        }
        let first = rng.gen_range(0..n);
        // Three apart in the rotation: no instance meets two faulty leaders
        // in a row (n ≥ 3f + 1 leaves room).
        let nodes: Vec<usize> = (0..hit).map(|k| (first + 3 * k) % n).collect();
        let slots = self.epochs * self.preset.slots_per_epoch();
        let last = slots.saturating_sub(1).max(2);
        for _ in 0..random.count {
            let node = nodes[rng.gen_range(0..nodes.len())];
            let from_slot = rng.gen_range(1..last);
            let until_slot = (from_slot + rng.gen_range(1..=4)).min(last);
            let offset = |rng: &mut ChaCha20Rng| rng.gen_range(0..self.slot_ms);
            let fault = match rng.gen_range(0..12) {
                0 => Fault::Crash {
                    node,
                    from_slot,
                    until_slot: rng.gen_bool(0.7).then_some(until_slot),
                    lose_disk: rng.gen_bool(0.5),
                    offset_ms: offset(&mut rng),
                    restart_offset_ms: offset(&mut rng),
                },
                1 => Fault::SlowBeaconNode {
                    node,
                    delay_ms: rng.gen_range(100..=1_000),
                    from_slot,
                    until_slot,
                },
                2 => Fault::BeaconNodeDown {
                    node,
                    from_slot,
                    until_slot,
                },
                3 => Fault::DivergingBeaconNode {
                    node,
                    slot: from_slot,
                    from_ms: offset(&mut rng),
                },
                4 => Fault::ValidatorClientOffline {
                    node,
                    from_slot,
                    until_slot,
                },
                5 => Fault::ByzantineValidatorClient { node },
                6 => Fault::DoubleSubmittingValidatorClient { node },
                7 => Fault::ByzantineNode { node },
                8 => Fault::ClockSkew {
                    node,
                    skew_ms: rng.gen_range(-300..=300),
                },
                9 => Fault::SlowValidatorClient {
                    node,
                    delay_ms: rng.gen_range(100..=1_500),
                    from_slot,
                    until_slot,
                },
                _ => Fault::Partition {
                    groups: vec![vec![node]],
                    from_slot,
                    until_slot,
                },
            };
            scenario.faults.push(fault);
        }
        scenario
    }

    /// The operators a fault makes unavailable or untrustworthy at `slot`.
    fn faulty_at(&self, slot: u64) -> BTreeSet<usize> {
        let mut faulty = BTreeSet::new();
        let within = |from: u64, until: u64| (from..until).contains(&slot);
        for fault in &self.faults {
            match fault {
                Fault::Crash {
                    node,
                    from_slot,
                    until_slot,
                    ..
                } => {
                    // Down through the slot it restarts in.
                    if slot >= *from_slot && until_slot.is_none_or(|until| slot <= until) {
                        faulty.insert(*node);
                    }
                }
                Fault::SlowBeaconNode {
                    node,
                    from_slot,
                    until_slot,
                    ..
                }
                | Fault::BeaconNodeDown {
                    node,
                    from_slot,
                    until_slot,
                }
                | Fault::ValidatorClientOffline {
                    node,
                    from_slot,
                    until_slot,
                }
                | Fault::SlowValidatorClient {
                    node,
                    from_slot,
                    until_slot,
                    ..
                } => {
                    if within(*from_slot, *until_slot) {
                        faulty.insert(*node);
                    }
                }
                Fault::DivergingBeaconNode { node, slot: at, .. } => {
                    if *at == slot {
                        faulty.insert(*node);
                    }
                }
                Fault::ByzantineValidatorClient { node }
                | Fault::DoubleSubmittingValidatorClient { node }
                | Fault::ByzantineNode { node }
                | Fault::ClockSkew { node, .. } => {
                    faulty.insert(*node);
                }
                Fault::ByzantineFlood {
                    node,
                    from_slot,
                    until_slot,
                    ..
                } => {
                    if slot >= *from_slot && until_slot.is_none_or(|until| slot < until) {
                        faulty.insert(*node);
                    }
                }
                Fault::Partition {
                    groups,
                    from_slot,
                    until_slot,
                } => {
                    if within(*from_slot, *until_slot) {
                        // Everyone outside the largest side is cut off.
                        let mut sides: Vec<BTreeSet<usize>> =
                            groups.iter().map(|g| g.iter().copied().collect()).collect();
                        let named: BTreeSet<usize> = groups.iter().flatten().copied().collect();
                        sides.push((0..self.operators).filter(|n| !named.contains(n)).collect());
                        let largest = sides.iter().map(BTreeSet::len).max().unwrap_or(0);
                        let kept = sides
                            .iter()
                            .find(|s| s.len() == largest)
                            .cloned()
                            .unwrap_or_default();
                        faulty.extend((0..self.operators).filter(|n| !kept.contains(n)));
                    }
                }
            }
        }
        faulty
    }

    /// Whether the faults at `slot` exceed the tolerance: more than f
    /// operators down, cut off or misbehaving. Duties of such slots may fail
    /// as theory says; the report counts them without calling it a broken
    /// invariant.
    pub fn beyond_tolerance(&self, slot: u64) -> bool {
        self.faulty_at(slot).len() > self.tolerance()
    }

    /// Checks the fields against each other.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |why: String| Err(ScenarioError::Invalid(why));
        if !(1..=64).contains(&self.operators) {
            return bad(format!(
                "{} operators; 1 to 64 are simulated",
                self.operators
            ));
        }
        let t = self.threshold();
        if t == 0 || t > self.operators {
            return bad(format!("threshold {t} for {} operators", self.operators));
        }
        if self.validators == 0 || self.epochs == 0 {
            return bad("at least one validator and one epoch".into());
        }
        if !(self.node_speed.is_finite() && self.node_speed > 0.0) {
            return bad(format!(
                "node speed {}: a positive factor (1.0: the benchmarked machine)",
                self.node_speed
            ));
        }
        if self.slot_ms < 300 {
            return bad(format!("{} ms slots are too short", self.slot_ms));
        }
        if self.fork < ForkName::Altair {
            return bad(format!(
                "fork {}: the simulated chain starts at Altair or later",
                self.fork
            ));
        }
        let network = &self.network;
        if network.min_delay_ms > network.max_delay_ms
            || !(0.0..=1.0).contains(&network.loss)
            || !(0.0..=1.0).contains(&network.duplication)
        {
            return bad("network: min ≤ max delay, loss and duplication in 0..1".into());
        }
        for link in &network.links {
            if link.between.iter().any(|&n| n >= self.operators)
                || link.between[0] == link.between[1]
            {
                return bad(format!(
                    "network: a link between {:?}; nodes are 0 to {}, two different ones",
                    link.between,
                    self.operators - 1
                ));
            }
            if link.min_delay_ms > link.max_delay_ms
                || !(0.0..=1.0).contains(&link.loss)
                || !(0.0..=1.0).contains(&link.duplication)
            {
                return bad(format!(
                    "network: the link between {:?} needs min ≤ max delay, loss and duplication in 0..1",
                    link.between
                ));
            }
        }
        if let Some(random) = &self.random_faults {
            if random.operators.is_some_and(|k| k > self.operators) {
                return bad(format!(
                    "random faults on {} of {} operators",
                    random.operators.unwrap_or(0),
                    self.operators
                ));
            }
        }
        for fault in &self.faults {
            let node = match fault {
                Fault::Crash { node, .. }
                | Fault::SlowBeaconNode { node, .. }
                | Fault::BeaconNodeDown { node, .. }
                | Fault::ValidatorClientOffline { node, .. }
                | Fault::SlowValidatorClient { node, .. }
                | Fault::ByzantineValidatorClient { node }
                | Fault::DivergingBeaconNode { node, .. }
                | Fault::DoubleSubmittingValidatorClient { node }
                | Fault::ByzantineNode { node }
                | Fault::ByzantineFlood { node, .. }
                | Fault::ClockSkew { node, .. } => *node,
                Fault::Partition { groups, .. } => {
                    match groups.iter().flatten().find(|n| **n >= self.operators) {
                        Some(n) => *n,
                        None => continue,
                    }
                }
            };
            if node >= self.operators {
                return bad(format!(
                    "a fault names node {node}; nodes are 0 to {}",
                    self.operators - 1
                ));
            }
            if let Fault::ByzantineFlood {
                per_slot,
                batch,
                proposal_bytes,
                ..
            } = fault
            {
                // A batch is one peer message: no more than the node takes
                // in one (phalanx_node::parsigex::MAX_PARTIALS_PER_BATCH).
                if !(1..=self.slot_ms).contains(per_slot)
                    || !(1..=phalanx_node::parsigex::MAX_PARTIALS_PER_BATCH).contains(batch)
                    || *proposal_bytes == 0
                {
                    return bad(format!(
                        "a flood of 1 to {} bursts per slot, batches of 1 to {} and proposals of at least a byte",
                        self.slot_ms,
                        phalanx_node::parsigex::MAX_PARTIALS_PER_BATCH
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 20,000 delays between 100 and 1,100 ms: the share below 200 ms, the
    /// mean, and the largest.
    fn shape(distribution: DelayDistribution) -> (f64, f64, u64) {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let delays: Vec<u64> = (0..20_000)
            .map(|_| distribution.sample((100, 1_100), &mut rng))
            .collect();
        assert!(delays.iter().all(|d| (100..=1_100).contains(d)));
        let low = delays.iter().filter(|&&d| d < 200).count() as f64 / delays.len() as f64;
        let mean = delays.iter().sum::<u64>() as f64 / delays.len() as f64;
        (low, mean, *delays.iter().max().expect("delays"))
    }

    #[test]
    fn delays_fall_as_their_distribution_says() {
        let (low, mean, max) = shape(DelayDistribution::Uniform);
        assert!((0.09..0.11).contains(&low), "uniform: {low} below 200 ms");
        assert!((590.0..610.0).contains(&mean), "uniform: mean {mean}");
        assert!(max > 1_090);

        // Bell-shaped around 600: almost nothing within 100 ms of the bounds.
        let (low, mean, _) = shape(DelayDistribution::Normal);
        assert!(low < 0.015, "normal: {low} below 200 ms");
        assert!((590.0..610.0).contains(&mean), "normal: mean {mean}");

        // Long-tailed: most close to the minimum, a few at the maximum.
        let (low, mean, max) = shape(DelayDistribution::Pareto);
        assert!(low > 0.6, "pareto: {low} below 200 ms");
        assert!((180.0..210.0).contains(&mean), "pareto: mean {mean}");
        assert_eq!(max, 1_100);

        // Equal bounds leave nothing to draw.
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        assert_eq!(DelayDistribution::Pareto.sample((40, 40), &mut rng), 40);
    }

    #[test]
    fn a_link_takes_the_network_distribution_unless_it_names_its_own() {
        let mut network = NetworkModel {
            distribution: DelayDistribution::Normal,
            ..NetworkModel::default()
        };
        network.links.push(LinkModel {
            between: [1, 2],
            min_delay_ms: 100,
            max_delay_ms: 200,
            distribution: Some(DelayDistribution::Pareto),
            loss: 0.5,
            duplication: 0.0,
        });
        network.links.push(LinkModel {
            between: [0, 3],
            min_delay_ms: 1,
            max_delay_ms: 2,
            distribution: None,
            loss: 0.0,
            duplication: 0.0,
        });
        let far = network.link(2, 1);
        assert_eq!(far.delay_ms, (100, 200));
        assert_eq!(far.distribution, DelayDistribution::Pareto);
        assert_eq!(far.loss, 0.5);
        assert_eq!(network.link(3, 0).distribution, DelayDistribution::Normal);
        assert_eq!(network.link(0, 1).delay_ms, (5, 40));

        let text = "name = \"x\"\noperators = 4\nvalidators = 1\nepochs = 1\n\
                    [network]\nmin_delay_ms = 5\nmax_delay_ms = 9\ndistribution = \"pareto\"\n";
        let parsed = Scenario::from_toml(text).expect("parses");
        assert_eq!(parsed.network.distribution, DelayDistribution::Pareto);
        let wrong = text.replace("pareto", "gaussian");
        assert!(Scenario::from_toml(&wrong).is_err());
        assert_eq!("normal".parse(), Ok(DelayDistribution::Normal));
        assert!("gaussian".parse::<DelayDistribution>().is_err());
    }
}
