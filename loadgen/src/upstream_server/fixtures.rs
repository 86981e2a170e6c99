//! The official MCP conformance suite's fixtures (`stampede upstream --conformance`): the tools,
//! resources, prompts and completions its server scenarios ask for by name, each answering as the
//! scenario's description says, so the suite can referee this server in full.

use std::time::Duration;

use serde_json::{Value, json};

use protocol::Era;

use super::peer::{Outbox, Peers};

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

/// The fixture tools that message the client while they run (requests to it: session era only).
const CONVERSING: [(&str, &str); 7] = [
    ("test_tool_with_logging", "Logs three messages at info while it runs."),
    (
        "test_logging_tool",
        "Logs a message at info, when a log level was asked for.",
    ),
    (
        "test_tool_with_progress",
        "Reports progress 0, 50 and 100 of 100 while it runs.",
    ),
    ("test_sampling", "Asks the client to sample an answer to `prompt`."),
    (
        "test_elicitation",
        "Asks the user, through the client, for a username and an email.",
    ),
    (
        "test_elicitation_sep1034_defaults",
        "Asks for input whose fields all have defaults (SEP-1034).",
    ),
    (
        "test_elicitation_sep1330_enums",
        "Asks for input of every enum form (SEP-1330).",
    ),
];

/// The fixture tools, as `tools/list` lists them.
pub fn tools() -> impl Iterator<Item = Value> {
    let tools = TOOLS.iter().chain(&CONVERSING).map(|(name, description)| {
        let props = match *name {
            "test_sampling" => json!({"prompt": {"type": "string"}}),
            "test_elicitation" => json!({"message": {"type": "string"}}),
            _ => json!({}),
        };
        json!({"name": name, "description": description, "inputSchema": {"type": "object", "properties": props}})
    });
    tools.chain([json_schema_2020_12(), header_param()])
}

const HEADER_PARAM: &str = "test_header_param";

/// A tool whose `region` argument travels in a header too (`Mcp-Param-Region`, SEP-2243), checked
/// against the body in the 2026-07-28 era.
fn header_param() -> Value {
    json!({"name": HEADER_PARAM, "description": "Answers its region, which is mirrored in Mcp-Param-Region.",
        "inputSchema": {"type": "object",
            "properties": {"region": {"type": "string", protocol::header::PARAM_MARK: "Region"}},
            "required": ["region"]}})
}

/// The input schema of a fixture tool some of whose arguments travel in headers too.
pub fn header_schema(name: &str) -> Option<Value> {
    (name == HEADER_PARAM).then(|| header_param()["inputSchema"].take())
}

const JSON_SCHEMA_2020_12: &str = "json_schema_2020_12_tool";

/// A tool whose input schema uses JSON Schema 2020-12's vocabulary (`$schema`, `$defs` with an
/// `$anchor`, composition and conditionals), which a listing must carry unchanged (SEP-1613, SEP-2106).
fn json_schema_2020_12() -> Value {
    json!({"name": JSON_SCHEMA_2020_12, "description": "Tool with JSON Schema 2020-12 features",
    "inputSchema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"address": {"$anchor": "addressDef", "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"},
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false,
    }})
}

/// Whether the tool `name` messages the client while it runs.
pub fn converses(name: &str) -> bool {
    CONVERSING.iter().any(|(n, _)| *n == name)
}

/// Whether the tool `name` only tells the client things (notifications), never asks.
pub fn only_tells(name: &str) -> bool {
    ["test_tool_with_logging", "test_logging_tool", "test_tool_with_progress"].contains(&name)
}

/// Whether a log message at info goes out: in the stateless era when the request asked for a level
/// (`_meta` `logLevel`) that lets it through, and never otherwise; in the session era by the level the
/// session set (`logging/setLevel`).
fn logs_info(peers: &Peers, params: &Value, era: Era) -> bool {
    match (era, params["_meta"].get(LOG_LEVEL_KEY).and_then(Value::as_str)) {
        (Era::Stateless, None) => false,
        (Era::Stateless, Some(level)) => Peers::lets_through(level, "info"),
        (Era::Session, _) => peers.logs("info"),
    }
}

const LOG_LEVEL_KEY: &str = "io.modelcontextprotocol/logLevel";

