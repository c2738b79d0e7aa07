//! The demo log, and the derived state rebuilt from its entries alone.

use candor::service::{Config, Service};
use candor::statement::replay::{Declared, Replayer};
use candor::store::Store;

#[tokio::test]
async fn demo_fills_the_log_and_entries_alone_rebuild_the_registry_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        data: dir.path().join("data"),
        keys: dir.path().join("keys"),
        origin: "demo.example/log".into(),
        demo: true,
        ..Default::default()
    };
    let service = Service::open(&cfg).await.unwrap();
    let op_key = candor::keyfile::read_secret(&cfg.keys.join("operator.key")).unwrap();
    let n = candor::demo::populate(&service.state, &cfg.keys, &op_key)
        .await
        .unwrap();
    let log = &service.state.log;
    assert_eq!(log.size(), n as u64 + 1);
    // A second run refuses: the log is no longer empty.
    assert!(candor::demo::populate(&service.state, &cfg.keys, &op_key)
        .await
        .is_err());

    // The seals show each status a newcomer should see.
    let mut statuses = Vec::new();
    for (k, _) in log.store.scan(b"r/acme.example/").unwrap() {
        let id = String::from_utf8(k)
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let router = service.router();
        let req =
            axum::http::Request::get(format!("/api/v1/publishers/acme.example/statements/{id}"))
                .body(axum::body::Body::empty())
                .unwrap();
        let resp = tower::ServiceExt::oneshot(router, req).await.unwrap();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if let Some(s) = v["current"]["status"].as_str() {
            statuses.push(s.to_string());
        }
    }
    statuses.sort();
    assert_eq!(statuses, ["extended", "overdue", "revealed"]);

    // Replaying every entry with the rules alone gives the same derived state.
    let key = log.log_key.clone();
    let mut replay = Replayer::new(key);
    for bytes in log.entries(0, log.size()).unwrap() {
        replay.apply(&bytes).unwrap();
    }
    for prefix in [&b"p/"[..], b"k/", b"i/", b"r/"] {
        let live = log.store.scan(prefix).unwrap();
        assert!(!live.is_empty());
        assert_eq!(
            replay.scan(prefix).unwrap(),
            live,
            "state under {:?}",
            String::from_utf8_lossy(prefix)
        );
    }
    // A pre-check reading ahead of the rules learns the keys the entries declare: with them,
    // every signature line of every statement is verified in the pre-check, none is left for
    // the rules to verify one at a time; without them, a new publisher's statements are.
    let checker = Replayer::new(log.log_key.clone()).prechecker();
    let entries = log.entries(0, log.size()).unwrap();
    let read = checker.read(0, &entries);
    let mut declared = Declared::default();
    checker.learn(&mut declared, &read);
    let unverified = |declared: &Declared| {
        let read = checker.read(0, &entries);
        let checked = checker.check(0, read, declared);
        checked
            .into_iter()
            .map(|p| p.unwrap().1) // test-only: the demo's entries are valid
            .flat_map(|c| c.signatures)
            .filter(|line| !line.iter().any(|(_, ok)| *ok))
            .count()
    };
    assert_eq!(unverified(&declared), 0);
    assert!(unverified(&Declared::default()) > 100);

    // A tampered entry is caught.
    let mut replay = Replayer::new(log.log_key.clone());
    let entries = log.entries(0, 5).unwrap();
    for e in &entries[..4] {
        replay.apply(e).unwrap();
    }
    let tampered = String::from_utf8(entries[4].clone())
        .unwrap()
        .replace("SYNTHETIC", "SYNTHETIX");
    assert_ne!(tampered.as_bytes(), entries[4]);
    let err = replay.apply(tampered.as_bytes()).unwrap_err();
    assert_eq!(err.rule, "authority", "{err}");
    service.shutdown().await;
}
