//! Stage 3: check the fleet as a whole and build its dependency graph.
//!
//! Implements the resolution rules of SPEC §4: storage groups, hosted-name
//! uniqueness, the infrastructure inventory, host-device capacity across
//! the fleet, capacity and fit on the infrastructure's nodes, names and
//! collisions, cycles. Rule 6 (immutable fields) needs
//! live state and is checked by `plan`.

#![deny(clippy::disallowed_methods)]

pub mod capacity;
mod deferred;
mod devices;
pub mod graph;
pub use deferred::needs_target;
mod storage;

use std::collections::{BTreeMap, HashMap};

use foldhash::fast::FixedState;

use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::ir::{Cluster, Fleet, InfraCredentials, SecretSource, Target};
use crate::object::{Kind, ObjectId};
use crate::source::Span;

pub use graph::{FleetGraph, GraphNode};

/// About the size of one cluster's KDL: work per cluster is weighed as that
/// many bytes of input when deciding to use all cores.
pub const CLUSTER_BYTES: usize = 1024;

/// A fleet that passed resolution, with its dependency graph.
#[derive(Debug)]
pub struct ResolvedFleet {
    pub fleet: Fleet,
    pub graph: FleetGraph,
}

/// The names of the objects a cluster renders.
pub mod names {
    use crate::ir::{Cluster, NodePool};

    pub fn pull_secret(c: &Cluster) -> String {
        format!("{}-pull-secret", c.name.value)
    }
    pub fn ssh_key(c: &Cluster) -> String {
        format!("{}-ssh-key", c.name.value)
    }
    pub fn infra_credentials(c: &Cluster) -> String {
        format!("{}-infra-credentials", c.name.value)
    }
    /// The etcd encryption key Secret the HostedCluster names: the
    /// referenced one, or the one hcpc manages.
    pub fn etcd_encryption_key(c: &Cluster) -> String {
        match &c.etcd.key_secret {
            Some(name) => name.value.clone(),
            None => format!("{}-etcd-encryption-key", c.name.value),
        }
    }
    pub fn node_pool(c: &Cluster, pool: &NodePool) -> String {
        pool.object_name.clone().unwrap_or_else(|| format!("{}-{}", c.name.value, pool.name.value))
    }
}

/// The objects a cluster renders, each with the span that declares it, in apply order.
pub fn cluster_objects(c: &Cluster) -> Vec<(ObjectId, Span)> {
    let ns = &c.namespace.value;
    let mut out = vec![(ObjectId::new(Kind::Namespace, "", ns), c.namespace.span)];
    if matches!(c.pull_secret.value, SecretSource::File(_) | SecretSource::Env(_)) {
        out.push((ObjectId::new(Kind::Secret, ns, &names::pull_secret(c)), c.pull_secret.span));
    }
    if let Some(k) = c.ssh_key.as_ref().filter(|k| matches!(k.value, SecretSource::File(_) | SecretSource::Env(_))) {
        out.push((ObjectId::new(Kind::Secret, ns, &names::ssh_key(c)), k.span));
    }
    if let Some(InfraCredentials::KubeconfigFile(f)) = c.infra_cluster.as_ref().map(|i| &i.credentials) {
        out.push((ObjectId::new(Kind::Secret, ns, &names::infra_credentials(c)), f.span));
    }
    if c.etcd.key_secret.is_none() {
        out.push((ObjectId::new(Kind::Secret, ns, &names::etcd_encryption_key(c)), c.name.span));
    }
    out.push((ObjectId::new(Kind::HostedCluster, ns, &c.name.value), c.name.span));
    for p in &c.node_pools {
        out.push((ObjectId::new(Kind::NodePool, ns, &names::node_pool(c, p)), p.name.span));
    }
    out
}

