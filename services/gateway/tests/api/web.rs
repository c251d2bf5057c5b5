//! The chat page and the JS client library served by the gateway. The page
//! itself is driven in a real browser by `services/gateway/web/test/`.

use crate::helpers::*;
use gateway::settings::AuthMode;

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    reqwest::get(app.http_url(path)).await.unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers().get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

#[tokio::test]
async fn the_page_and_its_scripts_are_served_with_a_strict_policy() {
    let app = spawn_app(|_| {});
    let page = get(&app, "/").await;
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    let policy = header(&page, "content-security-policy").to_owned();
    assert!(policy.contains("script-src 'self'") && policy.contains("default-src 'none'"), "{policy}");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    assert!(page.text().await.unwrap().contains(r#"<script type="module" src="/app.js"></script>"#));

    for path in ["/chat.js", "/chat/connection.js", "/chat/room.js", "/app.js", "/app/views.js", "/app/render.js"] {
        let script = get(&app, path).await;
        assert_eq!(script.status().as_u16(), 200, "{path}");
        assert_eq!(header(&script, "content-type"), "text/javascript; charset=utf-8", "{path}");
        assert_eq!(header(&script, "cache-control"), "no-cache", "{path}");
    }
    assert!(get(&app, "/chat.js").await.text().await.unwrap().contains("export { ChatClient"));
    assert!(get(&app, "/chat/client.js").await.text().await.unwrap().contains("export class ChatClient"));
    assert_eq!(header(&get(&app, "/app.css").await, "content-type"), "text/css; charset=utf-8");

    let config: serde_json::Value = get(&app, "/client-config.json").await.json().await.unwrap();
    assert_eq!(config, serde_json::json!({"auth": "anonymous", "protocol": 1, "ice_servers": []}));
    assert_eq!(get(&app, "/app/call.js").await.status().as_u16(), 200);
}

#[tokio::test]
async fn the_calls_stun_and_turn_servers_come_from_the_settings() {
    let app = spawn_app(|s| {
        s.gateway.web.ice_servers = vec![gateway::settings::IceServer {
            urls: vec!["turn:turn.example.com:3478".into()],
            username: Some("u".into()),
            credential: Some("p".into()),
        }];
    });
    let config: serde_json::Value = get(&app, "/client-config.json").await.json().await.unwrap();
    assert_eq!(
        config["ice_servers"],
        serde_json::json!([{"urls": ["turn:turn.example.com:3478"], "username": "u", "credential": "p"}])
    );
}

#[tokio::test]
async fn the_page_asks_for_a_token_when_the_gateway_wants_one() {
    let app = spawn_app(|s| {
        s.cluster.auth.mode = AuthMode::Jwt;
        s.cluster.auth.hs256_secret = Some("secret".into());
    });
    let config: serde_json::Value = get(&app, "/client-config.json").await.json().await.unwrap();
    assert_eq!(config["auth"], "jwt");
}

#[tokio::test]
async fn web_enabled_false_leaves_only_the_api() {
    let app = spawn_app(|s| s.gateway.web.enabled = false);
    for path in ["/", "/chat.js", "/chat/client.js", "/app.js", "/app/views.js", "/app.css", "/client-config.json"] {
        let response = get(&app, path).await;
        assert_eq!(response.status().as_u16(), 404, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    assert_eq!(get(&app, "/healthz").await.status().as_u16(), 200);
}
