//! A run's report as one self-contained HTML file: the summary, and SVG
//! plots drawn here (no script, no outside file) of duty success per slot
//! with the fault windows shaded, the latency CDF per duty type, the
//! consensus rounds histogram and each operator's participation.

use std::fmt::Write;

use super::scenario::{Fault, Scenario};
use super::RunReport;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const MARGIN: f64 = 40.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

/// The report of one run of `scenario` as an HTML document.
pub fn html(scenario: &Scenario, report: &RunReport) -> String {
    // The faults the run had: the scenario's and those drawn from the seed.
    let scenario = &Scenario {
        faults: report.faults.clone(),
        random_faults: None,
        ..scenario.clone()
    };
    let mut out = String::new();
    let title = format!("phalanx simnet: {} (seed {})", scenario.name, report.seed);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;max-width:760px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse}}td,th{{padding:2px 10px;text-align:right}}\
         th:first-child,td:first-child{{text-align:left}}.bad{{color:#b00}}</style></head><body>\n",
        escape(&title)
    );
    let _ = writeln!(out, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        out,
        "<p>{}. Trace hash <code>{}</code>, {} events.</p>",
        escape(&scenario.describe()),
        report.trace_hash,
        report.events
    );
    if report.violations.is_empty() {
        out.push_str("<p>Every invariant held.</p>\n");
    } else {
        out.push_str("<h2 class=\"bad\">Broken invariants</h2><ul>\n");
        for violation in &report.violations {
            let _ = writeln!(out, "<li class=\"bad\">{}</li>", escape(violation));
        }
        out.push_str("</ul>\n");
    }
    if !scenario.faults.is_empty() {
        out.push_str("<h2>Faults</h2><ul>\n");
        for fault in &scenario.faults {
            let _ = writeln!(out, "<li>{}</li>", escape(&format!("{fault:?}")));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<h2>Duties</h2><table><tr><th>duty</th><th>expected</th><th>on time</th><th>late</th><th>missed</th><th>of which beyond the tolerance</th><th>p50 / p90 / p99 into the slot</th></tr>\n");
    for (kind, c) in &report.duties {
        let quantiles = report.latency_ms.get(kind).map_or("-".to_string(), |q| {
            format!("{} / {} / {} ms", q[0], q[1], q[2])
        });
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(kind),
            c.expected,
            c.on_time,
            c.late,
            c.missed,
            c.beyond_tolerance,
            quantiles
        );
    }
    out.push_str("</table>\n");
    out.push_str("<h2>Duty success per slot</h2>\n");
    out.push_str(&success_per_slot(scenario, report));
    out.push_str("<h2>Broadcast time into the slot (CDF)</h2>\n");
    out.push_str(&latency_cdf(report));
    out.push_str("<h2>Consensus rounds</h2>\n");
    let rounds: Vec<(String, u64)> = report
        .rounds
        .iter()
        .map(|(round, count)| (format!("round {round}"), *count))
        .collect();
    out.push_str(&bars(&rounds, "decisions"));
    out.push_str("<h2>Participation: partial signatures each operator sent</h2>\n");
    let participation: Vec<(String, u64)> = (0..scenario.operators)
        .map(|op| {
            (
                format!("operator {op}"),
                report.partials_by_operator.get(&op).copied().unwrap_or(0),
            )
        })
        .collect();
    out.push_str(&bars(&participation, "partials"));
    if !report.cpu.is_empty() {
        out.push_str(&processor(scenario, report));
    }
    if !report.flood.is_empty() {
        out.push_str("<h2>Flood: what the flooding operator sent its peers</h2>\n");
        out.push_str(
            "<table><tr><th>strategy</th><th>messages</th><th>items</th><th>bytes</th></tr>\n",
        );
        for (name, sent) in &report.flood {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(name),
                sent.messages,
                sent.items,
                sent.bytes
            );
        }
        out.push_str("</table>\n");
    }
    if !report.dropped_by_sender.is_empty() {
        out.push_str("<h2>Blame: peer messages dropped, by sender</h2>\n");
        let blame: Vec<(String, u64)> = report
            .dropped_by_sender
            .iter()
            .map(|(op, count)| (format!("operator {op}"), *count))
            .collect();
        out.push_str(&bars(&blame, "dropped"));
    }
    out.push_str("</body></html>\n");
    out
}

