//! The browser client's listener: HTTPS with the server's certificate, the client's files (embedded at build
//! time by `build.rs` from `web/`), and the WebSocket on which a browser speaks the protocol in JSON (PROTOCOL.md,
//! section 15) to a session like any other. Every response carries the security headers; the WebSocket opens only
//! for a page of an allowed origin.
//!
//! A connection costs what a native one does: it is counted, paced and refused with them (`crate::run`), its TLS
//! handshake has the same deadline, its request head is bounded in bytes and time, and a connection that only
//! fetches files is closed after [`FILES_CONNECTION_LIFETIME`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::{Config, Shared, session};

/// How long a connection that fetches files (not upgraded to a WebSocket) may stay open: a browser opens a new
/// one when it needs it, and an idle one holds a place in the connection counts.
pub const FILES_CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Largest request head (request line and headers) read; a browser's are a few kilobytes.
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// Where the page opens its WebSocket.
const SOCKET_PATH: &str = "/ws";

/// Every response's protection: no script, style or connection but the server's own, never framed, no referrer,
/// no sniffing, a window of its own.
const SECURITY_HEADERS: [(&str, &str); 7] = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
];
/// Sent only with a configured (CA-issued) certificate: a browser told to insist on HTTPS for a year would lock
/// its user out when a self-signed certificate changes.
const HSTS: &str = "max-age=31536000";

/// One file of the browser client.
struct Asset {
    path: &'static str,
    media_type: &'static str,
    bytes: &'static [u8],
}

static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

fn asset(path: &str) -> Option<&'static Asset> {
    let path = match path.strip_prefix('/')? {
        "" => "index.html",
        path => path,
    };
    ASSETS.iter().find(|asset| asset.path == path)
}

/// The TLS configuration of the web listener: the server's, offering HTTP/1.1 by ALPN (the WebSocket upgrade is
/// an HTTP/1.1 request).
pub fn acceptor(native: Arc<rustls::ServerConfig>) -> TlsAcceptor {
    let mut config = (*native).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// The WebSocket a request was upgraded to, handed from the upgrade back to the connection's task, which runs
/// its session (so that the session is counted and waited for like the connection).
type UpgradeSlot = Arc<Mutex<Option<oneshot::Sender<WebSocket>>>>;

/// Serves one accepted connection of the web listener until it ends: files, or a WebSocket session.
pub async fn serve(
    shared: Arc<Shared>,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    refusal: Option<&'static str>,
) {
    let handshake = Duration::from_millis(shared.config.limits.handshake_timeout_ms);
    let tls = match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "web: TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "web: TLS handshake timed out");
            return;
        }
    };
    let (upgraded_tx, upgraded_rx) = oneshot::channel();
    {
        let slot: UpgradeSlot = Arc::new(Mutex::new(Some(upgraded_tx)));
        let for_requests = shared.clone();
        let service = service_fn(move |request| respond(for_requests.clone(), slot.clone(), refusal, peer, request));
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(handshake)
            .max_buf_size(MAX_REQUEST_HEAD)
            .serve_connection(TokioIo::new(tls), service)
            .with_upgrades();
        let mut connection = std::pin::pin!(connection);
        let ended = tokio::select! {
            ended = connection.as_mut() => Some(ended),
            _ = tokio::time::sleep(FILES_CONNECTION_LIFETIME) => None,
            _ = shared.shutdown.cancelled() => None,
        };
        match ended {
            Some(Ok(())) => {}
            Some(Err(error)) => tracing::debug!(%peer, %error, "web: connection ended"),
            None => {
                connection.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(1), connection).await;
            }
        }
        // The connection and its service (holding the slot's sender until an upgrade takes it) end here, so that
        // the wait below ends at once when nothing was upgraded.
    }
    if let Ok(socket) = upgraded_rx.await {
        session::serve_web(shared, socket, peer, refusal).await;
    }
}

async fn respond(
    shared: Arc<Shared>,
    slot: UpgradeSlot,
    refusal: Option<&'static str>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let mut response = route(&shared, slot, refusal, request).await;
    secure(&shared.config, response.headers_mut());
    tracing::debug!(%peer, status = %response.status(), "web: answered");
    Ok(response)
}

