//! The hcpc language, described as data.
//!
//! One table says which nodes exist where, which arguments and properties
//! they take and of what kind. The compiler's `lower` stage checks every
//! input node against it (so an unknown or misspelt name always gets a
//! diagnostic with the closest valid name), and `hcpc schema` prints it as
//! JSON for editors and other tools. The typed meaning of each node lives in
//! the compiler; this file only says what may be written.

use serde::Serialize;

// Defaults the compiler applies when a setting is absent, each written once:
// the docs below and `defaults` (read by `lower`) take it from here.
macro_rules! pool_cores {
    () => {
        2
    };
}
macro_rules! pool_memory_gib {
    () => {
        8
    };
}
macro_rules! root_volume_gib {
    () => {
        32
    };
}
macro_rules! etcd_gib {
    () => {
        8
    };
}

/// What a setting is when the fleet does not write it.
pub mod defaults {
    /// `cores`: virtual CPU cores per VM.
    pub const POOL_CORES: u32 = pool_cores!();
    /// `memory`: memory per VM, in GiB (the NodePool API's default).
    pub const POOL_MEMORY_GIB: u64 = pool_memory_gib!();
    /// `root-volume size=`, in GiB.
    pub const ROOT_VOLUME_GIB: u64 = root_volume_gib!();
    /// `etcd size=`, in GiB.
    pub const ETCD_GIB: u64 = etcd_gib!();
}

/// The kind of value an argument or property takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "values")]
pub enum ValueKind {
    /// Any string (a bare identifier or a quoted string).
    String,
    /// A DNS-1123 label (names of clusters, pools, namespaces, groups).
    Name,
    /// A DNS-1123 subdomain (names of storage classes and Secrets).
    ObjectName,
    /// A non-negative integer.
    Count,
    /// `#true` or `#false`.
    Bool,
    /// A Kubernetes quantity string such as `"8Gi"`; a bare integer means Gi.
    Quantity,
    /// A duration string such as `"90s"` or `"1m30s"`.
    Duration,
    /// A file path, relative to the file that names it (`~` is the home directory).
    Path,
    /// One of a fixed set of words.
    OneOf(&'static [&'static str]),
    /// A whole number, or a percentage string such as `"25%"`.
    CountOrPercent,
}

/// A positional argument.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ArgSpec {
    /// What the argument is called in documentation, e.g. `NAME`.
    pub meta: &'static str,
    pub value: ValueKind,
    pub required: bool,
}

/// A `key=value` property.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PropSpec {
    pub name: &'static str,
    pub value: ValueKind,
    pub required: bool,
    pub doc: &'static str,
}

/// A node that may appear in a given block.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct NodeSpec {
    pub name: &'static str,
    pub doc: &'static str,
    pub args: &'static [ArgSpec],
    pub props: &'static [PropSpec],
    /// Arbitrary `KEY=VALUE` properties (labels, selectors) of this kind.
    pub free_props: Option<ValueKind>,
    pub children: &'static [NodeSpec],
    /// May appear more than once in its block.
    pub repeatable: bool,
    /// At least one property (or a child block) must be given.
    pub needs_content: bool,
}

