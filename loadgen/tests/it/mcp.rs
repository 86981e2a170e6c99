//! `kind = "mcp"` end to end: sessions against the built-in upstream's `/mcp` with JSON replies and
//! with streamed ones; the stateless era (2026-07-28) reached by `auto` against the gateway and the
//! upstream, and the session era when pinned; a storm of abandoned Streamable HTTP sessions against the reference gateway
//! (fixed ends every one, legacy leaves them spinning); and a server that answers badly, each way a
//! classified failure with its message.

use crate::run;
use stampede_loadgen::data::FailureKind;
use stampede_loadgen::results::Results;
use testkit::spawn_upstream as upstream;
use tokio::io::AsyncWriteExt as _;

fn action<'a>(r: &'a Results, name: &str) -> &'a stampede_loadgen::results::ActionTotals {
    r.actions
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no series {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_run_against_the_upstream_with_json_and_with_streamed_replies() {
    for (mode, args) in [("json", &[][..]), ("streamed", &["--sse-replies"][..])] {
        let up = upstream(args);
        let r = run(&format!(
            r#"
[target]
url = "{}"
[load]
users = 5
duration = "2s"
[observe]
post_load = "0s"
[[actions]]
name = "s"
kind = "mcp"
protocol = "2025-03-26"
requests = [
  {{ method = "tools/list" }},
  {{ method = "tools/call", params = {{ name = "echo", arguments = {{ text = "hi" }} }} }},
  {{ method = "no/such" }},
]
expected_errors = [-32601]
listen = true
hold = "50ms"
close = "delete"
"#,
            up.url
        ))
        .await;
        let m = &r.mcp;
        eprintln!(
            "{mode}: {} sessions, {} deleted; series {:?}",
            m.opened,
            m.closed_delete,
            r.actions
                .iter()
                .map(|a| (&a.name, a.summary.count, a.summary.failed))
                .collect::<Vec<_>>()
        );
        assert!(m.opened > 10, "{mode}: {m:?}");
        assert_eq!(m.closed_delete, m.opened, "{mode}: every session deleted: {m:?}");
        assert_eq!((m.errored, m.server_closed, m.open), (0, 0, 0), "{mode}: {m:?}");
        assert_eq!(r.totals.failed, 0, "{mode}: no failure");
        for series in ["s", "s tools/list", "s tools/call", "s listen", "s delete"] {
            let a = action(&r, series);
            assert_eq!(a.summary.count, m.opened, "{mode}: {series}");
        }
        let unknown = action(&r, "s no/such");
        assert_eq!(
            unknown.rpc_errors.get(&-32601),
            Some(&m.opened),
            "{mode}: expected errors"
        );
    }
}

/// An `mcp` action in `protocol` against `url` (or a spawned gateway when `url` is empty).
fn eras(url: &str, protocol: &str, requests: &str) -> String {
    let target = if url.is_empty() {
        "spawn = \"gateway\"".to_owned()
    } else {
        format!("url = \"{url}\"")
    };
    format!(
        r#"
[target]
{target}
[load]
users = 4
duration = "2s"
[observe]
post_load = "0s"
[[actions]]
name = "s"
kind = "mcp"
protocol = "{protocol}"
requests = [{requests}, {{ method = "no/such" }}]
expected_errors = [-32601]
listen = true
hold = "50ms"
close = "delete"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_speaks_the_stateless_era_to_the_gateway_and_the_upstream_and_a_pin_keeps_the_session_era() {
    let up = upstream(&[]);
    let echo = r#"{ method = "tools/call", params = { name = "echo", arguments = { text = "hi" } } }"#;
    for (target, url, requests) in [
        ("gateway", "", r#"{ method = "tools/list" }"#),
        ("upstream", up.url.as_str(), echo),
    ] {
        let r = run(&eras(url, "auto", requests)).await;
        let m = &r.mcp;
        eprintln!("{target}, auto: {m:?}");
        assert!(m.opened > 4, "{target}: {m:?}");
        assert_eq!(
            (m.stateless, m.fell_back),
            (m.opened, 0),
            "{target}: every session stateless"
        );
        assert_eq!(
            m.closed_graceful, m.opened,
            "{target}: nothing to delete, each left in order"
        );
        assert_eq!(
            (m.errored, m.server_closed, m.listen_not_offered),
            (0, 0, 0),
            "{target}: {m:?}"
        );
        assert_eq!(
            r.totals.failed,
            0,
            "{target}: {:?}",
            r.actions.iter().map(|a| &a.errors).collect::<Vec<_>>()
        );
        let unknown = action(&r, "s no/such");
        assert_eq!(unknown.rpc_errors.get(&-32601), Some(&m.opened), "{target}");
        assert_eq!(unknown.statuses.get(&404), Some(&m.opened), "{target}: 404 in this era");
        let listen = action(&r, "s listen");
        assert_eq!(
            listen.statuses.get(&200),
            Some(&m.opened),
            "{target}: every listen stream held"
        );
    }

    let r = run(&eras("", "2025-11-25", r#"{ method = "tools/list" }"#)).await;
    let m = &r.mcp;
    eprintln!("gateway, 2025-11-25: {m:?}");
    assert!(m.opened > 4);
    assert_eq!((m.stateless, m.fell_back), (0, 0), "pinned to the session era");
    assert_eq!(m.closed_delete, m.opened, "every session deleted");
    assert_eq!(r.totals.failed, 0);
}

/// MRTR and caching hints against the upstream: every `confirm` call is asked for input once and
/// completes on the retry (the declined answer given too), and with `cache = true` a user asks
/// `tools/list` once per `ttlMs` (60 s: once in the run), the rest answered from its cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_requests_are_answered_and_caching_hints_honoured() {
    let up = upstream(&[]);
    let scenario = |cache: bool, answers: &str| {
        format!(
            r#"
[target]
url = "{}"
[load]
users = 3
duration = "2s"
[observe]
post_load = "0s"
[[actions]]
name = "s"
kind = "mcp"
requests = [{{ method = "tools/list" }}, {{ method = "tools/call", params = {{ name = "confirm", arguments = {{ what = "{{unique}}" }} }} }}]
cache = {cache}
{answers}
hold = "10ms"
"#,
            up.url
        )
    };
    let r = run(&scenario(false, "")).await;
    let m = &r.mcp;
    eprintln!("no cache: {m:?}");
    let calls = action(&r, "s tools/call").summary.count;
    assert!(calls > 3, "{m:?}");
    assert_eq!(r.totals.failed, 0, "{:?}", action(&r, "s tools/call").errors);
    assert_eq!(m.mrtr_rounds, calls, "one input round per call");
    assert_eq!(action(&r, "s tools/list").summary.count, calls, "every list asked");
    assert_eq!(
        m.cache_hinted, calls,
        "each list carried ttlMs; no result asking for input did"
    );
    assert_eq!((m.ttl_ms_min, m.cache_private, m.cache_hits), (Some(60_000), 0, 0));

    let declined = r#"input_responses = { confirm = { action = "decline" } }"#;
    let r = run(&scenario(true, declined)).await;
    let m = &r.mcp;
    eprintln!("cache, declined: {m:?}");
    let calls = action(&r, "s tools/call").summary.count;
    assert_eq!(r.totals.failed, 0, "{:?}", action(&r, "s tools/call").errors);
    assert_eq!(m.mrtr_rounds, calls);
    let lists = action(&r, "s tools/list").summary.count;
    assert!(lists <= 3, "once per user within the ttl: {lists}");
    assert_eq!(lists + m.cache_hits, calls, "the rest from the cache");
}

/// `stampede run --matrix protocol=A,B`: the scenario once per version, every mcp action speaking it,
/// a results file each, then compared and reported together.
#[test]
fn a_protocol_matrix_runs_each_version_and_sets_them_side_by_side() {
    let up = upstream(&[]);
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("m.toml");
    std::fs::write(
        &scenario,
        format!(
            "[target]\nurl = \"{}\"\n[load]\nusers = 2\nduration = \"1s\"\n[observe]\npost_load = \"0s\"\n\
             [[actions]]\nname = \"s\"\nkind = \"mcp\"\nrequests = [{{ method = \"tools/list\" }}]\n",
            up.url
        ),
    )
    .unwrap();
    let out = dir.path().join("m.json");
    let run = testkit::stampede()
        .args(["run", "-q", "--matrix", "protocol=2025-03-26,2026-07-28", "-o"])
        .arg(&out)
        .arg(&scenario)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    for (version, stateless) in [("2025-03-26", false), ("2026-07-28", true)] {
        let file = dir.path().join(format!("m.{version}.json"));
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let m = &r["mcp"];
        assert!(m["opened"].as_u64().unwrap() > 0, "{version}: {m}");
        assert_eq!(m["stateless"] == m["opened"], stateless, "{version}: {m}");
        assert!(stdout.contains(&format!("m.{version}.json")), "{stdout}");
    }
    let html = std::fs::read_to_string(dir.path().join("m.html")).unwrap();
    assert!(html.contains("2026-07-28"), "the report names both runs");
    let bad = testkit::stampede()
        .args(["run", "--matrix", "protocol=2026-07-28", "-o"])
        .arg(&out)
        .arg(&scenario)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "one version is no matrix");
}

/// A listen stream carries what the server tells: the upstream, told to, announces list changes on
/// every stateless listen, and the client counts each message it reads on its held streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_messages_a_listen_stream_carries_are_counted() {
    let up = upstream(&["--list-changed-every", "100ms"]);
    let text = format!(
        "[target]\nurl = \"{}\"\n[load]\nusers = 2\nduration = \"1500ms\"\n[observe]\npost_load = \"0s\"\n\
         [[actions]]\nname = \"s\"\nkind = \"mcp\"\nprotocol = \"2026-07-28\"\nrequests = [{{ method = \"tools/list\" }}]\n\
         listen = true\nhold = \"450ms\"\n",
        up.url
    );
    let r = run(&text).await;
    let m = &r.mcp;
    eprintln!("{m:?}");
    assert!(m.opened > 0 && r.totals.failed == 0, "{m:?}");
    // Each held stream: its acknowledgement, then three kinds of change every 100 ms for 450 ms.
    assert!(
        m.stream_messages >= m.opened * 7,
        "{} messages on {} streams",
        m.stream_messages,
        m.opened
    );
}

fn storm(profile: &str) -> String {
    format!(
        r#"
[target]
spawn = "gateway"
profile = "{profile}"
env = {{ SSE_KEEPALIVE_INTERVAL = "0.2" }}
[load]
users = 60
duration = "3s"
[observe]
post_load = "6s"
settle = "2s"
[[actions]]
name = "drop"
kind = "mcp"
requests = [{{ method = "tools/list" }}]
listen = true
hold = "100ms..400ms"
close = "abrupt"
[[actions]]
name = "reset"
kind = "mcp"
listen = true
hold = "100ms..400ms"
close = "abrupt"
rst = true
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_dropped_sessions_leaves_legacy_spinning_and_fixed_idle() {
    let legacy = run(&storm("legacy")).await;
    let o = &legacy.observed;
    eprintln!(
        "legacy: {} sessions opened ({} dropped, {} reset); server sessions left {:?}; CPU post-load settled {:?} %",
        legacy.mcp.opened,
        legacy.mcp.closed_abrupt,
        legacy.mcp.closed_rst,
        o.mcp_sessions_active_end,
        o.cpu_post_load_settled_mean_pct
    );
    assert!(legacy.mcp.closed_abrupt > 0 && legacy.mcp.closed_rst > 0);
    assert!(o.mcp_sessions_active_end.unwrap() > 0.0, "nobody noticed they left");
    assert!(
        o.cpu_post_load_settled_mean_pct.unwrap() > 50.0,
        "abandoned streams keep a core busy"
    );

    let fixed = run(&storm("fixed")).await;
    let o = &fixed.observed;
    let gone = o.mcp_session_ends.get("client_gone").copied().unwrap_or(0.0);
    eprintln!(
        "fixed: {} sessions opened; server ended {gone} client_gone (all ends {:?}); left {:?}; CPU post-load settled {:?} %",
        fixed.mcp.opened, o.mcp_session_ends, o.mcp_sessions_active_end, o.cpu_post_load_settled_mean_pct
    );
    assert_eq!(o.mcp_sessions_active_end, Some(0.0));
    assert_eq!(
        gone as u64, fixed.mcp.opened,
        "every dropped session ended at once, as client_gone"
    );
    assert!(o.cpu_post_load_settled_mean_pct.unwrap() < 1.0, "idle after the settle");
}

/// A server that answers `/mcp`-like requests badly, by path; anything not named gets a good
/// `initialize` answer and 202 for notifications.
async fn bad_server() -> String {
    testkit::tcp_server(serve_badly).await
}

async fn serve_badly(mut sock: tokio::net::TcpStream) {
    let mut buf = Vec::new();
    // `/expire`: each session is gone (404) at its first request, and the one started again is not.
    let mut inits = 0;
    loop {
        let Some((head, body)) = testkit::read_request(&mut sock, &mut buf).await else {
            return;
        };
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let good_init = br#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-03-26","capabilities":{},"serverInfo":{"name":"bad","version":"0"}}}"#;
        let answer: Vec<u8> = if path == "/none" && (head.starts_with("delete ") || head.starts_with("get ")) {
            // As the specification lets a server: no DELETE, no GET stream.
            b"HTTP/1.1 405 Method Not Allowed\r\nallow: POST\r\ncontent-length: 0\r\n\r\n".to_vec()
        } else if head.starts_with("delete ") {
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec()
        } else if path == "/expire" {
            let request: serde_json::Value = serde_json::from_str(&body).unwrap();
            let json = |inits: u32, text: String| {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nmcp-session-id: s{inits}\r\ncontent-length: {}\r\n\r\n{text}",
                    text.len()
                )
                .into_bytes()
            };
            match (request["method"].as_str(), &request["id"]) {
                (Some("initialize"), id) => {
                    inits += 1;
                    json(
                        inits,
                        format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"protocolVersion":"2025-03-26"}}}}"#),
                    )
                }
                (_, serde_json::Value::Null) => b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n".to_vec(),
                // Every session's first id (odd) is gone at its first request; the next one (even) is not.
                _ if head.contains(&format!("mcp-session-id: s{inits}\r\n")) && inits % 2 == 1 => {
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec()
                }
                (_, id) => json(inits, format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#)),
            }
        } else if path == "/notify" && body.contains("\"initialize\"") {
            // A streamed reply, chunked, with a notification and a request of the server's first; the
            // reply's event split over two chunks, the frame lines ending in CRLF.
            let events = [
                "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\r\n\r\n",
                ": a comment\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"srv-1\",\"method\":\"ping\"}\r\n\r\n",
                "data: {\"jsonrpc\":\"2.0\",\"id\":1,",
                "\"result\":{\"protocolVersion\":\"2025-03-26\"}}\r\n\r\n",
            ];
            let mut a =
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            for e in events {
                a.extend_from_slice(format!("{:x}\r\n{e}\r\n", e.len()).as_bytes());
            }
            a.extend_from_slice(b"0\r\n\r\n");
            a
        } else if !body.contains("\"initialize\"") {
            if path == "/sid" {
                b"HTTP/1.1 202 Accepted\r\nmcp-session-id: other\r\ncontent-length: 0\r\n\r\n".to_vec()
            } else {
                b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n".to_vec()
            }
        } else {
            match path.as_str() {
                "/html" => b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 13\r\n\r\n<html></html>".to_vec(),
                "/truncated" => {
                    let _ = sock
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"res")
                        .await;
                    return;
                }
                "/big" => {
                    let size = 4 << 20;
                    let mut a = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {size}\r\n\r\n"
                    )
                    .into_bytes();
                    a.extend(std::iter::repeat_n(b' ', size - good_init.len()));
                    a.extend_from_slice(good_init);
                    a
                }
                "/utf8" => {
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 12\r\n\r\ndata: \xff\xfe\"\"\n\n"
                        .to_vec()
                }
                _ => {
                    let mut a = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nmcp-session-id: first\r\ncontent-length: {}\r\n\r\n",
                        good_init.len()
                    )
                    .into_bytes();
                    a.extend_from_slice(good_init);
                    a
                }
            }
        };
        if sock.write_all(&answer).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_answers_are_classified_failures_with_their_message() {
    let url = bad_server().await;
    let mut text =
        format!("[target]\nurl = \"{url}\"\n[load]\nusers = 5\nduration = \"1s\"\n[observe]\npost_load = \"0s\"\n");
    let cases = [
        (
            "html",
            "answered text/html, not JSON or an event stream",
            FailureKind::Protocol,
        ),
        ("truncated", "the stream ended inside an event", FailureKind::Protocol),
        ("big", "a reply larger than 1024 KiB", FailureKind::TooLarge),
        ("utf8", "not UTF-8", FailureKind::Protocol),
        ("sid", "the session id changed mid-session", FailureKind::Protocol),
    ];
    for (name, ..) in cases {
        text.push_str(&format!(
            "[[actions]]\nname = \"{name}\"\nkind = \"mcp\"\nprotocol = \"2025-03-26\"\nendpoint = \"/{name}\"\nclose = \"delete\"\n"
        ));
    }
    let r = run(&text).await;
    for (name, says, kind) in cases {
        let a = action(&r, name);
        eprintln!("{name}: {:?} {:?}", a.failures, a.errors);
        assert!(a.summary.count > 0, "{name} ran");
        assert_eq!(
            a.failures.get(&kind),
            Some(&a.summary.count),
            "{name}: every session a {} failure",
            kind.label()
        );
        assert!(
            a.errors.keys().any(|e| e.contains(says)),
            "{name}: {:?} should say {says:?}",
            a.errors
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_told_404_starts_again_once_and_is_counted() {
    let url = bad_server().await;
    let r = run(&format!(
        "[target]\nurl = \"{url}\"\n[load]\nusers = 1\nduration = \"500ms\"\n[observe]\npost_load = \"0s\"\n\
         [[actions]]\nname = \"s\"\nkind = \"mcp\"\nprotocol = \"2025-03-26\"\nendpoint = \"/expire\"\nrequests = [{{ method = \"tools/list\" }}]\nclose = \"delete\"\n"
    ))
    .await;
    let m = &r.mcp;
    eprintln!("{m:?}");
    assert!(m.opened > 0);
    assert_eq!(m.reinitialized, m.opened, "each session started again once");
    assert_eq!(
        m.recovered, m.reinitialized,
        "and its request was answered in the new session"
    );
    assert_eq!(m.closed_delete, m.opened, "and went on to its end");
    // The 404 itself is the request's failure, as such; nothing else failed.
    let lost = r.totals.failed;
    assert_eq!(lost, m.reinitialized, "one \"session not found\" per session");
    let kind = stampede_loadgen::data::FailureKind::SessionNotFound;
    let counted: u64 = r.actions.iter().filter_map(|a| a.failures.get(&kind)).sum();
    assert_eq!(counted, lost, "counted as session_not_found");
}

/// A server may offer no GET stream and no DELETE (405 to both): the session is held without a
/// stream and left without a delete, each counted as "the server offers none", never as a failure
/// or as deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_offers_no_stream_and_no_delete_is_counted_so() {
    let url = bad_server().await;
    let r = run(&format!(
        "[target]\nurl = \"{url}\"\n[load]\nusers = 2\nduration = \"600ms\"\n[observe]\npost_load = \"0s\"\n\
         [[actions]]\nname = \"s\"\nkind = \"mcp\"\nprotocol = \"2025-03-26\"\nendpoint = \"/none\"\nlisten = true\nhold = \"50ms\"\nclose = \"delete\"\n"
    ))
    .await;
    let m = &r.mcp;
    eprintln!("{m:?}; errors {:?}", r.actions[0].errors);
    assert!(m.opened > 0);
    assert_eq!(r.totals.failed, 0, "405 is the specification's answer, not a failure");
    assert_eq!(
        m.listen_not_offered, m.opened,
        "every GET stream: the server offers none"
    );
    assert_eq!(m.closed_undeletable, m.opened, "every session left, none deleted");
    assert_eq!(m.closed_delete, 0);
    let listen = r
        .actions
        .iter()
        .find(|a| a.name == "s listen")
        .expect("a listen series");
    assert_eq!(listen.summary.expected, listen.summary.count, "{:?}", listen.summary);
    assert!(listen.statuses.contains_key(&405));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_reply_may_carry_server_messages_before_the_result() {
    let url = bad_server().await;
    let r = run(&format!(
        "[target]\nurl = \"{url}\"\n[load]\nusers = 2\nduration = \"500ms\"\n[observe]\npost_load = \"0s\"\n\
         [[actions]]\nname = \"s\"\nkind = \"mcp\"\nprotocol = \"2025-03-26\"\nendpoint = \"/notify\"\nclose = \"delete\"\n"
    ))
    .await;
    eprintln!("{:?}; errors {:?}", r.mcp, r.actions[0].errors);
    assert!(r.mcp.opened > 0);
    assert_eq!(
        r.totals.failed, 0,
        "the notification and the server's request were skipped"
    );
    assert_eq!(r.mcp.closed_delete, r.mcp.opened);
}
