//! SIGINT and SIGTERM sent to a running `hcpc apply`, as a terminal or a
//! CI runner sends them, and `hcpc unlock`, against a real kube-apiserver.
//!
//! The process is spawned directly (not as a shell's background job, which
//! would have SIGINT ignored) and signalled by pid. An apply is kept busy
//! either by a finalizer (as the HyperShift operator's
//! `hypershift.openshift.io/finalizer` holds a HostedCluster being
//! replaced; no operator runs here, so the test removes it) or, for a write
//! that must still be in flight when the signal comes, by the fault proxy
//! holding that one request (a real server cannot be made to).

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::support::fault_proxy::FaultProxy;
use crate::support::live_fleet::LiveFleet;
use crate::support::{stderr, stdout};

const FINALIZER: &str = "hypershift.openshift.io/finalizer";

/// The shared live fleet, with this module's own helpers.
struct Env(LiveFleet);

impl std::ops::Deref for Env {
    type Target = LiveFleet;
    fn deref(&self) -> &LiveFleet {
        &self.0
    }
}

impl std::ops::DerefMut for Env {
    fn deref_mut(&mut self) -> &mut LiveFleet {
        &mut self.0
    }
}

fn env(what: &str) -> Option<Env> {
    LiveFleet::new(what).map(Env)
}

impl Env {
    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }

    fn get(&self, plural: &str, name: &str) -> Option<Value> {
        self.k.get(plural, Some(self.ns()), name)
    }

    fn lease(&self) -> Option<Value> {
        self.get("leases", &format!("hcpc-lock-{}", self.scope.fleet))
    }

    /// Sets (or, with `None`, removes) the test's finalizer on a
    /// HostedCluster, as the operator's own field manager would.
    fn finalizer(&self, cluster: &str, on: bool) {
        let finalizers: Vec<&str> = if on { vec![FINALIZER] } else { Vec::new() };
        self.k.apply_as(
            "test-operator",
            &json!({"apiVersion": "hypershift.openshift.io/v1beta1", "kind": "HostedCluster",
                    "metadata": {"name": cluster, "namespace": self.ns(), "finalizers": finalizers}}),
        );
    }
}

/// Waits (up to a minute) until `done`.
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, sig: Signal) {
    kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), sig).unwrap();
}

/// An apply waiting for a replaced HostedCluster to go (a finalizer holds
/// it) stops on SIGINT: exit 130, the Lease released, the report says what
/// was not applied; once the finalizer is gone a re-run converges.
#[test]
fn sigint_while_waiting_for_a_replacement_releases_the_lock() {
    let Some(e) = env("sigint") else { return };
    e.write_fleet("cluster a {\n    prevent-destroy #false\n    node-pool w replicas=1\n}\n");
    e.ok(&["apply", "--auto-approve", "-q"]);
    e.finalizer("a", true);
    e.write_fleet("cluster a {\n    prevent-destroy #false\n    etcd size=\"16Gi\"\n    node-pool w replicas=1\n}\n");
    let child = e.spawn(&["apply", "--auto-approve", "--allow-replace"]);
    until("the apply deleted the HostedCluster and waits for it", || {
        e.get("hostedclusters", "a").is_some_and(|hc| hc["metadata"]["deletionTimestamp"].is_string())
    });
    signal(&child, Signal::SIGINT);
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted by SIGINT"), "{err}");
    assert!(err.contains("not applied: HostedCluster/"), "{err}");
    assert!(err.contains("run apply again; it continues from the current state"), "{err}");
    assert!(e.lease().is_none(), "the lock was released");

    // The operator finishes tearing down; the next apply creates it again.
    e.finalizer("a", false);
    until("the HostedCluster is gone", || e.get("hostedclusters", "a").is_none());
    e.ok(&["apply", "--auto-approve", "-q"]);
    let hc = e.get("hostedclusters", "a").unwrap();
    assert_eq!(hc["spec"]["etcd"]["managed"]["storage"]["persistentVolume"]["size"], "16Gi");
    e.ok(&["plan", "--detailed-exitcode"]);
}

