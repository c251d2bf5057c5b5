//! The presence HTTP API.
//!
//! - `GET /v1/rooms/{room}/members` → `{"room", "members": [{"id","name"}]}` (sorted by id)
//! - `GET /v1/users/{id}` → `{"id", "online", "sessions", "rooms", "last_seen"}`
//! - `GET /healthz`, `GET /readyz`, `GET /metrics`

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse, ResponseError};
use fred::interfaces::{HashesInterface, KeysInterface};

use chat_shared::error::HttpErrorBody;
use chat_shared::keys;
use chat_shared::protocol::{DisplayName, RoomName, UserId, UserRef};
use chat_shared::telemetry::{encode_metrics, METRICS_CONTENT_TYPE};
use chat_shared::ErrorCode;

use crate::State;

/// An HTTP error with the JSON body every service uses.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into() }
    }

    fn unavailable(err: fred::error::Error) -> ApiError {
        tracing::warn!(cause = %err, "redis call failed");
        ApiError::new(ErrorCode::Unavailable, "redis is unavailable")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
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

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/rooms/{room}/members", web::get().to(members))
        .route("/v1/users/{id}", web::get().to(user))
        .route("/healthz", web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, format!("no route for {} {}", req.method(), req.path())))
}

async fn readyz(state: web::Data<State>) -> Result<HttpResponse, ApiError> {
    if crate::redis_ready(&state.pool) {
        Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
    } else {
        Err(ApiError::new(ErrorCode::Unavailable, "redis is unreachable"))
    }
}

async fn metrics(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().content_type(METRICS_CONTENT_TYPE).body(encode_metrics(&state.metrics.registry))
}

async fn members(state: web::Data<State>, room: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let room = RoomName::parse(&room).map_err(|err| ApiError::new(ErrorCode::BadRequest, err.0))?;
    let names: HashMap<String, String> =
        state.pool.hgetall(keys::room_presence_names(&room)).await.map_err(ApiError::unavailable)?;
    let mut members: Vec<UserRef> = names
        .into_iter()
        .filter_map(|(id, name)| {
            let id = UserId::parse(&id).ok()?;
            let name = DisplayName::parse(&name).unwrap_or_else(|_| DisplayName::from_user_id(&id));
            Some(UserRef { id, name })
        })
        .collect();
    members.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(HttpResponse::Ok().json(serde_json::json!({ "room": room, "members": members })))
}

async fn user(state: web::Data<State>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = UserId::parse(&id).map_err(|err| ApiError::new(ErrorCode::BadRequest, err.0))?;
    let sessions: u64 = state.pool.hlen(keys::user_connections(&id)).await.map_err(ApiError::unavailable)?;
    let mut rooms: Vec<String> = state.pool.hkeys(keys::user_rooms(&id)).await.map_err(ApiError::unavailable)?;
    rooms.sort();
    let last_seen: Option<u64> = state.pool.get(keys::user_last_seen(&id)).await.map_err(ApiError::unavailable)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "id": id,
        "online": sessions > 0,
        "sessions": sessions,
        "rooms": rooms,
        "last_seen": last_seen,
    })))
}
