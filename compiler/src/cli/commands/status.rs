//! `hcpc status`: the fleet at a glance. The plan (no dry run) says which
//! clusters differ from the configuration; one LIST of HostedClusters and
//! one of NodePools per target, status included, say how they are; the
//! rollout standing says where an upgrade stands. With `--watch`, one
//! WATCH per kind per target re-renders the view as the operator writes.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::plan::{FleetPlanned, make_limited};
use crate::cli::args::StatusFormat;
use crate::cli::exit;
use crate::cli::printer::Style;
use crate::cli::rollout::{LiveStatus, RolloutFlags, read_from};
use crate::cli::target::{Opened, TargetFlags};
use crate::live::kube::{Freshness, Seen};
use crate::object::Kind;
use crate::render::applyset_id;
use crate::status::{Fleet, KINDS, TargetInput, build};
use hcpc_schema::labels;

/// What the command line asks for.
pub struct Options<'a> {
    pub clusters: &'a [String],
    pub format: StatusFormat,
    pub watch: bool,
    pub detailed_exitcode: bool,
}

pub fn run(path: &Path, flags: &TargetFlags, opts: &Options<'_>, style: Style) -> u8 {
    if opts.watch && opts.format == StatusFormat::Html {
        eprintln!(
            "error: --watch does not apply to --format html: the page is one snapshot\n  help: run `hcpc status --format html` again to refresh it, or watch with --format text"
        );
        return exit::ERROR;
    }
    // The configuration's warnings belong to `check` and `plan`; here
    // they would push the fleet off the first screen (and repeat on each
    // re-plan of `--watch`). Errors are always shown; `-v` shows all.
    let style = Style { quiet: style.quiet || !style.verbose, ..style };
    let Some(planned) = make_limited(path, flags, opts.clusters, style, Freshness::Cached) else {
        return exit::ERROR;
    };
    if opts.watch {
        return watch(path, flags, opts, style, planned);
    }
    let live = match read(&planned) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    let fleet = match status(&planned, &live) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    let code = crate::cli::output::print(&render(&fleet, opts.format, style.verbose, false));
    if code != exit::OK {
        return code;
    }
    if opts.detailed_exitcode && fleet.needs_attention() { exit::CHANGES } else { exit::OK }
}

/// The fleet's label on one target's objects.
fn selector(planned: &FleetPlanned, i: usize) -> Option<String> {
    let fleet = &planned.parts[i].compiled.resolved.as_ref()?.fleet;
    Some(format!("{}={}", labels::APPLYSET_PART_OF, applyset_id(fleet)))
}

fn key(kind: Kind, o: &Value) -> (Kind, String, String) {
    let s = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    (kind, s("/metadata/namespace"), s("/metadata/name"))
}

/// One LIST of each kind per management cluster, status included; a
/// directory target's objects (no status) from the plan's read.
fn read(planned: &FleetPlanned) -> Result<Vec<LiveStatus>, String> {
    let mut out = read_unwatched(planned)?;
    for (i, part) in planned.parts.iter().enumerate() {
        let (Opened::Kube(k), Some(selector)) = (&part.target, selector(planned, i)) else { continue };
        for kind in KINDS {
            let items = k.list_kind(kind, Some(&selector)).map_err(|e| {
                format!("{}: cannot read {}: {}", part.plan.target, kind.plural(), crate::live::kube::describe(&e))
            })?;
            for o in items {
                out[i].insert(key(kind, &o), o);
            }
        }
    }
    Ok(out)
}

/// The statuses of the targets no watch follows (directories); the
/// watches fill in the others.
fn read_unwatched(planned: &FleetPlanned) -> Result<Vec<LiveStatus>, String> {
    let mut out = Vec::new();
    for part in &planned.parts {
        let mut live = LiveStatus::new();
        if let Opened::Dir(_) = &part.target {
            for l in part.live.iter().filter(|l| KINDS.contains(&l.id.kind)) {
                live.insert((l.id.kind, l.id.namespace.clone(), l.id.name.clone()), l.body.clone());
            }
        }
        out.push(live);
    }
    Ok(out)
}

/// The status of the planned fleet from the statuses read.
fn status(planned: &FleetPlanned, live: &[LiveStatus]) -> Result<Fleet, String> {
    let standing = read_from(planned, live, &RolloutFlags::for_plan())?.standing;
    let empty = LiveStatus::new();
    let targets: Vec<TargetInput<'_>> = planned
        .parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let live = live.get(i).unwrap_or(&empty);
            let of = |kind: Kind| live.iter().filter(move |((k, _, _), _)| *k == kind).map(|(_, v)| v).collect();
            TargetInput {
                target: &part.plan.target,
                changes: &part.plan.changes,
                declared: part
                    .compiled
                    .resolved
                    .iter()
                    .flat_map(|r| &r.fleet.clusters)
                    .map(|c| (c.namespace.value.clone(), c.name.value.clone()))
                    .collect(),
                hosted_clusters: of(Kind::HostedCluster),
                node_pools: of(Kind::NodePool),
            }
        })
        .collect();
    let limited = planned.parts.first().map(|p| p.plan.limited_to.as_slice()).unwrap_or_default();
    let only: Option<BTreeSet<String>> = (!limited.is_empty()).then(|| limited.iter().cloned().collect());
    let now = k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    Ok(build(&targets, Some(&standing), only.as_ref(), &now))
}

