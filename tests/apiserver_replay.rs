//! Checks the in-process API server against a real kube-apiserver.
//!
//! `replay_recorded_exchanges` sends every request recorded from a real
//! v1.36 server (`shared/conformance/apiserver/exchanges.json`) through the
//! real `kube` client and requires the same status and body, ignoring only
//! values that differ between runs. The other tests pin down behaviour the
//! recording covers only once or not at all.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::http::{self, Request};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::support::apiserver::ApiServer;

fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
}

fn read_yaml(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Sends a request through the kube client; returns the status and the
/// JSON body (`Null` when empty, a string when it is not JSON).
async fn exchange(client: &kube::Client, request: Request<Vec<u8>>) -> (u16, Value) {
    let what = format!("{} {}", request.method(), request.uri());
    let response =
        client.send(request.map(kube::client::Body::from)).await.unwrap_or_else(|e| panic!("{what} failed: {e}"));
    let status = response.status().as_u16();
    let bytes =
        response.into_body().collect_bytes().await.unwrap_or_else(|e| panic!("reading the answer to {what}: {e}"));
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, body)
}

/// Sends `method path` with an optional JSON body of `content_type`.
async fn send(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut builder = Request::builder().method(method).uri(path).header(http::header::ACCEPT, "application/json");
    if let Some(content_type) = content_type {
        builder = builder.header(http::header::CONTENT_TYPE, content_type);
    }
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    exchange(client, builder.body(bytes).expect("a valid request")).await
}

async fn apply(client: &kube::Client, path: &str, manager: &str, body: &Value) -> (u16, Value) {
    let sep = if path.contains('?') { '&' } else { '?' };
    send(
        client,
        "PATCH",
        &format!("{path}{sep}fieldManager={manager}"),
        Some("application/apply-patch+yaml"),
        Some(body),
    )
    .await
}

async fn get(client: &kube::Client, path: &str) -> (u16, Value) {
    send(client, "GET", path, None, None).await
}

// ------------------------------------------------------------------ replay

