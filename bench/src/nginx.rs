//! Debian's nginx as a target no one here wrote: a static file over http and over https, its own count
//! of the requests it served (`stub_status`), and a second https port whose access log says which TLS
//! sessions were resumed. TLS is 1.3 with one cipher suite, so every tool is measured on the same one.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The file every tool asks for.
pub const FILE: &str = "/index.html";
/// The only TLS 1.3 cipher suite nginx offers here (the one browsers and most clients prefer).
pub const CIPHER_SUITE: &str = "TLS_AES_128_GCM_SHA256";

pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`
    pub http: String,
    pub https: String,
    /// https whose access log records each request's `$ssl_session_reused` (for new-connection runs).
    pub https_logged: String,
    status_port: u16,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A CA and a server certificate for 127.0.0.1 signed by it (rustls refuses a CA as a server's).
fn certificates(d: &Path) -> anyhow::Result<()> {
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )?;
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    for args in [
        format!("req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=stampede-bench-CA"),
        format!("req {ec} -keyout server.key -out server.csr -subj /CN=127.0.0.1"),
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext"
            .to_owned(),
    ] {
        let out = Command::new("openssl")
            .args(args.split(' '))
            .current_dir(d)
            .output()
            .context("running openssl")?;
        if !out.status.success() {
            bail!("openssl {args}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
    }
    Ok(())
}

impl Nginx {
    /// nginx on free ports, stopped on drop: on `cores` with a worker on each, or anywhere with a
    /// worker per core.
    pub fn start(nginx: &Path, cores: Option<&[usize]>) -> anyhow::Result<Nginx> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        certificates(d)?;
        std::fs::write(d.join("index.html"), "ok\n")?;
        // Workers run as another user when nginx starts as root: they must read the file.
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let (http, https, logged, status) = (free_port()?, free_port()?, free_port()?, free_port()?);
        let p = d.display();
        let workers = cores.map_or("auto".to_owned(), |c| c.len().to_string());
        let conf = format!(
            "worker_processes {workers};\npid {p}/nginx.pid;\nerror_log {p}/error.log warn;\n\
             events {{ worker_connections 20000; }}\n\
             http {{\n\
               access_log off;\n\
               keepalive_requests 1000000000; keepalive_timeout 300s;\n\
               client_body_temp_path {p}/body; proxy_temp_path {p}/proxy; fastcgi_temp_path {p}/fcgi;\n\
               uwsgi_temp_path {p}/uwsgi; scgi_temp_path {p}/scgi;\n\
               ssl_certificate {p}/server.pem; ssl_certificate_key {p}/server.key;\n\
               ssl_protocols TLSv1.3; ssl_conf_command Ciphersuites {CIPHER_SUITE};\n\
               ssl_session_cache shared:bench:10m; ssl_session_tickets on;\n\
               log_format resumed '$ssl_session_reused';\n\
               server {{\n\
                 listen 127.0.0.1:{http} backlog=8192; listen 127.0.0.1:{https} ssl backlog=8192;\n\
                 root {p};\n\
               }}\n\
               server {{ listen 127.0.0.1:{logged} ssl backlog=8192; root {p}; access_log {p}/resumed.log resumed; }}\n\
               server {{ listen 127.0.0.1:{status}; location / {{ stub_status; }} }}\n\
             }}\n"
        );
        std::fs::write(d.join("nginx.conf"), conf)?;
        let mut cmd = Command::new(nginx);
        if let Some(cores) = cores {
            crate::cores::pin(&mut cmd, cores);
        }
        let child = cmd
            .arg("-p")
            .arg(d)
            .arg("-e")
            .arg(d.join("error.log"))
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", nginx.display()))?;
        let server = Nginx {
            child,
            http: format!("http://127.0.0.1:{http}"),
            https: format!("https://127.0.0.1:{https}"),
            https_logged: format!("https://127.0.0.1:{logged}"),
            status_port: status,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.served().is_none() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(server.dir.path().join("error.log")).unwrap_or_default();
                bail!("nginx did not start: {}", log.trim());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// The CA file a verifying client trusts.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Requests nginx has served so far (`stub_status`'s count, this request included).
    pub fn served(&self) -> Option<u64> {
        let mut s = TcpStream::connect(("127.0.0.1", self.status_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET / HTTP/1.0\r\nhost: 127.0.0.1\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        parse_requests(&text)
    }

    /// Of the requests on the logged https port since the last call: (on a resumed TLS session, all).
    pub fn take_resumed(&self) -> (u64, u64) {
        let path = self.dir.path().join("resumed.log");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let _ = std::fs::write(&path, "");
        let all = text.lines().count() as u64;
        let resumed = text.lines().filter(|l| l.trim() == "r").count() as u64;
        (resumed, all)
    }
}

/// The third number of stub_status's `server accepts handled requests` line.
fn parse_requests(text: &str) -> Option<u64> {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("server accepts"));
    lines.next()?;
    lines.next()?.split_whitespace().nth(2)?.parse().ok()
}

impl Drop for Nginx {
    fn drop(&mut self) {
        crate::proc::stop(&mut self.child);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_stub_status() {
        let text = "HTTP/1.1 200 OK\r\n\r\nActive connections: 1 \nserver accepts handled requests\n 3 3 17 \nReading: 0 Writing: 1 Waiting: 0 \n";
        assert_eq!(super::parse_requests(text), Some(17));
        assert_eq!(super::parse_requests("nothing"), None);
    }
}
