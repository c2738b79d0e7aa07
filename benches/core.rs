//! Micro-benchmarks of Candor's core, and of the machine limits they run against.
//!
//! `cargo bench --bench core` (add `-- <filter>` for one group). Figures go to BENCHMARKS.md.

use candor::merkle::{self, Frontier, Hash, NodeId};
use candor::note::SecretKey;
use candor::statement::state::Merged;
use candor::stats::{Index, Query};
use candor::tile::TileId;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

fn tree(n: u64) -> (HashMap<NodeId, Hash>, Frontier) {
    let mut m = HashMap::with_capacity(2 * n as usize);
    let mut f = Frontier::default();
    for i in 0..n {
        m.extend(f.append(merkle::leaf_hash(&i.to_be_bytes())));
    }
    (m, f)
}

fn limits(c: &mut Criterion) {
    let mut g = c.benchmark_group("limits");
    let data = vec![7u8; 1024];
    g.throughput(Throughput::Bytes(1024));
    g.bench_function("sha256_1KiB", |b| {
        b.iter(|| Sha256::digest(black_box(&data)))
    });
    g.throughput(Throughput::Elements(1));
    let k = SecretKey::generate("bench.example").unwrap();
    let v = k.verifier();
    let text = "{\"a\":1}\n";
    let line = k.signature_line(text.as_bytes());
    let signed = format!("{text}\n{line}");
    let sig = candor::note::parse(&signed).unwrap().signatures[0].sig;
    g.bench_function("ed25519_verify_strict", |b| {
        let sig = ed25519_dalek::Signature::from_bytes(&sig);
        b.iter(|| {
            assert!(v
                .key
                .verify_strict(black_box(text.as_bytes()), &sig)
                .is_ok())
        })
    });
    g.bench_function("ed25519_verify_one", |b| {
        b.iter(|| assert!(v.verify(black_box(text.as_bytes()), &sig)))
    });
    // A bundle's worth of distinct signatures, verified together as the auditor does.
    let texts: Vec<String> = (0..256).map(|i| format!("{{\"i\":{i}}}\n")).collect();
    let sigs: Vec<[u8; 64]> = texts
        .iter()
        .map(|t| {
            let signed = format!("{t}\n{}", k.signature_line(t.as_bytes()));
            candor::note::parse(&signed).unwrap().signatures[0].sig
        })
        .collect();
    let jobs: Vec<(&candor::note::VerifierKey, &[u8], &[u8; 64])> = texts
        .iter()
        .zip(&sigs)
        .map(|(t, s)| (&v, t.as_bytes(), s))
        .collect();
    g.throughput(Throughput::Elements(256));
    g.bench_function("ed25519_verify_many_256", |b| {
        b.iter(|| {
            assert!(candor::note::verify_many(black_box(&jobs))
                .iter()
                .all(|ok| *ok))
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("ed25519_sign", |b| {
        b.iter(|| k.signature_line(black_box(text.as_bytes())))
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut f = std::fs::File::create(&path).unwrap();
    g.sample_size(20);
    g.bench_function("write_4KiB_fdatasync", |b| {
        b.iter(|| {
            std::io::Write::write_all(&mut f, &[1u8; 4096]).unwrap();
            f.sync_data().unwrap();
        })
    });
    g.finish();
}

fn merkle_ops(c: &mut Criterion) {
    let mut g = c.benchmark_group("merkle");
    g.throughput(Throughput::Elements(1024));
    g.bench_function("append_1024_leaves", |b| {
        b.iter_batched(
            || tree(100_000).1,
            |mut f| {
                for i in 0..1024u64 {
                    black_box(f.append(merkle::leaf_hash(&i.to_be_bytes())));
                }
            },
            BatchSize::LargeInput,
        )
    });
    let (m, _) = tree(1 << 20);
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("inclusion_proof_1M", |b| {
        b.iter(|| {
            i = (i * 7919 + 13) % (1 << 20);
            black_box(merkle::inclusion_proof(i, 1 << 20, &m).unwrap())
        })
    });
    g.bench_function("consistency_proof_1M", |b| {
        b.iter(|| {
            i = (i * 7919 + 13) % (1 << 20);
            black_box(merkle::consistency_proof(i.max(1), 1 << 20, &m).unwrap())
        })
    });
    let proof = merkle::inclusion_proof(12345, 1 << 20, &m).unwrap();
    let root = merkle::root(1 << 20, &m).unwrap();
    let leaf = merkle::leaf_hash(&12345u64.to_be_bytes());
    g.bench_function("verify_inclusion_1M", |b| {
        b.iter(|| {
            merkle::verify_inclusion(12345, 1 << 20, &leaf, black_box(&proof), &root).unwrap()
        })
    });
    g.finish();
}

fn tiles(c: &mut Criterion) {
    let mut g = c.benchmark_group("tiles");
    g.bench_function("path_round_trip", |b| {
        b.iter(|| {
            let id = TileId {
                kind: candor::tile::TileKind::Hash(0),
                index: black_box(1234067),
                width: 5,
            };
            TileId::parse(&id.path()).unwrap()
        })
    });
    let entries: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8; 900]).collect();
    g.throughput(Throughput::Elements(256));
    g.bench_function("bundle_256_entries", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(256 * 902);
            for e in &entries {
                candor::tile::push_bundle_entry(&mut out, e);
            }
            out
        })
    });
    g.finish();
}

/// A signed request statement from a registered publisher, and a key lookup that knows it.
struct Keys(candor::statement::state::PublisherState);
impl candor::statement::verify::KeyLookup for Keys {
    fn publisher(
        &self,
        id: &str,
    ) -> Result<Option<candor::statement::state::PublisherState>, candor::store::StoreError> {
        Ok((id == self.0.id).then(|| self.0.clone()))
    }
}

fn statements(c: &mut Criterion) {
    let mut g = c.benchmark_group("statement");
    let key = SecretKey::generate("acme.example").unwrap();
    let log = SecretKey::generate("bench.example/log").unwrap();
    let record = json!({
        "kind": "user_data", "channel": "legal_process", "process": "subpoena", "country": "DE",
        "authority": {"type": "police"}, "received_on": "2026-01-15", "targets": {"accounts": 2},
        "data_categories": ["subscriber"], "disposition": "complied", "produced": ["subscriber"], "user_notified": "no",
    });
    let mut chain =
        candor::statement::chain::Chain::new("bench.example/log", "acme.example", 0, None);
    let (note, _) = chain.sign_next("request", record, &[&key]).unwrap();
    let keys = Keys(candor::statement::state::PublisherState {
        id: "acme.example".into(),
        name: "Acme".into(),
        url: None,
        status: candor::statement::state::Status::Active,
        keys: vec![candor::statement::state::KeyPeriod {
            vkey: key.verifier().to_string(),
            role: candor::statement::state::Role::Signing,
            from: 1,
            until: None,
        }],
        head: candor::problem::Head { seq: 0, hash: None },
        registered_at: 0,
    });
    candor::statement::schema::Schemas::get();
    g.bench_function("parse", |b| {
        b.iter(|| candor::statement::parse(black_box(note.as_bytes())).unwrap())
    });
    let entry = candor::entry::encode(1_000_000, 1_780_000_000_000, &note);
    g.bench_function("entry_decode", |b| {
        b.iter(|| candor::entry::decode(black_box(&entry)).unwrap())
    });
    let body = serde_json::Value::Object(candor::statement::parse(note.as_bytes()).unwrap().body);
    g.bench_function("schema_request", |b| {
        b.iter(|| {
            candor::statement::schema::Schemas::get()
                .check_statement(candor::statement::Type::Request, black_box(&body))
                .unwrap()
        })
    });
    let merged = serde_json::to_vec(&json!({"type": "request", "record": {
        "kind": "user_data", "channel": "legal_process", "process": "court_order", "country": "DE",
        "authority": {"type": "court", "name": "Amtsgericht Berlin-Tiergarten"},
        "legal_basis": "StPO 100a", "received_on": "2026-01-15", "responded_on": "2026-02-03",
        "targets": {"accounts": 3, "identifiers": 5},
        "data_categories": ["subscriber", "non_content", "traffic"], "produced": ["subscriber"],
        "disposition": "partially_complied", "user_notified": "delayed",
        "notes": "Narrowed to the three accounts named in the order; the rest was refused as overbroad."},
        "updates": []}))
    .unwrap();
    use candor::store::compress::{encode, Level};
    for (name, level) in [
        ("record_compress_small", Level::Small),
        ("record_compress_fast", Level::Fast),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| encode(b"r/acme.example/x", black_box(&merged), level))
        });
    }
    g.bench_function("parse_verify_validate", |b| {
        b.iter(|| {
            let p = candor::statement::parse(black_box(note.as_bytes())).unwrap();
            let c =
                candor::statement::verify::check(p, &keys, "bench.example/log", &log.verifier())
                    .unwrap();
            assert!(c.content.is_ok());
            c
        })
    });
    g.finish();
}

