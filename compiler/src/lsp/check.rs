//! Checking fleets off the main loop, as `hcpc check` does.
//!
//! The main loop sends a [`Job`] for every edit; one worker thread waits
//! until no job has come for [`DEBOUNCE`] (the user stopped typing), checks
//! the newest job of each fleet and sends back a [`Done`]. A job that a
//! newer job of the same fleet arrives for, while waiting or while it runs,
//! is dropped: only the newest text of a fleet is ever reported. So the
//! main loop never waits for a check, however large the fleet.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use lsp_types::{DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString, Range, TextEdit, Uri};
use serde::{Deserialize, Serialize};

use super::fleet::File;
use super::text::Encoding;
use super::uri;
use crate::cli::load::compile_sources;
use crate::diagnostic::{Code, Diagnostic, Diagnostics, Severity};
use crate::ir::{self, Target};
use crate::source::{SourceMap, Span};

/// Quiet time after the last edit before a fleet is checked: long enough
/// not to check between keystrokes, short enough that diagnostics follow
/// within 300 ms of a pause on a fleet of 100 clusters.
pub const DEBOUNCE: Duration = Duration::from_millis(120);

/// Which fleet a document belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FleetKey {
    /// The `*.kdl` files of a directory.
    Dir(PathBuf),
    /// A document without a directory (`untitled:` and other schemes): a
    /// fleet of its own, named by its URI.
    Alone(String),
}

impl FleetKey {
    pub fn of(uri: &str, path: Option<&Path>) -> FleetKey {
        match path.and_then(Path::parent).filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => FleetKey::Dir(dir.to_path_buf()),
            None => FleetKey::Alone(uri.to_owned()),
        }
    }
}

/// An open document, as the editor has it now.
#[derive(Debug, Clone)]
pub struct OpenDoc {
    pub uri: String,
    pub path: Option<PathBuf>,
    pub version: i32,
    pub text: Arc<String>,
}

/// Check this fleet with these open documents over the disk.
#[derive(Debug)]
pub struct Job {
    pub key: FleetKey,
    pub generation: u64,
    pub open: Vec<OpenDoc>,
}

/// One file as checked.
#[derive(Debug)]
pub struct Checked {
    pub file: Arc<File>,
    /// The version of the open document that was checked (`None`: from disk).
    pub version: Option<i32>,
    pub diagnostics: Vec<lsp_types::Diagnostic>,
}

/// The result of a job.
pub struct Done {
    pub key: FleetKey,
    pub generation: u64,
    /// Every file of the fleet, in name order (a span's `FileId` indexes it).
    pub files: Vec<Checked>,
    /// The lowered fleet, for hover.
    pub fleet: Option<ir::Fleet>,
}

/// The fix of a diagnostic, carried in its `data` so that code actions need
/// no state: the edit and what it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    pub title: String,
    pub uri: String,
    pub edit: TextEdit,
}

