//! Putting the log together: keys, store, sequencer, genesis entry, HTTP server.
//!
//! [`Service::open`] is what `candor serve` runs, and what the integration tests run
//! in-process (with a temporary directory, or a fault-injecting store).

use crate::api::{self, limits::LimitsConfig, AppState, Shared};
use crate::keyfile;
use crate::log::Log;
use crate::note::{self, SecretKey};
use crate::sequencer::{self, Sequencer};
use crate::statement::{self, rules::LedgerRules, state, verify};
use crate::store::{sled_store::SledStore, Store};
use anyhow::{anyhow, bail, Context};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The origin used when none is configured: fine on a laptop, wrong anywhere public.
pub const DEFAULT_ORIGIN: &str = "candor.localhost/log";

#[derive(Debug, Clone)]
pub struct Config {
    pub data: PathBuf,
    pub keys: PathBuf,
    pub listen: String,
    pub origin: String,
    pub sequencer: sequencer::Config,
    /// Fill an empty log with synthetic demo statements.
    pub demo: bool,
    pub limits: LimitsConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data: PathBuf::from("data"),
            keys: PathBuf::from("keys"),
            listen: "127.0.0.1:8080".into(),
            origin: DEFAULT_ORIGIN.into(),
            sequencer: sequencer::Config::default(),
            demo: false,
            limits: LimitsConfig::default(),
        }
    }
}

/// `[a-z0-9.-]+(/[A-Za-z0-9._~-]+)*` (spec section 2).
pub fn valid_origin(origin: &str) -> bool {
    let host = crate::statement::state::origin_host(origin);
    let mut parts = origin.split('/').skip(1);
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && parts.all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
        })
}

/// A running log (without its HTTP listener).
pub struct Service {
    pub state: Shared,
    sequencer_thread: Option<std::thread::JoinHandle<()>>,
}

impl Service {
    /// Opens the data directory and keys of `cfg`, creating missing keys, and logs the
    /// genesis entry on an empty log.
    pub async fn open(cfg: &Config) -> anyhow::Result<Service> {
        if !valid_origin(&cfg.origin) {
            bail!(
                "invalid origin {:?}: it must match [a-z0-9.-]+(/[A-Za-z0-9._~-]+)*",
                cfg.origin
            );
        }
        let (log_key, created_log) = keyfile::load_or_create(&cfg.keys, "log", &cfg.origin)?;
        let (op_key, created_op) =
            keyfile::load_or_create(&cfg.keys, "operator", &state::operator_id(&cfg.origin))?;
        for (created, what) in [(created_log, "log"), (created_op, "operator")] {
            if created {
                tracing::info!("created the {what} key pair in {}", cfg.keys.display());
            }
        }
        let store = SledStore::open(&cfg.data)
            .with_context(|| format!("opening the store in {}", cfg.data.display()))?;
        Service::open_with_limits(
            Arc::new(store),
            log_key,
            &op_key,
            cfg.sequencer,
            cfg.limits.clone(),
        )
        .await
    }

    /// Opens a log over any store (tests pass fault-injecting ones), with the default limits.
    pub async fn open_with(
        store: Arc<dyn Store>,
        log_key: SecretKey,
        op_key: &SecretKey,
        seq: sequencer::Config,
    ) -> anyhow::Result<Service> {
        Service::open_with_limits(store, log_key, op_key, seq, LimitsConfig::default()).await
    }

