//! Choosing the target: `--target` over the configuration's `target` over
//! the default `dir "rendered/"` beside the first file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ir::{Fleet, Target};
use crate::live::LiveState;
use crate::live::dir::DirTarget;
use crate::live::kube::KubeTarget;
use crate::source::SourceMap;

/// What the command line says about the target.
#[derive(Debug, Clone)]
pub struct TargetFlags {
    /// `kube`, `kube:CONTEXT` or `dir:PATH`, over the configuration's `target`.
    pub target: Option<String>,
    /// The deadline of one Kubernetes API request, its retries included.
    pub request_timeout: Duration,
}

impl Default for TargetFlags {
    fn default() -> TargetFlags {
        TargetFlags { target: None, request_timeout: crate::live::retry::DEFAULT_REQUEST_TIMEOUT }
    }
}

pub enum Chosen {
    Dir(DirTarget),
    Kube { context: Option<String>, request_timeout: Duration },
}

/// A target ready to use: the directory, or a connected client.
pub enum Opened {
    Dir(DirTarget),
    Kube(Box<KubeTarget>),
}

impl Opened {
    pub fn open(chosen: Chosen) -> Result<Opened, String> {
        match chosen {
            Chosen::Dir(d) => Ok(Opened::Dir(d)),
            Chosen::Kube { context, request_timeout } => {
                KubeTarget::connect(context.as_deref(), request_timeout).map(|k| Opened::Kube(Box::new(k)))
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

pub fn choose(flags: &TargetFlags, fleet: &Fleet, sources: &SourceMap) -> Result<Chosen, String> {
    let request_timeout = flags.request_timeout;
    if let Some(f) = flags.target.as_deref() {
        return match f.split_once(':') {
            None if f == "kube" => Ok(Chosen::Kube { context: None, request_timeout }),
            Some(("kube", ctx)) => Ok(Chosen::Kube { context: Some(ctx.to_string()), request_timeout }),
            Some(("dir", path)) if !path.is_empty() => Ok(Chosen::Dir(DirTarget { root: PathBuf::from(path) })),
            _ => Err(format!("--target `{f}` is not `kube`, `kube:CONTEXT` or `dir:PATH`")),
        };
    }
    match fleet.target.as_ref().map(|t| &t.value) {
        Some(Target::Kube { context }) => Ok(Chosen::Kube { context: context.clone(), request_timeout }),
        Some(Target::Dir { path }) => Ok(Chosen::Dir(DirTarget { root: path.clone() })),
        None => {
            let dir = sources
                .iter()
                .next()
                .map(|(_, f)| f.dir().to_path_buf())
                .unwrap_or_else(|| Path::new(".").to_path_buf());
            Ok(Chosen::Dir(DirTarget { root: dir.join("rendered") }))
        }
    }
}
