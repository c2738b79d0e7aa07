//! The HTTP API (spec section 6): the C2SP static read API at the root, the JSON API under
//! `/api/v1`. Handlers are thin: they parse the request, hand CPU work to blocking threads,
//! and turn results into responses; every refusal is a [`Problem`].

mod problem;
pub mod read;
pub mod stats;
pub mod write;

use crate::log::Log;
use crate::note::VerifierKey;
use crate::sequencer::Sequencer;
use crate::statement::rules::LedgerRules;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub use problem::ApiError;

/// Largest batch body (spec 6.2).
pub const MAX_BATCH_BYTES: usize = 8 << 20;
/// Most items in a batch.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// What every handler shares.
pub struct AppState {
    pub log: Arc<Log>,
    pub sequencer: Sequencer<LedgerRules>,
    pub log_key: VerifierKey,
    /// Set once the genesis entry is logged and the service takes statements.
    pub ready: AtomicBool,
    /// The aggregate counts, kept in step with the log by the sequencer.
    pub stats: Arc<std::sync::RwLock<crate::stats::Index>>,
}

pub type Shared = Arc<AppState>;

/// Every route, as `(method, path)` in the router's syntax: the OpenAPI test compares this
/// list with `openapi.yaml`.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/checkpoint"),
    ("get", "/tile/{*path}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/api/v1/statements"),
    ("post", "/api/v1/statements/batch"),
    ("get", "/api/v1/entries"),
    ("get", "/api/v1/entries/{index}"),
    ("get", "/api/v1/publishers"),
    ("get", "/api/v1/publishers/{id}"),
    ("get", "/api/v1/publishers/{id}/statements/{statement_id}"),
    ("get", "/api/v1/operator"),
    ("get", "/api/v1/proof/inclusion"),
    ("get", "/api/v1/proof/consistency"),
    ("get", "/api/v1/stats"),
    ("get", "/api/v1/stats.csv"),
    ("get", "/api/v1/export/requests.ndjson"),
];

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/checkpoint", get(read::checkpoint))
        .route("/tile/{*path}", get(read::tile))
        .route("/healthz", get(read::healthz))
        .route("/readyz", get(read::readyz))
        .route("/api/v1/statements", post(write::submit))
        .route("/api/v1/statements/batch", post(write::submit_batch))
        .route("/api/v1/entries", get(read::entries))
        .route("/api/v1/entries/{index}", get(read::entry))
        .route("/api/v1/publishers", get(read::publishers))
        .route("/api/v1/publishers/{id}", get(read::publisher))
        .route(
            "/api/v1/publishers/{id}/statements/{statement_id}",
            get(read::statement),
        )
        .route("/api/v1/operator", get(read::operator))
        .route("/api/v1/proof/inclusion", get(read::inclusion))
        .route("/api/v1/proof/consistency", get(read::consistency))
        .route("/api/v1/stats", get(stats::stats))
        .route("/api/v1/stats.csv", get(stats::stats_csv))
        .route(
            "/api/v1/export/requests.ndjson",
            get(stats::export_requests),
        )
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        // The handlers enforce the spec's limits themselves (with problem answers); this is
        // the outer bound past which bodies are not even read.
        .layer(DefaultBodyLimit::max(MAX_BATCH_BYTES + 1024))
        .with_state(state)
}
