//! Upgrades against a real kube-apiserver with the HyperShift operator
//! stand-in (`support::operator`) writing the status HyperShift would:
//! control plane first, waves and `max-parallel`, a wave waiting for the
//! nodes of the one before to be ready, a failure halting the rollout,
//! resuming after a killed apply and after `--until-wave`, and a rollout
//! over two management clusters.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::envtest::{DEFAULT_CONTEXT, Envtest, Scope};
use crate::support::operator::{Delays, Failure, Operator};
use crate::support::{hcpc, repo, stderr, stdout};

/// All an apply or plan printed: the plan, the rollout's standing and the
/// apply's result are on standard output, diagnostics and warnings on
/// standard error.
fn output(o: &Output) -> String {
    stdout(o) + &stderr(o)
}

const OLD: &str = "quay.io/openshift-release-dev/ocp-release:4.19.3-x86_64";

struct Env {
    k: &'static Envtest,
    scope: Scope,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    operator: Operator,
}

fn env(what: &str, delays: Delays) -> Option<Env> {
    let k = Envtest::shared()?;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = k.write_kubeconfig(dir.path());
    let scope = k.scope(what);
    k.ensure_namespace(&scope.namespace);
    let operator = Operator::start(&k.kubeconfig_yaml(DEFAULT_CONTEXT), &scope.namespace, delays);
    Some(Env { k, scope, dir, kubeconfig, operator })
}

impl Env {
    fn ns(&self) -> &str {
        &self.scope.namespace
    }

    /// Writes `fleet.kdl`: this scope's fleet and namespace, `release`, then `body`.
    fn write_fleet(&self, release: &str, body: &str) {
        let secret = crate::support::pull_secret_in(self.dir.path());
        std::fs::write(
            self.dir.path().join("fleet.kdl"),
            format!(
                "target kube\nfleet {fleet}\ndefaults {{\n    namespace {ns}\n    release \"{release}\"\n    pull-secret file=\"{secret}\"\n}}\n{body}",
                fleet = self.scope.fleet,
                ns = self.scope.namespace,
                secret = secret.display(),
            ),
        )
        .unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = hcpc();
        c.current_dir(self.dir.path()).env("KUBECONFIG", &self.kubeconfig).args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert_eq!(o.status.code(), Some(0), "hcpc {args:?}:\n{}{}", stdout(&o), stderr(&o));
        o
    }

    fn get(&self, plural: &str, name: &str) -> Value {
        self.k.get(plural, Some(self.ns()), name).unwrap_or_else(|| panic!("{plural}/{name} missing"))
    }

    fn release(&self, plural: &str, name: &str) -> String {
        self.get(plural, name)["spec"]["release"]["image"].as_str().unwrap_or_default().to_string()
    }

    /// Waits until `done` holds, or fails the test after `limit`.
    fn until(&self, what: &str, limit: Duration, done: impl Fn(&Env) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(start.elapsed() < limit, "{what} not within {}s", limit.as_secs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the stand-in reports cluster `name` on `image`, pools included.
    fn settled(&self, cluster: &str, pools: &[&str], image: &str) -> bool {
        let hc = self.get("hostedclusters", cluster);
        let head = &hc["status"]["version"]["history"][0];
        let version = crate::support::operator::version_of(image);
        head["image"] == image
            && head["state"] == "Completed"
            && pools.iter().all(|p| self.get("nodepools", &format!("{cluster}-{p}"))["status"]["version"] == version)
    }
}

#[test]
fn stand_in_installs_control_plane_then_pools() {
    let Some(e) = env("sim-install", Delays::default()) else { return };
    e.write_fleet(OLD, "cluster one {\n    node-pool workers replicas=2\n}\n");
    e.ok(&["apply", "--auto-approve"]);
    e.until("first install", Duration::from_secs(30), |e| e.settled("one", &["workers"], OLD));
    let hc = e.get("hostedclusters", "one");
    let head = &hc["status"]["version"]["history"][0];
    for field in ["image", "state", "startedTime", "completionTime", "verified"] {
        assert!(head.get(field).is_some_and(|v| !v.is_null()), "history item lacks {field}: {head:#}");
    }
    let np = e.get("nodepools", "one-workers");
    assert_eq!(np["status"]["replicas"], 2, "{np:#}");
    let steps: Vec<String> = e.operator.completed().into_iter().map(|(what, _)| what).collect();
    assert_eq!(steps, ["HostedCluster/one", "NodePool/one-workers"]);
    assert!(e.operator.violations().is_empty());
}

#[test]
fn stand_in_fails_a_chosen_cluster() {
    let Some(e) = env("sim-fail", Delays::default()) else { return };
    e.operator.fail("two", Failure::Degraded { reason: "EtcdUnhealthy".into(), message: "etcd lost quorum".into() });
    e.write_fleet(OLD, "cluster two {\n    node-pool workers replicas=1\n}\n");
    e.ok(&["apply", "--auto-approve"]);
    e.until("Degraded", Duration::from_secs(30), |e| {
        let hc = e.get("hostedclusters", "two");
        hc["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter().any(|c| c["type"] == "Degraded" && c["status"] == "True" && c["reason"] == "EtcdUnhealthy")
        })
    });
    assert_eq!(e.get("hostedclusters", "two")["status"]["version"]["history"][0]["state"], "Partial");
    e.operator.heal("two");
    e.until("healed", Duration::from_secs(30), |e| e.settled("two", &["workers"], OLD));
    assert_eq!(e.release("nodepools", "two-workers"), OLD);
}

const NEW: &str = "quay.io/openshift-release-dev/ocp-release:4.20.1-x86_64";

/// Clusters `names` with one pool `workers` each, `labels` per cluster.
fn clusters(names: &[(&str, &str)]) -> String {
    names
        .iter()
        .map(|(n, env)| format!("cluster {n} {{\n    labels env={env}\n    node-pool workers replicas=1\n}}\n"))
        .collect()
}

impl Env {
    /// Applies `body` on OLD and waits for the stand-in to report it installed.
    fn installed(&self, body: &str, names: &[&str]) {
        self.write_fleet(OLD, body);
        self.ok(&["apply", "--auto-approve"]);
        self.until("first install", Duration::from_secs(60), |e| names.iter().all(|n| e.settled(n, &["workers"], OLD)));
    }

