//! WebSocket connections below the session actor: the handshake
//! ([`upgrade`]), the frames on the wire ([`frames`]) and the one task that
//! moves them between the socket and the session ([`conn`]).
//!
//! The session actor ([`crate::session`]) owns everything the protocol
//! needs; this module only moves bytes, and holds none while a connection is
//! idle.

pub mod conn;
pub mod frames;
pub mod upgrade;

pub use frames::Incoming;
