//! Plan, apply, import and access against a real kube-apiserver with the
//! HyperShift CRDs (the shared [`Envtest`] server), end to end through the
//! `hcpc` binary. Each test works in its own namespace under its own fleet
//! name, so they run in parallel on one server. Faults the real server
//! cannot produce on demand go through a [`FaultProxy`] in front of it.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::envtest::{Envtest, Scope};
use crate::support::fault_proxy::FaultProxy;
use crate::support::{hcpc, repo, stderr, stdout};

const RELEASE: &str = "quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64";

/// One test's fleet directory and scope on a server.
struct Env<'a> {
    k: &'a Envtest,
    scope: Scope,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

/// A scope on the shared server; `None` when the server's binaries are missing.
fn env(what: &str) -> Option<Env<'static>> {
    let k = Envtest::shared()?;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = k.write_kubeconfig(dir.path());
    Some(Env { k, scope: k.scope(what), dir, kubeconfig })
}

/// A scope whose `hcpc` runs go through a fault proxy.
fn env_with_faults(what: &str) -> Option<(Env<'static>, FaultProxy)> {
    let mut e = env(what)?;
    let proxy = FaultProxy::start(e.k);
    e.kubeconfig = proxy.write_kubeconfig(e.dir.path());
    Some((e, proxy))
}

impl Env<'_> {
    fn ns(&self) -> &str {
        &self.scope.namespace
    }

    /// Writes `fleet.kdl`: this scope's fleet and namespace, shared
    /// release and pull secret, then `body`.
    fn write_fleet(&self, body: &str) {
        let secrets = crate::support::pull_secret_in(self.dir.path());
        std::fs::write(
            self.dir.path().join("fleet.kdl"),
            format!(
                "target kube\nfleet {fleet}\ndefaults {{\n    namespace {ns}\n    release \"{RELEASE}\"\n    pull-secret file=\"{secret}\"\n}}\n{body}",
                fleet = self.scope.fleet,
                ns = self.scope.namespace,
                secret = secrets.display(),
            ),
        )
        .unwrap();
    }

    /// One cluster `example` with one pool `workers`.
    fn fleet(&self, replicas: u32) {
        self.write_fleet(&format!("cluster example {{\n    node-pool workers replicas={replicas}\n}}\n"));
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = hcpc();
        c.current_dir(self.dir.path()).env("KUBECONFIG", &self.kubeconfig).args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs and requires exit code 0.
    fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert_eq!(o.status.code(), Some(0), "hcpc {args:?}:\n{}{}", stdout(&o), stderr(&o));
        o
    }

    fn get(&self, plural: &str, name: &str) -> Option<Value> {
        self.k.get(plural, Some(self.ns()), name)
    }

    fn replicas(&self) -> Value {
        self.get("nodepools", "example-workers").unwrap()["spec"]["replicas"].clone()
    }

    /// An object of this scope's namespace, as `manager` would apply it.
    fn apply_as(&self, manager: &str, mut obj: Value) -> Value {
        obj["metadata"]["namespace"] = json!(self.ns());
        self.k.apply_as(manager, &obj)
    }
}

/// What the operator would write in a condition (the CRDs require every field).
fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

#[test]
fn empty_cluster_then_apply_then_no_changes() {
    let Some(e) = env("first") else { return };
    e.fleet(2);
    let plan = e.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}{}", stdout(&plan), stderr(&plan));
    assert!(stdout(&plan).contains("Plan: 5 to add"), "{}", stdout(&plan));
    assert!(e.k.get("namespaces", None, e.ns()).is_none(), "plan changes nothing");

    let apply = e.ok(&["apply", "--auto-approve"]);
    // The Namespace the lock needed first counts as added, as the plan said.
    assert!(stdout(&apply).contains("Apply complete! 5 added, 0 changed"), "{}", stdout(&apply));
    assert!(stdout(&apply).contains(&format!("+ Namespace/{}", e.ns())), "{}", stdout(&apply));
    assert_eq!(e.replicas(), 2);
    let key = e.get("secrets", "example-etcd-encryption-key").unwrap();
    let key_data = key["data"]["key"].clone();
    assert!(key_data.is_string());

    let again = e.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}{}", stdout(&again), stderr(&again));
    assert!(stdout(&again).contains("No changes."), "{}", stdout(&again));

    // The etcd key is never rewritten.
    e.fleet(3);
    e.ok(&["apply", "--auto-approve"]);
    assert_eq!(e.get("secrets", "example-etcd-encryption-key").unwrap()["data"]["key"], key_data);
    assert_eq!(e.replicas(), 3);
}

/// A no-change plan makes as many requests for three clusters as for one.
#[test]
fn plan_requests_do_not_grow_with_the_fleet() {
    let Some((e, proxy)) = env_with_faults("requests") else { return };
    let mut counts = Vec::new();
    for clusters in [1, 3] {
        let body: String =
            (0..clusters).map(|i| format!("cluster c{i} {{\n    node-pool w replicas=1\n}}\n")).collect();
        e.write_fleet(&body);
        e.ok(&["apply", "--auto-approve", "-q"]);
        proxy.clear_requests();
        e.ok(&["plan", "--detailed-exitcode"]);
        counts.push(proxy.requests());
    }
    assert_eq!(counts[0].len(), counts[1].len(), "one cluster: {:?}\nthree: {:?}", counts[0], counts[1]);
    assert!(counts[0].iter().all(|(m, _)| m == "GET"), "a plan only reads: {:?}", counts[0]);
}

