//! Server-sent events read from a response body as they arrive: `(event, data)` per event, comments
//! and keepalives skipped.

use super::UpstreamError;

pub struct Frames {
    body: reqwest::Response,
    buffer: String,
    /// The longest event read; a longer one ends the stream as an error.
    max: usize,
}

impl Frames {
    pub fn new(body: reqwest::Response, max: usize) -> Frames {
        Frames {
            body,
            buffer: String::new(),
            max,
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
            if self.buffer.len() > self.max {
                return Err(UpstreamError::TooLarge(self.max));
            }
            match self.body.chunk().await.map_err(UpstreamError::of)? {
                Some(chunk) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n")),
                None => return Ok(None),
            }
        }
    }

    /// The next JSON-RPC message on the stream.
    pub async fn next_message(&mut self) -> Result<serde_json::Value, UpstreamError> {
        while let Some((event, data)) = self.next().await? {
            // An event with no data (2025-11-25's priming event, carrying only an id) is no message.
            if event != "message" || data.trim().is_empty() {
                continue;
            }
            return serde_json::from_str(&data)
                .map_err(|e| UpstreamError::Protocol(format!("a message that is not JSON: {e}")));
        }
        Err(UpstreamError::Protocol("the stream ended before the answer".into()))
    }
}

/// What a message read while awaiting the answer to request `id` is to the client.
pub enum Read {
    /// The answer.
    Answer(serde_json::Value),
    /// A request of the server's, and what the client answers it (`ping`: an empty result; anything
    /// else: −32601, as a client that offers nothing more must).
    Asked(serde_json::Value),
    /// A notification, or an answer to another request: nothing to do.
    Other,
}

impl Read {
    pub fn of(msg: serde_json::Value, id: u64) -> Read {
        let asked = msg.get("method").and_then(|m| m.as_str());
        let their_id = msg.get("id").filter(|i| !i.is_null());
        match (asked, their_id) {
            (Some(method), Some(their_id)) => Read::Asked(if method == "ping" {
                serde_json::json!({"jsonrpc": "2.0", "id": their_id, "result": {}})
            } else {
                serde_json::json!({"jsonrpc": "2.0", "id": their_id,
                    "error": {"code": -32601, "message": format!("Method not found: {method}")}})
            }),
            // A message with a method is never the answer, whatever its id.
            (Some(_), None) => Read::Other,
            (None, _) if msg["id"] == id => Read::Answer(msg),
            (None, _) => Read::Other,
        }
    }
}
