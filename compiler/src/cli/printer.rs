//! The only place diagnostics become text: miette's graphical report for
//! people, JSON for tools, `::error` lines for GitHub Actions.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{IsTerminal, Write};

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};

use crate::cli::args::{ColorChoice, DiagFormat};
use crate::diagnostic::{Diagnostic, Diagnostics, Located, Severity};
use crate::source::{FileId, SourceMap};

/// Output settings decided once from flags, environment and terminal.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
    pub quiet: bool,
    pub verbose: bool,
}

impl Style {
    pub fn new(choice: ColorChoice, quiet: bool, verbose: bool, tty: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        Style { color, quiet, verbose }
    }

    pub fn stderr(choice: ColorChoice, quiet: bool, verbose: bool) -> Style {
        Style::new(choice, quiet, verbose, std::io::stderr().is_terminal())
    }
}

/// Every diagnostic printed since [`keep_diagnostics`], for a command whose
/// output document carries them (`plan --format json|markdown`): they are
/// printed where they arise, all over the command, and kept here as well.
static KEPT: std::sync::Mutex<Option<Vec<Located>>> = std::sync::Mutex::new(None);

/// From now on, keep every diagnostic printed.
pub fn keep_diagnostics() {
    *KEPT.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Vec::new());
}

/// The diagnostics kept so far, in the order printed.
pub fn kept_diagnostics() -> Vec<Located> {
    KEPT.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone().unwrap_or_default()
}

/// Prints diagnostics in the chosen format; returns (errors, warnings).
pub fn print_diagnostics(diags: Diagnostics, sources: &SourceMap, format: DiagFormat, style: Style) -> (usize, usize) {
    print_diagnostics_with(diags, sources, format, style, &[])
}

/// [`print_diagnostics`], and for machine formats the codes of the rules
/// that could not run offline (`needs_target` in JSON, a notice on GitHub).
pub fn print_diagnostics_with(
    diags: Diagnostics,
    sources: &SourceMap,
    format: DiagFormat,
    style: Style,
    needs_target: &[crate::diagnostic::Code],
) -> (usize, usize) {
    // Counted after repeats are dropped, so the totals match what is shown.
    let sorted = diags.sorted();
    if let Some(kept) = KEPT.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_mut() {
        kept.extend(sorted.iter().map(|d| d.locate(sources)));
    }
    let errors = sorted.iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = sorted.iter().filter(|d| d.severity == Severity::Warning).count();
    match format {
        DiagFormat::Json => {
            let located: Vec<_> = sorted.iter().map(|d| d.locate(sources)).collect();
            let mut doc = serde_json::json!({
                "version": 1,
                "errors": errors,
                "warnings": warnings,
                "diagnostics": located,
            });
            if !needs_target.is_empty() {
                doc["needs_target"] = needs_target.iter().map(|c| c.as_str()).collect();
            }
            crate::cli::output::print(&format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default()));
        }
        DiagFormat::Github => {
            let mut lines: String = sorted.iter().map(|d| github_line(d, sources) + "\n").collect();
            if !needs_target.is_empty() {
                let codes: Vec<&str> = needs_target.iter().map(|c| c.as_str()).collect();
                lines += &format!(
                    "::notice title=hcpc check::{}\n",
                    gh_data(&format!(
                        "checked offline: {} rules need facts about the infrastructure (run plan): {}",
                        codes.len(),
                        codes.join(", ")
                    ))
                );
            }
            crate::cli::output::print(&lines);
        }
        DiagFormat::Human => {
            let mut err = std::io::stderr().lock();
            // One fact about a management cluster can warn once per cluster
            // of a large fleet: the first few of a code are drawn, the
            // rest counted. Errors are all drawn.
            let mut drawn: BTreeMap<&str, usize> = BTreeMap::new();
            let mut folded: BTreeMap<(&str, &str), usize> = BTreeMap::new();
            for d in &sorted {
                if style.quiet && d.severity != Severity::Error {
                    continue;
                }
                let seen = drawn.entry(d.code.as_str()).or_default();
                *seen += 1;
                if d.severity != Severity::Error && *seen > REPEATS_DRAWN {
                    let kind = if d.severity == Severity::Warning { "warning" } else { "note" };
                    *folded.entry((d.code.as_str(), kind)).or_default() += 1;
                    continue;
                }
                let _ = write!(err, "{}", render_human(d, sources, style.color));
            }
            for ((code, kind), n) in folded {
                let _ = writeln!(
                    err,
                    "{code}: {n} more {kind}{} like the {REPEATS_DRAWN} above, not drawn (`--format json` lists every one)\n",
                    if n == 1 { "" } else { "s" }
                );
            }
        }
    }
    (errors, warnings)
}