/// Values that legitimately differ between two servers are replaced by `*`,
/// keeping their presence comparable; CEL causes are sorted (their order
/// varies between calls on the real server too).
fn normalize(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match key.as_str() {
                    "uid" | "resourceVersion" | "creationTimestamp" | "serverAddress" => {
                        *child = json!("*");
                    }
                    "managedFields" => {
                        for entry in child.as_array_mut().into_iter().flatten() {
                            if let Some(time) = entry.get_mut("time") {
                                *time = json!("*");
                            }
                            normalize(entry);
                        }
                    }
                    "causes" => {
                        if let Some(causes) = child.as_array_mut() {
                            causes.sort_by_key(|c| c.to_string());
                        }
                    }
                    _ => normalize(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

/// Objects the recording's server already held: the `live/` scenarios, whose
/// NodePools show up in the recorded cross-namespace LIST.
fn preload(server: &ApiServer) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(conformance_dir().join("apiserver/live"))
        .expect("live/ directory")
        .filter_map(Result::ok)
        .flat_map(|scenario| std::fs::read_dir(scenario.path()).into_iter().flatten())
        .filter_map(Result::ok)
        .map(|f| f.path())
        .filter(|p| p.to_string_lossy().ends_with(".live.yaml"))
        .collect();
    // Namespaces first, as a real server would need them.
    files.sort_by_key(|p| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        (!name.as_deref().unwrap_or("").starts_with("Namespace."), p.clone())
    });
    for file in files {
        server.insert(read_yaml(&file));
    }
}

/// Discovery lists the groups that were installed on the recorded server;
/// ours serves a different set. Whatever both serve must be identical, and
/// the groups hcpc relies on must be there.
fn compare_discovery(name: &str, ours: &Value, recorded: &Value) {
    let needed = ["coordination.k8s.io", "storage.k8s.io", "apiextensions.k8s.io", "hypershift.openshift.io"];
    let (ours_groups, recorded_groups, key) = if recorded["kind"] == "APIGroupList" {
        (&ours["groups"], &recorded["groups"], "/name")
    } else {
        (&ours["items"], &recorded["items"], "/metadata/name")
    };
    let ours_groups = ours_groups.as_array().expect("our groups");
    let recorded_groups = recorded_groups.as_array().expect("recorded groups");
    for group in needed {
        assert!(ours_groups.iter().any(|g| g.pointer(key) == Some(&json!(group))), "{name}: group {group} missing");
    }
    for our_group in ours_groups {
        let Some(theirs) = recorded_groups.iter().find(|g| g.pointer(key) == our_group.pointer(key)) else {
            continue; // served here only (snapshot.storage.k8s.io, cdi.kubevirt.io, kubevirt.io)
        };
        if recorded["kind"] == "APIGroupList" {
            assert_eq!(our_group, theirs, "{name}: group differs");
            continue;
        }
        // Aggregated: compare each of our resources with the recorded one.
        let our_version = &our_group["versions"][0];
        let their_version = &theirs["versions"][0];
        assert_eq!(our_version["version"], their_version["version"], "{name}");
        assert_eq!(our_version["freshness"], their_version["freshness"], "{name}");
        for resource in our_version["resources"].as_array().into_iter().flatten() {
            let recorded_resource = their_version["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["resource"] == resource["resource"])
                .unwrap_or_else(|| panic!("{name}: {} not recorded", resource["resource"]));
            assert_eq!(resource, recorded_resource, "{name}: resource differs");
        }
    }
}

/// Replaces recorded resourceVersions in a request body by the ones this
/// server handed out for the same objects.
fn translate_versions(body: &mut Value, versions: &[(String, String)]) {
    if let Some(rv) = body.pointer_mut("/metadata/resourceVersion")
        && let Some((_, ours)) = versions.iter().find(|(theirs, _)| Some(theirs.as_str()) == rv.as_str())
    {
        *rv = json!(ours);
    }
}

#[tokio::test]
async fn replay_recorded_exchanges() {
    let server = ApiServer::start();
    preload(&server);
    let client = server.client().await;
    let anonymous = server.anonymous_client();
    let text = std::fs::read_to_string(conformance_dir().join("apiserver/exchanges.json")).expect("exchanges.json");
    let exchanges: Vec<Value> = serde_json::from_str(&text).expect("exchanges.json is JSON");
    assert_eq!(exchanges.len(), 34);

    // recorded resourceVersion -> ours, learned from the responses
    let mut versions: Vec<(String, String)> = Vec::new();
    for exchange in &exchanges {
        let name = exchange["name"].as_str().unwrap_or("?");
        let method = exchange["method"].as_str().unwrap_or("GET");
        let path = exchange["path"].as_str().unwrap_or("/");
        let mut request = exchange.get("request").filter(|r| !r.is_null()).cloned();
        if let Some(body) = request.as_mut() {
            translate_versions(body, &versions);
        }
        let caller = if name == "unauthenticated-get" { &anonymous } else { &client };
        // The recording client was Python's urllib; the server names
        // non-apply field managers after the user agent.
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::USER_AGENT, "Python-urllib/3.12")
            .header(http::header::ACCEPT, exchange["accept"].as_str().unwrap_or("application/json"));
        if let Some(content_type) = exchange["content_type"].as_str() {
            builder = builder.header(http::header::CONTENT_TYPE, content_type);
        }
        let bytes = request.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (status, mut body) = self::exchange(caller, builder.body(bytes).expect("a valid request")).await;
        let mut expected = exchange["response"].clone();
        assert_eq!(status, exchange["status"], "{name}: status differs; body: {body:#}");
        if let (Some(theirs), Some(ours)) = (
            expected.pointer("/metadata/resourceVersion").and_then(Value::as_str),
            body.pointer("/metadata/resourceVersion").and_then(Value::as_str),
        ) {
            versions.push((theirs.to_string(), ours.to_string()));
        }
        normalize(&mut body);
        normalize(&mut expected);
        if name.starts_with("discovery-") && (path == "/apis") {
            compare_discovery(name, &body, &expected);
        } else {
            assert_eq!(body, expected, "{name}: body differs\nours: {body:#}\nrecorded: {expected:#}");
        }
    }
}

/// The REST path of an object.
fn object_path(obj: &Value) -> String {
    let api_version = obj["apiVersion"].as_str().unwrap_or("v1");
    let kind = obj["kind"].as_str().unwrap_or_default();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let plural = match kind {
        "Namespace" => return format!("/api/v1/namespaces/{name}"),
        "Secret" => "secrets",
        "HostedCluster" => "hostedclusters",
        "NodePool" => "nodepools",
        other => panic!("no path for {other}"),
    };
    let namespace = obj["metadata"]["namespace"].as_str().unwrap_or_default();
    let prefix = if api_version == "v1" { "/api/v1".to_string() } else { format!("/apis/{api_version}") };
    format!("{prefix}/namespaces/{namespace}/{plural}/{name}")
}

/// Creates namespace `c-<scenario>` as `kubectl create namespace` does, then
/// server-side applies the `hcp` render of `shared/conformance/hcp/<scenario>`
/// into it as `manager`. Returns the applied documents.
async fn apply_render(client: &kube::Client, scenario: &str, manager: &str) -> Vec<Value> {
    let namespace = format!("c-{scenario}");
    let create = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    let path = "/api/v1/namespaces?fieldManager=kubectl-create";
    let (status, body) = send(client, "POST", path, Some("application/json"), Some(&create)).await;
    assert_eq!(status, 201, "{scenario}: {body:#}");

    let render = std::fs::read_to_string(conformance_dir().join(format!("hcp/{scenario}/out.yaml"))).expect("out.yaml");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&render).expect("out.yaml parses");
    let mut applied = Vec::new();
    for mut doc in docs.into_iter().filter(Value::is_object) {
        if doc["kind"] == "Namespace" {
            doc["metadata"]["name"] = json!(namespace);
        } else {
            doc["metadata"]["namespace"] = json!(namespace);
        }
        let path = object_path(&doc);
        let (status, body) = apply(client, &path, manager, &doc).await;
        assert!(status == 200 || status == 201, "{scenario} {path}: {status} {body:#}");
        applied.push(doc);
    }
    applied
}

