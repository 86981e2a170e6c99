//! The 2026-07-28 request envelope: what every stateless request carries in `params._meta`, checked
//! with its routing headers in the order the specification and the official SDKs check them (the
//! first failure is the answer).

mod meta;

use axum::http::{HeaderMap, HeaderName};
pub use meta::{Meta, MetaSlot, VersionField};
use serde_json::{Value, json};

use crate::error::{HEADER_MISMATCH, INVALID_PARAMS, Rejection, UNSUPPORTED_PROTOCOL_VERSION};
use crate::{Era, Version, header};

pub const PROTOCOL_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
pub const CLIENT_CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
pub const CLIENT_INFO_KEY: &str = "io.modelcontextprotocol/clientInfo";
pub const SERVER_INFO_KEY: &str = "io.modelcontextprotocol/serverInfo";
pub const SUBSCRIPTION_ID_KEY: &str = "io.modelcontextprotocol/subscriptionId";

/// Check one stateless request: its envelope (`meta`, read from `params._meta`), its routing headers
/// against its body, its version (answered).
pub fn check(method: &str, meta: Option<&Meta>, params: &Value, headers: &HeaderMap) -> Result<Version, Rejection> {
    // Named once: a name given as text is parsed again at every lookup.
    const PROTOCOL_VERSION: HeaderName = HeaderName::from_static(header::PROTOCOL_VERSION);
    const METHOD: HeaderName = HeaderName::from_static(header::METHOD);
    const NAME: HeaderName = HeaderName::from_static(header::NAME);
    for name in [&PROTOCOL_VERSION, &METHOD, &NAME] {
        if headers.get_all(name).iter().count() > 1 {
            return Err(Rejection::new(
                HEADER_MISMATCH,
                format!("{name} header appears more than once"),
            ));
        }
    }
    let Some(meta) = meta else {
        return Err(Rejection::new(
            INVALID_PARAMS,
            format!("params._meta must be an object carrying {PROTOCOL_VERSION_KEY:?} and {CLIENT_CAPABILITIES_KEY:?}"),
        ));
    };
    let missing: Vec<&str> = [
        (PROTOCOL_VERSION_KEY, meta.version != VersionField::Missing),
        (CLIENT_CAPABILITIES_KEY, meta.capabilities),
    ]
    .into_iter()
    .filter_map(|(key, present)| (!present).then_some(key))
    .collect();
    if !missing.is_empty() {
        return Err(Rejection::new(
            INVALID_PARAMS,
            format!(
                "params._meta is missing the required envelope key(s): {}",
                missing.join(", ")
            ),
        ));
    }
    let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if text(&PROTOCOL_VERSION).is_none_or(|h| meta.version.text() != Some(h)) {
        return Err(Rejection::new(
            HEADER_MISMATCH,
            "MCP-Protocol-Version header does not match the request envelope's protocol version",
        ));
    }
    if text(&METHOD) != Some(method) {
        return Err(Rejection::new(
            HEADER_MISMATCH,
            "Mcp-Method header does not match the request body's method",
        ));
    }
    if let Some(key) = header::name_param(method)
        && let Some(body_value) = params.get(key).and_then(Value::as_str)
        && text(&NAME).and_then(header::decode).as_deref() != Some(body_value)
    {
        return Err(Rejection::new(
            HEADER_MISMATCH,
            format!("Mcp-Name header does not match the request body's {key:?} parameter"),
        ));
    }
    match meta.version {
        VersionField::Known(v) if v.era() == Era::Stateless => Ok(v),
        _ => supported(meta.version.text().unwrap_or_default()),
    }
}

/// Check a `tools/call`'s arguments against the `Mcp-Param-*` headers its tool's input schema asks
/// for (SEP-2243): each property marked `x-mcp-header: N` that the call gives must come with the
/// header `Mcp-Param-N` carrying the same value (plain, or in the base64 sentinel).
pub fn check_params(schema: &Value, arguments: &Value, headers: &HeaderMap) -> Result<(), Rejection> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    for (param, property) in properties {
        let (Some(name), Some(given)) = (
            property.get(header::PARAM_MARK).and_then(Value::as_str),
            arguments.get(param),
        ) else {
            continue;
        };
        let given = given.as_str().map_or_else(|| given.to_string(), str::to_owned);
        let header = format!("{}{}", header::PARAM_PREFIX, name.to_ascii_lowercase());
        let sent = headers.get(&header).and_then(|v| v.to_str().ok());
        if sent.and_then(header::decode).as_deref() != Some(given.as_str()) {
            return Err(Rejection::new(
                HEADER_MISMATCH,
                format!("Mcp-Param-{name} header does not match the argument {param:?}"),
            ));
        }
    }
    Ok(())
}

