//! Deleting a cluster in the order HyperShift tears it down: its NodePools
//! and HostedCluster are deleted first, and the Secrets they name (pull
//! secret, SSH key, etcd encryption key) only once those objects are gone,
//! since the operator still reads them while its finalizers run. The wait
//! shows progress and ends at `--timeout`; the Secrets are then kept and
//! the next apply continues from there.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::live::Target;
use crate::object::{Kind, ObjectId};
use crate::plan::secret_refs;

/// How often the HostedClusters being deleted are looked at again.
const POLL: Duration = Duration::from_secs(1);
/// How often the wait says what it is waiting for.
const SAY_EVERY: Duration = Duration::from_secs(10);

/// HostedClusters still there after the wait, with the Secrets each names
/// and the finalizers that hold it.
pub struct StillThere {
    pub cluster: ObjectId,
    pub secrets: Vec<ObjectId>,
    pub finalizers: Vec<String>,
}

/// Waits up to `timeout` for the deleted HostedClusters `leaving` to be
/// gone, telling `say` what holds them now and then, while `go_on` holds
/// (the fleet lock is still held). Returns those still there.
pub fn wait_for_clusters(
    target: &dyn Target,
    leaving: &[&ObjectId],
    timeout: Duration,
    go_on: &dyn Fn() -> bool,
    say: &dyn Fn(&str),
) -> Result<Vec<StillThere>, String> {
    let start = Instant::now();
    let mut said: Option<Instant> = None;
    loop {
        let mut still = Vec::new();
        let mut by_namespace: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for id in leaving.iter().filter(|id| id.kind == Kind::HostedCluster) {
            if !by_namespace.contains_key(id.namespace.as_str()) {
                by_namespace.insert(&id.namespace, target.hosted_clusters(&id.namespace)?);
            }
            let live = by_namespace[id.namespace.as_str()]
                .iter()
                .find(|hc| hc.pointer("/metadata/name").and_then(Value::as_str) == Some(id.name.as_str()));
            if let Some(hc) = live {
                let finalizers = hc
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .map(|f| f.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default();
                still.push(StillThere { cluster: (*id).clone(), secrets: secret_refs(hc, &id.namespace), finalizers });
            }
        }
        let over = start.elapsed() >= timeout || crate::interrupt::requested().is_some() || !go_on();
        if still.is_empty() || over {
            return Ok(still);
        }
        if said.is_none_or(|t| t.elapsed() >= SAY_EVERY) {
            for s in &still {
                say(&format!(
                    "waiting for {} to be deleted ({}; {}s so far, up to {}s); the Secrets it names are deleted once it is gone",
                    s.cluster,
                    waiting_for(&s.finalizers),
                    start.elapsed().as_secs(),
                    timeout.as_secs()
                ));
            }
            said = Some(Instant::now());
        }
        // Short naps, so that a lost lock is noticed at once.
        let nap = Instant::now();
        while nap.elapsed() < POLL.min(timeout.saturating_sub(start.elapsed())) && go_on() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `waiting for finalizers: a, b`, or what holds it when none is named.
pub fn waiting_for(finalizers: &[String]) -> String {
    if finalizers.is_empty() {
        "waiting for the server to remove it".to_string()
    } else {
        format!("waiting for finalizers: {}", finalizers.join(", "))
    }
}
