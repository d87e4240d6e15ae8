//! The `dir` target: one YAML file per object.
//!
//! Path scheme (stable, documented in the README):
//! `DIR/<namespace>/<Kind>.<name>.yaml` for namespaced objects and
//! `DIR/_cluster/<Kind>.<name>.yaml` for cluster-scoped ones.
//! Every file is written atomically (temporary file, then rename), so a
//! crash never leaves a half-written object.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::object::ObjectId;

/// Where an object lives inside the directory.
pub fn relative_path(id: &ObjectId) -> PathBuf {
    let folder = if id.namespace.is_empty() { "_cluster" } else { id.namespace.as_str() };
    PathBuf::from(folder).join(format!("{}.{}.yaml", id.kind, id.name))
}

/// Writes one file atomically.
pub fn write_atomic(path: &Path, contents: &str) -> std::io::Result<()> {
    write_file(path, contents.as_bytes(), false)
}

/// Writes one file atomically; `private` files (Secrets, kubeconfigs) are
/// readable by their owner only (mode 0600).
pub fn write_file(path: &Path, contents: &[u8], private: bool) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(if private { 0o600 } else { 0o644 })
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Writes several files, each atomically.
pub fn write_all(files: &[(PathBuf, String)]) -> Result<(), String> {
    for (path, text) in files {
        write_atomic(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// A GitOps directory as live state.
pub struct DirTarget {
    pub root: PathBuf,
}

impl super::LiveState for DirTarget {
    fn describe(&self) -> String {
        format!("dir:{}", normalize(&self.root).display())
    }

    /// Reads every object file; a missing directory is an empty state.
    fn read(&self, _applyset: &str, _wanted: &[ObjectId]) -> Result<Vec<super::LiveObject>, String> {
        let mut out = Vec::new();
        let Ok(folders) = std::fs::read_dir(&self.root) else { return Ok(out) };
        let mut paths = Vec::new();
        for folder in folders.filter_map(Result::ok) {
            if !folder.path().is_dir() {
                continue;
            }
            let entries = std::fs::read_dir(folder.path())
                .map_err(|e| format!("cannot list {}: {e}", folder.path().display()))?;
            paths.extend(entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| {
                p.extension().is_some_and(|x| x == "yaml")
                    && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
            }));
        }
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let secret_file = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("Secret."));
            let body = crate::render::yaml::from_yaml(&text).map_err(|e| {
                // The parser quotes the offending line, which in a Secret is secret.
                if secret_file {
                    format!("{} is not valid YAML", path.display())
                } else {
                    format!("{} is not valid YAML: {e}", path.display())
                }
            })?;
            let kind = body.get("kind").and_then(|k| k.as_str()).and_then(crate::object::Kind::parse);
            let name = body.pointer("/metadata/name").and_then(|n| n.as_str());
            let (Some(kind), Some(name)) = (kind, name) else { continue };
            let ns = body.pointer("/metadata/namespace").and_then(|n| n.as_str()).unwrap_or("");
            let id = ObjectId::new(kind, ns, name);
            // Identity and place must agree: apply writes and deletes by
            // place, so a file elsewhere (or naming another directory) would
            // never converge, or would point outside the target.
            if self.root.join(relative_path(&id)) != path {
                return Err(format!(
                    "{} holds {id}, which belongs at {}; move or remove the file",
                    path.display(),
                    self.root.join(relative_path(&id)).display()
                ));
            }
            use sha2::Digest;
            let version = format!("sha256:{:x}", sha2::Sha256::digest(text.as_bytes()));
            out.push(super::LiveObject { id, body, version: Some(version) });
        }
        Ok(out)
    }
}

/// Removes `.` and `dir/..` components without touching the disk, so the
/// same directory is always described the same way.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if out.is_empty() { PathBuf::from(".") } else { out.iter().collect() }
}
