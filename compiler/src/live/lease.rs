//! The fleet lock on a management cluster: a coordination.k8s.io Lease
//! `hcpc-lock-<fleet>` with the holder's identity, renewed by a keeper
//! thread for as long as it is held and deleted at the end (only by its
//! holder). A Lease whose holder stopped renewing it (a crashed apply)
//! expires and is taken over.
//!
//! Expiry is judged as client-go's leader election judges it: a waiter
//! never compares its wall clock with the holder's `renewTime` (two
//! machines' clocks may disagree by minutes), but times, on its own
//! monotonic clock, how long the Lease has gone unchanged since it first
//! saw it. The holder likewise counts its Lease lost once no renewal has
//! succeeded for the Lease's duration, so it stops writing before any
//! waiter may take over.

use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::kube::KubeTarget;
use super::{Lock, host_name, when};
use hcpc_schema::labels;

/// How long a Lease is valid without renewal: a crashed apply blocks
/// others for at most this long after a waiter first sees its Lease.
pub const LEASE_SECONDS: i64 = 300;
/// Overrides [`LEASE_SECONDS`] (whole seconds), so that tests can outlast
/// a Lease in seconds. Not a user setting: it is not in `--help`.
const LEASE_SECONDS_ENV: &str = "HCPC_LEASE_SECONDS";
/// How often a waiting apply looks at the Lease again.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// The annotation naming the holder's process precisely enough to tell,
/// from the same machine, that it is no longer running.
const PROCESS_ANNOTATION: &str = "hcpc.openshift.io/lock-holder-process";

/// The duration of the Leases this process takes.
pub fn lease_duration() -> Duration {
    static DURATION: OnceLock<Duration> = OnceLock::new();
    *DURATION.get_or_init(|| {
        let secs = std::env::var(LEASE_SECONDS_ENV).ok().and_then(|v| v.parse::<u64>().ok()).filter(|s| *s > 0);
        Duration::from_secs(secs.unwrap_or(LEASE_SECONDS.unsigned_abs()))
    })
}

/// How often the keeper renews: five times per duration, so that a few
/// failed renewals in a row do not lose the lock.
fn renew_every(duration: Duration) -> Duration {
    (duration / 5).max(Duration::from_millis(100))
}

fn now() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// What a Lease says about its holder, for messages. Its times are the
/// holder's clock, shown as information, never used to judge expiry.
struct Holder {
    identity: String,
    acquired: Option<Timestamp>,
    renewed: Option<Timestamp>,
}

impl Holder {
    fn of(lease: &Value) -> Holder {
        let time = |field: &str| {
            lease.pointer(&format!("/spec/{field}")).and_then(Value::as_str).and_then(|t| t.parse::<Timestamp>().ok())
        };
        Holder {
            identity: lease.pointer("/spec/holderIdentity").and_then(Value::as_str).unwrap_or("unknown").to_string(),
            acquired: time("acquireTime"),
            renewed: time("renewTime").or_else(|| time("acquireTime")),
        }
    }

    /// `hcpc@host/123 since T (2m ago), last renewed T (10s ago)`.
    fn describe(&self) -> String {
        let mut out = self.identity.clone();
        if let Some(t) = self.acquired {
            out.push_str(&format!(" since {}", when(t)));
        }
        if let Some(t) = self.renewed {
            out.push_str(&format!(", last renewed {}", when(t)));
        }
        out
    }
}

/// A Lease as a waiter has seen it: when its record last changed, on this
/// process's monotonic clock, and how long it lasts without a change.
#[derive(Debug, Clone)]
pub struct Observation {
    record: String,
    since: Instant,
    duration: Duration,
}

impl Observation {
    /// The Lease as first seen at `now`: whatever its `renewTime` says,
    /// it has its full duration from here.
    pub fn new(lease: &Value, now: Instant) -> Observation {
        Observation { record: record(lease), since: now, duration: duration_of(lease) }
    }

