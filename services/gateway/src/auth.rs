//! Who is connecting: anonymous names or signed JWTs, checked before the
//! WebSocket upgrade; plus the Origin allow-list and development tokens.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};

use chat_shared::protocol::{DisplayName, RoomName, UserId, UserRef};
use chat_shared::ErrorCode;

use crate::settings::{AuthMode, AuthSettings};

/// Why a connection was refused before the upgrade.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthError {
    pub code: ErrorCode,
    pub message: String,
}

impl AuthError {
    fn unauthorized(message: impl Into<String>) -> AuthError {
        AuthError { code: ErrorCode::Unauthorized, message: message.into() }
    }

    fn bad_request(message: impl Into<String>) -> AuthError {
        AuthError { code: ErrorCode::BadRequest, message: message.into() }
    }
}

/// The rooms a connection may use (the token's `rooms` claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomGrant {
    All,
    /// Exact names and prefixes (an entry ending in `*`).
    Only {
        exact: Vec<String>,
        prefixes: Vec<String>,
    },
}

impl RoomGrant {
    fn from_claim(entries: Vec<String>) -> RoomGrant {
        let mut exact = Vec::new();
        let mut prefixes = Vec::new();
        for entry in entries {
            match entry.strip_suffix('*') {
                Some(prefix) => prefixes.push(prefix.to_owned()),
                None => exact.push(entry),
            }
        }
        RoomGrant::Only { exact, prefixes }
    }

    /// Whether `room` may be joined, read or listed.
    pub fn allows(&self, room: &RoomName) -> bool {
        match self {
            RoomGrant::All => true,
            RoomGrant::Only { exact, prefixes } => {
                let name = room.as_str();
                exact.iter().any(|e| e == name) || prefixes.iter().any(|p| name.starts_with(p.as_str()))
            }
        }
    }
}

/// An authenticated connection's identity.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: UserRef,
    pub rooms: RoomGrant,
}

/// The claims of a development token (`gateway token`).
#[derive(Debug, Serialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

/// What the gateway reads from a verified token. `exp`, `nbf`, `aud` and
/// `iss` are checked by the validation itself (in any form RFC 7519 allows).
#[derive(Debug, Deserialize)]
struct VerifiedClaims {
    sub: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    rooms: Option<Vec<String>>,
}

/// Checks credentials for the configured mode.
pub struct Authenticator {
    mode: AuthMode,
    /// One key and its own validation per accepted algorithm.
    keys: Vec<(Algorithm, DecodingKey, Validation)>,
    allowed_origins: Vec<String>,
}

impl Authenticator {
    /// Reads the keys named in `settings`.
    ///
    /// # Errors
    /// An unreadable or malformed RS256 public key file.
    pub fn new(settings: &AuthSettings) -> anyhow::Result<Authenticator> {
        let mut keys = Vec::new();
        if let Some(secret) = settings.hs256_secret.as_deref().filter(|s| !s.is_empty()) {
            let key = DecodingKey::from_secret(secret.as_bytes());
            keys.push((Algorithm::HS256, key, validation(Algorithm::HS256, settings)));
        }
        if let Some(path) = &settings.rs256_public_key_path {
            let pem = std::fs::read(path)
                .map_err(|err| anyhow::anyhow!("auth.rs256_public_key_path {}: {err}", path.display()))?;
            let key = DecodingKey::from_rsa_pem(&pem)
                .map_err(|err| anyhow::anyhow!("auth.rs256_public_key_path {}: {err}", path.display()))?;
            keys.push((Algorithm::RS256, key, validation(Algorithm::RS256, settings)));
        }
        Ok(Authenticator { mode: settings.mode, keys, allowed_origins: settings.allowed_origins.clone() })
    }

    /// Checks the `Origin` header against the allow-list. Requests without an
    /// `Origin` (non-browser clients) pass.
    ///
    /// # Errors
    /// `forbidden` when an allow-list is configured and the origin is not on it.
    pub fn check_origin(&self, origin: Option<&str>) -> Result<(), AuthError> {
        match origin {
            Some(origin) if !self.allowed_origins.is_empty() && !self.allowed_origins.iter().any(|o| o == origin) => {
                Err(AuthError { code: ErrorCode::Forbidden, message: format!("origin {origin} is not allowed") })
            }
            _ => Ok(()),
        }
    }

    /// Authenticates an upgrade request from its query and `Authorization` header.
    ///
    /// # Errors
    /// `unauthorized` for a missing, malformed, expired or badly signed token;
    /// `bad_request` for an invalid anonymous name or user id.
    pub fn authenticate(&self, query: &HashMap<String, String>, bearer: Option<&str>) -> Result<Identity, AuthError> {
        match self.mode {
            AuthMode::Anonymous => anonymous(query),
            AuthMode::Jwt => {
                let token = query.get("token").map(String::as_str).or(bearer).filter(|t| !t.is_empty());
                let token = token
                    .ok_or_else(|| AuthError::unauthorized("a token is required (?token= or Authorization: Bearer)"))?;
                self.verify(token)
            }
        }
    }

    fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::unauthorized("malformed token"))?;
        let (_, key, validation) = self
            .keys
            .iter()
            .find(|(alg, _, _)| *alg == header.alg)
            .ok_or_else(|| AuthError::unauthorized(format!("token algorithm {:?} is not accepted", header.alg)))?;
        let data = jsonwebtoken::decode::<VerifiedClaims>(token, key, validation).map_err(|err| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match err.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                ErrorKind::ImmatureSignature => "token not valid yet (nbf)",
                ErrorKind::InvalidSignature => "bad token signature",
                ErrorKind::InvalidAudience => "wrong token audience",
                ErrorKind::InvalidIssuer => "wrong token issuer",
                ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
                ErrorKind::InvalidAlgorithm => "token algorithm is not accepted",
                _ => "invalid token",
            };
            AuthError::unauthorized(why)
        })?;
        let claims = data.claims;
        let id = UserId::parse(&claims.sub).map_err(|err| AuthError::unauthorized(format!("token sub: {err}")))?;
        let name = match claims.name {
            Some(name) => {
                DisplayName::parse(&name).map_err(|err| AuthError::unauthorized(format!("token name: {err}")))?
            }
            None => DisplayName::from_user_id(&id),
        };
        let rooms = claims.rooms.map_or(RoomGrant::All, RoomGrant::from_claim);
        Ok(Identity { user: UserRef { id, name }, rooms })
    }
}

