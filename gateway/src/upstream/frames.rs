//! Server-sent events read from a response body as they arrive: `(event, data)` per event, comments
//! and keepalives skipped.

use super::UpstreamError;

pub struct Frames {
    body: reqwest::Response,
    buffer: String,
}

impl Frames {
    pub fn new(body: reqwest::Response) -> Frames {
        Frames {
            body,
            buffer: String::new(),
        }
    }

    /// The next event with data; `None` when the stream ends.
    pub async fn next(&mut self) -> Result<Option<(String, String)>, UpstreamError> {
        loop {
            // Events end with a blank line; normalize CRLF so one rule finds it.
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data: Vec<&str> = Vec::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push(d.strip_prefix(' ').unwrap_or(d));
                    }
                }
                if !data.is_empty() {
                    return Ok(Some((event, data.join("\n"))));
                }
                continue;
            }
            match self.body.chunk().await.map_err(UpstreamError::of)? {
                Some(chunk) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n")),
                None => return Ok(None),
            }
        }
    }

    /// Read events until the JSON-RPC answer with `id`.
    pub async fn answer(&mut self, id: u64) -> Result<serde_json::Value, UpstreamError> {
        while let Some((event, data)) = self.next().await? {
            // An event with no data (2025-11-25's priming event, carrying only an id) is no message.
            if event != "message" || data.trim().is_empty() {
                continue;
            }
            let msg: serde_json::Value = serde_json::from_str(&data)
                .map_err(|e| UpstreamError::Protocol(format!("a message that is not JSON: {e}")))?;
            if msg["id"] == id {
                return Ok(msg);
            }
        }
        Err(UpstreamError::Protocol("the stream ended before the answer".into()))
    }
}
