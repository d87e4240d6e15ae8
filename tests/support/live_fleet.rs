//! A fleet directory against the shared real API server: its own scope
//! (namespace and fleet name), a kubeconfig, and `hcpc` run in it. The
//! live test modules build their own helpers on top of it.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use super::envtest::{Envtest, Scope};
use super::{hcpc, stderr, stdout};

/// The release the fleets written here run.
pub const RELEASE: &str = "quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64";

pub struct LiveFleet {
    pub k: &'static Envtest,
    pub scope: Scope,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl LiveFleet {
    /// `None` where no API server can be started (outside CI).
    pub fn new(what: &str) -> Option<LiveFleet> {
        let k = Envtest::shared()?;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = k.write_kubeconfig(dir.path());
        Some(LiveFleet { k, scope: k.scope(what), dir, kubeconfig })
    }

    pub fn ns(&self) -> &str {
        &self.scope.namespace
    }

    /// `fleet.kdl` with this scope's fleet and namespace, then `body`.
    pub fn write_fleet(&self, body: &str) {
        // Inside the fleet's directory: secret files outside it are refused.
        let secret = super::pull_secret_in(self.dir.path());
        std::fs::write(
            self.dir.path().join("fleet.kdl"),
            format!(
                "target kube\nfleet {fleet}\ndefaults {{\n    namespace {ns}\n    release \"{RELEASE}\"\n    pull-secret file=\"{secret}\"\n}}\n{body}",
                fleet = self.scope.fleet,
                ns = self.scope.namespace,
                secret = secret.display(),
            ),
        )
        .unwrap();
    }

    /// `hcpc ARGS` in the fleet's directory, with its kubeconfig.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = hcpc();
        c.current_dir(self.dir.path()).env("KUBECONFIG", &self.kubeconfig).args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    /// `run`, asserting success.
    pub fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert_eq!(o.status.code(), Some(0), "hcpc {args:?}:\n{}{}", stdout(&o), stderr(&o));
        o
    }
}
