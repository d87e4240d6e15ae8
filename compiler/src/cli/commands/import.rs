//! `hcpc import`: KDL for existing HostedClusters and their NodePools, so
//! brownfield clusters can be adopted: one cluster on stdout
//! (`NAMESPACE/NAME`), or a namespace or the whole management cluster as a
//! fleet directory whose `defaults` hold what every cluster shares.
//! Planning the output against the same cluster changes nothing but hcpc's
//! ownership labels.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use crate::cli::exit;
use crate::object::Kind;
use hcpc_schema::labels;

/// A KDL string literal.
// Strings are written as `hcpc fmt` writes them: bare when KDL 2 reads
// them so, quoted with every character KDL forbids raw escaped otherwise.
use crate::fmt::quote as q;

fn s<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Labels and annotations that belong to tools, not to the user.
fn user_key(k: &str) -> bool {
    !(k.starts_with("applyset.kubernetes.io/")
        || k.starts_with("hcpc.openshift.io/")
        || k == labels::MANAGED_BY
        || k.starts_with("hypershift.openshift.io/")
        || k.starts_with("kubectl.kubernetes.io/"))
}

/// `NAME "k"="v" …` for a string map, `None` when empty.
fn map_node(name: &str, map: Option<&Value>, filter: bool) -> Option<String> {
    let m = map.and_then(Value::as_object)?;
    let pairs: Vec<String> = m
        .iter()
        .filter(|(k, _)| !filter || user_key(k))
        .filter_map(|(k, v)| Some(format!("{}={}", q(k), q(v.as_str()?))))
        .collect();
    (!pairs.is_empty()).then(|| format!("{name} {}", pairs.join(" ")))
}

/// One imported HostedCluster: its settings and pools as KDL lines
/// (without indentation; a block is one multi-line entry), so that what
/// every cluster of a namespace shares can move into `defaults`.
pub struct Imported {
    pub namespace: String,
    pub name: String,
    /// Cluster settings in the order they are written.
    settings: Vec<String>,
    pools: Vec<ImportedPool>,
    /// What the language cannot express and hcpc does not manage, for
    /// warnings.
    pub notes: Vec<String>,
    /// Fields hcpc manages but cannot express with this cluster's value:
    /// the first plan would change the cluster, so it is not imported.
    pub refused: Vec<String>,
}

/// One imported NodePool.
struct ImportedPool {
    /// The pool's name, quoted.
    name: String,
    /// `object-name="…"` when the NodePool's name does not follow
    /// `<cluster>-<pool>`.
    object_name: Option<String>,
    /// `replicas=N` unless the pool autoscales.
    size: Option<String>,
    body: Vec<String>,
}

/// Generated KDL in `hcpc fmt`'s layout. Import builds its text from
/// quoted values, so a failure here is a bug: it is reported, and nothing
/// is written, rather than the unchecked text.
fn layout(text: &str, what: &str) -> Result<String, String> {
    crate::fmt::format_source(text)
        .map_err(|e| format!("the KDL written for {what} does not read back ({e}); this is a bug in hcpc import"))
}

/// Renders the KDL for one HostedCluster and its NodePools; notes list
/// what the language cannot express. An error lists each field that the
/// language cannot express and hcpc would change.
pub fn to_kdl(hc: &Value, pools: &[Value]) -> Result<(String, Vec<String>), Vec<String>> {
    let imported = import(hc, pools);
    if !imported.refused.is_empty() {
        return Err(imported.refusals().collect());
    }
    let text = imported.kdl(&Shared::default()).map_err(|e| vec![e])?;
    Ok((text, imported.notes))
}