/// The view in `format`; `stream`: one JSON document per line (`--watch`).
fn render(fleet: &Fleet, format: StatusFormat, verbose: bool, stream: bool) -> String {
    match format {
        StatusFormat::Text => crate::status::text::text(fleet, verbose),
        StatusFormat::Markdown => crate::status::text::markdown(fleet, verbose),
        StatusFormat::Html => crate::status::html::page(fleet),
        StatusFormat::Json if stream => serde_json::to_string(fleet).unwrap_or_default() + "\n",
        StatusFormat::Json => serde_json::to_string_pretty(fleet).unwrap_or_default() + "\n",
    }
}

/// How long events that follow one another are gathered before the view
/// is rendered again.
const COALESCE: Duration = Duration::from_millis(300);

/// `--watch`: renders the view after each batch of watch events, until
/// interrupted. A change of spec (a new generation, an object added or
/// deleted) plans again, so the sync column follows applies too.
fn watch(path: &Path, flags: &TargetFlags, opts: &Options<'_>, style: Style, mut planned: FleetPlanned) -> u8 {
    let clear = opts.format == StatusFormat::Text && std::io::stdout().is_terminal();
    let stop = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Seen)>();
    let forever = Instant::now() + Duration::from_secs(10 * 365 * 24 * 3600);
    // The watches LIST before they WATCH: their first lists are the read.
    let mut live: Vec<LiveStatus> = match read_unwatched(&planned) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    let watched = planned.parts.iter().filter(|p| matches!(p.target, Opened::Kube(_))).count();
    std::thread::scope(|scope| {
        for (i, part) in planned.parts.iter().enumerate() {
            let (Opened::Kube(k), Some(selector)) = (&part.target, selector(&planned, i)) else { continue };
            let (tx, stop, k) = (tx.clone(), &stop, k.clone());
            scope.spawn(move || {
                // A watch that gives up says why with `Seen::Lost`.
                let _ = k.follow(&KINDS, &selector, forever, stop, &mut |seen| {
                    let _ = tx.send((i, seen));
                });
            });
        }
        drop(tx);
        let mut code = exit::OK;
        let mut listed: BTreeSet<(usize, Kind)> = BTreeSet::new();
        let mut shown = false;
        loop {
            let mut replan = false;
            if watched > 0 {
                // Watches end only when they cannot go on (said above).
                let Ok(event) = rx.recv() else {
                    code = exit::ERROR;
                    break;
                };
                let mut batch = vec![event];
                let until = Instant::now() + COALESCE;
                while let Some(left) = until.checked_duration_since(Instant::now()) {
                    match rx.recv_timeout(left) {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
                let mut lost = false;
                for (i, seen) in batch {
                    let target = &planned.parts[i].plan.target;
                    match &seen {
                        Seen::Listed(kind, _) => {
                            listed.insert((i, *kind));
                        }
                        Seen::Failing(failure) => {
                            eprintln!("warning: {target}: {failure}; retrying, the view may be stale meanwhile");
                        }
                        Seen::Resumed => eprintln!("{target}: the watch works again"),
                        Seen::Lost(failure) => {
                            eprintln!("error: {target}: cannot watch the fleet: {failure}");
                            lost = true;
                        }
                        Seen::Changed(..) | Seen::Deleted(..) => {}
                    }
                    replan |= apply_seen(&mut live[i], seen);
                }
                if lost {
                    code = exit::ERROR;
                    break;
                }
                // The first view once every watch has listed.
                if listed.len() < watched * KINDS.len() {
                    continue;
                }
            }
            if replan
                && shown
                && let Some(p) = make_limited(path, flags, opts.clusters, style, Freshness::Cached)
            {
                planned = p;
            }
            shown = true;
            let fleet = match status(&planned, &live) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: {e}");
                    code = exit::ERROR;
                    break;
                }
            };
            let mut text = render(&fleet, opts.format, style.verbose, true);
            if clear {
                text = format!("\x1b[H\x1b[2J{text}");
            } else if opts.format != StatusFormat::Json {
                text = format!("--- {}\n{text}", fleet.observed);
            }
            if crate::cli::output::print(&text) != exit::OK {
                code = exit::ERROR;
                break;
            }
            if watched == 0 {
                break;
            }
        }
        stop.store(true, Ordering::SeqCst);
        code
    })
}

/// Records what a watch saw; whether a spec changed (the plan is stale).
fn apply_seen(live: &mut LiveStatus, seen: Seen) -> bool {
    let generation = |o: &Value| o.pointer("/metadata/generation").and_then(Value::as_i64);
    match seen {
        Seen::Listed(kind, items) => {
            let before: BTreeSet<_> = live.keys().filter(|(k, _, _)| *k == kind).cloned().collect();
            let mut changed = false;
            live.retain(|(k, _, _), _| *k != kind);
            for o in items {
                let key = key(kind, &o);
                changed |= !before.contains(&key);
                live.insert(key, o);
            }
            changed || before.len() != live.keys().filter(|(k, _, _)| *k == kind).count()
        }
        Seen::Changed(kind, o) => {
            let key = key(kind, &o);
            let spec_changed = live.get(&key).is_none_or(|old| generation(old) != generation(&o));
            live.insert(key, o);
            spec_changed
        }
        Seen::Deleted(kind, o) => live.remove(&key(kind, &o)).is_some(),
        Seen::Failing(_) | Seen::Resumed | Seen::Lost(_) => false,
    }
}
