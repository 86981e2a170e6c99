//! The 2026-07-28 routing headers every POST carries, so a proxy can route without reading the
//! body, and the codec for their values (a value that is not plain printable ASCII travels as
//! `=?base64?…?=`).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const METHOD: &str = "mcp-method";
pub const NAME: &str = "mcp-name";
pub const SESSION_ID: &str = "mcp-session-id";
/// `Mcp-Param-<Name>`: a tool argument mirrored in a header, when its schema property is marked
/// `x-mcp-header: <Name>` (SEP-2243).
pub const PARAM_PREFIX: &str = "mcp-param-";
pub const PARAM_MARK: &str = "x-mcp-header";

/// The parameter a method's `Mcp-Name` header mirrors, for the methods that name something.
pub fn name_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        // The tasks extension's methods name their task (SEP-2663).
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    }
}

fn plain(value: &str) -> bool {
    value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && value.trim() == value
        && !(value.starts_with("=?base64?") && value.ends_with("?="))
}

/// A header value carrying `value` exactly.
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    encode_into(value, &mut out);
    out
}

/// `encode`, appended to `out` (a plain value costs no allocation).
pub fn encode_into(value: &str, out: &mut String) {
    if plain(value) {
        out.push_str(value);
    } else {
        out.push_str("=?base64?");
        STANDARD.encode_string(value, out);
        out.push_str("?=");
    }
}

/// The value a header carries; `None` for a malformed base64 sentinel, so a corrupt header never
/// matches a body by accident.
pub fn decode(header: &str) -> Option<Cow<'_, str>> {
    let Some(payload) = header.strip_prefix("=?base64?").and_then(|p| p.strip_suffix("?=")) else {
        return Some(Cow::Borrowed(header));
    };
    let bytes = STANDARD.decode(payload).ok()?;
    // Only the canonical form the encoder writes is accepted.
    if STANDARD.encode(&bytes) != payload {
        return None;
    }
    String::from_utf8(bytes).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_pass_and_others_round_trip_through_base64() {
        assert_eq!(encode("echo"), "echo");
        for value in ["héllo", " padded ", "=?base64?x?=", "line\nbreak"] {
            let header = encode(value);
            assert!(header.starts_with("=?base64?"), "{value:?} → {header}");
            assert_eq!(decode(&header).as_deref(), Some(value));
        }
        assert_eq!(decode("=?base64?!!?="), None);
    }
}
