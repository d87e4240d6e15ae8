//! Will the fleet's VMs run on the nodes? Each pool's VM must fit on some
//! node shape; then every VM is packed onto the nodes first-fit decreasing,
//! and on the management cluster the hosted control planes (many small
//! pods, counted as a total) take what is left. Errors name the resource that runs out first and the pools that
//! take most of it; a warning marks use above the threshold.

use std::collections::BTreeMap;

use super::demand::{Demand, Placement, PoolDemand};
use super::show;
use super::sizing;
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::ir::{Fleet, InfraNodes, Inventory};
use crate::source::Span;

/// The infrastructure the inventory describes: the management cluster when
/// it was discovered; when declared, the one external infrastructure every
/// cluster uses, or else the management cluster.
pub fn described_placement(fleet: &Fleet) -> Placement {
    if fleet.inventory.management_only {
        return Placement::Management;
    }
    let mut placements = fleet.clusters.iter().map(Placement::of);
    match placements.next() {
        Some(first @ Placement::External(_)) if placements.all(|p| p == first) => first,
        _ => Placement::Management,
    }
}

/// The infrastructure the inventory's node shapes describe, if any.
pub fn nodes_placement(fleet: &Fleet) -> Option<Placement> {
    let inv = &fleet.inventory;
    (inv.known.nodes && !inv.nodes.is_empty()).then(|| described_placement(fleet))
}

/// A resource the packing counts: CPU, memory, or one device name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Dim {
    Cpu,
    Memory,
    Device(String),
}

impl Dim {
    pub(super) fn name(&self) -> String {
        match self {
            Dim::Cpu => "vCPU".into(),
            Dim::Memory => "memory".into(),
            Dim::Device(d) => format!("host device `{d}`"),
        }
    }
    pub(super) fn amount(&self, n: u128) -> String {
        match self {
            Dim::Cpu => format!("{} vCPU", show::cpu(n)),
            Dim::Memory => show::bytes(n),
            Dim::Device(d) => format!("{n} {d}"),
        }
    }
}

/// One VM's needs, per dimension, as a vector aligned with `dims`.
pub(super) fn needs(p: &PoolDemand, dims: &[Dim]) -> Vec<u128> {
    dims.iter()
        .map(|d| match d {
            Dim::Cpu => u128::from(p.cpu_millis),
            Dim::Memory => p.memory,
            Dim::Device(name) => p.devices.iter().find(|(n, _)| n == name).map_or(0, |(_, c)| u128::from(*c)),
        })
        .collect()
}

fn node_capacity(g: &InfraNodes, dims: &[Dim]) -> Vec<u128> {
    dims.iter()
        .map(|d| match d {
            Dim::Cpu => u128::from(g.cpu_millis),
            Dim::Memory => g.memory,
            Dim::Device(name) => g.devices.iter().find(|(n, _)| n == name).map_or(0, |(_, c)| u128::from(*c)),
        })
        .collect()
}

fn describe_node(g: &InfraNodes, dims: &[Dim]) -> String {
    let mut parts = vec![format!("{} vCPU", show::cpu(u128::from(g.cpu_millis))), show::bytes(g.memory)];
    for d in dims.iter().skip(2) {
        if let Dim::Device(name) = d {
            let n = g.devices.iter().find(|(n, _)| n == name).map_or(0, |(_, c)| *c);
            parts.push(format!("{n} {name}"));
        }
    }
    parts.join(", ")
}

fn describe_vm(p: &PoolDemand) -> String {
    let guest = p.shape.memory;
    let mut parts = vec![
        format!("{} vCPU", show::cpu(u128::from(p.cpu_millis))),
        format!(
            "{} ({} + {} KubeVirt overhead)",
            show::bytes(p.memory),
            show::bytes(guest),
            show::bytes(p.memory.saturating_sub(guest))
        ),
    ];
    for (d, c) in &p.devices {
        parts.push(format!("{c} {d}"));
    }
    parts.join(", ")
}

