//! The real parts a user puts beside a gateway, from Debian's packages or PyPI, started for a test and
//! stopped when it ends. A part that is not installed makes the test skip with one line, unless
//! `STAMPEDE_REQUIRE_<PART>` is set (as `.ci/run` sets them all), where it fails instead.

use std::process::{Child, Command, Stdio};

use crate::root;

/// PgBouncer from Debian's package, started by `scripts/pgbouncer.sh` in front of `url` with a pool of
/// `pool` server connections; stopped on drop.
pub struct PgBouncer {
    pub url: String,
    pub admin: String,
    state: tempfile::TempDir,
}

impl PgBouncer {
    /// `None` when PgBouncer is not installed (and the test may skip: `STAMPEDE_REQUIRE_PGBOUNCER` unset).
    pub fn start(url: &str, pool: u32) -> Option<PgBouncer> {
        let script = root().join("scripts/pgbouncer.sh");
        let state = tempfile::tempdir().unwrap();
        let out = Command::new(&script)
            .args(["start", url])
            .env("PGBOUNCER_POOL_SIZE", pool.to_string())
            .env("STAMPEDE_PGBOUNCER_STATE", state.path().join("state"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let required = std::env::var_os("STAMPEDE_REQUIRE_PGBOUNCER").is_some();
            assert!(
                !required && stderr.contains("not installed"),
                "scripts/pgbouncer.sh failed: {stderr}"
            );
            eprintln!("skipped: {stderr}");
            return None;
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let field = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {stdout}"))
                .to_owned()
        };
        Some(PgBouncer {
            url: field("url="),
            admin: field("admin="),
            state,
        })
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/pgbouncer.sh"))
            .arg("stop")
            .env("STAMPEDE_PGBOUNCER_STATE", self.state.path().join("state"))
            .status();
    }
}

/// Debian's nginx, or `None` when it is not installed and the test may skip (`STAMPEDE_REQUIRE_NGINX`
/// makes a missing nginx a failure instead, as `.ci/run` sets it).
pub fn nginx_binary() -> Option<std::path::PathBuf> {
    let found = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("STAMPEDE_REQUIRE_NGINX").is_none(),
            "nginx is not installed and STAMPEDE_REQUIRE_NGINX is set"
        );
        eprintln!("skipped: nginx is not installed (apt-get install nginx-light)");
    }
    found
}

/// A certificate authority and a server certificate it signed for 127.0.0.1 and localhost, made with
/// the openssl command line in a directory of its own: `ca.pem`, `server.pem`, `server.key`, and a
/// self-signed `other.pem`/`other.key` no CA vouches for.
pub struct Certs {
    pub dir: tempfile::TempDir,
}

impl Default for Certs {
    fn default() -> Certs {
        Certs::new()
    }
}

