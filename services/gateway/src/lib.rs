//! The chat gateway: a WebSocket node that speaks the protocol of
//! `docs/protocol.md`.
//!
//! # Layout
//! - [`startup`]: [`Application`] — bind, wire, serve, drain.
//! - [`settings`]: every configuration key.
//! - [`http`]: admission, `/healthz`, `/readyz`, `/metrics`; [`admin`]: the operator API.
//! - [`socket`]: the WebSocket handshake and the one task per connection that
//!   moves frames between the socket and the session.
//! - [`auth`]: anonymous and JWT authentication, Origin checks, dev tokens.
//! - [`session`]: the per-connection actor; [`outbox`]: its bounded queue.
//! - [`hub`]: which local sessions are in which room, each room's stream and
//!   fan-out, the node's subscriptions, and catch-up (its module docs trace
//!   a room message from socket to socket).
//! - [`typing`]: the typing throttle and automatic stop; [`relay`]: the
//!   throttle of read receipts and status relays.
//! - [`engine`]: the pub/sub, presence and history traits, and the embedded engine.
//! - [`limits`]: rate limiting; [`metrics`]: Prometheus metrics.

pub mod admin;
pub mod auth;
pub mod engine;
pub mod files;
pub mod http;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod node;
pub mod outbox;
pub mod relay;
pub mod session;
pub mod settings;
pub mod socket;
pub mod startup;
pub mod typing;
pub mod web;

pub use settings::Settings;
pub use startup::{Application, ShutdownHandle};
