//! `phalanx simnet`: whole clusters in virtual time on the deterministic
//! simulator, one seed or a sweep of many over the machine's cores, with a
//! summary table and the command that replays any failing seed.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use clap::Args;
use phalanx_eth::ForkName;
use phalanx_sim::sim::{
    builtin, report, run, sweep_hash, DelayDistribution, Fault, FloodStrategy, Preset,
    RandomFaults, RunReport, Scenario, Signatures, BUILTINS,
};

#[derive(Args)]
pub(crate) struct SimnetArgs {
    /// A scenario file (TOML, the fields of a scenario), or
    /// `builtin:NAME` for a built-in one (see --list); the flags below
    /// override what it sets.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// List the built-in scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Operators in the cluster.
    #[arg(long)]
    operators: Option<usize>,
    /// Partial signatures needed (default ceil(2n/3)).
    #[arg(long)]
    threshold: Option<usize>,
    /// Distributed validators.
    #[arg(long)]
    validators: Option<usize>,
    /// Epochs to simulate.
    #[arg(long)]
    epochs: Option<u64>,
    /// The preset: minimal (8-slot epochs) or mainnet (32).
    #[arg(long)]
    preset: Option<String>,
    /// The fork from genesis (altair, bellatrix, capella, deneb, electra,
    /// fulu).
    #[arg(long)]
    fork: Option<ForkName>,
    /// Slot duration in (virtual) milliseconds.
    #[arg(long)]
    slot_ms: Option<u64>,
    /// Crash this many operators (the last ones) at slot 1 for good.
    #[arg(long)]
    crashed: Option<usize>,
    /// Every link's one-way delay range, `MIN-MAX` milliseconds.
    #[arg(long)]
    delay_ms: Option<String>,
    /// How every link's delays fall within that range: uniform, normal
    /// (around the middle) or pareto (long-tailed, mostly near the minimum).
    #[arg(long)]
    delay_distribution: Option<DelayDistribution>,
    /// The share of messages lost on every link (0 to 1).
    #[arg(long)]
    loss: Option<f64>,
    /// Draw this many faults from each seed (on at most f operators).
    #[arg(long)]
    random_faults: Option<usize>,
    /// Signatures: `bls` (real) or `cheap` (the same threshold behaviour
    /// at a fraction of the cost). Default: the scenario's (bls) for one
    /// seed; for a sweep, cheap, with real BLS on every --bls-every'th seed.
    #[arg(long)]
    signatures: Option<String>,
    /// In a sweep on cheap signatures, run every K-th seed on real BLS
    /// (0: none).
    #[arg(long, default_value_t = 10)]
    bls_every: u64,
    /// How fast the nodes' processors are: 1.0 is the machine of
    /// BENCHMARKS.md, 2.0 twice as fast (the virtual time each event keeps
    /// a node busy is divided by it).
    #[arg(long)]
    node_speed: Option<f64>,
    /// The strategies of the scenario's byzantine floods, comma-separated
    /// (invalid_partials, random_roots, proposals, future_instances,
    /// round_changes, cross_cluster), replacing theirs.
    #[arg(long, value_delimiter = ',')]
    flood_strategies: Option<Vec<FloodStrategy>>,
    /// Count failed duties in the report without failing the run (for
    /// scenarios whose faults exceed the tolerance).
    #[arg(long)]
    liveness_may_fail: bool,
    /// The (first) seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Run this many seeds, from --seed on, in parallel over the cores.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Write every run's report as JSON lines here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the first seed's report as a self-contained HTML file (plots
    /// of duty success per slot, latency, rounds, participation).
    #[arg(long)]
    html: Option<PathBuf>,
}

