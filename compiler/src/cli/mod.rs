//! The `hcpc` command line: the only module that touches the terminal and
//! (with `live` and `apply`) the disk.

pub mod args;
mod commands;
mod deletion;
mod driver;
pub mod load;
pub mod output;
pub mod printer;
mod progress;
pub(crate) mod rollout;
pub mod scope;
pub mod target;

use std::process::ExitCode;

use clap::Parser;

use args::Cli;

/// Exit codes, as documented in the README.
pub mod exit {
    /// Success; for `plan --detailed-exitcode`, no changes.
    pub const OK: u8 = 0;
    /// Any error: bad input, refused or failed apply, `fmt --check` differences.
    pub const ERROR: u8 = 1;
    /// `plan --detailed-exitcode` only: success, and there are changes.
    pub const CHANGES: u8 = 2;
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::ERROR } else { exit::OK });
        }
    };
    ExitCode::from(commands::run(cli))
}

/// Runs `hcpc` with these arguments (for tests that drive the CLI in-process).
pub fn run_args<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => commands::run(cli),
        Err(_) => exit::ERROR,
    }
}
