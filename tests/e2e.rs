//! End-to-end tests: the built `hcpc` binary driven as a user would, plus
//! the in-process Kubernetes API endpoint it is tested against.
//!
//! One test binary (faster to build than one per file); each module below
//! is one area.

mod support;

mod apiserver_replay;
mod cli;
mod conformance;
mod envtest;
mod errors;
mod examples;
mod faults;
mod kube;
mod live_safety;
mod plan;
mod robustness;
