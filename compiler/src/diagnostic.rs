//! Diagnostics: one shape for every stage, one table of codes.
//!
//! Stages push [`Diagnostic`]s into a [`Diagnostics`] list and keep going, so
//! one run reports every independent mistake. Only the CLI's printer turns
//! them into text, JSON or GitHub annotations.

use std::fmt;

use crate::source::{SourceMap, Span};

macro_rules! codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $code:literal, )*) => {
        /// Every diagnostic code hcpc can emit. `hcpc explain CODE` prints the doc comment.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $( $(#[doc = $doc])* $variant, )* }

        impl Code {
            /// All codes, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The stable code, e.g. `hcpc::storage::snapshot_without_class`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// A longer explanation of what the code means and how to fix it.
            pub fn explain(self) -> &'static str {
                match self { $(Code::$variant => concat!($($doc, "\n"),*),)* }
            }

            pub fn parse(s: &str) -> Option<Code> {
                Code::ALL.iter().copied().find(|c| c.as_str() == s)
            }
        }
    };
}

codes! {
    /// The input is not valid KDL 2. Strings containing `/`, spaces, `=` or
    /// starting with a digit must be quoted; booleans are written `#true`/`#false`.
    Syntax = "hcpc::parse::syntax",
    /// A path on the command line or a `file=` path could not be read.
    Io = "hcpc::io",
    /// A node name is not part of the language in this block.
    UnknownNode = "hcpc::lower::unknown_node",
    /// A property is not known for this node.
    UnknownProperty = "hcpc::lower::unknown_property",
    /// A node got more positional arguments than it takes.
    UnexpectedArgument = "hcpc::lower::unexpected_argument",
    /// A node is missing a positional argument it needs.
    MissingArgument = "hcpc::lower::missing_argument",
    /// A node is missing a property it needs.
    MissingProperty = "hcpc::lower::missing_property",
    /// A value has the wrong type (string, integer, boolean).
    WrongType = "hcpc::lower::wrong_type",
    /// A value is not one of the allowed words or is out of range.
    InvalidValue = "hcpc::lower::invalid_value",
    /// A name is not a valid Kubernetes name (DNS-1123 label or subdomain).
    InvalidName = "hcpc::lower::invalid_name",
    /// A quantity is not a valid, non-negative Kubernetes quantity.
    InvalidQuantity = "hcpc::lower::invalid_quantity",
    /// A duration is not valid (`"90s"`, `"1m30s"`, `"2h"`).
    InvalidDuration = "hcpc::lower::invalid_duration",
    /// A setting that may appear once appears twice.
    DuplicateSetting = "hcpc::lower::duplicate_setting",
    /// A required setting (such as `release` or `pull-secret`) is missing,
    /// in the cluster and in `defaults`.
    MissingSetting = "hcpc::lower::missing_setting",
    /// Two settings exclude each other (`file=` and `env=`, `replicas` and `autoscaling`).
    ConflictingSettings = "hcpc::lower::conflicting_settings",
    /// A block that needs content is empty.
    EmptyNode = "hcpc::lower::empty_node",
    /// The configuration declares no cluster.
    NoClusters = "hcpc::lower::no_clusters",
    /// `arch arm64` is rejected by the NodePool CRD on the KubeVirt platform.
    UnsupportedArch = "hcpc::node_pool::unsupported_arch",
    /// A node pool has more than 10 host devices (the CRD's limit).
    TooManyHostDevices = "hcpc::node_pool::too_many_host_devices",
    /// The root volume is smaller than 16Gi.
    RootVolumeTooSmall = "hcpc::node_pool::root_volume_too_small",
    /// Autoscaling needs 1 <= min <= max.
    AutoscalingRange = "hcpc::node_pool::autoscaling_range",
    /// `attach-default-network #false` without any `additional-network`
    /// would leave the VMs without a network.
    NoNetwork = "hcpc::node_pool::no_network",
    /// `additional-network` must be written `"namespace/name"`.
    AdditionalNetworkFormat = "hcpc::node_pool::additional_network_format",
    /// A snapshot class has no storage class it can serve: inside a group
    /// the group needs a `class`; outside any group the ungrouped set needs
    /// one. Otherwise the guest gets a snapshot class that matches no volume
    /// and snapshots fail only when taken.
    SnapshotWithoutClass = "hcpc::storage::snapshot_without_class",
    /// Two mappings give the same hosted class name; one would overwrite
    /// the other inside the guest.
    DuplicateHostedName = "hcpc::storage::duplicate_hosted_name",
    /// The same infrastructure class is mapped twice into one group.
    DuplicateMapping = "hcpc::storage::duplicate_mapping",
    /// More than 50 storage class or snapshot class mappings (the CRD's limit).
    TooManyMappings = "hcpc::storage::too_many_mappings",
    /// `driver none` together with class mappings.
    DriverConflict = "hcpc::storage::driver_conflict",
    /// The infrastructure inventory does not know this storage class.
    UnknownStorageClass = "hcpc::storage::unknown_class",
    /// The infrastructure inventory does not know this snapshot class.
    UnknownSnapshotClass = "hcpc::storage::unknown_snapshot_class",
    /// KubeVirt CSI only maps storage classes that offer ReadWriteMany.
    ClassNotRwx = "hcpc::storage::class_not_rwx",
    /// (warning) A root volume that is not RWX Block keeps VMs from live-migrating.
    NotLiveMigratable = "hcpc::storage::not_live_migratable",
    /// A host device name the infrastructure does not offer.
    UnknownHostDevice = "hcpc::device::unknown",
    /// Host device demand across every pool exceeds the declared capacity.
    HostDeviceCapacity = "hcpc::device::over_capacity",
    /// A host device count of zero.
    HostDeviceCount = "hcpc::device::count",
    /// A host device name that no device plugin could register: not a
    /// Kubernetes resource name (`nvidia-a100,count:2` is `hcp`'s flag syntax,
    /// written `host-device nvidia-a100 count=2` in hcpc), or one reserved for
    /// Kubernetes itself. A name without a domain (`nvidia-a100`) is
    /// accepted: a KubeVirt `resourceName` can be anything; on a kube
    /// target it is checked against the Nodes and the KubeVirt resource.
    InvalidHostDevice = "hcpc::device::invalid_name",
    /// (note) Host devices in node pools are a Technology Preview feature of
    /// hosted control planes on OpenShift Virtualization.
    HostDeviceTechPreview = "hcpc::device::technology_preview",
    /// A VM's memory is below 1Gi: RHCOS cannot boot in it.
    MemoryTooSmall = "hcpc::node_pool::memory_too_small",
    /// (warning) A VM is smaller than OpenShift's documented minimum for a
    /// compute machine (2 vCPU, 8 GB of RAM).
    BelowWorkerMinimum = "hcpc::node_pool::below_worker_minimum",
    /// The etcd volume is below 1Gi.
    EtcdTooSmall = "hcpc::etcd::size_too_small",
    /// Something relies on the infrastructure's default storage class
    /// (a root volume or etcd without `storage-class=`, or a cluster without
    /// storage mappings) but the infrastructure has no default class, so the
    /// volumes would never bind.
    NoDefaultStorageClass = "hcpc::storage::no_default_class",
    /// A cluster without snapshot-class mappings passes the infrastructure's
    /// default VolumeSnapshotClass through, but the infrastructure has none:
    /// snapshots in the hosted cluster would never become ready.
    NoDefaultSnapshotClass = "hcpc::storage::no_default_snapshot_class",
    /// `root-volume cache=pvc` on a storage class that cannot hold the boot
    /// image cache: it must offer ReadWriteMany and clone smartly (CDI
    /// clone strategy `csi-clone` or `snapshot`, not `copy`).
    CacheCannotClone = "hcpc::storage::cache_cannot_clone",
    /// No node of the infrastructure is large enough for one VM of a node
    /// pool (CPU, memory with KubeVirt's overhead, or host devices).
    PoolDoesNotFit = "hcpc::capacity::pool_does_not_fit",
    /// The fleet's VMs (and, on the management cluster, the hosted control
    /// planes) do not fit on the infrastructure's nodes.
    OverCapacity = "hcpc::capacity::over_capacity",
    /// (warning) The fleet would use more of a resource than the warning
    /// threshold (`infra { capacity-warning PERCENT }`, default 85%).
    NearCapacity = "hcpc::capacity::near_capacity",
    /// Two declarations render the same Kubernetes object.
    NameCollision = "hcpc::names::collision",
    /// A rendered name is longer than Kubernetes allows.
    NameTooLong = "hcpc::names::too_long",
    /// The dependency graph has a cycle.
    Cycle = "hcpc::graph::cycle",
    /// A `file=` or `env=` secret source could not be read.
    SecretSource = "hcpc::input::secret_source",
    /// A secret source holds the wrong thing: a pull secret must be a JSON
    /// object with `auths` (the file from console.redhat.com), an SSH key
    /// an OpenSSH public key (`ssh-ed25519 AAAA… comment`, a `.pub` file).
    /// The cluster would otherwise fail to pull images or admit nobody, long
    /// after the apply.
    SecretFormat = "hcpc::input::secret_format",
    /// The target could not be used (unreadable directory, bad kubeconfig).
    Target = "hcpc::target",
    /// (warning) A declared `infra` fact contradicts what discovery found.
    InventoryMismatch = "hcpc::infra::mismatch",
    /// A node pool's host device is not in the KubeVirt resource's
    /// `spec.configuration.permittedHostDevices` (`pciHostDevices` or
    /// `mediatedDevices`, by `resourceName`): KubeVirt refuses to start
    /// its VMs. Permit the device on the cluster, or use a permitted one.
    HostDeviceNotPermitted = "hcpc::device::not_permitted",
    /// (warning) More than one StorageClass is marked default. Kubernetes
    /// (1.26 and later) gives a claim without a class the newest of them
    /// (by creationTimestamp, then the first by name); which one that is
    /// changes when a class is created. Keep one default.
    SeveralDefaultClasses = "hcpc::storage::several_default_classes",
    /// (warning) A cluster without `storage` mappings (the Default driver)
    /// hands the infrastructure's default StorageClass to KubeVirt CSI in
    /// the guest, but that class is not ReadWriteMany: KubeVirt CSI needs
    /// RWX for live migration of the VMs and hot-plugging guest volumes.
    DefaultClassNotRwx = "hcpc::storage::default_class_not_rwx",
    /// (note) A cluster maps storage classes but no snapshot class: the
    /// hosted cluster gets no VolumeSnapshotClass, so its volume snapshots
    /// cannot be taken. Map one with `snapshot-class` if the guest needs them.
    NoSnapshotMapping = "hcpc::storage::no_snapshot_mapping",
    /// A pool's change replaces its VMs (`upgrade-type replace`): HyperShift
    /// starts a new VM (max surge, 1 by default) before removing an old one.
    /// When no node has room for that VM, the roll-out cannot start: an
    /// error for host devices, a warning for CPU and memory (overcommit may
    /// still admit it).
    NoRolloutRoom = "hcpc::capacity::no_rollout_room",
    /// An immutable field would change and the object must be replaced,
    /// but the cluster has `prevent-destroy #true`.
    PreventDestroy = "hcpc::plan::prevent_destroy",
    /// (warning) A fleet applied to a cluster without `fleet NAME`: every
    /// configuration without one shares the ApplySet `default`, and each
    /// would prune the others' objects.
    UnnamedFleet = "hcpc::fleet::unnamed",
    /// (warning) A namespace this fleet puts objects in is claimed by another
    /// fleet (its Namespace carries that fleet's ApplySet label). This fleet
    /// leaves the Namespace alone instead of taking it over on every apply;
    /// its own objects there are unaffected.
    SharedNamespace = "hcpc::fleet::shared_namespace",
    /// An object this fleet declares is a member of another fleet's
    /// ApplySet: it is never adopted silently (both would write it and
    /// prune it), only moved deliberately.
    OtherFleet = "hcpc::fleet::owned_by_other_fleet",
    /// (warning) A Secret this fleet no longer declares is still named by a
    /// HostedCluster outside the fleet (another fleet's, or one made by
    /// hand): it is kept. Remove the reference, or delete the Secret by hand.
    SecretInUse = "hcpc::plan::secret_in_use",
    /// The saved plan no longer matches live state or the inputs.
    StalePlan = "hcpc::plan::stale",
    /// The Kubernetes API refused or failed a request.
    Api = "hcpc::api",
    /// The fleet is locked by another apply.
    Locked = "hcpc::apply::locked",
    /// A server-side apply conflict with another field manager.
    Conflict = "hcpc::apply::conflict",
    /// Waiting for clusters or pools failed or timed out.
    Wait = "hcpc::apply::wait",
    /// A label key or value (of `labels`, `node-selector`,
    /// `control-plane-node-selector`) that Kubernetes refuses: keys are
    /// `[prefix/]name`, the name 1 to 63 letters, digits, `-`, `_`, `.`
    /// (starting and ending with a letter or digit), the prefix a DNS
    /// subdomain; values are empty or follow the name's rule. A node
    /// selector with such a value matches no node, so its VMs or pods never
    /// schedule. Keys hcpc sets itself are reserved.
    InvalidLabel = "hcpc::lower::invalid_label",
    /// `base-domain` is not a DNS name as the HostedCluster API reads it:
    /// letters, digits and `-` between dots, the last part two or more
    /// letters (or a single part), at most 253 characters.
    InvalidBaseDomain = "hcpc::cluster::invalid_base_domain",
    /// `network type=` is not one the HostedCluster API accepts:
    /// OVNKubernetes, OpenShiftSDN, Calico or Other.
    UnknownNetworkType = "hcpc::network::unknown_type",
    /// The pod (`cluster-cidr`), service (`service-cidr`) and machine
    /// (`machine-cidr`) networks overlap. The HostedCluster API refuses equal
    /// ranges; overlapping ones leave addresses routed to two places.
    /// The defaults (10.132.0.0/14 and 172.31.0.0/16) count when not written.
    OverlappingNetworks = "hcpc::network::overlapping",
    /// More than 20 `control-plane-node-selector` entries (the HostedCluster
    /// API's limit).
    TooManySelectors = "hcpc::cluster::too_many_node_selectors",
    /// More than 25 tolerations (the HostedCluster API's limit).
    TooManyTolerations = "hcpc::cluster::too_many_tolerations",
    /// A toleration Kubernetes refuses in the control plane's pods: a key
    /// or value that is not a label key or value, no `key=` without
    /// operator=Exists, or `seconds=` without effect=NoExecute.
    InvalidToleration = "hcpc::cluster::invalid_toleration",
    /// More than 20 `additional-network` entries in one pool (the NodePool
    /// API's limit).
    TooManyNetworks = "hcpc::node_pool::too_many_networks",
    /// The management cluster refused an object in its server-side dry run
    /// (`dryRun=All`): a ValidatingAdmissionPolicy, an admission webhook
    /// (Gatekeeper, Kyverno), a CRD's CEL rule or its schema. `plan` sends
    /// every object it would create or change this way, and `apply` again
    /// under the lock before its first write, so a refused object stops the
    /// apply before anything is written. The message is the server's; the
    /// label points at the setting that made the refused field, or at the
    /// node that declares the object.
    DryRunRejected = "hcpc::plan::rejected",
    /// (note) Objects in a namespace the plan creates cannot be judged by
    /// the server's dry run before that namespace exists: `apply` checks
    /// them right after creating their Namespaces, before any other write.
    DryRunAtApply = "hcpc::plan::checked_at_apply",
    /// (note) An object this fleet no longer declares is already being
    /// deleted (it has a `deletionTimestamp`; finalizers, such as the
    /// HyperShift operator's, hold it while it tears the cluster down). It
    /// is not deleted again nor counted as destroyed, and the Secrets its
    /// HostedCluster names are kept until it is gone.
    Deleting = "hcpc::plan::deleting",
    /// The command line is not usable as given.
    Usage = "hcpc::usage",
    /// A cluster's `profile=` or a profile's `extends=` names no declared
    /// `profile`.
    UnknownProfile = "hcpc::profile::unknown",
    /// Profiles extend each other in a circle, so none of them has a
    /// complete set of settings: break the circle at one `extends=`.
    ProfileCycle = "hcpc::profile::cycle",
    /// A wave's `selector` is not a Kubernetes label selector. The syntax is
    /// kubectl's `-l`: `key=value`, `key!=value`, `key in (a,b)`,
    /// `key notin (a,b)`, `key`, `!key`, joined by commas.
    RolloutSelector = "hcpc::rollout::selector",
    /// A `rollout` block is not usable: no waves, two waves with one name,
    /// or a wave after one without a selector (which took every remaining
    /// cluster, so the later wave can never have any).
    RolloutWaves = "hcpc::rollout::waves",
    /// A cluster failed during a rollout (Degraded, a failed update, a
    /// NodePool that cannot roll, or no progress within
    /// `--rollout-timeout`), or the management cluster refused a step
    /// that `apply --wait` was about to make (`hcpc::plan::rejected` says
    /// why; nothing of the steps due then was written): no further
    /// cluster starts until it is fixed. Fix the cause and run `hcpc
    /// apply` again; it continues from the live state.
    RolloutHalted = "hcpc::rollout::halted",
    /// A `release` is not a container image reference:
    /// `REGISTRY/REPOSITORY:TAG` or `REGISTRY/REPOSITORY@sha256:DIGEST`, with
    /// a lowercase repository, no spaces, a non-empty tag of letters, digits,
    /// `_`, `.` and `-` (OpenShift tags join version and architecture with
    /// `-`: `4.17.3-multi`), and a digest of 64 lowercase hex digits. The
    /// API server would take some of these and the operator fail to pull them.
    InvalidRelease = "hcpc::release::invalid_reference",
    /// (warning) A release tag names no OpenShift version (`:latest`, no tag,
    /// `:stable`): it can point at another release tomorrow, and the version
    /// rules cannot be checked. Name the version (`…:4.18.5-multi`) or pin
    /// the image by digest.
    ReleaseWithoutVersion = "hcpc::release::no_version",
    /// (note) A release pinned by digest (`@sha256:…`) names no version:
    /// the version rules are skipped, except in `plan` where the live
    /// HostedCluster's status says which version that image is.
    ReleaseDigest = "hcpc::release::digest",
    /// A node pool's release is newer than its cluster's. HyperShift
    /// documents that a NodePool may never run a newer version than its
    /// HostedCluster (patch versions included): upgrade the control plane
    /// first.
    PoolNewerThanCluster = "hcpc::release::pool_newer_than_cluster",
    /// A node pool's release is older than its cluster's by more minor
    /// versions than OpenShift's hosted control planes allow: 2 on a 4.even
    /// control plane (4.18 with 4.16 pools), 1 on a 4.odd one (4.17 with
    /// 4.16 pools). Patch-level differences are fine.
    PoolSkew = "hcpc::release::pool_skew",
    /// The desired release is older than the version the live HostedCluster
    /// runs (its `status.version.history[0]`, or its spec): OpenShift does
    /// not downgrade a cluster.
    ControlPlaneDowngrade = "hcpc::release::downgrade",
    /// The desired release is more than one minor version newer than the
    /// live HostedCluster's. Control planes upgrade one minor at a time;
    /// where the release's update graph allows the jump, say so with
    /// `allow-minor-skip #true` in the cluster (the plan shows it).
    MinorSkip = "hcpc::release::minor_skip",
    /// The HyperShift operator of the management cluster does not list the
    /// release's minor version in its `supported-versions` ConfigMap
    /// (namespace `hypershift`): it would not roll the cluster out. Choose a
    /// listed version or upgrade the operator first.
    UnsupportedVersion = "hcpc::release::unsupported_version",
    /// (note) The management cluster has no readable `supported-versions`
    /// ConfigMap in namespace `hypershift`, so releases are not checked
    /// against what its HyperShift operator supports.
    SupportedVersionsUnknown = "hcpc::release::supported_versions_unknown",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Information worth knowing once; never fails a command.
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// A labelled span. The first label of a diagnostic is the primary one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

/// A fix that a tool can apply without asking: the one fix the help names,
/// as "replace the text at `span` with `replacement`" (an empty span inserts).
/// Editors offer it as a code action; `hcpc check` prints only the help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub span: Span,
    pub replacement: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
    /// Set only when the help names exactly one fix (boxed: most have none).
    pub suggestion: Option<Box<Suggestion>>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            suggestion: None,
        }
    }

    pub fn warning(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message) }
    }

    pub fn note(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Note, ..Diagnostic::error(code, message) }
    }

    pub fn label(mut self, span: Span, text: impl Into<String>) -> Diagnostic {
        self.labels.push(Label { span, text: text.into() });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// The machine-applicable form of the help's one fix.
    pub fn suggest(mut self, span: Span, replacement: impl Into<String>) -> Diagnostic {
        self.suggestion = Some(Box::new(Suggestion { span, replacement: replacement.into() }));
        self
    }

    pub fn primary_span(&self) -> Option<Span> {
        self.labels.first().map(|l| l.span)
    }
}

