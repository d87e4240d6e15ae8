//! Groups of changes, so a fleet-wide edit reads as one change.
//!
//! A release bump over 200 clusters changes 800 objects the same way; a
//! reviewer needs to read that once, and to see the one object that was
//! edited differently. Groups are computed once here and read by every view:
//!
//! - Updates and replacements: every distinct field change (same path, same
//!   old and new value) is listed once, in the group of exactly the objects
//!   that have it; field changes made to the same objects share a group. An
//!   object with a change no other object has gets a group of its own with
//!   those changes: that is the unusual edit.
//! - Creates: objects of one kind and the same fields (one shape, e.g. the
//!   `gpu` pools of 200 new clusters) form a group listing the values they
//!   all share and the fields whose values differ.
//! - Deletes: one group per kind.
//!
//! Values derived from an object's cluster name (`c00042`,
//! `c00042-pull-secret`) are compared as templates (`{cluster}`,
//! `{cluster}-pull-secret`), so renaming a Secret in every cluster is one
//! change, not 200. A group shows the template only when its objects' real
//! values differ.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{Action, Change, FieldChange};
use crate::object::ObjectId;

/// Stands for each object's cluster name in a grouped value.
pub const CLUSTER_PLACEHOLDER: &str = "{cluster}";

/// Changes shared by the objects of a group (or belonging to one object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// `create`, `delete`, or for field changes `update` (`replace` when a
    /// field forces it). A group of one object has that object's action.
    pub action: Action,
    /// The objects, in plan order.
    pub objects: Vec<ObjectId>,
    /// Updates: the field changes every object of the group has. Creates:
    /// the values every object of the group shares.
    pub fields: Vec<FieldChange>,
    /// Creates only: the fields whose values differ between the objects
    /// (each object's values are in `changes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub varying: Vec<Varying>,
    /// The profile all the group's clusters take, when they share one
    /// (set by `profiles::name_profiles`, which knows the fleet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<super::profiles::ProfileScope>,
}

/// A field of a group of created objects whose values differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Varying {
    pub path: String,
    /// How many different values the objects have.
    pub values: usize,
}

impl Group {
    /// A group of one object: its own changes, shown on their own.
    pub fn is_single(&self) -> bool {
        self.objects.len() == 1
    }
}

/// `value` with the cluster's name replaced by [`CLUSTER_PLACEHOLDER`] where
/// a string is that name or starts with `<name>-`.
pub fn template(value: &Value, cluster: Option<&str>) -> Value {
    let Some(cluster) = cluster.filter(|c| !c.is_empty()) else { return value.clone() };
    match value {
        Value::String(s) if s == cluster => Value::String(CLUSTER_PLACEHOLDER.to_string()),
        Value::String(s) => match s.strip_prefix(cluster).filter(|rest| rest.starts_with('-')) {
            Some(rest) => Value::String(format!("{CLUSTER_PLACEHOLDER}{rest}")),
            None => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| template(v, Some(cluster))).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), template(v, Some(cluster)))).collect()),
        _ => value.clone(),
    }
}

fn templated(f: &FieldChange, cluster: Option<&str>) -> FieldChange {
    FieldChange {
        before: f.before.as_ref().map(|v| template(v, cluster)),
        after: f.after.as_ref().map(|v| template(v, cluster)),
        ..f.clone()
    }
}

fn key(f: &FieldChange) -> String {
    serde_json::to_string(f).unwrap_or_default()
}

/// One distinct field change and the changes (by index) that have it.
struct Shared {
    raw: FieldChange,
    /// The template all members agree on, if they do.
    template: Option<FieldChange>,
    members: Vec<usize>,
    /// Merged from this many different real values.
    sources: usize,
}

/// Groups the plan's changes (see the module documentation).
pub fn groups(changes: &[Change]) -> Vec<Group> {
    let mut out = updates(changes);
    out.extend(creates(changes));
    out.extend(deletes(changes));
    // Shared groups first: updates (larger first), then creates and
    // deletes in plan order; then each object's own changes in plan order.
    let position: BTreeMap<&ObjectId, usize> = changes.iter().enumerate().map(|(i, c)| (&c.id, i)).collect();
    let first = |g: &Group| g.objects.first().and_then(|id| position.get(id)).copied().unwrap_or(usize::MAX);
    let category = |g: &Group| match g.action {
        Action::Update | Action::Replace | Action::NoOp => 0,
        Action::Create => 1,
        Action::Delete => 2,
    };
    out.sort_by_key(|g| match (g.is_single(), category(g)) {
        (true, _) => (1, 0, 0, first(g)),
        (false, 0) => (0, 0, usize::MAX - g.objects.len(), first(g)),
        (false, c) => (0, c, 0, first(g)),
    });
    out
}

