//! A fault-injecting proxy in front of a real API server, for what a real
//! server cannot be made to do on demand: answer 503 or 429 with
//! `Retry-After`, drop a connection, answer slowly, fail the Nth request.
//!
//! It listens on plain HTTP on 127.0.0.1, records every request, applies
//! the faults registered through [`Faults`] and forwards everything else,
//! unchanged, to the [`Envtest`] server it was started for (with that
//! server's credentials). Point `hcpc` at it with [`FaultProxy::write_kubeconfig`].
//!
//! Layout: [`faults`] decides the fate of each request; [`http`] is the
//! listener with cuttable connections and the forwarding handler.

mod faults;
mod http;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

pub use faults::Faults;

use super::envtest::{DEFAULT_CONTEXT, Envtest};

/// What the proxy's handler shares with the test.
struct Shared {
    faults: Faults,
    requests: Mutex<Vec<(String, String)>>,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    token: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on a free loopback port, on its own
    /// thread and tokio runtime (so it works from sync tests and from any
    /// async runtime).
    pub fn start(upstream: &Envtest) -> FaultProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .unwrap_or_else(|e| panic!("fault proxy cannot bind 127.0.0.1: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("fault proxy has no local address: {e}"));
        let shared = Arc::new(Shared { faults: Faults::default(), requests: Mutex::new(Vec::new()) });
        let kubeconfig = upstream.kubeconfig_yaml(DEFAULT_CONTEXT);
        let (shutdown, stopped) = oneshot::channel();
        let (ready, started) = std::sync::mpsc::channel();
        let served = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready.send(Err(format!("cannot start a runtime: {e}")));
                        return;
                    }
                };
                let upstream = match runtime.block_on(upstream_client(&kubeconfig)) {
                    Ok(client) => client,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                runtime.block_on(http::serve(listener, served, upstream, stopped));
                // Open connections and pending requests are dropped here.
                runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            })
            .unwrap_or_else(|e| panic!("fault proxy cannot spawn its thread: {e}"));
        match started.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("fault proxy: {e}"),
            Err(_) => panic!("fault proxy thread ended before serving"),
        }
        FaultProxy { addr, token: upstream.token().to_string(), shared, shutdown: Some(shutdown), thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig for the proxy with one cluster, one token user and one
    /// context (`context`), which is current.
    pub fn kubeconfig_yaml(&self, context: &str) -> String {
        super::envtest::kubeconfig_yaml(context, &self.url(), &self.token, None)
    }

    /// Writes `dir/kubeconfig` with context [`DEFAULT_CONTEXT`].
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig_yaml(DEFAULT_CONTEXT))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// A `kube::Client` for the proxy, on the caller's runtime.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml(DEFAULT_CONTEXT))
            .unwrap_or_else(|e| panic!("generated kubeconfig does not parse: {e}"));
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap_or_else(|e| panic!("generated kubeconfig is not usable: {e}"));
        kube::Client::try_from(config).unwrap_or_else(|e| panic!("cannot build a client: {e}"))
    }

    /// Fault injection for the following requests.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Every request received so far, as (method, path with query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.requests.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// The client that forwards to the real server. Its own retries are off:
/// what the server answers goes back as it is.
async fn upstream_client(kubeconfig: &str) -> Result<kube::Client, String> {
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(kubeconfig).map_err(|e| format!("upstream kubeconfig: {e}"))?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| format!("upstream kubeconfig: {e}"))?;
    config.default_retry = false;
    kube::Client::try_from(config).map_err(|e| format!("upstream client: {e}"))
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
