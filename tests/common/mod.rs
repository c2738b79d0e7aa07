//! A whole log in-process, driven through the real HTTP router, plus helpers to make and
//! sign statements the way an independent client would.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use candor::note::{self, SecretKey, VerifierKey};
use candor::sequencer;
use candor::service::Service;
use candor::store::{sled_store::SledStore, Store};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

pub const ORIGIN: &str = "test.example/log";

pub struct TestLog {
    pub service: Service,
    pub router: axum::Router,
    pub log_key: SecretKey,
    pub op_key: SecretKey,
    pub dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl TestLog {
    pub async fn new() -> TestLog {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("data")).unwrap());
        TestLog::with_store(store, dir).await
    }

    pub async fn with_store(store: Arc<dyn Store>, dir: tempfile::TempDir) -> TestLog {
        let log_key = SecretKey::generate(ORIGIN).unwrap();
        let op_key = SecretKey::generate(&format!("{ORIGIN}/operator")).unwrap();
        let cfg = sequencer::Config {
            max_wait: std::time::Duration::from_millis(2),
            ..Default::default()
        };
        let log_key2 = SecretKey::parse(&log_key.to_text()).unwrap();
        let service = Service::open_with(store, log_key2, &op_key, cfg)
            .await
            .unwrap();
        let router = service.router();
        TestLog {
            service,
            router,
            log_key,
            op_key,
            dir,
        }
    }

    pub fn vkey(&self) -> VerifierKey {
        self.log_key.verifier()
    }

    pub async fn call(&self, method: &str, uri: &str, body: impl Into<Body>) -> Resp {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(body.into())
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let content_type = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("").to_string())
            .unwrap_or_default();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Resp {
            status,
            content_type,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.call("GET", uri, Body::empty()).await
    }

    pub async fn post(&self, note: &str) -> Resp {
        self.call("POST", "/api/v1/statements", note.to_string())
            .await
    }

    pub async fn post_batch(&self, notes: &[String]) -> Resp {
        let body = json!({"statements": notes}).to_string();
        self.call("POST", "/api/v1/statements/batch", body).await
    }

    /// Posts a batch whose items are arbitrary JSON values (to send items that are not notes).
    pub async fn post_batch_values(&self, items: &[Value]) -> Resp {
        let body = json!({"statements": items}).to_string();
        self.call("POST", "/api/v1/statements/batch", body).await
    }

    pub async fn size(&self) -> u64 {
        self.service.state.log.size()
    }

    /// The operator as a chain-keeping signer.
    pub fn operator(&self) -> Signer {
        Signer::new(
            &format!("{ORIGIN}/operator"),
            SecretKey::parse(&self.op_key.to_text()).unwrap(),
        )
    }

    /// Registers a publisher; returns its signer (with its recovery key).
    pub async fn register(&self, op: &mut Signer, id: &str) -> Signer {
        let key = SecretKey::generate(id).unwrap();
        let recovery = SecretKey::generate(id).unwrap();
        let body = op.body("register", json!({
            "subject": id, "name": format!("{id} Inc."), "url": format!("https://{id}/transparency"),
            "key": key.verifier().to_string(), "recovery_key": recovery.verifier().to_string(),
        }));
        let n = op.sign_with(&body, &[&key]);
        let r = self.post(&n).await;
        assert_eq!(r.status, 201, "register {id}: {}", r.text());
        op.advance(&n);
        let mut s = Signer::new(id, key);
        s.recovery = Some(recovery);
        s
    }
}

/// Keeps a publisher's chain (seq, prev) and signs its statements.
pub struct Signer {
    pub id: String,
    pub key: SecretKey,
    pub recovery: Option<SecretKey>,
    pub seq: u64,
    pub prev: Option<String>,
}

impl Signer {
    pub fn new(id: &str, key: SecretKey) -> Signer {
        Signer {
            id: id.into(),
            key,
            recovery: None,
            seq: 0,
            prev: None,
        }
    }

    /// A statement body of `type` with the common fields filled in for the next position.
    pub fn body(&self, ty: &str, fields: Value) -> Value {
        let mut b = json!({
            "v": 1, "log": ORIGIN, "publisher": self.id, "seq": self.seq + 1, "prev": self.prev,
            "id": uuid::Uuid::now_v7().to_string(), "type": ty,
        });
        for (k, v) in fields.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    }

    /// Signs with the current key, then `extra` keys.
    pub fn sign_with(&self, body: &Value, extra: &[&SecretKey]) -> String {
        let mut signers = vec![&self.key];
        signers.extend_from_slice(extra);
        note::sign(&text(body), &signers).unwrap()
    }

    pub fn sign(&self, body: &Value) -> String {
        self.sign_with(body, &[])
    }

    /// Records that `note` was logged: the chain moves on.
    pub fn advance(&mut self, note: &str) {
        let t = &note[..note.find('\n').unwrap() + 1];
        self.seq += 1;
        self.prev = Some(hex::encode(candor::statement::sha256(t.as_bytes())));
    }

    /// Builds, signs and advances in one go (for statements expected to be accepted).
    pub fn next(&mut self, ty: &str, fields: Value) -> String {
        let b = self.body(ty, fields);
        let n = self.sign(&b);
        self.advance(&n);
        n
    }
}

pub fn text(body: &Value) -> String {
    format!("{}\n", serde_json::to_string(body).unwrap())
}

/// A valid user-data request record.
pub fn user_data(country: &str) -> Value {
    json!({
        "kind": "user_data", "channel": "legal_process", "process": "subpoena", "country": country,
        "authority": {"type": "police", "name": "Example Police"}, "received_on": "2026-01-15",
        "responded_on": "2026-02-01", "targets": {"accounts": 2}, "data_categories": ["subscriber", "non_content"],
        "produced": ["subscriber"], "disposition": "partially_complied", "user_notified": "no",
    })
}

/// A valid content-restriction record.
pub fn takedown(country: &str) -> Value {
    json!({
        "kind": "content_restriction", "channel": "legal_process", "process": "court_order", "country": country,
        "authority": {"type": "court"}, "received_on": "2026-03-01", "targets": {"urls": 3},
        "reasons": ["defamation"], "scope": "national", "disposition": "complied", "user_notified": "yes",
    })
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the real binary: `candor serve --listen 127.0.0.1:PORT ARGS…` in `cwd`, and waits
/// until it is ready. The caller kills it.
pub fn start_binary(
    cwd: &std::path::Path,
    port: u16,
    args: &[&std::ffi::OsStr],
) -> std::process::Child {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_candor"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .current_dir(cwd)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while ureq::get(&format!("http://127.0.0.1:{port}/readyz"))
        .call()
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not become ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child
}
