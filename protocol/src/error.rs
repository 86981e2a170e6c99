//! JSON-RPC error codes MCP uses, the HTTP status each is sent under, and a server's refusal of a
//! request before any method ran.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// What the reference SDKs answer a transport refusal with (a missing session header, a bad `Accept`).
pub const TRANSPORT_ERROR: i64 = -32000;
pub const SESSION_NOT_FOUND: i64 = -32001;
/// 2026-07-28: a routing header disagrees with the body it came with.
pub const HEADER_MISMATCH: i64 = -32020;
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
/// 2026-07-28: the envelope's version is not spoken here; `data` lists the supported ones.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// The HTTP status a stateless-era answer carrying this error code is sent under (the transport
/// page's table); an error the table does not name travels under 200, as any result does.
pub fn http_status(code: i64) -> StatusCode {
    match code {
        PARSE_ERROR
        | INVALID_REQUEST
        | INVALID_PARAMS
        | HEADER_MISMATCH
        | MISSING_REQUIRED_CLIENT_CAPABILITY
        | UNSUPPORTED_PROTOCOL_VERSION => StatusCode::BAD_REQUEST,
        METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

/// A request refused before any method ran: a JSON-RPC error under an HTTP status, with the
/// request's id when it had one (`null` otherwise, as the reference servers send it).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub status: StatusCode,
    pub id: Value,
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl Rejection {
    /// A refusal by its JSON-RPC code, under the status the code maps to.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Rejection {
            status: http_status(code),
            id: Value::Null,
            code,
            message: message.into(),
            data: None,
        }
    }

    /// A transport's refusal (wrong `Accept`, missing session, unknown server) under its own status.
    pub fn transport(status: StatusCode, message: impl Into<String>) -> Self {
        Rejection {
            status,
            ..Rejection::new(TRANSPORT_ERROR, message)
        }
    }

    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    #[must_use]
    pub fn for_request(mut self, id: Option<&Value>) -> Self {
        self.id = id.cloned().unwrap_or(Value::Null);
        self
    }

    #[must_use]
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        json!({"jsonrpc": "2.0", "id": self.id, "error": error})
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).expect("a JSON value serializes");
        (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response()
    }
}
