//! MCP over JSON-RPC 2.0, shared by `POST /rpc` and the SSE message endpoints: parse a request,
//! run the method against the store, serialize the answer without building a JSON tree for it.
//!
//! Built-in tools run in process: a tool named `time` answers the time, `sleep` sleeps (bounded),
//! every other tool echoes its arguments. A call looks the tool up first and refuses a disabled one.

use std::time::Duration;

use serde::Serialize;
use serde_json::value::{RawValue, to_raw_value};
use serde_json::{Value, json};

use protocol::result::Decoration;
use protocol::{Era, Version};

use crate::model::{Prompt, PromptArgument, Resource, is_valid_id};
use crate::store::Store;

mod message;
pub use message::{Message, Request, parse, parse_message};

pub use protocol::error::{INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR};
/// A federated or REST tool whose upstream failed, timed out or could not be reached.
pub const UPSTREAM_ERROR: i64 = -32000;
/// How long a forwarded tool call may take (the upstream's `sleep` tool goes up to 10 s).
const UPSTREAM_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What JSON-RPC methods need: the store and the built-in tools' limits.
#[derive(Clone)]
pub struct Rpc {
    pub store: Store,
    /// Federated tools are called, and REST tools reached, with it.
    pub upstream: crate::upstream::Client,
    pub sleep_max: Duration,
    /// The largest prompt `prompts/get` renders, in bytes.
    pub prompt_max: usize,
    /// What a stateless-era result carries besides itself (identity, caching hints).
    pub stateless: Decoration,
}

/// One answer: the serialized response, and its error code when it is an error (a stateless-era
/// answer's HTTP status follows the code).
pub struct Answer {
    pub body: Vec<u8>,
    pub error: Option<i64>,
}

#[derive(Debug)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }

    fn params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }
}

/// What a client may read of a store error, as the REST surface shows it (`ApiError`): a conflict, a
/// missing or duplicate entity, an invalid field by name. A database failure is logged here and answered
/// without the driver's text.
impl From<crate::store::StoreError> for RpcError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        let message = match e {
            StoreError::Unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                "Database unavailable".to_owned()
            }
            StoreError::StatementTimeout => "Database statement timed out".to_owned(),
            StoreError::Database(e) => {
                tracing::error!(error = %e, "database error");
                "Internal database error".to_owned()
            }
            e @ (StoreError::LockConflict(_)
            | StoreError::NotFound { .. }
            | StoreError::Duplicate { .. }
            | StoreError::Invalid(_)
            | StoreError::MissingReference { .. }
            | StoreError::Upstream { .. }) => e.to_string(),
        };
        Self::new(INTERNAL_ERROR, message)
    }
}

/// A JSON-RPC success whose result `write` appends.
fn success(id: &Value, size: usize, write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 40);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    serde_json::to_writer(&mut out, id).expect("a JSON-RPC id serializes");
    out.extend_from_slice(b",\"result\":");
    write(&mut out);
    out.push(b'}');
    out
}

/// A method's result: built here (serialized as built), or an upstream's answer relayed as it came,
/// which may carry the stateless era's fields already.
enum Outcome {
    Own(Box<RawValue>),
    Relayed(Value),
}

/// What this gateway says it is, in `initialize` and in every stateless result's `_meta`.
pub fn server_info() -> Value {
    json!({"name": "stampede-gateway", "version": env!("CARGO_PKG_VERSION")})
}

/// What the gateway can do, in an era: list changes are announced on the stateless era's listen
/// streams (the session era's `GET` stream carries none).
fn capabilities(era: Era) -> Value {
    let announced = era == Era::Stateless;
    json!({
        "tools": {"listChanged": announced},
        "resources": {"subscribe": false, "listChanged": announced},
        "prompts": {"listChanged": announced},
    })
}

#[derive(Serialize)]
struct Failure<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    error: ErrorObject<'a>,
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    code: i64,
    message: &'a str,
}

pub fn failure(id: &Value, code: i64, message: &str) -> Vec<u8> {
    serde_json::to_vec(&Failure {
        jsonrpc: "2.0",
        id,
        error: ErrorObject { code, message },
    })
    .expect("a JSON-RPC error serializes")
}

impl Rpc {
    /// Run one session-era request; `server_id` narrows `tools/list` when the request came through
    /// a server's endpoint. Answers the serialized response, or `None` for a notification.
    pub async fn dispatch(&self, req: Request, server_id: Option<&str>) -> Option<Vec<u8>> {
        self.answer(req, server_id, Era::Session).await.map(|a| a.body)
    }

