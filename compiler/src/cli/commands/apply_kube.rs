//! Applying a plan to the management cluster: lock, ApplySet parent,
//! server-side apply in graph order, deletes in reverse, optional wait.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::apply::{Options, generate_key};
use super::plan::Planned;
use crate::cli::exit;
use crate::cli::printer::Style;
use crate::live::kube::{ApiError, KubeTarget};
use crate::object::{Kind, ObjectId};
use crate::plan::{Action, Change};
use crate::render::{applyset_id, applyset_parent};
use hcpc_schema::labels;

/// How long a Lease is valid without renewal: a crashed apply blocks
/// others for at most this long. It outlasts the longest single request
/// with its retries, so a live holder always renews in time.
const LEASE_SECONDS: i64 = 300;
/// How often the holder renews.
const RENEW_EVERY: Duration = Duration::from_secs(60);

pub fn run(k: &KubeTarget, shown: &Planned, opts: &Options, style: Style, replan: &dyn Fn() -> Option<Planned>) -> u8 {
    let planned = shown;
    let Some(resolved) = planned.compiled.resolved.as_ref() else { return exit::ERROR };
    let fleet = &resolved.fleet;
    let parent = applyset_parent(fleet);
    // The lock and the ApplySet parent live in the fleet's namespace.
    if let Err(e) = k.apply(
        &ObjectId::new(Kind::Namespace, "", &parent.namespace),
        &namespace_body(&parent.namespace, &applyset_id(fleet)),
        false,
    ) {
        eprintln!("error[hcpc::api]: cannot create namespace {}: {e}; nothing was applied", parent.namespace);
        return exit::ERROR;
    }
    let mut lock = match Lease::acquire(k, &parent.namespace, &format!("hcpc-lock-{}", fleet.name), opts.lock_timeout) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error[hcpc::apply::locked]: {e}; nothing was applied");
            return exit::ERROR;
        }
    };
    let fleet_ns = ObjectId::new(Kind::Namespace, "", &parent.namespace);
    let Some(fresh) = super::apply::replan_under_lock(shown, replan, Some(&fleet_ns)) else {
        lock.release();
        return exit::ERROR;
    };
    let planned = &fresh;
    let result = apply_all(k, planned, opts, style, &mut lock);
    lock.release();
    match result {
        Ok(()) => {
            if !style.quiet {
                eprintln!("{}", planned.plan.summary.applied_line());
            }
            if opts.wait { super::wait::run(k, planned, opts.timeout, style) } else { exit::OK }
        }
        Err((done, failed, err)) => {
            eprintln!("error: {failed}: {err}");
            let pending: Vec<String> = planned
                .plan
                .changes
                .iter()
                .filter(|c| c.action != Action::NoOp && !done.contains(&c.id.to_string()))
                .map(|c| c.id.to_string())
                .collect();
            eprintln!("applied: {}", if done.is_empty() { "nothing".to_string() } else { done.join(", ") });
            eprintln!("not applied: {}", pending.join(", "));
            eprintln!("  help: fix the cause and run apply again; it continues from the current state");
            exit::ERROR
        }
    }
}

fn namespace_body(name: &str, applyset: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {
            labels::MANAGED_BY: labels::MANAGED_BY_VALUE,
            labels::APPLYSET_PART_OF: applyset,
        }},
    })
}

type Failure = (Vec<String>, String, String);

fn apply_all(
    k: &KubeTarget,
    planned: &Planned,
    opts: &Options,
    style: Style,
    lock: &mut Lease<'_>,
) -> Result<(), Failure> {
    let mut done: Vec<String> = Vec::new();
    let fleet = &planned.compiled.resolved.as_ref().map(|r| &r.fleet);
    let Some(fleet) = fleet else { return Ok(()) };
    // KEP-3659: the parent lists every group-kind and namespace before members are written.
    let parent = applyset_parent(fleet);
    // KEP-3659: the union of where members are and where they will be,
    // until pruning has removed the old ones.
    let mut namespaces: Vec<&str> = planned
        .compiled
        .objects
        .iter()
        .map(|o| o.id.namespace.as_str())
        .chain(planned.live.iter().map(|l| l.id.namespace.as_str()))
        .filter(|n| !n.is_empty() && *n != parent.namespace)
        .collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    let parent_body = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": parent.name,
            "namespace": parent.namespace,
            "labels": {labels::APPLYSET_ID: applyset_id(fleet), labels::MANAGED_BY: labels::MANAGED_BY_VALUE},
            "annotations": {
                labels::APPLYSET_TOOLING: format!("hcpc/v{}", env!("CARGO_PKG_VERSION")),
                labels::APPLYSET_CONTAINS_GROUP_KINDS: "HostedCluster.hypershift.openshift.io,Namespace,NodePool.hypershift.openshift.io,Secret",
                labels::APPLYSET_ADDITIONAL_NAMESPACES: namespaces.join(","),
            },
        },
        "type": "Opaque",
    });
    k.apply(&parent, &parent_body, true).map_err(|e| (done.clone(), parent.to_string(), e.to_string()))?;

    for c in planned.plan.changes.iter().filter(|c| c.action != Action::NoOp) {
        lock.renew_if_due().map_err(|e| (done.clone(), "fleet lock".to_string(), e))?;
        let result = match c.action {
            Action::Delete => k.delete(&c.id),
            Action::Replace => {
                k.delete(&c.id).and_then(|()| wait_gone(k, &c.id, lock)).and_then(|()| apply_one(k, planned, c, opts))
            }
            _ => apply_one(k, planned, c, opts),
        };
        match result {
            Ok(()) => {
                if !style.quiet {
                    eprintln!("{} {}", c.action.symbol(), c.id);
                }
                done.push(c.id.to_string());
            }
            Err(e) => return Err((done, c.id.to_string(), describe(&e))),
        }
    }
    Ok(())
}