/// Reads one HostedCluster and its NodePools.
pub fn import(hc: &Value, pools: &[Value]) -> Imported {
    let mut notes = Vec::new();
    let name = s(hc, "/metadata/name").unwrap_or("imported");
    let ns = s(hc, "/metadata/namespace").unwrap_or("clusters");
    let spec = hc.get("spec").cloned().unwrap_or(Value::Null);
    let mut o: Vec<String> = Vec::new();
    o.push(format!("namespace {}", q(ns)));
    let release = s(&spec, "/release/image").unwrap_or("");
    o.push(format!("release {}", q(release)));
    if let Some(p) = s(&spec, "/pullSecret/name") {
        o.push(format!("pull-secret secret={}", q(p)));
    }
    if let Some(k) = s(&spec, "/sshKey/name") {
        o.push(format!("ssh-key secret={}", q(k)));
    }
    let passthrough = spec.pointer("/platform/kubevirt/baseDomainPassthrough").and_then(Value::as_bool) == Some(true);
    if let (false, Some(d)) = (passthrough, s(&spec, "/dns/baseDomain")) {
        o.push(format!("base-domain {}", q(d)));
    }
    let mut net = Vec::new();
    for (key, ptr) in [
        ("cluster-cidr", "/networking/clusterNetwork/0/cidr"),
        ("service-cidr", "/networking/serviceNetwork/0/cidr"),
        ("machine-cidr", "/networking/machineNetwork/0/cidr"),
        ("type", "/networking/networkType"),
    ] {
        if let Some(v) = s(&spec, ptr) {
            net.push(format!("{key}={}", q(v)));
        }
    }
    if !net.is_empty() {
        o.push(format!("network {}", net.join(" ")));
    }
    let policy = |v: &str| if v == "SingleReplica" { "single-replica" } else { "highly-available" };
    let mut avail = Vec::new();
    if let Some(p) = s(&spec, "/controllerAvailabilityPolicy") {
        avail.push(format!("control-plane={}", policy(p)));
    }
    if let Some(p) = s(&spec, "/infrastructureAvailabilityPolicy") {
        avail.push(format!("infrastructure={}", policy(p)));
    }
    if !avail.is_empty() {
        o.push(format!("availability {}", avail.join(" ")));
    }
    if spec.get("fips").and_then(Value::as_bool) == Some(true) {
        o.push("fips #true".to_string());
    }
    o.extend(map_node("labels", hc.pointer("/metadata/labels"), true));
    o.extend(map_node("annotations", hc.pointer("/metadata/annotations"), true));
    o.extend(map_node("control-plane-node-selector", spec.get("nodeSelector"), false));
    for t in spec.get("tolerations").and_then(Value::as_array).into_iter().flatten() {
        let mut props = Vec::new();
        for key in ["key", "value", "operator", "effect"] {
            if let Some(v) = s(t, &format!("/{key}")) {
                props.push(format!("{key}={}", q(v)));
            }
        }
        if let Some(n) = t.get("tolerationSeconds").and_then(Value::as_i64) {
            props.push(format!("seconds={n}"));
        }
        o.push(format!("toleration {}", props.join(" ")));
    }
    let mut etcd = Vec::new();
    if let Some(c) = s(&spec, "/etcd/managed/storage/persistentVolume/storageClassName") {
        etcd.push(format!("storage-class={}", q(c)));
    }
    if let Some(size) = s(&spec, "/etcd/managed/storage/persistentVolume/size") {
        etcd.push(format!("size={}", q(size)));
    }
    if !etcd.is_empty() {
        o.push(format!("etcd {}", etcd.join(" ")));
    }
    match s(&spec, "/platform/kubevirt/storageDriver/type") {
        Some("None") => {
            o.push("storage {\n    driver none\n}".to_string());
        }
        Some("Manual") => {
            // Entries of one group share a `group` block where that keeps
            // each list's order (mapping order is immutable): an entry joins
            // its group's last block unless an entry of its own list was
            // placed in a later block.
            let mut blocks: Vec<(Option<&str>, Vec<String>)> = Vec::new();
            let lists = [
                ("class", "storageClassMapping", "infraStorageClassName", "guestStorageClassName"),
                (
                    "snapshot-class",
                    "volumeSnapshotClassMapping",
                    "infraVolumeSnapshotClassName",
                    "guestVolumeSnapshotClassName",
                ),
            ];
            for (node, list, infra, guest) in lists {
                let ptr = format!("/platform/kubevirt/storageDriver/manual/{list}");
                let mut last_of_list: Option<usize> = None;
                for m in spec.pointer(&ptr).and_then(Value::as_array).into_iter().flatten() {
                    let line = format!(
                        "{node} {} hosted={}",
                        q(s(m, &format!("/{infra}")).unwrap_or("")),
                        q(s(m, &format!("/{guest}")).unwrap_or(""))
                    );
                    let group = s(m, "/group");
                    let join = group
                        .and_then(|g| blocks.iter().rposition(|(b, _)| *b == Some(g)))
                        .filter(|&at| last_of_list.is_none_or(|last| last <= at));
                    let at = match join {
                        Some(at) => at,
                        None => {
                            blocks.push((group, Vec::new()));
                            blocks.len() - 1
                        }
                    };
                    blocks[at].1.push(line);
                    last_of_list = Some(at);
                }
            }
            let mut block = String::from("storage {\n");
            for (group, lines) in &blocks {
                match group {
                    Some(g) => {
                        let _ = writeln!(block, "    group {} {{", q(g));
                        for line in lines {
                            let _ = writeln!(block, "        {line}");
                        }
                        let _ = writeln!(block, "    }}");
                    }
                    None => {
                        for line in lines {
                            let _ = writeln!(block, "    {line}");
                        }
                    }
                }
            }
            block.push('}');
            o.push(block);
        }
        _ => {}
    }
    if let Some(infra_ns) = s(&spec, "/platform/kubevirt/credentials/infraNamespace") {
        let secret = s(&spec, "/platform/kubevirt/credentials/infraKubeConfigSecret/name").unwrap_or("");
        if s(&spec, "/platform/kubevirt/credentials/infraKubeConfigSecret/key") != Some("kubeconfig") {
            notes.push("the infrastructure kubeconfig Secret uses a key other than `kubeconfig`; hcpc always uses `kubeconfig`".into());
        }
        o.push(format!("infra-cluster namespace={} kubeconfig-secret={}", q(infra_ns), q(secret)));
    }
    if let Some(id) = s(&spec, "/infraID") {
        o.push(format!("infra-id {}", q(id)));
    }
    if s(&spec, "/secretEncryption/aescbc/activeKey/name") != Some(&format!("{name}-etcd-encryption-key")) {
        notes.push(format!("secretEncryption does not use Secret {name}-etcd-encryption-key; hcpc would change it"));
    }
    let expected_services =
        [("APIServer", "LoadBalancer"), ("Ignition", "Route"), ("Konnectivity", "Route"), ("OAuthServer", "Route")];
    let services: Vec<(String, String)> = spec
        .get("services")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| {
            (
                s(v, "/service").unwrap_or("").to_string(),
                s(v, "/servicePublishingStrategy/type").unwrap_or("").to_string(),
            )
        })
        .collect();
    if services.iter().map(|(a, b)| (a.as_str(), b.as_str())).ne(expected_services.iter().copied()) {
        notes.push("spec.services differ from hcp's KubeVirt defaults, which hcpc always renders".into());
    }
    let mut refused = Vec::new();
    for (ptr, what) in [
        ("/networking/clusterNetwork/1", "spec.networking.clusterNetwork has more than one network (dual stack)"),
        ("/networking/serviceNetwork/1", "spec.networking.serviceNetwork has more than one network (dual stack)"),
        ("/networking/machineNetwork/1", "spec.networking.machineNetwork has more than one network"),
    ] {
        if spec.pointer(ptr).is_some() {
            refused.push(format!("{what}; hcpc renders one"));
        }
    }
    if let Some(p) = s(&spec, "/olmCatalogPlacement").filter(|p| *p != "management") {
        refused.push(format!("spec.olmCatalogPlacement is `{p}`; hcpc renders `management`"));
    }
    if let Some(f) = s(&spec, "/configuration/featureGate/featureSet").filter(|f| *f != "Default") {
        refused
            .push(format!("spec.configuration.featureGate.featureSet is `{f}`; hcpc renders the default feature set"));
    }
    for list in ["enabled", "disabled"] {
        if spec.pointer(&format!("/capabilities/{list}")).and_then(Value::as_array).is_some_and(|l| !l.is_empty()) {
            refused.push(format!("spec.capabilities.{list} is set; hcpc renders no capabilities"));
        }
    }
    let mut imported_pools = Vec::new();
    for p in pools {
        imported_pools.push(pool_kdl(name, release, p));
        let pname = s(p, "/metadata/name").unwrap_or("?");
        let pspec = p.get("spec").cloned().unwrap_or(Value::Null);
        if pspec.pointer("/platform/kubevirt/rootVolume/persistent/accessModes/1").is_some() {
            notes.push(format!("NodePool {pname}: only the first root-volume access mode is imported"));
        }
        for (key, what) in [("nodeLabels", "node labels"), ("taints", "taints"), ("pausedUntil", "pausedUntil")] {
            if pspec.get(key).is_some_and(|v| !v.is_null()) {
                notes.push(format!("NodePool {pname}: {what} cannot be expressed in hcpc and are not imported"));
            }
        }
    }
    Imported { namespace: ns.to_string(), name: name.to_string(), settings: o, pools: imported_pools, notes, refused }
}

