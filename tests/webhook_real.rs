//! The push webhook over real HTTP on 127.0.0.1, driven by a raw TCP client so that every header and
//! byte is under the test's control.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
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

    // A new delivery of the same push (at `/`, the other route) is a new trigger.
    let headers = [
        ("X-Hub-Signature-256", signature.as_str()),
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", "another-delivery"),
    ];
    let (status, _) = request(server.addr, "/", &headers, PUSH.as_bytes()).await;
    assert_eq!(status, 202);
    let event = server.events.recv().await.unwrap();
    assert_eq!(event.delivery.as_deref(), Some("another-delivery"));
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
    // Past the cap: closed at once, so they cost the process no lasting file descriptor.
    for _ in 0..50 {
        let mut extra = slow_loris(addr).await;
        assert!(
            closed_within(&mut extra, Duration::from_millis(500)).await,
            "a connection past the cap must be closed at once"
        );
    }
    // The held ones are cut off by the header read timeout, freeing their slots.
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