/// Validation for one algorithm: `sub` and `exp` required, `nbf` checked when
/// present, `aud` and `iss` required and checked when configured.
fn validation(alg: Algorithm, settings: &AuthSettings) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = settings.leeway_secs;
    validation.set_required_spec_claims(&["exp", "sub"]);
    validation.validate_nbf = true;
    validation.validate_aud = false;
    if let Some(aud) = &settings.audience {
        validation.set_audience(&[aud]);
        validation.validate_aud = true;
        validation.required_spec_claims.insert("aud".to_owned());
    }
    if let Some(iss) = &settings.issuer {
        validation.set_issuer(&[iss]);
        validation.required_spec_claims.insert("iss".to_owned());
    }
    validation
}

fn anonymous(query: &HashMap<String, String>) -> Result<Identity, AuthError> {
    let id = match query.get("user") {
        Some(user) => UserId::parse(user).map_err(|err| AuthError::bad_request(format!("user: {err}")))?,
        None => {
            let n: u64 = rand::rng().random();
            UserId::parse(&format!("anon-{:012x}", n & 0xffff_ffff_ffff))
                .map_err(|err| AuthError::bad_request(err.0))?
        }
    };
    let name = match query.get("name") {
        Some(name) => DisplayName::parse(name).map_err(|err| AuthError::bad_request(format!("name: {err}")))?,
        None => DisplayName::from_user_id(&id),
    };
    Ok(Identity { user: UserRef { id, name }, rooms: RoomGrant::All })
}

/// Mints an HS256 development token (`gateway token`).
///
/// # Errors
/// Invalid `sub` or `name`, or a signing failure.
pub fn mint_token(
    secret: &str,
    sub: &str,
    name: Option<&str>,
    ttl_secs: u64,
    rooms: Option<Vec<String>>,
    settings: &AuthSettings,
) -> anyhow::Result<String> {
    UserId::parse(sub).map_err(|err| anyhow::anyhow!("--sub: {err}"))?;
    if let Some(name) = name {
        DisplayName::parse(name).map_err(|err| anyhow::anyhow!("--name: {err}"))?;
    }
    let claims = Claims {
        sub: sub.to_owned(),
        exp: jsonwebtoken::get_current_timestamp() + ttl_secs,
        name: name.map(str::to_owned),
        rooms,
        aud: settings.audience.clone(),
        iss: settings.issuer.clone(),
    };
    Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    #[test]
    fn room_grants() {
        let grant = RoomGrant::from_claim(vec!["lobby".into(), "team-*".into()]);
        assert!(grant.allows(&room("lobby")));
        assert!(grant.allows(&room("team-a")));
        assert!(!grant.allows(&room("lobby2")));
        assert!(!grant.allows(&room("other")));
        assert!(RoomGrant::All.allows(&room("x")));
        assert!(!RoomGrant::from_claim(vec![]).allows(&room("x")));
    }

    fn jwt_settings() -> AuthSettings {
        AuthSettings { mode: AuthMode::Jwt, hs256_secret: Some("s3cret".into()), ..AuthSettings::default() }
    }

    #[test]
    fn minted_token_round_trips() {
        let settings = jwt_settings();
        let auth = Authenticator::new(&settings).unwrap();
        let token = mint_token("s3cret", "alice", Some("Alice"), 60, Some(vec!["a*".into()]), &settings).unwrap();
        let id = auth.authenticate(&HashMap::new(), Some(&token)).unwrap();
        assert_eq!(id.user.id.as_str(), "alice");
        assert_eq!(id.user.name.as_str(), "Alice");
        assert!(id.rooms.allows(&room("abc")));
        assert!(!id.rooms.allows(&room("b")));
        let wrong = mint_token("other", "alice", None, 60, None, &settings).unwrap();
        assert_eq!(auth.authenticate(&HashMap::new(), Some(&wrong)).unwrap_err().code, ErrorCode::Unauthorized);
        assert_eq!(auth.authenticate(&HashMap::new(), None).unwrap_err().code, ErrorCode::Unauthorized);
    }

    #[test]
    fn anonymous_names() {
        let auth = Authenticator::new(&AuthSettings::default()).unwrap();
        let q = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let id = auth.authenticate(&q(&[("name", "bob")]), None).unwrap();
        assert!(id.user.id.as_str().starts_with("anon-"));
        assert_eq!(id.user.name.as_str(), "bob");
        let id = auth.authenticate(&q(&[("user", "u7")]), None).unwrap();
        assert_eq!(id.user.name.as_str(), "u7");
        let err = auth.authenticate(&q(&[("name", &"n".repeat(65))]), None).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest);
    }

    #[test]
    fn origins() {
        let settings = AuthSettings { allowed_origins: vec!["https://chat.example".into()], ..AuthSettings::default() };
        let auth = Authenticator::new(&settings).unwrap();
        assert!(auth.check_origin(Some("https://chat.example")).is_ok());
        assert!(auth.check_origin(None).is_ok());
        assert_eq!(auth.check_origin(Some("https://evil.example")).unwrap_err().code, ErrorCode::Forbidden);
    }
}
