//! Fault injection, so tests can check how hcpc copes with a flaky API
//! server: failing responses, slow responses and dropped connections.
//!
//! Request numbers count every request the server receives after the fault
//! is registered, starting at 1, whatever its path or outcome.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What happens to a request picked by a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this HTTP status and a matching `Status` body.
    Fail(u16),
    /// Close the connection without answering.
    Drop,
    /// Answer with this HTTP status and `Retry-After: seconds`.
    Throttle { status: u16, seconds: u64 },
    /// Answer with this HTTP status and a `Status` whose message carries
    /// terminal escape sequences, a forged output line and 50 KB of text.
    Hostile(u16),
    /// Answer 200 with a LIST that never ends.
    Endless,
}

#[derive(Debug)]
enum Rule {
    /// Fires on the request with this absolute sequence number.
    Nth { at: u64, action: FaultAction },
    /// Fires on the next `remaining` requests matching method and path.
    Matching { method: String, path_substring: String, action: FaultAction, remaining: usize },
}

#[derive(Debug, Default)]
struct State {
    seen: u64,
    rules: Vec<Rule>,
    delay: Option<Duration>,
    /// `(method, path substring, delay)`: every matching request waits.
    slow: Vec<(String, String, Duration)>,
}

/// The fault-injection controls of one server; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

impl Faults {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state)
    }

    /// The `n`-th request from now (1 = the next one) fails with `status`.
    pub fn fail_nth(&self, n: u64, status: u16) {
        self.with(|s| {
            let at = s.seen + n.max(1);
            s.rules.push(Rule::Nth { at, action: FaultAction::Fail(status) });
        });
    }

    /// The next `times` requests with this method (case-insensitive, `"*"`
    /// for any) whose path and query contain `path_substring` fail with `status`.
    pub fn fail_matching(&self, method: &str, path_substring: &str, status: u16, times: usize) {
        self.with(|s| {
            s.rules.push(Rule::Matching {
                method: method.to_ascii_uppercase(),
                path_substring: path_substring.to_string(),
                action: FaultAction::Fail(status),
                remaining: times,
            });
        });
    }

    /// Like [`Faults::fail_matching`], with a hostile message ([`FaultAction::Hostile`]).
    pub fn hostile_matching(&self, method: &str, path_substring: &str, status: u16, times: usize) {
        self.matching(method, path_substring, FaultAction::Hostile(status), times);
    }

    /// The next `times` matching requests get a body without end.
    pub fn endless_matching(&self, method: &str, path_substring: &str, times: usize) {
        self.matching(method, path_substring, FaultAction::Endless, times);
    }

    fn matching(&self, method: &str, path_substring: &str, action: FaultAction, times: usize) {
        self.with(|s| {
            s.rules.push(Rule::Matching {
                method: method.to_ascii_uppercase(),
                path_substring: path_substring.to_string(),
                action,
                remaining: times,
            });
        });
    }

    /// Like [`Faults::fail_matching`], with a `Retry-After` header (and
    /// `details.retryAfterSeconds`) asking to come back in `seconds`.
    pub fn throttle_matching(&self, method: &str, path_substring: &str, status: u16, seconds: u64, times: usize) {
        self.with(|s| {
            s.rules.push(Rule::Matching {
                method: method.to_ascii_uppercase(),
                path_substring: path_substring.to_string(),
                action: FaultAction::Throttle { status, seconds },
                remaining: times,
            });
        });
    }

    /// Every later request waits `delay` before it is handled
    /// (`Duration::ZERO` turns the delay off).
    pub fn delay(&self, delay: Duration) {
        self.with(|s| s.delay = (!delay.is_zero()).then_some(delay));
    }

    /// Every later request with this method (`"*"` for any) whose path
    /// contains `path_substring` waits `delay` before it is handled.
    pub fn delay_matching(&self, method: &str, path_substring: &str, delay: Duration) {
        self.with(|s| s.slow.push((method.to_ascii_uppercase(), path_substring.to_string(), delay)));
    }

    /// The `n`-th request from now has its connection closed unanswered.
    pub fn drop_connection_nth(&self, n: u64) {
        self.with(|s| {
            let at = s.seen + n.max(1);
            s.rules.push(Rule::Nth { at, action: FaultAction::Drop });
        });
    }

    /// Removes every fault and the delay.
    pub fn clear(&self) {
        self.with(|s| {
            s.rules.clear();
            s.delay = None;
            s.slow.clear();
        });
    }

    /// Counts a request and decides its fate: the delay to apply and the
    /// fault to inject, if any. At most one fault fires per request.
    pub(super) fn on_request(&self, method: &str, path: &str) -> (Option<Duration>, Option<FaultAction>) {
        self.with(|s| {
            s.seen += 1;
            let seen = s.seen;
            // Rules by path stand for real writes: a server-side dry run
            // (`dryRun=All`) is matched only by a rule that names it.
            let dry_run = path.contains("dryRun=");
            let matches = |m: &str, p: &str| {
                (m == "*" || m.eq_ignore_ascii_case(method)) && path.contains(p) && (!dry_run || p.contains("dryRun"))
            };
            let mut fired = None;
            for rule in s.rules.iter_mut() {
                match rule {
                    Rule::Nth { at, action } if *at == seen => {
                        fired = Some(*action);
                        break;
                    }
                    Rule::Matching { method: m, path_substring, action, remaining }
                        if *remaining > 0 && matches(m, path_substring) =>
                    {
                        *remaining -= 1;
                        fired = Some(*action);
                        break;
                    }
                    _ => {}
                }
            }
            s.rules.retain(|r| match r {
                Rule::Nth { at, .. } => *at > seen,
                Rule::Matching { remaining, .. } => *remaining > 0,
            });
            let slow = s.slow.iter().filter(|(m, p, _)| matches(m, p)).map(|(_, _, d)| *d).max();
            (s.delay.max(slow), fired)
        })
    }
}

/// The `Status` body of an injected failure, shaped like the real
/// server's, and the `Retry-After` seconds to send with it.
pub(super) fn injected_status(code: u16) -> (serde_json::Value, Option<u64>) {
    let reason = match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "",
    };
    let mut body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "injected fault", "code": code,
    });
    if !reason.is_empty() {
        body["reason"] = reason.into();
    }
    // The real server's priority-and-fairness 429 asks to come back in 1s.
    if code == 429 {
        body["details"] = serde_json::json!({"retryAfterSeconds": 1});
        return (body, Some(1));
    }
    (body, None)
}