    /// Run one request in its era: each era has methods the other lacks (`server/discover` is the
    /// stateless era's handshake, `initialize` and `ping` the session era's), and a stateless result
    /// carries its type, the server's identity and, for lists and reads, caching hints.
    pub async fn answer(&self, req: Request, server_id: Option<&str>, era: Era) -> Option<Answer> {
        let method = req.method.as_str();
        let result = match (era, method) {
            (Era::Stateless, "initialize" | "ping" | "logging/setLevel") | (Era::Session, "server/discover") => {
                Err(RpcError::new(METHOD_NOT_FOUND, format!("Method not found: {method}")))
            }
            (Era::Stateless, "server/discover") => raw(&json!({
                "supportedVersions": Version::ALL.map(Version::as_str),
                "capabilities": capabilities(Era::Stateless),
            }))
            .map(Outcome::Own),
            (_, "tools/call") => self.tools_call(&req.params).await,
            _ => self.call(method, &req.params, server_id).await.map(Outcome::Own),
        };
        let id = req.id?;
        let stateless = era == Era::Stateless;
        Some(match result {
            Ok(Outcome::Own(result)) => Answer {
                body: success(&id, result.get().len() + 160, |out| {
                    if stateless {
                        self.stateless.write_own(method, result.get(), out);
                    } else {
                        out.extend_from_slice(result.get().as_bytes());
                    }
                }),
                error: None,
            },
            Ok(Outcome::Relayed(mut result)) => {
                if stateless {
                    self.stateless.apply_to(method, &mut result);
                }
                Answer {
                    body: success(&id, 256, |out| {
                        serde_json::to_writer(out, &result).expect("a JSON value serializes");
                    }),
                    error: None,
                }
            }
            Err(e) => Answer {
                body: failure(&id, e.code, &e.message),
                error: Some(e.code),
            },
        })
    }

    async fn call(&self, method: &str, params: &Value, server_id: Option<&str>) -> Result<Box<RawValue>, RpcError> {
        match method {
            "initialize" => raw(&json!({
                "protocolVersion": Version::negotiate(params.get("protocolVersion").and_then(Value::as_str)).as_str(),
                "capabilities": capabilities(Era::Session),
                "serverInfo": server_info(),
            })),
            "ping" => raw(&json!({})),
            "tools/list" => self.tools_list(params, server_id).await,
            "resources/list" => {
                let resources = self.store.enabled_resources().await?;
                raw(&json!({"resources": resources.iter().map(ResourceInfo::from).collect::<Vec<_>>()}))
            }
            // The gateway's resources are concrete; it has no templates to offer.
            "resources/templates/list" => raw(&json!({"resourceTemplates": []})),
            "resources/read" => self.resources_read(params).await,
            "prompts/list" => {
                let prompts = self.store.enabled_prompts().await?;
                let infos = prompts
                    .iter()
                    .map(PromptInfo::try_from)
                    .collect::<Result<Vec<_>, _>>()?;
                raw(&json!({"prompts": infos}))
            }
            "prompts/get" => self.prompts_get(params).await,
            other => Err(RpcError::new(METHOD_NOT_FOUND, format!("Method not found: {other}"))),
        }
    }

