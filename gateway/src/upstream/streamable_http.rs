//! Streamable HTTP, client side: each message is a `POST` to the endpoint accepting JSON or an SSE
//! stream. In the session era the session id from `initialize` and the negotiated protocol version go
//! on every later request and `DELETE` ends the session; in the stateless era (after `discover`) every
//! request carries the `_meta` envelope and the routing headers, and a refusal is a JSON-RPC error
//! under its HTTP status, read as the reply it is.

use protocol::{Version, envelope, header};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};

use super::UpstreamError;
use super::frames::{Frames, Read};

/// How much of a failing answer's body its error quotes.
const ERROR_EXCERPT: usize = 4096;

pub struct Session {
    http: reqwest::Client,
    url: String,
    id: Option<String>,
    version: Option<String>,
    /// Stateless era: the `_meta` every request carries.
    meta: Option<Value>,
    next_id: u64,
    /// The longest answer (or event) read.
    max_bytes: usize,
}

impl Session {
    pub fn new(http: &reqwest::Client, url: &str, max_bytes: usize) -> Session {
        Session {
            http: http.clone(),
            url: url.to_owned(),
            id: None,
            version: None,
            meta: None,
            next_id: 0,
            max_bytes,
        }
    }

    pub fn set_version(&mut self, version: &str) {
        self.version = Some(version.to_owned());
    }

    /// Ask `server/discover` in the newest stateless version: `true` (and the session speaks it from
    /// now on) when the upstream lists it; `false` when it refuses or lists only others, for the
    /// caller to `initialize` instead.
    pub async fn discover(&mut self, client_info: &Value) -> Result<bool, UpstreamError> {
        let v = Version::LATEST;
        self.speak_stateless(client_info);
        let speaks = match self.request("server/discover", json!({})).await {
            Ok(answer) => answer["result"]["supportedVersions"]
                .as_array()
                .is_some_and(|vs| vs.iter().any(|x| x == v.as_str())),
            Err(e @ (UpstreamError::Unreachable(_) | UpstreamError::TimedOut(_))) => return Err(e),
            Err(_) => false,
        };
        if !speaks {
            self.version = None;
            self.meta = None;
            self.id = None;
        }
        Ok(speaks)
    }

    /// Speak the stateless era from now on, as an earlier `discover` of this upstream found it does.
    pub fn speak_stateless(&mut self, client_info: &Value) {
        let v = Version::LATEST;
        self.version = Some(v.as_str().to_owned());
        self.meta = Some(envelope::meta(v, &json!({}), client_info));
    }

    fn builder(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        let mut b = self
            .http
            .request(method, &self.url)
            .header(ACCEPT, "application/json, text/event-stream");
        if let Some(id) = &self.id {
            b = b.header("mcp-session-id", id);
        }
        if let Some(v) = &self.version {
            b = b.header("mcp-protocol-version", v);
        }
        b
    }

    async fn send(&mut self, msg: &Value) -> Result<reqwest::Response, UpstreamError> {
        let mut b = self.builder(reqwest::Method::POST).json(msg);
        let stateless = self.meta.is_some();
        if stateless && let Some(method) = msg["method"].as_str() {
            b = b.header(header::METHOD, method);
            if let Some(name) = header::name_param(method).and_then(|k| msg["params"][k].as_str()) {
                b = b.header(header::NAME, header::encode(name));
            }
        }
        let resp = b.send().await.map_err(UpstreamError::of)?;
        if let Some(id) = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
            self.id = Some(id.to_owned());
        }
        let status = resp.status();
        let json = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        // A stateless refusal is a JSON-RPC error under its status: the reply, not a broken exchange.
        let refusal = stateless && status.is_client_error() && json;
        if !status.is_success() && !refusal {
            let body = super::read_capped(resp, ERROR_EXCERPT).await.map_or_else(
                |_| format!("(more than {ERROR_EXCERPT} bytes)"),
                |b| String::from_utf8_lossy(&b).into_owned(),
            );
            return Err(UpstreamError::Protocol(format!(
                "POST {} answered {status}: {body}",
                self.url
            )));
        }
        Ok(resp)
    }

    pub async fn notify(&mut self, msg: &Value) -> Result<(), UpstreamError> {
        self.send(msg).await.map(drop)
    }

    pub async fn request(&mut self, method: &str, mut params: Value) -> Result<Value, UpstreamError> {
        self.next_id += 1;
        let id = self.next_id;
        if let (Some(meta), Value::Object(p)) = (&self.meta, &mut params) {
            p.insert("_meta".to_owned(), meta.clone());
        }
        let resp = self
            .send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if content_type.contains("text/event-stream") {
            let mut frames = Frames::new(resp, self.max_bytes);
            loop {
                match Read::of(frames.next_message().await?, id) {
                    Read::Answer(msg) => return Ok(msg),
                    // Answered on a POST of its own, as the transport says.
                    Read::Asked(answer) => self.notify(&answer).await?,
                    Read::Other => {}
                }
            }
        }
        let body = super::read_capped(resp, self.max_bytes).await?;
        let body: Value = serde_json::from_slice(&body)
            .map_err(|e| UpstreamError::Protocol(format!("{method}: an answer that is not JSON: {e}")))?;
        // A batch answer is an array; find ours.
        match body {
            Value::Array(items) => items
                .into_iter()
                .find(|m| m["id"] == id)
                .ok_or_else(|| UpstreamError::Protocol(format!("{method}: no answer with id {id}"))),
            one => Ok(one),
        }
    }

    /// End the session (an upstream that does not support it may say 405; either way it is over). A
    /// stateless one has nothing to end.
    pub async fn close(self) {
        if self.id.is_some() {
            let _ = self.builder(reqwest::Method::DELETE).send().await;
        }
    }
}
