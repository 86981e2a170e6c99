//! The official MCP Python SDK's server (`mcp` from PyPI) as the target of the `mcp` action, in its
//! session and stateless modes and in every protocol era: every call stampede counts as answered
//! is one the server counts as run; and the official TypeScript reference server, server-everything.

use crate::run;

fn scenario(url: &str, protocol: &str) -> String {
    format!(
        r#"
[target]
url = "{url}"
[load]
users = 3
duration = "1500ms"
[observe]
post_load = "0s"
[[actions]]
name = "s"
kind = "mcp"
protocol = "{protocol}"
requests = [
  {{ method = "tools/list" }},
  {{ method = "tools/call", params = {{ name = "echo", arguments = {{ text = "hi" }} }} }},
]
close = "delete"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_server_in_every_era_counts_what_stampede_counts() {
    let Some(python) = testkit::McpSdk::python() else {
        return;
    };
    for mode in ["session", "stateless", "json", "stateless-json"] {
        let server = testkit::McpSdk::server(&python, mode);
        for protocol in ["auto", "2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"] {
            let before = server.calls().await;
            let base = server.url.strip_suffix("/mcp").expect("the SDK serves /mcp");
            let r = run(&scenario(base, protocol)).await;
            let ran = server.calls().await - before;
            let calls = r
                .actions
                .iter()
                .find(|a| a.name == "s tools/call")
                .expect("the tools/call series");
            let m = &r.mcp;
            eprintln!(
                "SDK server {mode}, protocol {protocol}: {} sessions ({} stateless, {} fell back), {} calls ok, server ran {ran}",
                m.opened, m.stateless, m.fell_back, calls.summary.ok
            );
            assert!(m.opened > 0, "{mode} {protocol}: {m:?}");
            assert_eq!(
                r.totals.failed,
                0,
                "{mode} {protocol}: {:?}",
                r.actions.iter().map(|a| &a.errors).collect::<Vec<_>>()
            );
            assert_eq!(
                calls.summary.ok, ran,
                "{mode} {protocol}: stampede's count is the server's"
            );
            let stateless = matches!(protocol, "2026-07-28" | "auto");
            assert_eq!(
                m.stateless == m.opened,
                stateless,
                "{mode} {protocol}: the era spoken: {m:?}"
            );
        }
    }
}

/// The official TypeScript reference server (`@modelcontextprotocol/server-everything`, npm), a
/// session-era server: `auto` falls back to `initialize` on every session, the requests are answered,
/// the GET stream is held and every session deleted; a pinned session-era version speaks it directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_everything_server_is_driven_in_the_session_era() {
    let Some(everything) = testkit::Everything::start() else {
        return;
    };
    let base = everything.url.strip_suffix("/mcp").expect("it serves /mcp");
    for protocol in ["auto", "2025-11-25", "2025-03-26"] {
        let text = format!(
            r#"
[target]
url = "{base}"
[load]
users = 3
duration = "1500ms"
[observe]
post_load = "0s"
[[actions]]
name = "s"
kind = "mcp"
protocol = "{protocol}"
requests = [
  {{ method = "tools/list" }},
  {{ method = "tools/call", params = {{ name = "echo", arguments = {{ message = "hi" }} }} }},
  {{ method = "prompts/list" }},
]
listen = true
hold = "20ms"
close = "delete"
"#
        );
        let r = run(&text).await;
        let m = &r.mcp;
        eprintln!("server-everything, protocol {protocol}: {m:?}");
        assert!(m.opened > 0, "{protocol}: {m:?}");
        assert_eq!(
            r.totals.failed,
            0,
            "{protocol}: {:?}",
            r.actions.iter().map(|a| &a.errors).collect::<Vec<_>>()
        );
        let fell_back = if protocol == "auto" { m.opened } else { 0 };
        assert_eq!(
            (m.stateless, m.fell_back),
            (0, fell_back),
            "{protocol}: the session era"
        );
        assert_eq!(m.closed_delete, m.opened, "{protocol}: every session deleted");
        let listen = r.actions.iter().find(|a| a.name == "s listen").unwrap();
        assert_eq!(listen.summary.ok, m.opened, "{protocol}: every GET stream held");
    }
}

/// The official SDK's HTTP+SSE server as the `sse` action's target: the session starts with the MCP
/// handshake (the SDK refuses requests before it), a log notification before a reply is skipped, the
/// server's pings are answered (their ids, 1 to 3, clash with the requests': a message with a method
/// is never a reply), an unknown method is its −32601, and the calls stampede counts as answered are
/// the ones the server ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_sse_server_is_driven_by_the_sse_action() {
    let Some(python) = testkit::McpSdk::python() else {
        return;
    };
    let server = testkit::McpSdk::server(&python, "sse");
    let base = server.url.strip_suffix("/sse").expect("the SDK serves /sse");
    let text = format!(
        r#"
[target]
url = "{base}"
[load]
users = 3
duration = "1500ms"
[observe]
post_load = "0s"
[[actions]]
name = "s"
kind = "sse"
requests = [
  {{ method = "tools/call", params = {{ name = "pinging", arguments = {{ text = "p" }} }} }},
  {{ method = "tools/call", params = {{ name = "logged", arguments = {{ text = "l" }} }} }},
  {{ method = "bogus/method" }},
  {{ method = "tools/call", params = {{ name = "echo", arguments = {{ text = "e" }} }} }},
]
hold = "10ms"
close = "graceful"
"#
    );
    let before = server.calls().await;
    let r = run(&text).await;
    let ran = server.calls().await - before;
    let series = |name: &str| r.actions.iter().find(|a| a.name == name).unwrap();
    let (reply, init) = (series("s reply"), series("s initialize"));
    let s = &r.sse;
    eprintln!("{s:?}\nreply: {:?}\ninit: {:?}", reply.summary, init.summary);
    assert!(s.opened > 0);
    assert_eq!(init.summary.ok, s.opened, "every session started: {:?}", init.errors);
    assert_eq!(s.errored, 0, "{:?}", reply.errors);
    let sessions = s.opened;
    assert_eq!(
        reply.rpc_errors.get(&-32601),
        Some(&sessions),
        "bogus/method, and only it"
    );
    assert_eq!(reply.summary.ok, ran, "stampede's count is the server's");
    assert_eq!(reply.summary.ok, 3 * sessions, "{:?}", reply.errors);
    assert!(
        s.stream_messages >= 4 * sessions,
        "a log and three pings a session: {s:?}"
    );
}

