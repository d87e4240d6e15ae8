//! `apply --wait`: follow HostedCluster `Available` and NodePool readiness.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::plan::Planned;
use crate::cli::exit;
use crate::cli::printer::Style;
use crate::live::kube::KubeTarget;
use crate::object::{Kind, ObjectId};

/// The condition of type `ty`, as (status, reason, message).
fn condition(obj: &Value, ty: &str) -> Option<(String, String, String)> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
        .map(|c| {
            let s = |k: &str| {
                let v = c.get(k).and_then(Value::as_str).unwrap_or_default();
                crate::printable::line(v, crate::printable::SERVER_MESSAGE_LIMIT).into_owned()
            };
            (s("status"), s("reason"), s("message"))
        })
}

fn timestamp() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%H:%M:%S").to_string()
}

/// The id of a listed object of `kind`.
fn id_of(kind: Kind, o: &Value) -> ObjectId {
    let s = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    ObjectId { kind, namespace: s("/metadata/namespace"), name: s("/metadata/name") }
}

pub fn run(k: &KubeTarget, planned: &Planned, timeout: Duration, style: Style) -> u8 {
    let mut targets: Vec<(ObjectId, Option<String>)> = planned
        .compiled
        .objects
        .iter()
        .filter(|o| matches!(o.id.kind, Kind::HostedCluster | Kind::NodePool))
        // A plan limited with --cluster waits for those clusters only.
        .filter(|o| {
            let limited = &planned.plan.limited_to;
            limited.is_empty() || o.cluster.as_ref().is_some_and(|c| limited.contains(c))
        })
        .map(|o| (o.id.clone(), o.cluster.clone()))
        .collect();
    // What was deleted while this waited: it will never become ready, so
    // it is said at once and not waited for; the wait then fails.
    let mut gone: Vec<String> = Vec::new();
    let tty = std::io::stdout().is_terminal() && !style.quiet;
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::with_draw_target(
            Some(targets.len() as u64),
            indicatif::ProgressDrawTarget::stdout(),
        );
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos}/{len} ready {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        b
    });
    let start = Instant::now();
    let mut last: std::collections::BTreeMap<String, String> = Default::default();
    // One LIST per kind by the fleet's label each round, not a GET per
    // object: a 1,000-cluster fleet is two requests a round, not 4,000.
    let selector = planned
        .compiled
        .resolved
        .as_ref()
        .map(|r| format!("{}={}", hcpc_schema::labels::APPLYSET_PART_OF, crate::render::applyset_id(&r.fleet)));
    loop {
        let mut ready = 0;
        let mut waiting = Vec::new();
        let mut listed: std::collections::BTreeMap<ObjectId, Value> = Default::default();
        let mut unreadable: Option<String> = None;
        for kind in [Kind::HostedCluster, Kind::NodePool] {
            match k.list_kind(kind, selector.as_deref()) {
                Ok(items) => listed.extend(items.into_iter().map(|o| (id_of(kind, &o), o))),
                Err(e) => unreadable = Some(crate::live::kube::describe(&e)),
            }
        }
        let mut deleted: Vec<(ObjectId, Option<String>)> = Vec::new();
        for (id, cluster) in &targets {
            if deleted.iter().any(|(d, c)| d.kind == Kind::HostedCluster && c.is_some() && c == cluster) {
                continue;
            }
            let obj = match (listed.remove(id), &unreadable) {
                (Some(o), _) => o,
                (None, Some(e)) => {
                    waiting.push(format!("{id}: {e}"));
                    continue;
                }
                (None, None) => {
                    deleted.push((id.clone(), cluster.clone()));
                    continue;
                }
            };
            let (ok, line) = match id.kind {
                Kind::HostedCluster => match condition(&obj, "Available") {
                    Some((s, _, _)) if s == "True" => (true, "Available".to_string()),
                    Some((_, reason, message)) => (false, format!("not Available: {reason}: {message}")),
                    None => (false, "waiting for status".to_string()),
                },
                _ => {
                    let want = obj.pointer("/spec/replicas").and_then(Value::as_u64);
                    let have = obj.pointer("/status/replicas").and_then(Value::as_u64).unwrap_or(0);
                    match (condition(&obj, "Ready"), want) {
                        (Some((s, _, _)), Some(w)) if s == "True" && have >= w => (true, format!("{have}/{w} ready")),
                        (Some((s, _, _)), None) if s == "True" => (true, "ready".to_string()),
                        (Some((_, reason, message)), _) if !message.is_empty() => {
                            (false, format!("{have} ready: {reason}: {message}"))
                        }
                        _ => (false, format!("{have}/{} ready", want.map_or("?".to_string(), |w| w.to_string()))),
                    }
                }
            };
            if ok {
                ready += 1;
            } else {
                waiting.push(format!("{id}: {line}"));
            }
            if last.get(&id.to_string()) != Some(&line) {
                match &bar {
                    Some(b) => b.println(format!("{id}: {line}")),
                    None if !style.quiet => crate::cli::output::say(&format!("{} {id}: {line}", timestamp())),
                    None => {}
                }
                last.insert(id.to_string(), line);
            }
        }
        for (id, cluster) in &deleted {
            let line = match (id.kind, cluster) {
                (Kind::HostedCluster, Some(c)) => format!(
                    "cluster {c} is gone: its HostedCluster was deleted while apply waited; it is not waited for"
                ),
                _ => format!("{id} is gone: it was deleted while apply waited; it is not waited for"),
            };
            match &bar {
                Some(b) => b.println(format!("error[hcpc::apply::wait]: {line}")),
                None => eprintln!("error[hcpc::apply::wait]: {line}"),
            }
            gone.push(line);
        }
        // A gone cluster's NodePools go with it.
        targets.retain(|(id, cluster)| {
            !deleted.iter().any(|(d, c)| d == id || (d.kind == Kind::HostedCluster && c.is_some() && c == cluster))
        });
        if !deleted.is_empty() {
            // Count again without them.
            if let Some(b) = &bar {
                b.set_length(targets.len() as u64);
            }
            continue;
        }
        if let Some(b) = &bar {
            b.set_position(ready as u64);
        }
        if ready == targets.len() {
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            crate::cli::output::say(&format!("All {} HostedClusters and NodePools are ready.", targets.len()));
            if !gone.is_empty() {
                let what = if gone.len() == 1 { "one was".to_string() } else { format!("{} were", gone.len()) };
                eprintln!(
                    "error[hcpc::apply::wait]: the rest is ready, but {what} deleted while apply waited\n  help: `hcpc plan` shows what is gone; apply creates it again, or remove it from the configuration"
                );
                return exit::ERROR;
            }
            return exit::OK;
        }
        if start.elapsed() >= timeout {
            if let Some(b) = bar {
                b.abandon();
            }
            eprintln!("error[hcpc::apply::wait]: not ready after {}s:", timeout.as_secs());
            for w in waiting {
                eprintln!("  - {w}");
            }
            return exit::ERROR;
        }
        std::thread::sleep(
            Duration::from_secs(2).min(timeout.saturating_sub(start.elapsed()).max(Duration::from_millis(100))),
        );
    }
}
