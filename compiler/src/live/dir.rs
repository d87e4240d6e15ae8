//! The `dir` target: one YAML file per object.
//!
//! Path scheme (stable, documented in docs/targets.md):
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
///
/// The temporary file beside it has a random name and is created
/// exclusively without following symlinks, and its mode is set on the open
/// descriptor: another local user who pre-creates the name, or plants a
/// symlink there, makes the write fail instead of receiving the contents.
pub fn write_file(path: &Path, contents: &[u8], private: bool) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).map_err(|e| std::io::Error::other(e.to_string()))?;
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".{file_name}.tmp-{suffix}"));
    let mode = if private { 0o600 } else { 0o644 };
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o600)
            .open(&tmp)?;
        // The umask only narrows the creation mode; the descriptor's mode is exact.
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        f.sync_all()
    })();
    match written {
        // A name taken by someone else is theirs: never remove it.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
        Ok(()) => std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        }),
    }
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::write_file;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// `kubeconfig -o FILE` over a file another user made open to all, and
    /// over a symlink to someone's file: a new private file replaces the
    /// name; neither the old file's mode nor the symlink's target is used.
    #[test]
    fn a_private_write_replaces_what_was_at_its_name_without_following_it() {
        let tmp = tempfile::tempdir().unwrap();
        let open = tmp.path().join("open.kubeconfig");
        std::fs::write(&open, "").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o666)).unwrap();
        write_file(&open, b"admin", true).unwrap();
        assert_eq!((mode(&open), std::fs::read(&open).unwrap()), (0o600, b"admin".to_vec()));

        let theirs = tmp.path().join("theirs");
        std::fs::write(&theirs, "theirs").unwrap();
        let link = tmp.path().join("link.kubeconfig");
        std::os::unix::fs::symlink(&theirs, &link).unwrap();
        write_file(&link, b"admin", true).unwrap();
        assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "theirs");
        assert!(!std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(mode(&link), 0o600);
        // No temporary file is left behind.
        let left: Vec<_> =
            std::fs::read_dir(tmp.path()).unwrap().filter_map(Result::ok).map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 3, "{left:?}");
    }
}