fn updates(changes: &[Change]) -> Vec<Group> {
    // Pass 1: identical field changes.
    let mut slots: Vec<Shared> = Vec::new();
    let mut by_raw: BTreeMap<String, usize> = BTreeMap::new();
    for (i, c) in changes.iter().enumerate().filter(|(_, c)| matches!(c.action, Action::Update | Action::Replace)) {
        for f in &c.fields {
            let t = templated(f, c.cluster.as_deref());
            let slot = *by_raw.entry(key(f)).or_insert_with(|| {
                slots.push(Shared { raw: f.clone(), template: Some(t.clone()), members: Vec::new(), sources: 1 });
                slots.len() - 1
            });
            let s = &mut slots[slot];
            if s.template.as_ref().is_some_and(|st| *st != t) {
                s.template = None;
            }
            s.members.push(i);
        }
    }
    // Pass 2: changes that differ only by their cluster's name.
    let mut merged: Vec<Shared> = Vec::new();
    let mut by_template: BTreeMap<String, usize> = BTreeMap::new();
    for (n, s) in slots.into_iter().enumerate() {
        let k = match &s.template {
            Some(t) => format!("t{}", key(t)),
            None => format!("r{n}"),
        };
        match by_template.get(&k) {
            Some(&m) => {
                let into = &mut merged[m];
                into.members.extend(s.members);
                into.members.sort_unstable();
                into.sources += 1;
            }
            None => {
                by_template.insert(k, merged.len());
                merged.push(s);
            }
        }
    }
    // Field changes made to the same objects share a group.
    let mut groups: Vec<Group> = Vec::new();
    let mut by_members: BTreeMap<Vec<usize>, usize> = BTreeMap::new();
    for s in merged {
        let field = match (&s.template, s.sources > 1) {
            (Some(t), true) => t.clone(),
            _ => s.raw,
        };
        let g = *by_members.entry(s.members.clone()).or_insert_with(|| {
            let action = match s.members.as_slice() {
                [one] => changes[*one].action,
                _ => Action::Update,
            };
            let objects = s.members.iter().map(|&i| changes[i].id.clone()).collect();
            groups.push(Group { action, objects, fields: Vec::new(), varying: Vec::new(), profile: None });
            groups.len() - 1
        });
        if field.forces_replacement {
            groups[g].action = Action::Replace;
        }
        groups[g].fields.push(field);
    }
    groups
}

fn creates(changes: &[Change]) -> Vec<Group> {
    // One shape: the kind and the set of paths.
    let mut shapes: BTreeMap<(crate::object::Kind, Vec<&str>), Vec<&Change>> = BTreeMap::new();
    for c in changes.iter().filter(|c| c.action == Action::Create) {
        let paths = c.fields.iter().map(|f| f.path.as_str()).collect();
        shapes.entry((c.id.kind, paths)).or_default().push(c);
    }
    let mut out = Vec::new();
    for members in shapes.into_values() {
        let objects: Vec<ObjectId> = members.iter().map(|c| c.id.clone()).collect();
        let [one] = members.as_slice() else {
            let (fields, varying) = common_and_varying(&members);
            out.push(Group { action: Action::Create, objects, fields, varying, profile: None });
            continue;
        };
        out.push(Group {
            action: Action::Create,
            objects,
            fields: one.fields.clone(),
            varying: Vec::new(),
            profile: None,
        });
    }
    out
}