#[test]
fn conflict_with_another_manager_is_named_unless_forced() {
    let Some(e) = env("conflict") else { return };
    e.fleet(2);
    e.ok(&["apply", "--auto-approve", "-q"]);
    // Someone else takes over spec.replicas.
    e.apply_as(
        "someone-else",
        json!({"apiVersion": "hypershift.openshift.io/v1beta1", "kind": "NodePool",
               "metadata": {"name": "example-workers"}, "spec": {"replicas": 5}}),
    );
    // The plan's dry run is sent as the write will be: the conflict shows.
    let plan = e.run(&["plan"]);
    assert_eq!(plan.status.code(), Some(1), "{}", stderr(&plan));
    assert!(stderr(&plan).contains("would conflict with another field manager"), "{}", stderr(&plan));
    assert!(stderr(&plan).contains("someone-else"), "{}", stderr(&plan));
    let apply = e.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(1));
    let err = stderr(&apply);
    assert!(
        err.contains("conflict") && err.contains("someone-else") && err.contains(".spec.replicas"),
        "the field and its manager are named: {err}"
    );
    assert!(err.contains("--force-conflicts"), "{err}");
    assert_eq!(e.replicas(), 5, "nothing was forced");
    e.ok(&["apply", "--auto-approve", "--force-conflicts", "-q"]);
    assert_eq!(e.replicas(), 2);
    e.ok(&["plan", "--detailed-exitcode"]);
}

/// Applies hcp's rendered objects of a scenario into the scope's namespace
/// as `hcp` would (field manager `hypershift-cli`); status is dropped by
/// the server.
fn apply_as_hcp(e: &Env, scenario: &str) {
    let text =
        std::fs::read_to_string(crate::support::conformance().join("hcp").join(scenario).join("out.yaml")).unwrap();
    for mut doc in crate::support::yaml_docs(&text) {
        if doc["kind"] == "Namespace" {
            doc["metadata"]["name"] = json!(e.ns());
            e.k.apply_as("hypershift-cli", &doc);
        } else {
            e.apply_as("hypershift-cli", doc);
        }
    }
}

#[test]
fn import_round_trips_a_cluster_created_by_hcp() {
    let Some(e) = env("import") else { return };
    apply_as_hcp(&e, "10-everything");
    let import = e.ok(&["import", &format!("{}/prod-a", e.ns())]);
    let kdl = stdout(&import);
    assert!(kdl.contains("cluster prod-a {"), "{kdl}");
    assert!(kdl.contains("object-name=prod-a"), "hcp's NodePool is named after the cluster: {kdl}");
    std::fs::write(e.dir.path().join("fleet.kdl"), format!("target kube\nfleet {}\n{kdl}", e.scope.fleet)).unwrap();

    let check = e.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "imported KDL must check: {}\n{kdl}", stderr(&check));
    let plan = e.ok(&["plan", "--format", "json"]);
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    for change in plan["changes"].as_array().unwrap() {
        assert_ne!(change["action"], "create", "nothing may be created: {change}");
        assert_ne!(change["action"], "replace", "nothing may be replaced: {change}");
        for f in change["fields"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            assert!(path.starts_with("metadata.labels"), "only ownership labels may change, not {path}: {change}");
        }
    }
    e.ok(&["apply", "--auto-approve", "-q"]);
    let again = e.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}{}", stdout(&again), stderr(&again));
    let cluster = e.get("hostedclusters", "prod-a").unwrap();
    assert_eq!(cluster["spec"]["infraID"], "prod-a-xyz12", "the infraID hcp drew is kept");
}

