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

            /// The explanation's first sentence, for the list of codes.
            pub fn summary(self) -> String {
                let words: Vec<&str> = self.explain().split_whitespace().collect();
                // Up to the first word that ends a sentence (`e.g.` does not).
                let end = words
                    .iter()
                    .position(|w| w.ends_with('.') && !matches!(*w, "e.g." | "i.e." | "(e.g." | "(i.e."))
                    .map_or(words.len(), |i| i + 1);
                let sentence = words[..end].join(" ");
                // A long sentence: up to its colon, or its first words.
                const WIDTH: usize = 100;
                if sentence.len() <= WIDTH {
                    return sentence;
                }
                if let Some(colon) = sentence.find(": ").filter(|&c| (20..=WIDTH).contains(&c)) {
                    return format!("{}.", &sentence[..colon]);
                }
                let mut cut = String::new();
                for w in sentence.split(' ') {
                    if cut.len() + w.len() + 1 > WIDTH {
                        break;
                    }
                    if !cut.is_empty() {
                        cut.push(' ');
                    }
                    cut.push_str(w);
                }
                format!("{cut} …")
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
    /// Fix: quote the value as the message says (`"8Gi"`, `"quay.io/…"`), write
    /// booleans as `#true`/`#false`, use straight double quotes, and close
    /// every `{`; the quick fix does the first three.
    Syntax = "hcpc::parse::syntax",
    /// A path on the command line or a `file=` path could not be read.
    /// Fix: check that the path exists and is readable by the user running
    /// hcpc; relative `file=` paths are read from the directory of the `.kdl`
    /// file.
    Io = "hcpc::io",
    /// A node name is not part of the language in this block.
    /// Fix: use the name the help suggests, or move the node to the block that
    /// takes it (`hcpc schema` lists every node and where it goes).
    UnknownNode = "hcpc::lower::unknown_node",
    /// A property is not known for this node.
    /// Fix: use the property the help suggests; `hcpc schema` lists each node's
    /// properties.
    UnknownProperty = "hcpc::lower::unknown_property",
    /// A node got more positional arguments than it takes.
    /// Fix: remove the extra value, or write it as the property it was meant to
    /// be (`KEY=VALUE`).
    UnexpectedArgument = "hcpc::lower::unexpected_argument",
    /// A node is missing a positional argument it needs.
    /// Fix: give the value, e.g. `release "quay.io/openshift-release-dev/ocp-
    /// release:4.19.3-multi"`.
    MissingArgument = "hcpc::lower::missing_argument",
    /// A node is missing a property it needs.
    /// Fix: add the property the message names, e.g. `class ceph-rbd
    /// hosted=ceph-rbd`.
    MissingProperty = "hcpc::lower::missing_property",
    /// A value has the wrong type (string, integer, boolean).
    /// Fix: write the value in the type the message names: quoted strings, bare
    /// numbers, `#true`/`#false`.
    WrongType = "hcpc::lower::wrong_type",
    /// A value is not one of the allowed words or is out of range.
    /// Fix: use one of the values the help lists, or a number in the allowed
    /// range.
    InvalidValue = "hcpc::lower::invalid_value",
    /// A name is not a valid Kubernetes name (DNS-1123 label or subdomain).
    /// Fix: use lowercase letters, digits and `-` (and `.` where a subdomain is
    /// allowed), starting and ending with a letter or digit; the quick fix
    /// offers one.
    InvalidName = "hcpc::lower::invalid_name",
    /// A quantity is not a valid, non-negative Kubernetes quantity.
    /// Fix: write a Kubernetes quantity in quotes, e.g. `"8Gi"` or `"500Mi"`:
    /// binary units are `Ki Mi Gi Ti`.
    InvalidQuantity = "hcpc::lower::invalid_quantity",
    /// (warning) A memory or disk size in decimal units (`"16G"`: 16×10⁹
    /// bytes, 14.9Gi). Kubernetes takes it, but OpenShift sizes are binary,
    /// and the machine gets less than the same number in `Gi`. Fix: write
    /// the binary unit, `"16Gi"` (the quick fix does).
    DecimalSize = "hcpc::lower::decimal_unit",
    /// A duration is not valid (`"90s"`, `"1m30s"`, `"2h"`).
    /// Fix: write a number with its unit, e.g. `"90s"`, `"15m"` or `"1h30m"`.
    InvalidDuration = "hcpc::lower::invalid_duration",
    /// A setting that may appear once appears twice.
    /// Fix: keep one of the two; a setting meant for every cluster belongs in
    /// `defaults` or a `profile`.
    DuplicateSetting = "hcpc::lower::duplicate_setting",
    /// A required setting (such as `release` or `pull-secret`) is missing,
    /// in the cluster and in `defaults`.
    /// Fix: add it to the cluster, or once to `defaults` (or a `profile`) for
    /// every cluster.
    MissingSetting = "hcpc::lower::missing_setting",
    /// Two settings exclude each other (`file=` and `env=`, `replicas` and `autoscaling`).
    /// Fix: keep one of the two settings in this block.
    ConflictingSettings = "hcpc::lower::conflicting_settings",
    /// A block that needs content is empty.
    /// Fix: give the block its content, or remove the node.
    EmptyNode = "hcpc::lower::empty_node",
    /// (warning) The configuration declares no cluster, so `plan` and
    /// `apply` delete every cluster the fleet made on its targets (each one
    /// under prevent-destroy is refused). Fix: declare a cluster if this is
    /// a new fleet; to delete clusters on purpose, `hcpc destroy` (with
    /// `--cluster NAME` for some) shows the plan and asks first.
    NoClusters = "hcpc::lower::no_clusters",
    /// `arch arm64` is rejected by the NodePool CRD on the KubeVirt platform.
    /// Fix: use `arch amd64` (or `ppc64le`, `s390x`); arm64 worker nodes need
    /// another HyperShift platform.
    UnsupportedArch = "hcpc::node_pool::unsupported_arch",
    /// A node pool has more than 10 host devices (the CRD's limit).
    /// Fix: use at most 10 `host-device` entries per pool (a `count=` covers
    /// several of one device).
    TooManyHostDevices = "hcpc::node_pool::too_many_host_devices",
    /// The root volume is smaller than 16Gi.
    /// Fix: give `root-volume size=` 16Gi or more (the default is 32Gi).
    RootVolumeTooSmall = "hcpc::node_pool::root_volume_too_small",
    /// Autoscaling needs 1 <= min <= max.
    /// Fix: give `autoscaling min=` at least 1 and `max=` at least `min`.
    AutoscalingRange = "hcpc::node_pool::autoscaling_range",
    /// `attach-default-network #false` without any `additional-network`
    /// would leave the VMs without a network.
    /// Fix: add an `additional-network "NAMESPACE/NAME"`, or remove `attach-
    /// default-network #false`.
    NoNetwork = "hcpc::node_pool::no_network",
    /// `additional-network` must be written `"namespace/name"`.
    /// Fix: write the NetworkAttachmentDefinition as `"NAMESPACE/NAME"`.
    AdditionalNetworkFormat = "hcpc::node_pool::additional_network_format",
    /// A snapshot class has no storage class it can serve: inside a group
    /// the group needs a `class`; outside any group the ungrouped set needs
    /// one. Otherwise the guest gets a snapshot class that matches no volume
    /// and snapshots fail only when taken.
    /// Fix: add a `class` to the same group (or, outside groups, an ungrouped
    /// one), or move the snapshot class into the group whose storage class it
    /// serves.
    SnapshotWithoutClass = "hcpc::storage::snapshot_without_class",
    /// Two mappings give the same hosted class name; one would overwrite
    /// the other inside the guest.
    /// Fix: give each mapping its own `hosted=` name.
    DuplicateHostedName = "hcpc::storage::duplicate_hosted_name",
    /// The same infrastructure class is mapped twice into one group.
    /// Fix: remove the repeated mapping.
    DuplicateMapping = "hcpc::storage::duplicate_mapping",
    /// More than 50 storage class or snapshot class mappings (the CRD's limit).
    /// Fix: map at most 50 classes; the guest rarely needs every infrastructure
    /// class.
    TooManyMappings = "hcpc::storage::too_many_mappings",
    /// `driver none` together with class mappings.
    /// Fix: remove `driver none` to map classes, or remove the mappings to give
    /// the guest no storage driver.
    DriverConflict = "hcpc::storage::driver_conflict",
    /// The infrastructure inventory does not know this storage class.
    /// Fix: use a class the infrastructure has (`kubectl get storageclass`), or
    /// correct the `infra` inventory that declares them.
    UnknownStorageClass = "hcpc::storage::unknown_class",
    /// The infrastructure inventory does not know this snapshot class.
    /// Fix: use a snapshot class the infrastructure has (`kubectl get
    /// volumesnapshotclass`), or correct the `infra` inventory.
    UnknownSnapshotClass = "hcpc::storage::unknown_snapshot_class",
    /// KubeVirt CSI only maps storage classes that offer ReadWriteMany.
    /// Fix: map a class whose volumes offer ReadWriteMany (on ODF, `ocs-
    /// storagecluster-ceph-rbd` in Block mode).
    ClassNotRwx = "hcpc::storage::class_not_rwx",
    /// (warning) A root volume that is not RWX Block keeps VMs from live-migrating.
    /// Fix: use a storage class with ReadWriteMany Block volumes for the root
    /// volume, if the VMs must live-migrate.
    NotLiveMigratable = "hcpc::storage::not_live_migratable",
    /// A host device name the infrastructure does not offer.
    /// Fix: use a device the infrastructure offers (the help lists them), or
    /// permit the device on the infrastructure first.
    UnknownHostDevice = "hcpc::device::unknown",
    /// Host device demand across every pool exceeds the declared capacity.
    /// Fix: lower the pools' device counts or replicas, or add devices to the
    /// infrastructure (and to its `infra` inventory).
    HostDeviceCapacity = "hcpc::device::over_capacity",
    /// A host device count of zero.
    /// Fix: give `count=` 1 or more, or remove the `host-device`.
    HostDeviceCount = "hcpc::device::count",
    /// A host device name that no device plugin could register: not a
    /// Kubernetes resource name (`nvidia-a100,count:2` is `hcp`'s flag syntax,
    /// written `host-device nvidia-a100 count=2` in hcpc), or one reserved for
    /// Kubernetes itself. A name without a domain (`nvidia-a100`) is
    /// accepted: a KubeVirt `resourceName` can be anything; on a kube
    /// target it is checked against the Nodes and the KubeVirt resource.
    /// Fix: write the device as its `resourceName`, e.g. `host-device
    /// nvidia.com/GA102GL_A10 count=2`.
    InvalidHostDevice = "hcpc::device::invalid_name",
    /// (note) Host devices in node pools are a Technology Preview feature of
    /// hosted control planes on OpenShift Virtualization.
    /// Fix: nothing to fix: it is said so that production clusters use it
    /// knowingly.
    HostDeviceTechPreview = "hcpc::device::technology_preview",
    /// A VM's memory is below 1Gi: RHCOS cannot boot in it.
    /// Fix: give the pool `memory "8Gi"` or more (OpenShift's minimum for a
    /// worker).
    MemoryTooSmall = "hcpc::node_pool::memory_too_small",
    /// (warning) A VM is smaller than OpenShift's documented minimum for a
    /// compute machine (2 vCPU, 8 GB of RAM).
    /// Fix: give the pool `cores 2` and `memory "8Gi"` or more, unless the
    /// small machines are deliberate.
    BelowWorkerMinimum = "hcpc::node_pool::below_worker_minimum",
    /// The etcd volume is below 1Gi.
    /// Fix: give `etcd size=` 8Gi or more (the default).
    EtcdTooSmall = "hcpc::etcd::size_too_small",
    /// Something relies on the infrastructure's default storage class
    /// (a root volume or etcd without `storage-class=`, or a cluster without
    /// storage mappings) but the infrastructure has no default class, so the
    /// volumes would never bind.
    /// Fix: set `storage-class=` on the root volume and etcd, map classes in
    /// `storage`, or mark a StorageClass of the infrastructure as default.
    NoDefaultStorageClass = "hcpc::storage::no_default_class",
    /// A cluster without snapshot-class mappings passes the infrastructure's
    /// default VolumeSnapshotClass through, but the infrastructure has none:
    /// snapshots in the hosted cluster would never become ready.
    /// Fix: map a `snapshot-class`, or mark a VolumeSnapshotClass of the
    /// infrastructure as default.
    NoDefaultSnapshotClass = "hcpc::storage::no_default_snapshot_class",
    /// `root-volume cache=pvc` on a storage class that cannot hold the boot
    /// image cache: it must offer ReadWriteMany and clone smartly (CDI
    /// clone strategy `csi-clone` or `snapshot`, not `copy`).
    /// Fix: use a storage class that offers ReadWriteMany and smart cloning for
    /// `cache=pvc`, or remove `cache=pvc`.
    CacheCannotClone = "hcpc::storage::cache_cannot_clone",
    /// No node of the infrastructure is large enough for one VM of a node
    /// pool (CPU, memory with KubeVirt's overhead, or host devices).
    /// Fix: make the pool's VMs smaller, or add a larger node to the
    /// infrastructure.
    PoolDoesNotFit = "hcpc::capacity::pool_does_not_fit",
    /// The fleet's VMs (and, on the management cluster, the hosted control
    /// planes) do not fit on the infrastructure's nodes.
    /// Fix: reduce replicas or sizes, or add nodes to the infrastructure; the
    /// capacity table in the plan shows what is short.
    OverCapacity = "hcpc::capacity::over_capacity",
    /// (warning) The fleet would use more of a resource than the warning
    /// threshold (`infra { capacity-warning PERCENT }`, default 85%).
    /// Fix: plan more capacity, or raise `infra { capacity-warning PERCENT }`
    /// if the headroom is deliberate.
    NearCapacity = "hcpc::capacity::near_capacity",
    /// Two declarations render the same Kubernetes object.
    /// Fix: rename one of the two clusters or pools.
    NameCollision = "hcpc::names::collision",
    /// A rendered name is longer than Kubernetes allows.
    /// Fix: shorten the cluster or pool name; the message says by how much.
    NameTooLong = "hcpc::names::too_long",
    /// The dependency graph has a cycle.
    /// Fix: remove the dependency that closes the circle.
    Cycle = "hcpc::graph::cycle",
    /// A `file=` or `env=` secret source could not be read.
    /// Fix: check the path (relative to the `.kdl` file) or set the environment
    /// variable before running hcpc.
    SecretSource = "hcpc::input::secret_source",
    /// A secret source holds the wrong thing: a pull secret must be a JSON
    /// object with `auths` (the file from console.redhat.com), an SSH key
    /// an OpenSSH public key (`ssh-ed25519 AAAA… comment`, a `.pub` file).
    /// The cluster would otherwise fail to pull images or admit nobody, long
    /// after the apply.
    /// Fix: use the pull secret downloaded from console.redhat.com and an
    /// OpenSSH public key (the `.pub` file).
    SecretFormat = "hcpc::input::secret_format",
    /// A `file=` or `kubeconfig-file=` path leads outside the fleet's
    /// directory tree (the repository holding it, when it is in a git
    /// repository; symlinks resolved). A pull request could otherwise copy
    /// any file the pipeline can read into a Secret.
    /// Fix: move the file into the repository, use `env=` or `secret=`, or,
    /// for a fleet kept outside review, declare the top-level node
    /// `allow-paths-outside`.
    PathOutside = "hcpc::input::path_outside",
    /// The target could not be used (unreadable directory, bad kubeconfig).
    /// Fix: check the `target` (the kubeconfig context exists and is reachable,
    /// the directory is writable), or override it with `--target`.
    Target = "hcpc::target",
    /// (warning) A declared `infra` fact contradicts what discovery found.
    /// Fix: correct the `infra` declaration, or remove it: on a cluster, what
    /// discovery finds wins.
    InventoryMismatch = "hcpc::infra::mismatch",
    /// A node pool's host device is not in the KubeVirt resource's
    /// `spec.configuration.permittedHostDevices` (`pciHostDevices` or
    /// `mediatedDevices`, by `resourceName`): KubeVirt refuses to start
    /// its VMs. Permit the device on the cluster, or use a permitted one.
    /// Fix: add the device to the KubeVirt resource's `permittedHostDevices`,
    /// or use a permitted one.
    HostDeviceNotPermitted = "hcpc::device::not_permitted",
    /// (warning) More than one StorageClass is marked default. Kubernetes
    /// (1.26 and later) gives a claim without a class the newest of them
    /// (by creationTimestamp, then the first by name); which one that is
    /// changes when a class is created. Keep one default.
    /// Fix: remove the default mark from all but one StorageClass.
    SeveralDefaultClasses = "hcpc::storage::several_default_classes",
    /// (warning) A cluster without `storage` mappings (the Default driver)
    /// hands the infrastructure's default StorageClass to KubeVirt CSI in
    /// the guest, but that class is not ReadWriteMany: KubeVirt CSI needs
    /// RWX for live migration of the VMs and hot-plugging guest volumes.
    /// Fix: map a ReadWriteMany class in the cluster's `storage`, or make a
    /// ReadWriteMany class the default.
    DefaultClassNotRwx = "hcpc::storage::default_class_not_rwx",
    /// (note) A cluster maps storage classes but no snapshot class: the
    /// hosted cluster gets no VolumeSnapshotClass, so its volume snapshots
    /// cannot be taken. Map one with `snapshot-class` if the guest needs them.
    /// Fix: add a `snapshot-class` mapping if the guest takes snapshots.
    NoSnapshotMapping = "hcpc::storage::no_snapshot_mapping",
    /// A pool's change replaces its VMs (`upgrade-type replace`): HyperShift
    /// starts a new VM (max surge, 1 by default) before removing an old one.
    /// When no node has room for that VM, the roll-out cannot start: an
    /// error for host devices, a warning for CPU and memory (overcommit may
    /// still admit it).
    /// Fix: free room on a node for one more VM, or use
    /// `upgrade-type in-place`.
    NoRolloutRoom = "hcpc::capacity::no_rollout_room",
    /// A HostedCluster would be destroyed (its cluster removed from the
    /// fleet, or `hcpc destroy`) or replaced (an immutable field changed),
    /// but the cluster has `prevent-destroy #true` (the default).
    /// Fix: revert the change; to recreate or delete the cluster on purpose,
    /// declare `prevent-destroy #false` in it and apply first, then make the
    /// change (with `--allow-replace` for a replacement).
    PreventDestroy = "hcpc::plan::prevent_destroy",
    /// (warning) A fleet applied to a cluster without `fleet NAME`: every
    /// configuration without one shares the ApplySet `default`, and each
    /// would prune the others' objects.
    /// Fix: add `fleet NAME`, unique among the configurations applied to this
    /// management cluster.
    UnnamedFleet = "hcpc::fleet::unnamed",
    /// (warning) A namespace this fleet puts objects in is claimed by another
    /// fleet (its Namespace carries that fleet's ApplySet label). This fleet
    /// leaves the Namespace alone instead of taking it over on every apply;
    /// its own objects there are unaffected.
    /// Fix: give this fleet's clusters a namespace of their own (`namespace` in
    /// the cluster or `defaults`).
    SharedNamespace = "hcpc::fleet::shared_namespace",
    /// An object this fleet declares is a member of another fleet's
    /// ApplySet: it is never adopted silently (both would write it and
    /// prune it), only moved deliberately.
    /// Fix: rename the cluster in this fleet; or, to move it on purpose,
    /// relabel it with this fleet's ApplySet as the help says, then remove it
    /// from the other fleet's configuration.
    OtherFleet = "hcpc::fleet::owned_by_other_fleet",
    /// (warning) A Secret this fleet no longer declares is still named by a
    /// HostedCluster outside the fleet (another fleet's, or one made by
    /// hand): it is kept. Remove the reference, or delete the Secret by hand.
    /// Fix: remove the reference from the other HostedCluster, or delete the
    /// Secret by hand once nothing names it.
    SecretInUse = "hcpc::plan::secret_in_use",
    /// A live etcd encryption key Secret has no `key` of 32 bytes
    /// (base64), so the HostedCluster's aescbc encryption cannot work. hcpc
    /// never replaces an existing key (etcd data encrypted with it would be
    /// lost).
    /// Fix: if the cluster has never run, delete the Secret and apply again
    /// (apply generates a new key); otherwise restore the key it had.
    EtcdKeyInvalid = "hcpc::plan::etcd_key_invalid",
    /// The saved plan no longer matches live state or the inputs.
    /// Fix: run `hcpc plan --out FILE` again, review it, and apply that.
    StalePlan = "hcpc::plan::stale",
    /// The Kubernetes API refused or failed a request.
    /// Fix: read the server's message: check the credentials and the
    /// permissions of the identity hcpc uses, and that the API server is
    /// reachable; then run the command again.
    Api = "hcpc::api",
    /// The fleet is locked by another apply.
    /// Fix: wait for the other apply to finish (or pass `--lock-timeout`); if
    /// it died, `hcpc unlock` removes its lock.
    Locked = "hcpc::apply::locked",
    /// A server-side apply conflict: another field manager (`kubectl`, an
    /// operator, a person with `oc edit`) owns a field hcpc sets, and the
    /// API server refused to take it over. Fix: decide who owns the field.
    /// If hcpc should, run `hcpc apply --force-conflicts` to take it; if the
    /// other manager should, remove the setting from the fleet.
    Conflict = "hcpc::apply::conflict",
    /// Waiting for clusters or pools failed or timed out.
    /// Fix: read which cluster or pool is not ready and why; fix that, or give
    /// `--timeout` more time, and run apply again.
    Wait = "hcpc::apply::wait",
    /// A label key or value (of `labels`, `node-selector`,
    /// `control-plane-node-selector`) that Kubernetes refuses: keys are
    /// `[prefix/]name`, the name 1 to 63 letters, digits, `-`, `_`, `.`
    /// (starting and ending with a letter or digit), the prefix a DNS
    /// subdomain; values are empty or follow the name's rule. A node
    /// selector with such a value matches no node, so its VMs or pods never
    /// schedule. Keys hcpc sets itself are reserved.
    /// Fix: use a key and value of letters, digits, `-`, `_` and `.` (63 at
    /// most each), with an optional DNS prefix before `/`.
    InvalidLabel = "hcpc::lower::invalid_label",
    /// `base-domain` is not a DNS name as the HostedCluster API reads it:
    /// letters, digits and `-` between dots, the last part two or more
    /// letters (or a single part), at most 253 characters.
    /// Fix: write a DNS name, e.g. `base-domain "example.com"`.
    InvalidBaseDomain = "hcpc::cluster::invalid_base_domain",
    /// `network type=` is not one the HostedCluster API accepts:
    /// OVNKubernetes, OpenShiftSDN, Calico or Other.
    /// Fix: use `OVNKubernetes` (the default), `OpenShiftSDN`, `Calico` or
    /// `Other`.
    UnknownNetworkType = "hcpc::network::unknown_type",
    /// The pod (`cluster-cidr`), service (`service-cidr`) and machine
    /// (`machine-cidr`) networks overlap. The HostedCluster API refuses equal
    /// ranges; overlapping ones leave addresses routed to two places.
    /// The defaults (10.132.0.0/14 and 172.31.0.0/16) count when not written.
    /// Fix: choose ranges that do not overlap, e.g. `cluster-
    /// cidr="10.132.0.0/14"` and `service-cidr="172.31.0.0/16"`.
    OverlappingNetworks = "hcpc::network::overlapping",
    /// More than 20 `control-plane-node-selector` entries (the HostedCluster
    /// API's limit).
    /// Fix: keep at most 20 entries.
    TooManySelectors = "hcpc::cluster::too_many_node_selectors",
    /// More than 25 tolerations (the HostedCluster API's limit).
    /// Fix: keep at most 25 tolerations.
    TooManyTolerations = "hcpc::cluster::too_many_tolerations",
    /// A toleration Kubernetes refuses in the control plane's pods: a key
    /// or value that is not a label key or value, no `key=` without
    /// operator=Exists, or `seconds=` without effect=NoExecute.
    /// Fix: give a valid key and value, `operator=Exists` for a toleration
    /// without `key=`, and `effect=NoExecute` with `seconds=`.
    InvalidToleration = "hcpc::cluster::invalid_toleration",
    /// More than 20 `additional-network` entries in one pool (the NodePool
    /// API's limit).
    /// Fix: attach at most 20 networks to one pool.
    TooManyNetworks = "hcpc::node_pool::too_many_networks",
    /// The management cluster refused an object in its server-side dry run
    /// (`dryRun=All`): a ValidatingAdmissionPolicy, an admission webhook
    /// (Gatekeeper, Kyverno), a CRD's CEL rule or its schema. `plan` sends
    /// every object it would create or change this way, and `apply` again
    /// under the lock before its first write, so a refused object stops the
    /// apply before anything is written. The message is the server's; the
    /// label points at the setting that made the refused field, or at the
    /// node that declares the object.
    /// Fix: read the server's message and change the setting the label points
    /// at, or ask the management cluster's owners about the policy that refused
    /// it.
    DryRunRejected = "hcpc::plan::rejected",
    /// (note) Objects in a namespace the plan creates cannot be judged by
    /// the server's dry run before that namespace exists: `apply` checks
    /// them right after creating their Namespaces, before any other write.
    /// Fix: nothing to fix: apply judges these objects once their namespace
    /// exists.
    DryRunAtApply = "hcpc::plan::checked_at_apply",
    /// (note) An object this fleet no longer declares is already being
    /// deleted (it has a `deletionTimestamp`; finalizers, such as the
    /// HyperShift operator's, hold it while it tears the cluster down). It
    /// is not deleted again nor counted as destroyed, and the Secrets its
    /// HostedCluster names are kept until it is gone.
    /// Fix: nothing to fix: wait for the deletion to finish; `hcpc plan` shows
    /// it gone then.
    Deleting = "hcpc::plan::deleting",
    /// (warning) A declared hosted cluster whose HostedCluster is gone
    /// (deleted outside hcpc, by hand or by another tool) while its other
    /// objects, NodePools or Secrets, are still live: the plan creates it
    /// again, as a new cluster with none of the old one's workloads.
    /// Fix: if the deletion was meant, remove the cluster from the
    /// configuration; otherwise apply to create it again.
    Gone = "hcpc::plan::gone",
    /// The command line is not usable as given.
    /// Fix: run the command with `--help` for its flags and examples.
    Usage = "hcpc::usage",
    /// A cluster's `profile=` or a profile's `extends=` names no declared
    /// `profile`.
    /// Fix: declare the `profile`, or correct the name (the help suggests the
    /// closest).
    UnknownProfile = "hcpc::profile::unknown",
    /// Profiles extend each other in a circle, so none of them has a
    /// complete set of settings: break the circle at one `extends=`.
    /// Fix: remove one `extends=` from the circle.
    ProfileCycle = "hcpc::profile::cycle",
    /// A wave's `selector` is not a Kubernetes label selector. The syntax is
    /// kubectl's `-l`: `key=value`, `key!=value`, `key in (a,b)`,
    /// `key notin (a,b)`, `key`, `!key`, joined by commas.
    /// Fix: write the selector as for `kubectl get -l`, e.g.
    /// `selector="env=canary"`.
    RolloutSelector = "hcpc::rollout::selector",
    /// A `rollout` block is not usable: no waves, two waves with one name,
    /// or a wave after one without a selector (which took every remaining
    /// cluster, so the later wave can never have any).
    /// Fix: give the `rollout` at least one `wave`, give each wave its own
    /// name, and put the wave without a selector last.
    RolloutWaves = "hcpc::rollout::waves",
    /// A cluster failed during a rollout (Degraded, a failed update, a
    /// NodePool that cannot roll, or no progress within
    /// `--rollout-timeout`), or the management cluster refused a step
    /// that `apply --wait` was about to make (`hcpc::plan::rejected` says
    /// why; nothing of the steps due then was written): no further
    /// cluster starts until it is fixed. Fix the cause and run `hcpc
    /// apply` again; it continues from the live state.
    /// Fix: fix the failed cluster (the message says why), then run `hcpc
    /// apply` again.
    RolloutHalted = "hcpc::rollout::halted",
    /// A `release` is not a container image reference:
    /// `REGISTRY/REPOSITORY:TAG` or `REGISTRY/REPOSITORY@sha256:DIGEST`, with
    /// a registry, a lowercase repository, no spaces, a non-empty tag of
    /// letters, digits, `_`, `.` and `-` (OpenShift tags join version and
    /// architecture with `-`: `4.17.3-multi`), and a digest of 64 lowercase
    /// hex digits. A version alone (`4.19`) or `latest` is not an image. The
    /// API server would take some of these and the operator fail to pull
    /// them. Fix: write the full reference, e.g.
    /// `quay.io/openshift-release-dev/ocp-release:4.19.3-multi`.
    InvalidRelease = "hcpc::release::invalid_reference",
    /// (warning) A release tag names no OpenShift version (`:latest`,
    /// `:stable`): it can point at another release tomorrow, and the version
    /// rules cannot be checked. Name the version (`…:4.18.5-multi`) or pin
    /// the image by digest.
    /// Fix: write the version tag, e.g. `quay.io/openshift-release-dev/ocp-
    /// release:4.19.3-multi`, or pin the image by digest.
    ReleaseWithoutVersion = "hcpc::release::no_version",
    /// (note) A release pinned by digest (`@sha256:…`) names no version:
    /// the version rules are skipped, except in `plan` where the live
    /// HostedCluster's status says which version that image is.
    /// Fix: nothing to fix: `plan` checks the rules against the live cluster's
    /// version.
    ReleaseDigest = "hcpc::release::digest",
    /// A node pool's release is newer than its cluster's. HyperShift
    /// documents that a NodePool may never run a newer version than its
    /// HostedCluster (patch versions included): upgrade the control plane
    /// first.
    /// Fix: upgrade the cluster's `release` first, or give the pool the
    /// cluster's version or an older one.
    PoolNewerThanCluster = "hcpc::release::pool_newer_than_cluster",
    /// A node pool's release is older than its cluster's by more minor
    /// versions than OpenShift's hosted control planes allow: 2 on a 4.even
    /// control plane (4.18 with 4.16 pools), 1 on a 4.odd one (4.17 with
    /// 4.16 pools). Patch-level differences are fine.
    /// Fix: upgrade the pool's release to within the allowed skew (usually by
    /// removing the pool's own `release`).
    PoolSkew = "hcpc::release::pool_skew",
    /// The desired release is older than the version the live HostedCluster
    /// runs (its `status.version.history[0]`, or its spec): OpenShift does
    /// not downgrade a cluster.
    /// Fix: set `release` back to the version the cluster runs, or a newer one.
    ControlPlaneDowngrade = "hcpc::release::downgrade",
    /// The desired release is more than one minor version newer than the
    /// live HostedCluster's. Control planes upgrade one minor at a time;
    /// where the release's update graph allows the jump, say so with
    /// `allow-minor-skip #true` in the cluster (the plan shows it).
    /// Fix: upgrade one minor version at a time, or add `allow-minor-skip
    /// #true` where the update graph allows the jump.
    MinorSkip = "hcpc::release::minor_skip",
    /// The HyperShift operator of the management cluster does not list the
    /// release's minor version in its `supported-versions` ConfigMap
    /// (namespace `hypershift`): it would not roll the cluster out. Choose a
    /// listed version or upgrade the operator first.
    /// Fix: choose a version the operator lists (`hcpc plan` names them), or
    /// upgrade the HyperShift operator first.
    UnsupportedVersion = "hcpc::release::unsupported_version",
    /// (note) The management cluster has no readable `supported-versions`
    /// ConfigMap in namespace `hypershift`, so releases are not checked
    /// against what its HyperShift operator supports.
    /// Fix: nothing to fix in the fleet: let hcpc read the ConfigMap (RBAC), or
    /// check the releases against the operator by hand.
    SupportedVersionsUnknown = "hcpc::release::supported_versions_unknown",
    /// (note) The identity may not list an infrastructure resource
    /// (StorageClasses, Nodes, …) of the management cluster: what it would
    /// tell is taken from the fleet's `infra` declaration and not checked.
    /// Fix: grant the permission the note names (`hcpc rbac` prints it).
    DiscoveryForbidden = "hcpc::target::discovery_forbidden",
    /// The identity of the kubeconfig may not make a write the plan needs
    /// (RBAC answered 403 to the dry run): the message names the verb,
    /// resource and scope to grant. Not a refusal of the configuration.
    /// Fix: grant that permission (`hcpc rbac` prints what plan and apply
    /// need), or run with an identity that has it.
    Forbidden = "hcpc::target::forbidden",
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
            message: one_line(message.into()),
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
        self.labels.push(Label { span, text: one_line(text.into()) });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(shown(help.into()));
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

/// A diagnostic's text as every format prints it: values from the fleet
/// or the server inside it cannot drive the terminal (`crate::printable`).
/// A help may run over several lines.
fn shown(s: String) -> String {
    match crate::printable::text(&s, crate::printable::DIAGNOSTIC_LIMIT) {
        std::borrow::Cow::Borrowed(_) => s,
        std::borrow::Cow::Owned(safe) => safe,
    }
}

/// [`shown`] for a message or label: one line, so a value holding a
/// newline cannot forge a line of output.
fn one_line(s: String) -> String {
    match crate::printable::line(&s, crate::printable::DIAGNOSTIC_LIMIT) {
        std::borrow::Cow::Borrowed(_) => s,
        std::borrow::Cow::Owned(safe) => safe,
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
                (Some(shown(f.path.display().to_string())), Some(start), Some(end))
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
                    LocatedLabel { file: shown(f.path.display().to_string()), line, column, text: l.text.clone() }
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
