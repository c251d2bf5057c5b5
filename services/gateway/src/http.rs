//! HTTP routes: admission of WebSocket handshakes, health, readiness, metrics, the chat
//! page, and JSON errors for everything else.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use actix_web::dev::RequestHead;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use rand::Rng;

pub use chat_shared::http::ApiError;
use chat_shared::telemetry::{encode_metrics, METRICS_CONTENT_TYPE};
use chat_shared::ErrorCode;

use crate::auth::{Authenticator, Identity, RoomGrant};
use crate::engine::{Admission, ConnectionLimits, SessionInfo};
use crate::node::{ConnectionPermit, Node};

/// Registers every route of the gateway.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/ws").get(not_upgraded))
        .service(resource("/healthz").get(healthz))
        .service(resource("/readyz").get(readyz))
        .service(resource("/metrics").get(metrics))
        .configure(crate::admin::routes)
        .configure(crate::files::routes::routes)
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

/// Counts a refused connection.
pub fn refuse(node: &Node, err: ApiError) -> ApiError {
    node.metrics.connections_refused.with_label_values(&[err.code.as_str()]).inc();
    err
}

/// A connection let in: who it is, what its token allows, and its place
/// among the node's connections.
pub struct Admitted {
    pub info: SessionInfo,
    pub grant: RoomGrant,
    pub permit: ConnectionPermit,
}

/// Authenticates and admits a WebSocket handshake (the checks before the
/// upgrade, in order: draining, Origin, token, the node's cap, the user's
/// and the address's limits). A refusal is counted in the metrics.
///
/// # Errors
/// The refusal, as the HTTP error the client gets.
pub async fn admit(node: &Node, head: &RequestHead, peer: Option<SocketAddr>) -> Result<Admitted, ApiError> {
    admit_unrefused(node, head, peer).await.map_err(|err| refuse(node, err))
}

async fn admit_unrefused(node: &Node, head: &RequestHead, peer: Option<SocketAddr>) -> Result<Admitted, ApiError> {
    if node.is_draining() {
        return Err(ApiError::new(ErrorCode::Unavailable, "the node is draining; connect to another"));
    }
    let (identity, _) = identify(node, head)?;
    let limits = &node.settings.gateway.limits;
    // The place is taken before anything else can wait, and held by the
    // session: a burst of connections cannot overshoot the cap.
    let Some(permit) = node.try_connection() else {
        return Err(ApiError::new(ErrorCode::Unavailable, "this node is full; connect to another"));
    };
    let info = SessionInfo {
        session: new_session_id(&node.node_id),
        user: identity.user,
        node: node.node_id.clone(),
        ip: client_ip(&node.trusted_proxies, head, peer),
    };
    let connection_limits =
        ConnectionLimits { per_user: limits.max_connections_per_user, per_ip: limits.max_connections_per_ip };
    match node.engine.presence.admit(&info, connection_limits).await {
        Ok(Admission::Admitted) => Ok(Admitted { info, grant: identity.rooms, permit }),
        Ok(Admission::UserLimit) => {
            let max = limits.max_connections_per_user;
            Err(ApiError::new(ErrorCode::TooManyConnections, format!("at most {max} connections per user")))
        }
        Ok(Admission::IpLimit) => {
            let max = limits.max_connections_per_ip;
            tracing::debug!(ip = ?info.ip, user = %info.user.id, "over the per-address connection limit");
            Err(ApiError::new(ErrorCode::TooManyConnections, format!("at most {max} connections per address")))
        }
        Err(err) => {
            tracing::warn!(cause = %err, "admission failed");
            Err(ApiError::new(ErrorCode::Unavailable, "a backend is unavailable"))
        }
    }
}

/// The client's address: the TCP peer, or for a peer among
/// `gateway.trusted_proxies`, the rightmost address of `X-Forwarded-For`
/// (every such header, in order) that is not a trusted proxy itself. A proxy
/// appends the address it saw, so the addresses right of the first
/// untrusted one were written by trusted proxies, and what a client wrote
/// into the header itself (to its left) is never taken. A malformed entry
/// among the trusted ones ends the walk: the peer is counted.
pub fn client_ip(trusted: &[ipnet::IpNet], head: &RequestHead, peer: Option<SocketAddr>) -> Option<IpAddr> {
    let peer = peer?.ip().to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = head
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut leftmost = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>().map(|ip| ip.to_canonical()) else { return Some(peer) };
        if !is_trusted(&ip) {
            return Some(ip);
        }
        leftmost = ip;
    }
    // Every hop is a trusted proxy: the first of them is as near the client as it gets.
    Some(leftmost)
}

