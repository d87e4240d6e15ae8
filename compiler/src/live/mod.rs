//! Live state: what exists on the target, read through one interface.
//!
//! `dir` is a GitOps directory (one YAML file per object); `kube` is the
//! management cluster through the `kube` client. Both return the objects
//! of the kinds hcpc manages, with a version for stale-plan detection.

pub mod dir;
pub mod kube;
pub mod retry;

pub use crate::object::LiveObject;
use crate::object::ObjectId;

/// A target hcpc reads from and applies to.
pub trait LiveState {
    /// `dir:PATH` or `kube:CONTEXT`, for messages and saved plans.
    fn describe(&self) -> String;
    /// The objects of the kinds hcpc manages that are relevant to this fleet:
    /// those carrying its ApplySet label, and those with the desired ids.
    fn read(&self, applyset: &str, wanted: &[ObjectId]) -> Result<Vec<LiveObject>, String>;
}