/// Run a tool that messages the client: its notifications and requests go to `out` (none without
/// one: a client that takes a JSON answer only gets the result, and cannot be asked anything).
pub async fn converse(
    peers: &Peers,
    name: &str,
    params: &Value,
    out: Option<&Outbox>,
    era: Era,
) -> Result<Value, String> {
    let tell = async |msg: Value| {
        if let Some(out) = out {
            out.send(&msg).await;
        }
    };
    let pause = || tokio::time::sleep(Duration::from_millis(50));
    let ask = async |method: &str, params: Value| match out {
        Some(out) => peers.ask(out, method, params).await,
        None => Err(format!(
            "{name} asks the client ({method}): call it accepting text/event-stream"
        )),
    };
    let text = |t: String| json!({"content": [{"type": "text", "text": t}], "isError": false});
    match name {
        "test_tool_with_logging" => {
            for (i, data) in [
                "Tool execution started",
                "Tool processing data",
                "Tool execution completed",
            ]
            .into_iter()
            .enumerate()
            {
                if i > 0 {
                    pause().await;
                }
                if logs_info(peers, params, era) {
                    tell(json!({"jsonrpc": "2.0", "method": "notifications/message",
                        "params": {"level": "info", "logger": "conformance", "data": data}}))
                    .await;
                }
            }
            Ok(text("Logged three messages.".into()))
        }
        "test_logging_tool" => {
            if logs_info(peers, params, era) {
                tell(json!({"jsonrpc": "2.0", "method": "notifications/message",
                    "params": {"level": "info", "logger": "conformance", "data": "test_logging_tool ran"}}))
                .await;
            }
            Ok(text("Ran.".into()))
        }
        "test_tool_with_progress" => {
            let token = params["_meta"].get("progressToken").cloned();
            for (i, progress) in [0, 50, 100].into_iter().enumerate() {
                if i > 0 {
                    pause().await;
                }
                if let Some(token) = &token {
                    tell(json!({"jsonrpc": "2.0", "method": "notifications/progress",
                        "params": {"progressToken": token, "progress": progress, "total": 100}}))
                    .await;
                }
            }
            Ok(text("Progress reported.".into()))
        }
        "test_sampling" => {
            let prompt = params["arguments"]["prompt"].as_str().unwrap_or_default();
            let sampled = ask(
                "sampling/createMessage",
                json!({"messages": [{"role": "user", "content": {"type": "text", "text": prompt}}], "maxTokens": 100}),
            )
            .await?;
            Ok(text(format!(
                "LLM response: {}",
                sampled["content"]["text"].as_str().unwrap_or_default()
            )))
        }
        _ => {
            let (message, schema) = elicitation(name, params);
            let answer = ask(
                "elicitation/create",
                json!({"message": message, "requestedSchema": schema}),
            )
            .await?;
            let label = if name == "test_elicitation" {
                "User response"
            } else {
                "Elicitation completed"
            };
            Ok(text(format!(
                "{label}: action={}, content={}",
                answer["action"], answer["content"]
            )))
        }
    }
}

/// What an elicitation fixture asks, and the form of the answer.
fn elicitation(name: &str, params: &Value) -> (String, Value) {
    let object = |props: Value| json!({"type": "object", "properties": props});
    let titled = |prefix: &str, title: &str| -> Value {
        ["First", "Second", "Third"]
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"const": format!("{prefix}{}", i + 1), "title": format!("{t} {title}")}))
            .collect()
    };
    match name {
        "test_elicitation_sep1034_defaults" => (
            "Please review the defaults".into(),
            object(json!({
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {"type": "string", "description": "User status",
                    "enum": ["active", "inactive", "pending"], "default": "active"},
                "verified": {"type": "boolean", "description": "Verification status", "default": true},
            })),
        ),
        "test_elicitation_sep1330_enums" => (
            "Please choose".into(),
            object(json!({
                "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                "titledSingle": {"type": "string", "oneOf": titled("value", "Option")},
                "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"]},
                "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                "titledMulti": {"type": "array", "items": {"anyOf": titled("value", "Choice")}},
            })),
        ),
        _ => {
            let mut schema = object(json!({
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"},
            }));
            schema["required"] = json!(["username", "email"]);
            let message = params["arguments"]["message"]
                .as_str()
                .unwrap_or("Please provide your information");
            (message.to_owned(), schema)
        }
    }
}

/// A fixture tool's result, when `name` is one.
pub fn call(name: &str) -> Option<Value> {
    let content = match name {
        JSON_SCHEMA_2020_12 => json!([{"type": "text", "text": "Called with a 2020-12 schema."}]),
        HEADER_PARAM => json!([{"type": "text", "text": "The region came in its header too."}]),
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
            let name = t["name"].as_str().unwrap();
            assert!(call(name).is_some() || converses(name), "{t}");
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