/// Each node's processor in virtual time: how busy it was over the run,
/// and how long an event waited for it at worst, as a table and a plot
/// of the busy share per node.
fn processor(scenario: &Scenario, report: &RunReport) -> String {
    let mut out = String::from("<h2>Processor (virtual time, by the cost model)</h2>\n");
    let slots = (scenario.epochs * scenario.preset.slots_per_epoch()).max(1);
    let run_us = (slots * scenario.slot_ms * 1000) as f64;
    out.push_str(
        "<table><tr><th>node</th><th>busy</th><th>share of the run</th>\
         <th>events that waited</th><th>longest wait</th><th>largest backlog</th></tr>\n",
    );
    let mut shares = Vec::new();
    for (node, cpu) in &report.cpu {
        let share = cpu.busy_us as f64 / run_us * 100.0;
        let _ = writeln!(
            out,
            "<tr><td>operator {node}</td><td>{:.1} s</td><td>{share:.1} %</td><td>{}</td>\
             <td>{} ms</td><td>{}</td></tr>",
            cpu.busy_us as f64 / 1e6,
            cpu.waited,
            cpu.max_wait_ms,
            cpu.max_backlog
        );
        // Tenths of a percent, for the bars' integer scale.
        shares.push((format!("operator {node}"), (share * 10.0).round() as u64));
    }
    out.push_str("</table>\n");
    out.push_str(&bars(&shares, "busy share of the run (0.1 %)"));
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn svg_open(out: &mut String, label: &str) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{}\">",
        escape(label)
    );
    // Axes.
    let _ = write!(
        out,
        "<line x1=\"{MARGIN}\" y1=\"{y}\" x2=\"{x}\" y2=\"{y}\" stroke=\"#555\"/>\
         <line x1=\"{MARGIN}\" y1=\"10\" x2=\"{MARGIN}\" y2=\"{y}\" stroke=\"#555\"/>",
        y = HEIGHT - MARGIN,
        x = WIDTH - 10.0
    );
}

/// The share of each slot's duties that were on time, with the slots of
/// every fault window shaded.
fn success_per_slot(scenario: &Scenario, report: &RunReport) -> String {
    let mut out = String::new();
    svg_open(&mut out, "duty success per slot");
    let slots = report.per_slot.len().max(1) as f64;
    let plot_w = WIDTH - MARGIN - 10.0;
    let plot_h = HEIGHT - MARGIN - 10.0;
    let x_of = |slot: f64| MARGIN + slot / slots * plot_w;
    let y_of = |share: f64| HEIGHT - MARGIN - share * plot_h;
    for (from, until, label) in fault_windows(scenario, report.per_slot.len() as u64) {
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"10\" width=\"{:.1}\" height=\"{plot_h:.1}\" fill=\"#f4c7c3\" opacity=\"0.6\"><title>{}</title></rect>",
            x_of(from as f64),
            (x_of(until as f64) - x_of(from as f64)).max(1.0),
            escape(&label)
        );
    }
    let points: Vec<String> = report
        .per_slot
        .iter()
        .filter(|s| s.expected > 0)
        .map(|s| {
            format!(
                "{:.1},{:.1}",
                x_of(s.slot as f64 + 0.5),
                y_of(s.on_time as f64 / s.expected as f64)
            )
        })
        .collect();
    let _ = write!(
        out,
        "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>",
        COLOURS[0],
        points.join(" ")
    );
    axis_labels(
        &mut out,
        "slot",
        &format!("{}", report.per_slot.len()),
        "100 %",
    );
    out.push_str("</svg>\n");
    out
}

