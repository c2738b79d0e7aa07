//! Prometheus metrics, served at `/metrics`.
//!
//! One registry per process: the counters describe the process, whatever number of logs a
//! test runs in it.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::OnceLock;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// `single` or `batch`.
    pub route: &'static str,
    /// The HTTP status the statement got (201, 200, 4xx, 503).
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    pub kind: &'static str,
}

pub struct Metrics {
    registry: Registry,
    /// Statements submitted, by outcome.
    pub submissions: Family<Outcome, Counter>,
    /// Statements per group commit.
    pub batch_size: Histogram,
    /// Time of one durable commit (write, flush and fsync).
    pub commit_seconds: Histogram,
    /// Time of the fsync part of a commit.
    pub fsync_seconds: Histogram,
    /// Failed commits (each is retried with the same batch).
    pub commit_failures: Counter,
    /// Published tree size.
    pub tree_size: Gauge,
    /// Proof requests by kind (inclusion, consistency).
    pub proofs: Family<Kind, Counter>,
    /// Requests refused by a rate limit, by limit (ip, publisher).
    pub rate_limited: Family<Kind, Counter>,
}

pub fn get() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let mut registry = Registry::with_prefix("candor");
        let m = Metrics {
            submissions: Family::default(),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            fsync_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            commit_failures: Counter::default(),
            tree_size: Gauge::default(),
            proofs: Family::default(),
            rate_limited: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "submissions",
            "Statements submitted, by outcome",
            m.submissions.clone(),
        );
        registry.register(
            "batch_size",
            "Statements per group commit",
            m.batch_size.clone(),
        );
        registry.register(
            "commit_seconds",
            "Duration of a durable commit",
            m.commit_seconds.clone(),
        );
        registry.register(
            "fsync_seconds",
            "Duration of the fsync part of a commit",
            m.fsync_seconds.clone(),
        );
        registry.register(
            "commit_failures",
            "Commits that failed and were retried",
            m.commit_failures.clone(),
        );
        registry.register("tree_size", "Published tree size", m.tree_size.clone());
        registry.register(
            "proof_requests",
            "Proof requests, by kind",
            m.proofs.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit",
            m.rate_limited.clone(),
        );
        Metrics { registry, ..m }
    })
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