impl Certs {
    pub fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        for args in [
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=stampede test CA",
                ],
            ]
            .concat(),
            &[
                &["req"][..],
                &ec,
                &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
            ]
            .concat(),
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ][..]
                .to_vec(),
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "other.key",
                    "-out",
                    "other.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
        ] {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Certs { dir }
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// nginx terminating TLS on a free port in front of `upstream` (http://…), with `cert` and `key`; its
/// access log records whether each connection's TLS session was resumed. Stopped on drop.
pub struct TlsProxy {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl TlsProxy {
    pub fn start(nginx: &std::path::Path, upstream: &str, cert: &std::path::Path, key: &std::path::Path) -> TlsProxy {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let port = crate::free_port();
        let conf = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n\
               log_format tls '$ssl_session_reused $ssl_protocol $ssl_alpn_protocol $status';\n\
               access_log {d}/access.log tls;\n\
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
               uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               server {{\n\
                 listen 127.0.0.1:{port} ssl;\n\
                 ssl_certificate {cert}; ssl_certificate_key {key};\n\
                 ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:tls:1m; ssl_session_tickets on;\n\
                 location / {{\n\
                   proxy_pass {upstream}; proxy_http_version 1.1; proxy_set_header Connection \"\";\n\
                   proxy_set_header Host $http_host; proxy_set_header X-Forwarded-Proto $scheme;\n\
                   proxy_buffering off; proxy_request_buffering off;\n\
                   proxy_read_timeout 3600s;\n\
                 }}\n\
               }}\n\
             }}\n",
            cert = cert.display(),
            key = key.display(),
        );
        let child = start_nginx(nginx, dir.path(), &conf, port);
        TlsProxy { child, port, dir }
    }

    /// The access log's lines: `<r or .> <protocol> <alpn> <status>` per request.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

/// nginx on `conf` (written into `dir`), once it listens on `port`.
fn start_nginx(nginx: &std::path::Path, dir: &std::path::Path, conf: &str, port: u16) -> Child {
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        // One process: a kill reaches all of it.
        .args(["-g", "daemon off; master_process off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        assert!(
            std::time::Instant::now() < deadline,
            "nginx did not listen on {port}: {log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

/// nginx serving `/index.html` (`ok`) on a free port, with its own count of the requests it served
/// (`stub_status` on another port). Stopped on drop.
pub struct StaticNginx {
    child: Child,
    pub url: String,
    status_port: u16,
    _dir: tempfile::TempDir,
}

impl StaticNginx {
    /// `keepalive_requests`: requests on one connection before nginx closes it.
    pub fn start(nginx: &std::path::Path, keepalive_requests: u32) -> StaticNginx {
        StaticNginx::serve(nginx, keepalive_requests, None)
    }

    /// The same over https (TLS 1.3, sessions resumed) with `certs`' server certificate.
    pub fn start_tls(nginx: &std::path::Path, keepalive_requests: u32, certs: &Certs) -> StaticNginx {
        StaticNginx::serve(nginx, keepalive_requests, Some(certs))
    }

    fn serve(nginx: &std::path::Path, keepalive_requests: u32, certs: Option<&Certs>) -> StaticNginx {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "ok\n").unwrap();
        let d = dir.path().display();
        let (port, status_port) = (crate::free_port(), crate::free_port());
        let conf = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n\
               access_log off; keepalive_requests {keepalive_requests};\n\
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
               uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               server {{ listen 127.0.0.1:{port}{tls}; root {d}; }}\n\
               server {{ listen 127.0.0.1:{status_port}; location / {{ stub_status; }} }}\n\
             }}\n",
            tls = certs.map_or(String::new(), |c| format!(
                " ssl; ssl_certificate {}; ssl_certificate_key {}; ssl_protocols TLSv1.3; \
                 ssl_session_cache shared:tls:1m",
                c.path("server.pem").display(),
                c.path("server.key").display()
            )),
        );
        let child = start_nginx(nginx, dir.path(), &conf, port);
        let scheme = if certs.is_some() { "https" } else { "http" };
        StaticNginx {
            child,
            url: format!("{scheme}://127.0.0.1:{port}"),
            status_port,
            _dir: dir,
        }
    }

    /// Requests served so far, as nginx counts them (`stub_status`; this look included).
    pub fn served(&self) -> u64 {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.status_port)).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let mut lines = text.lines().skip_while(|l| !l.starts_with("server accepts"));
        lines.next();
        lines
            .next()
            .and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or_else(|| panic!("stub_status said {text:?}"))
    }
}

impl Drop for StaticNginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// IBM's MCP ContextForge from PyPI (in a cached venv: 1.0.7 on python3.11, 1.1.0 on Python 3.12),
/// started by `scripts/contextforge.sh`; the script says why when it cannot be had. Stopped (and its
/// temp dir removed) on drop.
pub struct ContextForge {
    state: tempfile::TempDir,
    pub url: String,
    pub token: String,
    pub pid: String,
}

impl ContextForge {
    /// Install (once) and start release `version` (`1.0.7` or `1.1.0`); `None` when that failed
    /// (the script has said why).
    pub fn start(version: &str) -> Option<ContextForge> {
        let state = tempfile::tempdir().unwrap();
        let out = Command::new(root().join("scripts/contextforge.sh"))
            .arg("start")
            .env("STAMPEDE_CF_VERSION", version)
            .env("STAMPEDE_CF_STATE", state.path().join("cf.state"))
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8(out.stdout).unwrap();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name}= in {text:?}"))
                .to_owned()
        };
        Some(ContextForge {
            url: field("url"),
            token: field("token"),
            pid: field("pid"),
            state,
        })
    }
}

impl Drop for ContextForge {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/contextforge.sh"))
            .arg("stop")
            .env("STAMPEDE_CF_STATE", self.state.path().join("cf.state"))
            .status();
    }
}