    /// The Lease seen again at `now`: a changed record (renewed, or taken
    /// by someone else) starts its duration again.
    pub fn update(&mut self, lease: &Value, now: Instant) {
        let seen = record(lease);
        if seen != self.record {
            *self = Observation { record: seen, since: now, duration: duration_of(lease) };
        }
    }

    /// How long until it expires, as seen at `now` (zero once expired).
    pub fn remaining(&self, now: Instant) -> Duration {
        self.duration.saturating_sub(now.saturating_duration_since(self.since))
    }

    /// Whether its holder stopped renewing it.
    pub fn expired(&self, now: Instant) -> bool {
        self.remaining(now).is_zero()
    }
}

/// Everything a renewal or a take-over changes (the spec).
fn record(lease: &Value) -> String {
    lease.get("spec").map(Value::to_string).unwrap_or_default()
}

fn duration_of(lease: &Value) -> Duration {
    let secs = lease.pointer("/spec/leaseDurationSeconds").and_then(Value::as_i64).unwrap_or(LEASE_SECONDS);
    Duration::from_secs(secs.max(0).unsigned_abs())
}

/// This process, as recorded on the Lease it holds: the kernel's boot, the
/// PID namespace, the pid and the process's start time, so that another
/// hcpc on the same machine can tell the holder ended (killed) rather
/// than wait out its Lease, and never mistakes a reused pid for it.
fn this_process() -> Option<String> {
    let pid = std::process::id();
    Some(format!("{} {} {pid} {}", boot_id()?, pid_namespace("self")?, start_time(&pid.to_string())?))
}

/// Whether a Lease's recorded holder process ran on this machine, in this
/// PID namespace, and is no longer running.
fn holder_ended(lease: &Value) -> bool {
    let Some(recorded) = lease.pointer(&format!("/metadata/annotations/{}", PROCESS_ANNOTATION.replace('/', "~1")))
    else {
        return false;
    };
    let mut parts = recorded.as_str().unwrap_or_default().split(' ');
    let (Some(boot), Some(ns), Some(pid), Some(started)) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if boot_id().as_deref() != Some(boot) || pid_namespace("self").as_deref() != Some(ns) {
        return false;
    }
    start_time(pid).as_deref() != Some(started)
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|b| b.trim().to_string())
}

fn pid_namespace(pid: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok().map(|l| l.to_string_lossy().into_owned())
}

/// Field 22 of `/proc/PID/stat`, after the command name (which may hold
/// spaces and parentheses).
fn start_time(pid: &str) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(19).map(str::to_string)
}

/// What the holder and its keeper share.
struct Held {
    /// The Lease as last written by us (its resourceVersion included).
    body: Value,
    /// When the last renewal that succeeded was sent.
    renewed: Instant,
    /// Why the lock is lost, once it is.
    lost: Option<String>,
    /// The last renewal's failure, if it failed.
    last_error: Option<String>,
}

/// The thread renewing a held Lease, and how to stop it.
struct Keeper {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

/// A held Lease, renewed by its keeper thread until released.
pub struct KubeLock<'a> {
    k: &'a KubeTarget,
    namespace: String,
    name: String,
    duration: Duration,
    shared: Arc<Mutex<Held>>,
    keeper: Option<Keeper>,
    held: bool,
}

