//! The official MCP conformance suite's fixtures (`stampede upstream --conformance`): the tools,
//! resources, prompts and completions its server scenarios ask for by name, each answering as the
//! scenario's description says, so the suite can referee this server in full.

use serde_json::{Value, json};

/// A 1×1 red PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
/// A WAV header with no samples (8 kHz, mono, 8-bit).
const WAV: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=";

const TOOLS: [(&str, &str); 6] = [
    ("test_simple_text", "Answers a simple text."),
    ("test_image_content", "Answers an image."),
    ("test_audio_content", "Answers an audio clip."),
    ("test_embedded_resource", "Answers an embedded resource."),
    ("test_multiple_content_types", "Answers text, an image and a resource."),
    ("test_error_handling", "Always a tool error."),
];

/// The fixture tools, as `tools/list` lists them.
pub fn tools() -> impl Iterator<Item = Value> {
    TOOLS.iter().map(|(name, description)| {
        json!({"name": name, "description": description, "inputSchema": {"type": "object", "properties": {}}})
    })
}

/// A fixture tool's result, when `name` is one.
pub fn call(name: &str) -> Option<Value> {
    let content = match name {
        "test_simple_text" => json!([{"type": "text", "text": "This is a simple text response for testing."}]),
        "test_image_content" => json!([{"type": "image", "data": PNG, "mimeType": "image/png"}]),
        "test_audio_content" => json!([{"type": "audio", "data": WAV, "mimeType": "audio/wav"}]),
        "test_embedded_resource" => json!([{"type": "resource", "resource": {
            "uri": "test://embedded-resource", "mimeType": "text/plain",
            "text": "This is an embedded resource content."}}]),
        "test_multiple_content_types" => json!([
            {"type": "text", "text": "Multiple content types test:"},
            {"type": "image", "data": PNG, "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "test://mixed-content-resource",
                "mimeType": "application/json", "text": r#"{"test":"data","value":123}"#}},
        ]),
        "test_error_handling" => {
            return Some(json!({"content": [{"type": "text",
                "text": "This tool intentionally returns an error for testing"}], "isError": true}));
        }
        _ => return None,
    };
    Some(json!({"content": content, "isError": false}))
}

/// The fixture resources, as `resources/list` lists them.
pub fn resources() -> impl Iterator<Item = Value> {
    [
        json!({"uri": "test://static-text", "name": "static-text",
               "description": "A static text resource.", "mimeType": "text/plain"}),
        json!({"uri": "test://static-binary", "name": "static-binary",
               "description": "A static binary resource.", "mimeType": "image/png"}),
    ]
    .into_iter()
}

/// The fixture resource templates.
pub fn templates() -> Vec<Value> {
    vec![
        json!({"uriTemplate": "test://template/{id}/data", "name": "template-data",
                "description": "Data for an id.", "mimeType": "application/json"}),
    ]
}

/// A fixture resource's contents, when `uri` names one.
pub fn read(uri: &str) -> Option<Value> {
    let content = match uri {
        "test://static-text" => json!({"uri": uri, "mimeType": "text/plain",
            "text": "This is the content of the static text resource."}),
        "test://static-binary" => json!({"uri": uri, "mimeType": "image/png", "blob": PNG}),
        _ => {
            let id = uri.strip_prefix("test://template/")?.strip_suffix("/data")?;
            let data = json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
            json!({"uri": uri, "mimeType": "application/json", "text": data.to_string()})
        }
    };
    Some(json!({"contents": [content]}))
}

/// The fixture prompts, as `prompts/list` lists them.
pub fn prompts() -> impl Iterator<Item = Value> {
    let arg = |name: &str| json!({"name": name, "required": true});
    [
        json!({"name": "test_simple_prompt", "description": "A simple prompt."}),
        json!({"name": "test_prompt_with_arguments", "description": "A prompt with two arguments.",
               "arguments": [arg("arg1"), arg("arg2")]}),
        json!({"name": "test_prompt_with_embedded_resource", "description": "A prompt embedding a resource.",
               "arguments": [arg("resourceUri")]}),
        json!({"name": "test_prompt_with_image", "description": "A prompt with an image."}),
    ]
    .into_iter()
}

/// A fixture prompt's messages, when `name` is one.
pub fn prompt(name: &str, args: &Value) -> Option<Value> {
    let text = |t: &str| json!({"role": "user", "content": {"type": "text", "text": t}});
    let arg = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let messages = match name {
        "test_simple_prompt" => json!([text("This is a simple prompt for testing.")]),
        "test_prompt_with_arguments" => json!([text(&format!(
            "Prompt with arguments: arg1='{}', arg2='{}'",
            arg("arg1"),
            arg("arg2")
        ))]),
        "test_prompt_with_embedded_resource" => json!([
            {"role": "user", "content": {"type": "resource", "resource": {"uri": arg("resourceUri"),
                "mimeType": "text/plain", "text": "Embedded resource content for testing."}}},
            text("Please process the embedded resource above."),
        ]),
        "test_prompt_with_image" => json!([
            {"role": "user", "content": {"type": "image", "data": PNG, "mimeType": "image/png"}},
            text("Please analyze the image above."),
        ]),
        _ => return None,
    };
    Some(json!({"messages": messages}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_fixture_answers() {
        for t in tools() {
            assert!(call(t["name"].as_str().unwrap()).is_some(), "{t}");
        }
        for r in resources() {
            assert!(read(r["uri"].as_str().unwrap()).is_some(), "{r}");
        }
        assert_eq!(
            read("test://template/123/data").unwrap()["contents"][0]["text"],
            r#"{"data":"Data for ID: 123","id":"123","templateTest":true}"#
        );
        for p in prompts() {
            assert!(prompt(p["name"].as_str().unwrap(), &json!({})).is_some(), "{p}");
        }
        assert!(call("echo").is_none() && read("upstream://readme").is_none());
    }
}
