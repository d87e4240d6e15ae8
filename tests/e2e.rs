//! End-to-end tests: the built `hcpc` binary driven as a user would, against
//! directories and a real Kubernetes API server (`support::envtest`).
//!
//! One test binary (faster to build than one per file); each module below
//! is one area.

mod support;

mod api_rules;
mod apiserver_replay;
mod capacity;
mod cli;
mod conformance;
mod discovery;
mod dry_run;
mod envtest;
mod errors;
mod examples;
mod faults;
mod fleet_scope;
mod fleets;
mod hostile;
mod interrupt;
mod kube;
mod live_safety;
mod lsp;
mod plan;
mod privilege;
mod profiles;
mod proxy;
mod review;
mod robustness;
mod rollout;
mod secrets;
mod status;
mod versions;
