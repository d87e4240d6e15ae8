//! A ceiling on every response body read from the management cluster.
//!
//! A LIST of a 1,000-cluster fleet is tens of megabytes; a server (or a
//! proxy in front of it) that streams without end would otherwise hold
//! hcpc's memory until `--request-timeout`. A body past
//! [`MAX_RESPONSE_BYTES`] fails the request at once, is never retried, and
//! says which limit it passed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::Limited;
use kube::client::{Body, DynBody};
use tower::{BoxError, Layer, Service};

/// The largest response body read (README, Security): ten times a LIST of
/// a 1,000-cluster fleet with its operator status.
pub const MAX_RESPONSE_BYTES: usize = 256 << 20;

#[derive(Clone, Copy, Default)]
pub struct BoundedLayer;

impl<S> Layer<S> for BoundedLayer {
    type Service = Bounded<S>;
    fn layer(&self, inner: S) -> Bounded<S> {
        Bounded(inner)
    }
}

#[derive(Clone)]
pub struct Bounded<S>(S);

type Response = http::Response<Box<DynBody>>;

impl<S> Service<http::Request<Body>> for Bounded<S>
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
            Ok(response.map(|body| Box::new(Limited::new(body, MAX_RESPONSE_BYTES)) as Box<DynBody>))
        })
    }
}

/// Whether a client error is a body cut off at [`MAX_RESPONSE_BYTES`].
pub fn is_too_large(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}
