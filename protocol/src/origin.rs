//! Origin validation on the MCP endpoints, the transport page's MUST against DNS rebinding: a request
//! whose `Origin` is present and not allowed is refused with 403. A request without one (a client
//! that is not a browser) passes; loopback origins (`localhost`, `127.0.0.0/8`, `[::1]`, any port)
//! are always allowed, since a page served from this machine is this machine's.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Rejection;

/// The origins a server accepts besides loopback ones: exact `scheme://host[:port]`, or `*` for any.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    allowed: Vec<String>,
}

impl Origins {
    pub fn new(allowed: impl IntoIterator<Item = String>) -> Origins {
        Origins {
            allowed: allowed
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect(),
        }
    }

    pub fn allows(&self, origin: &str) -> bool {
        loopback(origin) || self.allowed.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    }
}

/// Whether `origin` is an http(s) origin on a loopback host.
fn loopback(origin: &str) -> bool {
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some(split) => split,
            None => return false,
        },
        None => authority.split_at(authority.find(':').unwrap_or(authority.len())),
    };
    let is_loopback =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    is_loopback && port_ok(port)
}

/// What may follow the host: nothing, or `:` and a port.
fn port_ok(rest: &str) -> bool {
    rest.is_empty() || rest.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok())
}

/// The middleware: refuse a request whose `Origin` is not allowed.
pub async fn guard(State(origins): State<Arc<Origins>>, req: Request, next: Next) -> Response {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|o| origins.allows(o));
        if !allowed {
            let shown = String::from_utf8_lossy(origin.as_bytes()).into_owned();
            return Rejection::transport(
                StatusCode::FORBIDDEN,
                format!("Forbidden: Origin {shown:?} is not allowed"),
            )
            .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_listed_origins_pass_and_others_do_not() {
        let none = Origins::default();
        for ok in [
            "http://localhost:3000",
            "https://127.0.0.1",
            "http://[::1]:8080",
            "http://127.9.9.9:1",
        ] {
            assert!(none.allows(ok), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil:80",
            "null",
            "file://",
        ] {
            assert!(!none.allows(bad), "{bad}");
        }
        let listed = Origins::new(["https://app.example/".to_owned()]);
        assert!(listed.allows("https://app.example"));
        assert!(!listed.allows("https://other.example"));
        assert!(Origins::new(["*".to_owned()]).allows("https://any.example"));
    }
}