fn pool_kdl(cluster: &str, cluster_release: &str, p: &Value) -> ImportedPool {
    let full = s(p, "/metadata/name").unwrap_or("pool");
    let (pool, object_name) = match full.strip_prefix(&format!("{cluster}-")) {
        Some(short) if !short.is_empty() => (short.to_string(), None),
        _ => (full.to_string(), Some(full)),
    };
    let spec = p.get("spec").cloned().unwrap_or(Value::Null);
    let size = spec
        .get("replicas")
        .and_then(Value::as_u64)
        .filter(|_| spec.get("autoScaling").is_none())
        .map(|n| format!("replicas={n}"));
    let object_name = object_name.map(|o| format!("object-name={}", q(o)));
    let mut body = Vec::new();
    if let (Some(min), Some(max)) = (
        spec.pointer("/autoScaling/min").and_then(Value::as_u64),
        spec.pointer("/autoScaling/max").and_then(Value::as_u64),
    ) {
        body.push(format!("autoscaling min={min} max={max}"));
    }
    let kv = spec.pointer("/platform/kubevirt").cloned().unwrap_or(Value::Null);
    if let Some(c) = kv.pointer("/compute/cores").and_then(Value::as_u64) {
        body.push(format!("cores {c}"));
    }
    if let Some(m) = s(&kv, "/compute/memory") {
        body.push(format!("memory {}", q(m)));
    }
    if s(&kv, "/compute/qosClass") == Some("Guaranteed") {
        body.push("qos-class guaranteed".into());
    }
    let mut rv = Vec::new();
    if let Some(size) = s(&kv, "/rootVolume/persistent/size") {
        rv.push(format!("size={}", q(size)));
    }
    if let Some(sc) = s(&kv, "/rootVolume/persistent/storageClass") {
        rv.push(format!("storage-class={}", q(sc)));
    }
    if let Some(am) = s(&kv, "/rootVolume/persistent/accessModes/0") {
        let word = match am {
            "ReadWriteMany" => "RWX",
            "ReadOnly" => "ROX",
            "ReadWriteOncePod" => "RWOP",
            _ => "RWO",
        };
        rv.push(format!("access-mode={word}"));
    }
    if let Some(vm) = s(&kv, "/rootVolume/persistent/volumeMode") {
        rv.push(format!("volume-mode={vm}"));
    }
    if let Some(cache) = s(&kv, "/rootVolume/cacheStrategy/type") {
        rv.push(format!("cache={}", if cache == "PVC" { "pvc" } else { "none" }));
    }
    if !rv.is_empty() {
        body.push(format!("root-volume {}", rv.join(" ")));
    }
    for d in kv.get("hostDevices").and_then(Value::as_array).into_iter().flatten() {
        let count = d.get("count").and_then(Value::as_u64).unwrap_or(1);
        body.push(format!("host-device {} count={count}", q(s(d, "/deviceName").unwrap_or(""))));
    }
    if s(&kv, "/networkInterfaceMultiqueue") == Some("Disable") {
        body.push("network-multiqueue #false".into());
    }
    if kv.get("attachDefaultNetwork").and_then(Value::as_bool) == Some(false) {
        body.push("attach-default-network #false".into());
    }
    for n in kv.get("additionalNetworks").and_then(Value::as_array).into_iter().flatten() {
        body.push(format!("additional-network {}", q(s(n, "/name").unwrap_or(""))));
    }
    body.extend(map_node("node-selector", kv.get("nodeSelector"), false));
    if let Some(a) = s(&spec, "/arch").filter(|a| *a != "amd64") {
        body.push(format!("arch {a}"));
    }
    if spec.pointer("/management/autoRepair").and_then(Value::as_bool) == Some(true) {
        body.push("auto-repair #true".into());
    }
    if s(&spec, "/management/upgradeType") == Some("InPlace") {
        body.push("upgrade-type in-place".into());
    }
    for (key, ptr) in
        [("node-drain-timeout", "/nodeDrainTimeout"), ("node-volume-detach-timeout", "/nodeVolumeDetachTimeout")]
    {
        if let Some(d) = s(&spec, ptr).filter(|d| *d != "0s") {
            body.push(format!("{key} {}", q(d)));
        }
    }
    if let Some(r) = s(&spec, "/release/image").filter(|r| *r != cluster_release) {
        body.push(format!("release {}", q(r)));
    }
    ImportedPool { name: q(&pool), object_name, size, body }
}

