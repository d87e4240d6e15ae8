//! Stage 5: desired objects + live state → a [`Plan`].
//!
//! Pure: the live objects are read by `live` beforehand. Decides the action
//! per object (create, update, replace, delete, no-op), flags immutable
//! fields (SPEC §4 rule 6) and NodePool roll-outs, and refuses to destroy
//! protected clusters. Then groups the changes and totals their impact.

#![deny(clippy::disallowed_methods)]

pub mod capacity;
pub mod destruction;
pub mod diff;
pub mod document;
pub mod group;
pub mod impact;
pub mod markdown;
pub mod model;
pub mod names;
pub mod profiles;
pub mod rejected;
pub mod rollout;
pub mod view;

use std::collections::{BTreeMap, BTreeSet};

use hcpc_schema::immutable::IMMUTABLE_FIELDS;
use hcpc_schema::labels;
use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::object::{Kind, LiveObject, ObjectId};
use crate::render::DesiredObject;
pub use model::{Action, Change, FieldChange, FleetPlan, Move, Plan, Summary};

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
    /// Live HostedClusters of any fleet in the namespaces where this plan
    /// would prune Secrets: a Secret one of them names is kept.
    pub neighbours: &'a [LiveObject],
    /// HostedClusters on the fleet's other targets, for moves.
    pub elsewhere: &'a Elsewhere,
    /// The fleet's directory: secret files are named relative to it.
    pub fleet_dir: &'a std::path::Path,
}

/// The HostedClusters of the fleet's other targets, by the target they are
/// on, so that a cluster whose target changed is planned as a move.
#[derive(Debug, Default)]
pub struct Elsewhere {
    /// Declared on another target.
    pub declared: BTreeMap<ObjectId, String>,
    /// Live on another target (in this fleet's ApplySet) and no longer
    /// declared there.
    pub live: BTreeMap<ObjectId, String>,
}

/// A secret's source in words: `file PATH` (relative to the fleet's
/// directory when it can be) or `env VAR`.
fn describe_source(source: &crate::ir::SecretSource, fleet_dir: &std::path::Path) -> String {
    match source {
        crate::ir::SecretSource::File(p) => format!("file {}", relative_path(p, fleet_dir).display()),
        crate::ir::SecretSource::Env(v) => format!("env {v}"),
        crate::ir::SecretSource::Secret(n) => format!("Secret {n}"),
    }
}

/// `path` relative to `base` (both as written, `.` and `..` folded), or
/// `path` itself when no such spelling exists (`base` climbs above its start).
fn relative_path(path: &std::path::Path, base: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let (path, base) = (crate::source::normalize(path), crate::source::normalize(base));
    let p: Vec<Component<'_>> = path.components().filter(|c| *c != Component::CurDir).collect();
    let b: Vec<Component<'_>> = base.components().filter(|c| *c != Component::CurDir).collect();
    if path.is_absolute() != base.is_absolute() || b.contains(&Component::ParentDir) {
        return path;
    }
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = std::path::PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    p[common..].iter().for_each(|c| out.push(c));
    out
}

/// What is wrong with a live etcd encryption key Secret: HyperShift's
/// aescbc provider needs `data.key`, 32 bytes once base64-decoded.
fn etcd_key_problem(live: &Value) -> Option<&'static str> {
    use base64::Engine;
    let Some(key) = live.pointer("/data/key") else { return Some("has no `key`") };
    let decoded = key.as_str().and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok());
    match decoded {
        None => Some("has a `key` that is not base64"),
        Some(bytes) if bytes.len() != 32 => Some("has a `key` that is not 32 bytes long"),
        Some(_) => None,
    }
}