/// The slot ranges of the scenario's faults, clipped to the run.
fn fault_windows(scenario: &Scenario, slots: u64) -> Vec<(u64, u64, String)> {
    scenario
        .faults
        .iter()
        .filter_map(|fault| {
            let (from, until) = match *fault {
                Fault::Crash {
                    from_slot,
                    until_slot,
                    ..
                } => (from_slot, until_slot.unwrap_or(slots)),
                Fault::Partition {
                    from_slot,
                    until_slot,
                    ..
                }
                | Fault::SlowBeaconNode {
                    from_slot,
                    until_slot,
                    ..
                }
                | Fault::BeaconNodeDown {
                    from_slot,
                    until_slot,
                    ..
                }
                | Fault::ValidatorClientOffline {
                    from_slot,
                    until_slot,
                    ..
                }
                | Fault::SlowValidatorClient {
                    from_slot,
                    until_slot,
                    ..
                } => (from_slot, until_slot),
                Fault::DivergingBeaconNode { slot, .. } => (slot, slot + 1),
                _ => return None,
            };
            let until = until.min(slots);
            (from < until).then(|| (from, until, format!("{fault:?}")))
        })
        .collect()
}

/// One cumulative curve per duty type of the time into the slot.
fn latency_cdf(report: &RunReport) -> String {
    let mut out = String::new();
    svg_open(&mut out, "broadcast time into the slot, cumulative");
    let longest = report
        .latency_samples
        .values()
        .filter_map(|list| list.last().copied())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let plot_w = WIDTH - MARGIN - 10.0;
    let plot_h = HEIGHT - MARGIN - 10.0;
    for (i, (kind, list)) in report.latency_samples.iter().enumerate() {
        if list.is_empty() {
            continue;
        }
        let n = list.len() as f64;
        let points: Vec<String> = list
            .iter()
            .enumerate()
            .map(|(k, ms)| {
                format!(
                    "{:.1},{:.1}",
                    MARGIN + *ms as f64 / longest * plot_w,
                    HEIGHT - MARGIN - (k + 1) as f64 / n * plot_h
                )
            })
            .collect();
        let colour = COLOURS[i % COLOURS.len()];
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{colour}\">{}</text>",
            points.join(" "),
            WIDTH - 150.0,
            24.0 + 14.0 * i as f64,
            escape(kind)
        );
    }
    axis_labels(
        &mut out,
        "ms into the slot",
        &format!("{longest:.0}"),
        "100 %",
    );
    out.push_str("</svg>\n");
    out
}

/// A bar chart of labelled counts.
fn bars(items: &[(String, u64)], what: &str) -> String {
    let mut out = String::new();
    svg_open(&mut out, what);
    let top = items.iter().map(|(_, v)| *v).max().unwrap_or(1).max(1) as f64;
    let plot_w = WIDTH - MARGIN - 10.0;
    let plot_h = HEIGHT - MARGIN - 10.0;
    let slot_w = plot_w / items.len().max(1) as f64;
    for (i, (label, value)) in items.iter().enumerate() {
        let h = *value as f64 / top * plot_h;
        let x = MARGIN + i as f64 * slot_w + slot_w * 0.15;
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{}: {value}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{value}</text>",
            HEIGHT - MARGIN - h,
            slot_w * 0.7,
            COLOURS[0],
            escape(label),
            x + slot_w * 0.35,
            HEIGHT - MARGIN + 14.0,
            escape(label),
            x + slot_w * 0.35,
            (HEIGHT - MARGIN - h - 4.0).max(10.0),
        );
    }
    out.push_str("</svg>\n");
    out
}

fn axis_labels(out: &mut String, x_label: &str, x_max: &str, y_max: &str) {
    let _ = write!(
        out,
        "<text x=\"{MARGIN}\" y=\"{:.1}\" font-size=\"11\">0</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\
         <text x=\"4\" y=\"18\" font-size=\"11\">{}</text>",
        HEIGHT - MARGIN + 14.0,
        WIDTH - 10.0,
        HEIGHT - MARGIN + 14.0,
        escape(x_max),
        WIDTH / 2.0,
        HEIGHT - 8.0,
        escape(x_label),
        escape(y_max)
    );
}
