//! Stage 2: KDL syntax trees → typed IR ([`crate::ir::Fleet`]).
//!
//! First every node is checked against the language schema (`check`), then
//! the typed values are read through layers (`layers`): a cluster's own
//! settings over `defaults`. Checks that need only one cluster or pool
//! (required settings, ranges, conflicting settings) happen here; checks
//! across clusters happen in `resolve`.

#![deny(clippy::disallowed_methods)]

mod api_rules;
mod check;
mod layers;
mod profiles;
mod rollout;

use std::path::Path;

use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::ir::*;
use crate::parse::ParsedFile;
use crate::quantity::{Duration, Quantity};
use crate::source::{SourceMap, Span, Spanned};
use hcpc_schema::lang::defaults;

pub use check::{dns1123_label_problem, dns1123_subdomain_problem};
use layers::{Block, Layers, NodeRef, ValueRef};
use profiles::Profiles;

/// What lowering needs besides the syntax trees.
pub struct LowerInput<'a> {
    pub sources: &'a SourceMap,
    pub files: &'a [ParsedFile],
    /// The home directory, for `~/` in paths.
    pub home: Option<&'a Path>,
}

/// Lowers every file into one fleet.
pub fn lower(input: &LowerInput<'_>) -> (Fleet, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut tops: Vec<NodeRef<'_>> = Vec::new();
    for f in input.files {
        let dir = input.sources.get(f.file).dir();
        tops.extend(f.doc.nodes().iter().map(|node| NodeRef { node, file: f.file, dir }));
    }
    // Work proportional to the input, to decide whether to use all cores.
    let size: usize = input.files.iter().map(|f| input.sources.get(f.file).text.len()).sum();
    for f in input.files {
        diags.extend(check::check_top_level(&f.doc, f.file, size));
    }
    let once = |name: &str, diags: &mut Diagnostics| -> Option<NodeRef<'_>> {
        let found: Vec<&NodeRef<'_>> = tops.iter().filter(|n| n.node.name().value() == name).collect();
        // Within one file `check_block` already reported repeats; across files do it here.
        if let [first, .., last] = found.as_slice()
            && first.file != last.file
        {
            diags.push(
                Diagnostic::error(Code::DuplicateSetting, format!("`{name}` is declared in two files"))
                    .label(last.name_span(), "declared again here")
                    .label(first.name_span(), "first declared here")
                    .help(format!("a fleet has one `{name}`; keep it in one file")),
            );
        }
        found.first().map(|n| **n)
    };
    let defaults = once("defaults", &mut diags);
    let infra = once("infra", &mut diags);
    let target = once("target", &mut diags);
    let fleet_node = once("fleet", &mut diags);
    let rollout_node = once("rollout", &mut diags);
    let allow_outside = once("allow-paths-outside", &mut diags);

    let defaults_block = defaults.and_then(|d| d.children());
    let pool_defaults = defaults_block.and_then(|b| Layers::new([Some(b)]).node("node-pool"));
    let defaults_layer = Layer { block: defaults_block, pool_defaults };
    let profiles = Profiles::collect(&tops, &mut diags);

    // Each cluster is lowered on its own (in parallel for large fleets);
    // diagnostics keep declaration order.
    let cluster_nodes: Vec<&NodeRef<'_>> = tops.iter().filter(|n| n.node.name().value() == "cluster").collect();
    let lowered = crate::parallel::map(cluster_nodes, size, |n| {
        let mut diags = Diagnostics::default();
        let c = lower_cluster(n, &profiles, defaults_layer, input.home, &mut diags);
        (c, diags)
    });
    let mut clusters = Vec::with_capacity(lowered.len());
    for (c, d) in lowered {
        diags.extend(d);
        clusters.extend(c);
    }
    let all_parsed = input.files.len() == input.sources.len();
    // Not an error: removing the last cluster is how a fleet's clusters
    // are deleted (prevent-destroy still guards each).
    if clusters.is_empty() && all_parsed && !diags.has_errors() {
        let mut d = Diagnostic::warning(
            Code::NoClusters,
            "no `cluster` is declared: `plan` and `apply` delete every cluster this fleet made",
        )
        .help(
            "to add one, declare `cluster NAME { release …; pull-secret file=…; node-pool workers replicas=2 }`; to delete the clusters on purpose, `hcpc destroy` says so",
        );
        if let Some((id, _)) = input.sources.iter().next() {
            d = d.label(Span { file: id, offset: 0, len: 0 }, "in this fleet");
        }
        diags.push(d);
    }

    let fleet_name = fleet_node.and_then(|n| n.arg(0)).and_then(|v| v.str()).unwrap_or("default");
    let default_ns = defaults_block
        .and_then(|b| Layers::new([Some(b)]).arg("namespace"))
        .and_then(|v| v.str())
        .unwrap_or("clusters");
    let fleet_ns = fleet_node.and_then(|n| n.prop("namespace")).and_then(|v| v.str()).unwrap_or(default_ns);
    let fleet = Fleet {
        name: fleet_name.to_string(),
        named: fleet_node.is_some(),
        namespace: fleet_ns.to_string(),
        target: target.and_then(|t| lower_target(&t, input.home, &mut diags)),
        inventory: infra.map(|i| lower_inventory(&i, &mut diags)).unwrap_or_default(),
        clusters,
        rollout: rollout_node.and_then(|r| rollout::lower_rollout(&r, &mut diags)),
        allow_paths_outside: allow_outside.map(|n| n.name_span()),
    };
    (fleet, diags)
}