/// What every imported cluster (and every pool of every cluster) shares:
/// the settings written once in `defaults` instead of in each cluster.
#[derive(Default)]
pub struct Shared {
    /// Cluster settings, by node name, as the clusters write them.
    settings: Vec<(String, Vec<String>)>,
    /// Pool settings every pool has, by node name.
    pool_settings: Vec<(String, Vec<String>)>,
    /// `replicas=N` when every pool has that size.
    pool_size: Option<String>,
    /// Properties (and map entries) every cluster sets alike on a setting
    /// that is not shared whole: they layer one by one.
    properties: Vec<(String, Vec<String>)>,
    /// The same for pool settings.
    pool_properties: Vec<(String, Vec<String>)>,
}

/// Settings whose properties, or map entries, layer one by one over
/// `defaults` (docs/language.md, section 9).
const BY_PROPERTY: [&str; 8] = [
    "network",
    "availability",
    "etcd",
    "labels",
    "annotations",
    "control-plane-node-selector",
    "root-volume",
    "node-selector",
];

/// A node line's words: its name, then its properties, quoted strings
/// kept whole.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in line.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c.is_whitespace() && !quoted {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            continue;
        }
        word.push(c);
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// For each [`BY_PROPERTY`] setting not in `whole`: the properties every
/// one of `all` writes alike on its one line of that setting.
fn common_properties(
    all: &[Vec<(String, Vec<String>)>],
    whole: &[(String, Vec<String>)],
) -> Vec<(String, Vec<String>)> {
    let Some((first, rest)) = all.split_first() else { return Vec::new() };
    let props_of = |groups: &[(String, Vec<String>)], k: &str| -> Option<Vec<String>> {
        match groups.iter().find(|(g, _)| g == k).map(|(_, lines)| lines.as_slice()) {
            Some([line]) => Some(words(line).into_iter().skip(1).collect()),
            _ => None,
        }
    };
    let mut out = Vec::new();
    for (k, _) in first {
        if !BY_PROPERTY.contains(&k.as_str()) || whole.iter().any(|(w, _)| w == k) {
            continue;
        }
        let Some(props) = props_of(first, k) else { continue };
        let others: Option<Vec<Vec<String>>> = rest.iter().map(|o| props_of(o, k)).collect();
        let Some(others) = others else { continue };
        let shared: Vec<String> = props.into_iter().filter(|p| others.iter().all(|o| o.contains(p))).collect();
        if !shared.is_empty() {
            out.push((k.clone(), shared));
        }
    }
    out
}

/// `line` without the properties `shared` moves to `defaults`; `None`
/// when nothing is left of it.
fn without_shared(line: &str, shared: &[(String, Vec<String>)]) -> Option<String> {
    let Some((_, props)) = shared.iter().find(|(k, _)| k == key(line)) else { return Some(line.to_string()) };
    let rest: Vec<String> = words(line).into_iter().skip(1).filter(|w| !props.contains(w)).collect();
    (!rest.is_empty()).then(|| format!("{} {}", key(line), rest.join(" ")))
}

/// A setting's node name: its first word.
fn key(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or_default()
}

/// Lines grouped by node name, in first-seen order: a repeatable node
/// (`toleration`, `host-device`, …) is one list, taken whole from one layer.
fn by_key(lines: &[String]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for l in lines {
        match out.iter_mut().find(|(k, _)| k == key(l)) {
            Some((_, v)) => v.push(l.clone()),
            None => out.push((key(l).to_string(), vec![l.clone()])),
        }
    }
    out
}

/// The groups every one of `all` has, exactly alike (in the first's order).
fn common(all: &[Vec<(String, Vec<String>)>], never: &[&str]) -> Vec<(String, Vec<String>)> {
    let Some((first, rest)) = all.split_first() else { return Vec::new() };
    first.iter().filter(|g| !never.contains(&g.0.as_str()) && rest.iter().all(|o| o.contains(g))).cloned().collect()
}

impl Shared {
    /// What `clusters` share. Nothing for fewer than two clusters: one
    /// cluster's file keeps all its settings.
    pub fn of(clusters: &[Imported]) -> Shared {
        if clusters.len() < 2 {
            return Shared::default();
        }
        // `infra-id` exists only in clusters (and differs per cluster).
        let grouped: Vec<_> = clusters.iter().map(|c| by_key(&c.settings)).collect();
        let settings = common(&grouped, &["infra-id"]);
        let properties = common_properties(&grouped, &settings);
        let pools: Vec<&ImportedPool> = clusters.iter().flat_map(|c| &c.pools).collect();
        let pool_grouped: Vec<_> = pools.iter().map(|p| by_key(&p.body)).collect();
        let pool_settings = common(&pool_grouped, &[]);
        let pool_properties = common_properties(&pool_grouped, &pool_settings);
        let pool_size = match pools.split_first() {
            Some((first, rest)) if first.size.is_some() && rest.iter().all(|p| p.size == first.size) => {
                first.size.clone()
            }
            _ => None,
        };
        Shared { settings, pool_settings, pool_size, properties, pool_properties }
    }