impl SimnetArgs {
    /// The scenario the file and flags describe.
    fn scenario(&self) -> Result<Scenario> {
        let mut scenario = match &self.scenario {
            Some(path) if path.to_string_lossy().starts_with("builtin:") => {
                let name = path.to_string_lossy();
                let name = name.trim_start_matches("builtin:");
                builtin(name).with_context(|| {
                    format!("no built-in scenario {name}: phalanx simnet --list names them")
                })?
            }
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                Scenario::from_toml(&text).with_context(|| path.display().to_string())?
            }
            None => Scenario::new(4, 100, 10),
        };
        if let Some(v) = self.operators {
            scenario.operators = v;
        }
        if let Some(v) = self.threshold {
            scenario.threshold = v;
        }
        if let Some(v) = self.validators {
            scenario.validators = v;
        }
        if let Some(v) = self.epochs {
            scenario.epochs = v;
        }
        if let Some(v) = &self.preset {
            scenario.preset = match v.as_str() {
                "minimal" => Preset::Minimal,
                "mainnet" => Preset::Mainnet,
                other => bail!("unknown preset {other}: minimal or mainnet"),
            };
        }
        if let Some(v) = self.fork {
            scenario.fork = v;
        }
        if let Some(v) = self.slot_ms {
            scenario.slot_ms = v;
        }
        if let Some(range) = &self.delay_ms {
            let (min, max) = range
                .split_once('-')
                .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
                .context("--delay-ms takes MIN-MAX, e.g. 5-40")?;
            scenario.network.min_delay_ms = min;
            scenario.network.max_delay_ms = max;
        }
        if let Some(v) = self.delay_distribution {
            scenario.network.distribution = v;
        }
        if let Some(v) = self.loss {
            scenario.network.loss = v;
        }
        if let Some(count) = self.crashed {
            if count > scenario.operators {
                bail!("--crashed {count} of {} operators", scenario.operators);
            }
            scenario.faults.extend(
                (scenario.operators - count..scenario.operators).map(|node| Fault::Crash {
                    node,
                    from_slot: 1,
                    until_slot: None,
                    lose_disk: false,
                    offset_ms: 0,
                    restart_offset_ms: 0,
                }),
            );
        }
        if let Some(count) = self.random_faults {
            scenario.random_faults = Some(RandomFaults {
                count,
                ..scenario.random_faults.clone().unwrap_or_default()
            });
        }
        if let Some(name) = &self.signatures {
            scenario.signatures = parse_signatures(name)?;
        }
        if let Some(v) = self.node_speed {
            scenario.node_speed = v;
        }
        if let Some(chosen) = &self.flood_strategies {
            let mut floods = 0;
            for fault in &mut scenario.faults {
                if let Fault::ByzantineFlood { strategies, .. } = fault {
                    strategies.clone_from(chosen);
                    floods += 1;
                }
            }
            if floods == 0 {
                bail!("--flood-strategies: the scenario has no byzantine flood");
            }
        }
        scenario.liveness_may_fail |= self.liveness_may_fail;
        if let Some(v) = self.seed {
            scenario.seed = v;
        }
        scenario.validate()?;
        Ok(scenario)
    }
}