fn stats(c: &mut Criterion) {
    let mut g = c.benchmark_group("stats");
    g.sample_size(20);
    let mut idx = Index::new();
    let countries = [
        "US", "DE", "FR", "IN", "BR", "TR", "GB", "JP", "MX", "KR", "RU", "AU", "CA", "ES", "IT",
        "PK", "ID", "NG",
    ];
    let kinds = [
        "user_data",
        "content_restriction",
        "account_restriction",
        "preservation",
    ];
    let disp = [
        "complied",
        "partially_complied",
        "rejected",
        "no_data",
        "pending",
    ];
    for i in 0..1_000_000u64 {
        let record = json!({
            "kind": kinds[(i % 4) as usize], "channel": "legal_process", "process": "subpoena",
            "country": countries[(i % 18) as usize], "authority": {"type": "police"},
            "received_on": format!("20{:02}-{:02}-15", 20 + i % 7, 1 + i % 12),
            "targets": {"accounts": 1 + i % 3}, "disposition": disp[(i % 5) as usize], "user_notified": "no",
        });
        idx.upsert(
            &format!("p{}.example", i % 20),
            &format!("{i}"),
            &Merged::Request {
                record,
                updates: vec![],
            },
        );
    }
    let q = |s: &str| {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(s).unwrap();
        Query::from_params(pairs.iter().map(|(a, b)| (a.as_str(), b.as_str()))).unwrap()
    };
    for (name, query) in [
        ("1M_group_by_country_kind", "group_by=country,kind"),
        (
            "1M_group_by_period_quarter",
            "group_by=period&interval=quarter",
        ),
        (
            "1M_filter_country_group_by_disposition",
            "country=DE&group_by=disposition",
        ),
    ] {
        let query = q(query);
        g.bench_function(name, |b| b.iter(|| black_box(idx.query(&query))));
    }
    g.finish();
}

criterion_group!(benches, limits, merkle_ops, tiles, statements, stats);
criterion_main!(benches);
