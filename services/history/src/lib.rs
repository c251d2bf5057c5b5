//! The history service: serves every room's and DM conversation's history
//! over HTTP, for operators and for the gateways' `join` replays, resumes
//! and `history` pages.
//!
//! It is a thin binary over the `history-store` library, which owns the
//! keyspace, the scripts and every read and write of them; gateways link the
//! same library and append in their publish path, so sending does not
//! depend on this service being up.
//!
//! # Layout
//! - [`settings`]: configuration keys.
//! - [`http`]: the routes; the query and reply shapes are `history_store::api`.
//! - [`metrics`]: Prometheus metrics.

pub mod http;
pub mod metrics;
pub mod settings;

use std::sync::Arc;

use actix_web::web;
use anyhow::Context as _;
use chat_shared::service::Running;
use fred::clients::Pool;
use history_store::RedisStore;

pub use settings::Settings;

/// What the HTTP handlers share.
pub struct State {
    pub pool: Pool,
    pub store: RedisStore,
    /// `history.size`: the largest page served.
    pub size: usize,
    pub metrics: Arc<metrics::Metrics>,
}

/// Connects to Redis (without waiting for it), binds the HTTP API, and
/// returns the service ready to run. Must run inside an actix system.
///
/// # Errors
/// A malformed `redis.url` or an address that cannot be bound.
pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    let cluster = &settings.cluster;
    let (pool, sharded) = cluster.redis.connect_pool()?;
    let metrics = Arc::new(metrics::Metrics::new().context("metrics")?);
    let store = RedisStore::new(pool.clone(), sharded, cluster.history.clone(), cluster.dm.clone());
    let state = web::Data::new(State { pool, store, size: cluster.history.size, metrics });
    let running = chat_shared::service::serve(&settings.history_service.listen, 2, move |cfg| {
        cfg.app_data(state.clone());
        http::routes(cfg);
    })?;
    tracing::info!(port = running.port(), "history service listening");
    Ok(running)
}
