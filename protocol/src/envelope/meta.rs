//! What the envelope check reads of a request's `params._meta`: its protocol version and whether it
//! names the client's capabilities. A server deserializes it straight from the body and skips the rest
//! unparsed: a stateless request carries its whole envelope every time, and building it into a tree
//! of maps and strings cost more than the rest of a `tools/list`'s parse.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::{CLIENT_CAPABILITIES_KEY, PROTOCOL_VERSION_KEY};
use crate::Version;

/// The part of a `params._meta` object the envelope check reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub version: VersionField,
    /// Whether it names the client's capabilities (their content is not the gateway's to check).
    pub capabilities: bool,
}

/// `io.modelcontextprotocol/protocolVersion` as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum VersionField {
    #[default]
    Missing,
    Known(Version),
    /// Text that names no version spoken here (kept for the refusal, which repeats it).
    Unknown(Box<str>),
    NotText,
}

impl VersionField {
    fn of_text(text: &str) -> Self {
        Version::parse(text).map_or_else(|| VersionField::Unknown(text.into()), VersionField::Known)
    }

    /// The version's text, when it was text.
    pub fn text(&self) -> Option<&str> {
        match self {
            VersionField::Known(v) => Some(v.as_str()),
            VersionField::Unknown(t) => Some(t),
            VersionField::Missing | VersionField::NotText => None,
        }
    }
}

impl Meta {
    /// Read from `params` already parsed: `None` when it has no `_meta` object.
    pub fn of(params: &Value) -> Option<Meta> {
        let meta = params.get("_meta")?.as_object()?;
        let version = match meta.get(PROTOCOL_VERSION_KEY) {
            None => VersionField::Missing,
            Some(Value::String(s)) => VersionField::of_text(s),
            Some(_) => VersionField::NotText,
        };
        Some(Meta {
            version,
            capabilities: meta.contains_key(CLIENT_CAPABILITIES_KEY),
        })
    }
}

/// A `_meta` value as it came: an object read into a [`Meta`], anything else `None` (the check's
/// refusal is the same for a missing `_meta` and one that is not an object).
#[derive(Debug, Default)]
pub struct MetaSlot(pub Option<Meta>);

impl<'de> Deserialize<'de> for MetaSlot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MetaVisitor)
    }
}

struct MetaVisitor;

impl<'de> Visitor<'de> for MetaVisitor {
    type Value = MetaSlot;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    crate::visit_others!(MetaSlot(None); visit_bool, visit_i64, visit_u64, visit_f64, visit_str, visit_unit, visit_seq);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MetaSlot, A::Error> {
        let mut meta = Meta::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Version => meta.version = map.next_value::<VersionSlot>()?.0,
                Key::Capabilities => {
                    map.next_value::<IgnoredAny>()?;
                    meta.capabilities = true;
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(MetaSlot(Some(meta)))
    }
}

/// A key of `_meta`, told apart without copying it.
enum Key {
    Version,
    Capabilities,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    PROTOCOL_VERSION_KEY => Key::Version,
                    CLIENT_CAPABILITIES_KEY => Key::Capabilities,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct VersionSlot(VersionField);

impl<'de> Deserialize<'de> for VersionSlot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct VersionVisitor;
        impl<'de> Visitor<'de> for VersionVisitor {
            type Value = VersionSlot;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<VersionSlot, E> {
                Ok(VersionSlot(VersionField::of_text(text)))
            }
            crate::visit_others!(VersionSlot(VersionField::NotText); visit_bool, visit_i64, visit_u64, visit_f64, visit_unit, visit_seq, visit_map);
        }
        deserializer.deserialize_any(VersionVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn read_from_the_body_as_from_a_parsed_tree() {
        let cases = [
            json!({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28", CLIENT_CAPABILITIES_KEY: {"x": [1, {}]}, "other": {"a": 1}}}),
            json!({"_meta": {PROTOCOL_VERSION_KEY: "2099-01-01"}}),
            json!({"_meta": {PROTOCOL_VERSION_KEY: 7, CLIENT_CAPABILITIES_KEY: null}}),
            json!({"_meta": {PROTOCOL_VERSION_KEY: {"v": "2026-07-28"}}}),
            json!({"_meta": {}}),
            json!({"_meta": [1, 2]}),
            json!({"_meta": "x"}),
            json!({"_meta": null}),
            json!({}),
        ];
        for params in cases {
            let slot = serde_json::from_value::<MetaSlot>(params.get("_meta").cloned().unwrap_or_default()).unwrap();
            let from_text =
                serde_json::from_str::<MetaSlot>(&params.get("_meta").cloned().unwrap_or_default().to_string())
                    .unwrap();
            assert_eq!(slot.0, Meta::of(&params), "{params}");
            assert_eq!(from_text.0, Meta::of(&params), "{params}");
        }
        let known = Meta::of(&json!({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28", CLIENT_CAPABILITIES_KEY: {}}}));
        assert_eq!(
            known,
            Some(Meta {
                version: VersionField::Known(Version::V2026_07_28),
                capabilities: true
            })
        );
        let escaped =
            serde_json::from_str::<MetaSlot>(r#"{"io.modelcontextprotocol\/protocolVersion": "2026\u002d07-28"}"#)
                .unwrap();
        assert_eq!(escaped.0.unwrap().version, VersionField::Known(Version::V2026_07_28));
    }
}
