//! Reading the configuration and everything it points at: the only IO
//! before rendering. Produces a [`Compiled`] fleet for every command.

use std::path::{Path, PathBuf};

use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::ir::{Fleet, InfraCredentials, SecretSource};
use crate::lower::{LowerInput, lower};
use crate::parse::parse;
use crate::render::{DesiredObject, SecretValues, render};
use crate::resolve::{ResolvedFleet, resolve};
use crate::source::{SourceMap, Span};

/// A configuration taken through parse, lower and resolve (and render, when
/// it had no errors).
pub struct Compiled {
    pub sources: SourceMap,
    pub diags: Diagnostics,
    pub resolved: Option<ResolvedFleet>,
    pub objects: Vec<DesiredObject>,
    /// Digest of every input byte (files and secret values): saved plans compare it.
    pub input_digest: String,
}

/// The `.kdl` files a path names: the file itself, or the `*.kdl` files
/// directly in a directory, in name order.
pub fn list_files(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Diagnostic::error(Code::Io, format!("cannot read {}: {e}", path.display()))
            .help("give a .kdl file or a directory of .kdl files")
    })?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Diagnostic::error(Code::Io, format!("cannot list {}: {e}", path.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "kdl") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Diagnostic::error(Code::Io, format!("no .kdl files in {}", path.display()))
            .help("hcpc reads the *.kdl files directly in the directory; pass a file or another directory"));
    }
    Ok(files)
}

pub fn read_sources(path: &Path) -> Result<SourceMap, Diagnostic> {
    let mut sources = SourceMap::default();
    for f in list_files(path)? {
        let bytes =
            std::fs::read(&f).map_err(|e| Diagnostic::error(Code::Io, format!("cannot read {}: {e}", f.display())))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Diagnostic::error(Code::Io, format!("{} is not UTF-8 text", f.display())).help("save the file as UTF-8")
        })?;
        sources.add(f, text);
    }
    Ok(sources)
}

pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from)
}

/// Runs the pipeline up to rendered objects.
pub fn compile(path: &Path) -> Compiled {
    let sources = match read_sources(path) {
        Ok(s) => s,
        Err(d) => {
            return Compiled {
                sources: SourceMap::default(),
                diags: d.into(),
                resolved: None,
                objects: Vec::new(),
                input_digest: String::new(),
            };
        }
    };
    compile_sources(sources)
}

pub fn compile_sources(sources: SourceMap) -> Compiled {
    let (fleet, diags) = front(&sources);
    back(sources, fleet, diags)
}

/// Parse and lower: enough to know the target, before resolution needs
/// the infrastructure inventory.
pub fn front(sources: &SourceMap) -> (Fleet, Diagnostics) {
    let (files, mut diags) = parse(sources);
    let home = home_dir();
    let (fleet, lower_diags) = lower(&LowerInput { sources, files: &files, home: home.as_deref() });
    diags.extend(lower_diags);
    // The syntax trees are no longer needed; freeing a large fleet's takes a while.
    crate::parallel::drop_aside(files, sources.iter().map(|(_, f)| f.text.len()).sum());
    (fleet, diags)
}

/// Resolve, read secrets and render.
pub fn back(sources: SourceMap, fleet: Fleet, mut diags: Diagnostics) -> Compiled {
    let hash_sources = || {
        let mut hasher = Sha256Hasher::default();
        for (_, f) in sources.iter() {
            hasher.add(f.path.display().to_string().as_bytes());
            hasher.add(f.text.as_bytes());
        }
        hasher
    };
    let size = sources.iter().map(|(_, f)| f.text.len()).sum();
    let (mut hasher, (resolved, resolve_diags)) = crate::parallel::join(size, hash_sources, || resolve(fleet));
    diags.extend(resolve_diags);
    let secrets = read_secrets(&resolved, &mut diags);
    for (k, v) in &secrets {
        hasher.add(format!("{k:?}").as_bytes());
        hasher.add(v);
    }
    let objects = if diags.has_errors() { Vec::new() } else { render(&resolved, &secrets) };
    Compiled { sources, diags, resolved: Some(resolved), objects, input_digest: hasher.finish() }
}

#[derive(Default)]
struct Sha256Hasher(sha2::Sha256);

impl Sha256Hasher {
    fn add(&mut self, bytes: &[u8]) {
        use sha2::Digest;
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }
    fn finish(self) -> String {
        use sha2::Digest;
        format!("sha256:{:x}", self.0.finalize())
    }
}

/// Reads every `file=` and `env=` secret source; a missing one is a
/// diagnostic pointing at the property that names it.
fn read_secrets(resolved: &ResolvedFleet, diags: &mut Diagnostics) -> SecretValues {
    let mut values = SecretValues::new();
    let mut wanted: Vec<(SecretSource, Span, &str)> = Vec::new();
    for c in &resolved.fleet.clusters {
        wanted.push((c.pull_secret.value.clone(), c.pull_secret.span, "pull secret"));
        if let Some(k) = &c.ssh_key {
            wanted.push((k.value.clone(), k.span, "SSH key"));
        }
        if let Some(InfraCredentials::KubeconfigFile(f)) = c.infra_cluster.as_ref().map(|i| &i.credentials) {
            wanted.push((SecretSource::File(f.value.clone()), f.span, "infrastructure kubeconfig"));
        }
    }
    for (source, span, what) in wanted {
        if values.contains_key(&source) {
            continue;
        }
        let read = match &source {
            SecretSource::File(p) => read_secret_file(p).map_err(|e| {
                Diagnostic::error(Code::SecretSource, format!("cannot read the {what} file {}: {e}", p.display()))
                    .label(span, "named here")
                    .help("paths are relative to the .kdl file that names them; `~/` is your home directory")
            }),
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(v.into_bytes()),
                _ => Err(Diagnostic::error(
                    Code::SecretSource,
                    format!("environment variable {var} ({what}) is not set"),
                )
                .label(span, "named here")
                .help(format!("export {var}=… before running hcpc, or use file=…"))),
            },
            SecretSource::Secret(_) => continue,
        };
        match read {
            Ok(bytes) if bytes.is_empty() => diags.push(
                Diagnostic::error(Code::SecretSource, format!("the {what} is empty"))
                    .label(span, "empty")
                    .help("point at a file or variable with content"),
            ),
            Ok(bytes) => {
                values.insert(source, bytes);
            }
            Err(d) => diags.push(d),
        }
    }
    values
}

/// The most a secret file may hold: the API server refuses larger Secrets.
const MAX_SECRET_BYTES: u64 = 1 << 20;

/// Reads a regular file of at most [`MAX_SECRET_BYTES`]; pipes, devices and
/// directories are refused, so a hostile path can neither hang nor exhaust memory.
fn read_secret_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_SECRET_BYTES {
        return Err(std::io::Error::other(format!("larger than {MAX_SECRET_BYTES} bytes")));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(MAX_SECRET_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(std::io::Error::other(format!("larger than {MAX_SECRET_BYTES} bytes")));
    }
    Ok(bytes)
}
