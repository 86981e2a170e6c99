//! https against a real TLS server no one here wrote: Debian's nginx terminating TLS (a certificate made
//! in the test by the openssl command line) in front of the reference gateway. Every action kind runs
//! through it (setup too), sessions are resumed, ALPN says http/1.1; a certificate the run does not
//! trust is one line and exit 2 in the ad-hoc form and a classified connect error in a run.

use std::process::{Command, Output};

use serde_json::Value;
use testkit::{Certs, TlsProxy};

fn stampede(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(args)
        .env("STAMPEDE_TLS_SECRET", "tls-test-secret")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A scenario of every action kind against `url`, trusting `cacert`.
fn every_kind(url: &str, cacert: &std::path::Path) -> String {
    format!(
        r#"
name = "tls"
[target]
url = "{url}"
cacert = "{cacert}"
jwt_secret_env = "STAMPEDE_TLS_SECRET"
[setup]
gateways = 1
tools = 3
servers = 1
[load]
users = 6
duration = "3s"
think_time = "20ms..60ms"
[observe]
post_load = "0s"
metrics = ""
[[actions]]
name = "health"
kind = "http"
path = "/health"
[[actions]]
name = "rpc"
kind = "rpc"
method = "tools/list"
[[actions]]
name = "sse"
kind = "sse"
requests = [{{ method = "ping" }}]
hold = "100ms..300ms"
close = "abrupt"
[[actions]]
name = "mcp"
kind = "mcp"
requests = [{{ method = "tools/list" }}]
hold = "100ms..300ms"
close = "delete"
"#,
        cacert = cacert.display()
    )
}

#[test]
fn every_action_kind_speaks_tls_to_nginx_and_sessions_resume() {
    let Some(nginx) = testkit::nginx_binary() else { return };
    let certs = Certs::new();
    let gw = testkit::spawn_gateway("tls-test-secret", &[("GATEWAY_ACTIVATION_IO_MS", "0")]);
    let proxy = TlsProxy::start(&nginx, &gw.url, &certs.path("server.pem"), &certs.path("server.key"));
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("tls.toml");
    let url = format!("https://127.0.0.1:{}", proxy.port);
    std::fs::write(&scenario, every_kind(&url, &certs.path("ca.pem"))).unwrap();
    let results = dir.path().join("tls.json");
    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "-o"])
        .arg(&results)
        .env("STAMPEDE_TLS_SECRET", "tls-test-secret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    for a in r["actions"].as_array().unwrap() {
        let s = &a["summary"];
        if ["health", "rpc", "sse", "mcp"].contains(&a["name"].as_str().unwrap()) {
            assert!(s["count"].as_u64().unwrap() > 0, "{} ran over TLS: {a}", a["name"]);
        }
        assert_eq!(s["failed"], 0, "{a}");
        assert_eq!(s["connect_errors"], 0, "{a}");
    }
    assert!(r["sse"]["opened"].as_u64().unwrap() > 0 && r["mcp"]["opened"].as_u64().unwrap() > 0);
    assert_eq!(r["setup"]["tools"], 3, "setup seeded over TLS");

    let log = proxy.access_log();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() > 50, "{log}");
    assert!(
        lines.iter().all(|l| l.contains(" TLSv1.3 http/1.1 ")),
        "TLS 1.3, ALPN http/1.1 on every request:\n{log}"
    );
    // Streams cut abruptly reconnect: those handshakes resume the session the run already has.
    let resumed = lines.iter().filter(|l| l.starts_with("r ")).count();
    assert!(resumed > 0, "no session resumed:\n{log}");
}

#[test]
fn the_ad_hoc_form_speaks_https_and_a_certificate_not_trusted_is_one_line_and_exit_2() {
    let Some(nginx) = testkit::nginx_binary() else { return };
    let certs = Certs::new();
    let gw = testkit::spawn_gateway("s", &[]);
    let proxy = TlsProxy::start(&nginx, &gw.url, &certs.path("server.pem"), &certs.path("server.key"));
    let url = format!("https://localhost:{}/health", proxy.port);
    let cacert = certs.path("ca.pem");
    let cacert = cacert.to_str().unwrap();
    for trust in [&["--cacert", cacert][..], &["--insecure"]] {
        let out = stampede(
            &[
                &[
                    url.as_str(),
                    "-n",
                    "40",
                    "-c",
                    "2",
                    "--json",
                    "--quiet",
                    "-o",
                    "/dev/null",
                ],
                trust,
            ]
            .concat(),
        );
        assert!(out.status.success(), "{trust:?}: {}", text(&out));
        let s: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (s["requests"].as_u64(), s["ok"].as_u64()),
            (Some(40), Some(40)),
            "{trust:?}: {s}"
        );
    }

    // The platform's roots do not know the test CA; a self-signed server is not the CA's.
    let other = TlsProxy::start(&nginx, &gw.url, &certs.path("other.pem"), &certs.path("other.key"));
    let other_url = format!("https://127.0.0.1:{}/health", other.port);
    for args in [
        vec![url.as_str(), "-n", "5"],
        vec![other_url.as_str(), "-n", "5", "--cacert", cacert],
    ] {
        let out = stampede(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.contains("--cacert"), "says what to do: {err}");
    }

    // In a run (no probe first): each failed handshake is a classified connect error, no request.
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("other.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"other\"\n[target]\nurl = \"https://127.0.0.1:{}\"\ncacert = \"{cacert}\"\n[load]\nusers = 2\n\
             duration = \"1s\"\n[observe]\npost_load = \"0s\"\nmetrics = \"\"\n[[actions]]\nkind = \"http\"\npath = \"/health\"\n",
            other.port
        ),
    )
    .unwrap();
    let results = dir.path().join("other.json");
    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "-o"])
        .arg(&results)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    let a = &r["actions"][0];
    assert_eq!(a["summary"]["count"], 0, "{a}");
    assert!(a["summary"]["connect_errors"].as_u64().unwrap() > 0, "{a}");
    let message = a["errors"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("TLS handshake") && message.contains("certificate"),
        "{a}"
    );
}
