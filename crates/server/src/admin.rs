//! The operator's listener (`[admin] listen`, off unless configured): plain HTTP for Prometheus and health
//! checks, meant for a loopback or private address. `/metrics` is the Prometheus text exposition, `/healthz`
//! answers while the process serves requests, `/readyz` only while the store takes writes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::Shared;
use crate::telemetry::Exporter;

/// How long `/readyz` waits for the store to take its write: a writer queue that long is not ready for more.
const READY_WITHIN: Duration = Duration::from_secs(5);
/// Longest a scraper or prober may take to send its request head.
const HEAD_WITHIN: Duration = Duration::from_secs(10);
/// Scrapers and probers connected at once; past it, new ones wait in the listen backlog.
const MAX_CONNECTIONS: usize = 16;
/// How long a readiness answer stands for every prober: however often they ask, the store takes at most one probe
/// write in this time.
const READY_ANSWER_STANDS: Duration = Duration::from_secs(1);

/// Serves `listener` until shutdown.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, exporter: &'static Exporter) {
    let tracker = TaskTracker::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let readiness = Arc::new(Readiness::default());
    loop {
        let slot = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let Some((tcp, peer)) = crate::next_connection(&listener, &shared.shutdown, "admin").await else { break };
        let shared = shared.clone();
        let readiness = readiness.clone();
        tracker.spawn(async move {
            let for_requests = shared.clone();
            let service =
                service_fn(move |request| respond(for_requests.clone(), readiness.clone(), exporter, request));
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_WITHIN)
                .serve_connection(TokioIo::new(tcp), service);
            tokio::select! {
                ended = connection => if let Err(error) = ended {
                    tracing::debug!(%peer, %error, "admin: connection ended");
                },
                _ = shared.shutdown.cancelled() => {}
            }
            drop(slot);
        });
    }
    tracker.close();
    tracker.wait().await;
}

async fn respond(
    shared: Arc<Shared>,
    readiness: Arc<Readiness>,
    exporter: &'static Exporter,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Ok(plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into()));
    }
    Ok(match request.uri().path() {
        "/metrics" => {
            let text = tokio::task::spawn_blocking(move || exporter.render()).await.unwrap_or_default();
            let mut response = plain(StatusCode::OK, text);
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        "/healthz" => plain(StatusCode::OK, "ok\n".into()),
        "/readyz" => match readiness.check(&shared).await {
            Ok(()) => plain(StatusCode::OK, "ready\n".into()),
            Err(why) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
        },
        _ => plain(StatusCode::NOT_FOUND, "not found: /metrics, /healthz and /readyz are here\n".into()),
    })
}

/// The last readiness answer and when it was made. Checks take its lock in turn, so that at most one probe write
/// is in flight, and those that find a fresh answer share it.
#[derive(Default)]
struct Readiness(tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>);

impl Readiness {
    /// Whether the server takes clients' messages now: it is not stopping, and a write goes through the store
    /// writer's queue and is committed (synced, with `durability = "full"`) within [`READY_WITHIN`], now or less
    /// than [`READY_ANSWER_STANDS`] ago.
    async fn check(&self, shared: &Shared) -> Result<(), String> {
        if shared.shutdown.is_cancelled() {
            return Err("the server is stopping".into());
        }
        let mut last = self.0.lock().await;
        if let Some((at, answer)) = &*last
            && at.elapsed() < READY_ANSWER_STANDS
        {
            return answer.clone();
        }
        let answer = probe(shared).await;
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

async fn probe(shared: &Shared) -> Result<(), String> {
    match tokio::time::timeout(READY_WITHIN, shared.writer.probe()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(failed)) => Err(failed.to_string()),
        Err(_) => Err(format!("the store did not take a write within {} s", READY_WITHIN.as_secs())),
    }
}

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}
