//! Aggregate counts against a hand-computed fixture, CSV against JSON, and the index rebuilt
//! from storage against the live one.

mod common;

use candor::stats;
use common::*;
use serde_json::{json, Value};

/// Posts the fixture; returns the log.
async fn fixture() -> TestLog {
    let log = TestLog::new().await;
    let mut op = log.operator();
    let mut acme = log.register(&mut op, "acme.example").await;
    let mut globex = log.register(&mut op, "globex.example").await;
    let mut notes = Vec::new();
    // R1: user data from German police, partly complied.
    let mut r1 = user_data("DE");
    r1["received_on"] = json!("2026-01-15");
    notes.push(acme.next("request", r1));
    // R2: a Turkish court order to take down 3 URLs for defamation and privacy.
    let mut r2 = takedown("TR");
    r2["reasons"] = json!(["defamation", "privacy"]);
    notes.push(acme.next("request", r2));
    // R3: pending, then updated to complied.
    let mut r3 = user_data("DE");
    r3["received_on"] = json!("2026-07-10");
    r3["targets"] = json!({"accounts": 1});
    r3["disposition"] = json!("pending");
    r3.as_object_mut().unwrap().remove("produced");
    r3.as_object_mut().unwrap().remove("responded_on");
    let n = acme.next("request", r3);
    let r3_id = serde_json::from_str::<Value>(n.lines().next().unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    notes.push(n);
    notes.push(acme.next("update", json!({"of": r3_id, "patch": {"disposition": "complied", "responded_on": "2026-07-20", "produced": ["subscriber"]}})));
    // S1: sealed, then revealed: French user data, complied.
    let mut s1 = user_data("FR");
    s1["received_on"] = json!("2026-02-01");
    s1["targets"] = json!({"accounts": 5});
    s1["disposition"] = json!("complied");
    let text = serde_json::to_string(&s1).unwrap();
    let salt = [3u8; 32];
    let c = hex::encode(candor::statement::seal::commitment(
        ORIGIN,
        "acme.example",
        &salt,
        &text,
    ));
    let n = acme.next("seal", json!({"commitment": c, "disclose_by": "2026-12-31", "basis": "non_disclosure_order", "kind": "user_data", "country": "FR"}));
    let s1_id = serde_json::from_str::<Value>(n.lines().next().unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    notes.push(n);
    notes.push(acme.next(
        "reveal",
        json!({"of": s1_id, "salt": hex::encode(salt), "request": text}),
    ));
    // S2: overdue (disclosure date passed); S3: open, not due.
    notes.push(acme.next("seal", json!({"commitment": hex::encode([1u8; 32]), "disclose_by": "2026-01-31", "basis": "court_seal", "kind": "content_restriction", "country": "IN"})));
    notes.push(acme.next("seal", json!({"commitment": hex::encode([2u8; 32]), "disclose_by": "2099-01-01", "basis": "non_disclosure_order"})));
    // A1 and B1: counted reports.
    notes.push(acme.next("aggregate", json!({"period": "2026-H1", "country": "US", "kind": "user_data", "requests": 100, "targets": {"accounts": 150}, "produced": 60})));
    notes.push(acme.next("band", json!({"period": "2026-H1", "category": "nsl", "requests": {"min": 0, "max": 249}, "accounts": {"min": 250, "max": 499}})));
    // R4: globex, US, rejected, 2025.
    let mut r4 = user_data("US");
    r4["received_on"] = json!("2025-11-20");
    r4["targets"] = json!({"accounts": 3});
    r4["disposition"] = json!("rejected");
    r4.as_object_mut().unwrap().remove("produced");
    notes.push(globex.next("request", r4));
    let r = log.post_batch(&notes).await.json();
    for (i, x) in r["results"].as_array().unwrap().iter().enumerate() {
        assert_eq!(x["status"], 201, "fixture item {i}: {x}");
    }
    log
}

fn m(requests: u64, produced: u64, accounts: u64, urls: u64) -> Value {
    json!({"requests": requests, "produced": produced, "accounts": accounts, "identifiers": 0, "items": 0, "urls": urls})
}

fn row(key: Value, measures: Value) -> Value {
    let mut r = measures;
    r["key"] = key;
    r
}

#[tokio::test]
async fn counts_match_the_hand_computed_fixture() {
    let log = fixture().await;
    let all = log.get("/api/v1/stats").await.json();
    assert_eq!(all["size"], log.size().await);
    candor::checkpoint::Checkpoint::verify(all["checkpoint"].as_str().unwrap(), &log.vkey())
        .unwrap();
    assert_eq!(all["interval"], "half");
    // R1, R2, R3 (updated to complied), S1 (revealed), R4: five demands, four produced.
    assert_eq!(all["totals"], m(5, 4, 11, 3));
    assert_eq!(
        all["aggregates"],
        json!([row(json!({}), m(100, 60, 150, 0))])
    );
    assert_eq!(
        all["bands"],
        json!([{"publisher": "acme.example", "period": "2026-H1", "category": "nsl", "requests": {"min": 0, "max": 249}, "accounts": {"min": 250, "max": 499}}])
    );
    assert_eq!(
        all["sealed"],
        json!([
            {"publisher": "acme.example", "basis": "court_seal", "open": 1, "overdue": 1},
            {"publisher": "acme.example", "basis": "non_disclosure_order", "open": 1, "overdue": 0},
        ])
    );

    let by_country = log.get("/api/v1/stats?group_by=country").await.json();
    assert_eq!(
        by_country["rows"],
        json!([
            row(json!({"country": "DE"}), m(2, 2, 3, 0)),
            row(json!({"country": "FR"}), m(1, 1, 5, 0)),
            row(json!({"country": "TR"}), m(1, 1, 0, 3)),
            row(json!({"country": "US"}), m(1, 0, 3, 0)),
        ])
    );
    assert_eq!(
        by_country["aggregates"],
        json!([row(json!({"country": "US"}), m(100, 60, 150, 0))])
    );

    // A demand with two reasons counts under each, and once in the totals.
    let by_reason = log.get("/api/v1/stats?group_by=reason").await.json();
    assert_eq!(
        by_reason["rows"],
        json!([
            row(json!({"reason": null}), m(4, 3, 11, 0)),
            row(json!({"reason": "defamation"}), m(1, 1, 0, 3)),
            row(json!({"reason": "privacy"}), m(1, 1, 0, 3)),
        ])
    );
    assert_eq!(by_reason["totals"]["requests"], 5);
    // Reports carry no reason: grouped under null.
    assert_eq!(
        by_reason["aggregates"],
        json!([row(json!({"reason": null}), m(100, 60, 150, 0))])
    );

    let by_period = log
        .get("/api/v1/stats?group_by=period,publisher")
        .await
        .json();
    assert_eq!(
        by_period["rows"],
        json!([
            row(
                json!({"period": "2025-H2", "publisher": "globex.example"}),
                m(1, 0, 3, 0)
            ),
            row(
                json!({"period": "2026-H1", "publisher": "acme.example"}),
                m(3, 3, 7, 3)
            ),
            row(
                json!({"period": "2026-H2", "publisher": "acme.example"}),
                m(1, 1, 1, 0)
            ),
        ])
    );

    // Filters: a seal that names no country is left out under a country filter.
    let de = log
        .get("/api/v1/stats?country=DE&group_by=kind")
        .await
        .json();
    assert_eq!(de["totals"], m(2, 2, 3, 0));
    assert_eq!(de["aggregates"], json!([]));
    assert_eq!(de["sealed"], json!([]));
    let india = log.get("/api/v1/stats?country=IN").await.json();
    assert_eq!(
        india["sealed"],
        json!([{"publisher": "acme.example", "basis": "court_seal", "open": 1, "overdue": 1}])
    );

    // Ranges: reports are kept only when their key is of the range's interval.
    let h1 = log
        .get("/api/v1/stats?from=2026-H1&to=2026-H1")
        .await
        .json();
    assert_eq!(h1["totals"]["requests"], 3);
    assert_eq!(h1["aggregates"].as_array().unwrap().len(), 1);
    assert_eq!(h1["bands"].as_array().unwrap().len(), 1);
    let q1 = log
        .get("/api/v1/stats?from=2026-Q1&to=2026-Q1&interval=quarter&group_by=period")
        .await
        .json();
    assert_eq!(
        q1["rows"],
        json!([row(json!({"period": "2026-Q1"}), m(3, 3, 7, 3))])
    );
    assert_eq!(q1["aggregates"], json!([]));

    // Bad parameters are 400 problems.
    for bad in [
        "group_by=colour",
        "group_by=a,b,c,d",
        "interval=week",
        "from=2026-H3",
        "colour=red",
        "group_by=kind,kind",
    ] {
        let r = log.get(&format!("/api/v1/stats?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.content_type, "application/problem+json");
    }
}

#[tokio::test]
async fn csv_agrees_with_json_and_the_rebuilt_index_with_the_live_one() {
    let log = fixture().await;
    for q in [
        "group_by=country",
        "group_by=reason,kind",
        "group_by=period&interval=month",
        "",
    ] {
        let j = log.get(&format!("/api/v1/stats?{q}")).await.json();
        let c = log.get(&format!("/api/v1/stats.csv?{q}")).await;
        assert_eq!(c.content_type, "text/csv; charset=utf-8");
        // RFC 4180: every record, the last included, ends with CRLF, and no bare LF.
        let body = String::from_utf8(c.body.clone()).unwrap();
        assert!(body.ends_with("\r\n"), "{body:?}");
        assert_eq!(
            body.matches('\n').count(),
            body.matches("\r\n").count(),
            "{body:?}"
        );
        let mut rd = csv::Reader::from_reader(c.body.as_slice());
        let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_string).collect();
        let group: Vec<String> = j["group_by"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap().to_string())
            .collect();
        let mut expected_header = group.clone();
        expected_header.extend(
            [
                "requests",
                "produced",
                "accounts",
                "identifiers",
                "items",
                "urls",
            ]
            .map(String::from),
        );
        assert_eq!(header, expected_header);
        let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
        let jrows = j["rows"].as_array().unwrap();
        assert_eq!(rows.len(), jrows.len(), "{q}");
        for (r, jr) in rows.iter().zip(jrows) {
            for (i, g) in group.iter().enumerate() {
                assert_eq!(r.get(i).unwrap(), jr["key"][g].as_str().unwrap_or(""));
            }
            for (i, f) in [
                "requests",
                "produced",
                "accounts",
                "identifiers",
                "items",
                "urls",
            ]
            .iter()
            .enumerate()
            {
                assert_eq!(r.get(group.len() + i).unwrap(), jr[*f].to_string());
            }
        }
    }
    // Rebuilt from storage (as at start-up), the numbers are the same.
    let rebuilt = stats::rebuild(&log.service.state.log).unwrap();
    let live = log.service.state.stats.read().unwrap().clone();
    for q in [
        "group_by=country,kind",
        "group_by=period&interval=quarter",
        "group_by=reason",
    ] {
        let query = stats::Query::from_params(
            serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .unwrap()
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str())),
        )
        .unwrap();
        assert_eq!(rebuilt.query(&query), live.query(&query), "{q}");
    }
    assert_eq!(rebuilt.size, live.size);

    // NDJSON export: every itemised demand in merged state.
    let nd = log.get("/api/v1/export/requests.ndjson").await;
    assert_eq!(nd.content_type, "application/x-ndjson");
    let lines: Vec<Value> = nd
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert!(lines
        .iter()
        .any(|l| l["record"]["disposition"] == "complied"
            && l["updates"].as_array().unwrap().len() == 1));
    assert!(lines
        .iter()
        .any(|l| l["type"] == "seal" && l["record"]["country"] == "FR"));
}

/// Serves a log in-process, with its statistics optionally falsified.
struct WithStats {
    inner: candor::audit::source::Local,
    state: candor::api::Shared,
    inflate: bool,
}

impl candor::audit::source::Source for WithStats {
    fn checkpoint(&self) -> Result<String, candor::audit::source::SourceError> {
        self.inner.checkpoint()
    }
    fn tile(
        &self,
        id: &candor::tile::TileId,
    ) -> Result<Option<Vec<u8>>, candor::audit::source::SourceError> {
        self.inner.tile(id)
    }
    fn stats(&self, q: &str) -> Result<Option<Value>, candor::audit::source::SourceError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap();
        let query =
            stats::Query::from_params(pairs.iter().map(|(a, b)| (a.as_str(), b.as_str()))).unwrap();
        let mut v = candor::api::stats::run(&self.state, &query)
            .map_err(|e| candor::audit::source::SourceError::Unreachable(format!("{e:?}")))?;
        if self.inflate {
            let n = v["totals"]["requests"].as_u64().unwrap();
            v["totals"]["requests"] = json!(n + 1);
        }
        Ok(Some(v))
    }
    fn name(&self) -> String {
        "in-process".into()
    }
}

