//! One function per subcommand; each returns the process exit code.

mod access;
mod apply;
mod check;
mod import;
mod lsp;
pub mod plan;
mod rbac;
mod render;
mod status;
mod unlock;
mod wait;

use std::path::{Path, PathBuf};

use crate::cli::args::{Cli, Command, DiagFormat};
use crate::cli::exit;
use crate::cli::load::{Compiled, compile};
use crate::cli::output;
use crate::cli::printer::{Style, print_diagnostics};
use crate::cli::target::TargetFlags;
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
            output::print(&resolved.graph.to_dot())
        }
        Command::Explain { code } => explain(code.as_deref()),
        Command::Lsp { stdio: _ } => lsp::run(),
        Command::Schema => {
            output::print(&format!("{}\n", serde_json::to_string_pretty(&crate::schema_json()).unwrap_or_default()))
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "hcpc", &mut std::io::stdout());
            exit::OK
        }
        Command::Plan { input, target, clusters, format, out, max_bytes, detailed_exitcode } => {
            let Some(flags) = target_flags(&target) else { return exit::ERROR };
            let path = path_or_cwd(input.path);
            plan::run(&path, &flags, &clusters, format, max_bytes, out.as_deref(), detailed_exitcode, style)
        }
        Command::Apply {
            path,
            target,
            clusters,
            auto_approve,
            allow_replace,
            force_conflicts,
            lock_timeout,
            parallelism,
            wait,
            timeout,
            until_wave,
            rollout_timeout,
        } => {
            let (Some(lock_timeout), Some(timeout)) =
                (duration_flag("--lock-timeout", &lock_timeout), duration_flag("--timeout", &timeout))
            else {
                return exit::ERROR;
            };
            let Some(rollout_timeout) = duration_flag("--rollout-timeout", &rollout_timeout) else {
                return exit::ERROR;
            };
            let Some(flags) = target_flags(&target) else { return exit::ERROR };
            let opts = apply::Options {
                rollout: crate::cli::rollout::RolloutFlags { until: until_wave, timeout: rollout_timeout },
                auto_approve,
                allow_replace,
                force_conflicts,
                lock_timeout,
                parallelism: usize::from(parallelism),
                wait,
                timeout,
                clusters,
                destroy: false,
            };
            apply::run(&path_or_cwd(path), &flags, &opts, style)
        }
        Command::Destroy { input, target, clusters, auto_approve, lock_timeout, parallelism, timeout } => {
            let (Some(lock_timeout), Some(timeout)) =
                (duration_flag("--lock-timeout", &lock_timeout), duration_flag("--timeout", &timeout))
            else {
                return exit::ERROR;
            };
            let Some(flags) = target_flags(&target) else { return exit::ERROR };
            let opts = apply::Options {
                rollout: crate::cli::rollout::RolloutFlags { until: None, timeout },
                auto_approve,
                allow_replace: false,
                force_conflicts: false,
                lock_timeout,
                parallelism: usize::from(parallelism),
                wait: false,
                timeout,
                clusters,
                destroy: true,
            };
            apply::run(&path_or_cwd(input.path), &flags, &opts, style)
        }
        Command::Kubeconfig { cluster, output, target, config } => {
            let Some(flags) = target_flags(&target) else { return exit::ERROR };
            access::kubeconfig(&cluster, output.as_deref(), &flags, &config)
        }
        Command::KubeadminPassword { cluster, target, config } => {
            let Some(flags) = target_flags(&target) else { return exit::ERROR };
            access::kubeadmin_password(&cluster, &flags, &config)
        }
        Command::Import { cluster, all, output, fleet, target } => {
            let Some(flags) = target_flags(&target) else { return exit::ERROR };
            let req =
                import::Request { what: cluster.as_deref(), all, output: output.as_deref(), fleet: fleet.as_deref() };
            import::run(&req, &flags)
        }
        Command::Unlock { input, target, yes } => {
            let Some(flags) = target_flags(&target) else { return exit::ERROR };
            unlock::run(&path_or_cwd(input.path), &flags, yes, style)
        }
        Command::Status { input, target, clusters, format, watch, detailed_exitcode } => {
            let Some(flags) = target_flags(&target) else { return exit::ERROR };
            let opts = status::Options { clusters: &clusters, format, watch, detailed_exitcode };
            status::run(&path_or_cwd(input.path), &flags, &opts, style)
        }
        Command::Rbac { input, target, service_account, read_only } => {
            let Some(flags) = target_flags(&target) else { return exit::ERROR };
            rbac::run(&path_or_cwd(input.path), &flags, &service_account, read_only, style)
        }
        Command::Fmt { input, check } => fmt(&path_or_cwd(input.path), check, style),
    }
}

/// The target flags, or `None` after saying what is wrong with them.
fn target_flags(args: &crate::cli::args::TargetArgs) -> Option<TargetFlags> {
    args.flags().inspect_err(|e| eprintln!("error: {e}")).ok()
}

pub fn path_or_cwd(p: Option<PathBuf>) -> PathBuf {
    p.unwrap_or_else(|| PathBuf::from("."))
}

/// Prints the compile diagnostics; returns the compiled fleet only if there were no errors.
pub fn report(compiled: Compiled, style: Style) -> Option<Compiled> {
    let Compiled { sources, diags, resolved, objects, input_digest, secrets_digest } = compiled;
    let has_errors = diags.has_errors();
    let (errors, _) = print_diagnostics(diags, &sources, DiagFormat::Human, style);
    if has_errors {
        eprintln!("error: {errors} error{} found; nothing was done", if errors == 1 { "" } else { "s" });
        return None;
    }
    Some(Compiled { sources, diags: Default::default(), resolved, objects, input_digest, secrets_digest })
}

