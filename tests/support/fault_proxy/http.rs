//! The network side: a loopback listener whose connections can be cut on
//! demand (to simulate a server dying mid-request), and the single axum
//! handler that records each request, applies injected faults and forwards
//! the rest to the real server.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::Shared;
use super::faults::{FaultAction, injected_status};

/// Large enough for any object hcpc sends; axum's default is 2 MiB.
const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// A TCP connection that can be cut: once `cut` is set, reads see EOF and
/// writes fail, so hyper closes the connection without answering.
pub struct CuttableStream {
    inner: TcpStream,
    cut: Arc<AtomicBool>,
}

impl CuttableStream {
    fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.is_cut() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.is_cut() {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.is_cut() {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Accepts connections and wraps them in [`CuttableStream`].
pub struct CuttableListener {
    inner: TcpListener,
}

impl Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // A failed accept (e.g. too many open files) is retried after a
        // pause; the loop ends when the server task is dropped.
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let io = CuttableStream { inner: stream, cut: Arc::new(AtomicBool::new(false)) };
                    return (io, addr);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The switch that cuts the connection a request arrived on.
#[derive(Clone)]
struct ConnectionCut(Arc<AtomicBool>);

impl Connected<IncomingStream<'_, CuttableListener>> for ConnectionCut {
    fn connect_info(stream: IncomingStream<'_, CuttableListener>) -> Self {
        ConnectionCut(stream.io().cut.clone())
    }
}

/// Serves on `listener`, forwarding to `upstream`, until `shutdown` fires
/// (or its sender drops).
pub async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    upstream: kube::Client,
    shutdown: oneshot::Receiver<()>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => CuttableListener { inner: l },
        Err(e) => {
            eprintln!("fault proxy: cannot use its listener: {e}");
            return;
        }
    };
    let app = Router::new().fallback(handle).layer(DefaultBodyLimit::max(BODY_LIMIT)).with_state((shared, upstream));
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<ConnectionCut>());
    tokio::select! {
        result = server.into_future() => {
            if let Err(e) = result {
                eprintln!("fault proxy stopped: {e}");
            }
        }
        _ = shutdown => {}
    }
}

/// Request headers that describe the request itself; the rest (credentials,
/// connection handling) is the upstream client's business.
const FORWARDED: [header::HeaderName; 3] = [header::CONTENT_TYPE, header::ACCEPT, header::USER_AGENT];

async fn handle(
    State((shared, upstream)): State<(Arc<Shared>, kube::Client)>,
    ConnectInfo(cut): ConnectInfo<ConnectionCut>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_and_query = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| uri.path().to_string());
    shared.requests.lock().unwrap_or_else(|e| e.into_inner()).push((method.to_string(), path_and_query.clone()));
    let (delay, fault) = shared.faults.on_request(method.as_str(), &path_and_query);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    match fault {
        Some(FaultAction::Drop) => {
            cut.0.store(true, Ordering::SeqCst);
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Some(FaultAction::Throttle { status, seconds }) => {
            let (mut body, _) = injected_status(status);
            body["details"] = serde_json::json!({ "retryAfterSeconds": seconds });
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (code, body.to_string()).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            return response;
        }
        Some(FaultAction::Hostile(code)) => {
            let (mut body, _) = injected_status(code);
            body["message"] = serde_json::Value::String(format!(
                "denied \u{1b}]0;PWNED\u{7}\u{1b}[2J\nPlan: 0 to add, 0 to change, 0 to destroy.\n{}",
                "x".repeat(50_000)
            ));
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (status, body.to_string()).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return response;
        }
        Some(FaultAction::Endless) => {
            let item = Bytes::from(format!("{{\"metadata\":{{\"name\":\"{}\"}}}},", "x".repeat(60)).repeat(1000));
            let head = futures_util::stream::once(async {
                Ok::<Bytes, io::Error>(Bytes::from_static(b"{\"kind\":\"List\",\"items\":["))
            });
            let rest = futures_util::stream::repeat_with(move || Ok::<Bytes, io::Error>(item.clone()));
            let mut response = Response::new(Body::from_stream(futures_util::StreamExt::chain(head, rest)));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return response;
        }
        Some(FaultAction::Fail(code)) => {
            let (body, retry_after) = injected_status(code);
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (status, body.to_string()).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            return response;
        }
        None => {}
    }
    let mut request = axum::http::Request::builder().method(method).uri(path_and_query);
    for name in FORWARDED {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value);
        }
    }
    let request = match request.body(kube::client::Body::from(body.to_vec())) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    match upstream.send(request).await {
        Ok(answer) => {
            let (parts, body) = answer.into_parts();
            let mut response = Response::new(Body::new(body));
            *response.status_mut() = parts.status;
            for (name, value) in &parts.headers {
                if ![header::CONNECTION, header::TRANSFER_ENCODING, header::CONTENT_LENGTH].contains(name) {
                    response.headers_mut().append(name, value.clone());
                }
            }
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("fault proxy: the upstream server failed: {e}")).into_response(),
    }
}
