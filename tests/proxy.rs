//! Management clusters behind a proxy: the kubeconfig's `proxy-url`, and
//! `HTTPS_PROXY`/`NO_PROXY` as kubectl reads them, through a real CONNECT
//! proxy in front of the real API server.

use std::path::Path;

use crate::support::connect_proxy::ConnectProxy;
use crate::support::envtest::{DEFAULT_CONTEXT, Envtest};
use crate::support::{hcpc, stderr, stdout};

/// A fleet of its own on the shared server; returns its directory.
fn fleet(k: &Envtest, what: &str) -> tempfile::TempDir {
    let scope = k.scope(what);
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = crate::support::pull_secret_in(dir.path());
    std::fs::write(
        dir.path().join("fleet.kdl"),
        format!(
            "target kube\nfleet {}\ncluster example {{\n    namespace {}\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret file=\"{}\"\n    node-pool workers replicas=1\n}}\n",
            scope.fleet,
            scope.namespace,
            secret.display()
        ),
    )
    .expect("fleet.kdl");
    dir
}

/// The server's `host:port`, as a client asks the proxy for it.
fn authority(k: &Envtest) -> String {
    k.url().split("://").nth(1).expect("a URL").trim_end_matches('/').to_owned()
}

fn plan(dir: &Path, kubeconfig: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut c = hcpc();
    c.current_dir(dir).env("KUBECONFIG", kubeconfig).args(["plan", "."]);
    for var in ["HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy"] {
        c.env_remove(var);
    }
    c.envs(env.iter().copied());
    c.output().expect("hcpc runs")
}

#[test]
fn plan_goes_through_the_kubeconfig_proxy_url() {
    let Some(k) = Envtest::shared() else { return };
    let proxy = ConnectProxy::start();
    let dir = fleet(k, "proxy-url");
    let server_line = format!("    server: {}\n", k.url());
    let yaml = k.kubeconfig_yaml(DEFAULT_CONTEXT);
    assert!(yaml.contains(&server_line), "{yaml}");
    let with_proxy = yaml.replace(&server_line, &format!("{server_line}    proxy-url: {}\n", proxy.url()));
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, with_proxy).expect("kubeconfig");

    let out = plan(dir.path(), &kubeconfig, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("to add"), "{}", stdout(&out));
    let targets = proxy.targets();
    assert!(!targets.is_empty() && targets.iter().all(|t| *t == authority(k)), "{targets:?}");
}

#[test]
fn plan_follows_https_proxy_and_no_proxy() {
    let Some(k) = Envtest::shared() else { return };
    let proxy = ConnectProxy::start();
    let dir = fleet(k, "https-proxy");
    let kubeconfig = k.write_kubeconfig(dir.path());

    let out = plan(dir.path(), &kubeconfig, &[("HTTPS_PROXY", &proxy.url())]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let through = proxy.targets().len();
    assert!(through > 0, "HTTPS_PROXY was not used");

    // NO_PROXY naming the server's address: straight to the server.
    let out = plan(dir.path(), &kubeconfig, &[("HTTPS_PROXY", &proxy.url()), ("NO_PROXY", "127.0.0.1")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(proxy.targets().len(), through, "NO_PROXY was not honoured: {:?}", proxy.targets());
}