    /// Runs `apply` as a scheduled job would, until every cluster of
    /// `names` is settled on `image`; after each run, `check` sees which
    /// HostedClusters are on `image` and which are settled there.
    fn converge(&self, names: &[&str], image: &str, check: impl Fn(&[&str], &[&str])) -> Vec<String> {
        let start = Instant::now();
        let mut lines = Vec::new();
        loop {
            let o = self.ok(&["apply", "--auto-approve"]);
            lines.extend(output(&o).lines().filter(|l| l.starts_with("rollout:")).map(str::to_string));
            let written: Vec<&str> =
                names.iter().copied().filter(|n| self.release("hostedclusters", n) == image).collect();
            let settled: Vec<&str> = names.iter().copied().filter(|n| self.settled(n, &["workers"], image)).collect();
            check(&written, &settled);
            if settled.len() == names.len() {
                return lines;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "no convergence; last runs: {lines:#?}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

#[test]
fn control_plane_first_without_a_rollout_block() {
    let delays = Delays { control_plane: Duration::from_secs(2), node_pool: Duration::from_millis(500) };
    let Some(e) = env("cp-first", delays) else { return };
    let body = clusters(&[("a", "prod"), ("b", "prod")]);
    e.installed(&body, &["a", "b"]);

    e.write_fleet(NEW, &body);
    let first = e.ok(&["apply", "--auto-approve"]);
    let err = output(&first);
    // Both control planes now, no pool yet: they wait for their control plane.
    assert_eq!(e.release("hostedclusters", "a"), NEW, "{err}");
    assert_eq!(e.release("hostedclusters", "b"), NEW, "{err}");
    assert_eq!(e.release("nodepools", "a-workers"), OLD, "{err}");
    assert_eq!(e.release("nodepools", "b-workers"), OLD, "{err}");
    assert!(err.contains("rollout: wave all: 2 starting (a, b)"), "{err}");
    // After the write, the standing says they are under way.
    assert_eq!(
        err.lines().rfind(|l| l.starts_with("rollout:")),
        Some("rollout: wave all: 2 of 2 clusters in progress (a: control plane upgrading, b: control plane upgrading)"),
        "{err}"
    );

    // Run again at once: the control planes are still upgrading; nothing more is written.
    let again = e.ok(&["apply", "--auto-approve"]);
    assert_eq!(e.release("nodepools", "a-workers"), OLD, "{}", output(&again));
    assert!(output(&again).contains("control plane upgrading"), "{}", output(&again));

    e.converge(&["a", "b"], NEW, |_, _| {});
    assert!(
        e.operator.violations().is_empty(),
        "pools went ahead of their control plane: {:?}",
        e.operator.violations()
    );
    let order: Vec<String> =
        e.operator.completed().into_iter().filter(|(_, i)| i == NEW).map(|(what, _)| what).collect();
    for c in ["a", "b"] {
        let cp = order.iter().position(|w| *w == format!("HostedCluster/{c}")).unwrap();
        let np = order.iter().position(|w| *w == format!("NodePool/{c}-workers")).unwrap();
        assert!(cp < np, "{order:?}");
    }
}

#[test]
fn waves_go_in_order_within_max_parallel() {
    let delays = Delays { control_plane: Duration::from_millis(700), node_pool: Duration::from_millis(700) };
    let Some(e) = env("waves", delays) else { return };
    let names = ["c1", "c2", "p1", "p2", "p3"];
    let body = clusters(&[("c1", "canary"), ("c2", "canary"), ("p1", "prod"), ("p2", "prod"), ("p3", "prod")]);
    e.installed(&body, &names);

    let rollout =
        "rollout {\n    wave canary selector=\"env=canary\" max-parallel=1\n    wave prod max-parallel=\"50%\"\n}\n";
    e.write_fleet(NEW, &format!("{body}{rollout}"));
    let lines = e.converge(&names, NEW, |written, settled| {
        let busy = |prefix: &str| written.iter().filter(|n| n.starts_with(prefix) && !settled.contains(n)).count();
        assert!(busy("c") <= 1, "canary max-parallel=1: {written:?} written, {settled:?} settled");
        assert!(busy("p") <= 2, "prod 50% of 3 is 2: {written:?} written, {settled:?} settled");
        if written.iter().any(|n| n.starts_with('p')) {
            assert!(settled.contains(&"c1") && settled.contains(&"c2"), "prod before canary was done: {written:?}");
        }
    });
    assert!(lines.iter().any(|l| l.contains("wave canary: 1 starting (c1)")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("wave prod: 3 waiting")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("wave prod: 2 starting (p1, p2)")), "{lines:#?}");
    assert!(e.operator.violations().is_empty(), "{:?}", e.operator.violations());
}

impl Env {
    /// The `Ready` condition's status and `status.replicas` of a NodePool.
    fn pool_ready(&self, name: &str) -> (Value, Value) {
        let np = self.get("nodepools", name);
        let ready = np["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            .map(|c| c["status"].clone())
            .unwrap_or_default();
        (ready, np["status"]["replicas"].clone())
    }
}

#[test]
fn a_wave_waits_until_the_nodes_of_the_one_before_are_ready() {
    let delays = Delays { control_plane: Duration::from_millis(500), node_pool: Duration::from_millis(500) };
    let Some(e) = env("ready-gate", delays) else { return };
    let body = clusters(&[("c1", "canary"), ("p1", "prod")]);
    e.installed(&body, &["c1", "p1"]);
    // From now on c1's node does not become ready after its roll-out.
    e.operator.hold_ready("c1");
    e.write_fleet(NEW, &format!("{body}{WAVES}"));
    let start = Instant::now();
    while !e.settled("c1", &["workers"], NEW) {
        e.ok(&["apply", "--auto-approve"]);
        assert!(start.elapsed() < Duration::from_secs(60), "c1 not upgraded");
        std::thread::sleep(Duration::from_millis(300));
    }
    e.until("c1's pool reports its node not ready", Duration::from_secs(10), |e| {
        e.pool_ready("c1-workers") == (Value::from("False"), Value::from(0))
    });

    // Its pool is on the new version, but not ready as desired: prod waits.
    let o = e.ok(&["apply", "--auto-approve"]);
    let err = output(&o);
    assert!(
        err.contains(
            "rollout: wave canary: 1 of 1 clusters in progress (c1: 0 of 1 nodes ready in pool workers); wave prod: 1 waiting"
        ),
        "{err}"
    );
    assert_eq!(e.release("hostedclusters", "p1"), OLD, "{err}");

    // apply --wait follows it: prod starts once c1's node is ready.
    let child = e
        .command(&["apply", "--auto-approve", "--wait", "--timeout", "2m"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(e.release("hostedclusters", "p1"), OLD, "prod started before c1's nodes were ready");
    e.operator.release_ready("c1");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", output(&o));
    assert!(e.settled("p1", &["workers"], NEW), "{}", output(&o));
    assert_eq!(e.pool_ready("p1-workers"), (Value::from("True"), Value::from(1)));
    assert!(e.operator.violations().is_empty(), "{:?}", e.operator.violations());
}

/// An apply killed (SIGKILL) leaves a lock only if it was writing; that
/// lock's time is made to pass, as it would.
fn expire_lock(e: &Env) {
    let lock = format!("hcpc-lock-{}", e.scope.fleet);
    if let Some(held) = e.k.get("leases", Some(e.ns()), &lock) {
        let mut spec = held["spec"].clone();
        spec["renewTime"] = serde_json::json!("2020-01-01T00:00:00.000000Z");
        e.k.apply_as(
            "test",
            &serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": lock, "namespace": e.ns()}, "spec": spec}),
        );
    }
}

const WAVES: &str =
    "rollout {\n    wave canary selector=\"env=canary\" max-parallel=1\n    wave prod max-parallel=2\n}\n";

#[test]
fn wait_runs_the_rollout_and_until_wave_stops_after_canary() {
    let delays = Delays { control_plane: Duration::from_millis(600), node_pool: Duration::from_millis(600) };
    let Some(e) = env("until", delays) else { return };
    let names = ["c1", "p1", "p2"];
    let body = clusters(&[("c1", "canary"), ("p1", "prod"), ("p2", "prod")]);
    e.installed(&body, &names);
    e.write_fleet(NEW, &format!("{body}{WAVES}"));

    let gate = e.ok(&["apply", "--auto-approve", "--wait", "--until-wave", "canary", "--timeout", "2m"]);
    let err = output(&gate);
    assert!(e.settled("c1", &["workers"], NEW), "{err}");
    assert_eq!(e.release("hostedclusters", "p1"), OLD, "{err}");
    assert_eq!(e.release("hostedclusters", "p2"), OLD, "{err}");
    assert!(err.contains("stopped after wave canary"), "{err}");

    let rest = e.ok(&["apply", "--auto-approve", "--wait", "--timeout", "2m"]);
    for n in names {
        assert!(e.settled(n, &["workers"], NEW), "{n}: {}", output(&rest));
    }
    assert!(e.operator.violations().is_empty(), "{:?}", e.operator.violations());

    let wrong = e.run(&["apply", "--auto-approve", "--until-wave", "canary"]);
    assert_eq!(wrong.status.code(), Some(0), "no governed change left: nothing to check the wave against");
}

#[test]
fn a_failed_cluster_halts_the_rollout_until_fixed() {
    let delays = Delays { control_plane: Duration::from_millis(600), node_pool: Duration::from_millis(600) };
    let Some(e) = env("halt", delays) else { return };
    let names = ["a", "b", "c"];
    let body = clusters(&[("a", "prod"), ("b", "prod"), ("c", "prod")]);
    e.installed(&body, &names);
    e.operator.fail(
        "a",
        Failure::Partial {
            reason: "UpdatePayloadFailed".into(),
            message: "could not apply the release payload".into(),
        },
    );
    e.write_fleet(NEW, &format!("{body}rollout {{\n    wave all max-parallel=1\n}}\n"));
    let o = e.run(&["apply", "--auto-approve", "--wait", "--timeout", "2m"]);
    let err = output(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "cluster a failed: ClusterVersionFailing: UpdatePayloadFailed: could not apply the release payload"
        ),
        "{err}"
    );
    assert_eq!(e.release("hostedclusters", "b"), OLD, "no further cluster starts: {err}");
    assert_eq!(e.release("nodepools", "a-workers"), OLD, "the failed cluster's pools wait: {err}");

    // A run without --wait says the same and exits 1.
    let again = e.run(&["apply", "--auto-approve"]);
    assert_eq!(again.status.code(), Some(1), "{}", output(&again));
    assert!(output(&again).contains("hcpc::rollout::halted"), "{}", output(&again));

    // The cause is fixed: the operator completes the update and clears the condition.
    e.operator.heal("a");
    e.until("a's control plane completed", Duration::from_secs(30), |e| {
        e.get("hostedclusters", "a")["status"]["version"]["history"][0]["state"] == "Completed"
    });
    e.ok(&["apply", "--auto-approve", "--wait", "--timeout", "2m"]);
    for n in names {
        assert!(e.settled(n, &["workers"], NEW), "{n}");
    }
}

/// A cluster's NodePools are one step: the management cluster judges them
/// all (server-side dry run) before any is written, so a site policy that
/// refuses one of them leaves that cluster's pools all on the old release,
/// not half of them moved. A control plane, one write, goes as it is.
#[test]
fn a_refused_pool_step_writes_none_of_the_clusters_pools() {
    let delays = Delays { control_plane: Duration::from_millis(500), node_pool: Duration::from_millis(500) };
    let Some(e) = env("refused-step", delays) else { return };
    let body = "cluster c1 {\n    labels env=canary\n    node-pool workers replicas=1\n}\n\
                cluster p1 {\n    labels env=prod\n    node-pool a replicas=1\n    node-pool b replicas=1\n}\n";
    e.write_fleet(OLD, body);
    e.ok(&["apply", "--auto-approve"]);
    e.until("first install", Duration::from_secs(60), |e| {
        e.settled("c1", &["workers"], OLD) && e.settled("p1", &["a", "b"], OLD)
    });
    let policy = format!("{}-no-new-b", e.ns());
    e.k.create(&serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": policy},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["hypershift.openshift.io"], "apiVersions": ["*"],
                "operations": ["UPDATE"], "resources": ["nodepools"]}]},
            "validations": [{
                "expression": format!("object.metadata.name != 'p1-b' || object.spec.release.image != '{NEW}'"),
                "message": "site policy: pool b stays on 4.19"}],
        },
    }));
    e.k.create(&serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy},
        "spec": {
            "policyName": policy, "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "In", "values": [e.ns()]}]}},
        },
    }));

    e.write_fleet(NEW, &format!("{body}{WAVES}"));
    let o = e.run(&["apply", "--auto-approve", "--wait", "--timeout", "2m"]);
    let err = output(&o);
    e.k.delete("validatingadmissionpolicybindings", None, &policy);
    e.k.delete("validatingadmissionpolicies", None, &policy);
    assert_eq!(o.status.code(), Some(1), "{err}");
    // The diagnostic wraps to the terminal's width.
    let words: Vec<&str> = err.split_whitespace().filter(|w| *w != "│").collect();
    assert!(err.contains("hcpc::plan::rejected"), "{err}");
    assert!(words.join(" ").contains("site policy: pool b stays on 4.19"), "{err}");
    assert!(err.contains("the rollout stopped: the management cluster refused a step"), "{err}");
    assert!(e.settled("c1", &["workers"], NEW), "the canary went: {err}");
    assert_eq!(e.release("hostedclusters", "p1"), NEW, "p1's control plane, one write, went: {err}");
    assert_eq!(e.release("nodepools", "p1-a"), OLD, "p1-a was written without p1-b: {err}");
    assert_eq!(e.release("nodepools", "p1-b"), OLD, "{err}");

    // The policy is lifted (the server takes a moment to stop enforcing
    // it): a re-run goes on from there.
    e.until("the policy lifted", Duration::from_secs(30), |e| {
        !output(&e.run(&["plan"])).contains("hcpc::plan::rejected")
    });
    e.ok(&["apply", "--auto-approve", "--wait", "--timeout", "2m"]);
    assert!(e.settled("p1", &["a", "b"], NEW));
    assert!(e.operator.violations().is_empty(), "{:?}", e.operator.violations());
}