/// A cluster made with `hcp` flags the language cannot express (dual-stack
/// networks, OLM catalog in the guest, a feature set, capabilities) is not
/// imported: each field is named and nothing is written, since the first
/// plan of what import would write would change the cluster.
#[test]
fn import_refuses_fields_the_first_plan_would_change() {
    let Some(e) = env("import-refuse") else { return };
    let text = std::fs::read_to_string(crate::support::conformance().join("hcp/10-everything/out.yaml")).unwrap();
    for mut doc in crate::support::yaml_docs(&text) {
        if doc["kind"] == "Namespace" {
            doc["metadata"]["name"] = json!(e.ns());
            e.k.apply_as("hypershift-cli", &doc);
            continue;
        }
        if doc["kind"] == "HostedCluster" {
            let spec = &mut doc["spec"];
            spec["networking"]["clusterNetwork"] = json!([{"cidr": "10.132.0.0/14"}, {"cidr": "fd01::/48"}]);
            spec["networking"]["serviceNetwork"] = json!([{"cidr": "172.31.0.0/16"}, {"cidr": "fd02::/112"}]);
            spec["olmCatalogPlacement"] = json!("guest");
            spec["configuration"] = json!({"featureGate": {"featureSet": "TechPreviewNoUpgrade"}});
            spec["capabilities"] = json!({"disabled": ["baremetal"]});
        }
        e.apply_as("hypershift-cli", doc);
    }
    let one = e.run(&["import", &format!("{}/prod-a", e.ns())]);
    assert_eq!(one.status.code(), Some(1), "{}", stdout(&one));
    assert!(stdout(&one).is_empty(), "no KDL is written: {}", stdout(&one));
    let err = stderr(&one);
    for field in [
        "spec.networking.clusterNetwork",
        "spec.networking.serviceNetwork",
        "spec.olmCatalogPlacement is `guest`",
        "featureSet is `TechPreviewNoUpgrade`",
        "spec.capabilities.disabled",
    ] {
        assert!(err.contains(field), "{field} is not named:\n{err}");
    }
    let out = e.dir.path().join("imported");
    let dir = e.run(&["import", e.ns(), "-o", out.to_str().unwrap()]);
    assert_eq!(dir.status.code(), Some(1), "{}", stderr(&dir));
    assert!(stderr(&dir).contains("nothing was written"), "{}", stderr(&dir));
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn kubeconfig_and_password_come_from_status_secrets() {
    let Some(e) = env("access") else { return };
    e.fleet(1);
    e.ok(&["apply", "--auto-approve", "-q"]);
    let before = e.run(&["kubeconfig", "example"]);
    assert_eq!(before.status.code(), Some(1));
    assert!(stderr(&before).contains("does not report a kubeconfig yet"), "{}", stderr(&before));

    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for (name, key, value) in [
        ("example-admin-kubeconfig", "kubeconfig", "apiVersion: v1\nkind: Config\n"),
        ("example-kubeadmin-password", "password", "abcde-fghij-klmno-pqrst"),
    ] {
        e.apply_as(
            "hypershift-operator",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": {key: b64(value)}}),
        );
    }
    e.k.set_status_as(
        "hypershift-operator",
        "hostedclusters",
        Some(e.ns()),
        "example",
        json!({"kubeconfig": {"name": "example-admin-kubeconfig"}, "kubeadminPassword": {"name": "example-kubeadmin-password"}}),
    );
    let out = e.dir.path().join("admin.kubeconfig");
    e.ok(&["kubeconfig", "example", "-o", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "apiVersion: v1\nkind: Config\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
    let pw = e.ok(&["kubeadmin-password", &format!("{}/example", e.ns())]);
    assert_eq!(stdout(&pw), "abcde-fghij-klmno-pqrst\n");
    // The operator's status and the Secrets it made are not hcpc's to plan.
    e.ok(&["plan", "--detailed-exitcode"]);
}

/// A Lease held by `holder`, renewed at `renewed`, lasting `seconds`.
fn lease(e: &Env, holder: &str, renewed: &str, seconds: u64) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": format!("hcpc-lock-{}", e.scope.fleet), "namespace": e.ns()},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds, "renewTime": renewed, "acquireTime": renewed},
    })
}

