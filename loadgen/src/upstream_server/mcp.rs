//! The MCP methods, transport aside: one JSON-RPC message in, its answer (or none, for a
//! notification) out, after the knobs have had their say.

use std::sync::LazyLock;

use protocol::result::{CacheScope, Decoration};
use protocol::{Era, Version};
use serde_json::{Value, json};

use super::peer::{self, Outbox};
use super::{Fate, Upstream, fixtures, input_fixtures, stall, task_fixtures};

/// What a stateless-era result carries: lists change only when the server restarts, and no answer
/// depends on who asks.
static STATELESS: LazyLock<Decoration> = LazyLock::new(|| Decoration::new(&server_info(), 60_000, CacheScope::Public));

fn server_info() -> Value {
    json!({"name": "stampede-upstream", "version": crate::VERSION})
}

/// What this server offers; with the conformance fixtures in the session era, also logging and
/// resource subscriptions.
fn capabilities(fixtures: bool) -> Value {
    let mut offered = json!({"tools": {"listChanged": false}, "resources": {}, "prompts": {}, "completions": {}});
    if fixtures {
        offered["logging"] = json!({});
        offered["resources"] = json!({"subscribe": true});
    }
    offered
}

/// The built-in tools; generated ones (`gen_0001`…) behave as `echo`.
const TOOLS: [(&str, &str); 6] = [
    ("echo", "Answers its `text` argument."),
    ("time", "Answers the server's time (RFC 3339)."),
    ("sleep", "Sleeps `ms` milliseconds (at most 10 000) before answering."),
    ("payload", "Answers `bytes` bytes of text (at most 1 MiB)."),
    ("fail", "Always a tool error (`isError: true`)."),
    (
        "confirm",
        "Asks the client to confirm (2026-07-28: an input request, answered on the retry).",
    ),
];

const MAX_SLEEP_MS: u64 = 10_000;
const MAX_PAYLOAD: usize = 1 << 20;

fn error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A JSON-RPC message's method, when it is a request or a notification.
pub fn method(msg: &Value) -> Option<&str> {
    msg.get("method").and_then(Value::as_str)
}

/// A request has an id; a notification (and a response) does not need an answer.
pub fn is_request(msg: &Value) -> bool {
    method(msg).is_some() && msg.get("id").is_some_and(|id| !id.is_null())
}

/// Answer one message in its era: `None` for a notification or a response from the client (which goes
/// to the request waiting for it). What the request tells or asks the client before its answer goes
/// to `out`. A stalled request never returns.
pub async fn answer(
    up: &Upstream,
    transport: &'static str,
    msg: &Value,
    era: Era,
    out: Option<&Outbox>,
) -> Option<Value> {
    let method = method(msg);
    up.counters.request(transport, method.unwrap_or("(none)"));
    if peer::is_response(msg) {
        up.peers.answered(msg);
        return None;
    }
    if !is_request(msg) {
        return match method {
            // A notification, or a client's answer to a server request: nothing to say.
            Some(_) | None if msg.get("jsonrpc").is_some() => None,
            _ => Some(error(&Value::Null, -32600, "Invalid Request")),
        };
    }
    let id = &msg["id"];
    let method = method.expect("a request has a method");
    match up.fate(method == "initialize").await {
        Fate::Stall => stall().await,
        Fate::Error => return Some(error(id, -32603, "injected upstream error")),
        Fate::Answer => {}
    }
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    if up.knobs.conformance
        && let Some(answered) = tasks(up, method, &params).await
    {
        return Some(match answered {
            Ok(mut r) => {
                if era == Era::Stateless {
                    STATELESS.apply_to(method, &mut r);
                }
                result(id, r)
            }
            Err(refusal) => json!({"jsonrpc": "2.0", "id": id, "error": refusal}),
        });
    }
    let answered = match (era, method) {
        // Each era's handshake is the other's unknown method.
        (
            Era::Stateless,
            "initialize" | "ping" | "logging/setLevel" | "resources/subscribe" | "resources/unsubscribe",
        )
        | (Era::Session, "server/discover") => Err((-32601, format!("Method not found: {method}"))),
        (Era::Stateless, "server/discover") => {
            let mut offered = capabilities(false);
            if up.knobs.conformance {
                offered["extensions"] = json!({task_fixtures::EXTENSION: {}});
            }
            Ok(json!({"supportedVersions": Version::ALL.map(Version::as_str), "capabilities": offered}))
        }
        (Era::Stateless, "tools/call") if params.get("name").and_then(Value::as_str) == Some("confirm") => {
            confirm(&params)
        }
        (Era::Stateless, "tools/call") if up.knobs.conformance && params["name"] == input_fixtures::NEEDS_SAMPLING => {
            if let Some(refusal) = input_fixtures::undeclared(&params) {
                return Some(json!({"jsonrpc": "2.0", "id": id, "error": refusal}));
            }
            input_fixtures::answer(method, &params)
        }
        (era, "tools/call" | "prompts/get")
            if up.knobs.conformance && input_fixtures::serves(method, params["name"].as_str().unwrap_or_default()) =>
        {
            match era {
                Era::Stateless => input_fixtures::answer(method, &params),
                Era::Session => Ok(input_fixtures::session_era(params["name"].as_str().unwrap_or_default())),
            }
        }
        _ => dispatch(up, method, &params, out, era).await,
    };
    Some(match answered {
        Ok(mut r) => {
            if era == Era::Stateless {
                STATELESS.apply_to(method, &mut r);
            }
            result(id, r)
        }
        Err((code, message)) => error(id, code, &message),
    })
}