fn lower_target(t: &NodeRef<'_>, home: Option<&Path>, diags: &mut Diagnostics) -> Option<Spanned<Target>> {
    let kind = t.arg(0)?.str()?;
    let misplaced = match kind {
        "kube" => t.arg(1).map(|v| (v.span(), "a path", "`target kube` reads the kubeconfig; remove the path")),
        _ => t.prop("context").map(|v| (v.span(), "a context", "`context=` belongs to `target kube`; remove it")),
    };
    if let Some((span, what, help)) = misplaced {
        diags.push(
            Diagnostic::error(Code::InvalidValue, format!("`target {kind}` takes no {what}"))
                .label(span, "not used by this target")
                .help(help),
        );
    }
    let target = match kind {
        "kube" => Target::Kube { context: t.prop("context").and_then(|v| v.str().map(str::to_string)) },
        _ => Target::Dir { path: t.arg(1).and_then(|v| v.path(home)).unwrap_or_else(|| t.dir.join("rendered")) },
    };
    Some(Spanned::new(target, t.name_span()))
}

fn lower_inventory(infra: &NodeRef<'_>, diags: &mut Diagnostics) -> Inventory {
    let mut inv = Inventory::default();
    let Some(block) = infra.children() else { return inv };
    let layers = Layers::new([Some(block)]);
    for n in layers.nodes("storage-class") {
        let Some(name) = n.arg(0).and_then(|v| v.string()) else { continue };
        inv.storage_classes.push(InfraStorageClass {
            name,
            access: n
                .prop("access")
                .and_then(|v| v.str())
                .and_then(AccessMode::from_word)
                .unwrap_or(AccessMode::ReadWriteOnce),
            volume_mode: n
                .prop("volume-mode")
                .and_then(|v| v.str())
                .and_then(VolumeMode::from_word)
                .unwrap_or(VolumeMode::Filesystem),
            default: n.prop("default").and_then(|v| v.bool()).unwrap_or(false),
            clone: n.prop("clone").and_then(|v| v.str()).and_then(CloneStrategy::from_word),
        });
    }
    for n in layers.nodes("snapshot-class") {
        let Some(name) = n.arg(0).and_then(|v| v.string()) else { continue };
        inv.snapshot_classes
            .push(InfraSnapshotClass { name, default: n.prop("default").and_then(|v| v.bool()).unwrap_or(false) });
    }
    for n in layers.nodes("host-device") {
        let Some(name) = n.arg(0).and_then(|v| v.string()) else { continue };
        inv.host_devices
            .push(InfraHostDevice { name, capacity: n.prop("capacity").and_then(|v| v.count()).unwrap_or(0) });
    }
    let node_groups = layers.nodes("nodes");
    for n in &node_groups {
        if let Some(group) = lower_nodes(n, &inv.nodes, diags) {
            inv.nodes.push(group);
        }
    }
    device_totals_from_nodes(&mut inv, diags);
    inv.known = Known {
        storage: !layers.nodes("storage-class").is_empty() || !layers.nodes("snapshot-class").is_empty(),
        devices: !inv.host_devices.is_empty() || !node_groups.is_empty(),
        nodes: !node_groups.is_empty(),
    };
    if let Some(v) = layers.arg("capacity-warning")
        && let Some(p) = v.count()
    {
        if (1..=100).contains(&p) {
            inv.capacity_warning = p;
        } else {
            diags.push(
                Diagnostic::error(Code::InvalidValue, format!("`capacity-warning` is a percentage, not {p}"))
                    .label(v.span(), "not between 1 and 100")
                    .help("write a percentage from 1 to 100, e.g. `capacity-warning 85`"),
            );
        }
    }
    if let Some(k) = layers.node("kubevirt") {
        inv.kubevirt_declared = Some(k.name_span());
        for (key, slot) in [
            ("cpu-allocation-ratio", &mut inv.kubevirt.cpu_allocation_ratio),
            ("memory-overcommit", &mut inv.kubevirt.memory_overcommit),
        ] {
            let Some(v) = k.prop(key) else { continue };
            match v.count() {
                Some(0) => diags.push(
                    Diagnostic::error(Code::InvalidValue, format!("`{key}` must be at least 1"))
                        .label(v.span(), "zero")
                        .help(format!("KubeVirt rejects 0; its default is {}", *slot)),
                ),
                Some(n) => *slot = n,
                None => {}
            }
        }
    }
    inv
}

/// The most nodes a cluster can have (Kubernetes' documented limit).
const MAX_NODES: u32 = 5000;

