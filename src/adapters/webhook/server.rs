//! The push webhook: `POST /webhook` (or `/`) with a GitHub-style push event.
//!
//! Order of checks, each answered at once:
//! 1. A body above the size cap: 413, at once when `Content-Length` says so, else as soon as the cap
//!    is passed (nothing past it is buffered). A body that takes longer than [`BODY_TIMEOUT`]: 408.
//! 2. `X-Hub-Signature-256` missing or wrong: 401. Nothing of the body is parsed before this passes.
//! 3. `X-GitHub-Event: ping`: 200; any event but `push`: 200 and ignored.
//! 4. A body that is not a push payload: 400. A tag push or branch deletion: 200 and ignored.
//! 5. An `X-GitHub-Delivery` id seen recently: 200 and ignored (GitHub retries and redeliveries must
//!    not start a second run).
//! 6. A signed body seen recently, whatever its delivery id: 200 and ignored. GitHub signs the body
//!    only, so a captured delivery replayed with a new id still verifies; a real push's body is never
//!    the same as an earlier one (it names the commits before and after, and when it was pushed).
//! 7. Otherwise 202, and a [`WebhookEvent`] goes to the engine's channel; the engine does the work.
//!
//! A refused request (401, 400, 413, 408) closes its connection. Connections hold one of
//! `max_connections` slots; a flood of connections that send nothing signed cannot keep a signed push
//! out (see [`super::slots`]).
//!
//! The server only says "look now": the engine still fetches the commit with git2, so a forged or
//! stale `after` cannot make it train something that is not on the remote.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use serde::Deserialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::slots::{Slot, Slots};
use super::{Secret, WebhookError, verify_signature};

/// How long a sender may take to deliver the body: a push payload takes milliseconds, and a client
/// that trickles bytes must not hold a connection open forever.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send the request line and headers. Slow-loris clients that never
/// finish them are cut off after this, freeing their slot.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Upper bound on one connection's whole life (keep-alive included).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Pause after `accept` fails (e.g. the process is out of file descriptors), so that a full table is
/// not retried in a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A push that should make the engine look at the remote now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// `X-GitHub-Delivery`, when the sender gave one.
    pub delivery: Option<String>,
    /// The pushed branch, without `refs/heads/`.
    pub branch: String,
    /// The commit id the branch now points to, as the sender claims.
    pub after: String,
    pub pusher: Option<String>,
    /// `owner/name`, when the payload says.
    pub repository: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookOptions {
    /// Larger bodies are refused with 413. GitHub caps payloads at 25 MB; a push of a few commits is a
    /// few kB, so the default 1 MiB leaves room without letting anyone make the process buffer much.
    pub max_body: usize,
    /// How many delivery ids, and how many signed bodies, are remembered to refuse replays (oldest
    /// forgotten first).
    pub remember: usize,
    /// Connections served at once; one more closes another (see [`super::slots`]). Keeps the
    /// listener's file descriptors far below the process limit, which the engine needs for its own
    /// files, containers and database.
    pub max_connections: usize,
    /// See [`HEADER_TIMEOUT`].
    pub header_timeout: Duration,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        WebhookOptions {
            max_body: 1024 * 1024,
            remember: 1024,
            max_connections: 64,
            header_timeout: HEADER_TIMEOUT,
        }
    }
}

/// [`serve_with`] and the default options.
pub async fn serve(
    addr: SocketAddr,
    secret: Secret,
    tx: UnboundedSender<WebhookEvent>,
) -> Result<(SocketAddr, JoinHandle<()>), WebhookError> {
    serve_with(addr, secret, WebhookOptions::default(), tx).await
}

