//! The push webhook over real HTTP on 127.0.0.1, driven by a raw TCP client so that every header and
//! byte is under the test's control.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use mlops_tui::adapters::webhook::{Secret, WebhookEvent, WebhookOptions, serve_with};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

const SECRET: &str = "It's a Secret to Everybody";
/// GitHub's published example signature of `Hello, World!` with [`SECRET`].
const VECTOR: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

const PUSH: &str = r#"{
  "ref": "refs/heads/main",
  "before": "0000000000000000000000000000000000000000",
  "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
  "deleted": false,
  "pusher": {"name": "octocat", "email": "octocat@example.org"},
  "repository": {"full_name": "acme/ml-code"},
  "head_commit": {"message": "widen the hidden layer"}
}"#;

struct Server {
    addr: SocketAddr,
    events: UnboundedReceiver<WebhookEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(max_body: usize) -> Server {
    let (tx, events) = unbounded_channel();
    let options = WebhookOptions {
        max_body,
        ..WebhookOptions::default()
    };
    let (addr, task) = serve_with(
        "127.0.0.1:0".parse().unwrap(),
        Secret::new(SECRET).unwrap(),
        options,
        tx,
    )
    .await
    .unwrap();
    Server { addr, events, task }
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Sends one HTTP/1.1 request and returns the status code and the answer's body. The body is written
/// by a separate task so that a server answering before it has read everything (413) is seen.
async fn request(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    request_raw(addr, path, headers, body, Some(body.len())).await
}

async fn request_declaring(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    declared: usize,
) -> (u16, String) {
    request_raw(addr, path, headers, body, Some(declared)).await
}

/// Sends `body` as is, with `Content-Length: declared` when given (whatever the body's length).
async fn request_raw(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    declared: Option<usize>,
) -> (u16, String) {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nConnection: close\r\n"
    );
    if let Some(n) = declared {
        head.push_str(&format!("Content-Length: {n}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let body = body.to_vec();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(&body).await;
        write
    });
    let mut answer = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 4096];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_all)
        .await
        .expect("an answer within 10 s");
    drop(writer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (status, body)
}

/// Like [`request`], with the body sent in 512-byte chunks and no `Content-Length`.
async fn request_chunked(addr: SocketAddr, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut raw = Vec::new();
    for chunk in body.chunks(512) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let mut with_te: Vec<(&str, &str)> = headers.to_vec();
    with_te.push(("Transfer-Encoding", "chunked"));
    request_raw(addr, "/webhook", &with_te, &raw, None).await
}

async fn no_event(server: &mut Server) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.events.try_recv().ok(), None);
}

#[tokio::test]
async fn githubs_test_vector_passes_the_signature_check() {
    let mut server = start(1 << 20).await;
    let headers = [("X-Hub-Signature-256", VECTOR), ("X-GitHub-Event", "ping")];
    let (status, body) = request(server.addr, "/webhook", &headers, b"Hello, World!").await;
    assert_eq!((status, body.as_str()), (200, "pong\n"));

    // Signed correctly but not a push payload: past the signature check, refused by the parser.
    let headers = [("X-Hub-Signature-256", VECTOR), ("X-GitHub-Event", "push")];
    let (status, body) = request(server.addr, "/webhook", &headers, b"Hello, World!").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.starts_with("not a push event payload"), "{body}");
    no_event(&mut server).await;
}

#[tokio::test]
async fn a_signed_push_is_accepted_at_once_and_a_replay_triggers_nothing() {
    let mut server = start(1 << 20).await;
    let signature = sign(SECRET, PUSH.as_bytes());
    let headers = [
        ("X-Hub-Signature-256", signature.as_str()),
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    ];
    let (status, _) = request(server.addr, "/webhook", &headers, PUSH.as_bytes()).await;
    assert_eq!(status, 202);
    let event = server.events.recv().await.unwrap();
    assert_eq!(
        event,
        WebhookEvent {
            delivery: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958".into()),
            branch: "main".into(),
            after: "6113728f27ae82c7b1a177c8d03f9e96e0adf246".into(),
            pusher: Some("octocat".into()),
            repository: Some("acme/ml-code".into()),
        }
    );

    let (status, body) = request(server.addr, "/webhook", &headers, PUSH.as_bytes()).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "ignored: delivery already received\n")
    );
    no_event(&mut server).await;

    // The same signed body under a new delivery id is a replay too: GitHub signs the body only.
    let replayed = [
        ("X-Hub-Signature-256", signature.as_str()),
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", "another-delivery"),
    ];
    let (status, body) = request(server.addr, "/", &replayed, PUSH.as_bytes()).await;
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            "ignored: this push was already received (the same signed body)\n"
        )
    );
    no_event(&mut server).await;

    // A new push (at `/`, the other route) is a new trigger.
    let next = PUSH.replace("6113728f27ae", "7224839038bf");
    let signature = sign(SECRET, next.as_bytes());
    let headers = [
        ("X-Hub-Signature-256", signature.as_str()),
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", "third-delivery"),
    ];
    let (status, _) = request(server.addr, "/", &headers, next.as_bytes()).await;
    assert_eq!(status, 202);
    let event = server.events.recv().await.unwrap();
    assert_eq!(event.delivery.as_deref(), Some("third-delivery"));
    assert!(event.after.starts_with("7224839038bf"));
}

