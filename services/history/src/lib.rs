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

use actix_web::{dev::Server, web};
use anyhow::Context as _;
use fred::clients::Pool;

pub use settings::Settings;

/// What the HTTP handlers share.
pub struct State {
    pub pool: Pool,
    pub store: store::Store,
    pub metrics: Arc<metrics::Metrics>,
}

/// A bound, ready-to-run history service.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Connects to Redis (without waiting for it) and binds the HTTP API.
    /// Must run inside an actix system.
    ///
    /// # Errors
    /// A malformed `redis.url` or an address that cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let (builder, sharded) =
            settings.redis.builder().with_context(|| format!("redis.url {}", settings.redis.url))?;
        let pool = builder.build_pool(settings.redis.pool_size).context("redis pool")?;
        pool.connect_pool();
        let metrics = Arc::new(metrics::Metrics::new().context("metrics")?);
        let store = store::Store::new(pool.clone(), sharded, settings.store());
        let state = web::Data::new(State { pool, store, metrics });
        let (port, server) = chat_shared::service::serve(&settings.listen, 2, move |cfg| {
            cfg.app_data(state.clone());
            http::routes(cfg);
        })?;
        tracing::info!(port, "history service listening");
        Ok(Application { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT.
    ///
    /// # Errors
    /// The HTTP server failing.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await?;
        Ok(())
    }
}