fn guard(shared: &Mutex<Held>) -> MutexGuard<'_, Held> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl<'a> KubeLock<'a> {
    /// Takes the Lease, waiting up to `timeout` while another apply holds
    /// it; says who holds it (again whenever it is renewed) and when an
    /// expired one is taken over.
    pub fn acquire(
        k: &'a KubeTarget,
        namespace: &str,
        name: &str,
        timeout: Duration,
        say: &dyn Fn(&str),
    ) -> Result<KubeLock<'a>, String> {
        let holder = format!("hcpc@{}/{}", host_name(), std::process::id());
        let duration = lease_duration();
        let fresh = |rv: Option<&str>| {
            let mut meta =
                json!({"name": name, "namespace": namespace, "labels": {labels::MANAGED_BY: labels::MANAGED_BY_VALUE}});
            if let Some(rv) = rv {
                meta["resourceVersion"] = json!(rv);
            }
            if let Some(process) = this_process() {
                meta["annotations"] = json!({ PROCESS_ANNOTATION: process });
            }
            json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": meta,
                "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration.as_secs(), "acquireTime": now(), "renewTime": now()},
            })
        };
        let start = Instant::now();
        let mut seen: Option<Observation> = None;
        let mut last_said: Option<String> = None;
        let mut last_error = String::new();
        loop {
            // Sent before the create: the Lease lasts from no later than this.
            let sent = Instant::now();
            let body = fresh(None);
            if k.create_lease(namespace, &body).map_err(|e| format!("cannot create the lock Lease: {e}"))? {
                let body = k.get_lease(namespace, name).ok().flatten().unwrap_or(body);
                return Ok(KubeLock::held(k, namespace, name, &holder, body, sent, duration));
            }
            let Some(current) = k.get_lease(namespace, name).map_err(|e| format!("cannot read the lock Lease: {e}"))?
            else {
                continue; // released between our create and get: try again at once
            };
            let now = Instant::now();
            let observed = match seen.as_mut() {
                Some(o) => {
                    o.update(&current, now);
                    o.clone()
                }
                None => seen.insert(Observation::new(&current, now)).clone(),
            };
            let other = Holder::of(&current);
            let ended = holder_ended(&current);
            if ended || observed.expired(now) {
                // Take over a Lease whose holder stopped renewing it.
                let why = if ended {
                    "its process on this machine is no longer running".to_string()
                } else {
                    format!("this apply saw it unchanged for {}s", observed.duration.as_secs())
                };
                let rv = current.pointer("/metadata/resourceVersion").and_then(Value::as_str);
                let sent = Instant::now();
                match k.replace_lease(namespace, name, &fresh(rv)) {
                    Ok(body) => {
                        say(&format!(
                            "warning: took over the fleet lock (Lease {namespace}/{name}) from {}: {why}",
                            other.describe()
                        ));
                        return Ok(KubeLock::held(k, namespace, name, &holder, body, sent, duration));
                    }
                    Err(e) => last_error = format!("; taking over the expired lock failed: {e}"),
                }
            }
            let remaining = observed.remaining(now).as_secs();
            if start.elapsed() >= timeout || crate::interrupt::requested().is_some() {
                return Err(format!(
                    "the fleet is locked by {} (Lease {namespace}/{name}){last_error}\n  help: wait for that apply to finish, or pass --lock-timeout 10m to wait; a crashed holder's lock expires once it has gone {}s without renewal as a waiting apply sees it (about {remaining}s from now), and `hcpc unlock` releases it at once",
                    other.describe(),
                    observed.duration.as_secs()
                ));
            }
            // Once, and again whenever the holder or its renewal changes.
            let said = format!("{}{:?}", other.identity, other.renewed);
            if last_said.as_ref() != Some(&said) {
                say(&format!(
                    "waiting for the fleet lock (Lease {namespace}/{name}), held by {}; it expires unless renewed within {remaining}s; waiting up to {}s more",
                    other.describe(),
                    timeout.saturating_sub(start.elapsed()).as_secs()
                ));
                last_said = Some(said);
            }
            // Short naps, so that a signal is noticed at once.
            let nap = POLL_EVERY.min(timeout.saturating_sub(start.elapsed()));
            let napping = Instant::now();
            while napping.elapsed() < nap && crate::interrupt::requested().is_none() {
                std::thread::sleep(Duration::from_millis(100).min(nap));
            }
        }
    }

    /// The Lease just taken (`sent`: when the write that took it was
    /// sent), with its keeper started.
    fn held(
        k: &'a KubeTarget,
        namespace: &str,
        name: &str,
        holder: &str,
        body: Value,
        sent: Instant,
        duration: Duration,
    ) -> KubeLock<'a> {
        let shared = Arc::new(Mutex::new(Held { body, renewed: sent, lost: None, last_error: None }));
        let (stop, stopped) = channel();
        let keeper = {
            let (k, shared) = (k.clone(), Arc::clone(&shared));
            let (namespace, name, holder) = (namespace.to_string(), name.to_string(), holder.to_string());
            std::thread::Builder::new().name("hcpc-lease".into()).spawn(move || {
                loop {
                    match stopped.recv_timeout(renew_every(duration)) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    if !renew(&k, &namespace, &name, &holder, &shared, duration) {
                        return;
                    }
                }
            })
        };
        let keeper = match keeper {
            Ok(thread) => Some(Keeper { stop, thread }),
            Err(e) => {
                guard(&shared).lost = Some(format!("cannot start the thread that renews the fleet lock: {e}"));
                None
            }
        };
        KubeLock { k, namespace: namespace.into(), name: name.into(), duration, shared, keeper, held: true }
    }

    fn lost_message(&self, why: &str) -> String {
        format!("lost the fleet lock (Lease {}/{}): {why}", self.namespace, self.name)
    }

    /// Stops the keeper and waits for a renewal it has in flight, so the
    /// Lease's version is final.
    fn stop_keeper(&mut self) {
        if let Some(keeper) = self.keeper.take() {
            let _ = keeper.stop.send(());
            let _ = keeper.thread.join();
        }
    }
}

