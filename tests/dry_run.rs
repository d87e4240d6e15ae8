//! The management cluster's own rules judge a plan before anything is
//! written: `plan` sends each object it would create or change as a
//! server-side apply with `dryRun=All`, and `apply` does so again under
//! the lock, so a site policy that refuses one object stops the apply
//! before its first write. The policy is a real ValidatingAdmissionPolicy
//! (admissionregistration.k8s.io/v1) with its binding, on the real server.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::envtest::Envtest;
use crate::support::live_fleet::LiveFleet;
use crate::support::stderr;

/// The shared live fleet, with this module's site policy (removed on drop).
struct Env(LiveFleet);

impl std::ops::Deref for Env {
    type Target = LiveFleet;
    fn deref(&self) -> &LiveFleet {
        &self.0
    }
}

impl Env {
    /// A site policy refusing NodePools of 7 replicas in `namespaces`.
    fn refuse_seven_replicas(&self, namespaces: &[&str]) {
        let name = format!("{}-no-seven", self.ns());
        self.k.create(&json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": ["hypershift.openshift.io"], "apiVersions": ["*"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["nodepools"]}]},
                "validations": [{
                    "expression": "!has(object.spec.replicas) || object.spec.replicas != 7",
                    "message": "site policy: no NodePool of 7 replicas",
                    "fieldPath": "spec.replicas", "reason": "Invalid"}],
            },
        }));
        self.k.create(&json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name, "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchExpressions": [{
                    "key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]}},
            },
        }));
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let name = format!("{}-no-seven", self.ns());
        self.k.delete("validatingadmissionpolicybindings", None, &name);
        self.k.delete("validatingadmissionpolicies", None, &name);
    }
}

#[test]
fn an_admission_policy_refusal_fails_the_plan_and_apply_writes_nothing() {
    let Some(e) = LiveFleet::new("dryrun").map(Env) else { return };
    e.write_fleet("cluster a {\n    node-pool w replicas=2\n}\n");
    e.ok(&["apply", "--auto-approve", "-q"]);
    let elsewhere = format!("{}-b", e.ns());
    e.refuse_seven_replicas(&[e.ns(), &elsewhere]);

    // Seven replicas, and a new pool beside it in the same level.
    e.write_fleet("cluster a {\n    node-pool w replicas=7\n    node-pool x replicas=1\n}\n");
    // The policy takes effect once the server has loaded it.
    let start = Instant::now();
    let plan = loop {
        let plan = e.run(&["plan"]);
        if plan.status.code() == Some(1) || start.elapsed() > Duration::from_secs(30) {
            break plan;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let err = stderr(&plan);
    assert_eq!(plan.status.code(), Some(1), "{err}");
    assert!(err.contains("hcpc::plan::rejected"), "{err}");
    assert!(err.contains("site policy: no NodePool of 7 replicas"), "{err}");
    assert!(err.contains(&format!("NodePool/{}/a-w", e.ns())), "{err}");
    // The label points at the line that declares the pool (line 9).
    assert!(err.contains("fleet.kdl:9:"), "{err}");
    assert!(!err.contains("API server: :"), "{err}");

    let apply = e.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(1), "{}", stderr(&apply));
    assert!(stderr(&apply).contains("site policy"), "{}", stderr(&apply));
    assert!(e.k.get("nodepools", Some(e.ns()), "a-x").is_none(), "nothing was written");
    assert_eq!(e.k.get("nodepools", Some(e.ns()), "a-w").unwrap()["spec"]["replicas"], 2);

    // A cluster in a namespace that does not exist yet: the plan cannot
    // judge its objects and says so; apply creates the Namespace, the dry
    // run refuses the pool, and nothing else is written.
    e.write_fleet(&format!(
        "cluster a {{\n    node-pool w replicas=2\n}}\ncluster b {{\n    namespace {elsewhere}\n    node-pool w replicas=7\n}}\n"
    ));
    let plan = e.ok(&["plan"]);
    assert!(stderr(&plan).contains("hcpc::plan::checked_at_apply"), "{}", stderr(&plan));
    let apply = e.run(&["apply", "--auto-approve"]);
    let err = stderr(&apply);
    assert_eq!(apply.status.code(), Some(1), "{err}");
    assert!(err.contains("refused by the management cluster (dry run)") && err.contains("site policy"), "{err}");
    assert!(e.k.get("hostedclusters", Some(&elsewhere), "b").is_none(), "{err}");
    assert!(e.k.list("secrets", Some(&elsewhere)).iter().all(|s| s["metadata"]["name"] != "b-pull-secret"), "{err}");

    // Within the policy, both apply.
    e.write_fleet(&format!(
        "cluster a {{\n    node-pool w replicas=2\n}}\ncluster b {{\n    namespace {elsewhere}\n    node-pool w replicas=6\n}}\n"
    ));
    e.ok(&["apply", "--auto-approve", "-q"]);
    e.ok(&["plan", "--detailed-exitcode"]);
}

/// A plan without changes sends no dry run.
#[test]
fn a_no_change_plan_sends_no_dry_run() {
    let Some(k) = Envtest::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let proxy = crate::support::fault_proxy::FaultProxy::start(k);
    let kubeconfig = proxy.write_kubeconfig(dir.path());
    let e = Env(LiveFleet { k, scope: k.scope("dryrun-none"), dir, kubeconfig });
    e.write_fleet("cluster a {\n    node-pool w replicas=2\n}\n");
    e.ok(&["apply", "--auto-approve", "-q"]);
    proxy.clear_requests();
    e.ok(&["plan", "--detailed-exitcode"]);
    let dry: Vec<_> = proxy.requests().into_iter().filter(|(_, p)| p.contains("dryRun")).collect();
    assert!(dry.is_empty(), "{dry:?}");
    e.write_fleet("cluster a {\n    node-pool w replicas=3\n}\n");
    proxy.clear_requests();
    e.run(&["plan"]);
    let dry: Vec<_> = proxy.requests().into_iter().filter(|(_, p)| p.contains("dryRun")).collect();
    assert_eq!(dry.len(), 1, "only the changed NodePool: {dry:?}");
    assert!(dry[0].1.contains("/nodepools/a-w"), "{dry:?}");
}
