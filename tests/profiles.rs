//! Profiles: a fleet written with `profile` renders exactly what the same
//! fleet written out by hand renders; mistakes in profiles are diagnostics
//! with spans; plans name the profile a shared change comes from.

use std::path::Path;

use serde_json::Value;

use crate::examples::assert_golden;
use crate::support::{repo, run_in, stderr, stdout, yaml_docs};

const R0: &str = "quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64";
// A pool pinned one minor behind its cluster (never ahead: hcpc::release::pool_newer_than_cluster).
const R1: &str = "quay.io/openshift-release-dev/ocp-release:4.19.9-x86_64";
const R2: &str = "quay.io/openshift-release-dev/ocp-release:4.20.2-x86_64";
const R3: &str = "quay.io/openshift-release-dev/ocp-release:4.20.3-x86_64";

/// A directory holding `fleet.kdl` and the secrets it names.
fn workspace(fleet: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    let secrets = repo().join("examples/secrets");
    std::fs::copy(secrets.join("pull-secret.json"), tmp.path().join("pull-secret.json")).expect("copy");
    std::fs::copy(secrets.join("id_ed25519.pub"), tmp.path().join("id.pub")).expect("copy");
    std::fs::write(tmp.path().join("fleet.kdl"), fleet).expect("write");
    tmp
}

/// The same `defaults` in both fleets below: every setting kind has a
/// value here that a profile or cluster overrides (or keeps).
fn defaults() -> String {
    format!(
        r#"defaults {{
    namespace clusters
    release "{R0}"
    pull-secret file="pull-secret.json"
    labels owner=platform env=none
    annotations note=defaults
    etcd size="16Gi"
    toleration key=dedicated operator=Exists effect=NoSchedule
    node-pool replicas=2 {{
        cores 4
        memory "16Gi"
        root-volume size=40
        node-selector zone=a
        release "{R1}"
    }}
}}
"#
    )
}

/// Every setting kind through the layers cluster, profile, extended
/// profile, `defaults`: single values (`fips`, `release`, pool `cores`,
/// `memory`, `upgrade-type`), properties (`etcd`, `network`,
/// `root-volume`), maps (`labels`, `node-selector`), repeatable nodes
/// (`toleration`, `additional-network`), blocks and sources (`storage`,
/// `ssh-key`), pool size (`replicas=` and `autoscaling` at different
/// layers) and pool release (pinned, following a profile's, following
/// the cluster's, from `defaults { node-pool }`).
fn with_profiles() -> String {
    defaults()
        + &format!(
            r#"
profile base {{
    fips #true
    labels env=base tier=gold
    etcd storage-class=lvm
    network cluster-cidr="10.136.0.0/14"
    storage {{
        driver none
    }}
    toleration key=base operator=Exists
    node-pool {{
        memory "32Gi"
        node-selector rack=r1
    }}
    node-pool workers replicas=3 {{
        root-volume storage-class=ceph
        additional-network "default/vlan-10"
    }}
    node-pool infra {{
        autoscaling min=1 max=3
    }}
}}

profile gpu extends=base {{
    release "{R2}"
    labels tier=platinum
    ssh-key file="id.pub"
    node-pool gpu replicas=1 {{
        cores 8
    }}
    node-pool workers {{
        upgrade-type in-place
    }}
}}

cluster a profile=gpu {{
    labels team=a
    etcd size="32Gi"
    node-pool workers {{
        autoscaling min=2 max=5
        additional-network "default/vlan-20"
    }}
    node-pool own replicas=1
}}

cluster b profile=base {{
    release "{R3}"
    node-pool infra {{
        release "{R0}"
    }}
}}

cluster c {{
    node-pool w
}}
"#
        )
}

