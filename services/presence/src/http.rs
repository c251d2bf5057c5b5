//! The presence HTTP API.
//!
//! - `GET /v1/rooms/{room}/members` → `{"room", "members": [{"id","name","status"?}]}` (sorted by id)
//! - `GET /v1/users/{id}` → `{"id", "online", "sessions", "rooms", "last_seen"}`
//! - `GET /healthz`, `GET /readyz`, `GET /metrics`

use actix_web::{web, HttpResponse};
use fred::interfaces::{HashesInterface, KeysInterface};

use chat_shared::http::ApiError;
use chat_shared::keys;
use chat_shared::protocol::{RoomName, UserId};
use chat_shared::scripts::members_with_status;
use chat_shared::service;
use chat_shared::ErrorCode;

use crate::State;

fn unavailable(err: fred::error::Error) -> ApiError {
    tracing::warn!(cause = %err, "redis call failed");
    ApiError::new(ErrorCode::Unavailable, "redis is unavailable")
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/rooms/{room}/members", web::get().to(members))
        .route("/v1/users/{id}", web::get().to(user))
        .route("/healthz", web::get().to(service::healthz))
        .route(
            "/readyz",
            web::get().to(|state: web::Data<State>| async move {
                service::readiness(crate::redis_ready(&state.pool), "redis is unreachable")
            }),
        )
        .route(
            "/metrics",
            web::get().to(|state: web::Data<State>| async move {
                state.metrics.redis_up.set(i64::from(crate::redis_ready(&state.pool)));
                service::metrics(&state.metrics.registry)
            }),
        );
}

async fn members(state: web::Data<State>, room: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let room = RoomName::parse(&room).map_err(|err| ApiError::new(ErrorCode::BadRequest, err.0))?;
    let members = members_with_status(&state.pool, &room).await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "room": room, "members": members })))
}

async fn user(state: web::Data<State>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = UserId::parse(&id).map_err(|err| ApiError::new(ErrorCode::BadRequest, err.0))?;
    let sessions: u64 = state.pool.hlen(keys::user_connections(&id)).await.map_err(unavailable)?;
    let mut rooms: Vec<String> = state.pool.hkeys(keys::user_rooms(&id)).await.map_err(unavailable)?;
    rooms.sort();
    let last_seen: Option<u64> = state.pool.get(keys::user_last_seen(&id)).await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "id": id,
        "online": sessions > 0,
        "sessions": sessions,
        "rooms": rooms,
        "last_seen": last_seen,
    })))
}
