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

/// A message as its members make it: a request (a method and an id), a notification (a method, no
/// id), or a response (no method) with what it says.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request {
        id: serde_json::Value,
        method: String,
    },
    Notification,
    Response {
        id: Option<serde_json::Value>,
        reply: Reply,
    },
}

#[derive(Deserialize)]
struct RawMessage<'a> {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(borrow, default)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    error: Option<ErrorObject>,
    #[serde(default)]
    result: Option<IgnoredAny>,
}

/// Classify one message. A message with a method is never a reply, whatever its id.
pub fn message(bytes: &[u8]) -> Result<Message, serde_json::Error> {
    let raw: RawMessage = serde_json::from_slice(bytes)?;
    Ok(match (raw.method, raw.id) {
        (Some(method), Some(id)) if !id.is_null() => Message::Request {
            id,
            method: method.into_owned(),
        },
        (Some(_), _) => Message::Notification,
        (None, id) => Message::Response {
            id,
            reply: match (raw.error, raw.result) {
                (Some(e), _) => Reply::Error(e.code),
                (None, Some(_)) => Reply::Result,
                (None, None) => Reply::Neither,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_with_a_method_is_never_a_reply() {
        let m = |s: &str| message(s.as_bytes()).unwrap();
        assert_eq!(
            m(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            Message::Request {
                id: 1.into(),
                method: "ping".into()
            }
        );
        assert_eq!(
            m(r#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#),
            Message::Notification
        );
        assert_eq!(
            m(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"x"}}"#),
            Message::Response {
                id: Some(1.into()),
                reply: Reply::Error(-32601)
            }
        );
        assert_eq!(
            m(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
            Message::Response {
                id: Some("a".into()),
                reply: Reply::Result
            }
        );
    }
}