/// A replacement whose old HostedCluster a finalizer holds says what it
/// waits for and gives up at `--timeout`, saying how to go on; once the
/// finalizer is gone a re-run creates the new one.
#[test]
fn a_replacement_waits_within_the_timeout_and_says_for_what() {
    let Some(e) = env("replace-wait") else { return };
    e.write_fleet("cluster a {\n    prevent-destroy #false\n    node-pool w replicas=1\n}\n");
    e.ok(&["apply", "--auto-approve", "-q"]);
    e.finalizer("a", true);
    e.write_fleet("cluster a {\n    prevent-destroy #false\n    etcd size=\"16Gi\"\n    node-pool w replicas=1\n}\n");
    let start = std::time::Instant::now();
    let o = e.run(&["apply", "--auto-approve", "--allow-replace", "--timeout", "15s"]);
    // Progress on stdout, the error on stderr.
    let err = stdout(&o) + &stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(60), "the wait obeys --timeout: {err}");
    let ns = e.ns();
    assert!(
        err.contains(&format!(
            "HostedCluster/{ns}/a: deleting, before it is created again (waiting for finalizers: {FINALIZER})"
        )),
        "progress while it waits: {err}"
    );
    assert!(err.contains("still being deleted after 15s (--timeout)"), "{err}");
    assert!(e.lease().is_none(), "the lock was released");

    e.finalizer("a", false);
    until("the HostedCluster is gone", || e.get("hostedclusters", "a").is_none());
    e.ok(&["apply", "--auto-approve", "--allow-replace", "-q"]);
    let hc = e.get("hostedclusters", "a").unwrap();
    assert_eq!(hc["spec"]["etcd"]["managed"]["storage"]["persistentVolume"]["size"], "16Gi");
    e.ok(&["plan", "--detailed-exitcode"]);
}

/// SIGTERM while a write is in flight: no other write starts, the one in
/// flight is given a few seconds and then abandoned, the lock released,
/// exit 143; a re-run converges.
#[test]
fn sigterm_with_a_write_in_flight_abandons_it_and_releases_the_lock() {
    let Some(mut e) = env("sigterm") else { return };
    let proxy = FaultProxy::start(e.k);
    e.kubeconfig = proxy.write_kubeconfig(e.dir.path());
    e.write_fleet("cluster a {\n    node-pool w replicas=1\n}\ncluster b {\n    node-pool w replicas=1\n}\n");
    // Every NodePool write hangs; the ones before it go through.
    proxy.faults().delay_matching("PATCH", "/nodepools/", Duration::from_secs(120));
    let child = e.spawn(&["apply", "--auto-approve", "--parallelism", "1", "--request-timeout", "5m"]);
    until("the HostedClusters are written", || {
        e.get("hostedclusters", "a").is_some() && e.get("hostedclusters", "b").is_some()
    });
    // The first NodePool write is the one in flight.
    until("a NodePool write is in flight", || {
        proxy.requests().iter().any(|(m, p)| m == "PATCH" && p.contains("/nodepools/") && !p.contains("dryRun"))
    });
    signal(&child, Signal::SIGTERM);
    proxy.faults().clear();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(143), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    assert!(err.contains("it may or may not have been applied"), "{err}");
    let writes = proxy
        .requests()
        .iter()
        .filter(|(m, p)| m == "PATCH" && p.contains("/nodepools/") && !p.contains("dryRun"))
        .count();
    assert_eq!(writes, 1, "no NodePool write started after the signal");
    assert!(e.lease().is_none(), "the lock was released");
    e.ok(&["apply", "--auto-approve", "-q"]);
    e.ok(&["plan", "--detailed-exitcode"]);
}

/// A second signal ends the apply at once, leaving its lock; `hcpc
/// unlock` shows the holder, refuses to act without a terminal or `--yes`,
/// and releases it; the next apply then runs. (An apply on the same
/// machine would also take it over, its holder having ended:
/// `tests/kube.rs`.)
#[test]
fn a_second_signal_exits_at_once_and_unlock_releases_the_lock() {
    let Some(mut e) = env("twice") else { return };
    let proxy = FaultProxy::start(e.k);
    e.kubeconfig = proxy.write_kubeconfig(e.dir.path());
    e.write_fleet("cluster a {\n    node-pool w replicas=1\n}\n");
    proxy.faults().delay_matching("PATCH", "/nodepools/", Duration::from_secs(120));
    let child = e.spawn(&["apply", "--auto-approve", "--request-timeout", "5m"]);
    until("a NodePool write is in flight", || {
        proxy.requests().iter().any(|(m, p)| m == "PATCH" && p.contains("/nodepools/") && !p.contains("dryRun"))
    });
    signal(&child, Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, Signal::SIGINT);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    proxy.faults().clear();
    assert!(e.lease().is_some(), "exiting at once leaves the lock");

    let asked = e.run(&["unlock"]);
    assert_eq!(asked.status.code(), Some(1));
    let said = stderr(&asked);
    assert!(said.contains("the fleet is locked by hcpc@") && said.contains("--yes"), "{said}");
    assert!(e.lease().is_some(), "nothing released without confirmation");

    let released = e.ok(&["unlock", "--yes"]);
    assert!(stderr(&released).contains("released"), "{}", stderr(&released));
    assert!(e.lease().is_none());
    let again = e.ok(&["unlock", "--yes"]);
    assert!(stderr(&again).contains("not locked"), "{}", stderr(&again));
    e.ok(&["apply", "--auto-approve", "-q"]);
    e.ok(&["plan", "--detailed-exitcode"]);
}

