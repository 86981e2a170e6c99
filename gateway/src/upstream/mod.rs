//! The gateway's MCP client: how it federates an upstream MCP server. Activating a gateway connects to
//! its upstream over the gateway's transport, starts and lists its tools; a `tools/call` of a
//! federated tool starts again and forwards the call — the shape ContextForge has, so an upstream's
//! latency and failures show through the gateway. Over Streamable HTTP the start is the era the
//! upstream speaks: `server/discover` first (2026-07-28, stateless: nothing more to start), else
//! `initialize`, as the official SDK's client does; the era found is kept per upstream URL, so later
//! calls go straight to it. Every exchange is bounded by a timeout; a session never outlives the
//! call that opened it.

mod frames;
mod http_sse;
mod outbound;
mod streamable_http;

pub use outbound::Outbound;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::{Era, Version};
use serde_json::{Value, json};

/// How a gateway reaches its upstream, as `POST /gateways` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The HTTP+SSE transport (protocol 2024-11-05).
    Sse,
    /// Streamable HTTP (2025-03-26 and later).
    StreamableHttp,
}

impl Transport {
    pub fn parse(name: &str) -> Transport {
        if name.eq_ignore_ascii_case("STREAMABLEHTTP") {
            Transport::StreamableHttp
        } else {
            Transport::Sse
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection, or the connection failed before an answer.
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("no answer within {} ms", .0.as_millis())]
    TimedOut(Duration),
    /// An answer that is not MCP as the transport specifies it.
    #[error("{0}")]
    Protocol(String),
    /// The upstream answered with a JSON-RPC error.
    #[error("the upstream answered error {code}: {message}")]
    Rpc { code: i64, message: String },
    /// The URL is somewhere the gateway does not send requests (`OUTBOUND_ALLOW`).
    #[error("refused by the outbound policy: {0}")]
    Refused(String),
    /// An answer longer than the gateway reads.
    #[error("an answer larger than {0} bytes (UPSTREAM_MAX_BYTES)")]
    TooLarge(usize),
}

impl UpstreamError {
    fn of(e: reqwest::Error) -> UpstreamError {
        if e.is_connect() {
            UpstreamError::Unreachable(chain(&e))
        } else {
            UpstreamError::Protocol(chain(&e))
        }
    }
}

/// An error with its sources, as one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A tool an upstream lists.
#[derive(Debug, Clone)]
pub struct FederatedTool {
    pub name: String,
    pub description: Option<String>,
    pub input_schema: Value,
}

/// The client, shared by every gateway.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The era each Streamable HTTP upstream was found to speak, by URL.
    eras: Arc<Mutex<HashMap<String, Era>>>,
    outbound: Outbound,
    /// The longest answer (or event) read from an upstream.
    max_bytes: usize,
}

