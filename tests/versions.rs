//! Release version rules against a real kube-apiserver: the desired
//! release against the version the live HostedCluster reports (downgrades,
//! minor skips, `allow-minor-skip`), and against the versions the
//! management cluster's HyperShift operator supports.
//!
//! No operator runs here: where the rules read what it writes, the test
//! writes it, in the shapes the CRDs in ../shared/conformance/crds define:
//! a HostedCluster's `status.version` (`desired` and `history`, whose items
//! require image, state, startedTime, completionTime and verified), and the
//! ConfigMap `hypershift/supported-versions` the operator publishes on
//! install (`{"versions": [...]}` under key `supported-versions`).

use std::path::PathBuf;
use std::process::Output;

use serde_json::{Value, json};

use crate::support::envtest::{Envtest, Scope};
use crate::support::{hcpc, stderr, stdout};

fn image(version: &str) -> String {
    format!("quay.io/openshift-release-dev/ocp-release:{version}-x86_64")
}

struct Env<'a> {
    k: &'a Envtest,
    scope: Scope,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl<'a> Env<'a> {
    fn new(k: &'a Envtest, what: &str) -> Env<'a> {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = k.write_kubeconfig(dir.path());
        Env { k, scope: k.scope(what), dir, kubeconfig }
    }

    /// One cluster `example` on `release`, with `extra` settings.
    fn fleet(&self, release: &str, extra: &str) {
        let secret = crate::support::pull_secret_in(self.dir.path());
        std::fs::write(
            self.dir.path().join("fleet.kdl"),
            format!(
                "target kube\nfleet {}\ncluster example {{\n    namespace {}\n    release \"{release}\"\n    pull-secret file=\"{}\"\n{extra}    node-pool workers replicas=1\n}}\n",
                self.scope.fleet,
                self.scope.namespace,
                secret.display()
            ),
        )
        .unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        hcpc().current_dir(self.dir.path()).env("KUBECONFIG", &self.kubeconfig).args(args).output().unwrap()
    }

    /// The HostedCluster's status as the operator writes it once `version`
    /// is rolled out.
    fn completed(&self, version: &str) {
        let entry = json!({"image": image(version), "version": version, "state": "Completed",
                           "startedTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:40:00Z",
                           "verified": true});
        let status = json!({"version": {"desired": {"image": image(version), "version": version},
                                        "history": [entry], "observedGeneration": 1, "availableUpdates": []}});
        self.k.set_status_as("hypershift-operator", "hostedclusters", Some(&self.scope.namespace), "example", status);
    }
}

fn diagnostics(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// The live status decides what runs: a release older than it is a
/// downgrade, one two minors newer a skip, refused unless the cluster
/// says `allow-minor-skip #true`, which the plan then shows.
#[test]
fn plans_refuse_downgrades_and_minor_skips_against_the_live_version() {
    let Some(k) = Envtest::shared() else { return };
    let e = Env::new(k, "versions");
    e.fleet(&image("4.18.5"), "");
    let o = e.run(&["apply", "--auto-approve", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", diagnostics(&o));
    // The operator reports 4.18.7 done (say, a patch applied by hand).
    e.completed("4.18.7");

    // 4.18.5 < 4.18.7: the spec never said 4.18.7, the status does.
    let o = e.run(&["plan"]);
    assert_eq!(o.status.code(), Some(1), "{}", diagnostics(&o));
    assert!(stderr(&o).contains("hcpc::release::downgrade"), "{}", stderr(&o));
    assert!(stderr(&o).contains("runs 4.18.7"), "{}", stderr(&o));

    // One minor up is an ordinary upgrade.
    e.fleet(&image("4.19.1"), "");
    let o = e.run(&["plan"]);
    assert_eq!(o.status.code(), Some(0), "{}", diagnostics(&o));
    assert!(!stderr(&o).contains("hcpc::release::minor_skip"), "{}", stderr(&o));

    // Two minors up skips 4.19.
    e.fleet(&image("4.20.0"), "");
    let o = e.run(&["plan"]);
    assert_eq!(o.status.code(), Some(1), "{}", diagnostics(&o));
    assert!(stderr(&o).contains("hcpc::release::minor_skip"), "{}", stderr(&o));
    assert!(stderr(&o).contains("skips 4.19"), "{}", stderr(&o));

    // Said on purpose: planned, and the plan says so on the HostedCluster.
    e.fleet(&image("4.20.0"), "    allow-minor-skip #true\n");
    let o = e.run(&["plan", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", diagnostics(&o));
    let plan: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let changes = plan.pointer("/targets/0/changes").or_else(|| plan.get("changes")).unwrap();
    let hc = changes.as_array().unwrap().iter().find(|c| c["id"]["kind"] == "HostedCluster").unwrap();
    assert_eq!(hc["notes"], json!(["allow-minor-skip: 4.18.7 → 4.20.0 skips 4.19"]), "{hc:#}");
    let o = e.run(&["plan"]);
    assert_eq!(o.status.code(), Some(0), "{}", diagnostics(&o));
    assert!(
        stderr(&o).contains("goes from 4.18.7 to 4.20.0 on kube:")
            && stderr(&o).contains("as `allow-minor-skip` allows"),
        "{}",
        stderr(&o)
    );
    // Next to the HostedCluster's change, in the text and markdown plans.
    assert!(stdout(&o).contains("allow-minor-skip: 4.18.7 → 4.20.0 skips 4.19"), "{}", stdout(&o));
    let o = e.run(&["plan", "--format", "markdown"]);
    assert!(stdout(&o).contains("allow-minor-skip: 4.18.7 → 4.20.0 skips 4.19"), "{}", stdout(&o));
}

/// On a management cluster of its own (the ConfigMap is cluster-wide):
/// no ConfigMap is a note; with one, a cluster whose minor it does not list
/// fails the plan, naming the list, and a listed one plans.
#[test]
fn plans_check_releases_against_the_supported_versions() {
    let Some(k) = Envtest::start() else { return };
    let e = Env::new(&k, "supported");
    e.fleet(&image("4.13.9"), "");
    let o = e.run(&["plan"]);
    assert_eq!(o.status.code(), Some(0), "{}", diagnostics(&o));
    assert!(stderr(&o).contains("hcpc::release::supported_versions_unknown"), "{}", stderr(&o));
    assert!(stderr(&o).contains("no ConfigMap hypershift/supported-versions"), "{}", stderr(&o));

    k.ensure_namespace("hypershift");
    k.create(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "supported-versions", "namespace": "hypershift",
                     "labels": {"hypershift.openshift.io/supported-versions": "true"}},
        "data": {"server-version": "abc", "supported-versions": "{\"versions\":[\"4.20\",\"4.19\",\"4.18\",\"4.17\"]}"}}));
    let o = e.run(&["plan"]);
    assert_eq!(o.status.code(), Some(1), "{}", diagnostics(&o));
    assert!(stderr(&o).contains("hcpc::release::unsupported_version"), "{}", stderr(&o));
    assert!(stderr(&o).contains("which supports 4.20, 4.19, 4.18, 4.17"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("supported_versions_unknown"), "{}", stderr(&o));

    e.fleet(&image("4.17.9"), "");
    let o = e.run(&["plan"]);
    assert_eq!(o.status.code(), Some(0), "{}", diagnostics(&o));
    assert!(!stderr(&o).contains("hcpc::release::unsupported_version"), "{}", stderr(&o));
}

/// A `target dir` has no status: the release it holds is what runs.
#[test]
fn a_directory_target_refuses_downgrades_too() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let secret = crate::support::pull_secret_in(dir);
    let write = |release: &str| {
        std::fs::write(
            dir.join("fleet.kdl"),
            format!(
                "target dir \"out\"\ncluster example {{\n    release \"{release}\"\n    pull-secret file=\"{}\"\n    node-pool workers replicas=1\n}}\n",
                secret.display()
            ),
        )
        .unwrap();
    };
    let run = |args: &[&str]| hcpc().current_dir(dir).args(args).output().unwrap();
    write(&image("4.18.5"));
    assert_eq!(run(&["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    write(&image("4.18.3"));
    let o = run(&["plan"]);
    assert_eq!(o.status.code(), Some(1), "{}", diagnostics(&o));
    assert!(stderr(&o).contains("hcpc::release::downgrade"), "{}", stderr(&o));
    assert!(stderr(&o).contains("spec.release.image"), "the live version's source is named: {}", stderr(&o));
    write(&image("4.18.9"));
    assert_eq!(run(&["plan"]).status.code(), Some(0));
}