/// [`with_profiles`] with each cluster's profiles written into it by hand.
fn by_hand() -> String {
    let base_cluster = r#"    fips #true
    network cluster-cidr="10.136.0.0/14"
    storage {
        driver none
    }
    toleration key=base operator=Exists"#;
    defaults()
        + &format!(
            r#"
cluster a {{
    release "{R2}"
    ssh-key file="id.pub"
    labels env=base tier=platinum team=a
{base_cluster}
    etcd storage-class=lvm size="32Gi"
    node-pool workers {{
        autoscaling min=2 max=5
        memory "32Gi"
        node-selector rack=r1
        root-volume storage-class=ceph
        additional-network "default/vlan-20"
        upgrade-type in-place
    }}
    node-pool infra {{
        autoscaling min=1 max=3
        memory "32Gi"
        node-selector rack=r1
    }}
    node-pool gpu replicas=1 {{
        cores 8
        memory "32Gi"
        node-selector rack=r1
    }}
    node-pool own replicas=1 {{
        memory "32Gi"
        node-selector rack=r1
    }}
}}

cluster b {{
    release "{R3}"
    labels env=base tier=gold
{base_cluster}
    etcd storage-class=lvm
    node-pool workers replicas=3 {{
        memory "32Gi"
        node-selector rack=r1
        root-volume storage-class=ceph
        additional-network "default/vlan-10"
    }}
    node-pool infra {{
        autoscaling min=1 max=3
        memory "32Gi"
        node-selector rack=r1
        release "{R0}"
    }}
}}

cluster c {{
    node-pool w
}}
"#
        )
}