/// Applies every `hcp` render the way the `live/` objects were made and
/// compares what is stored with what the real server stored: defaults,
/// dropped status, managedFields and their order.
#[tokio::test]
async fn applied_renders_match_the_live_objects() {
    let server = ApiServer::start();
    let client = server.client().await;
    let live_root = conformance_dir().join("apiserver/live");
    let mut scenarios: Vec<String> = std::fs::read_dir(&live_root)
        .expect("live/")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    scenarios.sort();
    assert_eq!(scenarios.len(), 11);
    for scenario in scenarios {
        apply_render(&client, &scenario, "hcp-test").await;
        let mut files: Vec<PathBuf> = std::fs::read_dir(live_root.join(&scenario))
            .expect("scenario dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".live.yaml"))
            .collect();
        files.sort();
        for file in files {
            let mut expected = read_yaml(&file);
            let (status, mut stored) = get(&client, &object_path(&expected)).await;
            assert_eq!(status, 200, "{}", file.display());
            normalize(&mut stored);
            normalize(&mut expected);
            assert_eq!(stored, expected, "{}\nours: {stored:#}\nlive: {expected:#}", file.display());
        }
    }
}

/// The README's pitfall: `sshKey: {}` is stored as `{name: ""}` (an atomic
/// map with a default), so another manager applying the very same render
/// conflicts on `.spec.sshKey` and nothing else.
#[tokio::test]
async fn taking_over_an_hcp_cluster_conflicts_on_the_ssh_key() {
    let server = ApiServer::start();
    let client = server.client().await;
    let docs = apply_render(&client, "01-minimal", "hypershift-cli").await;
    let cluster = docs.iter().find(|d| d["kind"] == "HostedCluster").expect("a HostedCluster");
    let path = object_path(cluster);
    let (status, err) = apply(&client, &path, "hcpc", cluster).await;
    assert_eq!(status, 409, "{err:#}");
    assert_eq!(err["message"], "Apply failed with 1 conflict: conflict with \"hypershift-cli\": .spec.sshKey");

    let mut as_stored = cluster.clone();
    as_stored["spec"]["sshKey"] = json!({"name": ""});
    let (status, taken) = apply(&client, &path, "hcpc", &as_stored).await;
    assert_eq!(status, 200, "{taken:#}");
    assert_eq!(managers(&taken), ["hcpc", "hypershift-cli"]);
}

// --------------------------------------------------------- focused tests

const NS: &str = "focus";

fn nodepool(replicas: Value) -> Value {
    json!({
        "apiVersion": "hypershift.openshift.io/v1beta1",
        "kind": "NodePool",
        "metadata": {"name": "np", "namespace": NS},
        "spec": {
            "arch": "amd64",
            "clusterName": "hc",
            "management": {"autoRepair": false, "upgradeType": "Replace"},
            "platform": {
                "type": "KubeVirt",
                "kubevirt": {
                    "compute": {"cores": 2, "memory": "8Gi"},
                    "rootVolume": {"type": "Persistent", "persistent": {"size": "32Gi"}}
                }
            },
            "release": {"image": "quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64"},
            "replicas": replicas
        }
    })
}

const NP_PATH: &str = "/apis/hypershift.openshift.io/v1beta1/namespaces/focus/nodepools/np";

/// The recorded HostedCluster apply body (exchange `apply-hostedcluster-create`).
fn recorded_request(name: &str) -> Value {
    let text = std::fs::read_to_string(conformance_dir().join("apiserver/exchanges.json")).expect("exchanges.json");
    let exchanges: Vec<Value> = serde_json::from_str(&text).expect("exchanges.json is JSON");
    exchanges
        .into_iter()
        .find(|e| e["name"] == name)
        .map(|e| e["request"].clone())
        .unwrap_or_else(|| panic!("no exchange {name}"))
}

fn managers(obj: &Value) -> Vec<String> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["manager"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn ssa_create_noop_conflict_and_force() {
    let server = ApiServer::start();
    server.ensure_namespace(NS);
    let client = server.client().await;

    let (status, created) = apply(&client, NP_PATH, "hcpc", &nodepool(json!(2))).await;
    assert_eq!(status, 201, "{created:#}");
    assert_eq!(created["metadata"]["generation"], 1);
    // CRD defaults are filled in but owned by nobody.
    assert_eq!(created["spec"]["management"]["replace"]["strategy"], "RollingUpdate");
    assert_eq!(created["spec"]["platform"]["kubevirt"]["compute"]["qosClass"], "Burstable");
    let owned = &created["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"];
    assert!(owned["f:management"].get("f:replace").is_none());
    assert_eq!(owned["f:replicas"], json!({}));

    let (status, again) = apply(&client, NP_PATH, "hcpc", &nodepool(json!(2))).await;
    assert_eq!(status, 200);
    assert_eq!(again, created, "a no-op apply changes nothing");

    // Same value from another manager: shared, no conflict.
    let (status, shared) = apply(&client, NP_PATH, "other", &nodepool(json!(2))).await;
    assert_eq!(status, 200, "{shared:#}");
    // Nothing changed, so the new entry has no time and sorts first.
    assert_eq!(managers(&shared), ["other", "hcpc"]);
    assert!(shared["metadata"]["managedFields"][0].get("time").is_none());

    let (status, conflict) = apply(&client, NP_PATH, "other", &nodepool(json!(5))).await;
    assert_eq!(status, 409);
    assert_eq!(conflict["message"], "Apply failed with 1 conflict: conflict with \"hcpc\": .spec.replicas");
    assert_eq!(conflict["details"]["causes"][0]["reason"], "FieldManagerConflict");
    assert_eq!(server.get("nodepools", Some(NS), "np").map(|np| np["spec"]["replicas"].clone()), Some(json!(2)));

    let forced_path = format!("{NP_PATH}?force=true");
    let (status, forced) = apply(&client, &forced_path, "other", &nodepool(json!(5))).await;
    assert_eq!(status, 200);
    assert_eq!(forced["spec"]["replicas"], 5);
    assert_eq!(forced["metadata"]["generation"], 2);
    let hcpc_fields = &forced["metadata"]["managedFields"][0];
    assert_eq!(hcpc_fields["manager"], "hcpc");
    assert!(hcpc_fields["fieldsV1"]["f:spec"].get("f:replicas").is_none());

    // The conflict now goes the other way.
    let (status, back) = apply(&client, NP_PATH, "hcpc", &nodepool(json!(2))).await;
    assert_eq!(status, 409);
    assert_eq!(back["message"], "Apply failed with 1 conflict: conflict with \"other\": .spec.replicas");
}

#[tokio::test]
async fn ssa_removes_fields_the_manager_stops_applying() {
    let server = ApiServer::start();
    server.ensure_namespace(NS);
    let client = server.client().await;
    let mut with_selector = nodepool(json!(1));
    with_selector["spec"]["platform"]["kubevirt"]["nodeSelector"] = json!({"role": "a", "size": "b"});
    with_selector["metadata"]["labels"] = json!({"team": "x"});
    assert_eq!(apply(&client, NP_PATH, "hcpc", &with_selector).await.0, 201);

    // Another manager shares one label of the selector.
    let shared = json!({
        "apiVersion": "hypershift.openshift.io/v1beta1", "kind": "NodePool",
        "metadata": {"name": "np", "namespace": NS},
        "spec": {"platform": {"kubevirt": {"nodeSelector": {"role": "a"}}}}
    });
    assert_eq!(apply(&client, NP_PATH, "other", &shared).await.0, 200);

    let (status, after) = apply(&client, NP_PATH, "hcpc", &nodepool(json!(1))).await;
    assert_eq!(status, 200, "{after:#}");
    assert_eq!(after["spec"]["platform"]["kubevirt"]["nodeSelector"], json!({"role": "a"}));
    assert!(after["metadata"].get("labels").is_none_or(|l| l.get("team").is_none()));
}

#[tokio::test]
async fn label_selector_list() {
    let server = ApiServer::start();
    for (ns, name, labels) in [
        ("a", "one", json!({"app": "x", "tier": "web"})),
        ("a", "two", json!({"app": "y"})),
        ("b", "three", json!({"app": "x", "tier": "db"})),
    ] {
        server.ensure_namespace(ns);
        server.insert(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": labels}
        }));
    }
    let client = server.client().await;
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| i["metadata"]["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let cases = [
        ("app%3Dx", vec!["one", "three"]),
        ("app%3Dx%2Ctier%21%3Ddb", vec!["one"]),
        ("tier", vec!["one", "three"]),
        ("%21tier", vec!["two"]),
        ("app%20in%20%28y%2Cz%29", vec!["two"]),
        ("app%20notin%20%28x%29", vec!["two"]),
    ];
    for (selector, expected) in cases {
        let (status, list) = get(&client, &format!("/api/v1/configmaps?labelSelector={selector}")).await;
        assert_eq!(status, 200);
        assert_eq!(names(&list), expected, "selector {selector}");
        assert_eq!(list["kind"], "ConfigMapList");
        assert!(list["items"][0].get("kind").is_none(), "built-in list items carry no kind");
    }
    let (_, in_a) = get(&client, "/api/v1/namespaces/a/configmaps").await;
    assert_eq!(names(&in_a), ["one", "two"]);
    let (status, _) = get(&client, "/api/v1/configmaps?labelSelector=a%20in%20b").await;
    assert_eq!(status, 400);

    // Paging through the typed client.
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::all(client.clone());
    let page = api.list(&ListParams::default().limit(2)).await.expect("first page");
    assert_eq!(page.items.len(), 2);
    let token = page.metadata.continue_.clone().expect("continue token");
    let rest = api.list(&ListParams::default().limit(2).continue_token(&token)).await.expect("second page");
    assert_eq!(rest.items.len(), 1);
}

