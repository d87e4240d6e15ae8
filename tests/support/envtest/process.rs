//! The etcd and kube-apiserver processes of one server, and the watchdog
//! that stops them and removes their data when the test process goes away.
//!
//! A server shared by all tests of a binary lives in a static that is never
//! dropped, and a test process can also die by a signal; so a small `sh`
//! watchdog holds the read end of a pipe from the test process. It learns
//! the server pids one line at a time; at end of input (the test process
//! exited, however) it kills them and removes the data directory. A server
//! stopped normally says `done` first, and the watchdog just exits.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use super::assets::Assets;
use super::certs::Certs;

const WATCHDOG: &str = r#"
pids=
while IFS= read -r line; do
    case "$line" in
        done) exit 0 ;;
        *) pids="$pids $line" ;;
    esac
done
[ -n "$pids" ] && kill -9 $pids 2>/dev/null
rm -rf -- "$1"
"#;

/// Running etcd and kube-apiserver; both stop, and their data directory is
/// removed, when this is dropped.
pub struct Servers {
    etcd: Option<Child>,
    apiserver: Option<Child>,
    watchdog: Child,
    watchdog_in: Option<ChildStdin>,
    dir: PathBuf,
    /// The API server's HTTPS port on 127.0.0.1.
    pub port: u16,
}

/// Free loopback ports, held until the servers are about to bind them.
fn free_ports<const N: usize>() -> Result<[u16; N], String> {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr().map_err(|e| format!("no local address: {e}"))?.port();
    }
    Ok(ports)
}

impl Servers {
    /// CPU time (user + system) etcd and kube-apiserver have used so far,
    /// from `/proc`: what a benchmark's requests cost the server.
    pub fn cpu(&self) -> std::time::Duration {
        let ticks = |c: &Option<Child>| -> u64 {
            let Some(c) = c else { return 0 };
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", c.id())).unwrap_or_default();
            // Fields after the command name (which may hold spaces): utime is
            // the 14th field, stime the 15th.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
            field(11) + field(12)
        };
        // Linux reports CPU time in USER_HZ, 100 per second.
        std::time::Duration::from_millis((ticks(&self.etcd) + ticks(&self.apiserver)) * 10)
    }

    /// Starts the watchdog, etcd and kube-apiserver with their data, logs
    /// and certificates in `dir` (which the watchdog removes at the end).
    pub fn spawn(assets: &Assets, dir: &Path, certs: &Certs, tokens: &Path) -> Result<Servers, String> {
        // Its own process group: a Ctrl-C to the tests must not reach the
        // watchdog before it has cleaned up.
        let mut watchdog = Command::new("/bin/sh")
            .args(["-c", WATCHDOG, "hcpc-envtest-watchdog"])
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the watchdog (sh): {e}"))?;
        let watchdog_in = watchdog.stdin.take();
        let mut servers =
            Servers { etcd: None, apiserver: None, watchdog, watchdog_in, dir: dir.to_path_buf(), port: 0 };

        let [client, peer, port] = free_ports::<3>()?;
        let etcd_data = dir.join("etcd");
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let etcd = Command::new(&assets.etcd)
            .arg("--data-dir")
            .arg(&etcd_data)
            .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}"), "--name", "default"])
            .stdin(Stdio::null())
            .stdout(log(dir, "etcd.log")?)
            .stderr(log(dir, "etcd.log")?)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", assets.etcd.display()))?;
        servers.watch(etcd.id());
        servers.etcd = Some(etcd);

        let flag = |name: &str, path: &Path| format!("--{name}={}", path.display());
        let apiserver = Command::new(&assets.kube_apiserver)
            .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
            .arg(format!("--secure-port={port}"))
            .arg(format!("--etcd-servers={client_url}"))
            .arg(flag("tls-cert-file", &certs.serving_cert))
            .arg(flag("tls-private-key-file", &certs.serving_key))
            .arg(flag("client-ca-file", &certs.ca))
            .arg(flag("token-auth-file", tokens))
            .arg("--authorization-mode=RBAC")
            .arg("--service-account-issuer=https://kubernetes.default.svc")
            .arg(flag("service-account-key-file", &certs.sa_public))
            .arg(flag("service-account-signing-key-file", &certs.sa_private))
            .args(["--service-cluster-ip-range=10.96.0.0/24", "--endpoint-reconciler-type=none"])
            .stdin(Stdio::null())
            .stdout(log(dir, "kube-apiserver.log")?)
            .stderr(log(dir, "kube-apiserver.log")?)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", assets.kube_apiserver.display()))?;
        servers.watch(apiserver.id());
        servers.apiserver = Some(apiserver);
        servers.port = port;
        Ok(servers)
    }

    fn watch(&mut self, pid: u32) {
        if let Some(stdin) = self.watchdog_in.as_mut() {
            let _ = writeln!(stdin, "{pid}");
        }
    }

    /// The directory of data, logs and certificates.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Why a server process is no longer running, with the end of its log;
    /// `None` while both run.
    pub fn exited(&mut self) -> Option<String> {
        let mut exited = None;
        for (name, child) in [("etcd", &mut self.etcd), ("kube-apiserver", &mut self.apiserver)] {
            if let Some(Ok(Some(status))) = child.as_mut().map(Child::try_wait) {
                exited = Some((name, status));
                break;
            }
        }
        exited.map(|(name, status)| format!("{name} exited ({status}):\n{}", self.log_tail(name)))
    }

    /// The last lines of a server's log, for failure messages.
    pub fn log_tail(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

fn log(dir: &Path, name: &str) -> Result<std::fs::File, String> {
    let path = dir.join(name);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

impl Drop for Servers {
    fn drop(&mut self) {
        for child in [self.apiserver.as_mut(), self.etcd.as_mut()].into_iter().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(mut stdin) = self.watchdog_in.take() {
            let _ = writeln!(stdin, "done");
        }
        let _ = self.watchdog.wait();
    }
}
