//! `hcpc rbac`: the Roles, ClusterRoles and bindings a ServiceAccount
//! needs to plan (`--read-only`) or apply this fleet, per `kube` target,
//! as YAML to apply. Secrets, HostedClusters and NodePools are granted by
//! a Role in each namespace the fleet uses: no ClusterRole grants Secrets.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::cli::exit;
use crate::cli::printer::Style;
use crate::cli::target::{TargetFlags, spelled};
use crate::ir::Target;

/// The verbs on the fleet's own objects.
const READ: [&str; 2] = ["get", "list"];
const WRITE: [&str; 6] = ["get", "list", "create", "patch", "update", "delete"];

pub fn run(path: &Path, flags: &TargetFlags, account: &str, read_only: bool, style: Style) -> u8 {
    let Some((sa_namespace, sa_name)) = account.split_once('/').filter(|(n, s)| !n.is_empty() && !s.is_empty()) else {
        eprintln!("error: --service-account `{account}` is not NAMESPACE/NAME");
        return exit::ERROR;
    };
    let Some(parts) = super::fleet_targets(path, flags, style, "so its namespaces and targets are unknown") else {
        return exit::ERROR;
    };
    let subject = json!([{"kind": "ServiceAccount", "namespace": sa_namespace, "name": sa_name}]);
    let role = if read_only { "plan" } else { "apply" };
    let mut out = String::new();
    for part in parts.iter().filter(|p| matches!(p.target, Target::Kube { .. })) {
        let fleet = &part.fleet;
        let name = format!("hcpc-{}-{role}-{sa_name}", fleet.name);
        let namespaces: BTreeSet<&str> = std::iter::once(fleet.namespace.as_str())
            .chain(fleet.clusters.iter().map(|c| c.namespace.value.as_str()))
            .collect();
        // The Roles live in the fleet's namespaces, so those come first.
        let mut docs: Vec<Value> = namespaces
            .iter()
            .map(|ns| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .collect();
        let verbs: &[&str] = if read_only { &READ } else { &WRITE };
        for ns in &namespaces {
            let mut rules = vec![
                json!({"apiGroups": [""], "resources": ["secrets"], "verbs": verbs}),
                json!({"apiGroups": [hcpc_schema::hypershift::GROUP], "resources": ["hostedclusters", "nodepools"],
                    "verbs": verbs.iter().copied().chain(["watch"]).collect::<Vec<_>>()}),
            ];
            if !read_only && *ns == fleet.namespace {
                rules.push(json!({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": WRITE}));
            }
            docs.extend(bound(&name, Some(ns), rules, &subject));
        }
        // Namespaces by name; creating one cannot be limited by name.
        let names: Vec<&str> = namespaces.iter().copied().collect();
        let mut cluster_rules = vec![json!({"apiGroups": [""], "resources": ["namespaces"], "resourceNames": names,
            "verbs": if read_only { vec!["get"] } else { vec!["get", "patch", "update"] }})];
        if !read_only {
            cluster_rules.push(json!({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]}));
        }
        // Discovery: infrastructure facts, none of them secret.
        cluster_rules
            .push(json!({"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["list"]}));
        cluster_rules
            .push(json!({"apiGroups": ["cdi.kubevirt.io"], "resources": ["storageprofiles"], "verbs": ["list"]}));
        cluster_rules
            .push(json!({"apiGroups": ["snapshot.storage.k8s.io"], "resources": ["volumesnapshotclasses"], "verbs": ["list"]}));
        cluster_rules.push(json!({"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}));
        cluster_rules.push(json!({"apiGroups": ["kubevirt.io"], "resources": ["kubevirts"], "verbs": ["list"]}));
        docs.extend(bound(&name, None, cluster_rules, &subject));
        docs.extend(bound(
            &name,
            Some(crate::live::supported::NAMESPACE),
            vec![json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [crate::live::supported::NAME], "verbs": ["get"]})],
            &subject,
        ));
        out.push_str(&format!(
            "# {}: {account} {}\n",
            spelled(&part.target),
            if read_only { "plans (read-only)" } else { "plans and applies" }
        ));
        for d in docs {
            out.push_str("---\n");
            out.push_str(&crate::render::yaml::reference_yaml(&d));
        }
    }
    if out.is_empty() {
        eprintln!("error: the fleet has no `kube` target: a directory target needs no Kubernetes permissions");
        return exit::ERROR;
    }
    crate::cli::output::print(&out)
}

/// A Role and RoleBinding in `namespace`, or a ClusterRole and
/// ClusterRoleBinding when `None`.
fn bound(name: &str, namespace: Option<&str>, rules: Vec<Value>, subject: &Value) -> [Value; 2] {
    let (role, binding, metadata) = match namespace {
        Some(ns) => ("Role", "RoleBinding", json!({"name": name, "namespace": ns})),
        None => ("ClusterRole", "ClusterRoleBinding", json!({"name": name})),
    };
    [
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": role, "metadata": metadata, "rules": rules}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": binding, "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role, "name": name}, "subjects": subject}),
    ]
}
