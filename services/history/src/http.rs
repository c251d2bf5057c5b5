//! The history HTTP API (see `history_store::api` for the query and reply shapes).
//!
//! - `GET /v1/rooms/{room}/messages` →
//!   `{"room", "seq", "epoch", "messages": [message frames, oldest first]}`
//! - `GET /v1/users/{id}/conversations/{other}/messages` →
//!   `{"users": [id, other], "seq", "messages": [dm frames, oldest first]}`
//! - `GET /healthz`, `GET /readyz`, `GET /metrics`
//!
//! `seq` is the latest seq of the room or conversation (0 when it has no
//! message); `epoch` names the room's history and changes when it was lost or
//! expired. Bad input gets 400 with `{"error": {"code", "message"}}`; Redis
//! unreachable gets 503.

use std::collections::HashMap;
use std::time::Instant;

use actix_web::{web, HttpResponse};
use fred::interfaces::ClientLike;

use chat_shared::http::ApiError;
use chat_shared::protocol::{RoomName, UserId};
use chat_shared::service;
use chat_shared::{BackendResult, ErrorCode};
use history_store::api::{parse_window, ConversationReply, RoomReply};
use history_store::{HistoryStore, Page};

use crate::State;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/rooms/{room}/messages", web::get().to(room_messages))
        .route("/v1/users/{id}/conversations/{other}/messages", web::get().to(conversation_messages))
        .route("/healthz", web::get().to(service::healthz))
        .route(
            "/readyz",
            web::get().to(|state: web::Data<State>| async move {
                service::readiness(state.pool.is_connected(), "redis is unreachable")
            }),
        )
        .route(
            "/metrics",
            web::get().to(|state: web::Data<State>| async move {
                state.metrics.redis_up.set(i64::from(state.pool.is_connected()));
                service::metrics(&state.metrics.registry)
            }),
        );
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message)
}

/// Counts a read and turns a store failure into its HTTP error (503 for an
/// unreachable Redis, 500 for data it cannot read).
fn record(state: &State, kind: &str, started: Instant, result: BackendResult<Page>) -> Result<Page, ApiError> {
    state.metrics.read_seconds.observe(started.elapsed().as_secs_f64());
    match result {
        Ok(page) => {
            state.metrics.replays.with_label_values(&[kind]).inc();
            state.metrics.messages_replayed.inc_by(page.messages.len() as u64);
            Ok(page)
        }
        Err(err) => {
            state.metrics.read_errors.inc();
            let code = err.code();
            let message = match code {
                ErrorCode::Unavailable => "redis is unavailable",
                _ => "history could not be read (logged)",
            };
            if code == ErrorCode::Unavailable {
                tracing::warn!(cause = %err, "history read failed");
            } else {
                tracing::error!(cause = %err, message, "history read failed");
            }
            Err(ApiError::new(code, message))
        }
    }
}

async fn room_messages(
    state: web::Data<State>,
    room: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let room = RoomName::parse(&room).map_err(|err| bad_request(err.0))?;
    let window = parse_window(&query, state.size).map_err(|err| bad_request(err.0))?;
    let page = record(&state, "room", started, state.store.read_room(&room, window).await)?;
    Ok(HttpResponse::Ok().json(RoomReply { room: &room, page: &page }))
}

async fn conversation_messages(
    state: web::Data<State>,
    users: web::Path<(String, String)>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let (id, other) = users.into_inner();
    let id = UserId::parse(&id).map_err(|err| bad_request(err.0))?;
    let other = UserId::parse(&other).map_err(|err| bad_request(err.0))?;
    let window = parse_window(&query, state.size).map_err(|err| bad_request(err.0))?;
    let page = record(&state, "conversation", started, state.store.read_conversation(&id, &other, window).await)?;
    Ok(HttpResponse::Ok().json(ConversationReply { users: [&id, &other], page: &page }))
}
