//! `hcpc kubeconfig` and `hcpc kubeadmin-password`: credentials of a
//! hosted cluster, from the Secrets HostedCluster status points to.

use std::path::Path;

use serde_json::Value;

use crate::cli::exit;
use crate::cli::load::{front, read_sources};
use crate::cli::target::{TargetFlags, choose};
use crate::ir::Target;
use crate::live::kube::KubeTarget;
use crate::object::Kind;

/// Finds the cluster's namespace (from `NS/NAME`, or the configuration)
/// and connects to the management cluster.
pub fn locate(cluster: &str, flags: &TargetFlags, config: &Path) -> Result<(KubeTarget, String, String), String> {
    let target_flag = flags.target.as_deref();
    let parsed = read_sources(config).ok().map(|sources| {
        let (fleet, _) = front(&sources);
        (fleet, sources)
    });
    let (ns, name) = match cluster.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        // A bare name is looked up in the fleet: guessing a namespace could
        // hand out another cluster's credentials.
        None => {
            let declared = parsed.as_ref().and_then(|(f, _)| f.clusters.iter().find(|c| c.name.value == cluster));
            let Some(c) = declared else {
                let place = match &parsed {
                    Some(_) => format!("the fleet at {}", config.display()),
                    None => format!("no fleet ({} has no readable configuration)", config.display()),
                };
                return Err(format!(
                    "cluster `{cluster}` is not declared in {place}, so its namespace is unknown\n  help: name it with its namespace, e.g. `clusters/{cluster}`, or run from the fleet's directory (or pass --config)"
                ));
            };
            (c.namespace.value.clone(), cluster.to_string())
        }
    };
    // The cluster's own target, else the fleet's (`--target` over the
    // top-level `target`).
    let own = parsed
        .as_ref()
        .and_then(|(f, _)| f.clusters.iter().find(|c| c.name.value == name && c.namespace.value == ns))
        .and_then(|c| c.target.as_ref())
        .map(|t| t.value.clone());
    let context = match (own, target_flag, &parsed) {
        (Some(Target::Kube { context }), _, _) => context,
        (_, Some(_), Some((fleet, sources))) => match choose(flags, fleet, sources)?.0 {
            Target::Kube { context } => context,
            Target::Dir { .. } => return Err("this command needs a kube target".to_string()),
        },
        (_, Some(flag), None) => match flag.split_once(':') {
            Some(("kube", ctx)) => Some(ctx.to_string()),
            None if flag == "kube" => None,
            _ => return Err("this command needs a kube target (`--target kube` or `kube:CONTEXT`)".to_string()),
        },
        (_, None, Some((fleet, _))) => match fleet.target.as_ref().map(|t| &t.value) {
            Some(Target::Kube { context }) => context.clone(),
            _ => None,
        },
        (_, None, None) => None,
    };
    Ok((KubeTarget::connect(context.as_deref(), flags.request_timeout)?, ns, name))
}

/// Reads `status.<field>.name` of the HostedCluster, then `key` of that Secret.
fn status_secret(k: &KubeTarget, ns: &str, name: &str, field: &str, key: &str, what: &str) -> Result<Vec<u8>, String> {
    let hc = k
        .get(Kind::HostedCluster, ns, name)
        .map_err(|e| format!("cannot read HostedCluster {ns}/{name}: {e}"))?
        .ok_or_else(|| format!("HostedCluster {ns}/{name} does not exist"))?;
    let secret = hc.pointer(&format!("/status/{field}/name")).and_then(Value::as_str).ok_or_else(|| {
        format!(
            "HostedCluster {ns}/{name} does not report a {what} yet (status.{field} is empty)\n  help: the control plane is still coming up; `hcpc apply --wait` waits for it"
        )
    })?;
    let bytes = k
        .secret_value(ns, secret, key)
        .map_err(|e| format!("cannot read Secret {ns}/{secret}: {e}"))?
        .ok_or_else(|| format!("Secret {ns}/{secret} has no `{key}`"))?;
    if bytes.is_empty() {
        return Err(format!("Secret {ns}/{secret} has an empty `{key}`"));
    }
    Ok(bytes)
}

pub fn kubeconfig(cluster: &str, output: Option<&Path>, flags: &TargetFlags, config: &Path) -> u8 {
    let result = locate(cluster, flags, config)
        .and_then(|(k, ns, name)| status_secret(&k, &ns, &name, "kubeconfig", "kubeconfig", "kubeconfig"));
    let bytes = match result {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    match output {
        None => crate::cli::output::write_bytes(&bytes),
        Some(path) => match crate::live::dir::write_file(path, &bytes, true) {
            Ok(()) => {
                eprintln!("wrote {} (mode 0600)", path.display());
                exit::OK
            }
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                exit::ERROR
            }
        },
    }
}

pub fn kubeadmin_password(cluster: &str, flags: &TargetFlags, config: &Path) -> u8 {
    match locate(cluster, flags, config)
        .and_then(|(k, ns, name)| status_secret(&k, &ns, &name, "kubeadminPassword", "password", "kubeadmin password"))
    {
        Ok(mut bytes) => {
            if !bytes.ends_with(b"\n") {
                bytes.push(b'\n');
            }
            crate::cli::output::write_bytes(&bytes)
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::ERROR
        }
    }
}
