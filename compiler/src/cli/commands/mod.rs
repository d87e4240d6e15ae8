//! One function per subcommand; each returns the process exit code.

mod apply;
mod check;
pub mod plan;
mod render;

use std::path::PathBuf;

use crate::cli::args::{Cli, Command, DiagFormat};
use crate::cli::exit;
use crate::cli::load::{Compiled, compile};
use crate::cli::printer::{Style, print_diagnostics};
use crate::diagnostic::Code;

pub fn run(cli: Cli) -> u8 {
    let style = Style::stderr(cli.color, cli.quiet, cli.verbose);
    match cli.command {
        Command::Check { input, format, deny_warnings } => {
            check::run(&path_or_cwd(input.path), format, deny_warnings, style)
        }
        Command::Render { input, output, show_secrets } => {
            render::run(&path_or_cwd(input.path), output.as_deref(), show_secrets, style)
        }
        Command::Graph { input } => {
            let compiled = compile(&path_or_cwd(input.path));
            let Some(resolved) = report(compiled, style).and_then(|c| c.resolved) else { return exit::ERROR };
            print!("{}", resolved.graph.to_dot());
            exit::OK
        }
        Command::Explain { code } => explain(code.as_deref()),
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&crate::schema_json()).unwrap_or_default());
            exit::OK
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "hcpc", &mut std::io::stdout());
            exit::OK
        }
        Command::Plan { input, target, format, out, detailed_exitcode } => plan::run(
            &path_or_cwd(input.path),
            target.target.as_deref(),
            format,
            out.as_deref(),
            detailed_exitcode,
            style,
        ),
        Command::Apply {
            path,
            target,
            auto_approve,
            allow_replace,
            force_conflicts: _,
            lock_timeout,
            wait,
            timeout: _,
        } => {
            if wait {
                eprintln!("error: --wait needs the kube target, which this build does not support yet");
                return exit::ERROR;
            }
            let Ok(lock_timeout) = crate::quantity::Duration::parse(&lock_timeout) else {
                eprintln!("error: --lock-timeout `{lock_timeout}` is not a duration such as \"30s\"");
                return exit::ERROR;
            };
            let opts = apply::Options {
                auto_approve,
                allow_replace,
                lock_timeout: std::time::Duration::from_nanos(lock_timeout.0),
            };
            apply::run(&path_or_cwd(path), target.target.as_deref(), &opts, style)
        }
        Command::Kubeconfig { .. } | Command::KubeadminPassword { .. } | Command::Import { .. } => {
            eprintln!("error: this command needs the kube target, which this build does not support yet");
            exit::ERROR
        }
        Command::Fmt { .. } => {
            eprintln!("error: fmt is not available in this build");
            exit::ERROR
        }
    }
}

pub fn path_or_cwd(p: Option<PathBuf>) -> PathBuf {
    p.unwrap_or_else(|| PathBuf::from("."))
}

/// Prints the compile diagnostics; returns the compiled fleet only if there were no errors.
pub fn report(compiled: Compiled, style: Style) -> Option<Compiled> {
    let Compiled { sources, diags, resolved, objects, input_digest } = compiled;
    let has_errors = diags.has_errors();
    let (errors, _) = print_diagnostics(diags, &sources, DiagFormat::Human, style);
    if has_errors {
        eprintln!("error: {errors} error{} found; nothing was done", if errors == 1 { "" } else { "s" });
        return None;
    }
    Some(Compiled { sources, diags: Default::default(), resolved, objects, input_digest })
}

fn explain(code: Option<&str>) -> u8 {
    match code {
        None => {
            for c in Code::ALL {
                println!("{c}");
            }
            exit::OK
        }
        Some(s) => match Code::parse(s).or_else(|| Code::parse(&format!("hcpc::{s}"))) {
            Some(c) => {
                println!("{c}\n\n{}", c.explain().lines().map(str::trim).collect::<Vec<_>>().join("\n"));
                exit::OK
            }
            None => {
                eprintln!("error: unknown code `{s}`\n  help: `hcpc explain` lists every code");
                exit::ERROR
            }
        },
    }
}