/// What a stage found: diagnostics in the order they were found.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// Without repeats (the same finding made for several targets), sorted.
    pub fn deduped(self) -> Diagnostics {
        Diagnostics { items: self.sorted() }
    }

    /// Sorted by file and position, so output does not depend on which
    /// stage or thread found what first.
    pub fn sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|d| {
            let pos = d.primary_span().map(|s| (s.file, s.offset));
            (pos.is_none(), pos, d.code, d.message.clone())
        });
        self.items.dedup();
        self.items
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics { items: vec![d] }
    }
}

/// A diagnostic resolved to a file path, line and column, for machine output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Located {
    pub code: &'static str,
    pub severity: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_column: Option<usize>,
    pub labels: Vec<LocatedLabel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LocatedLabel {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub text: String,
}

impl Diagnostic {
    pub fn locate(&self, sources: &SourceMap) -> Located {
        let primary = self.primary_span();
        let (file, start, end) = match primary {
            Some(span) => {
                let f = sources.get(span.file);
                let start = f.line_col(span.offset);
                let end = f.line_col(span.offset + span.len);
                (Some(f.path.display().to_string()), Some(start), Some(end))
            }
            None => (None, None, None),
        };
        Located {
            code: self.code.as_str(),
            severity: self.severity.as_str(),
            message: self.message.clone(),
            file,
            line: start.map(|p| p.0),
            column: start.map(|p| p.1),
            end_line: end.map(|p| p.0),
            end_column: end.map(|p| p.1),
            labels: self
                .labels
                .iter()
                .map(|l| {
                    let f = sources.get(l.span.file);
                    let (line, column) = f.line_col(l.span.offset);
                    LocatedLabel { file: f.path.display().to_string(), line, column, text: l.text.clone() }
                })
                .collect(),
            help: self.help.clone(),
        }
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a
/// plausible typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&word.to_ascii_lowercase(), &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(2))
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}
