//! Streamable HTTP, client side: each message is a `POST` to the endpoint accepting JSON or an SSE
//! stream; the session id from `initialize` and the negotiated protocol version go on every later
//! request; `DELETE` ends the session.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};

use super::UpstreamError;
use super::frames::Frames;

pub struct Session {
    http: reqwest::Client,
    url: String,
    id: Option<String>,
    version: Option<String>,
    next_id: u64,
}

impl Session {
    pub fn new(http: &reqwest::Client, url: &str) -> Session {
        Session {
            http: http.clone(),
            url: url.to_owned(),
            id: None,
            version: None,
            next_id: 0,
        }
    }

    pub fn set_version(&mut self, version: &str) {
        self.version = Some(version.to_owned());
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
        let resp = self
            .builder(reqwest::Method::POST)
            .json(msg)
            .send()
            .await
            .map_err(UpstreamError::of)?;
        if let Some(id) = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
            self.id = Some(id.to_owned());
        }
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
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

    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, UpstreamError> {
        self.next_id += 1;
        let id = self.next_id;
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
            return Frames::new(resp).answer(id).await;
        }
        let body: Value = resp
            .json()
            .await
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

    /// End the session (an upstream that does not support it may say 405; either way it is over).
    pub async fn close(self) {
        if self.id.is_some() {
            let _ = self.builder(reqwest::Method::DELETE).send().await;
        }
    }
}