#[test]
fn a_killed_apply_resumes_from_the_live_state() {
    let delays = Delays { control_plane: Duration::from_secs(1), node_pool: Duration::from_secs(1) };
    let Some(e) = env("kill9", delays) else { return };
    let names = ["a", "b", "c"];
    let body = clusters(&[("a", "prod"), ("b", "prod"), ("c", "prod")]);
    e.installed(&body, &names);
    e.write_fleet(NEW, &format!("{body}rollout {{\n    wave all max-parallel=1\n}}\n"));
    let mut child = e
        .command(&["apply", "--auto-approve", "--wait", "--timeout", "2m"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed while the first cluster is upgrading.
    e.until("a started", Duration::from_secs(60), |e| e.release("hostedclusters", "a") == NEW);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(e.release("hostedclusters", "b"), OLD);
    expire_lock(&e);
    // The re-run picks up a where it is: b does not start before a is done.
    e.converge(&names, NEW, |written, settled| {
        let busy = written.iter().filter(|n| !settled.contains(n)).count();
        assert!(busy <= 1, "max-parallel=1 across the kill: {written:?} written, {settled:?} settled");
    });
    assert!(e.operator.violations().is_empty(), "{:?}", e.operator.violations());
}

/// `apply --wait` keeps the fleet's lock for the whole rollout: another
/// apply is refused meanwhile, and an edit to the configuration made during
/// the rollout is not written by it (its passes make what the reviewed plan
/// showed). A signal stops it — here SIGHUP, the terminal of an ssh session
/// that dropped; SIGINT and SIGTERM alike: exit 129, no further cluster
/// starts, the lock is released at once, and a re-run goes on with the edit.
#[test]
fn a_followed_rollout_holds_the_lock_and_stops_on_a_hangup() {
    let delays = Delays { control_plane: Duration::from_secs(1), node_pool: Duration::from_secs(2) };
    let Some(e) = env("sigint-rollout", delays) else { return };
    let names = ["a", "b", "c"];
    let body = clusters(&[("a", "prod"), ("b", "prod"), ("c", "prod")]);
    e.installed(&body, &names);
    let waves = "rollout {\n    wave all max-parallel=1\n}\n";
    e.write_fleet(NEW, &format!("{body}{waves}"));
    let child = e
        .command(&["apply", "--auto-approve", "--wait", "--timeout", "2m"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    e.until("a started", Duration::from_secs(60), |e| e.release("hostedclusters", "a") == NEW);

    // Edited meanwhile: a new cluster d (made at once by an apply), and
    // b's pool (its change is held with its release change).
    let edited = body.replace(
        "cluster b {\n    labels env=prod\n    node-pool workers replicas=1",
        "cluster b {\n    labels env=prod\n    node-pool workers replicas=2",
    ) + &clusters(&[("d", "prod")]);
    e.write_fleet(NEW, &format!("{edited}{waves}"));
    let other = e.run(&["apply", "--auto-approve", "--lock-timeout", "1s"]);
    assert_eq!(other.status.code(), Some(1), "{}", output(&other));
    assert!(output(&other).contains("hcpc::apply::locked"), "{}", output(&other));
    assert!(e.k.get("hostedclusters", Some(e.ns()), "d").is_none());
    e.until("b's pool written", Duration::from_secs(60), |e| e.release("nodepools", "b-workers") == NEW);
    assert_eq!(e.get("nodepools", "b-workers")["spec"]["replicas"], 1, "the edit is not applied unseen");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    let err = output(&o);
    assert_eq!(o.status.code(), Some(129), "{err}");
    assert!(err.contains("interrupted by SIGHUP: no further step of the rollout was started"), "{err}");
    assert_eq!(e.release("hostedclusters", "c"), OLD, "{err}");
    let lock = format!("hcpc-lock-{}", e.scope.fleet);
    assert!(e.k.get("leases", Some(e.ns()), &lock).is_none(), "the lock was released: {err}");

    assert!(e.k.get("hostedclusters", Some(e.ns()), "d").is_none(), "{err}");
    e.ok(&["apply", "--auto-approve", "--wait", "--timeout", "2m"]);
    for n in ["a", "b", "c", "d"] {
        assert!(e.settled(n, &["workers"], NEW), "{n}");
    }
    assert_eq!(e.get("nodepools", "b-workers")["spec"]["replicas"], 2);
    assert!(e.operator.violations().is_empty(), "{:?}", e.operator.violations());
}

#[test]
fn the_plan_shows_the_rollout_in_every_format() {
    let Some(e) = env("plan-view", Delays::default()) else { return };
    let names = ["c1", "p1", "p2"];
    let body = clusters(&[("c1", "canary"), ("p1", "prod"), ("p2", "prod")]);
    e.installed(&body, &names);
    // From here on a control plane takes long enough to be seen upgrading.
    e.operator.set_delays(Delays { control_plane: Duration::from_secs(60), ..Delays::default() });
    e.write_fleet(NEW, &format!("{body}{WAVES}"));
    let text = stdout(&e.ok(&["plan"]));
    for expected in [
        "Rollout (control plane first, then its NodePools; wave by wave):",
        "  1. wave canary (max-parallel 1, 1 cluster)",
        "       starts now c1: control plane → 4.20.1-x86_64, then 1 NodePool rolling 1 node",
        "  2. wave prod (max-parallel 2, 2 clusters)",
        "       waits p1, p2: control plane → 4.20.1-x86_64, then 1 NodePool rolling 1 node",
        "rollout: wave canary: 1 starting (c1); wave prod: 2 waiting",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    let json: Value = serde_json::from_str(&stdout(&e.ok(&["plan", "--format", "json"]))).unwrap();
    let waves = &json["rollout"]["waves"];
    assert_eq!(waves[0]["name"], "canary");
    assert_eq!(waves[0]["max_parallel"], 1, "a count is a number");
    assert_eq!(waves[0]["clusters"][0]["cluster"], "c1");
    assert_eq!(waves[0]["clusters"][0]["state"], "starting");
    assert_eq!(waves[0]["clusters"][0]["control_plane"], NEW);
    assert_eq!(waves[1]["clusters"][1]["state"], "waiting");
    let md = stdout(&e.ok(&["plan", "--format", "markdown"]));
    assert!(md.contains("### Rollout") && md.contains("   - waits `p1, p2`: control plane"), "{md}");
    assert!(md.contains("\nrollout: wave canary: 1 starting (c1); wave prod: 2 waiting\n"), "{md}");

    // A wave that does not exist is said before the plan, and nothing is written.
    let bogus = e.run(&["apply", "--auto-approve", "--until-wave", "bogus"]);
    let err = output(&bogus);
    assert_eq!(bogus.status.code(), Some(1), "{err}");
    assert!(err.contains("--until-wave bogus: there is no such wave; the waves are canary, prod"), "{err}");
    assert!(!err.contains("Plan:") && !err.contains("Rollout ("), "the plan was shown first: {err}");
    assert_eq!(e.release("hostedclusters", "c1"), OLD);

    // Started: the plan shows where it stands.
    let applied = e.ok(&["apply", "--auto-approve"]);
    assert_eq!(e.release("hostedclusters", "c1"), NEW, "{}", output(&applied));
    // Nothing more may go now: apply says so, and the standing once.
    e.until("c1 seen upgrading", Duration::from_secs(10), |e| {
        output(&e.ok(&["apply", "--auto-approve"])).contains("Nothing was applied")
    });
    let idle = output(&e.ok(&["apply", "--auto-approve"]));
    assert!(idle.contains("Nothing was applied: 5 changes wait for the rollout."), "{idle}");
    assert_eq!(idle.matches("rollout: wave canary").count(), 1, "{idle}");
    // `plan` reads the API server's watch cache, which may lag a moment behind the write.
    let expected = "       control plane upgrading c1: 1 NodePool rolling 1 node";
    e.until("the plan shows c1 upgrading", Duration::from_secs(10), |e| stdout(&e.ok(&["plan"])).contains(expected));
    assert_eq!(e.release("hostedclusters", "p1"), OLD);
}

#[test]
fn one_rollout_spans_two_management_clusters() {
    let (Some(east), Some(west)) = (Envtest::shared(), Envtest::start()) else { return };
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, yaml: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, yaml).unwrap();
        p
    };
    let (e_cfg, w_cfg) = (
        write("east.kubeconfig", east.kubeconfig_yaml("east")),
        write("west.kubeconfig", west.kubeconfig_yaml("west")),
    );
    let kubeconfig = format!("{}:{}", e_cfg.display(), w_cfg.display());
    let scope = east.scope("two-rollout");
    let ns = scope.namespace.clone();
    east.ensure_namespace(&ns);
    west.ensure_namespace(&ns);
    let delays = Delays { control_plane: Duration::from_millis(600), node_pool: Duration::from_millis(600) };
    let on_east = Operator::start(&east.kubeconfig_yaml(DEFAULT_CONTEXT), &ns, delays);
    let on_west = Operator::start(&west.kubeconfig_yaml(DEFAULT_CONTEXT), &ns, delays);
    let fleet = |release: &str| {
        let secret = crate::support::pull_secret_in(dir.path());
        std::fs::write(
            dir.path().join("fleet.kdl"),
            format!(
                "target kube context=east\nfleet {f}\ndefaults {{\n    namespace {ns}\n    release \"{release}\"\n    pull-secret file=\"{s}\"\n}}\n\
                 cluster a {{\n    labels env=canary\n    node-pool workers replicas=1\n}}\n\
                 cluster b {{\n    target kube context=west\n    labels env=prod\n    node-pool workers replicas=1\n}}\n{WAVES}",
                f = scope.fleet,
                s = secret.display(),
            ),
        )
        .unwrap();
    };
    let run = |args: &[&str]| {
        let o = hcpc().current_dir(dir.path()).env("KUBECONFIG", &kubeconfig).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "hcpc {args:?}:\n{}{}", stdout(&o), stderr(&o));
        o
    };
    let head = |on: &Envtest, name: &str| {
        let hc = on.get("hostedclusters", Some(&ns), name).unwrap();
        (hc["spec"]["release"]["image"].clone(), hc["status"]["version"]["history"][0].clone())
    };
    fleet(OLD);
    run(&["apply", "--auto-approve", "--wait", "--timeout", "2m"]);

    fleet(NEW);
    let gate = run(&["apply", "--auto-approve", "--wait", "--until-wave", "canary", "--timeout", "2m"]);
    let (release, h) = head(east, "a");
    assert_eq!((release.as_str(), h["state"].as_str()), (Some(NEW), Some("Completed")), "{}", output(&gate));
    assert_eq!(head(&west, "b").0, OLD, "prod on west waits for canary on east: {}", output(&gate));

    run(&["apply", "--auto-approve", "--wait", "--timeout", "2m"]);
    let (release, h) = head(&west, "b");
    assert_eq!((release.as_str(), h["state"].as_str()), (Some(NEW), Some("Completed")));
    let pool = west.get("nodepools", Some(&ns), "b-workers").unwrap();
    assert_eq!(pool["status"]["version"], "4.20.1");
    assert!(on_east.violations().is_empty() && on_west.violations().is_empty());
}

/// Mistakes in a `rollout` block: each with its code, span and help.
#[test]
fn rollout_mistakes_are_diagnosed() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(repo().join("examples/secrets/pull-secret.json"), tmp.path().join("pull-secret.json")).unwrap();
    std::fs::write(
        tmp.path().join("fleet.kdl"),
        format!(
            "defaults {{\n    release \"{OLD}\"\n    pull-secret file=\"pull-secret.json\"\n}}\n\
             cluster a {{\n    node-pool workers replicas=1\n}}\n\
             rollout {{\n    wave canary selector=\"env in canary\" max-parallel=1\n    wave all\n    wave late selector=\"env=prod\" max-parallel=\"150%\"\n    wave all max-parallel=0\n}}\n"
        ),
    )
    .unwrap();
    let out = crate::support::run_in(tmp.path(), &["check", "fleet.kdl"]);
    assert_eq!(out.status.code(), Some(1));
    crate::examples::assert_golden("rollout__mistakes.txt", &output(&out));
}

const MID: &str = "quay.io/openshift-release-dev/ocp-release:4.19.9-x86_64";

/// A cluster upgraded before: its last history entry started long before
/// this upgrade (here longer ago than `--rollout-timeout`). The new upgrade
/// is timed from its own start, whether the operator has taken it up or not.
#[test]
fn an_upgrade_of_a_cluster_with_a_history_is_timed_from_its_own_start() {
    let delays = Delays { control_plane: Duration::from_millis(300), node_pool: Duration::from_millis(300) };
    let Some(e) = env("history", delays) else { return };
    let body = clusters(&[("a", "prod"), ("b", "prod")]);
    e.installed(&body, &["a", "b"]);
    e.write_fleet(MID, &body);
    e.ok(&["apply", "--auto-approve", "--wait", "--timeout", "2m"]);
    assert!(e.settled("a", &["workers"], MID) && e.settled("b", &["workers"], MID));
    // The entry of that upgrade is now older than the --rollout-timeout below.
    std::thread::sleep(Duration::from_secs(7));

    // b's operator is slow to take the next release up: an apply soon
    // after the write sees it not yet observed, which is no failure.
    e.operator.pause("b");
    e.write_fleet(NEW, &body);
    let first = e.ok(&["apply", "--auto-approve", "--rollout-timeout", "5s"]);
    assert_eq!(e.release("hostedclusters", "b"), NEW, "{}", output(&first));
    let again = e.run(&["apply", "--auto-approve", "--rollout-timeout", "5s"]);
    let err = output(&again);
    assert_eq!(again.status.code(), Some(0), "{err}");
    assert!(!err.contains("RolloutTimeout"), "{err}");
    assert!(err.contains("b: control plane upgrading"), "{err}");

    e.operator.resume("b");
    let o = e.run(&["apply", "--auto-approve", "--wait", "--rollout-timeout", "5s", "--timeout", "2m"]);
    assert_eq!(o.status.code(), Some(0), "{}", output(&o));
    assert!(e.settled("a", &["workers"], NEW) && e.settled("b", &["workers"], NEW), "{}", output(&o));
}

/// A cluster the operator never takes up says nothing: `apply --wait`
/// still fails it once `--rollout-timeout` has passed on its own clock,
/// long before `--timeout`.
#[test]
fn a_silent_stuck_cluster_fails_on_the_rollout_timeout() {
    let delays = Delays { control_plane: Duration::from_millis(300), node_pool: Duration::from_millis(300) };
    let Some(e) = env("stuck", delays) else { return };
    let body = clusters(&[("a", "prod")]);
    e.installed(&body, &["a"]);
    e.operator.pause("a");
    e.write_fleet(NEW, &body);
    let start = Instant::now();
    let o = e.run(&["apply", "--auto-approve", "--wait", "--rollout-timeout", "3s", "--timeout", "90s"]);
    let err = output(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cluster a failed: RolloutTimeout: the control plane has not completed {NEW}")),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(30), "took {:?}: {err}", start.elapsed());
    assert_eq!(e.release("nodepools", "a-workers"), OLD, "{err}");
}

const POOL_NOW: &str = "quay.io/openshift-release-dev/ocp-release:4.20.5-x86_64";
const POOL_PIN: &str = "quay.io/openshift-release-dev/ocp-release:4.20.6-x86_64";
const CP_NEXT: &str = "quay.io/openshift-release-dev/ocp-release:4.20.7-x86_64";

/// A pool pinned to a release newer than what its control plane runs
/// waits for the control plane to complete its own, newer, release.
#[test]
fn a_pinned_pool_waits_for_its_control_plane() {
    let delays = Delays { control_plane: Duration::from_secs(2), node_pool: Duration::from_millis(300) };
    let Some(e) = env("pinned", delays) else { return };
    let pinned = |pin: &str| {
        format!("cluster a {{\n    node-pool workers replicas=1 {{\n        release \"{pin}\"\n    }}\n}}\n")
    };
    e.write_fleet(POOL_NOW, &pinned(POOL_NOW));
    e.ok(&["apply", "--auto-approve"]);
    e.until("first install", Duration::from_secs(60), |e| e.settled("a", &["workers"], POOL_NOW));

    e.write_fleet(CP_NEXT, &pinned(POOL_PIN));
    let plan = stdout(&e.ok(&["plan"]));
    assert!(plan.contains("starts now a: control plane → 4.20.7-x86_64, then 1 NodePool"), "{plan}");
    let first = e.ok(&["apply", "--auto-approve"]);
    let err = output(&first);
    assert_eq!(e.release("hostedclusters", "a"), CP_NEXT, "{err}");
    assert_eq!(e.release("nodepools", "a-workers"), POOL_NOW, "the pinned pool went with its control plane: {err}");
    e.ok(&["apply", "--auto-approve", "--wait", "--timeout", "2m"]);
    assert_eq!(e.release("nodepools", "a-workers"), POOL_PIN);
    e.until("the pool on 4.20.6", Duration::from_secs(30), |e| {
        e.get("nodepools", "a-workers")["status"]["version"] == "4.20.6"
    });
    assert!(e.operator.violations().is_empty(), "{:?}", e.operator.violations());
}

impl Env {
    /// Whether pool `name` reports a configuration roll-out under way.
    fn reshaping(&self, name: &str) -> bool {
        let np = self.get("nodepools", name);
        np["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter().any(|c| {
                (c["type"] == "UpdatingPlatformMachineTemplate" || c["type"] == "UpdatingConfig")
                    && c["status"] == "True"
            })
        })
    }

    fn memory(&self, pool: &str) -> Value {
        self.get("nodepools", pool)["spec"]["platform"]["kubevirt"]["compute"]["memory"].clone()
    }
}

