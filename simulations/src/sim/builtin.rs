//! The built-in scenarios: the faults a distributed validator must survive
//! (or, beyond its tolerance, lose liveness over without ever breaking
//! safety). The test suite runs each; `phalanx simnet --scenario
//! builtin:NAME` runs one, with any flag overriding its fields.

use super::scenario::{DelayDistribution, Fault, LinkModel, Scenario};
use super::signing::Signatures;

/// A built-in scenario: its name and what it shows.
pub struct Builtin {
    /// The name after `builtin:`.
    pub name: &'static str,
    /// What it shows, in a sentence.
    pub about: &'static str,
    build: fn() -> Scenario,
}

impl Builtin {
    /// The scenario, seed 0.
    pub fn scenario(&self) -> Scenario {
        let mut scenario = (self.build)();
        scenario.name = self.name.to_string();
        scenario
    }
}

/// Every built-in scenario.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "healthy",
        about: "four operators, no fault: every duty on time, every decision in round 1",
        build: healthy,
    },
    Builtin {
        name: "f-crashed-4",
        about: "n = 4, f = 1 operator crashed for good: every duty on time",
        build: || f_crashed(4),
    },
    Builtin {
        name: "f-crashed-7",
        about: "n = 7, f = 2 operators crashed (apart in the leader rotation): every duty on time",
        build: || f_crashed(7),
    },
    Builtin {
        name: "f-crashed-10",
        about: "n = 10, f = 3 operators crashed (apart in the leader rotation): every duty on time",
        build: || f_crashed(10),
    },
    Builtin {
        name: "f-consecutive-leaders-crashed-7",
        about: "n = 7, f = 2 consecutive leaders crashed: the nodes notice and cut their rounds short, so every duty stays on time",
        build: consecutive_leaders_crashed,
    },
    Builtin {
        name: "f-plus-one-crashed",
        about: "n = 4, 2 operators crashed at slot 2: no quorum, so duties fail as theory says, and no invariant breaks",
        build: f_plus_one_crashed,
    },
    Builtin {
        name: "byzantine-operator",
        about: "one operator sends invalid partials, equivocates, proposes wrong data and replays messages: it is blamed and nothing else changes",
        build: byzantine_operator,
    },
    Builtin {
        name: "byzantine-flood",
        about: "n = 4, one operator floods the others with every strategy of a byzantine flood (invalid and needless partials, oversized proposals, future instances, round changes, another cluster's messages): every duty on time",
        build: byzantine_flood,
    },
    Builtin {
        name: "partition-heals",
        about: "the cluster splits 2 | 2 for four slots and heals: the split's duties fail, every other duty succeeds",
        build: partition_heals,
    },
    Builtin {
        name: "slow-beacon-node",
        about: "one operator's beacon node answers 800 ms late and another operator restarts without its disk: every duty on time",
        build: slow_beacon_node,
    },
    Builtin {
        name: "wide-area",
        about: "seven operators on two continents at mainnet timing: long-tailed delays within one, 80-300 ms across: every duty on time",
        build: wide_area,
    },
    Builtin {
        name: "random-faults",
        about: "faults drawn from the seed, on at most f operators: every duty on time",
        build: random_faults,
    },
];

/// The built-in scenario called `name`.
pub fn builtin(name: &str) -> Option<Scenario> {
    BUILTINS
        .iter()
        .find(|b| b.name == name)
        .map(Builtin::scenario)
}

fn base(operators: usize) -> Scenario {
    let mut scenario = Scenario::new(operators, 8, 2);
    // Half the chain is the cluster's, so that it proposes now and then.
    scenario.other_validators = 8;
    scenario
}

/// A crash at `from_slot`, for good.
pub fn crash(node: usize, from_slot: u64) -> Fault {
    Fault::Crash {
        node,
        from_slot,
        until_slot: None,
        lose_disk: false,
        offset_ms: 0,
        restart_offset_ms: 0,
    }
}

fn healthy() -> Scenario {
    base(4)
}

fn f_crashed(n: usize) -> Scenario {
    let mut scenario = base(n);
    scenario.validators = 4;
    scenario.other_validators = 4;
    scenario.epochs = 1;
    // Apart in the rotation: an instance meets at most one silent leader.
    scenario.faults = (0..scenario.tolerance())
        .map(|k| crash(1 + 3 * k, 1))
        .collect();
    scenario
}

fn consecutive_leaders_crashed() -> Scenario {
    let mut scenario = f_crashed(7);
    let (n, f) = (scenario.operators, scenario.tolerance());
    scenario.faults = (n - f..n).map(|node| crash(node, 1)).collect();
    scenario
}

fn f_plus_one_crashed() -> Scenario {
    let mut scenario = base(4);
    scenario.validators = 4;
    scenario.other_validators = 4;
    scenario.epochs = 1;
    scenario.faults = vec![crash(2, 2), crash(3, 2)];
    scenario.liveness_may_fail = true;
    scenario
}

fn byzantine_operator() -> Scenario {
    let mut scenario = base(4);
    scenario.epochs = 1;
    scenario.faults = vec![Fault::ByzantineNode { node: 1 }];
    scenario
}

/// Operator 1 runs every flood strategy twelve times a slot, with batches
/// of 256 and proposals of 512 KiB. On the cheap signatures: the node's
/// processors are charged as for BLS (`sim::cost`) either way, and real
/// BLS would spend minutes of this machine's time on the flood.
fn byzantine_flood() -> Scenario {
    let mut scenario = base(4);
    scenario.epochs = 1;
    scenario.signatures = Signatures::Cheap;
    scenario.faults = vec![Fault::ByzantineFlood {
        node: 1,
        strategies: Vec::new(),
        per_slot: 12,
        batch: 256,
        proposal_bytes: 512 << 10,
        from_slot: 0,
        until_slot: None,
    }];
    scenario
}

fn partition_heals() -> Scenario {
    let mut scenario = base(4);
    scenario.faults = vec![Fault::Partition {
        groups: vec![vec![0, 1], vec![2, 3]],
        from_slot: 4,
        until_slot: 8,
    }];
    scenario
}

fn slow_beacon_node() -> Scenario {
    let mut scenario = base(4);
    scenario.faults = vec![
        Fault::SlowBeaconNode {
            node: 0,
            delay_ms: 800,
            from_slot: 0,
            until_slot: 16,
        },
        Fault::Crash {
            node: 3,
            from_slot: 3,
            until_slot: Some(6),
            lose_disk: true,
            offset_ms: 0,
            restart_offset_ms: 0,
        },
    ];
    scenario
}

fn wide_area() -> Scenario {
    let mut scenario = base(7);
    scenario.epochs = 1;
    scenario.slot_ms = 12_000;
    // Within a continent: mostly 10-50 ms, now and then up to 400 ms.
    scenario.network.min_delay_ms = 10;
    scenario.network.max_delay_ms = 400;
    scenario.network.distribution = DelayDistribution::Pareto;
    // Operators 5 and 6 sit on another continent: every link to them is
    // slower, its delays spread around 190 ms.
    scenario.network.links = (0..5)
        .flat_map(|near| [5, 6].map(|far| (near, far)))
        .map(|(near, far)| LinkModel {
            between: [near, far],
            min_delay_ms: 80,
            max_delay_ms: 300,
            distribution: Some(DelayDistribution::Normal),
            loss: 0.0,
            duplication: 0.0,
        })
        .collect();
    scenario
}

fn random_faults() -> Scenario {
    let mut scenario = base(4);
    scenario.random_faults = Some(Default::default());
    scenario
}
