//! A client's message, parsed in one pass into what the gateway reads: the id, the method, the
//! params as a tree, and of the stateless envelope in `params._meta` only what its check reads
//! (`protocol::envelope::Meta`; the rest is skipped unparsed). The envelope comes with every
//! stateless request, and built into a tree it was most of what that era's `tools/list` cost more
//! than a session's.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use protocol::envelope::{Meta, MetaSlot};

use super::{INVALID_REQUEST, PARSE_ERROR, failure};

/// A request; `id: None` is a notification, which gets no answer.
#[derive(Debug)]
pub struct Request {
    pub id: Option<Value>,
    pub method: String,
    /// Its params, without `_meta` (which is `meta`): an object, an array or null.
    pub params: Value,
    /// What the stateless envelope check reads of `params._meta`; `None` when there is no `_meta`
    /// object.
    pub meta: Option<Meta>,
}

/// A message a client sends: a request (or notification), or its response to a server's request.
#[derive(Debug)]
pub enum Message {
    Request(Request),
    Response,
}

/// Parse a request body; a malformed or invalid one gets its error answer (with `id: null`).
pub fn parse(body: &[u8]) -> Result<Request, Vec<u8>> {
    match parse_message(body)? {
        Message::Request(r) => Ok(r),
        Message::Response => Err(failure(
            &Value::Null,
            INVALID_REQUEST,
            "Invalid Request: method must be a string",
        )),
    }
}

/// Parse any message a client may send (Streamable HTTP takes responses too).
pub fn parse_message(body: &[u8]) -> Result<Message, Vec<u8>> {
    let unparsable = |e: serde_json::Error| failure(&Value::Null, PARSE_ERROR, &format!("Parse error: {e}"));
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        serde_json::from_slice::<IgnoredAny>(body).map_err(unparsable)?;
        let why = if first == Some(&b'[') {
            "Invalid Request: batches are not supported; send one message per request"
        } else {
            "Invalid Request: expected a JSON object"
        };
        return Err(failure(&Value::Null, INVALID_REQUEST, why));
    }
    let wire: Wire = serde_json::from_slice(body).map_err(unparsable)?;
    // MCP: an id is a string or an integer (null is kept for JSON-RPC's older clients; `7.0` is an
    // integer written as a float, as JSON Schema counts it).
    let id = match wire.id {
        Slot::Absent => None,
        Slot::Given(Id::Valid(id)) => Some(id),
        Slot::Given(Id::Invalid) => {
            return Err(failure(
                &Value::Null,
                INVALID_REQUEST,
                "Invalid Request: id must be a string or an integer",
            ));
        }
    };
    let invalid = |msg: &str| failure(id.as_ref().unwrap_or(&Value::Null), INVALID_REQUEST, msg);
    if !matches!(wire.jsonrpc, Slot::Given(Text(Some(ref v))) if v == "2.0") {
        return Err(invalid("Invalid Request: jsonrpc must be \"2.0\""));
    }
    let method = match wire.method {
        Slot::Given(Text(Some(method))) => method,
        Slot::Absent if id.is_some() && (wire.result.given() || wire.error.given()) => {
            return Ok(Message::Response);
        }
        _ => return Err(invalid("Invalid Request: method must be a string")),
    };
    let (params, meta) = match wire.params {
        Slot::Absent => (Value::Null, None),
        Slot::Given(Params::Valid(params, meta)) => (params, meta),
        Slot::Given(Params::Invalid) => {
            return Err(invalid("Invalid Request: params must be an object or an array"));
        }
    };
    Ok(Message::Request(Request {
        id,
        method,
        params,
        meta,
    }))
}

/// The members of a message the gateway reads; any other is skipped unparsed (serde_json checks a
/// skipped value's syntax, not its strings' UTF-8 or its depth). A member given twice is a parse
/// error, where a tree kept the last: JSON leaves duplicate names' meaning open (RFC 8259, 4).
#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    jsonrpc: Slot<Text>,
    #[serde(default)]
    id: Slot<Id>,
    #[serde(default)]
    method: Slot<Text>,
    #[serde(default)]
    params: Slot<Params>,
    #[serde(default)]
    result: Slot<IgnoredAny>,
    #[serde(default)]
    error: Slot<IgnoredAny>,
}

/// A member absent, or given (null included, which an `Option` would take for absent).
#[derive(Default)]
enum Slot<T> {
    #[default]
    Absent,
    Given(T),
}

impl<T> Slot<T> {
    fn given(&self) -> bool {
        matches!(self, Slot::Given(_))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Slot<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Slot::Given)
    }
}

/// A member that should be text: its text, or `None` for any other value.
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Text, E> {
                Ok(Text(Some(text.to_owned())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Text, E> {
                Ok(Text(Some(text)))
            }
            protocol::visit_others!(Text(None); visit_bool, visit_i64, visit_u64, visit_f64, visit_unit, visit_seq, visit_map);
        }
        deserializer.deserialize_any(V)
    }
}