/// Resolves a lowered fleet. Returns the fleet even when there are errors,
/// so callers can still print the graph or keep checking.
///
/// A fleet whose clusters name several targets is checked per target:
/// names are unique per management cluster, and capacity and host devices
/// are counted per management cluster (one `infra` declaration describes
/// each of them alike; discovery fills in each one's own).
pub fn resolve(fleet: Fleet) -> (ResolvedFleet, Diagnostics) {
    let mut diags = Diagnostics::default();
    // The objects each cluster renders, listed once (on all cores for large
    // fleets: listing allocates their names) for the name checks and the graph.
    let clusters: Vec<&Cluster> = fleet.clusters.iter().collect();
    let objects = crate::parallel::map(clusters, fleet.clusters.len() * CLUSTER_BYTES, cluster_objects);
    let groups = by_target(&fleet);
    if groups.len() <= 1 {
        check_target(&fleet, &objects, &mut diags);
    } else {
        for indices in groups.into_values() {
            let clusters = indices.iter().map(|&i| fleet.clusters[i].clone()).collect();
            let part = Fleet { clusters, ..fleet.without_clusters() };
            let part_objects: Vec<_> = indices.iter().map(|&i| objects[i].clone()).collect();
            check_target(&part, &part_objects, &mut diags);
        }
        // Fleet-wide notes would otherwise be said once per target.
        diags = diags.deduped();
    }
    let graph = build_graph(&fleet, objects);
    if let Err(cycle) = graph.topological() {
        diags.push(
            Diagnostic::error(
                Code::Cycle,
                format!(
                    "the dependency graph has a cycle through: {}",
                    cycle.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
                ),
            )
            .help("break the cycle; this is a bug in hcpc if the configuration has no cross-references"),
        );
    }
    (ResolvedFleet { fleet, graph }, diags)
}

/// The clusters of each target (their own `target`, else the fleet's), in
/// target order, as indices into the fleet's clusters.
fn by_target(fleet: &Fleet) -> BTreeMap<Option<Target>, Vec<usize>> {
    let mut out: BTreeMap<Option<Target>, Vec<usize>> = BTreeMap::new();
    for (i, c) in fleet.clusters.iter().enumerate() {
        let t = c.target.as_ref().or(fleet.target.as_ref()).map(|t| t.value.identity());
        out.entry(t).or_default().push(i);
    }
    out
}

/// The rules over the clusters of one target; `objects[i]` are the objects
/// its `i`-th cluster renders.
fn check_target(fleet: &Fleet, objects: &[Vec<(ObjectId, Span)>], diags: &mut Diagnostics) {
    // Rules about one cluster run per cluster (in parallel for large
    // fleets); the fleet-wide ones (names, device capacity, the graph) run
    // once. Diagnostics keep declaration order.
    let clusters: Vec<&Cluster> = fleet.clusters.iter().collect();
    let mut per_cluster = crate::parallel::map(clusters, fleet.clusters.len() * CLUSTER_BYTES, |c| {
        let mut names = Diagnostics::default();
        check_cluster_names(c, &mut names);
        let mut rules = Diagnostics::default();
        storage::check_cluster(c, &fleet.inventory, &mut rules);
        capacity::check_cluster(c, fleet, &mut rules);
        PerCluster { names, rules }
    });
    check_fleet_names(fleet, objects, &mut per_cluster, diags);
    for c in per_cluster {
        diags.extend(c.rules);
    }
    devices::check_fleet(fleet, diags);
    capacity::check_fleet(fleet, diags);
}

/// What the per-cluster rules found about one cluster.
struct PerCluster {
    /// Its own names: too long, or repeated within it.
    names: Diagnostics,
    /// Storage and capacity.
    rules: Diagnostics,
}

/// Names across the clusters of a target: a cluster declared twice, and two
/// declarations that render the same object (shared Namespaces are fine).
/// Each cluster's own name findings come right after its repeat, if any.
fn check_fleet_names(
    fleet: &Fleet,
    objects: &[Vec<(ObjectId, Span)>],
    per_cluster: &mut [PerCluster],
    diags: &mut Diagnostics,
) {
    let mut clusters: HashMap<&str, &Cluster, FixedState> = HashMap::default();
    for (c, found) in fleet.clusters.iter().zip(per_cluster.iter_mut()) {
        if let Some(first) = clusters.insert(&c.name.value, c) {
            diags.push(
                Diagnostic::error(Code::NameCollision, format!("cluster `{}` is declared twice", c.name.value))
                    .label(c.name.span, "declared again here")
                    .label(first.name.span, "first declared here")
                    .help("cluster names are unique per target (management cluster); rename one"),
            );
        }
        diags.extend(std::mem::take(&mut found.names));
    }
    let mut rendered: HashMap<&ObjectId, (Span, &str), FixedState> = HashMap::default();
    for (c, objects) in fleet.clusters.iter().zip(objects) {
        for (id, span) in objects {
            if id.kind == Kind::Namespace {
                continue;
            }
            match rendered.get(id) {
                // Repeats inside one cluster were reported as duplicate names above.
                Some((_, owner)) if *owner == c.name.value => {}
                Some((first, _)) => diags.push(
                    Diagnostic::error(Code::NameCollision, format!("two declarations render {id}"))
                        .label(*span, "renders it here")
                        .label(*first, "and here")
                        .help("rename a cluster or node pool: NodePools are named `<cluster>-<pool>`"),
                ),
                None => {
                    rendered.insert(id, (*span, &c.name.value));
                }
            }
        }
    }
}

