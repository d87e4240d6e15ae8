//! Following HostedClusters and NodePools as the operator updates them:
//! one LIST, then one WATCH per kind from the LIST's resourceVersion (a
//! new LIST and WATCH when the server ends or expires the watch), never a
//! poll per object.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube::api::{ListParams, WatchEvent, WatchParams};
use serde_json::Value;

use super::{ApiError, KubeTarget, resource};
use crate::object::Kind;

/// What a watch saw.
#[derive(Debug, Clone)]
pub enum Seen {
    /// The whole current set of one kind (after a LIST).
    Listed(Kind, Vec<Value>),
    /// An object added or changed (status included).
    Changed(Kind, Value),
    Deleted(Kind, Value),
}

/// How long the server keeps one watch open before hcpc opens the next.
const WATCH_SECONDS: u32 = 290;

impl KubeTarget {
    /// Follows the objects of `kinds` carrying `selector`, telling `seen`
    /// everything, until `stop` is set or `until` passes.
    pub fn follow(
        &self,
        kinds: &[Kind],
        selector: &str,
        until: Instant,
        stop: &AtomicBool,
        seen: &mut dyn FnMut(Seen),
    ) -> Result<(), ApiError> {
        while !stop.load(Ordering::SeqCst) && Instant::now() < until {
            // LIST each kind, then watch them all from where each list was.
            let mut versions = Vec::new();
            for kind in kinds {
                let api = self.api(&resource(*kind), None);
                let params = ListParams::default().labels(selector);
                let list = self.call(|| api.list(&params))?;
                versions.push(list.metadata.resource_version.clone().unwrap_or_default());
                let items = list.items.iter().filter_map(|o| serde_json::to_value(o).ok()).collect();
                seen(Seen::Listed(*kind, items));
            }
            let expired = self.rt.block_on(async {
                let mut streams = Vec::new();
                for (kind, version) in kinds.iter().zip(&versions) {
                    let api = self.api(&resource(*kind), None);
                    let params = WatchParams::default().labels(selector).timeout(WATCH_SECONDS);
                    match api.watch(&params, version).await {
                        Ok(s) => streams.push(s.map(move |e| (*kind, e)).boxed()),
                        Err(_) => return true,
                    }
                }
                let mut all = futures_util::stream::select_all(streams);
                loop {
                    if stop.load(Ordering::SeqCst) || Instant::now() >= until {
                        return false;
                    }
                    let next = tokio::time::timeout(Duration::from_millis(250), all.next()).await;
                    match next {
                        Err(_) => {}
                        Ok(None) => return true,
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
                        // Expired (410 Gone) or broken: LIST and WATCH again.
                        Ok(Some((_, Ok(WatchEvent::Error(_)) | Err(_)))) => return true,
                    }
                }
            });
            if !expired {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }
}
