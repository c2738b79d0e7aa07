//! `candor bench`: a load generator for a running log.
//!
//! Write modes pre-sign every statement before the clock starts (each connection owns one
//! publisher, so its chain stays in order), then post them through the single or the batch
//! endpoint. Read modes hammer inclusion proofs, full tiles or statistics. Every run is
//! bounded in count and time, and talks to loopback only unless told otherwise.

use crate::keyfile;
use crate::note::SecretKey;
use crate::statement::chain::Chain;
use crate::statement::state::operator_id;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// POST /api/v1/statements, one statement a request.
    Single,
    /// POST /api/v1/statements/batch.
    Batch,
    /// GET /api/v1/proof/inclusion for random indexes.
    Proof,
    /// GET full hash tiles at level 0.
    Tile,
    /// GET /api/v1/stats grouped by country and kind.
    Stats,
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value = "single")]
    pub mode: Mode,
    /// The log's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Concurrent connections (for writes, also the number of publishers).
    #[arg(long, short = 'c', default_value_t = 64)]
    pub connections: usize,
    /// Statements (writes) or requests (reads) to send in all.
    #[arg(long, short = 'n', default_value_t = 20_000)]
    pub count: usize,
    /// Stop after this many seconds whatever the count.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Statements per batch request.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// The operator's secret key, to register the benchmark's publishers.
    #[arg(long, default_value = "keys/operator.key")]
    pub operator_key: PathBuf,
    /// The log's verifier key (text or file); its name is the origin.
    #[arg(long, default_value = "keys/log.vkey")]
    pub log_key: String,
    /// The server's process id, to report its peak memory (from /proc).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The server's data directory, to report disk use per entry.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Allow a server that is not on loopback.
    #[arg(long)]
    pub allow_remote: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .max_idle_connections_per_host(1024)
        .build()
}

/// A realistic request record; varied so that the stats index has something to do.
fn record(i: usize) -> Value {
    const COUNTRIES: [&str; 8] = ["US", "DE", "FR", "IN", "BR", "TR", "GB", "JP"];
    json!({
        "kind": "user_data", "channel": "legal_process", "process": "subpoena",
        "country": COUNTRIES[i % COUNTRIES.len()], "authority": {"type": "police", "name": "Benchmark Police Department"},
        "received_on": "2026-01-15", "responded_on": "2026-02-01", "targets": {"accounts": 1 + i % 3},
        "data_categories": ["subscriber", "non_content"], "produced": ["subscriber"],
        "disposition": "partially_complied", "user_notified": "no",
        "legal_basis": "18 U.S.C. 2703(d) (synthetic benchmark data)",
        "notes": "SYNTHETIC BENCHMARK DATA: not a real demand",
    })
}

fn post(
    agent: &ureq::Agent,
    url: &str,
    body: &str,
    content_type: &str,
) -> Result<(u16, String), String> {
    match agent
        .post(url)
        .set("content-type", content_type)
        .send_string(body)
    {
        Ok(r) => Ok((r.status(), r.into_string().unwrap_or_default())),
        Err(ureq::Error::Status(code, r)) => Ok((code, r.into_string().unwrap_or_default())),
        Err(e) => Err(e.to_string()),
    }
}

