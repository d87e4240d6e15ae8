//! The language schema (`hcpc_schema::lang`, what `hcpc schema` prints) as
//! the editor needs it: which nodes a block takes, and each node's and
//! property's documentation with the HyperShift field it sets.

use hcpc_schema::lang::{self, NodeSpec, PropSpec, ValueKind};

use super::syntax::Node;

/// The nodes valid in the block enclosed by `path` (outermost first); `None`
/// when a node on the path is not part of the language there.
pub fn block_specs(path: &[&Node]) -> Option<&'static [NodeSpec]> {
    let mut specs = lang::TOP_LEVEL;
    for n in path {
        specs = specs.iter().find(|s| s.name == n.name.text)?.children;
    }
    Some(specs)
}

/// The spec of `node`, a node in the block enclosed by `path`.
pub fn node_spec(path: &[&Node], node: &Node) -> Option<&'static NodeSpec> {
    block_specs(path)?.iter().find(|s| s.name == node.name.text)
}

/// How a node is written: `node-pool NAME replicas=N object-name=NAME { … }`.
pub fn signature(spec: &NodeSpec) -> String {
    let mut s = spec.name.to_owned();
    for a in spec.args {
        s.push(' ');
        if a.required {
            s.push_str(a.meta);
        } else {
            s.push_str(&format!("[{}]", a.meta));
        }
    }
    for p in spec.props {
        s.push_str(&format!(" {}={}", p.name, placeholder(p.value)));
    }
    if spec.free_props.is_some() {
        s.push_str(" KEY=VALUE…");
    }
    if !spec.children.is_empty() {
        s.push_str(" { … }");
    }
    s
}

/// A short placeholder for a value of `kind`.
fn placeholder(kind: ValueKind) -> String {
    match kind {
        ValueKind::String => "VALUE".into(),
        ValueKind::Name | ValueKind::ObjectName => "NAME".into(),
        ValueKind::Count => "N".into(),
        ValueKind::Bool => "#true|#false".into(),
        ValueKind::Quantity => "QUANTITY".into(),
        ValueKind::Duration => "DURATION".into(),
        ValueKind::Path => "PATH".into(),
        ValueKind::OneOf(words) => words.join("|"),
        ValueKind::CountOrPercent => "N|\"N%\"".into(),
    }
}

/// What a value of `kind` looks like, in a sentence.
pub fn kind_text(kind: ValueKind) -> String {
    match kind {
        ValueKind::String => "a string".into(),
        ValueKind::Name => "a name (DNS-1123 label)".into(),
        ValueKind::ObjectName => "an object name (DNS-1123 subdomain)".into(),
        ValueKind::Count => "a whole number".into(),
        ValueKind::Bool => "`#true` or `#false`".into(),
        ValueKind::Quantity => "a quantity such as `\"8Gi\"` (a bare number means Gi)".into(),
        ValueKind::Duration => "a duration such as `\"90s\"`".into(),
        ValueKind::Path => "a path, relative to this file".into(),
        ValueKind::CountOrPercent => "a whole number, or a percentage such as `\"25%\"`".into(),
        ValueKind::OneOf(words) => {
            format!("one of {}", words.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", "))
        }
    }
}

/// Markdown documentation of a node: how it is written, its doc, what it
/// takes and the field it sets. `names` is the schema path ending in it.
pub fn node_doc(names: &[&str], spec: &NodeSpec) -> String {
    let mut s = format!("```kdl\n{}\n```\n{}", signature(spec), spec.doc);
    for a in spec.args {
        s.push_str(&format!("\n\n`{}`: {}", a.meta, kind_text(a.value)));
    }
    if let Some(field) = field(names, None) {
        s.push_str(&format!("\n\nSets {field}."));
    }
    s
}

/// Markdown documentation of a property of the node at `names`.
pub fn prop_doc(names: &[&str], spec: &NodeSpec, prop: &PropSpec) -> String {
    let mut s = format!(
        "```kdl\n{} {}={}\n```\n{}{}\n\nTakes {}.",
        spec.name,
        prop.name,
        placeholder(prop.value),
        prop.doc,
        if prop.required { " (required)" } else { "" },
        kind_text(prop.value)
    );
    if let Some(field) = field(names, Some(prop.name)) {
        s.push_str(&format!("\n\nSets {field}."));
    }
    s
}

