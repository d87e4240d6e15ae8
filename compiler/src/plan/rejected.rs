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
    let mut d = match forbidden(message) {
        // RBAC, not admission: the identity lacks a permission.
        Some(permission) => Diagnostic::error(
            Code::Forbidden,
            format!("the identity of this kubeconfig may not write {id}: {message}"),
        )
        .help(format!(
            "grant it {permission}; the configuration is not at fault. Nothing was written"
        )),
        None => Diagnostic::error(Code::DryRunRejected, format!("the management cluster refuses {id}: {message}"))
            .help("its admission policies, the CRD's rules or its schema refuse this value; change the configuration (or ask for the policy to allow it). Nothing was written"),
    };
    if let Some(span) = span(fleet, id, cluster, field.unwrap_or("")) {
        let what = match field {
            Some(f) => format!("{f} set here"),
            None => format!("{} declared here", id.kind),
        };
        d = d.label(span, what);
    }
    d
}

/// The permission an RBAC refusal names (`User "…" cannot patch resource
/// "namespaces" in API group "" at the cluster scope`), as verb, resource
/// and scope; `None` for an admission refusal, which names none.
fn forbidden(message: &str) -> Option<String> {
    let (_, rest) = message.split_once(" cannot ")?;
    let (verb, rest) = rest.split_once(" resource \"")?;
    let (resource, rest) = rest.split_once('"')?;
    let (_, after) = rest.split_once(" in API group \"")?;
    let (group, scope) = after.split_once('"')?;
    let scope = scope.trim();
    let resource = if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") };
    let scope = if scope.is_empty() { "at the cluster scope" } else { scope };
    Some(format!("`{verb}` on {resource} {scope}"))
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

#[cfg(test)]
mod tests {
    use super::forbidden;

    #[test]
    fn an_rbac_refusal_names_the_permission_and_an_admission_refusal_does_not() {
        let rbac = r#"namespaces "t1" is forbidden: User "system:serviceaccount:ci:plan" cannot patch resource "namespaces" in API group "" at the cluster scope"#;
        assert_eq!(forbidden(rbac).as_deref(), Some("`patch` on namespaces at the cluster scope"));
        let ns = r#"secrets "a" is forbidden: User "u" cannot patch resource "secrets" in API group "" in the namespace "t1""#;
        assert_eq!(forbidden(ns).as_deref(), Some("`patch` on secrets in the namespace \"t1\""));
        let policy = r#"hostedclusters.hypershift.openshift.io "a" is forbidden: ValidatingAdmissionPolicy 'release' with binding 'release' denied request: only 4.20"#;
        assert_eq!(forbidden(policy), None);
    }
}
