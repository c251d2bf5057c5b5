//! Integration tests: real gateways on port 0, real WebSocket clients over
//! real sockets. One test binary; one module per area.

mod helpers;

mod admin;
mod auth;
mod bench;
mod chat;
mod cluster;
mod environment;
mod failover;
mod files;
mod history;
mod hostile;
mod limits;
mod ordering;
mod outage;
mod presence;
mod presence_typing;
mod process;
mod protocol;
mod proxies;
mod rooms;
mod shutdown;
mod stack;
mod targeting;
mod web;
mod wire;