/// Removing a cluster deletes its NodePools and HostedCluster, and the
/// Secrets they name only once the HostedCluster is gone (the operator's
/// finalizer needs them to tear it down). The wait ends at `--timeout`,
/// keeping the Secrets and saying so; the next apply continues.
#[test]
fn secrets_of_a_deleted_cluster_outlive_its_finalizers() {
    let Some(e) = env("finalizers") else { return };
    e.write_fleet(
        "cluster a {\n    node-pool w replicas=1\n}\ncluster b {\n    prevent-destroy #false\n    node-pool w replicas=1\n}\n",
    );
    e.ok(&["apply", "--auto-approve", "-q"]);
    let secrets_of_b = || -> Vec<String> {
        e.k.list("secrets", Some(e.ns()))
            .iter()
            .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_string))
            .filter(|n| n.starts_with("b-"))
            .collect()
    };
    assert!(!secrets_of_b().is_empty());
    e.finalizer("b", true);
    e.write_fleet("cluster a {\n    node-pool w replicas=1\n}\n");
    let o = e.run(&["apply", "--auto-approve", "--timeout", "2s"]);
    // Progress on stdout, the error on stderr.
    let err = stdout(&o) + &stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "waiting for HostedCluster/{}/b to be deleted (waiting for finalizers: {FINALIZER}",
            e.ns()
        )),
        "{err}"
    );
    assert!(err.contains("after --timeout 2s: the Secrets it names were kept"), "{err}");
    assert!(err.contains("run apply again once they are gone"), "{err}");
    assert!(e.get("nodepools", "b-w").is_none(), "the pool was deleted");
    assert!(e.get("hostedclusters", "b").unwrap()["metadata"]["deletionTimestamp"].is_string());
    assert!(!secrets_of_b().is_empty(), "the Secrets were kept: {err}");
    assert!(e.lease().is_none());
    // Meanwhile plans show it being deleted, not as a delete still to do.
    let plan = e.ok(&["plan"]);
    let said = format!("{}{}", stdout(&plan), stderr(&plan));
    assert!(said.contains(&format!("HostedCluster/{}/b is deleting (waiting for finalizers:", e.ns())), "{said}");
    assert!(said.contains(&format!("b-pull-secret is kept until HostedCluster/{}/b", e.ns())), "{said}");
    assert!(said.contains("No changes.") && !said.contains("to destroy"), "{said}");

    // The operator finishes; the next apply deletes the Secrets.
    e.finalizer("b", false);
    until("the HostedCluster is gone", || e.get("hostedclusters", "b").is_none());
    e.ok(&["apply", "--auto-approve", "-q"]);
    assert!(secrets_of_b().is_empty(), "{:?}", secrets_of_b());
    e.ok(&["plan", "--detailed-exitcode"]);
}

/// The Lease's duration for the lock tests: short, so that an apply
/// outlasts it in seconds (`HCPC_LEASE_SECONDS`, a test-only override).
const SHORT_LEASE: &str = "2";

/// A fleet of two clusters applied, then `b` removed while a finalizer
/// holds its HostedCluster: the apply that deletes it waits.
fn deleting_b(e: &Env) -> Child {
    e.write_fleet(
        "cluster a {\n    node-pool w replicas=1\n}\ncluster b {\n    prevent-destroy #false\n    node-pool w replicas=1\n}\n",
    );
    e.ok(&["apply", "--auto-approve", "-q"]);
    e.finalizer("b", true);
    e.write_fleet("cluster a {\n    node-pool w replicas=1\n}\n");
    let child = e
        .command(&["apply", "--auto-approve", "--timeout", "2m"])
        .env("HCPC_LEASE_SECONDS", SHORT_LEASE)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    until("the apply deleted b's HostedCluster and waits for it", || {
        e.get("hostedclusters", "b").is_some_and(|hc| hc["metadata"]["deletionTimestamp"].is_string())
    });
    child
}