/// One `nodes NAME count= cores= memory= { host-device NAME count=N }` group.
fn lower_nodes(n: &NodeRef<'_>, earlier: &[InfraNodes], diags: &mut Diagnostics) -> Option<InfraNodes> {
    let name = n.arg(0)?.string()?;
    if let Some(first) = earlier.iter().find(|g| g.name.value == name.value) {
        diags.push(
            Diagnostic::error(Code::NameCollision, format!("node group `{}` is declared twice", name.value))
                .label(name.span, "declared again here")
                .label(first.name.span, "first declared here")
                .help("give each `nodes` group its own name"),
        );
        return None;
    }
    let mut positive = |key: &str, what: &str| -> Option<u32> {
        let v = n.prop(key)?;
        match v.count()? {
            0 => {
                diags.push(
                    Diagnostic::error(Code::InvalidValue, format!("node group `{}` has 0 {what}", name.value))
                        .label(v.span(), "zero")
                        .help(format!("give `{key}=` a number of at least 1, or remove the group")),
                );
                None
            }
            c => Some(c),
        }
    };
    let count = positive("count", "nodes");
    let cores = positive("cores", "cores");
    // Kubernetes supports clusters of up to 5,000 nodes; more is a typo,
    // and would make packing the fleet onto them slow.
    let count = match (count, n.prop("count")) {
        (Some(c), Some(v)) if c > MAX_NODES => {
            diags.push(
                Diagnostic::error(Code::InvalidValue, format!("node group `{}` has {c} nodes", name.value))
                    .label(v.span(), format!("more than {MAX_NODES}"))
                    .help(format!("Kubernetes supports clusters of up to {MAX_NODES} nodes; give the number of nodes of this shape")),
            );
            None
        }
        (c, _) => c,
    };
    let memory = n.prop("memory").and_then(|v| {
        let q = v.quantity()?;
        if q.whole() == 0 {
            diags.push(
                Diagnostic::error(Code::InvalidQuantity, format!("node group `{}` has no memory", name.value))
                    .label(v.span(), "zero")
                    .help("give the allocatable memory of one node, e.g. memory=\"256Gi\""),
            );
            return None;
        }
        Some(q.whole())
    });
    let mut devices: Vec<(String, u32)> = Vec::new();
    if let Some(block) = n.children() {
        for d in Layers::new([Some(block)]).nodes("host-device") {
            let Some(dname) = d.arg(0).and_then(|v| v.string()) else { continue };
            let Some(c) = d.prop("count") else { continue };
            match c.count() {
                Some(0) => diags.push(
                    Diagnostic::error(Code::HostDeviceCount, format!("host device `{}` has count 0", dname.value))
                        .label(c.span(), "zero")
                        .help("give the number of such devices on each node, or remove the line"),
                ),
                Some(k) => match devices.iter_mut().find(|(d, _)| *d == dname.value) {
                    Some((_, total)) => *total = total.saturating_add(k),
                    None => devices.push((dname.value, k)),
                },
                None => {}
            }
        }
    }
    devices.sort();
    Some(InfraNodes { name, count: count?, cpu_millis: u64::from(cores?) * 1000, memory: memory?, devices })
}

/// Devices the `nodes` groups hold are the infrastructure's totals; a
/// `host-device NAME capacity=N` that disagrees with them is a warning and
/// the nodes' total wins, as the more precise fact.
fn device_totals_from_nodes(inv: &mut Inventory, diags: &mut Diagnostics) {
    let mut totals: std::collections::BTreeMap<String, (u64, Span)> = std::collections::BTreeMap::new();
    for g in &inv.nodes {
        for (d, per_node) in &g.devices {
            let e = totals.entry(d.clone()).or_insert((0, g.name.span));
            e.0 = e.0.saturating_add(u64::from(g.count) * u64::from(*per_node));
        }
    }
    for h in &mut inv.host_devices {
        let Some((total, span)) = totals.remove(&h.name.value) else { continue };
        let total = u32::try_from(total).unwrap_or(u32::MAX);
        if h.capacity != total {
            diags.push(
                Diagnostic::warning(
                    Code::InventoryMismatch,
                    format!(
                        "host device `{}` is declared with capacity {} but the `nodes` groups hold {total}",
                        h.name.value, h.capacity
                    ),
                )
                .label(h.name.span, format!("capacity {}", h.capacity))
                .label(span, "nodes with this device")
                .help("make the total match the nodes, or remove the `host-device` line: the nodes' total is used"),
            );
            h.capacity = total;
        }
    }
    for (name, (total, span)) in totals {
        let capacity = u32::try_from(total).unwrap_or(u32::MAX);
        inv.host_devices.push(InfraHostDevice { name: Spanned::new(name, span), capacity });
    }
}

fn missing(cluster: &Spanned<String>, what: &str, example: &str) -> Diagnostic {
    Diagnostic::error(Code::MissingSetting, format!("cluster `{}` has no `{what}`", cluster.value))
        .label(cluster.span, format!("no {what}"))
        .help(format!("add `{example}` to the cluster or to `defaults`"))
}

/// One layer of a cluster's settings: its own block, a profile's, or
/// `defaults`. Pools read the pool of their name in each layer, then the
/// unnamed `node-pool` of each layer (see [`lower_pool`]).
#[derive(Clone, Copy)]
struct Layer<'a> {
    block: Option<Block<'a>>,
    /// `node-pool { … }` without a name: what every pool inherits.
    pool_defaults: Option<NodeRef<'a>>,
}

