//! Live state: what exists on the target, read through one interface.
//!
//! `dir` is a GitOps directory (one YAML file per object); `kube` is the
//! management cluster through the `kube` client.

pub mod dir;
