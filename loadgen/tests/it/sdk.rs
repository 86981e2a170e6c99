//! The official MCP Python SDK's server (`mcp` from PyPI) as the target of the `mcp` action, in its
//! session and stateless modes and in every protocol era: every call stampede counts as answered
//! is one the server counts as run.

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
    for mode in ["session", "stateless"] {
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