/// Read a whole answer, at most `max` bytes: past them the answer is dropped (and its connection
/// closed) as soon as it is known to be too long.
pub async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, UpstreamError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(UpstreamError::TooLarge(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(UpstreamError::of)? {
        if body.len() + chunk.len() > max {
            return Err(UpstreamError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl Client {
    pub fn new(outbound: Outbound, max_bytes: usize) -> anyhow::Result<Client> {
        // No proxy from the environment: behind one, names would be resolved past the resolver's check.
        let http = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(outbound::Resolver(outbound)))
            .redirect(outbound::redirects(outbound))
            .build()?;
        Ok(Client {
            http,
            eras: Arc::default(),
            outbound,
            max_bytes,
        })
    }

    /// Whether the gateway sends requests to `url` (its resolved addresses are checked when it is
    /// dialled).
    pub fn check(&self, url: &str) -> Result<(), UpstreamError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| UpstreamError::Protocol(format!("{url}: {e}")))?;
        self.outbound.check(&parsed).map_err(UpstreamError::Refused)
    }

    /// The longest answer read from an upstream.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    fn era_of(&self, url: &str) -> Option<Era> {
        self.eras.lock().expect("eras").get(url).copied()
    }

    /// Keep the era `url` spoke; forget it (`None`) when a stateless exchange broke, so the next
    /// call asks again.
    fn remember(&self, url: &str, era: Option<Era>) {
        let mut eras = self.eras.lock().expect("eras");
        match era {
            Some(e) => eras.insert(url.to_owned(), e),
            None => eras.remove(url),
        };
    }

    /// The plain HTTP client (REST tools call their URL with it).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Initialize and list the upstream's tools, within `timeout`.
    pub async fn discover(
        &self,
        url: &str,
        transport: Transport,
        timeout: Duration,
    ) -> Result<Vec<FederatedTool>, UpstreamError> {
        self.in_session(url, transport, timeout, async |s: &mut Session| {
            let listed = s.request("tools/list", json!({})).await?;
            let tools = listed["tools"]
                .as_array()
                .ok_or_else(|| UpstreamError::Protocol("tools/list answered no `tools` array".into()))?;
            tools
                .iter()
                .map(|t| {
                    Ok(FederatedTool {
                        name: t["name"]
                            .as_str()
                            .ok_or_else(|| UpstreamError::Protocol("a listed tool has no name".into()))?
                            .to_owned(),
                        description: t["description"].as_str().map(str::to_owned),
                        input_schema: t
                            .get("inputSchema")
                            .cloned()
                            .unwrap_or_else(|| json!({"type": "object"})),
                    })
                })
                .collect()
        })
        .await
    }

    /// Call `name` on the upstream; answers its result as it gave it.
    pub async fn call(
        &self,
        url: &str,
        transport: Transport,
        name: &str,
        arguments: Value,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        self.in_session(url, transport, timeout, async |s: &mut Session| {
            s.request("tools/call", json!({"name": name, "arguments": arguments}))
                .await
        })
        .await
    }

    /// Open a session, initialize, run `f`, close — all within `timeout`.
    async fn in_session<T>(
        &self,
        url: &str,
        transport: Transport,
        timeout: Duration,
        f: impl AsyncFnOnce(&mut Session) -> Result<T, UpstreamError>,
    ) -> Result<T, UpstreamError> {
        self.check(url)?;
        let work = async {
            let known = self.era_of(url);
            let (mut session, era) = Session::open(&self.http, url, transport, known, self.max_bytes).await?;
            if transport == Transport::StreamableHttp && known != Some(era) {
                self.remember(url, Some(era));
            }
            let result = f(&mut session).await;
            if era == Era::Stateless && matches!(result, Err(UpstreamError::Protocol(_))) {
                self.remember(url, None);
            }
            session.close().await;
            result
        };
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or(Err(UpstreamError::TimedOut(timeout)))
    }
}

/// One MCP session over either transport.
enum Session {
    Sse(http_sse::Session),
    Streamable(streamable_http::Session),
}

fn client_info() -> Value {
    json!({"name": "stampede-gateway", "version": env!("CARGO_PKG_VERSION")})
}

impl Session {
    /// Start a session in the era `known` (when an earlier call found it), else the one the upstream
    /// speaks: answers the session and its era.
    async fn open(
        http: &reqwest::Client,
        url: &str,
        transport: Transport,
        known: Option<Era>,
        max_bytes: usize,
    ) -> Result<(Session, Era), UpstreamError> {
        let mut session = match transport {
            Transport::Sse => Session::Sse(http_sse::Session::open(http, url, max_bytes).await?),
            Transport::StreamableHttp => {
                let mut s = streamable_http::Session::new(http, url, max_bytes);
                let stateless = match known {
                    Some(Era::Stateless) => {
                        s.speak_stateless(&client_info());
                        true
                    }
                    Some(Era::Session) => false,
                    None => s.discover(&client_info()).await?,
                };
                if stateless {
                    return Ok((Session::Streamable(s), Era::Stateless));
                }
                Session::Streamable(s)
            }
        };
        let version = match transport {
            Transport::Sse => "2024-11-05",
            Transport::StreamableHttp => Version::LATEST_SESSION.as_str(),
        };
        let init = json!({
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": client_info(),
        });
        let answer = session.request("initialize", init).await?;
        if let Session::Streamable(s) = &mut session {
            s.set_version(answer["protocolVersion"].as_str().unwrap_or(version));
        }
        session.notify("notifications/initialized").await?;
        Ok((session, Era::Session))
    }

    /// A request; answers its `result`, or the upstream's JSON-RPC error.
    async fn request(&mut self, method: &str, params: Value) -> Result<Value, UpstreamError> {
        let mut answer = match self {
            Session::Sse(s) => s.request(method, params).await?,
            Session::Streamable(s) => s.request(method, params).await?,
        };
        if let Some(e) = answer.get("error") {
            return Err(UpstreamError::Rpc {
                code: e["code"].as_i64().unwrap_or(-32603),
                message: e["message"].as_str().unwrap_or("").to_owned(),
            });
        }
        answer
            .as_object_mut()
            .and_then(|a| a.remove("result"))
            .ok_or_else(|| UpstreamError::Protocol(format!("{method}: an answer with neither result nor error")))
    }

    async fn notify(&mut self, method: &str) -> Result<(), UpstreamError> {
        let msg = json!({"jsonrpc": "2.0", "method": method});
        match self {
            Session::Sse(s) => s.post(&msg).await,
            Session::Streamable(s) => s.notify(&msg).await,
        }
    }

    async fn close(self) {
        match self {
            // Dropping the stream closes the session.
            Session::Sse(_) => {}
            Session::Streamable(s) => s.close().await,
        }
    }
}