/// Runs the simulation(s); fails if any run broke an invariant.
#[expect(clippy::print_stdout, reason = "the summary is the command's output")]
pub(crate) fn simnet(args: SimnetArgs) -> Result<()> {
    if args.list {
        for b in BUILTINS {
            println!("builtin:{:<34} {}", b.name, b.about);
        }
        return Ok(());
    }
    let scenario = args.scenario()?;
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    println!(
        "{}: {}, {} fault(s){}",
        scenario.name,
        scenario.describe(),
        scenario.faults.len(),
        scenario
            .random_faults
            .as_ref()
            .map_or(String::new(), |r| format!(
                " and {} drawn from each seed",
                r.count
            ))
    );
    let signatures_of = |k: u64| -> Signatures {
        if args.signatures.is_some() || args.seeds == 1 {
            scenario.signatures
        } else if args.bls_every > 0 && k.is_multiple_of(args.bls_every) {
            Signatures::Bls
        } else {
            Signatures::Cheap
        }
    };
    if args.seeds > 1 {
        let bls = (0..args.seeds)
            .filter(|&k| signatures_of(k) == Signatures::Bls)
            .count();
        println!(
            "signatures: {} run(s) on real BLS, {} on the cheap scheme",
            bls,
            args.seeds as usize - bls
        );
    }
    let progress = Progress::new(args.seeds);
    let started = wall_clock();
    let first = scenario.seed;
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let reports: Mutex<Vec<RunReport>> = Mutex::new(Vec::new());
    let error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(args.seeds as usize);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= args.seeds {
                    return;
                }
                let mut one = scenario.clone();
                one.seed = first + k;
                one.signatures = signatures_of(k);
                match run(&one) {
                    Ok(report) => lock(&reports).push(report),
                    Err(e) => {
                        *lock(&error) = Some(e.into());
                        return;
                    }
                }
                let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                progress.show(finished);
            });
        }
    });
    progress.finish();
    if let Some(e) = lock(&error).take() {
        return Err(e);
    }
    let mut reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    reports.sort_by_key(|r| r.seed);
    let elapsed = started.elapsed();
    if let Some(path) = &args.json {
        let mut file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        for report in &reports {
            serde_json::to_writer(&mut file, report)?;
            file.write_all(b"\n")?;
        }
    }
    if let (Some(path), Some(first)) = (&args.html, reports.first()) {
        let mut one = scenario.clone();
        one.seed = first.seed;
        std::fs::write(path, report::html(&one, first))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("report of seed {} in {}", first.seed, path.display());
    }
    print_summary(&reports);
    println!(
        "{} run(s) in {:.2} s ({:.3} s per run on {workers} core(s))",
        reports.len(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * workers as f64 / reports.len() as f64
    );
    match reports.as_slice() {
        [one] => println!(
            "trace of seed {}: {} events, hash {}",
            one.seed, one.events, one.trace_hash
        ),
        many => println!(
            "traces of seeds {}..={}: {} events, hash over their hashes {}",
            first,
            first + args.seeds - 1,
            many.iter().map(|r| r.events).sum::<u64>(),
            sweep_hash(many)
        ),
    }
    let failing: Vec<&RunReport> = reports
        .iter()
        .filter(|r| !r.violations.is_empty())
        .collect();
    if failing.is_empty() {
        println!("every invariant held");
        return Ok(());
    }
    for report in &failing {
        println!(
            "seed {} broke {} invariant(s), the first: {}",
            report.seed,
            report.violations.len(),
            report.violations[0]
        );
        println!(
            "  replay: phalanx simnet {} --signatures {} --seed {}",
            replay_flags(&args),
            report.signatures,
            report.seed
        );
    }
    bail!(
        "{} of {} run(s) broke an invariant",
        failing.len(),
        reports.len()
    )
}

fn parse_signatures(name: &str) -> Result<Signatures> {
    match name {
        "bls" => Ok(Signatures::Bls),
        "cheap" => Ok(Signatures::Cheap),
        other => bail!("unknown signatures {other}: bls or cheap"),
    }
}

/// A progress bar for sweeps, on stderr: redrawn in place on a terminal,
/// a line per tenth of the runs otherwise (logs).
struct Progress {
    total: u64,
    started: std::time::Instant,
    terminal: bool,
    shown: Mutex<u64>,
}

impl Progress {
    fn new(total: u64) -> Progress {
        use std::io::IsTerminal;
        Progress {
            total,
            started: wall_clock(),
            terminal: std::io::stderr().is_terminal(),
            shown: Mutex::new(0),
        }
    }

