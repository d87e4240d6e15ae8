//! The network side: a loopback listener whose connections can be cut on
//! demand (to simulate a server dying mid-request), and the single axum
//! handler that records each request, applies injected faults and hands the
//! rest to the router.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::faults::FaultAction;
use super::router::{Api, Reply, Request};
use super::status;
use super::util;

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

/// Serves `api` on `listener` until `shutdown` fires (or its sender drops).
pub async fn serve(listener: std::net::TcpListener, api: Arc<Api>, shutdown: oneshot::Receiver<()>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => CuttableListener { inner: l },
        Err(e) => {
            eprintln!("test API server: cannot use its listener: {e}");
            return;
        }
    };
    let app = Router::new().fallback(handle).layer(DefaultBodyLimit::max(BODY_LIMIT)).with_state(api);
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<ConnectionCut>());
    tokio::select! {
        result = server.into_future() => {
            if let Err(e) = result {
                eprintln!("test API server stopped: {e}");
            }
        }
        _ = shutdown => {}
    }
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

async fn handle(
    State(api): State<Arc<Api>>,
    ConnectInfo(cut): ConnectInfo<ConnectionCut>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_and_query = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| uri.path().to_string());
    api.record(method.as_str(), &path_and_query);
    let (delay, fault) = api.faults.on_request(method.as_str(), &path_and_query);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    match fault {
        Some(FaultAction::Drop) => {
            cut.0.store(true, Ordering::SeqCst);
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Some(FaultAction::Fail(code)) => return respond(status::injected(code).into()),
        Some(FaultAction::Throttle { status, seconds }) => {
            return respond(status::injected_retry_after(status, seconds).into());
        }
        None => {}
    }
    let request = Request {
        method: method.as_str().to_string(),
        path: uri.path().to_string(),
        query: util::parse_query(uri.query().unwrap_or_default()),
        content_type: header_text(&headers, header::CONTENT_TYPE),
        accept: header_text(&headers, header::ACCEPT),
        authorization: headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string),
        user_agent: header_text(&headers, header::USER_AGENT),
        body: body.to_vec(),
    };
    respond(api.handle(&request))
}

fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match &reply.body {
        serde_json::Value::String(text) if reply.content_type == "text/plain" => text.clone(),
        other => other.to_string(),
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    if let Some(seconds) = reply.retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        headers.insert(header::RETRY_AFTER, value);
    }
    response
}
