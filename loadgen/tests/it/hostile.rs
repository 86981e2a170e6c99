//! A hostile target: a server that accepts and never answers, answers a byte a second, sends a chunked
//! body that never ends, a 100 MiB body, a JSON-RPC answer announcing 3 GiB, a body that is not UTF-8,
//! closes the connection unanswered, or sends an SSE event of 10 MiB.
//! The request loop stays within its timeout (1 s here), classifies each, holds no more than a bound of
//! memory (a 100 MiB body is read through, not kept), and the run ends on time.

use std::time::{Duration, Instant};

use crate::run;
use stampede_loadgen::data::{FailureKind, RequestLoop};
use stampede_loadgen::results::{ActionTotals, Results};
use tokio::io::AsyncWriteExt as _;

const HUNDRED_MIB: usize = 100 << 20;

async fn hostile_server() -> String {
    testkit::tcp_server(serve).await
}

/// Answer each request on the connection after its path.
async fn serve(mut sock: tokio::net::TcpStream) {
    let mut buf = Vec::new();
    loop {
        let Some(head) = testkit::read_head(&mut sock, &mut buf).await else {
            return;
        };
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let written = match path.as_str() {
            "/silent" => {
                // Accepted, read, never answered; the connection stays open.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            "/drip" => {
                for b in b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok" {
                    if sock.write_all(&[*b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Ok(())
            }
            "/endless" => {
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                    .await;
                let piece = format!("{:x}\r\n{}\r\n", 4096, "x".repeat(4096));
                while sock.write_all(piece.as_bytes()).await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                return;
            }
            "/huge" => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {HUNDRED_MIB}\r\n\r\n");
                let piece = vec![b'x'; 1 << 20];
                let mut result = sock.write_all(head.as_bytes()).await;
                for _ in 0..100 {
                    if result.is_err() {
                        break;
                    }
                    result = sock.write_all(&piece).await;
                }
                result
            }
            "/rpc" => {
                // A JSON-RPC answer announcing 3 GiB, then bytes for as long as the client reads.
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 3221225472\r\n\r\n",
                    )
                    .await;
                let piece = vec![b' '; 1 << 20];
                while sock.write_all(&piece).await.is_ok() {}
                return;
            }
            "/escapes" => {
                // A content type carrying C1 controls (CSI, OSC): it ends up in the error message.
                sock.write_all(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/x\u{9b}31m\u{9d}0;owned\r\ncontent-length: 2\r\n\r\nok"
                        .as_bytes(),
                )
                .await
            }
            "/not-utf8" => {
                sock.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4\r\n\r\n\xff\xfe\xfd\xfc",
                )
                .await
            }
            "/hang-up" => return,
            "/chunked" => {
                sock.write_all(
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n3;x=y\r\n!!!\r\n0\r\n\r\n",
                )
                .await
            }
            "/until-close" => {
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it")
                    .await;
                return;
            }
            "/sse-huge" => {
                // An HTTP+SSE stream: its endpoint, then one event of 10 MiB.
                let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n\
                                event: endpoint\ndata: /message?session_id=x\n\nevent: message\ndata: "
                    .to_vec();
                let _ = sock.write_all(&out).await;
                out.clear();
                out.resize(1 << 20, b'x');
                for _ in 0..10 {
                    if sock.write_all(&out).await.is_err() {
                        return;
                    }
                }
                let _ = sock.write_all(b"\n\n").await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            _ => sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await,
        };
        if written.is_err() {
            return;
        }
    }
}

fn action<'a>(r: &'a Results, name: &str) -> &'a ActionTotals {
    r.actions
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("{name}"))
}

/// The plain HTTP cases: a scenario of them alone runs on the direct loop.
const HTTP_CASES: [&str; 9] = [
    "silent",
    "drip",
    "endless",
    "huge",
    "not-utf8",
    "hang-up",
    "chunked",
    "until-close",
    "fine",
];