/// A HostedCluster to create whose cluster's other objects of this fleet
/// are live: it was there and was deleted outside hcpc. Said, so that
/// creating it again (new and empty) is no surprise.
fn gone(d: &DesiredObject, input: &PlanInput<'_>, diags: &mut Diagnostics) {
    let left: Vec<&LiveObject> = input
        .live
        .iter()
        .filter(|l| l.id.namespace == d.id.namespace && l.id.kind != Kind::Namespace)
        .filter(|l| label(&l.body, labels::APPLYSET_PART_OF) == Some(input.applyset))
        .filter(|l| label(&l.body, labels::CLUSTER) == Some(d.id.name.as_str()))
        .collect();
    if left.is_empty() {
        return;
    }
    let pools = left.iter().filter(|l| l.id.kind == Kind::NodePool).count();
    let what = match pools {
        0 => format!("{} of its objects still live", left.len()),
        n => format!("{} still live", names::plural(n as u64, "NodePool")),
    };
    diags.push(
        Diagnostic::warning(
            Code::Gone,
            format!(
                "cluster {} is gone: its HostedCluster was deleted outside hcpc ({what}); this plan creates it again, as a new cluster",
                d.id.name
            ),
        )
        .help("if the deletion was meant, remove the cluster from the configuration; otherwise apply to create it again"),
    );
}