/// Debian's prometheus, or `None` when it is not installed and the test may skip.
pub fn prometheus_binary() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file());
    if found.is_none() && std::env::var_os("STAMPEDE_REQUIRE_PROMETHEUS").is_some() {
        panic!("STAMPEDE_REQUIRE_PROMETHEUS is set and prometheus is not installed (apt-get install prometheus)");
    }
    found
}

/// The official MCP Python SDK (`mcp` from PyPI, in a cached Python 3.12 venv made by
/// `scripts/mcp-sdk.sh`), driven by the scripts in `testkit/sdk/`.
pub struct McpSdk;

impl McpSdk {
    /// The venv's python, installing the SDK once; `None` when it cannot be had and the test may
    /// skip (`STAMPEDE_REQUIRE_MCP_SDK` makes that a failure).
    pub fn python() -> Option<std::path::PathBuf> {
        let out = Command::new(root().join("scripts/mcp-sdk.sh"))
            .arg("python")
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        if out.status.success() {
            return Some(String::from_utf8(out.stdout).unwrap().trim().into());
        }
        assert!(
            std::env::var_os("STAMPEDE_REQUIRE_MCP_SDK").is_none(),
            "STAMPEDE_REQUIRE_MCP_SDK is set and the SDK could not be installed (scripts/mcp-sdk.sh said why)"
        );
        None
    }

    /// The SDK's server (`testkit/sdk/server.py`) in `mode` (`session` or `stateless`): killed on drop.
    pub fn server(python: &std::path::Path, mode: &str) -> SdkServer {
        let mut child = Command::new(python)
            .arg(root().join("testkit/sdk/server.py"))
            .arg(mode)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let said: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("the SDK server said {line:?}: {e}"));
        SdkServer {
            url: said["url"].as_str().unwrap().to_owned(),
            calls_url: said["calls"].as_str().unwrap().to_owned(),
            child,
        }
    }

    /// The SDK's client against `url` in connect `mode`: it lists the tools and calls `tool`; what
    /// it saw, as `testkit/sdk/client.py` prints it.
    pub async fn client(python: &std::path::Path, url: &str, token: &str, mode: &str, tool: &str) -> serde_json::Value {
        let out = tokio::process::Command::new(python)
            .arg(root().join("testkit/sdk/client.py"))
            .args([url, token, mode, tool])
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "the SDK client failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }
}

/// The official SDK's server, running; its `echo` tool counts its calls.
pub struct SdkServer {
    child: Child,
    pub url: String,
    calls_url: String,
}

impl SdkServer {
    /// How many times `echo` ran, as the server counts.
    pub async fn calls(&self) -> u64 {
        let v: serde_json::Value = reqwest::get(&self.calls_url).await.unwrap().json().await.unwrap();
        v["calls"].as_u64().unwrap()
    }
}

impl Drop for SdkServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The official TypeScript reference server, `@modelcontextprotocol/server-everything` from npm (made
/// ready by `scripts/mcp-everything.sh`), on its Streamable HTTP transport: killed on drop.
pub struct Everything {
    child: Child,
    /// Its `/mcp` endpoint.
    pub url: String,
}

impl Everything {
    /// Start it on a free port; `None` when it cannot be had and the test may skip
    /// (`STAMPEDE_REQUIRE_MCP_SDK` makes that a failure, as for the Python SDK).
    pub fn start() -> Option<Everything> {
        let out = Command::new(root().join("scripts/mcp-everything.sh"))
            .arg("entry")
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        if !out.status.success() {
            assert!(
                std::env::var_os("STAMPEDE_REQUIRE_MCP_SDK").is_none(),
                "STAMPEDE_REQUIRE_MCP_SDK is set and server-everything could not be installed (scripts/mcp-everything.sh said why)"
            );
            return None;
        }
        let entry = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let port = crate::free_port();
        let mut child = Command::new("node")
            .arg(entry)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // It says so on stderr once it listens.
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
        let listening = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains("listening on port"));
        assert!(listening, "server-everything ended before it listened");
        std::thread::spawn(move || lines.for_each(drop));
        Some(Everything {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        })
    }
}

impl Drop for Everything {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
