//! The five entity kinds, their stored rows (serialized camelCase as docs/api.md shows them) and the
//! validated inputs that create them.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// An entity kind; one table, one URL segment, one JSON key each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Gateway,
    Tool,
    Server,
    Prompt,
    Resource,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Gateway, Kind::Tool, Kind::Server, Kind::Prompt, Kind::Resource];

    /// The URL segment and table name, e.g. `tools`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Gateway => "gateways",
            Kind::Tool => "tools",
            Kind::Server => "servers",
            Kind::Prompt => "prompts",
            Kind::Resource => "resources",
        }
    }

    /// The JSON key of a single entity in wrapped requests and toggle answers, e.g. `tool`.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Gateway => "gateway",
            Kind::Tool => "tool",
            Kind::Server => "server",
            Kind::Prompt => "prompt",
            Kind::Resource => "resource",
        }
    }

    /// The capitalized name used in messages, e.g. `Tool`.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Gateway => "Gateway",
            Kind::Tool => "Tool",
            Kind::Server => "Server",
            Kind::Prompt => "Prompt",
            Kind::Resource => "Resource",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Ids are UUIDs written as 32 lowercase hex characters.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// What `is_valid_id` accepts, for the API's document, with `ID_LENGTH` (Python's `$` also matches
/// before a final newline).
pub const ID_PATTERN: &str = "^[0-9a-f]{32}$";
pub const ID_LENGTH: usize = 32;

pub fn is_valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Timestamps are stored and served as RFC 3339 text, identical on both backends.
pub fn now() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

/// JSON stored as text is served as JSON, without re-parsing into a tree.
fn raw_json<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    let raw: &RawValue = serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
    raw.serialize(s)
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    #[schemars(length(equal = ID_LENGTH), pattern(ID_PATTERN))]
    pub id: String,
    pub name: String,
    pub url: String,
    pub transport: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub reachable: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    #[schemars(length(equal = ID_LENGTH), pattern(ID_PATTERN))]
    pub id: String,
    pub name: String,
    pub url: Option<String>,
    pub description: Option<String>,
    pub integration_type: String,
    pub request_type: String,
    #[serde(serialize_with = "raw_json")]
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub input_schema: String,
    pub gateway_id: Option<String>,
    pub enabled: bool,
    pub reachable: bool,
    pub created_at: String,
    pub updated_at: String,
    /// A federated tool's name on its upstream (what a forwarded call names).
    #[sqlx(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_name: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Server {
    #[schemars(length(equal = ID_LENGTH), pattern(ID_PATTERN))]
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
    #[sqlx(skip)]
    pub associated_tools: Vec<String>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Prompt {
    #[schemars(length(equal = ID_LENGTH), pattern(ID_PATTERN))]
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub template: String,
    #[serde(serialize_with = "raw_json")]
    #[schemars(with = "Vec<PromptArgument>")]
    pub arguments: String,
    pub gateway_id: Option<String>,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    #[schemars(length(equal = ID_LENGTH), pattern(ID_PATTERN))]
    pub id: String,
    pub uri: String,
    pub name: String,
    pub description: Option<String>,
    pub content: String,
    pub mime_type: Option<String>,
    pub gateway_id: Option<String>,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// Any one entity, serialized as itself.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Entity {
    Gateway(Gateway),
    Tool(Tool),
    Server(Server),
    Prompt(Prompt),
    Resource(Resource),
}

impl Entity {
    pub fn id(&self) -> &str {
        match self {
            Entity::Gateway(e) => &e.id,
            Entity::Tool(e) => &e.id,
            Entity::Server(e) => &e.id,
            Entity::Prompt(e) => &e.id,
            Entity::Resource(e) => &e.id,
        }
    }
}

/// A field of a create request that failed validation (→ 422).
#[derive(Debug, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidField {
    pub field: &'static str,
    pub problem: String,
}

fn invalid(field: &'static str, problem: impl Into<String>) -> InvalidField {
    InvalidField {
        field,
        problem: problem.into(),
    }
}

const MAX_NAME: usize = 255;
const MAX_TEXT: usize = 64 * 1024;
const MAX_URL: usize = 2048;
const MAX_ASSOCIATED: usize = 10_000;

// The checks below, as JSON Schema patterns for /openapi.json. Limits count characters, as JSON
// Schema's maxLength does; the white space is Rust's `char::is_whitespace`, spelled out, because
// `\s` means something else in each regex dialect a client may use.