    async fn tools_list(&self, params: &Value, session_server: Option<&str>) -> Result<Box<RawValue>, RpcError> {
        let server_id = match params.get("server_id") {
            Some(Value::String(s)) => Some(s.as_str()),
            Some(Value::Null) | None => session_server,
            Some(_) => return Err(RpcError::params("server_id must be a string")),
        };
        if let Some(id) = server_id
            && (!is_valid_id(id) || !self.store.server_exists(id).await?)
        {
            return Err(RpcError::params(format!("Server not found: {id}")));
        }
        let tools = self.store.enabled_tools_json(server_id).await?;
        #[derive(Serialize)]
        struct List<'a> {
            tools: &'a RawValue,
        }
        raw(&List { tools: &tools })
    }

    async fn tools_call(&self, params: &Value) -> Result<Outcome, RpcError> {
        let name = str_param(params, "name")?;
        let arguments = params.get("arguments").cloned().unwrap_or_else(|| json!({}));
        let route = self
            .store
            .tool_route(name)
            .await?
            .ok_or_else(|| RpcError::params(format!("Unknown tool: {name}")))?;
        let tool = &route.tool;
        if !tool.enabled {
            return Err(RpcError::params(format!("Tool is disabled: {name}")));
        }
        if let (Some(gateway), Some(original)) = (&route.gateway, &tool.original_name) {
            return self.forward(gateway, original, arguments).await;
        }
        // Legacy: the request's database session stays open across the call (taken after the lookup:
        // a request never holds two connections, or a busy pool would deadlock).
        if let Some(url) = tool.url.as_deref().filter(|u| !u.is_empty()) {
            let _session = self.store.request_session().await?;
            return self
                .call_rest(url, &tool.request_type, arguments)
                .await
                .map(Outcome::Own);
        }
        let _session = self.store.request_session().await?;
        let text = match tool.name.as_str() {
            "time" => crate::model::now(),
            "sleep" => {
                let delay = sleep_delay(&arguments)?;
                if delay > self.sleep_max {
                    return Err(RpcError::params(format!(
                        "sleep of {} ms is longer than the {} ms allowed",
                        delay.as_millis(),
                        self.sleep_max.as_millis()
                    )));
                }
                tokio::time::sleep(delay).await;
                format!("slept {} ms", delay.as_millis())
            }
            _ => match arguments.get("text") {
                Some(Value::String(s)) => s.clone(),
                _ => arguments.to_string(),
            },
        };
        raw(&json!({"content": [{"type": "text", "text": text}], "isError": false})).map(Outcome::Own)
    }

    /// A federated tool: call it on its gateway's upstream and relay the answer as it came.
    async fn forward(
        &self,
        gateway: &crate::model::Gateway,
        original: &str,
        arguments: Value,
    ) -> Result<Outcome, RpcError> {
        if !gateway.enabled {
            return Err(RpcError::params(format!("Gateway is disabled: {}", gateway.name)));
        }
        let transport = crate::upstream::Transport::parse(&gateway.transport);
        let _session = self.store.request_session().await?;
        match self
            .upstream
            .call(&gateway.url, transport, original, arguments, UPSTREAM_CALL_TIMEOUT)
            .await
        {
            Ok(result) => Ok(Outcome::Relayed(result)),
            Err(crate::upstream::UpstreamError::Rpc { code, message }) => Err(RpcError::new(code, message)),
            Err(e) => Err(RpcError::new(
                UPSTREAM_ERROR,
                format!("Tool invocation failed: upstream {}: {e}", gateway.url),
            )),
        }
    }

    /// A REST tool with a URL: one HTTP request there (arguments as the JSON body, or as the query for
    /// GET); its body is the tool's text, a failing status a tool error.
    async fn call_rest(&self, url: &str, request_type: &str, arguments: Value) -> Result<Box<RawValue>, RpcError> {
        let failed = |e: String| RpcError::new(UPSTREAM_ERROR, format!("Tool invocation failed: {url}: {e}"));
        self.upstream.check(url).map_err(|e| failed(e.to_string()))?;
        let http = self.upstream.http();
        let request = if request_type.eq_ignore_ascii_case("GET") {
            let query: Vec<(String, String)> = arguments
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect();
            http.get(url).query(&query)
        } else {
            let method = reqwest::Method::from_bytes(request_type.to_ascii_uppercase().as_bytes())
                .unwrap_or(reqwest::Method::POST);
            http.request(method, url).json(&arguments)
        };
        let resp = request
            .timeout(UPSTREAM_CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| failed(crate::upstream::chain(&e)))?;
        let ok = resp.status().is_success();
        let body = crate::upstream::read_capped(resp, self.upstream.max_bytes())
            .await
            .map_err(|e| failed(e.to_string()))?;
        let text = String::from_utf8_lossy(&body);
        raw(&json!({"content": [{"type": "text", "text": text}], "isError": !ok}))
    }

    async fn resources_read(&self, params: &Value) -> Result<Box<RawValue>, RpcError> {
        let uri = str_param(params, "uri")?;
        let resource = self
            .store
            .resource_by_uri(uri)
            .await?
            .filter(|r| r.enabled)
            .ok_or_else(|| RpcError::params(format!("Resource not found: {uri}")))?;
        raw(&json!({"contents": [{
            "uri": resource.uri,
            "mimeType": resource.mime_type.as_deref().unwrap_or("text/plain"),
            "text": resource.content,
        }]}))
    }

    async fn prompts_get(&self, params: &Value) -> Result<Box<RawValue>, RpcError> {
        let name = str_param(params, "name")?;
        let prompt = self
            .store
            .prompt_by_name(name)
            .await?
            .filter(|p| p.enabled)
            .ok_or_else(|| RpcError::params(format!("Prompt not found: {name}")))?;
        let declared: Vec<PromptArgument> = serde_json::from_str(&prompt.arguments).unwrap_or_default();
        let given = params.get("arguments").and_then(Value::as_object);
        let mut values = std::collections::HashMap::new();
        for arg in &declared {
            match given.and_then(|g| g.get(&arg.name)) {
                Some(v) => {
                    values.insert(
                        arg.name.as_str(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    );
                }
                None if arg.required => {
                    return Err(RpcError::params(format!("Missing required argument: {}", arg.name)));
                }
                None => {}
            }
        }
        let text = render(&prompt.template, &values, self.prompt_max).map_err(|_| {
            RpcError::params(format!(
                "prompt {name} renders to more than {} bytes (PROMPT_MAX_BYTES): refused",
                self.prompt_max
            ))
        })?;
        raw(&json!({
            "description": prompt.description,
            "messages": [{"role": "user", "content": {"type": "text", "text": text}}],
        }))
    }
}

