//! The real API server harness itself: it serves the HyperShift API, keeps
//! tests apart, and leaves no process or data behind, whether it is
//! dropped or the test process is killed; and the fault proxy in front of it.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::envtest::Envtest;
use crate::support::fault_proxy::FaultProxy;

#[test]
fn shared_server_serves_the_hypershift_api_to_separate_scopes() {
    let Some(k) = Envtest::shared() else { return };
    let (a, b) = (k.scope("harness"), k.scope("harness"));
    assert_ne!(a.namespace, b.namespace);
    assert_ne!(a.fleet, b.fleet);
    k.ensure_namespace(&a.namespace);
    // The CRD's schema and CEL rules are enforced: the server is real.
    let pool = |arch: &str| {
        json!({
            "apiVersion": "hypershift.openshift.io/v1beta1", "kind": "NodePool",
            "metadata": {"name": "np", "namespace": a.namespace},
            "spec": {"arch": arch, "clusterName": "hc", "replicas": 1,
                     "management": {"upgradeType": "Replace"},
                     "platform": {"type": "KubeVirt", "kubevirt": {"rootVolume": {"type": "Persistent", "persistent": {"size": "32Gi"}}}},
                     "release": {"image": "quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64"}},
        })
    };
    let err = k.try_apply_as("harness", &pool("arm64"), false).expect_err("arm64 is refused on KubeVirt");
    assert!(err.to_string().contains("Setting Arch to arm64 is only supported"), "{err}");
    let stored = k.apply_as("harness", &pool("amd64"));
    assert_eq!(stored["spec"]["management"]["replace"]["strategy"], "RollingUpdate", "CRD defaults apply");
    assert!(k.list("nodepools", Some(&b.namespace)).is_empty(), "scopes do not see each other");
    assert!(k.list("volumesnapshotclasses", None).is_empty());
    assert!(k.list("storageprofiles", None).is_empty());
}

#[test]
fn own_server_stops_and_removes_its_data_when_dropped() {
    let Some(k) = Envtest::start() else { return };
    let dir = k.data_dir();
    let port = k.url().rsplit(':').next().unwrap().to_string();
    assert!(dir.join("etcd").is_dir());
    drop(k);
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert!(std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err(), "the server still listens");
}

/// The server of a test process that dies by SIGKILL is stopped and its
/// data removed by the watchdog.
#[test]
fn killed_test_process_leaves_nothing_behind() {
    if Envtest::shared().is_none() {
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "envtest::child_holding_a_server", "--ignored", "--nocapture"])
        .env("HCPC_ENVTEST_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let dir = lines
        .find_map(|l| l.ok()?.strip_prefix("envtest data: ").map(PathBuf::from))
        .expect("the child reports its server");
    assert!(dir.join("etcd").is_dir());
    child.kill().unwrap();
    child.wait().unwrap();
    let started = Instant::now();
    while dir.exists() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!dir.exists(), "{} is left behind after the test process was killed", dir.display());
}

/// Run only by `killed_test_process_leaves_nothing_behind`.
#[test]
#[ignore = "a child process of another test"]
fn child_holding_a_server() {
    if std::env::var_os("HCPC_ENVTEST_CHILD").is_none() {
        return;
    }
    let k = Envtest::shared().expect("the parent test found the binaries");
    let mut out = std::io::stdout();
    writeln!(out, "envtest data: {}", k.data_dir().display()).unwrap();
    out.flush().unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

/// The fault proxy: injected failures (with the real server's Status shape
/// and Retry-After on 429), dropped connections and delays; everything else
/// reaches the real server unchanged.
#[tokio::test]
async fn fault_proxy_injects_faults_and_forwards_the_rest() {
    let Some(k) = Envtest::shared() else { return };
    let proxy = FaultProxy::start(k);
    let client = {
        let mut config = kube::Config::new(proxy.url().parse().unwrap());
        config.auth_info.token = Some(k.token().to_string().into());
        config.default_retry = false;
        kube::Client::try_from(config).unwrap()
    };
    let get = async |path: &str| {
        let request = http::Request::get(path).body(kube::client::Body::from(Vec::new())).unwrap();
        let response = client.send(request).await.unwrap();
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
        let body: serde_json::Value =
            serde_json::from_slice(&response.into_body().collect_bytes().await.unwrap()).unwrap();
        (status, body, retry_after)
    };

    let (status, version, _) = get("/version").await;
    assert_eq!((status, version["gitVersion"].as_str().is_some()), (200, true), "forwarded: {version}");

    proxy.faults().fail_nth(2, 500);
    assert_eq!(get("/api").await.0, 200);
    let (status, body, _) = get("/api").await;
    assert_eq!((status, body["reason"].as_str(), body["kind"].as_str()), (500, Some("InternalError"), Some("Status")));
    assert_eq!(get("/api").await.0, 200);

    proxy.faults().fail_nth(1, 429);
    let (status, body, retry_after) = get("/api/v1").await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("1")));
    assert_eq!(body["details"]["retryAfterSeconds"], 1);

    proxy.faults().fail_matching("GET", "/namespaces", 503, 2);
    assert_eq!(get("/api/v1/namespaces").await.0, 503);
    assert_eq!(get("/api").await.0, 200, "other paths are not affected");
    assert_eq!(get("/api/v1/namespaces/default").await.0, 503);
    assert_eq!(get("/api/v1/namespaces/default").await.0, 200, "the real server answers again");

    proxy.faults().drop_connection_nth(1);
    let request = http::Request::get("/api").body(kube::client::Body::from(Vec::new())).unwrap();
    assert!(client.send(request).await.is_err(), "the connection was dropped");
    assert_eq!(get("/api").await.0, 200, "the next request gets through");

    proxy.faults().delay(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(get("/api").await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    proxy.faults().clear();

    let requests = proxy.requests();
    assert_eq!(requests.len(), 12);
    assert_eq!(requests[5], ("GET".to_string(), "/api/v1/namespaces".to_string()));
    let url = proxy.url();
    drop(proxy);
    let stopped = std::net::TcpStream::connect(url.trim_start_matches("http://"));
    assert!(stopped.is_err(), "the proxy stops when dropped");
}