#[tokio::test]
async fn dry_run_stores_nothing() {
    let server = ApiServer::start();
    server.ensure_namespace(NS);
    let client = server.client().await;
    let dry = format!("{NP_PATH}?dryRun=All");
    let (status, preview) = apply(&client, &dry, "hcpc", &nodepool(json!(2))).await;
    assert_eq!(status, 201);
    assert!(preview["metadata"].get("uid").is_some());
    assert!(preview["metadata"].get("resourceVersion").is_none());
    assert_eq!(get(&client, NP_PATH).await.0, 404);

    let (_, created) = apply(&client, NP_PATH, "hcpc", &nodepool(json!(2))).await;
    let (status, changed) = apply(&client, &dry, "hcpc", &nodepool(json!(4))).await;
    assert_eq!(status, 200);
    assert_eq!(changed["spec"]["replicas"], 4);
    assert_eq!(changed["metadata"]["generation"], 2);
    assert_eq!(changed["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"]);
    assert_eq!(get(&client, NP_PATH).await.1, created);

    let missing = "/apis/hypershift.openshift.io/v1beta1/namespaces/nowhere/nodepools/np?dryRun=All";
    let mut elsewhere = nodepool(json!(2));
    elsewhere["metadata"]["namespace"] = json!("nowhere");
    let (status, err) = apply(&client, missing, "hcpc", &elsewhere).await;
    assert_eq!(status, 404);
    assert_eq!(err["message"], "namespaces \"nowhere\" not found");
}