/// The tasks extension's fixtures and methods (`task_fixtures.rs`), when the request is for them.
async fn tasks(up: &Upstream, method: &str, params: &Value) -> Option<Result<Value, task_fixtures::Refusal>> {
    match method {
        "tools/call" if task_fixtures::serves(params["name"].as_str().unwrap_or_default()) => {
            Some(up.tasks.call(params).await)
        }
        _ => up.tasks.answer(method, params),
    }
}

async fn dispatch(
    up: &Upstream,
    method: &str,
    params: &Value,
    out: Option<&Outbox>,
    era: Era,
) -> Result<Value, (i64, String)> {
    let fixtures = up.knobs.conformance;
    let tool = params.get("name").and_then(Value::as_str).unwrap_or_default();
    if fixtures && method == "tools/call" && fixtures::converses(tool) {
        let answered = fixtures::converse(&up.peers, tool, params, out, era).await;
        return Ok(answered.unwrap_or_else(|e| json!({"content": [{"type": "text", "text": e}], "isError": true})));
    }
    if fixtures && let Some(answer) = fixture(up.knobs.tools, method, params) {
        return Ok(answer);
    }
    match method {
        "initialize" => {
            let version = Version::negotiate(params.get("protocolVersion").and_then(Value::as_str));
            Ok(json!({
                "protocolVersion": version.as_str(),
                "capabilities": capabilities(fixtures),
                "serverInfo": server_info(),
            }))
        }
        "logging/setLevel" if fixtures => {
            let level = params.get("level").and_then(Value::as_str).unwrap_or_default();
            up.peers.set_level(level).map(|()| json!({})).map_err(|e| (-32602, e))
        }
        // This server's resources never change: a subscription is accepted and never told anything.
        "resources/subscribe" | "resources/unsubscribe" if fixtures => Ok(json!({})),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({"tools": tool_list(up.knobs.tools)})),
        "tools/call" => call(params).await,
        "resources/list" => Ok(json!({"resources": [readme()]})),
        "resources/templates/list" => Ok(json!({"resourceTemplates": []})),
        // No argument here has values to offer.
        "completion/complete" => Ok(json!({"completion": {"values": [], "total": 0, "hasMore": false}})),
        "resources/read" => match params.get("uri").and_then(Value::as_str) {
            Some(uri @ "upstream://readme") => Ok(json!({"contents": [
                {"uri": uri, "mimeType": "text/plain", "text": "stampede's upstream MCP server"}
            ]})),
            Some(uri) => Err((-32002, format!("Resource not found: {uri}"))),
            None => Err((-32602, "params.uri is required".into())),
        },
        "prompts/list" => Ok(json!({"prompts": [greet()]})),
        "prompts/get" => match params.get("name").and_then(Value::as_str) {
            Some("greet") => {
                let name = params["arguments"]["name"].as_str().unwrap_or("you");
                Ok(json!({
                    "description": "A greeting",
                    "messages": [{"role": "user", "content": {"type": "text", "text": format!("Hello, {name}!")}}],
                }))
            }
            Some(other) => Err((-32602, format!("Unknown prompt: {other}"))),
            None => Err((-32602, "params.name is required".into())),
        },
        other => Err((-32601, format!("Method not found: {other}"))),
    }
}

/// With `--conformance`: the conformance suite's fixture, when the request asks for one (its lists
/// add the fixtures to this server's own).
fn fixture(generated: u32, method: &str, params: &Value) -> Option<Value> {
    let named = |key: &str| params.get(key).and_then(Value::as_str).unwrap_or_default();
    match method {
        "tools/list" => {
            let mut tools = tool_list(generated);
            tools.extend(
                fixtures::tools()
                    .chain(input_fixtures::tools())
                    .chain(task_fixtures::tools()),
            );
            Some(json!({"tools": tools}))
        }
        "tools/call" => fixtures::call(named("name")),
        "resources/list" => {
            Some(json!({"resources": std::iter::once(readme()).chain(fixtures::resources()).collect::<Vec<_>>()}))
        }
        "resources/templates/list" => Some(json!({"resourceTemplates": fixtures::templates()})),
        "resources/read" => fixtures::read(named("uri")),
        "prompts/list" => {
            let prompts = std::iter::once(greet())
                .chain(fixtures::prompts())
                .chain([input_fixtures::prompt()]);
            Some(json!({"prompts": prompts.collect::<Vec<_>>()}))
        }
        "prompts/get" => fixtures::prompt(named("name"), &params["arguments"]),
        _ => None,
    }
}

