//! Standard output of the commands that print a document (`render`,
//! `plan`, `graph`, `schema`, `explain`, `import`, `check --format json`).
//!
//! A reader that stops early (`hcpc render | head`) closes the pipe. Rust
//! ignores SIGPIPE, so the write fails with `BrokenPipe`; `println!` would
//! panic on it. Unix tools end quietly there, and so does hcpc: nothing on
//! standard error, exit code 0. SIGPIPE is not restored to its default
//! instead, because a signal would kill `hcpc apply | head` between two
//! writes to the management cluster.

use std::io::{self, Write};

use crate::cli::exit;

/// Whether a write failed only because the reader went away.
pub fn reader_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// Writes `text` to standard output and flushes it; the exit code to use.
pub fn print(text: &str) -> u8 {
    write_bytes(text.as_bytes())
}

/// Writes `bytes` to standard output and flushes them; the exit code to use.
pub fn write_bytes(bytes: &[u8]) -> u8 {
    let mut out = io::stdout().lock();
    finish(out.write_all(bytes).and_then(|()| out.flush()))
}

/// The exit code after writing standard output: success when the write
/// succeeded or the reader stopped reading; an error, said once, otherwise.
pub fn finish(written: io::Result<()>) -> u8 {
    match written {
        Ok(()) => exit::OK,
        Err(e) if reader_gone(&e) => exit::OK,
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            exit::ERROR
        }
    }
}

/// One line of an apply's plan, progress or result, on standard output as
/// Terraform prints them (diagnostics stay on standard error). A reader
/// that went away stops nothing: the writes to the management cluster go
/// on and are reported by the exit code.
pub fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// [`say`] without the line end: text that ends its own lines.
pub fn say_text(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