const fn arg(meta: &'static str, value: ValueKind) -> ArgSpec {
    ArgSpec { meta, value, required: true }
}
const fn opt_arg(meta: &'static str, value: ValueKind) -> ArgSpec {
    ArgSpec { meta, value, required: false }
}
const fn prop(name: &'static str, value: ValueKind, doc: &'static str) -> PropSpec {
    PropSpec { name, value, required: false, doc }
}
const fn req_prop(name: &'static str, value: ValueKind, doc: &'static str) -> PropSpec {
    PropSpec { name, value, required: true, doc }
}
const fn node(name: &'static str, doc: &'static str) -> NodeSpec {
    NodeSpec {
        name,
        doc,
        args: &[],
        props: &[],
        free_props: None,
        children: &[],
        repeatable: false,
        needs_content: false,
    }
}
/// A setting that takes exactly one argument of a plain kind.
const fn setting(name: &'static str, value: ValueKind, doc: &'static str) -> NodeSpec {
    NodeSpec { args: one_arg(value), ..node(name, doc) }
}
const fn one_arg(value: ValueKind) -> &'static [ArgSpec] {
    // A const fn cannot borrow a local for 'static, so each plain kind has
    // its own promoted constant; enums are spelt out at their call site.
    match value {
        ValueKind::String => &[ArgSpec { meta: "VALUE", value: ValueKind::String, required: true }],
        ValueKind::Name => &[ArgSpec { meta: "NAME", value: ValueKind::Name, required: true }],
        ValueKind::ObjectName => &[ArgSpec { meta: "NAME", value: ValueKind::ObjectName, required: true }],
        ValueKind::Count => &[ArgSpec { meta: "N", value: ValueKind::Count, required: true }],
        ValueKind::Bool => &[ArgSpec { meta: "BOOL", value: ValueKind::Bool, required: true }],
        ValueKind::Quantity => &[ArgSpec { meta: "QUANTITY", value: ValueKind::Quantity, required: true }],
        ValueKind::Duration => &[ArgSpec { meta: "DURATION", value: ValueKind::Duration, required: true }],
        ValueKind::Path => &[ArgSpec { meta: "PATH", value: ValueKind::Path, required: true }],
        ValueKind::OneOf(_) | ValueKind::CountOrPercent => &[],
    }
}

pub const ACCESS_MODES: &[&str] = &["RWO", "RWX", "ROX", "RWOP"];
pub const VOLUME_MODES: &[&str] = &["Filesystem", "Block"];
pub const AVAILABILITY: &[&str] = &["highly-available", "single-replica"];
pub const ARCHES: &[&str] = &["amd64", "ppc64le", "s390x"];
pub const QOS_CLASSES: &[&str] = &["burstable", "guaranteed"];
pub const UPGRADE_TYPES: &[&str] = &["replace", "in-place"];
pub const CACHE_STRATEGIES: &[&str] = &["none", "pvc"];
pub const STORAGE_DRIVERS: &[&str] = &["none", "default"];
pub const TARGET_KINDS: &[&str] = &["kube", "dir"];
pub const TOLERATION_OPERATORS: &[&str] = &["Exists", "Equal"];
pub const TOLERATION_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
pub const CLONE_STRATEGIES: &[&str] = &["csi-clone", "snapshot", "copy"];

const SECRET_SOURCE: &[PropSpec] = &[
    prop("file", ValueKind::Path, "read the value from this file"),
    prop("env", ValueKind::String, "read the value from this environment variable"),
    prop("secret", ValueKind::ObjectName, "reference an existing Secret that hcpc does not manage"),
];

const STORAGE_MAPPING: &[PropSpec] =
    &[req_prop("hosted", ValueKind::ObjectName, "the class name inside the hosted cluster")];

const CLASS: NodeSpec = NodeSpec {
    args: &[arg("INFRA", ValueKind::ObjectName)],
    props: STORAGE_MAPPING,
    repeatable: true,
    ..node("class", "map an infrastructure storage class into the hosted cluster")
};
const SNAPSHOT_CLASS: NodeSpec = NodeSpec {
    args: &[arg("INFRA", ValueKind::ObjectName)],
    props: STORAGE_MAPPING,
    repeatable: true,
    ..node("snapshot-class", "map an infrastructure volume snapshot class into the hosted cluster")
};

const STORAGE_CHILDREN: &[NodeSpec] = &[
    CLASS,
    SNAPSHOT_CLASS,
    NodeSpec {
        args: &[arg("NAME", ValueKind::Name)],
        children: &[CLASS, SNAPSHOT_CLASS],
        repeatable: true,
        ..node("group", "a storage group: snapshot classes serve only the storage classes of their group")
    },
    NodeSpec {
        args: &[arg("DRIVER", ValueKind::OneOf(STORAGE_DRIVERS))],
        ..node(
            "driver",
            "`none` disables the KubeVirt CSI driver; `default` passes the infrastructure's default classes through",
        )
    },
];

