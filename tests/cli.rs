//! The command line end to end against the real binary: every publisher command, backup and
//! restore (a tree that does not verify is refused), and request ids.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output};

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, data: &str) -> Server {
    let port = common::free_port();
    let child = common::start_binary(dir, port, &["--data".as_ref(), data.as_ref()]);
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

fn candor(dir: &Path, server: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_candor"))
        .args(args)
        .current_dir(dir)
        .env("CANDOR_SERVER", server)
        .output()
        .unwrap()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn get(base: &str, path: &str) -> serde_json::Value {
    ureq::get(&format!("{base}{path}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap()
}

#[test]
fn every_publisher_command_works_and_backups_restore() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = serve(d, "data");
    let b = s.base.as_str();
    ok(candor(d, b, &["keygen", "acme.example", "--out", "pub"]));
    ok(candor(
        d,
        b,
        &[
            "keygen",
            "acme.example",
            "--out",
            "pub",
            "--file",
            "recovery",
        ],
    ));
    ok(candor(
        d,
        b,
        &["keygen", "acme.example", "--out", "pub", "--file", "second"],
    ));
    ok(candor(
        d,
        b,
        &["keygen", "acme.example", "--out", "pub", "--file", "third"],
    ));
    ok(candor(
        d,
        b,
        &[
            "publisher",
            "add",
            "acme.example",
            "--name",
            "Acme",
            "--key",
            "pub/acme.example.key",
            "--recovery",
            "pub/recovery.vkey",
        ],
    ));
    std::fs::write(
        d.join("record.json"),
        r#"{"kind":"user_data","channel":"legal_process","process":"subpoena","country":"DE","authority":{"type":"police"},"received_on":"2026-01-10","targets":{"accounts":1},"data_categories":["subscriber"],"disposition":"pending","user_notified":"delayed"}"#,
    )
    .unwrap();
    let id = ok(candor(
        d,
        b,
        &["submit", "record.json", "--key", "pub/acme.example.key"],
    ));
    std::fs::write(
        d.join("patch.json"),
        r#"{"disposition":"complied","produced":["subscriber"],"responded_on":"2026-02-01"}"#,
    )
    .unwrap();
    ok(candor(
        d,
        b,
        &["update", &id, "patch.json", "--key", "pub/acme.example.key"],
    ));
    assert_eq!(
        get(
            b,
            &format!("/api/v1/publishers/acme.example/statements/{id}")
        )["current"]["record"]["disposition"],
        "complied"
    );

    let seal = ok(candor(
        d,
        b,
        &[
            "seal",
            "record.json",
            "--disclose-by",
            "2026-12-31",
            "--basis",
            "court_seal",
            "--show-kind",
            "--key",
            "pub/acme.example.key",
        ],
    ));
    ok(candor(
        d,
        b,
        &[
            "extend",
            &seal,
            "--disclose-by",
            "2027-06-30",
            "--reason",
            "renewed",
            "--key",
            "pub/acme.example.key",
        ],
    ));
    assert_eq!(
        get(
            b,
            &format!("/api/v1/publishers/acme.example/statements/{seal}")
        )["current"]["status"],
        "extended"
    );
    ok(candor(
        d,
        b,
        &["reveal", &seal, "--key", "pub/acme.example.key"],
    ));
    assert_eq!(
        get(
            b,
            &format!("/api/v1/publishers/acme.example/statements/{seal}")
        )["current"]["status"],
        "revealed"
    );

    std::fs::write(d.join("agg.json"), r#"{"period":"2026-H1","country":"US","kind":"user_data","requests":10,"targets":{"accounts":12}}"#).unwrap();
    ok(candor(
        d,
        b,
        &["aggregate", "agg.json", "--key", "pub/acme.example.key"],
    ));
    std::fs::write(d.join("band.json"), r#"{"period":"2026-H1","category":"nsl","requests":{"min":0,"max":249},"accounts":{"min":0,"max":249}}"#).unwrap();
    ok(candor(
        d,
        b,
        &["band", "band.json", "--key", "pub/acme.example.key"],
    ));

    ok(candor(
        d,
        b,
        &[
            "publisher",
            "rotate",
            "--key",
            "pub/acme.example.key",
            "--new-key",
            "pub/second.key",
        ],
    ));
    // The old key no longer works; the new one does.
    assert_eq!(
        candor(
            d,
            b,
            &["submit", "record.json", "--key", "pub/acme.example.key"]
        )
        .status
        .code(),
        Some(2)
    );
    ok(candor(
        d,
        b,
        &["submit", "record.json", "--key", "pub/second.key"],
    ));
    ok(candor(
        d,
        b,
        &["publisher", "revoke", "acme.example", "--reason", "test"],
    ));
    assert_eq!(
        get(b, "/api/v1/publishers/acme.example")["status"],
        "revoked"
    );
    ok(candor(
        d,
        b,
        &[
            "publisher",
            "recover",
            "--recovery-key",
            "pub/recovery.key",
            "--new-key",
            "pub/third.key",
            "--reason",
            "lost",
        ],
    ));
    assert_eq!(
        get(b, "/api/v1/publishers/acme.example")["status"],
        "active"
    );
    ok(candor(
        d,
        b,
        &["submit", "record.json", "--key", "pub/third.key"],
    ));
    // Every receipt kept verifies offline.
    for r in std::fs::read_dir(d.join("receipts")).unwrap() {
        let p = r.unwrap().path();
        ok(candor(
            d,
            b,
            &[
                "verify-receipt",
                p.to_str().unwrap(),
                "--log-key",
                "keys/log.vkey",
            ],
        ));
    }

    // Requests carry an id, echoed back.
    let r = ureq::get(&format!("{b}/healthz")).call().unwrap();
    assert_eq!(
        r.header("x-request-id").map(str::len),
        Some(36),
        "a generated UUID"
    );
    let r = ureq::get(&format!("{b}/healthz"))
        .set("x-request-id", "trace-me-42")
        .call()
        .unwrap();
    assert_eq!(r.header("x-request-id"), Some("trace-me-42"));

    // Online backup, then restore into a new data directory, which serves the same log.
    ok(candor(d, b, &["export", "backup", "--server", b]));
    let size = get(b, "/api/v1/entries?start=0&limit=1")["entries"][0]["index"].as_u64();
    assert_eq!(size, Some(0));
    let checkpoint = ureq::get(&format!("{b}/checkpoint"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    drop(s);
    ok(candor(d, "", &["import", "backup", "--data", "restored"]));
    let s2 = serve(d, "restored");
    assert_eq!(
        ureq::get(&format!("{}/checkpoint", s2.base))
            .call()
            .unwrap()
            .into_string()
            .unwrap(),
        checkpoint
    );
    assert_eq!(
        get(&s2.base, "/api/v1/publishers/acme.example")["head"]["seq"],
        11
    );
    drop(s2);
    // A tampered backup is refused, and nothing is imported.
    let t = d.join("backup/tile/entries/000.p/14");
    let mut bytes = std::fs::read(&t).unwrap_or_else(|_| panic!("{}", t.display()));
    let last = bytes.len() - 5;
    bytes[last] ^= 1;
    std::fs::write(&t, bytes).unwrap();
    let o = candor(d, "", &["import", "backup", "--data", "bad"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not verify"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !d.join("bad").exists()
            || std::fs::read_dir(d.join("bad"))
                .map(|r| r.count())
                .unwrap_or(0)
                == 0
            || {
                // sled may have created its files; the store must hold no checkpoint
                let st = candor::store::sled_store::SledStore::open(&d.join("bad")).unwrap();
                candor::store::Store::checkpoint(&st).unwrap().is_none()
            }
    );
}
