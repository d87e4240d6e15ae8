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
    /// Digest of the configuration's bytes and the secret sources it names
    /// (not their values, so that a printed plan's digest cannot confirm a
    /// guessed secret): saved plans compare it.
    pub input_digest: String,
    /// Digest of the secret values read; never printed (a saved plan keeps
    /// it keyed).
    pub secrets_digest: String,
}

/// The `.kdl` files a path names: the file itself, or the `*.kdl` files
/// directly in a directory, in name order. An entry named `*.kdl` that is
/// not a readable regular file (a dangling symlink, a symlink loop, a FIFO,
/// a directory) is an error: skipping it would plan its clusters' deletion.
pub fn list_files(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Diagnostic::error(Code::Io, format!("cannot read {}: {e}", path.display()))
            .help("give a .kdl file or a directory of .kdl files")
    })?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !meta.is_dir() {
        return Err(Diagnostic::error(Code::Io, format!("{} is not a regular file", path.display()))
            .help("give a .kdl file or a directory of .kdl files"));
    }
    let mut files = Vec::new();
    let entries = std::fs::read_dir(path)
        .map_err(|e| Diagnostic::error(Code::Io, format!("cannot list {}: {e}", path.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| Diagnostic::error(Code::Io, format!("cannot list {}: {e}", path.display())))?;
        let p = entry.path();
        if p.extension().is_none_or(|x| x != "kdl") {
            continue;
        }
        // Follows symlinks: what counts is what would be read.
        let problem = match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => None,
            Ok(m) if m.is_dir() => Some("is a directory".to_string()),
            Ok(_) => Some("is not a regular file (a FIFO, socket or device)".to_string()),
            Err(e) => Some(match std::fs::symlink_metadata(&p) {
                Ok(l) if l.file_type().is_symlink() => format!("is a symlink that cannot be followed: {e}"),
                _ => format!("cannot be read: {e}"),
            }),
        };
        if let Some(problem) = problem {
            return Err(Diagnostic::error(Code::Io, format!("{} {problem}", p.display())).help(
                "every *.kdl entry of a fleet directory is part of the fleet; fix or remove it (skipping it would plan the deletion of its clusters)",
            ));
        }
        files.push(p);
    }
    files.sort();
    if files.is_empty() {
        return Err(Diagnostic::error(Code::Io, format!("no .kdl files in {}", path.display()))
            .help("hcpc reads the *.kdl files directly in the directory; pass a file or another directory"));
    }
    Ok(files)
}

/// The most fleet source hcpc reads, all files together (README,
/// Security): a 1,000-cluster fleet is about 1 MiB. Past it, a clear error
/// rather than memory exhausted mid-parse.
pub const MAX_FLEET_BYTES: u64 = 16 << 20;

