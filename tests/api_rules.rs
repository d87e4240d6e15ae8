//! The offline rules of `lower/api_rules.rs` are honest: for a sample of
//! them, `hcpc check` refuses the configuration, and the real kube-apiserver
//! (with the real CRDs) refuses the object hcpc would otherwise have
//! rendered, while it accepts the same object without the mistake.

use serde_json::{Value, json};

use crate::support::envtest::Envtest;
use crate::support::{hcpc, stderr, stdout, yaml_docs};

const CLUSTER: &str = "cluster example {\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret file=\"pull-secret.json\"\n";

/// One rule: the KDL that breaks it, its code, and the same mistake made
/// to the rendered object (HostedCluster or NodePool).
struct Sample {
    kdl: String,
    code: &'static str,
    kind: &'static str,
    spoil: fn(&mut Value),
}

fn samples() -> Vec<Sample> {
    vec![
        Sample {
            kdl: "labels team=\"a/b\"".into(),
            code: "hcpc::lower::invalid_label",
            kind: "HostedCluster",
            spoil: |o| o["metadata"]["labels"]["team"] = json!("a/b"),
        },
        Sample {
            kdl: "network type=Cilium".into(),
            code: "hcpc::network::unknown_type",
            kind: "HostedCluster",
            spoil: |o| o["spec"]["networking"]["networkType"] = json!("Cilium"),
        },
        Sample {
            kdl: "network service-cidr=\"10.132.0.0/14\"".into(),
            code: "hcpc::network::overlapping",
            kind: "HostedCluster",
            spoil: |o| o["spec"]["networking"]["serviceNetwork"] = json!([{"cidr": "10.132.0.0/14"}]),
        },
        Sample {
            kdl: "base-domain \"example.c0m\"".into(),
            code: "hcpc::cluster::invalid_base_domain",
            kind: "HostedCluster",
            spoil: |o| o["spec"]["dns"]["baseDomain"] = json!("example.c0m"),
        },
        Sample {
            kdl: format!(
                "control-plane-node-selector {}",
                (0..21).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(" ")
            ),
            code: "hcpc::cluster::too_many_node_selectors",
            kind: "HostedCluster",
            spoil: |o| {
                o["spec"]["nodeSelector"] = (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
            },
        },
        Sample {
            kdl: vec!["toleration operator=Exists"; 26].join("\n    "),
            code: "hcpc::cluster::too_many_tolerations",
            kind: "HostedCluster",
            spoil: |o| o["spec"]["tolerations"] = json!(vec![json!({"operator": "Exists"}); 26]),
        },
        Sample {
            kdl: format!(
                "node-pool workers replicas=2 {{\n        {}\n    }}",
                (0..21)
                    .map(|i| format!("additional-network \"default/net-{i}\""))
                    .collect::<Vec<_>>()
                    .join("\n        ")
            ),
            code: "hcpc::node_pool::too_many_networks",
            kind: "NodePool",
            spoil: |o| {
                o["spec"]["platform"]["kubevirt"]["additionalNetworks"] =
                    (0..21).map(|i| json!({"name": format!("default/net-{i}")})).collect();
            },
        },
    ]
}

fn workspace(body: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("pull-secret.json"), "{\"auths\":{}}\n").unwrap();
    std::fs::write(tmp.path().join("fleet.kdl"), format!("{CLUSTER}    {body}\n}}\n")).unwrap();
    tmp
}

fn run(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    hcpc().current_dir(dir).args(args).output().unwrap()
}

#[test]
fn what_check_refuses_the_api_server_refuses() {
    // Offline: each sample is refused with its code.
    for s in samples() {
        let tmp = workspace(&format!("{}\n    node-pool w replicas=1", s.kdl));
        let o = run(tmp.path(), &["check", "fleet.kdl", "--format", "json"]);
        assert_eq!(o.status.code(), Some(1), "{}:\n{}{}", s.code, stdout(&o), stderr(&o));
        let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
        let codes: Vec<&str> =
            report["diagnostics"].as_array().unwrap().iter().filter_map(|d| d["code"].as_str()).collect();
        assert!(codes.contains(&s.code), "{}: got {codes:?}", s.code);
    }

    // What hcpc renders without the mistakes.
    let Some(k) = Envtest::shared() else { return };
    let scope = k.scope("api-rules");
    k.ensure_namespace(&scope.namespace);
    let tmp = workspace("base-domain \"example.com\"\n    node-pool workers replicas=2");
    let o = run(tmp.path(), &["render", "fleet.kdl"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let docs = yaml_docs(&stdout(&o));
    let rendered = |kind: &str, name: &str| -> Value {
        let mut o = docs.iter().find(|d| d["kind"] == kind).cloned().unwrap_or_else(|| panic!("no {kind}"));
        o["metadata"]["namespace"] = json!(scope.namespace);
        o["metadata"]["name"] = json!(name);
        if kind == "NodePool" {
            o["spec"]["clusterName"] = json!(name);
        }
        o
    };
    for (n, s) in samples().iter().enumerate() {
        let name = format!("c{n}");
        // Accepted as rendered, so the refusal below is the mistake's.
        k.try_apply_as("api-rules-test", &rendered(s.kind, &format!("{name}-ok")), true)
            .unwrap_or_else(|e| panic!("{}: the rendered {} is refused: {e}", s.code, s.kind));
        let mut spoiled = rendered(s.kind, &name);
        (s.spoil)(&mut spoiled);
        let refused = k.try_apply_as("api-rules-test", &spoiled, true);
        assert!(refused.is_err(), "{}: the API server accepted {spoiled:#}", s.code);
    }
}
