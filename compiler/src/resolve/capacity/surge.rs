//! Room for roll-outs. A NodePool with `upgrade-type replace` rolls its
//! nodes by replacement: HyperShift's RollingUpdate (max surge 1, max
//! unavailable 0 unless the NodePool says otherwise) starts a new VM before
//! it removes an old one. A change that rolls a pool needs room for those
//! surge VMs on top of the fleet's VMs; without it the roll-out never
//! starts. Each rolling pool is checked on its own: pools that roll at the
//! same time wait for each other's old VMs to go, which is slower but
//! makes progress; a surge VM that does not fit even alone never starts.

use super::demand::{Demand, PoolDemand};
use super::fit::{Dim, dims_of, needs, nodes_placement, packed, place};
use std::collections::HashMap;

use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::ir::Fleet;

/// A pool whose change replaces its VMs, and how many new VMs it starts at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// The cluster and the NodePool object's name.
    pub cluster: String,
    pub node_pool: String,
    /// `maxSurge`: 1 by default.
    pub surge: u32,
}

/// `maxSurge` of a live NodePool (`spec.management.replace.rollingUpdate`):
/// a number, or a percentage of the replicas rounded up; 1 when unset.
pub fn max_surge(node_pool: &serde_json::Value, replicas: u64) -> u32 {
    node_pool
        .pointer("/spec/management/replace/rollingUpdate/maxSurge")
        .and_then(crate::quantity::IntOrPercent::from_json)
        .map_or(1, |surge| u32::try_from(surge.of(replicas)).unwrap_or(u32::MAX))
}

/// The surge VMs of each rolling pool, on top of the fleet's VMs packed on
/// the nodes: each pool whose surge finds no node is reported (an error
/// when a host device is missing, a warning for CPU or memory). Returns the
/// peak a roll-out adds, the largest pool's surge, per dimension key
/// (`cpu`, `memory`, `device/NAME`).
pub fn check(fleet: &Fleet, rollouts: &[Rollout], diags: &mut Diagnostics) -> Vec<(String, u128)> {
    if rollouts.is_empty() {
        return Vec::new(); // No-change plans pay nothing.
    }
    let demand = Demand::of_fleet(fleet);
    let inv = &fleet.inventory;
    // Looked up by name: a release bump rolls every pool of a large fleet.
    let clusters: HashMap<&str, &crate::ir::Cluster> =
        fleet.clusters.iter().map(|c| (c.name.value.as_str(), c)).collect();
    let pools: HashMap<&str, &PoolDemand> = demand.pools.iter().map(|d| (d.name.as_str(), d)).collect();
    let rolling: Vec<(&PoolDemand, u32)> = rollouts
        .iter()
        .filter(|r| r.surge > 0)
        .filter_map(|r| {
            let c = clusters.get(r.cluster.as_str())?;
            let p = c.node_pools.iter().find(|p| crate::resolve::names::node_pool(c, p) == r.node_pool)?;
            let name = format!("{}/{}", c.name.value, p.name.value);
            pools.get(name.as_str()).map(|d| (*d, r.surge))
        })
        .collect();
    if rolling.is_empty() {
        return Vec::new();
    }
    let mut rolling = rolling;
    rolling.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let mut peak: Vec<(String, u128)> = Vec::new();
    let mut add = |key: String, n: u128| match peak.iter_mut().find(|(k, _)| *k == key) {
        Some((_, t)) => *t = (*t).max(n),
        None => peak.push((key, n)),
    };
    for (p, surge) in &rolling {
        add("cpu".into(), u128::from(*surge) * u128::from(p.cpu_millis));
        add("memory".into(), u128::from(*surge) * p.memory);
        for (d, c) in &p.devices {
            add(format!("device/{d}"), u128::from(*surge) * u128::from(*c));
        }
    }
    // With node shapes: per node, as the packing check places VMs.
    if let Some(placement) = nodes_placement(fleet) {
        let where_ = match placement {
            super::demand::Placement::Management => "the management cluster",
            super::demand::Placement::External(_) => "the infrastructure cluster",
        };
        let dims = dims_of(inv);
        let before = packed(inv, &demand, &placement, &dims);
        let mut failed = Vec::new();
        for (p, surge) in rolling.iter().filter(|(p, _)| p.placement == placement) {
            let need = needs(p, &dims);
            if place(&mut before.clone(), &need, *surge) == 0 {
                continue;
            }
            // What no node has enough of, free.
            let lacking: Vec<usize> =
                (0..dims.len()).filter(|&i| need[i] > 0 && before.iter().all(|f| f[i] < need[i])).collect();
            let lacking = if lacking.is_empty() { (0..dims.len()).filter(|&i| need[i] > 0).collect() } else { lacking };
            let device = lacking.iter().any(|&i| matches!(dims[i], Dim::Device(_)));
            let amount = |i: usize, n: u128| match dims[i] {
                Dim::Device(_) => dims[i].amount(n),
                _ => format!("{} of {}", dims[i].amount(n), dims[i].name()),
            };
            let wanted: Vec<String> = lacking.iter().map(|&i| amount(i, need[i])).collect();
            let most: Vec<String> =
                lacking.iter().map(|&i| amount(i, before.iter().map(|f| f[i]).max().unwrap_or(0))).collect();
            failed.push((
                *p,
                *surge,
                device,
                format!(
                    "which needs a node of {where_} with {} free; the most any node has free is {}",
                    wanted.join(" and "),
                    most.join(" and ")
                ),
            ));
        }
        report(failed, diags);
        return peak;
    }
    // Devices known as totals only (`infra { host-device … capacity= }`).
    let mut used: Vec<(String, u128)> = Vec::new();
    for q in demand.pools.iter().filter(|q| clusters.get(q.cluster.as_str()).is_some_and(|c| inv.describes(c))) {
        for (d, c) in &q.devices {
            match used.iter_mut().find(|(k, _)| k == d) {
                Some((_, t)) => *t += u128::from(q.vms) * u128::from(*c),
                None => used.push((d.clone(), u128::from(q.vms) * u128::from(*c))),
            }
        }
    }
    let mut failed = Vec::new();
    if inv.known.devices {
        for (p, surge) in &rolling {
            for (d, c) in &p.devices {
                let Some(h) = inv.host_devices.iter().find(|h| h.name.value == *d) else { continue };
                let Some(u) = used.iter().find(|(k, _)| k == d).map(|(_, t)| *t) else { continue };
                let extra = u128::from(*surge) * u128::from(*c);
                if u <= u128::from(h.capacity) && u + extra > u128::from(h.capacity) {
                    let what =
                        format!("which needs {extra} more {d}, but the fleet already uses {u} of the {}", h.capacity);
                    failed.push((*p, *surge, true, what));
                }
            }
        }
    }
    report(failed, diags);
    peak
}

