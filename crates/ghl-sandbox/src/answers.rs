//! Error answers shaped as GHL's NestJS errors and the spec's common error schemas
//! (`BadRequestDTO`, `UnauthorizedDTO`, `UnprocessableDTO`), shared by the [`super::gate`] and
//! the [`super::handlers`]. Which error a request deserves is decided by them, not here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// What GHL answers, with a 400 and not a 404, for a contact id that does not exist (any
/// more), whichever route under `/contacts/{contactId}` names it.
pub const CONTACT_NOT_FOUND: &str = "Contact not found";

/// An error answer: status and GHL-style JSON body.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub Value);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

pub fn err_400(msg: &str) -> ApiError {
    ApiError(
        StatusCode::BAD_REQUEST,
        json!({"statusCode": 400, "message": msg}),
    )
}

pub fn err_401(msg: &str) -> ApiError {
    ApiError(
        StatusCode::UNAUTHORIZED,
        json!({"statusCode": 401, "message": msg, "error": "Unauthorized"}),
    )
}

pub fn err_403(msg: &str) -> ApiError {
    ApiError(
        StatusCode::FORBIDDEN,
        json!({"statusCode": 403, "message": msg, "error": "Forbidden"}),
    )
}

/// Only for routes the sandbox does not serve: GHL answers a missing record with a 400.
pub fn err_404(msg: &str) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        json!({"statusCode": 404, "message": msg, "error": "Not Found"}),
    )
}

pub fn err_422(msgs: Vec<String>) -> ApiError {
    ApiError(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"statusCode": 422, "message": msgs, "error": "Unprocessable Entity"}),
    )
}

/// `400 {"statusCode":400,"message":"Contact not found"}`.
pub fn contact_not_found() -> ApiError {
    err_400(CONTACT_NOT_FOUND)
}
