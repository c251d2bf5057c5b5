//! The one table of error codes.
//!
//! Each [`ErrorCode`] names a failure the way a client sees it: the `code` of a
//! protocol `error` frame, the HTTP status of a refused request, and, where the
//! failure ends the connection, the WebSocket close code. Every service maps its
//! own errors onto this table so that the three views never disagree.

use serde::Serialize;

/// WebSocket close codes used by the gateways (protocol, "Close codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: normal close (the client asked, or the peer stopped answering).
    Normal,
    /// 1001: the gateway is shutting down; reconnect to another node and resume.
    GoingAway,
    /// 1002: the WebSocket framing itself was broken (RFC 6455).
    ProtocolError,
    /// 1008: policy: repeated rate-limit abuse, or an operator disconnected the user.
    Policy,
    /// 1009: a frame over `max_frame_bytes`.
    TooBig,
    /// 1011: internal error.
    Internal,
    /// 4008: slow consumer: the outgoing queue overflowed.
    SlowConsumer,
}

impl CloseCode {
    /// The numeric code sent in the close frame.
    pub const fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::Policy => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::Internal => 1011,
            CloseCode::SlowConsumer => 4008,
        }
    }
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => $code:literal, $status:literal, $close:expr; )*) => {
        /// Every error a client can be told about.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in table order (for metrics pre-registration and docs).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The `code` string of the protocol `error` frame and the HTTP error body.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status for a request refused with this error.
            pub const fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// The close code when this error ends a WebSocket connection, if it does.
            pub const fn close_code(self) -> Option<CloseCode> {
                match self { $(ErrorCode::$variant => $close,)* }
            }
        }
    };
}

error_codes! {
    /// Not JSON, not an object, a binary frame, a missing or ill-typed field, an invalid name.
    BadRequest => "bad_request", 400, None;
    /// A `type` the protocol does not have.
    UnknownType => "unknown_type", 400, None;
    /// `text` longer than `max_text_bytes` (as a frame error), or a frame over
    /// `max_frame_bytes` (which closes the connection).
    TooLarge => "too_large", 413, Some(CloseCode::TooBig);
    /// Over the message rate; sustained abuse closes the connection.
    RateLimited => "rate_limited", 429, Some(CloseCode::Policy);
    /// A room the token does not allow, an Origin not allowed, or an operator disconnect.
    Forbidden => "forbidden", 403, Some(CloseCode::Policy);
    /// `send` or `typing` to a room the session has not joined.
    NotJoined => "not_joined", 409, None;
    /// A backend could not be reached, or the node is draining.
    Unavailable => "unavailable", 503, Some(CloseCode::GoingAway);
    /// A bug: logged with the same message.
    Internal => "internal", 500, Some(CloseCode::Internal);
    /// Missing, malformed, expired or badly signed token; a wrong admin key.
    Unauthorized => "unauthorized", 401, None;
    /// Over the per-user or per-IP connection limit.
    TooManyConnections => "too_many_connections", 429, None;
    /// No such HTTP route or resource.
    NotFound => "not_found", 404, None;
    /// The HTTP route exists but not with this method.
    MethodNotAllowed => "method_not_allowed", 405, None;
    /// The client did not read fast enough (only ever a close code).
    SlowConsumer => "slow_consumer", 503, Some(CloseCode::SlowConsumer);
    /// `GET /ws` without upgrade headers that a handshake would not refuse.
    UpgradeRequired => "upgrade_required", 426, None;
    /// An upload whose type is not allowed, or whose bytes are not what its type claims.
    UnsupportedType => "unsupported_type", 415, None;
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call to a backend (Redis, the history service, an in-memory engine)
/// that did not complete, by cause: what the caller can do differs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The backend could not be reached or did not answer in time; the same
    /// call may work later. Clients get `unavailable`.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The backend answered something this code cannot read (corrupt or
    /// foreign data). Retrying will not help: clients get `internal`.
    #[error("unreadable data from a backend: {0}")]
    BadData(String),
    /// A bug on this side: a value that cannot be serialised, a command
    /// built wrong. Clients get `internal`.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The result of a backend call.
pub type BackendResult<T> = Result<T, BackendError>;

impl BackendError {
    /// The error code a client is told.
    pub const fn code(&self) -> ErrorCode {
        match self {
            BackendError::Unavailable(_) => ErrorCode::Unavailable,
            BackendError::BadData(_) | BackendError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// A failure to turn a value into JSON (always a bug here: every type
    /// this code serialises has string keys and plain values).
    pub fn serialisation(err: &serde_json::Error) -> BackendError {
        BackendError::Internal(format!("serialisation: {err}"))
    }
}

/// The JSON body of every refused HTTP request: `{"error":{"code","message"}}`.
#[derive(Debug, Serialize)]
pub struct HttpErrorBody<'a> {
    pub error: HttpErrorDetail<'a>,
}

/// The inner object of [`HttpErrorBody`].
#[derive(Debug, Serialize)]
pub struct HttpErrorDetail<'a> {
    pub code: ErrorCode,
    pub message: &'a str,
}

impl<'a> HttpErrorBody<'a> {
    pub fn new(code: ErrorCode, message: &'a str) -> Self {
        HttpErrorBody { error: HttpErrorDetail { code, message } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_name_matches_table_string() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn backend_errors_map_by_cause() {
        assert_eq!(BackendError::Unavailable("down".into()).code(), ErrorCode::Unavailable);
        assert_eq!(BackendError::BadData("garbage".into()).code(), ErrorCode::Internal);
        assert_eq!(BackendError::Internal("bug".into()).code(), ErrorCode::Internal);
    }

    #[test]
    fn close_codes_follow_the_protocol() {
        assert_eq!(ErrorCode::TooLarge.close_code().map(CloseCode::code), Some(1009));
        assert_eq!(ErrorCode::RateLimited.close_code().map(CloseCode::code), Some(1008));
        assert_eq!(ErrorCode::SlowConsumer.close_code().map(CloseCode::code), Some(4008));
        assert_eq!(ErrorCode::Unauthorized.http_status(), 401);
        assert_eq!(ErrorCode::TooManyConnections.http_status(), 429);
    }
}