pub fn read_sources(path: &Path) -> Result<SourceMap, Diagnostic> {
    use std::io::Read;
    let mut sources = SourceMap::default();
    let mut total: u64 = 0;
    for f in list_files(path)? {
        let cannot = |e: std::io::Error| Diagnostic::error(Code::Io, format!("cannot read {}: {e}", f.display()));
        let left = MAX_FLEET_BYTES - total;
        let mut bytes = Vec::new();
        std::fs::File::open(&f).and_then(|file| file.take(left + 1).read_to_end(&mut bytes)).map_err(cannot)?;
        total += bytes.len() as u64;
        if total > MAX_FLEET_BYTES {
            return Err(Diagnostic::error(
                Code::Io,
                format!(
                    "{} is too large: the fleet's files together may hold at most {} MiB",
                    f.display(),
                    MAX_FLEET_BYTES >> 20
                ),
            )
            .help("a fleet of 1,000 clusters is about 1 MiB; check that the path names the fleet's .kdl files and not generated data"));
        }
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
                secrets_digest: String::new(),
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
    let confine = match resolved.fleet.allow_paths_outside {
        Some(_) => None,
        None => sources.iter().next().map(|(_, f)| confinement_root(f.dir())),
    };
    let secrets = read_secrets(&resolved, confine.as_deref(), &mut diags);
    let mut secrets_hasher = Sha256Hasher::default();
    for (k, v) in &secrets {
        let source = format!("{k:?}");
        hasher.add(source.as_bytes());
        secrets_hasher.add(source.as_bytes());
        secrets_hasher.add(v);
    }
    let objects = if diags.has_errors() { Vec::new() } else { render(&resolved, &secrets) };
    Compiled {
        sources,
        diags,
        resolved: Some(resolved),
        objects,
        input_digest: hasher.finish(),
        secrets_digest: secrets_hasher.finish(),
    }
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

/// The directory tree secret files must lie in: the git repository
/// holding the fleet's directory (its nearest ancestor with `.git`), else
/// that directory itself; symlinks resolved.
pub fn confinement_root(fleet_dir: &Path) -> PathBuf {
    let dir = if fleet_dir.as_os_str().is_empty() { Path::new(".") } else { fleet_dir };
    let real = std::fs::canonicalize(dir).unwrap_or_else(|_| crate::source::normalize(dir));
    real.ancestors().find(|a| a.join(".git").exists()).map(Path::to_path_buf).unwrap_or(real)
}

/// Reads every `file=` and `env=` secret source; a missing one is a
/// diagnostic pointing at the property that names it. With `confine`,
/// a file whose real path (symlinks resolved) is outside that tree is an
/// error and is not read.
fn read_secrets(resolved: &ResolvedFleet, confine: Option<&Path>, diags: &mut Diagnostics) -> SecretValues {
    let mut values = SecretValues::new();
    let mut wanted: Vec<(SecretSource, Span, &str)> = Vec::new();
    for c in &resolved.fleet.clusters {
        wanted.push((c.pull_secret.value.clone(), c.pull_secret.span, PULL_SECRET));
        if let Some(k) = &c.ssh_key {
            wanted.push((k.value.clone(), k.span, SSH_KEY));
        }
        if let Some(InfraCredentials::KubeconfigFile(f)) = c.infra_cluster.as_ref().map(|i| &i.credentials) {
            wanted.push((SecretSource::File(f.value.clone()), f.span, INFRA_KUBECONFIG));
        }
    }
    let mut checked: Vec<(SecretSource, &str)> = Vec::new();
    for (source, span, what) in wanted {
        if values.contains_key(&source) {
            // Read once; checked once per use, as one file may serve as both.
            if let Some(bytes) = values.get(&source)
                && !checked.contains(&(source.clone(), what))
            {
                checked.push((source.clone(), what));
                if let Some(d) = check_format(what, bytes, &source, span) {
                    diags.push(d);
                }
            }
            continue;
        }
        let read = match &source {
            SecretSource::File(p) if let Some(root) = confine && let Some(real) = outside(p, root) => {
                Err(Diagnostic::error(
                    Code::PathOutside,
                    format!(
                        "the {what} file {} is outside the fleet's directory tree {}",
                        real.display(),
                        root.display()
                    ),
                )
                .label(span, "outside the fleet")
                .help(
                    "keep the file in the repository (or use env= or secret=); a fleet kept outside review may declare the top-level node `allow-paths-outside`",
                ))
            }
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
                checked.push((source.clone(), what));
                if let Some(d) = check_format(what, &bytes, &source, span) {
                    diags.push(d);
                }
                values.insert(source, bytes);
            }
            Err(d) => diags.push(d),
        }
    }
    values
}

/// The real path of `path` (symlinks resolved) when it is outside `root`;
/// `None` when inside, or when it cannot be resolved (reading then says why).
fn outside(path: &Path, root: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(path).ok()?;
    (!real.starts_with(root)).then_some(real)
}

const PULL_SECRET: &str = "pull secret";
const INFRA_KUBECONFIG: &str = "infrastructure kubeconfig";
const SSH_KEY: &str = "SSH key";

/// Whether a secret holds what its setting needs; a diagnostic at the
/// `file=`/`env=` property when not. Never quotes the content.
fn check_format(what: &str, bytes: &[u8], source: &SecretSource, span: Span) -> Option<Diagnostic> {
    let (problem, help) = match what {
        PULL_SECRET => (
            pull_secret_problem(bytes)?,
            "use the pull secret from https://console.redhat.com/openshift/install/pull-secret, a JSON object `{\"auths\": {\"REGISTRY\": {\"auth\": \"…\"}}}`",
        ),
        SSH_KEY => (
            ssh_key_problem(bytes)?,
            "give the public key, one line `TYPE BASE64 [COMMENT]` as in ~/.ssh/id_ed25519.pub (make one with `ssh-keygen -t ed25519`)",
        ),
        INFRA_KUBECONFIG => (
            kubeconfig_problem(bytes)?,
            "give a kubeconfig (YAML with `clusters`, `users` and `contexts`, as `oc login` or `oc config view --raw` writes) for the infrastructure cluster",
        ),
        _ => return None,
    };
    let (place, label) = match source {
        SecretSource::File(p) => (format!("the file {}", p.display()), "this file"),
        SecretSource::Env(v) => (format!("environment variable {v}"), "this variable"),
        SecretSource::Secret(_) => return None,
    };
    Some(
        Diagnostic::error(Code::SecretFormat, format!("the {what} in {place} {problem}")).label(span, label).help(help),
    )
}

/// What is wrong with a pull secret: it must be a JSON object whose
/// `auths` is an object.
fn pull_secret_problem(bytes: &[u8]) -> Option<String> {
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        // Position only: serde's messages could quote the content.
        Err(e) => return Some(format!("is not JSON (invalid at line {}, column {})", e.line(), e.column())),
    };
    match value.get("auths") {
        Some(serde_json::Value::Object(_)) => None,
        Some(_) => Some("has an `auths` that is not an object".to_string()),
        None if value.is_object() => Some("is a JSON object without `auths`".to_string()),
        None => Some("is JSON, but not an object with `auths`".to_string()),
    }
}