/// The names one cluster gives its control plane namespace and node pools.
fn check_cluster_names(c: &Cluster, diags: &mut Diagnostics) {
    let hcp_ns = format!("{}-{}", c.namespace.value, c.name.value);
    if hcp_ns.len() > 63 {
        diags.push(
            Diagnostic::error(
                Code::NameTooLong,
                format!("the control plane namespace `{hcp_ns}` would be {} characters; at most 63 are allowed", hcp_ns.len()),
            )
            .label(c.name.span, "cluster name")
            .label(c.namespace.span, "namespace")
            .help("HyperShift runs the control plane in namespace `<namespace>-<cluster>`: shorten the cluster name or the namespace"),
        );
    }
    let mut pools: BTreeMap<&str, Span> = BTreeMap::new();
    let mut objects: BTreeMap<String, Span> = BTreeMap::new();
    for p in &c.node_pools {
        let np = names::node_pool(c, p);
        if let Some(first) = objects.get(&np).filter(|_| !pools.contains_key(p.name.value.as_str())) {
            diags.push(
                Diagnostic::error(
                    Code::NameCollision,
                    format!("two node pools of cluster `{}` render NodePool `{np}`", c.name.value),
                )
                .label(p.name.span, "renders it here")
                .label(*first, "and here")
                .help("give one pool another name or `object-name=`"),
            );
        }
        if let Some(first) = pools.insert(&p.name.value, p.name.span) {
            diags.push(
                Diagnostic::error(
                    Code::NameCollision,
                    format!("node pool `{}` is declared twice in cluster `{}`", p.name.value, c.name.value),
                )
                .label(p.name.span, "declared again here")
                .label(first, "first declared here")
                .help("rename one of the pools"),
            );
        }
        if np.len() > 63 {
            diags.push(
                Diagnostic::error(
                    Code::NameTooLong,
                    format!("NodePool name `{np}` is {} characters; at most 63 are allowed", np.len()),
                )
                .label(p.name.span, "pool name")
                .help("HyperShift uses the NodePool name as a label value: shorten the cluster or pool name"),
            );
        }
        objects.entry(np).or_insert(p.name.span);
    }
}

/// The graph of the fleet; `objects[i]` are the objects its `i`-th cluster renders.
fn build_graph(fleet: &Fleet, objects: Vec<Vec<(ObjectId, Span)>>) -> FleetGraph {
    use GraphNode as N;
    let mut g = FleetGraph::default();
    for (c, objects) in fleet.clusters.iter().zip(objects) {
        let hc = N::Object(ObjectId::new(Kind::HostedCluster, &c.namespace.value, &c.name.value));
        let ns = N::Object(ObjectId::new(Kind::Namespace, "", &c.namespace.value));
        for (id, _) in objects {
            let kind = id.kind;
            let n = N::Object(id);
            g.node(&n);
            match kind {
                Kind::Namespace => {}
                Kind::Secret => {
                    g.edge(&ns, &n);
                    g.edge(&n, &hc);
                }
                Kind::HostedCluster => g.edge(&ns, &n),
                Kind::NodePool => g.edge(&hc, &n),
            }
        }
        if let crate::ir::Storage::Manual { classes, snapshot_classes } = &c.storage {
            let group = |m: &crate::ir::StorageMapping| N::StorageGroup {
                cluster: c.name.value.clone(),
                group: m.group.as_ref().map(|g| g.value.clone()),
            };
            for m in classes.iter().chain(snapshot_classes) {
                g.edge(&group(m), &hc);
            }
            for m in classes {
                g.edge(&N::StorageClass(m.infra.value.clone()), &group(m));
            }
            for m in snapshot_classes {
                g.edge(&N::SnapshotClass(m.infra.value.clone()), &group(m));
            }
        }
        if let Some(sc) = &c.etcd.storage_class {
            g.edge(&N::StorageClass(sc.value.clone()), &hc);
        }
        for p in &c.node_pools {
            let np = N::Object(ObjectId::new(Kind::NodePool, &c.namespace.value, &names::node_pool(c, p)));
            if let Some(sc) = &p.root_volume.storage_class {
                g.edge(&N::StorageClass(sc.value.clone()), &np);
            }
            for d in &p.host_devices {
                g.edge(&N::HostDevice(d.name.value.clone()), &np);
            }
        }
    }
    g
}