pub fn plan(input: &PlanInput<'_>) -> (Plan, Diagnostics) {
    let mut diags = Diagnostics::default();
    let live: BTreeMap<&ObjectId, &LiveObject> = input.live.iter().map(|l| (&l.id, l)).collect();
    let desired_ids: BTreeSet<&ObjectId> = input.desired.iter().map(|d| &d.id).collect();
    let mut changes = Vec::new();
    for d in input.desired {
        let l = live.get(&d.id);
        if l.is_none() && d.id.kind == Kind::HostedCluster {
            gone(d, input, &mut diags);
        }
        let change = match l {
            None => Change {
                id: d.id.clone(),
                action: Action::Create,
                fields: diff::all_fields(d.body(), d.sensitive),
                notes: Vec::new(),
                cluster: d.cluster.clone(),
                rolls_nodes: None,
                live_version: None,
                moved_to: None,
                moved_from: input.elsewhere.live.get(&d.id).cloned(),
            },
            Some(l) if d.id.kind == Kind::Namespace && claimed_by_other(l, input.applyset).is_some() => {
                let other = claimed_by_other(l, input.applyset).unwrap_or_default();
                diags.push(
                    Diagnostic::warning(
                        Code::SharedNamespace,
                        format!("namespace `{}` is shared with another fleet (ApplySet {other}), which owns it", d.id.name),
                    )
                    .help("this fleet's objects there are planned as usual; the Namespace itself is left to the other fleet, so neither undoes the other's apply"),
                );
                Change {
                    id: d.id.clone(),
                    action: Action::NoOp,
                    fields: Vec::new(),
                    notes: vec![format!("shared with ApplySet {other}, which owns it")],
                    cluster: d.cluster.clone(),
                    rolls_nodes: None,
                    live_version: l.version.clone(),
                    moved_to: None,
                    moved_from: None,
                }
            }
            Some(l) if claimed_by_other(l, input.applyset).is_some() => {
                // Adopting it would have two fleets write, and prune, one
                // object: refused, with how to move it on purpose.
                let other = claimed_by_other(l, input.applyset).unwrap_or_default();
                diags.push(
                    Diagnostic::error(
                        Code::OtherFleet,
                        format!("{} is a member of another fleet (ApplySet {other}); it is not taken over", d.id),
                    )
                    .help(format!(
                        "that fleet's parent Secret `hcpc-fleet-<NAME>` carries the label {}={other} (`kubectl get secrets -A -l {}={other}`); to move the object here on purpose, relabel it with this fleet's ApplySet (`kubectl label --overwrite … {}={}`) and then remove it from the other fleet's configuration; otherwise remove it from this one",
                        labels::APPLYSET_ID,
                        labels::APPLYSET_ID,
                        labels::APPLYSET_PART_OF,
                        input.applyset
                    )),
                );
                Change {
                    id: d.id.clone(),
                    action: Action::NoOp,
                    fields: Vec::new(),
                    notes: vec![format!("member of another fleet (ApplySet {other}): not taken over")],
                    cluster: d.cluster.clone(),
                    rolls_nodes: None,
                    live_version: l.version.clone(),
                    moved_to: None,
                    moved_from: None,
                }
            }
            Some(l) if d.create_only => {
                if let Some(problem) = etcd_key_problem(&l.body) {
                    diags.push(
                        Diagnostic::error(Code::EtcdKeyInvalid, format!("{} {problem}", l.id))
                            .help(format!(
                                "hcpc never replaces an existing etcd key (data encrypted with it would be lost): if the cluster has never run, delete {} and apply again, which generates a key; otherwise restore the key it had",
                                l.id
                            )),
                    );
                }
                Change {
                    id: d.id.clone(),
                    action: Action::NoOp,
                    fields: Vec::new(),
                    notes: Vec::new(),
                    cluster: d.cluster.clone(),
                    rolls_nodes: None,
                    live_version: l.version.clone(),
                    moved_to: None,
                    moved_from: None,
                }
            }
            Some(l) => update(d, l, input.live_is_whole, input.protected, &mut diags),
        };
        let mut change = change;
        if let Some(source) = &d.source {
            // A reviewer sees where each Secret's data comes from.
            let from = Value::String(format!("(sensitive, from {})", describe_source(source, input.fleet_dir)));
            change
                .fields
                .iter_mut()
                .filter(|f| f.sensitive && f.after.is_some())
                .for_each(|f| f.after = Some(from.clone()));
        }
        changes.push(change);
    }
    // Deletes: objects of this fleet's ApplySet that are no longer declared,
    // in reverse dependency order. Namespaces are never deleted: they may
    // hold objects hcpc does not own.
    // A Secret a desired object still references (say, a pull secret now
    // given as `secret=`) is never deleted, even if hcpc created it.
    let referenced: BTreeSet<ObjectId> = input
        .desired
        .iter()
        .filter(|d| d.id.kind == Kind::HostedCluster)
        .flat_map(|d| secret_refs(d.body(), &d.id.namespace))
        .collect();
    let mut deletes: Vec<&LiveObject> = input
        .live
        .iter()
        .filter(|l| !desired_ids.contains(&l.id) && l.id.kind != Kind::Namespace && !referenced.contains(&l.id))
        .filter(|l| label(&l.body, labels::APPLYSET_PART_OF) == Some(input.applyset))
        .collect();
    // Nor one that a live HostedCluster outside the fleet names (another
    // fleet's, or one made by hand); those this plan deletes do not count.
    // One already being deleted still needs its Secrets until it is gone.
    let leaving: BTreeSet<&ObjectId> = deletes
        .iter()
        .filter(|l| l.id.kind == Kind::HostedCluster && deleting(&l.body).is_none())
        .map(|l| &l.id)
        .collect();
    let mut in_use: BTreeMap<ObjectId, &ObjectId> = BTreeMap::new();
    for hc in input.live.iter().chain(input.neighbours) {
        if hc.id.kind == Kind::HostedCluster && !desired_ids.contains(&hc.id) && !leaving.contains(&hc.id) {
            for secret in secret_refs(&hc.body, &hc.id.namespace) {
                in_use.entry(secret).or_insert(&hc.id);
            }
        }
    }
    deletes.retain(|l| match in_use.get(&l.id) {
        Some(hc) if input.live.iter().any(|o| &o.id == *hc && deleting(&o.body).is_some()) => {
            diags.push(Diagnostic::note(
                Code::Deleting,
                format!("{} is kept until {hc}, which is being deleted and names it, is gone", l.id),
            ));
            false
        }
        Some(hc) => {
            diags.push(
                Diagnostic::warning(
                    Code::SecretInUse,
                    format!("{} is no longer declared, but {hc} still names it, so it is kept", l.id),
                )
                .help(
                    "remove the reference from that HostedCluster (or delete the Secret by hand once nothing uses it)",
                ),
            );
            false
        }
        None => true,
    });
    deletes.sort_by(|a, b| b.id.kind.cmp(&a.id.kind).then(a.id.cmp(&b.id)));
    for l in deletes {
        let cluster = label(&l.body, labels::CLUSTER).unwrap_or_default();
        // Already being deleted: not a delete still to do.
        if let Some(state) = deleting(&l.body) {
            diags.push(Diagnostic::note(Code::Deleting, format!("{} is {state}", l.id)));
            changes.push(Change {
                id: l.id.clone(),
                action: Action::NoOp,
                fields: Vec::new(),
                notes: vec![state],
                cluster: (!cluster.is_empty()).then(|| cluster.to_string()),
                rolls_nodes: None,
                live_version: l.version.clone(),
                moved_to: None,
                moved_from: None,
            });
            continue;
        }
        let protected = label(&l.body, labels::PREVENT_DESTROY) == Some("true")
            || (input.protected.contains(cluster) && !cluster.is_empty());
        let moved_to = input.elsewhere.declared.get(&l.id).cloned();
        if let (true, Kind::HostedCluster, Some(to)) = (protected, l.id.kind, &moved_to) {
            diags.push(
                Diagnostic::error(
                    Code::PreventDestroy,
                    format!(
                        "{} moves from {} to {to}, which destroys it on {}, but it is protected by prevent-destroy",
                        l.id, input.target, input.target
                    ),
                )
                .help(format!(
                    "HyperShift cannot migrate a hosted cluster between management clusters; to recreate it on {to}, first declare `prevent-destroy #false` in cluster `{cluster}` and apply on {} (keeping its old target), then change its target and apply with --allow-replace",
                    input.target
                )),
            );
        } else if protected && l.id.kind == Kind::HostedCluster {
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
            cluster: (!cluster.is_empty()).then(|| cluster.to_string()),
            rolls_nodes: None,
            live_version: l.version.clone(),
            moved_to: moved_to.filter(|_| l.id.kind == Kind::HostedCluster),
            moved_from: None,
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
    let mut plan = Plan {
        format_version: model::FORMAT_VERSION.to_string(),
        target: input.target.clone(),
        input_digest: input.input_digest.clone(),
        // Set by the caller when the plan is limited (`--cluster`).
        limited_to: Vec::new(),
        summary,
        groups: group::groups(&changes),
        impact: impact::impact(&changes),
        destruction: destruction::destruction(&changes, input.live),
        changes,
        // Filled in by the caller, which holds the fleet (`capacity::report`).
        capacity: None,
    };
    plan.impact.vms_destroyed = plan.destruction.vms_destroyed;
    plan.impact.vms_replaced = plan.destruction.vms_replaced;
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
    let mut rolls_nodes = None;
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
            rolls_nodes = Some(n);
        }
    }
    Change {
        id: d.id.clone(),
        action,
        fields,
        notes,
        cluster: d.cluster.clone(),
        rolls_nodes,
        live_version: l.version.clone(),
        moved_to: None,
        moved_from: None,
    }
}

