//! `/{kind}` endpoints: list, get, create, delete, and the state toggle.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::extract::{JsonBody, QueryParams};
use crate::model::{
    Entity, ID_LENGTH, ID_PATTERN, Kind, NewGateway, NewPrompt, NewResource, NewServer, NewTool, is_valid_id,
};
use crate::session::Change;
use crate::store::{ListQuery, ListShape};

const MAX_PAGE: u32 = 1000;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListParams {
    /// Disabled entities too.
    #[serde(default)]
    include_inactive: bool,
    #[schemars(range(min = 1, max = MAX_PAGE))]
    limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    #[schemars(length(equal = ID_LENGTH), pattern(ID_PATTERN))]
    cursor: Option<String>,
    /// Answer `{"<kind>": [...], "nextCursor": …}` instead of a bare array.
    #[serde(default)]
    include_pagination: bool,
    /// Only this gateway's tools (`/tools` only).
    #[schemars(length(equal = ID_LENGTH), pattern(ID_PATTERN))]
    gateway_id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct StateParams {
    /// `false` deactivates; absent means `true`.
    activate: Option<bool>,
}

/// What a delete or a toggle says it did.
#[derive(Serialize, JsonSchema)]
pub struct Done {
    #[schemars(extend("const" = "success"))]
    pub status: &'static str,
    pub message: String,
}

fn checked_id(kind: Kind, id: &str) -> Result<(), ApiError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("{kind} not found: {id}")))
    }
}

pub async fn list(state: AppState, kind: Kind, p: ListParams) -> Result<Response, ApiError> {
    if let Some(limit) = p.limit
        && !(1..=MAX_PAGE).contains(&limit)
    {
        return Err(ApiError::unprocessable(format!(
            "limit: must be between 1 and {MAX_PAGE}"
        )));
    }
    if p.cursor.as_deref().is_some_and(|c| !is_valid_id(c)) {
        return Err(ApiError::unprocessable(
            "cursor: not a cursor returned by this endpoint",
        ));
    }
    if p.gateway_id.as_deref().is_some_and(|g| !is_valid_id(g)) {
        return Err(ApiError::unprocessable("gateway_id: not a 32-hex-character id"));
    }
    let query = ListQuery {
        include_inactive: p.include_inactive,
        limit: p.limit,
        cursor: p.cursor,
        gateway_id: if kind == Kind::Tool { p.gateway_id } else { None },
    };
    let shape = if p.include_pagination {
        ListShape::Paginated
    } else {
        ListShape::Items
    };
    Ok(json_body(state.store.list_json(kind, query, shape).await?))
}

pub async fn get_one(state: AppState, kind: Kind, id: String) -> Result<Response, ApiError> {
    checked_id(kind, &id)?;
    Ok(json_body(state.store.get_json(kind, &id).await?))
}

/// A JSON text made (or kept) by the store, sent as it is.
fn json_body(body: bytes::Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Tell the listen streams what a write to `kind` changed: a gateway's tools, a server's narrowed
/// list and tools themselves are the tool list.
fn announce(state: &AppState, kind: Kind) {
    let change = match kind {
        Kind::Tool | Kind::Gateway | Kind::Server => Change::Tools,
        Kind::Prompt => Change::Prompts,
        Kind::Resource => Change::Resources,
    };
    state.sessions.changed(change);
}

pub async fn delete(state: AppState, kind: Kind, id: String) -> Result<Json<Done>, ApiError> {
    checked_id(kind, &id)?;
    state.store.delete(kind, &id).await?;
    announce(&state, kind);
    Ok(Json(Done {
        status: "success",
        message: format!("{kind} {id} deleted"),
    }))
}

pub async fn set_state(state: AppState, kind: Kind, id: String, p: StateParams) -> Result<Response, ApiError> {
    checked_id(kind, &id)?;
    let activate = p.activate.unwrap_or(true);
    let entity = state.store.set_state(kind, &id, activate).await?;
    announce(&state, kind);
    if let Entity::Server(server) = entity {
        // Servers answer the bare server, as the original gateway does.
        return Ok(Json(server).into_response());
    }
    let verb = if activate { "activated" } else { "deactivated" };
    let mut body = serde_json::Map::new();
    body.insert("status".into(), "success".into());
    body.insert("message".into(), format!("{kind} {id} {verb}").into());
    body.insert(
        kind.key().into(),
        serde_json::to_value(entity).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
    );
    Ok(Json(body).into_response())
}

#[derive(Deserialize, JsonSchema)]
pub struct ToolBody {
    tool: NewTool,
}
#[derive(Deserialize, JsonSchema)]
pub struct ServerBody {
    server: NewServer,
}
#[derive(Deserialize, JsonSchema)]
pub struct PromptBody {
    prompt: NewPrompt,
}
#[derive(Deserialize, JsonSchema)]
pub struct ResourceBody {
    resource: NewResource,
}

pub async fn create_gateway(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewGateway>,
) -> Result<Json<Entity>, ApiError> {
    let gateway = state.store.create_gateway(&body).await?;
    announce(&state, Kind::Gateway);
    Ok(Json(Entity::Gateway(gateway)))
}

pub async fn create_tool(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ToolBody>,
) -> Result<Json<Entity>, ApiError> {
    let tool = state.store.create_tool(&body.tool).await?;
    announce(&state, Kind::Tool);
    Ok(Json(Entity::Tool(tool)))
}

pub async fn create_server(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ServerBody>,
) -> Result<(StatusCode, Json<Entity>), ApiError> {
    let server = state.store.create_server(&body.server).await?;
    announce(&state, Kind::Server);
    Ok((StatusCode::CREATED, Json(Entity::Server(server))))
}

pub async fn create_prompt(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<PromptBody>,
) -> Result<Json<Entity>, ApiError> {
    let prompt = state.store.create_prompt(&body.prompt).await?;
    announce(&state, Kind::Prompt);
    Ok(Json(Entity::Prompt(prompt)))
}

pub async fn create_resource(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ResourceBody>,
) -> Result<Json<Entity>, ApiError> {
    let resource = state.store.create_resource(&body.resource).await?;
    announce(&state, Kind::Resource);
    Ok(Json(Entity::Resource(resource)))
}

/// The kind-specific routes, registered once per kind by the router.
pub fn routes(kind: Kind) -> axum::Router<AppState> {
    use axum::routing::{get, post};
    let base = format!("/{}", kind.plural());
    let create = match kind {
        Kind::Gateway => post(create_gateway),
        Kind::Tool => post(create_tool),
        Kind::Server => post(create_server),
        Kind::Prompt => post(create_prompt),
        Kind::Resource => post(create_resource),
    };
    axum::Router::new()
        .route(
            &base,
            get(move |State(s): State<AppState>, QueryParams(p): QueryParams<ListParams>| list(s, kind, p))
                .merge(create),
        )
        .route(
            &format!("{base}/{{id}}"),
            get(move |State(s): State<AppState>, Path(id): Path<String>| get_one(s, kind, id))
                .delete(move |State(s): State<AppState>, Path(id): Path<String>| delete(s, kind, id)),
        )
        .route(
            &format!("{base}/{{id}}/state"),
            post(
                move |State(s): State<AppState>, Path(id): Path<String>, QueryParams(p): QueryParams<StateParams>| {
                    set_state(s, kind, id, p)
                },
            ),
        )
}
