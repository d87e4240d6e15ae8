//! `Status` error bodies shaped exactly like the real server's (see
//! `shared/conformance/apiserver/exchanges.json`), so that hcpc's error
//! handling is exercised against the real wording, reasons and details.

use serde_json::{Map, Value, json};

use super::resources::ResourceType;

/// A failed request: the HTTP status and the `Status` body to send.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub body: Value,
    /// Seconds for a `Retry-After` header (only for injected 429s).
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// One field-level validation failure, as listed in `details.causes`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FieldError {
    /// Field path as the server prints it, e.g. `spec.networking.clusterNetwork`.
    pub field: String,
    /// Cause reason, e.g. `FieldValueInvalid`.
    pub reason: &'static str,
    /// The message without the path, e.g. `Invalid value: -3: should be a non-negative integer`.
    pub message: String,
}

/// A server-side apply conflict with another field manager.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Conflict {
    /// The manager as the server prints it, quotes included (`"hcpc"`).
    pub manager: String,
    /// The field path, e.g. `.spec.replicas`.
    pub path: String,
}

fn failure(code: u16, reason: Option<&str>, message: &str, details: Option<Value>) -> ApiError {
    let mut body = Map::new();
    body.insert("kind".into(), json!("Status"));
    body.insert("apiVersion".into(), json!("v1"));
    body.insert("metadata".into(), json!({}));
    body.insert("status".into(), json!("Failure"));
    if !message.is_empty() {
        body.insert("message".into(), json!(message));
    }
    if let Some(reason) = reason {
        body.insert("reason".into(), json!(reason));
    }
    if let Some(details) = details {
        body.insert("details".into(), details);
    }
    body.insert("code".into(), json!(code));
    ApiError { code, body: Value::Object(body), retry_after: None }
}

/// `details` naming an object the way the server does: `kind` is the plural
/// resource name and `group` is left out for the core group.
fn object_details(group: &str, plural: &str, name: &str) -> Value {
    let mut details = Map::new();
    details.insert("name".into(), json!(name));
    if !group.is_empty() {
        details.insert("group".into(), json!(group));
    }
    details.insert("kind".into(), json!(plural));
    Value::Object(details)
}

pub fn unauthorized() -> ApiError {
    failure(401, Some("Unauthorized"), "Unauthorized", None)
}

pub fn not_found(rt: &ResourceType, name: &str) -> ApiError {
    failure(
        404,
        Some("NotFound"),
        &format!("{} \"{name}\" not found", rt.qualified()),
        Some(object_details(&rt.group, &rt.plural, name)),
    )
}

/// The 404 for a write into a namespace that does not exist.
pub fn namespace_not_found(namespace: &str) -> ApiError {
    failure(
        404,
        Some("NotFound"),
        &format!("namespaces \"{namespace}\" not found"),
        Some(object_details("", "namespaces", namespace)),
    )
}

/// The 404 for a path the server does not serve at all.
pub fn unknown_path() -> ApiError {
    failure(404, Some("NotFound"), "the server could not find the requested resource", Some(json!({})))
}

pub fn already_exists(rt: &ResourceType, name: &str) -> ApiError {
    failure(
        409,
        Some("AlreadyExists"),
        &format!("{} \"{name}\" already exists", rt.qualified()),
        Some(object_details(&rt.group, &rt.plural, name)),
    )
}

/// Optimistic-concurrency failure (stale `resourceVersion`, failed precondition).
pub fn conflict(rt: &ResourceType, name: &str, why: &str) -> ApiError {
    failure(
        409,
        Some("Conflict"),
        &format!("Operation cannot be fulfilled on {} \"{name}\": {why}", rt.qualified()),
        Some(object_details(&rt.group, &rt.plural, name)),
    )
}

pub const STALE_OBJECT: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// Server-side apply conflicts, with the server's message layout: a single
/// conflict inline, several grouped per manager.
pub fn apply_conflict(mut conflicts: Vec<Conflict>) -> ApiError {
    conflicts.sort();
    conflicts.dedup();
    let message = match conflicts.as_slice() {
        [one] => format!("Apply failed with 1 conflict: conflict with {}: {}", one.manager, one.path),
        many => {
            let mut lines = Vec::new();
            let mut current: Option<&str> = None;
            for c in many {
                if current != Some(c.manager.as_str()) {
                    lines.push(format!("conflicts with {}:", c.manager));
                    current = Some(c.manager.as_str());
                }
                lines.push(format!("- {}", c.path));
            }
            format!("Apply failed with {} conflicts: {}", many.len(), lines.join("\n"))
        }
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", c.manager),
                "field": c.path,
            })
        })
        .collect();
    failure(409, Some("Conflict"), &message, Some(json!({ "causes": causes })))
}

