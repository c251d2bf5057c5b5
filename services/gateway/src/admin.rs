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
//! - `POST /v1/users/{id}/notices` `{"data": any}`: a `notice` to every
//!   session of one user, on every node; 202.
//! - `DELETE /v1/rooms/{room}/messages/{seq}`: a moderator's `delete` of
//!   anyone's message, `from` the server; 200 `{"seq"}` of the `delete`
//!   event, 404 when the message is not one the history holds.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use chat_shared::protocol::{ClientId, DisplayName, RoomEventKind, RoomName, ServerFrame, UserId, UserRef};
use chat_shared::ErrorCode;

use crate::engine::{backend_message, BusMessage, Outcome, RoomDraft, Topic};
use crate::http::{resource, ApiError};
use crate::node::Node;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v1/stats").get(stats))
        .service(resource("/v1/rooms/{room}/messages").post(post_message))
        .service(resource("/v1/broadcast").post(broadcast))
        .service(resource("/v1/rooms/{room}/messages/{seq}").delete(moderate))
        .service(resource("/v1/users/{id}/notices").post(notice_user))
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
    let outcome = append_as_operator(&node, draft).await?;
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

/// A notice's body: `data` must be there (`null` is a value).
#[derive(Debug, Deserialize)]
struct Notice {
    #[serde(default, deserialize_with = "present")]
    data: Option<serde_json::Value>,
}

/// `Some` for any value, `null` included; a missing field stays `None`.
fn present<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(de).map(Some)
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

/// Publishes a room event for the operator API; a refusal by the store
/// comes back as it is.
async fn append_as_operator(node: &Node, draft: RoomDraft) -> Result<Outcome, ApiError> {
    let room = draft.room.clone();
    node.engine.history.append_room(draft).await.map_err(|err| {
        let message = backend_message("publish", &err);
        tracing::warn!(room = %room, cause = %err, message, "operator publish failed");
        ApiError::new(err.code(), message)
    })
}

async fn moderate(
    req: HttpRequest,
    node: web::Data<Node>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &node)?;
    let (room, seq) = path.into_inner();
    let room = RoomName::parse(&room).map_err(|err| bad(err.0))?;
    let target: u64 = seq.parse().map_err(|_| bad(format!("{seq:?} is not a message seq")))?;
    let mut draft = RoomDraft::new(room.clone(), server_user(), RoomEventKind::Delete { target }, None);
    draft.moderator = true;
    match append_as_operator(&node, draft).await? {
        Outcome::Stored(stored) => {
            node.metrics.messages_published.inc();
            node.files.message_deleted(&room, target).await;
            tracing::info!(room = %room, target, seq = stored.seq, "message deleted by an operator");
            Ok(HttpResponse::Ok().json(serde_json::json!({ "room": room, "seq": stored.seq, "ts": stored.ts })))
        }
        Outcome::NotFound => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("{room} holds no message {target} (never sent, no longer in the history, or deleted)"),
        )),
        other => {
            tracing::error!(room = %room, ?other, "moderation delete refused by the store");
            Err(ApiError::new(ErrorCode::Internal, "delete failed: internal error (logged)"))
        }
    }
}

async fn notice_user(
    req: HttpRequest,
    node: web::Data<Node>,
    id: web::Path<String>,
    body: web::Json<Notice>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &node)?;
    let user = UserId::parse(&id).map_err(|err| bad(err.0))?;
    let Some(data) = body.into_inner().data else { return Err(bad("missing field `data`")) };
    let frame = ServerFrame::Notice { data };
    let reached = node
        .engine
        .bus
        .publish(&Topic::User(user), BusMessage::frame(&frame))
        .await
        .map_err(|err| ApiError::new(err.code(), backend_message("notice", &err)))?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "nodes": reached })))
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