async fn route(
    shared: &Shared,
    slot: UpgradeSlot,
    refusal: Option<&'static str>,
    request: Request<Incoming>,
) -> Response<Body> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are served here");
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if request.uri().path() == SOCKET_PATH {
        // A refused connection is still upgraded: the session says why, in the protocol, as a native one does.
        return upgrade(&shared.config, slot, request).await;
    }
    if let Some(reason) = refusal {
        let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, reason);
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    }
    match asset(request.uri().path()) {
        Some(asset) => {
            let mut response = Response::new(Body::from(asset.bytes));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.media_type));
            // The files change with the binary: a browser asks again (and gets a 200) rather than keep an old one.
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => plain(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Upgrades a request for the WebSocket from an allowed origin; the socket goes to the connection's task.
async fn upgrade(config: &Config, slot: UpgradeSlot, request: Request<Incoming>) -> Response<Body> {
    let (mut parts, _body) = request.into_parts();
    if !origin_allowed(&parts.headers, &config.web.allowed_origins) {
        return plain(
            StatusCode::FORBIDDEN,
            "the WebSocket is open only to pages of this server (see web.allowed_origins)",
        );
    }
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let Some(handover) = slot.lock().take() else {
        return plain(StatusCode::CONFLICT, "this connection is already a WebSocket");
    };
    let max = config.limits.max_frame_bytes;
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            // The connection's task waits for it; if that task is gone, so is the connection.
            let _ = handover.send(socket);
        })
        .into_response()
}

/// Whether the page asking for the WebSocket is the server's own (`https://` and the host it asked for) or one
/// of the configured origins. Browsers always send `Origin` with a WebSocket request; a request without one is
/// not a browser's, and programs have the native protocol.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|origin| origin.to_str().ok()) else { return false };
    let own = headers.get(header::HOST).and_then(|host| host.to_str().ok()).map(|host| format!("https://{host}"));
    own.is_some_and(|own| own.eq_ignore_ascii_case(origin)) || allowed.iter().any(|allowed| allowed == origin)
}

fn secure(config: &Config, headers: &mut HeaderMap) {
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if config.has_real_certificate() {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (name.clone(), HeaderValue::from_static(value))).collect()
    }

    #[test]
    fn only_the_servers_own_pages_and_configured_origins_open_the_socket() {
        let own = headers(&[(header::HOST, "127.0.0.1:5580"), (header::ORIGIN, "https://127.0.0.1:5580")]);
        assert!(origin_allowed(&own, &[]));
        let other = headers(&[(header::HOST, "127.0.0.1:5580"), (header::ORIGIN, "https://evil.example")]);
        assert!(!origin_allowed(&other, &[]), "another site's page");
        assert!(origin_allowed(&other, &["https://evil.example".into()]), "unless configured");
        let plain_http = headers(&[(header::HOST, "127.0.0.1:5580"), (header::ORIGIN, "http://127.0.0.1:5580")]);
        assert!(!origin_allowed(&plain_http, &[]), "a page loaded without TLS is not the server's");
        let no_origin = headers(&[(header::HOST, "127.0.0.1:5580")]);
        assert!(!origin_allowed(&no_origin, &[]), "not a browser");
        let other_port = headers(&[(header::HOST, "127.0.0.1:5580"), (header::ORIGIN, "https://127.0.0.1:8443")]);
        assert!(!origin_allowed(&other_port, &[]), "another origin on the same host");
    }

    #[test]
    fn the_page_and_its_files_are_served_and_nothing_else() {
        let index = asset("/").expect("the page");
        assert_eq!(index.path, "index.html");
        assert!(index.media_type.starts_with("text/html"));
        assert!(asset("/index.html").is_some());
        assert!(asset("/../Cargo.toml").is_none());
        assert!(asset("/missing.js").is_none());
        assert!(asset("index.html").is_none(), "a path starts with /");
    }

    #[test]
    fn hsts_only_with_a_configured_certificate() {
        let mut config = Config::default();
        let mut generated = HeaderMap::new();
        secure(&config, &mut generated);
        assert!(generated.get(header::STRICT_TRANSPORT_SECURITY).is_none());
        assert!(generated.get("content-security-policy").is_some_and(|csp| {
            csp.to_str().is_ok_and(|csp| csp.contains("script-src 'self'") && !csp.contains("unsafe"))
        }));
        config.tls.cert = Some("cert.pem".into());
        config.tls.key = Some("key.pem".into());
        let mut configured = HeaderMap::new();
        secure(&config, &mut configured);
        assert_eq!(configured.get(header::STRICT_TRANSPORT_SECURITY).map(HeaderValue::as_bytes), Some(HSTS.as_bytes()));
    }
}
