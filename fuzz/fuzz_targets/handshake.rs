//! What a WebSocket handshake carries before any frame: the query string,
//! `Authorization`, `Origin` and `X-Forwarded-For`, through the gateway's
//! own `identify_with` (Origin allow-list, query, JWT or anonymous mode) and
//! `client_ip` (trusted proxies). Claims given as JSON are signed with the
//! test secret first, so the claims' checks are reached, not only the
//! signature's.
//!
//! Holds: no panic; an accepted identity has a valid user id; the client
//! address is one of the peer and the header's addresses.
#![no_main]

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use actix_web::test::TestRequest;
use arbitrary::Arbitrary;
use chat_shared::settings::{AuthMode, AuthSettings};
use gateway::auth::Authenticator;
use gateway::http::{client_ip, identify_with};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-secret-fuzz-secret-fuzz-secret";

#[derive(Arbitrary, Debug)]
struct Handshake {
    query: String,
    /// JSON claims to sign, or a raw `Authorization` value.
    claims: Option<String>,
    authorization: Option<String>,
    origin: Option<String>,
    forwarded_for: Vec<String>,
    peer: ([u8; 4], u16),
}

fn authenticators() -> &'static [Authenticator; 2] {
    static AUTH: OnceLock<[Authenticator; 2]> = OnceLock::new();
    AUTH.get_or_init(|| {
        let anonymous = AuthSettings { mode: AuthMode::Anonymous, ..AuthSettings::default() };
        let jwt = AuthSettings {
            mode: AuthMode::Jwt,
            hs256_secret: Some(SECRET.into()),
            allowed_origins: vec!["https://chat.example".into()],
            ..AuthSettings::default()
        };
        [Authenticator::new(&anonymous).expect("anonymous"), Authenticator::new(&jwt).expect("jwt")]
    })
}

fn trusted() -> &'static [ipnet::IpNet] {
    static NETS: OnceLock<Vec<ipnet::IpNet>> = OnceLock::new();
    NETS.get_or_init(|| vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1/32".parse().unwrap()])
}

fuzz_target!(|input: Handshake| {
    let mut query = input.query.clone();
    if let Some(claims) = &input.claims {
        if let Ok(claims) = serde_json::from_str::<serde_json::Value>(claims) {
            let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
            if let Ok(token) = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key) {
                query = format!("token={token}&{query}");
            }
        }
    }
    let Ok(uri) = format!("/ws?{query}").parse::<actix_web::http::Uri>() else { return };
    let mut request = TestRequest::get().uri(&uri.to_string());
    for (name, value) in [("authorization", &input.authorization), ("origin", &input.origin)] {
        if let Some(value) = value {
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(value) {
                request = request.insert_header((name, value));
            }
        }
    }
    for hop in &input.forwarded_for {
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(hop) {
            request = request.append_header(("x-forwarded-for", value));
        }
    }
    let request = request.to_http_request();
    for auth in authenticators() {
        if let Ok((identity, _)) = identify_with(auth, request.head()) {
            assert!(!identity.user.id.as_str().is_empty());
        }
    }
    let peer = SocketAddr::from((input.peer.0, input.peer.1));
    let ip = client_ip(trusted(), request.head(), Some(peer)).expect("a peer gives an address");
    let hops: Vec<IpAddr> = input
        .forwarded_for
        .iter()
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect();
    assert!(ip == peer.ip() || hops.contains(&ip), "{ip} is neither the peer nor a forwarded address");
});
