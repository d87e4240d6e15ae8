//! Least privilege on the real server: a pull request's identity with a
//! Role in the fleet's namespace only (no cluster-wide Secrets) can plan,
//! and every permission it lacks is named with its verb, resource and
//! scope, all in one run.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::envtest::{DEFAULT_CONTEXT, Envtest, kubeconfig_yaml};
use crate::support::{hcpc, stderr, stdout};

const RELEASE: &str = "quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64";

/// A ServiceAccount `name` in `namespace` and a token for it (TokenRequest).
fn service_account_token(k: &Envtest, namespace: &str, name: &str) -> String {
    k.create(
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}),
    );
    let path = format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token");
    let body =
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}});
    let answer: Value = k.block_on(async |client| {
        let request = http::Request::post(path)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap();
        client.request::<Value>(request).await.expect("a token for the ServiceAccount")
    });
    answer["status"]["token"].as_str().expect("a token").to_string()
}

/// Binds `rules` to the ServiceAccount in `namespace` (a Role) or across
/// the cluster (a ClusterRole when `namespace` is `None`).
fn grant(k: &Envtest, sa: (&str, &str), name: &str, namespace: Option<&str>, rules: Value) {
    let subject = json!([{"kind": "ServiceAccount", "namespace": sa.0, "name": sa.1}]);
    let (role, binding, meta) = match namespace {
        Some(ns) => ("Role", "RoleBinding", json!({"name": name, "namespace": ns})),
        None => ("ClusterRole", "ClusterRoleBinding", json!({"name": name})),
    };
    k.create(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": role, "metadata": meta, "rules": rules}));
    k.create(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": binding, "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role, "name": name}, "subjects": subject}));
}

fn plan_as(dir: &Path, k: &Envtest, token: &str, fleet: &str, namespace: &str) -> std::process::Output {
    let secret = crate::support::pull_secret_in(dir);
    std::fs::write(
        dir.join("fleet.kdl"),
        format!(
            "target kube\nfleet {fleet}\ninfra {{\n    storage-class standard default=#true\n    snapshot-class standard-snapshot default=#true\n}}\ncluster example {{\n    namespace \"{namespace}\"\n    release \"{RELEASE}\"\n    pull-secret file=\"{}\"\n    node-pool workers replicas=1\n}}\n",
            secret.display()
        ),
    )
    .unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_yaml(DEFAULT_CONTEXT, k.url(), token, Some(k.ca_pem()))).unwrap();
    hcpc().current_dir(dir).env("KUBECONFIG", &kubeconfig).arg("plan").output().unwrap()
}

#[test]
fn a_plan_needs_only_a_role_in_the_fleet_namespace_and_says_what_it_leaves_unchecked() {
    let Some(k) = Envtest::shared() else { return };
    let scope = k.scope("rbac-plan");
    let ns = scope.namespace.as_str();
    k.ensure_namespace(ns);
    let token = service_account_token(k, ns, "plan");
    grant(
        k,
        (ns, "plan"),
        "hcpc-plan",
        Some(ns),
        json!([
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]},
            {"apiGroups": ["hypershift.openshift.io"], "resources": ["hostedclusters", "nodepools"], "verbs": ["get", "list"]},
        ]),
    );
    // Its own Namespace by name: no LIST of every Namespace.
    grant(
        k,
        (ns, "plan"),
        &format!("hcpc-plan-{ns}"),
        None,
        json!([{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [ns], "verbs": ["get"]}]),
    );
    let dir = tempfile::tempdir().unwrap();
    let o = plan_as(dir.path(), k, &token, &scope.fleet, ns);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(stdout(&o).contains("to add"), "{}", stdout(&o));
    assert!(err.contains("discovery was refused 5 permissions"), "{err}");
    // Help lines wrap at the terminal width: compare with spaces collapsed.
    let flat = err.split_whitespace().collect::<Vec<_>>().join(" ");
    for unchecked in [
        "`list` on nodes at the cluster scope: capacity",
        "`list` on storageclasses.storage.k8s.io at the cluster scope: storage classes, taken from `infra`",
    ] {
        assert!(flat.contains(unchecked), "names {unchecked}: {err}");
    }
    assert!(err.contains("hcpc::target::discovery_forbidden"), "{err}");
    // The dry run needs `patch`: a note for a read-only identity, never an admission refusal.
    assert!(err.contains("hcpc::target::forbidden") && err.contains("`patch` on"), "{err}");
    assert!(!err.contains("hcpc::plan::rejected") && !err.contains("admission policies"), "{err}");
}

#[test]
fn every_refused_read_is_named_with_its_verb_resource_and_scope_in_one_run() {
    let Some(k) = Envtest::shared() else { return };
    let scope = k.scope("rbac-none");
    let ns = scope.namespace.as_str();
    k.ensure_namespace(ns);
    let token = service_account_token(k, ns, "nobody");
    grant(
        k,
        (ns, "nobody"),
        &format!("hcpc-nobody-{ns}"),
        None,
        json!([{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [ns], "verbs": ["get"]}]),
    );
    let dir = tempfile::tempdir().unwrap();
    let o = plan_as(dir.path(), k, &token, &scope.fleet, ns);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for missing in [
        format!("may not `list` secrets in namespace {ns} (403 Forbidden)"),
        format!("may not `list` hostedclusters.hypershift.openshift.io in namespace {ns}"),
        format!("may not `list` nodepools.hypershift.openshift.io in namespace {ns}"),
    ] {
        assert!(err.contains(&missing), "names {missing}: {err}");
    }
    assert!(err.contains("refused 3 permissions"), "{err}");
}

