//! Reading a JSON-RPC reply, wherever it arrives (an HTTP body, an SSE `message` event): its id, and
//! whether it holds a result or an error with its code.

use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<ErrorObject>,
    #[serde(default)]
    result: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ErrorObject {
    code: i64,
}

/// What a reply says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Result,
    Error(i64),
    /// Neither a result nor an error: not a JSON-RPC reply.
    Neither,
}

/// Parse a reply: its id (when it has one) and what it says. `Err` when it is not JSON.
pub fn parse(bytes: &[u8]) -> Result<(Option<serde_json::Value>, Reply), serde_json::Error> {
    let raw: Raw = serde_json::from_slice(bytes)?;
    let reply = match (raw.error, raw.result) {
        (Some(e), _) => Reply::Error(e.code),
        (None, Some(_)) => Reply::Result,
        (None, None) => Reply::Neither,
    };
    Ok((raw.id, reply))
}
