//! The conformance suite's input-required fixtures (2026-07-28, SEP-2322): tools — and one prompt —
//! that answer with an `InputRequiredResult` naming what they need from the client (an elicitation, a
//! sampling, the roots), and complete when the retry carries the answers. Each is a flow of rounds; a
//! flow with state binds each round's `requestState` to this process by a key only it knows, so a
//! tampered state is refused. A request for a capability the client did not declare is never made.

use std::hash::{BuildHasher, Hasher};
use std::sync::LazyLock;

use protocol::envelope::CLIENT_CAPABILITIES_KEY;
use protocol::error::{INVALID_PARAMS, MISSING_REQUIRED_CLIENT_CAPABILITY};
use serde_json::{Map, Value, json};

type Answer = Result<Value, (i64, String)>;

/// One flow: the fixture's name, whether it carries `requestState`, and its rounds — each the input
/// requests it makes, by key.
struct Flow {
    name: &'static str,
    stateful: bool,
    rounds: &'static [&'static [(&'static str, Ask)]],
}

/// What an input request asks the client for.
#[derive(Clone, Copy)]
enum Ask {
    /// An elicitation form: its message and the one string (or boolean) field it wants.
    Elicit(&'static str, &'static str),
    /// A sampling of an answer to this prompt.
    Sample(&'static str),
    Roots,
}

const NAME: (&str, Ask) = ("user_name", Ask::Elicit("What is your name?", "name"));

const TOOLS: [Flow; 8] = [
    Flow {
        name: "test_input_required_result_elicitation",
        stateful: false,
        rounds: &[&[NAME]],
    },
    Flow {
        name: "test_input_required_result_sampling",
        stateful: false,
        rounds: &[&[("capital_question", Ask::Sample("What is the capital of France?"))]],
    },
    Flow {
        name: "test_input_required_result_list_roots",
        stateful: false,
        rounds: &[&[("client_roots", Ask::Roots)]],
    },
    Flow {
        name: "test_input_required_result_request_state",
        stateful: true,
        rounds: &[&[("confirm", Ask::Elicit("Please confirm", "ok"))]],
    },
    Flow {
        name: "test_input_required_result_multiple_inputs",
        stateful: true,
        rounds: &[&[
            NAME,
            ("greeting", Ask::Sample("Generate a greeting")),
            ("client_roots", Ask::Roots),
        ]],
    },
    Flow {
        name: "test_input_required_result_multi_round",
        stateful: true,
        rounds: &[
            &[("step1", Ask::Elicit("Step 1: What is your name?", "name"))],
            &[("step2", Ask::Elicit("Step 2: What is your favorite color?", "color"))],
        ],
    },
    // A stream of the 2026-07-28 era carries no request of the server's: it asks by this result.
    Flow {
        name: "test_streaming_elicitation",
        stateful: false,
        rounds: &[&[("confirm", Ask::Elicit("Please confirm", "ok"))]],
    },
    Flow {
        name: "test_input_required_result_tampered_state",
        stateful: true,
        rounds: &[&[("confirm", Ask::Elicit("Please confirm", "ok"))]],
    },
];

/// Asks for what the client declared of these two, and nothing else.
const CAPABILITIES: Flow = Flow {
    name: "test_input_required_result_capabilities",
    stateful: false,
    rounds: &[&[
        ("user_name", Ask::Elicit("What is your name?", "name")),
        ("answer", Ask::Sample("Say hello")),
    ]],
};

const PROMPT: Flow = Flow {
    name: "test_input_required_result_prompt",
    stateful: false,
    rounds: &[&[(
        "user_context",
        Ask::Elicit("What context should the prompt use?", "context"),
    )]],
};

/// A tool that needs the client's sampling capability and refuses to run without it.
pub const NEEDS_SAMPLING: &str = "test_missing_capability";

/// The error a call of [`NEEDS_SAMPLING`] gets when the client did not declare sampling.
pub fn undeclared(params: &Value) -> Option<Value> {
    let declared = params["_meta"][CLIENT_CAPABILITIES_KEY].get("sampling").is_some();
    (!declared).then(|| {
        json!({"code": MISSING_REQUIRED_CLIENT_CAPABILITY,
            "message": format!("{NEEDS_SAMPLING} needs the sampling capability"),
            "data": {"requiredCapabilities": {"sampling": {}}}})
    })
}

fn tool(name: &str) -> Option<&'static Flow> {
    TOOLS.iter().chain([&CAPABILITIES]).find(|f| f.name == name)
}

/// The fixture tools, as `tools/list` lists them.
pub fn tools() -> impl Iterator<Item = Value> {
    let asking = TOOLS
        .iter()
        .chain([&CAPABILITIES])
        .map(|f| (f.name, "Asks the client for input (2026-07-28) before it answers."));
    asking
        .chain([(NEEDS_SAMPLING, "Refuses to run unless the client declared sampling.")])
        .map(|(name, description)| {
            json!({"name": name, "description": description, "inputSchema": {"type": "object", "properties": {}}})
        })
}

/// The fixture prompt, as `prompts/list` lists it.
pub fn prompt() -> Value {
    json!({"name": PROMPT.name, "description": "Asks the client for the context to use (2026-07-28)."})
}

/// Whether `method` on `name` is one of these fixtures.
pub fn serves(method: &str, name: &str) -> bool {
    match method {
        "tools/call" => tool(name).is_some() || name == NEEDS_SAMPLING,
        "prompts/get" => name == PROMPT.name,
        _ => false,
    }
}

/// A call of a fixture in the session era, which has no input requests.
pub fn session_era(name: &str) -> Value {
    json!({"content": [{"type": "text", "text": format!("{name} asks for input the 2026-07-28 way: call it in that era")}],
        "isError": true})
}

/// Answer a call of a fixture in the stateless era: the input it still needs, or its result.
pub fn answer(method: &str, params: &Value) -> Answer {
    let name = params["name"].as_str().unwrap_or_default();
    if name == NEEDS_SAMPLING {
        return Ok(json!({"content": [{"type": "text", "text": "sampling declared"}], "isError": false}));
    }
    let flow = if method == "prompts/get" {
        &PROMPT
    } else {
        tool(name).expect("serves() said so")
    };
    let round = match params.get("requestState").and_then(Value::as_str) {
        Some(state) => round_of(flow, state)?,
        None => 0,
    };
    let responses = match params.get("inputResponses") {
        None => None,
        Some(Value::Object(r)) => Some(r),
        Some(_) => return Err((INVALID_PARAMS, "inputResponses must be an object".to_owned())),
    };
    let asks = flow.rounds[round];
    let answered = responses.is_some_and(|r| asks.iter().all(|(key, _)| r.get(*key).is_some_and(Value::is_object)));
    if let Some(r) = responses
        && asks.iter().any(|(key, _)| r.get(*key).is_some_and(|v| !v.is_object()))
    {
        return Err((INVALID_PARAMS, "each input response must be an object".to_owned()));
    }
    if !answered {
        return input_required(flow, round, &params["_meta"][CLIENT_CAPABILITIES_KEY]);
    }
    if round + 1 < flow.rounds.len() {
        return input_required(flow, round + 1, &params["_meta"][CLIENT_CAPABILITIES_KEY]);
    }
    Ok(complete(flow, responses.expect("answered")))
}

/// The round a `requestState` stands for, if this process issued it for this flow.
fn round_of(flow: &Flow, state: &str) -> Result<usize, (i64, String)> {
    let round = state
        .rsplit_once('.')
        .filter(|(body, mac)| *mac == seal(body))
        .and_then(|(body, _)| body.strip_prefix(flow.name)?.strip_prefix('.')?.parse::<usize>().ok())
        .filter(|r| *r < flow.rounds.len());
    round.ok_or((INVALID_PARAMS, "requestState failed its integrity check".to_owned()))
}

fn input_required(flow: &Flow, round: usize, declared: &Value) -> Answer {
    let mut requests = Map::new();
    for (key, ask) in flow.rounds[round] {
        let (method, params) = request(*ask);
        let capability = method.split('/').next().unwrap_or_default();
        if declared.get(capability).is_some() {
            requests.insert((*key).to_owned(), json!({"method": method, "params": params}));
        }
    }
    if requests.is_empty() {
        return Err((
            MISSING_REQUIRED_CLIENT_CAPABILITY,
            format!("{} asks for input the client declared no capability for", flow.name),
        ));
    }
    let mut result = json!({"resultType": protocol::mrtr::INPUT_REQUIRED, "inputRequests": requests});
    if flow.stateful {
        let body = format!("{}.{round}", flow.name);
        result["requestState"] = json!(format!("{body}.{}", seal(&body)));
    }
    Ok(result)
}

fn request(ask: Ask) -> (&'static str, Value) {
    match ask {
        Ask::Elicit(message, field) => {
            let kind = if field == "ok" { "boolean" } else { "string" };
            (
                "elicitation/create",
                json!({"message": message, "requestedSchema": {"type": "object",
                    "properties": {field: {"type": kind}}, "required": [field]}}),
            )
        }
        Ask::Sample(prompt) => (
            "sampling/createMessage",
            json!({"messages": [{"role": "user", "content": {"type": "text", "text": prompt}}], "maxTokens": 100}),
        ),
        Ask::Roots => ("roots/list", json!({})),
    }
}

/// The result once every round is answered, saying what the client gave.
fn complete(flow: &Flow, responses: &Map<String, Value>) -> Value {
    let given = |key: &str| responses.get(key).cloned().unwrap_or(Value::Null);
    let text = match flow.name {
        "test_input_required_result_elicitation" => {
            format!(
                "Hello, {}!",
                given("user_name")["content"]["name"].as_str().unwrap_or("you")
            )
        }
        "test_input_required_result_sampling" => format!(
            "The client sampled: {}",
            given("capital_question")["content"]["text"]
                .as_str()
                .unwrap_or_default()
        ),
        "test_input_required_result_list_roots" => format!("Roots: {}", given("client_roots")["roots"]),
        "test_input_required_result_request_state" => "state-ok: confirmed".to_owned(),
        _ => format!("Completed with {}", Value::Object(responses.clone())),
    };
    if flow.name == PROMPT.name {
        let context = given("user_context")["content"]["context"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        return json!({"description": "A prompt that asked for its context",
            "messages": [{"role": "user", "content": {"type": "text", "text": format!("Use this context: {context}")}}]});
    }
    json!({"content": [{"type": "text", "text": text}], "isError": false})
}

/// A keyed hash of `payload` by a key only this process knows: what makes a state the client echoes
/// one this server issued.
pub fn seal(payload: &str) -> String {
    static KEY: LazyLock<std::collections::hash_map::RandomState> =
        LazyLock::new(std::collections::hash_map::RandomState::new);
    let mut h = KEY.build_hasher();
    h.write(payload.as_bytes());
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, extra: Value) -> Answer {
        let mut params = json!({"name": name, "arguments": {},
            "_meta": {CLIENT_CAPABILITIES_KEY: {"elicitation": {}, "sampling": {}, "roots": {}}}});
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        answer("tools/call", &params)
    }

    #[test]
    fn a_multi_round_flow_moves_on_with_each_state_and_refuses_a_tampered_one() {
        let first = call("test_input_required_result_multi_round", json!({})).unwrap();
        let state = first["requestState"].as_str().unwrap();
        let second = call(
            "test_input_required_result_multi_round",
            json!({"requestState": state, "inputResponses": {"step1": {"action": "accept", "content": {"name": "A"}}}}),
        )
        .unwrap();
        assert!(second["inputRequests"].get("step2").is_some(), "{second}");
        let next = second["requestState"].as_str().unwrap();
        assert_ne!(next, state);
        let done = call(
            "test_input_required_result_multi_round",
            json!({"requestState": next, "inputResponses": {"step2": {"action": "accept", "content": {"color": "blue"}}}}),
        )
        .unwrap();
        assert_eq!(done["isError"], false, "{done}");
        let tampered = call(
            "test_input_required_result_multi_round",
            json!({"requestState": format!("{state}-TAMPERED"), "inputResponses": {}}),
        );
        assert_eq!(tampered.unwrap_err().0, INVALID_PARAMS);
    }

    #[test]
    fn only_what_the_client_declared_is_asked_for() {
        let params = json!({"name": "test_input_required_result_capabilities", "arguments": {},
            "_meta": {CLIENT_CAPABILITIES_KEY: {"sampling": {}}}});
        let asked = answer("tools/call", &params).unwrap();
        let methods: Vec<_> = asked["inputRequests"]
            .as_object()
            .unwrap()
            .values()
            .map(|r| r["method"].clone())
            .collect();
        assert_eq!(methods, [json!("sampling/createMessage")]);
        let none = json!({"name": "test_input_required_result_elicitation", "_meta": {CLIENT_CAPABILITIES_KEY: {}}});
        assert_eq!(
            answer("tools/call", &none).unwrap_err().0,
            MISSING_REQUIRED_CLIENT_CAPABILITY
        );
    }
}
