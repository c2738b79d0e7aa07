//! Limits through the real binary: per-address and per-publisher write limits answer 429
//! with Retry-After, and /metrics counts what happened.

mod common;

use candor::note::SecretKey;
use common::{user_data, Signer, ORIGIN};
use serde_json::json;
use std::process::Child;
use std::time::{Duration, Instant};

fn start(dir: &std::path::Path, extra: &[&str]) -> (Child, String) {
    let port = common::free_port();
    let (data, keys) = (dir.join("data"), dir.join("keys"));
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--origin".as_ref(),
        ORIGIN.as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--keys".as_ref(),
        keys.as_os_str(),
    ];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    (
        common::start_binary(dir, port, &args),
        format!("http://127.0.0.1:{port}"),
    )
}

fn post(base: &str, note: &str) -> (u16, Option<String>) {
    match ureq::post(&format!("{base}/api/v1/statements")).send_string(note) {
        Ok(r) => (r.status(), None),
        Err(ureq::Error::Status(code, r)) => (code, r.header("retry-after").map(str::to_string)),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn write_limits_answer_429_with_retry_after_and_metrics_count() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start(dir.path(), &["--rate-publisher", "3", "--rate-ip", "0"]);
    let op_key = SecretKey::parse(
        std::fs::read_to_string(dir.path().join("keys/operator.key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let mut op = Signer::new(&format!("{ORIGIN}/operator"), op_key);
    let key = SecretKey::generate("acme.example").unwrap();
    let rec = SecretKey::generate("acme.example").unwrap();
    let b = op.body("register", json!({"subject": "acme.example", "name": "Acme", "key": key.verifier().to_string(), "recovery_key": rec.verifier().to_string()}));
    let n = op.sign_with(&b, &[&key]);
    assert_eq!(post(&base, &n).0, 201);
    op.advance(&n);
    let mut acme = Signer::new("acme.example", key);
    let mut statuses = Vec::new();
    let mut retry = None;
    for _ in 0..6 {
        let n = acme.next("request", user_data("DE"));
        let (status, r) = post(&base, &n);
        if status == 429 {
            acme.seq -= 1;
            acme.prev = ureq::get(&format!("{base}/api/v1/publishers/acme.example"))
                .call()
                .unwrap()
                .into_json::<serde_json::Value>()
                .unwrap()["head"]["hash"]
                .as_str()
                .map(str::to_string);
            retry = r;
        }
        statuses.push(status);
    }
    assert!(
        statuses.iter().filter(|s| **s == 201).count() <= 3,
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
    // The operator (another key) is not held back by acme's budget.
    let b = op.body(
        "revoke",
        json!({"subject": "acme.example", "reason": "test"}),
    );
    assert_eq!(post(&base, &op.sign(&b)).0, 201);

    let metrics = ureq::get(&format!("{base}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    for name in [
        "candor_submissions_total",
        "candor_batch_size",
        "candor_commit_seconds",
        "candor_fsync_seconds",
        "candor_tree_size",
        "candor_rate_limited_total",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
    assert!(metrics.contains("status=\"429\""), "{metrics}");
    server.kill().unwrap();
    let _ = server.wait();

    // Per address: a tiny budget is exhausted by a burst.
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start(dir.path(), &["--rate-ip", "1"]);
    let codes: Vec<u16> = (0..10).map(|_| post(&base, "not a note").0).collect();
    assert!(codes.contains(&429) && codes.contains(&400), "{codes:?}");
    server.kill().unwrap();
    let _ = server.wait();
}

/// Slow clients are cut: headers that never finish lose the connection after the header
/// timeout, and a body that never finishes gets 408 after the request timeout.
#[test]
fn slow_clients_are_cut_by_the_timeouts() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start(
        dir.path(),
        &["--header-timeout", "1", "--request-timeout", "1"],
    );
    let addr = base.trim_start_matches("http://").to_string();

    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    let n = slow.read(&mut buf).unwrap_or(0);
    let got = String::from_utf8_lossy(&buf[..n]).to_string();
    // Closed (or answered 408) well before our own 10 s read timeout.
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "the slow header was not cut"
    );
    assert!(n == 0 || got.contains("408"), "{got}");

    let mut body = std::net::TcpStream::connect(&addr).unwrap();
    body.write_all(
        b"POST /api/v1/statements HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    .unwrap();
    body.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t = Instant::now();
    let n = body.read(&mut buf).unwrap_or(0);
    let got = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "the slow body was not cut"
    );
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    // Meanwhile and after, the server answers.
    assert!(ureq::get(&format!("{base}/healthz")).call().is_ok());
    server.kill().unwrap();
    let _ = server.wait();
}