/// Node pool settings, valid in `node-pool NAME { … }` and `defaults { node-pool { … } }`.
pub const NODE_POOL_SETTINGS: &[NodeSpec] = &[
    NodeSpec {
        props: &[
            req_prop("min", ValueKind::Count, "fewest nodes (at least 1)"),
            req_prop("max", ValueKind::Count, "most nodes"),
        ],
        ..node("autoscaling", "let the cluster autoscaler size the pool instead of `replicas`")
    },
    setting("cores", ValueKind::Count, concat!("virtual CPU cores per VM (default ", pool_cores!(), ")")),
    setting("memory", ValueKind::Quantity, concat!("memory per VM (default \"", pool_memory_gib!(), "Gi\")")),
    NodeSpec {
        args: &[arg("CLASS", ValueKind::OneOf(QOS_CLASSES))],
        ..node("qos-class", "VM QoS class (default burstable)")
    },
    NodeSpec {
        props: &[
            prop(
                "size",
                ValueKind::Quantity,
                concat!("root disk size, at least 16Gi (default \"", root_volume_gib!(), "Gi\")"),
            ),
            prop(
                "storage-class",
                ValueKind::ObjectName,
                "infrastructure storage class (default: the infrastructure's default)",
            ),
            prop("access-mode", ValueKind::OneOf(ACCESS_MODES), "access mode of the root disk PVC"),
            prop("volume-mode", ValueKind::OneOf(VOLUME_MODES), "volume mode of the root disk PVC"),
            prop("cache", ValueKind::OneOf(CACHE_STRATEGIES), "`pvc` caches the boot image in a PVC"),
        ],
        needs_content: true,
        ..node("root-volume", "the VM root disk")
    },
    NodeSpec {
        args: &[arg("DEVICE", ValueKind::String)],
        props: &[prop("count", ValueKind::Count, "devices per VM (default 1)")],
        repeatable: true,
        ..node("host-device", "pass a host device (GPU) through to each VM; at most 10")
    },
    setting("network-multiqueue", ValueKind::Bool, "network interface multi-queue (default #true)"),
    setting("attach-default-network", ValueKind::Bool, "attach the pod network (default #true)"),
    NodeSpec {
        args: &[arg("NAMESPACE/NAME", ValueKind::String)],
        repeatable: true,
        ..node("additional-network", "attach a NetworkAttachmentDefinition, written \"namespace/name\"")
    },
    NodeSpec {
        free_props: Some(ValueKind::String),
        needs_content: true,
        ..node("node-selector", "infrastructure nodes the VMs may run on (KEY=VALUE …)")
    },
    NodeSpec { args: &[arg("ARCH", ValueKind::OneOf(ARCHES))], ..node("arch", "CPU architecture (default amd64)") },
    setting("auto-repair", ValueKind::Bool, "replace unhealthy machines (default #false)"),
    NodeSpec {
        args: &[arg("TYPE", ValueKind::OneOf(UPGRADE_TYPES))],
        ..node("upgrade-type", "how upgrades roll out (default replace)")
    },
    setting("node-drain-timeout", ValueKind::Duration, "how long to drain a node (default \"0s\": forever)"),
    setting(
        "node-volume-detach-timeout",
        ValueKind::Duration,
        "how long to wait for volumes to detach (default \"0s\": forever)",
    ),
    NodeSpec {
        args: &[arg("IMAGE", ValueKind::String)],
        ..node("release", "release image of this pool (default: the cluster's)")
    },
];

const NODE_POOL: NodeSpec = NodeSpec {
    args: &[arg("NAME", ValueKind::Name)],
    props: &[
        prop("replicas", ValueKind::Count, "number of VMs (or use `autoscaling`)"),
        prop("object-name", ValueKind::Name, "the NodePool's name when it is not `<cluster>-<NAME>` (adopted pools)"),
    ],
    children: NODE_POOL_SETTINGS,
    repeatable: true,
    ..node("node-pool", "a NodePool named `<cluster>-<NAME>`")
};