/// `char::is_whitespace`, as a regex character class's contents.
macro_rules! white_space {
    () => {
        r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// Free text: anything but NUL (PostgreSQL's text cannot hold one).
pub const TEXT_PATTERN: &str = r"^[^\u0000]*$";
/// A name: free text with at least one character that is not white space (white space, then the first
/// other character, then anything but NUL: linear in a backtracking engine too).
pub const NAME_PATTERN: &str = concat!("^[", white_space!(), "]*[^\\u0000", white_space!(), "][^\\u0000]*$");
/// An http(s) URL.
pub const URL_PATTERN: &str = r"^https?://[^\u0000]*$";
pub const TRANSPORTS: &[&str] = &["SSE", "STREAMABLEHTTP"];
pub const INTEGRATION_TYPES: &[&str] = &["REST", "MCP"];
pub const REQUEST_TYPES: &[&str] = &[
    "GET",
    "POST",
    "PUT",
    "PATCH",
    "DELETE",
    "SSE",
    "STDIO",
    "STREAMABLEHTTP",
];

fn too_long(value: &str, max: usize) -> bool {
    // Bytes bound characters from above; count them only when it could matter.
    value.len() > max && value.chars().count() > max
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), InvalidField> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if too_long(value, max) {
        return Err(invalid(field, format!("longer than {max} characters")));
    }
    if value.contains('\0') {
        return Err(invalid(field, "contains a NUL character"));
    }
    Ok(())
}

fn check_optional(field: &'static str, value: Option<&str>) -> Result<(), InvalidField> {
    match value {
        Some(v) if too_long(v, MAX_TEXT) => Err(invalid(field, format!("longer than {MAX_TEXT} characters"))),
        Some(v) if v.contains('\0') => Err(invalid(field, "contains a NUL character")),
        _ => Ok(()),
    }
}

fn check_one_of(field: &'static str, value: &str, allowed: &[&str]) -> Result<(), InvalidField> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(invalid(field, format!("must be one of {}", allowed.join(", "))))
    }
}

fn check_gateway_ref(value: &Option<String>) -> Result<(), InvalidField> {
    match value {
        Some(id) if !is_valid_id(id) => Err(invalid("gateway_id", "not a 32-hex-character id")),
        _ => Ok(()),
    }
}

fn check_url(field: &'static str, url: &str) -> Result<(), InvalidField> {
    check_text(field, url, MAX_URL)?;
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(invalid(field, "must be an http:// or https:// URL"))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NewGateway {
    #[schemars(length(min = 1, max = MAX_NAME), pattern(NAME_PATTERN))]
    pub name: String,
    #[schemars(length(max = MAX_URL), pattern(URL_PATTERN))]
    pub url: String,
    #[serde(default = "default_transport")]
    #[schemars(extend("enum" = TRANSPORTS))]
    pub transport: String,
    #[schemars(length(max = MAX_TEXT), pattern(TEXT_PATTERN))]
    pub description: Option<String>,
}

fn default_transport() -> String {
    "SSE".to_owned()
}

impl NewGateway {
    pub fn validate(&self) -> Result<(), InvalidField> {
        check_text("name", &self.name, MAX_NAME)?;
        check_url("url", &self.url)?;
        check_one_of("transport", &self.transport, TRANSPORTS)?;
        check_optional("description", self.description.as_deref())
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NewTool {
    #[schemars(length(min = 1, max = MAX_NAME), pattern(NAME_PATTERN))]
    pub name: String,
    #[schemars(length(max = MAX_URL), pattern(URL_PATTERN))]
    pub url: Option<String>,
    #[schemars(length(max = MAX_TEXT), pattern(TEXT_PATTERN))]
    pub description: Option<String>,
    #[serde(default = "default_integration", alias = "integrationType")]
    #[schemars(extend("enum" = INTEGRATION_TYPES))]
    pub integration_type: String,
    #[serde(default = "default_request_type", alias = "requestType")]
    #[schemars(extend("enum" = REQUEST_TYPES))]
    pub request_type: String,
    #[serde(default = "default_schema", alias = "inputSchema")]
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub input_schema: serde_json::Value,
    #[serde(alias = "gatewayId")]
    #[schemars(length(equal = ID_LENGTH), pattern(ID_PATTERN))]
    pub gateway_id: Option<String>,
}

fn default_integration() -> String {
    "REST".to_owned()
}
fn default_request_type() -> String {
    "POST".to_owned()
}
fn default_schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "properties": {}})
}

