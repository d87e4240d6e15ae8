//! Plan and apply against the in-process Kubernetes API endpoint, through
//! the real `kube` client, end to end through the `hcpc` binary.

use std::path::Path;

use crate::support::apiserver::ApiServer;
use crate::support::{hcpc, repo, stderr, stdout};

struct Env {
    server: ApiServer,
    dir: tempfile::TempDir,
    kubeconfig: std::path::PathBuf,
}

fn env() -> Env {
    let server = ApiServer::start();
    // A management cluster as OpenShift Virtualization needs it: a default
    // storage class and a default snapshot class.
    server.insert(serde_json::json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "csi.example.com"}));
    server.insert(serde_json::json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass", "metadata": {"name": "standard-snap", "annotations": {"snapshot.storage.kubernetes.io/is-default-class": "true"}}, "driver": "csi.example.com", "deletionPolicy": "Delete"}));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path());
    Env { server, dir, kubeconfig }
}

fn fleet(dir: &Path, replicas: u32) {
    let secrets = repo().join("examples/secrets/pull-secret.json");
    std::fs::write(
        dir.join("fleet.kdl"),
        format!(
            "target kube\ncluster example {{\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret file=\"{}\"\n    node-pool workers replicas={replicas}\n}}\n",
            secrets.display()
        ),
    )
    .unwrap();
}

fn run(e: &Env, args: &[&str]) -> std::process::Output {
    hcpc().current_dir(e.dir.path()).env("KUBECONFIG", &e.kubeconfig).args(args).output().unwrap()
}

#[test]
fn empty_cluster_then_apply_then_no_changes() {
    let e = env();
    fleet(e.dir.path(), 2);
    let plan = run(&e, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}{}", stdout(&plan), stderr(&plan));
    assert!(stdout(&plan).contains("Plan: 5 to add"), "{}", stdout(&plan));

    let apply = run(&e, &["apply", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    assert!(e.server.get("nodepools", Some("clusters"), "example-workers").is_some());
    let key = e.server.get("secrets", Some("clusters"), "example-etcd-encryption-key").unwrap();
    let key_data = key["data"]["key"].clone();
    assert!(key_data.is_string());

    e.server.clear_requests();
    let again = run(&e, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}{}", stdout(&again), stderr(&again));
    assert!(stdout(&again).contains("No changes."), "{}", stdout(&again));
    let lists =
        e.server.requests().iter().filter(|(m, p)| m == "GET" && !p.contains("/apis?") && p.contains("hcpc")).count();
    assert!(lists <= 6, "requests must not grow with objects: {:?}", e.server.requests());

    // The etcd key is never rewritten.
    fleet(e.dir.path(), 3);
    let apply = run(&e, &["apply", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    let key = e.server.get("secrets", Some("clusters"), "example-etcd-encryption-key").unwrap();
    assert_eq!(key["data"]["key"], key_data);
    let np = e.server.get("nodepools", Some("clusters"), "example-workers").unwrap();
    assert_eq!(np["spec"]["replicas"], 3);
}

#[test]
fn conflict_with_another_manager_is_named_unless_forced() {
    let e = env();
    fleet(e.dir.path(), 2);
    assert_eq!(run(&e, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    // Someone else takes over spec.replicas.
    let mut np = e.server.get("nodepools", Some("clusters"), "example-workers").unwrap();
    np["spec"]["replicas"] = serde_json::json!(5);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = e.server.client().await;
        let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
            client,
            "clusters",
            &kube::discovery::ApiResource {
                group: "hypershift.openshift.io".into(),
                version: "v1beta1".into(),
                api_version: "hypershift.openshift.io/v1beta1".into(),
                kind: "NodePool".into(),
                plural: "nodepools".into(),
            },
        );
        let patch = serde_json::json!({"apiVersion": "hypershift.openshift.io/v1beta1", "kind": "NodePool", "metadata": {"name": "example-workers", "namespace": "clusters"}, "spec": {"replicas": 5}});
        api.patch("example-workers", &kube::api::PatchParams::apply("someone-else").force(), &kube::api::Patch::Apply(&patch)).await.unwrap();
    });
    let plan = run(&e, &["plan"]);
    assert!(stdout(&plan).contains("spec.replicas: 5 → 2"), "{}", stdout(&plan));
    let apply = run(&e, &["apply", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(1));
    let err = stderr(&apply);
    assert!(err.contains("conflict") && err.contains("replicas") && err.contains("--force-conflicts"), "{err}");
    let forced = run(&e, &["apply", "--auto-approve", "--force-conflicts"]);
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    assert_eq!(e.server.get("nodepools", Some("clusters"), "example-workers").unwrap()["spec"]["replicas"], 2);
}

/// Applies hcp's rendered objects of a scenario as `hcp` would (field
/// manager `hypershift-cli`), without status.
fn apply_as_hcp(e: &Env, scenario: &str) {
    let text =
        std::fs::read_to_string(crate::support::conformance().join("hcp").join(scenario).join("out.yaml")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = e.server.client().await;
        for mut doc in crate::support::yaml_docs(&text) {
            doc.as_object_mut().unwrap().remove("status");
            let kind = doc["kind"].as_str().unwrap().to_string();
            let api_version = doc["apiVersion"].as_str().unwrap().to_string();
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version.as_str()));
            let plural = format!("{}s", kind.to_lowercase());
            let ar = kube::discovery::ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: api_version.clone(),
                kind: kind.clone(),
                plural,
            };
            let name = doc["metadata"]["name"].as_str().unwrap().to_string();
            let api: kube::Api<kube::api::DynamicObject> = match doc["metadata"]["namespace"].as_str() {
                Some(ns) => kube::Api::namespaced_with(client.clone(), ns, &ar),
                None => kube::Api::all_with(client.clone(), &ar),
            };
            api.patch(&name, &kube::api::PatchParams::apply("hypershift-cli").force(), &kube::api::Patch::Apply(&doc))
                .await
                .unwrap_or_else(|err| panic!("{kind}/{name}: {err}"));
        }
    });
}

