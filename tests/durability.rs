//! Crash safety with the real binary: load it from several clients, SIGKILL it at a random
//! moment, restart, and check that every acknowledged statement is there with the same bytes,
//! that the store holds whole batches only, and that the new checkpoint is consistent with
//! every checkpoint seen before the kill.

mod common;

use candor::checkpoint::Checkpoint;
use candor::merkle::{self, Frontier};
use candor::note::{self, SecretKey, VerifierKey};
use candor::receipt::Receipt;
use common::{user_data, Signer, ORIGIN};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn start(dir: &Path, port: u16) -> Child {
    let (data, keys) = (dir.join("data"), dir.join("keys"));
    common::start_binary(
        dir,
        port,
        &[
            "--origin".as_ref(),
            ORIGIN.as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
            "--keys".as_ref(),
            keys.as_os_str(),
        ],
    )
}

fn post(base: &str, note: &str) -> Result<Receipt, String> {
    match ureq::post(&format!("{base}/api/v1/statements")).send_string(note) {
        Ok(r) => r.into_json().map_err(|e| e.to_string()),
        Err(ureq::Error::Status(code, r)) => {
            Err(format!("{code}: {}", r.into_string().unwrap_or_default()))
        }
        Err(e) => Err(e.to_string()),
    }
}

fn get(base: &str, path: &str) -> Value {
    ureq::get(&format!("{base}{path}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap()
}

/// Resets a signer's chain to what the log says.
fn sync_head(base: &str, s: &mut Signer) {
    let p = get(base, &format!("/api/v1/publishers/{}", s.id));
    s.seq = p["head"]["seq"].as_u64().unwrap();
    s.prev = p["head"]["hash"].as_str().map(str::to_string);
}

#[test]
fn acknowledged_statements_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(dir.path(), port);
    let log_key = VerifierKey::parse(
        std::fs::read_to_string(dir.path().join("keys/log.vkey"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let op_key = SecretKey::parse(
        std::fs::read_to_string(dir.path().join("keys/operator.key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let mut op = Signer::new(&format!("{ORIGIN}/operator"), op_key);
    let mut publishers = Vec::new();
    for i in 0..4 {
        let id = format!("p{i}.example");
        let key = SecretKey::generate(&id).unwrap();
        let rec = SecretKey::generate(&id).unwrap();
        let b = op.body("register", json!({"subject": id, "name": id, "key": key.verifier().to_string(), "recovery_key": rec.verifier().to_string()}));
        let n = op.sign_with(&b, &[&key]);
        post(&base, &n).unwrap();
        op.advance(&n);
        publishers.push(Signer::new(&id, key));
    }

    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut rounds = 0;
    let mut rng = 0x9e3779b97f4a7c15u64;
    for _round in 0..3 {
        for s in &mut publishers {
            sync_head(&base, s);
        }
        let handles: Vec<_> = publishers
            .drain(..)
            .map(|mut s| {
                let (base, acked, seen) = (base.clone(), acked.clone(), seen.clone());
                std::thread::spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(20);
                    while Instant::now() < deadline {
                        let n = s.next("request", user_data("DE"));
                        match post(&base, &n) {
                            Ok(r) => {
                                acked.lock().unwrap().push((r.index, n));
                                seen.lock().unwrap().push(r.checkpoint);
                            }
                            Err(_) => break, // the server is gone
                        }
                    }
                    s
                })
            })
            .collect();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(300 + rng % 900));
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        publishers = handles.into_iter().map(|h| h.join().unwrap()).collect();
        server = start(dir.path(), port);
        rounds += 1;

        // The new checkpoint verifies, and the whole tree recomputes to it from the entries.
        let cp_text = ureq::get(&format!("{base}/checkpoint"))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        let cp = Checkpoint::verify(&cp_text, &log_key).unwrap();
        let mut f = Frontier::default();
        let mut start_at = 0;
        let mut stored = std::collections::HashMap::new();
        while start_at < cp.size {
            let page = get(
                &base,
                &format!("/api/v1/entries?start={start_at}&limit=1000"),
            );
            for e in page["entries"].as_array().unwrap() {
                assert_eq!(e["index"].as_u64().unwrap(), f.size());
                let bytes = candor::entry::encode(
                    f.size(),
                    candor::entry::parse_instant(e["logged_at"].as_str().unwrap()).unwrap(),
                    e["statement"].as_str().unwrap(),
                );
                f.append(merkle::leaf_hash(&bytes));
                stored.insert(f.size() - 1, e["statement"].as_str().unwrap().to_string());
            }
            start_at = f.size();
        }
        assert_eq!(f.root(), cp.root, "entries recompute the checkpoint root");
        // Every acknowledged statement is there, byte for byte.
        for (index, note_text) in acked.lock().unwrap().iter() {
            assert_eq!(
                stored.get(index),
                Some(note_text),
                "acknowledged entry {index}"
            );
        }
        // Every checkpoint seen before is consistent with the new one.
        for old in seen.lock().unwrap().iter() {
            let old = Checkpoint::verify(old, &log_key).unwrap();
            let proof = get(
                &base,
                &format!("/api/v1/proof/consistency?from={}&to={}", old.size, cp.size),
            );
            let hashes: Vec<[u8; 32]> = proof["hashes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    note::decode_b64(h.as_str().unwrap())
                        .unwrap()
                        .try_into()
                        .unwrap()
                })
                .collect();
            merkle::verify_consistency(old.size, cp.size, &old.root, &cp.root, &hashes).unwrap();
        }
    }
    server.kill().unwrap();
    let _ = server.wait();
    let n = acked.lock().unwrap().len();
    assert!(n > 0, "some statements were acknowledged");
    eprintln!("survived {rounds} SIGKILL rounds with {n} acknowledged statements");
}
