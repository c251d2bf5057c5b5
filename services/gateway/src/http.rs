//! HTTP routes: the WebSocket upgrade, health, readiness, metrics, the chat
//! page, and JSON errors for everything else.

use std::collections::HashMap;
use std::sync::Arc;

use actix::{Actor, AsyncContext};
use actix_web::{web, HttpRequest, HttpResponse};
use rand::Rng;

pub use chat_shared::http::ApiError;
use chat_shared::telemetry::{encode_metrics, METRICS_CONTENT_TYPE};
use chat_shared::ErrorCode;

use crate::engine::{Admission, ConnectionLimits, SessionInfo};
use crate::node::Node;
use crate::session::WsSession;

/// Registers every route of the gateway.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/ws").get(upgrade))
        .service(resource("/healthz").get(healthz))
        .service(resource("/readyz").get(readyz))
        .service(resource("/metrics").get(metrics))
        .configure(crate::admin::routes)
        .configure(crate::web::routes)
        .app_data(
            web::JsonConfig::default().limit(256 * 1024).error_handler(|err, _| {
                ApiError::new(ErrorCode::BadRequest, format!("invalid JSON body: {err}")).into()
            }),
        )
        .app_data(
            web::PathConfig::default()
                .error_handler(|err, _| ApiError::new(ErrorCode::BadRequest, format!("invalid path: {err}")).into()),
        )
        .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, format!("no route for {} {}", req.method(), req.path())))
}

/// A route whose other methods get a JSON 405.
pub fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::MethodNotAllowed, format!("{} is not allowed on {}", req.method(), req.path())))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(node: web::Data<Node>) -> Result<HttpResponse, ApiError> {
    if node.is_draining() {
        return Err(ApiError::new(ErrorCode::Unavailable, "the node is draining"));
    }
    if let Err(why) = node.engine.bus.readiness() {
        return Err(ApiError::new(ErrorCode::Unavailable, why));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}

async fn metrics(node: web::Data<Node>) -> HttpResponse {
    node.metrics.redis_up.set(i64::from(node.engine.bus.readiness().is_ok()));
    HttpResponse::Ok().content_type(METRICS_CONTENT_TYPE).body(encode_metrics(&node.metrics.registry))
}

fn refuse(node: &Node, err: ApiError) -> ApiError {
    node.metrics.connections_refused.with_label_values(&[err.code.as_str()]).inc();
    err
}

/// `GET /ws`: authenticates, admits and upgrades a connection.
async fn upgrade(req: HttpRequest, body: web::Payload, node: web::Data<Node>) -> Result<HttpResponse, ApiError> {
    let node: Arc<Node> = node.into_inner();
    if node.is_draining() {
        return Err(refuse(&node, ApiError::new(ErrorCode::Unavailable, "the node is draining; connect to another")));
    }
    let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
    node.auth.check_origin(origin).map_err(|err| refuse(&node, ApiError::new(err.code, err.message)))?;
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map_err(|err| refuse(&node, ApiError::new(ErrorCode::BadRequest, format!("invalid query: {err}"))))?;
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let identity =
        node.auth.authenticate(&query, bearer).map_err(|err| refuse(&node, ApiError::new(err.code, err.message)))?;
    let limits = &node.settings.gateway.limits;
    // The place is taken before anything else can wait, and held by the
    // session: a burst of connections cannot overshoot the cap.
    let Some(permit) = node.try_connection() else {
        return Err(refuse(&node, ApiError::new(ErrorCode::Unavailable, "this node is full; connect to another")));
    };
    let info = SessionInfo {
        session: new_session_id(&node.node_id),
        user: identity.user,
        node: node.node_id.clone(),
        ip: req.peer_addr().map(|addr| addr.ip()),
    };
    let connection_limits =
        ConnectionLimits { per_user: limits.max_connections_per_user, per_ip: limits.max_connections_per_ip };
    match node.engine.presence.admit(&info, connection_limits).await {
        Ok(Admission::Admitted) => {}
        Ok(Admission::UserLimit) => {
            let max = limits.max_connections_per_user;
            return Err(refuse(
                &node,
                ApiError::new(ErrorCode::TooManyConnections, format!("at most {max} connections per user")),
            ));
        }
        Ok(Admission::IpLimit) => {
            let max = limits.max_connections_per_ip;
            return Err(refuse(
                &node,
                ApiError::new(ErrorCode::TooManyConnections, format!("at most {max} connections per address")),
            ));
        }
        Err(err) => {
            tracing::warn!(cause = %err, "admission failed");
            return Err(refuse(&node, ApiError::new(ErrorCode::Unavailable, "a backend is unavailable")));
        }
    }
    let (response, socket, stream) = match actix_ws::handle(&req, body) {
        Ok(parts) => parts,
        Err(err) => {
            let _ = node.engine.presence.release(&info).await;
            return Err(refuse(
                &node,
                ApiError::new(ErrorCode::BadRequest, format!("expected a WebSocket upgrade: {err}")),
            ));
        }
    };
    let max_frame = limits.max_frame_bytes;
    let stream = stream.max_frame_size(max_frame).aggregate_continuations().max_continuation_size(max_frame);
    tracing::debug!(session = %info.session, user = %info.user.id, "connection opened");
    let grant = identity.rooms;
    WsSession::create(move |ctx| {
        ctx.add_stream(stream);
        WsSession::new(node, info, grant, socket, permit)
    });
    Ok(response)
}

/// `s-` + this node's id + 64 random bits: unique across the cluster.
fn new_session_id(node_id: &str) -> Arc<str> {
    let n: u64 = rand::rng().random();
    Arc::from(format!("s-{node_id}-{n:016x}"))
}
