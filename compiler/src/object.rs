//! Identity of a Kubernetes object that hcpc renders, plans and applies,
//! and the plain data of one as it exists on a target.

use std::fmt;

use serde_json::Value;

/// The kinds hcpc manages, in the order they must exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    Namespace,
    Secret,
    HostedCluster,
    NodePool,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Namespace, Kind::Secret, Kind::HostedCluster, Kind::NodePool];

    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Namespace | Kind::Secret => "v1",
            Kind::HostedCluster | Kind::NodePool => hcpc_schema::hypershift::API_VERSION,
        }
    }

    /// API group ("" for core).
    pub fn group(self) -> &'static str {
        match self {
            Kind::Namespace | Kind::Secret => "",
            Kind::HostedCluster | Kind::NodePool => hcpc_schema::hypershift::GROUP,
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Secret => "secrets",
            Kind::HostedCluster => "hostedclusters",
            Kind::NodePool => "nodepools",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Secret => "Secret",
            Kind::HostedCluster => "HostedCluster",
            Kind::NodePool => "NodePool",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn namespaced(self) -> bool {
        self != Kind::Namespace
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kind, namespace and name: what makes an object unique on a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ObjectId {
    pub kind: Kind,
    /// Empty for cluster-scoped kinds.
    pub namespace: String,
    pub name: String,
}

impl ObjectId {
    pub fn new(kind: Kind, namespace: &str, name: &str) -> ObjectId {
        ObjectId {
            kind,
            namespace: if kind.namespaced() { namespace.to_string() } else { String::new() },
            name: name.to_string(),
        }
    }
}

impl fmt::Display for ObjectId {
    /// `Kind/namespace/name`, or `Kind/name` for cluster-scoped kinds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// An object as it exists on the target: plain data, read by `live` and
/// compared by the pure `plan` stage.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveObject {
    pub id: ObjectId,
    pub body: Value,
    /// resourceVersion (kube) or content digest (dir).
    pub version: Option<String>,
}
