//! A refusal from the management cluster's dry run (admission policy, CEL
//! rule, schema) as a diagnostic pointing at the KDL that set the refused
//! field, or else at the node that declares the object.

use crate::diagnostic::{Code, Diagnostic};
use crate::ir::Fleet;
use crate::object::{Kind, ObjectId};
use crate::source::Span;

/// The diagnostic for `id`, which the server refused with `message`
/// (naming `field`, when it did).
pub fn diagnostic(
    fleet: &Fleet,
    id: &ObjectId,
    cluster: Option<&str>,
    message: &str,
    field: Option<&str>,
) -> Diagnostic {
    let mut d = Diagnostic::error(Code::DryRunRejected, format!("the management cluster refuses {id}: {message}"))
        .help("its admission policies, the CRD's rules or its schema refuse this value; change the configuration (or ask for the policy to allow it). Nothing was written");
    if let Some(span) = span(fleet, id, cluster, field.unwrap_or("")) {
        let what = match field {
            Some(f) => format!("{f} set here"),
            None => format!("{} declared here", id.kind),
        };
        d = d.label(span, what);
    }
    d
}

/// A server-side apply conflict found by the dry run: another field
/// manager (named in the server's `message`) owns fields this object sets,
/// so the write would fail, half-way through an apply.
pub fn conflict(fleet: &Fleet, id: &ObjectId, cluster: Option<&str>, message: &str) -> Diagnostic {
    let mut d = Diagnostic::error(Code::DryRunRejected, format!("{id} would conflict with another field manager: {message}"))
        .help("someone else (kubectl, another tool) owns these fields; to take them over, apply with --force-conflicts; to leave them, stop setting them here. Nothing was written");
    if let Some(span) = span(fleet, id, cluster, "") {
        d = d.label(span, format!("{} declared here", id.kind));
    }
    d
}

/// Where the KDL sets `field` of the object, as far as it is known.
fn span(fleet: &Fleet, id: &ObjectId, cluster: Option<&str>, field: &str) -> Option<Span> {
    let c = match cluster {
        Some(name) => fleet.clusters.iter().find(|c| c.name.value == name)?,
        None => fleet.clusters.iter().find(|c| id.kind == Kind::Namespace && c.namespace.value == id.name)?,
    };
    let has = |part: &str| field.split(['.', '[']).any(|p| p == part);
    Some(match id.kind {
        Kind::Namespace => c.namespace.span,
        Kind::NodePool => {
            let pool = c.node_pools.iter().find(|p| {
                p.object_name
                    .as_deref()
                    .map_or(id.name == format!("{}-{}", c.name.value, p.name.value), |n| n == id.name)
            })?;
            if has("replicas") || has("autoScaling") {
                pool.scaling.span
            } else if has("cores") {
                pool.cores.span
            } else if has("memory") {
                pool.memory.span
            } else if has("release") {
                pool.release.span
            } else {
                pool.name.span
            }
        }
        Kind::HostedCluster if has("release") => c.release.span,
        Kind::HostedCluster if has("pullSecret") => c.pull_secret.span,
        Kind::Secret if id.name.ends_with("pull-secret") => c.pull_secret.span,
        _ => c.name.span,
    })
}
