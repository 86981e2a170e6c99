//! `GET /openapi.json`: the HTTP surface as an OpenAPI 3.1 document. Bodies and query parameters are
//! the JSON Schemas of the very types the handlers read and write (schemars reads their serde
//! attributes, and the validators' limits and patterns are attributes beside them), so the document
//! moves with the code. What no type says is written here: which statuses each route answers, and
//! the JSON-RPC envelope that `rpc::parse_message` checks by hand. The entity routes are described
//! by one loop over `Kind`, as `router` registers them. schemathesis tests the running gateway
//! against this document (gateway/tests/schemathesis.rs).

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

use super::Health;
use super::entities::{Done, ListParams, PromptBody, ResourceBody, ServerBody, StateParams, ToolBody};
use super::error::ErrorBody;
use super::sse::MessageParams;
use crate::model::{Gateway, ID_LENGTH, ID_PATTERN, Kind, NewGateway, Prompt, Resource, Server, Tool};

/// Served as built once: the document depends on nothing that changes at run time.
pub async fn serve() -> impl IntoResponse {
    static DOCUMENT: OnceLock<Vec<u8>> = OnceLock::new();
    let body = DOCUMENT.get_or_init(|| serde_json::to_vec(&document()).expect("the document serializes"));
    ([(header::CONTENT_TYPE, "application/json")], body.as_slice())
}

/// The whole document.
pub fn document() -> Value {
    let mut doc = Doc::new();
    doc.open_routes();
    for kind in Kind::ALL {
        doc.entity_routes(kind);
    }
    doc.mcp_routes();
    doc.finish()
}

struct Doc {
    schemas: SchemaGenerator,
    paths: Map<String, Value>,
}

/// Who may call a route.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Open,
    /// With a bearer JWT, as `require_auth` checks it.
    Protected,
}
use Access::{Open as OPEN, Protected as PROTECTED};