fn http_scenario(url: &str) -> String {
    let mut text = format!(
        "[target]\nurl = \"{url}\"\ntimeout = \"1s\"\n[load]\nusers = 12\nduration = \"3s\"\ngraceful_stop = \"1s\"\n\
         [observe]\npost_load = \"0s\"\nmetrics = \"\"\n"
    );
    for name in HTTP_CASES {
        text.push_str(&format!(
            "[[actions]]\nname = \"{name}\"\nkind = \"http\"\npath = \"/{name}\"\n"
        ));
    }
    text
}

/// Each plain HTTP case classified as it should be, whichever loop ran it.
fn http_cases_are_classified(r: &Results) {
    // Never answered, or too slowly: timeouts, each within the 1 s timeout (and its clock's slack).
    for name in ["silent", "drip", "endless"] {
        let a = action(r, name);
        assert!(a.summary.count > 0, "{name} ran");
        assert_eq!(
            a.failures.get(&FailureKind::Timeout),
            Some(&a.summary.count),
            "{name}: {:?}",
            a.failures
        );
        assert!(
            a.summary.max_ms.unwrap() < 1_500.0,
            "{name}: max {:?} ms",
            a.summary.max_ms
        );
    }
    // 100 MiB read through in time is an answer, not memory: the body is not kept.
    let huge = action(r, "huge");
    assert!(
        huge.summary.count > 0 && huge.summary.failed == 0,
        "{:?}",
        huge.failures
    );
    // A body that is not UTF-8 is a body like any other to plain HTTP, as are chunks and a body the
    // close ends; a hang-up is a protocol failure.
    for name in ["not-utf8", "chunked", "until-close"] {
        let a = action(r, name);
        assert!(a.summary.count > 0 && a.summary.failed == 0, "{name}: {:?}", a.errors);
    }
    let hang = action(r, "hang-up");
    assert_eq!(hang.failures.get(&FailureKind::Protocol), Some(&hang.summary.count));
    assert!(hang.errors.keys().any(|e| e.contains("closed")), "{:?}", hang.errors);
    // The well-behaved path is unaffected by its neighbours: answered, and fast.
    let fine = action(r, "fine");
    assert!(fine.summary.count > 0 && fine.summary.failed == 0, "{:?}", fine.summary);
    assert!(fine.summary.p99_ms.unwrap() < 100.0, "{:?}", fine.summary);
    // The run ends on time: 3 s of load, then at most the 1 s graceful stop.
    assert!(r.load.seconds < 3.5, "load {} s", r.load.seconds);
    // A bound on memory: the whole test process, 100 MiB bodies streamed through it, under 100 MiB.
    let peak = r.generator.peak_rss_bytes.expect("measured on Linux");
    assert!(peak < HUNDRED_MIB as u64, "peak RSS {} MiB", peak >> 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_loop_classifies_every_hostile_answer_within_the_timeout() {
    let url = hostile_server().await;
    let started = Instant::now();
    let r = run(&http_scenario(&url)).await;
    assert_eq!(
        r.load.request_loop,
        Some(RequestLoop::Direct),
        "plain HTTP alone runs on the direct loop"
    );
    http_cases_are_classified(&r);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the run took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_answer_is_classified_within_the_timeout_and_memory_stays_bounded() {
    let url = hostile_server().await;
    let mut text = http_scenario(&url);
    text.push_str("[[actions]]\nname = \"sse-huge\"\nkind = \"sse\"\npath = \"/sse-huge\"\nhold = \"500ms\"\n");
    text.push_str("[[actions]]\nname = \"announced\"\nkind = \"rpc\"\nmethod = \"tools/list\"\n");
    text.push_str(
        "[[actions]]\nname = \"escapes\"\nkind = \"mcp\"\nendpoint = \"/escapes\"\nprotocol = \"2025-03-26\"\n",
    );
    let started = Instant::now();
    let r = run(&text).await;
    let took = started.elapsed();
    for name in HTTP_CASES.iter().chain(&["sse-huge", "announced", "escapes"]) {
        let a = action(&r, name);
        eprintln!(
            "{name}: {} done, failures {:?}, p99 {:?} ms, errors {:?}",
            a.summary.count, a.failures, a.summary.p99_ms, a.errors
        );
    }
    assert_eq!(
        r.load.request_loop,
        Some(RequestLoop::Tasks),
        "SSE and MCP actions run on tasks"
    );
    http_cases_are_classified(&r);
    // An event of 10 MiB ends its session as an error (the parser's bound is 1 MiB), not memory.
    eprintln!("sse: {:?}", r.sse);
    // (A session whose hold ended before the whole event arrived is closed by the client, as it should.)
    assert!(r.sse.errored > 0 && r.sse.server_closed == 0, "{:?}", r.sse);
    assert_eq!(r.sse.errored + r.sse.closed_by_client(), r.sse.opened, "{:?}", r.sse);
    let sse = action(&r, "sse-huge");
    assert!(
        sse.errors.keys().any(|e| e.contains("larger than 1024 KiB")),
        "{:?}",
        sse.errors
    );
    // An answer to keep that announces 3 GiB is refused at once, its connection closed: too_large.
    let announced = action(&r, "announced");
    assert!(announced.summary.count > 0, "announced ran");
    assert_eq!(
        announced.failures.get(&FailureKind::TooLarge),
        Some(&announced.summary.count),
        "{:?}",
        announced.failures
    );
    // A target's control characters never reach a terminal: kept written out.
    let escapes = action(&r, "escapes");
    assert!(!escapes.errors.is_empty(), "the mcp action failed on the content type");
    for message in escapes
        .errors
        .keys()
        .chain(r.actions.iter().flat_map(|a| a.errors.keys()))
    {
        assert!(
            !message.chars().any(|c| c.is_control() && c != '\t'),
            "a control character kept: {message:?}"
        );
    }
    assert!(
        escapes.errors.keys().any(|m| m.contains("\\u{9b}")),
        "{:?}",
        escapes.errors
    );
    assert!(took < Duration::from_secs(8), "the run took {took:?}");
}

/// A target whose SSE `endpoint` event names another port, where a listener counts what reaches it:
/// nothing may (the messages, and the token with them, go to the target's origin only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_on_another_origin_gets_neither_the_messages_nor_the_token() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let stolen = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&stolen);
    let thief = testkit::tcp_server(move |mut sock| {
        let counted = Arc::clone(&counted);
        async move {
            let mut buf = Vec::new();
            while testkit::read_head(&mut sock, &mut buf).await.is_some() {
                counted.fetch_add(1, Ordering::SeqCst);
                let _ = sock
                    .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        }
    })
    .await;
    let endpoint: &'static str = format!("{thief}/message?session_id=x").leak();
    let target = testkit::tcp_server(move |mut sock| async move {
        let mut buf = Vec::new();
        if testkit::read_head(&mut sock, &mut buf).await.is_none() {
            return;
        }
        let frame =
            format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\nevent: endpoint\ndata: {endpoint}\n\n");
        let _ = sock.write_all(frame.as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let text = format!(
        "[target]\nurl = \"{target}\"\ntoken = \"secret-token\"\ntimeout = \"1s\"\n[load]\nusers = 2\nduration = \"1s\"\n\
         [observe]\npost_load = \"0s\"\nmetrics = \"\"\n[[actions]]\nname = \"s\"\nkind = \"sse\"\npath = \"/sse\"\n\
         requests = [{{ method = \"tools/list\" }}]\n"
    );
    let r = run(&text).await;
    let s = action(&r, "s");
    eprintln!("{:?} {:?}", s.failures, s.errors);
    assert_eq!(stolen.load(Ordering::SeqCst), 0, "a request reached the other origin");
    assert!(
        s.errors.keys().any(|e| e.contains("not a URL on the target's origin")),
        "{:?}",
        s.errors
    );
}
