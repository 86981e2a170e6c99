//! Extractors whose rejections are JSON `{"detail": …}` with the right status: malformed JSON → 400,
//! well-formed but wrong shape → 422, too large → 413, too slow to arrive → 408, bad query
//! parameters → 422.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// What a request body must keep to (a request extension; `max_bytes` is also `DefaultBodyLimit`'s):
/// its size, and how long it may take to arrive once a handler reads it, so a body trickled a byte at
/// a time holds its connection no longer than a trickled head does.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit {
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// The raw request body, within the body limit (413 with a JSON detail beyond it).
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().copied();
        let read = Bytes::from_request(req, state);
        let read = match limit {
            Some(limit) => tokio::time::timeout(limit.timeout, read).await.map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "The request body did not arrive within {} (BODY_READ_TIMEOUT)",
                        humantime::format_duration(limit.timeout)
                    ),
                )
            })?,
            None => read.await,
        };
        read.map(RawBody)
            .map_err(|rejection| match (rejection.status(), limit) {
                (StatusCode::PAYLOAD_TOO_LARGE, Some(BodyLimit { max_bytes: max, .. })) => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("Request body is larger than the limit of {max} bytes (MAX_BODY_BYTES)"),
                ),
                (status, _) => ApiError::new(status, rejection.body_text()),
            })
    }
}

/// A JSON request body. Content-Type is not insisted on: the body is what it is.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::unprocessable(format!("Invalid request body: {e}")),
        _ => ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            format!("Malformed JSON in request body: {e}"),
        ),
    })
}

/// Query parameters; a value of the wrong type is a 422 that names it.
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| QueryParams(q))
            .map_err(|rejection| ApiError::unprocessable(rejection.body_text()))
    }
}

/// The subject of the request's token (`require_auth` put it there).
impl<S: Send + Sync> FromRequestParts<S> for crate::auth::Subject {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<crate::auth::Subject>()
            .cloned()
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "Authorization token required"))
    }
}
