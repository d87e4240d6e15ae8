//! What a hostile input or server cannot do to hcpc: drive the terminal
//! with control characters, forge output lines, exhaust memory, or run a
//! command the kubeconfig names outside the exec plugin protocol.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::envtest::{DEFAULT_CONTEXT, Envtest, kubeconfig_yaml};
use crate::support::fault_proxy::FaultProxy;
use crate::support::{hcpc, run_in, stderr, stdout};

const RELEASE: &str = "quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64";

/// A one-cluster fleet in `dir` on `fleet`/`namespace`, targeting kube.
fn write_fleet(dir: &Path, fleet: &str, namespace: &str) {
    let secret = crate::support::pull_secret_in(dir);
    std::fs::write(
        dir.join("fleet.kdl"),
        format!(
            "target kube\nfleet {fleet}\ncluster example {{\n    namespace \"{namespace}\"\n    release \"{RELEASE}\"\n    pull-secret file=\"{}\"\n    node-pool workers replicas=1\n}}\n",
            secret.display()
        ),
    )
    .unwrap();
}

/// No byte of a terminal control sequence: ESC, BEL, CSI.
fn assert_inert(what: &str, text: &str) {
    assert!(!text.contains(['\u{1b}', '\u{7}', '\u{9b}']), "{what} carries raw control characters: {text:?}");
}

fn run_within(dir: &Path, kubeconfig: &Path, limit: Duration, args: &[&str]) -> Output {
    let mut child = hcpc()
        .current_dir(dir)
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
fn control_characters_in_a_fleet_value_are_escaped_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    // Written as KDL escapes: the decoded value holds ESC, BEL and a newline.
    std::fs::write(
        dir.path().join("fleet.kdl"),
        format!(
            "cluster a {{\n    namespace \"ns\\u{{1b}}]0;PWNED\\u{{7}}x\\nPlan: 0 to add\"\n    release \"{RELEASE}\"\n    pull-secret secret=pull\n    node-pool w replicas=1\n}}\n"
        ),
    )
    .unwrap();
    for format in ["human", "github", "json"] {
        let o = run_in(dir.path(), &["check", "--format", format, "."]);
        assert_eq!(o.status.code(), Some(1), "{format}: {}", stderr(&o));
        let mut all = stdout(&o) + &stderr(&o);
        assert_inert(format, &all);
        if format == "json" {
            // JSON escapes in its own way; the decoded text is what a tool shows.
            let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
            all = doc["diagnostics"].as_array().unwrap().iter().map(|d| d["message"].as_str().unwrap()).collect();
            assert_inert("json's decoded messages", &all);
        }
        assert!(all.contains("\\u{1b}]0;PWNED\\u{7}"), "{format} shows the value escaped: {all}");
        assert!(!all.lines().any(|l| l.trim_start().starts_with("Plan: 0 to add")), "{format}: a forged line: {all}");
    }
    // Raw control characters in the file are not replayed by the snippet.
    std::fs::write(dir.path().join("fleet.kdl"), "cluster a {\n    namespace \u{1b}[2J\n}\n").unwrap();
    let o = run_in(dir.path(), &["check", "."]);
    assert_eq!(o.status.code(), Some(1));
    assert_inert("a snippet", &stderr(&o));
}

#[test]
fn a_hostile_server_message_is_escaped_and_cut() {
    let Some(k) = Envtest::shared() else { return };
    let scope = k.scope("hostile");
    let server = FaultProxy::start(k);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path());
    write_fleet(dir.path(), &scope.fleet, &scope.namespace);
    server.faults().hostile_matching("GET", "/hostedclusters", 400, usize::MAX);
    let o = run_within(dir.path(), &kubeconfig, Duration::from_secs(60), &["plan"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert_inert("stderr", &err);
    assert!(err.contains("denied \\u{1b}]0;PWNED\\u{7}\\u{1b}[2J\\nPlan: 0 to add"), "{err}");
    assert!(!err.lines().any(|l| l.starts_with("Plan:")), "no forged line: {err}");
    assert!(err.len() < 10_000, "the 50 KB message is cut ({} bytes)", err.len());
    assert!(err.contains("more bytes not shown"), "says it was cut: {}", &err[..err.len().min(3000)]);
}

#[test]
fn an_endless_response_fails_at_the_documented_limit() {
    let Some(k) = Envtest::shared() else { return };
    let scope = k.scope("endless");
    let server = FaultProxy::start(k);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path());
    write_fleet(dir.path(), &scope.fleet, &scope.namespace);
    server.faults().endless_matching("GET", "/nodepools", usize::MAX);
    let o = run_within(dir.path(), &kubeconfig, Duration::from_secs(120), &["plan"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("answered with more than 256 MiB"), "{err}");
    let lists = server.requests().iter().filter(|(m, p)| m == "GET" && p.contains("/nodepools")).count();
    assert_eq!(lists, 1, "a body past the limit is not asked for again");
}

#[test]
fn a_fleet_past_the_size_limit_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = format!(
        "cluster c{{}} {{\n    release \"{RELEASE}\"\n    pull-secret secret=pull\n    node-pool workers replicas=1\n}}\n"
    );
    let mut text = String::with_capacity(51 << 20);
    let mut i = 0;
    while text.len() < 50 << 20 {
        text.push_str(&cluster.replace("{}", &i.to_string()));
        i += 1;
    }
    std::fs::write(dir.path().join("fleet.kdl"), &text).unwrap();
    let o = run_in(dir.path(), &["check", "."]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("hcpc::io") && err.contains("is too large") && err.contains("16 MiB"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A kubeconfig whose user is `user` (YAML lines under `user:`).
fn kubeconfig_with_user(k: &Envtest, user: &str) -> String {
    let base = kubeconfig_yaml(DEFAULT_CONTEXT, k.url(), "unused", Some(k.ca_pem()));
    base.replace("    token: unused\n", user)
}

#[test]
fn an_exec_plugin_runs_once_per_process() {
    let Some(k) = Envtest::shared() else { return };
    let scope = k.scope("exec");
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let plugin = dir.path().join("plugin.sh");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\necho run >> {}\nprintf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{}\"}}}}'\n",
            runs.display(),
            k.token()
        ),
    )
    .unwrap();
    let user = format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: [\"{}\"]\n      interactiveMode: Never\n",
        plugin.display()
    );
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_with_user(k, &user)).unwrap();
    write_fleet(dir.path(), &scope.fleet, &scope.namespace);
    let o = run_within(dir.path(), &kubeconfig, Duration::from_secs(120), &["plan"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let count = std::fs::read_to_string(&runs).unwrap().lines().count();
    assert_eq!(count, 1, "the plugin ran {count} times for one plan");
}

#[test]
fn the_legacy_gcp_auth_provider_is_refused_and_its_command_never_runs() {
    let Some(k) = Envtest::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let user = format!(
        "    auth-provider:\n      name: gcp\n      config:\n        cmd-path: sh\n        cmd-args: -c 'touch {}; echo {{}}'\n",
        ran.display()
    );
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_with_user(k, &user)).unwrap();
    write_fleet(dir.path(), "legacy", "legacy");
    let o = run_within(dir.path(), &kubeconfig, Duration::from_secs(60), &["plan"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("`gcp` auth-provider, which kubectl removed in 1.26"), "{err}");
    assert!(err.contains("gke-gcloud-auth-plugin"), "{err}");
    assert!(!ran.exists(), "the cmd-path ran");
}