/// How many warnings or notes of one code the human format draws.
const REPEATS_DRAWN: usize = 3;

/// A diagnostic drawn by miette, with source snippets and underlines.
pub fn render_human(d: &Diagnostic, sources: &SourceMap, color: bool) -> String {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let report = Report::new(d, sources);
    let mut out = String::new();
    let _ = handler.render_report(&mut out, &report);
    out.push('\n');
    out
}

/// `::error file=…,line=…,col=…,endLine=…,endColumn=…,title=CODE::message`.
pub fn github_line(d: &Diagnostic, sources: &SourceMap) -> String {
    let l = d.locate(sources);
    let level = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "notice",
    };
    let mut props = Vec::new();
    if let (Some(file), Some(line), Some(col)) = (&l.file, l.line, l.column) {
        props.push(format!("file={}", gh_prop(file)));
        props.push(format!("line={line}"));
        props.push(format!("col={col}"));
        if let (Some(el), Some(ec)) = (l.end_line, l.end_column) {
            props.push(format!("endLine={el}"));
            props.push(format!("endColumn={ec}"));
        }
    }
    props.push(format!("title={}", gh_prop(l.code)));
    let mut message = l.message.clone();
    if let Some(h) = &l.help {
        message.push_str("\nhelp: ");
        message.push_str(h);
    }
    format!("::{level} {}::{}", props.join(","), gh_data(&message))
}

fn gh_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn gh_prop(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Adapter from our diagnostic to miette's trait. Labels in the primary
/// file are drawn in place; labels in other files become related reports.
struct Report {
    code: String,
    message: String,
    severity: miette::Severity,
    help: Option<String>,
    source: Option<NamedSource<String>>,
    labels: Vec<LabeledSpan>,
    related: Vec<Report>,
}

impl Report {
    fn new(d: &Diagnostic, sources: &SourceMap) -> Report {
        let primary = d.primary_span().map(|s| s.file);
        let named = |file: FileId| {
            let f = sources.get(file);
            // Raw control characters in the file are not replayed to the terminal.
            let path = crate::printable::text(&f.path.display().to_string(), 4096).into_owned();
            NamedSource::new(path, crate::printable::source(f.text.as_str()).into_owned()).with_language("kdl")
        };
        let mut labels = Vec::new();
        let mut related = Vec::new();
        for (i, l) in d.labels.iter().enumerate() {
            let span: SourceSpan = l.span.source_span();
            if Some(l.span.file) == primary {
                let text = Some(l.text.clone());
                labels.push(if i == 0 {
                    LabeledSpan::new_primary_with_span(text, span)
                } else {
                    LabeledSpan::new_with_span(text, span)
                });
            } else {
                related.push(Report {
                    code: String::new(),
                    message: l.text.clone(),
                    severity: miette::Severity::Advice,
                    help: None,
                    source: Some(named(l.span.file)),
                    labels: vec![LabeledSpan::new_primary_with_span(None, span)],
                    related: Vec::new(),
                });
            }
        }
        Report {
            code: d.code.as_str().to_string(),
            message: d.message.clone(),
            severity: match d.severity {
                Severity::Error => miette::Severity::Error,
                Severity::Warning => miette::Severity::Warning,
                Severity::Note => miette::Severity::Advice,
            },
            help: d.help.clone(),
            source: primary.map(named),
            labels,
            related,
        }
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.code.is_empty()).then(|| Box::new(&self.code) as Box<dyn fmt::Display>)
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        (!self.labels.is_empty())
            .then(|| Box::new(self.labels.iter().cloned()) as Box<dyn Iterator<Item = LabeledSpan>>)
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        (!self.related.is_empty())
            .then(|| Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic)) as Box<dyn Iterator<Item = _>>)
    }
}