/// One diagnostic per reason: a release bump over a large fleet makes many
/// pools short of the same thing.
fn report(failed: Vec<(&PoolDemand, u32, bool, String)>, diags: &mut Diagnostics) {
    let mut groups: Vec<(bool, String, u32, Vec<&PoolDemand>)> = Vec::new();
    for (p, surge, device, why) in failed {
        match groups.iter_mut().find(|(d, w, s, _)| *d == device && *w == why && *s == surge) {
            Some((_, _, _, list)) => list.push(p),
            None => groups.push((device, why, surge, vec![p])),
        }
    }
    for (device, why, surge, list) in groups {
        let mut d = no_room(list[0], surge, device, &why);
        if list.len() > 1 {
            let others: Vec<String> = list[1..].iter().take(3).map(|p| format!("`{}`", p.name)).collect();
            let more = list.len().saturating_sub(4);
            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
            d.message = format!("{}; the same holds for {}{more}", d.message, others.join(", "));
            for p in list[1..].iter().take(3) {
                if let Some(span) = p.span {
                    d = d.label(span, "also replaces its VMs");
                }
            }
        }
        diags.push(d);
    }
}

/// `why`: what the surge VMs need that the infrastructure does not have.
fn no_room(p: &PoolDemand, surge: u32, device: bool, why: &str) -> Diagnostic {
    let vms = if surge == 1 { "one new VM".to_string() } else { format!("{surge} new VMs") };
    let message =
        format!("the roll-out of `{}` has no room: it starts {vms} before removing an old one, {why}", p.name);
    let d = if device {
        Diagnostic::error(Code::NoRolloutRoom, message)
    } else {
        Diagnostic::warning(Code::NoRolloutRoom, message)
    };
    let d = match p.span {
        Some(span) => d.label(span, "replaces its VMs (upgrade-type replace)"),
        None => d,
    };
    d.help(if device {
        "the roll-out cannot start: free a device on some node (fewer replicas of a pool that uses it) or add a node with the device, then apply the change".to_string()
    } else {
        "the new VM may still start if the nodes overcommit, or stay pending and stall the roll-out: make room on a node (fewer or smaller VMs elsewhere) or add a node".to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::max_surge;
    use serde_json::json;

    #[test]
    fn max_surge_is_a_number_or_a_percentage_of_replicas_rounded_up() {
        let pool = |surge: serde_json::Value| json!({"spec": {"management": {"replace": {"strategy": "RollingUpdate", "rollingUpdate": {"maxSurge": surge}}}}});
        assert_eq!(max_surge(&json!({"spec": {}}), 4), 1, "HyperShift's default");
        assert_eq!(max_surge(&pool(json!(3)), 4), 3);
        assert_eq!(max_surge(&pool(json!("30%")), 4), 2, "1.2 rounds up");
        assert_eq!(max_surge(&pool(json!("0%")), 4), 0);
    }
}
