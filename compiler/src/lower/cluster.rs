//! One `cluster` block → [`Cluster`]: its settings read through its
//! layers (own block, profiles, `defaults`), its secrets, network, etcd,
//! infrastructure credentials and storage mappings, then each of its pools
//! (`pool.rs`). The API's rules for these settings are in `api_rules.rs`.

use std::path::Path;

use super::layers::{Block, Layers, NodeRef, ValueRef};
use super::pool::lower_pool;
use super::profiles::Profiles;
use super::{api_rules, infra};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::ir::*;
use crate::quantity::Quantity;
use crate::source::{Span, Spanned};
use hcpc_schema::lang::defaults;

fn missing(cluster: &Spanned<String>, what: &str, example: &str) -> Diagnostic {
    Diagnostic::error(Code::MissingSetting, format!("cluster `{}` has no `{what}`", cluster.value))
        .label(cluster.span, format!("no {what}"))
        .help(format!("add `{example}` to the cluster or to `defaults`"))
}

/// One layer of a cluster's settings: its own block, a profile's, or
/// `defaults`. Pools read the pool of their name in each layer, then the
/// unnamed `node-pool` of each layer (see [`super::pool::lower_pool`]).
#[derive(Clone, Copy)]
pub struct Layer<'a> {
    pub block: Option<Block<'a>>,
    /// `node-pool { … }` without a name: what every pool inherits.
    pub pool_defaults: Option<NodeRef<'a>>,
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
    pub fn pool(&self, name: &str) -> Option<NodeRef<'a>> {
        self.pools().find(|p| p.arg(0).and_then(|v| v.str()) == Some(name))
    }

    /// `release` written directly in this layer's block.
    pub fn release(&self) -> Option<ValueRef<'a>> {
        self.block.and_then(|b| Layers::new([Some(b)]).arg("release"))
    }
}

/// Lowers one `cluster NAME { … }` read through its layers: its own
/// block, its profiles' (most specific first), then `defaults`. `None`
/// when the cluster cannot be read at all (no name, a broken profile).
pub fn lower_cluster(
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
        cluster_cidr: s
            .prop("network", "cluster-cidr")
            .and_then(|v| v.str())
            .unwrap_or(api_rules::DEFAULT_CLUSTER_CIDR)
            .to_string(),
        service_cidr: s
            .prop("network", "service-cidr")
            .and_then(|v| v.str())
            .unwrap_or(api_rules::DEFAULT_SERVICE_CIDR)
            .to_string(),
        machine_cidr: s.prop("network", "machine-cidr").and_then(|v| v.str()).map(str::to_string),
        network_type: s.prop("network", "type").and_then(|v| v.str()).unwrap_or("OVNKubernetes").to_string(),
    };
    let availability = |key: &str| {
        s.prop("availability", key).and_then(|v| v.str()).map(|w| match w {
            "single-replica" => Availability::SingleReplica,
            _ => Availability::HighlyAvailable,
        })
    };

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

    let infra_cluster = infra_cluster(&s, home, diags);
    let storage = lower_storage(&s, diags);

    let pools = pool_order(&layers);
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
        target: s.node("target").and_then(|t| infra::lower_target(&t, home, diags)),
        infra_id: s.arg("infra-id").and_then(|v| v.string()),
        profiles: chain.iter().filter_map(|p| p.arg(0).and_then(|v| v.string())).collect(),
        release,
        name,
    };
    crate::release::rules::check_cluster(&cluster, diags);
    Some(cluster)
}

/// `infra-cluster namespace= kubeconfig-file=|kubeconfig-secret=`: VMs on
/// another cluster than the management cluster, with one credential.
fn infra_cluster(s: &Layers<'_>, home: Option<&Path>, diags: &mut Diagnostics) -> Option<InfraCluster> {
    s.node("infra-cluster").and_then(|n| {
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
    })
}

