//! `hcpc unlock`: release the fleet's lock on every target (left by an
//! apply that was killed, or whose machine went away), after showing who
//! holds it and asking.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::cli::exit;
use crate::cli::printer::Style;
use crate::cli::target::{Opened, TargetFlags, spelled};
use crate::live::kube::KubeTarget;
use crate::live::lease::{FoundLease, break_lease, find};

/// A lock found on one target.
enum Found {
    Lease(std::sync::Arc<KubeTarget>, FoundLease),
    File(PathBuf),
}

pub fn run(path: &Path, flags: &TargetFlags, yes: bool, style: Style) -> u8 {
    let Some(parts) =
        super::fleet_targets(path, flags, style, "so its fleet and targets are unknown; nothing was released")
    else {
        return exit::ERROR;
    };
    let mut found = Vec::new();
    let mut failed = false;
    for part in parts {
        let place = spelled(&part.target);
        let opened = match Opened::open(&part.target, flags.request_timeout) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: {place}: {e}");
                failed = true;
                continue;
            }
        };
        let place = opened.live().describe();
        match opened {
            Opened::Dir(d) => match crate::live::dir::lock_holder(&d.root) {
                Some((file, holder)) => {
                    eprintln!("{place}: the fleet is locked by {holder} (lock file {})", file.display());
                    found.push((place, Found::File(file)));
                }
                None => eprintln!("{place}: not locked"),
            },
            Opened::Kube(k) => match find(&k, &part.fleet.namespace, &part.fleet.name) {
                Ok(Some(lease)) => {
                    eprintln!(
                        "{place}: the fleet is locked by {} (Lease {}/{})",
                        lease.holder, lease.namespace, lease.name
                    );
                    found.push((place, Found::Lease(k, lease)));
                }
                Ok(None) => eprintln!("{place}: not locked"),
                Err(e) => {
                    eprintln!("error: {place}: {e}");
                    failed = true;
                }
            },
        }
    }
    if found.is_empty() {
        return if failed { exit::ERROR } else { exit::OK };
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "error: unlock needs confirmation, but there is no terminal to ask on; nothing was released\n  help: pass --yes to release without asking"
            );
            return exit::ERROR;
        }
        eprint!(
            "\nRelease {}? Do so only if that apply is no longer running. Only `yes` is accepted: ",
            if found.len() == 1 { "this lock".to_string() } else { format!("these {} locks", found.len()) }
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() != "yes" {
            eprintln!("Unlock cancelled; nothing was released.");
            return exit::ERROR;
        }
    }
    for (place, lock) in found {
        let released = match &lock {
            Found::Lease(k, lease) => break_lease(k, lease),
            Found::File(file) => match std::fs::remove_file(file) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(format!("cannot remove {}: {e}", file.display())),
            },
        };
        match released {
            Ok(()) => eprintln!("{place}: released"),
            Err(e) => {
                eprintln!("error: {place}: {e}");
                failed = true;
            }
        }
    }
    if failed { exit::ERROR } else { exit::OK }
}