/// A template with each `{{name}}` of `values` replaced, in one pass: a value is never expanded again,
/// and the text never grows past `max` bytes (`Err` with the size reached when it would).
fn render(template: &str, values: &std::collections::HashMap<&str, String>, max: usize) -> Result<String, usize> {
    let mut out = String::with_capacity(template.len().min(max));
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let (before, after) = rest.split_at(open);
        let placeholder = after[2..]
            .find("}}")
            .and_then(|close| values.get(&after[2..2 + close]).map(|v| (v, close + 4)));
        let (piece, used) = match placeholder {
            Some((value, used)) => (value.as_str(), used),
            None => ("{{", 2),
        };
        if out.len() + before.len() + piece.len() > max {
            return Err(out.len() + before.len() + piece.len());
        }
        out.push_str(before);
        out.push_str(piece);
        rest = &after[used..];
    }
    if out.len() + rest.len() > max {
        return Err(out.len() + rest.len());
    }
    out.push_str(rest);
    Ok(out)
}

fn raw<T: Serialize + ?Sized>(value: &T) -> Result<Box<RawValue>, RpcError> {
    to_raw_value(value).map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))
}

fn str_param<'a>(params: &'a Value, key: &str) -> Result<&'a str, RpcError> {
    params
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::params(format!("params.{key} must be a string")))
}

/// `{"ms": N}` or `{"seconds": S}`.
fn sleep_delay(arguments: &Value) -> Result<Duration, RpcError> {
    if let Some(ms) = arguments.get("ms") {
        return ms
            .as_u64()
            .map(Duration::from_millis)
            .ok_or_else(|| RpcError::params("arguments.ms must be a non-negative integer"));
    }
    if let Some(s) = arguments.get("seconds") {
        return s
            .as_f64()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| RpcError::params("arguments.seconds must be a non-negative number"));
    }
    Err(RpcError::params("sleep needs arguments.ms or arguments.seconds"))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceInfo<'a> {
    uri: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mime_type: Option<&'a str>,
}

impl<'a> From<&'a Resource> for ResourceInfo<'a> {
    fn from(r: &'a Resource) -> Self {
        ResourceInfo {
            uri: &r.uri,
            name: &r.name,
            description: r.description.as_deref(),
            mime_type: r.mime_type.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct PromptInfo<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    arguments: &'a RawValue,
}

impl<'a> TryFrom<&'a Prompt> for PromptInfo<'a> {
    type Error = RpcError;

    fn try_from(p: &'a Prompt) -> Result<Self, RpcError> {
        Ok(PromptInfo {
            name: &p.name,
            description: p.description.as_deref(),
            arguments: serde_json::from_str(&p.arguments).map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_renders_in_one_pass_within_its_cap() {
        let values: std::collections::HashMap<&str, String> =
            [("a", "{{b}}".to_owned()), ("b", "x".repeat(10))].into_iter().collect();
        assert_eq!(
            render("{{a}} {{b}} {{c}} {{", &values, 100).unwrap(),
            "{{b}} xxxxxxxxxx {{c}} {{"
        );
        let bomb = "{{b}}".repeat(1000);
        assert_eq!(render(&bomb, &values, 95), Err(100));
        assert_eq!(render(&bomb, &values, 10_000).unwrap().len(), 10_000);
    }

    #[test]
    fn sleep_takes_ms_or_seconds() {
        assert_eq!(sleep_delay(&json!({"ms": 5})).unwrap(), Duration::from_millis(5));
        assert_eq!(
            sleep_delay(&json!({"seconds": 0.5})).unwrap(),
            Duration::from_millis(500)
        );
        assert!(sleep_delay(&json!({"ms": -1})).is_err());
        assert!(sleep_delay(&json!({})).is_err());
    }
}