/// For created objects of one shape: the values all share (as templates
/// when only the cluster's name differs) and the fields that differ.
fn common_and_varying(members: &[&Change]) -> (Vec<FieldChange>, Vec<Varying>) {
    let (mut common, mut varying) = (Vec::new(), Vec::new());
    let Some(first) = members.first() else { return (common, varying) };
    for (n, f) in first.fields.iter().enumerate() {
        let raw: Vec<&Option<Value>> = members.iter().map(|c| &c.fields[n].after).collect();
        if raw.iter().all(|v| *v == raw[0]) {
            common.push(f.clone());
            continue;
        }
        let templates: Vec<Option<Value>> =
            members.iter().map(|c| c.fields[n].after.as_ref().map(|v| template(v, c.cluster.as_deref()))).collect();
        if templates.iter().all(|t| *t == templates[0]) {
            common.push(FieldChange { after: templates[0].clone(), ..f.clone() });
            continue;
        }
        let mut distinct: Vec<String> =
            raw.iter().map(|v| v.as_ref().map(|v| v.to_string()).unwrap_or_default()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        varying.push(Varying { path: f.path.clone(), values: distinct.len() });
    }
    (common, varying)
}

fn deletes(changes: &[Change]) -> Vec<Group> {
    let mut by_kind: BTreeMap<crate::object::Kind, Vec<ObjectId>> = BTreeMap::new();
    for c in changes.iter().filter(|c| c.action == Action::Delete) {
        by_kind.entry(c.id.kind).or_default().push(c.id.clone());
    }
    by_kind
        .into_values()
        .map(|objects| Group {
            action: Action::Delete,
            objects,
            fields: Vec::new(),
            varying: Vec::new(),
            profile: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::object::Kind;

    fn field(path: &str, before: Value, after: Value) -> FieldChange {
        FieldChange {
            path: path.into(),
            before: Some(before),
            after: Some(after),
            sensitive: false,
            forces_replacement: false,
        }
    }

    fn update(kind: Kind, name: &str, cluster: &str, fields: Vec<FieldChange>) -> Change {
        Change {
            id: ObjectId::new(kind, "clusters", name),
            action: Action::Update,
            fields,
            notes: Vec::new(),
            cluster: Some(cluster.into()),
            rolls_nodes: None,
            live_version: Some("1".into()),
            moved_to: None,
            moved_from: None,
        }
    }

    fn release(from: &str, to: &str) -> FieldChange {
        field("spec.release.image", json!(from), json!(to))
    }

    #[test]
    fn one_release_bump_is_one_group_and_the_odd_edit_stands_alone() {
        let mut changes = Vec::new();
        for i in 0..30 {
            let c = format!("c{i:02}");
            changes.push(update(Kind::HostedCluster, &c, &c, vec![release("r:1", "r:2")]));
            let mut pool = vec![release("r:1", "r:2")];
            if i == 7 {
                pool.push(field("spec.replicas", json!(2), json!(3)));
            }
            changes.push(update(Kind::NodePool, &format!("{c}-w"), &c, pool));
        }
        let groups = groups(&changes);
        assert_eq!(groups.len(), 2, "{groups:#?}");
        assert_eq!(groups[0].objects.len(), 60);
        assert_eq!(groups[0].fields, vec![release("r:1", "r:2")]);
        assert_eq!(groups[1].objects, vec![ObjectId::new(Kind::NodePool, "clusters", "c07-w")]);
        assert_eq!(groups[1].fields, vec![field("spec.replicas", json!(2), json!(3))]);
    }

    #[test]
    fn a_different_new_value_is_its_own_group() {
        let changes = vec![
            update(Kind::HostedCluster, "a", "a", vec![release("r:1", "r:2")]),
            update(Kind::HostedCluster, "b", "b", vec![release("r:1", "r:2")]),
            update(Kind::HostedCluster, "c", "c", vec![release("r:1", "r:3")]),
        ];
        let groups = groups(&changes);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[1].fields, vec![release("r:1", "r:3")]);
    }

    #[test]
    fn values_named_after_the_cluster_group_as_templates() {
        let changes: Vec<Change> = ["a", "b", "c"]
            .iter()
            .map(|c| {
                update(
                    Kind::HostedCluster,
                    c,
                    c,
                    vec![field("spec.pullSecret.name", json!(format!("{c}-pull")), json!(format!("{c}-pull-2")))],
                )
            })
            .collect();
        let groups = groups(&changes);
        assert_eq!(groups.len(), 1);
        assert_eq!(
            groups[0].fields,
            vec![field("spec.pullSecret.name", json!("{cluster}-pull"), json!("{cluster}-pull-2"))]
        );
        // The same real value everywhere stays as it is.
        assert_eq!(template(&json!("ab-x"), Some("a")), json!("ab-x"));
        assert_eq!(template(&json!(["a-x", "a"]), Some("a")), json!(["{cluster}-x", "{cluster}"]));
    }

    #[test]
    fn created_objects_of_one_shape_share_their_common_values() {
        let create = |c: &str, team: &str| Change {
            id: ObjectId::new(Kind::HostedCluster, "clusters", c),
            action: Action::Create,
            fields: vec![
                FieldChange {
                    path: "metadata.name".into(),
                    before: None,
                    after: Some(json!(c)),
                    sensitive: false,
                    forces_replacement: false,
                },
                FieldChange {
                    path: "metadata.labels.team".into(),
                    before: None,
                    after: Some(json!(team)),
                    sensitive: false,
                    forces_replacement: false,
                },
                FieldChange {
                    path: "spec.fips".into(),
                    before: None,
                    after: Some(json!(false)),
                    sensitive: false,
                    forces_replacement: false,
                },
            ],
            notes: Vec::new(),
            cluster: Some(c.into()),
            rolls_nodes: None,
            live_version: None,
            moved_to: None,
            moved_from: None,
        };
        let groups = groups(&[create("a", "x"), create("b", "y"), create("c", "y")]);
        assert_eq!(groups.len(), 1);
        let paths: Vec<_> = groups[0].fields.iter().map(|f| (f.path.as_str(), f.after.clone())).collect();
        assert_eq!(paths, vec![("metadata.name", Some(json!("{cluster}"))), ("spec.fips", Some(json!(false)))]);
        assert_eq!(groups[0].varying, vec![Varying { path: "metadata.labels.team".into(), values: 2 }]);
    }
}