    /// The `defaults` block, or nothing when nothing is shared.
    pub fn defaults_kdl(&self) -> String {
        let pools = !self.pool_settings.is_empty() || self.pool_size.is_some() || !self.pool_properties.is_empty();
        if self.settings.is_empty() && self.properties.is_empty() && !pools {
            return String::new();
        }
        let partial = |(k, props): &(String, Vec<String>)| format!("{k} {}", props.join(" "));
        let mut o = String::from("defaults {\n");
        for line in
            self.settings.iter().flat_map(|(_, lines)| lines.iter().cloned()).chain(self.properties.iter().map(partial))
        {
            let _ = writeln!(o, "{}", indent(&line, "    "));
        }
        if pools {
            let size = self.pool_size.as_ref().map(|s| format!(" {s}")).unwrap_or_default();
            let _ = writeln!(o, "    node-pool{size} {{");
            let lines = self.pool_settings.iter().flat_map(|(_, lines)| lines.iter().cloned());
            for line in lines.chain(self.pool_properties.iter().map(partial)) {
                let _ = writeln!(o, "{}", indent(&line, "        "));
            }
            let _ = writeln!(o, "    }}");
        }
        o.push_str("}\n");
        o
    }
}

/// Every line of `text` after `by`.
fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}")).collect::<Vec<_>>().join("\n")
}

impl Imported {
    /// The cluster's KDL without what `shared` moves into `defaults`; an
    /// error (never text that does not read back) if it is not valid KDL.
    pub fn kdl(&self, shared: &Shared) -> Result<String, String> {
        let in_defaults = |groups: &[(String, Vec<String>)], line: &str| groups.iter().any(|(k, _)| k == key(line));
        let mut o = String::new();
        let _ = writeln!(o, "// Imported from HostedCluster {}/{}.", self.namespace, self.name);
        let _ = writeln!(o, "cluster {} {{", q(&self.name));
        let own = self.settings.iter().filter(|l| !in_defaults(&shared.settings, l));
        for line in own.filter_map(|l| without_shared(l, &shared.properties)) {
            let _ = writeln!(o, "{}", indent(&line, "    "));
        }
        for p in &self.pools {
            let mut head = format!("    node-pool {}", p.name);
            if let Some(size) = p.size.as_ref().filter(|_| shared.pool_size.is_none()) {
                let _ = write!(head, " {size}");
            }
            if let Some(object_name) = &p.object_name {
                let _ = write!(head, " {object_name}");
            }
            let body: Vec<String> = p
                .body
                .iter()
                .filter(|l| !in_defaults(&shared.pool_settings, l))
                .filter_map(|l| without_shared(l, &shared.pool_properties))
                .collect();
            if body.is_empty() {
                let _ = writeln!(o, "{head}");
            } else {
                let _ = writeln!(o, "{head} {{");
                for line in body {
                    let _ = writeln!(o, "{}", indent(&line, "        "));
                }
                let _ = writeln!(o, "    }}");
            }
        }
        o.push_str("}\n");
        layout(&o, &format!("cluster {}/{}", self.namespace, self.name))
    }

    /// Why the cluster cannot be imported as it is, one line per field.
    pub fn refusals(&self) -> impl Iterator<Item = String> + '_ {
        self.refused.iter().map(|r| format!("{}/{}: {r}", self.namespace, self.name))
    }
}

/// What to import, from the command line.
pub struct Request<'a> {
    /// `NAMESPACE/NAME` or `NAMESPACE`; `None` with `--all`.
    pub what: Option<&'a str>,
    pub all: bool,
    /// `-o DIR`: write a fleet directory.
    pub output: Option<&'a Path>,
    pub fleet: Option<&'a str>,
}

pub fn run(req: &Request<'_>, flags: &crate::cli::target::TargetFlags) -> u8 {
    let result = match (req.what, req.all, req.output) {
        (Some(one), false, None) if one.contains('/') => {
            if req.fleet.is_some() {
                eprintln!("error: --fleet names the fleet of a directory written with -o DIR");
                return exit::ERROR;
            }
            return run_one(one, flags);
        }
        (Some(ns), false, None) => Err(format!(
            "importing every HostedCluster of namespace {ns} writes a directory\n  help: give it with -o, e.g. `hcpc import {ns} -o {ns}/`"
        )),
        (None, true, None) => {
            Err("--all writes a directory\n  help: give it with -o, e.g. `hcpc import --all --fleet NAME -o fleet/`".into())
        }
        (None, true, Some(_)) if req.fleet.is_none() => Err(
            "--all needs --fleet NAME: the fleet's name names its ApplySet, and a fleet over every namespace has no name to take\n  help: e.g. `hcpc import --all --fleet mgmt-east -o fleet/`"
                .into(),
        ),
        (Some(what), false, Some(dir)) => import_dir(Some(what), dir, req.fleet, flags),
        (None, true, Some(dir)) => import_dir(None, dir, req.fleet, flags),
        _ => Err("give NAMESPACE/NAME, NAMESPACE with -o DIR, or --all with -o DIR".into()),
    };
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::ERROR
        }
    }
}

/// The management cluster's kubeconfig context from `--context` or
/// `--target kube[:CONTEXT]` (`None`: the current one).
fn context(flags: &crate::cli::target::TargetFlags) -> Result<Option<String>, String> {
    match flags.target.as_deref() {
        None | Some("kube") => Ok(None),
        Some(t) => match t.strip_prefix("kube:") {
            Some(c) => Ok(Some(c.to_string())),
            None => Err("import reads a management cluster: use --context CONTEXT or --target kube[:CONTEXT]".into()),
        },
    }
}

