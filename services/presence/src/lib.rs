//! The presence service: sweeps crashed gateways out of the online state and
//! serves that state over HTTP.
//!
//! # Layout
//! - [`settings`]: configuration keys.
//! - [`sweeper`]: finds expired gateway leases and clears what they held.
//! - [`http`]: `/v1/rooms/{room}/members`, `/v1/users/{id}`, health, metrics.
//! - [`metrics`]: Prometheus metrics.

pub mod http;
pub mod metrics;
pub mod settings;
pub mod sweeper;

use std::sync::Arc;

use actix_web::web;
use anyhow::Context as _;
use chat_shared::service::Running;
use fred::clients::Pool;
use fred::interfaces::ClientLike;

pub use settings::Settings;

/// What the HTTP handlers share.
pub struct State {
    pub pool: Pool,
    pub metrics: Arc<metrics::Metrics>,
}

/// Connects to Redis (without waiting for it), starts the sweeper and binds the HTTP
/// API, and returns the service ready to run. Must run inside an actix system.
///
/// # Errors
/// A malformed `redis.url` or an address that cannot be bound.
pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    let (pool, sharded) = settings.cluster.redis.connect_pool()?;
    let metrics = Arc::new(metrics::Metrics::new().context("metrics")?);
    let sweeper =
        Arc::new(sweeper::Sweeper::new(pool.clone(), sharded, settings.presence_service.clone(), metrics.clone()));
    actix_rt::spawn(sweeper.run());
    let state = web::Data::new(State { pool, metrics });
    let running = chat_shared::service::serve(&settings.presence_service.listen, 1, move |cfg| {
        cfg.app_data(state.clone());
        http::routes(cfg);
    })?;
    tracing::info!(port = running.port(), replica = %settings.presence_service.replica_id, "presence service listening");
    Ok(running)
}

/// Whether the pool is connected (for `/readyz`).
pub fn redis_ready(pool: &Pool) -> bool {
    pool.is_connected()
}
