//! `hcpc lsp`: the language over the Language Server Protocol (3.17), on
//! stdin and stdout, for any editor.
//!
//! The transport is `lsp-server` and the message types are `lsp-types`
//! (rust-analyzer's pair): synchronous, on crossbeam channels, like the
//! rest of hcpc's compile half, which has no async runtime.
//!
//! One main loop owns the state: the open documents, the last check of
//! each fleet and what each file currently shows. It answers requests
//! from that state at once and hands checking to a worker thread
//! (`check`), so typing never waits for a check, even of a large fleet.
//! Requests read documents through a tolerant outline (`syntax`) that also
//! works on text that does not parse yet; diagnostics come from the real
//! pipeline (`cli::load::compile_sources`), exactly as `hcpc check` gives
//! them.
//!
//! - `text`, `uri`: positions in the negotiated encoding, `file:` URIs.
//! - `syntax`: the outline and what is under the cursor.
//! - `lang`: schema lookups, documentation, the HyperShift fields.
//! - `fleet`: the files of a fleet and the names that cross them.
//! - `check`: the debounced worker.
//! - `features`: completion, hover, definition, references, formatting
//!   and code actions.

mod check;
mod features;
mod fleet;
mod lang;
mod profiles;
mod syntax;
mod text;
mod transport;
mod uri;

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, select_biased};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::Notification as _;
use lsp_types::request::Request as _;
use lsp_types::{
    CodeActionKind, CodeActionOptions, CodeActionProviderCapability, CompletionOptions, HoverProviderCapability,
    InitializeParams, OneOf, PositionEncodingKind, PublishDiagnosticsParams, SaveOptions, ServerCapabilities,
    ServerInfo, TextDocumentSyncCapability, TextDocumentSyncKind, TextDocumentSyncOptions, TextDocumentSyncSaveOptions,
    notification as note, request as req,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use check::{Done, FleetKey, Job, OpenDoc};
use fleet::{File, Fleet};
use text::{Encoding, Text};

/// Serves one client on stdin/stdout. Returns the exit code: 0 after
/// `shutdown` then `exit`, 1 when the client exits or hangs up without
/// `shutdown`.
pub fn serve() -> u8 {
    let (connection, io) = transport::stdio();
    let code = Server::run(&connection);
    drop(connection);
    // The reader thread has stopped (after `exit` or end of input); wait for
    // the writer to flush the last replies.
    io.join();
    code
}

/// An open document.
struct Doc {
    path: Option<PathBuf>,
    version: i32,
    text: Arc<String>,
    /// The outline of `text`, made when a request first needs it.
    file: OnceCell<Arc<File>>,
    /// How many editor buffers are open under this URI. Neovim sends
    /// `file://` for every unnamed buffer, so two of them share one URI.
    opens: u32,
    /// Whether `text` may be another buffer's: while two buffers share the
    /// URI, and after one of them closed until the other sends its text.
    /// Requests are then answered with nothing rather than from the wrong
    /// buffer.
    ambiguous: bool,
}

/// The last completed check of a fleet.
struct Snapshot {
    files: Vec<Arc<File>>,
    fleet: Option<crate::ir::Fleet>,
}

#[derive(Default)]
struct FleetState {
    /// The generation of the newest job sent.
    latest: u64,
    snapshot: Option<Snapshot>,
    /// URIs that were given diagnostics for this fleet.
    published: BTreeSet<String>,
}

struct Server<'a> {
    conn: &'a Connection,
    enc: Encoding,
    docs: BTreeMap<String, Doc>,
    fleets: BTreeMap<FleetKey, FleetState>,
    jobs: Sender<Job>,
    generation: u64,
    /// What each URI shows now.
    shown: BTreeMap<String, Vec<lsp_types::Diagnostic>>,
    shutdown: bool,
    /// Whether the client registers file watchers when asked.
    watch: bool,
}

/// How the message loop ends.
enum Flow {
    Continue,
    Exit(u8),
}

