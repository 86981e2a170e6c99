//! What a stateless-era server adds to every result: `resultType`, its identity in `_meta`, and on
//! lists and reads the caching hints (`ttlMs`, `cacheScope`).

use serde_json::Value;

use crate::envelope::SERVER_INFO_KEY;

/// Who may reuse a cached answer: anyone (`public`) or the same authorization context (`private`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheScope {
    Public,
    Private,
}

impl CacheScope {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheScope::Public => "public",
            CacheScope::Private => "private",
        }
    }
}

/// The methods whose results carry caching hints.
pub fn cacheable(method: &str) -> bool {
    matches!(
        method,
        "server/discover"
            | "tools/list"
            | "resources/list"
            | "resources/templates/list"
            | "prompts/list"
            | "resources/read"
    )
}

/// How a server decorates its stateless-era results.
#[derive(Debug, Clone)]
pub struct Decoration {
    /// `{"name": …, "version": …}`, serialized once.
    server_info: String,
    ttl_ms: u64,
    scope: CacheScope,
    /// What opens every one of our own results: its type and the server's identity.
    head: String,
    /// The caching hints a cacheable result carries after the head.
    hints: String,
}

impl Decoration {
    pub fn new(server_info: &Value, ttl_ms: u64, scope: CacheScope) -> Decoration {
        let server_info = server_info.to_string();
        Decoration {
            head: format!("{{\"resultType\":\"complete\",\"_meta\":{{\"{SERVER_INFO_KEY}\":{server_info}}}"),
            hints: format!(",\"ttlMs\":{ttl_ms},\"cacheScope\":\"{}\"", scope.as_str()),
            server_info,
            ttl_ms,
            scope,
        }
    }

    /// Append to `out` one of our own results (a JSON object built here, which carries none of the
    /// era's fields) with the fields the era requires: spliced as text, no tree built per request.
    pub fn write_own(&self, method: &str, result: &str, out: &mut Vec<u8>) {
        let Some(rest) = result.trim_start().strip_prefix('{') else {
            out.extend_from_slice(result.as_bytes());
            return;
        };
        let rest = rest.trim_start();
        out.extend_from_slice(self.head.as_bytes());
        if cacheable(method) {
            out.extend_from_slice(self.hints.as_bytes());
        }
        if !rest.starts_with('}') {
            out.push(b',');
        }
        out.extend_from_slice(rest.as_bytes());
    }

    /// The same on a result held as a tree; a value already there is kept.
    pub fn apply_to(&self, method: &str, result: &mut Value) {
        let Value::Object(map) = result else {
            return;
        };
        map.entry("resultType").or_insert_with(|| "complete".into());
        let meta = map
            .entry("_meta")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(meta) = meta {
            meta.entry(SERVER_INFO_KEY)
                .or_insert_with(|| serde_json::from_str(&self.server_info).unwrap_or(Value::Null));
        }
        // A result still asking for input is no answer to cache.
        let complete = map.get("resultType").and_then(Value::as_str) == Some("complete");
        if complete && cacheable(method) {
            map.entry("ttlMs").or_insert_with(|| self.ttl_ms.into());
            map.entry("cacheScope").or_insert_with(|| self.scope.as_str().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoration() -> Decoration {
        Decoration::new(
            &serde_json::json!({"name": "s", "version": "1"}),
            1000,
            CacheScope::Private,
        )
    }

    #[test]
    fn results_get_their_type_identity_and_hints() {
        let d = decoration();
        let own = |method: &str, result: &str| -> Value {
            let mut out = Vec::new();
            d.write_own(method, result, &mut out);
            serde_json::from_slice(&out).unwrap()
        };
        let list = own("tools/list", r#"{"tools":[]}"#);
        assert_eq!(
            (list["resultType"].as_str(), list["tools"].as_array().map(Vec::len)),
            (Some("complete"), Some(0))
        );
        assert_eq!(list["_meta"][SERVER_INFO_KEY]["name"], "s");
        assert_eq!(
            (list["ttlMs"].as_u64(), list["cacheScope"].as_str()),
            (Some(1000), Some("private"))
        );
        let call = own("tools/call", "{}");
        assert_eq!(call["resultType"], "complete");
        assert!(call.get("ttlMs").is_none());
        let forwarded = r#"{"resultType":"input_required","_meta":{"x":1},"inputRequests":{}}"#;
        let mut kept: Value = serde_json::from_str(forwarded).unwrap();
        d.apply_to("tools/call", &mut kept);
        assert_eq!(
            (kept["resultType"].as_str(), kept["_meta"]["x"].as_i64()),
            (Some("input_required"), Some(1))
        );
        assert_eq!(kept["_meta"][SERVER_INFO_KEY]["version"], "1");
    }
}
