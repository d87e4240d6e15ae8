//! Labels and annotations hcpc puts on every object it manages.
//!
//! Ownership follows the ApplySet convention (KEP-3659) so that `kubectl`
//! understands which objects belong to a fleet; `managed-by` and the cluster
//! label make objects easy to find by hand.

/// `app.kubernetes.io/managed-by: hcpc` on every object.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY`].
pub const MANAGED_BY_VALUE: &str = "hcpc";
/// KEP-3659 member label: the applyset ID of the fleet.
pub const APPLYSET_PART_OF: &str = "applyset.kubernetes.io/part-of";
/// KEP-3659 parent label: the applyset ID.
pub const APPLYSET_ID: &str = "applyset.kubernetes.io/id";
/// KEP-3659 parent annotation: the tool that manages the set.
pub const APPLYSET_TOOLING: &str = "applyset.kubernetes.io/tooling";
/// KEP-3659 parent annotation: group-kinds of the members.
pub const APPLYSET_CONTAINS_GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";
/// KEP-3659 parent annotation: namespaces besides the parent's own.
pub const APPLYSET_ADDITIONAL_NAMESPACES: &str = "applyset.kubernetes.io/additional-namespaces";
/// The hosted cluster an object belongs to (absent on shared Namespaces).
pub const CLUSTER: &str = "hcpc.openshift.io/cluster";
/// Set on clusters declared with `prevent-destroy #true`, so that a plan made
/// after the cluster left the configuration still refuses to delete it.
pub const PREVENT_DESTROY: &str = "hcpc.openshift.io/prevent-destroy";
/// HyperShift's label: the Secret goes away with its HostedCluster.
pub const SAFE_TO_DELETE_WITH_CLUSTER: &str = "hypershift.openshift.io/safe-to-delete-with-cluster";
/// Field manager used for server-side apply.
pub const FIELD_MANAGER: &str = "hcpc";