impl Doc {
    fn new() -> Doc {
        // Requests are what the handlers deserialize; answers are described with the same contract,
        // which only leaves an answer's optional fields unrequired.
        let settings = SchemaSettings::draft2020_12().with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        });
        Doc {
            schemas: settings.into_generator(),
            paths: Map::new(),
        }
    }

    fn schema<T: JsonSchema>(&mut self) -> Value {
        self.schemas.subschema_for::<T>().to_value()
    }

    /// A type's properties as query parameters (an optional one is not nullable in a query string).
    fn query<T: JsonSchema>(&mut self, only: impl Fn(&str) -> bool) -> Vec<Value> {
        let schema: Schema = T::json_schema(&mut self.schemas);
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return Vec::new();
        };
        properties
            .iter()
            .filter(|(name, _)| only(name))
            .map(|(name, property)| {
                let mut property = property.clone();
                let description = property.as_object_mut().and_then(|p| p.remove("description"));
                drop_null(&mut property);
                let mut parameter = json!({
                    "name": name,
                    "in": "query",
                    "required": required.contains(&name.as_str()),
                    "schema": property,
                });
                if let Some(d) = description {
                    parameter["description"] = d;
                }
                parameter
            })
            .collect()
    }

    fn add(&mut self, path: &str, method: &str, mut operation: Value, access: Access) {
        if access == Access::Open {
            operation["security"] = json!([]);
        }
        let item = self.paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        item[method] = operation;
    }

    fn error(&mut self, description: &str) -> Value {
        json_response(description, self.schema::<ErrorBody>())
    }

    /// The answers every protected route can give besides its own.
    fn unauthorized(&mut self) -> Value {
        let mut response = self.error("Missing, invalid or expired token");
        response["headers"] = json!({"WWW-Authenticate": {"required": true, "schema": {"type": "string"}}});
        response
    }

    fn open_routes(&mut self) {
        let health = self.schema::<Health>();
        for (path, what) in [("/health", "The database answers"), ("/ready", "Ready to serve")] {
            let op = json!({
                "summary": what,
                "operationId": path.trim_start_matches('/'),
                "responses": {
                    "200": json_response(what, health.clone()),
                    "503": json_response("The database does not answer", health.clone()),
                },
            });
            self.add(path, "get", op, OPEN);
        }
        self.add(
            "/metrics/prometheus",
            "get",
            json!({
                "summary": "Prometheus text exposition",
                "operationId": "metrics",
                "responses": {"200": {
                    "description": "The gateway's metrics",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }},
            }),
            OPEN,
        );
        self.add(
            "/openapi.json",
            "get",
            json!({
                "summary": "This document",
                "operationId": "openapi",
                "responses": {"200": json_response("OpenAPI 3.1", json!({"type": "object"}))},
            }),
            OPEN,
        );
    }

    fn entity(&mut self, kind: Kind) -> Value {
        match kind {
            Kind::Gateway => self.schema::<Gateway>(),
            Kind::Tool => self.schema::<Tool>(),
            Kind::Server => self.schema::<Server>(),
            Kind::Prompt => self.schema::<Prompt>(),
            Kind::Resource => self.schema::<Resource>(),
        }
    }

    fn create_body(&mut self, kind: Kind) -> Value {
        match kind {
            Kind::Gateway => self.schema::<NewGateway>(),
            Kind::Tool => self.schema::<ToolBody>(),
            Kind::Server => self.schema::<ServerBody>(),
            Kind::Prompt => self.schema::<PromptBody>(),
            Kind::Resource => self.schema::<ResourceBody>(),
        }
    }

    /// `/{kind}`, `/{kind}/{id}` and `/{kind}/{id}/state`, as `entities::routes` registers them.
    fn entity_routes(&mut self, kind: Kind) {
        let plural = kind.plural();
        let key = kind.key();
        let entity = self.entity(kind);
        let id = json!({"name": "id", "in": "path", "required": true, "schema": id_schema()});
        let unauthorized = self.unauthorized();
        let not_found = self.error("No such entity (or an id that is not 32 hex characters)");
        let locked = self.error("The row is locked by another request (FOR UPDATE NOWAIT)");
        let unavailable = self.error("The database is unavailable or timed out");
        let unprocessable = self.error("A field or parameter that is not valid; the detail names it");

        // `gateway_id` filters tools only.
        let params = self.query::<ListParams>(|name| name != "gateway_id" || kind == Kind::Tool);
        let list = json!({"type": "array", "items": entity});
        let page = json!({
            "type": "object",
            "required": [plural, "nextCursor"],
            "properties": {plural: list, "nextCursor": {"anyOf": [id_schema(), {"type": "null"}]}},
        });
        self.add(
            &format!("/{plural}"),
            "get",
            json!({
                "summary": format!("List {plural}"),
                "operationId": format!("list_{plural}"),
                "parameters": params,
                "responses": {
                    "200": json_response("A bare array, or a page with `include_pagination=true`", json!({"anyOf": [list, page]})),
                    "401": unauthorized, "422": unprocessable, "503": unavailable,
                },
            }),
            PROTECTED,
        );

        let body = self.create_body(kind);
        let created = if kind == Kind::Server { "201" } else { "200" };
        let mut created_response = json_response(&format!("The new {key}"), entity.clone());
        created_response["links"] = links(kind);
        let mut create_responses = json!({
            created: created_response,
            "400": self.error("Malformed JSON"),
            "401": unauthorized,
            "404": self.error("A referenced gateway or tool does not exist"),
            "409": self.error("An entity of this kind already has that name (or URI)"),
            "408": self.error("The body did not arrive within BODY_READ_TIMEOUT"),
            "413": self.error("The body is larger than MAX_BODY_BYTES"),
            "422": unprocessable,
            "503": unavailable,
        });
        if kind == Kind::Gateway {
            // Unless GATEWAY_ACTIVATION_IO_MS simulates it, a create asks the upstream for its tools.
            create_responses["502"] = self.error("The upstream could not be initialized");
            create_responses["504"] = self.error("The upstream did not answer in time");
        }
        self.add(
            &format!("/{plural}"),
            "post",
            json!({
                "summary": format!("Create a {key}"),
                "operationId": format!("create_{key}"),
                "requestBody": {"required": true, "content": {"application/json": {"schema": body}}},
                "responses": create_responses,
            }),
            PROTECTED,
        );

        let item = format!("/{plural}/{{id}}");
        self.add(
            &item,
            "get",
            json!({
                "summary": format!("One {key}"),
                "operationId": format!("get_{key}"),
                "parameters": [id],
                "responses": {
                    "200": json_response(&format!("The {key}"), entity.clone()),
                    "401": unauthorized, "404": not_found, "503": unavailable,
                },
            }),
            PROTECTED,
        );
        let done = self.schema::<Done>();
        let deleted = if kind == Kind::Gateway {
            "Deleted, with its tools, prompts and resources"
        } else {
            "Deleted"
        };
        self.add(
            &item,
            "delete",
            json!({
                "summary": format!("Delete a {key}"),
                "operationId": format!("delete_{key}"),
                "parameters": [id],
                "responses": {
                    "200": json_response(deleted, done),
                    "401": unauthorized, "404": not_found, "409": locked, "503": unavailable,
                },
            }),
            PROTECTED,
        );

        let mut params = vec![id];
        params.extend(self.query::<StateParams>(|_| true));
        let toggled = if kind == Kind::Server {
            // Servers answer the bare server, as the original gateway does.
            entity
        } else {
            json!({
                "type": "object",
                "required": ["status", "message", key],
                "properties": {"status": {"const": "success"}, "message": {"type": "string"}, key: entity},
            })
        };
        let toggled_what = if kind == Kind::Gateway {
            "Toggled, with its tools, prompts and resources, in one transaction"
        } else {
            "Toggled"
        };
        self.add(
            &format!("/{plural}/{{id}}/state"),
            "post",
            json!({
                "summary": format!("Activate or deactivate a {key}"),
                "operationId": format!("set_{key}_state"),
                "parameters": params,
                "responses": {
                    "200": json_response(toggled_what, toggled),
                    "401": unauthorized, "404": not_found, "409": locked, "422": unprocessable,
                    "503": unavailable,
                },
            }),
            PROTECTED,
        );
    }

    /// `/rpc`, the SSE transport and Streamable HTTP.
    fn mcp_routes(&mut self) {
        let unauthorized = self.unauthorized();
        let too_large = self.error("The body is larger than MAX_BODY_BYTES");
        let too_slow = self.error("The body did not arrive within BODY_READ_TIMEOUT");
        let request_body = json!({"required": true, "content": {"application/json": {"schema": rpc_request()}}});
        self.add(
            "/rpc",
            "post",
            json!({
                "summary": "One JSON-RPC request, answered in the response",
                "operationId": "rpc",
                "requestBody": request_body,
                "responses": {
                    "200": json_response("The result, or a JSON-RPC error", rpc_answer()),
                    "202": {"description": "A notification, taken"},
                    "400": json_response("Malformed JSON or not a JSON-RPC request", rpc_answer()),
                    "401": unauthorized, "408": too_slow, "413": too_large,
                },
            }),
            PROTECTED,
        );

        let server = json!({"name": "id", "in": "path", "required": true, "schema": id_schema()});
        let no_server = self.error("No such server");
        let unavailable = self.error("The database is unavailable or timed out");
        let stream = json!({
            "description": "The session's stream: `endpoint`, then `keepalive` and `message` events",
            "content": {"text/event-stream": {"schema": sse_event(&["endpoint", "message"])}},
        });
        self.add(
            "/sse",
            "get",
            json!({"summary": "Open an SSE session", "operationId": "open_sse",
                   "responses": {"200": stream, "401": unauthorized}}),
            PROTECTED,
        );
        self.add(
            "/servers/{id}/sse",
            "get",
            json!({"summary": "Open an SSE session on a server's tools", "operationId": "open_server_sse",
                   "parameters": [server],
                   "responses": {"200": stream, "401": unauthorized, "404": no_server, "503": unavailable}}),
            PROTECTED,
        );
        let session = self.query::<MessageParams>(|_| true);
        let taken = json!({
            "type": "object", "required": ["status"], "properties": {"status": {"const": "success"}},
        });
        let message = json!({
            "summary": "A JSON-RPC message for an SSE session; the answer goes out on its stream",
            "requestBody": request_body,
            "responses": {
                "202": json_response("Taken", taken),
                "400": self.error("No session_id, or not a JSON-RPC request"),
                "401": unauthorized,
                "404": self.error("No such session, or it has ended"),
                "408": too_slow,
                "413": too_large,
            },
        });
        let mut op = message.clone();
        op["operationId"] = json!("post_message");
        op["parameters"] = json!(session);
        self.add("/message", "post", op, PROTECTED);
        let mut op = message;
        op["operationId"] = json!("post_server_message");
        op["parameters"] = json!([server.clone(), session[0].clone()]);
        self.add("/servers/{id}/message", "post", op, PROTECTED);

        for (path, prefix) in [("/mcp", ""), ("/servers/{id}/mcp", "server_")] {
            let mut path_params = Vec::new();
            if prefix == "server_" {
                path_params.push(server.clone());
            }
            let body_errors = [("408", &too_slow), ("413", &too_large)];
            self.streamable(path, prefix, &path_params, &unauthorized, &body_errors);
        }
    }

    /// MCP's Streamable HTTP on one endpoint.
    fn streamable(
        &mut self,
        path: &str,
        prefix: &str,
        path_params: &[Value],
        unauthorized: &Value,
        body_errors: &[(&str, &Value)],
    ) {
        let session = |required: bool| {
            json!({"name": "Mcp-Session-Id", "in": "header", "required": required,
                   "description": "The id `initialize` answered in this header",
                   "schema": {"type": "string"}})
        };
        let version = version_param();
        let refused = |what: &str| json_response(what, rpc_answer());
        let mut params = path_params.to_vec();
        params.extend([session(false), version.clone()]);
        self.add(
            path,
            "post",
            json!({
                "summary": "One JSON-RPC message; `initialize` starts a session (session era), or one stateless request (2026-07-28)",
                "operationId": format!("{prefix}streamable_post"),
                "parameters": params,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "anyOf": [rpc_request(), rpc_client_answer()],
                }}}},
                "responses": {
                    "200": {
                        "description": "The answer, as JSON or as a stream of one `message` event",
                        "headers": {"Mcp-Session-Id": {"schema": {"type": "string"}}},
                        "content": {
                            "application/json": {"schema": rpc_answer()},
                            "text/event-stream": {"schema": sse_event(&["message"])},
                        },
                    },
                    "202": {"description": "A notification or a response, taken"},
                    "400": refused("No Mcp-Session-Id, an unsupported version, not JSON-RPC, or a stateless request whose envelope or routing headers are wrong"),
                    "401": unauthorized,
                    "404": refused("No such session (or server); in the stateless era, an unknown method"),
                    "406": refused("Accept allows neither JSON nor an event stream"),
                    "415": refused("The body is not application/json"),
                },
            }),
            PROTECTED,
        );
        for (status, response) in body_errors {
            self.paths[path]["post"]["responses"][*status] = (*response).clone();
        }
        let mut params = path_params.to_vec();
        params.extend([session(true), version]);
        self.add(
            path,
            "get",
            json!({
                "summary": "The session's stream for server messages",
                "operationId": format!("{prefix}streamable_get"),
                "parameters": params,
                "responses": {
                    "200": {"description": "Keepalives and server messages",
                            "content": {"text/event-stream": {"schema": sse_event(&["message"])}}},
                    "400": refused("No Mcp-Session-Id or an unsupported version"),
                    "401": unauthorized,
                    "404": refused("No such session"),
                    "406": refused("Accept does not allow an event stream"),
                    "409": refused("The session already has an open stream"),
                    "405": {"description": "A stateless-era (or unknown) MCP-Protocol-Version: that era has no stream"},
                },
            }),
            PROTECTED,
        );
        let mut params = path_params.to_vec();
        params.extend([session(true), version_param()]);
        self.add(
            path,
            "delete",
            json!({
                "summary": "End the session",
                "operationId": format!("{prefix}streamable_delete"),
                "parameters": params,
                "responses": {
                    "200": {"description": "Ended"},
                    "400": refused("No Mcp-Session-Id"),
                    "401": unauthorized,
                    "404": refused("No such session"),
                    "405": {"description": "A stateless-era (or unknown) MCP-Protocol-Version: that era has no session to end"},
                },
            }),
            PROTECTED,
        );
    }

    fn finish(mut self) -> Value {
        let schemas = self.schemas.take_definitions(true);
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "stampede-gateway",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "The reference MCP gateway of stampede (docs/api.md).",
            },
            "paths": self.paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            },
            "security": [{"bearer": []}],
        })
    }
}

