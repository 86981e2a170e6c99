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

/// What a stateless-era result says of itself besides its content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hints {
    /// `resultType: "input_required"`: the server asks for input before it answers (MRTR).
    pub input_required: bool,
    /// `ttlMs`, and whether `cacheScope` is `private`.
    pub ttl_ms: Option<u64>,
    pub private: bool,
}

#[derive(Deserialize)]
struct RawHinted<'a> {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<ErrorObject>,
    #[serde(borrow, default)]
    result: Option<Head<'a>>,
}

/// A result's own fields; the rest of it is skipped, as `IgnoredAny` skips it.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default, rename = "resultType")]
    result_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, rename = "ttlMs")]
    ttl_ms: Option<u64>,
    #[serde(borrow, default, rename = "cacheScope")]
    cache_scope: Option<std::borrow::Cow<'a, str>>,
}

/// `parse`, and a result's hints.
pub fn parse_hinted(bytes: &[u8]) -> Result<(Option<serde_json::Value>, Reply, Hints), serde_json::Error> {
    let raw: RawHinted = serde_json::from_slice(bytes)?;
    let mut hints = Hints::default();
    let reply = match (raw.error, raw.result) {
        (Some(e), _) => Reply::Error(e.code),
        (None, Some(head)) => {
            hints.input_required = head.result_type.as_deref() == Some(protocol::mrtr::INPUT_REQUIRED);
            hints.ttl_ms = head.ttl_ms;
            hints.private = head.cache_scope.as_deref() == Some("private");
            Reply::Result
        }
        (None, None) => Reply::Neither,
    };
    Ok((raw.id, reply, hints))
}
