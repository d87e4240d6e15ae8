//! Finding the server binaries the way controller-runtime's envtest does:
//! `TEST_ASSET_KUBE_APISERVER` / `TEST_ASSET_ETCD`, then the directory in
//! `KUBEBUILDER_ASSETS` (what `setup-envtest use 1.36` prints), then
//! `../shared/envtest` beside the repository; etcd also on `PATH`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The two binaries a server needs.
#[derive(Debug, Clone)]
pub struct Assets {
    pub kube_apiserver: PathBuf,
    pub etcd: PathBuf,
}

impl Assets {
    /// Finds both binaries, or says what is missing and where it looked.
    pub fn find() -> Result<Assets, String> {
        let assets_dir = std::env::var_os("KUBEBUILDER_ASSETS").filter(|d| !d.is_empty()).map(PathBuf::from);
        let shared = super::repo().join("../shared/envtest");
        let shared = shared.canonicalize().unwrap_or(shared);
        let mut dirs: Vec<PathBuf> = assets_dir.into_iter().collect();
        dirs.push(shared);

        let kube_apiserver = explicit("TEST_ASSET_KUBE_APISERVER")
            .or_else(|| dirs.iter().map(|d| d.join("kube-apiserver")).find(|p| p.is_file()));
        let etcd = explicit("TEST_ASSET_ETCD")
            .or_else(|| dirs.iter().map(|d| d.join("etcd")).find(|p| p.is_file()))
            .or_else(|| on_path("etcd"));
        let looked = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
        match (kube_apiserver, etcd) {
            (Some(kube_apiserver), Some(etcd)) => Ok(Assets { kube_apiserver, etcd }),
            (None, _) => Err(format!(
                "kube-apiserver not found (looked in {looked}); run `setup-envtest use 1.36` and set KUBEBUILDER_ASSETS to the directory it prints"
            )),
            (_, None) => Err(format!(
                "etcd not found (looked in {looked} and on PATH); install it (Debian: `apt-get install etcd-server`) or set KUBEBUILDER_ASSETS"
            )),
        }
    }

    /// Some copies of the assets lose the run bit: such a binary is copied
    /// into `scratch` and made executable there.
    pub fn runnable(&self, scratch: &Path) -> std::io::Result<Assets> {
        Ok(Assets {
            kube_apiserver: executable(&self.kube_apiserver, scratch)?,
            etcd: executable(&self.etcd, scratch)?,
        })
    }
}

fn explicit(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from).filter(|p| p.is_file())
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

fn executable(binary: &Path, scratch: &Path) -> std::io::Result<PathBuf> {
    let mode = std::fs::metadata(binary)?.permissions().mode();
    if mode & 0o111 != 0 {
        return Ok(binary.to_path_buf());
    }
    let copy = scratch.join(binary.file_name().unwrap_or_else(|| "binary".as_ref()));
    std::fs::copy(binary, &copy)?;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))?;
    Ok(copy)
}
