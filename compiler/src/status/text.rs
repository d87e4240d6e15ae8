//! The status as text for a terminal and as markdown for a pull request or
//! a chat message: the counts first, then only the clusters that are not
//! fine (all with `verbose`), clusters alike in one entry named by ranges
//! as plans name them.

use std::collections::BTreeMap;

use super::{Cluster, Fleet, Health};
use crate::plan::names::{Run, compact, runs};

/// The names as ranges: `c00000 … c00041, c00043`.
pub fn names<'a>(names: impl IntoIterator<Item = &'a str>, all: bool) -> String {
    let list = if all { runs(names) } else { compact(names) };
    list.iter()
        .map(|r| match r {
            Run::One(n) => n.clone(),
            Run::Range { first, last, .. } => format!("{first} … {last}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lines that say how a cluster is, without its name: clusters with
/// the same lines are shown as one entry.
pub fn details(c: &Cluster, verbose: bool, several_targets: bool) -> Vec<String> {
    let mut out = Vec::new();
    if several_targets {
        out.push(format!("on {}", c.target));
    }
    if c.health == Health::Absent {
        out.push("not on the management cluster: apply creates it".to_string());
    } else {
        out.push(control_plane(c));
    }
    out.extend(c.conditions.iter().map(super::Condition::line));
    for p in &c.node_pools {
        let notable = !p.conditions.is_empty()
            || p.ready < p.desired
            || (!p.version.is_empty() && p.version != c.version.running);
        if verbose || notable {
            let mut line = format!("pool {}", p.line());
            for cond in &p.conditions {
                line += &format!("; {}", cond.line());
            }
            out.push(line);
        }
    }
    if let Some(r) = &c.rollout {
        out.push(r.line());
        if let crate::plan::rollout::Phase::Failed { message, .. } = &r.phase
            && !message.is_empty()
            && !c.conditions.iter().any(|x| x.message == *message)
        {
            out.push(format!("  {message}"));
        }
    }
    if verbose || c.sync.pending() > 0 {
        out.push(c.sync.line());
    }
    out
}

/// `control plane 4.20.0`, `control plane 4.20.0 → 4.20.1 (Partial)`.
fn control_plane(c: &Cluster) -> String {
    let v = &c.version;
    match (v.running.as_str(), v.state.as_str()) {
        ("", "") => "control plane: no version reported yet".to_string(),
        ("", state) => format!("control plane installing {} ({state})", v.desired),
        (running, "Completed") if running == v.desired || v.desired.is_empty() => format!("control plane {running}"),
        (running, state) => format!("control plane {running} → {} ({state})", v.desired),
    }
}

/// Whether a cluster is listed without `verbose`.
fn listed(c: &Cluster) -> bool {
    c.health != Health::Healthy || c.sync.out_of_sync()
}

/// The clusters to show, worst first, those alike together:
/// (health, out of sync, detail lines) to their names.
fn entries(fleet: &Fleet, verbose: bool) -> BTreeMap<(Health, bool, Vec<String>), Vec<&str>> {
    let several = fleet.clusters.iter().any(|c| c.target != fleet.clusters[0].target);
    let mut out: BTreeMap<(Health, bool, Vec<String>), Vec<&str>> = BTreeMap::new();
    for c in fleet.clusters.iter().filter(|c| verbose || listed(c)) {
        let key = (c.health, !c.sync.out_of_sync(), details(c, verbose, several));
        out.entry(key).or_default().push(c.name.as_str());
    }
    out
}

/// The heading of an entry: `degraded`, `healthy, out of sync`.
fn heading(health: Health, in_sync: bool) -> String {
    match (health, in_sync) {
        (Health::Healthy | Health::Unknown, false) => format!("{}, out of sync", health.word()),
        _ => health.word().to_string(),
    }
}

/// The terminal view.
pub fn text(fleet: &Fleet, verbose: bool) -> String {
    let mut out = format!("{}\n", fleet.counts.line());
    for ((health, in_sync, lines), members) in entries(fleet, verbose) {
        out += &format!("\n{}: {}\n", heading(health, in_sync), names(members.iter().copied(), verbose));
        for l in lines {
            out += &format!("  {l}\n");
        }
    }
    if let Some(s) = &fleet.rollout {
        out += &format!("\n{}\n", s.summary());
    }
    if !verbose && fleet.clusters.iter().any(|c| !listed(c)) {
        out += "\n(healthy clusters in sync are not listed; -v lists them)\n";
    }
    out
}

/// Escapes what would break a markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The pull-request and chat view: the counts, then a table.
pub fn markdown(fleet: &Fleet, verbose: bool) -> String {
    let mut out = format!("**{}**\n", fleet.counts.line());
    let entries = entries(fleet, verbose);
    if !entries.is_empty() {
        out += "\n| Clusters | State | Details |\n|---|---|---|\n";
        for ((health, in_sync, lines), members) in entries {
            out += &format!(
                "| {} | {} | {} |\n",
                cell(&names(members.iter().copied(), verbose)),
                heading(health, in_sync),
                lines.iter().map(|l| cell(l.trim())).collect::<Vec<_>>().join("<br>")
            );
        }
    }
    if let Some(s) = &fleet.rollout {
        out += &format!("\n{}\n", s.summary());
    }
    out += &format!("\n<sub>observed {}</sub>\n", fleet.observed);
    out
}
