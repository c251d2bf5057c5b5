//! JWT mode, the `rooms` claim and the Origin allow-list.

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{now_secs, sign, spawn_app, Client, TestApp};

const SECRET: &str = "test-secret-0123456789";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn jwt_app(configure: impl FnOnce(&mut gateway::Settings)) -> TestApp {
    spawn_app(|s| {
        s.cluster.auth.mode = gateway::settings::AuthMode::Jwt;
        s.cluster.auth.hs256_secret = Some(SECRET.into());
        configure(s);
    })
}

fn hs256(claims: Value) -> String {
    sign(&claims, Algorithm::HS256, &EncodingKey::from_secret(SECRET.as_bytes()))
}

fn valid_claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": now_secs() + 600, "name": "Alice A."})
}

async fn refused(app: &TestApp, token: &str) -> (u16, Value) {
    let refused = Client::connect(&app.ws_url(&format!("token={token}"))).await.err().expect("refused");
    (refused.status, refused.body)
}

#[tokio::test]
async fn hs256_token_in_query_or_header() {
    let app = jwt_app(|_| {});
    let token = hs256(valid_claims("alice"));
    let mut c = Client::connect(&app.ws_url(&format!("token={token}"))).await.unwrap();
    let welcome = c.recv().await;
    assert_eq!(welcome["user"], json!({"id": "alice", "name": "Alice A."}));
    let mut request = app.ws_url("").into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let mut c = Client::connect_request(request).await.unwrap();
    assert_eq!(c.recv().await["user"]["id"], "alice");
    // Without a name claim the name is the user id.
    let mut c =
        Client::connect(&app.ws_url(&format!("token={}", hs256(json!({"sub": "bob", "exp": now_secs() + 60})))))
            .await
            .unwrap();
    assert_eq!(c.recv().await["user"], json!({"id": "bob", "name": "bob"}));
}