/// Binds `addr` (port 0 picks a free port) and serves until the returned task is aborted. Returns the
/// bound address.
pub async fn serve_with(
    addr: SocketAddr,
    secret: Secret,
    options: WebhookOptions,
    tx: UnboundedSender<WebhookEvent>,
) -> Result<(SocketAddr, JoinHandle<()>), WebhookError> {
    let bind_err = |source| WebhookError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    let shared = Arc::new(Shared {
        secret,
        tx,
        max_body: options.max_body,
        recent: Mutex::new(RecentIds::new(options.remember)),
        bodies: Mutex::new(RecentIds::new(options.remember)),
    });
    let app = Router::new()
        .route("/", post(receive))
        .route("/webhook", post(receive))
        .with_state(shared);
    let task = tokio::spawn(accept_loop(listener, app, options));
    tracing::info!(%local, "listening for push webhooks");
    Ok((local, task))
}

/// Accepts connections until aborted. Each is served by hyper with a header read timeout and a
/// lifetime bound, and holds one of `max_connections` slots; past the cap another connection is
/// closed to make room (see [`super::slots`]), so a flood of idle sockets can never exhaust the
/// process's file descriptors nor keep a signed push out.
async fn accept_loop(listener: tokio::net::TcpListener, app: Router, options: WebhookOptions) {
    let slots = Slots::new(options.max_connections);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "webhook: cannot accept a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let slot = slots.admit(peer.ip());
        tokio::spawn(serve_connection(
            stream,
            app.clone(),
            options.header_timeout,
            (slots.clone(), slot),
        ));
        // Let the connections just accepted read their requests before a burst of accepts makes
        // room by closing them.
        tokio::task::yield_now().await;
    }
}

/// Serves one connection until it ends, its lifetime passes or it is closed to make room; its slot
/// is released when it ends, however it ends. While a request carrying a signature is read and
/// answered, the slot is marked busy.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    header_timeout: Duration,
    (slots, slot): (Arc<Slots>, Slot),
) {
    let inner = hyper_util::service::TowerToHyperService::new(app);
    let conn = Arc::clone(&slot.conn);
    let service = hyper::service::service_fn(move |req: axum::http::Request<_>| {
        let signed = req.headers().contains_key("x-hub-signature-256");
        let (conn, slots) = (Arc::clone(&conn), Arc::clone(&slots));
        conn.set_busy(signed, &slots);
        let answer = hyper::service::Service::call(&inner, req);
        async move {
            let answer = answer.await;
            conn.set_busy(false, &slots);
            answer
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::select! {
        ended = tokio::time::timeout(CONNECTION_LIFETIME, connection) => match ended {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "webhook connection ended"),
            Err(_) => tracing::debug!("webhook connection closed: lifetime reached"),
        },
        () = slot.conn.evicted() => {}
    }
}

struct Shared {
    secret: Secret,
    tx: UnboundedSender<WebhookEvent>,
    max_body: usize,
    recent: Mutex<RecentIds>,
    /// The signatures of recent accepted bodies: a signature is the body's HMAC, so a body seen
    /// again is a replay whatever delivery id it comes with.
    bodies: Mutex<RecentIds>,
}

#[derive(Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    #[serde(default)]
    deleted: bool,
    pusher: Option<Named>,
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct Named {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Repository {
    full_name: Option<String>,
}

type Answer = (StatusCode, String);

/// The answer, with `Connection: close` for a refused request: a sender that is not a valid source
/// of pushes does not keep its connection (and its slot).
async fn receive(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> (StatusCode, HeaderMap, String) {
    let (status, text) = match accept(&shared, &headers, body).await {
        Ok(event) => forward(&shared, event),
        Err(answer) => answer,
    };
    let mut out = HeaderMap::new();
    if status.is_client_error() {
        out.insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    (status, out, text)
}

/// Reads, verifies and parses one delivery. `Err` is the answer for a request that carries no push to
/// act on (refused, malformed, or ignored on purpose).
async fn accept(shared: &Shared, headers: &HeaderMap, body: Body) -> Result<WebhookEvent, Answer> {
    let body = read_body(shared, headers, body).await?;
    let signature = headers.get("x-hub-signature-256").map(|v| v.as_bytes());
    if let Err(e) = verify_signature(&shared.secret, &body, signature) {
        tracing::warn!(error = %e, "webhook refused");
        return Err((StatusCode::UNAUTHORIZED, format!("{e}\n")));
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    match header("x-github-event").as_deref().unwrap_or("push") {
        "ping" => return Err((StatusCode::OK, "pong\n".into())),
        "push" => {}
        other => return Err((StatusCode::OK, format!("ignored: {other} event\n"))),
    }
    let payload: PushPayload = serde_json::from_slice(&body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("not a push event payload: {e}\n"),
        )
    })?;
    let Some(branch) = payload.git_ref.strip_prefix("refs/heads/") else {
        return Err((StatusCode::OK, "ignored: not a branch\n".into()));
    };
    if payload.deleted {
        return Err((StatusCode::OK, "ignored: branch deleted\n".into()));
    }
    let delivery = header("x-github-delivery");
    if let Some(id) = &delivery {
        check_fresh(shared, id)?;
    }
    check_fresh_body(shared, signature.unwrap_or_default())?;
    Ok(WebhookEvent {
        delivery,
        branch: branch.to_string(),
        after: payload.after,
        pusher: payload.pusher.and_then(|p| p.name),
        repository: payload.repository.and_then(|r| r.full_name),
    })
}

/// The body, within the size limit (declared or actual) and the time limit.
async fn read_body(shared: &Shared, headers: &HeaderMap, body: Body) -> Result<Bytes, Answer> {
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {} bytes\n", shared.max_body),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > shared.max_body as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, shared.max_body)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        // The limit's error is http-body-util's `LengthLimitError`, not re-exported by axum.
        Ok(Err(e)) if error_chain_mentions(&e, "length limit exceeded") => Err(too_large()),
        Ok(Err(e)) => Err((
            StatusCode::BAD_REQUEST,
            format!("cannot read the body: {e}\n"),
        )),
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            "the body took too long to arrive\n".into(),
        )),
    }
}

/// A delivery id seen before is a replay: acknowledged, not acted on.
fn check_fresh(shared: &Shared, id: &str) -> Result<(), Answer> {
    let fresh = shared
        .recent
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id);
    if fresh {
        return Ok(());
    }
    tracing::info!(delivery = %id, "webhook delivery replayed; ignored");
    Err((
        StatusCode::OK,
        "ignored: delivery already received\n".into(),
    ))
}