#[tokio::test]
async fn cel_rules_reject_immutable_changes() {
    let server = ApiServer::start();
    server.ensure_namespace("hcpc-wire");
    let client = server.client().await;
    let hc_path = "/apis/hypershift.openshift.io/v1beta1/namespaces/hcpc-wire/hostedclusters/prod-a";
    let hc = recorded_request("apply-hostedcluster-create");
    assert_eq!(apply(&client, hc_path, "hcpc", &hc).await.0, 201);

    let mut changed = hc.clone();
    changed["spec"]["networking"]["clusterNetwork"][0]["cidr"] = json!("10.200.0.0/14");
    changed["spec"]["services"][0]["servicePublishingStrategy"]["type"] = json!("NodePort");
    changed["spec"]["platform"]["kubevirt"]["storageDriver"]["manual"]["storageClassMapping"][0]["guestStorageClassName"] =
        json!("other");
    let (status, err) = apply(&client, hc_path, "hcpc", &changed).await;
    assert_eq!(status, 422, "{err:#}");
    let causes: Vec<(String, String)> = err["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (c["field"].as_str().unwrap_or("").into(), c["message"].as_str().unwrap_or("").into()))
        .collect();
    let expect = |field: &str, message: &str| {
        assert!(
            causes.contains(&(field.to_string(), format!("Invalid value: {message}"))),
            "missing {field}: {message} in {causes:#?}"
        );
    };
    expect("spec", "Services is immutable. Changes might result in unpredictable and disruptive behavior.");
    expect("spec.networking.clusterNetwork", "clusterNetwork is immutable and cannot be modified once set.");
    expect("spec.platform.kubevirt.storageDriver", "storageDriver is immutable");
    expect("spec.platform.kubevirt.storageDriver.manual.storageClassMapping", "storageClassMapping is immutable");
    let mut sorted = causes.clone();
    sorted.sort();
    assert_eq!(causes, sorted, "causes come sorted");

    // A create is not a transition: the same values are accepted there.
    let mut arm = nodepool(json!(1));
    arm["spec"]["arch"] = json!("arm64");
    server.ensure_namespace(NS);
    let (status, err) = apply(&client, NP_PATH, "hcpc", &arm).await;
    assert_eq!(status, 422);
    assert_eq!(
        err["message"],
        "NodePool.hypershift.openshift.io \"np\" is invalid: spec: Invalid value: \
         Setting Arch to arm64 is only supported for AWS, Azure, Agent, GCP and None"
    );

    assert_eq!(apply(&client, NP_PATH, "hcpc", &nodepool(json!(1))).await.0, 201);
    let mut upgrade = nodepool(json!(1));
    upgrade["spec"]["management"]["upgradeType"] = json!("InPlace");
    let (status, err) = apply(&client, NP_PATH, "hcpc", &upgrade).await;
    assert_eq!(status, 422);
    assert_eq!(err["details"]["causes"][0]["field"], "spec.management.upgradeType");
    assert_eq!(err["details"]["causes"][0]["message"], "Invalid value: UpgradeType is immutable");
}

#[tokio::test]
async fn schema_violations_are_422_and_wrong_types_500() {
    let server = ApiServer::start();
    server.ensure_namespace(NS);
    let client = server.client().await;

    let (status, err) = apply(&client, NP_PATH, "hcpc", &nodepool(json!(-3))).await;
    assert_eq!(status, 422);
    assert_eq!(
        err["message"],
        "NodePool.hypershift.openshift.io \"np\" is invalid: .spec.replicas: Invalid value: -3: \
         should be a non-negative integer"
    );

    let mut bad = nodepool(json!(1));
    bad["spec"]["platform"]["kubevirt"]["compute"]["qosClass"] = json!("Fast");
    bad["spec"]["platform"]["kubevirt"]["compute"]["cores"] = json!(0);
    let (status, err) = apply(&client, NP_PATH, "hcpc", &bad).await;
    assert_eq!(status, 422);
    assert_eq!(
        err["message"],
        "NodePool.hypershift.openshift.io \"np\" is invalid: [\
         spec.platform.kubevirt.compute.cores: Invalid value: 0: spec.platform.kubevirt.compute.cores \
         in body should be greater than or equal to 1, \
         spec.platform.kubevirt.compute.qosClass: Unsupported value: \"Fast\": supported values: \
         \"Burstable\", \"Guaranteed\"]"
    );

    let mut missing = nodepool(json!(1));
    if let Some(spec) = missing["spec"].as_object_mut() {
        spec.remove("clusterName");
    }
    let (status, err) = apply(&client, NP_PATH, "hcpc", &missing).await;
    assert_eq!(status, 422);
    assert_eq!(err["details"]["causes"][0]["field"], "spec.clusterName");
    assert_eq!(err["details"]["causes"][0]["reason"], "FieldValueRequired");

    let (status, err) = apply(&client, NP_PATH, "hcpc", &nodepool(json!("five"))).await;
    assert_eq!(status, 500);
    assert_eq!(
        err["message"],
        "failed to create typed patch object (focus/np; hypershift.openshift.io/v1beta1, \
         Kind=NodePool): .spec.replicas: expected numeric (int or float), got string"
    );
    let mut unknown = nodepool(json!(1));
    unknown["spec"]["replicaz"] = json!(1);
    let (status, err) = apply(&client, NP_PATH, "hcpc", &unknown).await;
    assert_eq!(status, 500);
    assert!(err["message"].as_str().is_some_and(|m| m.ends_with(".spec.replicaz: field not declared in schema")));
    assert_eq!(get(&client, NP_PATH).await.0, 404, "nothing was stored");
}

#[tokio::test]
async fn lease_optimistic_concurrency() {
    let server = ApiServer::start();
    server.ensure_namespace(NS);
    let client = server.client().await;
    let leases: Api<Lease> = Api::namespaced(client, NS);
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "lock"},
        "spec": {"holderIdentity": "ci-1", "leaseDurationSeconds": 60}
    }))
    .expect("lease");
    let created = leases.create(&PostParams::default(), &lease).await.expect("create");
    let err = leases.create(&PostParams::default(), &lease).await.expect_err("exists");
    let kube::Error::Api(status) = err else { panic!("unexpected {err}") };
    assert_eq!((status.code, status.reason.as_str()), (409, "AlreadyExists"));

    let mut renewed = created.clone();
    renewed.spec.as_mut().expect("spec").holder_identity = Some("ci-2".into());
    let updated = leases.replace("lock", &PostParams::default(), &renewed).await.expect("update");
    assert_ne!(updated.metadata.resource_version, created.metadata.resource_version);

    let err = leases.replace("lock", &PostParams::default(), &renewed).await.expect_err("stale");
    let kube::Error::Api(status) = err else { panic!("unexpected {err}") };
    assert_eq!(status.code, 409);
    assert_eq!(
        status.message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"lock\": the object has \
         been modified; please apply your changes to the latest version and try again"
    );

    let deleted = leases.delete("lock", &DeleteParams::default()).await.expect("delete");
    assert!(deleted.is_right(), "a Lease delete answers with a Status");
    assert!(leases.get_opt("lock").await.expect("get").is_none());
}

