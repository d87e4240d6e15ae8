//! The `dir` target: one YAML file per object.
//!
//! Path scheme (stable, documented in the README):
//! `DIR/<namespace>/<Kind>.<name>.yaml` for namespaced objects and
//! `DIR/_cluster/<Kind>.<name>.yaml` for cluster-scoped ones.
//! Every file is written atomically (temporary file, then rename), so a
//! crash never leaves a half-written object.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Lock, Target, WriteError, generate_key, host_name, when};
use crate::object::ObjectId;
use crate::render::{DesiredObject, yaml};

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
#[derive(Clone)]
pub struct DirTarget {
    pub root: PathBuf,
}

impl super::LiveState for DirTarget {
    fn describe(&self) -> String {
        format!("dir:{}", normalize(&self.root).display())
    }

    fn hosted_clusters(&self, namespace: &str) -> Result<Vec<Value>, String> {
        let folder = self.root.join(namespace);
        let Ok(entries) = std::fs::read_dir(&folder) else { return Ok(Vec::new()) };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("HostedCluster.")))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                crate::render::yaml::from_yaml(&text).map_err(|e| format!("{} is not valid YAML: {e}", p.display()))
            })
            .collect()
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

pub use crate::source::normalize;

impl Target for DirTarget {
    fn lock(
        &self,
        _fleet: &str,
        _namespace: &DesiredObject,
        timeout: Duration,
        say: &dyn Fn(&str),
    ) -> Result<Box<dyn Lock + Send + '_>, String> {
        Ok(Box::new(DirLock::acquire(&self.root, timeout, say)?))
    }

    fn record_applyset(&self, _parent: &DesiredObject) -> Result<(), String> {
        Ok(())
    }

    fn apply_one(&self, o: &DesiredObject, _force_conflicts: bool) -> Result<(), WriteError> {
        let file = self.root.join(relative_path(&o.id));
        let mut body = o.body().clone();
        if o.create_only {
            // Never rewrite an existing key: check again under the lock.
            if file.exists() {
                return Ok(());
            }
            body["data"] = serde_json::json!({ "key": generate_key()? });
        }
        write_file(&file, yaml::to_yaml(&body).as_bytes(), o.sensitive)
            .map_err(|e| format!("cannot write {}: {e}", file.display()).into())
    }

    fn delete_one(&self, id: &ObjectId) -> Result<(), WriteError> {
        let file = self.root.join(relative_path(id));
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("cannot remove {}: {e}", file.display()).into())
            }
            _ => Ok(()),
        }
    }

    fn wait_gone(&self, _id: &ObjectId, _timeout: std::time::Duration, _progress: &dyn Fn(&str)) -> Result<(), String> {
        Ok(())
    }
}

/// The directory's lock: the file `.hcpc.lock`, created exclusively and
/// naming its holder; removed at the end. A holder on this host that is no
/// longer running leaves a stale lock, which is taken over.
pub struct DirLock {
    path: PathBuf,
    held: bool,
}

impl DirLock {
    fn acquire(root: &Path, timeout: Duration, say: &dyn Fn(&str)) -> Result<DirLock, String> {
        std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        let path = root.join(".hcpc.lock");
        let me = format!("hcpc@{}/{}", host_name(), std::process::id());
        let start = Instant::now();
        let mut said = false;
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let _ = writeln!(f, "{me}");
                    return Ok(DirLock { path, held: true });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default().trim().to_string();
                    let since = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| k8s_openapi::jiff::Timestamp::try_from(t).ok())
                        .map(|t| format!(" since {}", when(t)))
                        .unwrap_or_default();
                    if holder_is_gone(&holder) {
                        // Only the process that made it could remove it; it is gone.
                        let _ = std::fs::remove_file(&path);
                        say(&format!(
                            "warning: took over the fleet lock {} from {holder}{since}, which is no longer running",
                            path.display()
                        ));
                        continue;
                    }
                    if start.elapsed() >= timeout || crate::interrupt::requested().is_some() {
                        return Err(format!(
                            "the fleet is locked by another apply ({holder}{since}, lock file {}); nothing was applied\n  help: wait for it, pass --lock-timeout 10m to wait, or run `hcpc unlock` if that apply is gone",
                            path.display()
                        ));
                    }
                    if !said {
                        say(&format!(
                            "waiting for the fleet lock {}, held by {holder}{since}; waiting up to {}s more",
                            path.display(),
                            timeout.saturating_sub(start.elapsed()).as_secs()
                        ));
                        said = true;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(format!("cannot create lock file {}: {e}", path.display())),
            }
        }
    }
}

/// The directory's lock file and its holder in words, if it is locked
/// (for `hcpc unlock`).
pub fn lock_holder(root: &Path) -> Option<(PathBuf, String)> {
    let path = root.join(".hcpc.lock");
    let holder = std::fs::read_to_string(&path).ok()?.trim().to_string();
    let since = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| k8s_openapi::jiff::Timestamp::try_from(t).ok())
        .map(|t| format!(" since {}", when(t)))
        .unwrap_or_default();
    let gone = if holder_is_gone(&holder) { ", which is no longer running" } else { "" };
    Some((path, format!("{holder}{since}{gone}")))
}

/// Whether a lock file names a process of this host that no longer runs.
fn holder_is_gone(holder: &str) -> bool {
    let Some((host, pid)) = holder.strip_prefix("hcpc@").and_then(|h| h.rsplit_once('/')) else { return false };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    host == host_name() && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
}

impl Lock for DirLock {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    fn release(&mut self) -> Result<(), String> {
        if !std::mem::replace(&mut self.held, false) {
            return Ok(());
        }
        std::fs::remove_file(&self.path)
            .map_err(|e| format!("could not remove the lock file {}: {e}", self.path.display()))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = self.release();
    }
}
