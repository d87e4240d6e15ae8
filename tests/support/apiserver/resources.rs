//! The resource types the server knows: a fixed table of built-in kinds plus
//! the two HyperShift CRDs read from `shared/conformance/crds/`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

use super::schema;

/// Where a CRD's `scale` subresource keeps its replica counts.
#[derive(Debug, Clone)]
pub struct ScaleSpec {
    pub spec_replicas_path: String,
    pub status_replicas_path: String,
}

/// Everything the server needs to know about one resource type.
#[derive(Debug)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    /// Served from a CustomResourceDefinition: changes the discovery verb
    /// order, makes DELETE answer with a `Status`, and enables `generation`.
    pub custom: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    pub scale: Option<ScaleSpec>,
    /// Schema used for field ownership and merging; for the HyperShift CRDs it
    /// is their openAPIV3Schema and also drives defaulting and validation.
    pub schema: Arc<Value>,
    /// True when `schema` is a complete structural schema (CRDs from disk):
    /// unknown fields are pruned, defaults applied, values validated.
    pub structural: bool,
    pub storage_version_hash: Option<&'static str>,
}

impl ResourceType {
    /// `group/version`, or just `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `plural.group` as used in error messages (`nodepools.hypershift.openshift.io`).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Whether the server maintains `metadata.generation` for this type.
    pub fn has_generation(&self) -> bool {
        self.custom || self.kind == "CustomResourceDefinition"
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        if self.custom {
            // Order as the real server lists CRD-backed resources.
            vec!["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]
        } else if self.plural == "namespaces" {
            vec!["create", "delete", "get", "list", "patch", "update", "watch"]
        } else {
            vec!["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        }
    }
}

/// All served resource types, plus the CRD objects to store at start-up.
#[derive(Debug)]
pub struct Registry {
    pub types: Vec<Arc<ResourceType>>,
    /// The CRDs as read from disk, to be served under apiextensions.k8s.io.
    pub crds: Vec<Value>,
}

impl Registry {
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types.iter().find(|t| t.group == group && t.version == version && t.plural == plural).cloned()
    }

    pub fn find_plural(&self, plural: &str) -> Option<Arc<ResourceType>> {
        self.types.iter().find(|t| t.plural == plural).cloned()
    }

    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types.iter().find(|t| t.api_version() == api_version && t.kind == kind).cloned()
    }

    /// Served groups in discovery order (core group first, empty name).
    pub fn groups(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for t in &self.types {
            let gv = (t.group.clone(), t.version.clone());
            if !out.contains(&gv) {
                out.push(gv);
            }
        }
        out
    }

    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Arc<ResourceType>> + 'a {
        self.types.iter().filter(move |t| t.group == group && t.version == version)
    }
}

/// `base64(sha256("group/version/Kind")[..8])`, the value real servers put in
/// `storageVersionHash`; precomputed so no hashing crate is needed.
fn storage_version_hash(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    let table = [
        ("/v1/Namespace", "Q3oi5N2YM8M="),
        ("/v1/Secret", "S6u1pOWzb84="),
        ("/v1/ConfigMap", "qFsyl6wFWjQ="),
        ("/v1/Node", "XwShjMxG9Fs="),
        ("coordination.k8s.io/v1/Lease", "gqkMMb/YqFM="),
        ("storage.k8s.io/v1/StorageClass", "K+m6uJwbjGY="),
        ("snapshot.storage.k8s.io/v1/VolumeSnapshotClass", "agjrTDFWe0I="),
        ("cdi.kubevirt.io/v1beta1/StorageProfile", "mrzz5Ke+wSs="),
        ("apiextensions.k8s.io/v1/CustomResourceDefinition", "M5uH+AlWATY="),
        ("hypershift.openshift.io/v1beta1/HostedCluster", "a5BEmIIbrYI="),
        ("hypershift.openshift.io/v1beta1/NodePool", "3ObDZcCmR3I="),
    ];
    let key = format!("{group}/{version}/{kind}");
    table.iter().find(|(k, _)| *k == key).map(|(_, h)| *h)
}

/// A built-in type row: group, version, plural, kind, namespaced, custom,
/// short names, has status subresource, schema for its map-typed fields.
struct Builtin {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    custom: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    /// Top-level fields that are string maps (`data`, `parameters`), so that
    /// an update op marks them the way the real server does.
    map_fields: &'static [&'static str],
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        group: "",
        version: "v1",
        plural: "namespaces",
        kind: "Namespace",
        namespaced: false,
        custom: false,
        short_names: &["ns"],
        categories: &[],
        status: true,
        map_fields: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "secrets",
        kind: "Secret",
        namespaced: true,
        custom: false,
        short_names: &[],
        categories: &[],
        status: false,
        map_fields: &["data", "stringData"],
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "configmaps",
        kind: "ConfigMap",
        namespaced: true,
        custom: false,
        short_names: &["cm"],
        categories: &[],
        status: false,
        map_fields: &["data", "binaryData"],
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "nodes",
        kind: "Node",
        namespaced: false,
        custom: false,
        short_names: &["no"],
        categories: &[],
        status: true,
        map_fields: &[],
    },
    Builtin {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        kind: "Lease",
        namespaced: true,
        custom: false,
        short_names: &[],
        categories: &[],
        status: false,
        map_fields: &[],
    },
    Builtin {
        group: "storage.k8s.io",
        version: "v1",
        plural: "storageclasses",
        kind: "StorageClass",
        namespaced: false,
        custom: false,
        short_names: &["sc"],
        categories: &[],
        status: false,
        map_fields: &["parameters"],
    },
    Builtin {
        group: "snapshot.storage.k8s.io",
        version: "v1",
        plural: "volumesnapshotclasses",
        kind: "VolumeSnapshotClass",
        namespaced: false,
        custom: true,
        short_names: &["vsclass", "vsclasses"],
        categories: &[],
        status: false,
        map_fields: &["parameters"],
    },
    Builtin {
        group: "cdi.kubevirt.io",
        version: "v1beta1",
        plural: "storageprofiles",
        kind: "StorageProfile",
        namespaced: false,
        custom: true,
        short_names: &[],
        categories: &[],
        status: true,
        map_fields: &[],
    },
    Builtin {
        group: "kubevirt.io",
        version: "v1",
        plural: "kubevirts",
        kind: "KubeVirt",
        namespaced: true,
        custom: true,
        short_names: &["kv", "kvs"],
        categories: &["all"],
        status: true,
        map_fields: &[],
    },
    Builtin {
        group: "apiextensions.k8s.io",
        version: "v1",
        plural: "customresourcedefinitions",
        kind: "CustomResourceDefinition",
        namespaced: false,
        custom: false,
        short_names: &["crd", "crds"],
        categories: &["api-extensions"],
        status: true,
        map_fields: &[],
    },
];

