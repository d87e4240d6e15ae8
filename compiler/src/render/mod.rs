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
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ir::{Cluster, Fleet, InfraCredentials, SecretSource};
use crate::object::{Kind, ObjectId};
use crate::resolve::{ResolvedFleet, names};
use hcpc_schema::hypershift::{HostedCluster, NodePool, ObjectMeta};
use hcpc_schema::labels;

/// The bytes behind each `file=`/`env=` source, read by the CLI before rendering.
pub type SecretValues = BTreeMap<SecretSource, Vec<u8>>;

/// One object hcpc wants to exist.
///
/// The body is kept typed ([`Body`]): `render` and `check` write it to YAML
/// straight from the typed structs. [`DesiredObject::body`] gives it as
/// JSON (as sent to the server, compared by `plan`), built on first use.
#[derive(Debug, Clone)]
pub struct DesiredObject {
    pub id: ObjectId,
    typed: Body,
    value: OnceLock<Value>,
    /// The cluster that declares it (`None` for shared Namespaces).
    pub cluster: Option<String>,
    /// Secret data: never printed, only digested.
    pub sensitive: bool,
    /// Created once and never updated (the etcd encryption key).
    pub create_only: bool,
    /// Where a Secret's data is read from, for the plan to name (never its bytes).
    pub source: Option<SecretSource>,
}

impl PartialEq for DesiredObject {
    fn eq(&self, other: &Self) -> bool {
        (&self.id, &self.typed, &self.cluster, self.sensitive, self.create_only)
            == (&other.id, &other.typed, &other.cluster, other.sensitive, other.create_only)
    }
}

impl DesiredObject {
    fn new(id: ObjectId, typed: Body, cluster: Option<&str>) -> DesiredObject {
        let sensitive = matches!(typed, Body::Secret(_));
        DesiredObject {
            id,
            typed,
            value: OnceLock::new(),
            cluster: cluster.map(str::to_string),
            sensitive,
            create_only: false,
            source: None,
        }
    }

    /// The full object as it is sent to the server.
    pub fn body(&self) -> &Value {
        self.value.get_or_init(|| to_value(&self.typed))
    }

    /// The typed object.
    pub fn typed(&self) -> &Body {
        &self.typed
    }

    /// Gives a create-only Secret (the etcd encryption key) its `key`
    /// (base64), so that `render --show-secrets` output deploys as is.
    pub fn fill_key(&mut self, key: String) {
        if let Body::Secret(s) = &mut self.typed
            && self.create_only
            && s.data.is_none()
        {
            s.data = Some(BTreeMap::from([("key".to_string(), key)]));
            self.value = OnceLock::new();
        }
    }

    /// Appends the object as one YAML document; Secret data is masked
    /// unless `show_secrets`.
    pub fn write_yaml(&self, out: &mut String, show_secrets: bool) {
        match &self.typed {
            Body::Secret(s) if !show_secrets && s.data.is_some() => yaml::write_yaml(out, &s.masked()),
            body => yaml::write_yaml(out, body),
        }
    }
}

/// The object types hcpc renders. Serialises as the object itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Body {
    Namespace(Namespace),
    Secret(Secret),
    HostedCluster(Box<HostedCluster>),
    NodePool(Box<NodePool>),
}

/// A core/v1 Namespace as hcpc writes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
}

/// A core/v1 Secret as hcpc writes it: one data key (base64) or none, for
/// the etcd key that apply generates.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    pub api_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<&'static str>,
}

impl Secret {
    /// A copy safe to print: data values replaced.
    fn masked(&self) -> Secret {
        let data = self.data.as_ref().map(|d| d.keys().map(|k| (k.clone(), SENSITIVE.to_string())).collect());
        Secret { data, metadata: self.metadata.clone(), ..*self }
    }
}

/// What printed Secret data values are replaced with.
const SENSITIVE: &str = "(sensitive)";

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
    let clusters: Vec<&Cluster> = fleet.clusters.iter().collect();
    let rendered = crate::parallel::map(clusters, fleet.clusters.len() * crate::resolve::CLUSTER_BYTES, |c| {
        render_cluster(c, &applyset, secrets)
    });
    // Apply order; a Namespace several clusters share is kept once.
    let position = resolved.graph.apply_positions();
    let mut slots: Vec<Option<DesiredObject>> = std::iter::repeat_with(|| None).take(position.len()).collect();
    for o in rendered.into_iter().flatten() {
        if let Some(slot) = position.get(&o.id).map(|&i| &mut slots[i])
            && slot.is_none()
        {
            *slot = Some(o);
        }
    }
    slots.into_iter().flatten().collect()
}

