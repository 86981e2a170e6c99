//! nginx in front of spawned replicas, as the field ran its gateways: Debian's package, a config written
//! for the run into a temporary directory, a free port on 127.0.0.1, stopped and removed at the end.
//!
//! The settings are the field's kind (the field ran nginx before three gateway replicas):
//! - keep-alive connections to the upstreams (`keepalive`, HTTP/1.1, `Connection ""`), as any proxy in
//!   front of an API does;
//! - buffering off, so an event stream's frames pass as they come and a client that stops reading is
//!   felt by the gateway;
//! - a read timeout of an hour, since an MCP stream idles between keepalives;
//! - round robin over the replicas: sessions do not stick to a replica, the gateways' session bus
//!   finds them — as behind the field's balancer; or, with `proxy_balance = "session-hash"`, by the
//!   `Mcp-Session-Id` header (affinity at the proxy).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

use crate::scenario::Balance;

pub struct Nginx {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    _dir: tempfile::TempDir,
}

/// The nginx binary: `$STAMPEDE_NGINX_BIN`, or `nginx` on PATH or in /usr/sbin (Debian's place, not on
/// every user's PATH).
fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("STAMPEDE_NGINX_BIN") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

/// The config for `upstreams` (base URLs) on `port`, everything it writes kept in `dir`.
pub fn config(upstreams: &[&str], port: u16, dir: &std::path::Path, balance: Balance) -> String {
    let dir = dir.display();
    // A balancing method other than round robin goes before `keepalive` (nginx's rule).
    let balance = match balance {
        Balance::RoundRobin => "",
        Balance::SessionHash => "        hash $http_mcp_session_id consistent;\n",
    };
    let servers: String = upstreams
        .iter()
        .map(|u| format!("        server {};\n", u.trim_start_matches("http://")))
        .collect();
    format!(
        "# Written by stampede for one run.\n\
         worker_processes 1;\n\
         worker_rlimit_nofile 20000;\n\
         pid {dir}/nginx.pid;\n\
         error_log {dir}/error.log warn;\n\
         events {{ worker_connections 16384; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path {dir}/client_body;\n\
         \x20   proxy_temp_path {dir}/proxy;\n\
         \x20   fastcgi_temp_path {dir}/fastcgi;\n\
         \x20   uwsgi_temp_path {dir}/uwsgi;\n\
         \x20   scgi_temp_path {dir}/scgi;\n\
         \x20   upstream gateways {{\n\
         {servers}\
         {balance}\
         \x20       keepalive 256;\n\
         \x20   }}\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port} backlog=4096;\n\
         \x20       client_max_body_size 2m;\n\
         \x20       location / {{\n\
         \x20           proxy_pass http://gateways;\n\
         \x20           proxy_http_version 1.1;\n\
         \x20           proxy_set_header Connection \"\";\n\
         \x20           proxy_set_header Host $http_host;\n\
         \x20           proxy_buffering off;\n\
         \x20           proxy_request_buffering off;\n\
         \x20           proxy_connect_timeout 5s;\n\
         \x20           proxy_send_timeout 60s;\n\
         \x20           proxy_read_timeout 3600s;\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n"
    )
}

/// nginx's binary, or what to install when there is none.
pub fn binary_or_bad_input() -> Result<std::path::PathBuf, super::BadInput> {
    binary().ok_or_else(|| {
        super::BadInput(
            "target.proxy = \"nginx\": nginx is not installed (Debian: apt-get install nginx-light; or set \
             STAMPEDE_NGINX_BIN)"
                .to_owned(),
        )
    })
}

impl Nginx {
    /// Start nginx in front of `upstreams`; a clear error when nginx is not installed or does not start.
    pub async fn start(bin: std::path::PathBuf, upstreams: &[&str], balance: Balance) -> anyhow::Result<Nginx> {
        let dir = tempfile::Builder::new().prefix("stampede-nginx-").tempdir()?;
        // A free port: bound and released; nginx takes it a moment later.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(upstreams, port, dir.path(), balance))?;
        let mut child = Command::new(&bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let base = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
                bail!("nginx exited ({status}) before listening:\n{log}");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.kill().await;
                bail!("nginx did not listen on {base} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Nginx { child, base, _dir: dir })
    }

    /// Quit at once (SIGTERM: nginx's fast shutdown) and wait for it.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            crate::process::terminate(pid);
        }
        crate::process::wait_or_kill(&mut self.child, Duration::from_secs(5)).await;
    }
}