/// Registers `n` fresh publishers and pre-signs `per` statements for each.
fn presign(a: &Args, n: usize, per: usize) -> anyhow::Result<Vec<Vec<String>>> {
    let op = keyfile::read_secret(&a.operator_key)?;
    let log_key = keyfile::read_verifier(&a.log_key)?;
    let origin = log_key.name.clone();
    let agent = agent();
    let base = a.server.trim_end_matches('/');
    let head: Value = agent
        .get(&format!("{base}/api/v1/operator"))
        .call()
        .context("reading the operator's chain head")?
        .into_json()?;
    let mut opc = Chain::new(
        &origin,
        &operator_id(&origin),
        head["head"]["seq"].as_u64().unwrap_or(0),
        head["head"]["hash"].as_str().map(str::to_string),
    );
    let run = uuid::Uuid::now_v7().simple().to_string();
    let mut registrations = Vec::new();
    let mut keys = Vec::new();
    for i in 0..n {
        let id = format!("bench{i}-{}.example", &run[run.len() - 10..]);
        let key = SecretKey::generate(&id)?;
        let rec = SecretKey::generate(&id)?;
        let fields = json!({"subject": id, "name": format!("Benchmark publisher {i}"), "key": key.verifier().to_string(), "recovery_key": rec.verifier().to_string()});
        registrations.push(opc.sign_next("register", fields, &[&op, &key])?.0);
        keys.push(key);
    }
    for chunk in registrations.chunks(500) {
        let (code, body) = post(
            &agent,
            &format!("{base}/api/v1/statements/batch"),
            &json!({"statements": chunk}).to_string(),
            "application/json",
        )
        .map_err(anyhow::Error::msg)?;
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if code != 200
            || v["results"]
                .as_array()
                .is_none_or(|r| r.iter().any(|x| x["status"] != 201))
        {
            bail!("registering the benchmark publishers failed ({code}): {body}");
        }
    }
    let signed: Vec<anyhow::Result<Vec<String>>> = std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(p, key)| {
                let origin = origin.clone();
                s.spawn(move || {
                    let mut c = Chain::new(&origin, &key.name, 0, None);
                    (0..per)
                        .map(|i| Ok(c.sign_next("request", record(p + i), &[key])?.0))
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("signer thread failed")))
            })
            .collect()
    });
    signed.into_iter().collect()
}

/// Latency percentiles in milliseconds.
fn percentiles(mut v: Vec<f64>) -> Value {
    if v.is_empty() {
        return json!(null);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    json!({"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": v[v.len() - 1]})
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Peak and current memory of a process, in MiB, from /proc.
fn memory(pid: u32) -> Option<Value> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(round(kb / 1024.0))
    };
    Some(json!({"peak_rss_mib": field("VmHWM:")?, "rss_mib": field("VmRSS:")?}))
}

fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let url = a.server.trim_end_matches('/').to_string();
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    if !a.allow_remote
        && !(host == "localhost"
            || host.starts_with("127.")
            || host == "["
            || url.contains("://[::1]"))
    {
        bail!("{url} is not on loopback; pass --allow-remote to load another machine");
    }
    let conns = a.connections.max(1);
    let deadline = Duration::from_secs(a.duration);
    let sent = AtomicUsize::new(0);
    let ok = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let latencies = Mutex::new(Vec::<f64>::new());
    let size_before: u64 = agent()
        .get(&format!("{url}/api/v1/proof/inclusion?index=0"))
        .call()
        .ok()
        .and_then(|r| r.into_json::<Value>().ok())
        .and_then(|v| v["size"].as_u64())
        .unwrap_or(0);
    let work: Vec<Vec<String>> = match a.mode {
        Mode::Single | Mode::Batch => {
            let per = a.count.div_ceil(conns);
            eprintln!(
                "pre-signing {} statements for {conns} publishers…",
                per * conns
            );
            presign(&a, conns, per)?
        }
        _ => vec![Vec::new(); conns],
    };
    eprintln!("running {:?} with {conns} connections…", a.mode);
    let start = Instant::now();
    std::thread::scope(|s| {
        for (c, notes) in work.iter().enumerate() {
            let (url, sent, ok, errors, latencies, a) = (&url, &sent, &ok, &errors, &latencies, &a);
            s.spawn(move || {
                let agent = agent();
                let mut mine = Vec::new();
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (c as u64 + 1);
                let mut next = || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut pos = 0;
                while start.elapsed() < deadline {
                    let t = Instant::now();
                    let (n, result) = match a.mode {
                        Mode::Single => {
                            let Some(note) = notes.get(pos) else { break };
                            pos += 1;
                            (
                                1,
                                post(
                                    &agent,
                                    &format!("{url}/api/v1/statements"),
                                    note,
                                    "text/plain",
                                )
                                .map(|(c, _)| c == 201 || c == 200),
                            )
                        }
                        Mode::Batch => {
                            if pos >= notes.len() {
                                break;
                            }
                            let end = (pos + a.batch_size).min(notes.len());
                            let body = json!({"statements": &notes[pos..end]}).to_string();
                            let n = end - pos;
                            pos = end;
                            let r = post(
                                &agent,
                                &format!("{url}/api/v1/statements/batch"),
                                &body,
                                "application/json",
                            )
                            .map(|(code, body)| {
                                code == 200
                                    && serde_json::from_str::<Value>(&body)
                                        .ok()
                                        .and_then(|v| {
                                            v["results"]
                                                .as_array()
                                                .map(|r| r.iter().all(|x| x["status"] == 201))
                                        })
                                        .unwrap_or(false)
                            });
                            (n, r)
                        }
                        read => {
                            if sent.fetch_add(1, Ordering::Relaxed) >= a.count {
                                break;
                            }
                            let path = match read {
                                Mode::Proof => format!(
                                    "/api/v1/proof/inclusion?index={}&size={size_before}",
                                    next() % size_before.max(1)
                                ),
                                Mode::Tile => format!(
                                    "/tile/0/{}",
                                    crate::tile::encode_index(next() % (size_before / 256).max(1))
                                ),
                                _ => "/api/v1/stats?group_by=country,kind".to_string(),
                            };
                            let r = match agent.get(&format!("{url}{path}")).call() {
                                Ok(r) => {
                                    let mut sink = Vec::new();
                                    std::io::Read::read_to_end(&mut r.into_reader(), &mut sink)
                                        .map(|_| true)
                                        .map_err(|e| e.to_string())
                                }
                                Err(ureq::Error::Status(_, _)) => Ok(false),
                                Err(e) => Err(e.to_string()),
                            };
                            (0, r)
                        }
                    };
                    mine.push(t.elapsed().as_secs_f64() * 1000.0);
                    match result {
                        Ok(true) => {
                            ok.fetch_add(n.max(1) as u64, Ordering::Relaxed);
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                if let Ok(mut l) = latencies.lock() {
                    l.extend(mine);
                }
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let done = ok.load(Ordering::Relaxed);
    let lat = latencies.into_inner().unwrap_or_default();
    let requests = lat.len();
    let mut out = json!({
        "mode": format!("{:?}", a.mode).to_lowercase(),
        "connections": conns,
        "seconds": round(elapsed),
        "ok": done,
        "errors": errors.load(Ordering::Relaxed),
        "requests": requests,
        "requests_per_second": round(requests as f64 / elapsed),
        "latency_ms": percentiles(lat),
    });
    if matches!(a.mode, Mode::Single | Mode::Batch) {
        out["statements_per_second"] = json!(round(done as f64 / elapsed));
    }
    if let Some(pid) = a.server_pid {
        out["server_memory"] = memory(pid).unwrap_or(Value::Null);
    }
    if let Some(d) = &a.data {
        let size_after: u64 = agent()
            .get(&format!("{url}/api/v1/proof/inclusion?index=0"))
            .call()
            .ok()
            .and_then(|r| r.into_json::<Value>().ok())
            .and_then(|v| v["size"].as_u64())
            .unwrap_or(0);
        let bytes = dir_size(d);
        // The entries' own bytes, as the log serves them: the last full entry bundle, less
        // the two-byte length before each entry (the first, partial one for a small log).
        let w = crate::tile::WIDTH;
        let bundle = crate::tile::TileId {
            kind: crate::tile::TileKind::Entries,
            index: (size_after / w).saturating_sub(1),
            width: size_after.clamp(1, w) as u16,
        };
        let avg_entry = agent()
            .get(&format!("{url}/{}", bundle.path()))
            .call()
            .ok()
            .and_then(|r| {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut r.into_reader(), &mut b).ok()?;
                let n = crate::tile::split_bundle(&b)?.len();
                Some(b.len().saturating_sub(2 * n) as f64 / n.max(1) as f64)
            })
            .unwrap_or(0.0);
        out["disk"] = json!({
            "bytes": bytes,
            "entries": size_after,
            "bytes_per_entry": round(bytes as f64 / size_after.max(1) as f64),
            "entry_bytes_avg": round(avg_entry),
            "ratio_to_entry_bytes": round(bytes as f64 / size_after.max(1) as f64 / avg_entry.max(1.0)),
        });
    }
    if a.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(if errors.load(Ordering::Relaxed) == 0 {
        0
    } else {
        1
    })
}