const POOL_DEFAULTS: NodeSpec = NodeSpec {
    props: &[prop("replicas", ValueKind::Count, "number of VMs of every pool that sets none")],
    children: NODE_POOL_SETTINGS,
    ..node("node-pool", "node pool settings inherited by every pool")
};

/// Settings valid both in `cluster NAME { … }` and in `defaults { … }`.
macro_rules! cluster_settings {
    ($($extra:expr),* $(,)?) => {
        &[
            setting("namespace", ValueKind::Name, "namespace of the cluster's objects (default clusters)"),
            NodeSpec { args: &[arg("IMAGE", ValueKind::String)], ..node("release", "OpenShift release image (required)") },
            NodeSpec { props: SECRET_SOURCE, needs_content: true, ..node("pull-secret", "the pull secret (required): file=, env= or secret=") },
            NodeSpec { props: SECRET_SOURCE, needs_content: true, ..node("ssh-key", "public SSH key for the nodes: file=, env= or secret=") },
            NodeSpec { args: &[arg("DOMAIN", ValueKind::String)], ..node("base-domain", "DNS base domain (default: passthrough from the infrastructure)") },
            NodeSpec {
                props: &[
                    prop("cluster-cidr", ValueKind::String, "pod network (default \"10.132.0.0/14\")"),
                    prop("service-cidr", ValueKind::String, "service network (default \"172.31.0.0/16\")"),
                    prop("machine-cidr", ValueKind::String, "machine network (default none)"),
                    prop("type", ValueKind::String, "network type (default OVNKubernetes)"),
                ],
                needs_content: true,
                ..node("network", "cluster networking")
            },
            NodeSpec {
                props: &[
                    prop("control-plane", ValueKind::OneOf(AVAILABILITY), "control plane availability (default highly-available)"),
                    prop("infrastructure", ValueKind::OneOf(AVAILABILITY), "infrastructure availability (default: the API's)"),
                ],
                needs_content: true,
                ..node("availability", "availability policies")
            },
            setting("fips", ValueKind::Bool, "FIPS mode (default #false)"),
            NodeSpec { free_props: Some(ValueKind::String), needs_content: true, ..node("labels", "HostedCluster labels (KEY=VALUE …)") },
            NodeSpec { free_props: Some(ValueKind::String), needs_content: true, ..node("annotations", "HostedCluster annotations (KEY=VALUE …)") },
            NodeSpec {
                free_props: Some(ValueKind::String),
                needs_content: true,
                ..node("control-plane-node-selector", "management nodes the control plane pods run on (KEY=VALUE …)")
            },
            NodeSpec {
                props: &[
                    prop("key", ValueKind::String, "taint key"),
                    prop("value", ValueKind::String, "taint value"),
                    prop("operator", ValueKind::OneOf(TOLERATION_OPERATORS), "Exists or Equal"),
                    prop("effect", ValueKind::OneOf(TOLERATION_EFFECTS), "taint effect"),
                    prop("seconds", ValueKind::Count, "tolerationSeconds"),
                ],
                needs_content: true,
                repeatable: true,
                ..node("toleration", "a toleration for the control plane pods")
            },
            NodeSpec {
                props: &[
                    prop("storage-class", ValueKind::ObjectName, "storage class of the etcd volumes (default: the management cluster's default)"),
                    prop("size", ValueKind::Quantity, concat!("etcd volume size (default \"", etcd_gib!(), "Gi\")")),
                    prop(
                        "key-secret",
                        ValueKind::ObjectName,
                        "an existing Secret (key `key`, 32 bytes) as the etcd encryption key, referenced and not managed (default: hcpc creates `<cluster>-etcd-encryption-key` at first apply)",
                    ),
                ],
                needs_content: true,
                ..node("etcd", "etcd storage")
            },
            NodeSpec { children: STORAGE_CHILDREN, ..node("storage", "storage classes of the infrastructure mapped into the hosted cluster") },
            NodeSpec {
                props: &[
                    req_prop("namespace", ValueKind::Name, "namespace of the VMs on the infrastructure cluster"),
                    prop("kubeconfig-file", ValueKind::Path, "kubeconfig of the infrastructure cluster (hcpc manages the Secret)"),
                    prop("kubeconfig-secret", ValueKind::ObjectName, "existing Secret with key `kubeconfig`"),
                ],
                ..node("infra-cluster", "run the VMs on an external infrastructure cluster")
            },
            setting("prevent-destroy", ValueKind::Bool, "refuse to delete this cluster (default #true)"),
            setting("allow-minor-skip", ValueKind::Bool, "let the control plane move more than one minor version in one change (default #false)"),
            NodeSpec {
                doc: "the management cluster this cluster lives on, over the fleet's top-level `target`: `kube` or `dir PATH`",
                ..TARGET
            },
            $($extra),*
        ]
    };
}

