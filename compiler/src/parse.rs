//! Stage 1: text → KDL syntax trees, one per file, in parallel.
//!
//! The `kdl` crate is the slowest part of the pipeline (about 1.8 MB/s), so
//! files are parsed on all cores. Each syntax error becomes a diagnostic
//! pointing into its file.

#![deny(clippy::disallowed_methods)]

use kdl::KdlDocument;
use rayon::prelude::*;

use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::source::{FileId, SourceMap, Span};

/// A parsed file.
pub struct ParsedFile {
    pub file: FileId,
    pub doc: KdlDocument,
}

/// Parses every file of the map. Files that fail to parse are left out and
/// reported; the others are returned in file order.
pub fn parse(sources: &SourceMap) -> (Vec<ParsedFile>, Diagnostics) {
    let results: Vec<(FileId, Result<KdlDocument, kdl::KdlError>)> = sources
        .iter()
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|(id, f)| (id, KdlDocument::parse_v2(&f.text)))
        .collect();
    let mut diags = Diagnostics::default();
    let mut parsed = Vec::with_capacity(results.len());
    for (file, result) in results {
        match result {
            Ok(doc) => parsed.push(ParsedFile { file, doc }),
            Err(err) => {
                for d in syntax_diagnostics(file, &err) {
                    diags.push(d);
                }
            }
        }
    }
    (parsed, diags)
}

fn syntax_diagnostics(file: FileId, err: &kdl::KdlError) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for d in &err.diagnostics {
        let message = d.message.clone().unwrap_or_else(|| "invalid KDL".to_string());
        let help = d.help.clone().unwrap_or_else(|| {
            "KDL 2: quote strings that contain `/`, spaces or `=`, or start with a digit \
             (e.g. \"quay.io/image:tag\"); booleans are #true and #false"
                .to_string()
        });
        out.push(
            Diagnostic::error(Code::Syntax, message)
                .label(Span::new(file, d.span), d.label.clone().unwrap_or_else(|| "here".to_string()))
                .help(help),
        );
    }
    if out.is_empty() {
        out.push(
            Diagnostic::error(Code::Syntax, "invalid KDL document")
                .label(Span { file, offset: 0, len: 0 }, "in this file")
                .help("check the file is KDL 2"),
        );
    }
    out
}