#[tokio::test]
async fn the_auditor_recomputes_the_published_counts() {
    let log = fixture().await;
    let state = log.service.state.clone();
    for inflate in [false, true] {
        let src = WithStats {
            inner: candor::audit::source::Local(state.log.clone()),
            state: state.clone(),
            inflate,
        };
        let key = log.vkey();
        let outcome = tokio::task::spawn_blocking(move || {
            candor::audit::audit(&src, &key, &Default::default()).unwrap()
        })
        .await
        .unwrap();
        match (inflate, outcome) {
            (false, candor::audit::Outcome::Verified(s)) => assert_eq!(s.stats_match, Some(true)),
            (true, candor::audit::Outcome::Failed(f)) => {
                assert_eq!(f[0].rule, "stats");
                assert!(f[0].detail.contains("totals"), "{}", f[0].detail);
            }
            (i, o) => panic!("inflate={i}: {o:?}"),
        }
    }
}

/// Audits `log` through `WithStats` with the state kept in `state`.
async fn audit_with_state(
    log: &TestLog,
    state: &std::path::Path,
    inflate: bool,
) -> candor::audit::Outcome {
    let shared = log.service.state.clone();
    let src = WithStats {
        inner: candor::audit::source::Local(shared.log.clone()),
        state: shared,
        inflate,
    };
    let key = log.vkey();
    let opts = candor::audit::Options {
        state: Some(state.to_path_buf()),
        ..Default::default()
    };
    tokio::task::spawn_blocking(move || candor::audit::audit(&src, &key, &opts).unwrap())
        .await
        .unwrap()
}