/// Settings of `cluster NAME { … }`.
pub const CLUSTER_SETTINGS: &[NodeSpec] = cluster_settings!(
    NODE_POOL,
    NodeSpec {
        args: &[arg("ID", ValueKind::Name)],
        ..node("infra-id", "infrastructure ID (default `<cluster>-<5 characters from a hash>`)")
    },
);

/// Settings of `defaults { … }`.
pub const DEFAULT_SETTINGS: &[NodeSpec] = cluster_settings!(POOL_DEFAULTS);

/// In a profile, `node-pool NAME replicas=N { … }` is a pool every cluster
/// of the profile gets, and `node-pool { … }` without a name holds settings
/// every pool of those clusters inherits (as in `defaults`).
const PROFILE_POOL: NodeSpec = NodeSpec {
    args: &[opt_arg("NAME", ValueKind::Name)],
    props: &[prop("replicas", ValueKind::Count, "number of VMs (or use `autoscaling`)")],
    children: NODE_POOL_SETTINGS,
    repeatable: true,
    ..node(
        "node-pool",
        "with a NAME, a NodePool every cluster of the profile gets; without, settings every pool inherits",
    )
};

/// Settings of `profile NAME { … }`: those of `defaults`, plus named pools.
pub const PROFILE_SETTINGS: &[NodeSpec] = cluster_settings!(PROFILE_POOL);

/// What `infra { … }` may declare.
pub const INFRA: &[NodeSpec] = &[
    NodeSpec {
        args: &[arg("NAME", ValueKind::ObjectName)],
        props: &[
            prop("access", ValueKind::OneOf(&["RWO", "RWX"]), "widest access mode the class offers (default RWO)"),
            prop("volume-mode", ValueKind::OneOf(VOLUME_MODES), "volume mode (default Filesystem)"),
            prop("default", ValueKind::Bool, "the infrastructure's default storage class"),
            prop(
                "clone",
                ValueKind::OneOf(CLONE_STRATEGIES),
                "how CDI clones volumes of this class (its StorageProfile's cloneStrategy; default: unknown)",
            ),
        ],
        repeatable: true,
        ..node("storage-class", "a storage class of the infrastructure cluster")
    },
    NodeSpec {
        args: &[arg("NAME", ValueKind::ObjectName)],
        props: &[prop("default", ValueKind::Bool, "the infrastructure's default snapshot class")],
        repeatable: true,
        ..node("snapshot-class", "a volume snapshot class of the infrastructure cluster")
    },
    NodeSpec {
        args: &[arg("NAME", ValueKind::String)],
        props: &[req_prop("capacity", ValueKind::Count, "how many the infrastructure offers in all")],
        repeatable: true,
        ..node("host-device", "a permitted host device and its capacity")
    },
    NodeSpec {
        args: &[arg("NAME", ValueKind::Name)],
        props: &[
            req_prop("count", ValueKind::Count, "how many nodes have this shape"),
            req_prop("cores", ValueKind::Count, "allocatable CPU cores per node"),
            req_prop("memory", ValueKind::Quantity, "allocatable memory per node, e.g. \"512Gi\""),
        ],
        children: &[NodeSpec {
            args: &[arg("DEVICE", ValueKind::String)],
            props: &[req_prop("count", ValueKind::Count, "devices of this kind per node")],
            repeatable: true,
            ..node("host-device", "a host device each node of the group offers")
        }],
        repeatable: true,
        ..node("nodes", "a group of identical infrastructure nodes: VMs are checked and packed against them")
    },
    setting(
        "capacity-warning",
        ValueKind::Count,
        "warn when the fleet uses more than this percentage of a resource (default 85)",
    ),
    NodeSpec {
        props: &[
            prop(
                "cpu-allocation-ratio",
                ValueKind::Count,
                "vCPUs per requested CPU for burstable VMs (KubeVirt's cpuAllocationRatio, default 10)",
            ),
            prop(
                "memory-overcommit",
                ValueKind::Count,
                "guest memory as a percentage of requested memory (KubeVirt's memoryOvercommit, default 100)",
            ),
        ],
        needs_content: true,
        ..node("kubevirt", "KubeVirt settings of the infrastructure that change what a VM requests")
    },
];

