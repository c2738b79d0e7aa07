//! `candor serve`: the log service.
//!
//! Settings come from, in order of precedence: the command line, `CANDOR_*` environment
//! variables, a TOML config file (`--config`), and the defaults.

use crate::service::{self, Config};
use anyhow::Context;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Default)]
pub struct Args {
    /// A TOML file with any of: data, keys, listen, origin, batch_max, batch_wait_ms, demo,
    /// rate_ip, rate_publisher, max_reads, request_timeout, header_timeout.
    #[arg(long, env = "CANDOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (the sled database) [default: data]
    #[arg(long, env = "CANDOR_DATA")]
    pub data: Option<PathBuf>,
    /// Key directory: log.key/.vkey and operator.key/.vkey, created on first start [default: keys]
    #[arg(long, env = "CANDOR_KEYS")]
    pub keys: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "CANDOR_LISTEN")]
    pub listen: Option<String>,
    /// The log's origin, its public name in checkpoints and statements [default: candor.localhost/log]
    #[arg(long, env = "CANDOR_ORIGIN")]
    pub origin: Option<String>,
    /// Most statements in one group commit [default: 1024]
    #[arg(long, env = "CANDOR_BATCH_MAX")]
    pub batch_max: Option<usize>,
    /// Longest wait, in milliseconds, for a batch to fill after its first statement [default: 2]
    #[arg(long, env = "CANDOR_BATCH_WAIT_MS")]
    pub batch_wait_ms: Option<u64>,
    /// On an empty data directory, log a few hundred clearly synthetic statements from three
    /// example publishers, to see a living log.
    #[arg(long, env = "CANDOR_DEMO")]
    pub demo: bool,
    /// Write requests per second from one client address; 0 for no limit [default: 2000]
    #[arg(long, env = "CANDOR_RATE_IP")]
    pub rate_ip: Option<u32>,
    /// Statements per minute from one publisher; 0 for no limit [default: 200000]
    #[arg(long, env = "CANDOR_RATE_PUBLISHER")]
    pub rate_publisher: Option<u32>,
    /// Expensive reads (tiles, proofs, pages, statistics) served at once [default: 256]
    #[arg(long, env = "CANDOR_MAX_READS")]
    pub max_reads: Option<usize>,
    /// Seconds to handle one request, body included [default: 30]
    #[arg(long, env = "CANDOR_REQUEST_TIMEOUT")]
    pub request_timeout: Option<u64>,
    /// Seconds a client may take to send its request headers [default: 10]
    #[arg(long, env = "CANDOR_HEADER_TIMEOUT")]
    pub header_timeout: Option<u64>,
}

/// The config file's shape: the same settings as the flags.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    data: Option<PathBuf>,
    keys: Option<PathBuf>,
    listen: Option<String>,
    origin: Option<String>,
    batch_max: Option<usize>,
    batch_wait_ms: Option<u64>,
    demo: Option<bool>,
    rate_ip: Option<u32>,
    rate_publisher: Option<u32>,
    max_reads: Option<usize>,
    request_timeout: Option<u64>,
    header_timeout: Option<u64>,
}

/// Merges flags, environment, file and defaults.
pub fn config(a: Args) -> anyhow::Result<Config> {
    let f: File = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading the config file {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("in the config file {}", p.display()))?
        }
        None => File::default(),
    };
    let d = Config::default();
    Ok(Config {
        data: a.data.or(f.data).unwrap_or(d.data),
        keys: a.keys.or(f.keys).unwrap_or(d.keys),
        listen: a.listen.or(f.listen).unwrap_or(d.listen),
        origin: a.origin.or(f.origin).unwrap_or(d.origin),
        sequencer: crate::sequencer::Config {
            max_batch: a
                .batch_max
                .or(f.batch_max)
                .unwrap_or(d.sequencer.max_batch)
                .max(1),
            max_wait: a
                .batch_wait_ms
                .or(f.batch_wait_ms)
                .map(Duration::from_millis)
                .unwrap_or(d.sequencer.max_wait),
            ..d.sequencer
        },
        demo: a.demo || f.demo.unwrap_or(false),
        limits: crate::api::limits::LimitsConfig {
            ip_per_second: a.rate_ip.or(f.rate_ip).unwrap_or(d.limits.ip_per_second),
            publisher_per_minute: a
                .rate_publisher
                .or(f.rate_publisher)
                .unwrap_or(d.limits.publisher_per_minute),
            max_expensive_reads: a
                .max_reads
                .or(f.max_reads)
                .unwrap_or(d.limits.max_expensive_reads),
            request_timeout: a
                .request_timeout
                .or(f.request_timeout)
                .map(Duration::from_secs)
                .unwrap_or(d.limits.request_timeout),
            header_timeout: a
                .header_timeout
                .or(f.header_timeout)
                .map(Duration::from_secs)
                .unwrap_or(d.limits.header_timeout),
        },
    })
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cfg = config(a)?;
    disable_transparent_huge_pages();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Blocking tasks here are CPU work (verification, proofs, pages) and reads from the
        // page cache: beyond a few per core they only queue for the same cores, and each idle
        // thread keeps its own allocator heap (64 connections grew the pool to 120 threads
        // and the server by 170 MiB).
        .max_blocking_threads(16)
        .build()?;
    rt.block_on(service::serve(cfg, shutdown_signal()))?;
    Ok(0)
}

/// mimalloc asks for transparent huge pages on its arenas. For a long-running server whose
/// heap is mostly small, scattered allocations, a 2 MiB page stays resident as long as one
/// of its objects lives: at a million entries that was 270 MiB of huge pages and 40 MiB more
/// resident memory, for no measured gain in throughput.
fn disable_transparent_huge_pages() {
    // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integers and touches no memory of
    // ours; on a kernel without it, it fails with EINVAL and nothing changes.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if r != 0 {
        tracing::debug!("transparent huge pages left as they are");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("candor.toml");
        std::fs::write(
            &p,
            "origin = \"file.example/log\"\nlisten = \"127.0.0.1:9\"\nbatch_max = 7\n",
        )
        .unwrap();
        let c = config(Args {
            config: Some(p.clone()),
            listen: Some("127.0.0.1:1".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.origin, "file.example/log");
        assert_eq!(c.listen, "127.0.0.1:1");
        assert_eq!(c.sequencer.max_batch, 7);
        assert_eq!(c.data, PathBuf::from("data"));
        std::fs::write(&p, "colour = \"blue\"\n").unwrap();
        assert!(config(Args {
            config: Some(p),
            ..Default::default()
        })
        .is_err());
    }
}