pub fn bad_request(message: &str) -> ApiError {
    failure(400, Some("BadRequest"), message, None)
}

pub fn method_not_allowed(message: &str) -> ApiError {
    failure(405, Some("MethodNotAllowed"), message, None)
}

pub fn unsupported_media_type(content_type: &str) -> ApiError {
    failure(
        415,
        Some("UnsupportedMediaType"),
        &format!(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, \
             application/apply-patch+yaml (got {content_type:?})"
        ),
        None,
    )
}

/// A 500 without a reason, as the server sends for errors it did not classify
/// (the typed-patch failure of server-side apply is one).
pub fn internal(message: &str) -> ApiError {
    failure(500, None, message, None)
}

/// 422 Invalid. Causes are sorted (the real server's order varies between
/// calls) and duplicates removed, and the message lists them in that order.
pub fn invalid(kind: &str, group: &str, name: &str, mut errors: Vec<FieldError>) -> ApiError {
    errors.sort();
    errors.dedup();
    let qualified_kind = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
    let rendered: Vec<String> = errors
        .iter()
        .map(|e| {
            let field = if e.field.is_empty() { "<nil>" } else { &e.field };
            format!("{field}: {}", e.message)
        })
        .collect();
    let summary = match rendered.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    let causes: Vec<Value> = errors
        .iter()
        .map(|e| {
            let mut cause = Map::new();
            cause.insert("reason".into(), json!(e.reason));
            cause.insert("message".into(), json!(e.message));
            if !e.field.is_empty() {
                cause.insert("field".into(), json!(e.field));
            }
            Value::Object(cause)
        })
        .collect();
    let mut details = Map::new();
    details.insert("name".into(), json!(name));
    if !group.is_empty() {
        details.insert("group".into(), json!(group));
    }
    details.insert("kind".into(), json!(kind));
    details.insert("causes".into(), Value::Array(causes));
    failure(
        422,
        Some("Invalid"),
        &format!("{qualified_kind} \"{name}\" is invalid: {summary}"),
        Some(Value::Object(details)),
    )
}

/// The body of a successful DELETE of an object that is gone at once.
pub fn delete_success(rt: &ResourceType, name: &str, uid: &str) -> Value {
    let mut details = Map::new();
    details.insert("name".into(), json!(name));
    if !rt.group.is_empty() {
        details.insert("group".into(), json!(rt.group));
    }
    details.insert("kind".into(), json!(rt.plural));
    details.insert("uid".into(), json!(uid));
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

/// The error a test asked for through the fault-injection API.
pub fn injected(code: u16) -> ApiError {
    let reason = match code {
        400 => Some("BadRequest"),
        401 => Some("Unauthorized"),
        403 => Some("Forbidden"),
        404 => Some("NotFound"),
        405 => Some("MethodNotAllowed"),
        409 => Some("Conflict"),
        410 => Some("Expired"),
        422 => Some("Invalid"),
        429 => Some("TooManyRequests"),
        500 => Some("InternalError"),
        503 => Some("ServiceUnavailable"),
        504 => Some("Timeout"),
        _ => None,
    };
    let err = failure(code, reason, "injected fault", None);
    // The real server's priority-and-fairness 429 asks to come back in 1s.
    if code == 429 { with_retry_after(err, 1) } else { err }
}

/// An injected error asking the client to come back in `seconds`.
pub fn injected_retry_after(code: u16, seconds: u64) -> ApiError {
    with_retry_after(injected(code), seconds)
}

fn with_retry_after(mut err: ApiError, seconds: u64) -> ApiError {
    err.retry_after = Some(seconds);
    if let Some(body) = err.body.as_object_mut() {
        body.insert("details".into(), json!({ "retryAfterSeconds": seconds }));
    }
    err
}
