//! What the loadgen tests share: child processes that announce their URL on their first line (the
//! upstream, the gateway), and a scenario text run in process.

#![allow(dead_code)] // each test binary uses its own part

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use stampede_loadgen::engine::{self, RunOptions};
use stampede_loadgen::results::Results;
use stampede_loadgen::scenario;

/// A child process killed on drop, with the URL its first line named.
pub struct Proc {
    pub child: Child,
    pub url: String,
    pub _dir: Option<tempfile::TempDir>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The URL in a child's first stdout line (`… listening on http://ADDR`).
pub fn first_line_url(child: &mut Child) -> String {
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    stampede_loadgen::process::listening_url(&first)
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_owned()
}

/// `stampede upstream` with `args`.
pub fn upstream(args: &[&str]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .arg("upstream")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start stampede upstream");
    let url = first_line_url(&mut child);
    Proc { child, url, _dir: None }
}

/// The reference gateway on SQLite in a temp dir, with this JWT secret and these settings (none taken
/// from the environment the tests run in).
pub fn gateway(secret: &str, env: &[(&str, &str)]) -> Proc {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(stampede_loadgen::process::gateway_binary())
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("JWT_SECRET_KEY", secret)
        .env_remove("DATABASE_URL")
        .env_remove("GATEWAY_ACTIVATION_IO_MS")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let url = first_line_url(&mut child);
    Proc {
        child,
        url,
        _dir: Some(dir),
    }
}

/// True when there is no test PostgreSQL (a plain `cargo test`): the case skips with a line. `make test`
/// always provides one.
pub fn no_pg() -> bool {
    let missing = std::env::var_os("STAMPEDE_TEST_PG").is_none();
    if missing {
        eprintln!("skipped: STAMPEDE_TEST_PG is not set (`make test` starts a throwaway PostgreSQL)");
    }
    missing
}

/// Run a scenario given as TOML text, in process, to its end.
pub async fn run(text: &str) -> Results {
    let s = scenario::parse("test.toml", text, "test", &[]).unwrap_or_else(|e| panic!("{e}"));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let out = engine::run(s, RunOptions::default(), rx).await.expect("run");
    Results::from_run(&out, None)
}

/// A server on a free port whose every connection `serve` answers, for targets that misbehave on
/// purpose; answers its base URL.
pub async fn tcp_server<F, Fut>(serve: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            tokio::spawn(serve(sock));
        }
    });
    format!("http://{addr}")
}

/// The next request head on `sock` (`buf` keeps what was read past it), or None when the client has
/// gone: for the hand-written servers above.
pub async fn read_head(sock: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    use tokio::io::AsyncReadExt as _;
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    Some(head)
}

/// A fresh database on the server in `STAMPEDE_TEST_PG`, dropped at the end.
pub struct TestDb {
    admin: String,
    name: String,
    pub url: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        use sqlx::Connection as _;
        let admin = std::env::var("STAMPEDE_TEST_PG")
            .expect("STAMPEDE_TEST_PG is not set: run `make test`, which starts a throwaway PostgreSQL");
        let name = format!("stampede_obs_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let mut url = reqwest::Url::parse(&admin).unwrap();
        url.set_path(&format!("/{name}"));
        TestDb {
            admin,
            name,
            url: url.to_string(),
        }
    }

    pub async fn drop_it(self) {
        use sqlx::Connection as _;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                .execute(&mut conn)
                .await;
        }
    }
}

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
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pgbouncer.sh");
        let state = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(script)
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
        let _ = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pgbouncer.sh"))
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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
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
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            // One process: a kill reaches all of it.
            .args(["-g", "daemon off; master_process off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            assert!(
                std::time::Instant::now() < deadline,
                "nginx did not listen on {port}: {log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        TlsProxy { child, port, dir }
    }

    /// The access log's lines: `<r or .> <protocol> <alpn> <status>` per request.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
