//! Beacon-API error responses: `{"code": …, "message": …}`, with the
//! refused items of a batch.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

/// A beacon-API error: answered with `{"code": …, "message": …}`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The request is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Some items of a batch were refused.
    #[error("{message}")]
    Refused {
        message: String,
        failures: Vec<Failure>,
    },
    /// The mock was set down.
    #[error("the beacon node mock is down")]
    Down,
    /// The mock cannot build what was asked.
    #[error("{0}")]
    Internal(String),
}

/// One refused item of a batch, as beacon nodes report it.
#[derive(Debug, Serialize)]
pub(crate) struct Failure {
    pub(crate) index: usize,
    pub(crate) message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) | ApiError::Refused { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Down => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut body = json!({"code": status.as_u16(), "message": self.to_string()});
        if let ApiError::Refused { failures, .. } = self {
            body["failures"] = json!(failures);
        }
        (status, Json(body)).into_response()
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;
