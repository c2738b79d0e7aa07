//! The static tile API and the JSON read API through the real router, and start-up checks.

mod common;

use candor::checkpoint::Checkpoint;
use candor::merkle;
use candor::note;
use candor::store::{sled_store::SledStore, CommitBatch, Store};
use common::*;
use serde_json::Value;
use std::sync::Arc;

async fn log_with_requests(n: usize) -> TestLog {
    let log = TestLog::new().await;
    let mut op = log.operator();
    let mut acme = log.register(&mut op, "acme.example").await;
    let notes: Vec<String> = (0..n)
        .map(|i| acme.next("request", user_data(if i % 2 == 0 { "DE" } else { "US" })))
        .collect();
    for chunk in notes.chunks(500) {
        let r = log.post_batch(chunk).await;
        assert!(r.json()["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == 201));
    }
    log
}

#[tokio::test]
async fn tiles_are_served_with_c2sp_paths_and_headers() {
    let log = log_with_requests(300).await; // 302 entries
    assert_eq!(log.size().await, 302);
    let full = log.get("/tile/0/000").await;
    assert_eq!(full.status, 200);
    assert_eq!(full.content_type, "application/octet-stream");
    assert_eq!(
        full.headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(full.body.len(), 256 * 32);
    let partial = log.get("/tile/0/001.p/46").await;
    assert_eq!(partial.status, 200);
    assert_eq!(partial.body.len(), 46 * 32);
    // The level-1 partial tile holds the root of the first 256 leaves.
    let l1 = log.get("/tile/1/000.p/1").await;
    assert_eq!(l1.body, full_subtree_root(&full.body));
    // Entry bundles split back into the entries the JSON API serves.
    let bundle = log.get("/tile/entries/001.p/46").await;
    let entries = candor::tile::split_bundle(&bundle.body).unwrap();
    assert_eq!(entries.len(), 46);
    let e300 = log.get("/api/v1/entries/300").await.json();
    assert_eq!(
        e300["leaf_hash"],
        note::encode_b64(&merkle::leaf_hash(entries[300 - 256]))
    );
    // Beyond the tree: 404; malformed: 400, both problems.
    for (path, status) in [
        ("/tile/0/001", 404),
        ("/tile/0/001.p/47", 404),
        ("/tile/entries/002", 404),
        ("/tile/1/000", 404),
        ("/tile/0/1", 400),
        ("/tile/0/x000/001", 400),
        ("/tile/0/000.p/0", 400),
        ("/tile/9/000", 400),
        ("/tile/entries/..%2F..%2Fetc", 400),
        ("/tile/0/x999/x999/x999/x999/x999/x999/x999/999", 400),
    ] {
        let r = log.get(path).await;
        assert_eq!(r.status, status, "{path}");
        assert_eq!(r.content_type, "application/problem+json", "{path}");
    }
    // The hash tiles recompute the checkpoint's root.
    let cp = Checkpoint::verify(&log.get("/checkpoint").await.text(), &log.vkey()).unwrap();
    let mut leaves: Vec<[u8; 32]> = full
        .body
        .chunks(32)
        .map(|c| c.try_into().unwrap())
        .collect();
    leaves.extend(
        partial
            .body
            .chunks(32)
            .map(|c| <[u8; 32]>::try_from(c).unwrap()),
    );
    let mut m = std::collections::HashMap::new();
    let mut f = merkle::Frontier::default();
    for l in leaves {
        m.extend(f.append(l));
    }
    assert_eq!(f.root(), cp.root);
}

fn full_subtree_root(tile: &[u8]) -> Vec<u8> {
    let mut f = merkle::Frontier::default();
    for c in tile.chunks(32) {
        f.append(c.try_into().unwrap());
    }
    f.root().to_vec()
}

#[tokio::test]
async fn proofs_and_entries_follow_the_parameter_rules() {
    let log = log_with_requests(40).await;
    let size = log.size().await;
    let cp = Checkpoint::verify(&log.get("/checkpoint").await.text(), &log.vkey()).unwrap();
    let r = log
        .get(&format!("/api/v1/proof/inclusion?index=5&size={size}"))
        .await
        .json();
    let hashes: Vec<[u8; 32]> = r["hashes"]
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
    let e5 = log.get("/api/v1/entries/5").await.json();
    let leaf: [u8; 32] = note::decode_b64(e5["leaf_hash"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    merkle::verify_inclusion(5, size, &leaf, &hashes, &cp.root).unwrap();
    let c = log
        .get(&format!("/api/v1/proof/consistency?from=1&to={size}"))
        .await
        .json();
    assert!(!c["hashes"].as_array().unwrap().is_empty());
    assert_eq!(
        log.get(&format!("/api/v1/proof/consistency?from={size}&to={size}"))
            .await
            .json()["hashes"],
        Value::Array(vec![])
    );
    for bad in [
        format!("/api/v1/proof/inclusion?index={size}&size={size}"),
        format!("/api/v1/proof/inclusion?index=0&size={}", size + 1),
        "/api/v1/proof/inclusion?index=-1&size=2".to_string(),
        "/api/v1/proof/inclusion?index=0&size=99999999999999999999999".to_string(),
        "/api/v1/proof/inclusion?size=2".to_string(),
        "/api/v1/proof/consistency?from=0&to=2".to_string(),
        "/api/v1/proof/consistency?from=3&to=2".to_string(),
        format!("/api/v1/proof/consistency?from=1&to={}", size + 1),
        "/api/v1/entries?limit=0".to_string(),
        "/api/v1/entries?limit=1001".to_string(),
        "/api/v1/entries/abc".to_string(),
    ] {
        let r = log.get(&bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.content_type, "application/problem+json");
    }
    let page = log.get("/api/v1/entries?start=10&limit=20").await.json();
    assert_eq!(page["entries"].as_array().unwrap().len(), 20);
    assert_eq!(page["next"], 30);
    let last = log
        .get(&format!("/api/v1/entries?start={}&limit=1000", size - 2))
        .await
        .json();
    assert_eq!(last["entries"].as_array().unwrap().len(), 2);
    assert_eq!(last["next"], Value::Null);
    assert_eq!(
        log.get(&format!("/api/v1/entries/{size}")).await.status,
        404
    );
}

#[tokio::test]
async fn start_up_refuses_a_store_that_does_not_match_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log_key = note::SecretKey::generate(ORIGIN).unwrap();
    let op_key = note::SecretKey::generate(&format!("{ORIGIN}/operator")).unwrap();
    {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&data).unwrap());
        let s = candor::service::Service::open_with(
            store,
            note::SecretKey::parse(&log_key.to_text()).unwrap(),
            &op_key,
            Default::default(),
        )
        .await
        .unwrap();
        s.shutdown().await;
    }
    // Reopening an intact store works, and replays nothing (genesis is not logged twice).
    {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&data).unwrap());
        let s = candor::service::Service::open_with(
            store.clone(),
            note::SecretKey::parse(&log_key.to_text()).unwrap(),
            &op_key,
            Default::default(),
        )
        .await
        .unwrap();
        assert_eq!(s.state.log.size(), 1);
        s.shutdown().await;
        // Tamper: rewrite the genesis leaf hash, keeping the signed checkpoint.
        let cp = store.checkpoint().unwrap().unwrap();
        let batch = CommitBatch {
            hashes: vec![((0, 0), [0u8; 32])],
            checkpoint: cp,
            ..Default::default()
        };
        store.commit(&batch).unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&data).unwrap());
    let err = candor::service::Service::open_with(store, log_key, &op_key, Default::default())
        .await
        .err()
        .expect("must refuse");
    let msg = format!("{err:#}");
    assert!(msg.contains("does not match its own signature"), "{msg}");
}
