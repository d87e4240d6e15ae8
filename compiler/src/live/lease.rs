//! The fleet lock on a management cluster: a coordination.k8s.io Lease
//! `hcpc-lock-<fleet>` with the holder's identity, renewed while applying
//! and deleted at the end (only by its holder). A Lease whose holder
//! stopped renewing it (a crashed apply) expires and is taken over.

use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::kube::KubeTarget;
use super::{Lock, host_name, when};
use hcpc_schema::labels;

/// How long a Lease is valid without renewal: a crashed apply blocks
/// others for at most this long. It outlasts the longest request with its
/// retries, and the holder renews from a thread that never waits on one.
pub const LEASE_SECONDS: i64 = 300;
/// How often the holder renews.
const RENEW_EVERY: Duration = Duration::from_secs(60);
/// How often a waiting apply looks at the Lease again.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// A held Lease.
pub struct KubeLock<'a> {
    k: &'a KubeTarget,
    namespace: String,
    name: String,
    holder: String,
    body: Value,
    renewed: Instant,
    held: bool,
}

fn now() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// What a Lease says about its holder, for messages.
struct Holder {
    identity: String,
    acquired: Option<Timestamp>,
    renewed: Option<Timestamp>,
    expires: Option<Timestamp>,
}

impl Holder {
    fn of(lease: &Value) -> Holder {
        let time = |field: &str| {
            lease.pointer(&format!("/spec/{field}")).and_then(Value::as_str).and_then(|t| t.parse::<Timestamp>().ok())
        };
        let duration = lease.pointer("/spec/leaseDurationSeconds").and_then(Value::as_i64).unwrap_or(LEASE_SECONDS);
        let renewed = time("renewTime").or_else(|| time("acquireTime"));
        Holder {
            identity: lease.pointer("/spec/holderIdentity").and_then(Value::as_str).unwrap_or("unknown").to_string(),
            acquired: time("acquireTime"),
            renewed,
            expires: renewed.and_then(|r| Timestamp::from_second(r.as_second().saturating_add(duration)).ok()),
        }
    }

    /// Whether its holder stopped renewing it.
    fn expired(&self) -> bool {
        self.expires.is_none_or(|e| Timestamp::now() > e)
    }

    /// `hcpc@host/123 since T (2m ago), last renewed T (10s ago); it expires at T (in 4m50s) unless renewed`.
    fn describe(&self) -> String {
        let mut out = self.identity.clone();
        if let Some(t) = self.acquired {
            out.push_str(&format!(" since {}", when(t)));
        }
        if let Some(t) = self.renewed {
            out.push_str(&format!(", last renewed {}", when(t)));
        }
        match self.expires {
            Some(t) if self.expired() => out.push_str(&format!("; it expired {}", when(t))),
            Some(t) => out.push_str(&format!("; it expires {} unless renewed", when(t))),
            None => {}
        }
        out
    }
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
        let fresh = |rv: Option<&str>| {
            let mut meta =
                json!({"name": name, "namespace": namespace, "labels": {labels::MANAGED_BY: labels::MANAGED_BY_VALUE}});
            if let Some(rv) = rv {
                meta["resourceVersion"] = json!(rv);
            }
            json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": meta,
                "spec": {"holderIdentity": holder, "leaseDurationSeconds": LEASE_SECONDS, "acquireTime": now(), "renewTime": now()},
            })
        };
        let held = |body: Value| KubeLock {
            k,
            namespace: namespace.into(),
            name: name.into(),
            holder: holder.clone(),
            body,
            renewed: Instant::now(),
            held: true,
        };
        let start = Instant::now();
        let mut last_said: Option<String> = None;
        let mut last_error = String::new();
        loop {
            let body = fresh(None);
            if k.create_lease(namespace, &body).map_err(|e| format!("cannot create the lock Lease: {e}"))? {
                let body = k.get_lease(namespace, name).ok().flatten().unwrap_or(body);
                return Ok(held(body));
            }
            let Some(current) = k.get_lease(namespace, name).map_err(|e| format!("cannot read the lock Lease: {e}"))?
            else {
                continue; // released between our create and get: try again at once
            };
            let other = Holder::of(&current);
            if other.expired() {
                // Take over a Lease whose holder stopped renewing it.
                let rv = current.pointer("/metadata/resourceVersion").and_then(Value::as_str);
                match k.replace_lease(namespace, name, &fresh(rv)) {
                    Ok(body) => {
                        say(&format!(
                            "warning: took over the fleet lock (Lease {namespace}/{name}) from {}",
                            other.describe()
                        ));
                        return Ok(held(body));
                    }
                    Err(e) => last_error = format!("; taking over the expired lock failed: {e}"),
                }
            }
            if start.elapsed() >= timeout || crate::interrupt::requested().is_some() {
                return Err(format!(
                    "the fleet is locked by {} (Lease {namespace}/{name}){last_error}\n  help: wait for that apply to finish, or pass --lock-timeout 10m to wait; a crashed holder's lock expires {LEASE_SECONDS}s after its last renewal, and `hcpc unlock` releases it at once",
                    other.describe()
                ));
            }
            // Once, and again whenever the holder or its renewal changes.
            let seen = format!("{}{:?}", other.identity, other.renewed);
            if last_said.as_ref() != Some(&seen) {
                say(&format!(
                    "waiting for the fleet lock (Lease {namespace}/{name}), held by {}; waiting up to {}s more",
                    other.describe(),
                    timeout.saturating_sub(start.elapsed()).as_secs()
                ));
                last_said = Some(seen);
            }
            // Short naps, so that a signal is noticed at once.
            let nap = POLL_EVERY.min(timeout.saturating_sub(start.elapsed()));
            let napping = Instant::now();
            while napping.elapsed() < nap && crate::interrupt::requested().is_none() {
                std::thread::sleep(Duration::from_millis(100).min(nap));
            }
        }
    }
}

impl Lock for KubeLock<'_> {
    fn renew_if_due(&mut self) -> Result<(), String> {
        if self.renewed.elapsed() < RENEW_EVERY {
            return Ok(());
        }
        let mut body = self.body.clone();
        body["spec"]["renewTime"] = json!(now());
        body["spec"]["holderIdentity"] = json!(self.holder);
        self.body = self
            .k
            .replace_lease(&self.namespace, &self.name, &body)
            .map_err(|e| format!("lost the fleet lock (Lease {}/{}): {e}", self.namespace, self.name))?;
        self.renewed = Instant::now();
        Ok(())
    }

    fn release(&mut self) -> Result<(), String> {
        if !self.held {
            return Ok(());
        }
        self.held = false;
        // Delete only our own Lease: if it was taken over, it is not ours.
        let rv = self.body.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(str::to_string);
        self.k.delete_lease(&self.namespace, &self.name, rv).map_err(|e| {
            format!(
                "could not release the fleet lock (Lease {}/{}): {e}; it expires {LEASE_SECONDS}s after its last renewal",
                self.namespace, self.name
            )
        })
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
