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
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents.as_bytes())?;
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
