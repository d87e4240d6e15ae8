//! Stage 5: desired objects + live state → a [`Plan`].
//!
//! Pure: the live objects are read by `live` beforehand. Decides the action
//! per object (create, update, replace, delete, no-op), flags immutable
//! fields (SPEC §4 rule 6) and NodePool roll-outs, and refuses to destroy
//! protected clusters.

#![deny(clippy::disallowed_methods)]

pub mod diff;
pub mod model;
pub mod view;

use std::collections::{BTreeMap, BTreeSet};

use hcpc_schema::immutable::IMMUTABLE_FIELDS;
use hcpc_schema::labels;
use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::live::LiveObject;
use crate::object::{Kind, ObjectId};
use crate::render::DesiredObject;
pub use model::{Action, Change, FieldChange, Plan, Summary};

/// What planning needs besides desired and live objects.
pub struct PlanInput<'a> {
    pub desired: &'a [DesiredObject],
    pub live: &'a [LiveObject],
    /// The fleet's ApplySet ID: only live objects carrying it may be deleted.
    pub applyset: &'a str,
    /// Clusters declared with `prevent-destroy #true`.
    pub protected: &'a BTreeSet<String>,
    pub target: String,
    pub input_digest: String,
    /// The live objects are exactly what hcpc wrote (dir), so any extra
    /// field is one hcpc used to set; otherwise (kube) managedFields tell.
    pub live_is_whole: bool,
}

pub fn plan(input: &PlanInput<'_>) -> (Plan, Diagnostics) {
    let mut diags = Diagnostics::default();
    let live: BTreeMap<&ObjectId, &LiveObject> = input.live.iter().map(|l| (&l.id, l)).collect();
    let desired_ids: BTreeSet<&ObjectId> = input.desired.iter().map(|d| &d.id).collect();
    let mut changes = Vec::new();
    for d in input.desired {
        let l = live.get(&d.id);
        let change = match l {
            None => Change {
                id: d.id.clone(),
                action: Action::Create,
                fields: diff::all_fields(d.body(), d.sensitive),
                notes: Vec::new(),
                live_version: None,
            },
            Some(l) if d.create_only => Change {
                id: d.id.clone(),
                action: Action::NoOp,
                fields: Vec::new(),
                notes: Vec::new(),
                live_version: l.version.clone(),
            },
            Some(l) => update(d, l, input.live_is_whole, input.protected, &mut diags),
        };
        changes.push(change);
    }
    // Deletes: objects of this fleet's ApplySet that are no longer declared,
    // in reverse dependency order. Namespaces are never deleted: they may
    // hold objects hcpc does not own.
    // A Secret a desired object still references (say, a pull secret now
    // given as `secret=`) is never deleted, even if hcpc created it.
    let referenced: BTreeSet<ObjectId> = input.desired.iter().flat_map(referenced_secrets).collect();
    let mut deletes: Vec<&LiveObject> = input
        .live
        .iter()
        .filter(|l| !desired_ids.contains(&l.id) && l.id.kind != Kind::Namespace && !referenced.contains(&l.id))
        .filter(|l| label(&l.body, labels::APPLYSET_PART_OF) == Some(input.applyset))
        .collect();
    deletes.sort_by(|a, b| b.id.kind.cmp(&a.id.kind).then(a.id.cmp(&b.id)));
    for l in deletes {
        let cluster = label(&l.body, labels::CLUSTER).unwrap_or_default();
        let protected = label(&l.body, labels::PREVENT_DESTROY) == Some("true")
            || (input.protected.contains(cluster) && !cluster.is_empty());
        if protected && l.id.kind == Kind::HostedCluster {
            diags.push(
                Diagnostic::error(Code::PreventDestroy, format!("{} would be destroyed, but it is protected by prevent-destroy", l.id))
                    .help(format!(
                        "to delete it, first declare `prevent-destroy #false` in cluster `{cluster}` and apply, then remove the cluster"
                    )),
            );
        }
        changes.push(Change {
            id: l.id.clone(),
            action: Action::Delete,
            fields: Vec::new(),
            notes: Vec::new(),
            live_version: l.version.clone(),
        });
    }
    let count = |a: Action| changes.iter().filter(|c| c.action == a).count();
    let summary = Summary {
        add: count(Action::Create),
        change: count(Action::Update),
        replace: count(Action::Replace),
        destroy: count(Action::Delete),
        unchanged: count(Action::NoOp),
    };
    let plan = Plan {
        format_version: model::FORMAT_VERSION.to_string(),
        target: input.target.clone(),
        input_digest: input.input_digest.clone(),
        summary,
        changes,
    };
    (plan, diags)
}

