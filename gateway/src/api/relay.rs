//! `/gateways/{id}/mcp`: a federated MCP server through the gateway, whole. Every request on it
//! (`POST`, `GET`, `DELETE`, either era) goes to the federated server's Streamable HTTP endpoint with
//! MCP's own headers, and its answer comes back as it is sent — a stream included, with whatever the
//! server tells or asks the client before its answer (log messages, progress, sampling, elicitation),
//! and the client's answers go back the same way. The tools, resources and prompts keep the server's
//! own names (`/mcp` lists federated tools as `<gateway>-<tool>`), its sessions are the server's, and
//! the gateway adds what it is there for: the token check, the Origin guard, its metrics, and the
//! gateway's enabled switch.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::forward::{Hop, relay};
use super::{ApiError, AppState};
use crate::model::{Entity, Kind};
use crate::upstream::Transport;

pub async fn to_gateway(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let gateway = match state.store.get(Kind::Gateway, &id).await {
        Ok(Entity::Gateway(g)) => g,
        Ok(_) => unreachable!("get(Gateway) returns a gateway"),
        Err(e) => return ApiError::from(e).into_response(),
    };
    if !gateway.enabled {
        return ApiError::new(StatusCode::NOT_FOUND, format!("Gateway is disabled: {}", gateway.name)).into_response();
    }
    if Transport::parse(&gateway.transport) != Transport::StreamableHttp {
        return ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "the relay speaks Streamable HTTP; gateway {} is {}",
                gateway.name, gateway.transport
            ),
        )
        .into_response();
    }
    match relay(state.rpc.upstream.http(), gateway.url.clone(), req, Hop::Upstream).await {
        Ok(response) => response,
        Err(e) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("gateway {} at {} could not be reached: {e}", gateway.name, gateway.url),
        )
        .into_response(),
    }
}
