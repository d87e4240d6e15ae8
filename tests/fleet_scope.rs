//! Fleet-scale adoption and targeting against a real kube-apiserver:
//! `hcpc import NAMESPACE -o DIR` over clusters made the way `hcp` makes
//! them, and `--cluster` on plan and apply.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::support::live_fleet::{LiveFleet, RELEASE};
use crate::support::{stderr, stdout};

/// The shared live fleet, with this module's own helpers.
struct Env(LiveFleet);

impl std::ops::Deref for Env {
    type Target = LiveFleet;
    fn deref(&self) -> &LiveFleet {
        &self.0
    }
}

fn env(what: &str) -> Option<Env> {
    LiveFleet::new(what).map(Env)
}

impl Env {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Applies hcp's rendered objects of `scenario` into this namespace
    /// as `hcp` would (field manager `hypershift-cli`), its cluster
    /// `was` renamed to `name`.
    fn create_as_hcp(&self, scenario: &str, was: &str, name: &str) {
        let path = crate::support::conformance().join("hcp").join(scenario).join("out.yaml");
        let text = std::fs::read_to_string(path).unwrap().replace(was, name);
        for mut doc in crate::support::yaml_docs(&text) {
            if doc["kind"] == "Namespace" {
                doc["metadata"]["name"] = json!(self.ns());
            } else {
                doc["metadata"]["namespace"] = json!(self.ns());
            }
            self.k.apply_as("hypershift-cli", &doc);
        }
    }

    fn replicas(&self, pool: &str) -> Value {
        self.k.get("nodepools", Some(self.ns()), pool).unwrap()["spec"]["replicas"].clone()
    }

    /// `fleet.kdl`: clusters `alpha` and `beta`, one pool each of
    /// `replicas`, and `gamma` when `with_gamma`.
    fn fleet(&self, alpha: u32, beta: u32, with_gamma: bool) {
        let secret = crate::support::pull_secret_in(self.dir.path());
        let gamma = if with_gamma { "cluster gamma {\n    node-pool w replicas=1\n}\n" } else { "" };
        std::fs::write(
            self.path("fleet.kdl"),
            format!(
                "target kube\nfleet {fleet}\ndefaults {{\n    namespace {ns}\n    release \"{RELEASE}\"\n    pull-secret file=\"{secret}\"\n    prevent-destroy #false\n}}\n\
                 cluster alpha {{\n    node-pool w replicas={alpha}\n}}\ncluster beta {{\n    node-pool w replicas={beta}\n}}\n{gamma}",
                fleet = self.scope.fleet,
                ns = self.ns(),
                secret = secret.display(),
            ),
        )
        .unwrap();
    }
}

/// Every change of a JSON plan (one target) is an ownership label.
fn only_ownership_labels(plan: &Value) {
    for change in plan["changes"].as_array().unwrap() {
        let action = change["action"].as_str().unwrap();
        assert!(action == "update" || action == "no-op", "nothing may be added, replaced or destroyed: {change}");
        for f in change["fields"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            assert!(path.starts_with("metadata.labels"), "only ownership labels may change, not {path}: {change}");
        }
    }
}

