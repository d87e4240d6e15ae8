//! Following HostedClusters and NodePools as the operator updates them:
//! one LIST, then one WATCH per kind from the LIST's resourceVersion (a
//! new LIST and WATCH when the server ends or expires the watch), never a
//! poll per object.
//!
//! A LIST or WATCH that fails is retried with a capped backoff, and the
//! follower is told once per streak of failures ([`Seen::Failing`]) and
//! when it ends ([`Seen::Resumed`]); a refusal (401, 403) or a streak
//! longer than [`FAILURE_LIMIT`] ends the watch with its cause
//! ([`Seen::Lost`]), so a dead watch is never mistaken for a quiet fleet.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube::api::{ListParams, WatchEvent, WatchParams};
use serde_json::Value;

use super::{ApiError, KubeTarget, describe, resource};
use crate::object::Kind;

/// What a watch saw.
#[derive(Debug, Clone)]
pub enum Seen {
    /// The whole current set of one kind (after a LIST).
    Listed(Kind, Vec<Value>),
    /// An object added or changed (status included).
    Changed(Kind, Value),
    Deleted(Kind, Value),
    /// A LIST or WATCH failed: what was seen may be stale until
    /// [`Seen::Resumed`]. Sent at the first failure of a streak, not per
    /// retry.
    Failing(WatchFailure),
    /// The watch works again after [`Seen::Failing`] (a LIST and a WATCH
    /// succeeded).
    Resumed,
    /// The watch gave up: the last thing it sends.
    Lost(WatchFailure),
}

/// Why a watch fails: the request and the server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchFailure {
    /// The request refused, as `list hostedclusters.hypershift.openshift.io
    /// in all namespaces`.
    pub request: String,
    /// The error, as printed for any request.
    pub error: String,
    /// HTTP status; 0 below HTTP.
    pub code: u16,
    /// How long the streak of failures had lasted (zero at its first).
    pub failing_for: Duration,
}

impl WatchFailure {
    /// Whether no retry can help: the identity may not make the request.
    pub fn refused(&self) -> bool {
        matches!(self.code, 401 | 403)
    }
}

impl std::fmt::Display for WatchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot {}: {}", self.request, self.error)?;
        if self.refused() {
            write!(f, "\n  help: the identity in the kubeconfig needs `list` and `watch` on it")?;
        } else if self.failing_for.as_secs() > 0 {
            write!(f, " (failing for {}s)", self.failing_for.as_secs())?;
        }
        Ok(())
    }
}

/// How long the server keeps one watch open before hcpc opens the next.
const WATCH_SECONDS: u32 = 290;

/// How long a watch may keep failing before it gives up.
pub const FAILURE_LIMIT: Duration = Duration::from_secs(120);

/// The first wait after a failure; it doubles up to [`BACKOFF_CAP`].
const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(10);

/// One failed request, before it is placed in its streak.
struct Failed {
    verb: &'static str,
    kind: Kind,
    error: ApiError,
}

/// How one round of LIST then WATCH ended.
enum Round {
    /// `stop` was set or `until` passed.
    Stopped,
    /// The server ended or expired the watch: LIST and WATCH again.
    Expired,
    Failed(Failed),
}

impl KubeTarget {
    /// Follows the objects of `kinds` carrying `selector`, telling `seen`
    /// everything, until `stop` is set or `until` passes; a failure that
    /// lasts or is a refusal ends it with [`Seen::Lost`], also returned.
    pub fn follow(
        &self,
        kinds: &[Kind],
        selector: &str,
        until: Instant,
        stop: &AtomicBool,
        seen: &mut dyn FnMut(Seen),
    ) -> Result<(), WatchFailure> {
        // The first failure of the current streak, and the next wait.
        let mut streak: Option<Instant> = None;
        let mut backoff = BACKOFF_START;
        while !stop.load(Ordering::SeqCst) && Instant::now() < until {
            let round = self.round(kinds, selector, until, stop, seen, &mut streak);
            if streak.is_none() {
                backoff = BACKOFF_START;
            }
            let failed = match round {
                Round::Stopped => break,
                Round::Expired => {
                    std::thread::sleep(BACKOFF_START);
                    continue;
                }
                Round::Failed(f) => f,
            };
            let first = streak.is_none();
            let began = *streak.get_or_insert_with(Instant::now);
            let failure = WatchFailure {
                request: format!("{} {}.{} in all namespaces", failed.verb, failed.kind.plural(), failed.kind.group()),
                error: describe(&failed.error),
                code: failed.error.code,
                failing_for: began.elapsed(),
            };
            if failure.refused() || failure.failing_for >= FAILURE_LIMIT {
                seen(Seen::Lost(failure.clone()));
                return Err(failure);
            }
            if first {
                seen(Seen::Failing(failure));
            }
            // Wait, a little at a time so that `stop` is heard.
            let wake = Instant::now() + backoff;
            while Instant::now() < wake && !stop.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            backoff = (backoff * 2).min(BACKOFF_CAP);
        }
        Ok(())
    }

