//! A federated MCP server through the gateway, whole: `/gateways/{id}/mcp`, and `/servers/{id}/mcp` of
//! a virtual server whose every tool comes from one such server (it *fronts* that server). Every
//! request (`POST`, `GET`, `DELETE`, either era) goes to the federated server's Streamable HTTP
//! endpoint with MCP's own headers, and its answer comes back as it is sent — a stream included, with
//! whatever the server tells or asks the client before its answer (log messages, progress, sampling,
//! elicitation), and the client's answers go back the same way. The tools, resources and prompts keep
//! the server's own names (`/mcp` lists federated tools as `<gateway>-<tool>`), its sessions are the
//! server's, and the gateway adds what it is there for: the token check, the Origin guard, its
//! metrics, the gateway's enabled switch and, on a virtual server, its choice of tools: `tools/list`
//! is narrowed to them and a call of any other is refused.

use std::ops::ControlFlow;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::forward::{Hop, collect, relay, relay_back, send};
use super::{ApiError, AppState};
use crate::model::{Entity, Kind, is_valid_id};
use crate::store::FrontedServer;
use crate::upstream::Transport;

pub async fn to_gateway(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let gateway = match state.store.get(Kind::Gateway, &id).await {
        Ok(Entity::Gateway(g)) => g,
        Ok(_) => unreachable!("get(Gateway) returns a gateway"),
        Err(e) => return ApiError::from(e).into_response(),
    };
    if !gateway.enabled {
        return disabled(&gateway.name);
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
    if let Err(e) = state.rpc.upstream.check(&gateway.url) {
        return refused(&gateway.name, &e);
    }
    let relayed = relay(state.rpc.upstream.http(), gateway.url.clone(), req, Hop::Upstream).await;
    relayed.unwrap_or_else(|e| unreachable_upstream(&gateway.name, &gateway.url, &e))
}

/// In front of `/servers/{id}/mcp`: a server that fronts a federated server is relayed to it; any
/// other is the gateway's own to answer.
pub async fn front(State(state): State<AppState>, Path(id): Path<String>, req: Request, next: Next) -> Response {
    if !is_valid_id(&id) {
        return next.run(req).await;
    }
    let front = match state.store.fronted_server(&id).await {
        Ok(Some(front)) => front,
        Ok(None) => return next.run(req).await,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if !front.enabled {
        return disabled(&front.gateway_name);
    }
    if let Err(e) = state.rpc.upstream.check(&front.url) {
        return refused(&front.gateway_name, &e);
    }
    to_front(&state, Arc::clone(&front), req)
        .await
        .unwrap_or_else(|e| unreachable_upstream(&front.gateway_name, &front.url, &e))
}

async fn to_front(state: &AppState, front: Arc<FrontedServer>, req: Request) -> anyhow::Result<Response> {
    let (parts, body, streaming) = collect(req).await?;
    let mut narrowing = None;
    if parts.method == Method::POST
        && let Ok(message) = serde_json::from_slice::<Value>(&body)
    {
        if message.is_array() {
            return Ok(ApiError::new(
                StatusCode::BAD_REQUEST,
                "a batch is not relayed to a virtual server: send its requests one by one",
            )
            .into_response());
        }
        match message["method"].as_str() {
            Some("tools/call") => {
                let name = message["params"]["name"].as_str().unwrap_or_default();
                if !front.tools.contains(name) {
                    let failure = crate::rpc::failure(
                        &message["id"],
                        crate::rpc::INVALID_PARAMS,
                        &format!("Unknown tool: {name}"),
                    );
                    return Ok(([(header::CONTENT_TYPE, "application/json")], failure).into_response());
                }
            }
            Some("tools/list") => {
                let mut n = Narrowing::new(Arc::clone(&front), state.rpc.upstream.max_bytes());
                n.id = message["id"].clone();
                narrowing = Some(n);
            }
            _ => {}
        }
    }
    let upstream = send(
        state.rpc.upstream.http(),
        front.url.clone(),
        &parts,
        body,
        Hop::Upstream,
    )
    .await?;
    match narrowing {
        Some(mut narrowing) => {
            narrowing.json = upstream
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            relay_back(upstream, streaming, move |chunk| narrowing.chunk(chunk))
        }
        None => relay_back(upstream, streaming, |chunk| {
            ControlFlow::Continue(chunk.unwrap_or_default())
        }),
    }
}

fn disabled(gateway: &str) -> Response {
    ApiError::new(StatusCode::NOT_FOUND, format!("Gateway is disabled: {gateway}")).into_response()
}

fn refused(gateway: &str, e: &crate::upstream::UpstreamError) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, format!("gateway {gateway}: {e}")).into_response()
}