/// One renewal by the keeper; `false` once the lock is lost (the keeper
/// then stops).
fn renew(k: &KubeTarget, namespace: &str, name: &str, holder: &str, shared: &Mutex<Held>, duration: Duration) -> bool {
    let mut body = {
        let held = guard(shared);
        if held.lost.is_some() {
            return false;
        }
        held.body.clone()
    };
    body["spec"]["renewTime"] = json!(now());
    body["spec"]["holderIdentity"] = json!(holder);
    let sent = Instant::now();
    let outcome = k.replace_lease(namespace, name, &body);
    let mut held = guard(shared);
    let lost = |why: String| format!("lost the fleet lock (Lease {namespace}/{name}): {why}");
    match outcome {
        Ok(body) => {
            held.body = body;
            held.renewed = sent;
            held.last_error = None;
            true
        }
        Err(e) if e.code == 409 || e.is_not_found() => {
            // Someone else wrote it: taken over, or released by `hcpc unlock`.
            let now_held = k.get_lease(namespace, name).ok().flatten();
            held.lost = Some(lost(match now_held {
                Some(lease) => format!("it was taken over by {}", Holder::of(&lease).describe()),
                None => "it was deleted (`hcpc unlock`?)".to_string(),
            }));
            false
        }
        Err(e) => {
            held.last_error = Some(e.to_string());
            if held.renewed.elapsed() >= duration {
                held.lost = Some(lost(format!("not renewed for {}s: {e}", duration.as_secs())));
                return false;
            }
            true
        }
    }
}

impl Lock for KubeLock<'_> {
    fn check(&self) -> Result<(), String> {
        let mut held = guard(&self.shared);
        if held.lost.is_none() && held.renewed.elapsed() >= self.duration {
            let cause = held.last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
            held.lost = Some(self.lost_message(&format!("not renewed for {}s{cause}", self.duration.as_secs())));
        }
        held.lost.clone().map_or(Ok(()), Err)
    }

    fn release(&mut self) -> Result<(), String> {
        if !std::mem::replace(&mut self.held, false) {
            return Ok(());
        }
        self.stop_keeper();
        let (rv, lost) = {
            let held = guard(&self.shared);
            let rv = held.body.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(str::to_string);
            (rv, held.lost.is_some())
        };
        if lost {
            // Not ours any more: whoever holds it now releases it.
            return Ok(());
        }
        // Delete only our own Lease: if it was taken over, it is not ours.
        self.k.delete_lease(&self.namespace, &self.name, rv).map_err(|e| {
            format!(
                "could not release the fleet lock (Lease {}/{}): {e}; it expires once it has gone {}s without renewal",
                self.namespace,
                self.name,
                self.duration.as_secs()
            )
        })
    }
}

impl Drop for KubeLock<'_> {
    fn drop(&mut self) {
        self.stop_keeper();
    }
}

