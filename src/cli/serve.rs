//! `candor serve`: the log service.

use crate::service::{self, Config};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Data directory (the sled database).
    #[arg(long, env = "CANDOR_DATA", default_value = "data")]
    pub data: PathBuf,
    /// Key directory: log.key/.vkey and operator.key/.vkey, created on first start.
    #[arg(long, env = "CANDOR_KEYS", default_value = "keys")]
    pub keys: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "CANDOR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The log's origin (its name in checkpoints and statements).
    #[arg(long, env = "CANDOR_ORIGIN", default_value = service::DEFAULT_ORIGIN)]
    pub origin: String,
    /// Most statements in one group commit.
    #[arg(long, env = "CANDOR_BATCH_MAX", default_value_t = 1024)]
    pub batch_max: usize,
    /// Longest wait, in milliseconds, for a batch to fill after its first statement.
    #[arg(long, env = "CANDOR_BATCH_WAIT_MS", default_value_t = 10)]
    pub batch_wait_ms: u64,
    /// On an empty data directory, log a few hundred clearly synthetic statements from three
    /// example publishers, to see a living log.
    #[arg(long, env = "CANDOR_DEMO")]
    pub demo: bool,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cfg = Config {
        data: a.data,
        keys: a.keys,
        listen: a.listen,
        origin: a.origin,
        sequencer: crate::sequencer::Config {
            max_batch: a.batch_max.max(1),
            max_wait: Duration::from_millis(a.batch_wait_ms),
            ..Default::default()
        },
        demo: a.demo,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(service::serve(cfg, shutdown_signal()))?;
    Ok(0)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