#[tokio::test]
async fn every_bad_token_is_refused_with_401() {
    let app = jwt_app(|_| {});
    let other_key = EncodingKey::from_secret(b"another-secret");
    let none_alg = {
        use base64_like::encode;
        format!("{}.{}.", encode(r#"{"alg":"none","typ":"JWT"}"#), encode(&valid_claims("mallory").to_string()))
    };
    let cases = [
        ("garbage", "not.a.token".to_owned()),
        ("wrong key", sign(&valid_claims("alice"), Algorithm::HS256, &other_key)),
        ("expired", hs256(json!({"sub": "alice", "exp": now_secs() - 120}))),
        ("no exp", hs256(json!({"sub": "alice"}))),
        ("no sub", hs256(json!({"exp": now_secs() + 60}))),
        ("alg none", none_alg),
        ("bad sub", hs256(json!({"sub": "", "exp": now_secs() + 60}))),
        ("HS384", sign(&valid_claims("alice"), Algorithm::HS384, &EncodingKey::from_secret(SECRET.as_bytes()))),
    ];
    for (what, token) in cases {
        let (status, body) = refused(&app, &token).await;
        assert_eq!(status, 401, "{what}");
        assert_eq!(body["error"]["code"], "unauthorized", "{what}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}");
    }
    let missing = Client::connect(&app.ws_url("name=anonymous-attempt")).await.err().unwrap();
    assert_eq!((missing.status, missing.body["error"]["code"].as_str()), (401, Some("unauthorized")));
    // A browser learns the same from a plain GET (it cannot read a refused handshake).
    let expired = hs256(json!({"sub": "alice", "exp": now_secs() - 120}));
    let probe = reqwest::get(app.http_url(&format!("/ws?token={expired}"))).await.unwrap();
    assert_eq!(probe.status().as_u16(), 401);
    let body: Value = probe.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let valid = hs256(valid_claims("alice"));
    let probe = reqwest::get(app.http_url(&format!("/ws?token={valid}"))).await.unwrap();
    assert_eq!(probe.status().as_u16(), 426, "a valid token would be let in");
}

#[tokio::test]
async fn audience_and_issuer_are_checked_when_configured() {
    let app = jwt_app(|s| {
        s.cluster.auth.audience = Some("chat".into());
        s.cluster.auth.issuer = Some("https://id.example".into());
    });
    let good = hs256(json!({"sub": "a", "exp": now_secs() + 60, "aud": "chat", "iss": "https://id.example"}));
    let mut c = Client::connect(&app.ws_url(&format!("token={good}"))).await.unwrap();
    assert_eq!(c.recv().await["type"], "welcome");
    for token in [
        hs256(json!({"sub": "a", "exp": now_secs() + 60, "aud": "other", "iss": "https://id.example"})),
        hs256(json!({"sub": "a", "exp": now_secs() + 60, "iss": "https://id.example"})),
        hs256(json!({"sub": "a", "exp": now_secs() + 60, "aud": "chat", "iss": "https://evil.example"})),
        hs256(json!({"sub": "a", "exp": now_secs() + 60, "aud": "chat"})),
    ] {
        assert_eq!(refused(&app, &token).await.0, 401);
    }
}

#[tokio::test]
async fn rs256_with_a_public_key_file() {
    let app = spawn_app(|s| {
        s.cluster.auth.mode = gateway::settings::AuthMode::Jwt;
        s.cluster.auth.rs256_public_key_path = Some(format!("{FIXTURES}/rs256-public.pem").into());
    });
    let private = std::fs::read(format!("{FIXTURES}/rs256-private.pem")).unwrap();
    let key = EncodingKey::from_rsa_pem(&private).unwrap();
    let token = sign(&valid_claims("rsa-user"), Algorithm::RS256, &key);
    let mut c = Client::connect(&app.ws_url(&format!("token={token}"))).await.unwrap();
    assert_eq!(c.recv().await["user"]["id"], "rsa-user");
    let other = std::fs::read(format!("{FIXTURES}/rs256-other-private.pem")).unwrap();
    let forged = sign(&valid_claims("rsa-user"), Algorithm::RS256, &EncodingKey::from_rsa_pem(&other).unwrap());
    assert_eq!(refused(&app, &forged).await.0, 401);
    // An HS256 token is not accepted where only RS256 is configured.
    assert_eq!(refused(&app, &hs256(valid_claims("x"))).await.0, 401);
}

#[tokio::test]
async fn hs256_and_rs256_together_and_rfc_claim_forms() {
    let app = jwt_app(|s| {
        s.cluster.auth.rs256_public_key_path = Some(format!("{FIXTURES}/rs256-public.pem").into());
        s.cluster.auth.audience = Some("chat".into());
    });
    let private = std::fs::read(format!("{FIXTURES}/rs256-private.pem")).unwrap();
    let rsa = EncodingKey::from_rsa_pem(&private).unwrap();
    let claims = json!({"sub": "both", "exp": now_secs() + 60, "aud": "chat"});
    for token in [hs256(claims.clone()), sign(&claims, Algorithm::RS256, &rsa)] {
        let mut c = Client::connect(&app.ws_url(&format!("token={token}"))).await.unwrap();
        assert_eq!(c.recv().await["user"]["id"], "both");
    }
    // `aud` may be an array (RFC 7519 4.1.3).
    let listed = hs256(json!({"sub": "a", "exp": now_secs() + 60, "aud": ["other", "chat"]}));
    let mut c = Client::connect(&app.ws_url(&format!("token={listed}"))).await.unwrap();
    assert_eq!(c.recv().await["type"], "welcome");
    // A token that is not valid yet (`nbf` in the future) is refused.
    let early = hs256(json!({"sub": "a", "exp": now_secs() + 600, "nbf": now_secs() + 300, "aud": "chat"}));
    assert_eq!(refused(&app, &early).await.0, 401);
}

#[tokio::test]
async fn rooms_claim_limits_join_members_and_history() {
    let app = jwt_app(|_| {});
    let token = hs256(json!({"sub": "limited", "exp": now_secs() + 60, "rooms": ["lobby", "team-*"]}));
    let mut c = Client::connect(&app.ws_url(&format!("token={token}"))).await.unwrap();
    c.recv().await;
    c.join("lobby").await;
    c.join("team-blue").await;
    for frame in [
        json!({"type": "join", "room": "secret"}),
        json!({"type": "members", "room": "secret"}),
        json!({"type": "history", "room": "secret"}),
        json!({"type": "join", "room": "team"}),
    ] {
        let err = c.request(frame.clone()).await;
        assert_eq!(err["code"], "forbidden", "{frame}");
    }
    // The rooms claim is checked before membership (protocol 1.1's order).
    let err = c.request(json!({"type": "send", "room": "secret", "text": "x"})).await;
    assert_eq!(err["code"], "forbidden");
    let err = c.request(json!({"type": "send", "room": "team-red", "text": "x"})).await;
    assert_eq!(err["code"], "not_joined", "allowed but not joined");
}

#[tokio::test]
async fn origin_allow_list_gives_403() {
    let app = spawn_app(|s| s.cluster.auth.allowed_origins = vec!["https://chat.example".into()]);
    let with_origin = |origin: &str| {
        let mut request = app.ws_url("name=x").into_client_request().unwrap();
        request.headers_mut().insert("origin", origin.parse().unwrap());
        request
    };
    let refused = Client::connect_request(with_origin("https://evil.example")).await.err().expect("refused");
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["error"]["code"], "forbidden");
    let mut ok = Client::connect_request(with_origin("https://chat.example")).await.unwrap();
    assert_eq!(ok.recv().await["type"], "welcome");
}

/// Unpadded base64url, enough to build an `alg: none` token by hand.
mod base64_like {
    pub fn encode(input: &str) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = input.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}
