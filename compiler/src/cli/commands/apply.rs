//! `hcpc apply`: plan (or check a saved plan), confirm, then hand over to
//! the one apply driver (`cli::driver`), whatever the target.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::plan::{FleetPlanned, Planned, SavedPlan, SavedTarget, judge, make_scoped};
use crate::cli::args::PlanFormat;
use crate::cli::driver::{DriveOptions, Locks, drive, drive_locked};
use crate::cli::printer::Style;
use crate::cli::rollout::{self, RolloutFlags};
use crate::cli::target::{Opened, TargetFlags};
use crate::cli::{exit, output};
use crate::live::kube::Freshness;
use crate::plan::{Action, Change, Summary};

pub struct Options {
    pub auto_approve: bool,
    pub allow_replace: bool,
    pub force_conflicts: bool,
    pub lock_timeout: Duration,
    pub parallelism: usize,
    pub wait: bool,
    pub timeout: Duration,
    /// `--cluster` patterns (empty: the whole fleet).
    pub clusters: Vec<String>,
    pub rollout: RolloutFlags,
    /// `hcpc destroy`: the selected clusters (all without `--cluster`) are
    /// planned as if no longer declared, so everything of theirs is deleted.
    pub destroy: bool,
}

pub fn run(path: &Path, flags: &TargetFlags, opts: &Options, style: Style) -> u8 {
    // A saved plan: re-plan from the same configuration and refuse if
    // anything it was made against has changed.
    let saved = if opts.destroy { None } else { load_saved(path) };
    let config: PathBuf = match &saved {
        Some(Ok(s)) => s.config.clone(),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
        None => path.to_path_buf(),
    };
    // A saved plan is applied with the limit it was made with.
    let clusters: &[String] = match &saved {
        Some(Ok(s)) if opts.clusters.is_empty() => &s.clusters,
        Some(Ok(s)) if s.clusters != opts.clusters => {
            eprintln!(
                "error: the saved plan was made {}, not with --cluster {}; nothing was applied\n  help: apply the saved plan without --cluster, or make a new plan",
                match s.clusters.as_slice() {
                    [] => "for the whole fleet".to_string(),
                    c => format!("with --cluster {}", c.join(" --cluster ")),
                },
                opts.clusters.join(" --cluster ")
            );
            return exit::ERROR;
        }
        _ => &opts.clusters,
    };
    // What is shown may come from the API server's watch cache; what is
    // written comes from the consistent re-plan under the lock.
    let Some(planned) = make_scoped(&config, flags, clusters, style, Freshness::Cached, opts.destroy) else {
        return exit::ERROR;
    };
    if let Err(e) = rollout::check_flags(&planned, &opts.rollout) {
        eprintln!("error: {e}");
        return exit::ERROR;
    }
    if let Some(Ok(saved)) = &saved {
        let reasons = fleet_differences(saved, &planned);
        if !reasons.is_empty() {
            eprintln!("error[hcpc::plan::stale]: the saved plan does not match a fresh plan; nothing was applied");
            for reason in reasons {
                eprintln!("  - {reason}");
            }
            eprintln!("  help: run `hcpc plan --out FILE` again and review it");
            return exit::ERROR;
        }
    }
    if !style.quiet || !opts.auto_approve {
        output::say_text(&super::plan::render(&planned, PlanFormat::Text, style.color, style.verbose, None));
    }
    // Upgrades go control plane first, then wave by wave: the changes that
    // must wait are left out of what is applied now (`cli::rollout`).
    let run_state = match rollout::standing_of(&planned, &opts.rollout) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    if let Some(r) = &run_state
        && (!style.quiet || !opts.auto_approve)
    {
        output::say_text(&r.standing.text());
    }
    let held = run_state.as_ref().map(|r| r.standing.held.clone()).unwrap_or_default();
    let held_changes = rollout::held_changes(&planned, &held);
    let planned = rollout::restrict(planned, &held);
    // `--wait` follows a rollout to its end under the fleet's locks: no
    // other apply interleaves with its passes.
    let rollout_run = run_state.filter(|r| r.standing.is_active());
    let following = opts.wait && rollout_run.as_ref().is_some_and(|r| r.standing.halted.is_empty());
    let interrupted = || crate::interrupt::requested().map_or(exit::ERROR, |stop| stop.exit_code());
    if !planned.has_changes() {
        return match rollout_run {
            Some(run) if following => {
                let Some(locks) = Locks::take(&planned, drive_options(opts, opts.timeout), style) else {
                    return interrupted();
                };
                let end = follow(locks, &planned, run, &held_changes, Summary::default(), opts, style);
                end.finish(&planned, style)
            }
            Some(run) if !held.is_empty() => {
                rollout::nothing_applied(held_changes.iter().map(Vec::len).sum(), &run.standing, exit::OK, style)
            }
            run => after_pass(&planned, run, opts, style),
        };
    }
    // Refusals are shown before asking; the re-plan under the lock asks the
    // management cluster again before the first write.
    let Some(planned) = judge(planned, style, opts.force_conflicts) else { return exit::ERROR };
    if opts.wait && planned.parts.iter().any(|p| matches!(p.target, Opened::Dir(_))) {
        eprintln!("warning: --wait has no effect on a dir target: nothing runs there to become ready");
    }
    let several = planned.parts.len() > 1;
    let replaces: Vec<String> = planned
        .parts
        .iter()
        .flat_map(|p| {
            p.plan
                .changes
                .iter()
                .filter(|c| c.action == Action::Replace)
                .map(move |c| if several { format!("{} on {}", c.id, p.plan.target) } else { c.id.to_string() })
        })
        .collect();
    if !replaces.is_empty() && !opts.allow_replace {
        eprintln!(
            "error: {} must be replaced (immutable fields changed); nothing was applied\n  help: review the plan and re-run with --allow-replace to delete and recreate them",
            replaces.join(", ")
        );
        return exit::ERROR;
    }
    let moves = planned.view().moves;
    if !moves.is_empty() && !opts.allow_replace {
        let names: Vec<String> = moves.iter().map(|m| format!("{} ({} → {})", m.id, m.from, m.to)).collect();
        eprintln!(
            "error: {} would move between management clusters, which destroys and recreates them; nothing was applied\n  help: HyperShift cannot migrate a hosted cluster; review the plan and re-run with --allow-replace to destroy and recreate them",
            names.join(", ")
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
        if opts.destroy {
            let what = if clusters.is_empty() {
                "every cluster of this fleet".to_string()
            } else {
                format!("the clusters matching {}", clusters.join(", "))
            };
            eprint!("\nDestroy {what}? This cannot be undone. Only `yes` is accepted: ");
        } else {
            eprint!("\nApply these changes? Only `yes` is accepted: ");
        }
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() != "yes" {
            eprintln!("{} cancelled; nothing was changed.", if opts.destroy { "Destroy" } else { "Apply" });
            return exit::ERROR;
        }
    }
    let quiet = Style { quiet: true, ..style };
    // The re-plan under the locks: what is applied is what was shown, or
    // nothing (another apply may have run while this one waited), less the
    // changes the rollout holds back, judged by the management cluster's
    // dry run.
    let replan = || {
        make_scoped(&config, flags, clusters, quiet, Freshness::Latest, opts.destroy)
            .map(|p| rollout::restrict(p, &held))
            .and_then(|p| judge(p, quiet, opts.force_conflicts))
    };
    let mut locks = if following {
        let Some(locks) = Locks::take(&planned, drive_options(opts, opts.timeout), style) else { return interrupted() };
        Some(locks)
    } else {
        None
    };
    let applied = match &mut locks {
        Some(locks) => drive_locked(locks, &planned, &replan, drive_options(opts, opts.timeout), style),
        None => drive(&planned, &replan, drive_options(opts, opts.timeout), style),
    };
    let Some(applied) = applied else {
        let code = interrupted();
        if let Some(l) = locks {
            l.release();
        }
        return code;
    };
    let followed = locks.is_some() && rollout_run.is_some();
    // Following a rollout, the total of every pass is said once, at its end.
    if !style.quiet && !followed {
        // The shown plan's counts: the re-plan under the locks differs from
        // it at most by the Namespaces that taking the locks created.
        if several {
            for p in &planned.parts {
                output::say(&format!("{}: {}", p.plan.target, done_line(&p.plan.summary, opts.destroy)));
            }
        }
        output::say(&done_line(&planned.view().summary, opts.destroy));
    }
    match (locks, rollout_run) {
        (Some(locks), Some(run)) => {
            let first = planned.view().summary;
            let end = follow(locks, &applied, run, &held_changes, first, opts, style);
            end.finish(&applied, style)
        }
        (locks, run) => {
            if let Some(l) = locks {
                l.release();
            }
            after_pass(&applied, run, opts, style)
        }
    }
}

/// `Apply complete! …`, or for `destroy`, `Destroy complete! N destroyed.`
fn done_line(summary: &crate::plan::Summary, destroy: bool) -> String {
    if destroy { format!("Destroy complete! {} destroyed.", summary.destroy) } else { summary.applied_line() }
}

/// After the only apply pass: the rollout's standing (exit 1 if it
/// halted); with `--wait` and no rollout to follow, wait for readiness.
fn after_pass(applied: &FleetPlanned, run: Option<rollout::Run>, opts: &Options, style: Style) -> u8 {
    if let Some(run) = run {
        return rollout::finish(Some(&run.standing), exit::OK, style);
    }
    if opts.wait { wait_all(applied, opts.timeout, style) } else { exit::OK }
}

fn drive_options(opts: &Options, wait_timeout: Duration) -> DriveOptions {
    DriveOptions {
        force_conflicts: opts.force_conflicts,
        lock_timeout: opts.lock_timeout,
        parallelism: opts.parallelism,
        wait_timeout,
    }
}

/// `apply --wait` with a rollout under way, after its first pass (`base`,
/// what it applied): follow the watches and make each pass the rollout
/// allows, under the locks already held, until nothing is left to start
/// (the locks are released here, before the watches are joined; the
/// caller then waits for readiness). The later
/// passes make the changes the first plan showed and held back (`held`), as
/// it showed them: nothing is compiled or listed again, and an edit to the
/// configuration meanwhile is not applied unseen.
fn follow(
    locks: Locks<'_>,
    base: &FleetPlanned,
    run: rollout::Run,
    held: &[Vec<crate::plan::Change>],
    first: Summary,
    opts: &Options,
    style: Style,
) -> FollowEnd {
    let mut total = first;
    let end = follow_passes(locks, base, run, held, &mut total, opts, style);
    if !style.quiet {
        let line = total.applied_line();
        match end {
            FollowEnd::Ready(_) | FollowEnd::Code(exit::OK) => output::say(&line),
            // Stopped early: what the earlier passes wrote stays written.
            FollowEnd::Code(_) => {
                output::say(&line.replacen("Apply complete!", "Applied before the rollout stopped:", 1))
            }
        }
    }
    end
}

/// The passes of [`follow`]; what each wrote is added to `total`.
fn follow_passes(
    mut locks: Locks<'_>,
    base: &FleetPlanned,
    mut run: rollout::Run,
    held: &[Vec<crate::plan::Change>],
    total: &mut Summary,
    opts: &Options,
    style: Style,
) -> FollowEnd {
    // --timeout counts from the end of the first pass, as without a rollout.
    let deadline = std::time::Instant::now() + opts.timeout;
    let remaining = || deadline.saturating_duration_since(std::time::Instant::now());
    if !style.quiet {
        output::say(&run.standing.summary());
    }
    let quiet = Style { quiet: true, ..style };
    rollout::watching(base, deadline, |watches| {
        let mut passes = || loop {
            let now = match watches.next(&mut run, &opts.rollout, deadline, &mut locks, style) {
                Err(e) => {
                    eprintln!("error: {e}");
                    return FollowEnd::Code(exit::ERROR);
                }
                Ok(rollout::Followed::Step(now)) => now,
                Ok(rollout::Followed::Halted(s)) => return FollowEnd::Code(rollout::finish(Some(&s), exit::OK, style)),
                Ok(rollout::Followed::Interrupted(stop)) => {
                    eprintln!("interrupted by {}: no further step of the rollout was started", stop.name());
                    eprintln!("  help: run apply again; it continues from the live state");
                    return FollowEnd::Code(stop.exit_code());
                }
                Ok(rollout::Followed::TimedOut(s)) => {
                    eprintln!(
                        "error[hcpc::apply::wait]: the rollout did not finish within --timeout ({}s): {}",
                        opts.timeout.as_secs(),
                        s.summary()
                    );
                    return FollowEnd::Code(exit::ERROR);
                }
                Ok(rollout::Followed::Done(s)) => {
                    if s.is_active()
                        && let Some(until) = &opts.rollout.until
                    {
                        output::say(&s.summary());
                        output::say(&format!(
                            "rollout: stopped after wave {until}; run apply without --until-wave (or with a later wave) to go on"
                        ));
                        return FollowEnd::Code(exit::OK);
                    }
                    return FollowEnd::Ready(remaining());
                }
            };
            // The next pass: what the standing releases, judged by the
            // management cluster's dry run, then written.
            let released = rollout::released(&run, &now);
            run.standing = now;
            let pass = rollout::step_plan(base, held, &released, watches.live());
            if !pass.has_changes() {
                continue;
            }
            // A cluster's step of several writes (its NodePools) is judged
            // before any is made; a single write (a control plane) cannot
            // be left half-done and is judged by being made.
            let several = rollout::steps_of_several_writes(&pass);
            if several.has_changes() && judge(several, quiet, opts.force_conflicts).is_none() {
                eprintln!(
                    "error[{}]: the rollout stopped: the management cluster refused a step, and nothing of the steps due now was written (the earlier ones were)",
                    crate::diagnostic::Code::RolloutHalted.as_str()
                );
                eprintln!("  help: fix the cause and run apply again; it continues from the live state");
                return FollowEnd::Code(exit::ERROR);
            }
            let replan = || Some(pass.clone());
            let Some(written) = drive_locked(&mut locks, &pass, &replan, drive_options(opts, remaining()), style)
            else {
                return FollowEnd::Code(crate::interrupt::requested().map_or(exit::ERROR, |stop| stop.exit_code()));
            };
            add(total, &written.view().summary);
            watches.expect(&pass);
        };
        let end = passes();
        // Released before the watches are joined: a LIST in flight there
        // (up to --request-timeout) must not hold the Lease, nor may a
        // second signal meanwhile end the process with it held.
        locks.release();
        end
    })
}

/// Adds what a pass wrote to the total of the passes before it.
fn add(total: &mut Summary, pass: &Summary) {
    total.add += pass.add;
    total.change += pass.change;
    total.replace += pass.replace;
    total.destroy += pass.destroy;
}

/// How following a rollout ended.
enum FollowEnd {
    /// Apply exits with this code.
    Code(u8),
    /// Nothing is left to start: wait (within what is left of `--timeout`)
    /// for every HostedCluster and NodePool to be ready, the locks released.
    Ready(Duration),
}

impl FollowEnd {
    fn finish(self, applied: &FleetPlanned, style: Style) -> u8 {
        match self {
            FollowEnd::Code(code) => code,
            FollowEnd::Ready(left) => wait_all(applied, left, style),
        }
    }
}

/// `--wait` on every kube target, one after the other; the worst exit code.
fn wait_all(planned: &FleetPlanned, timeout: Duration, style: Style) -> u8 {
    let mut code = exit::OK;
    for p in &planned.parts {
        if let Opened::Kube(k) = &p.target {
            code = code.max(super::wait::run(k, p, timeout, style));
        }
    }
    code
}

/// A saved plan, recognised by its content whatever its name: a JSON
/// object (a configuration is KDL, which never starts with `{`). `None`
/// for a configuration.
fn load_saved(path: &Path) -> Option<Result<SavedPlan, String>> {
    if !path.is_file() {
        return None;
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return Some(Err(format!("cannot read {}: {e}", path.display()))),
    };
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let not_a_plan = |why: String| {
        format!(
            "{} is JSON but not a plan saved by `hcpc plan --out`: {why}\n  help: apply a configuration (.kdl files) or a saved plan",
            path.display()
        )
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return Some(Err(not_a_plan(e.to_string()))),
    };
    let version = value.get("format_version").and_then(Value::as_str).unwrap_or("(none)");
    if version != crate::plan::model::FLEET_FORMAT_VERSION {
        return Some(Err(not_a_plan(format!(
            "its format is version {version}, this hcpc reads version {}",
            crate::plan::model::FLEET_FORMAT_VERSION
        ))));
    }
    let saved: SavedPlan = match serde_json::from_value(value) {
        Ok(s) => s,
        Err(e) => return Some(Err(not_a_plan(e.to_string()))),
    };
    Some(Ok(saved))
}

/// Why a saved plan may not be applied: a target it records that the
/// fleet no longer has, or that it lacks, or a difference on any target.
fn fleet_differences(saved: &SavedPlan, fresh: &FleetPlanned) -> Vec<String> {
    let recorded: Vec<&str> = saved.targets.iter().map(|t| t.plan.target.as_str()).collect();
    let now: Vec<&str> = fresh.parts.iter().map(|p| p.plan.target.as_str()).collect();
    if recorded != now {
        return match (recorded.as_slice(), now.as_slice()) {
            ([one], [other]) => vec![format!("the plan was made for {one}, not {other}")],
            _ => vec![format!("the plan was made for targets {}, not {}", recorded.join(", "), now.join(", "))],
        };
    }
    let Some(key) = super::plan::DigestKey::from_hex(&saved.digest_key) else {
        return vec!["its digest key is not 32 bytes of hex (edited by hand?)".to_string()];
    };
    let several = now.len() > 1;
    saved
        .targets
        .iter()
        .zip(&fresh.parts)
        .flat_map(|(s, f)| {
            differences(s, f, &key)
                .into_iter()
                .map(move |d| if several { format!("{}: {d}", f.plan.target) } else { d })
        })
        .collect()
}

/// Why a saved plan may not be applied: anything it records that a fresh
/// plan of the same configuration does not say. Inputs, target and live
/// versions catch what changed since; the desired objects, the changes and
/// the summary catch a plan edited by hand (or made by another hcpc).
fn differences(saved: &SavedTarget, fresh: &Planned, key: &super::plan::DigestKey) -> Vec<String> {
    let mut out = Vec::new();
    // Digests compared as saved: keyed with the plan's own key.
    let fresh_plan = key.seal(&fresh.plan);
    if saved.plan.input_digest != fresh_plan.input_digest {
        out.push("the configuration changed since the plan was made".to_string());
    }
    if saved.secrets_digest != key.mac(&fresh.compiled.secrets_digest) {
        out.push("a secret the configuration reads changed since the plan was made".to_string());
    }
    if saved.plan.target != fresh_plan.target {
        out.push(format!("the plan was made for {}, not {}", saved.plan.target, fresh_plan.target));
    }
    for id in stale_objects(&saved.plan.changes, &fresh_plan.changes) {
        out.push(format!("{id} changed on the target since the plan was made"));
    }
    if !out.is_empty() {
        return out;
    }
    let now: Vec<Value> = fresh.compiled.objects.iter().map(|o| key.digested(o)).collect();
    if now != saved.desired {
        out.push(
            "its desired objects are not what the configuration renders (edited by hand, or made by another hcpc version)"
                .to_string(),
        );
    }
    for c in &fresh_plan.changes {
        match saved.plan.changes.iter().find(|s| s.id == c.id) {
            Some(s) if s == c => {}
            Some(_) => out.push(format!("its recorded change to {} is not what a fresh plan shows", c.id)),
            None => out.push(format!("it records nothing for {}, which a fresh plan includes", c.id)),
        }
    }
    for s in saved.plan.changes.iter().filter(|s| !fresh_plan.changes.iter().any(|c| c.id == s.id)) {
        out.push(format!("it records a change to {}, which a fresh plan does not have", s.id));
    }
    if saved.plan.summary != fresh_plan.summary {
        out.push("its summary is not what a fresh plan counts".to_string());
    }
    if out.is_empty() && saved.plan != fresh_plan {
        out.push("it is not what a fresh plan of the same configuration says".to_string());
    }
    out
}

/// Objects whose live version is not the one the saved plan was made against.
fn stale_objects(saved: &[Change], now: &[Change]) -> Vec<String> {
    let mut out = Vec::new();
    for s in saved {
        let current = now.iter().find(|c| c.id == s.id).and_then(|c| c.live_version.clone());
        if current != s.live_version {
            out.push(s.id.to_string());
        }
    }
    out
}
