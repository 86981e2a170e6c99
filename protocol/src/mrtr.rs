//! Multi round-trip requests (2026-07-28): a server that needs the client's input answers
//! `resultType: "input_required"` with `inputRequests` (a map of server-to-client requests) and an
//! opaque `requestState`; the client retries the original request, under a new id, with
//! `inputResponses` (the same keys) and the `requestState` echoed.

use serde_json::{Value, json};

/// The `resultType` of a result that asks for input.
pub const INPUT_REQUIRED: &str = "input_required";

/// A client gives up on a request still asking for input after this many retries.
pub const MAX_ROUNDS: u32 = 10;

/// The capabilities a client that answers every kind of input request declares.
pub fn answering_capabilities() -> Value {
    json!({"elicitation": {"form": {}}, "roots": {}, "sampling": {}})
}

/// What a client that accepts everything answers to input request `request` (`{method, params}`):
/// an elicitation accepted with each field of its schema filled (its default, else a value of its
/// type), no roots, a sampled text.
pub fn default_response(request: &Value) -> Value {
    match request.get("method").and_then(Value::as_str) {
        Some("elicitation/create") => {
            let schema = &request["params"]["requestedSchema"];
            let content: serde_json::Map<String, Value> = schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(name, field)| (name.clone(), filled(field)))
                .collect();
            json!({"action": "accept", "content": content})
        }
        Some("roots/list") => json!({"roots": []}),
        Some("sampling/createMessage") => json!({
            "role": "assistant",
            "content": {"type": "text", "text": "ok"},
            "model": "stampede",
            "stopReason": "endTurn",
        }),
        _ => json!({}),
    }
}

/// A value for one elicitation field: its default, its first choice, else one of its type.
fn filled(field: &Value) -> Value {
    if let Some(d) = field.get("default") {
        return d.clone();
    }
    if let Some(first) = field.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
        return first.clone();
    }
    match field.get("type").and_then(Value::as_str) {
        Some("boolean") => Value::Bool(true),
        Some("integer" | "number") => field.get("minimum").cloned().unwrap_or(json!(0)),
        Some("array") => json!([]),
        _ => Value::String(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_response_accepts_with_every_field_filled() {
        let ask = json!({"method": "elicitation/create", "params": {"mode": "form", "message": "Go?",
            "requestedSchema": {"type": "object", "properties": {
                "ok": {"type": "boolean"}, "n": {"type": "integer", "minimum": 3},
                "color": {"type": "string", "enum": ["red", "blue"]}, "note": {"type": "string", "default": "hi"}}}}});
        assert_eq!(
            default_response(&ask),
            json!({"action": "accept", "content": {"ok": true, "n": 3, "color": "red", "note": "hi"}})
        );
        assert_eq!(default_response(&json!({"method": "roots/list"})), json!({"roots": []}));
        assert_eq!(
            default_response(&json!({"method": "sampling/createMessage"}))["role"],
            "assistant"
        );
    }
}