/// Who a request is, as `/ws` and the file routes see it: the Origin
/// allow-list, then the token (`?token=` or `Authorization: Bearer`), or in
/// anonymous mode `?user=`/`?name=`. Returns the query too.
///
/// # Errors
/// 403 for an Origin not allowed, 400 for a malformed query, 401 for a bad token.
pub fn identify(node: &Node, head: &RequestHead) -> Result<(Identity, HashMap<String, String>), ApiError> {
    identify_with(&node.auth, head)
}

/// [`identify`] with an [`Authenticator`] of its own (the `handshake` fuzz target).
///
/// # Errors
/// As [`identify`].
pub fn identify_with(
    auth: &Authenticator,
    head: &RequestHead,
) -> Result<(Identity, HashMap<String, String>), ApiError> {
    let origin = head.headers().get("origin").and_then(|v| v.to_str().ok());
    auth.check_origin(origin).map_err(|err| ApiError::new(err.code, err.message))?;
    let query = web::Query::<HashMap<String, String>>::from_query(head.uri.query().unwrap_or_default())
        .map_err(|err| ApiError::new(ErrorCode::BadRequest, format!("invalid query: {err}")))?
        .into_inner();
    let bearer = head
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let identity = auth.authenticate(&query, bearer).map_err(|err| ApiError::new(err.code, err.message))?;
    Ok((identity, query))
}

/// `GET /ws` without `Upgrade: websocket` (every WebSocket handshake goes to
/// [`crate::socket::upgrade`] instead): the refusal a handshake with the
/// same query and headers would get, or 426 `upgrade_required`. A browser
/// cannot read a refused handshake's status, so its client asks here.
///
/// The checks are the handshake's own, limits included; a place they take
/// is given back at once.
async fn not_upgraded(req: HttpRequest, node: web::Data<Node>) -> Result<HttpResponse, ApiError> {
    let admitted = admit_unrefused(&node, req.head(), req.peer_addr()).await?;
    if let Err(err) = node.engine.presence.release(&admitted.info).await {
        tracing::warn!(cause = %err, "releasing a probe's admission failed");
    }
    drop(admitted.permit);
    let err =
        ApiError::new(ErrorCode::UpgradeRequired, "nothing would refuse this handshake: connect with a WebSocket");
    let mut response = actix_web::ResponseError::error_response(&err);
    // RFC 9110: a 426 names the protocol to upgrade to.
    response.headers_mut().insert(header::UPGRADE, header::HeaderValue::from_static("websocket"));
    Ok(response)
}

/// `s-` + this node's id + 64 random bits: unique across the cluster.
fn new_session_id(node_id: &str) -> Arc<str> {
    let n: u64 = rand::rng().random();
    Arc::from(format!("s-{node_id}-{n:016x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(forwarded: &[&str]) -> RequestHead {
        let mut request = actix_web::test::TestRequest::default();
        for value in forwarded {
            request = request.append_header(("x-forwarded-for", *value));
        }
        request.to_http_request().head().clone()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_forwarded_address() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1/32".parse().unwrap()];
        let from = |peer: &str| Some(SocketAddr::new(ip(peer), 5000));
        let cases = [
            // An untrusted peer is the client, whatever it writes.
            (from("203.0.113.7"), vec!["198.51.100.1"], "203.0.113.7"),
            (from("10.1.2.3"), vec!["198.51.100.1"], "198.51.100.1"),
            // A client's own entry (left) never wins over what proxies appended.
            (from("10.1.2.3"), vec!["6.6.6.6, 198.51.100.1, 10.9.9.9"], "198.51.100.1"),
            (from("10.1.2.3"), vec!["6.6.6.6", "198.51.100.1"], "198.51.100.1"),
            (from("10.1.2.3"), vec![], "10.1.2.3"),
            (from("10.1.2.3"), vec!["6.6.6.6, garbage"], "10.1.2.3"),
            (from("10.1.2.3"), vec!["10.7.7.7, 10.8.8.8"], "10.7.7.7"),
            (from("::ffff:10.1.2.3"), vec!["2001:db8::1"], "2001:db8::1"),
        ];
        for (peer, forwarded, want) in cases {
            assert_eq!(client_ip(&trusted, &head(&forwarded), peer), Some(ip(want)), "{peer:?} {forwarded:?}");
        }
        assert_eq!(client_ip(&[], &head(&["198.51.100.1"]), from("10.1.2.3")), Some(ip("10.1.2.3")), "none trusted");
    }
}