impl<'a> Layer<'a> {
    fn profile(p: &NodeRef<'a>) -> Layer<'a> {
        let block = p.children();
        let pool_defaults = block.and_then(|b| {
            b.doc
                .nodes()
                .iter()
                .find(|n| n.name().value() == "node-pool" && n.entries().iter().all(|e| e.name().is_some()))
                .map(|node| NodeRef { node, file: b.file, dir: b.dir })
        });
        Layer { block, pool_defaults }
    }

    /// The named pools of this layer, in written order.
    fn pools(&self) -> impl Iterator<Item = NodeRef<'a>> + 'a {
        let block = self.block;
        block.into_iter().flat_map(|b| {
            b.doc
                .nodes()
                .iter()
                .filter(|n| n.name().value() == "node-pool")
                .map(move |node| NodeRef { node, file: b.file, dir: b.dir })
                .filter(|n| n.arg(0).is_some())
        })
    }

    /// The pool called `name` in this layer.
    fn pool(&self, name: &str) -> Option<NodeRef<'a>> {
        self.pools().find(|p| p.arg(0).and_then(|v| v.str()) == Some(name))
    }

    /// `release` written directly in this layer's block.
    fn release(&self) -> Option<ValueRef<'a>> {
        self.block.and_then(|b| Layers::new([Some(b)]).arg("release"))
    }
}