/// Runs jobs until the main loop hangs up.
pub fn worker(jobs: Receiver<Job>, done: Sender<Done>, enc: Encoding) {
    let mut pending: BTreeMap<FleetKey, Job> = BTreeMap::new();
    let mut outlines = Outlines::default();
    loop {
        if pending.is_empty() {
            match jobs.recv() {
                Ok(job) => {
                    pending.insert(job.key.clone(), job);
                }
                Err(_) => return,
            }
        }
        // Wait for a pause in the edits.
        loop {
            match jobs.recv_timeout(DEBOUNCE) {
                Ok(job) => {
                    pending.insert(job.key.clone(), job);
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        while let Some((_, job)) = pending.pop_first() {
            let result = check(&job, enc, &mut outlines);
            // A newer edit of this fleet makes the result stale: drop it.
            for newer in jobs.try_iter() {
                pending.insert(newer.key.clone(), newer);
            }
            if pending.contains_key(&job.key) {
                continue;
            }
            if done.send(result).is_err() {
                return;
            }
        }
    }
}

/// A file to check.
struct Source {
    uri: String,
    path: Option<PathBuf>,
    /// The open document's version; `None` when read from disk.
    version: Option<i32>,
    text: Arc<String>,
}

/// The files of a fleet: the `*.kdl` files of its directory, each from its
/// open document if there is one, else from disk, plus open documents not
/// on disk (yet); in path order, as `hcpc check DIR` reads them. Also the
/// files that could not be read.
fn gather(job: &Job) -> (Vec<Source>, Vec<String>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    if let FleetKey::Dir(dir) = &job.key {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "kdl") && p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        paths.sort();
        for path in paths {
            if job.open.iter().any(|d| d.path.as_deref() == Some(&*path)) {
                continue;
            }
            match std::fs::read(&path).map(String::from_utf8) {
                Ok(Ok(text)) => files.push(Source {
                    uri: uri::from_path(&path),
                    path: Some(path),
                    version: None,
                    text: Arc::new(text),
                }),
                Ok(Err(_)) => problems.push(format!("{} is not UTF-8 text", path.display())),
                Err(e) => problems.push(format!("cannot read {}: {e}", path.display())),
            }
        }
    }
    for d in &job.open {
        files.push(Source { uri: d.uri.clone(), path: d.path.clone(), version: Some(d.version), text: d.text.clone() });
    }
    files.sort_by(|a, b| (&a.path, &a.uri).cmp(&(&b.path, &b.uri)));
    (files, problems)
}

/// The outlines of the files last checked, by URI: most files of a fleet
/// do not change between two checks, so their outlines are kept.
#[derive(Default)]
pub struct Outlines(BTreeMap<String, Arc<File>>);

impl Outlines {
    fn get(&mut self, s: &Source) -> Arc<File> {
        match self.0.get(&s.uri) {
            Some(f) if f.text.as_str() == s.text.as_str() && f.path == s.path => f.clone(),
            _ => {
                let f = Arc::new(File::new(s.uri.clone(), s.path.clone(), s.text.clone()));
                self.0.insert(s.uri.clone(), f.clone());
                f
            }
        }
    }
}

/// Checks one fleet.
pub fn check(job: &Job, enc: Encoding, outlines: &mut Outlines) -> Done {
    let (gathered, problems) = gather(job);
    let mut sources = SourceMap::default();
    for s in &gathered {
        sources.add(s.path.clone().unwrap_or_else(|| PathBuf::from(&s.uri)), s.text.to_string());
    }
    let dir_name = match &job.key {
        FleetKey::Dir(d) => d.file_name().map(|n| n.to_string_lossy().into_owned()),
        FleetKey::Alone(_) => None,
    };
    let compiled = std::panic::catch_unwind(AssertUnwindSafe(|| compile_sources(sources)));
    let (mut diags, fleet) = match compiled {
        Ok(c) => (c.diags, c.resolved.map(|r| r.fleet)),
        Err(_) => (
            Diagnostics::from(
                Diagnostic::error(Code::Usage, "hcpc failed while checking this fleet")
                    .help("run `hcpc check` on the directory and report the failure"),
            ),
            None,
        ),
    };
    for p in problems {
        diags.push(Diagnostic::error(Code::Io, p).help("save the file as UTF-8"));
    }
    let texts: Vec<&str> = gathered.iter().map(|g| g.text.as_str()).collect();
    if let Some(d) = fleet.as_ref().and_then(|f| unnamed_fleet(f, dir_name.as_deref(), &texts)) {
        diags.push(d);
    }

    let files: Vec<Arc<File>> = gathered.iter().map(|s| outlines.get(s)).collect();
    let mut per_file: Vec<Vec<lsp_types::Diagnostic>> = vec![Vec::new(); files.len()];
    // Diagnostics without a place go to the first open document.
    let fallback = gathered.iter().position(|g| g.version.is_some()).unwrap_or(0);
    for d in diags.sorted() {
        let d_file = d.primary_span().map_or(fallback, |s| s.file.0 as usize);
        let shown = to_lsp(&d, &files, enc);
        // A cause in another file (the first of two clusters of one name, a
        // pool that takes part of a device's capacity) shows there too, so
        // the file being edited is never silent about what it caused.
        for (other, copy) in echoes(&d, &shown, d_file, &files, enc) {
            if let Some(list) = per_file.get_mut(other) {
                list.push(copy);
            }
        }
        if let Some(list) = per_file.get_mut(d_file) {
            list.push(shown);
        }
    }
    let per_file: Vec<_> = per_file.into_iter().map(merge_repeats).collect();
    let files = files
        .into_iter()
        .zip(per_file)
        .zip(gathered.iter().map(|g| g.version))
        .map(|((file, diagnostics), version)| Checked { file, version, diagnostics })
        .collect();
    Done { key: job.key.clone(), generation: job.generation, files, fleet }
}

fn parse_uri(s: &str) -> Option<Uri> {
    s.parse().ok()
}

fn range_of(files: &[Arc<File>], span: Span, enc: Encoding) -> Option<(&File, Range)> {
    let f = files.get(span.file.0 as usize)?;
    Some((f, f.text.range(span.offset, span.offset + span.len, enc)))
}

/// An hcpc diagnostic in LSP form: the message first (as `hcpc check`
/// prints it), then the primary label and the help; the other labels as
/// related information; the one fix, if any, in `data`.
fn to_lsp(d: &Diagnostic, files: &[Arc<File>], enc: Encoding) -> lsp_types::Diagnostic {
    let range = d.primary_span().and_then(|s| range_of(files, s, enc)).map_or(Range::default(), |(_, r)| r);
    let mut message = d.message.clone();
    if let Some(label) = d.labels.first().filter(|l| !l.text.is_empty()) {
        message.push('\n');
        message.push_str(&label.text);
    }
    if let Some(help) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .labels
        .iter()
        .skip(1)
        .filter_map(|l| {
            let (f, range) = range_of(files, l.span, enc)?;
            Some(DiagnosticRelatedInformation {
                location: Location { uri: parse_uri(&f.uri)?, range },
                message: l.text.clone(),
            })
        })
        .collect();
    let data = d.suggestion.as_ref().and_then(|s| {
        let (f, range) = range_of(files, s.span, enc)?;
        let old = f.text.as_str().get(s.span.offset..s.span.offset + s.span.len).unwrap_or("");
        let title = if old.is_empty() {
            format!("Insert `{}`", s.replacement.trim())
        } else {
            format!("Replace `{old}` with `{}`", s.replacement)
        };
        let fix = Fix { title, uri: f.uri.clone(), edit: TextEdit { range, new_text: s.replacement.clone() } };
        Some(serde_json::json!({ "fix": fix }))
    });
    lsp_types::Diagnostic {
        range,
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
            Severity::Note => DiagnosticSeverity::INFORMATION,
        }),
        code: Some(NumberOrString::String(d.code.as_str().to_owned())),
        code_description: None,
        source: Some("hcpc".to_owned()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        tags: None,
        data,
    }
}

/// The copies of `d` (shown in file `home` as `shown`) for the other files
/// its labels point into: one per file, at the first label there, with the
/// label's words and the primary place as related information.
/// One diagnostic per place, code and message: a line in a profile or in
/// `defaults` is checked once for every cluster it reaches, and 250
/// copies of one error on one line say nothing more than one, with how
/// many there were.
fn merge_repeats(list: Vec<lsp_types::Diagnostic>) -> Vec<lsp_types::Diagnostic> {
    let key = |d: &lsp_types::Diagnostic| {
        let r = d.range;
        let code = match &d.code {
            Some(NumberOrString::String(s)) => s.clone(),
            Some(NumberOrString::Number(n)) => n.to_string(),
            None => String::new(),
        };
        let severity = d.severity.map(|s| format!("{s:?}"));
        (r.start.line, r.start.character, r.end.line, r.end.character, code, severity, d.message.clone())
    };
    let mut out: Vec<(lsp_types::Diagnostic, usize)> = Vec::with_capacity(list.len());
    let mut seen: std::collections::HashMap<_, usize> = std::collections::HashMap::new();
    for d in list {
        match seen.entry(key(&d)) {
            std::collections::hash_map::Entry::Occupied(at) => out[*at.get()].1 += 1,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(out.len());
                out.push((d, 1));
            }
        }
    }
    out.into_iter()
        .map(|(mut d, n)| {
            if n > 1 {
                d.message.push_str(&format!("\n(reported {n} times here, once for each cluster this line applies to)"));
            }
            d
        })
        .collect()
}