    #[expect(clippy::print_stderr, reason = "progress goes to stderr")]
    fn show(&self, done: u64) {
        if self.total < 2 {
            return;
        }
        let mut shown = lock(&self.shown);
        let tenth = (done * 10 / self.total) > (*shown * 10 / self.total);
        if done <= *shown || (!self.terminal && !tenth && done != self.total) {
            return;
        }
        *shown = done;
        const WIDTH: u64 = 30;
        let filled = (done * WIDTH / self.total) as usize;
        let elapsed = self.started.elapsed().as_secs_f64();
        let left = elapsed / done as f64 * (self.total - done) as f64;
        let line = format!(
            "[{}{}] {done}/{} seeds, {elapsed:.0} s, about {left:.0} s left",
            "#".repeat(filled),
            "-".repeat(WIDTH as usize - filled),
            self.total
        );
        if self.terminal {
            eprint!("\r{line}");
        } else {
            eprintln!("{line}");
        }
    }

    #[expect(clippy::print_stderr, reason = "progress goes to stderr")]
    fn finish(&self) {
        if self.total > 1 && self.terminal {
            eprintln!();
        }
    }
}

/// The flags of this invocation that shape the scenario (without seeds).
fn replay_flags(args: &SimnetArgs) -> String {
    let mut flags = Vec::new();
    if let Some(path) = &args.scenario {
        flags.push(format!("--scenario {}", path.display()));
    }
    let mut add = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            flags.push(format!("--{name} {value}"));
        }
    };
    add("operators", args.operators.map(|v| v.to_string()));
    add("threshold", args.threshold.map(|v| v.to_string()));
    add("validators", args.validators.map(|v| v.to_string()));
    add("epochs", args.epochs.map(|v| v.to_string()));
    add("preset", args.preset.clone());
    add("fork", args.fork.map(|v| v.to_string()));
    add("slot-ms", args.slot_ms.map(|v| v.to_string()));
    add("crashed", args.crashed.map(|v| v.to_string()));
    add("delay-ms", args.delay_ms.clone());
    add(
        "delay-distribution",
        args.delay_distribution.map(|v| v.name().to_string()),
    );
    add("loss", args.loss.map(|v| v.to_string()));
    add("random-faults", args.random_faults.map(|v| v.to_string()));
    add("node-speed", args.node_speed.map(|v| v.to_string()));
    add(
        "flood-strategies",
        args.flood_strategies
            .as_ref()
            .map(|list| list.iter().map(|s| s.name()).collect::<Vec<_>>().join(",")),
    );
    if args.liveness_may_fail {
        flags.push("--liveness-may-fail".into());
    }
    flags.join(" ")
}