/// Checks fit, packing and thresholds on the infrastructure the node shapes
/// describe, and device totals against the warning threshold.
pub fn check(fleet: &Fleet, demand: &Demand, diags: &mut Diagnostics) {
    device_thresholds(fleet, demand, diags);
    let Some(placement) = nodes_placement(fleet) else { return };
    let inv = &fleet.inventory;
    let where_ = match placement {
        Placement::Management => "the management cluster".to_string(),
        Placement::External(_) => "the infrastructure cluster".to_string(),
    };
    let dims = dims_of(inv);
    let pools: Vec<&PoolDemand> = demand.pools.iter().filter(|p| p.placement == placement && p.vms > 0).collect();
    let shapes: Vec<Vec<u128>> = inv.nodes.iter().map(|g| node_capacity(g, &dims)).collect();

    let mut fitting: Vec<(&PoolDemand, Vec<u128>)> = Vec::new();
    for p in &pools {
        let need = needs(p, &dims);
        if shapes.iter().any(|s| need.iter().zip(s).all(|(n, c)| n <= c)) {
            fitting.push((p, need));
        } else {
            diags.push(does_not_fit(p, &need, &dims, inv, &where_));
        }
    }

    let control_planes: Vec<_> = if placement == Placement::Management {
        demand.control_planes.iter().map(|cp| (cp, sizing::control_plane(cp.availability))).collect()
    } else {
        Vec::new()
    };
    // Totals, over every pool (fitting or not) and control plane.
    let capacity: Vec<u128> =
        (0..dims.len()).map(|i| inv.nodes.iter().zip(&shapes).map(|(g, s)| u128::from(g.count) * s[i]).sum()).collect();
    let mut total = vec![0u128; dims.len()];
    for p in &pools {
        for (t, n) in total.iter_mut().zip(needs(p, &dims)) {
            *t += u128::from(p.vms) * n;
        }
    }
    for (_, r) in &control_planes {
        total[0] += u128::from(r.cpu_millis);
        total[1] += r.memory;
    }

    // Who takes most of resource `i`: (span, text, amount), largest first.
    let contributors = |i: usize| -> Vec<(Option<Span>, String, u128)> {
        let mut list: Vec<(Option<Span>, String, u128)> = pools
            .iter()
            .map(|p| {
                let per_vm = needs(p, &dims)[i];
                let n = u128::from(p.vms) * per_vm;
                (p.span, format!("{}: {} × {} = {}", p.name, p.vms, dims[i].amount(per_vm), dims[i].amount(n)), n)
            })
            .filter(|(_, _, n)| *n > 0)
            .collect();
        if i < 2 && !control_planes.is_empty() {
            let n: u128 =
                control_planes.iter().map(|(_, r)| if i == 0 { u128::from(r.cpu_millis) } else { r.memory }).sum();
            let who = match control_planes.len() {
                1 => "its control plane".to_string(),
                n => format!("{n} control planes"),
            };
            list.push((control_planes[0].0.span, format!("{who}: {}", dims[i].amount(n)), n));
        }
        list.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)));
        list
    };
    let labelled = |mut d: Diagnostic, i: usize| -> Diagnostic {
        for (span, text, n) in contributors(i).into_iter().take(3) {
            if let Some(span) = span {
                d = d.label(span, format!("{text} ({}% of the {})", show::percent(n, capacity[i]), dims[i].name()));
            }
        }
        for g in &inv.nodes {
            d = d.label(g.name.span, format!("{}: {} × {}", group_name(g, inv), g.count, describe_node(g, &dims)));
        }
        d
    };

    // Over 100% in total: the most used of CPU and memory runs out first
    // (devices over their total are reported by the device rules).
    let over: Vec<usize> = (0..2).filter(|&i| total[i] > capacity[i]).collect();
    if let Some(&i) = over.iter().max_by_key(|&&i| (show::percent(total[i], capacity[i]), std::cmp::Reverse(i))) {
        let also = over
            .iter()
            .filter(|&&j| j != i)
            .map(|&j| format!("; {} too, at {}%", dims[j].name(), show::percent(total[j], capacity[j])))
            .collect::<String>();
        let d = Diagnostic::error(
            Code::OverCapacity,
            format!(
                "{where_} runs out of {} first: the fleet requests {} of {} ({}%){also}",
                dims[i].name(),
                dims[i].amount(total[i]),
                dims[i].amount(capacity[i]),
                show::percent(total[i], capacity[i])
            ),
        )
        .help(format!(
            "lower replicas (or autoscaling max), cores or memory of the pools named here, or add nodes; VMs request {} and memory plus KubeVirt's overhead, each control plane {}",
            cpu_rule(&inv.kubevirt),
            "5 vCPU and 18Gi (highly available) or 3 vCPU and 10Gi (single replica)"
        ));
        diags.push(labelled(d, i));
        return;
    }

    // First-fit decreasing: largest VMs first (by their largest share of any
    // resource), each on the first node with room for it.
    fitting.sort_by(|(a, na), (b, nb)| {
        let share = |n: &Vec<u128>| {
            n.iter().zip(&capacity).map(|(x, c)| if *c == 0 { 0.0 } else { *x as f64 / *c as f64 }).fold(0.0, f64::max)
        };
        share(nb).total_cmp(&share(na)).then(a.name.cmp(&b.name))
    });
    let mut free = free_nodes(inv, &shapes);
    let mut unplaced: Option<(&PoolDemand, u32, usize)> = None;
    for (p, need) in &fitting {
        let left = place(&mut free, need, p.vms);
        if left > 0 && unplaced.is_none() {
            // The resource most nodes lack for this VM.
            let i = (0..dims.len())
                .filter(|&i| need[i] > 0)
                .max_by_key(|&i| (free.iter().filter(|f| f[i] < need[i]).count(), show::percent(total[i], capacity[i])))
                .unwrap_or(0);
            unplaced = Some((p, left, i));
        }
    }
    if let Some((p, left, i)) = unplaced {
        let device_over = matches!(&dims[i], Dim::Device(name) if inv.host_devices.iter().any(|h| h.name.value == *name && total[i] > u128::from(h.capacity)));
        if !device_over {
            let d = Diagnostic::error(
                Code::OverCapacity,
                format!(
                    "{where_} runs out of {} first: {left} of the {} VMs of `{}` find no node with {} free, though the fleet requests {}% of its {} in total",
                    dims[i].name(),
                    p.vms,
                    p.name,
                    dims[i].amount(needs(p, &dims)[i]),
                    show::percent(total[i], capacity[i]),
                    dims[i].name()
                ),
            )
            .help("VMs cannot span nodes: what is left is scattered over nodes too small for one more VM; use smaller VMs, fewer of them, or larger nodes");
            diags.push(labelled(d, i));
        }
        return;
    }
    // The control planes' many small pods take what the VMs leave: their
    // total fits whenever the fleet's total does, checked above.

    // Near capacity.
    let threshold = u128::from(inv.capacity_warning);
    // Devices warn by their totals (`device_thresholds`), with or without nodes.
    let near: Vec<usize> = (0..2).filter(|&i| capacity[i] > 0 && total[i] * 100 > capacity[i] * threshold).collect();
    if let Some(&i) = near.iter().max_by_key(|&&i| (show::percent(total[i], capacity[i]), std::cmp::Reverse(i))) {
        let list = near
            .iter()
            .map(|&j| format!("{}% of the {}", show::percent(total[j], capacity[j]), dims[j].name()))
            .collect::<Vec<_>>()
            .join(", ");
        let d = Diagnostic::warning(
            Code::NearCapacity,
            format!("the fleet would use {list} of {where_}, above the {threshold}% warning threshold"),
        )
        .help(format!(
            "leave headroom for a node failure, upgrades (a Replace roll-out adds a VM per pool) and live migration; or set `capacity-warning` in `infra` above {threshold}"
        ));
        diags.push(labelled(d, i));
    }
}

