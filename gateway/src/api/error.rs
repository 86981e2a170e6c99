//! Every error the HTTP surface answers, as `{"detail": …}` with its status. Store errors are mapped
//! to statuses here and nowhere else; a lock conflict also marks its response so the metrics layer
//! counts it.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

use crate::auth::AuthError;
use crate::store::{LockConflict, StoreError};

/// The body of every error the API answers.
#[derive(Serialize, JsonSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person to read.
    pub detail: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    conflict: Option<LockConflict>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            conflict: None,
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::LockConflict(conflict) => ApiError {
                status: StatusCode::CONFLICT,
                detail: conflict.to_string(),
                conflict: Some(conflict),
            },
            e @ (StoreError::NotFound { .. } | StoreError::MissingReference { .. }) => Self::not_found(e.to_string()),
            e @ StoreError::Duplicate { .. } => Self::new(StatusCode::CONFLICT, e.to_string()),
            StoreError::Invalid(field) => Self::unprocessable(field.to_string()),
            StoreError::Unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "Database unavailable")
            }
            StoreError::StatementTimeout => Self::new(StatusCode::SERVICE_UNAVAILABLE, "Database statement timed out"),
            StoreError::Database(e) => {
                tracing::error!(error = %e, "database error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal database error")
            }
            e @ StoreError::Upstream { .. } => {
                let status = match &e {
                    StoreError::Upstream {
                        source: crate::upstream::UpstreamError::TimedOut(_),
                        ..
                    } => StatusCode::GATEWAY_TIMEOUT,
                    _ => StatusCode::BAD_GATEWAY,
                };
                Self::new(status, e.to_string())
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { detail: self.detail })).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("static header"),
            );
        }
        if let Some(conflict) = self.conflict {
            response.extensions_mut().insert(conflict);
        }
        response
    }
}
