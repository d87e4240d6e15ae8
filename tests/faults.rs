//! What hcpc does when the API server fails: one bounded retry policy
//! (`--request-timeout`, `Retry-After`), and errors that name the server
//! and the cause. The in-process endpoint injects what a real server
//! cannot be made to do.

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::envtest::Envtest;
use crate::support::fault_proxy::FaultProxy;
use crate::support::{hcpc, stderr, stdout};

/// A fleet of its own on the shared real server, reached through a proxy
/// that injects faults.
struct Env {
    k: &'static Envtest,
    namespace: String,
    server: FaultProxy,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

fn env() -> Option<Env> {
    let k = Envtest::shared()?;
    let scope = k.scope("faults");
    let server = FaultProxy::start(k);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path());
    let secrets = crate::support::pull_secret_in(dir.path());
    std::fs::write(
        dir.path().join("fleet.kdl"),
        format!(
            "target kube\nfleet {}\ncluster example {{\n    namespace {}\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret file=\"{}\"\n    node-pool workers replicas=1\n}}\n",
            scope.fleet,
            scope.namespace,
            secrets.display()
        ),
    )
    .unwrap();
    Some(Env { k, namespace: scope.namespace, server, dir, kubeconfig })
}

fn spawn(dir: &Path, kubeconfig: &Path, args: &[&str]) -> Child {
    hcpc()
        .current_dir(dir)
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs hcpc; fails the test if it is still running after `limit` (it
/// must give up by itself, not retry for ever).
fn run_within(e: &Env, limit: Duration, args: &[&str]) -> Output {
    let mut child = spawn(e.dir.path(), &e.kubeconfig, args);
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("hcpc {args:?} was still running after {limit:?}: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_server_answering_503_to_everything_fails_the_plan_within_a_minute() {
    let Some(e) = env() else { return };
    e.server.faults().fail_matching("*", "", 503, usize::MAX);
    // The default deadline: the plan gives up by itself, well within 60 s.
    let o = run_within(&e, Duration::from_secs(60), &["plan"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&e.server.url()), "names the server: {err}");
    assert!(err.contains("503 ServiceUnavailable"), "names the status: {err}");
    assert!(err.contains("--request-timeout is 30s"), "names the limit: {err}");
    let attempts = e.server.requests().len();
    assert!(attempts > 3, "transient failures are retried ({attempts} requests)");
}

#[test]
fn request_timeout_bounds_every_request_with_its_retries() {
    let Some(e) = env() else { return };
    e.server.faults().fail_matching("*", "", 503, usize::MAX);
    let o = run_within(&e, Duration::from_secs(20), &["plan", "--request-timeout", "2s"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--request-timeout is 2s"), "{}", stderr(&o));

    // A server that accepts but never answers is bounded the same way.
    e.server.faults().clear();
    e.server.faults().delay(Duration::from_secs(30));
    let o = run_within(&e, Duration::from_secs(20), &["plan", "--request-timeout", "2s"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(&format!("{} did not answer within", e.server.url())), "{err}");

    for bad in ["0s", "soon"] {
        let o = run_within(&e, Duration::from_secs(20), &["plan", "--request-timeout", bad]);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("--request-timeout"), "{}", stderr(&o));
    }
}

#[test]
fn retry_after_is_honoured_within_the_deadline() {
    let Some(e) = env() else { return };
    // Throttled twice, asked to come back in 2 s each time: the apply waits
    // as asked, then succeeds.
    e.server.faults().throttle_matching("PATCH", "/nodepools/", 429, 2, 2);
    let start = Instant::now();
    let o = run_within(&e, Duration::from_secs(60), &["apply", "--auto-approve", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(start.elapsed() >= Duration::from_secs(4), "retried sooner than the server asked");
    let patches = e
        .server
        .requests()
        .iter()
        .filter(|(m, p)| m == "PATCH" && p.contains("/nodepools/") && !p.contains("dryRun"))
        .count();
    assert_eq!(patches, 3);

    // Asked to come back after the deadline: give up at once, saying so.
    e.server.faults().throttle_matching("GET", "/namespaces", 503, 600, 1);
    let o = run_within(&e, Duration::from_secs(20), &["plan", "--request-timeout", "10s"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("it asked to retry after 600s, past that deadline"), "{}", stderr(&o));
}

#[test]
fn dropped_connections_are_retried() {
    let Some(e) = env() else { return };
    assert_eq!(run_within(&e, Duration::from_secs(60), &["plan", "-q"]).status.code(), Some(0));
    for n in [1, 2, 3] {
        e.server.faults().drop_connection_nth(n * 2);
    }
    let o = run_within(&e, Duration::from_secs(60), &["apply", "--auto-approve", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(run_within(&e, Duration::from_secs(60), &["plan", "--detailed-exitcode"]).status.code(), Some(0));
}

#[test]
fn a_refused_connection_names_the_server_and_the_cause_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fleet.kdl"), FLEET).unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let kubeconfig = dir.path().join("closed");
    std::fs::write(&kubeconfig, kubeconfig_for(&format!("http://127.0.0.1:{port}"), "closed")).unwrap();
    let child = spawn(dir.path(), &kubeconfig, &["plan"]);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(&format!("cannot connect to http://127.0.0.1:{port}: Connection refused")), "{err}");
    assert!(!err.contains("ServiceError"), "{err}");
}

#[test]
fn an_unknown_context_lists_the_contexts_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fleet.kdl"), FLEET).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_for("https://127.0.0.1:1", "hcpc-test")).unwrap();
    let o = spawn(dir.path(), &kubeconfig, &["plan", "--context", "prod"]).wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("no context `prod`; it has: hcpc-test"), "{err}");
    assert!(!err.contains("current context"), "{err}");
}

/// A server whose certificate the kubeconfig's CA did not sign fails at
/// once, saying so: a certificate does not change by asking again.
#[test]
fn a_wrong_ca_is_not_retried() {
    let Some(k) = Envtest::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fleet.kdl"), FLEET).unwrap();
    let other_ca = rcgen::generate_simple_self_signed(vec!["elsewhere".to_string()]).unwrap().cert.pem();
    let kubeconfig = dir.path().join("kubeconfig");
    let yaml = crate::support::envtest::kubeconfig_yaml("wrong-ca", k.url(), k.token(), Some(&other_ca));
    std::fs::write(&kubeconfig, yaml).unwrap();
    let o = spawn(dir.path(), &kubeconfig, &["plan", "--request-timeout", "3s"]).wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(&format!("cannot verify {}", k.url().trim_end_matches('/'))), "{err}");
    assert!(err.contains("invalid peer certificate"), "{err}");
    assert!(err.contains("certificate-authority"), "{err}");
    assert!(!err.contains("gave up after"), "not retried until the deadline: {err}");
}

/// A fleet for the tests that never reach a server.
const FLEET: &str = "target kube\nfleet nowhere\ncluster example {\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret secret=pull\n    node-pool workers replicas=1\n}\n";

/// A kubeconfig with one context, `context`, for `server`.
fn kubeconfig_for(server: &str, context: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: {context}\n  context:\n    cluster: c\n    user: u\ncurrent-context: {context}\n"
    )
}

/// A failed write stops the apply at its dependency level: nothing more
/// is started, no later level is written, the report names what was and
/// was not applied, and a re-run converges.
#[test]
fn a_failed_write_stops_new_work_and_a_rerun_converges() {
    let Some(e) = env() else { return };
    let secrets = crate::support::pull_secret_in(e.dir.path());
    let fleet = std::fs::read_to_string(e.dir.path().join("fleet.kdl")).unwrap();
    let mut text = fleet[..fleet.find("cluster example").unwrap()].to_string();
    for name in ["a", "b", "c"] {
        text.push_str(&format!(
            "cluster {name} {{\n    namespace {}\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret file=\"{}\"\n    node-pool w replicas=1\n}}\n",
            e.namespace,
            secrets.display()
        ));
    }
    std::fs::write(e.dir.path().join("fleet.kdl"), text).unwrap();
    e.server.faults().fail_matching("PATCH", "/hostedclusters/b", 422, 1);
    let o = run_within(&e, Duration::from_secs(60), &["apply", "--auto-approve", "--parallelism", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let ns = &e.namespace;
    assert!(err.contains(&format!("error: HostedCluster/{ns}/b: 422 Invalid")), "{err}");
    let line = |prefix: &str| err.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_default().to_string();
    let (applied, not_applied) = (line("applied: "), line("not applied: "));
    assert!(
        applied.contains(&format!("HostedCluster/{ns}/a")) && applied.contains(&format!("Secret/{ns}/c-pull-secret")),
        "{err}"
    );
    for id in ["HostedCluster/NS/b", "HostedCluster/NS/c", "NodePool/NS/a-w", "NodePool/NS/b-w", "NodePool/NS/c-w"] {
        assert!(not_applied.contains(&id.replace("NS", ns)), "{id}: {err}");
    }
    let exists = |plural: &str, name: &str| e.k.get(plural, Some(ns), name).is_some();
    assert!(exists("hostedclusters", "a") && !exists("hostedclusters", "c"), "no new work after a failure");
    assert!(!exists("nodepools", "a-w"), "no later level after a failure");
    let o = run_within(&e, Duration::from_secs(60), &["apply", "--auto-approve", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run_within(&e, Duration::from_secs(60), &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}