/// A change that rolls nodes without a release change (more memory) goes
/// wave by wave, each wave done only when its pools report the roll-out
/// finished.
#[test]
fn a_config_roll_out_goes_wave_by_wave() {
    let delays = Delays { control_plane: Duration::from_millis(300), node_pool: Duration::from_secs(2) };
    let Some(e) = env("reshape", delays) else { return };
    let sized = |memory: &str| {
        ["c1", "p1", "p2"]
            .iter()
            .map(|n| {
                let env = if *n == "c1" { "canary" } else { "prod" };
                format!(
                    "cluster {n} {{\n    labels env={env}\n    node-pool workers replicas=1 {{\n        memory \"{memory}\"\n    }}\n}}\n"
                )
            })
            .collect::<String>()
    };
    e.write_fleet(OLD, &format!("{}{WAVES}", sized("8Gi")));
    e.ok(&["apply", "--auto-approve"]);
    e.until("first install", Duration::from_secs(60), |e| {
        ["c1", "p1", "p2"].iter().all(|n| e.settled(n, &["workers"], OLD))
    });

    e.write_fleet(OLD, &format!("{}{WAVES}", sized("12Gi")));
    let first = e.ok(&["apply", "--auto-approve"]);
    assert_eq!(e.memory("c1-workers"), "12Gi", "{}", output(&first));
    assert_eq!(e.memory("p1-workers"), "8Gi", "{}", output(&first));
    // At once again: c1's nodes are rolling; prod waits.
    let again = e.ok(&["apply", "--auto-approve"]);
    let err = output(&again);
    assert_eq!(e.memory("p1-workers"), "8Gi", "prod went before canary's roll-out finished: {err}");
    assert!(err.contains("wave canary: 1 of 1 clusters in progress (c1: node pools rolling)"), "{err}");

    let o = e.ok(&["apply", "--auto-approve", "--wait", "--timeout", "2m"]);
    let err = output(&o);
    for n in ["c1", "p1", "p2"] {
        let pool = format!("{n}-workers");
        assert_eq!(e.memory(&pool), "12Gi", "{err}");
        assert!(!e.reshaping(&pool), "apply --wait ended while {pool} was still rolling: {err}");
    }
    let done: Vec<String> =
        e.operator.completed().into_iter().filter(|(_, what)| what == "config").map(|(n, _)| n).collect();
    assert_eq!(done.len(), 3, "{done:?}");
    assert_eq!(done[0], "NodePool/c1-workers", "{done:?}");
}