    /// LISTs each kind, then WATCHes them all from where each list was;
    /// `streak` is cleared (and [`Seen::Resumed`] said) once both worked.
    fn round(
        &self,
        kinds: &[Kind],
        selector: &str,
        until: Instant,
        stop: &AtomicBool,
        seen: &mut dyn FnMut(Seen),
        streak: &mut Option<Instant>,
    ) -> Round {
        let mut versions = Vec::new();
        for kind in kinds {
            let api = self.api(&resource(*kind), None);
            let params = ListParams::default().labels(selector);
            let list = match self.call(|| api.list(&params)) {
                Ok(list) => list,
                Err(error) => return Round::Failed(Failed { verb: "list", kind: *kind, error }),
            };
            versions.push(list.metadata.resource_version.clone().unwrap_or_default());
            let items = list.items.iter().filter_map(|o| serde_json::to_value(o).ok()).collect();
            seen(Seen::Listed(*kind, items));
        }
        self.rt.block_on(async {
            let mut streams = Vec::new();
            for (kind, version) in kinds.iter().zip(&versions) {
                let api = self.api(&resource(*kind), None);
                let params = WatchParams::default().labels(selector).timeout(WATCH_SECONDS);
                match api.watch(&params, version).await {
                    Ok(s) => streams.push(s.map(move |e| (*kind, e)).boxed()),
                    Err(e) => {
                        let error = ApiError::from_kube(e, &self.server);
                        return Round::Failed(Failed { verb: "watch", kind: *kind, error });
                    }
                }
            }
            if streak.take().is_some() {
                seen(Seen::Resumed);
            }
            let mut all = futures_util::stream::select_all(streams);
            loop {
                if stop.load(Ordering::SeqCst) || Instant::now() >= until {
                    return Round::Stopped;
                }
                let next = tokio::time::timeout(Duration::from_millis(250), all.next()).await;
                match next {
                    Err(_) => {}
                    Ok(None) => return Round::Expired,
                    Ok(Some((kind, Ok(WatchEvent::Added(o) | WatchEvent::Modified(o))))) => {
                        if let Ok(v) = serde_json::to_value(&o) {
                            seen(Seen::Changed(kind, v));
                        }
                    }
                    Ok(Some((kind, Ok(WatchEvent::Deleted(o))))) => {
                        if let Ok(v) = serde_json::to_value(&o) {
                            seen(Seen::Deleted(kind, v));
                        }
                    }
                    Ok(Some((_, Ok(WatchEvent::Bookmark(_))))) => {}
                    // Expired (410 Gone): LIST and WATCH again.
                    Ok(Some((_, Ok(WatchEvent::Error(e))))) if e.code == 410 => return Round::Expired,
                    Ok(Some((kind, Ok(WatchEvent::Error(e))))) => {
                        let error = ApiError::from_kube(kube::Error::Api(e), &self.server);
                        return Round::Failed(Failed { verb: "watch", kind, error });
                    }
                    Ok(Some((kind, Err(e)))) => {
                        let error = ApiError::from_kube(e, &self.server);
                        return Round::Failed(Failed { verb: "watch", kind, error });
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: u16, secs: u64) -> WatchFailure {
        WatchFailure {
            request: "watch hostedclusters.hypershift.openshift.io in all namespaces".to_string(),
            error: format!("{code} Reason: said"),
            code,
            failing_for: Duration::from_secs(secs),
        }
    }

    #[test]
    fn a_refusal_names_the_request_and_the_permissions_needed() {
        let said = failure(403, 0).to_string();
        assert_eq!(
            said,
            "cannot watch hostedclusters.hypershift.openshift.io in all namespaces: 403 Reason: said\n  \
             help: the identity in the kubeconfig needs `list` and `watch` on it"
        );
        assert!(failure(401, 0).refused() && !failure(503, 0).refused());
    }

    #[test]
    fn a_lasting_failure_says_for_how_long() {
        assert!(failure(503, 0).to_string().ends_with(": 503 Reason: said"));
        assert!(failure(503, 42).to_string().ends_with(" (failing for 42s)"));
    }
}