/// A stateless-era version spoken here, or the refusal naming every version that is.
pub fn supported(requested: &str) -> Result<Version, Rejection> {
    match Version::parse(requested) {
        Some(v) if v.era() == Era::Stateless => Ok(v),
        _ => {
            let all: Vec<&str> = Version::ALL.iter().map(|v| v.as_str()).collect();
            Err(
                Rejection::new(UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version")
                    .with_data(json!({"supported": all, "requested": requested})),
            )
        }
    }
}

/// The `_meta` a client puts in every stateless request.
pub fn meta(version: Version, client_capabilities: &Value, client_info: &Value) -> Value {
    json!({
        PROTOCOL_VERSION_KEY: version.as_str(),
        CLIENT_CAPABILITIES_KEY: client_capabilities,
        CLIENT_INFO_KEY: client_info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_header_bound_argument_must_come_with_its_header_as_sep_2243_says() {
        let schema = serde_json::json!({"properties": {"region": {"type": "string", "x-mcp-header": "Region"}}});
        let args = serde_json::json!({"region": "Hello"});
        let check = |pairs: &[(&'static str, &str)]| check_params(&schema, &args, &headers(pairs));
        assert!(check(&[("mcp-param-region", "Hello")]).is_ok());
        assert!(check(&[("mcp-param-region", "=?base64?SGVsbG8=?=")]).is_ok());
        for bad in ["=?base64?SGVsbG8?=", "=?base64?SGVs!!!bG8=?=", "Goodbye"] {
            assert!(check(&[("mcp-param-region", bad)]).is_err(), "{bad}");
        }
        let missing = check(&[]).unwrap_err();
        assert_eq!(missing.code, HEADER_MISMATCH);
        // An argument not given needs no header.
        assert!(check_params(&schema, &serde_json::json!({}), &headers(&[])).is_ok());
    }

    fn run(method: &str, params: &Value, headers: &HeaderMap) -> Result<Version, Rejection> {
        check(method, Meta::of(params).as_ref(), params, headers)
    }

    fn params(version: &str) -> Value {
        json!({"name": "échо", "_meta": {PROTOCOL_VERSION_KEY: version, CLIENT_CAPABILITIES_KEY: {}}})
    }

    #[test]
    fn a_well_formed_request_passes() {
        let h = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", &header::encode("échо")),
        ]);
        assert_eq!(run("tools/call", &params("2026-07-28"), &h), Ok(Version::V2026_07_28));
    }

    #[test]
    fn each_failure_gets_its_code() {
        let good = [("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/list")];
        let code = |method: &str, p: &Value, h: &[(&'static str, &str)]| run(method, p, &headers(h)).unwrap_err().code;
        assert_eq!(code("tools/list", &json!({}), &good), INVALID_PARAMS);
        assert_eq!(
            code(
                "tools/list",
                &json!({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28"}}),
                &good
            ),
            INVALID_PARAMS
        );
        assert_eq!(code("tools/list", &params("2025-06-18"), &good), HEADER_MISMATCH);
        assert_eq!(code("prompts/list", &params("2026-07-28"), &good), HEADER_MISMATCH);
        let calls = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "other"),
        ];
        assert_eq!(code("tools/call", &params("2026-07-28"), &calls), HEADER_MISMATCH);
        let twice = [good[0], good[0], good[1]];
        assert_eq!(code("tools/list", &params("2026-07-28"), &twice), HEADER_MISMATCH);
        let newer = [("mcp-protocol-version", "2099-01-01"), ("mcp-method", "tools/list")];
        let refused = run("tools/list", &params("2099-01-01"), &headers(&newer)).unwrap_err();
        assert_eq!(refused.code, UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(refused.status, axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(refused.data.unwrap()["supported"][4], "2026-07-28");
    }
}