/// The HyperShift field a setting sets, in prose with the field paths in
/// backticks; `names` is its schema path (`defaults` and a profile's
/// settings read as `cluster`, since they take the same settings).
pub fn field(names: &[&str], prop: Option<&str>) -> Option<&'static str> {
    let mut key: Vec<&str> = names.to_vec();
    if key.first() == Some(&"defaults") || (key.len() > 1 && key.first() == Some(&"profile")) {
        key[0] = "cluster";
    }
    let mut key = key.join(" ");
    if let Some(p) = prop {
        key.push(' ');
        key.push_str(p);
        key.push('=');
    }
    FIELDS.iter().find(|(k, _)| *k == key).map(|(_, f)| *f)
}

/// Schema path (properties end in `=`) → what it sets, after
/// docs/language.md §11.
#[rustfmt::skip]
pub const FIELDS: &[(&str, &str)] = &[
    ("fleet", "the ApplySet of every object: its parent is Secret `hcpc-fleet-<NAME>`"),
    ("fleet namespace=", "the namespace of the ApplySet parent Secret and of the Lease `hcpc-lock-<NAME>`"),
    ("cluster", "HostedCluster `metadata.name`, the prefix of `spec.infraID` and of the names of the cluster's Secrets and NodePools"),
    ("cluster namespace", "`metadata.namespace` of every object of the cluster, and the Namespace object"),
    ("cluster release", "HostedCluster `spec.release.image`, and NodePool `spec.release.image` of pools without their own"),
    ("cluster pull-secret", "HostedCluster `spec.pullSecret.name` (`<cluster>-pull-secret`, or the `secret=` name)"),
    ("cluster pull-secret file=", "the `.dockerconfigjson` of Secret `<cluster>-pull-secret`"),
    ("cluster pull-secret env=", "the `.dockerconfigjson` of Secret `<cluster>-pull-secret`"),
    ("cluster pull-secret secret=", "HostedCluster `spec.pullSecret.name`"),
    ("cluster ssh-key", "HostedCluster `spec.sshKey.name` (`<cluster>-ssh-key`, or the `secret=` name)"),
    ("cluster ssh-key file=", "the `id_rsa.pub` of Secret `<cluster>-ssh-key`"),
    ("cluster ssh-key env=", "the `id_rsa.pub` of Secret `<cluster>-ssh-key`"),
    ("cluster ssh-key secret=", "HostedCluster `spec.sshKey.name`"),
    ("cluster base-domain", "HostedCluster `spec.dns.baseDomain`; without it `spec.platform.kubevirt.baseDomainPassthrough: true`"),
    ("cluster network", "HostedCluster `spec.networking`"),
    ("cluster network cluster-cidr=", "HostedCluster `spec.networking.clusterNetwork[].cidr`"),
    ("cluster network service-cidr=", "HostedCluster `spec.networking.serviceNetwork[].cidr`"),
    ("cluster network machine-cidr=", "HostedCluster `spec.networking.machineNetwork[].cidr`"),
    ("cluster network type=", "HostedCluster `spec.networking.networkType`"),
    ("cluster availability", "HostedCluster availability policies"),
    ("cluster availability control-plane=", "HostedCluster `spec.controllerAvailabilityPolicy` (`HighlyAvailable` / `SingleReplica`)"),
    ("cluster availability infrastructure=", "HostedCluster `spec.infrastructureAvailabilityPolicy` (not written when unset)"),
    ("cluster fips", "HostedCluster `spec.fips`"),
    ("cluster labels", "HostedCluster `metadata.labels`"),
    ("cluster annotations", "HostedCluster `metadata.annotations`"),
    ("cluster control-plane-node-selector", "HostedCluster `spec.nodeSelector`"),
    ("cluster toleration", "HostedCluster `spec.tolerations[]`"),
    ("cluster toleration key=", "HostedCluster `spec.tolerations[].key`"),
    ("cluster toleration value=", "HostedCluster `spec.tolerations[].value`"),
    ("cluster toleration operator=", "HostedCluster `spec.tolerations[].operator`"),
    ("cluster toleration effect=", "HostedCluster `spec.tolerations[].effect`"),
    ("cluster toleration seconds=", "HostedCluster `spec.tolerations[].tolerationSeconds`"),
    ("cluster etcd", "HostedCluster `spec.etcd.managed.storage.persistentVolume`"),
    ("cluster etcd storage-class=", "HostedCluster `spec.etcd.managed.storage.persistentVolume.storageClassName`"),
    ("cluster etcd size=", "HostedCluster `spec.etcd.managed.storage.persistentVolume.size`"),
    ("cluster etcd key-secret=", "HostedCluster `spec.secretEncryption.aescbc.activeKey.name`: an existing Secret, not written by hcpc"),
    ("cluster storage", "HostedCluster `spec.platform.kubevirt.storageDriver` (`type: Manual` with mappings)"),
    ("cluster storage class", "HostedCluster `spec.platform.kubevirt.storageDriver.manual.storageClassMapping[]` (`infraStorageClassName`)"),
    ("cluster storage class hosted=", "HostedCluster `…storageClassMapping[].guestStorageClassName`"),
    ("cluster storage snapshot-class", "HostedCluster `spec.platform.kubevirt.storageDriver.manual.volumeSnapshotClassMapping[]` (`infraVolumeSnapshotClassName`)"),
    ("cluster storage snapshot-class hosted=", "HostedCluster `…volumeSnapshotClassMapping[].guestVolumeSnapshotClassName`"),
    ("cluster storage group", "the `group` of the storage class and snapshot class mappings inside it"),
    ("cluster storage group class", "HostedCluster `…storageClassMapping[]` (`infraStorageClassName`, `group`)"),
    ("cluster storage group class hosted=", "HostedCluster `…storageClassMapping[].guestStorageClassName`"),
    ("cluster storage group snapshot-class", "HostedCluster `…volumeSnapshotClassMapping[]` (`infraVolumeSnapshotClassName`, `group`)"),
    ("cluster storage group snapshot-class hosted=", "HostedCluster `…volumeSnapshotClassMapping[].guestVolumeSnapshotClassName`"),
    ("cluster storage driver", "HostedCluster `spec.platform.kubevirt.storageDriver.type` (`none`: `None`; `default`: not written)"),
    ("cluster infra-cluster", "HostedCluster `spec.platform.kubevirt.credentials`"),
    ("cluster infra-cluster namespace=", "HostedCluster `spec.platform.kubevirt.credentials.infraNamespace`"),
    ("cluster infra-cluster kubeconfig-file=", "HostedCluster `spec.platform.kubevirt.credentials.infraKubeConfigSecret` (Secret `<cluster>-infra-credentials`, key `kubeconfig`)"),
    ("cluster infra-cluster kubeconfig-secret=", "HostedCluster `spec.platform.kubevirt.credentials.infraKubeConfigSecret.name` (key `kubeconfig`)"),
    ("cluster infra-id", "HostedCluster `spec.infraID`"),
    ("cluster prevent-destroy", "the label `hcpc.openshift.io/prevent-destroy` on the HostedCluster"),
    ("cluster node-pool", "NodePool `metadata.name: <cluster>-<NAME>` and `spec.clusterName`"),
    ("cluster node-pool replicas=", "NodePool `spec.replicas`"),
    ("cluster node-pool object-name=", "NodePool `metadata.name`"),
    ("cluster node-pool autoscaling", "NodePool `spec.autoScaling`"),
    ("cluster node-pool autoscaling min=", "NodePool `spec.autoScaling.min`"),
    ("cluster node-pool autoscaling max=", "NodePool `spec.autoScaling.max`"),
    ("cluster node-pool cores", "NodePool `spec.platform.kubevirt.compute.cores`"),
    ("cluster node-pool memory", "NodePool `spec.platform.kubevirt.compute.memory`"),
    ("cluster node-pool qos-class", "NodePool `spec.platform.kubevirt.compute.qosClass` (`Guaranteed`; `burstable` is not written)"),
    ("cluster node-pool root-volume", "NodePool `spec.platform.kubevirt.rootVolume`"),
    ("cluster node-pool root-volume size=", "NodePool `spec.platform.kubevirt.rootVolume.persistent.size`"),
    ("cluster node-pool root-volume storage-class=", "NodePool `spec.platform.kubevirt.rootVolume.persistent.storageClass`"),
    ("cluster node-pool root-volume access-mode=", "NodePool `spec.platform.kubevirt.rootVolume.persistent.accessModes[]`"),
    ("cluster node-pool root-volume volume-mode=", "NodePool `spec.platform.kubevirt.rootVolume.persistent.volumeMode`"),
    ("cluster node-pool root-volume cache=", "NodePool `spec.platform.kubevirt.rootVolume.cacheStrategy.type` (`None` / `PVC`)"),
    ("cluster node-pool host-device", "NodePool `spec.platform.kubevirt.hostDevices[].deviceName`"),
    ("cluster node-pool host-device count=", "NodePool `spec.platform.kubevirt.hostDevices[].count`"),
    ("cluster node-pool network-multiqueue", "NodePool `spec.platform.kubevirt.networkInterfaceMultiqueue` (`Enable` / `Disable`)"),
    ("cluster node-pool attach-default-network", "NodePool `spec.platform.kubevirt.attachDefaultNetwork`"),
    ("cluster node-pool additional-network", "NodePool `spec.platform.kubevirt.additionalNetworks[].name`"),
    ("cluster node-pool node-selector", "NodePool `spec.platform.kubevirt.nodeSelector`"),
    ("cluster node-pool arch", "NodePool `spec.arch`"),
    ("cluster node-pool auto-repair", "NodePool `spec.management.autoRepair`"),
    ("cluster node-pool upgrade-type", "NodePool `spec.management.upgradeType` (`Replace` / `InPlace`)"),
    ("cluster node-pool node-drain-timeout", "NodePool `spec.nodeDrainTimeout`"),
    ("cluster node-pool node-volume-detach-timeout", "NodePool `spec.nodeVolumeDetachTimeout`"),
    ("cluster node-pool release", "NodePool `spec.release.image`"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every schema path with its node, properties included (`name=`).
    fn paths(specs: &[NodeSpec], prefix: &[&'static str], out: &mut Vec<String>) {
        for s in specs {
            let mut p = prefix.to_vec();
            p.push(s.name);
            out.push(p.join(" "));
            for prop in s.props {
                out.push(format!("{} {}=", p.join(" "), prop.name));
            }
            paths(s.children, &p, out);
        }
    }

    #[test]
    fn every_field_names_a_setting_of_the_schema() {
        let mut all = Vec::new();
        paths(lang::TOP_LEVEL, &[], &mut all);
        for (key, _) in FIELDS {
            assert!(all.iter().any(|p| p == key), "`{key}` is not a setting of the schema");
        }
    }

    /// Settings of a cluster that set no HyperShift field of their own: how
    /// hcpc treats the cluster, not what it renders.
    const NO_FIELD: &[&str] = &[
        "cluster profile=",         // which profile's settings the cluster takes
        "cluster allow-minor-skip", // lets a plan skip a minor version
        "cluster target",           // which management cluster it lives on
        "cluster target context=",
    ];

    /// Adding a setting to the schema without saying on hover what it sets,
    /// or without documenting it, fails here (CONTRIBUTING.md lists what
    /// changes together).
    #[test]
    fn every_cluster_setting_has_a_field_and_a_reference_entry() {
        let mut all = Vec::new();
        paths(lang::TOP_LEVEL, &[], &mut all);
        let missing: Vec<&String> = all
            .iter()
            .filter(|p| p.starts_with("cluster ") && !NO_FIELD.contains(&p.as_str()))
            .filter(|p| !FIELDS.iter().any(|(k, _)| k == p))
            .collect();
        assert!(missing.is_empty(), "settings without a HyperShift field in FIELDS: {missing:?}");

        let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/language.md"))
            .expect("docs/language.md");
        let undocumented: Vec<&String> = all
            .iter()
            .filter(|p| {
                let last = p.rsplit(' ').next().unwrap_or(p);
                let word = last.trim_end_matches('=');
                let written = if last.ends_with('=') { format!("{word}=") } else { format!("`{word}") };
                !docs.contains(&written)
            })
            .collect();
        assert!(undocumented.is_empty(), "settings missing from docs/language.md: {undocumented:?}");
    }

    #[test]
    fn defaults_read_as_cluster_settings() {
        assert_eq!(field(&["defaults", "node-pool", "memory"], None), field(&["cluster", "node-pool", "memory"], None));
        assert_eq!(field(&["profile", "node-pool", "memory"], None), field(&["cluster", "node-pool", "memory"], None));
        assert_eq!(field(&["profile", "etcd"], Some("size")), field(&["cluster", "etcd"], Some("size")));
        assert!(field(&["defaults", "etcd"], Some("size")).is_some_and(|f| f.contains("persistentVolume.size")));
    }
}