/// The resources packing counts: CPU, memory, and the devices some node
/// offers (others are totals only).
pub(super) fn dims_of(inv: &Inventory) -> Vec<Dim> {
    let mut dims = vec![Dim::Cpu, Dim::Memory];
    let node_devices: std::collections::BTreeSet<&str> =
        inv.nodes.iter().flat_map(|g| g.devices.iter().map(|(d, _)| d.as_str())).collect();
    dims.extend(node_devices.iter().map(|d| Dim::Device(d.to_string())));
    dims
}

/// What each node has free before anything is placed: one entry per node
/// (declared groups are at most 5,000 nodes each).
pub(super) fn free_nodes(inv: &Inventory, shapes: &[Vec<u128>]) -> Vec<Vec<u128>> {
    let mut free: Vec<Vec<u128>> = Vec::new();
    for (g, s) in inv.nodes.iter().zip(shapes) {
        free.extend(std::iter::repeat_n(s, g.count as usize).cloned());
    }
    free
}

/// Places `vms` VMs of `need` first-fit on `free`; returns how many found
/// no node.
pub(super) fn place(free: &mut [Vec<u128>], need: &[u128], vms: u32) -> u32 {
    let mut left = vms;
    for node in free.iter_mut() {
        if left == 0 {
            break;
        }
        let room = need.iter().zip(node.iter()).filter(|(n, _)| **n > 0).map(|(n, f)| f / n).min().unwrap_or(u128::MAX);
        let k = u32::try_from(room.min(u128::from(left))).unwrap_or(left);
        for (f, n) in node.iter_mut().zip(need) {
            *f -= u128::from(k) * n;
        }
        left -= k;
    }
    left
}