fn apply_one(k: &KubeTarget, planned: &Planned, c: &Change, opts: &Options) -> Result<(), ApiError> {
    let Some(o) = planned.compiled.objects.iter().find(|o| o.id == c.id) else { return Ok(()) };
    let mut body = o.body().clone();
    if o.create_only {
        // Never rewrite an existing key: check again right before creating.
        if k.get(c.id.kind, &c.id.namespace, &c.id.name)?.is_some() {
            return Ok(());
        }
        let key = generate_key().map_err(|message| ApiError {
            code: 0,
            reason: "Random".into(),
            message,
            causes: Vec::new(),
        })?;
        body["data"] = json!({ "key": key });
    }
    k.apply(&c.id, &body, opts.force_conflicts).map(|_| ())
}

fn wait_gone(k: &KubeTarget, id: &ObjectId, lock: &mut Lease<'_>) -> Result<(), ApiError> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(600) {
        if k.get(id.kind, &id.namespace, &id.name)?.is_none() {
            return Ok(());
        }
        lock.renew_if_due().map_err(|message| ApiError {
            code: 0,
            reason: "Lock".into(),
            message,
            causes: Vec::new(),
        })?;
        std::thread::sleep(Duration::from_secs(2));
    }
    Err(ApiError {
        code: 0,
        reason: "Timeout".into(),
        message: format!("{id} was not deleted within 10 minutes"),
        causes: Vec::new(),
    })
}

/// An API error in words, with conflicts spelt out.
fn describe(e: &ApiError) -> String {
    if e.code == 409 && !e.causes.is_empty() {
        let fields: Vec<String> = e.causes.iter().map(|(field, msg)| format!("{field} ({msg})")).collect();
        return format!(
            "server-side apply conflict: {}\n  help: another field manager owns these fields; re-run with --force-conflicts to take them over",
            fields.join(", ")
        );
    }
    if e.code == 422 && !e.causes.is_empty() {
        let fields: Vec<String> = e.causes.iter().map(|(field, msg)| format!("{field}: {msg}")).collect();
        return format!("rejected by the API server: {}", fields.join("; "));
    }
    e.to_string()
}

/// The fleet lock: a coordination.k8s.io Lease with a holder identity,
/// renewed while applying and deleted at the end; an expired Lease (its
/// holder crashed) is taken over.
struct Lease<'a> {
    k: &'a KubeTarget,
    namespace: String,
    name: String,
    holder: String,
    body: Value,
    renewed: Instant,
    held: bool,
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

impl<'a> Lease<'a> {
    fn acquire(k: &'a KubeTarget, namespace: &str, name: &str, timeout: Duration) -> Result<Lease<'a>, String> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let holder = format!("hcpc@{}/{}", host.trim(), std::process::id());
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
        let held = |body: Value| Lease {
            k,
            namespace: namespace.into(),
            name: name.into(),
            holder: holder.clone(),
            body,
            renewed: Instant::now(),
            held: true,
        };
        let start = Instant::now();
        let mut last_error = String::new();
        loop {
            let body = fresh(None);
            if k.create_lease(namespace, &body).map_err(|e| format!("cannot create lock Lease: {e}"))? {
                let body = k.get_lease(namespace, name).ok().flatten().unwrap_or(body);
                return Ok(held(body));
            }
            let current = k.get_lease(namespace, name).map_err(|e| format!("cannot read lock Lease: {e}"))?;
            let mut other = String::from("unknown");
            if let Some(cur) = current {
                other = cur.pointer("/spec/holderIdentity").and_then(Value::as_str).unwrap_or("unknown").to_string();
                if expired(&cur) {
                    // Take over a Lease whose holder stopped renewing it.
                    let rv = cur.pointer("/metadata/resourceVersion").and_then(Value::as_str);
                    match k.replace_lease(namespace, name, &fresh(rv)) {
                        Ok(body) => return Ok(held(body)),
                        Err(e) => last_error = format!("; taking over the expired lock failed: {e}"),
                    }
                }
            }
            if start.elapsed() >= timeout {
                return Err(format!(
                    "the fleet is locked by {other} (Lease {namespace}/{name}){last_error}\n  help: wait for that apply to finish, or pass --lock-timeout 5m to wait; a crashed holder's lock expires {LEASE_SECONDS}s after its last renewal"
                ));
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

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
            .map_err(|e| format!("lost the fleet lock: {e}"))?;
        self.renewed = Instant::now();
        Ok(())
    }

    fn release(&mut self) {
        if self.held {
            // Delete only our own Lease: if it was taken over, it is not ours.
            let rv = self.body.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(str::to_string);
            if let Err(e) = self.k.delete_lease(&self.namespace, &self.name, rv) {
                eprintln!(
                    "warning: could not release the fleet lock (Lease {}/{}): {e}; it expires {LEASE_SECONDS}s after its last renewal",
                    self.namespace, self.name
                );
            }
            self.held = false;
        }
    }
}

/// Whether a Lease's holder stopped renewing it.
fn expired(lease: &Value) -> bool {
    let duration = lease.pointer("/spec/leaseDurationSeconds").and_then(Value::as_i64).unwrap_or(LEASE_SECONDS);
    let Some(renew) = lease.pointer("/spec/renewTime").and_then(Value::as_str) else { return true };
    match renew.parse::<k8s_openapi::jiff::Timestamp>() {
        Ok(t) => k8s_openapi::jiff::Timestamp::now().as_second() > t.as_second().saturating_add(duration),
        Err(_) => true,
    }
}