#[tokio::test]
async fn requests_need_the_token() {
    let server = ApiServer::start();
    let (status, body) = get(&server.anonymous_client(), "/api/v1/namespaces").await;
    assert_eq!(status, 401);
    assert_eq!(body["reason"], "Unauthorized");

    let tmp = tempfile::tempdir().expect("tempdir");
    let path = server.write_kubeconfig_with_context(tmp.path(), "elsewhere");
    let wrong = std::fs::read_to_string(&path).expect("kubeconfig").replace(server.token(), "not-the-token");
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&wrong).expect("kubeconfig parses");
    assert_eq!(kubeconfig.current_context.as_deref(), Some("elsewhere"));
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("config");
    let client = kube::Client::try_from(config).expect("client");
    assert_eq!(get(&client, "/api").await.0, 401);
}

#[tokio::test]
async fn kubeconfig_and_discovery_work_with_kube() {
    let server = ApiServer::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = server.write_kubeconfig(tmp.path());
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("config");
    assert_eq!(config.cluster_url.to_string(), format!("{}/", server.url()));
    let client = kube::Client::try_from(config).expect("client");

    let discovery = kube::Discovery::new(client.clone()).run().await.expect("discovery");
    let hypershift = discovery.groups().find(|g| g.name() == "hypershift.openshift.io").expect("hypershift group");
    let kinds: Vec<String> = hypershift.recommended_resources().into_iter().map(|(r, _)| r.kind).collect();
    assert_eq!(kinds, ["HostedCluster", "NodePool"]);
    let aggregated = kube::Discovery::new(client.clone()).run_aggregated().await.expect("aggregated discovery");
    assert!(aggregated.has_group("hypershift.openshift.io"));
    assert!(aggregated.has_group("coordination.k8s.io"));

    let (status, crd) =
        get(&client, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/nodepools.hypershift.openshift.io").await;
    assert_eq!(status, 200);
    assert!(crd.pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec").is_some());
    let (_, version) = get(&client, "/version").await;
    assert_eq!(version["gitVersion"], "v1.36.2");
}

#[tokio::test]
async fn status_subresource_and_deletion() {
    let server = ApiServer::start();
    server.ensure_namespace(NS);
    let client = server.client().await;
    let mut with_status = nodepool(json!(2));
    with_status["status"] = json!({"replicas": 7});
    let (_, created) = apply(&client, NP_PATH, "hcpc", &with_status).await;
    assert!(created.get("status").is_none(), "status in an apply body is dropped");

    let updated = server.set_status("nodepools", Some(NS), "np", json!({"replicas": 2})).expect("set_status");
    assert_eq!(updated["metadata"]["generation"], 1);
    let (status, patched) = send(
        &client,
        "PATCH",
        &format!("{NP_PATH}/status"),
        Some("application/merge-patch+json"),
        Some(&json!({"status": {"version": "4.20.0"}, "spec": {"replicas": 9}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(patched["status"], json!({"replicas": 2, "version": "4.20.0"}));
    assert_eq!(patched["spec"]["replicas"], 2, "status writes leave spec alone");
    let status_entry = patched["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["subresource"] == "status")
        .expect("a status manager");
    assert_eq!(status_entry["fieldsV1"], json!({"f:status": {"f:version": {}}}));

    let (_, scale) = get(&client, &format!("{NP_PATH}/scale")).await;
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["status"]["replicas"], 2);

    // A finalizer holds the object until it is removed.
    let finalizer = json!({"metadata": {"finalizers": ["hypershift.openshift.io/finalizer"]}});
    let (status, _) = send(&client, "PATCH", NP_PATH, Some("application/merge-patch+json"), Some(&finalizer)).await;
    assert_eq!(status, 200);
    let (status, pending) = send(&client, "DELETE", NP_PATH, None, None).await;
    assert_eq!(status, 200);
    assert!(pending["metadata"].get("deletionTimestamp").is_some());
    let clear = json!({"metadata": {"finalizers": null}});
    send(&client, "PATCH", NP_PATH, Some("application/merge-patch+json"), Some(&clear)).await;
    assert_eq!(get(&client, NP_PATH).await.0, 404);

    // Deleting a namespace takes its content along.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), NS);
    let secret: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"a": "b"}})).expect("secret");
    let params = PatchParams::apply("hcpc");
    let stored = secrets.patch("s", &params, &Patch::Apply(&secret)).await.expect("apply secret");
    assert_eq!(stored.type_.as_deref(), Some("Opaque"));
    let (status, ns) = send(&client, "DELETE", "/api/v1/namespaces/focus", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert!(server.get("secrets", Some(NS), "s").is_none());
    assert!(server.get("namespaces", None, NS).is_none());
}

#[tokio::test]
async fn plain_writes_own_what_they_change() {
    let server = ApiServer::start();
    server.ensure_namespace(NS);
    let client = server.client().await;
    let config_map = |data: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "c", "namespace": NS}, "data": data})
    };
    let (status, created) = send(
        &client,
        "POST",
        "/api/v1/namespaces/focus/configmaps?fieldManager=ctl",
        Some("application/json"),
        Some(&config_map(json!({"a": "1", "b": "2"}))),
    )
    .await;
    assert_eq!(status, 201);
    let entry = &created["metadata"]["managedFields"][0];
    assert_eq!((&entry["manager"], &entry["operation"]), (&json!("ctl"), &json!("Update")));
    assert_eq!(entry["fieldsV1"], json!({"f:data": {".": {}, "f:a": {}, "f:b": {}}}));

    let path = "/api/v1/namespaces/focus/configmaps/c";
    let (status, err) = apply(&client, path, "hcpc", &config_map(json!({"a": "1", "b": "3"}))).await;
    assert_eq!(status, 409);
    assert_eq!(err["message"], "Apply failed with 1 conflict: conflict with \"ctl\" using v1: .data.b");
    let (status, shared) = apply(&client, path, "hcpc", &config_map(json!({"a": "1"}))).await;
    assert_eq!(status, 200);
    assert_eq!(managers(&shared), ["hcpc", "ctl"], "Apply entries come first");
    assert_eq!(shared["data"], json!({"a": "1", "b": "2"}));

    // A plain update takes the fields it changes away from other managers.
    let (status, updated) = send(
        &client,
        "PUT",
        &format!("{path}?fieldManager=editor"),
        Some("application/json"),
        Some(&config_map(json!({"a": "9", "b": "2"}))),
    )
    .await;
    assert_eq!(status, 200);
    let fields_of = |obj: &Value, manager: &str| {
        obj["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["manager"] == manager)
            .map(|e| e["fieldsV1"].clone())
    };
    assert_eq!(fields_of(&updated, "editor"), Some(json!({"f:data": {"f:a": {}}})));
    assert_eq!(fields_of(&updated, "hcpc"), None, "hcpc owned only .data.a");

    assert_eq!(server.list("configmaps", Some(NS)).len(), 1);
    assert!(server.remove("configmaps", Some(NS), "c").is_some());
    assert!(server.list("configmaps", None).is_empty());
}