#[test]
fn import_round_trips_a_cluster_created_by_hcp() {
    let e = env();
    apply_as_hcp(&e, "10-everything");
    let import = run(&e, &["import", "hcp-clusters/prod-a"]);
    assert_eq!(import.status.code(), Some(0), "{}", stderr(&import));
    let kdl = stdout(&import);
    assert!(kdl.contains("cluster prod-a {"), "{kdl}");
    assert!(kdl.contains("object-name=prod-a"), "hcp's NodePool is named after the cluster: {kdl}");
    std::fs::write(e.dir.path().join("fleet.kdl"), format!("target kube\n{kdl}")).unwrap();

    let check = run(&e, &["check"]);
    assert_eq!(check.status.code(), Some(0), "imported KDL must check: {}\n{kdl}", stderr(&check));
    let plan = run(&e, &["plan", "--format", "json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    for change in plan["changes"].as_array().unwrap() {
        assert_ne!(change["action"], "create", "nothing may be created: {change}");
        assert_ne!(change["action"], "replace", "nothing may be replaced: {change}");
        for f in change["fields"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            assert!(path.starts_with("metadata.labels"), "only ownership labels may change, not {path}: {change}");
        }
    }
    let apply = run(&e, &["apply", "--auto-approve", "-q"]);
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    let again = run(&e, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}{}", stdout(&again), stderr(&again));
}

#[test]
fn kubeconfig_and_password_come_from_status_secrets() {
    let e = env();
    fleet(e.dir.path(), 1);
    assert_eq!(run(&e, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    let before = run(&e, &["kubeconfig", "example"]);
    assert_eq!(before.status.code(), Some(1));
    assert!(stderr(&before).contains("does not report a kubeconfig yet"), "{}", stderr(&before));

    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for (name, key, value) in [
        ("example-admin-kubeconfig", "kubeconfig", "apiVersion: v1\nkind: Config\n"),
        ("example-kubeadmin-password", "password", "abcde-fghij-klmno-pqrst"),
    ] {
        e.server.insert(serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "clusters"}, "data": {key: b64(value)}}));
    }
    e.server.set_status(
        "hostedclusters",
        Some("clusters"),
        "example",
        serde_json::json!({"kubeconfig": {"name": "example-admin-kubeconfig"}, "kubeadminPassword": {"name": "example-kubeadmin-password"}}),
    );
    let out = e.dir.path().join("admin.kubeconfig");
    let o = run(&e, &["kubeconfig", "example", "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "apiVersion: v1\nkind: Config\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
    let pw = run(&e, &["kubeadmin-password", "clusters/example"]);
    assert_eq!(stdout(&pw), "abcde-fghij-klmno-pqrst\n");
}

#[test]
fn second_apply_waits_for_or_reports_the_lock() {
    let e = env();
    fleet(e.dir.path(), 1);
    assert_eq!(run(&e, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    // Someone holds a fresh lock.
    let now = k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    e.server.insert(serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "hcpc-lock-default", "namespace": "clusters"},
        "spec": {"holderIdentity": "someone@elsewhere/42", "leaseDurationSeconds": 60, "renewTime": now, "acquireTime": now},
    }));
    fleet(e.dir.path(), 2);
    let o = run(&e, &["apply", "--auto-approve", "--lock-timeout", "1s"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("locked by someone@elsewhere/42"), "{}", stderr(&o));
    assert_eq!(e.server.get("nodepools", Some("clusters"), "example-workers").unwrap()["spec"]["replicas"], 1);
    // An expired lock (crashed holder) is taken over.
    e.server.remove("leases", Some("clusters"), "hcpc-lock-default");
    e.server.insert(serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "hcpc-lock-default", "namespace": "clusters"},
        "spec": {"holderIdentity": "crashed/1", "leaseDurationSeconds": 60, "renewTime": "2020-01-01T00:00:00.000000Z"},
    }));
    let o = run(&e, &["apply", "--auto-approve", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(e.server.get("leases", Some("clusters"), "hcpc-lock-default").is_none(), "lock released");
}

#[test]
fn transient_failures_are_retried_and_partial_failures_converge() {
    let e = env();
    fleet(e.dir.path(), 2);
    // Two 503s on the first NodePool apply: retried.
    e.server.faults().fail_matching("PATCH", "/nodepools/", 503, 2);
    let o = run(&e, &["apply", "--auto-approve", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A non-transient failure part-way stops and reports; a re-run converges.
    fleet(e.dir.path(), 4);
    e.server.faults().fail_matching("PATCH", "/nodepools/", 422, 1);
    let o = run(&e, &["apply", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not applied: NodePool/clusters/example-workers"), "{}", stderr(&o));
    let o = run(&e, &["apply", "--auto-approve", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(run(&e, &["plan", "--detailed-exitcode"]).status.code(), Some(0));
}

fn write_fleet(e: &Env, body: &str) {
    let secrets = repo().join("examples/secrets/pull-secret.json");
    std::fs::write(
        e.dir.path().join("fleet.kdl"),
        format!("target kube\ndefaults {{\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret file=\"{}\"\n}}\n{body}", secrets.display()),
    )
    .unwrap();
}

#[test]
fn removed_settings_clusters_and_immutable_changes_show_in_the_plan() {
    let e = env();
    write_fleet(
        &e,
        "cluster a {\n    labels env=prod team=x\n    node-pool w replicas=1\n}\ncluster b {\n    prevent-destroy #false\n    node-pool w replicas=1\n}\n",
    );
    assert_eq!(run(&e, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    // An object hcpc does not own is never touched.
    e.server.insert(serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "foreign", "namespace": "clusters"}}));

    // A label removed from the configuration is removed from the cluster.
    write_fleet(
        &e,
        "cluster a {\n    labels env=prod\n    node-pool w replicas=1\n}\ncluster b {\n    prevent-destroy #false\n    node-pool w replicas=1\n}\n",
    );
    let plan = run(&e, &["plan"]);
    assert!(stdout(&plan).contains("- metadata.labels.team = \"x\""), "{}", stdout(&plan));

    // An unprotected cluster that left the configuration is destroyed, child objects first.
    write_fleet(&e, "cluster a {\n    labels env=prod\n    node-pool w replicas=1\n}\n");
    let plan = run(&e, &["plan"]);
    let out = stdout(&plan);
    assert!(out.contains("- NodePool/clusters/b-w") && out.contains("- HostedCluster/clusters/b"), "{out}");
    assert!(out.find("- NodePool/clusters/b-w").unwrap() < out.find("- HostedCluster/clusters/b").unwrap(), "{out}");
    assert!(!out.contains("foreign"), "{out}");
    assert_eq!(run(&e, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    assert!(e.server.get("hostedclusters", Some("clusters"), "b").is_none());
    assert!(e.server.get("secrets", Some("clusters"), "foreign").is_some(), "unowned objects are never deleted");

    // An immutable change on a protected cluster fails the plan, naming the field.
    write_fleet(&e, "cluster a {\n    labels env=prod\n    etcd size=\"16Gi\"\n    node-pool w replicas=1\n}\n");
    let plan = run(&e, &["plan"]);
    assert_eq!(plan.status.code(), Some(1));
    assert!(stderr(&plan).contains("Etcd PV storage size is immutable"), "{}", stderr(&plan));
    // A NodePool platform change rolls its nodes.
    write_fleet(
        &e,
        "cluster a {\n    labels env=prod\n    node-pool w replicas=1 {\n        memory \"16Gi\"\n    }\n}\n",
    );
    let plan = run(&e, &["plan"]);
    assert!(stdout(&plan).contains("(rolls 1 node)"), "{}", stdout(&plan));
}

#[test]
fn no_secret_bytes_in_any_output_against_a_cluster() {
    let e = env();
    fleet(e.dir.path(), 1);
    let secret = std::fs::read(repo().join("examples/secrets/pull-secret.json")).unwrap();
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&secret);
    let mut outputs = Vec::new();
    for f in ["text", "markdown", "json", "diff"] {
        outputs.push(run(&e, &["plan", "--format", f, "--out", "p.json"]));
        outputs.push(run(&e, &["plan", "--format", f, "-v"]));
    }
    outputs.push(run(&e, &["apply", "--auto-approve"]));
    for f in ["text", "diff"] {
        outputs.push(run(&e, &["plan", "--format", f, "-v"]));
    }
    let saved = std::fs::read_to_string(e.dir.path().join("p.json")).unwrap();
    for text in outputs.iter().flat_map(|o| [stdout(o), stderr(o)]).chain([saved]) {
        assert!(
            !text.contains(&encoded) && !text.contains("ZmFrZTpmYWtl") && !text.contains("fake:fake"),
            "secret leaked: {text}"
        );
    }
}

#[test]
fn wait_follows_conditions_and_reports_failures() {
    let e = env();
    fleet(e.dir.path(), 1);
    let o = run(&e, &["apply", "--auto-approve", "--wait", "--timeout", "3s"]);
    assert_eq!(o.status.code(), Some(1), "nothing reports ready: {}", stderr(&o));
    assert!(stderr(&o).contains("not ready after 3s"), "{}", stderr(&o));

    e.server.set_status(
        "hostedclusters",
        Some("clusters"),
        "example",
        serde_json::json!({"conditions": [{"type": "Available", "status": "False", "reason": "EtcdQuorumLost", "message": "etcd has no quorum"}]}),
    );
    let o = run(&e, &["apply", "--auto-approve", "--wait", "--timeout", "3s"]);
    assert!(stderr(&o).contains("EtcdQuorumLost: etcd has no quorum"), "{}", stderr(&o));

    e.server.set_status(
        "hostedclusters",
        Some("clusters"),
        "example",
        serde_json::json!({"conditions": [{"type": "Available", "status": "True"}]}),
    );
    e.server.set_status(
        "nodepools",
        Some("clusters"),
        "example-workers",
        serde_json::json!({"replicas": 1, "conditions": [{"type": "Ready", "status": "True"}]}),
    );
    let o = run(&e, &["apply", "--auto-approve", "--wait", "--timeout", "10s"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("are ready"), "{}", stderr(&o));
}

/// An apply cut off at any request converges, on re-run, to the state an
/// uninterrupted apply gives.
#[test]
fn interrupted_apply_converges_at_every_position() {
    let reference = {
        let e = env();
        fleet(e.dir.path(), 2);
        assert_eq!(run(&e, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
        snapshot(&e)
    };
    for n in 1..=24 {
        let e = env();
        fleet(e.dir.path(), 2);
        // Alternate a cut connection (retried) with a failure that is not.
        if n % 2 == 0 {
            e.server.faults().drop_connection_nth(n);
        } else {
            e.server.faults().fail_nth(n, 400);
        }
        let first = run(&e, &["apply", "--auto-approve", "-q"]);
        e.server.faults().clear();
        let second = run(&e, &["apply", "--auto-approve", "-q"]);
        assert_eq!(
            second.status.code(),
            Some(0),
            "re-run after a cut at request {n} ({:?}): {}",
            first.status.code(),
            stderr(&second)
        );
        assert_eq!(snapshot(&e), reference, "state after a cut at request {n}");
        assert_eq!(run(&e, &["plan", "--detailed-exitcode"]).status.code(), Some(0));
        if e.server.get("leases", Some("clusters"), "hcpc-lock-default").is_some() {
            // Only a failed release may leave the lock, and it says so; the
            // Lease then expires by itself.
            assert!(stderr(&first).contains("could not release the fleet lock"), "lock left silently after cut {n}");
        }
    }
}

/// Specs and data of the objects hcpc manages (the etcd key's value aside).
fn snapshot(e: &Env) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for plural in ["secrets", "hostedclusters", "nodepools"] {
        for mut o in e.server.list(plural, Some("clusters")) {
            let name = o["metadata"]["name"].as_str().unwrap().to_string();
            if name.ends_with("etcd-encryption-key") {
                o["data"] = serde_json::json!("(generated)");
            }
            out.push(serde_json::json!({"kind": plural, "name": name, "spec": o["spec"], "data": o["data"], "labels": o["metadata"]["labels"]}));
        }
    }
    out
}

/// What the management cluster offers feeds the resolution rules; a
/// declared `infra` fact that contradicts it is a warning.
#[test]
fn discovered_inventory_is_checked_and_merged() {
    let e = env();
    e.server.insert(serde_json::json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "ceph-rbd", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "x"}));
    e.server.insert(serde_json::json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "lvm"}, "provisioner": "y"}));
    e.server.insert(serde_json::json!({"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "StorageProfile", "metadata": {"name": "ceph-rbd"}, "status": {"claimPropertySets": [{"accessModes": ["ReadWriteMany"], "volumeMode": "Block"}]}}));
    e.server.insert(serde_json::json!({"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "StorageProfile", "metadata": {"name": "lvm"}, "status": {"claimPropertySets": [{"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"}]}}));
    for n in 0..2 {
        e.server.insert(serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("node{n}")}, "status": {"allocatable": {"cpu": "64", "nvidia.com/A100": "2"}}}));
    }
    // lvm is RWO on the cluster: mapping it is an error; 5 GPUs exceed the 4 nodes offer.
    write_fleet(
        &e,
        "infra {\n    storage-class lvm access=RWX\n}\ncluster a {\n    storage {\n        class lvm hosted=local\n    }\n    node-pool gpu replicas=5 {\n        host-device \"nvidia.com/A100\"\n    }\n}\n",
    );
    let o = run(&e, &["plan"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("hcpc::infra::mismatch") && err.contains("declared RWX but the cluster offers RWO"), "{err}");
    assert!(err.contains("hcpc::storage::class_not_rwx"), "{err}");
    assert!(
        err.contains("hcpc::device::over_capacity") && err.contains("needs 5 but the infrastructure has 4"),
        "{err}"
    );

    write_fleet(
        &e,
        "cluster a {\n    storage {\n        class ceph-rbd hosted=ceph\n    }\n    node-pool gpu replicas=2 {\n        host-device \"nvidia.com/A100\" count=2\n        root-volume storage-class=ceph-rbd\n    }\n}\n",
    );
    let o = run(&e, &["plan"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn saved_plan_is_refused_when_a_live_object_changed() {
    let e = env();
    fleet(e.dir.path(), 1);
    assert_eq!(run(&e, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    fleet(e.dir.path(), 2);
    assert_eq!(run(&e, &["plan", "--out", "p.json"]).status.code(), Some(0));
    // The NodePool changes on the cluster after the plan was made.
    let mut np = e.server.get("nodepools", Some("clusters"), "example-workers").unwrap();
    np["metadata"]["annotations"] = serde_json::json!({"touched": "yes"});
    np["metadata"].as_object_mut().unwrap().remove("resourceVersion");
    e.server.insert(np);
    let o = run(&e, &["apply", "p.json", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("stale") && err.contains("NodePool/clusters/example-workers changed on the target"), "{err}");
    assert_eq!(
        e.server.get("nodepools", Some("clusters"), "example-workers").unwrap()["spec"]["replicas"],
        1,
        "nothing applied"
    );
    // A fresh plan applies.
    assert_eq!(run(&e, &["plan", "--out", "p.json"]).status.code(), Some(0));
    assert_eq!(run(&e, &["apply", "p.json", "--auto-approve", "-q"]).status.code(), Some(0));
    assert_eq!(e.server.get("nodepools", Some("clusters"), "example-workers").unwrap()["spec"]["replicas"], 2);
}

/// Status written by the operator does not make a saved plan stale.
#[test]
fn status_updates_do_not_make_a_saved_plan_stale() {
    let e = env();
    fleet(e.dir.path(), 1);
    assert_eq!(run(&e, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    fleet(e.dir.path(), 2);
    let plan = run(&e, &["plan", "--out", "p.json"]);
    assert!(
        stdout(&plan).contains("kube:hcpc-test (http://127.0.0.1:"),
        "the target names context and server: {}",
        stdout(&plan)
    );
    e.server.set_status("nodepools", Some("clusters"), "example-workers", serde_json::json!({"replicas": 1}));
    let o = run(&e, &["apply", "p.json", "--auto-approve", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.server.get("nodepools", Some("clusters"), "example-workers").unwrap()["spec"]["replicas"], 2);
}

/// A node as the kubelet reports it: allocatable CPU, memory and devices.
fn node(name: &str, cpu: &str, memory: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut allocatable =
        serde_json::json!({"cpu": cpu, "memory": memory, "pods": "250", "devices.kubevirt.io/kvm": "1k"});
    if let (Some(a), Some(x)) = (allocatable.as_object_mut(), extra.as_object()) {
        a.extend(x.clone());
    }
    serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": {"allocatable": allocatable}})
}

/// Node shapes, clone strategies and KubeVirt's CPU allocation ratio come
/// from the cluster: a VM that no node can hold, a cache on a class that
/// clones by copying, and declared nodes that contradict the cluster are
/// reported; a fleet that fits plans with a capacity table of the
/// discovered nodes.
#[test]
fn discovered_nodes_decide_fit_and_the_capacity_table() {
    let e = env();
    for n in 0..2 {
        e.server.insert(node(
            &format!("gpu-{n}"),
            "63500m",
            "515000000Ki",
            serde_json::json!({"nvidia.com/A100": "1"}),
        ));
    }
    for n in 0..3 {
        e.server.insert(node(&format!("worker-{n}"), "31500m", "257000000Ki", serde_json::json!({})));
    }
    // Neither a cordoned node nor a control-plane node runs VMs.
    let mut cordoned = node("spare", "128", "1024Gi", serde_json::json!({}));
    cordoned["spec"] = serde_json::json!({"unschedulable": true});
    e.server.insert(cordoned);
    let mut master = node("master-0", "16", "64Gi", serde_json::json!({}));
    master["spec"] = serde_json::json!({"taints": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]});
    e.server.insert(master);
    e.server.insert(serde_json::json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "nfs"}, "provisioner": "nfs"}));
    e.server.insert(serde_json::json!({"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "StorageProfile", "metadata": {"name": "nfs"}, "status": {"cloneStrategy": "copy", "claimPropertySets": [{"accessModes": ["ReadWriteMany"], "volumeMode": "Filesystem"}]}}));
    e.server.ensure_namespace("openshift-cnv");
    e.server.insert(serde_json::json!({"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt", "metadata": {"name": "kubevirt-kubevirt-hyperconverged", "namespace": "openshift-cnv"}, "spec": {"configuration": {"developerConfiguration": {"cpuAllocationRatio": 4}}}}));

    write_fleet(
        &e,
        "fleet capacity\ninfra {\n    nodes worker count=5 cores=32 memory=\"256Gi\"\n}\ncluster a {\n    node-pool gpu replicas=1 {\n        host-device \"nvidia.com/A100\" count=2\n    }\n    node-pool cached replicas=1 {\n        root-volume storage-class=nfs cache=pvc\n    }\n}\n",
    );
    let o = run(&e, &["plan"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    // Messages without miette's line wrapping.
    let err = stderr(&o).replace("\n  │ ", " ");
    assert!(
        err.contains("hcpc::infra::mismatch") && err.contains("nodes `worker` (5 × 32 vCPU, 256Gi) are declared"),
        "{err}"
    );
    assert!(err.contains("2 × 63.5 vCPU, 491.1Gi, 1 nvidia.com/A100; 3 × 31.5 vCPU, 245.1Gi"), "{err}");
    assert!(
        err.contains("hcpc::capacity::pool_does_not_fit")
            && err.contains("no node has 2 nvidia.com/A100 (the largest node has 1 nvidia.com/A100)"),
        "{err}"
    );
    assert!(err.contains("hcpc::storage::cache_cannot_clone") && err.contains("clone strategy `copy`"), "{err}");

    // 4 vCPU at a CPU allocation ratio of 4 request one CPU each.
    write_fleet(
        &e,
        "fleet capacity\ncluster a {\n    node-pool gpu replicas=2 {\n        cores 4\n        host-device \"nvidia.com/A100\"\n    }\n}\n",
    );
    let o = run(&e, &["plan", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let infra = &plan["capacity"]["infrastructures"][0];
    assert_eq!(infra["name"], "the management cluster");
    let row = |key: &str| infra["rows"].as_array().unwrap().iter().find(|r| r["key"] == key).cloned().unwrap();
    assert_eq!(row("cpu")["capacity"], 2 * 63_500 + 3 * 31_500, "cordoned and control-plane nodes are left out");
    assert_eq!(row("cpu")["after"], 2 * 1000 + 5000, "two VMs at one CPU each, and a control plane");
    assert_eq!(row("cpu")["before"], 0);
    assert_eq!(row("device/nvidia.com/A100")["capacity"], 2);
    assert_eq!(row("device/nvidia.com/A100")["percent"], 100);
    assert!(infra["notes"][0].as_str().unwrap().contains("5 schedulable nodes"), "{infra:#}");
    let text = stdout(&run(&e, &["plan"]));
    assert!(text.contains("Capacity of the management cluster:"), "{text}");
    assert!(text.contains("other workloads on them are not counted"), "{text}");
}
