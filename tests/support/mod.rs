//! Shared helpers for the end-to-end tests.

#![allow(dead_code)]

pub mod connect_proxy;
pub mod envtest;
pub mod fault_proxy;
/// Generated fleets, shared with the benchmarks.
#[path = "../../benches/fleet_gen.rs"]
pub mod fleet_gen;
pub mod live_fleet;
pub mod operator;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("compiler/ has a parent").to_path_buf()
}

/// `shared/conformance/`, next to the repository.
pub fn conformance() -> PathBuf {
    repo().join("../shared/conformance")
}

/// A `Command` for the built `hcpc` binary, with a clean environment for
/// colour and kubeconfig.
pub fn hcpc() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hcpc"));
    c.env("NO_COLOR", "1").env_remove("KUBECONFIG").env("HOME", repo().join("target/test-home"));
    c
}

/// A copy of the example pull secret in `dir` (secret files must lie in
/// the fleet's directory tree); its path.
pub fn pull_secret_in(dir: &Path) -> PathBuf {
    let path = dir.join("pull-secret.json");
    std::fs::copy(repo().join("examples/secrets/pull-secret.json"), &path).expect("copy the example pull secret");
    path
}

/// Runs `hcpc` with `args` in `dir`.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    hcpc().current_dir(dir).args(args).output().expect("hcpc runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parses multi-document YAML into JSON values.
pub fn yaml_docs(text: &str) -> Vec<serde_json::Value> {
    text.split("\n---\n")
        .map(|d| d.trim_start_matches("---\n"))
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str::<serde_json::Value>(d).expect("valid YAML document"))
        .collect()
}