fn now_micro() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[test]
fn second_apply_waits_for_or_reports_the_lock() {
    let Some(e) = env("lock") else { return };
    e.fleet(1);
    e.ok(&["apply", "--auto-approve", "-q"]);
    // Someone holds a fresh lock.
    e.k.create(&lease(&e, "someone@elsewhere/42", &now_micro(), 300));
    e.fleet(2);
    let o = e.run(&["apply", "--auto-approve", "--lock-timeout", "1s"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("locked by someone@elsewhere/42"), "{}", stderr(&o));
    assert_eq!(e.replicas(), 1);
    // A lock whose `renewTime` is long past by this machine's clock (its
    // holder's clock is behind, or this one is ahead) is still live: expiry
    // is judged from when this apply first saw it, on its own clock.
    let name = format!("hcpc-lock-{}", e.scope.fleet);
    e.k.delete("leases", Some(e.ns()), &name);
    e.k.create(&lease(&e, "skewed@elsewhere/1", "2020-01-01T00:00:00.000000Z", 300));
    let o = e.run(&["apply", "--auto-approve", "--lock-timeout", "2s"]);
    assert_eq!(o.status.code(), Some(1), "a skewed clock does not steal a live lock: {}", stderr(&o));
    assert!(stderr(&o).contains("locked by skewed@elsewhere/1"), "{}", stderr(&o));
    assert_eq!(e.replicas(), 1);
    // An expired lock (crashed holder: unchanged for its duration, as this
    // apply sees it) is taken over.
    e.k.delete("leases", Some(e.ns()), &name);
    e.k.create(&lease(&e, "crashed/1", &now_micro(), 2));
    let o = e.ok(&["apply", "--auto-approve", "--lock-timeout", "30s"]);
    assert!(stderr(&o).contains("took over the fleet lock"), "{}", stderr(&o));
    assert!(stderr(&o).contains("this apply saw it unchanged for 2s"), "{}", stderr(&o));
    assert_eq!(e.replicas(), 2);
    assert!(e.get("leases", &format!("hcpc-lock-{}", e.scope.fleet)).is_none(), "lock released");
}

/// Two applies of the same fleet at once: the Lease serialises them. The
/// one that waited re-plans under the lock, sees that the other changed
/// the target, and stops without writing; the result is the fleet once.
#[test]
fn concurrent_applies_serialise_on_the_lock() {
    let Some(e) = env("concurrent") else { return };
    e.fleet(2);
    let spawn = || {
        e.command(&["apply", "--auto-approve", "--lock-timeout", "60s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let mut outputs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    outputs.sort_by_key(|o| o.status.code());
    let [first, second] = &outputs;
    assert_eq!(first.status.code(), Some(0), "{}", stderr(first));
    assert_eq!(second.status.code(), Some(1), "{}", stderr(second));
    let err = stderr(second);
    assert!(err.contains("another apply ran") && err.contains("nothing was applied"), "{err}");
    e.ok(&["plan", "--detailed-exitcode"]);
    assert_eq!(e.replicas(), 2);
    assert_eq!(e.k.list("nodepools", Some(e.ns())).len(), 1);
    assert!(e.get("leases", &format!("hcpc-lock-{}", e.scope.fleet)).is_none(), "lock released");
}

#[test]
fn transient_failures_are_retried_and_partial_failures_converge() {
    let Some((e, proxy)) = env_with_faults("transient") else { return };
    e.fleet(2);
    // Two 503s on the first NodePool apply: retried.
    proxy.faults().fail_matching("PATCH", "/nodepools/", 503, 2);
    e.ok(&["apply", "--auto-approve", "-q"]);
    // A non-transient failure part-way stops and reports; a re-run converges.
    e.fleet(4);
    proxy.faults().fail_matching("PATCH", "/nodepools/", 422, 1);
    let o = e.run(&["apply", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&format!("not applied: NodePool/{}/example-workers", e.ns())), "{}", stderr(&o));
    e.ok(&["apply", "--auto-approve", "-q"]);
    e.ok(&["plan", "--detailed-exitcode"]);
    assert_eq!(e.replicas(), 4);
}

#[test]
fn removed_settings_clusters_and_immutable_changes_show_in_the_plan() {
    let Some(e) = env("prune") else { return };
    e.write_fleet(
        "cluster a {\n    labels env=prod team=x\n    node-pool w replicas=1\n}\ncluster b {\n    prevent-destroy #false\n    node-pool w replicas=1\n}\n",
    );
    e.ok(&["apply", "--auto-approve", "-q"]);
    // Objects hcpc does not own are never touched: one made by hand, and
    // one labelled by another tool.
    e.apply_as("kubectl", json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "foreign"}}));
    e.apply_as(
        "argocd",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "other-tool",
               "labels": {"app.kubernetes.io/managed-by": "argocd"}}}),
    );

    // A label removed from the configuration is removed from the cluster.
    e.write_fleet(
        "cluster a {\n    labels env=prod\n    node-pool w replicas=1\n}\ncluster b {\n    prevent-destroy #false\n    node-pool w replicas=1\n}\n",
    );
    let plan = e.run(&["plan"]);
    assert!(stdout(&plan).contains("- metadata.labels.team = \"x\""), "{}", stdout(&plan));
    e.ok(&["apply", "--auto-approve", "-q"]);
    assert!(e.get("hostedclusters", "a").unwrap()["metadata"]["labels"].get("team").is_none());

    // A protected cluster that left the configuration is not destroyed.
    e.write_fleet("cluster b {\n    prevent-destroy #false\n    node-pool w replicas=1\n}\n");
    let plan = e.run(&["plan"]);
    assert_eq!(plan.status.code(), Some(1), "{}", stdout(&plan));
    assert!(stderr(&plan).contains("prevent-destroy"), "{}", stderr(&plan));
    assert!(e.get("hostedclusters", "a").is_some());

    // An unprotected cluster that left the configuration is destroyed, child objects first.
    e.write_fleet("cluster a {\n    labels env=prod\n    node-pool w replicas=1\n}\n");
    let out = stdout(&e.ok(&["plan"]));
    let (pool, cluster) = (format!("- NodePool/{}/b-w", e.ns()), format!("- HostedCluster/{}/b", e.ns()));
    assert!(out.contains(&pool) && out.contains(&cluster), "{out}");
    assert!(out.find(&pool).unwrap() < out.find(&cluster).unwrap(), "{out}");
    assert!(!out.contains("foreign") && !out.contains("other-tool"), "{out}");
    e.ok(&["apply", "--auto-approve", "-q"]);
    assert!(e.get("hostedclusters", "b").is_none());
    assert!(e.get("nodepools", "b-w").is_none());
    assert!(e.get("secrets", "foreign").is_some(), "unowned objects are never deleted");
    assert!(e.get("secrets", "other-tool").is_some(), "unowned objects are never deleted");
    e.ok(&["plan", "--detailed-exitcode"]);

    // A NodePool platform change rolls its nodes.
    e.write_fleet(
        "cluster a {\n    labels env=prod\n    node-pool w replicas=1 {\n        memory \"16Gi\"\n    }\n}\n",
    );
    let plan = e.ok(&["plan"]);
    assert!(stdout(&plan).contains("(rolls 1 node)"), "{}", stdout(&plan));
}