/// An id as `model::is_valid_id` accepts it.
fn id_schema() -> Value {
    json!({"type": "string", "pattern": ID_PATTERN, "minLength": ID_LENGTH, "maxLength": ID_LENGTH})
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// After a create, the new entity's other operations take its id (schemathesis follows these).
fn links(kind: Kind) -> Value {
    let key = kind.key();
    let by_id = |operation: String| json!({"operationId": operation, "parameters": {"id": "$response.body#/id"}});
    let mut links = json!({
        "get": by_id(format!("get_{key}")),
        "delete": by_id(format!("delete_{key}")),
        "set_state": by_id(format!("set_{key}_state")),
    });
    if kind == Kind::Server {
        // A server's own MCP endpoints.
        links["open_sse"] = by_id("open_server_sse".into());
        links["streamable_post"] = by_id("server_streamable_post".into());
    }
    links
}

/// A JSON-RPC id as MCP has it, a string or an integer, or JSON-RPC's null (`rpc::parse_message`
/// refuses others).
fn rpc_id() -> Value {
    json!({"type": ["string", "integer", "null"]})
}

/// What `rpc::parse_message` takes as a request; no id makes it a notification.
fn rpc_request() -> Value {
    json!({
        "type": "object",
        "required": ["jsonrpc", "method"],
        "properties": {
            "jsonrpc": {"const": "2.0"},
            "id": rpc_id(),
            "method": {"type": "string"},
            "params": {"type": ["object", "array", "null"]},
        },
    })
}

/// A client's answer to a server's request (Streamable HTTP takes these).
fn rpc_client_answer() -> Value {
    json!({
        "type": "object",
        "required": ["jsonrpc", "id"],
        "properties": {"jsonrpc": {"const": "2.0"}, "id": rpc_id()},
        "anyOf": [{"required": ["result"]}, {"required": ["error"]}],
    })
}

/// What the gateway answers: a result or an error object (a refusal has `id: null`).
fn rpc_answer() -> Value {
    let id = json!({"type": ["string", "integer", "null"]});
    json!({
        "oneOf": [
            {
                "type": "object",
                "required": ["jsonrpc", "id", "result"],
                "properties": {"jsonrpc": {"const": "2.0"}, "id": id, "result": {}},
            },
            {
                "type": "object",
                "required": ["jsonrpc", "id", "error"],
                "properties": {
                    "jsonrpc": {"const": "2.0"},
                    "id": id,
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {"code": {"type": "integer"}, "message": {"type": "string"}, "data": {}},
                    },
                },
            },
        ],
    })
}