/// A body whose (verified) signature was seen recently is a replay under a new delivery id:
/// acknowledged, not acted on.
fn check_fresh_body(shared: &Shared, signature: &[u8]) -> Result<(), Answer> {
    let key = String::from_utf8_lossy(signature).to_ascii_lowercase();
    let fresh = shared
        .bodies
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(&key);
    if fresh {
        return Ok(());
    }
    tracing::warn!("webhook push replayed with a new delivery id; ignored");
    Err((
        StatusCode::OK,
        "ignored: this push was already received (the same signed body)\n".into(),
    ))
}

/// Hands an accepted push to the engine.
fn forward(shared: &Shared, event: WebhookEvent) -> Answer {
    tracing::info!(branch = %event.branch, after = %event.after, "push webhook accepted");
    if shared.tx.send(event).is_err() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not accepting pushes: shutting down\n".into(),
        );
    }
    (StatusCode::ACCEPTED, "accepted\n".into())
}

fn error_chain_mentions(e: &(dyn std::error::Error + 'static), text: &str) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if err.to_string().contains(text) {
            return true;
        }
        current = err.source();
    }
    false
}

/// A bounded set of recently seen ids; inserting beyond `capacity` forgets the oldest. Invariant:
/// `set` and `order` hold the same ids.
struct RecentIds {
    set: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl RecentIds {
    fn new(capacity: usize) -> Self {
        RecentIds {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// False when `id` is already remembered.
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(id.to_string());
        self.order.push_back(id.to_string());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_refuse_repeats_and_forget_the_oldest() {
        let mut r = RecentIds::new(2);
        assert!(r.insert("a"));
        assert!(!r.insert("a"));
        assert!(r.insert("b"));
        assert!(r.insert("c"));
        assert!(r.insert("a"), "a was forgotten when c came");
        assert!(!r.insert("c"));
        assert_eq!(r.set.len(), r.order.len());
    }
}