fn unreachable_upstream(name: &str, url: &str, e: &anyhow::Error) -> Response {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        format!("gateway {name} at {url} could not be reached: {e}"),
    )
    .into_response()
}

/// A `tools/list` answer on its way to a virtual server's client, narrowed to the server's tools: a
/// JSON body once it is whole, an event stream event by event. What it holds is bounded by
/// `UPSTREAM_MAX_BYTES`: a longer answer (or event) ends the relay with a JSON-RPC error instead.
struct Narrowing {
    front: Arc<FrontedServer>,
    /// The request's id, for the error that ends an answer past the cap.
    id: Value,
    json: bool,
    pending: Vec<u8>,
    /// How much of `pending` holds no event's end (scanned already).
    scanned: usize,
    max: usize,
}

impl Narrowing {
    fn new(front: Arc<FrontedServer>, max: usize) -> Narrowing {
        Narrowing {
            front,
            id: Value::Null,
            json: false,
            pending: Vec::new(),
            scanned: 0,
            max,
        }
    }

    fn chunk(&mut self, chunk: Option<Bytes>) -> ControlFlow<Bytes, Bytes> {
        let ended = chunk.is_none();
        if let Some(chunk) = chunk {
            self.pending.extend_from_slice(&chunk);
        }
        if self.pending.len() > self.max {
            // What is held is dropped, the relay ends, and the client is told why.
            self.pending = Vec::new();
            let message = format!(
                "the server's tools/list is larger than {} bytes (UPSTREAM_MAX_BYTES)",
                self.max
            );
            let failure = crate::rpc::failure(&self.id, crate::rpc::UPSTREAM_ERROR, &message);
            return ControlFlow::Break(if self.json {
                Bytes::from(failure)
            } else {
                crate::session::frame::event("message", &failure)
            });
        }
        if self.json {
            return ControlFlow::Continue(if ended {
                let whole = std::mem::take(&mut self.pending);
                Bytes::from(self.narrowed(&whole))
            } else {
                Bytes::new()
            });
        }
        let mut out = Vec::new();
        // An event's end may straddle the chunks: look again from just before where the last look ended.
        while let Some(end) = event_end(&self.pending[self.scanned.saturating_sub(3)..]) {
            let end = end + self.scanned.saturating_sub(3);
            let event: Vec<u8> = self.pending.drain(..end).collect();
            self.scanned = 0;
            out.extend_from_slice(&self.narrowed_event(&event));
        }
        self.scanned = self.pending.len();
        if ended {
            out.append(&mut self.pending);
        }
        ControlFlow::Continue(Bytes::from(out))
    }

    /// A message with the server's tools left in, or the message as it came if it lists none.
    fn narrowed(&self, message: &[u8]) -> Vec<u8> {
        let Ok(mut value) = serde_json::from_slice::<Value>(message) else {
            return message.to_vec();
        };
        let Some(tools) = value.pointer_mut("/result/tools").and_then(Value::as_array_mut) else {
            return message.to_vec();
        };
        tools.retain(|tool| {
            tool["name"]
                .as_str()
                .is_some_and(|name| self.front.tools.contains(name))
        });
        serde_json::to_vec(&value).unwrap_or_else(|_| message.to_vec())
    }