/// One event of a stream, as `session::frame` writes them: which of `events` it may be, and its data.
fn sse_event(events: &[&str]) -> Value {
    let event = |name: &str, data: Value| {
        json!({
            "type": "object",
            "required": ["event", "data"],
            "properties": {"event": {"const": name}, "data": data},
        })
    };
    let choices: Vec<Value> = events
        .iter()
        .map(|&name| match name {
            "endpoint" => event(
                name,
                json!({"type": "string", "pattern": "^http://[^/]+(/servers/[0-9a-f]{32})?/message\\?session_id=[0-9a-f]{32}$"}),
            ),
            _ => event(name, json!({"type": "string", "contentMediaType": "application/json"})),
        })
        .collect();
    json!({"oneOf": choices})
}

/// `Option<T>` is `{"type": [T, "null"]}`; a query parameter is absent instead.
fn drop_null(schema: &mut Value) {
    if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            schema["type"] = types[0].clone();
        }
    }
}

/// `MCP-Protocol-Version`: a session-era version, or 2026-07-28 for a stateless request.
fn version_param() -> Value {
    json!({"name": "MCP-Protocol-Version", "in": "header", "required": false,
           "schema": {"enum": protocol::Version::ALL.map(protocol::Version::as_str)}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves_and_every_kind_has_its_routes() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &piece[..piece.find('"').unwrap()];
            assert!(schemas.contains_key(name), "{name} is referenced but not defined");
        }
        for kind in Kind::ALL {
            let p = kind.plural();
            for (path, method) in [
                (format!("/{p}"), "get"),
                (format!("/{p}"), "post"),
                (format!("/{p}/{{id}}"), "get"),
                (format!("/{p}/{{id}}"), "delete"),
                (format!("/{p}/{{id}}/state"), "post"),
            ] {
                assert!(doc["paths"][&path][method].is_object(), "{method} {path}");
            }
        }
    }

    #[test]
    fn the_validators_limits_are_in_the_schemas() {
        let doc = document();
        let tool = &doc["components"]["schemas"]["NewTool"];
        assert_eq!(tool["required"], json!(["name"]), "{tool}");
        assert_eq!(tool["properties"]["name"]["maxLength"], 255);
        assert_eq!(tool["properties"]["integration_type"]["enum"], json!(["REST", "MCP"]));
        let list = &doc["paths"]["/tools"]["get"]["parameters"];
        let limit = list.as_array().unwrap().iter().find(|p| p["name"] == "limit").unwrap();
        assert_eq!(limit["schema"]["type"], "integer", "{limit}");
        assert_eq!(limit["schema"]["maximum"], 1000, "{limit}");
        let gateways = &doc["paths"]["/gateways"]["get"]["parameters"];
        assert!(
            !gateways.to_string().contains("gateway_id"),
            "only /tools filters by gateway"
        );
        let message = &doc["paths"]["/message"]["post"]["parameters"][0];
        assert_eq!(message["required"], true, "{message}");
    }
}
