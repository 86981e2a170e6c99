//! `[[actions]]` as written: one flat table whose fields apply by `kind`. Each kind declares the
//! fields it reads (`Kind::FIELDS`); any other field given is an error naming the kind.

use serde::{Deserialize, Serialize};

use super::ActionKind;
use crate::lang::DurRange;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloseMode {
    /// Drop the socket without a word (with `rst = true`, a TCP reset).
    #[default]
    Abrupt,
    /// Shut the write side and let the server close.
    Graceful,
    /// mcp: end the session with `DELETE`, as a client that is done does.
    Delete,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SseRequestSpec {
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
}

/// One entry of `[[actions]]`; which fields apply depends on `kind`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub kind: ActionKind,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// http: the HTTP method (default GET); rpc: the JSON-RPC method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// http: path template, e.g. `/tools/{tool_id}/state?activate={bool}`; sse: default `/sse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// http: the body: a table or array is JSON (strings inside may hold templates); a string is sent
    /// as it is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// http: headers besides host and authorization, e.g. `{ "x-api-key" = "…" }` (as written, no
    /// templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    /// rpc: JSON-RPC params (strings may hold templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
    /// http: statuses that are ok (default: any 2xx).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<Vec<u16>>,
    /// http/rpc: statuses that are expected outcomes, not failures (e.g. 409 on a contended toggle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Vec<u16>>,
    /// rpc: JSON-RPC error codes that are expected outcomes, not failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_errors: Option<Vec<i64>>,
    /// mcp: the Streamable HTTP endpoint (default `/mcp`, or `/servers/{server_id}/mcp` with
    /// `server = true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// mcp: the protocol version to speak, or `auto` (`server/discover`, else `initialize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// mcp: hold a stream for server messages during `hold` (the session's `GET` stream, or a
    /// `subscriptions/listen` in the stateless era).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<bool>,
    /// sse: start the MCP session (`initialize`, `notifications/initialized`) before the requests
    /// (default: when there are requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake: Option<bool>,
    /// sse/mcp: open the stream on `/servers/{server_id}/sse` (`/mcp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<bool>,
    /// sse/mcp: JSON-RPC requests sent through the session, each reply timed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Vec<SseRequestSpec>>,
    /// sse/mcp: how long to keep the session open after the requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<DurRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<CloseMode>,
    /// sse/mcp, abrupt close: reset the connection (SO_LINGER 0) instead of closing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rst: Option<bool>,
    /// mcp, stateless era: what to answer a server's input requests (MRTR), by their key, e.g.
    /// `{ confirm = { action = "accept", content = { ok = true } } }`; a key not given is answered
    /// as a client that accepts everything does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_responses: Option<serde_json::Map<String, serde_json::Value>>,
    /// mcp, stateless era: reuse a list or read answer for its `ttlMs` instead of asking again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    /// mcp, stateless era: the changes a listen opts in to: `["tools", "prompts", "resources"]`
    /// (the default: all three).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_to: Option<Vec<String>>,
}

fn default_weight() -> u32 {
    1
}

impl ActionSpec {
    /// The kind-specific fields, each with whether the file gave it; in the order they are checked.
    pub fn given(&self) -> [(&'static str, bool); 20] {
        [
            ("method", self.method.is_some()),
            ("path", self.path.is_some()),
            ("body", self.body.is_some()),
            ("headers", self.headers.is_some()),
            ("params", self.params.is_some()),
            ("ok", self.ok.is_some()),
            ("expected", self.expected.is_some()),
            ("expected_errors", self.expected_errors.is_some()),
            ("endpoint", self.endpoint.is_some()),
            ("protocol", self.protocol.is_some()),
            ("listen", self.listen.is_some()),
            ("server", self.server.is_some()),
            ("handshake", self.handshake.is_some()),
            ("requests", self.requests.is_some()),
            ("hold", self.hold.is_some()),
            ("close", self.close.is_some()),
            ("rst", self.rst.is_some()),
            ("input_responses", self.input_responses.is_some()),
            ("cache", self.cache.is_some()),
            ("listen_to", self.listen_to.is_some()),
        ]
    }
}
