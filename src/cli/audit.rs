//! `candor audit` and `candor monitor`: verify a log with nothing but its URL and its key.

use crate::audit::{self, source, Outcome, Summary};
use crate::keyfile;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// The log's base URL (http://…), or a directory holding a static tree (`candor export`).
    pub url: String,
    /// The log's verifier key: the key text, or a file holding it.
    #[arg(long)]
    pub log_key: String,
    /// Keep the last verified checkpoint, the tree's edge and the replayed state here, so the
    /// next run checks only new entries (and detects a log that shrank or forked).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Concurrent downloads.
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
}

#[derive(clap::Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub audit: Args,
    /// Seconds between audits.
    #[arg(long, default_value_t = 60)]
    pub interval: u64,
    /// A shell command to run on the first failure (the failures are on its standard input).
    #[arg(long)]
    pub on_failure: Option<String>,
    /// Stop after this many audits (default: run until a failure).
    #[arg(long)]
    pub count: Option<u64>,
}

fn print_summary(s: &Summary) {
    println!("verified {} at size {} (root {})", s.origin, s.size, s.root);
    println!("  entries checked in this run: {}", s.checked);
    println!(
        "  publishers: {} ({} revoked)",
        s.publishers, s.revoked_publishers
    );
    let kinds: Vec<String> = s
        .requests_by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!(
        "  itemised demands: {}",
        if kinds.is_empty() {
            "none".into()
        } else {
            kinds.join(", ")
        }
    );
    println!(
        "  aggregate reports: {}, national-security bands: {}",
        s.aggregates, s.bands
    );
    println!(
        "  seals: {} open, {} overdue",
        s.seals_open, s.seals_overdue
    );
    match s.stats_match {
        Some(true) => println!("  published statistics: recomputed from the entries, identical"),
        Some(false) => {}
        None => println!("  published statistics: not compared (none served for this size)"),
    }
}

/// The pre-checks run on rayon's threads at a lower priority than this one, which applies
/// the rules in log order: every entry waits for that one thread, so whenever it has work it
/// should have a core, and the pre-checks take what it leaves. (Lowering a thread's priority
/// needs no privilege.) The pool is built once per process: `candor monitor`'s later runs
/// find it built, and the error saying so is expected.
fn prefer_the_rules_thread() {
    let _ = rayon::ThreadPoolBuilder::new()
        .start_handler(|_| lower_this_thread(5))
        .build_global();
}

/// Lowers the calling thread's priority by `by` nice levels (on Linux, where the nice value
/// is per thread; elsewhere it is per process, so nothing is done).
fn lower_this_thread(by: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: getpriority and setpriority only read their integer arguments; on Linux,
    // who = 0 with PRIO_PROCESS names the calling thread.
    unsafe {
        let now = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(libc::PRIO_PROCESS, 0, (now + by).min(19));
    }
    #[cfg(not(target_os = "linux"))]
    let _ = by;
}

/// One audit: 0 verified, 1 verification failed, 2 usage or network error.
pub fn once(a: &Args, progress: bool) -> anyhow::Result<(i32, Vec<String>)> {
    prefer_the_rules_thread();
    let key = keyfile::read_verifier(&a.log_key)?;
    let src: Box<dyn source::Source> =
        if a.url.starts_with("http://") || a.url.starts_with("https://") {
            Box::new(source::Http::new(&a.url))
        } else {
            Box::new(source::Dir(PathBuf::from(&a.url)))
        };
    let opts = audit::Options {
        state: a.state.clone(),
        parallel: a.parallel,
        progress: progress && !a.json,
        ..Default::default()
    };
    match audit::audit(src.as_ref(), &key, &opts)? {
        Outcome::Verified(s) => {
            if a.json {
                println!("{}", serde_json::json!({"verified": true, "summary": s}));
            } else {
                print_summary(&s);
            }
            Ok((0, vec![]))
        }
        Outcome::Failed(f) => {
            let lines: Vec<String> = f.iter().map(|x| x.to_string()).collect();
            if a.json {
                println!("{}", serde_json::json!({"verified": false, "failures": f}));
            } else {
                for l in &lines {
                    println!("FAILED {l}");
                }
            }
            Ok((1, lines))
        }
    }
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    Ok(once(&a, std::io::IsTerminal::is_terminal(&std::io::stderr()))?.0)
}

pub fn monitor(m: MonitorArgs) -> anyhow::Result<i32> {
    let mut runs = 0;
    loop {
        let (code, failures) = match once(&m.audit, false) {
            Ok(r) => r,
            // A network error is worth a retry at the next interval, not an alarm.
            Err(e) => {
                eprintln!("candor monitor: {e:#}");
                (2, vec![])
            }
        };
        if code == 1 {
            if let Some(cmd) = &m.on_failure {
                let mut child = std::process::Command::new("sh")
                    .args(["-c", cmd])
                    .stdin(std::process::Stdio::piped())
                    .spawn()?;
                if let Some(mut stdin) = child.stdin.take() {
                    use std::io::Write;
                    let _ = stdin.write_all(failures.join("\n").as_bytes());
                }
                let _ = child.wait();
            }
            return Ok(1);
        }
        runs += 1;
        if m.count.is_some_and(|c| runs >= c) {
            return Ok(code);
        }
        std::thread::sleep(Duration::from_secs(m.interval));
    }
}