impl NewTool {
    pub fn validate(&self) -> Result<(), InvalidField> {
        check_text("tool.name", &self.name, MAX_NAME)?;
        if let Some(url) = &self.url {
            check_url("tool.url", url)?;
        }
        check_optional("tool.description", self.description.as_deref())?;
        check_one_of("tool.integration_type", &self.integration_type, INTEGRATION_TYPES)?;
        check_one_of("tool.request_type", &self.request_type, REQUEST_TYPES)?;
        if !self.input_schema.is_object() {
            return Err(invalid("tool.input_schema", "must be a JSON object"));
        }
        check_gateway_ref(&self.gateway_id)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NewServer {
    #[schemars(length(min = 1, max = MAX_NAME), pattern(NAME_PATTERN))]
    pub name: String,
    #[schemars(length(max = MAX_TEXT), pattern(TEXT_PATTERN))]
    pub description: Option<String>,
    #[serde(default, alias = "associatedTools")]
    #[schemars(length(max = MAX_ASSOCIATED), inner(length(equal = ID_LENGTH), pattern(ID_PATTERN)))]
    pub associated_tools: Vec<String>,
}

impl NewServer {
    pub fn validate(&self) -> Result<(), InvalidField> {
        check_text("server.name", &self.name, MAX_NAME)?;
        check_optional("server.description", self.description.as_deref())?;
        if self.associated_tools.len() > MAX_ASSOCIATED {
            return Err(invalid(
                "server.associated_tools",
                format!("more than {MAX_ASSOCIATED} tools"),
            ));
        }
        match self.associated_tools.iter().find(|id| !is_valid_id(id)) {
            Some(_) => Err(invalid(
                "server.associated_tools",
                "holds an id that is not 32 hex characters",
            )),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct PromptArgument {
    #[schemars(length(min = 1, max = MAX_NAME), pattern(NAME_PATTERN))]
    pub name: String,
    #[serde(default)]
    #[schemars(length(max = MAX_TEXT), pattern(TEXT_PATTERN))]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NewPrompt {
    #[schemars(length(min = 1, max = MAX_NAME), pattern(NAME_PATTERN))]
    pub name: String,
    #[schemars(length(max = MAX_TEXT), pattern(TEXT_PATTERN))]
    pub description: Option<String>,
    #[schemars(length(min = 1, max = MAX_TEXT), pattern(NAME_PATTERN))]
    pub template: String,
    #[serde(default)]
    pub arguments: Vec<PromptArgument>,
    #[serde(alias = "gatewayId")]
    #[schemars(length(equal = ID_LENGTH), pattern(ID_PATTERN))]
    pub gateway_id: Option<String>,
}

impl NewPrompt {
    pub fn validate(&self) -> Result<(), InvalidField> {
        check_text("prompt.name", &self.name, MAX_NAME)?;
        check_optional("prompt.description", self.description.as_deref())?;
        check_text("prompt.template", &self.template, MAX_TEXT)?;
        for arg in &self.arguments {
            check_text("prompt.arguments.name", &arg.name, MAX_NAME)?;
            check_optional("prompt.arguments.description", arg.description.as_deref())?;
        }
        check_gateway_ref(&self.gateway_id)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NewResource {
    #[schemars(length(min = 1, max = MAX_URL), pattern(NAME_PATTERN))]
    pub uri: String,
    #[schemars(length(min = 1, max = MAX_NAME), pattern(NAME_PATTERN))]
    pub name: String,
    #[schemars(length(max = MAX_TEXT), pattern(TEXT_PATTERN))]
    pub description: Option<String>,
    #[serde(default)]
    #[schemars(length(max = MAX_TEXT), pattern(TEXT_PATTERN))]
    pub content: String,
    #[serde(alias = "mime_type", rename = "mimeType")]
    #[schemars(length(max = MAX_TEXT), pattern(TEXT_PATTERN))]
    pub mime_type: Option<String>,
    #[serde(alias = "gatewayId")]
    #[schemars(length(equal = ID_LENGTH), pattern(ID_PATTERN))]
    pub gateway_id: Option<String>,
}

impl NewResource {
    pub fn validate(&self) -> Result<(), InvalidField> {
        check_text("resource.uri", &self.uri, MAX_URL)?;
        check_text("resource.name", &self.name, MAX_NAME)?;
        check_optional("resource.description", self.description.as_deref())?;
        check_optional("resource.content", Some(&self.content))?;
        check_optional("resource.mimeType", self.mime_type.as_deref())?;
        check_gateway_ref(&self.gateway_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_lowercase_hex() {
        let id = new_id();
        assert!(is_valid_id(&id), "{id}");
        assert!(!is_valid_id(&id.to_uppercase()));
        assert!(!is_valid_id("1234"));
        assert!(!is_valid_id("' OR 1=1 --                     "));
    }

    #[test]
    fn stored_json_is_served_as_json() {
        let prompt = Prompt {
            id: new_id(),
            name: "p".into(),
            description: None,
            template: "t".into(),
            arguments: r#"[{"name":"x","required":true}]"#.into(),
            gateway_id: None,
            enabled: true,
            created_at: now(),
            updated_at: now(),
        };
        let v = serde_json::to_value(&prompt).unwrap();
        assert_eq!(v["arguments"][0]["name"], "x");
        assert_eq!(v["gatewayId"], serde_json::Value::Null);
        assert!(v.get("createdAt").is_some());
    }

    #[test]
    fn validation_names_the_field() {
        let tool = NewTool {
            name: "t".into(),
            url: None,
            description: None,
            integration_type: "SOAP".into(),
            request_type: "POST".into(),
            input_schema: default_schema(),
            gateway_id: None,
        };
        let err = tool.validate().unwrap_err();
        assert_eq!(err.field, "tool.integration_type");
    }
}