/// `deleting (waiting for finalizers: …)` for an object whose deletion has
/// begun (`metadata.deletionTimestamp`), else `None`.
pub fn deleting(body: &Value) -> Option<String> {
    body.pointer("/metadata/deletionTimestamp")?;
    let finalizers: Vec<&str> = body
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Some(if finalizers.is_empty() {
        "deleting".to_string()
    } else {
        format!("deleting (waiting for finalizers: {})", finalizers.join(", "))
    })
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

/// The Secrets a HostedCluster in `namespace` names: pull secret, SSH key,
/// etcd encryption keys (active and backup), infrastructure credentials.
pub fn secret_refs(hosted_cluster: &Value, namespace: &str) -> Vec<ObjectId> {
    [
        "/spec/pullSecret/name",
        "/spec/sshKey/name",
        "/spec/platform/kubevirt/credentials/infraKubeConfigSecret/name",
        "/spec/secretEncryption/aescbc/activeKey/name",
        "/spec/secretEncryption/aescbc/backupKey/name",
    ]
    .iter()
    .filter_map(|p| hosted_cluster.pointer(p).and_then(Value::as_str))
    .map(|name| ObjectId::new(Kind::Secret, namespace, name))
    .collect()
}

/// The ApplySet of another fleet that claims this live Namespace.
fn claimed_by_other<'a>(namespace: &'a LiveObject, applyset: &str) -> Option<&'a str> {
    label(&namespace.body, labels::APPLYSET_PART_OF).filter(|owner| *owner != applyset)
}

fn label<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get("metadata")?.get("labels")?.get(key)?.as_str()
}
