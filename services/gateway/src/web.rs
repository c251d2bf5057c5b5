//! The chat page at `/` and the JS client library at `/chat.js` (its
//! modules under `/chat/`), compiled
//! into the binary from `services/gateway/web/` so that a gateway needs no
//! files beside it. `web.enabled = false` turns them off (404).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

use chat_shared::http::ApiError;
use chat_shared::ErrorCode;

use crate::http::resource;
use crate::node::Node;
use crate::settings::AuthMode;

/// A file the gateway serves as it is.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// A file under `web/`, served at the same path.
macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset { path: $path, content_type: $content_type, body: include_str!(concat!("../web", $path)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    Asset { path: "/", content_type: "text/html; charset=utf-8", body: include_str!("../web/index.html") },
    asset!("/app.css", "text/css; charset=utf-8"),
    asset!("/app.js", JS),
    asset!("/app/views.js", JS),
    asset!("/app/render.js", JS),
    asset!("/app/message.js", JS),
    asset!("/app/outbox.js", JS),
    asset!("/app/reads.js", JS),
    asset!("/app/call.js", JS),
    asset!("/app/uploads.js", JS),
    asset!("/chat.js", JS),
    asset!("/chat/client.js", JS),
    asset!("/chat/clock.js", JS),
    asset!("/chat/connection.js", JS),
    asset!("/chat/dms.js", JS),
    asset!("/chat/emitter.js", JS),
    asset!("/chat/errors.js", JS),
    asset!("/chat/messages.js", JS),
    asset!("/chat/reads.js", JS),
    asset!("/chat/requests.js", JS),
    asset!("/chat/room.js", JS),
];

/// The page runs only its own scripts and styles and talks only to its own
/// origin (`'self'` covers `ws:`/`wss:` to the same host): a message that
/// slipped past the page's text-only rendering still could not run code.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                           img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn routes(cfg: &mut web::ServiceConfig) {
    for asset in ASSETS {
        cfg.service(resource(asset.path).get(move |req: HttpRequest, node: web::Data<Node>| serve(req, node, asset)));
    }
    cfg.service(resource("/client-config.json").get(client_config));
}

fn disabled(req: &HttpRequest) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no route for {} {} (web.enabled is off)", req.method(), req.path()))
}

async fn serve(req: HttpRequest, node: web::Data<Node>, asset: &'static Asset) -> Result<HttpResponse, ApiError> {
    if !node.settings.gateway.web.enabled {
        return Err(disabled(&req));
    }
    let mut response = HttpResponse::Ok();
    response
        .content_type(asset.content_type)
        // Small files, served from memory: check back every time, so a new
        // gateway version is never mixed with an old cached script.
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .insert_header((header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")));
    if asset.path == "/" {
        response
            .insert_header((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY)))
            .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")));
    }
    Ok(response.body(asset.body))
}

/// `GET /client-config.json`: what the page's sign-in form asks for.
async fn client_config(req: HttpRequest, node: web::Data<Node>) -> Result<HttpResponse, ApiError> {
    if !node.settings.gateway.web.enabled {
        return Err(disabled(&req));
    }
    let auth = match node.settings.cluster.auth.mode {
        AuthMode::Anonymous => "anonymous",
        AuthMode::Jwt => "jwt",
    };
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store"))).json(
        serde_json::json!({
            "auth": auth,
            "protocol": 1,
            "ice_servers": node.settings.gateway.web.ice_servers,
        }),
    ))
}
