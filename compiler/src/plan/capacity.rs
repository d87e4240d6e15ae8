//! The capacity table of every plan: per infrastructure, what this fleet
//! requests before and after the change, against what the nodes offer.
//! A plain data type (also the plan's JSON `capacity` member) and its text
//! and markdown views.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ir::Fleet;
use crate::live::LiveObject;
use crate::resolve::capacity::{Demand, Placement, Row, Unit, described_placement, nodes_placement, show, usage};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityReport {
    /// Use above this percentage of a resource is a warning.
    pub warning_percent: u32,
    pub infrastructures: Vec<InfraCapacity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfraCapacity {
    /// `management cluster`, or `infrastructure cluster of a, b`.
    pub name: String,
    pub rows: Vec<CapacityRow>,
    /// What the capacity is and what it leaves out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One resource. Amounts are in `unit`: millicores, bytes or devices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityRow {
    /// Stable identifier, e.g. `cpu`, `device/nvidia.com/A100`,
    /// `storage/root-volumes/ceph-rbd`.
    pub key: String,
    /// How the tables name it.
    pub resource: String,
    /// A part of the row before it (control planes' share of CPU or memory).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub detail: bool,
    pub unit: Unit,
    /// What the infrastructure offers; absent when not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    /// What this fleet requests now (live state); absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// What this fleet requests once applied.
    pub after: u64,
    /// `after` as a percentage of `capacity`, rounded up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u64>,
    /// `after` plus the largest surge VM of a pool this plan rolls by
    /// replacement, while it rolls; absent when nothing rolls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<u64>,
}

impl CapacityRow {
    /// `after - before`, for impact totals; `None` without a before.
    pub fn delta(&self) -> Option<i128> {
        self.before.map(|b| i128::from(self.after) - i128::from(b))
    }
}

fn clamp(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The table for a fleet, against its live objects when there are any
/// (`None` for `hcpc check`, which reads no live state).
pub fn report(fleet: &Fleet, live: Option<&[LiveObject]>) -> CapacityReport {
    report_after(fleet, &Demand::of_fleet(fleet), live)
}

/// [`report`] with the demand after the change given (a plan limited to
/// some clusters: theirs as configured, the others' as they are).
pub fn report_after(fleet: &Fleet, after: &Demand, live: Option<&[LiveObject]>) -> CapacityReport {
    let inv = &fleet.inventory;
    let after = usage(after, inv);
    let before = live.map(|l| {
        let bodies: Vec<&Value> = l.iter().map(|o| &o.body).collect();
        usage(&Demand::of_objects(&bodies, fleet), inv)
    });
    let mut placements: BTreeSet<Placement> = after.keys().cloned().collect();
    if let Some(b) = &before {
        placements.extend(b.keys().cloned());
    }
    // The management cluster always has a table: control planes run there.
    placements.insert(Placement::Management);
    let nodes_at = nodes_placement(fleet);
    let devices_at = inv.known.devices.then(|| described_placement(fleet));
    let mut clusters_on: std::collections::BTreeMap<Placement, Vec<&str>> = std::collections::BTreeMap::new();
    for c in &fleet.clusters {
        clusters_on.entry(Placement::of(c)).or_default().push(&c.name.value);
    }
    let empty = Default::default();
    let mut infrastructures = Vec::new();
    for placement in placements {
        let after_rows = after.get(&placement).unwrap_or(&empty);
        let before_rows = before.as_ref().map(|b| b.get(&placement).unwrap_or(&empty));
        let mut rows: BTreeSet<Row> = after_rows.keys().cloned().collect();
        if let Some(b) = before_rows {
            rows.extend(b.keys().cloned());
        }
        let with_nodes = nodes_at.as_ref() == Some(&placement);
        if with_nodes {
            rows.insert(Row::Cpu);
            rows.insert(Row::Memory);
        }
        let capacity = |row: &Row| -> Option<u128> {
            match row {
                Row::Cpu if with_nodes => {
                    Some(inv.nodes.iter().map(|g| u128::from(g.count) * u128::from(g.cpu_millis)).sum())
                }
                Row::Memory if with_nodes => Some(inv.nodes.iter().map(|g| u128::from(g.count) * g.memory).sum()),
                Row::Device(d) if devices_at.as_ref() == Some(&placement) => {
                    Some(inv.host_devices.iter().find(|h| h.name.value == *d).map_or(0, |h| u128::from(h.capacity)))
                }
                _ => None,
            }
        };
        let rows = rows
            .into_iter()
            .map(|row| {
                let cap = capacity(&row);
                let a = after_rows.get(&row).copied().unwrap_or(0);
                CapacityRow {
                    key: row.key(),
                    resource: row.label(),
                    detail: row.is_detail(),
                    unit: row.unit(),
                    capacity: cap.map(clamp),
                    before: before_rows.map(|b| clamp(b.get(&row).copied().unwrap_or(0))),
                    after: clamp(a),
                    percent: cap.filter(|c| *c > 0).map(|c| clamp(show::percent(a, c))),
                    peak: None,
                }
            })
            .collect();
        let mut notes = Vec::new();
        if with_nodes {
            let count: u32 = inv.nodes.iter().map(|g| g.count).sum();
            notes.push(if inv.management_only {
                format!("capacity: the allocatable CPU and memory of {count} schedulable nodes; other workloads on them are not counted")
            } else {
                format!("capacity: the {count} nodes declared in `infra`; other workloads on them are not counted")
            });
        } else if placement == Placement::Management && inv.management_only {
            notes.push("no node capacity known: the management cluster lists no schedulable nodes".to_string());
        } else if placement == Placement::Management {
            notes.push("no node capacity known: declare `nodes` in `infra`, or plan with `target kube`".to_string());
        } else {
            notes.push(
                "no node capacity known: `infra { nodes … }` describes this cluster when every cluster's VMs run on it"
                    .to_string(),
            );
        }
        notes.push("storage: requested sizes; the backends' free space is not known".to_string());
        let name = infra_name(&placement, clusters_on.get(&placement).map_or(&[][..], Vec::as_slice));
        infrastructures.push(InfraCapacity { name, rows, notes });
    }
    CapacityReport { warning_percent: inv.capacity_warning, infrastructures }
}

/// Adds the roll-out peak (`resolve::capacity::surge::check`) to the
/// management cluster's rows, and a note saying what it is.
pub fn add_peak(report: &mut CapacityReport, extra: &[(String, u128)]) {
    if extra.is_empty() {
        return;
    }
    let Some(infra) = report.infrastructures.iter_mut().find(|i| i.name == "the management cluster") else { return };
    let mut parts = Vec::new();
    for r in infra.rows.iter_mut() {
        let Some((_, n)) = extra.iter().find(|(k, _)| *k == r.key) else { continue };
        let peak = r.after.saturating_add(clamp(*n));
        r.peak = Some(peak);
        let share =
            r.capacity.filter(|c| *c > 0).map(|c| format!(" ({}%)", show::percent(u128::from(peak), u128::from(c))));
        parts.push(format!("{} {}{}", r.resource, amount(r.unit, peak), share.unwrap_or_default()));
    }
    if !parts.is_empty() {
        infra.notes.push(format!(
            "roll-out peak, the fleet and the largest surge VM of a pool this plan replaces: {}",
            parts.join(", ")
        ));
    }
}

/// How a table names an infrastructure, by the clusters whose VMs run there.
fn infra_name(p: &Placement, clusters: &[&str]) -> String {
    match p {
        Placement::Management => "the management cluster".to_string(),
        Placement::External(_) if clusters.is_empty() => "an infrastructure cluster no longer used".to_string(),
        Placement::External(_) => format!("the infrastructure cluster of {}", clusters.join(", ")),
    }
}

fn amount(unit: Unit, n: u64) -> String {
    match unit {
        Unit::Millicores => show::cpu(u128::from(n)),
        Unit::Bytes => show::bytes(u128::from(n)),
        Unit::Devices => n.to_string(),
    }
}

fn change(unit: Unit, before: u64, after: u64) -> String {
    match after.cmp(&before) {
        std::cmp::Ordering::Equal => String::new(),
        std::cmp::Ordering::Greater => format!("+{}", amount(unit, after - before)),
        std::cmp::Ordering::Less => format!("-{}", amount(unit, before - after)),
    }
}

fn use_of(row: &CapacityRow, warning: u32) -> String {
    match row.percent {
        Some(p) if p > 100 => format!("{p}% (over capacity)"),
        Some(p) if p > u64::from(warning) => format!("{p}% (above {warning}%)"),
        Some(p) => format!("{p}%"),
        None => String::new(),
    }
}

/// Aligned columns for terminals and plain-text plans.
pub fn text(report: &CapacityReport) -> String {
    let mut out = String::new();
    for infra in &report.infrastructures {
        let _ = writeln!(out, "Capacity of {}:", infra.name);
        let live = infra.rows.iter().any(|r| r.before.is_some());
        let header = [
            "resource".to_string(),
            "capacity".to_string(),
            if live { "this fleet: before → after".to_string() } else { "this fleet".to_string() },
            if live { "change".to_string() } else { String::new() },
            "use".to_string(),
        ];
        let mut lines = vec![header];
        for r in &infra.rows {
            let cap = r.capacity.map_or_else(|| "-".to_string(), |c| amount(r.unit, c));
            let (fleet, delta) = match r.before {
                Some(b) => (format!("{} → {}", amount(r.unit, b), amount(r.unit, r.after)), change(r.unit, b, r.after)),
                None => (amount(r.unit, r.after), String::new()),
            };
            let name = if r.detail { format!("  {}", r.resource) } else { r.resource.clone() };
            lines.push([name, cap, fleet, delta, use_of(r, report.warning_percent)]);
        }
        let widths: Vec<usize> =
            (0..5).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
        for l in &lines {
            let mut line = format!(
                "  {:<w0$}  {:>w1$}  {:>w2$}",
                l[0],
                l[1],
                l[2],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            );
            if widths[3] > 0 {
                let _ = write!(line, "  {:>w3$}", l[3], w3 = widths[3]);
            }
            let _ = write!(line, "  {}", l[4]);
            let _ = writeln!(out, "{}", line.trim_end());
        }
        for n in &infra.notes {
            let _ = writeln!(out, "  ({n})");
        }
        out.push('\n');
    }
    out
}

/// One table per infrastructure, for a pull-request comment.
pub fn markdown(report: &CapacityReport) -> String {
    let mut out = String::new();
    for infra in &report.infrastructures {
        let _ = writeln!(out, "#### Capacity of {}\n", infra.name);
        let live = infra.rows.iter().any(|r| r.before.is_some());
        if live {
            out.push_str("| Resource | Capacity | Before | After | Change | Use |\n|---|--:|--:|--:|--:|--:|\n");
        } else {
            out.push_str("| Resource | Capacity | This fleet | Use |\n|---|--:|--:|--:|\n");
        }
        for r in &infra.rows {
            let cap = r.capacity.map_or_else(|| "–".to_string(), |c| amount(r.unit, c));
            let name = r.resource.replace('|', "\\|");
            let name = if r.detail { format!("↳ {name}") } else { name };
            let use_ = use_of(r, report.warning_percent);
            let use_ = if r.percent.is_some_and(|p| p > u64::from(report.warning_percent)) {
                format!("**{use_}**")
            } else {
                use_
            };
            match r.before {
                Some(b) => {
                    let _ = writeln!(
                        out,
                        "| {name} | {cap} | {} | {} | {} | {use_} |",
                        amount(r.unit, b),
                        amount(r.unit, r.after),
                        change(r.unit, b, r.after)
                    );
                }
                None => {
                    let _ = writeln!(out, "| {name} | {cap} | {} | {use_} |", amount(r.unit, r.after));
                }
            }
        }
        out.push('\n');
        for n in &infra.notes {
            let _ = writeln!(out, "_{n}_  ");
        }
        out.push('\n');
    }
    out
}
