//! `hcpc apply`: plan, confirm, lock, then make the target match.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::plan::{Planned, SavedPlan, make};
use crate::cli::args::PlanFormat;
use crate::cli::exit;
use crate::cli::printer::Style;
use crate::cli::target::Opened;
use crate::live::dir::{DirTarget, relative_path, write_file};
use crate::plan::{Action, Change};
use crate::render::yaml;

pub struct Options {
    pub auto_approve: bool,
    pub allow_replace: bool,
    pub force_conflicts: bool,
    pub lock_timeout: Duration,
    pub wait: bool,
    pub timeout: Duration,
}

pub fn run(path: &Path, target_flag: Option<&str>, opts: &Options, style: Style) -> u8 {
    // A saved plan: re-plan from the same configuration and refuse if
    // anything it was made against has changed.
    let saved = load_saved(path);
    let config: PathBuf = match &saved {
        Some(Ok(s)) => s.config.clone(),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
        None => path.to_path_buf(),
    };
    let Some(planned) = make(&config, target_flag, style) else { return exit::ERROR };
    if let Some(Ok(saved)) = &saved {
        let stale = stale_objects(&saved.plan.changes, &planned.plan.changes);
        // The same inputs must still render the same objects (another hcpc
        // version might not).
        let now: Vec<Value> = planned.compiled.objects.iter().map(super::plan::digested).collect();
        let rendered_differently = now != saved.desired;
        if saved.plan.input_digest != planned.plan.input_digest
            || !stale.is_empty()
            || saved.plan.target != planned.plan.target
        {
            eprintln!("error[hcpc::plan::stale]: the saved plan is stale; nothing was applied");
            if saved.plan.input_digest != planned.plan.input_digest {
                eprintln!("  - the configuration or a secret it reads changed since the plan was made");
            }
            if saved.plan.target != planned.plan.target {
                eprintln!("  - the plan was made for {}, not {}", saved.plan.target, planned.plan.target);
            }
            if rendered_differently {
                eprintln!("  - this hcpc renders the configuration differently from the one that made the plan");
            }
            for id in stale {
                eprintln!("  - {id} changed on the target since the plan was made");
            }
            eprintln!("  help: run `hcpc plan --out FILE` again and review it");
            return exit::ERROR;
        }
    }
    let plan = &planned.plan;
    if !style.quiet || !opts.auto_approve {
        eprint!("{}", super::plan::render(&planned, PlanFormat::Text, style.color, style.verbose));
    }
    if !plan.has_changes() {
        return match &planned.target {
            Opened::Kube(k) if opts.wait => super::wait::run(k, &planned, opts.timeout, style),
            _ => exit::OK,
        };
    }
    if opts.wait && matches!(planned.target, Opened::Dir(_)) {
        eprintln!("warning: --wait has no effect on a dir target: nothing runs there to become ready");
    }
    let replaces: Vec<_> =
        plan.changes.iter().filter(|c| c.action == Action::Replace).map(|c| c.id.to_string()).collect();
    if !replaces.is_empty() && !opts.allow_replace {
        eprintln!(
            "error: {} must be replaced (immutable fields changed); nothing was applied\n  help: review the plan and re-run with --allow-replace to delete and recreate them",
            replaces.join(", ")
        );
        return exit::ERROR;
    }
    if !opts.auto_approve {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "error: apply needs confirmation, but there is no terminal to ask on; nothing was applied\n  help: pass --auto-approve to apply without asking"
            );
            return exit::ERROR;
        }
        eprint!("\nApply these changes? Only `yes` is accepted: ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() != "yes" {
            eprintln!("Apply cancelled; nothing was changed.");
            return exit::ERROR;
        }
    }
    // Re-planned once the lock is held: what is applied is what was shown,
    // or nothing (another apply may have run while this one waited).
    let quiet = Style { quiet: true, ..style };
    let replan = || make(&config, target_flag, quiet);
    match &planned.target {
        Opened::Dir(d) => apply_dir(d, &planned, opts, style, &replan),
        Opened::Kube(k) => super::apply_kube::run(k, &planned, opts, style, &replan),
    }
}

fn load_saved(path: &Path) -> Option<Result<SavedPlan, String>> {
    if !path.is_file() || path.extension().is_none_or(|e| e != "json") {
        return None;
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return Some(Err(format!("cannot read {}: {e}", path.display()))),
    };
    Some(serde_json::from_str(&text).map_err(|e| format!("{} is not a saved hcpc plan: {e}", path.display())))
}

