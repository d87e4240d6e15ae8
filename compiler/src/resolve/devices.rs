//! Host devices (SPEC §4 rule 4): counts, names, known names, and capacity
//! summed over every pool of every cluster of the fleet.

use std::collections::BTreeMap;

use crate::diagnostic::{Code, Diagnostic, Diagnostics, closest};
use crate::ir::Fleet;
use crate::lower::dns1123_subdomain_problem;
use crate::source::Span;

struct Demand<'a> {
    total: u64,
    /// Each pool's part, labelled only when the total is too much.
    parts: Vec<Part<'a>>,
}

/// One pool's demand for one device: `vms` × `count` = `n`.
struct Part<'a> {
    span: Span,
    cluster: &'a str,
    pool: &'a str,
    vms: u64,
    count: u32,
    n: u64,
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
                let known = inv.known.devices && inv.describes(c);
                let listed = inv.host_devices.iter().any(|h| h.name.value == d.name.value);
                if !listed && let Some(diag) = name_diagnostic(&d.name.value, d.name.span, known) {
                    let is_error = diag.severity == crate::diagnostic::Severity::Error;
                    diags.push(diag);
                    if is_error {
                        continue;
                    }
                }
                if known && !listed {
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
                entry.parts.push(Part {
                    span: d.name.span,
                    cluster: &c.name.value,
                    pool: &p.name.value,
                    vms,
                    count: d.count.value,
                    n,
                });
            }
        }
    }
    for h in &inv.host_devices {
        if let Some(diag) = name_diagnostic(&h.name.value, h.name.span, true) {
            diags.push(diag);
        }
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
        for p in &d.parts {
            diag = diag.label(p.span, format!("{}/{}: {} × {} = {}", p.cluster, p.pool, p.vms, p.count, p.n));
        }
        diag = diag.label(h.name.span, format!("capacity {}", h.capacity));
        diags.push(diag.help(
            "demand is replicas (or autoscaling max) × count, summed over every pool: lower replicas or counts, or raise the capacity",
        ));
    }
}

/// Why a host device name can never be scheduled, if it cannot: an error
/// when it is not a Kubernetes resource name at all (or one Kubernetes
/// reserves), a warning when it lacks the vendor domain every device
/// plugin's extended resource has (only when no inventory could say
/// otherwise: `known`).
fn name_diagnostic(name: &str, span: Span, known: bool) -> Option<Diagnostic> {
    let invalid = |reason: String, help: String| {
        Some(
            Diagnostic::error(Code::InvalidHostDevice, format!("`{name}` is not a host device name: {reason}"))
                .label(span, "not a resource name")
                .help(help),
        )
    };
    // `hcp --host-device-name NAME,count:N`.
    if let Some((device, rest)) = name.split_once(',') {
        let count = rest.strip_prefix("count:").filter(|n| n.parse::<u32>().is_ok());
        let help = match count {
            Some(n) => format!("hcpc writes the count as a property: `host-device {device} count={n}`"),
            None => format!("write the count as a property: `host-device {device} count=N`"),
        };
        return invalid("it contains `,` (the count of `hcp --host-device-name`)".into(), help);
    }
    let (prefix, base) = match name.rsplit_once('/') {
        Some((p, b)) => (Some(p), b),
        None => (None, name),
    };
    let base_ok = !base.is_empty()
        && base.len() <= 63
        && base.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && base.starts_with(|c: char| c.is_ascii_alphanumeric())
        && base.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !base_ok {
        return invalid(
            "a resource name is up to 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit"
                .into(),
            "use the resource name the device plugin advertises on the node, e.g. \"nvidia.com/GA100_A100_PCIE_40GB\""
                .into(),
        );
    }
    match prefix {
        Some(p) => {
            if let Some(problem) = dns1123_subdomain_problem(p) {
                return invalid(
                    format!("its domain `{p}`: {problem}"),
                    "write the vendor's domain, e.g. \"nvidia.com/…\"".into(),
                );
            }
            if p == "kubernetes.io" || p.ends_with(".kubernetes.io") {
                return invalid(
                    format!("the domain `{p}` is reserved for Kubernetes"),
                    "host devices are extended resources of the device's vendor, e.g. \"nvidia.com/…\"".into(),
                );
            }
            None
        }
        None if ["cpu", "memory", "storage", "ephemeral-storage", "pods"].contains(&name) || name.starts_with("hugepages-") => {
            invalid(
                "it is a resource of Kubernetes itself".into(),
                "set `cores` and `memory` for compute; `host-device` passes devices through".into(),
            )
        }
        None if !known => Some(
            Diagnostic::warning(
                Code::InvalidHostDevice,
                format!("`{name}` has no vendor domain, which every device plugin's resource name has"),
            )
            .label(span, "no domain")
            .help("VMs schedule only if the infrastructure advertises exactly this name; device plugins advertise names like \"nvidia.com/GA100_A100_PCIE_40GB\" (or declare `host-device` in `infra` to check the name)"),
        ),
        None => None,
    }
}
