//! The ledger through the real router: every statement type on the happy path, receipts,
//! the registry and merged records.

mod common;

use candor::checkpoint::Checkpoint;
use candor::receipt::Receipt;
use common::*;
use serde_json::json;

#[tokio::test]
async fn every_statement_type_is_accepted_and_receipts_verify_offline() {
    let log = TestLog::new().await;
    assert_eq!(log.size().await, 1, "genesis is entry 0");
    let mut op = log.operator();
    let mut acme = log.register(&mut op, "acme.example").await;

    // request
    let n = acme.next("request", user_data("DE"));
    let r = log.post(&n).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let receipt: Receipt = serde_json::from_slice(&r.body).unwrap();
    let cp = receipt.verify(&log.vkey(), Some(&n)).unwrap();
    assert_eq!(cp.size, 3);
    assert_eq!(receipt.index, 2);
    let request_id = serde_json::from_str::<serde_json::Value>(n.lines().next().unwrap()).unwrap()
        ["id"]
        .as_str()
        .unwrap()
        .to_string();

    // duplicate: same bytes, 200, a receipt for the original entry
    let again = log.post(&n).await;
    assert_eq!(again.status, 200);
    let r2: Receipt = serde_json::from_slice(&again.body).unwrap();
    assert_eq!(r2.index, 2);
    r2.verify(&log.vkey(), Some(&n)).unwrap();
    assert_eq!(log.size().await, 3);

    // update: advances the disposition
    let n = acme.next("update", json!({"of": request_id, "patch": {"disposition": "complied", "produced": ["subscriber", "non_content"]}}));
    assert_eq!(log.post(&n).await.status, 201);

    // seal, extend, reveal
    let salt = [7u8; 32];
    let record = user_data("FR");
    let request_text = serde_json::to_string(&record).unwrap();
    let commitment = hex::encode(candor::statement::seal::commitment(
        ORIGIN,
        "acme.example",
        &salt,
        &request_text,
    ));
    let n = acme.next("seal", json!({"commitment": commitment, "disclose_by": "2027-01-01", "basis": "non_disclosure_order", "kind": "user_data", "country": "FR"}));
    let seal_id = serde_json::from_str::<serde_json::Value>(n.lines().next().unwrap()).unwrap()
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(log.post(&n).await.status, 201);
    let n = acme.next(
        "extend",
        json!({"of": seal_id, "disclose_by": "2027-06-01", "reason": "order renewed"}),
    );
    assert_eq!(log.post(&n).await.status, 201);
    let n = acme.next(
        "reveal",
        json!({"of": seal_id, "salt": hex::encode(salt), "request": request_text}),
    );
    let r = log.post(&n).await;
    assert_eq!(r.status, 201, "{}", r.text());

    // aggregate and band
    let n = acme.next("aggregate", json!({"period": "2026-H1", "country": "US", "kind": "user_data", "requests": 120, "targets": {"accounts": 300}, "produced": 80}));
    assert_eq!(log.post(&n).await.status, 201);
    let n = acme.next("band", json!({"period": "2026-H1", "category": "nsl", "requests": {"min": 0, "max": 249}, "accounts": {"min": 0, "max": 249}}));
    let r = log.post(&n).await;
    assert_eq!(r.status, 201, "{}", r.text());

    // rotate, then the new key signs
    let new_key = candor::note::SecretKey::generate("acme.example").unwrap();
    let b = acme.body("rotate", json!({"key": new_key.verifier().to_string()}));
    let n = acme.sign_with(&b, &[&new_key]);
    assert_eq!(log.post(&n).await.status, 201);
    acme.advance(&n);
    acme.key = new_key;
    let n = acme.next("request", takedown("TR"));
    assert_eq!(log.post(&n).await.status, 201);

    // revoke, then recover with the recovery key
    let n = op.next(
        "revoke",
        json!({"subject": "acme.example", "reason": "key compromise reported"}),
    );
    assert_eq!(log.post(&n).await.status, 201);
    let n = acme.next("request", takedown("TR"));
    assert_eq!(log.post(&n).await.status, 403);
    acme.seq -= 1; // refused: the chain did not move
    acme.prev = Some(
        log.get("/api/v1/publishers/acme.example").await.json()["head"]["hash"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let recovered = candor::note::SecretKey::generate("acme.example").unwrap();
    let b = acme.body(
        "recover",
        json!({"key": recovered.verifier().to_string(), "reason": "lost key"}),
    );
    let recovery = acme.recovery.take().unwrap();
    let n = candor::note::sign(&text(&b), &[&recovery, &recovered]).unwrap();
    let r = log.post(&n).await;
    assert_eq!(r.status, 201, "{}", r.text());
    acme.advance(&n);
    acme.key = recovered;
    let n = acme.next("request", user_data("BR"));
    assert_eq!(log.post(&n).await.status, 201);

    // the registry shows the key history and the head
    let p = log.get("/api/v1/publishers/acme.example").await.json();
    assert_eq!(p["status"], "active");
    assert_eq!(p["keys"].as_array().unwrap().len(), 4);
    assert_eq!(p["head"]["seq"], acme.seq);
    assert_eq!(p["head"]["hash"].as_str(), acme.prev.as_deref());

    // merged records
    let s = log
        .get(&format!(
            "/api/v1/publishers/acme.example/statements/{request_id}"
        ))
        .await
        .json();
    assert_eq!(s["current"]["record"]["disposition"], "complied");
    let s = log
        .get(&format!(
            "/api/v1/publishers/acme.example/statements/{seal_id}"
        ))
        .await
        .json();
    assert_eq!(s["current"]["status"], "revealed");
    assert_eq!(s["current"]["revealed"]["record"]["country"], "FR");

    // the checkpoint served verifies
    let cp = log.get("/checkpoint").await;
    assert_eq!(cp.content_type, "text/plain; charset=utf-8");
    let cp = Checkpoint::verify(&cp.text(), &log.vkey()).unwrap();
    assert_eq!(cp.size, log.size().await);
}

#[tokio::test]
async fn a_batch_chains_statements_and_rotates_mid_batch() {
    let log = TestLog::new().await;
    let mut op = log.operator();
    let mut acme = log.register(&mut op, "acme.example").await;
    let mut notes = vec![
        acme.next("request", user_data("DE")),
        acme.next("request", takedown("IN")),
    ];
    let new_key = candor::note::SecretKey::generate("acme.example").unwrap();
    let b = acme.body("rotate", json!({"key": new_key.verifier().to_string()}));
    let n = acme.sign_with(&b, &[&new_key]);
    acme.advance(&n);
    notes.push(n);
    acme.key = new_key;
    notes.push(acme.next("request", user_data("US")));
    let before = log.size().await;
    let r = log.post_batch(&notes).await;
    assert_eq!(r.status, 200);
    let results = r.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 4);
    for (i, res) in results.iter().enumerate() {
        assert_eq!(res["status"], 201, "item {i}: {res}");
        let receipt: Receipt = serde_json::from_value(res["receipt"].clone()).unwrap();
        receipt.verify(&log.vkey(), Some(&notes[i])).unwrap();
    }
    assert_eq!(log.size().await, before + 4);
}
