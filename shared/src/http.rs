//! The HTTP error every service answers with.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};

use crate::error::{ErrorCode, HttpErrorBody};

/// An HTTP error with the JSON body `{"error":{"code","message"}}`; its
/// status comes from the error table.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into() }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(HttpErrorBody::new(self.code, &self.message))
    }
}
