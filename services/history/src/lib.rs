//! The history service, and the history keyspace every gateway appends to.
//!
//! The keys ([`keys`]), the scripts ([`scripts`]) and every read and write of
//! them ([`store`]) live here. Gateways link this crate and run the append
//! script in their publish path (one atomic step: next seq, capped append,
//! publish), so sending does not depend on this service being up. The service
//! itself serves reads over HTTP ([`http`]): replay on join, `since` resumes
//! and paging for gateways ([`client`]), and the history API for operators.
//!
//! # Layout
//! - [`settings`]: configuration keys.
//! - [`keys`], [`scripts`], [`store`]: the keyspace and its operations.
//! - [`api`]: the query and reply shapes; [`http`]: the routes; [`client`]: the gateways' client.
//! - [`metrics`]: Prometheus metrics.

pub mod api;
pub mod client;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod scripts;
pub mod settings;
pub mod store;

use std::sync::Arc;

use actix_web::web;
use anyhow::Context as _;
use chat_shared::service::Running;
use fred::clients::Pool;

pub use settings::Settings;

/// What the HTTP handlers share.
pub struct State {
    pub pool: Pool,
    pub store: store::Store,
    pub metrics: Arc<metrics::Metrics>,
}

/// Connects to Redis (without waiting for it), binds the HTTP
/// API, and returns the service ready to run. Must run inside an actix system.
///
/// # Errors
/// A malformed `redis.url` or an address that cannot be bound.
pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    let (pool, sharded) = settings.cluster.redis.connect_pool()?;
    let metrics = Arc::new(metrics::Metrics::new().context("metrics")?);
    let store = store::Store::new(pool.clone(), sharded, settings.store());
    let state = web::Data::new(State { pool, store, metrics });
    let running = chat_shared::service::serve(&settings.history_service.listen, 2, move |cfg| {
        cfg.app_data(state.clone());
        http::routes(cfg);
    })?;
    tracing::info!(port = running.port(), "history service listening");
    Ok(running)
}
