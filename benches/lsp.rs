//! Language server latency: `cargo bench -p hcpc --bench lsp`.
//!
//! Starts the release `hcpc lsp` as an editor does, opens one file of a
//! generated fleet (100 clusters per file) and measures, for fleets of 100
//! and 1,000 clusters:
//!
//! - edit → diagnostics: from a `didChange` to the `publishDiagnostics` of
//!   that version (the debounce included), one edit at a time;
//! - typing: 30 keystrokes 40 ms apart, each followed by a completion
//!   request; how long completions take while checks run (the main loop
//!   must not wait for them), and from the last keystroke to its
//!   diagnostics.
//!
//! Target: diagnostics within 300 ms of the last keystroke for 100
//! clusters; completions answered without waiting for checks (well under
//! 50 ms) for 1,000.
//!
//! `HCPC_BENCH_BIN=PATH` runs another `hcpc` binary.

#[allow(dead_code)]
mod fleet_gen;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Client {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<(Instant, Value)>,
    id: i64,
}

impl Client {
    fn start(bin: &Path) -> Client {
        let mut child = Command::new(bin)
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start hcpc lsp");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = line.trim().strip_prefix("Content-Length: ") {
                        len = v.parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                let Ok(msg) = serde_json::from_slice(&body) else { return };
                if tx.send((Instant::now(), msg)).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take().expect("stdin");
        let mut c = Client { child, stdin, rx, id: 0 };
        c.request("initialize", json!({"processId": null, "rootUri": null, "capabilities": {}}));
        c.notify("initialized", json!({}));
        c
    }

    fn send(&mut self, msg: Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        self.stdin.flush().expect("flush");
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request; returns how long the answer took.
    fn request(&mut self, method: &str, params: Value) -> Duration {
        self.id += 1;
        let id = self.id;
        let sent = Instant::now();
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let (at, m) = self.rx.recv_timeout(Duration::from_secs(60)).expect("answer");
            if m["id"] == id && m.get("method").is_none() {
                return at - sent;
            }
        }
    }

    /// When the diagnostics of `version` arrived.
    fn diagnostics(&mut self, version: i64) -> Instant {
        loop {
            let (at, m) = self.rx.recv_timeout(Duration::from_secs(60)).expect("diagnostics");
            if m["method"] == "textDocument/publishDiagnostics" && m["params"]["version"] == version {
                return at;
            }
        }
    }

    fn change(&mut self, uri: &str, version: i64, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}),
        );
    }

    fn finish(mut self) {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let _ = self.child.wait();
    }
}

fn uri(path: &Path) -> String {
    let mut s = String::from("file://");
    for b in path.to_str().expect("UTF-8 path").bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Measured {
    edit: Vec<Duration>,
    completion: Vec<Duration>,
    after_typing: Vec<Duration>,
}

fn measure(bin: &Path, root: &Path, clusters: usize) -> Measured {
    let dir = root.join(format!("fleet-{clusters}"));
    let files = fleet_gen::write_fleet(&dir, clusters, fleet_gen::PER_FILE).expect("write fleet");
    let path = files.last().expect("a cluster file");
    let u = uri(path);
    let base = std::fs::read_to_string(path).expect("read");
    let mut c = Client::start(bin);
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": u, "languageId": "kdl", "version": 1, "text": base}}),
    );
    c.diagnostics(1);
    let mut version = 1;
    let mut m = Measured { edit: Vec::new(), completion: Vec::new(), after_typing: Vec::new() };
    // Where completions are asked for: the start of the last line of the file.
    let last_line = base.trim_end().lines().count() - 1;

    for run in 0..7 {
        version += 1;
        let text = format!("{base}// edit {run}\n");
        let sent = Instant::now();
        c.change(&u, version, &text);
        m.edit.push(c.diagnostics(version) - sent);
    }
    for round in 0..3 {
        let mut text = format!("{base}// round {round} ");
        let mut last = Instant::now();
        for k in 0..30 {
            version += 1;
            text.push(char::from(b'a' + (k % 26) as u8));
            last = Instant::now();
            c.change(&u, version, &text);
            let pos = json!({"line": last_line, "character": 4});
            m.completion
                .push(c.request("textDocument/completion", json!({"textDocument": {"uri": u}, "position": pos})));
            std::thread::sleep(Duration::from_millis(40).saturating_sub(last.elapsed()));
        }
        m.after_typing.push(c.diagnostics(version) - last);
    }
    c.finish();
    m
}

fn main() -> ExitCode {
    let bin = match std::env::var_os("HCPC_BENCH_BIN") {
        Some(b) => PathBuf::from(b),
        None => PathBuf::from(env!("CARGO_BIN_EXE_hcpc")),
    };
    if !bin.is_file() {
        eprintln!("no hcpc binary at {}: build it with `cargo build --release -p hcpc`", bin.display());
        return ExitCode::FAILURE;
    }
    let load = std::fs::read_to_string("/proc/loadavg").ok();
    println!(
        "hcpc lsp latency ({}; load average {})",
        bin.display(),
        load.as_deref().map_or("?", |l| l.split(' ').next().unwrap_or("?"))
    );
    let tmp = tempfile::Builder::new().prefix("hcpc-lsp-bench-").tempdir().expect("temp dir");
    println!(
        "{:>9} | {:>22} | {:>26} | {:>28}",
        "clusters", "edit → diagnostics", "completion while typing", "last keystroke → diagnostics"
    );
    println!("{:>9} | {:>22} | {:>26} | {:>28}", "", "median / max", "median / max", "median / max");
    let mut results = Vec::new();
    for clusters in [100, 1000] {
        let m = measure(&bin, tmp.path(), clusters);
        let max = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
        println!(
            "{clusters:>9} | {:>22} | {:>26} | {:>28}",
            format!("{} / {}", ms(median(m.edit.clone())), ms(max(&m.edit))),
            format!("{} / {}", ms(median(m.completion.clone())), ms(max(&m.completion))),
            format!("{} / {}", ms(median(m.after_typing.clone())), ms(max(&m.after_typing))),
        );
        results.push((clusters, m));
    }
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    let (_, hundred) = &results[0];
    let after = median(hundred.after_typing.clone());
    println!(
        "diagnostics ≤ 300 ms after typing stops, 100 clusters: {} ({})",
        ms(after),
        verdict(after <= Duration::from_millis(300))
    );
    let (_, thousand) = &results[1];
    let worst = thousand.completion.iter().max().copied().unwrap_or_default();
    println!(
        "completion while 1,000 clusters are checked, worst of {}: {} ({})",
        thousand.completion.len(),
        ms(worst),
        verdict(worst <= Duration::from_millis(50))
    );
    ExitCode::SUCCESS
}