/// hcpc's plan names an immutable change with the CRD's own CEL message,
/// and that is the message the real server gives when the change is
/// applied in place.
#[test]
fn immutable_changes_carry_the_crds_messages() {
    let Some(e) = env("immutable") else { return };
    e.write_fleet("cluster a {\n    node-pool w replicas=1\n}\n");
    e.ok(&["apply", "--auto-approve", "-q"]);

    // Protected (the default): the plan fails, naming the field and rule.
    e.write_fleet("cluster a {\n    etcd size=\"16Gi\"\n    node-pool w replicas=1\n}\n");
    let plan = e.run(&["plan"]);
    assert_eq!(plan.status.code(), Some(1));
    let message = "Etcd PV storage size is immutable";
    assert!(stderr(&plan).contains(message), "{}", stderr(&plan));
    // The server says the same when someone tries it in place.
    let mut cluster = e.get("hostedclusters", "a").unwrap();
    cluster["spec"]["etcd"]["managed"]["storage"]["persistentVolume"]["size"] = json!("16Gi");
    let cluster = json!({"apiVersion": cluster["apiVersion"], "kind": "HostedCluster",
                         "metadata": {"name": "a", "namespace": e.ns()}, "spec": cluster["spec"]});
    let refused = e.k.try_apply_as("someone-else", &cluster, true).expect_err("the CRD forbids it");
    assert!(refused.to_string().contains(message), "{refused}");

    // Unprotected: the plan shows a replacement, which needs --allow-replace.
    e.write_fleet("cluster a {\n    prevent-destroy #false\n    node-pool w replicas=1\n}\n");
    e.ok(&["apply", "--auto-approve", "-q"]);
    e.write_fleet("cluster a {\n    prevent-destroy #false\n    etcd size=\"16Gi\"\n    node-pool w replicas=1\n}\n");
    let plan = stdout(&e.ok(&["plan"]));
    assert!(plan.contains("forces replacement"), "{plan}");
    let o = e.run(&["apply", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--allow-replace"), "{}", stderr(&o));
    let uid = e.get("hostedclusters", "a").unwrap()["metadata"]["uid"].clone();
    e.ok(&["apply", "--auto-approve", "--allow-replace", "-q"]);
    let replaced = e.get("hostedclusters", "a").unwrap();
    assert_ne!(replaced["metadata"]["uid"], uid, "deleted and created again");
    assert_eq!(replaced["spec"]["etcd"]["managed"]["storage"]["persistentVolume"]["size"], "16Gi");
    e.ok(&["plan", "--detailed-exitcode"]);
}

#[test]
fn no_secret_bytes_in_any_output_against_a_cluster() {
    let Some(e) = env("secrets") else { return };
    e.fleet(1);
    let secret = std::fs::read(repo().join("examples/secrets/pull-secret.json")).unwrap();
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&secret);
    let mut outputs = Vec::new();
    for f in ["text", "markdown", "json", "diff"] {
        outputs.push(e.run(&["plan", "--format", f, "--out", "p.json"]));
        outputs.push(e.run(&["plan", "--format", f, "-v"]));
    }
    outputs.push(e.run(&["apply", "--auto-approve"]));
    for f in ["text", "diff"] {
        outputs.push(e.run(&["plan", "--format", f, "-v"]));
    }
    let saved = std::fs::read_to_string(e.dir.path().join("p.json")).unwrap();
    for text in outputs.iter().flat_map(|o| [stdout(o), stderr(o)]).chain([saved]) {
        assert!(
            !text.contains(&encoded) && !text.contains("ZmFrZTpmYWtl") && !text.contains("fake:fake"),
            "secret leaked: {text}"
        );
    }
}

#[test]
fn wait_follows_conditions_and_reports_failures() {
    let Some(e) = env("wait") else { return };
    e.fleet(1);
    let o = e.run(&["apply", "--auto-approve", "--wait", "--timeout", "3s"]);
    assert_eq!(o.status.code(), Some(1), "nothing reports ready: {}", stderr(&o));
    assert!(stderr(&o).contains("not ready after 3s"), "{}", stderr(&o));

    let status = |plural: &str, name: &str, status: Value| {
        e.k.set_status_as("hypershift-operator", plural, Some(e.ns()), name, status);
    };
    status(
        "hostedclusters",
        "example",
        json!({"conditions": [condition("Available", "False", "EtcdQuorumLost", "etcd has no quorum")]}),
    );
    let o = e.run(&["apply", "--auto-approve", "--wait", "--timeout", "3s"]);
    assert!(stderr(&o).contains("EtcdQuorumLost: etcd has no quorum"), "{}", stderr(&o));

    status("hostedclusters", "example", json!({"conditions": [condition("Available", "True", "AsExpected", "")]}));
    status(
        "nodepools",
        "example-workers",
        json!({"replicas": 1, "conditions": [condition("Ready", "True", "AsExpected", "")]}),
    );
    let o = e.ok(&["apply", "--auto-approve", "--wait", "--timeout", "10s"]);
    assert!(stdout(&o).contains("are ready"), "{}", stdout(&o));
}

/// The fleet `interrupted_*` tests apply: fixed infraID so that states of
/// different scopes compare.
fn interrupted_fleet(e: &Env) {
    e.write_fleet(
        "cluster example {\n    infra-id example-fixed\n    node-pool workers replicas=2\n    node-pool gpu replicas=1\n}\n",
    );
}

/// Specs, data and labels of the objects hcpc manages (the etcd key's value
/// aside), with the scope's names replaced, so states of two scopes compare.
fn snapshot(e: &Env) -> String {
    let mut out = Vec::new();
    for plural in ["secrets", "hostedclusters", "nodepools"] {
        let mut objects = e.k.list(plural, Some(e.ns()));
        objects.sort_by_key(|o| o["metadata"]["name"].to_string());
        for mut o in objects {
            let name = o["metadata"]["name"].as_str().unwrap().to_string();
            if name.ends_with("etcd-encryption-key") {
                o["data"] = json!("(generated)");
            }
            out.push(json!({"kind": plural, "name": name, "spec": o["spec"], "data": o["data"], "labels": o["metadata"]["labels"], "annotations": o["metadata"]["annotations"]}));
        }
    }
    let applyset = e
        .get("secrets", &format!("hcpc-fleet-{}", e.scope.fleet))
        .and_then(|p| p["metadata"]["labels"]["applyset.kubernetes.io/id"].as_str().map(str::to_string))
        .unwrap_or_default();
    let text = serde_json::to_string_pretty(&out).unwrap();
    let text = if applyset.is_empty() { text } else { text.replace(&applyset, "APPLYSET") };
    text.replace(e.ns(), "SCOPE")
}

/// An apply cut off at any request converges, on re-run, to the state an
/// uninterrupted apply gives.
#[test]
fn interrupted_apply_converges_at_every_position() {
    let reference = {
        let Some(e) = env("cut-ref") else { return };
        interrupted_fleet(&e);
        e.ok(&["apply", "--auto-approve", "-q"]);
        snapshot(&e)
    };
    for n in 1..=24 {
        let (e, proxy) = env_with_faults("cut").unwrap();
        interrupted_fleet(&e);
        // Alternate a cut connection (retried) with a failure that is not.
        if n % 2 == 0 {
            proxy.faults().drop_connection_nth(n);
        } else {
            proxy.faults().fail_nth(n, 400);
        }
        let first = e.run(&["apply", "--auto-approve", "-q"]);
        proxy.faults().clear();
        let second = e.run(&["apply", "--auto-approve", "-q"]);
        assert_eq!(
            second.status.code(),
            Some(0),
            "re-run after a cut at request {n} ({:?}): {}",
            first.status.code(),
            stderr(&second)
        );
        assert_eq!(snapshot(&e), reference, "state after a cut at request {n}");
        e.ok(&["plan", "--detailed-exitcode"]);
        if e.get("leases", &format!("hcpc-lock-{}", e.scope.fleet)).is_some() {
            // Only a failed release may leave the lock, and it says so; the
            // Lease then expires by itself.
            assert!(stderr(&first).contains("could not release the fleet lock"), "lock left silently after cut {n}");
        }
    }
}

/// An apply killed (SIGKILL) part-way leaves its lock behind; a re-run on
/// the same machine sees that its holder no longer runs, takes it over and
/// converges to the state an uninterrupted apply gives.
#[test]
fn killed_apply_converges_on_rerun() {
    let reference = {
        let Some(e) = env("kill-ref") else { return };
        interrupted_fleet(&e);
        e.ok(&["apply", "--auto-approve", "-q"]);
        snapshot(&e)
    };
    // Requests of a full apply: namespace, lease, re-plan reads, parent, members.
    for after in [2, 5, 9, 13] {
        let (e, proxy) = env_with_faults("kill").unwrap();
        interrupted_fleet(&e);
        // Slow requests, so the kill lands while the apply is at `after`.
        proxy.faults().delay(Duration::from_millis(100));
        let mut child = e.command(&["apply", "--auto-approve", "-q"]).stderr(Stdio::null()).spawn().unwrap();
        let started = Instant::now();
        while proxy.requests().len() < after && started.elapsed() < Duration::from_secs(30) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        proxy.faults().clear();

        let lock = format!("hcpc-lock-{}", e.scope.fleet);
        if let Some(held) = e.get("leases", &lock) {
            // Its holder ran on this machine and no longer runs: the next
            // apply takes the lock over at once, saying from whom.
            let o = e.ok(&["apply", "--auto-approve"]);
            let holder = held["spec"]["holderIdentity"].as_str().unwrap();
            assert!(
                stderr(&o).contains(&format!("took over the fleet lock (Lease {}/{lock}) from {holder}", e.ns())),
                "{}",
                stderr(&o)
            );
            assert!(stderr(&o).contains("its process on this machine is no longer running"), "{}", stderr(&o));
        } else {
            e.ok(&["apply", "--auto-approve", "-q"]);
        }
        assert_eq!(snapshot(&e), reference, "state after a kill at request {after}");
        e.ok(&["plan", "--detailed-exitcode"]);
        assert!(e.get("leases", &lock).is_none(), "lock released");
    }
}

#[test]
fn saved_plan_is_refused_when_a_live_object_changed() {
    let Some(e) = env("stale") else { return };
    e.fleet(1);
    e.ok(&["apply", "--auto-approve", "-q"]);
    e.fleet(2);
    e.ok(&["plan", "--out", "p.json"]);
    // The NodePool changes on the cluster after the plan was made.
    e.apply_as(
        "someone-else",
        json!({"apiVersion": "hypershift.openshift.io/v1beta1", "kind": "NodePool",
               "metadata": {"name": "example-workers", "annotations": {"touched": "yes"}}}),
    );
    let o = e.run(&["apply", "p.json", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let changed = format!("NodePool/{}/example-workers changed on the target", e.ns());
    assert!(err.contains("stale") && err.contains(&changed), "{err}");
    assert_eq!(e.replicas(), 1, "nothing applied");
    // A fresh plan applies.
    e.ok(&["plan", "--out", "p.json"]);
    e.ok(&["apply", "p.json", "--auto-approve", "-q"]);
    assert_eq!(e.replicas(), 2);
}

/// Status written by the operator does not make a saved plan stale.
#[test]
fn status_updates_do_not_make_a_saved_plan_stale() {
    let Some(e) = env("status") else { return };
    e.fleet(1);
    e.ok(&["apply", "--auto-approve", "-q"]);
    e.fleet(2);
    let plan = e.ok(&["plan", "--out", "p.json"]);
    assert!(
        stdout(&plan).contains(&format!("kube:hcpc-test ({})", e.k.url())),
        "the target names context and server: {}",
        stdout(&plan)
    );
    e.k.set_status_as("hypershift-operator", "nodepools", Some(e.ns()), "example-workers", json!({"replicas": 1}));
    e.ok(&["apply", "p.json", "--auto-approve", "-q"]);
    assert_eq!(e.replicas(), 2);
}

/// What the management cluster offers feeds the resolution rules; a
/// declared `infra` fact that contradicts it is a warning. Cluster-scoped
/// objects, so on a server of its own.
#[test]
fn discovered_inventory_is_checked_and_merged() {
    let Some(k) = Envtest::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = k.write_kubeconfig(dir.path());
    let e = Env { k: &k, scope: k.scope("inventory"), dir, kubeconfig };
    let class = |name: &str, default: bool| {
        let mut sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name}, "provisioner": "x"});
        if default {
            sc["metadata"]["annotations"] = json!({"storageclass.kubernetes.io/is-default-class": "true"});
        }
        k.apply_as("test", &sc);
    };
    class("ceph-rbd", true);
    class("lvm", false);
    for (name, mode, access) in [("ceph-rbd", "Block", "ReadWriteMany"), ("lvm", "Filesystem", "ReadWriteOnce")] {
        k.apply_as(
            "cdi",
            &json!({"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "StorageProfile", "metadata": {"name": name},
                    "status": {"claimPropertySets": [{"accessModes": [access], "volumeMode": mode}]}}),
        );
    }
    for n in 0..2 {
        let node = format!("node{n}");
        k.apply_as("test", &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}));
        k.set_status_as("kubelet", "nodes", None, &node, json!({"allocatable": {"cpu": "64", "nvidia.com/A100": "2"}}));
    }
    // lvm is RWO on the cluster: mapping it is an error; 5 GPUs exceed the 4 nodes offer.
    e.write_fleet(
        "infra {\n    storage-class lvm access=RWX\n}\ncluster a {\n    storage {\n        class lvm hosted=local\n    }\n    node-pool gpu replicas=5 {\n        host-device \"nvidia.com/A100\"\n    }\n}\n",
    );
    let o = e.run(&["plan"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o).replace("\n  │ ", " ");
    assert!(
        err.contains("hcpc::infra::mismatch")
            && err.contains("declared RWX in `infra`, but StorageProfile `lvm` offers RWO"),
        "{err}"
    );
    assert!(err.contains("hcpc::storage::class_not_rwx"), "{err}");
    assert!(
        err.contains("hcpc::device::over_capacity")
            && err.contains("needs 5 but the allocatable of Nodes `node0`, `node1` has 4"),
        "{err}"
    );

    e.write_fleet(
        "cluster a {\n    storage {\n        class ceph-rbd hosted=ceph\n    }\n    node-pool gpu replicas=2 {\n        host-device \"nvidia.com/A100\" count=2\n        root-volume storage-class=ceph-rbd\n    }\n}\n",
    );
    e.ok(&["plan"]);
}