#[tokio::test]
async fn a_bad_signature_is_401_and_triggers_nothing() {
    let mut server = start(1 << 20).await;
    let forged = sign("not the secret", PUSH.as_bytes());
    let tampered = PUSH.replace("main", "prod");
    let good_for_original = sign(SECRET, PUSH.as_bytes());
    for (signature, body) in [
        (forged.as_str(), PUSH),
        (good_for_original.as_str(), tampered.as_str()),
        (&VECTOR[7..], PUSH),
        ("sha256=zz", PUSH),
    ] {
        let headers = [
            ("X-Hub-Signature-256", signature),
            ("X-GitHub-Event", "push"),
        ];
        let (status, answer) = request(server.addr, "/webhook", &headers, body.as_bytes()).await;
        assert_eq!(status, 401, "{signature}: {answer}");
        assert!(answer.starts_with("X-Hub-Signature-256"), "{answer}");
    }
    no_event(&mut server).await;
}

#[tokio::test]
async fn a_missing_signature_is_401_and_triggers_nothing() {
    let mut server = start(1 << 20).await;
    for event in ["push", "ping"] {
        let headers = [("X-GitHub-Event", event)];
        let (status, answer) = request(server.addr, "/webhook", &headers, PUSH.as_bytes()).await;
        assert_eq!(
            (status, answer.as_str()),
            (401, "missing X-Hub-Signature-256 header\n")
        );
    }
    no_event(&mut server).await;
}

#[tokio::test]
async fn an_oversized_body_is_413_and_triggers_nothing() {
    let mut server = start(1024).await;
    let mut big = PUSH.trim_end().trim_end_matches('}').to_string();
    big.push_str(&format!(", \"padding\": \"{}\"}}", "x".repeat(4096)));
    let signature = sign(SECRET, big.as_bytes());
    let headers = [
        ("X-Hub-Signature-256", signature.as_str()),
        ("X-GitHub-Event", "push"),
    ];
    let (status, _) = request(server.addr, "/webhook", &headers, big.as_bytes()).await;
    assert_eq!(status, 413);
    // Without a declared length (chunked), the cap cuts the body off as it arrives.
    let (status, _) = request_chunked(server.addr, &headers, big.as_bytes()).await;
    assert_eq!(status, 413);
    // A declared length over the cap is refused before the body is waited for.
    let (status, _) = request_declaring(server.addr, "/webhook", &headers, b"{", 100 << 20).await;
    assert_eq!(status, 413);
    no_event(&mut server).await;

    // The same push under the cap goes through: the cap, not the content, refused it.
    let signature = sign(SECRET, PUSH.as_bytes());
    let headers = [
        ("X-Hub-Signature-256", signature.as_str()),
        ("X-GitHub-Event", "push"),
    ];
    let (status, _) = request(server.addr, "/webhook", &headers, PUSH.as_bytes()).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn tags_deletions_and_other_events_trigger_nothing() {
    let mut server = start(1 << 20).await;
    let tag = PUSH.replace("refs/heads/main", "refs/tags/v1");
    let deleted = PUSH.replace("\"deleted\": false", "\"deleted\": true");
    for (event, body, answer) in [
        ("push", tag.as_str(), "ignored: not a branch\n"),
        ("push", deleted.as_str(), "ignored: branch deleted\n"),
        ("issues", PUSH, "ignored: issues event\n"),
    ] {
        let signature = sign(SECRET, body.as_bytes());
        let headers = [
            ("X-Hub-Signature-256", signature.as_str()),
            ("X-GitHub-Event", event),
        ];
        let (status, text) = request(server.addr, "/webhook", &headers, body.as_bytes()).await;
        assert_eq!((status, text.as_str()), (200, answer));
    }
    no_event(&mut server).await;
}

/// Opens a connection that sends half a request line's headers and then nothing (slow loris).
async fn slow_loris(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!("POST /webhook HTTP/1.1\r\nHost: {addr}\r\nX-GitHub-Event: pu");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Whether the server closes `stream` (end of file or reset) within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_to_end).await.is_ok()
}

