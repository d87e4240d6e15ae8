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
                if !listed && let Some(diag) = name_diagnostic(&d.name.value, d.name.span) {
                    let is_error = diag.severity == crate::diagnostic::Severity::Error;
                    diags.push(diag);
                    if is_error {
                        continue;
                    }
                }
                let discovery = inv.discovery.as_deref().filter(|_| inv.describes(c));
                if let Some(dis) = discovery
                    && let Some(permitted) = &dis.permitted_devices
                    && !permitted.iter().any(|p| p.resource == d.name.value)
                {
                    diags.push(not_permitted(&d.name.value, d.name.span, dis, permitted));
                }
                if known && !listed {
                    diags.push(unknown(&d.name.value, d.name.span, inv, discovery));
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
        if inv.discovery.is_none()
            && let Some(diag) = name_diagnostic(&h.name.value, h.name.span)
        {
            diags.push(diag);
        }
        let Some(d) = demand.get(h.name.value.as_str()) else { continue };
        if d.total <= u64::from(h.capacity) {
            continue;
        }
        let has = match inv.discovery.as_deref().and_then(|dis| dis.nodes_with(&h.name.value)) {
            Some(nodes) => format!("the allocatable of {nodes} has {}", h.capacity),
            None => format!("the infrastructure has {}", h.capacity),
        };
        let mut diag = Diagnostic::error(
            Code::HostDeviceCapacity,
            format!("host device `{}`: the fleet needs {} but {has}", h.name.value, d.total),
        );
        for p in &d.parts {
            diag = diag.label(p.span, format!("{}/{}: {} × {} = {}", p.cluster, p.pool, p.vms, p.count, p.n));
        }
        if inv.discovery.is_none() {
            diag = diag.label(h.name.span, format!("capacity {}", h.capacity));
        }
        diags.push(diag.help(if inv.discovery.is_some() {
            "demand is replicas (or autoscaling max) × count, summed over every pool: lower replicas or counts, or add nodes with the device"
        } else {
            "demand is replicas (or autoscaling max) × count, summed over every pool: lower replicas or counts, or raise the capacity"
        }));
    }
}

/// A device the pool's VMs use that the infrastructure does not offer:
/// declared in `infra`, or in no Node's allocatable.
fn unknown(name: &str, span: Span, inv: &crate::ir::Inventory, discovery: Option<&crate::ir::Discovery>) -> Diagnostic {
    let offered = inv.host_devices.iter().map(|h| h.name.value.as_str());
    let list = offered.clone().collect::<Vec<_>>().join(", ");
    let diag = match discovery {
        Some(_) => Diagnostic::error(
            Code::UnknownHostDevice,
            format!("no Node of the management cluster has host device `{name}` in its allocatable"),
        )
        .label(span, "advertised by no Node"),
        None => {
            Diagnostic::error(Code::UnknownHostDevice, format!("the infrastructure offers no host device `{name}`"))
                .label(span, "not in `infra`")
        }
    };
    match (closest(name, offered), discovery) {
        (Some(near), _) => diag.help(format!("did you mean `{near}`?")).suggest(span, crate::fmt::quote(near)),
        (None, Some(dis)) if list.is_empty() => diag.help(format!(
            "no Node advertises any host device: a device plugin must advertise `{name}` on the nodes that have the device (KubeVirt's own, for a device {} permits without externalResourceProvider, or the vendor's, e.g. the NVIDIA GPU Operator)",
            dis.kubevirt_name()
        )),
        (None, Some(_)) => diag.help(format!(
            "the Nodes advertise: {list}; use one of them, or have the device's plugin advertise `{name}` on the nodes that have it"
        )),
        (None, None) if list.is_empty() => diag.help("declare it in `infra { host-device NAME capacity=N }`"),
        (None, None) => diag.help(format!("known devices: {list}")),
    }
}

/// A device the KubeVirt resource does not permit: KubeVirt refuses the VM.
fn not_permitted(
    name: &str,
    span: Span,
    dis: &crate::ir::Discovery,
    permitted: &[crate::ir::PermittedDevice],
) -> Diagnostic {
    let kv = dis.kubevirt_name();
    let list: Vec<String> = permitted
        .iter()
        .map(|p| {
            let kind = if p.mediated { "mediated" } else { "PCI" };
            let external = if p.external { ", external provider" } else { "" };
            format!("{} ({kind}{external})", p.resource)
        })
        .collect();
    let message = if list.is_empty() {
        format!("host device `{name}` is not permitted: {kv} permits no host devices")
    } else {
        format!("host device `{name}` is not permitted by {kv}, which permits only {}", list.join(", "))
    };
    let diag = Diagnostic::error(Code::HostDeviceNotPermitted, message).label(span, "not in permittedHostDevices");
    let fix = format!(
        "add `resourceName: {name}` to spec.configuration.permittedHostDevices (pciHostDevices or mediatedDevices) of {kv}, with externalResourceProvider: true if another device plugin advertises it"
    );
    match closest(name, permitted.iter().map(|p| p.resource.as_str())) {
        Some(near) => {
            diag.help(format!("did you mean `{near}`? Otherwise {fix}")).suggest(span, crate::fmt::quote(near))
        }
        None => diag.help(format!("{fix}; or use a permitted device")),
    }
}

/// Why a host device name can never be scheduled, if it cannot: when it is
/// not a Kubernetes resource name at all, or one Kubernetes reserves. A
/// name without a vendor domain is fine: a KubeVirt `resourceName` can be
/// anything, and kube targets check it against the cluster.
fn name_diagnostic(name: &str, span: Span) -> Option<Diagnostic> {
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
        None if ["cpu", "memory", "storage", "ephemeral-storage", "pods"].contains(&name)
            || name.starts_with("hugepages-") =>
        {
            invalid(
                "it is a resource of Kubernetes itself".into(),
                "set `cores` and `memory` for compute; `host-device` passes devices through".into(),
            )
        }
        None => None,
    }
}