/// The lock is kept whatever the apply does: one waiting for a deleted
/// cluster's finalizers well past the Lease's duration still holds it, a
/// second apply is refused meanwhile, and the first then finishes.
#[test]
fn the_lock_outlasts_a_deletion_wait_longer_than_the_lease() {
    let Some(e) = env("keeper") else { return };
    let first = deleting_b(&e);
    // Meanwhile a change that needs the lock; then three times the
    // Lease's duration passes.
    e.write_fleet("cluster a {\n    node-pool w replicas=2\n}\n");
    std::thread::sleep(Duration::from_secs(6));
    let second = e
        .command(&["apply", "--auto-approve", "--lock-timeout", "5s"])
        .env("HCPC_LEASE_SECONDS", SHORT_LEASE)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = stderr(&second);
    assert_eq!(second.status.code(), Some(1), "the second apply is refused: {said}");
    assert!(said.contains("error[hcpc::apply::locked]: the fleet is locked by hcpc@"), "{said}");
    assert!(!said.contains("took over"), "{said}");
    assert_eq!(e.get("nodepools", "a-w").unwrap()["spec"]["replicas"], 1, "nothing was written");

    e.finalizer("b", false);
    let o = first.wait_with_output().unwrap();
    // Progress goes to stdout, diagnostics to stderr.
    let err = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("- Secret/{}/b-pull-secret", e.ns())), "{err}");
    assert!(e.lease().is_none(), "the lock was released");
    e.ok(&["apply", "--auto-approve", "-q"]);
    e.ok(&["plan", "--detailed-exitcode"]);
}

/// An apply whose lock was taken from it (here by hand, as a waiter that
/// judged it expired would) makes no further write: it stops waiting,
/// deletes none of the Secrets it was waiting to delete, says so and
/// exits 1; it does not delete the new holder's Lease.
#[test]
fn an_apply_that_lost_its_lock_writes_nothing_more() {
    let Some(e) = env("lost-lock") else { return };
    let first = deleting_b(&e);
    let lock = format!("hcpc-lock-{}", e.scope.fleet);
    e.k.apply_as(
        "test",
        &json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": lock, "namespace": e.ns()},
                "spec": {"holderIdentity": "thief@elsewhere/9", "leaseDurationSeconds": 300}}),
    );
    let o = first.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("lost the fleet lock"), "{err}");
    assert!(err.contains("taken over by thief@elsewhere/9"), "{err}");
    assert!(err.contains(&format!("not applied: Secret/{}/b-", e.ns())), "{err}");
    assert!(e.get("secrets", "b-pull-secret").is_some(), "no write after the lock was lost");
    assert_eq!(e.lease().unwrap()["spec"]["holderIdentity"], "thief@elsewhere/9", "the new holder's Lease stays");
    e.finalizer("b", false);
}

/// A write in flight when the server goes away gets no answer: it may have
/// been carried out, so the report lists it as possibly applied, never as
/// not applied; what was never sent is not applied.
#[test]
fn a_write_in_flight_when_the_server_dies_is_possibly_applied() {
    let Some(mut e) = env("server-dies") else { return };
    let proxy = FaultProxy::start(e.k);
    e.kubeconfig = proxy.write_kubeconfig(e.dir.path());
    e.write_fleet("cluster a {\n    node-pool w replicas=1\n}\n");
    proxy.faults().delay_matching("PATCH", "/hostedclusters/", Duration::from_secs(120));
    let child = e.spawn(&["apply", "--auto-approve", "--request-timeout", "5s"]);
    until("a HostedCluster write is in flight", || {
        proxy.requests().iter().any(|(m, p)| m == "PATCH" && p.contains("/hostedclusters/") && !p.contains("dryRun"))
    });
    // The server goes away with the write unanswered.
    drop(proxy);
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let line = |prefix: &str| err.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_default().to_string();
    let ns = e.ns();
    let possibly = line("possibly applied (no answer came; the next plan shows which): ");
    assert!(possibly.contains(&format!("HostedCluster/{ns}/a")), "{err}");
    let not_applied = line("not applied: ");
    assert!(!not_applied.contains(&format!("HostedCluster/{ns}/a")), "{err}");
    assert!(not_applied.contains(&format!("NodePool/{ns}/a-w")), "{err}");
}
