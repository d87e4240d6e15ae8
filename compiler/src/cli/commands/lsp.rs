//! `hcpc lsp`: serves the language to an editor on stdin and stdout.

/// Runs the server until the editor exits it; 0 after a clean shutdown.
pub fn run() -> u8 {
    crate::lsp::serve()
}