fn lower_cluster(
    node: &NodeRef<'_>,
    profiles: &Profiles<'_>,
    defaults: Layer<'_>,
    home: Option<&Path>,
    diags: &mut Diagnostics,
) -> Option<Cluster> {
    let name = node.arg(0)?.string()?;
    let own = node.children();
    let profile = node.prop("profile");
    // A cluster whose profile is unknown or broken is reported once and
    // not lowered further: without its profile, every missing setting
    // would be reported again.
    let chain = match &profile {
        Some(p) => profiles.chain(p, diags)?,
        None => &[],
    };
    let mut layers = Vec::with_capacity(chain.len() + 2);
    layers.push(Layer { block: own, pool_defaults: None });
    layers.extend(chain.iter().map(Layer::profile));
    layers.push(defaults);
    let s = Layers::new(layers.iter().map(|l| l.block));

    let namespace =
        s.arg("namespace").and_then(|v| v.string()).unwrap_or_else(|| Spanned::new("clusters".into(), name.span));
    let release = s.arg("release").and_then(|v| v.string());
    if release.is_none() {
        diags.push(missing(&name, "release", "release \"quay.io/openshift-release-dev/ocp-release:4.17.3-multi\""));
    }
    let pull_secret = secret_source(&s, "pull-secret", home, diags);
    if pull_secret.is_none() && s.node("pull-secret").is_none() {
        diags.push(missing(&name, "pull-secret", "pull-secret file=\"pull-secret.json\""));
    }
    let ssh_key = secret_source(&s, "ssh-key", home, diags);

    let network = Network {
        cluster_cidr: s.prop("network", "cluster-cidr").and_then(|v| v.str()).unwrap_or("10.132.0.0/14").to_string(),
        service_cidr: s.prop("network", "service-cidr").and_then(|v| v.str()).unwrap_or("172.31.0.0/16").to_string(),
        machine_cidr: s.prop("network", "machine-cidr").and_then(|v| v.str()).map(str::to_string),
        network_type: s.prop("network", "type").and_then(|v| v.str()).unwrap_or("OVNKubernetes").to_string(),
    };
    for key in ["cluster-cidr", "service-cidr", "machine-cidr"] {
        if let Some(v) = s.prop("network", key)
            && let Some(problem) = v.str().and_then(cidr_problem)
        {
            diags.push(
                Diagnostic::error(Code::InvalidValue, format!("`{key}` is not a CIDR: {problem}"))
                    .label(v.span(), "not a CIDR")
                    .help("write an address and prefix length, e.g. \"10.132.0.0/14\""),
            );
        }
    }
    let availability = |key: &str| {
        s.prop("availability", key).and_then(|v| v.str()).map(|w| match w {
            "single-replica" => Availability::SingleReplica,
            _ => Availability::HighlyAvailable,
        })
    };

    for t in s.nodes("toleration") {
        if let (Some(op), Some(v)) = (t.prop("operator"), t.prop("value"))
            && op.str() == Some("Exists")
        {
            diags.push(
                Diagnostic::error(Code::ConflictingSettings, "a toleration with operator=Exists takes no value")
                    .label(v.span(), "value")
                    .label(op.span(), "operator=Exists")
                    .help("remove value=, or use operator=Equal"),
            );
        }
    }
    for (node, values_are_labels) in [("labels", true), ("annotations", false), ("control-plane-node-selector", true)] {
        check_map(&s, node, values_are_labels, diags);
    }
    api_rules::cluster(&s, diags);
    let tolerations = s
        .nodes("toleration")
        .iter()
        .map(|t| Toleration {
            key: t.prop("key").and_then(|v| v.str()).map(str::to_string),
            value: t.prop("value").and_then(|v| v.str()).map(str::to_string),
            operator: t.prop("operator").and_then(|v| v.str()).map(str::to_string),
            effect: t.prop("effect").and_then(|v| v.str()).map(str::to_string),
            seconds: t.prop("seconds").and_then(|v| v.count()).map(i64::from),
        })
        .collect();

    let etcd = Etcd {
        storage_class: s.prop("etcd", "storage-class").and_then(|v| v.string()),
        size: s
            .prop("etcd", "size")
            .and_then(|v| Some(Spanned::new(v.quantity()?, v.span())))
            .unwrap_or_else(|| Spanned::new(Quantity::gibibytes(defaults::ETCD_GIB), name.span)),
        key_secret: s.prop("etcd", "key-secret").and_then(|v| v.string()),
    };

    let infra_cluster = s.node("infra-cluster").and_then(|n| {
        let namespace = n.prop("namespace")?.str()?.to_string();
        let file = n.prop("kubeconfig-file");
        let secret = n.prop("kubeconfig-secret");
        let credentials = match (file, secret) {
            (Some(f), None) => InfraCredentials::KubeconfigFile(Spanned::new(f.path(home)?, f.span())),
            (None, Some(sec)) => InfraCredentials::KubeconfigSecret(sec.string()?),
            (Some(f), Some(sec)) => {
                diags.push(
                    Diagnostic::error(Code::ConflictingSettings, "`infra-cluster` takes kubeconfig-file= or kubeconfig-secret=, not both")
                        .label(f.span(), "one")
                        .label(sec.span(), "the other")
                        .help("keep one of them"),
                );
                return None;
            }
            (None, None) => {
                diags.push(
                    Diagnostic::error(Code::MissingProperty, "`infra-cluster` needs a kubeconfig")
                        .label(n.name_span(), "no kubeconfig")
                        .help("add kubeconfig-file=\"infra-kubeconfig\" or kubeconfig-secret=NAME: without credentials the VMs cannot be reached"),
                );
                return None;
            }
        };
        Some(InfraCluster { namespace, credentials })
    });

    let storage = lower_storage(&s, diags);

    // The profiles' pools, least specific profile first, then the
    // cluster's own; a cluster's pool of a profile pool's name takes that
    // pool's place and overrides its settings. A pool the cluster declares
    // twice stays twice, for `resolve` to report.
    let mut pools: Vec<(&str, Option<NodeRef<'_>>)> = Vec::new();
    for l in layers[1..].iter().rev() {
        for p in l.pools() {
            let Some(pname) = p.arg(0).and_then(|v| v.str()) else { continue };
            if !pools.iter().any(|(n, _)| *n == pname) {
                pools.push((pname, None));
            }
        }
    }
    for p in layers[0].pools() {
        let Some(pname) = p.arg(0).and_then(|v| v.str()) else { continue };
        match pools.iter_mut().find(|(n, own)| *n == pname && own.is_none()) {
            Some(slot) => slot.1 = Some(p),
            None => pools.push((pname, Some(p))),
        }
    }
    let resolved_release = release.as_ref().unwrap_or(&name);
    let mut node_pools = Vec::with_capacity(pools.len());
    for (pname, own_pool) in pools {
        if let Some(p) = lower_pool(pname, own_pool, &layers, resolved_release, diags) {
            node_pools.push(p);
        }
    }

    // Missing required settings were reported; carry on with placeholders
    // so that resolution still checks everything else in this cluster.
    let release = match release {
        Some(r) => crate::release::lower(r, diags),
        None => Spanned::new(ReleaseImage::missing(), name.span),
    };
    let pull_secret = pull_secret.unwrap_or_else(|| Spanned::new(SecretSource::Secret(String::new()), name.span));
    let cluster = Cluster {
        namespace,
        pull_secret,
        ssh_key,
        base_domain: s.arg("base-domain").and_then(|v| v.str()).map(str::to_string),
        network,
        control_plane_availability: availability("control-plane").unwrap_or(Availability::HighlyAvailable),
        infrastructure_availability: availability("infrastructure"),
        fips: s.arg("fips").and_then(|v| v.bool()).unwrap_or(false),
        labels: s.map("labels"),
        annotations: s.map("annotations"),
        control_plane_node_selector: s.map("control-plane-node-selector"),
        tolerations,
        etcd,
        storage,
        infra_cluster,
        node_pools,
        prevent_destroy: s.arg("prevent-destroy").and_then(|v| v.bool()).unwrap_or(true),
        allow_minor_skip: s.arg("allow-minor-skip").and_then(|v| v.bool()).unwrap_or(false),
        target: s.node("target").and_then(|t| lower_target(&t, home, diags)),
        infra_id: s.arg("infra-id").and_then(|v| v.string()),
        profiles: chain.iter().filter_map(|p| p.arg(0).and_then(|v| v.string())).collect(),
        release,
        name,
    };
    crate::release::rules::check_cluster(&cluster, diags);
    Some(cluster)
}

/// Reads `file=`, `env=` or `secret=` of a secret node.
fn secret_source(
    s: &Layers<'_>,
    name: &str,
    home: Option<&Path>,
    diags: &mut Diagnostics,
) -> Option<Spanned<SecretSource>> {
    let n = s.node(name)?;
    let given: Vec<(&str, layers::ValueRef<'_>)> =
        ["file", "env", "secret"].into_iter().filter_map(|k| n.prop(k).map(|v| (k, v))).collect();
    match given.as_slice() {
        [(kind, v)] => {
            let source = match *kind {
                "file" => SecretSource::File(v.path(home)?),
                "env" => SecretSource::Env(v.str()?.to_string()),
                _ => SecretSource::Secret(v.str()?.to_string()),
            };
            Some(Spanned::new(source, v.span()))
        }
        [] => None, // `check` reported the empty node.
        [(a, va), (b, vb), ..] => {
            diags.push(
                Diagnostic::error(Code::ConflictingSettings, format!("`{name}` takes one source, got {a}= and {b}="))
                    .label(va.span(), "one source")
                    .label(vb.span(), "another source")
                    .help("keep exactly one of file=, env= or secret="),
            );
            None
        }
    }
}

/// Label keys and values as Kubernetes validates them; hcpc's own keys are reserved.
fn check_map(s: &Layers<'_>, node: &str, values_are_labels: bool, diags: &mut Diagnostics) {
    for n in s.all_nodes(node) {
        for entry in n.node.entries().iter().filter(|e| e.name().is_some()) {
            let Some(key) = entry.name().map(|k| k.value()) else { continue };
            let span = Span::new(n.file, entry.span());
            let problem = label_key_problem(key)
                .map(|p| format!("`{key}` is not a valid key: {p}"))
                .or_else(|| {
                    let owned = key.starts_with("applyset.kubernetes.io/")
                        || key.starts_with("hcpc.openshift.io/")
                        || key == hcpc_schema::labels::MANAGED_BY;
                    (owned && !node.ends_with("node-selector")).then(|| format!("`{key}` is set by hcpc itself"))
                })
                .or_else(|| {
                    let value = entry.value().as_string().unwrap_or("");
                    (values_are_labels && !value.is_empty())
                        .then(|| label_value_problem(value))
                        .flatten()
                        .map(|p| format!("`{value}` is not a valid label value: {p}"))
                });
            if let Some(message) = problem {
                diags.push(
                    Diagnostic::error(Code::InvalidLabel, message)
                        .label(span, "here")
                        .help("keys are `[prefix/]name`: name up to 63 characters of letters, digits, `-`, `_`, `.`; the prefix a DNS subdomain; label values likewise up to 63 characters"),
                );
            }
        }
    }
}

fn label_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 63 {
        return Some("it must be 1 to 63 characters".into());
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    if !name.chars().all(ok_char)
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Some("use letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit".into());
    }
    None
}

fn label_key_problem(key: &str) -> Option<String> {
    match key.rsplit_once('/') {
        Some((prefix, name)) => {
            dns1123_subdomain_problem(prefix).map(|p| format!("prefix {p}")).or_else(|| label_name_problem(name))
        }
        None => label_name_problem(key),
    }
}

fn label_value_problem(value: &str) -> Option<String> {
    label_name_problem(value)
}

fn cidr_problem(s: &str) -> Option<String> {
    let Some((addr, prefix)) = s.split_once('/') else {
        return Some("no `/prefix`".to_string());
    };
    let max = match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => 32,
        Ok(std::net::IpAddr::V6(_)) => 128,
        Err(_) => return Some(format!("`{addr}` is not an IP address")),
    };
    match prefix.parse::<u8>() {
        Ok(p) if p <= max && prefix.chars().all(|c| c.is_ascii_digit()) => None,
        _ => Some(format!("`/{prefix}` is not a prefix length from 0 to {max}")),
    }
}