/// `hcpc rbac` as a user runs it: its YAML, applied by an administrator.
fn apply_rbac(k: &Envtest, dir: &Path, account: &str, read_only: bool) {
    let mut args = vec!["rbac", ".", "--service-account", account];
    if read_only {
        args.push("--read-only");
    }
    let o = hcpc().current_dir(dir).args(&args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The `# target` comment heads each target's documents.
    let docs: Vec<Value> = crate::support::yaml_docs(&stdout(&o)).into_iter().filter(Value::is_object).collect();
    assert!(docs.iter().any(|d| d["kind"] == "Role") && docs.iter().any(|d| d["kind"] == "ClusterRoleBinding"));
    for d in &docs {
        if d["kind"] == "ClusterRole" {
            let rules = d["rules"].as_array().unwrap();
            assert!(
                !rules.iter().any(|r| r["resources"].as_array().unwrap().iter().any(|x| x == "secrets")),
                "a ClusterRole grants Secrets: {d:#}"
            );
        }
        match d["kind"].as_str() {
            Some("Namespace") => k.ensure_namespace(d["metadata"]["name"].as_str().unwrap()),
            _ => {
                k.create(d);
            }
        }
    }
}

#[test]
fn hcpc_rbac_grants_what_plan_and_apply_need_and_no_cluster_wide_secrets() {
    let Some(k) = Envtest::shared() else { return };
    let scope = k.scope("rbac-gen");
    let ns = scope.namespace.as_str();
    let ci = format!("{ns}-ci");
    k.ensure_namespace(&ci);
    k.ensure_namespace("hypershift");
    let reader = service_account_token(k, &ci, "plan");
    let writer = service_account_token(k, &ci, "apply");
    let dir = tempfile::tempdir().unwrap();
    // Before the RBAC is applied the reader may read nothing.
    let o = plan_as(dir.path(), k, &reader, &scope.fleet, ns);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));

    apply_rbac(k, dir.path(), &format!("{ci}/plan"), true);
    apply_rbac(k, dir.path(), &format!("{ci}/apply"), false);

    let o = plan_as(dir.path(), k, &reader, &scope.fleet, ns);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(stdout(&o).contains("to add"), "{}", stdout(&o));
    assert!(!err.contains("discovery_forbidden"), "discovery is granted: {err}");

    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_yaml(DEFAULT_CONTEXT, k.url(), &writer, Some(k.ca_pem()))).unwrap();
    let o = hcpc()
        .current_dir(dir.path())
        .env("KUBECONFIG", &kubeconfig)
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(k.get("hostedclusters", Some(ns), "example").is_some(), "the writer applied the cluster");

    // The reader now plans the applied fleet: no changes, read per namespace.
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_yaml(DEFAULT_CONTEXT, k.url(), &reader, Some(k.ca_pem()))).unwrap();
    let o = hcpc().current_dir(dir.path()).env("KUBECONFIG", &kubeconfig).arg("plan").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("No changes"), "{}", stdout(&o));
}

/// What `hcpc rbac` prints for a fleet of two namespaces, read-only and
/// not: reviewed as YAML, as an administrator reads it before applying.
#[test]
fn rbac_golden() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fleet.kdl"),
        format!(
            "target kube context=mgmt\nfleet prod\ncluster a {{\n    namespace team-a\n    release \"{RELEASE}\"\n    pull-secret secret=pull\n    node-pool w replicas=1\n}}\ncluster b {{\n    namespace team-b\n    release \"{RELEASE}\"\n    pull-secret secret=pull\n    node-pool w replicas=1\n}}\n"
        ),
    )
    .unwrap();
    let mut all = String::new();
    for extra in [&["--read-only"][..], &[]] {
        let o = hcpc()
            .current_dir(dir.path())
            .args(["rbac", ".", "--service-account", "ci/hcpc"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        all.push_str(&stdout(&o));
    }
    crate::examples::assert_golden("rbac__two_namespaces.yaml", &all);
    let o = hcpc().current_dir(dir.path()).args(["rbac", ".", "--service-account", "hcpc"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not NAMESPACE/NAME"), "{}", stderr(&o));
}

/// An identity that may list the fleet's HostedClusters and NodePools but
/// not watch them: `status --watch` ends at once with the refusal, naming
/// the verb, the resource and the scope, instead of listing again and
/// again in silence.
#[test]
fn status_watch_with_an_identity_that_may_list_but_not_watch_ends_with_the_refusal() {
    let Some(k) = Envtest::shared() else { return };
    let scope = k.scope("rbac-nowatch");
    let ns = scope.namespace.as_str();
    k.ensure_namespace(ns);
    let token = service_account_token(k, ns, "lister");
    grant(
        k,
        (ns, "lister"),
        "hcpc-lister",
        Some(ns),
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]),
    );
    grant(
        k,
        (ns, "lister"),
        &format!("hcpc-lister-{ns}"),
        None,
        json!([
            {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [ns], "verbs": ["get"]},
            {"apiGroups": ["hypershift.openshift.io"], "resources": ["hostedclusters", "nodepools"], "verbs": ["get", "list"]},
        ]),
    );
    let dir = tempfile::tempdir().unwrap();
    // Writes the fleet and the kubeconfig; the plan itself is allowed.
    let planned = plan_as(dir.path(), k, &token, &scope.fleet, ns);
    assert_eq!(planned.status.code(), Some(0), "{}", stderr(&planned));
    let mut child = hcpc()
        .current_dir(dir.path())
        .env("KUBECONFIG", dir.path().join("kubeconfig"))
        .args(["status", "--watch"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("status --watch still running 30 s after a refused WATCH:\n{}", stderr(&o));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "cannot watch the fleet: cannot watch hostedclusters.hypershift.openshift.io in all namespaces: 403"
        ),
        "{err}"
    );
    assert!(err.contains("needs `list` and `watch`"), "{err}");
}
