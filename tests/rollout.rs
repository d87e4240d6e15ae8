//! Upgrades against a real kube-apiserver with the HyperShift operator
//! stand-in (`support::operator`) writing the status HyperShift would:
//! control plane first, waves and `max-parallel`, a failure halting the
//! rollout, resuming after a killed apply and after `--until-wave`, and a
//! rollout over two management clusters.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::envtest::{DEFAULT_CONTEXT, Envtest, Scope};
use crate::support::operator::{Delays, Failure, Operator};
use crate::support::{hcpc, repo, stderr, stdout};

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
        let secret = repo().join("examples/secrets/pull-secret.json");
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