/// What is wrong with an infrastructure kubeconfig: a YAML mapping with
/// at least one cluster that names a `server`, and `users` and `contexts`
/// lists. Never quotes the content (the parser's messages could).
fn kubeconfig_problem(bytes: &[u8]) -> Option<String> {
    let Ok(text) = std::str::from_utf8(bytes) else { return Some("is not text".to_string()) };
    let Ok(value) = crate::render::yaml::from_yaml(text) else { return Some("is not YAML".to_string()) };
    if !value.is_object() {
        return Some("is not a kubeconfig (not a YAML mapping)".to_string());
    }
    let list = |key: &str| value.get(key).and_then(serde_json::Value::as_array).filter(|l| !l.is_empty());
    let Some(clusters) = list("clusters") else { return Some("is not a kubeconfig (no `clusters`)".to_string()) };
    if !clusters.iter().any(|c| c.pointer("/cluster/server").and_then(serde_json::Value::as_str).is_some()) {
        return Some("is not a kubeconfig (no cluster names a `server`)".to_string());
    }
    for key in ["users", "contexts"] {
        if list(key).is_none() {
            return Some(format!("is not a kubeconfig (no `{key}`)"));
        }
    }
    None
}

/// The OpenSSH public key types HyperShift passes on to the nodes.
const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
];

/// What is wrong with an SSH key: every line that is not blank or a
/// comment must be `TYPE BASE64 [COMMENT]`, the key data naming the same
/// type; at least one such line.
fn ssh_key_problem(bytes: &[u8]) -> Option<String> {
    use base64::Engine;
    let Ok(text) = std::str::from_utf8(bytes) else { return Some("is not text".to_string()) };
    if text.contains("PRIVATE KEY") {
        return Some("is a private key; only the public key (the .pub file) belongs here".to_string());
    }
    let mut keys = 0;
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
            return Some(format!("is not an OpenSSH public key (line {n} is not `TYPE BASE64 [COMMENT]`)"));
        };
        if !SSH_KEY_TYPES.contains(&kind) {
            return Some(format!("is not an OpenSSH public key (line {n} does not start with a key type)"));
        }
        // The key data starts with its own type, length-prefixed.
        let whole = blob.len() / 4 * 4;
        let names_its_type = base64::engine::general_purpose::STANDARD
            .decode(&blob[..whole])
            .ok()
            .filter(|data| data.len() >= 4)
            .and_then(|data| {
                let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
                data.get(4..4 + len).map(|t| t == kind.as_bytes())
            })
            .unwrap_or(false);
        if !names_its_type {
            return Some(format!("is not an OpenSSH public key (line {n}: the key data is not a {kind} key)"));
        }
        keys += 1;
    }
    (keys == 0).then(|| "holds no public key".to_string())
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