/// Node shapes, clone strategies and KubeVirt's CPU allocation ratio come
/// from the cluster: a VM that no node can hold, a cache on a class that
/// clones by copying, and declared nodes that contradict the cluster are
/// reported; a fleet that fits plans with a capacity table of the
/// discovered nodes. Cluster-scoped objects, so on a server of its own.
#[test]
fn discovered_nodes_decide_fit_and_the_capacity_table() {
    let Some(k) = Envtest::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = k.write_kubeconfig(dir.path());
    let e = Env { k: &k, scope: k.scope("capacity"), dir, kubeconfig };
    // Nodes as the kubelet reports them, through the status subresource.
    let node = |name: &str, spec: Value, allocatable: Value| {
        k.apply_as("test", &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": spec}));
        let mut all = json!({"pods": "250", "devices.kubevirt.io/kvm": "1k"});
        all.as_object_mut().unwrap().extend(allocatable.as_object().unwrap().clone());
        k.set_status_as("kubelet", "nodes", None, name, json!({"allocatable": all}));
    };
    for n in 0..2 {
        node(&format!("gpu-{n}"), json!({}), json!({"cpu": "63500m", "memory": "515000000Ki", "nvidia.com/A100": "1"}));
    }
    for n in 0..3 {
        node(&format!("worker-{n}"), json!({}), json!({"cpu": "31500m", "memory": "257000000Ki"}));
    }
    // Neither a cordoned node nor a control-plane node runs VMs.
    node("spare", json!({"unschedulable": true}), json!({"cpu": "128", "memory": "1024Gi"}));
    node(
        "master-0",
        json!({"taints": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]}),
        json!({"cpu": "16", "memory": "64Gi"}),
    );
    k.apply_as("test", &json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "nfs"}, "provisioner": "nfs"}));
    k.apply_as(
        "cdi",
        &json!({"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "StorageProfile", "metadata": {"name": "nfs"},
                "status": {"cloneStrategy": "copy", "claimPropertySets": [{"accessModes": ["ReadWriteMany"], "volumeMode": "Filesystem"}]}}),
    );
    k.ensure_namespace("openshift-cnv");
    k.apply_as(
        "hco",
        &json!({"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt",
                "metadata": {"name": "kubevirt-kubevirt-hyperconverged", "namespace": "openshift-cnv"},
                "spec": {"configuration": {"developerConfiguration": {"cpuAllocationRatio": 4},
                         "permittedHostDevices": {"pciHostDevices": [{"pciVendorSelector": "10DE:20B5", "resourceName": "nvidia.com/A100"}]}}}}),
    );

    e.write_fleet(
        "infra {\n    nodes worker count=5 cores=32 memory=\"256Gi\"\n}\ncluster a {\n    node-pool gpu replicas=1 {\n        host-device \"nvidia.com/A100\" count=2\n    }\n    node-pool cached replicas=1 {\n        root-volume storage-class=nfs cache=pvc\n    }\n}\n",
    );
    let o = e.run(&["plan"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    // Messages without miette's line wrapping.
    let err = stderr(&o).replace("\n  │ ", " ");
    assert!(
        err.contains("hcpc::infra::mismatch") && err.contains("nodes `worker` (5 × 32 vCPU, 256Gi) are declared"),
        "{err}"
    );
    assert!(err.contains("2 × 63.5 vCPU, 491.1Gi, 1 nvidia.com/A100; 3 × 31.5 vCPU, 245.1Gi"), "{err}");
    assert!(
        err.contains("hcpc::capacity::pool_does_not_fit")
            && err.contains("no node has 2 nvidia.com/A100 (the largest node has 1 nvidia.com/A100)"),
        "{err}"
    );
    assert!(err.contains("hcpc::storage::cache_cannot_clone") && err.contains("clone strategy `copy`"), "{err}");

    // 4 vCPU at a CPU allocation ratio of 4 request one CPU each.
    e.write_fleet("cluster a {\n    node-pool gpu replicas=2 {\n        cores 4\n        host-device \"nvidia.com/A100\"\n    }\n}\n");
    let plan: Value = serde_json::from_str(&stdout(&e.ok(&["plan", "--format", "json"]))).unwrap();
    let infra = &plan["capacity"]["infrastructures"][0];
    assert_eq!(infra["name"], "the management cluster");
    let row = |key: &str| infra["rows"].as_array().unwrap().iter().find(|r| r["key"] == key).cloned().unwrap();
    assert_eq!(row("cpu")["capacity"], 2 * 63_500 + 3 * 31_500, "cordoned and control-plane nodes are left out");
    assert_eq!(row("cpu")["after"], 2 * 1000 + 5000, "two VMs at one CPU each, and a control plane");
    assert_eq!(row("cpu")["before"], 0);
    assert_eq!(row("device/nvidia.com/A100")["capacity"], 2);
    assert_eq!(row("device/nvidia.com/A100")["percent"], 100);
    assert!(infra["notes"][0].as_str().unwrap().contains("5 schedulable nodes"), "{infra:#}");

    // Applied, the table's "before" is what runs: counted from the live objects.
    e.ok(&["apply", "--auto-approve", "-q"]);
    let text = stdout(&e.ok(&["plan"]));
    assert!(text.contains("Capacity of the management cluster:"), "{text}");
    assert!(text.contains("vCPU requested") && text.contains("221.5") && text.contains("7 → 7"), "{text}");
    assert!(text.contains("other workloads on them are not counted"), "{text}");
}
