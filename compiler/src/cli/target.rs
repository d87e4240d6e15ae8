//! Choosing the targets: each cluster's own `target` (or that of
//! `defaults`), else the fleet's: `--target` over the top-level `target`
//! over the default `dir "rendered/"` beside the first file. A fleet whose
//! clusters name several targets is split into one fleet per target, in
//! target order; every later step (discovery, resolution, live reads,
//! plans, locks, applies) runs per target in that order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ir::{Fleet, Target};
use crate::live::LiveState;
use crate::live::dir::DirTarget;
use crate::live::kube::KubeTarget;
use crate::source::normalize;
use crate::source::{FileId, SourceMap, Span, Spanned};

/// The start of the first file: where a target given by `--target` is "written".
const NOWHERE: Span = Span { file: FileId(0), offset: 0, len: 0 };

/// What the command line says about the target.
#[derive(Debug, Clone)]
pub struct TargetFlags {
    /// `kube`, `kube:CONTEXT` or `dir:PATH`, over the configuration's
    /// top-level `target` (not over a cluster's own).
    pub target: Option<String>,
    /// The deadline of one Kubernetes API request, its retries included.
    pub request_timeout: Duration,
}

impl Default for TargetFlags {
    fn default() -> TargetFlags {
        TargetFlags { target: None, request_timeout: crate::live::retry::DEFAULT_REQUEST_TIMEOUT }
    }
}

/// A target ready to use: the directory, or a connected client (shared:
/// the passes of a rollout write through the client the first plan opened).
#[derive(Clone)]
pub enum Opened {
    Dir(DirTarget),
    Kube(std::sync::Arc<KubeTarget>),
}

impl Opened {
    /// Opens a target; connecting does not yet talk to the server.
    pub fn open(target: &Target, request_timeout: Duration) -> Result<Opened, String> {
        match target {
            Target::Dir { path } => Ok(Opened::Dir(DirTarget { root: path.clone() })),
            Target::Kube { context } => {
                KubeTarget::connect(context.as_deref(), request_timeout).map(|k| Opened::Kube(std::sync::Arc::new(k)))
            }
        }
    }

    pub fn live(&self) -> &dyn LiveState {
        match self {
            Opened::Dir(d) => d,
            Opened::Kube(k) => k.as_ref(),
        }
    }

    /// The target as the apply driver writes to it.
    pub fn target(&self) -> &dyn crate::live::Target {
        match self {
            Opened::Dir(d) => d,
            Opened::Kube(k) => k.as_ref(),
        }
    }
}

/// How a target is written before it is opened: `kube:CONTEXT` or
/// `dir:PATH`, for messages about a target that cannot be reached.
pub fn spelled(target: &Target) -> String {
    match target {
        Target::Kube { context: Some(c) } => format!("kube:{c}"),
        Target::Kube { context: None } => "kube (the current context)".to_string(),
        Target::Dir { path } => format!("dir:{}", normalize(path).display()),
    }
}

/// `--target` read as a target.
fn from_flag(f: &str) -> Result<Target, String> {
    match f.split_once(':') {
        None if f == "kube" => Ok(Target::Kube { context: None }),
        Some(("kube", ctx)) => Ok(Target::Kube { context: Some(ctx.to_string()) }),
        Some(("dir", path)) if !path.is_empty() => Ok(Target::Dir { path: PathBuf::from(path) }),
        _ => Err(format!("--target `{f}` is not `kube`, `kube:CONTEXT` or `dir:PATH`")),
    }
}

/// The fleet's own target: `--target`, else the top-level `target`, else
/// `rendered/` beside the first file. The flag says whether it was chosen
/// (by flag or configuration) rather than defaulted.
pub fn choose(flags: &TargetFlags, fleet: &Fleet, sources: &SourceMap) -> Result<(Target, bool), String> {
    if let Some(f) = flags.target.as_deref() {
        return from_flag(f).map(|t| (t.identity(), true));
    }
    match fleet.target.as_ref() {
        Some(t) => Ok((t.value.identity(), true)),
        None => {
            let dir = sources
                .iter()
                .next()
                .map(|(_, f)| f.dir().to_path_buf())
                .unwrap_or_else(|| Path::new(".").to_path_buf());
            Ok((Target::Dir { path: normalize(&dir.join("rendered")) }, false))
        }
    }
}

/// The clusters of one target, as a fleet of their own (same name,
/// namespace and declared inventory), and where the target was named.
pub struct TargetFleet {
    pub target: Target,
    pub fleet: Fleet,
    /// The `target` node that names it; `None` when defaulted or given by `--target`.
    pub at: Option<Span>,
}

/// Splits the fleet by target, in target order. The fleet's own target is
/// always included when it was chosen (so removing its last cluster still
/// prunes it), and otherwise only when a cluster uses it.
pub fn split(flags: &TargetFlags, fleet: Fleet, sources: &SourceMap) -> Result<Vec<TargetFleet>, String> {
    let (default, chosen) = choose(flags, &fleet, sources)?;
    let default_at = if flags.target.is_some() { None } else { fleet.target.as_ref().map(|t| t.span) };
    let mut by_target: BTreeMap<Target, (Vec<crate::ir::Cluster>, Option<Span>)> = BTreeMap::new();
    if chosen {
        by_target.insert(default.clone(), (Vec::new(), default_at));
    }
    let Fleet { name, named, namespace, target, inventory, clusters, rollout, allow_paths_outside } = fleet;
    for c in clusters {
        let (t, at) = match &c.target {
            Some(own) => (own.value.identity(), Some(own.span)),
            None => (default.clone(), default_at),
        };
        let entry = by_target.entry(t).or_insert((Vec::new(), at));
        entry.1 = entry.1.or(at);
        entry.0.push(c);
    }
    Ok(by_target
        .into_iter()
        .map(|(t, (clusters, at))| TargetFleet {
            fleet: Fleet {
                name: name.clone(),
                named,
                namespace: namespace.clone(),
                // Every cluster of the part is on this target.
                target: Some(Spanned::new(t.clone(), at.or(target.as_ref().map(|t| t.span)).unwrap_or(NOWHERE))),
                inventory: inventory.clone(),
                clusters,
                rollout: rollout.clone(),
                allow_paths_outside,
            },
            target: t,
            at,
        })
        .collect())
}
