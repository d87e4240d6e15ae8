//! Stage 4: resolved fleet → Kubernetes objects.
//!
//! Pure and deterministic: no clock, no randomness, sorted maps. Shapes
//! follow `hcp create cluster kubevirt --render` (see `tests/conformance`)
//! except where SPEC §5 says otherwise: no status or empty Go values, no
//! random infraID suffix or etcd key, fields left to the server omitted,
//! ownership labels added.

#![deny(clippy::disallowed_methods)]

mod hosted_cluster;
mod node_pool;
pub mod yaml;

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::ir::{Cluster, Fleet, InfraCredentials, SecretSource};
use crate::object::{Kind, ObjectId};
use crate::resolve::{ResolvedFleet, names};
use hcpc_schema::labels;

/// The bytes behind each `file=`/`env=` source, read by the CLI before rendering.
pub type SecretValues = BTreeMap<SecretSource, Vec<u8>>;

/// One object hcpc wants to exist.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObject {
    pub id: ObjectId,
    /// The full object as it is sent to the server.
    pub body: Value,
    /// The cluster that declares it (`None` for shared Namespaces).
    pub cluster: Option<String>,
    /// Secret data: never printed, only digested.
    pub sensitive: bool,
    /// Created once and never updated (the etcd encryption key).
    pub create_only: bool,
}

/// The ApplySet parent of a fleet (KEP-3659): a Secret that records which
/// group-kinds and namespaces the fleet's objects live in.
pub fn applyset_parent(fleet: &Fleet) -> ObjectId {
    ObjectId::new(Kind::Secret, &fleet.namespace, &format!("hcpc-fleet-{}", fleet.name))
}

/// The ApplySet ID as KEP-3659 defines it: `applyset-<base64url(sha256(<name>.<namespace>.<kind>.<group>))>-v1`.
pub fn applyset_id(fleet: &Fleet) -> String {
    let parent = applyset_parent(fleet);
    let digest = Sha256::digest(format!("{}.{}.{}.", parent.name, parent.namespace, parent.kind).as_bytes());
    format!("applyset-{}-v1", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
}

/// `<cluster>-<5 lowercase alphanumerics>` from a hash of namespace/name, so
/// it is stable across runs and machines (hcp draws it at random); the
/// cluster part is cut to 21 characters as hcp cuts it.
pub fn infra_id(c: &Cluster) -> String {
    if let Some(id) = &c.infra_id {
        return id.value.clone();
    }
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let digest = Sha256::digest(format!("{}/{}", c.namespace.value, c.name.value).as_bytes());
    let suffix: String = digest.iter().take(5).map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    // Like hcp, at most 21 characters of the name, so the infraID stays a
    // valid label value however long the cluster name is.
    let prefix: String = c.name.value.chars().take(21).collect();
    format!("{}-{suffix}", prefix.trim_end_matches('-'))
}

/// Renders every object of the fleet, in apply order.
pub fn render(resolved: &ResolvedFleet, secrets: &SecretValues) -> Vec<DesiredObject> {
    let fleet = &resolved.fleet;
    let applyset = applyset_id(fleet);
    let mut by_id: BTreeMap<ObjectId, DesiredObject> = BTreeMap::new();
    for c in &fleet.clusters {
        for o in render_cluster(c, &applyset, secrets) {
            by_id.entry(o.id.clone()).or_insert(o);
        }
    }
    resolved.graph.apply_order().into_iter().filter_map(|id| by_id.remove(&id)).collect()
}

/// A Namespace claimed by the fleet's ApplySet.
fn namespace(name: &str, applyset: &str) -> DesiredObject {
    DesiredObject {
        id: ObjectId::new(Kind::Namespace, "", name),
        body: json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": ownership(applyset, None)},
        }),
        cluster: None,
        sensitive: false,
        create_only: false,
    }
}

/// The Namespace that holds the fleet's lock and ApplySet parent (it may
/// hold no cluster).
pub fn fleet_namespace(fleet: &Fleet) -> DesiredObject {
    namespace(&fleet.namespace, &applyset_id(fleet))
}

/// The ApplySet parent Secret (KEP-3659): it lists every group-kind and
/// every namespace the fleet's members are in, `namespaces` being the
/// union of where they are and where they will be until pruning is done.
pub fn applyset_parent_object(fleet: &Fleet, namespaces: &[&str]) -> DesiredObject {
    let id = applyset_parent(fleet);
    let mut others: Vec<&str> = namespaces.iter().copied().filter(|n| !n.is_empty() && *n != id.namespace).collect();
    others.sort_unstable();
    others.dedup();
    let body = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": id.name,
            "namespace": id.namespace,
            "labels": {labels::APPLYSET_ID: applyset_id(fleet), labels::MANAGED_BY: labels::MANAGED_BY_VALUE},
            "annotations": {
                labels::APPLYSET_TOOLING: format!("hcpc/v{}", env!("CARGO_PKG_VERSION")),
                labels::APPLYSET_CONTAINS_GROUP_KINDS: "HostedCluster.hypershift.openshift.io,Namespace,NodePool.hypershift.openshift.io,Secret",
                labels::APPLYSET_ADDITIONAL_NAMESPACES: others.join(","),
            },
        },
        "type": "Opaque",
    });
    DesiredObject { id, body, cluster: None, sensitive: false, create_only: false }
}