/// Imports a namespace (`what` = `NAMESPACE`), one cluster
/// (`NAMESPACE/NAME`) or, with `what` = `None`, every HostedCluster into a
/// new fleet directory: `00-fleet.kdl` (target, fleet, the shared
/// `defaults`) and one `NAME.kdl` per cluster. The directory is written
/// whole or not at all.
fn import_dir(
    what: Option<&str>,
    dir: &Path,
    fleet: Option<&str>,
    flags: &crate::cli::target::TargetFlags,
) -> Result<(), String> {
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!(
            "{} exists and is not empty; nothing was written\n  help: give a new directory, or empty this one",
            dir.display()
        ));
    }
    let (namespace, only) = match what.map(|w| w.split_once('/').map_or((w, None), |(n, c)| (n, Some(c)))) {
        Some((ns, name)) => (Some(ns), name),
        None => (None, None),
    };
    let context = context(flags)?;
    let k = crate::live::kube::KubeTarget::connect(context.as_deref(), flags.request_timeout)?;
    let mut clusters: Vec<Value> = k
        .list_kind(Kind::HostedCluster, None)
        .map_err(|e| format!("cannot list HostedClusters: {e}"))?
        .into_iter()
        .filter(|hc| namespace.is_none_or(|ns| s(hc, "/metadata/namespace") == Some(ns)))
        .filter(|hc| only.is_none_or(|name| s(hc, "/metadata/name") == Some(name)))
        .collect();
    let key = |v: &Value| (s(v, "/metadata/namespace").map(str::to_string), s(v, "/metadata/name").map(str::to_string));
    clusters.sort_by_key(key);
    if clusters.is_empty() {
        return Err(match (namespace, only) {
            (Some(ns), Some(name)) => format!("HostedCluster {ns}/{name} does not exist"),
            (Some(ns), None) => format!("namespace {ns} has no HostedClusters; nothing was written"),
            _ => "the management cluster has no HostedClusters; nothing was written".to_string(),
        });
    }
    // hcpc names clusters uniquely per management cluster.
    let mut seen: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
    for c in &clusters {
        let (ns, name) = (s(c, "/metadata/namespace").unwrap_or(""), s(c, "/metadata/name").unwrap_or(""));
        if let Some(other) = seen.insert(name, ns) {
            return Err(format!(
                "HostedClusters {other}/{name} and {ns}/{name} have the same name, and a fleet names each cluster once per management cluster; nothing was written\n  help: import each namespace into its own fleet: `hcpc import {ns} -o DIR`"
            ));
        }
    }
    let mut pools: Vec<Value> = k.list_kind(Kind::NodePool, None).map_err(|e| format!("cannot list NodePools: {e}"))?;
    pools.sort_by(|a, b| s(a, "/metadata/name").cmp(&s(b, "/metadata/name")));
    let imported: Vec<Imported> = clusters
        .iter()
        .map(|hc| {
            let (ns, name) = (s(hc, "/metadata/namespace"), s(hc, "/metadata/name"));
            let own: Vec<Value> = pools
                .iter()
                .filter(|p| s(p, "/metadata/namespace") == ns && s(p, "/spec/clusterName") == name)
                .cloned()
                .collect();
            import(hc, &own)
        })
        .collect();
    let refused: Vec<String> = imported.iter().flat_map(Imported::refusals).collect();
    if !refused.is_empty() {
        for r in &refused {
            eprintln!("error: {r}");
        }
        return Err(format!(
            "{} field{} that hcpc cannot express would change on the first plan (listed above); nothing was written",
            refused.len(),
            if refused.len() == 1 { "" } else { "s" }
        ));
    }
    let (fleet_name, files) = fleet_files(&imported, namespace, fleet, context.as_deref())?;
    // What is written must read back as a fleet: check it first.
    let mut sources = crate::source::SourceMap::default();
    for (name, text) in &files {
        sources.add(dir.join(name), text.clone());
    }
    let (_, diags) = crate::cli::load::front(&sources);
    if diags.has_errors() {
        let (_, _) = crate::cli::printer::print_diagnostics(
            diags,
            &sources,
            crate::cli::args::DiagFormat::Human,
            crate::cli::printer::Style::stderr(crate::cli::args::ColorChoice::Never, false, false),
        );
        return Err("the imported configuration does not check (see above); nothing was written".into());
    }
    write_dir(dir, &files).map_err(|e| format!("cannot write {}: {e}; nothing was written", dir.display()))?;
    for c in &imported {
        for n in &c.notes {
            eprintln!("warning: {}/{}: {n}", c.namespace, c.name);
        }
    }
    eprintln!(
        "Imported {} cluster{} into {} (fleet {fleet_name}). Pull secrets and SSH keys are referenced with secret=, \
         so hcpc will not manage them; the first plan adds hcpc's ownership labels.",
        imported.len(),
        if imported.len() == 1 { "" } else { "s" },
        dir.display()
    );
    Ok(())
}

/// The fleet directory's files: `00-fleet.kdl` (target, fleet, shared
/// `defaults`) and one `NAME.kdl` per cluster; and the fleet's name.
/// `namespace`: the one imported (`None`: every namespace); `fleet`:
/// `--fleet`; `context`: the kubeconfig context read.
fn fleet_files(
    imported: &[Imported],
    namespace: Option<&str>,
    fleet: Option<&str>,
    context: Option<&str>,
) -> Result<(String, Vec<(std::path::PathBuf, String)>), String> {
    // The fleet lives in the namespace holding the most clusters (the
    // first by name on a tie), which exists already.
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for c in imported {
        *counts.entry(c.namespace.as_str()).or_default() += 1;
    }
    let home = counts.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(ns, _)| *ns).unwrap_or("clusters");
    let fleet_name = fleet.or(namespace).unwrap_or(home);
    let shared = Shared::of(imported);
    let mut head = String::new();
    let _ = writeln!(
        head,
        "// Imported from {} by `hcpc import`.",
        match namespace {
            Some(ns) => format!("namespace {ns}"),
            None => "every namespace of the management cluster".to_string(),
        }
    );
    let _ = match context {
        Some(c) => writeln!(head, "target kube context={}", q(c)),
        None => writeln!(head, "target kube"),
    };
    let _ = writeln!(head, "fleet {} namespace={}", q(fleet_name), q(home));
    head.push_str(&shared.defaults_kdl());
    let head = layout(&head, "00-fleet.kdl")?;
    let mut files = vec![(std::path::PathBuf::from("00-fleet.kdl"), head)];
    for c in imported {
        files.push((format!("{}.kdl", c.name).into(), c.kdl(&shared)?));
    }
    Ok((fleet_name.to_string(), files))
}