    /// One event, its data narrowed: the data lines become one, the other lines stay as they were.
    fn narrowed_event(&self, event: &[u8]) -> Vec<u8> {
        let Ok(text) = std::str::from_utf8(event) else {
            return event.to_vec();
        };
        let data: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if data.is_empty() {
            return event.to_vec();
        }
        let narrowed = self.narrowed(data.join("\n").as_bytes());
        let mut out = Vec::with_capacity(event.len());
        let mut written = false;
        for line in text.lines().filter(|line| !line.is_empty()) {
            if !line.starts_with("data:") {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            } else if !written {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&narrowed);
                out.push(b'\n');
                written = true;
            }
        }
        out.push(b'\n');
        out
    }
}

/// Where the first whole event in `buffer` ends (after its blank line), if one is whole.
fn event_end(buffer: &[u8]) -> Option<usize> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn front(tools: &[&str]) -> Arc<FrontedServer> {
        Arc::new(FrontedServer {
            gateway_id: "g".into(),
            gateway_name: "g".into(),
            url: "http://127.0.0.1:1/mcp".into(),
            enabled: true,
            tools: tools.iter().map(|t| (*t).to_owned()).collect(),
        })
    }

    /// What a chunk let through, on a relay that goes on.
    fn passed(flow: ControlFlow<Bytes, Bytes>) -> Bytes {
        match flow {
            ControlFlow::Continue(bytes) => bytes,
            ControlFlow::Break(_) => panic!("the relay ended"),
        }
    }

    const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"},{"name":"b"},{"name":"c"}]}}"#;

    fn names(message: &[u8]) -> Vec<String> {
        let value: Value = serde_json::from_slice(message).unwrap();
        value["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_list_past_the_cap_is_dropped_for_an_error() {
        let mut n = Narrowing::new(front(&["a"]), 64);
        n.json = true;
        n.id = json!(9);
        let ControlFlow::Break(said) = n.chunk(Some(Bytes::from(LIST))) else {
            panic!("the relay goes on past the cap");
        };
        let error: Value = serde_json::from_slice(&said).unwrap();
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("UPSTREAM_MAX_BYTES"),
            "{error}"
        );
        assert_eq!(error["id"], 9, "the client can match it to its request");
        assert!(n.pending.capacity() == 0, "nothing kept");
    }

    #[test]
    fn a_json_list_is_narrowed_once_whole() {
        let mut n = Narrowing::new(front(&["a", "c"]), 1 << 20);
        n.json = true;
        let (head, tail) = LIST.split_at(30);
        assert!(passed(n.chunk(Some(Bytes::from(head)))).is_empty());
        assert!(passed(n.chunk(Some(Bytes::from(tail)))).is_empty());
        assert_eq!(names(&passed(n.chunk(None))), ["a", "c"]);
    }

    #[test]
    fn a_streamed_list_is_narrowed_event_by_event_and_the_rest_passes() {
        let mut n = Narrowing::new(front(&["b"]), 1 << 20);
        let stream = format!(
            ": keep-alive\r\n\r\nid: 7\r\nevent: message\r\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}}\r\n\r\nid: 8\r\nevent: message\r\ndata: {LIST}\r\n\r\n"
        );
        let mut out = Vec::new();
        for piece in stream.as_bytes().chunks(11) {
            out.extend_from_slice(&passed(n.chunk(Some(Bytes::copy_from_slice(piece)))));
        }
        out.extend_from_slice(&passed(n.chunk(None)));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(": keep-alive\r\n\r\n"), "{text}");
        assert!(text.contains("notifications/message"), "{text}");
        let last = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .next_back()
            .unwrap();
        assert_eq!(names(last.as_bytes()), ["b"]);
        assert!(text.contains("id: 8\nevent: message\ndata: "), "{text}");
    }
}