fn readme() -> Value {
    json!({"uri": "upstream://readme", "name": "readme", "description": "What this server is.", "mimeType": "text/plain"})
}

fn greet() -> Value {
    json!({
        "name": "greet",
        "description": "A greeting for `name`.",
        "arguments": [{"name": "name", "required": true}],
    })
}

fn tool_list(generated: u32) -> Vec<Value> {
    let schema = |props: Value| json!({"type": "object", "properties": props});
    let mut tools: Vec<Value> = TOOLS
        .iter()
        .map(|(name, description)| {
            let props = match *name {
                "echo" => json!({"text": {"type": "string"}}),
                "sleep" => json!({"ms": {"type": "integer"}}),
                "payload" => json!({"bytes": {"type": "integer"}}),
                _ => json!({}),
            };
            json!({"name": name, "description": description, "inputSchema": schema(props)})
        })
        .collect();
    for i in 1..=generated {
        tools.push(json!({
            "name": format!("gen_{i:04}"),
            "description": "A generated tool; answers its `text` argument.",
            "inputSchema": schema(json!({"text": {"type": "string"}})),
        }));
    }
    tools
}

fn text(t: impl Into<String>) -> Value {
    json!({"content": [{"type": "text", "text": t.into()}], "isError": false})
}

async fn call(params: &Value) -> Result<Value, (i64, String)> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or((-32602, "params.name is required".to_owned()))?;
    let args = &params["arguments"];
    let echo = || text(args.get("text").and_then(Value::as_str).unwrap_or_default());
    match name {
        "echo" => Ok(echo()),
        "time" => Ok(text(
            humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        )),
        "sleep" => {
            let ms = args.get("ms").and_then(Value::as_u64).unwrap_or(0).min(MAX_SLEEP_MS);
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            Ok(text(format!("slept {ms} ms")))
        }
        "payload" => {
            let n = args.get("bytes").and_then(Value::as_u64).unwrap_or(0) as usize;
            Ok(text("x".repeat(n.min(MAX_PAYLOAD))))
        }
        "fail" => Ok(json!({"content": [{"type": "text", "text": "failed, as asked"}], "isError": true})),
        // The session era has no input requests here: nothing to ask on.
        "confirm" => Ok(text("confirmed without asking")),
        n if n.strip_prefix("gen_").is_some_and(|d| d.parse::<u32>().is_ok()) => Ok(echo()),
        other => Err((-32602, format!("Unknown tool: {other}"))),
    }
}

/// The key of `confirm`'s one input request.
const CONFIRM_KEY: &str = "confirm";

/// `confirm` in the stateless era: first an input request (an elicitation form) and a `requestState`
/// bound to the call's arguments; on the retry that echoes the state, the answer the client gave.
fn confirm(params: &Value) -> Result<Value, (i64, String)> {
    use protocol::envelope::CLIENT_CAPABILITIES_KEY;
    use protocol::error::MISSING_REQUIRED_CLIENT_CAPABILITY;
    let elicits = params["_meta"][CLIENT_CAPABILITIES_KEY].get("elicitation").is_some();
    if !elicits {
        return Err((
            MISSING_REQUIRED_CLIENT_CAPABILITY,
            "confirm asks for input: declare the elicitation capability".to_owned(),
        ));
    }
    let state = request_state(&params["arguments"]);
    let Some(answer) = params.get("inputResponses").and_then(|r| r.get(CONFIRM_KEY)) else {
        return Ok(json!({
            "resultType": protocol::mrtr::INPUT_REQUIRED,
            "inputRequests": {CONFIRM_KEY: {
                "method": "elicitation/create",
                "params": {
                    "mode": "form",
                    "message": "Proceed?",
                    "requestedSchema": {
                        "type": "object",
                        "properties": {"ok": {"type": "boolean"}},
                        "required": ["ok"],
                    },
                },
            }},
            "requestState": state,
        }));
    };
    // The state is the client's to echo, not to forge: it must be the one issued for these arguments.
    if params.get("requestState").and_then(Value::as_str) != Some(state.as_str()) {
        return Err((-32602, "requestState is not the one issued for this call".to_owned()));
    }
    let accepted = answer["action"] == "accept" && answer["content"]["ok"] != false;
    Ok(text(if accepted { "confirmed" } else { "declined" }))
}

/// An opaque state bound to a call's arguments by a key only this process knows.
fn request_state(args: &Value) -> String {
    format!("confirm.{}", input_fixtures::seal(&args.to_string()))
}
