//! The one retry policy for every request to the management cluster.
//!
//! kube's own retry layer is switched off (it would retry 15 times, for up
//! to 1000 s between attempts, under hcpc's loop); hcpc retries transient
//! failures itself, within one deadline per request (`--request-timeout`,
//! default 30 s) that covers every attempt, every pause between them and
//! every `Retry-After` the server asks for. A request that cannot succeed
//! within it fails, naming the server and what it answered.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use kube::client::{Body, DynBody};
use kube::core::Status;
use tower::{BoxError, Layer, Service};

/// The default `--request-timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The first pause between attempts; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(4);

/// Pauses between the attempts of one request, within its deadline.
pub struct Backoff {
    deadline: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(deadline: Duration) -> Backoff {
        Backoff { deadline, next: FIRST_PAUSE }
    }

    /// How long to wait before the next attempt, `elapsed` into the
    /// request: the server's `Retry-After` if it gave one, else the next
    /// exponential pause. `None` when the wait would end past the deadline.
    pub fn pause(&mut self, elapsed: Duration, retry_after: Option<Duration>) -> Option<Duration> {
        let pause = retry_after.unwrap_or(self.next);
        self.next = (self.next * 2).min(MAX_PAUSE);
        (elapsed + pause < self.deadline).then_some(pause)
    }

    /// How long the next attempt may take: what is left of the deadline,
    /// but at least a second so that a late retry is not doomed at once.
    pub fn attempt_limit(&self, elapsed: Duration) -> Duration {
        self.deadline.saturating_sub(elapsed).max(Duration::from_secs(1))
    }
}

/// What went wrong below HTTP, in words: the innermost cause of a client
/// error (`Connection refused (os error 111)`, a TLS or DNS failure)
/// rather than its outermost wrapper (`client error (Connect)`).
pub fn transport_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    cause
}

/// Whether a client error is a failed TLS verification (the server's
/// certificate is not signed by the CA the kubeconfig names, or names
/// another host): asking again gets the same certificate, so it is never
/// retried. rustls reports these as `invalid peer certificate: …`.
pub fn is_tls_verification_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.to_string().contains("invalid peer certificate") {
            return true;
        }
        source = s.source();
    }
    false
}

/// Whether a client error happened before the server was reached at all
/// (nothing listening, no route, name not resolved).
pub fn is_connect_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused | NotFound | HostUnreachable | NetworkUnreachable | AddrNotAvailable
            ) {
                return true;
            }
        }
        if s.to_string().contains("dns error") {
            return true;
        }
        source = s.source();
    }
    false
}

/// Carries a failed response's `Retry-After` header into the error kube
/// returns (`details.retryAfterSeconds` of its `Status`), where the header
/// would otherwise be lost.
#[derive(Clone, Copy, Default)]
pub struct RetryAfterLayer;

impl<S> Layer<S> for RetryAfterLayer {
    type Service = RetryAfter<S>;
    fn layer(&self, inner: S) -> RetryAfter<S> {
        RetryAfter(inner)
    }
}

#[derive(Clone)]
pub struct RetryAfter<S>(S);

type Response = http::Response<Box<DynBody>>;

impl<S> Service<http::Request<Body>> for RetryAfter<S>
where
    S: Service<http::Request<Body>, Response = Response, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let response = self.0.call(request);
        Box::pin(async move {
            let response = response.await?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u32>().ok());
            let Some(seconds) = retry_after.filter(|_| status.is_client_error() || status.is_server_error()) else {
                return Ok(response);
            };
            let bytes = response.into_body().collect().await?.to_bytes();
            let mut parsed = serde_json::from_slice::<Status>(&bytes).unwrap_or_else(|_| {
                let text = String::from_utf8_lossy(&bytes);
                Status::failure(text.trim(), status.canonical_reason().unwrap_or("Failure")).with_code(status.as_u16())
            });
            match parsed.details.as_mut() {
                Some(details) => details.retry_after_seconds = seconds,
                None => {
                    parsed.details = serde_json::from_value(serde_json::json!({ "retryAfterSeconds": seconds })).ok();
                }
            }
            Err(Box::new(kube::Error::Api(parsed.boxed())) as BoxError)
        })
    }
}