#[test]
fn import_of_a_namespace_plans_only_ownership_labels() {
    let Some(e) = env("import-ns") else { return };
    // Storage classes the test server does not have are left out: the
    // plan checks every class a cluster names.
    e.create_as_hcp("01-minimal", "example", "alpha");
    e.create_as_hcp("06-cache-pvc", "example", "beta");
    e.create_as_hcp("10-everything", "prod-a", "gamma");
    let out = e.path("fleet");
    e.ok(&["import", e.ns(), "-o", out.to_str().unwrap()]);

    let mut files: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|f| f.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(files, ["00-fleet.kdl", "alpha.kdl", "beta.kdl", "gamma.kdl"]);
    let head = std::fs::read_to_string(out.join("00-fleet.kdl")).unwrap();
    // Compared without quotes, which `hcpc fmt` leaves off plain names.
    let unquoted = head.replace('"', "");
    assert!(unquoted.contains(&format!("fleet {ns} namespace={ns}", ns = e.ns())), "{head}");
    assert!(head.contains("target kube"), "{head}");
    // What every cluster shares is said once.
    for shared in [format!("    namespace {}", e.ns()), format!("    release {RELEASE}")] {
        assert!(unquoted.contains(&shared), "{shared} belongs in defaults:\n{head}");
    }
    let beta = std::fs::read_to_string(out.join("beta.kdl")).unwrap().replace('"', "");
    assert!(!beta.contains("release") && !beta.contains("namespace"), "{beta}");
    assert!(beta.contains("pull-secret secret=beta-pull-secret"), "{beta}");
    assert!(beta.contains("cache=pvc"), "what differs stays in the cluster: {beta}");
    assert!(beta.contains("infra-id"), "{beta}");

    e.ok(&["fmt", "--check", out.to_str().unwrap()]);
    let plan = e.ok(&["plan", out.to_str().unwrap(), "--format", "json"]);
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    only_ownership_labels(&plan);
    assert!(plan["summary"]["change"].as_u64().unwrap() > 0, "the ownership labels are added: {plan}");
    e.ok(&["apply", out.to_str().unwrap(), "--auto-approve", "-q"]);
    let adopted = e.run(&["plan", out.to_str().unwrap(), "--detailed-exitcode"]);
    assert_eq!(adopted.status.code(), Some(0), "{}{}", stdout(&adopted), stderr(&adopted));
    assert_eq!(e.k.get("hostedclusters", Some(e.ns()), "gamma").unwrap()["spec"]["infraID"], "gamma-xyz12");

    // Never over an existing directory, never a partial one.
    let again = e.run(&["import", e.ns(), "-o", out.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("exists and is not empty"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(out.join("00-fleet.kdl")).unwrap(), head);
    let empty = e.run(&["import", "no-such-namespace", "-o", e.path("none").to_str().unwrap()]);
    assert_eq!(empty.status.code(), Some(1));
    assert!(stderr(&empty).contains("has no HostedClusters"), "{}", stderr(&empty));
    assert!(!e.path("none").exists());
    let leftovers: Vec<_> = std::fs::read_dir(e.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|f| f.file_name().to_string_lossy().contains(".import-"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary directory is left behind");

    // NAMESPACE/NAME still prints one cluster, with everything in it.
    let one = e.ok(&["import", &format!("{}/beta", e.ns())]);
    assert!(stdout(&one).contains(RELEASE), "{}", stdout(&one));
}

#[test]
fn import_all_needs_a_fleet_name_and_unique_cluster_names() {
    let Some(e) = env("import-all") else { return };
    let o = e.run(&["import", "--all", "-o", e.path("x").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--all needs --fleet NAME"), "{}", stderr(&o));
    assert!(!e.path("x").exists());
    // The same name in two namespaces cannot be one fleet.
    let Some(other) = env("import-all") else { return };
    e.create_as_hcp("01-minimal", "example", "twin");
    other.create_as_hcp("01-minimal", "example", "twin");
    let o = e.run(&["import", "--all", "--fleet", "mgmt", "-o", e.path("x").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("have the same name") && stderr(&o).contains("nothing was written"), "{}", stderr(&o));
    assert!(!e.path("x").exists());
}

/// Applies the fleet, then changes both clusters.
fn two_pending(e: &Env) {
    e.fleet(1, 1, true);
    e.ok(&["apply", "--auto-approve", "-q"]);
    e.fleet(2, 3, true);
}

#[test]
fn cluster_limits_plan_and_apply() {
    let Some(e) = env("limit") else { return };
    two_pending(&e);
    let plan = e.ok(&["plan", "--cluster", "alpha"]);
    let text = stdout(&plan);
    assert!(text.starts_with("Warning: Limited to 1 cluster (--cluster): alpha."), "{text}");
    assert!(text.contains("alpha-w") && !text.contains("beta-w"), "{text}");
    assert!(text.contains("Plan: 0 to add, 1 to change"), "{text}");

    let json = e.ok(&["plan", "--cluster", "al*", "--format", "json"]);
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["limited_to"], json!(["alpha"]));
    let md = e.ok(&["plan", "--cluster", "alpha", "--format", "markdown"]);
    assert!(stdout(&md).starts_with("> **Warning:** Limited to 1 cluster"), "{}", stdout(&md));

    let apply = e.ok(&["apply", "--cluster", "alpha", "--auto-approve"]);
    // The plan it shows (on stdout, diagnostics apart) starts with the warning.
    let shown = stdout(&apply);
    assert!(shown.starts_with("Warning: Limited to 1 cluster"), "{shown}");
    assert!(shown.contains("Apply complete! 0 added, 1 changed"), "{shown}");
    assert_eq!(e.replicas("alpha-w"), 2);
    assert_eq!(e.replicas("beta-w"), 1, "beta's pending change is left alone");
    let rest = e.ok(&["plan"]);
    assert!(stdout(&rest).contains("beta-w") && !stdout(&rest).contains("alpha-w"), "{}", stdout(&rest));

    // A saved plan records its limit, and applying it keeps it.
    e.fleet(4, 3, true);
    let saved = e.path("plan.json");
    e.ok(&["plan", "--cluster", "alpha", "--out", saved.to_str().unwrap()]);
    let recorded: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(recorded["clusters"], json!(["alpha"]));
    let other = e.run(&["apply", saved.to_str().unwrap(), "--cluster", "beta", "--auto-approve"]);
    assert_eq!(other.status.code(), Some(1), "{}", stderr(&other));
    e.ok(&["apply", saved.to_str().unwrap(), "--auto-approve", "-q"]);
    assert_eq!(e.replicas("alpha-w"), 4);
    assert_eq!(e.replicas("beta-w"), 1);

    // A pattern that matches nothing is an error that names the closest.
    let typo = e.run(&["plan", "--cluster", "alhpa"]);
    assert_eq!(typo.status.code(), Some(1));
    assert!(stderr(&typo).contains("did you mean `alpha`?"), "{}", stderr(&typo));
}

#[test]
fn cluster_limits_pruning() {
    let Some(e) = env("limit-prune") else { return };
    e.fleet(1, 1, true);
    e.ok(&["apply", "--auto-approve", "-q"]);
    // gamma leaves the configuration; a plan limited to alpha keeps it.
    e.fleet(2, 1, false);
    let plan = e.ok(&["plan", "--cluster", "alpha"]);
    assert!(!stdout(&plan).contains("gamma"), "{}", stdout(&plan));
    e.ok(&["apply", "--cluster", "alpha", "--auto-approve", "-q"]);
    assert!(e.k.get("hostedclusters", Some(e.ns()), "gamma").is_some(), "gamma is not pruned");
    assert!(e.k.get("nodepools", Some(e.ns()), "gamma-w").is_some());
    // Limited to gamma, which only the live state knows, it is destroyed alone.
    let only = e.ok(&["plan", "--cluster", "gamma"]);
    assert!(stdout(&only).contains("to destroy") && !stdout(&only).contains("alpha"), "{}", stdout(&only));
    e.ok(&["apply", "--cluster", "gamma", "--auto-approve", "-q"]);
    assert!(e.k.get("nodepools", Some(e.ns()), "gamma-w").is_none());
    assert!(e.k.get("nodepools", Some(e.ns()), "alpha-w").is_some());

    // --wait waits for the clusters applied, not for the others: alpha
    // reports ready as the operator would, beta never does.
    let condition = |kind: &str| {
        json!({"type": kind, "status": "True", "reason": "AsExpected", "message": "",
               "lastTransitionTime": "2026-01-01T00:00:00Z"})
    };
    e.k.set_status_as(
        "hypershift-operator",
        "hostedclusters",
        Some(e.ns()),
        "alpha",
        json!({"conditions": [condition("Available")]}),
    );
    e.k.set_status_as(
        "hypershift-operator",
        "nodepools",
        Some(e.ns()),
        "alpha-w",
        json!({"replicas": 2, "conditions": [condition("Ready")]}),
    );
    let alpha = e.run(&["apply", "--cluster", "alpha", "--auto-approve", "--wait", "--timeout", "10s"]);
    assert_eq!(alpha.status.code(), Some(0), "{}", stderr(&alpha));
    let all = e.run(&["apply", "--auto-approve", "--wait", "--timeout", "2s"]);
    assert_eq!(all.status.code(), Some(1), "beta is not ready: {}", stderr(&all));
}

/// The limited plan's text and markdown, on a directory target: the
/// warning comes first and only alpha's change is shown.
#[test]
fn limited_plan_golden() {
    let dir = tempfile::tempdir().unwrap();
    let secret = crate::support::pull_secret_in(dir.path());
    let write = |alpha: u32, beta: u32| {
        let text = format!(
            "target dir \"out\"\nfleet golden\ndefaults {{\n    release \"{RELEASE}\"\n    pull-secret file=\"{}\"\n}}\n\
             cluster alpha {{\n    node-pool w replicas={alpha}\n}}\ncluster beta {{\n    node-pool w replicas={beta}\n}}\n",
            secret.display()
        );
        std::fs::write(dir.path().join("fleet.kdl"), text).unwrap();
    };
    let run = |args: &[&str]| crate::support::run_in(dir.path(), args);
    write(1, 1);
    assert_eq!(run(&["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    write(2, 3);
    let text = run(&["plan", "--cluster", "alpha"]);
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    crate::examples::assert_golden("fleet_scope__limited.txt", &stdout(&text));
    let md = run(&["plan", "--cluster", "a*", "--format", "markdown"]);
    crate::examples::assert_golden("fleet_scope__limited.md", &stdout(&md));
    let diff = run(&["plan", "--cluster", "alpha", "--format", "diff"]);
    assert!(stdout(&diff).starts_with("# Warning: Limited to 1 cluster"), "{}", stdout(&diff));
    assert!(!stdout(&diff).contains("beta"), "{}", stdout(&diff));
}

/// `hcpc destroy` on the real server: one cluster with `--cluster`, then
/// the rest, Secrets included; the configuration still declares them.
#[test]
fn destroy_deletes_what_the_fleet_owns_on_the_server() {
    let Some(e) = env("destroy") else { return };
    e.fleet(1, 1, false);
    e.ok(&["apply", "--auto-approve", "-q"]);
    let exists = |kind: &str, name: &str| e.k.get(kind, Some(e.ns()), name).is_some();

    let beta = e.ok(&["destroy", "--cluster", "beta", "--auto-approve"]);
    let out = stdout(&beta);
    assert!(out.contains(&format!("- HostedCluster/{}/beta", e.ns())) && !out.contains("alpha"), "{out}");
    assert!(out.contains("Destroy complete! 4 destroyed."), "{out}");
    assert!(
        !exists("hostedclusters", "beta") && !exists("nodepools", "beta-w") && !exists("secrets", "beta-pull-secret")
    );
    assert!(exists("hostedclusters", "alpha") && exists("secrets", "alpha-pull-secret"), "alpha is left alone");

    e.ok(&["destroy", "--auto-approve", "-q"]);
    assert!(!exists("hostedclusters", "alpha") && !exists("nodepools", "alpha-w"));
    assert!(!exists("secrets", "alpha-pull-secret") && !exists("secrets", "alpha-etcd-encryption-key"));
    let again = e.ok(&["plan"]);
    assert!(stdout(&again).contains("Plan: 8 to add"), "{}", stdout(&again));
}
