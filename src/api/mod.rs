//! The HTTP API (spec section 6): the C2SP static read API at the root, the JSON API under
//! `/api/v1`. Handlers are thin: they parse the request, hand CPU work to blocking threads,
//! and turn results into responses; every refusal is a [`Problem`].

pub mod limits;
pub mod problem;
pub mod read;
pub mod server;
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
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

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
    pub limits: limits::Limits,
}

pub type Shared = Arc<AppState>;

/// Every route, as `(method, path)` in the router's syntax: the OpenAPI test compares this
/// list with `openapi.yaml`.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/checkpoint"),
    ("get", "/tile/{*path}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
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
    ("get", "/"),
    ("get", "/publishers/{id}"),
    ("get", "/entries/{index}"),
];

pub fn router(state: Shared) -> Router {
    // Reads that cost disk and CPU share one cap, so that a crowd of them cannot starve
    // writes; past it they wait their turn.
    let expensive = Router::new()
        .route("/tile/{*path}", get(read::tile))
        .route("/api/v1/entries", get(read::entries))
        .route("/api/v1/proof/inclusion", get(read::inclusion))
        .route("/api/v1/proof/consistency", get(read::consistency))
        .route("/api/v1/stats", get(stats::stats))
        .route("/api/v1/stats.csv", get(stats::stats_csv))
        .route(
            "/api/v1/export/requests.ndjson",
            get(stats::export_requests),
        )
        // The public dashboard (HTML).
        .route("/", get(crate::web::overview))
        .route("/publishers/{id}", get(crate::web::publisher))
        .route("/entries/{index}", get(crate::web::entry))
        .route_layer(GlobalConcurrencyLimitLayer::new(
            state.limits.config.max_expensive_reads.max(1),
        ));
    let timeout = state.limits.config.request_timeout;
    Router::new()
        .route("/checkpoint", get(read::checkpoint))
        .route("/healthz", get(read::healthz))
        .route("/readyz", get(read::readyz))
        .route("/metrics", get(read::metrics))
        .route("/api/v1/statements", post(write::submit))
        .route("/api/v1/statements/batch", post(write::submit_batch))
        .route("/api/v1/entries/{index}", get(read::entry))
        .route("/api/v1/publishers", get(read::publishers))
        .route("/api/v1/publishers/{id}", get(read::publisher))
        .route("/api/v1/publishers/{id}/statements/{statement_id}", get(read::statement))
        .route("/api/v1/operator", get(read::operator))
        .merge(expensive)
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        // The handlers enforce the spec's limits themselves (with problem answers); this is
        // the outer bound past which bodies are not even read.
        .layer(DefaultBodyLimit::max(MAX_BATCH_BYTES + 1024))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<axum::body::Body>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