#[expect(clippy::print_stdout, reason = "the summary is the command's output")]
fn print_summary(reports: &[RunReport]) {
    use std::collections::BTreeMap;
    let mut duties: BTreeMap<&str, [u64; 5]> = BTreeMap::new();
    let mut latencies: BTreeMap<&str, Vec<[u64; 3]>> = BTreeMap::new();
    let mut rounds: BTreeMap<u64, u64> = BTreeMap::new();
    let mut blame: BTreeMap<usize, u64> = BTreeMap::new();
    let (mut messages, mut partials, mut decided) = (0u64, 0u64, 0u64);
    let (mut consensus_bytes, mut partial_bytes) = (0u64, 0u64);
    for report in reports {
        for (kind, c) in &report.duties {
            let row = duties.entry(kind.as_str()).or_default();
            row[0] += c.expected;
            row[1] += c.on_time;
            row[2] += c.late;
            row[3] += c.missed;
            row[4] += c.beyond_tolerance;
        }
        for (kind, l) in &report.latency_ms {
            latencies.entry(kind.as_str()).or_default().push(*l);
        }
        for (round, count) in &report.rounds {
            *rounds.entry(*round).or_default() += count;
            decided += count;
        }
        for (node, count) in &report.dropped_by_sender {
            *blame.entry(*node).or_default() += count;
        }
        messages += report.consensus_messages;
        partials += report.partials_sent;
        consensus_bytes += report.consensus_bytes;
        partial_bytes += report.partial_bytes;
    }
    println!();
    println!(
        "{:<18} {:>9} {:>9} {:>7} {:>7} {:>8} {:>22}",
        "duty", "expected", "on time", "late", "missed", "excused", "into slot p50/p90/p99"
    );
    for (kind, [expected, on_time, late, missed, excused]) in &duties {
        // Over many seeds: the median of each run's percentile.
        let quantiles = latencies.get(kind).map_or(String::from("-"), |list| {
            let pick = |q: usize| {
                let mut values: Vec<u64> = list.iter().map(|l| l[q]).collect();
                values.sort_unstable();
                values[values.len() / 2]
            };
            format!("{}/{}/{} ms", pick(0), pick(1), pick(2))
        });
        println!(
            "{kind:<18} {expected:>9} {on_time:>9} {late:>7} {missed:>7} {excused:>8} {quantiles:>22}"
        );
    }
    let rounds_text: Vec<String> = rounds
        .iter()
        .map(|(round, count)| format!("round {round}: {count}"))
        .collect();
    println!();
    let round_sum: u64 = rounds.iter().map(|(round, count)| round * count).sum();
    println!(
        "consensus decisions: {decided} ({}), {:.2} rounds per decision",
        rounds_text.join(", "),
        round_sum as f64 / decided.max(1) as f64
    );
    let per_duty = |total: u64| {
        if decided == 0 {
            0.0
        } else {
            total as f64 / decided as f64
        }
    };
    if duties.values().any(|row| row[4] > 0) {
        println!("excused: late or missed in slots whose faults exceeded the tolerance f");
    }
    println!(
        "messages: {messages} consensus ({:.1} per decision), {partials} partial signatures",
        per_duty(messages)
    );
    let instances: u64 = duties.values().map(|row| row[0]).sum();
    let per_instance = |bytes: u64| bytes as f64 / instances.max(1) as f64;
    println!(
        "bytes between nodes: {} consensus + {} partial signatures = {:.0} per duty instance ({:.0} + {:.0})",
        human_bytes(consensus_bytes),
        human_bytes(partial_bytes),
        per_instance(consensus_bytes + partial_bytes),
        per_instance(consensus_bytes),
        per_instance(partial_bytes)
    );
    print_cpu(reports);
    if blame.is_empty() {
        println!("no peer message was dropped");
    } else {
        let text: Vec<String> = blame
            .iter()
            .map(|(node, count)| format!("operator {node}: {count}"))
            .collect();
        println!("dropped peer messages by sender: {}", text.join(", "));
    }
}

/// Per node: the processor time its events took (virtual, the sum over
/// the runs) and the longest any event waited for it; the worst lateness;
/// what each flood strategy sent.
#[expect(clippy::print_stdout, reason = "the summary is the command's output")]
fn print_cpu(reports: &[RunReport]) {
    use std::collections::BTreeMap;
    let mut busy: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
    let mut flood: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    let mut worst = 0;
    for report in reports {
        worst = worst.max(report.worst_lateness_ms);
        for (node, cpu) in &report.cpu {
            let entry = busy.entry(*node).or_default();
            entry.0 += cpu.busy_us;
            entry.1 = entry.1.max(cpu.max_wait_ms);
        }
        for (name, sent) in &report.flood {
            let entry = flood.entry(name.as_str()).or_default();
            entry.0 += sent.messages;
            entry.1 += sent.items;
            entry.2 += sent.bytes;
        }
    }
    let text: Vec<String> = busy
        .iter()
        .map(|(node, (us, wait))| {
            format!(
                "operator {node}: {:.1} s (longest wait {wait} ms)",
                *us as f64 / 1e6
            )
        })
        .collect();
    println!("processor time per node: {}", text.join(", "));
    if worst > 0 {
        println!("worst lateness: {worst} ms after a deadline");
    }
    for (name, (messages, items, bytes)) in &flood {
        println!(
            "flood {name}: {messages} messages, {items} items, {}",
            human_bytes(*bytes)
        );
    }
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// The wall clock, read only to report how long the runs took.
#[expect(
    clippy::disallowed_methods,
    reason = "the command times its runs; the simulations themselves never read a clock"
)]
fn wall_clock() -> std::time::Instant {
    std::time::Instant::now()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