fn lower_storage(s: &Layers<'_>, diags: &mut Diagnostics) -> Storage {
    let Some(storage) = s.node("storage") else { return Storage::Default };
    let Some(block) = storage.children() else { return Storage::Default };
    let mut classes = Vec::new();
    let mut snapshot_classes = Vec::new();
    let mut driver: Option<(String, Span)> = None;
    for n in block.doc.nodes() {
        let n = NodeRef { node: n, file: block.file, dir: block.dir };
        match n.node.name().value() {
            "class" => classes.extend(mapping(&n, None)),
            "snapshot-class" => snapshot_classes.extend(mapping(&n, None)),
            "driver" => driver = n.arg(0).and_then(|v| v.str()).map(|d| (d.to_string(), n.span())),
            "group" => {
                let Some(group) = n.arg(0).and_then(|v| v.string()) else { continue };
                let Some(inner) = n.children() else { continue };
                for m in inner.doc.nodes() {
                    let m = NodeRef { node: m, file: inner.file, dir: inner.dir };
                    match m.node.name().value() {
                        "class" => classes.extend(mapping(&m, Some(group.clone()))),
                        "snapshot-class" => snapshot_classes.extend(mapping(&m, Some(group.clone()))),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let has_mappings = !classes.is_empty() || !snapshot_classes.is_empty();
    match driver {
        Some((d, span)) if has_mappings => {
            diags.push(
                Diagnostic::error(Code::DriverConflict, format!("`driver {d}` cannot be combined with class mappings"))
                    .label(span, format!("driver {d}"))
                    .help("mappings select the Manual driver by themselves: remove `driver`, or remove the mappings"),
            );
            Storage::Default
        }
        Some((d, _)) if d == "none" => Storage::None,
        _ if has_mappings => Storage::Manual { classes, snapshot_classes },
        _ => Storage::Default,
    }
}

fn mapping(n: &NodeRef<'_>, group: Option<Spanned<String>>) -> Option<StorageMapping> {
    Some(StorageMapping { infra: n.arg(0)?.string()?, hosted: n.prop("hosted")?.string()?, group })
}

/// Lowers pool `pool_name` of a cluster whose `layers` are the cluster,
/// its profiles and `defaults`, most specific first. `own` is the
/// cluster's own block for the pool, if it writes one.
///
/// Settings come from the pool's blocks of that name (the cluster's, then
/// each profile's), then from the unnamed `node-pool` of each layer: a pool
/// that says something wins over what every pool inherits. The release
/// goes layer by layer instead (see below).
fn lower_pool(
    pool_name: &str,
    own: Option<NodeRef<'_>>,
    layers: &[Layer<'_>],
    cluster_release: &Spanned<String>,
    diags: &mut Diagnostics,
) -> Option<NodePool> {
    let named: Vec<Option<NodeRef<'_>>> =
        layers.iter().enumerate().map(|(i, l)| if i == 0 { own } else { l.pool(pool_name) }).collect();
    let blocks: Vec<NodeRef<'_>> =
        named.iter().flatten().copied().chain(layers.iter().filter_map(|l| l.pool_defaults)).collect();
    let node = blocks.first()?;
    let name = node.arg(0)?.string()?;
    let s = Layers::new(blocks.iter().map(|b| b.children()));
    // The most specific block that sizes the pool wins; within one block,
    // `replicas=` and `autoscaling` exclude each other.
    let chosen = blocks
        .iter()
        .map(|b| (b.prop("replicas"), b.children().and_then(|c| Layers::new([Some(c)]).node("autoscaling"))))
        .find(|(r, a)| r.is_some() || a.is_some())
        .unwrap_or((None, None));
    let scaling = match chosen {
        (Some(r), Some(a)) => {
            diags.push(
                Diagnostic::error(
                    Code::ConflictingSettings,
                    format!("node pool `{}` sets both replicas= and autoscaling", name.value),
                )
                .label(r.span(), "fixed size")
                .label(a.name_span(), "autoscaled")
                .help("keep `replicas=` for a fixed size or `autoscaling min=… max=…`, not both"),
            );
            return None;
        }
        (_, Some(a)) => {
            let min = a.prop("min").and_then(|v| v.count())?;
            let max = a.prop("max").and_then(|v| v.count())?;
            if min < 1 || min > max {
                diags.push(
                    Diagnostic::error(
                        Code::AutoscalingRange,
                        format!("autoscaling of `{}` needs 1 <= min <= max (got min={min} max={max})", name.value),
                    )
                    .label(a.span(), "invalid range")
                    .help("the NodePool API needs min of at least 1 and max of at least min"),
                );
                return None;
            }
            Spanned::new(Scaling::Autoscaling { min, max }, a.span())
        }
        (Some(r), None) => Spanned::new(Scaling::Replicas(r.count()?), r.span()),
        (None, None) => {
            diags.push(
                Diagnostic::error(Code::MissingSetting, format!("node pool `{}` has no size", name.value))
                    .label(name.span, "no replicas")
                    .help(format!(
                        "write `node-pool {} replicas=2`, or add `autoscaling min=1 max=3` inside it",
                        name.value
                    )),
            );
            return None;
        }
    };

    let size_ref = s.prop("root-volume", "size");
    let size = size_ref.and_then(|v| v.quantity()).unwrap_or_else(|| Quantity::gibibytes(defaults::ROOT_VOLUME_GIB));
    if let Some(v) = size_ref
        && size.whole() < 16 * (1 << 30)
    {
        diags.push(
            Diagnostic::error(
                Code::RootVolumeTooSmall,
                format!("root volume of `{}` is {size}; at least 16Gi is needed", name.value),
            )
            .label(v.span(), "too small")
            .help("use size=\"16Gi\" or more: the RHCOS image does not fit in less"),
        );
    }
    let root_volume = RootVolume {
        size,
        storage_class: s.prop("root-volume", "storage-class").and_then(|v| v.string()),
        access_mode: s.prop("root-volume", "access-mode").and_then(|v| v.str()).and_then(AccessMode::from_word),
        volume_mode: s.prop("root-volume", "volume-mode").and_then(|v| v.str()).and_then(VolumeMode::from_word),
        cache: s
            .prop("root-volume", "cache")
            .and_then(|v| v.str())
            .map(|c| if c == "pvc" { CacheStrategy::Pvc } else { CacheStrategy::None }),
        span: s.node("root-volume").map(|n| n.span()),
    };

    api_rules::pool(&s, diags);
    let device_nodes = s.nodes("host-device");
    if device_nodes.len() > 10 {
        diags.push(
            Diagnostic::error(
                Code::TooManyHostDevices,
                format!("node pool `{}` has {} host devices; at most 10 are allowed", name.value, device_nodes.len()),
            )
            .label(device_nodes[10].span(), "the 11th")
            .help("the NodePool CRD allows 10 entries; raise `count=` on an entry instead of repeating a device"),
        );
    }
    let host_devices = device_nodes
        .iter()
        .filter_map(|d| {
            let dname = d.arg(0)?.string()?;
            let count = match d.prop("count") {
                Some(c) => Spanned::new(c.count()?, c.span()),
                None => Spanned::new(1, d.name_span()),
            };
            Some(HostDevice { name: dname, count })
        })
        .collect();

    let additional_networks: Vec<Spanned<String>> =
        s.nodes("additional-network").iter().filter_map(|n| n.arg(0).and_then(|v| v.string())).collect();
    for net in &additional_networks {
        let ok = net
            .value
            .split_once('/')
            .is_some_and(|(ns, nad)| dns1123_label_problem(ns).is_none() && dns1123_subdomain_problem(nad).is_none());
        if !ok {
            diags.push(
                Diagnostic::error(Code::AdditionalNetworkFormat, format!("`{}` is not \"namespace/name\"", net.value))
                    .label(net.span, "expected namespace/name")
                    .help("name a NetworkAttachmentDefinition as \"namespace/name\", e.g. \"default/vlan-10\""),
            );
        }
    }
    let attach_default = s.arg("attach-default-network");
    let attach_default_network = attach_default.and_then(|v| v.bool()).unwrap_or(true);
    if !attach_default_network
        && additional_networks.is_empty()
        && let Some(v) = attach_default
    {
        diags.push(
            Diagnostic::error(Code::NoNetwork, format!("node pool `{}` would have no network", name.value))
                .label(v.span(), "default network detached")
                .help("add `additional-network \"namespace/name\"`, or keep the default network"),
        );
    }

    // Layer by layer: in each, the pool's own release, then that of the
    // layer's unnamed `node-pool`, then the layer's cluster release. So
    // upgrading a cluster (or its profile) upgrades its pools unless a pool
    // says otherwise at that layer or a more specific one.
    let block_release = |n: Option<NodeRef<'_>>| {
        n.and_then(|n| n.children()).and_then(|b| Layers::new([Some(b)]).arg("release")).and_then(|v| v.string())
    };
    let release = layers
        .iter()
        .zip(&named)
        .find_map(|(l, pool)| {
            block_release(*pool)
                .or_else(|| block_release(l.pool_defaults))
                .or_else(|| l.release().and_then(|v| v.string()))
        })
        .unwrap_or_else(|| cluster_release.clone());
    let release = if release.span == cluster_release.span {
        // The cluster's own line: reported with the cluster.
        crate::release::lower(release, &mut Diagnostics::default())
    } else {
        crate::release::lower(release, diags)
    };
    Some(NodePool {
        scaling,
        cores: match s.arg("cores") {
            Some(v) => match v.count()? {
                0 => {
                    diags.push(
                        Diagnostic::error(Code::InvalidValue, "a VM needs at least 1 core")
                            .label(v.span(), "zero cores")
                            .help("use `cores 1` or more"),
                    );
                    return None;
                }
                n => Spanned::new(n, v.span()),
            },
            None => Spanned::new(defaults::POOL_CORES, name.span),
        },
        // Sizes too small to boot are checked with the other sizing rules
        // in `resolve::capacity`.
        // A value `check` rejected falls back to the default, so that the
        // pool's other settings are still checked.
        memory: match s.arg("memory") {
            Some(v) => {
                Spanned::new(v.quantity().unwrap_or_else(|| Quantity::gibibytes(defaults::POOL_MEMORY_GIB)), v.span())
            }
            None => Spanned::new(Quantity::gibibytes(defaults::POOL_MEMORY_GIB), name.span),
        },
        qos_class: match s.arg("qos-class").and_then(|v| v.str()) {
            Some("guaranteed") => QosClass::Guaranteed,
            _ => QosClass::Burstable,
        },
        root_volume,
        host_devices,
        network_multiqueue: s.arg("network-multiqueue").and_then(|v| v.bool()).unwrap_or(true),
        attach_default_network,
        additional_networks,
        node_selector: s.map("node-selector"),
        arch: s.arg("arch").and_then(|v| v.str()).unwrap_or("amd64").to_string(),
        auto_repair: s.arg("auto-repair").and_then(|v| v.bool()).unwrap_or(false),
        upgrade_type: match s.arg("upgrade-type").and_then(|v| v.str()) {
            Some("in-place") => UpgradeType::InPlace,
            _ => UpgradeType::Replace,
        },
        node_drain_timeout: s.arg("node-drain-timeout").and_then(|v| v.duration()).unwrap_or(Duration(0)),
        node_volume_detach_timeout: s
            .arg("node-volume-detach-timeout")
            .and_then(|v| v.duration())
            .unwrap_or(Duration(0)),
        release,
        object_name: own.and_then(|o| o.prop("object-name")).and_then(|v| v.str()).map(str::to_string),
        name,
    })
}