/// `target kube [context=…]` or `target dir PATH`: the same syntax at the
/// top level (the fleet's default), in `defaults` and in a `cluster`.
const TARGET: NodeSpec = NodeSpec {
    args: &[arg("KIND", ValueKind::OneOf(TARGET_KINDS)), opt_arg("PATH", ValueKind::Path)],
    props: &[prop("context", ValueKind::String, "kubeconfig context (default: the current one)")],
    ..node("target", "where live state is read and applied: `kube` or `dir PATH`")
};

/// The top level of a file.
pub const TOP_LEVEL: &[NodeSpec] = &[
    TARGET,
    NodeSpec {
        args: &[arg("NAME", ValueKind::Name)],
        props: &[prop("namespace", ValueKind::Name, "namespace of the fleet's ApplySet parent Secret")],
        ..node("fleet", "name of the fleet (default `default`): its objects form one ApplySet")
    },
    NodeSpec { children: DEFAULT_SETTINGS, ..node("defaults", "settings every cluster inherits") },
    NodeSpec { children: INFRA, ..node("infra", "what the infrastructure offers, for offline checks") },
    NodeSpec {
        args: &[arg("NAME", ValueKind::Name)],
        props: &[prop("profile", ValueKind::Name, "the profile whose settings and pools this cluster takes")],
        children: CLUSTER_SETTINGS,
        repeatable: true,
        ..node("cluster", "one HostedCluster and everything it owns")
    },
    NodeSpec {
        args: &[arg("NAME", ValueKind::Name)],
        props: &[prop("extends", ValueKind::Name, "a profile whose settings and pools this one builds on")],
        children: PROFILE_SETTINGS,
        repeatable: true,
        ..node("profile", "a named shape of cluster: settings and pools every cluster with `profile=NAME` takes")
    },
    ROLLOUT,
    node(
        "allow-paths-outside",
        "let `file=` and `kubeconfig-file=` read files outside the fleet's directory tree (or the git repository holding it); off by default, so a change cannot copy other files of the machine into Secrets",
    ),
];

/// `rollout { wave NAME selector=… max-parallel=… }`: the order in which
/// release changes and node roll-outs reach the clusters.
const ROLLOUT: NodeSpec = NodeSpec {
    children: &[NodeSpec {
        args: &[arg("NAME", ValueKind::Name)],
        props: &[
            prop(
                "selector",
                ValueKind::String,
                "a label selector over the cluster's `labels` (`env=canary`, `env in (dev,qa)`, `!canary`); none: every cluster no earlier wave took",
            ),
            prop(
                "max-parallel",
                ValueKind::CountOrPercent,
                "how many clusters of the wave upgrade at once: a count, or a percentage of the wave such as \"25%\" (default: all)",
            ),
        ],
        repeatable: true,
        ..node("wave", "one step of the rollout; a wave starts when every earlier wave is done")
    }],
    ..node("rollout", "the waves release changes and node roll-outs go through, in order, over every target")
};