fn echoes(
    d: &Diagnostic,
    shown: &lsp_types::Diagnostic,
    home: usize,
    files: &[Arc<File>],
    enc: Encoding,
) -> Vec<(usize, lsp_types::Diagnostic)> {
    let Some(primary) = files.get(home).and_then(|f| parse_uri(&f.uri)) else { return Vec::new() };
    let mut out: Vec<(usize, lsp_types::Diagnostic)> = Vec::new();
    for label in d.labels.iter().skip(1) {
        let other = label.span.file.0 as usize;
        if other == home || out.iter().any(|(f, _)| *f == other) {
            continue;
        }
        let Some((_, range)) = range_of(files, label.span, enc) else { continue };
        let mut message = d.message.clone();
        if !label.text.is_empty() {
            message.push('\n');
            message.push_str(&label.text);
        }
        if let Some(help) = &d.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        let mut related = vec![DiagnosticRelatedInformation {
            location: Location { uri: primary.clone(), range: shown.range },
            message: d.labels.first().map_or_else(|| d.message.clone(), |l| l.text.clone()),
        }];
        related.extend(
            shown
                .related_information
                .iter()
                .flatten()
                .filter(|r| r.location.range != range || r.location.uri != primary)
                .cloned(),
        );
        related.retain(|r| {
            !(r.location.range == range && files.get(other).is_some_and(|f| f.uri == r.location.uri.as_str()))
        });
        out.push((
            other,
            lsp_types::Diagnostic { range, message, related_information: Some(related), data: None, ..shown.clone() },
        ));
    }
    out
}