/// A fleet Lease found by `hcpc unlock`: who holds it, and the version
/// that was shown, so that only that Lease is deleted.
pub struct FoundLease {
    pub namespace: String,
    pub name: String,
    /// The holder in words: identity, since when, last renewal, expiry.
    pub holder: String,
    resource_version: Option<String>,
}

/// The fleet's Lease in `namespace`, if one exists.
pub fn find(k: &KubeTarget, namespace: &str, fleet: &str) -> Result<Option<FoundLease>, String> {
    let name = format!("hcpc-lock-{fleet}");
    let lease =
        k.get_lease(namespace, &name).map_err(|e| format!("cannot read the lock Lease {namespace}/{name}: {e}"))?;
    Ok(lease.map(|lease| FoundLease {
        holder: Holder::of(&lease).describe(),
        resource_version: lease.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(str::to_string),
        namespace: namespace.to_string(),
        name,
    }))
}

/// Deletes the Lease that was shown; one renewed or taken since (its
/// holder is still running) is left alone, and said.
pub fn break_lease(k: &KubeTarget, found: &FoundLease) -> Result<(), String> {
    k.delete_lease(&found.namespace, &found.name, found.resource_version.clone()).map_err(|e| {
        if e.code == 409 {
            format!(
                "the Lease {}/{} changed since it was shown: its holder renewed it, so that apply is still running; it was left alone",
                found.namespace, found.name
            )
        } else {
            format!("cannot delete the Lease {}/{}: {e}", found.namespace, found.name)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed: &str, seconds: i64) -> Value {
        json!({"spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds, "renewTime": renewed}})
    }

    /// A `renewTime` years behind this machine's clock says nothing: the
    /// Lease has its whole duration from when it is first seen.
    #[test]
    fn a_skewed_renew_time_does_not_expire_a_lease() {
        let t0 = Instant::now();
        let seen = Observation::new(&lease("a", "2020-01-01T00:00:00Z", 300), t0);
        assert!(!seen.expired(t0));
        assert!(!seen.expired(t0 + Duration::from_secs(299)));
        assert!(seen.expired(t0 + Duration::from_secs(300)));
        assert_eq!(seen.remaining(t0 + Duration::from_secs(100)), Duration::from_secs(200));
    }

    /// Each renewal seen starts the duration again; seeing the same record
    /// again does not.
    #[test]
    fn a_renewal_seen_starts_the_duration_again() {
        let t0 = Instant::now();
        let mut seen = Observation::new(&lease("a", "2026-01-01T00:00:00Z", 10), t0);
        seen.update(&lease("a", "2026-01-01T00:00:00Z", 10), t0 + Duration::from_secs(8));
        assert!(seen.expired(t0 + Duration::from_secs(10)));
        seen.update(&lease("a", "2026-01-01T00:00:08Z", 10), t0 + Duration::from_secs(9));
        assert!(!seen.expired(t0 + Duration::from_secs(18)));
        assert!(seen.expired(t0 + Duration::from_secs(19)));
        // Taken by another holder: a new record, a new duration.
        seen.update(&lease("b", "2026-01-01T00:00:08Z", 30), t0 + Duration::from_secs(20));
        assert!(!seen.expired(t0 + Duration::from_secs(49)));
    }

    /// The process recorded on a Lease is recognised while it runs, and a
    /// record that no process of this machine matches is not "ended".
    #[test]
    fn the_holder_process_is_recognised() {
        let me = this_process().expect("this process, from /proc");
        let annotated = |process: &str| json!({"metadata": {"annotations": {PROCESS_ANNOTATION: process}}});
        assert!(!holder_ended(&annotated(&me)), "this process runs");
        let mut parts: Vec<&str> = me.split(' ').collect();
        parts[3] = "1";
        assert!(holder_ended(&annotated(&parts.join(" "))), "same pid, another start: it ended");
        parts[0] = "another-boot";
        assert!(!holder_ended(&annotated(&parts.join(" "))), "another machine is not judged");
        assert!(!holder_ended(&json!({})));
    }
}
