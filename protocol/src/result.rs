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
    pub server_info: String,
    pub ttl_ms: u64,
    pub scope: CacheScope,
}

impl Decoration {
    /// `result` (a JSON object) with the fields the era requires. Our own results are spliced as
    /// text (no tree built per request); one that already carries `_meta` or `resultType` (a
    /// forwarded answer) is merged as a tree, its own values kept.
    pub fn apply(&self, method: &str, result: &str) -> String {
        let cache = cacheable(method);
        let body = result.trim_start();
        if body.starts_with('{') && !result.contains("\"_meta\"") && !result.contains("\"resultType\"") {
            let rest = body[1..].trim_start();
            let mut out = String::with_capacity(result.len() + self.server_info.len() + 96);
            out.push_str("{\"resultType\":\"complete\",\"_meta\":{\"");
            out.push_str(SERVER_INFO_KEY);
            out.push_str("\":");
            out.push_str(&self.server_info);
            out.push('}');
            if cache && !result.contains("\"ttlMs\"") {
                out.push_str(",\"ttlMs\":");
                out.push_str(&self.ttl_ms.to_string());
                out.push_str(",\"cacheScope\":\"");
                out.push_str(self.scope.as_str());
                out.push('"');
            }
            if !rest.starts_with('}') {
                out.push(',');
            }
            out.push_str(rest);
            return out;
        }
        let Ok(mut value) = serde_json::from_str::<Value>(result) else {
            return result.to_owned();
        };
        self.apply_to(method, &mut value);
        value.to_string()
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
        Decoration {
            server_info: r#"{"name":"s","version":"1"}"#.into(),
            ttl_ms: 1000,
            scope: CacheScope::Private,
        }
    }

    #[test]
    fn results_get_their_type_identity_and_hints() {
        let d = decoration();
        let list: Value = serde_json::from_str(&d.apply("tools/list", r#"{"tools":[]}"#)).unwrap();
        assert_eq!(list["resultType"], "complete");
        assert_eq!(list["_meta"][SERVER_INFO_KEY]["name"], "s");
        assert_eq!(
            (list["ttlMs"].as_u64(), list["cacheScope"].as_str()),
            (Some(1000), Some("private"))
        );
        let call: Value = serde_json::from_str(&d.apply("tools/call", "{}")).unwrap();
        assert_eq!(call["resultType"], "complete");
        assert!(call.get("ttlMs").is_none());
        let forwarded = r#"{"resultType":"input_required","_meta":{"x":1},"inputRequests":{}}"#;
        let kept: Value = serde_json::from_str(&d.apply("tools/call", forwarded)).unwrap();
        assert_eq!(
            (kept["resultType"].as_str(), kept["_meta"]["x"].as_i64()),
            (Some("input_required"), Some(1))
        );
        assert_eq!(kept["_meta"][SERVER_INFO_KEY]["version"], "1");
    }
}