/// Writes `files` into a new sibling directory, then renames it to `dir`
/// (which must not exist or be empty): a reader sees all or nothing.
fn write_dir(dir: &Path, files: &[(std::path::PathBuf, String)]) -> std::io::Result<()> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let base = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "import".into());
    let tmp = parent.join(format!(".{base}.import-{}", std::process::id()));
    std::fs::create_dir_all(&parent)?;
    let written = (|| {
        std::fs::create_dir(&tmp)?;
        for (name, text) in files {
            std::fs::write(tmp.join(name), text)?;
        }
        // An empty `dir` is replaced; a non-empty one makes this fail.
        std::fs::rename(&tmp, dir)
    })();
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    written
}

/// `hcpc import NAMESPACE/NAME`: one cluster's KDL on stdout.
fn run_one(cluster: &str, flags: &crate::cli::target::TargetFlags) -> u8 {
    let Some((ns, name)) = cluster.split_once('/') else {
        eprintln!("error: give the cluster as NAMESPACE/NAME, e.g. `hcpc import clusters/example`");
        return exit::ERROR;
    };
    let (k, _, _) = match super::access::locate(cluster, flags, Path::new("/nonexistent")) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    let hc = match k.get(Kind::HostedCluster, ns, name) {
        Ok(Some(hc)) => hc,
        Ok(None) => {
            eprintln!("error: HostedCluster {ns}/{name} does not exist");
            return exit::ERROR;
        }
        Err(e) => {
            eprintln!("error: cannot read HostedCluster {ns}/{name}: {e}");
            return exit::ERROR;
        }
    };
    let mut pools: Vec<Value> = match k.list_kind(Kind::NodePool, None) {
        Ok(list) => list
            .into_iter()
            .filter(|p| s(p, "/metadata/namespace") == Some(ns) && s(p, "/spec/clusterName") == Some(name))
            .collect(),
        Err(e) => {
            eprintln!("error: cannot list NodePools: {e}");
            return exit::ERROR;
        }
    };
    pools.sort_by(|a, b| s(a, "/metadata/name").cmp(&s(b, "/metadata/name")));
    let (text, notes) = match to_kdl(&hc, &pools) {
        Ok(x) => x,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            eprintln!("error: {ns}/{name} is not imported: the first plan would change it");
            return exit::ERROR;
        }
    };
    if crate::cli::output::print(&text) != exit::OK {
        return exit::ERROR;
    }
    for n in notes {
        eprintln!("warning: {n}");
    }
    eprintln!(
        "note: the pull secret and SSH key are referenced with secret=, so hcpc will not manage them; \
         the first plan adds hcpc's ownership labels"
    );
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hcp's rendered objects of a scenario, its cluster `was` renamed.
    fn hcp(scenario: &str, was: &str, name: &str) -> (Value, Vec<Value>) {
        let path = format!("{}/../../shared/conformance/hcp/{scenario}/out.yaml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap().replace(was, name);
        let docs: Vec<Value> = text
            .split("\n---\n")
            .map(|d| d.trim_start_matches("---\n"))
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_saphyr::from_str::<Value>(d).unwrap())
            .map(|mut d| {
                if d["kind"] != "Namespace" {
                    d["metadata"]["namespace"] = Value::String("ns".into());
                }
                d
            })
            .collect();
        let hc = docs.iter().find(|d| d["kind"] == "HostedCluster").unwrap().clone();
        let pools = docs.into_iter().filter(|d| d["kind"] == "NodePool").collect();
        (hc, pools)
    }

    #[test]
    fn defaults_hold_what_every_cluster_shares() {
        let clusters: Vec<Imported> = [("01-minimal", "example", "alpha"), ("06-cache-pvc", "example", "beta")]
            .into_iter()
            .map(|(s, was, name)| {
                let (hc, pools) = hcp(s, was, name);
                import(&hc, &pools)
            })
            .collect();
        let shared = Shared::of(&clusters);
        let defaults = shared.defaults_kdl();
        assert!(defaults.contains("namespace ns\n") && defaults.contains("release "), "{defaults}");
        assert!(defaults.contains("node-pool replicas=2 {") && defaults.contains("cores 2"), "{defaults}");
        let beta = clusters[1].kdl(&shared).unwrap();
        assert!(!beta.contains("release") && !beta.contains("cores"), "{beta}");
        assert!(beta.contains("infra-id"), "{beta}");
        // Properties layer one by one: the root volume's size is shared,
        // beta's cache stays with beta.
        assert!(defaults.contains("root-volume size=\"32Gi\""), "{defaults}");
        assert!(beta.contains("root-volume cache=pvc\n"), "{beta}");
        // One cluster keeps everything.
        let alone = clusters[0].kdl(&Shared::of(&clusters[..1])).unwrap();
        assert!(alone.contains("release") && alone.contains("cores 2"), "{alone}");
    }

    #[test]
    fn all_namespaces_make_one_fleet_in_the_namespace_with_most_clusters() {
        let mut clusters: Vec<Imported> = [("01-minimal", "alpha"), ("06-cache-pvc", "beta"), ("01-minimal", "gamma")]
            .into_iter()
            .map(|(s, name)| {
                let (hc, pools) = hcp(s, "example", name);
                import(&hc, &pools)
            })
            .collect();
        for c in &mut clusters[..2] {
            c.namespace = "b".into();
            c.settings[0] = "namespace \"b\"".into();
        }
        let (name, files) = fleet_files(&clusters, None, Some("mgmt"), Some("east")).unwrap();
        assert_eq!(name, "mgmt");
        let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(names, ["00-fleet.kdl", "alpha.kdl", "beta.kdl", "gamma.kdl"]);
        let head = &files[0].1;
        assert!(head.contains("target kube context=east\nfleet mgmt namespace=b\n"), "{head}");
        assert!(!head.contains("namespace ns") && !head.contains("namespace b"), "not shared: {head}");
        assert!(files[3].1.contains("namespace ns"), "{}", files[3].1);
        let mut sources = crate::source::SourceMap::default();
        for (p, text) in files {
            sources.add(p, text);
        }
        let (fleet, diags) = crate::cli::load::front(&sources);
        assert!(!diags.has_errors(), "{diags:?}");
        assert_eq!(fleet.clusters.len(), 3);
    }

    #[test]
    fn a_setting_some_cluster_lacks_stays_in_each_cluster() {
        let clusters: Vec<Imported> = [
            ("01-minimal", "example", "alpha"),
            ("06-cache-pvc", "example", "beta"),
            ("10-everything", "prod-a", "gamma"),
        ]
        .into_iter()
        .map(|(s, was, name)| {
            let (hc, pools) = hcp(s, was, name);
            import(&hc, &pools)
        })
        .collect();
        let shared = Shared::of(&clusters);
        let defaults = shared.defaults_kdl();
        assert!(defaults.contains("namespace ns\n"), "{defaults}");
        let formatted = crate::fmt::format_source(&defaults).unwrap();
        assert!(formatted.contains("namespace ns"), "{defaults}\n{formatted}");
        assert!(!defaults.contains("cores"), "gamma has 4 cores: {defaults}");
        let gamma = clusters[2].kdl(&shared).unwrap();
        assert!(gamma.contains("cores 4"), "{gamma}");
    }

    fn lines_starting<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().map(str::trim).filter(|l| l.starts_with(prefix)).collect()
    }

    #[test]
    fn a_storage_group_is_one_block_where_mapping_order_allows() {
        let (mut hc, pools) = hcp("03-grouped-mappings", "example", "alpha");
        hc["spec"]["platform"]["kubevirt"]["storageDriver"]["manual"] = serde_json::json!({
            "storageClassMapping": [{"group": "ceph", "infraStorageClassName": "rbd", "guestStorageClassName": "ceph-rbd"}],
            "volumeSnapshotClassMapping": [{"group": "ceph", "infraVolumeSnapshotClassName": "rbd-snap", "guestVolumeSnapshotClassName": "ceph-snap"}],
        });
        let (text, _) = to_kdl(&hc, &pools).unwrap();
        assert_eq!(lines_starting(&text, "group "), ["group ceph {"], "{text}");

        // Interleaved groups: merged as far as each list keeps its order.
        let (hc, pools) = hcp("03-grouped-mappings", "example", "alpha");
        let (text, _) = to_kdl(&hc, &pools).unwrap();
        assert_eq!(
            lines_starting(&text, "class "),
            [
                "class infra-sca hosted=guest-sca",
                "class infra-scb hosted=guest-scb",
                "class infra-scc hosted=guest-scc"
            ],
            "{text}"
        );
        assert_eq!(lines_starting(&text, "snapshot-class ").len(), 2, "{text}");
        assert_eq!(lines_starting(&text, "group ").len(), 4, "{text}");
        let mut sources = crate::source::SourceMap::default();
        sources.add("alpha.kdl".into(), text.clone());
        let (_, diags) = crate::cli::load::front(&sources);
        assert!(!diags.has_errors(), "{diags:?}\n{text}");
    }

    #[test]
    fn strings_with_line_separators_and_bidi_marks_are_escaped() {
        let (mut hc, pools) = hcp("01-minimal", "example", "alpha");
        let value = "a\u{2028}b\u{2029}c\u{202e}d\u{200f}e\u{85}f";
        hc["metadata"]["labels"] = serde_json::json!({"team": value});
        let (text, _) = to_kdl(&hc, &pools).unwrap();
        let doc = kdl::KdlDocument::parse_v2(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let labels = doc.nodes()[0].children().unwrap().get("labels").expect("labels");
        assert_eq!(labels.get("team").and_then(kdl::KdlValue::as_string), Some(value), "{text}");
        assert!(text.contains("\\u{2028}") && text.contains("\\u{202e}"), "{text}");
    }

    #[test]
    fn fields_hcpc_would_change_refuse_the_import_naming_each() {
        let (mut hc, pools) = hcp("01-minimal", "example", "alpha");
        let spec = &mut hc["spec"];
        spec["networking"]["clusterNetwork"] = serde_json::json!([{"cidr": "10.132.0.0/14"}, {"cidr": "fd01::/48"}]);
        spec["networking"]["serviceNetwork"] = serde_json::json!([{"cidr": "172.31.0.0/16"}, {"cidr": "fd02::/112"}]);
        spec["olmCatalogPlacement"] = "guest".into();
        spec["configuration"] = serde_json::json!({"featureGate": {"featureSet": "TechPreviewNoUpgrade"}});
        spec["capabilities"] = serde_json::json!({"disabled": ["baremetal"]});
        let errors = to_kdl(&hc, &pools).expect_err("refused");
        let all = errors.join("\n");
        for field in [
            "spec.networking.clusterNetwork",
            "spec.networking.serviceNetwork",
            "spec.olmCatalogPlacement is `guest`",
            "featureSet is `TechPreviewNoUpgrade`",
            "spec.capabilities.disabled",
        ] {
            assert!(all.contains(field), "{field} not named:\n{all}");
        }
        assert!(errors.iter().all(|e| e.starts_with("ns/alpha: ")), "{all}");
        // hcp's own defaults import.
        let (hc, pools) = hcp("10-everything", "prod-a", "alpha");
        assert!(to_kdl(&hc, &pools).is_ok());
    }
}
