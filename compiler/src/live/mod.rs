//! Live state: what exists on the target, read and written through one
//! interface.
//!
//! `dir` is a GitOps directory (one YAML file per object); `kube` is the
//! management cluster through the `kube` client. [`LiveState`] reads the
//! objects of the kinds hcpc manages, with a version for stale-plan
//! detection; [`Target`] is what the one apply driver (`cli::driver`) needs
//! to write them: the fleet lock, bookkeeping, and one object at a time.

pub mod dir;
pub mod dry_run;
pub mod inventory;
pub mod kube;
pub mod lease;
pub mod retry;
pub mod supported;

use std::time::Duration;

use serde_json::Value;

pub use crate::object::LiveObject;
use crate::object::ObjectId;
use crate::render::DesiredObject;

/// A target hcpc reads from.
pub trait LiveState {
    /// `dir:PATH` or `kube:CONTEXT`, for messages and saved plans.
    fn describe(&self) -> String;
    /// The objects of the kinds hcpc manages that are relevant to this fleet:
    /// those carrying its ApplySet label, and those with the desired ids.
    fn read(&self, applyset: &str, wanted: &[ObjectId]) -> Result<Vec<LiveObject>, String>;
    /// Every HostedCluster in `namespace`, whichever fleet (or person) made
    /// it: those may name Secrets this fleet would otherwise prune.
    fn hosted_clusters(&self, namespace: &str) -> Result<Vec<Value>, String>;
    /// Every NodePool in `namespace`, whichever fleet (or person) made it:
    /// destroying a HostedCluster destroys every pool naming it. A
    /// directory's `read` already holds every object it has.
    fn node_pools(&self, _namespace: &str) -> Result<Vec<Value>, String> {
        Ok(Vec::new())
    }
}

/// A target hcpc applies to. Object methods may be called from several
/// threads at once: the driver applies the objects of one dependency level
/// concurrently. A fleet that spans several targets gets one driver, lock
/// and ApplySet per target.
pub trait Target: LiveState + Sync {
    /// Takes the fleet's lock, waiting up to `timeout` and telling `say`
    /// who holds it meanwhile (and when an expired lock is taken over).
    /// `namespace` is the Namespace the lock lives in (kube), created if
    /// it does not exist.
    fn lock(
        &self,
        fleet: &str,
        namespace: &DesiredObject,
        timeout: Duration,
        say: &dyn Fn(&str),
    ) -> Result<Box<dyn Lock + Send + '_>, String>;
    /// Records the fleet's ApplySet parent before any member is written
    /// (a directory keeps no parent: its files are its inventory).
    fn record_applyset(&self, parent: &DesiredObject) -> Result<(), String>;
    /// Creates or updates one object. A `create_only` object (the etcd
    /// encryption key) is created with fresh key material only if missing,
    /// and never rewritten.
    fn apply_one(&self, object: &DesiredObject, force_conflicts: bool) -> Result<(), WriteError>;
    /// Deletes one object; a missing object counts as deleted.
    fn delete_one(&self, id: &ObjectId) -> Result<(), WriteError>;
    /// Has the target judge objects without storing them (server-side
    /// dry run); what it refuses. A directory accepts anything.
    /// Sent as the write will be: without `force_conflicts`, a field
    /// another manager owns is a refusal naming it.
    fn dry_run(
        &self,
        _objects: &[&DesiredObject],
        _parallelism: usize,
        _force_conflicts: bool,
    ) -> Vec<dry_run::Rejection> {
        Vec::new()
    }
    /// Returns once a deleted object is gone (finalizers may hold it),
    /// saying every few seconds what it waits for; an error once `timeout`
    /// has passed.
    fn wait_gone(&self, id: &ObjectId, timeout: std::time::Duration, progress: &dyn Fn(&str)) -> Result<(), String>;
}

/// A write that failed. Either it was refused or never sent (not applied),
/// or no answer came for it (the connection was lost, the server died, the
/// request timed out or was abandoned): the server may have carried it
/// out, and the report must not say it was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteError {
    pub message: String,
    /// The outcome is unknown: it may have been applied.
    pub possibly_applied: bool,
}

impl From<String> for WriteError {
    fn from(message: String) -> WriteError {
        WriteError { message, possibly_applied: false }
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A held fleet lock. Kept (a Lease renewed by its own thread) from when
/// it is taken until it is released, whatever the apply is doing; released
/// at the end, whatever happened. Shared with the threads that write, each
/// of which checks it before a write.
pub trait Lock: Send + Sync {
    /// An error, saying why, once the lock is lost: no further write may
    /// be made under it.
    fn check(&self) -> Result<(), String>;
    /// Gives the lock up (once); an error says why it could not.
    fn release(&mut self) -> Result<(), String>;
}

/// 32 random bytes for the etcd AES-CBC key, base64-encoded, from the
/// operating system's generator; an error rather than a weak key.
pub fn generate_key() -> Result<Value, String> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot generate the etcd encryption key: {e}"))?;
    Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)))
}

/// The host name, for naming a lock's holder.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// A timestamp for messages: `2026-01-31T12:00:00Z (3m12s ago)`.
pub fn when(t: k8s_openapi::jiff::Timestamp) -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    let secs = now.as_second() - t.as_second();
    let ago = if secs >= 0 { format!("{} ago", span(secs)) } else { format!("in {}", span(-secs)) };
    format!("{} ({ago})", t.strftime("%Y-%m-%dT%H:%M:%SZ"))
}

/// `4m20s`, `12s`, `1h3m`.
fn span(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{}h{}m", s / 3600, s % 3600 / 60),
    }
}