#[tokio::test]
async fn slow_loris_connections_are_capped_and_cut_off_then_a_push_gets_through() {
    let (tx, mut events) = unbounded_channel();
    let options = WebhookOptions {
        max_connections: 8,
        header_timeout: Duration::from_millis(1500),
        ..WebhookOptions::default()
    };
    let (addr, task) = serve_with(
        "127.0.0.1:0".parse().unwrap(),
        Secret::new(SECRET).unwrap(),
        options,
        tx,
    )
    .await
    .unwrap();

    // Up to the cap: held open while their headers are unfinished.
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(slow_loris(addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Past the cap: each new one closes the oldest, so the process never holds more than the cap.
    let mut extras = Vec::new();
    for _ in 0..50 {
        extras.push(slow_loris(addr).await);
        let mut oldest = held.remove(0);
        assert!(
            closed_within(&mut oldest, Duration::from_millis(500)).await,
            "past the cap the oldest idle connection must be closed at once"
        );
        held.push(extras.remove(0));
    }
    // The last ones are cut off by the header read timeout, freeing their slots.
    for stream in &mut held {
        assert!(
            closed_within(stream, Duration::from_secs(5)).await,
            "a slow-loris connection must be cut off by the header timeout"
        );
    }
    let signature = sign(SECRET, PUSH.as_bytes());
    let headers = [
        ("X-Hub-Signature-256", signature.as_str()),
        ("X-GitHub-Event", "push"),
    ];
    let (status, body) = request(addr, "/webhook", &headers, PUSH.as_bytes()).await;
    assert_eq!(status, 202, "{body}");
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.branch, "main");
    task.abort();
}

/// One client of a reconnect flood, until `stop`: connects, then either sends half a header and
/// waits to be closed (`idle`) or sends an unsigned push and reads the refusal; then again at once.
async fn flooder(addr: SocketAddr, idle: bool, stop: Arc<AtomicBool>) -> u64 {
    let mut connections = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            continue;
        };
        connections += 1;
        let head = if idle {
            format!("POST /webhook HTTP/1.1\r\nHost: {addr}\r\nX-GitHub-Event: pu")
        } else {
            format!(
                "POST /webhook HTTP/1.1\r\nHost: {addr}\r\nX-GitHub-Event: push\r\nContent-Length: {}\r\n\r\n{PUSH}",
                PUSH.len()
            )
        };
        if stream.write_all(head.as_bytes()).await.is_ok() {
            closed_within(&mut stream, Duration::from_secs(3)).await;
        }
    }
    connections
}

/// Under a flood of clients that reconnect as soon as they are closed (half of them idle, half
/// sending unsigned pushes), 30 signed pushes sent one after another from the same address are all
/// accepted, within 15 s together. The flood is bounded (96 clients) and stops by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_pushes_get_through_a_reconnect_flood() {
    let (tx, mut events) = unbounded_channel();
    let (addr, task) = serve_with(
        "127.0.0.1:0".parse().unwrap(),
        Secret::new(SECRET).unwrap(),
        WebhookOptions::default(),
        tx,
    )
    .await
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // More clients than the server's 64 slots, all from the pushes' own address.
    let flood: Vec<_> = (0..96)
        .map(|i| tokio::spawn(flooder(addr, i % 2 == 0, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = std::time::Instant::now();
    let mut refused = Vec::new();
    for i in 0..30 {
        let body = PUSH.replace("6113728f27ae", &format!("{i:012x}"));
        let signature = sign(SECRET, body.as_bytes());
        let delivery = format!("delivery-{i}");
        let headers = [
            ("X-Hub-Signature-256", signature.as_str()),
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", delivery.as_str()),
        ];
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            try_request(addr, &headers, body.as_bytes()),
        )
        .await;
        match answer {
            Ok(Some(202)) => {}
            other => refused.push((i, other)),
        }
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut flooded = 0;
    for f in flood {
        flooded += tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("the flood stops by itself")
            .unwrap();
    }
    println!("30 pushes in {took:?} under {flooded} flood connections");
    assert!(refused.is_empty(), "pushes not accepted: {refused:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        flooded > 1_000,
        "the flood must bite: {flooded} connections"
    );
    for i in 0..30 {
        let event = events.try_recv().expect("one event per push");
        assert_eq!(event.delivery, Some(format!("delivery-{i}")));
    }
    task.abort();
}

/// One request; the status code, or `None` when the connection was closed without an answer.
async fn try_request(addr: SocketAddr, headers: &[(&str, &str)], body: &[u8]) -> Option<u16> {
    let mut head = format!(
        "POST /webhook HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await.ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).and_then(|s| s.parse().ok())
}
