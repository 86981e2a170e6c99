//! The HTTP+SSE transport (2024-11-05), client side: `GET` the stream, read the `endpoint` event, post each
//! message there (202), read the answers on the stream.

use serde_json::{Value, json};

use super::UpstreamError;
use super::frames::{Frames, Read};

pub struct Session {
    http: reqwest::Client,
    post_url: reqwest::Url,
    stream: Frames,
    next_id: u64,
}

impl Session {
    pub async fn open(http: &reqwest::Client, url: &str, max_bytes: usize) -> Result<Session, UpstreamError> {
        let base = reqwest::Url::parse(url).map_err(|e| UpstreamError::Protocol(format!("{url}: {e}")))?;
        let resp = http
            .get(base.clone())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(UpstreamError::of)?;
        if !resp.status().is_success() {
            return Err(UpstreamError::Protocol(format!("GET {url} answered {}", resp.status())));
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !content_type.contains("text/event-stream") {
            return Err(UpstreamError::Protocol(format!(
                "Expected response header Content-Type to contain 'text/event-stream', got '{content_type}'"
            )));
        }
        let mut stream = Frames::new(resp, max_bytes);
        let endpoint = loop {
            match stream.next().await? {
                Some((event, data)) if event == "endpoint" => break data,
                Some(_) => continue,
                None => {
                    return Err(UpstreamError::Protocol(
                        "the stream ended before its endpoint event".into(),
                    ));
                }
            }
        };
        let post_url = base
            .join(endpoint.trim())
            .map_err(|e| UpstreamError::Protocol(format!("endpoint {endpoint:?}: {e}")))?;
        // Messages go back to where the stream came from, never elsewhere.
        if post_url.origin() != base.origin() {
            return Err(UpstreamError::Protocol(format!(
                "endpoint {post_url} is not on the stream's origin"
            )));
        }
        Ok(Session {
            http: http.clone(),
            post_url,
            stream,
            next_id: 0,
        })
    }

    pub async fn post(&self, msg: &Value) -> Result<(), UpstreamError> {
        let resp = self
            .http
            .post(self.post_url.clone())
            .json(msg)
            .send()
            .await
            .map_err(UpstreamError::of)?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(UpstreamError::Protocol(format!(
                "POST {} answered {}",
                self.post_url,
                resp.status()
            )))
        }
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, UpstreamError> {
        self.next_id += 1;
        let id = self.next_id;
        self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        loop {
            match Read::of(self.stream.next_message().await?, id) {
                Read::Answer(msg) => return Ok(msg),
                Read::Asked(answer) => self.post(&answer).await?,
                Read::Other => {}
            }
        }
    }
}
