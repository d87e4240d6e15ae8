//! Host devices (SPEC §4 rule 4): counts, known names, and capacity summed
//! over every pool of every cluster of the fleet.

use std::collections::BTreeMap;

use crate::diagnostic::{Code, Diagnostic, Diagnostics, closest};
use crate::ir::Fleet;
use crate::source::Span;

struct Demand {
    total: u64,
    /// (span, "cluster/pool: 3 × 2 = 6")
    parts: Vec<(Span, String)>,
}

pub fn check_fleet(fleet: &Fleet, diags: &mut Diagnostics) {
    let inv = &fleet.inventory;
    let mut demand: BTreeMap<&str, Demand> = BTreeMap::new();
    for c in &fleet.clusters {
        for p in &c.node_pools {
            for d in &p.host_devices {
                if d.count.value == 0 {
                    diags.push(
                        Diagnostic::error(Code::HostDeviceCount, format!("host device `{}` has count 0", d.name.value))
                            .label(d.count.span, "zero")
                            .help("use count=1 or more, or remove the host-device"),
                    );
                    continue;
                }
                let known = inv.declared && !(inv.management_only && c.infra_cluster.is_some());
                if known && !inv.host_devices.iter().any(|h| h.name.value == d.name.value) {
                    let mut diag = Diagnostic::error(
                        Code::UnknownHostDevice,
                        format!("the infrastructure offers no host device `{}`", d.name.value),
                    )
                    .label(d.name.span, "not in `infra`");
                    diag = match closest(&d.name.value, inv.host_devices.iter().map(|h| h.name.value.as_str())) {
                        Some(near) => {
                            diag.help(format!("did you mean `{near}`?")).suggest(d.name.span, crate::fmt::quote(near))
                        }
                        None if inv.host_devices.is_empty() => {
                            diag.help("declare it in `infra { host-device NAME capacity=N }`")
                        }
                        None => diag.help(format!(
                            "known devices: {}",
                            inv.host_devices.iter().map(|h| h.name.value.as_str()).collect::<Vec<_>>().join(", ")
                        )),
                    };
                    diags.push(diag);
                    continue;
                }
                if !known && inv.management_only {
                    continue; // Runs on another infrastructure cluster.
                }
                let vms = u64::from(p.scaling.value.max());
                let n = vms.saturating_mul(u64::from(d.count.value));
                let entry = demand.entry(&d.name.value).or_insert(Demand { total: 0, parts: Vec::new() });
                entry.total = entry.total.saturating_add(n);
                entry
                    .parts
                    .push((d.name.span, format!("{}/{}: {vms} × {} = {n}", c.name.value, p.name.value, d.count.value)));
            }
        }
    }
    for h in &inv.host_devices {
        let Some(d) = demand.get(h.name.value.as_str()) else { continue };
        if d.total <= u64::from(h.capacity) {
            continue;
        }
        let mut diag = Diagnostic::error(
            Code::HostDeviceCapacity,
            format!(
                "host device `{}`: the fleet needs {} but the infrastructure has {}",
                h.name.value, d.total, h.capacity
            ),
        );
        for (span, text) in &d.parts {
            diag = diag.label(*span, text.clone());
        }
        diag = diag.label(h.name.span, format!("capacity {}", h.capacity));
        diags.push(diag.help(
            "demand is replicas (or autoscaling max) × count, summed over every pool: lower replicas or counts, or raise the capacity",
        ));
    }
}