    pub async fn open_with_limits(
        store: Arc<dyn Store>,
        log_key: SecretKey,
        op_key: &SecretKey,
        seq: sequencer::Config,
        limits: LimitsConfig,
    ) -> anyhow::Result<Service> {
        let origin = log_key.name.clone();
        let vkey = log_key.verifier();
        let opened = tokio::task::spawn_blocking({
            let vkey = vkey.clone();
            move || Log::open(store, vkey)
        })
        .await??;
        let rules = LedgerRules {
            origin: origin.clone(),
            log_key: vkey.clone(),
        };
        let genesis_needed = opened.log.published().is_none();
        let genesis = if genesis_needed {
            Some(genesis_note(&origin, &log_key, op_key)?)
        } else {
            None
        };
        // The statistics are rebuilt in the background (a large log serves at once); a small
        // one (200 ms of work) is done before we go on, so it answers everything at once.
        let stats = Arc::new(std::sync::RwLock::new(crate::stats::Index::new()));
        let rebuilding = crate::stats::rebuild_in_background(opened.log.clone(), stats.clone());
        let t0 = std::time::Instant::now();
        while !rebuilding.is_finished() && t0.elapsed() < std::time::Duration::from_millis(200) {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let on_commit: crate::sequencer::OnCommit = {
            let stats = stats.clone();
            Box::new(move |batch, p| {
                if let Ok(mut s) = stats.write() {
                    s.apply_batch(batch, p);
                }
            })
        };
        let (sequencer, thread) = Sequencer::start(
            opened.log.clone(),
            opened.frontier,
            log_key,
            rules,
            seq,
            on_commit,
        );
        let state = Arc::new(AppState {
            log: opened.log,
            sequencer,
            log_key: vkey,
            ready: AtomicBool::new(false),
            stats,
            limits: crate::api::limits::Limits::new(limits),
        });
        if let Some(note) = genesis {
            let parsed =
                statement::parse(note.as_bytes()).map_err(|p| anyhow!("genesis: {}", p.detail))?;
            let checked = verify::check(
                parsed,
                &verify::StoreKeys(state.log.store.as_ref()),
                &origin,
                &state.log_key,
            )?;
            let ack = state
                .sequencer
                .submit(checked, || crate::problem::Problem::unavailable("stopped"))
                .await
                .map_err(|p| anyhow!("the genesis entry was refused: {}", p.detail))?;
            tracing::info!(index = ack.index, "logged the genesis entry");
        }
        state.ready.store(true, Ordering::SeqCst);
        Ok(Service {
            state,
            sequencer_thread: Some(thread),
        })
    }

    pub fn router(&self) -> axum::Router {
        api::router(self.state.clone())
    }

    /// Stops taking statements and waits until the batch in flight is committed.
    pub async fn shutdown(mut self) {
        self.state.ready.store(false, Ordering::SeqCst);
        let thread = self.sequencer_thread.take();
        drop(self);
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

/// The genesis statement (spec 3.1): signed by the log key and the operator key, naming the
/// operator's verifier key.
fn genesis_note(origin: &str, log_key: &SecretKey, op_key: &SecretKey) -> anyhow::Result<String> {
    let body = serde_json::json!({
        "v": 1,
        "log": origin,
        "publisher": origin,
        "seq": 1,
        "prev": null,
        "id": uuid::Uuid::now_v7().to_string(),
        "type": "genesis",
        "operator_key": op_key.verifier().to_string(),
    });
    Ok(note::sign(&statement::text_of(&body), &[log_key, op_key])?)
}

/// Runs the service until `shutdown` resolves, then drains and stops.
pub async fn serve(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if cfg.origin == DEFAULT_ORIGIN {
        tracing::warn!("using the default origin {DEFAULT_ORIGIN:?}: fine for local use only; set --origin for a public log");
    }
    let service = Service::open(&cfg).await?;
    if cfg.demo {
        let op_key = keyfile::read_secret(&cfg.keys.join("operator.key"))?;
        match crate::demo::populate(&service.state, &cfg.keys, &op_key).await {
            Ok(n) => println!(
                "candor: logged {n} synthetic demo statements (publisher keys in {})",
                cfg.keys.join("demo").display()
            ),
            Err(e) => tracing::warn!("{e:#}"),
        }
    }
    let addr: SocketAddr = cfg
        .listen
        .parse()
        .with_context(|| format!("--listen {:?} is not an address", cfg.listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    println!(
        "candor: serving {} on http://{}",
        cfg.origin,
        listener.local_addr()?
    );
    println!("candor: log verifier key: {}", service.state.log_key);
    let router = service.router();
    let forget = {
        // Idle rate-limit keys are dropped now and then, so memory stays bounded.
        let state = service.state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                state.limits.forget_idle();
            }
        })
    };
    api::server::serve(listener, router, cfg.limits.header_timeout, shutdown).await;
    forget.abort();
    tracing::info!("stopping: committing the batch in flight");
    service.shutdown().await;
    Ok(())
}
