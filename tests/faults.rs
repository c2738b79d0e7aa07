//! Storage faults: the service answers 503, acknowledges and publishes nothing it did not
//! persist, never signs two roots for one size, and recovers by itself once the fault clears.

mod common;

use candor::checkpoint::Checkpoint;
use candor::store::faulty::{Fault, FaultyStore};
use candor::store::{sled_store::SledStore, Store};
use common::*;
use std::sync::Arc;

async fn faulty_log() -> (TestLog, Arc<FaultyStore<SledStore>>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FaultyStore::new(
        SledStore::open(&dir.path().join("data")).unwrap(),
    ));
    let log = TestLog::with_store(store.clone() as Arc<dyn Store>, dir).await;
    (log, store)
}

#[tokio::test]
async fn a_failing_disk_gets_503_and_the_log_recovers_without_restart() {
    for fault in [Fault::FailWrite, Fault::FailSync] {
        let (log, store) = faulty_log().await;
        let mut op = log.operator();
        let mut acme = log.register(&mut op, "acme.example").await;
        let before = log.get("/checkpoint").await.text();
        let size = log.size().await;

        store.set(fault);
        let n = acme.next("request", user_data("DE"));
        let r = log.post(&n).await;
        assert_eq!(r.status, 503, "{fault:?}: {}", r.text());
        assert_eq!(r.content_type, "application/problem+json");
        assert!(r.json()["detail"].as_str().unwrap().contains("storage"));
        assert_eq!(r.headers["retry-after"], "1");
        // Nothing was published: same size, same checkpoint, nothing readable past it.
        assert_eq!(log.size().await, size);
        assert_eq!(log.get("/checkpoint").await.text(), before);
        assert_eq!(
            log.get(&format!("/api/v1/entries/{size}")).await.status,
            404
        );
        // While the disk fails, new statements are refused at once, not queued.
        let other = log
            .post(&acme.sign(&acme.body("request", user_data("FR"))))
            .await;
        assert_eq!(other.status, 503);

        // The fault clears: the same batch is committed (so the checkpoint for that size is
        // the one signed before), and the refused statement, resubmitted, is a duplicate.
        store.set(Fault::None);
        let mut tries = 0;
        let again = loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let r = log.post(&n).await;
            if r.status != 503 || tries > 50 {
                break r;
            }
            tries += 1;
        };
        assert_eq!(again.status, 200, "{fault:?}: {}", again.text());
        let receipt: candor::receipt::Receipt = serde_json::from_slice(&again.body).unwrap();
        receipt.verify(&log.vkey(), Some(&n)).unwrap();
        assert_eq!(receipt.index, size);
        let cp = Checkpoint::verify(&log.get("/checkpoint").await.text(), &log.vkey()).unwrap();
        assert_eq!(cp.size, size + 1);
        // And the log goes on.
        let n = acme.next("request", takedown("IN"));
        assert_eq!(log.post(&n).await.status, 201);
    }
}