fn stale_objects(saved: &[Change], now: &[Change]) -> Vec<String> {
    let mut out = Vec::new();
    for s in saved {
        let current = now.iter().find(|c| c.id == s.id).and_then(|c| c.live_version.clone());
        if current != s.live_version {
            out.push(s.id.to_string());
        }
    }
    for c in now.iter().filter(|c| c.action != Action::NoOp) {
        if !saved.iter().any(|s| s.id == c.id) {
            out.push(c.id.to_string());
        }
    }
    out
}

/// Holds the dir target's lock file; removes it when dropped.
struct DirLock(PathBuf);

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn lock_dir(root: &Path, timeout: Duration) -> Result<DirLock, String> {
    std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let path = root.join(".hcpc.lock");
    let start = Instant::now();
    loop {
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                let _ = writeln!(f, "pid {}", std::process::id());
                return Ok(DirLock(path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if start.elapsed() >= timeout {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    return Err(format!(
                        "the fleet is locked by another apply ({}, lock file {}); nothing was applied\n  help: wait for it, pass --lock-timeout 5m to wait, or remove the lock file if that process is gone",
                        holder.trim(),
                        path.display()
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(format!("cannot create lock file {}: {e}", path.display())),
        }
    }
}

/// Re-plans under the lock; `None` (after saying why) when the plan changed.
/// `bookkeeping` is an object the apply itself wrote before locking (the
/// fleet's Namespace, which holds the Lease); it is left out of the comparison.
pub fn replan_under_lock(
    shown: &Planned,
    replan: &dyn Fn() -> Option<Planned>,
    bookkeeping: Option<&crate::object::ObjectId>,
) -> Option<Planned> {
    let fresh = replan()?;
    let key = |p: &Planned| -> Vec<(String, crate::plan::Action, Option<String>)> {
        p.plan
            .changes
            .iter()
            .filter(|c| Some(&c.id) != bookkeeping)
            .map(|c| (c.id.to_string(), c.action, c.live_version.clone()))
            .collect()
    };
    if key(&fresh) != key(shown) || fresh.plan.input_digest != shown.plan.input_digest {
        eprintln!(
            "error[hcpc::plan::stale]: the target changed while this apply waited for the lock (another apply ran); nothing was applied\n  help: run `hcpc plan` again and review the new plan"
        );
        return None;
    }
    Some(fresh)
}

fn apply_dir(d: &DirTarget, shown: &Planned, opts: &Options, style: Style, replan: &dyn Fn() -> Option<Planned>) -> u8 {
    let _lock = match lock_dir(&d.root, opts.lock_timeout) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error[hcpc::apply::locked]: {e}");
            return exit::ERROR;
        }
    };
    let Some(planned) = replan_under_lock(shown, replan, None) else { return exit::ERROR };
    let planned = &planned;
    let mut done = Vec::new();
    for c in planned.plan.changes.iter().filter(|c| c.action != Action::NoOp) {
        let file = d.root.join(relative_path(&c.id));
        let result = match c.action {
            Action::Delete => std::fs::remove_file(&file)
                .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }),
            _ => {
                let Some(o) = planned.compiled.objects.iter().find(|o| o.id == c.id) else { continue };
                let mut body = o.body().clone();
                if o.create_only {
                    // Never rewrite an existing key: check again under the lock.
                    if file.exists() {
                        continue;
                    }
                    match generate_key() {
                        Ok(key) => body["data"] = serde_json::json!({ "key": key }),
                        Err(e) => {
                            eprintln!("error: cannot generate the etcd encryption key: {e}; nothing more was applied");
                            return exit::ERROR;
                        }
                    }
                }
                write_file(&file, yaml::to_yaml(&body).as_bytes(), o.sensitive)
            }
        };
        match result {
            Ok(()) => {
                if !style.quiet {
                    eprintln!("{} {}", c.action.symbol(), c.id);
                }
                done.push(c.id.to_string());
            }
            Err(e) => {
                eprintln!("error: {} {}: {e}", c.action.symbol(), c.id);
                eprintln!("applied {} of the changes: {}", done.len(), done.join(", "));
                eprintln!("  help: fix the cause and run apply again; it continues from the current state");
                return exit::ERROR;
            }
        }
    }
    if !style.quiet {
        eprintln!("{}", planned.plan.summary.applied_line());
    }
    exit::OK
}

/// 32 random bytes for the etcd AES-CBC key, base64-encoded, from the
/// operating system's generator; an error rather than a weak key.
pub fn generate_key() -> Result<Value, String> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)))
}