fn render(fleet: &str) -> String {
    let tmp = workspace(fleet);
    let out = run_in(tmp.path(), &["render", "fleet.kdl", "--show-secrets"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    crate::examples::without_etcd_keys(&stdout(&out))
}

/// Object for object (and byte for byte): layering through profiles is
/// the same as writing each profile into its clusters.
#[test]
fn profiles_render_as_the_fleet_written_by_hand() {
    let layered = render(&with_profiles());
    let hand = render(&by_hand());
    let (l, h) = (yaml_docs(&layered), yaml_docs(&hand));
    assert_eq!(l.len(), h.len(), "object counts differ");
    for (a, b) in l.iter().zip(&h) {
        assert_eq!(a, b, "{} {} differs", a["kind"], a["metadata"]["name"]);
    }
    assert_eq!(layered, hand);

    // And the layers did something: spot-check values from each layer.
    let find = |kind: &str, name: &str| -> Value {
        l.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name).cloned().expect(name)
    };
    let a = find("HostedCluster", "a");
    assert_eq!(a["metadata"]["labels"]["owner"], "platform");
    assert_eq!(a["metadata"]["labels"]["env"], "base");
    assert_eq!(a["metadata"]["labels"]["tier"], "platinum");
    assert_eq!(a["metadata"]["labels"]["team"], "a");
    assert_eq!(a["spec"]["release"]["image"], R2);
    assert_eq!(find("NodePool", "a-workers")["spec"]["autoScaling"]["max"], 5);
    assert_eq!(find("NodePool", "a-workers")["spec"]["release"]["image"], R2);
    assert_eq!(find("NodePool", "b-workers")["spec"]["replicas"], 3);
    assert_eq!(find("NodePool", "b-workers")["spec"]["release"]["image"], R3);
    assert_eq!(find("NodePool", "b-infra")["spec"]["release"]["image"], R0);
    assert_eq!(find("NodePool", "c-w")["spec"]["release"]["image"], R1);
    assert_eq!(find("NodePool", "c-w")["spec"]["replicas"], 2);
}

// ---------------------------------------------------------------------------
// Mistakes
// ---------------------------------------------------------------------------

fn check_json(fleet: &str) -> Vec<Value> {
    let tmp = workspace(fleet);
    let out = run_in(tmp.path(), &["check", "fleet.kdl", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("JSON report");
    report["diagnostics"].as_array().expect("diagnostics").clone()
}

/// `(code, line, column)` of each diagnostic's primary span.
fn where_(diags: &[Value]) -> Vec<(String, u64, u64)> {
    diags
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or("").to_string(),
                d["line"].as_u64().unwrap_or(0),
                d["column"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

const CLUSTER_BODY: &str = "    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret file=\"pull-secret.json\"\n    node-pool workers replicas=2\n";

#[test]
fn unknown_profile_names_the_closest() {
    let fleet = format!("profile gpu {{\n    fips #true\n}}\n\ncluster a profile=gpus {{\n{CLUSTER_BODY}}}\n");
    let diags = check_json(&fleet);
    assert_eq!(where_(&diags), [("hcpc::profile::unknown".to_string(), 5, 11)], "{diags:#?}");
    assert!(diags[0]["help"].as_str().is_some_and(|h| h.contains("did you mean `gpu`?")), "{diags:#?}");
}

#[test]
fn unknown_extends_is_reported_once_at_the_profile() {
    let fleet = format!(
        "profile gpu extends=bsae {{\n    fips #true\n}}\n\nprofile base {{\n    fips #true\n}}\n\ncluster a profile=gpu {{\n{CLUSTER_BODY}}}\n\ncluster b profile=gpu {{\n{CLUSTER_BODY}}}\n"
    );
    let diags = check_json(&fleet);
    assert_eq!(where_(&diags), [("hcpc::profile::unknown".to_string(), 1, 13)], "{diags:#?}");
    assert!(diags[0]["help"].as_str().is_some_and(|h| h.contains("did you mean `base`?")), "{diags:#?}");
}

#[test]
fn a_cycle_of_extends_is_one_error_naming_every_link() {
    let fleet = format!(
        "profile a extends=c\nprofile b extends=a\nprofile c extends=b\nprofile d extends=a\n\ncluster x profile=d {{\n{CLUSTER_BODY}}}\n"
    );
    let diags = check_json(&fleet);
    assert_eq!(where_(&diags), [("hcpc::profile::cycle".to_string(), 1, 11)], "{diags:#?}");
    assert_eq!(diags[0]["labels"].as_array().map(Vec::len), Some(3), "{diags:#?}");
    assert!(diags[0]["message"].as_str().is_some_and(|m| m.contains("a → c → b → a")), "{diags:#?}");
}

#[test]
fn a_profile_declared_twice_or_a_pool_twice_in_one_is_an_error() {
    let fleet = format!(
        "profile p {{\n    fips #true\n}}\nprofile p {{\n    fips #false\n}}\nprofile q {{\n    node-pool w replicas=1\n    node-pool w replicas=2\n}}\n\ncluster x profile=q {{\n{CLUSTER_BODY}}}\n"
    );
    let diags = check_json(&fleet);
    assert_eq!(
        where_(&diags),
        [("hcpc::names::collision".to_string(), 4, 9), ("hcpc::names::collision".to_string(), 9, 5)],
        "{diags:#?}"
    );
}

/// Settings a profile may not hold get the usual language errors.
#[test]
fn a_profile_takes_what_defaults_takes_and_named_pools() {
    let fleet = format!(
        "profile p {{\n    infra-id abc\n    node-pool w replicas=1 object-name=x\n}}\n\ncluster x profile=p {{\n{CLUSTER_BODY}}}\n"
    );
    let diags = check_json(&fleet);
    assert_eq!(
        where_(&diags),
        [("hcpc::lower::unknown_node".to_string(), 2, 5), ("hcpc::lower::unknown_property".to_string(), 3, 28)],
        "{diags:#?}"
    );
}

#[test]
fn golden_profile_errors() {
    let fleet = format!(
        "profile a extends=b\nprofile b extends=a\n\nprofile gpu {{\n    fips #true\n}}\n\ncluster x profile=gpus {{\n{CLUSTER_BODY}}}\n"
    );
    let tmp = workspace(&fleet);
    let out = run_in(tmp.path(), &["check", "fleet.kdl"]);
    assert_eq!(out.status.code(), Some(1));
    assert_golden("profiles__errors.txt", &stderr(&out));
}

// ---------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------

/// Five GPU clusters and two general ones; `gpu_memory` is the profile's
/// GPU pool memory.
fn plan_fleet(gpu_memory: &str) -> String {
    let mut s = format!(
        r#"target dir "out"
fleet shapes

defaults {{
    release "{R0}"
    pull-secret file="pull-secret.json"
    node-pool replicas=2
}}

profile general {{
    labels shape=general
    node-pool workers
}}

profile gpu extends=general {{
    labels shape=gpu
    node-pool gpu replicas=1 {{
        cores 8
        memory "{gpu_memory}"
    }}
}}
"#
    );
    for i in 0..5 {
        s += &format!("\ncluster gpu-{i} profile=gpu\n");
    }
    for i in 0..2 {
        s += &format!("\ncluster web-{i} profile=general\n");
    }
    s
}

/// One edit to a profile is one group, named after the profile, in every
/// format.
#[test]
fn plan_names_the_profile_a_change_comes_from() {
    let tmp = workspace(&plan_fleet("32Gi"));
    let dir = tmp.path();
    let apply = run_in(dir, &["apply", "--auto-approve", "-q"]);
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    std::fs::write(dir.join("fleet.kdl"), plan_fleet("64Gi")).expect("write");

    let text = run_in(dir, &["plan"]);
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    let text = stdout(&text);
    assert!(text.contains("(profile gpu: 5 clusters)"), "{text}");
    assert_golden("profiles__plan.txt", &strip_target(&text, dir));

    let md = run_in(dir, &["plan", "--format", "markdown"]);
    assert_golden("profiles__plan.md", &strip_target(&stdout(&md), dir));

    let json = run_in(dir, &["plan", "--format", "json"]);
    let v: Value = serde_json::from_str(&stdout(&json)).expect("JSON plan");
    let groups = find_groups(&v);
    let shared: Vec<&Value> = groups.iter().filter(|g| g["objects"].as_array().is_some_and(|o| o.len() > 1)).collect();
    assert_eq!(shared.len(), 1, "{groups:#?}");
    assert_eq!(shared[0]["profile"], serde_json::json!({"name": "gpu", "clusters": 5, "of": 5}));
    assert_golden("profiles__plan_groups.json", &(serde_json::to_string_pretty(&groups).expect("JSON") + "\n"));
}

/// A change shared by clusters of two profiles names the profile they
/// both extend; one shared by clusters without a profile names none.
#[test]
fn plan_names_the_shared_base_profile() {
    let tmp = workspace(&plan_fleet("32Gi"));
    let dir = tmp.path();
    assert_eq!(run_in(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    std::fs::write(
        dir.join("fleet.kdl"),
        plan_fleet("32Gi").replace("node-pool workers\n", "node-pool workers replicas=3\n"),
    )
    .expect("write");
    let text = stdout(&run_in(dir, &["plan"]));
    assert!(text.contains("(profile general: 7 clusters)"), "{text}");

    std::fs::write(
        dir.join("fleet.kdl"),
        plan_fleet("32Gi").replace("node-pool replicas=2", "node-pool replicas=2 {\n        cores 3\n    }"),
    )
    .expect("write");
    let text = stdout(&run_in(dir, &["plan"]));
    assert!(text.contains("(profile general: 7 clusters)"), "every cluster takes `general`: {text}");
}

fn find_groups(v: &Value) -> Vec<Value> {
    if let Some(g) = v["groups"].as_array() {
        return g.clone();
    }
    v["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["groups"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The plan without the temporary directory (shown as `DIR`) and without
/// the capacity table, which other tests pin: these goldens are about
/// the groups.
fn strip_target(s: &str, dir: &Path) -> String {
    let s = s.replace(&dir.display().to_string(), "DIR");
    let mut out = String::new();
    let mut skipping = false;
    for line in s.split_inclusive('\n') {
        if line.starts_with("Capacity of the management cluster") || line.starts_with("#### Capacity of") {
            skipping = true;
        } else if skipping && (line.starts_with("#### ") || line.starts_with("Plan:")) {
            skipping = false;
        }
        if !skipping {
            out.push_str(line);
        }
    }
    out
}

/// The example renders what its comments claim.
#[test]
fn profiles_example_layers_as_documented() {
    let out = run_in(&repo(), &["render", "examples/profiles"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let docs = yaml_docs(&stdout(&out));
    let find = |kind: &str, name: &str| -> Value {
        docs.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name).cloned().expect(name)
    };
    assert_eq!(find("NodePool", "search-workers")["spec"]["replicas"], 6);
    assert_eq!(find("NodePool", "search-workers")["spec"]["management"]["autoRepair"], true);
    assert_eq!(find("NodePool", "ml-train-gpu")["spec"]["replicas"], 3);
    assert_eq!(find("NodePool", "ml-serve-gpu")["spec"]["replicas"], 1);
    let sandbox = find("HostedCluster", "sandbox");
    assert_eq!(sandbox["metadata"]["labels"]["env"], "sandbox");
    assert_eq!(sandbox["metadata"]["labels"]["owner"], "platform");
    assert_eq!(find("NodePool", "sandbox-workers")["spec"]["replicas"], 1);
    assert!(docs.iter().all(|o| o["metadata"]["name"] != "sandbox-ssh-key"), "dev takes no SSH key");
    assert!(docs.iter().any(|o| o["metadata"]["name"] == "payments-ssh-key"));
}

// ---------------------------------------------------------------------------
// Property: moving settings into profiles changes nothing
// ---------------------------------------------------------------------------

/// A cluster's own settings, one top-level node each.
const SETTINGS: &[&str] = &[
    "ssh-key file=\"id.pub\"",
    "labels team=a \"example.com/cost-center\"=cc-1",
    "annotations note=x",
    "etcd size=\"16Gi\"",
    "availability control-plane=single-replica",
    "network cluster-cidr=\"10.136.0.0/14\"",
    "fips #true",
    "toleration key=dedicated operator=Exists",
    "storage {\n        driver none\n    }",
    "release \"quay.io/openshift-release-dev/ocp-release:4.20.2-x86_64\"",
];

/// Pools: name, size and settings.
const POOLS: &[(&str, &str, &[&str])] = &[
    ("workers", "replicas=2", &["cores 4", "memory \"16Gi\"", "root-volume size=64", "auto-repair #true"]),
    (
        "gpu",
        "replicas=1",
        &["memory \"32Gi\"", "node-selector zone=a", "additional-network \"default/vlan-10\"", "upgrade-type in-place"],
    ),
];

/// Where each setting is written: 0 the cluster, 1 profile `p`, 2
/// profile `base` (which `p` extends).
fn split_fleet(settings: &[u8], pools: &[Vec<u8>], sizes: &[u8]) -> String {
    let mut blocks = [String::new(), String::new(), String::new()];
    for (s, &layer) in SETTINGS.iter().zip(settings) {
        blocks[usize::from(layer)] += &format!("    {s}\n");
    }
    for ((i, (name, size, items)), layer_of) in POOLS.iter().enumerate().zip(pools) {
        let mut pool = [String::new(), String::new(), String::new()];
        for (item, &layer) in items.iter().zip(layer_of) {
            pool[usize::from(layer)] += &format!("        {item}\n");
        }
        for (layer, body) in pool.iter().enumerate() {
            let sized = usize::from(sizes[i]) == layer;
            if body.is_empty() && !sized {
                continue;
            }
            let size = if sized { format!(" {size}") } else { String::new() };
            blocks[layer] += &format!("    node-pool {name}{size} {{\n{body}    }}\n");
        }
    }
    format!(
        "defaults {{\n    release \"{R0}\"\n    pull-secret file=\"pull-secret.json\"\n}}\n\nprofile base {{\n{}}}\n\nprofile p extends=base {{\n{}}}\n\ncluster a profile=p {{\n{}}}\n",
        blocks[2], blocks[1], blocks[0]
    )
}

fn render_lib(dir: &Path, text: &str) -> String {
    use hcpc::cli::load::compile_sources;
    use hcpc::render::{masked, yaml};
    use hcpc::source::SourceMap;
    let mut sources = SourceMap::default();
    sources.add(dir.join("fleet.kdl"), text.to_string());
    let compiled = compile_sources(sources);
    assert!(!compiled.diags.has_errors(), "{text}\n{:#?}", compiled.diags);
    let docs: Vec<_> = compiled.objects.iter().map(masked).collect();
    yaml::to_multi_yaml(docs.iter())
}

/// The rendered objects, each as YAML, in name order: the order of pools
/// (profiles' first) is not part of what is compared.
fn objects(yaml: &str) -> Vec<String> {
    let mut docs: Vec<String> = yaml_docs(yaml).iter().map(Value::to_string).collect();
    docs.sort_unstable();
    docs
}

proptest::proptest! {
    // `HCPC_ROBUSTNESS_CASES=N` runs N cases, as for the robustness properties.
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: std::env::var("HCPC_ROBUSTNESS_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        failure_persistence: None,
        ..Default::default()
    })]

    /// Any spread of one cluster's settings (and its pools' settings and
    /// sizes) over the cluster, its profile and the profile that one
    /// extends renders the objects the cluster with all of them renders.
    #[test]
    fn spreading_settings_over_profiles_renders_the_same(
        settings in proptest::collection::vec(0u8..3, SETTINGS.len()),
        workers in proptest::collection::vec(0u8..3, POOLS[0].2.len()),
        gpu in proptest::collection::vec(0u8..3, POOLS[1].2.len()),
        sizes in proptest::collection::vec(0u8..3, POOLS.len()),
    ) {
        let tmp = workspace("");
        let all_here = split_fleet(&[0; SETTINGS.len()], &[vec![0; POOLS[0].2.len()], vec![0; POOLS[1].2.len()]], &[0, 0]);
        let spread = split_fleet(&settings, &[workers, gpu], &sizes);
        let (expected, got) = (render_lib(tmp.path(), &all_here), render_lib(tmp.path(), &spread));
        proptest::prop_assert_eq!(objects(&expected), objects(&got), "{}", spread);
    }
}
