//! Server-side dry run of what a plan would write: each object it creates
//! or changes is sent as a server-side apply with `dryRun=All`, so the
//! management cluster's own admission (ValidatingAdmissionPolicies,
//! webhooks such as Gatekeeper or Kyverno), the CRDs' CEL rules and their
//! schemas judge it, and nothing is stored. A refusal found this way is an
//! error of the plan, before any write.
//!
//! An object in a namespace that does not exist yet cannot be judged (the
//! server answers that the namespace is not found): `plan` says those are
//! checked at apply, and apply checks them once it has created their
//! Namespaces, before any other write.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::kube::{KubeTarget, describe};
use crate::object::{Kind, ObjectId};
use crate::plan::{Action, Change};
use crate::render::DesiredObject;

/// An object the server refused, with its words and, when it named one,
/// the field (`spec.replicas`).
#[derive(Debug, Clone)]
pub struct Rejection {
    pub id: ObjectId,
    pub message: String,
    pub field: Option<String>,
    /// A server-side apply conflict: another field manager owns a field.
    pub conflict: bool,
}

/// The objects of a plan to dry-run now, and those that must wait for
/// their Namespace: the plan's creates and updates (a replacement's new
/// object cannot be judged while the old one exists; a delete is not
/// judged).
pub fn to_check<'a>(
    changes: &[Change],
    desired: &'a [DesiredObject],
) -> (Vec<&'a DesiredObject>, Vec<&'a DesiredObject>) {
    let writes: BTreeSet<&ObjectId> =
        changes.iter().filter(|c| matches!(c.action, Action::Create | Action::Update)).map(|c| &c.id).collect();
    let new_namespaces: BTreeSet<&str> = changes
        .iter()
        .filter(|c| c.id.kind == Kind::Namespace && c.action == Action::Create)
        .map(|c| c.id.name.as_str())
        .collect();
    desired
        .iter()
        .filter(|o| writes.contains(&o.id))
        .partition(|o| o.id.kind == Kind::Namespace || !new_namespaces.contains(o.id.namespace.as_str()))
}

/// Dry-runs `objects`, at most `parallelism` at a time; the refusals, in
/// the order of `objects`. A request that fails for another reason (the
/// server unreachable) is a refusal too: what was not judged is not
/// known to be accepted. `force`: conflicts with other field managers are
/// taken over (`--force-conflicts`), else each is a refusal naming them.
pub fn check(k: &KubeTarget, objects: &[&DesiredObject], parallelism: usize, force: bool) -> Vec<Rejection> {
    let next = AtomicUsize::new(0);
    let found = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..parallelism.clamp(1, objects.len().max(1)) {
            scope.spawn(|| {
                while let Some(o) = objects.get(next.fetch_add(1, Ordering::SeqCst)) {
                    if let Err(e) = k.dry_run_apply(&o.id, o.body(), force) {
                        let field = e.causes.iter().map(|(f, _)| f.clone()).find(|f| !f.is_empty());
                        // A policy's refusal may carry causes without a field.
                        let message = match (&field, e.code) {
                            (Some(_), 422) => describe(&e),
                            (None, 403 | 422) => e.message.clone(),
                            _ => e.to_string(),
                        };
                        let conflict = e.code == 409;
                        found.lock().unwrap_or_else(|e| e.into_inner()).push((o.id.clone(), message, field, conflict));
                    }
                }
            });
        }
    });
    let mut found = found.into_inner().unwrap_or_else(|e| e.into_inner());
    found.sort_by_key(|(id, ..)| objects.iter().position(|o| &o.id == id));
    found.into_iter().map(|(id, message, field, conflict)| Rejection { id, message, field, conflict }).collect()
}
