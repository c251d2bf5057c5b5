//! The operator API, behind a Bearer admin key; every route answers 404 when
//! no key is configured.
//!
//! - `GET /v1/stats`: this node's counts.
//! - `POST /v1/rooms/{room}/messages` `{"text", "from"?: {"id","name"?}, "client_id"?}`:
//!   publish into a room as the server (or as the named user).
//! - `POST /v1/broadcast` `{"data": any}`: a `notice` to every session on
//!   every node; answers how many nodes it reached.
//! - `DELETE /v1/users/{id}/sessions`: close every session of a user with
//!   1008, on every node; answers how many nodes it reached.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use chat_shared::protocol::{ClientId, DisplayName, RoomName, ServerFrame, UserId, UserRef};
use chat_shared::ErrorCode;

use crate::engine::{backend_message, BusMessage, Outcome, RoomDraft, Topic};
use crate::http::{resource, ApiError};
use crate::node::Node;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v1/stats").get(stats))
        .service(resource("/v1/rooms/{room}/messages").post(post_message))
        .service(resource("/v1/broadcast").post(broadcast))
        .service(resource("/v1/users/{id}/sessions").delete(disconnect_user));
}

/// Checks the Bearer key in constant time.
fn authorize(req: &HttpRequest, node: &Node) -> Result<(), ApiError> {
    let Some(key) = node.settings.gateway.admin.api_key.as_deref().filter(|k| !k.is_empty()) else {
        return Err(ApiError::new(ErrorCode::NotFound, "the operator API is off (no admin.api_key)"));
    };
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let same_len = given.len() == key.len();
    let diff = given.bytes().zip(key.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if same_len && diff == 0 {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Unauthorized, "a valid admin key is required (Authorization: Bearer)"))
    }
}

async fn stats(req: HttpRequest, node: web::Data<Node>) -> Result<HttpResponse, ApiError> {
    authorize(&req, &node)?;
    let counts = node.hub.stats();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "node": node.settings.gateway.node_id,
        "engine": format!("{:?}", node.settings.gateway.engine).to_lowercase(),
        "connections": counts.connections,
        "users": counts.users,
        "rooms": counts.rooms,
        "draining": node.is_draining(),
        "uptime_ms": node.started.elapsed().as_millis() as u64,
    })))
}

#[derive(Debug, Deserialize)]
struct FromUser {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PostMessage {
    text: String,
    #[serde(default)]
    from: Option<FromUser>,
    #[serde(default)]
    client_id: Option<String>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message)
}

async fn post_message(
    req: HttpRequest,
    node: web::Data<Node>,
    room: web::Path<String>,
    body: web::Json<PostMessage>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &node)?;
    let room = RoomName::parse(&room).map_err(|err| bad(err.0))?;
    let body = body.into_inner();
    if body.text.is_empty() {
        return Err(bad("text must not be empty"));
    }
    let max = node.settings.gateway.limits.max_text_bytes;
    if body.text.len() > max {
        return Err(ApiError::new(ErrorCode::TooLarge, format!("text is over {max} bytes")));
    }
    let from = match body.from {
        None => server_user(),
        Some(from) => {
            let id = UserId::parse(&from.id).map_err(|err| bad(format!("from.id: {}", err.0)))?;
            let name = match from.name {
                Some(name) => DisplayName::parse(&name).map_err(|err| bad(format!("from.name: {}", err.0)))?,
                None => DisplayName::from_user_id(&id),
            };
            UserRef { id, name }
        }
    };
    let client_id = body.client_id.map(|c| ClientId::parse(&c)).transpose().map_err(|err| bad(err.0))?;
    let draft = RoomDraft::message(room.clone(), from, body.text, client_id);
    let outcome = node.engine.history.append_room(draft).await.map_err(|err| {
        let message = backend_message("publish", &err);
        tracing::warn!(room = %room, cause = %err, message, "operator publish failed");
        ApiError::new(err.code(), message)
    })?;
    let Outcome::Stored(stored) = outcome else {
        // A message without `reply_to` has nothing to be refused for.
        tracing::error!(room = %room, ?outcome, "operator publish refused by the store");
        return Err(ApiError::new(ErrorCode::Internal, "publish failed: internal error (logged)"));
    };
    node.metrics.messages_published.inc();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "room": room, "seq": stored.seq, "ts": stored.ts })))
}

fn server_user() -> UserRef {
    // Both literals satisfy the naming rules.
    UserRef {
        id: UserId::parse("server").unwrap_or_else(|_| unreachable!()),
        name: DisplayName::parse("server").unwrap_or_else(|_| unreachable!()),
    }
}

#[derive(Debug, Deserialize)]
struct Broadcast {
    data: serde_json::Value,
}

async fn broadcast(
    req: HttpRequest,
    node: web::Data<Node>,
    body: web::Json<Broadcast>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &node)?;
    let frame = ServerFrame::Notice { data: body.into_inner().data };
    let msg = BusMessage::frame(&frame);
    let reached = node
        .engine
        .bus
        .publish(&Topic::Broadcast, msg)
        .await
        .map_err(|err| ApiError::new(err.code(), backend_message("broadcast", &err)))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "nodes": reached })))
}

async fn disconnect_user(
    req: HttpRequest,
    node: web::Data<Node>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &node)?;
    let user = UserId::parse(&id).map_err(|err| bad(err.0))?;
    let closed = node
        .engine
        .bus
        .publish(&Topic::Control, BusMessage::Disconnect { user })
        .await
        .map_err(|err| ApiError::new(err.code(), backend_message("disconnect", &err)))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "nodes": closed })))
}
