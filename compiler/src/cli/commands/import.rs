//! `hcpc import NAMESPACE/NAME`: KDL for an existing HostedCluster and its
//! NodePools, so a brownfield cluster can be adopted. Planning the output
//! against the same cluster changes nothing but hcpc's ownership labels.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use crate::cli::exit;
use crate::object::Kind;
use hcpc_schema::labels;

/// A KDL string literal.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

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

fn map_node(out: &mut String, indent: &str, name: &str, map: Option<&Value>, filter: bool) {
    let Some(m) = map.and_then(Value::as_object) else { return };
    let pairs: Vec<String> = m
        .iter()
        .filter(|(k, _)| !filter || user_key(k))
        .filter_map(|(k, v)| Some(format!("{}={}", q(k), q(v.as_str()?))))
        .collect();
    if !pairs.is_empty() {
        let _ = writeln!(out, "{indent}{name} {}", pairs.join(" "));
    }
}

/// Renders the KDL for one HostedCluster and its NodePools; notes list
/// what the language cannot express.
pub fn to_kdl(hc: &Value, pools: &[Value]) -> (String, Vec<String>) {
    let mut notes = Vec::new();
    let name = s(hc, "/metadata/name").unwrap_or("imported");
    let ns = s(hc, "/metadata/namespace").unwrap_or("clusters");
    let spec = hc.get("spec").cloned().unwrap_or(Value::Null);
    let mut o = String::new();
    let _ = writeln!(o, "// Imported from HostedCluster {ns}/{name}.");
    let _ = writeln!(o, "cluster {} {{", q(name));
    let _ = writeln!(o, "    namespace {}", q(ns));
    let release = s(&spec, "/release/image").unwrap_or("");
    let _ = writeln!(o, "    release {}", q(release));
    if let Some(p) = s(&spec, "/pullSecret/name") {
        let _ = writeln!(o, "    pull-secret secret={}", q(p));
    }
    if let Some(k) = s(&spec, "/sshKey/name") {
        let _ = writeln!(o, "    ssh-key secret={}", q(k));
    }
    let passthrough = spec.pointer("/platform/kubevirt/baseDomainPassthrough").and_then(Value::as_bool) == Some(true);
    if let (false, Some(d)) = (passthrough, s(&spec, "/dns/baseDomain")) {
        let _ = writeln!(o, "    base-domain {}", q(d));
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
        let _ = writeln!(o, "    network {}", net.join(" "));
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
        let _ = writeln!(o, "    availability {}", avail.join(" "));
    }
    if spec.get("fips").and_then(Value::as_bool) == Some(true) {
        let _ = writeln!(o, "    fips #true");
    }
    map_node(&mut o, "    ", "labels", hc.pointer("/metadata/labels"), true);
    map_node(&mut o, "    ", "annotations", hc.pointer("/metadata/annotations"), true);
    map_node(&mut o, "    ", "control-plane-node-selector", spec.get("nodeSelector"), false);
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
        let _ = writeln!(o, "    toleration {}", props.join(" "));
    }
    let mut etcd = Vec::new();
    if let Some(c) = s(&spec, "/etcd/managed/storage/persistentVolume/storageClassName") {
        etcd.push(format!("storage-class={}", q(c)));
    }
    if let Some(size) = s(&spec, "/etcd/managed/storage/persistentVolume/size") {
        etcd.push(format!("size={}", q(size)));
    }
    if !etcd.is_empty() {
        let _ = writeln!(o, "    etcd {}", etcd.join(" "));
    }
    match s(&spec, "/platform/kubevirt/storageDriver/type") {
        Some("None") => {
            let _ = writeln!(o, "    storage {{\n        driver none\n    }}");
        }
        Some("Manual") => {
            let _ = writeln!(o, "    storage {{");
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
                // One line per entry, in order: mapping order is immutable.
                for m in spec.pointer(&ptr).and_then(Value::as_array).into_iter().flatten() {
                    let line = format!(
                        "{node} {} hosted={}",
                        q(s(m, &format!("/{infra}")).unwrap_or("")),
                        q(s(m, &format!("/{guest}")).unwrap_or(""))
                    );
                    match s(m, "/group") {
                        Some(g) => {
                            let _ = writeln!(o, "        group {} {{\n            {line}\n        }}", q(g));
                        }
                        None => {
                            let _ = writeln!(o, "        {line}");
                        }
                    }
                }
            }
            let _ = writeln!(o, "    }}");
        }
        _ => {}
    }
    if let Some(infra_ns) = s(&spec, "/platform/kubevirt/credentials/infraNamespace") {
        let secret = s(&spec, "/platform/kubevirt/credentials/infraKubeConfigSecret/name").unwrap_or("");
        if s(&spec, "/platform/kubevirt/credentials/infraKubeConfigSecret/key") != Some("kubeconfig") {
            notes.push("the infrastructure kubeconfig Secret uses a key other than `kubeconfig`; hcpc always uses `kubeconfig`".into());
        }
        let _ = writeln!(o, "    infra-cluster namespace={} kubeconfig-secret={}", q(infra_ns), q(secret));
    }
    if let Some(id) = s(&spec, "/infraID") {
        let _ = writeln!(o, "    infra-id {}", q(id));
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
    for (ptr, what) in [
        ("/networking/clusterNetwork/1", "more than one cluster network"),
        ("/networking/serviceNetwork/1", "more than one service network"),
        ("/networking/machineNetwork/1", "more than one machine network"),
    ] {
        if spec.pointer(ptr).is_some() {
            notes.push(format!("{what}: only the first is imported"));
        }
    }
    if s(&spec, "/olmCatalogPlacement").is_some_and(|p| p != "management") {
        notes.push("olmCatalogPlacement is not `management`; hcpc always renders `management`".into());
    }
    for p in pools {
        pool_kdl(&mut o, name, release, p);
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
    let _ = writeln!(o, "}}");
    let text = crate::fmt::format_source(&o).unwrap_or(o);
    (text, notes)
}

fn pool_kdl(o: &mut String, cluster: &str, cluster_release: &str, p: &Value) {
    let full = s(p, "/metadata/name").unwrap_or("pool");
    let (pool, object_name) = match full.strip_prefix(&format!("{cluster}-")) {
        Some(short) if !short.is_empty() => (short.to_string(), None),
        _ => (full.to_string(), Some(full)),
    };
    let spec = p.get("spec").cloned().unwrap_or(Value::Null);
    let mut head = format!("    node-pool {}", q(&pool));
    if let Some(n) = spec.get("replicas").and_then(Value::as_u64).filter(|_| spec.get("autoScaling").is_none()) {
        let _ = write!(head, " replicas={n}");
    }
    if let Some(obj) = object_name {
        let _ = write!(head, " object-name={}", q(obj));
    }
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
    let mut selector = String::new();
    map_node(&mut selector, "", "node-selector", kv.get("nodeSelector"), false);
    if !selector.is_empty() {
        body.push(selector.trim_end().to_string());
    }
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
    if body.is_empty() {
        let _ = writeln!(o, "{head}");
    } else {
        let _ = writeln!(o, "{head} {{");
        for line in body {
            let _ = writeln!(o, "        {line}");
        }
        let _ = writeln!(o, "    }}");
    }
}

pub fn run(cluster: &str, flags: &crate::cli::target::TargetFlags) -> u8 {
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
    let (text, notes) = to_kdl(&hc, &pools);
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