/// A Namespace claimed by the fleet's ApplySet.
fn namespace(name: &str, applyset: &str) -> DesiredObject {
    let namespace = Namespace {
        api_version: "v1",
        kind: "Namespace",
        metadata: ObjectMeta { labels: ownership(applyset, None), name: name.to_string(), ..ObjectMeta::default() },
    };
    DesiredObject::new(ObjectId::new(Kind::Namespace, "", name), Body::Namespace(namespace), None)
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
    let labels = BTreeMap::from([
        (labels::APPLYSET_ID.to_string(), applyset_id(fleet)),
        (labels::MANAGED_BY.to_string(), labels::MANAGED_BY_VALUE.to_string()),
    ]);
    let annotations = BTreeMap::from([
        (labels::APPLYSET_TOOLING.to_string(), format!("hcpc/v{}", env!("CARGO_PKG_VERSION"))),
        (
            labels::APPLYSET_CONTAINS_GROUP_KINDS.to_string(),
            "HostedCluster.hypershift.openshift.io,Namespace,NodePool.hypershift.openshift.io,Secret".to_string(),
        ),
        (labels::APPLYSET_ADDITIONAL_NAMESPACES.to_string(), others.join(",")),
    ]);
    let body = Secret {
        api_version: "v1",
        data: None,
        kind: "Secret",
        metadata: ObjectMeta { annotations, labels, name: id.name.clone(), namespace: Some(id.namespace.clone()) },
        type_: Some("Opaque"),
    };
    // It holds no data: nothing in it is sensitive.
    let mut parent = DesiredObject::new(id, Body::Secret(body), None);
    parent.sensitive = false;
    parent
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
    let mut out = Vec::with_capacity(6 + c.node_pools.len());
    out.push(namespace(ns, applyset));
    let secret = |name: String, key: &str, data: Option<&[u8]>, opaque: bool| {
        let mut labels = ownership(applyset, Some(cluster));
        labels.insert(labels::SAFE_TO_DELETE_WITH_CLUSTER.to_string(), "true".to_string());
        let body = Secret {
            api_version: "v1",
            data: data.map(|bytes| {
                BTreeMap::from([(key.to_string(), base64::engine::general_purpose::STANDARD.encode(bytes))])
            }),
            kind: "Secret",
            metadata: ObjectMeta {
                labels,
                name: name.clone(),
                namespace: Some(ns.to_string()),
                ..ObjectMeta::default()
            },
            type_: opaque.then_some("Opaque"),
        };
        DesiredObject::new(ObjectId::new(Kind::Secret, ns, &name), Body::Secret(body), Some(cluster))
    };
    let value_of = |s: &SecretSource| secrets.get(s).map(Vec::as_slice).unwrap_or_default();
    if matches!(c.pull_secret.value, SecretSource::File(_) | SecretSource::Env(_)) {
        let mut o = secret(names::pull_secret(c), ".dockerconfigjson", Some(value_of(&c.pull_secret.value)), false);
        o.source = Some(c.pull_secret.value.clone());
        out.push(o);
    }
    if let Some(k) = c.ssh_key.as_ref().filter(|k| matches!(k.value, SecretSource::File(_) | SecretSource::Env(_))) {
        let mut o = secret(names::ssh_key(c), "id_rsa.pub", Some(value_of(&k.value)), false);
        o.source = Some(k.value.clone());
        out.push(o);
    }
    if let Some(InfraCredentials::KubeconfigFile(f)) = c.infra_cluster.as_ref().map(|i| &i.credentials) {
        let source = SecretSource::File(f.value.clone());
        let mut o = secret(names::infra_credentials(c), "kubeconfig", Some(value_of(&source)), true);
        o.source = Some(source);
        out.push(o);
    }
    // The key itself is generated at first apply and never rewritten.
    if c.etcd.key_secret.is_none() {
        let mut etcd_key = secret(names::etcd_encryption_key(c), "key", None, true);
        etcd_key.create_only = true;
        out.push(etcd_key);
    }

    let hc = hosted_cluster::render(c, ownership(applyset, Some(cluster)));
    out.push(DesiredObject::new(
        ObjectId::new(Kind::HostedCluster, ns, cluster),
        Body::HostedCluster(Box::new(hc)),
        Some(cluster),
    ));
    for p in &c.node_pools {
        let np = node_pool::render(c, p, ownership(applyset, Some(cluster)));
        out.push(DesiredObject::new(
            ObjectId::new(Kind::NodePool, ns, &np.metadata.name),
            Body::NodePool(Box::new(np)),
            Some(cluster),
        ));
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
    let mut body = o.body().clone();
    if o.sensitive {
        map_data(&mut body, |_| Value::String(SENSITIVE.to_string()));
    }
    body
}

/// The objects as a multi-document YAML stream (`---` between documents),
/// Secret data masked unless `show_secrets`, into `out`. Chunks of it are
/// made in parallel for large fleets and written in order.
pub fn write_objects_yaml(
    objects: &[DesiredObject],
    show_secrets: bool,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    /// About the YAML of one object, to size buffers.
    const BYTES_PER_OBJECT: usize = 800;
    let write = |(i, chunk): (usize, &[DesiredObject])| {
        let mut out = String::with_capacity(chunk.len() * BYTES_PER_OBJECT);
        for (j, o) in chunk.iter().enumerate() {
            if i > 0 || j > 0 {
                out.push_str("---\n");
            }
            o.write_yaml(&mut out, show_secrets);
        }
        out
    };
    let chunks: Vec<(usize, &[DesiredObject])> = objects.chunks(256).enumerate().collect();
    // A cluster (about 1 KiB of KDL) renders about seven objects.
    let parts = crate::parallel::map(chunks, objects.len() * 150, write);
    // Written part by part rather than joined first: a large fleet's
    // stream is tens of megabytes, and copying it costs as much again.
    for part in parts {
        out.write_all(part.as_bytes())?;
    }
    Ok(())
}
