//! The recorded facts about the real API server still hold on the server
//! the tests run against (a conformance check of `KUBEBUILDER_ASSETS`).
//!
//! hcpc's plan and apply rely on what `shared/conformance/apiserver/`
//! recorded from a real v1.36 server: which fields the server fills in,
//! how it words conflicts and CEL failures, what dry-run and Leases do.
//! This applies the `hcp` renders and replays every recorded exchange
//! against a server of its own, and requires the same statuses and bodies,
//! ignoring only values that differ between runs.

use std::path::PathBuf;

use http::Request;
use serde_json::{Value, json};

use crate::support::envtest::Envtest;

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
                    // The server lists causes, and the resources of an
                    // APIResourceList, in an order that varies between runs
                    // (CRDs installed concurrently); hcpc relies on neither.
                    "causes" | "resources" => {
                        if let Some(items) = child.as_array_mut() {
                            items.iter_mut().for_each(normalize);
                            items.sort_by_key(|c| c.to_string());
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

/// Discovery lists the groups that were installed on the recorded server;
/// this one serves a different set. Whatever both serve must be identical, and
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
/// compares what is stored with what the recorded server stored (defaults,
/// dropped status, managedFields and their order); then replays the
/// recorded exchanges, whose cross-namespace LIST sees those NodePools.
#[tokio::test]
async fn recorded_exchanges_hold_on_the_server() {
    // Its own server: the recording lists across namespaces and names fixed ones.
    let Some(server) = Envtest::start() else { return };
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
            assert_eq!(stored, expected, "{}\nstored: {stored:#}\nrecorded: {expected:#}", file.display());
        }
    }

    // The recording's unauthenticated request carried a token the server
    // does not know (no token at all is `system:anonymous`, a 403 here).
    let unauthenticated = {
        let url = server.url().parse().expect("server URL");
        let mut config = kube::Config::new(url);
        config.root_cert = Some(vec![pem_der(server.ca_pem())]);
        config.auth_info.token = Some("not-a-known-token".to_string().into());
        kube::Client::try_from(config).expect("client")
    };
    let text = std::fs::read_to_string(conformance_dir().join("apiserver/exchanges.json")).expect("exchanges.json");
    let exchanges: Vec<Value> = serde_json::from_str(&text).expect("exchanges.json is JSON");
    assert_eq!(exchanges.len(), 34);
    // recorded resourceVersion -> this server's, learned from the responses
    let mut versions: Vec<(String, String)> = Vec::new();
    for exchange in &exchanges {
        let name = exchange["name"].as_str().unwrap_or("?");
        let method = exchange["method"].as_str().unwrap_or("GET");
        let path = exchange["path"].as_str().unwrap_or("/");
        let mut request = exchange.get("request").filter(|r| !r.is_null()).cloned();
        if let Some(body) = request.as_mut() {
            translate_versions(body, &versions);
        }
        let caller = if name == "unauthenticated-get" { &unauthenticated } else { &client };
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
            assert_eq!(body, expected, "{name}: body differs\nthis server: {body:#}\nrecorded: {expected:#}");
        }
    }
}

/// The DER bytes of a PEM certificate.
fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).expect("PEM certificate")
}