#[tokio::test]
async fn fault_injection() {
    let server = ApiServer::start();
    let client = server.client().await;
    server.clear_requests();

    server.faults().fail_nth(2, 500);
    assert_eq!(get(&client, "/api").await.0, 200);
    let (status, body) = get(&client, "/api").await;
    assert_eq!((status, body["reason"].as_str()), (500, Some("InternalError")));
    assert_eq!(get(&client, "/api").await.0, 200);

    // kube retries 503 by itself: the caller only sees the success.
    server.faults().fail_nth(1, 503);
    assert_eq!(get(&client, "/api/v1").await.0, 200);
    let tail: Vec<_> = server.requests().into_iter().rev().take(2).collect();
    assert_eq!(tail[0], tail[1], "the failed request was sent again");

    server.faults().fail_matching("GET", "/namespaces", 500, 2);
    assert_eq!(get(&client, "/api/v1/namespaces").await.0, 500);
    assert_eq!(get(&client, "/api").await.0, 200, "other paths are not affected");
    assert_eq!(get(&client, "/api/v1/namespaces/default").await.0, 500);
    assert_eq!(get(&client, "/api/v1/namespaces").await.0, 200);

    server.faults().drop_connection_nth(1);
    let request = Request::builder().uri("/api").body(kube::client::Body::from(Vec::new())).expect("request");
    assert!(client.send(request).await.is_err(), "the connection was dropped");
    assert_eq!(get(&client, "/api").await.0, 200, "the next request gets through");

    server.faults().delay(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(get(&client, "/api").await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    server.faults().clear();

    let requests = server.requests();
    assert_eq!(requests.len(), 12);
    assert_eq!(requests[5], ("GET".to_string(), "/api/v1/namespaces".to_string()));
    let url = server.url();
    drop(server);
    let stopped = std::net::TcpStream::connect(url.trim_start_matches("http://"));
    assert!(stopped.is_err(), "the server stops when dropped");
}