/// The warning `hcpc plan` gives a fleet applied to a cluster without
/// `fleet NAME`, shown while editing, with `fleet NAME` (named after the
/// directory) to insert above `target`.
fn unnamed_fleet(fleet: &ir::Fleet, dir_name: Option<&str>, texts: &[&str]) -> Option<Diagnostic> {
    let target = fleet.target.as_ref().filter(|t| matches!(t.value, Target::Kube { .. }) && !fleet.named)?;
    let name = suggested_name(dir_name.unwrap_or(""));
    let text = texts.get(target.span.file.0 as usize).copied().unwrap_or("");
    let before = text.get(..target.span.offset).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Some(
        Diagnostic::warning(Code::UnnamedFleet, "this fleet has no name, so it shares the ApplySet `default`")
            .label(target.span, "applied to a cluster here")
            .help(format!(
                "add `fleet {name}` (unique per configuration): objects of another unnamed configuration on the same cluster would otherwise be pruned by this one"
            ))
            .suggest(Span { file: target.span.file, offset: line_start, len: 0 }, format!("fleet {name}\n")),
    )
}

/// A DNS-1123 label made from a directory name, for `fleet NAME`.
fn suggested_name(dir: &str) -> String {
    let mut s: String =
        dir.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    s.truncate(63);
    let s = s.trim_matches('-');
    if s.is_empty() { "fleet".to_owned() } else { s.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_names_from_directories() {
        assert_eq!(suggested_name("My Fleet_2"), "my-fleet-2");
        assert_eq!(suggested_name("--"), "fleet");
        assert_eq!(suggested_name(""), "fleet");
    }

    #[test]
    fn one_error_on_one_line_is_published_once_with_its_count() {
        let d = |line: u32, message: &str| lsp_types::Diagnostic {
            range: Range::new(lsp_types::Position::new(line, 4), lsp_types::Position::new(line, 9)),
            severity: Some(DiagnosticSeverity::ERROR),
            code: Some(NumberOrString::String("hcpc::storage::unknown_class".into())),
            message: message.into(),
            ..Default::default()
        };
        let mut list: Vec<_> = (0..250).map(|_| d(3, "no storage class `nope`")).collect();
        list.push(d(3, "a different error in the same place"));
        list.push(d(7, "another line"));
        let merged = merge_repeats(list);
        assert_eq!(merged.len(), 3, "{merged:#?}");
        assert!(merged[0].message.starts_with("no storage class `nope`\n"), "{}", merged[0].message);
        assert!(merged[0].message.ends_with("(reported 250 times here, once for each cluster this line applies to)"));
        assert_eq!(merged[1].message, "a different error in the same place");
        assert_eq!(merged[2].message, "another line");
    }
}