/// The fleet's VMs on `placement`, each with its needs, packed first-fit
/// decreasing as `check` packs them: what is left free on each node.
pub(super) fn packed(inv: &Inventory, demand: &Demand, placement: &Placement, dims: &[Dim]) -> Vec<Vec<u128>> {
    let shapes: Vec<Vec<u128>> = inv.nodes.iter().map(|g| node_capacity(g, dims)).collect();
    let capacity: Vec<u128> =
        (0..dims.len()).map(|i| inv.nodes.iter().zip(&shapes).map(|(g, s)| u128::from(g.count) * s[i]).sum()).collect();
    let mut pools: Vec<(&PoolDemand, Vec<u128>)> =
        demand.pools.iter().filter(|p| p.placement == *placement && p.vms > 0).map(|p| (p, needs(p, dims))).collect();
    pools.sort_by(|(a, na), (b, nb)| {
        let share = |n: &Vec<u128>| {
            n.iter().zip(&capacity).map(|(x, c)| if *c == 0 { 0.0 } else { *x as f64 / *c as f64 }).fold(0.0, f64::max)
        };
        share(nb).total_cmp(&share(na)).then(a.name.cmp(&b.name))
    });
    let mut free = free_nodes(inv, &shapes);
    for (p, need) in &pools {
        place(&mut free, need, p.vms);
    }
    free
}

/// A node group as diagnostics name it: the declared name, or the first of
/// the discovered nodes of that shape.
fn group_name(g: &InfraNodes, inv: &Inventory) -> String {
    match (inv.management_only, g.count) {
        (false, _) => format!("nodes `{}`", g.name.value),
        (true, 1) => format!("Node `{}` allocatable", g.name.value),
        (true, n) => format!("Node `{}` and {} like it, allocatable", g.name.value, n - 1),
    }
}

fn cpu_rule(k: &crate::ir::KubevirtSettings) -> String {
    format!("cores ÷ {} CPU (burstable) or whole cores (guaranteed)", k.cpu_allocation_ratio)
}

fn does_not_fit(p: &PoolDemand, need: &[u128], dims: &[Dim], inv: &Inventory, where_: &str) -> Diagnostic {
    let short: Vec<String> = dims
        .iter()
        .enumerate()
        .filter(|(i, _)| inv.nodes.iter().all(|g| node_capacity(g, dims)[*i] < need[*i]))
        .map(|(i, d)| {
            let best = inv.nodes.iter().map(|g| node_capacity(g, dims)[i]).max().unwrap_or(0);
            format!("{} (the largest node has {})", d.amount(need[i]), d.amount(best))
        })
        .collect();
    let reason = if short.is_empty() {
        "no single node has all of it".to_string()
    } else {
        format!("no node has {}", short.join(" or "))
    };
    let mut d =
        Diagnostic::error(Code::PoolDoesNotFit, format!("no node of {where_} can run a VM of `{}`: {reason}", p.name));
    if let Some(span) = p.span {
        d = d.label(span, format!("each VM requests {}", describe_vm(p)));
    }
    for g in &inv.nodes {
        d = d.label(g.name.span, format!("{}: {}", group_name(g, inv), describe_node(g, dims)));
    }
    d.help(format!(
        "a VM runs on one node: lower the pool's cores, memory or host devices per VM, or add nodes that can hold one; VMs request {} and their memory plus KubeVirt's overhead",
        cpu_rule(&inv.kubevirt)
    ))
}

/// Devices declared only as totals still warn above the threshold.
fn device_thresholds(fleet: &Fleet, demand: &Demand, diags: &mut Diagnostics) {
    let inv = &fleet.inventory;
    if !inv.known.devices {
        return;
    }
    let threshold = u128::from(inv.capacity_warning);
    let described: std::collections::BTreeSet<&str> =
        fleet.clusters.iter().filter(|c| inv.describes(c)).map(|c| c.name.value.as_str()).collect();
    let mut used: BTreeMap<&str, (u128, Vec<&PoolDemand>)> = BTreeMap::new();
    for p in demand.pools.iter().filter(|p| described.contains(p.cluster.as_str())) {
        for (d, c) in &p.devices {
            let e = used.entry(d.as_str()).or_default();
            e.0 += u128::from(p.vms) * u128::from(*c);
            e.1.push(p);
        }
    }
    for h in &inv.host_devices {
        let Some((n, pools)) = used.get(h.name.value.as_str()) else { continue };
        let cap = u128::from(h.capacity);
        if cap == 0 || *n > cap || n * 100 <= cap * threshold {
            continue;
        }
        let mut d = Diagnostic::warning(
            Code::NearCapacity,
            format!(
                "the fleet would use {n} of the {cap} `{}` host devices ({}%), above the {threshold}% warning threshold",
                h.name.value,
                show::percent(*n, cap)
            ),
        );
        for p in pools.iter().take(3) {
            if let Some(span) = p.span {
                let count = p.devices.iter().find(|(d, _)| *d == h.name.value).map_or(0, |(_, c)| *c);
                d = d.label(span, format!("{}: {} × {count}", p.name, p.vms));
            }
        }
        diags.push(d.help(format!(
            "leave room for a failed device or a Replace roll-out, which starts a new VM before removing the old one; or set `capacity-warning` in `infra` above {threshold}"
        )));
    }
}