fn ownership(applyset: &str, cluster: Option<&str>) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert(labels::MANAGED_BY.to_string(), labels::MANAGED_BY_VALUE.to_string());
    l.insert(labels::APPLYSET_PART_OF.to_string(), applyset.to_string());
    if let Some(c) = cluster {
        l.insert(labels::CLUSTER.to_string(), c.to_string());
    }
    l
}

fn render_cluster(c: &Cluster, applyset: &str, secrets: &SecretValues) -> Vec<DesiredObject> {
    let ns = c.namespace.value.as_str();
    let cluster = c.name.value.as_str();
    let mut out = vec![namespace(ns, applyset)];
    let secret = |name: String, key: &str, data: Option<&[u8]>, opaque: bool, create_only: bool| {
        let mut l = ownership(applyset, Some(cluster));
        l.insert(labels::SAFE_TO_DELETE_WITH_CLUSTER.to_string(), "true".to_string());
        let mut body = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": ns, "labels": l},
        });
        if let Some(bytes) = data {
            body["data"] = json!({ key: base64::engine::general_purpose::STANDARD.encode(bytes) });
        }
        if opaque {
            body["type"] = json!("Opaque");
        }
        DesiredObject {
            id: ObjectId::new(Kind::Secret, ns, &name),
            body,
            cluster: Some(cluster.to_string()),
            sensitive: true,
            create_only,
        }
    };
    let value_of = |s: &SecretSource| secrets.get(s).map(Vec::as_slice).unwrap_or_default();
    if matches!(c.pull_secret.value, SecretSource::File(_) | SecretSource::Env(_)) {
        out.push(secret(
            names::pull_secret(c),
            ".dockerconfigjson",
            Some(value_of(&c.pull_secret.value)),
            false,
            false,
        ));
    }
    if let Some(k) = c.ssh_key.as_ref().filter(|k| matches!(k.value, SecretSource::File(_) | SecretSource::Env(_))) {
        out.push(secret(names::ssh_key(c), "id_rsa.pub", Some(value_of(&k.value)), false, false));
    }
    if let Some(InfraCredentials::KubeconfigFile(f)) = c.infra_cluster.as_ref().map(|i| &i.credentials) {
        let bytes = value_of(&SecretSource::File(f.value.clone()));
        out.push(secret(names::infra_credentials(c), "kubeconfig", Some(bytes), true, false));
    }
    // The key itself is generated at first apply and never rewritten.
    out.push(secret(names::etcd_encryption_key(c), "key", None, true, true));

    let hc = hosted_cluster::render(c, ownership(applyset, Some(cluster)));
    out.push(DesiredObject {
        id: ObjectId::new(Kind::HostedCluster, ns, cluster),
        body: to_value(&hc),
        cluster: Some(cluster.to_string()),
        sensitive: false,
        create_only: false,
    });
    for p in &c.node_pools {
        let np = node_pool::render(c, p, ownership(applyset, Some(cluster)));
        out.push(DesiredObject {
            id: ObjectId::new(Kind::NodePool, ns, &np.metadata.name),
            body: to_value(&np),
            cluster: Some(cluster.to_string()),
            sensitive: false,
            create_only: false,
        });
    }
    out
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    // The HyperShift types contain only strings, integers, booleans, maps
    // with string keys and lists, which always serialise.
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// Replaces each Secret data value of `body` with `f(value)`.
pub fn map_data(body: &mut Value, f: impl Fn(&Value) -> Value) {
    if let Some(Value::Object(data)) = body.get_mut("data") {
        for v in data.values_mut() {
            *v = f(v);
        }
    }
}

/// Server bookkeeping left out of a printed live object.
const SERVER_METADATA: &[&str] = &["managedFields", "resourceVersion", "uid", "generation", "creationTimestamp"];
/// Where `kubectl apply` copies a whole object, Secret data included.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A copy of a live object safe to print. Secrets are masked by their
/// identity, not by what the body says (items of a LIST carry no `kind`):
/// every data and stringData value, and the last-applied copy of the whole
/// Secret, become `(sensitive)`. Kind and apiVersion are restored and
/// server bookkeeping (managedFields, resourceVersion, status) dropped.
pub fn masked_live(l: &crate::object::LiveObject) -> Value {
    let mut body = l.body.clone();
    let Some(map) = body.as_object_mut() else { return Value::Null };
    map.insert("apiVersion".into(), Value::String(l.id.kind.api_version().into()));
    map.insert("kind".into(), Value::String(l.id.kind.as_str().into()));
    map.remove("status");
    if let Some(Value::Object(meta)) = map.get_mut("metadata") {
        SERVER_METADATA.iter().for_each(|k| {
            meta.remove(*k);
        });
    }
    if l.id.kind == Kind::Secret {
        let sensitive = || Value::String("(sensitive)".to_string());
        for key in ["data", "stringData"] {
            match map.get_mut(key) {
                Some(Value::Object(data)) => data.values_mut().for_each(|v| *v = sensitive()),
                Some(other) => *other = sensitive(),
                None => {}
            }
        }
        if let Some(Value::Object(annotations)) = map.get_mut("metadata").and_then(|m| m.get_mut("annotations"))
            && let Some(copy) = annotations.get_mut(LAST_APPLIED)
        {
            *copy = sensitive();
        }
    }
    body
}

/// A copy of the object safe to print: Secret data values replaced.
pub fn masked(o: &DesiredObject) -> Value {
    let mut body = o.body.clone();
    if o.sensitive {
        map_data(&mut body, |_| Value::String("(sensitive)".to_string()));
    }
    body
}