/// The next audit starts from the counts the last one kept and follows only the records that
/// changed: an update that turns a pending demand into a complied one must move `produced`,
/// or the comparison with the published counts fails.
#[tokio::test]
async fn an_incremental_audit_follows_the_counts_from_the_last_one() {
    let log = TestLog::new().await;
    let mut op = log.operator();
    let mut acme = log.register(&mut op, "acme.example").await;
    let mut pending = user_data("DE");
    pending["disposition"] = json!("pending");
    pending.as_object_mut().unwrap().remove("produced");
    pending.as_object_mut().unwrap().remove("responded_on");
    let n = acme.next("request", pending);
    let id = serde_json::from_str::<Value>(n.lines().next().unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(log.post(&n).await.status, 201);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");

    let candor::audit::Outcome::Verified(first) = audit_with_state(&log, &state, false).await
    else {
        panic!("the first audit must verify")
    };
    assert_eq!(first.stats_match, Some(true));
    let snapshot = state.join("stats-index.json");
    let kept: Value = serde_json::from_slice(&std::fs::read(&snapshot).unwrap()).unwrap();
    assert_eq!(kept["size"], log.size().await);

    let update = acme.next("update", json!({"of": id, "patch": {"disposition": "complied", "responded_on": "2026-07-20", "produced": ["subscriber"]}}));
    let more = acme.next("request", user_data("FR"));
    let r = log.post_batch(&[update, more]).await.json();
    assert!(
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == 201),
        "{r}"
    );
    let published = log.get("/api/v1/stats").await.json();
    assert_eq!(published["totals"]["produced"], 2, "{published}");

    let candor::audit::Outcome::Verified(second) = audit_with_state(&log, &state, false).await
    else {
        panic!("the incremental audit must verify")
    };
    assert_eq!((second.checked, second.stats_match), (2, Some(true)));
    assert_eq!(second.requests_by_kind.get("user_data"), Some(&2));
    let kept: Value = serde_json::from_slice(&std::fs::read(&snapshot).unwrap()).unwrap();
    assert_eq!(kept["size"], log.size().await);

    // The kept counts are still compared: a log that now publishes other numbers is caught.
    match audit_with_state(&log, &state, true).await {
        candor::audit::Outcome::Failed(f) => assert_eq!(f[0].rule, "stats", "{f:?}"),
        o => panic!("{o:?}"),
    }
}