impl Server<'_> {
    fn run(conn: &Connection) -> u8 {
        // Before `initialize`, requests get ServerNotInitialized and
        // notifications are dropped, except `exit`.
        let (id, params) = loop {
            match conn.receiver.recv() {
                Ok(Message::Request(r)) if r.method == req::Initialize::METHOD => break (r.id, r.params),
                Ok(Message::Request(r)) => {
                    let _ = conn.sender.send(
                        Response::new_err(r.id, ErrorCode::ServerNotInitialized as i32, "initialize first".into())
                            .into(),
                    );
                }
                Ok(Message::Notification(n)) if n.method == note::Exit::METHOD => {
                    transport::log("`exit` before `initialize`");
                    return 1;
                }
                Ok(_) => {}
                Err(_) => {
                    transport::log("the input ended before `initialize`");
                    return 1;
                }
            }
        };
        // Parameters that do not decode (a client's own dialect) mean the
        // defaults: UTF-16 positions, no file watching.
        let params: InitializeParams = serde_json::from_value(params).unwrap_or_default();
        let offered = params.capabilities.general.as_ref().and_then(|g| g.position_encodings.as_ref());
        let enc = if offered.is_some_and(|o| o.contains(&PositionEncodingKind::UTF8)) {
            Encoding::Utf8
        } else {
            Encoding::Utf16
        };
        let watch = params
            .capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|d| d.dynamic_registration)
            .unwrap_or(false);
        let result = lsp_types::InitializeResult {
            capabilities: capabilities(enc),
            server_info: Some(ServerInfo { name: "hcpc".into(), version: Some(env!("CARGO_PKG_VERSION").into()) }),
        };
        let _ = conn.sender.send(Response::new_ok(id, result).into());

        let (job_tx, job_rx) = crossbeam_channel::unbounded();
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let worker =
            std::thread::Builder::new().name("hcpc-check".into()).spawn(move || check::worker(job_rx, done_tx, enc));
        let mut server = Server {
            conn,
            enc,
            docs: BTreeMap::new(),
            fleets: BTreeMap::new(),
            jobs: job_tx,
            generation: 0,
            shown: BTreeMap::new(),
            shutdown: false,
            watch,
        };
        let code = server.main_loop(&done_rx);
        drop(server);
        if let Ok(w) = worker {
            let _ = w.join();
        }
        code
    }

    fn main_loop(&mut self, done: &Receiver<Done>) -> u8 {
        loop {
            // Messages from the editor first: an edit received while a
            // check of the previous version finishes makes that check stale
            // (it is then not published), so the edit must be seen before
            // the check's result, never after it by the luck of the draw.
            select_biased! {
                recv(self.conn.receiver) -> msg => {
                    let Ok(msg) = msg else {
                        transport::log("the input ended without `exit`");
                        return 1;
                    };
                    let request = match &msg {
                        Message::Request(r) => Some((r.id.clone(), r.method.clone())),
                        _ => None,
                    };
                    let flow = std::panic::catch_unwind(AssertUnwindSafe(|| self.handle(msg)));
                    match flow {
                        Ok(Flow::Exit(code)) => {
                            if code != 0 {
                                transport::log("`exit` without `shutdown`");
                            }
                            return code;
                        }
                        Ok(Flow::Continue) => {}
                        // A bug in a handler (the panic message is already on
                        // stderr): answer the request and keep serving.
                        Err(_) => {
                            if let Some((id, method)) = request {
                                transport::log(&format!("failed while answering {method}"));
                                self.reply_err(id, ErrorCode::InternalError, &format!("hcpc failed while answering {method}"));
                            }
                        }
                    }
                }
                recv(done) -> d => {
                    if let Ok(d) = d {
                        self.finished(d);
                    }
                }
            }
        }
    }

    fn handle(&mut self, msg: Message) -> Flow {
        match msg {
            Message::Request(r) => {
                if self.shutdown {
                    self.reply_err(r.id, ErrorCode::InvalidRequest, "the server is shutting down");
                } else {
                    self.request(r);
                }
            }
            Message::Notification(n) if n.method == note::Exit::METHOD => {
                return Flow::Exit(if self.shutdown { 0 } else { 1 });
            }
            Message::Notification(n) if !self.shutdown => self.notification(n),
            Message::Notification(_) | Message::Response(_) => {}
        }
        Flow::Continue
    }

    fn request(&mut self, r: Request) {
        let id = r.id.clone();
        match r.method.as_str() {
            req::Shutdown::METHOD => {
                self.shutdown = true;
                self.reply(id, ());
            }
            req::Initialize::METHOD => self.reply_err(id, ErrorCode::InvalidRequest, "already initialized"),
            req::Completion::METHOD => self.answer::<req::Completion>(r, |s, p| {
                let pos = p.text_document_position;
                s.with_fleet(&pos.text_document.uri, |f, file| features::complete(f, file, pos.position, s.enc))
                    .flatten()
            }),
            req::HoverRequest::METHOD => self.answer::<req::HoverRequest>(r, |s, p| {
                let pos = p.text_document_position_params;
                let uri = pos.text_document.uri.as_str().to_owned();
                let lowered = s.snapshot_of(&uri).and_then(|snap| snap.fleet.as_ref());
                s.with_fleet(&pos.text_document.uri, |f, file| features::hover(f, file, pos.position, s.enc, lowered))
                    .flatten()
            }),
            req::GotoDefinition::METHOD => self.answer::<req::GotoDefinition>(r, |s, p| {
                let pos = p.text_document_position_params;
                s.with_fleet(&pos.text_document.uri, |f, file| features::definition(f, file, pos.position, s.enc))
                    .flatten()
            }),
            req::References::METHOD => self.answer::<req::References>(r, |s, p| {
                let pos = p.text_document_position;
                let with_decl = p.context.include_declaration;
                s.with_fleet(&pos.text_document.uri, |f, file| {
                    features::references(f, file, pos.position, s.enc, with_decl)
                })
                .flatten()
            }),
            req::Formatting::METHOD => self.answer::<req::Formatting>(r, |s, p| {
                let doc = s.answerable(p.text_document.uri.as_str())?;
                features::format(&Text::new(doc.text.clone()))
            }),
            req::CodeActionRequest::METHOD => match serde_json::from_value::<features::CodeActionRequest>(r.params) {
                Ok(p) => {
                    let shown = self.shown.get(p.text_document.uri.as_str()).map_or(&[][..], Vec::as_slice);
                    self.reply(id, features::code_actions(&p, shown));
                }
                Err(e) => self.reply_err(id, ErrorCode::InvalidParams, &e.to_string()),
            },
            _ => self.reply_err(id, ErrorCode::MethodNotFound, &format!("hcpc lsp does not handle {}", r.method)),
        }
    }

    /// Decodes a request's params, runs `f` and replies with its result.
    fn answer<R: lsp_types::request::Request>(&mut self, r: Request, f: impl FnOnce(&Self, R::Params) -> R::Result)
    where
        R::Params: DeserializeOwned,
        R::Result: Serialize,
    {
        match serde_json::from_value::<R::Params>(r.params) {
            Ok(p) => {
                let result = f(self, p);
                self.reply(r.id, result);
            }
            Err(e) => self.reply_err(r.id, ErrorCode::InvalidParams, &e.to_string()),
        }
    }

    fn reply(&self, id: RequestId, result: impl Serialize) {
        let _ = self.conn.sender.send(Response::new_ok(id, result).into());
    }

    fn reply_err(&self, id: RequestId, code: ErrorCode, message: &str) {
        let _ = self.conn.sender.send(Response::new_err(id, code as i32, message.to_owned()).into());
    }

    fn notify<N: lsp_types::notification::Notification>(&self, params: N::Params) {
        let _ = self.conn.sender.send(Notification::new(N::METHOD.to_owned(), params).into());
    }

    fn notification(&mut self, n: Notification) {
        fn params<P: DeserializeOwned>(n: Notification) -> Option<P> {
            serde_json::from_value(n.params).ok()
        }
        match n.method.as_str() {
            note::Initialized::METHOD => self.register_watchers(),
            note::DidOpenTextDocument::METHOD => {
                let Some(p) = params::<lsp_types::DidOpenTextDocumentParams>(n) else { return };
                let uri = p.text_document.uri.as_str().to_owned();
                let path = uri::to_path(&uri);
                // Only an unnamed URI is shared by buffers; a file opened
                // again (a client's protocol slip) just gets its new text.
                let opens = match self.docs.get(&uri) {
                    Some(d) if uri::is_unnamed(&uri) => d.opens + 1,
                    _ => 1,
                };
                if opens == 2 {
                    self.notify::<note::ShowMessage>(lsp_types::ShowMessageParams {
                        typ: lsp_types::MessageType::WARNING,
                        message: format!(
                            "hcpc: two buffers reach the server under one name, `{uri}`, so it cannot tell them apart and answers neither; save them as .kdl files"
                        ),
                    });
                }
                let doc = Doc {
                    path,
                    version: p.text_document.version,
                    text: Arc::new(p.text_document.text),
                    file: OnceCell::new(),
                    opens,
                    ambiguous: opens > 1,
                };
                self.docs.insert(uri.clone(), doc);
                self.schedule_doc(&uri);
            }
            note::DidChangeTextDocument::METHOD => {
                let Some(p) = params::<lsp_types::DidChangeTextDocumentParams>(n) else { return };
                let uri = p.text_document.uri.as_str().to_owned();
                let enc = self.enc;
                let Some(doc) = self.docs.get_mut(&uri) else { return };
                for change in p.content_changes {
                    doc.text = Arc::new(match change.range {
                        // Full sync (what the server asks for): the new text as is.
                        None => change.text,
                        Some(range) => text::apply_change(&Text::new(doc.text.clone()), range, &change.text, enc),
                    });
                }
                doc.version = p.text_document.version;
                doc.file = OnceCell::new();
                doc.ambiguous = doc.opens > 1;
                self.schedule_doc(&uri);
            }
            note::DidSaveTextDocument::METHOD => {
                let Some(p) = params::<lsp_types::DidSaveTextDocumentParams>(n) else { return };
                self.schedule_doc(p.text_document.uri.as_str());
            }
            note::DidCloseTextDocument::METHOD => {
                let Some(p) = params::<lsp_types::DidCloseTextDocumentParams>(n) else { return };
                let uri = p.text_document.uri.as_str().to_owned();
                if let Some(doc) = self.docs.get_mut(&uri).filter(|d| d.opens > 1) {
                    // Another buffer of this URI stays open; which text is
                    // its own is known again at its next change.
                    doc.opens -= 1;
                    doc.ambiguous = true;
                    return;
                }
                let Some(doc) = self.docs.remove(&uri) else { return };
                match FleetKey::of(&uri, doc.path.as_deref()) {
                    // Its own fleet is gone with it.
                    key @ FleetKey::Alone(_) => {
                        self.fleets.remove(&key);
                        self.show(&uri, None, Vec::new());
                    }
                    // The file is read from disk again.
                    key @ FleetKey::Dir(_) => self.schedule(key),
                }
            }
            note::DidChangeWatchedFiles::METHOD => {
                let Some(p) = params::<lsp_types::DidChangeWatchedFilesParams>(n) else { return };
                let mut keys = BTreeSet::new();
                for change in p.changes {
                    let path = uri::to_path(change.uri.as_str());
                    match path.as_deref().and_then(|p| p.parent()) {
                        Some(dir) if path.as_ref().is_some_and(|p| p.extension().is_some_and(|x| x == "kdl")) => {
                            keys.insert(FleetKey::Dir(dir.to_path_buf()));
                        }
                        // Another file (a secret a fleet reads, say): check every fleet.
                        _ => keys.extend(self.fleets.keys().cloned()),
                    }
                }
                keys.retain(|k| self.fleets.contains_key(k));
                for key in keys {
                    self.schedule(key);
                }
            }
            _ => {}
        }
    }

    /// Asks the client to report changes to `*.kdl` files, if it can.
    fn register_watchers(&self) {
        if !self.watch {
            return;
        }
        let options = lsp_types::DidChangeWatchedFilesRegistrationOptions {
            watchers: vec![lsp_types::FileSystemWatcher {
                glob_pattern: lsp_types::GlobPattern::String("**/*.kdl".into()),
                kind: None,
            }],
        };
        let params = lsp_types::RegistrationParams {
            registrations: vec![lsp_types::Registration {
                id: "hcpc-kdl-files".into(),
                method: note::DidChangeWatchedFiles::METHOD.into(),
                register_options: serde_json::to_value(options).ok(),
            }],
        };
        let request = Request::new(
            RequestId::from("hcpc-register-watchers".to_owned()),
            req::RegisterCapability::METHOD.into(),
            params,
        );
        let _ = self.conn.sender.send(request.into());
    }

    fn schedule_doc(&mut self, uri: &str) {
        let Some(doc) = self.docs.get(uri) else { return };
        let key = FleetKey::of(uri, doc.path.as_deref());
        self.schedule(key);
    }

    /// Sends a check of `key` with the open documents as they are now.
    fn schedule(&mut self, key: FleetKey) {
        self.generation += 1;
        let open = self
            .docs
            .iter()
            .filter(|(uri, d)| FleetKey::of(uri, d.path.as_deref()) == key)
            .map(|(uri, d)| OpenDoc {
                uri: uri.clone(),
                path: d.path.clone(),
                version: d.version,
                text: d.text.clone(),
            })
            .collect();
        self.fleets.entry(key.clone()).or_default().latest = self.generation;
        let _ = self.jobs.send(Job { key, generation: self.generation, open });
    }

    /// A check finished: keep it for requests, and publish it unless a newer
    /// one is under way.
    fn finished(&mut self, done: Done) {
        let Some(state) = self.fleets.get_mut(&done.key) else { return };
        let current = done.generation == state.latest;
        let previous = std::mem::take(&mut state.published);
        let mut published = BTreeSet::new();
        let mut updates = Vec::new();
        for c in &done.files {
            if current {
                updates.push((c.file.uri.clone(), c.version, c.diagnostics.clone()));
            }
            published.insert(c.file.uri.clone());
        }
        if current {
            for gone in previous.difference(&published) {
                updates.push((gone.clone(), None, Vec::new()));
            }
            state.published = published;
        } else {
            state.published = previous;
        }
        state.snapshot = Some(Snapshot { files: done.files.into_iter().map(|c| c.file).collect(), fleet: done.fleet });
        for (uri, version, diagnostics) in updates {
            // Open documents hear after every check; other files only when
            // what they show changes.
            if version.is_some() || self.shown.get(&uri).map_or(!diagnostics.is_empty(), |s| *s != diagnostics) {
                self.show(&uri, version, diagnostics);
            }
        }
    }

    fn show(&mut self, uri: &str, version: Option<i32>, diagnostics: Vec<lsp_types::Diagnostic>) {
        if uri::is_unnamed(uri) {
            self.tell_unnamed(uri, &diagnostics);
            if diagnostics.is_empty() {
                self.shown.remove(uri);
            } else {
                self.shown.insert(uri.to_owned(), diagnostics);
            }
            return;
        }
        let Ok(parsed) = uri.parse::<lsp_types::Uri>() else { return };
        self.notify::<note::PublishDiagnostics>(PublishDiagnosticsParams {
            uri: parsed,
            diagnostics: diagnostics.clone(),
            version,
        });
        if diagnostics.is_empty() {
            self.shown.remove(uri);
        } else {
            self.shown.insert(uri.to_owned(), diagnostics);
        }
    }

    /// An unnamed buffer that its editor calls `file://` (Neovim does):
    /// diagnostics published for that URI would land in a new buffer named
    /// `/`, never in the buffer itself, so what they say is sent as a
    /// message instead, whenever that changes (quick fixes still work).
    fn tell_unnamed(&mut self, uri: &str, diagnostics: &[lsp_types::Diagnostic]) {
        let errors = diagnostics.iter().filter(|d| d.severity == Some(lsp_types::DiagnosticSeverity::ERROR)).count();
        let others = diagnostics.len() - errors;
        let summary = match diagnostics.first() {
            None => "hcpc: the unnamed buffer has no problems".to_owned(),
            Some(first) => format!(
                "hcpc: the unnamed buffer has {errors} error(s) and {others} warning(s); line {}: {} (save it as a .kdl file to see them in place)",
                first.range.start.line + 1,
                first.message.lines().next().unwrap_or_default()
            ),
        };
        let before = self.shown.get(uri).map(Vec::len);
        let first_changed =
            self.shown.get(uri).and_then(|s| s.first()).map(|d| &d.message) != diagnostics.first().map(|d| &d.message);
        if before.is_none() && diagnostics.is_empty() || (before == Some(diagnostics.len()) && !first_changed) {
            return;
        }
        let typ = if errors > 0 { lsp_types::MessageType::WARNING } else { lsp_types::MessageType::INFO };
        self.notify::<note::ShowMessage>(lsp_types::ShowMessageParams { typ, message: summary });
    }

    /// The open document `uri`, unless its text may be another buffer's.
    fn answerable(&self, uri: &str) -> Option<&Doc> {
        self.docs.get(uri).filter(|d| !d.ambiguous)
    }

    fn snapshot_of(&self, uri: &str) -> Option<&Snapshot> {
        let doc = self.answerable(uri)?;
        self.fleets.get(&FleetKey::of(uri, doc.path.as_deref()))?.snapshot.as_ref()
    }

    /// Runs `f` on the fleet of the open document `uri` (its files as the
    /// editor has them now) and that document's file.
    fn with_fleet<T>(&self, uri: &lsp_types::Uri, f: impl FnOnce(&Fleet, &File) -> T) -> Option<T> {
        let uri = uri.as_str();
        let doc = self.answerable(uri)?;
        let key = FleetKey::of(uri, doc.path.as_deref());
        let file_of = |uri: &str, d: &Doc| {
            d.file.get_or_init(|| Arc::new(File::new(uri.to_owned(), d.path.clone(), d.text.clone()))).clone()
        };
        let mut files: Vec<Arc<File>> = Vec::new();
        if let Some(snap) = self.fleets.get(&key).and_then(|s| s.snapshot.as_ref()) {
            for f in &snap.files {
                if !self.docs.contains_key(&f.uri) && !self.docs.values().any(|d| d.path.is_some() && d.path == f.path)
                {
                    files.push(f.clone());
                }
            }
        }
        for (u, d) in &self.docs {
            if FleetKey::of(u, d.path.as_deref()) == key {
                files.push(file_of(u, d));
            }
        }
        files.sort_by(|a, b| (&a.path, &a.uri).cmp(&(&b.path, &b.uri)));
        let this = files.iter().find(|f| f.uri == uri)?.clone();
        Some(f(&Fleet { files }, &this))
    }
}

/// What the server offers.
fn capabilities(enc: Encoding) -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(match enc {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
        }),
        text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
            open_close: Some(true),
            change: Some(TextDocumentSyncKind::FULL),
            will_save: None,
            will_save_wait_until: None,
            save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions { include_text: Some(false) })),
        })),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec!["=".into()]),
            ..CompletionOptions::default()
        }),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
            ..CodeActionOptions::default()
        })),
        ..ServerCapabilities::default()
    }
}
