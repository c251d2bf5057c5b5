//! What the tests of every crate share: real `redis-server` processes and
//! Redis Clusters on free loopback ports, the workspace's service binaries as
//! processes, and free ports. Nothing here is a mock: each helper starts the
//! real thing and stops it on drop.
//!
//! # Layout
//! - [`redis`]: [`RedisServer`], [`RedisCluster`], [`redis_cli`].
//! - [`process`]: [`ServiceProcess`] (a workspace binary with an environment),
//!   [`workspace_binary`], [`free_port`], [`wait_listening`].
//! - [`s3`]: [`S3Server`], a real S3-compatible server (`s3s-fs`).
//! - [`haproxy`]: [`Haproxy`], a real haproxy in front of gateways.
//! - [`ws`]: WebSocket client frames as raw bytes.

pub mod haproxy;
pub mod process;
pub mod redis;
pub mod s3;
pub mod ws;

pub use haproxy::Haproxy;
pub use process::{free_port, wait_listening, workspace_binary, ServiceProcess};
pub use redis::{redis_cli, RedisCluster, RedisServer};
pub use s3::{S3Server, S3_ACCESS_KEY, S3_SECRET_KEY};