/// An id: one MCP allows (string, integer, or JSON-RPC's null), or one it does not.
enum Id {
    Valid(Value),
    Invalid,
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Id, E> {
                Ok(Id::Valid(Value::from(text)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Id, E> {
                Ok(Id::Valid(Value::from(n)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Id, E> {
                Ok(Id::Valid(Value::from(n)))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Id, E> {
                Ok(if n.fract() == 0.0 {
                    Id::Valid(Value::from(n))
                } else {
                    Id::Invalid
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<Id, E> {
                Ok(Id::Valid(Value::Null))
            }
            protocol::visit_others!(Id::Invalid; visit_bool, visit_seq, visit_map);
        }
        deserializer.deserialize_any(V)
    }
}

/// Params: an object (its `_meta` read apart) or an array, null (as if absent), or anything else.
enum Params {
    Valid(Value, Option<Meta>),
    Invalid,
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Params;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Params, E> {
                Ok(Params::Valid(Value::Null, None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Params, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Value>()? {
                    items.push(item);
                }
                Ok(Params::Valid(Value::Array(items), None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
                let mut object = Map::new();
                let mut meta = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "_meta" {
                        meta = map.next_value::<MetaSlot>()?.0;
                    } else {
                        object.insert(key, map.next_value::<Value>()?);
                    }
                }
                Ok(Params::Valid(Value::Object(object), meta))
            }
            protocol::visit_others!(Params::Invalid; visit_bool, visit_i64, visit_u64, visit_f64, visit_str);
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::envelope::{CLIENT_CAPABILITIES_KEY, PROTOCOL_VERSION_KEY, VersionField};
    use serde_json::json;

    fn parse_err(body: &str) -> Value {
        serde_json::from_slice(&parse(body.as_bytes()).unwrap_err()).unwrap()
    }

    #[test]
    fn malformed_and_invalid_requests_get_their_codes() {
        let e = parse_err("{nope");
        assert_eq!(e["error"]["code"], PARSE_ERROR);
        assert_eq!(e["id"], Value::Null);
        assert_eq!(e["jsonrpc"], "2.0");
        assert_eq!(parse_err("[1]")["error"]["code"], INVALID_REQUEST);
        assert_eq!(parse_err(" \"ping\"")["error"]["code"], INVALID_REQUEST);
        assert_eq!(parse_err(" nope")["error"]["code"], PARSE_ERROR);
        assert_eq!(parse_err("{\"jsonrpc\":\"2.0\"} x")["error"]["code"], PARSE_ERROR);
        let twice = r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#;
        assert_eq!(parse_err(twice)["error"]["code"], PARSE_ERROR);
        let e = parse_err(r#"{"jsonrpc":"2.0","id":7}"#);
        assert_eq!(
            (e["error"]["code"].as_i64(), e["id"].as_i64()),
            (Some(INVALID_REQUEST), Some(7))
        );
        for invalid in [
            r#"{"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":2,"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":"x"}"#,
            r#"{"jsonrpc":"2.0","result":{}}"#,
        ] {
            assert_eq!(parse_err(invalid)["error"]["code"], INVALID_REQUEST, "{invalid}");
        }
    }

    #[test]
    fn requests_notifications_and_responses_parse() {
        let r = parse(br#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#).unwrap();
        assert_eq!(
            (r.id, r.method.as_str(), r.params, r.meta),
            (Some(json!("a")), "ping", Value::Null, None)
        );
        let n = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized","extra":[{}]}"#).unwrap();
        assert_eq!(n.id, None);
        let r = parse(br#"{"jsonrpc":"2.0","id":null,"method":"x","params":[1,{"a":2}]}"#).unwrap();
        assert_eq!((r.id, r.params), (Some(Value::Null), json!([1, {"a": 2}])));
        let r = parse(br#"{"jsonrpc":"2.0","id":7.0,"method":"x","params":null}"#).unwrap();
        assert_eq!((r.id, r.params), (Some(json!(7.0)), Value::Null));
        let response = parse_message(br#"{"jsonrpc":"2.0","id":3,"result":{"a":1}}"#).unwrap();
        assert!(matches!(response, Message::Response));
        let response = parse_message(br#"{"jsonrpc":"2.0","id":3,"error":{"code":1,"message":"m"}}"#).unwrap();
        assert!(matches!(response, Message::Response));
    }

    #[test]
    fn the_envelope_is_read_apart_from_the_params() {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "echo", "arguments": {"_meta": 1},
            "_meta": {PROTOCOL_VERSION_KEY: "2026-07-28", CLIENT_CAPABILITIES_KEY: {"sampling": {}}, "x": [1]},
        }});
        let r = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.params, json!({"name": "echo", "arguments": {"_meta": 1}}));
        let meta = r.meta.unwrap();
        assert_eq!(
            (meta.version, meta.capabilities),
            (VersionField::Known(protocol::Version::V2026_07_28), true)
        );
        let r = parse(br#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"_meta":"x"}}"#).unwrap();
        assert_eq!((r.params, r.meta), (json!({}), None));
    }
}