fn update(
    d: &DesiredObject,
    l: &LiveObject,
    whole: bool,
    protected: &BTreeSet<String>,
    diags: &mut Diagnostics,
) -> Change {
    let mut fields = diff::diff_object(d.body(), &l.body, d.sensitive);
    // Fields hcpc set before and no longer declares.
    let owned = if whole { None } else { diff::owned_fields(&l.body, labels::FIELD_MANAGER) };
    if whole || owned.is_some() {
        fields.extend(diff::removed_fields(d.body(), &l.body, owned, d.sensitive));
    }
    let mut notes = Vec::new();
    for f in &mut fields {
        if let Some(rule) = immutable_rule(d.id.kind, &f.path) {
            let was_empty = f.before.as_ref().is_none_or(|b| b.as_str() == Some(""));
            if rule.settable_once && was_empty {
                continue;
            }
            f.forces_replacement = true;
            notes.push(format!("{}: {}", f.path, rule.message));
        }
    }
    let action = if fields.is_empty() {
        Action::NoOp
    } else if notes.is_empty() {
        Action::Update
    } else {
        Action::Replace
    };
    // Replacing a HostedCluster destroys the hosted cluster: refused while
    // it is protected, by the configuration or by the live object's mark
    // (so one commit cannot both unprotect and replace it).
    let protected_here = d.cluster.as_ref().is_some_and(|c| protected.contains(c))
        || label(&l.body, labels::PREVENT_DESTROY) == Some("true");
    if action == Action::Replace && d.id.kind == Kind::HostedCluster && protected_here {
        diags.push(
            Diagnostic::error(
                Code::PreventDestroy,
                format!("{} must be replaced ({}), but it is protected by prevent-destroy", d.id, notes.join("; ")),
            )
            .help("HyperShift does not allow changing these fields in place: revert the change; to recreate the cluster, first apply `prevent-destroy #false`, then apply the change with --allow-replace"),
        );
    }
    if action == Action::Update && d.id.kind == Kind::NodePool {
        let rolls = fields.iter().any(|f| f.path.starts_with("spec.platform") || f.path.starts_with("spec.release"));
        let replace = d.body().pointer("/spec/management/upgradeType").and_then(Value::as_str) == Some("Replace");
        if rolls && replace {
            let n = l
                .body
                .pointer("/spec/replicas")
                .or_else(|| d.body().pointer("/spec/replicas"))
                .and_then(Value::as_u64)
                .or_else(|| d.body().pointer("/spec/autoScaling/max").and_then(Value::as_u64))
                .unwrap_or(0);
            notes.push(format!("rolls {n} node{}", if n == 1 { "" } else { "s" }));
        }
    }
    Change { id: d.id.clone(), action, fields, notes, live_version: l.version.clone() }
}

/// The immutable rule covering a changed path (the path itself or a parent).
fn immutable_rule(kind: Kind, path: &str) -> Option<&'static hcpc_schema::immutable::ImmutableField> {
    IMMUTABLE_FIELDS.iter().find(|r| {
        r.kind == kind.as_str()
            && (path == r.path
                || path.starts_with(&format!("{}.", r.path))
                || path.starts_with(&format!("{}[", r.path)))
    })
}

/// The Secrets a desired HostedCluster points to.
fn referenced_secrets(d: &DesiredObject) -> Vec<ObjectId> {
    if d.id.kind != Kind::HostedCluster {
        return Vec::new();
    }
    [
        "/spec/pullSecret/name",
        "/spec/sshKey/name",
        "/spec/platform/kubevirt/credentials/infraKubeConfigSecret/name",
        "/spec/secretEncryption/aescbc/activeKey/name",
    ]
    .iter()
    .filter_map(|p| d.body().pointer(p).and_then(Value::as_str))
    .map(|name| ObjectId::new(Kind::Secret, &d.id.namespace, name))
    .collect()
}

fn label<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get("metadata")?.get("labels")?.get(key)?.as_str()
}