/// The profiles' pools, least specific profile first, then the
/// cluster's own; a cluster's pool of a profile pool's name takes that
/// pool's place and overrides its settings. A pool the cluster declares
/// twice stays twice, for `resolve` to report.
fn pool_order<'a>(layers: &[Layer<'a>]) -> Vec<(&'a str, Option<NodeRef<'a>>)> {
    let mut pools: Vec<(&'a str, Option<NodeRef<'a>>)> = Vec::new();
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
    pools
}

/// Reads `file=`, `env=` or `secret=` of a secret node.
fn secret_source(
    s: &Layers<'_>,
    name: &str,
    home: Option<&Path>,
    diags: &mut Diagnostics,
) -> Option<Spanned<SecretSource>> {
    let n = s.node(name)?;
    let given: Vec<(&str, ValueRef<'_>)> =
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

/// `storage { class …; snapshot-class …; group …; driver … }`: how the
/// hosted cluster's storage maps onto the infrastructure's.
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

#[cfg(test)]
mod tests {
    use super::super::test_support::lower_text;
    use crate::diagnostic::Code;
    use crate::ir::*;
    use crate::quantity::Quantity;
    use hcpc_schema::lang::defaults;

    const REL: &str = "quay.io/openshift-release-dev/ocp-release:4.17.3-multi";

    /// A cluster `a` on `REL` with `body` after its release and pull secret.
    fn fleet(before: &str, body: &str) -> String {
        format!("{before}\ncluster a {{\n    release \"{REL}\"\n    pull-secret secret=ps\n{body}\n}}\n")
    }

    #[test]
    fn a_cluster_that_says_only_what_is_required_gets_every_default() {
        let l = lower_text(&fleet("", "    node-pool w replicas=2"));
        let c = l.clean().cluster("a");
        assert_eq!(c.namespace.value, "clusters");
        assert_eq!(c.release.value.to_string(), REL);
        assert_eq!(c.pull_secret.value, SecretSource::Secret("ps".into()));
        assert_eq!(c.ssh_key, None);
        assert_eq!(c.network.cluster_cidr, "10.132.0.0/14");
        assert_eq!(c.network.service_cidr, "172.31.0.0/16");
        assert_eq!(c.network.machine_cidr, None);
        assert_eq!(c.network.network_type, "OVNKubernetes");
        assert_eq!(c.control_plane_availability, Availability::HighlyAvailable);
        assert_eq!(c.infrastructure_availability, None);
        assert!(!c.fips && c.prevent_destroy && !c.allow_minor_skip);
        assert_eq!(c.etcd.size.value, Quantity::gibibytes(defaults::ETCD_GIB));
        assert_eq!(c.etcd.storage_class, None);
        assert_eq!(c.storage, Storage::Default);
        assert_eq!(c.infra_cluster, None);
        assert_eq!(c.target, None);
        assert!(c.labels.is_empty() && c.tolerations.is_empty() && c.profiles.is_empty());
    }

    #[test]
    fn settings_combine_across_the_cluster_and_defaults() {
        let l = lower_text(&fleet(
            "defaults {\n    namespace hosted\n    etcd size=\"16Gi\"\n    fips #true\n}",
            "    etcd storage-class=lvm\n    fips #false\n    node-pool w replicas=1",
        ));
        let c = l.clean().cluster("a");
        assert_eq!(c.namespace.value, "hosted", "from `defaults`");
        assert_eq!(c.etcd.size.value, Quantity::gibibytes(16), "one property from `defaults`…");
        assert_eq!(c.etcd.storage_class.as_ref().map(|s| s.value.as_str()), Some("lvm"), "…the other from the cluster");
        assert!(!c.fips, "the cluster's own value wins");
    }

    #[test]
    fn a_profile_gives_its_pools_first_and_the_cluster_overrides_one_by_name() {
        let l = lower_text(
            "profile base {\n    node-pool infra replicas=1\n    node-pool w replicas=2\n}\n\
             cluster a profile=base {\n    release \"quay.io/openshift-release-dev/ocp-release:4.17.3-multi\"\n    pull-secret secret=ps\n    node-pool gpu replicas=1\n    node-pool w replicas=5\n}\n",
        );
        let c = l.clean().cluster("a");
        let pools: Vec<(&str, Scaling)> =
            c.node_pools.iter().map(|p| (p.name.value.as_str(), p.scaling.value)).collect();
        assert_eq!(
            pools,
            [("infra", Scaling::Replicas(1)), ("w", Scaling::Replicas(5)), ("gpu", Scaling::Replicas(1))]
        );
        assert_eq!(c.profiles.iter().map(|p| p.value.as_str()).collect::<Vec<_>>(), ["base"]);
    }

    #[test]
    fn a_missing_release_is_reported_and_the_rest_still_lowered() {
        let l = lower_text("cluster a {\n    pull-secret secret=ps\n    node-pool w replicas=1\n}\n");
        let (message, at) = l.only(Code::MissingSetting);
        assert_eq!((message.as_str(), at), ("cluster `a` has no `release`", "a"));
        assert_eq!(l.cluster("a").node_pools.len(), 1, "pools are still checked");
    }

    #[test]
    fn a_missing_pull_secret_is_reported() {
        let l = lower_text(&format!("cluster a {{\n    release \"{REL}\"\n    node-pool w replicas=1\n}}\n"));
        let (message, at) = l.only(Code::MissingSetting);
        assert_eq!((message.as_str(), at), ("cluster `a` has no `pull-secret`", "a"));
    }

    #[test]
    fn a_secret_takes_one_source() {
        let l = lower_text(&fleet("", "    ssh-key env=KEY secret=key\n    node-pool w replicas=1"));
        let (message, at) = l.only(Code::ConflictingSettings);
        assert_eq!((message.as_str(), at), ("`ssh-key` takes one source, got env= and secret=", "env=KEY"));
        assert_eq!(l.cluster("a").ssh_key, None);
    }

    #[test]
    fn infra_cluster_takes_exactly_one_credential() {
        let l = lower_text(&fleet("", "    infra-cluster namespace=vms kubeconfig-file=k kubeconfig-secret=s"));
        let (message, at) = l.only(Code::ConflictingSettings);
        assert_eq!(message, "`infra-cluster` takes kubeconfig-file= or kubeconfig-secret=, not both");
        assert_eq!(at, "kubeconfig-file=k");
        assert_eq!(l.cluster("a").infra_cluster, None);

        let l = lower_text(&fleet("", "    infra-cluster namespace=vms"));
        let (message, at) = l.only(Code::MissingProperty);
        assert_eq!((message.as_str(), at), ("`infra-cluster` needs a kubeconfig", "infra-cluster"));

        let l = lower_text(&fleet("", "    infra-cluster namespace=vms kubeconfig-secret=infra"));
        let infra = l.clean().cluster("a").infra_cluster.clone().expect("lowered");
        assert_eq!(infra.namespace, "vms");
        assert!(matches!(infra.credentials, InfraCredentials::KubeconfigSecret(s) if s.value == "infra"));
    }

    #[test]
    fn storage_mappings_select_manual_and_exclude_a_driver() {
        let l = lower_text(&fleet("", "    storage {\n        class fast hosted=ssd\n    }"));
        let Storage::Manual { classes, snapshot_classes } = &l.clean().cluster("a").storage else {
            panic!("mappings mean the Manual driver")
        };
        assert_eq!((classes[0].infra.value.as_str(), classes[0].hosted.value.as_str()), ("fast", "ssd"));
        assert!(snapshot_classes.is_empty());

        let l = lower_text(&fleet("", "    storage {\n        driver none\n        class fast hosted=ssd\n    }"));
        let (message, at) = l.only(Code::DriverConflict);
        assert_eq!((message.as_str(), at), ("`driver none` cannot be combined with class mappings", "driver none"));
        assert_eq!(l.cluster("a").storage, Storage::Default);
    }
}