fn builtin_type(b: &Builtin) -> ResourceType {
    let mut properties = serde_json::Map::new();
    properties.insert("metadata".into(), schema::metadata_schema());
    for field in b.map_fields {
        properties.insert((*field).into(), json!({"type": "object", "additionalProperties": {"type": "string"}}));
    }
    ResourceType {
        group: b.group.into(),
        version: b.version.into(),
        plural: b.plural.into(),
        singular: b.kind.to_ascii_lowercase(),
        kind: b.kind.into(),
        namespaced: b.namespaced,
        custom: b.custom,
        short_names: b.short_names.iter().map(|s| (*s).into()).collect(),
        categories: b.categories.iter().map(|s| (*s).into()).collect(),
        status_subresource: b.status,
        scale: None,
        // Not structural: anything goes below the listed fields.
        schema: Arc::new(json!({"type": "object", "properties": properties})),
        structural: false,
        storage_version_hash: storage_version_hash(b.group, b.version, b.kind),
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn strings_at(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// Builds the resource type served by one CRD (its storage version).
fn crd_type(crd: &Value) -> Result<ResourceType, String> {
    let group = str_at(crd, "/spec/group").ok_or("CRD without spec.group")?;
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array).ok_or("CRD without spec.versions")?;
    let version = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .or_else(|| versions.first())
        .ok_or("CRD with no versions")?;
    let version_name = str_at(version, "/name").ok_or("CRD version without name")?;
    let kind = str_at(crd, "/spec/names/kind").ok_or("CRD without names.kind")?;
    let plural = str_at(crd, "/spec/names/plural").ok_or("CRD without names.plural")?;
    let mut root = version.pointer("/schema/openAPIV3Schema").cloned().ok_or("CRD version without openAPIV3Schema")?;
    // ObjectMeta is not described by CRD schemas; use the server's own view.
    if let Some(props) = root.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("metadata".into(), schema::metadata_schema());
    }
    let scale = version.pointer("/subresources/scale").map(|s| ScaleSpec {
        spec_replicas_path: str_at(s, "/specReplicasPath").unwrap_or(".spec.replicas").into(),
        status_replicas_path: str_at(s, "/statusReplicasPath").unwrap_or(".status.replicas").into(),
    });
    Ok(ResourceType {
        group: group.into(),
        version: version_name.into(),
        plural: plural.into(),
        singular: str_at(crd, "/spec/names/singular").map(str::to_string).unwrap_or_else(|| kind.to_ascii_lowercase()),
        kind: kind.into(),
        namespaced: str_at(crd, "/spec/scope") == Some("Namespaced"),
        custom: true,
        short_names: strings_at(crd, "/spec/names/shortNames"),
        categories: strings_at(crd, "/spec/names/categories"),
        status_subresource: version.pointer("/subresources/status").is_some(),
        scale,
        schema: Arc::new(root),
        structural: true,
        storage_version_hash: storage_version_hash(group, version_name, kind),
    })
}

/// The directory holding the conformance CRDs, next to the repository.
pub fn crd_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/crds")
}

fn load_crds() -> Result<Vec<Value>, String> {
    let dir = crd_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".crd.yaml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(format!("no *.crd.yaml in {}", dir.display()));
    }
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
            serde_saphyr::from_str::<Value>(&text).map_err(|e| format!("parsing {}: {e}", p.display()))
        })
        .collect()
}

/// The registry, built once per test process: the CRDs are large and every
/// server instance shares the parsed result.
pub fn registry() -> Arc<Registry> {
    static REGISTRY: OnceLock<Result<Arc<Registry>, String>> = OnceLock::new();
    let built = REGISTRY.get_or_init(|| {
        let crds = load_crds()?;
        let mut types: Vec<Arc<ResourceType>> = BUILTINS.iter().map(|b| Arc::new(builtin_type(b))).collect();
        for crd in &crds {
            types.push(Arc::new(crd_type(crd)?));
        }
        Ok(Arc::new(Registry { types, crds }))
    });
    match built {
        Ok(registry) => registry.clone(),
        Err(e) => panic!("test API server cannot load its CRDs: {e}"),
    }
}