/// `hcpc explain`: every code with its summary, or one code's explanation
/// (which says how to fix it); a misspelt code gets the closest one.
fn explain(code: Option<&str>) -> u8 {
    match code {
        None => {
            let width = Code::ALL.iter().map(|c| c.as_str().len()).max().unwrap_or(0);
            let list: String = Code::ALL.iter().map(|c| format!("{:<width$}  {}\n", c.as_str(), c.summary())).collect();
            output::print(&list)
        }
        Some(s) => match Code::parse(s).or_else(|| Code::parse(&format!("hcpc::{s}"))) {
            Some(c) => {
                let text = c.explain().lines().map(str::trim).collect::<Vec<_>>().join("\n");
                output::print(&format!("{c}\n\n{text}\n"))
            }
            None => {
                let full = if s.starts_with("hcpc::") { s.to_string() } else { format!("hcpc::{s}") };
                let guess = crate::diagnostic::closest(&full, Code::ALL.iter().map(|c| c.as_str())).or_else(|| {
                    // `conflict` for `hcpc::apply::conflict`: the last part alone.
                    let last = s.rsplit("::").next().unwrap_or(s);
                    let tails = Code::ALL.iter().map(|c| c.as_str().rsplit("::").next().unwrap_or_default());
                    let tail = crate::diagnostic::closest(last, tails)?;
                    let mut matching = Code::ALL.iter().filter(|c| c.as_str().ends_with(&format!("::{tail}")));
                    match (matching.next(), matching.next()) {
                        (Some(one), None) => Some(one.as_str()),
                        _ => None,
                    }
                });
                match guess {
                    Some(g) => eprintln!(
                        "error: unknown code `{s}`\n  help: did you mean `{g}`? (`hcpc explain` lists every code)"
                    ),
                    None => eprintln!("error: unknown code `{s}`\n  help: `hcpc explain` lists every code"),
                }
                exit::ERROR
            }
        },
    }
}

/// `hcpc fmt`: rewrite files in canonical form (or, with `--check`, list
/// the files that would change and exit 1).
fn fmt(path: &std::path::Path, check: bool, style: Style) -> u8 {
    let files = match crate::cli::load::list_files(path) {
        Ok(f) => f,
        Err(d) => {
            print_diagnostics(d.into(), &Default::default(), DiagFormat::Human, style);
            return exit::ERROR;
        }
    };
    let mut changed = Vec::new();
    let mut failed = false;
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            eprintln!("error: cannot read {}", file.display());
            failed = true;
            continue;
        };
        if let Some(offset) = crate::parse::too_deep(&text) {
            let mut sources = crate::source::SourceMap::default();
            let id = sources.add(file.clone(), text);
            let d = crate::diagnostic::Diagnostic::error(crate::diagnostic::Code::Syntax, "blocks are nested too deep")
                .label(crate::source::Span { file: id, offset, len: 1 }, "too deep")
                .help("close the blocks that were left open");
            print_diagnostics(d.into(), &sources, DiagFormat::Human, style);
            failed = true;
            continue;
        }
        match crate::fmt::format_source(&text) {
            Ok(formatted) if formatted != text => {
                if check {
                    output::print(&format!("{}\n", file.display()));
                } else if let Err(e) = crate::live::dir::write_atomic(&file, &formatted) {
                    eprintln!("error: cannot write {}: {e}", file.display());
                    failed = true;
                }
                changed.push(file);
            }
            Ok(_) => {}
            Err(_) => {
                // Syntax errors: reported by `check` with full diagnostics.
                let mut sources = crate::source::SourceMap::default();
                sources.add(file.clone(), text);
                let (_, diags) = crate::parse::parse(&sources);
                print_diagnostics(diags, &sources, DiagFormat::Human, style);
                failed = true;
            }
        }
    }
    if check && !changed.is_empty() {
        eprintln!(
            "{} file{} would be reformatted; run `hcpc fmt`",
            changed.len(),
            if changed.len() == 1 { "" } else { "s" }
        );
        return exit::ERROR;
    }
    if !check && !style.quiet && !changed.is_empty() {
        // A result, as `terraform fmt` prints its files: on stdout.
        println!("formatted {} file{}", changed.len(), if changed.len() == 1 { "" } else { "s" });
    }
    if failed { exit::ERROR } else { exit::OK }
}

/// A duration flag (`--timeout 30m`), or `None` after saying what is wrong.
fn duration_flag(flag: &str, value: &str) -> Option<std::time::Duration> {
    match crate::quantity::Duration::parse(value) {
        Ok(d) => Some(std::time::Duration::from_nanos(d.0)),
        Err(e) => {
            eprintln!("error: {flag} {e}");
            None
        }
    }
}

/// The fleet at `path` split per target, for commands that need only its
/// names and targets (`rbac`, `unlock`); `None` after saying what is wrong,
/// `unknown` finishing the sentence about a configuration with errors.
fn fleet_targets(
    path: &Path,
    flags: &crate::cli::target::TargetFlags,
    style: Style,
    unknown: &str,
) -> Option<Vec<crate::cli::target::TargetFleet>> {
    let sources = match crate::cli::load::read_sources(path) {
        Ok(s) => s,
        Err(d) => {
            print_diagnostics(d.into(), &Default::default(), DiagFormat::Human, style);
            return None;
        }
    };
    let (fleet, diags) = crate::cli::load::front(&sources);
    if diags.has_errors() {
        print_diagnostics(diags, &sources, DiagFormat::Human, style);
        eprintln!("error: the configuration has errors, {unknown}");
        return None;
    }
    crate::cli::target::split(flags, fleet, &sources).inspect_err(|e| eprintln!("error: {e}")).ok()
}