/// Requests posted before MCP's handshake over HTTP+SSE: the SDK's server refuses them (-32602,
/// "Received request before initialization was complete"), and so do the gateway (fixed profile) and
/// `stampede upstream`; the legacy profile serves them, as the field's gateway did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_before_the_handshake_are_refused_as_the_sdk_refuses_them() {
    let Some(python) = testkit::McpSdk::python() else {
        return;
    };
    let sdk = testkit::McpSdk::server(&python, "sse");
    let up = testkit::spawn_upstream(&[]);
    let early = |target: &str| {
        format!(
            r#"
[target]
{target}
[load]
users = 2
duration = "1s"
[observe]
post_load = "0s"
[[actions]]
name = "s"
kind = "sse"
handshake = false
requests = [{{ method = "tools/list" }}]
hold = "10ms"
close = "graceful"
"#
        )
    };
    let sdk_base = sdk.url.strip_suffix("/sse").expect("the SDK serves /sse");
    for (who, target, refused) in [
        ("the SDK", format!("url = \"{sdk_base}\""), true),
        ("the gateway", "spawn = \"gateway\"".to_owned(), true),
        ("stampede upstream", format!("url = \"{}\"", up.url), true),
        (
            "the legacy gateway",
            "spawn = \"gateway\"\nprofile = \"legacy\"".to_owned(),
            false,
        ),
    ] {
        let r = run(&early(&target)).await;
        let reply = r.actions.iter().find(|a| a.name == "s reply").unwrap();
        let sessions = r.sse.opened;
        eprintln!(
            "{who}: {sessions} sessions; {:?}; rpc errors {:?}",
            reply.summary, reply.rpc_errors
        );
        assert!(sessions > 0, "{who}");
        if refused {
            assert_eq!(
                reply.rpc_errors.get(&-32602),
                Some(&sessions),
                "{who}: every request refused"
            );
            assert_eq!(reply.summary.ok, 0, "{who}");
        } else {
            assert_eq!(reply.summary.ok, sessions, "{who}: every request served");
        }
    }
}
