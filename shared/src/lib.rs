//! What every chat service shares: the wire protocol, the error-code table,
//! configuration loading and telemetry.
//!
//! # Layout
//! - [`protocol`]: the client and server frames of `docs/protocol.md` as tagged
//!   serde enums, with validated newtypes for names and ids.
//! - [`error`]: one table that maps each error to its protocol code, HTTP status
//!   and WebSocket close code; [`BackendError`], a backend call's failure by cause.
//! - [`config`]: layered configuration (defaults, optional file, `CHAT_*`
//!   environment variables) and the one-environment layout: cluster-wide
//!   sections, one section per service.
//! - [`settings`]: the cluster-wide sections (Redis, auth, history, DMs,
//!   presence lease, logs), defined once for every service.
//! - [`telemetry`]: tracing subscriber setup and the Prometheus text encoder.
//! - [`keys`]: Redis key and channel names, hash-tagged per room and user.
//! - [`wire`]: the payload format on pub/sub channels between nodes.
//! - [`scripts`]: Lua scripts run by more than one service.
//! - [`redis`]: Redis connection settings and client setup; [`http`]: the HTTP error type.
//! - [`service`]: `main`, HTTP server and common routes of the presence and history services.

pub mod config;
pub mod error;
pub mod http;
pub mod keys;
pub mod protocol;
pub mod redis;
pub mod scripts;
pub mod service;
pub mod settings;
pub mod telemetry;
pub mod wire;

pub use error::{BackendError, BackendResult, CloseCode, ErrorCode};
