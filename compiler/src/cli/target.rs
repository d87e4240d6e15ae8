//! Choosing the target: `--target` over the configuration's `target` over
//! the default `dir "rendered/"` beside the first file.

use std::path::{Path, PathBuf};

use crate::ir::{Fleet, Target};
use crate::live::LiveState;
use crate::live::dir::DirTarget;
use crate::live::kube::KubeTarget;
use crate::source::SourceMap;

pub enum Chosen {
    Dir(DirTarget),
    Kube { context: Option<String> },
}

/// A target ready to use: the directory, or a connected client.
pub enum Opened {
    Dir(DirTarget),
    Kube(KubeTarget),
}

impl Opened {
    pub fn open(chosen: Chosen) -> Result<Opened, String> {
        match chosen {
            Chosen::Dir(d) => Ok(Opened::Dir(d)),
            Chosen::Kube { context } => KubeTarget::connect(context.as_deref()).map(Opened::Kube),
        }
    }

    pub fn live(&self) -> &dyn LiveState {
        match self {
            Opened::Dir(d) => d,
            Opened::Kube(k) => k,
        }
    }
}

pub fn choose(flag: Option<&str>, fleet: &Fleet, sources: &SourceMap) -> Result<Chosen, String> {
    if let Some(f) = flag {
        return match f.split_once(':') {
            None if f == "kube" => Ok(Chosen::Kube { context: None }),
            Some(("kube", ctx)) => Ok(Chosen::Kube { context: Some(ctx.to_string()) }),
            Some(("dir", path)) if !path.is_empty() => Ok(Chosen::Dir(DirTarget { root: PathBuf::from(path) })),
            _ => Err(format!("--target `{f}` is not `kube`, `kube:CONTEXT` or `dir:PATH`")),
        };
    }
    match fleet.target.as_ref().map(|t| &t.value) {
        Some(Target::Kube { context }) => Ok(Chosen::Kube { context: context.clone() }),
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