/// A halted rollout writes no further step, with `--wait` or without:
/// here b's control plane completed, and its pools stay where they are.
#[test]
fn a_halted_rollout_writes_no_step_without_wait_either() {
    let delays = Delays { control_plane: Duration::from_millis(500), node_pool: Duration::from_millis(500) };
    let Some(e) = env("halt-nowait", delays) else { return };
    let body = clusters(&[("a", "prod"), ("b", "prod")]);
    e.installed(&body, &["a", "b"]);
    e.operator.fail("a", Failure::Partial { reason: "UpdatePayloadFailed".into(), message: "could not apply".into() });
    e.write_fleet(NEW, &format!("{body}rollout {{\n    wave all max-parallel=2\n}}\n"));
    e.ok(&["apply", "--auto-approve"]);
    e.until("b's control plane completed and a failed", Duration::from_secs(30), |e| {
        let failing = e.get("hostedclusters", "a")["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "ClusterVersionFailing" && c["status"] == "True"));
        failing && e.get("hostedclusters", "b")["status"]["version"]["history"][0]["state"] == "Completed"
    });
    let o = e.run(&["apply", "--auto-approve"]);
    let err = output(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("hcpc::rollout::halted"), "{err}");
    assert_eq!(e.release("nodepools", "b-workers"), OLD, "a step was written during the halt: {err}");
}

/// A cluster deleted by hand while its control plane upgrades: its
/// NodePools' step is not made, and apply says why.
#[test]
fn a_cluster_deleted_mid_upgrade_gets_no_further_step() {
    let delays = Delays { control_plane: Duration::from_secs(3), node_pool: Duration::from_millis(300) };
    let Some(e) = env("deleted-mid", delays) else { return };
    let body = clusters(&[("a", "prod"), ("b", "prod")]);
    e.installed(&body, &["a", "b"]);
    e.write_fleet(NEW, &body);
    let child = e
        .command(&["apply", "--auto-approve", "--wait", "--timeout", "30s"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    e.until("a's control plane written", Duration::from_secs(60), |e| e.release("hostedclusters", "a") == NEW);
    e.k.delete("hostedclusters", Some(e.ns()), "a");
    let deleted = Instant::now();
    let o = child.wait_with_output().unwrap();
    let err = output(&o);
    assert!(err.contains("warning: cluster a was deleted during the rollout: NodePool"), "{err}");
    if e.k.get("nodepools", Some(e.ns()), "a-workers").is_some() {
        assert_eq!(e.release("nodepools", "a-workers"), OLD, "a step was made for a deleted cluster: {err}");
    }
    assert!(e.settled("b", &["workers"], NEW), "{err}");
    // The wait says at once that a is gone, not "not found" at --timeout.
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(deleted.elapsed() < Duration::from_secs(20), "waited {:?} for a gone cluster: {err}", deleted.elapsed());
    assert!(err.contains("cluster a is gone: its HostedCluster was deleted while apply waited"), "{err}");
    assert!(!err.contains("not found"), "{err}");
    // The next plan says the cluster is gone and will be created again.
    let plan = e.ok(&["plan"]);
    let warned = output(&plan);
    assert!(warned.contains("hcpc::plan::gone") && warned.contains("cluster a is gone"), "{warned}");
}

/// `apply --wait` following a rollout says what it applied once, at the
/// end, counting every pass.
#[test]
fn a_followed_rollout_says_one_total_at_the_end() {
    let delays = Delays { control_plane: Duration::from_millis(300), node_pool: Duration::from_millis(300) };
    let Some(e) = env("total", delays) else { return };
    let body = clusters(&[("a", "prod"), ("b", "prod")]);
    e.installed(&body, &["a", "b"]);
    e.write_fleet(NEW, &body);
    let o = e.ok(&["apply", "--auto-approve", "--wait", "--timeout", "2m"]);
    let err = stdout(&o);
    assert_eq!(err.matches("Apply complete!").count(), 1, "{err}");
    let total = err.find("Apply complete! 0 added, 4 changed, 0 replaced, 0 destroyed.").expect(&err);
    let last_step = err.rfind("rollout:").unwrap_or(0);
    assert!(total > last_step, "the total came before the rollout ended: {err}");
}

/// A plan with nothing to change while pools still roll says the roll-out
/// is under way, not only "No changes.".
#[test]
fn no_changes_while_pools_roll_says_the_rollout_is_under_way() {
    let delays = Delays { control_plane: Duration::from_millis(300), node_pool: Duration::from_secs(4) };
    let Some(e) = env("still-rolling", delays) else { return };
    let body = clusters(&[("a", "prod")]);
    e.installed(&body, &["a"]);
    e.write_fleet(NEW, &body);
    e.ok(&["apply", "--auto-approve"]);
    e.until("a's control plane completed", Duration::from_secs(30), |e| {
        e.get("hostedclusters", "a")["status"]["version"]["history"][0]["state"] == "Completed"
    });
    // The apply's read of the status may lag a moment behind it.
    e.until("a's pool written", Duration::from_secs(10), |e| {
        e.ok(&["apply", "--auto-approve"]);
        e.release("nodepools", "a-workers") == NEW
    });
    let plan = stdout(&e.ok(&["plan"]));
    assert!(plan.contains("No changes."), "{plan}");
    assert!(plan.contains("The roll-out is still under way: a (node pools rolling)."), "{plan}");
    e.until("a settled", Duration::from_secs(30), |e| e.settled("a", &["workers"], NEW));
    let plan = stdout(&e.ok(&["plan"]));
    assert!(plan.contains("No changes.") && !plan.contains("under way"), "{plan}");
}

/// `--cluster` limits what an apply writes, not the order of the waves:
/// a prod cluster does not start before the canary, and the plan says so.
#[test]
fn a_limited_apply_keeps_the_wave_order() {
    let delays = Delays { control_plane: Duration::from_millis(300), node_pool: Duration::from_millis(300) };
    let Some(e) = env("limited", delays) else { return };
    let body = clusters(&[("c1", "canary"), ("s2", "prod")]);
    e.installed(&body, &["c1", "s2"]);
    e.write_fleet(NEW, &format!("{body}{WAVES}"));
    let o = e.ok(&["apply", "--auto-approve", "--cluster", "s2"]);
    let err = output(&o);
    assert_eq!(e.release("hostedclusters", "s2"), OLD, "prod started before the canary: {err}");
    assert_eq!(e.release("hostedclusters", "c1"), OLD, "outside --cluster: {err}");
    assert!(err.contains("starts now c1: control plane → 4.20.1-x86_64"), "{err}");
    assert!(err.contains("waits s2: control plane → 4.20.1-x86_64"), "{err}");
    assert!(err.contains("outside --cluster, in the waves' order but not written by this apply: c1"), "{err}");
    // --wait with nothing of its own that may go returns at once.
    let start = Instant::now();
    e.ok(&["apply", "--auto-approve", "--cluster", "s2", "--wait", "--timeout", "60s"]);
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(e.release("hostedclusters", "s2"), OLD);

    e.ok(&["apply", "--auto-approve", "--cluster", "c1", "--wait", "--timeout", "2m"]);
    assert!(e.settled("c1", &["workers"], NEW));
    e.ok(&["apply", "--auto-approve", "--cluster", "s2", "--wait", "--timeout", "2m"]);
    assert!(e.settled("s2", &["workers"], NEW));
    assert!(e.operator.violations().is_empty(), "{:?}", e.operator.violations());
}

/// After a configuration roll-out, a cluster whose nodes are not ready as
/// desired is not done: the next wave waits for them.
#[test]
fn a_config_roll_out_waits_for_the_nodes_to_be_ready() {
    let delays = Delays { control_plane: Duration::from_millis(300), node_pool: Duration::from_millis(500) };
    let Some(e) = env("reshape-ready", delays) else { return };
    let sized = |memory: &str| {
        [("c1", "canary"), ("p1", "prod")]
            .iter()
            .map(|(n, env)| {
                format!(
                    "cluster {n} {{\n    labels env={env}\n    node-pool workers replicas=1 {{\n        memory \"{memory}\"\n    }}\n}}\n"
                )
            })
            .collect::<String>()
    };
    e.write_fleet(OLD, &format!("{}{WAVES}", sized("8Gi")));
    e.ok(&["apply", "--auto-approve"]);
    e.until("first install", Duration::from_secs(60), |e| ["c1", "p1"].iter().all(|n| e.settled(n, &["workers"], OLD)));
    // From now on c1's nodes do not become ready after their roll-out.
    e.operator.hold_ready("c1");
    e.write_fleet(OLD, &format!("{}{WAVES}", sized("12Gi")));
    e.ok(&["apply", "--auto-approve"]);
    assert_eq!(e.memory("c1-workers"), "12Gi");
    e.until("c1's roll-out finished, its node not ready", Duration::from_secs(30), |e| {
        !e.reshaping("c1-workers") && e.pool_ready("c1-workers") == (Value::from("False"), Value::from(0))
    });

    // The apply's read of the status may lag a moment behind; prod waits
    // all along.
    e.until("the standing shows c1 waiting for its node", Duration::from_secs(10), |e| {
        let err = output(&e.ok(&["apply", "--auto-approve"]));
        assert_eq!(e.memory("p1-workers"), "8Gi", "prod went before canary's nodes were ready: {err}");
        err.contains("wave canary: 1 of 1 clusters in progress (c1: 0 of 1 nodes ready in pool workers)")
    });

    e.operator.release_ready("c1");
    let o = e.ok(&["apply", "--auto-approve", "--wait", "--timeout", "2m"]);
    assert_eq!(e.memory("p1-workers"), "12Gi", "{}", output(&o));
}

/// A signal while a followed rollout's watch has a LIST in flight releases
/// the lock at once: the locks are released before the watches are
/// joined, so the LIST (held here by the fault proxy) does not keep the
/// Lease for its grace period, and a second signal could not leave it.
#[test]
fn a_signal_releases_the_lock_before_the_watches_end() {
    let delays = Delays { control_plane: Duration::from_secs(15), node_pool: Duration::from_secs(15) };
    let Some(mut e) = env("release-first", delays) else { return };
    let names = ["a", "b"];
    let body = clusters(&[("a", "prod"), ("b", "prod")]);
    e.installed(&body, &names);
    let proxy = crate::support::fault_proxy::FaultProxy::start(e.k);
    e.kubeconfig = proxy.write_kubeconfig(e.dir.path());
    e.write_fleet(NEW, &format!("{body}rollout {{\n    wave all max-parallel=1\n}}\n"));
    // Every NodePool LIST takes 8 s: the plan's, the re-plan's and the
    // one the rollout's watch starts with.
    proxy.faults().delay_matching("GET", "/nodepools", Duration::from_secs(8));
    let child = e
        .command(&["apply", "--auto-approve", "--wait", "--timeout", "2m", "--request-timeout", "5m"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let watch_listing = || {
        let requests = proxy.requests();
        let written =
            requests.iter().position(|(m, p)| m == "PATCH" && p.contains("/hostedclusters/") && !p.contains("dryRun"));
        written.is_some_and(|w| requests[w..].iter().any(|(m, p)| m == "GET" && p.contains("/nodepools")))
    };
    let start = Instant::now();
    while !watch_listing() {
        assert!(start.elapsed() < Duration::from_secs(90), "the rollout's watch never listed NodePools");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let signalled = Instant::now();
    let lock = format!("hcpc-lock-{}", e.scope.fleet);
    while e.k.get("leases", Some(e.ns()), &lock).is_some() {
        assert!(signalled.elapsed() < Duration::from_secs(3), "the lock is still held 3 s after the signal");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    proxy.faults().clear();
}

/// A watch whose WATCH the server refuses a few times (503) is said once,
/// retried with a backoff, said to work again, and the rollout it follows
/// goes on to its end.
#[test]
fn a_watch_failing_for_a_while_is_said_once_and_the_rollout_goes_on() {
    let delays = Delays { control_plane: Duration::from_millis(300), node_pool: Duration::from_millis(300) };
    let Some(mut e) = env("watch-retried", delays) else { return };
    let names = ["a"];
    let body = clusters(&[("a", "prod")]);
    e.installed(&body, &names);
    let proxy = crate::support::fault_proxy::FaultProxy::start(e.k);
    e.kubeconfig = proxy.write_kubeconfig(e.dir.path());
    e.write_fleet(NEW, &format!("{body}rollout {{\n    wave all max-parallel=1\n}}\n"));
    // Only the rollout's watch WATCHes; a plan LISTs.
    proxy.faults().fail_matching("GET", "watch=true", 503, 3);
    let o = e.ok(&["apply", "--auto-approve", "--wait", "--timeout", "2m"]);
    let err = stderr(&o);
    let said: Vec<&str> = err.lines().filter(|l| l.contains("cannot watch")).collect();
    assert_eq!(said.len(), 1, "one line per streak of failures, not per retry:\n{err}");
    assert!(
        said[0].starts_with("warning: kube:")
            && said[0].contains("cannot watch hostedclusters.hypershift.openshift.io in all namespaces: 503"),
        "{err}"
    );
    assert!(err.contains("the watch works again"), "{err}");
    let watches = proxy.requests().iter().filter(|(m, p)| m == "GET" && p.contains("watch=true")).count();
    assert!(watches >= 4, "retried until a WATCH was answered: {watches}");
    assert!(e.settled("a", &["workers"], NEW), "{}", output(&o));
}

/// A watch whose WATCHes keep failing ends `apply --wait` with
/// the request and the server's answer, not with "did not finish within
/// --timeout"; the failure is said once while it is retried.
#[test]
fn a_watch_that_keeps_failing_ends_the_apply_with_its_cause() {
    let delays = Delays { control_plane: Duration::from_secs(5), node_pool: Duration::from_secs(5) };
    let Some(mut e) = env("watch-dead", delays) else { return };
    let names = ["a"];
    let body = clusters(&[("a", "prod")]);
    e.installed(&body, &names);
    let proxy = crate::support::fault_proxy::FaultProxy::start(e.k);
    e.kubeconfig = proxy.write_kubeconfig(e.dir.path());
    e.write_fleet(NEW, &format!("{body}rollout {{\n    wave all max-parallel=1\n}}\n"));
    // Every WATCH fails: only the rollout's watch WATCHes (a plan LISTs),
    // and each retry LISTs again first.
    proxy.faults().fail_matching("GET", "watch=true", 503, 100_000);
    let o = e.run(&["apply", "--auto-approve", "--wait", "--timeout", "15s"]);
    proxy.faults().clear();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{}", output(&o));
    assert!(!err.contains("did not finish within --timeout"), "the cause, not a timeout:\n{err}");
    let flat = err.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("error: cannot follow the rollout on kube:"), "{err}");
    assert!(flat.contains("in all namespaces: 503"), "{err}");
    assert!(flat.contains("(failing for "), "{err}");
    let warned = err.lines().filter(|l| l.starts_with("warning:") && l.contains("503")).count();
    assert_eq!(warned, 1, "said once while retried:\n{err}");
}

/// A refused WATCH (403: the identity may list but not watch) ends
/// `apply --wait` at once with the refusal, not after `--timeout`.
#[test]
fn a_refused_watch_ends_the_apply_at_once() {
    let delays = Delays { control_plane: Duration::from_secs(5), node_pool: Duration::from_secs(5) };
    let Some(mut e) = env("watch-refused", delays) else { return };
    let body = clusters(&[("a", "prod")]);
    e.installed(&body, &["a"]);
    let proxy = crate::support::fault_proxy::FaultProxy::start(e.k);
    e.kubeconfig = proxy.write_kubeconfig(e.dir.path());
    e.write_fleet(NEW, &format!("{body}rollout {{\n    wave all max-parallel=1\n}}\n"));
    proxy.faults().fail_matching("GET", "watch=true", 403, 100_000);
    let start = Instant::now();
    let o = e.run(&["apply", "--auto-approve", "--wait", "--timeout", "2m"]);
    proxy.faults().clear();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{}", output(&o));
    assert!(start.elapsed() < Duration::from_secs(60), "not at once: {:?}", start.elapsed());
    assert!(err.contains("error: cannot follow the rollout on kube:"), "{err}");
    assert!(err.contains("cannot watch hostedclusters.hypershift.openshift.io in all namespaces: 403"), "{err}");
    let watches = proxy.requests().iter().filter(|(_, p)| p.contains("watch=true")).count();
    assert_eq!(watches, 1, "a refusal is not retried");
}
