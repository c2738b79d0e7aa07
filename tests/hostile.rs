//! Hostile input against the real binary, over real TCP.
//!
//! One `candor serve` process gets a corpus of malformed and malicious requests: broken notes,
//! bad base64, lexical JSON tricks, invalid UTF-8, oversized bodies, forged or misplaced
//! signatures, invalid content, out-of-order chains, malformed batches, path traversal and
//! absurd tile indices, hostile query parameters, unknown routes and methods, wrong content
//! types, broken HTTP framing and slow clients. Each request must be refused with the status
//! spec section 5 orders (413 size, 400 form, 403 authority, 422 content, 409 order; 404 and
//! 405 for routes), with an RFC 9457 problem wherever a route answers, and the server must
//! answer `/healthz` after each one. At the end nothing may have been stored: the checkpoint
//! is byte for byte the one before the corpus. A final positive control then shows that the
//! unmutated statement the corpus was derived from is accepted.
//!
//! `ureq` sends the ordinary requests; raw `TcpStream`s send whatever a URL library would
//! normalise away (`..`, `%2e%2e`) and everything below HTTP semantics.

use candor::note::{self, SecretKey};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ORIGIN: &str = "hostile.example/log";
const PROBLEM_JSON: &str = "application/problem+json";
const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------

struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_candor"))
            .arg("serve")
            .arg("--data")
            .arg(dir.path().join("data"))
            .arg("--keys")
            .arg(dir.path().join("keys"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--origin", ORIGIN])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Server { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if ureq::get(&format!("{}/readyz", server.base()))
                .timeout(Duration::from_secs(1))
                .call()
                .is_ok()
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not become ready: {}", server.log());
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn key(&self, file: &str) -> SecretKey {
        let text = std::fs::read_to_string(self.dir.path().join("keys").join(file)).unwrap();
        SecretKey::parse(text.trim()).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// HTTP: ureq for ordinary requests, raw TCP for the rest
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body[..self.body.len().min(600)]).into_owned()
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

type Answer = Result<Resp, String>;

fn ureq_call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    content_type: Option<&str>,
    body: Option<&[u8]>,
) -> Answer {
    let mut req = agent.request(method, url);
    if let Some(ct) = content_type {
        req = req.set("Content-Type", ct);
    }
    let r = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(format!("{method} {url}: {e}")),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = resp.header(&n).unwrap_or("").to_string();
            (n, v)
        })
        .collect();
    let mut body = Vec::new();
    resp.into_reader()
        .take(64 * MIB as u64)
        .read_to_end(&mut body)
        .map_err(|e| format!("{method} {url}: reading the body: {e}"))?;
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a chunked body; None while incomplete.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = find(b, b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        if b.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// Parses one HTTP/1.1 response from `buf`; None while incomplete (unless at EOF).
fn parse_response(buf: &[u8], eof: bool) -> Option<Resp> {
    let end = find(buf, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let rest = &buf[end + 4..];
    if (100..200).contains(&status) {
        return parse_response(rest, eof);
    }
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let body = if let Some(cl) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if rest.len() < cl {
            return None;
        }
        rest[..cl].to_vec()
    } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(rest)?
    } else if eof {
        rest.to_vec()
    } else {
        return None;
    };
    Some(Resp {
        status,
        headers,
        body,
    })
}

/// Sends raw bytes on a fresh connection (written from a second thread, so that an early
/// answer to a huge body is read while the body is still going out) and reads one response.
fn raw(addr: SocketAddr, request: Vec<u8>, timeout: Duration) -> Answer {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&request);
    });
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut r = &s;
    let result = loop {
        if let Some(resp) = parse_response(&buf, false) {
            break Ok(resp);
        }
        match r.read(&mut chunk) {
            Ok(0) => {
                break parse_response(&buf, true).ok_or_else(|| {
                    format!(
                        "connection closed after {} bytes: {:?}",
                        buf.len(),
                        String::from_utf8_lossy(&buf[..buf.len().min(200)])
                    )
                })
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => {
                break parse_response(&buf, true)
                    .ok_or_else(|| format!("read failed after {} bytes: {e}", buf.len()))
            }
        }
    };
    let _ = s.shutdown(Shutdown::Both);
    let _ = writer.join();
    result
}

/// A request with `Connection: close`, for [`raw`].
fn raw_request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r =
        format!("{method} {target} HTTP/1.1\r\nHost: hostile.example\r\nConnection: close\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

// ---------------------------------------------------------------------------------------
// The corpus runner
// ---------------------------------------------------------------------------------------

struct Run {
    base: String,
    addr: SocketAddr,
    agent: ureq::Agent,
    /// Requests sent by the corpus.
    sent: usize,
    failures: Vec<String>,
}

impl Run {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn req(&self, method: &str, path: &str, ct: Option<&str>, body: Option<&[u8]>) -> Answer {
        ureq_call(&self.agent, method, &self.url(path), ct, body)
    }

    fn get(&self, path: &str) -> Answer {
        self.req("GET", path, None, None)
    }

    fn post_note(&self, note: &[u8]) -> Answer {
        self.req(
            "POST",
            "/api/v1/statements",
            Some("text/plain; charset=utf-8"),
            Some(note),
        )
    }

    fn post_batch(&self, body: &[u8]) -> Answer {
        self.req(
            "POST",
            "/api/v1/statements/batch",
            Some("application/json"),
            Some(body),
        )
    }

    fn raw(&self, request: Vec<u8>) -> Answer {
        raw(self.addr, request, Duration::from_secs(10))
    }

    fn fail(&mut self, msg: String) {
        eprintln!("FAIL {msg}");
        self.failures.push(msg);
    }

    /// GET /healthz on a fresh connection must answer 200 quickly.
    fn alive(&mut self, after: &str) {
        let t = Instant::now();
        match raw(
            self.addr,
            raw_request("GET", "/healthz", &[], b""),
            Duration::from_secs(3),
        ) {
            Ok(r) if r.status == 200 && r.body == b"ok\n" => {
                if t.elapsed() > Duration::from_secs(2) {
                    self.fail(format!("{after}: /healthz took {:?}", t.elapsed()));
                }
            }
            Ok(r) => self.fail(format!(
                "{after}: /healthz answered {} {}",
                r.status,
                r.text()
            )),
            Err(e) => self.fail(format!("{after}: /healthz failed: {e}")),
        }
    }

    /// One corpus request refused by a route: `status`, an RFC 9457 problem whose `status`
    /// matches, then a live /healthz. Returns the problem.
    fn expect(&mut self, name: &str, answer: Answer, status: u16) -> Option<Value> {
        self.sent += 1;
        let p = match answer {
            Err(e) => {
                self.fail(format!("{name}: no answer: {e}"));
                None
            }
            Ok(r) => self.check_problem(name, &r, status),
        };
        self.alive(name);
        p
    }

    fn check_problem(&mut self, name: &str, r: &Resp, status: u16) -> Option<Value> {
        if r.status != status {
            self.fail(format!(
                "{name}: status {} (want {status}): {}",
                r.status,
                r.text()
            ));
            return None;
        }
        if r.content_type() != PROBLEM_JSON {
            self.fail(format!(
                "{name}: content type {:?} (want {PROBLEM_JSON}): {}",
                r.content_type(),
                r.text()
            ));
            return None;
        }
        let Some(p) = r.json() else {
            self.fail(format!("{name}: problem body is not JSON: {}", r.text()));
            return None;
        };
        self.check_problem_value(name, &p, status);
        Some(p)
    }

    fn check_problem_value(&mut self, name: &str, p: &Value, status: u16) {
        let nonempty = |k: &str| p[k].as_str().is_some_and(|s| !s.trim().is_empty());
        if p["status"] != status || !nonempty("type") || !nonempty("title") || !nonempty("detail") {
            self.fail(format!(
                "{name}: not a complete RFC 9457 problem with status {status}: {p}"
            ));
        }
    }

    /// A request refused below the routes (HTTP framing): any status `ok` accepts; no problem
    /// body is required. Then a live /healthz.
    fn expect_bare(&mut self, name: &str, answer: Answer, ok: &[u16]) {
        self.sent += 1;
        match answer {
            Ok(r) if ok.contains(&r.status) => {}
            Ok(r) => self.fail(format!(
                "{name}: status {} (want one of {ok:?}): {}",
                r.status,
                r.text()
            )),
            // Closing the connection is an acceptable answer to broken framing.
            Err(e) if ok.contains(&0) => eprintln!("{name}: connection closed ({e})"),
            Err(e) => self.fail(format!("{name}: no answer: {e}")),
        }
        self.alive(name);
    }

    /// A batch that is answered 200 item by item: each item's status and problem.
    fn expect_items(&mut self, name: &str, answer: Answer, want: &[u16]) {
        self.sent += 1;
        match answer {
            Err(e) => self.fail(format!("{name}: no answer: {e}")),
            Ok(r) if r.status != 200 => self.fail(format!(
                "{name}: status {} (want 200): {}",
                r.status,
                r.text()
            )),
            Ok(r) => {
                let v = r.json().unwrap_or(Value::Null);
                let results = v["results"].as_array().cloned().unwrap_or_default();
                if results.len() != want.len() {
                    self.fail(format!(
                        "{name}: {} results, want {}",
                        results.len(),
                        want.len()
                    ));
                }
                for (i, (res, &st)) in results.iter().zip(want).enumerate() {
                    if res["status"] != st {
                        self.fail(format!(
                            "{name}: item {i}: status {} (want {st}): {res}",
                            res["status"]
                        ));
                    } else {
                        self.check_problem_value(&format!("{name}: item {i}"), &res["problem"], st);
                    }
                }
            }
        }
        self.alive(name);
    }
}

// ---------------------------------------------------------------------------------------
// Statements
// ---------------------------------------------------------------------------------------

/// A publisher's (or the operator's) chain position and key.
struct Chain {
    id: String,
    key: SecretKey,
    seq: u64,
    prev: Option<String>,
}

impl Chain {
    fn body(&self, ty: &str, fields: Value) -> Value {
        let mut b = json!({
            "v": 1, "log": ORIGIN, "publisher": self.id, "seq": self.seq + 1, "prev": self.prev,
            "id": uuid::Uuid::now_v7().to_string(), "type": ty,
        });
        for (k, v) in fields.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    }

    fn advance(&mut self, note: &[u8]) {
        let t = &note[..note.iter().position(|&b| b == b'\n').unwrap() + 1];
        self.seq += 1;
        self.prev = Some(hex::encode(candor::statement::sha256(t)));
    }
}

fn text(body: &Value) -> String {
    format!("{}\n", serde_json::to_string(body).unwrap())
}

/// `text` (any bytes, ending in a newline), a blank line, and one signature line per key.
fn signed(text: impl AsRef<[u8]>, keys: &[&SecretKey]) -> Vec<u8> {
    let text = text.as_ref();
    let mut n = text.to_vec();
    n.push(b'\n');
    for k in keys {
        n.extend_from_slice(k.signature_line(text).as_bytes());
    }
    n
}

/// `text`, a blank line, and one signature line as given.
fn with_sig_line(text: &str, line: &str) -> Vec<u8> {
    format!("{text}\n{line}").into_bytes()
}

/// Replaces the first `from` in `t`, which must be there.
fn subst(t: &str, from: &str, to: &str) -> String {
    assert!(t.contains(from), "{from:?} not in {t}");
    t.replacen(from, to, 1)
}

/// The statement text with a `notes` field holding these raw bytes between its quotes.
fn with_notes(t: &str, raw_string: &[u8]) -> Vec<u8> {
    let head = t.strip_suffix("}\n").unwrap();
    let mut out = head.as_bytes().to_vec();
    out.extend_from_slice(b",\"notes\":\"");
    out.extend_from_slice(raw_string);
    out.extend_from_slice(b"\"}\n");
    out
}

/// A valid user-data request record.
fn record() -> Value {
    json!({
        "kind": "user_data", "channel": "legal_process", "process": "subpoena", "country": "DE",
        "authority": {"type": "police", "name": "Example Police"}, "received_on": "2026-01-15",
        "targets": {"accounts": 2}, "data_categories": ["subscriber"],
        "disposition": "complied", "user_notified": "no",
    })
}

fn register_fields(subject: &str, name: &str, key: &SecretKey, rec: &SecretKey) -> Value {
    json!({
        "subject": subject, "name": name, "url": format!("https://{subject}/transparency"),
        "key": key.verifier().to_string(), "recovery_key": rec.verifier().to_string(),
    })
}

/// The base64 of a signature line.
fn sig_b64(line: &str) -> String {
    line.trim_end_matches('\n')
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string()
}

/// The same secret key under another name (its key id follows the name).
fn renamed(k: &SecretKey, name: &str) -> SecretKey {
    let text = k.to_text();
    let b64 = text.splitn(5, '+').nth(4).unwrap();
    let raw = note::decode_b64(b64).unwrap();
    let pk = ed25519_dalek::SigningKey::from_bytes(&raw[1..].try_into().unwrap())
        .verifying_key()
        .to_bytes();
    let id = note::key_id(name, &pk);
    SecretKey::parse(&format!("PRIVATE+KEY+{name}+{id:08x}+{b64}")).unwrap()
}

/// What the corpus works on.
struct World {
    op: Chain,
    acme: Chain,
    acme_recovery: SecretKey,
    log_key: SecretKey,
    /// A valid, unposted request by acme (seq 1): the corpus mutates it.
    good_text: String,
    good_note: Vec<u8>,
    /// A valid, unposted register of beta.example by the operator (seq 2).
    reg_note: Vec<u8>,
    /// The operator's logged register of acme.example (entry 1).
    acme_register: Vec<u8>,
}

// ---------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------

/// A server with one registered publisher (acme.example), and the corpus's raw material.
fn setup() -> (Server, Run, World) {
    let server = Server::start();
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build();
    let run = Run {
        base: server.base(),
        addr: server.addr(),
        agent,
        sent: 0,
        failures: Vec::new(),
    };
    // Register one publisher with the operator key, so that authority checks are reached.
    let mut op = Chain {
        id: format!("{ORIGIN}/operator"),
        key: server.key("operator.key"),
        seq: 0,
        prev: None,
    };
    let acme_key = SecretKey::generate("acme.example").unwrap();
    let acme_recovery = SecretKey::generate("acme.example").unwrap();
    let reg = signed(
        text(&op.body(
            "register",
            register_fields("acme.example", "Acme Inc.", &acme_key, &acme_recovery),
        )),
        &[&op.key, &acme_key],
    );
    let r = run.post_note(&reg).unwrap();
    assert_eq!(r.status, 201, "register acme: {}", r.text());
    op.advance(&reg);
    let acme = Chain {
        id: "acme.example".into(),
        key: acme_key,
        seq: 0,
        prev: None,
    };
    let good_text = text(&acme.body("request", record()));
    let good_note = signed(&good_text, &[&acme.key]);
    let beta_key = SecretKey::generate("beta.example").unwrap();
    let beta_rec = SecretKey::generate("beta.example").unwrap();
    let reg_note = signed(
        text(&op.body(
            "register",
            register_fields("beta.example", "Beta", &beta_key, &beta_rec),
        )),
        &[&op.key, &beta_key],
    );
    let w = World {
        op,
        acme,
        acme_recovery,
        log_key: server.key("log.key"),
        good_text,
        good_note,
        reg_note,
        acme_register: reg,
    };
    (server, run, w)
}

#[test]
fn hostile_corpus_is_refused_and_nothing_is_stored() {
    let started = Instant::now();
    let (server, mut run, w) = setup();
    let checkpoint_before = run.get("/checkpoint").unwrap();
    assert_eq!(checkpoint_before.status, 200);
    let checkpoint_before = String::from_utf8(checkpoint_before.body).unwrap();
    let size_before: u64 = checkpoint_before.lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(size_before, 2, "genesis and one register");

    let sections: [(&str, fn(&mut Run, &World)); 14] = [
        ("size (413)", sizes),
        ("truncated notes", truncations),
        ("signature lines", signature_lines),
        ("JSON lexical rules", json_lexical),
        ("UTF-8", utf8),
        ("authority (403)", authority),
        ("content (422)", content),
        ("order (409)", order),
        ("batch envelope", batch_envelope),
        ("batch items", batch_items),
        ("read API", read_api),
        ("routes and methods", routes_and_methods),
        ("content types and empty bodies", content_types),
        ("HTTP framing", framing),
    ];
    for (name, section) in sections {
        let (t, n) = (Instant::now(), run.sent);
        section(&mut run, &w);
        eprintln!("{name}: {} requests in {:?}", run.sent - n, t.elapsed());
    }
    let t = Instant::now();
    slow_clients(&mut run);
    eprintln!("slow clients: {:?}", t.elapsed());

    // Nothing was stored: the very same checkpoint, the same heads, the same entries.
    let cp = run.get("/checkpoint").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cp.body),
        checkpoint_before,
        "the checkpoint changed: something was stored"
    );
    let entries = run
        .get("/api/v1/entries?start=0&limit=1000")
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        entries["entries"].as_array().unwrap().len() as u64,
        size_before
    );
    let acme_view = run
        .get("/api/v1/publishers/acme.example")
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        acme_view["head"]["seq"], 0,
        "acme's chain did not move: {acme_view}"
    );
    let op_view = run.get("/api/v1/operator").unwrap().json().unwrap();
    assert_eq!(
        op_view["head"]["seq"], 1,
        "the operator's chain did not move: {op_view}"
    );
    let publishers = run.get("/api/v1/publishers").unwrap().json().unwrap();
    assert_eq!(publishers["publishers"].as_array().unwrap().len(), 1);

    let log = server.log();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    eprintln!(
        "hostile corpus: {} requests, {} failures, {:?}",
        run.sent,
        run.failures.len(),
        started.elapsed()
    );
    assert!(
        run.failures.is_empty(),
        "{} of {} hostile requests were mishandled:\n{}",
        run.failures.len(),
        run.sent,
        run.failures.join("\n")
    );
    assert!(run.sent >= 60, "corpus too small: {}", run.sent);

    // Positive control: the statement the corpus mutated is itself accepted, so the refusals
    // above were for the mutations and not for something else.
    let r = run.post_note(&w.good_note).unwrap();
    assert_eq!(r.status, 201, "the unmutated statement: {}", r.text());
    let r = run.post_note(&w.reg_note).unwrap();
    assert_eq!(r.status, 201, "the unmutated register: {}", r.text());
}

// ---------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------

/// 413 first: a note over 30,000 bytes, a batch over 1000 items or 8 MiB; nothing else
/// about such a request is looked at.
fn sizes(run: &mut Run, w: &World) {
    // A note of exactly 30,000 bytes is not too large (it is refused for its unknown field);
    // one byte more is.
    let padded = |len: usize| -> Vec<u8> {
        let probe = signed(
            subst(&w.good_text, "{\"v\":1,", "{\"v\":1,\"x_pad\":\"\","),
            &[&w.acme.key],
        );
        let pad = "p".repeat(len - probe.len());
        let n = signed(
            subst(
                &w.good_text,
                "{\"v\":1,",
                &format!("{{\"v\":1,\"x_pad\":\"{pad}\","),
            ),
            &[&w.acme.key],
        );
        assert_eq!(n.len(), len);
        n
    };
    let a = run.post_note(&padded(30_000));
    run.expect("note of exactly 30,000 bytes (unknown field)", a, 422);
    let a = run.post_note(&padded(30_001));
    run.expect("note of exactly 30,001 bytes", a, 413);
    let mut bad = padded(30_001);
    bad[20] = 0xff;
    let a = run.post_note(&bad);
    run.expect("30,001 bytes and not UTF-8: size is checked first", a, 413);
    let a = run.post_note(&vec![b'\n'; 1_000_000]);
    run.expect("1 MB of newlines", a, 413);

    // 10,000 signature lines cannot fit in 30,000 bytes (each is ~110): size decides, at once.
    let line = w.acme.key.signature_line(w.good_text.as_bytes());
    let mut many = w.good_text.clone().into_bytes();
    many.push(b'\n');
    for _ in 0..10_000 {
        many.extend_from_slice(line.as_bytes());
    }
    let t = Instant::now();
    let a = run.post_note(&many);
    let took = t.elapsed();
    run.expect("10,000 signature lines", a, 413);
    if took > Duration::from_secs(2) {
        run.fail(format!("10,000 signature lines took {took:?} to refuse"));
    }

    // Over the batch body limit: 9 MiB (past the outer bound) and 8 MiB + 1 byte (past the
    // spec's limit, inside the outer bound); sent raw so the early answer is read.
    let nine = format!("{{\"statements\":[\"{}\"]}}", "a".repeat(9 * MIB));
    let a = run.raw(raw_request(
        "POST",
        "/api/v1/statements/batch",
        &[("Content-Type", "application/json")],
        nine.as_bytes(),
    ));
    run.expect("batch body of 9 MiB", a, 413);
    let over = {
        let mut s = format!("{{\"statements\":[\"{}\"]}}", "a".repeat(8 * MIB));
        let cut = s.len() - (8 * MIB + 1);
        s.replace_range(20..20 + cut, "");
        assert_eq!(s.len(), 8 * MIB + 1);
        s
    };
    let a = run.raw(raw_request(
        "POST",
        "/api/v1/statements/batch",
        &[("Content-Type", "application/json")],
        over.as_bytes(),
    ));
    run.expect("batch body of 8 MiB + 1 byte", a, 413);
    let a = run.raw(raw_request(
        "POST",
        "/api/v1/statements",
        &[("Content-Type", "text/plain")],
        &vec![b'x'; 9 * MIB],
    ));
    run.expect("single note body of 9 MiB", a, 413);
    // 1001 items, each not even a note: the count decides.
    let items: Vec<Value> = (0..1001).map(|_| json!("x")).collect();
    let a = run.post_batch(json!({ "statements": items }).to_string().as_bytes());
    run.expect("batch of 1001 items", a, 413);
    let items: Vec<Value> = (0..1001).map(|_| json!(null)).collect();
    let a = run.post_batch(json!({ "statements": items }).to_string().as_bytes());
    run.expect("batch of 1001 nulls", a, 413);
}

/// A valid note cut at many points is malformed (400); a two-signature note cut after its
/// first signature line is well formed but lacks a signature (403).
fn truncations(run: &mut Run, w: &World) {
    let n = &w.good_note;
    let text_end = w.good_text.len();
    let mut cuts: Vec<usize> = (0..text_end).step_by(23).collect();
    // Around the text's end, the blank line, and every byte of the signature line (which
    // starts with a 3-byte em dash, so some cuts are not even UTF-8).
    cuts.extend(text_end.saturating_sub(2)..n.len());
    for cut in cuts {
        let a = run.post_note(&n[..cut]);
        run.expect(
            &format!("request note cut at byte {cut} of {}", n.len()),
            a,
            400,
        );
    }
    // A register cut after the operator's line: one signature where two are required.
    let first_line_end = {
        let blank = find(&w.reg_note, b"\n\n").unwrap() + 2;
        blank
            + w.reg_note[blank..]
                .iter()
                .position(|&b| b == b'\n')
                .unwrap()
            + 1
    };
    let a = run.post_note(&w.reg_note[..first_line_end]);
    run.expect("register cut after its first signature line", a, 403);
    let a = run.post_note(&w.reg_note[..first_line_end + 10]);
    run.expect("register cut inside its second signature line", a, 400);
    let a = run.post_note(&w.reg_note[..w.reg_note.len() - 1]);
    run.expect("register without its final newline", a, 400);
}

/// Signature lines: base64 that is not canonical, of the wrong length, or not base64; lines
/// that are not `— <name> <base64>`; too many lines.
fn signature_lines(run: &mut Run, w: &World) {
    let t = &w.good_text;
    let name = "acme.example";
    let line = w.acme.key.signature_line(t.as_bytes());
    let b64 = sig_b64(&line);
    let raw = note::decode_b64(&b64).unwrap();
    assert_eq!(raw.len(), 68);
    assert!(b64.ends_with('=') && !b64.ends_with("=="));
    // 68 bytes end in a 2-byte group: 3 characters carry 18 bits, the last 2 unused. Setting
    // one of them gives a spelling that decodes (leniently) to the same bytes.
    let non_canonical = {
        const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = b64.clone().into_bytes();
        let i = s.len() - 2;
        let v = ALPHA.iter().position(|&c| c == s[i]).unwrap();
        assert_eq!(v & 3, 0);
        s[i] = ALPHA[v | 1];
        String::from_utf8(s).unwrap()
    };
    let mut ext = raw.clone();
    ext.push(0);
    let cases: Vec<(&str, String)> = vec![
        (
            "non-canonical base64 (unused bits set)",
            format!("\u{2014} {name} {non_canonical}\n"),
        ),
        (
            "base64 without padding",
            format!("\u{2014} {name} {}\n", b64.trim_end_matches('=')),
        ),
        (
            "base64 with extra padding",
            format!("\u{2014} {name} {b64}=\n"),
        ),
        (
            "base64url alphabet",
            format!("\u{2014} {name} -_{}\n", &b64[2..]),
        ),
        (
            "not base64 at all",
            format!("\u{2014} {name} {}\n", "!".repeat(92)),
        ),
        (
            "base64 of 67 bytes",
            format!("\u{2014} {name} {}\n", note::encode_b64(&raw[..67])),
        ),
        (
            "base64 of 69 bytes",
            format!("\u{2014} {name} {}\n", note::encode_b64(&ext)),
        ),
        (
            "base64 of 64 bytes (no key id)",
            format!("\u{2014} {name} {}\n", note::encode_b64(&raw[4..])),
        ),
        (
            "base64 of 4 bytes (key id only)",
            format!("\u{2014} {name} {}\n", note::encode_b64(&raw[..4])),
        ),
        ("empty base64", format!("\u{2014} {name} \n")),
        (
            "space inside the base64",
            format!("\u{2014} {name} {} {}\n", &b64[..40], &b64[40..]),
        ),
        (
            "base64 split over two lines",
            format!("\u{2014} {name} {}\n{}\n", &b64[..40], &b64[40..]),
        ),
        (
            "two spaces before the base64",
            format!("\u{2014} {name}  {b64}\n"),
        ),
        ("trailing space", format!("\u{2014} {name} {b64} \n")),
        ("CRLF line ending", format!("\u{2014} {name} {b64}\r\n")),
        ("tab instead of space", format!("\u{2014}\t{name} {b64}\n")),
        ("hyphen instead of em dash", format!("- {name} {b64}\n")),
        (
            "two hyphens instead of em dash",
            format!("-- {name} {b64}\n"),
        ),
        (
            "en dash instead of em dash",
            format!("\u{2013} {name} {b64}\n"),
        ),
        ("no key name", format!("\u{2014}  {b64}\n")),
        (
            "key name with '+'",
            format!("\u{2014} {name}+0badc0de {b64}\n"),
        ),
        (
            "key name with NUL",
            format!("\u{2014} acme\0example {b64}\n"),
        ),
        (
            "key name with a C1 control",
            format!("\u{2014} acme\u{85}example {b64}\n"),
        ),
        (
            "no newline after the signature",
            format!("\u{2014} {name} {b64}"),
        ),
        ("garbage after the signature line", format!("{line}garbage")),
        ("blank line after the signature line", format!("{line}\n")),
        (
            "blank line between two signature lines",
            format!("{line}\n{line}"),
        ),
        ("empty signature block", String::new()),
    ];
    for (what, sig) in cases {
        let a = run.post_note(&with_sig_line(t, &sig));
        run.expect(&format!("signature line: {what}"), a, 400);
    }
    let a = run.post_note(t.as_bytes());
    run.expect("unsigned text, no blank line", a, 400);
    let a = run.post_note(format!("{t}{line}").as_bytes());
    run.expect("signature line without the blank line", a, 400);

    // More signature lines than any note may carry, under the size limit: malformed, and
    // refused without verifying them.
    let mut note = format!("{t}\n").into_bytes();
    for _ in 0..150 {
        note.extend_from_slice(line.as_bytes());
    }
    assert!(note.len() < 30_000);
    let start = Instant::now();
    let a = run.post_note(&note);
    let took = start.elapsed();
    run.expect("150 signature lines", a, 400);
    if took > Duration::from_secs(2) {
        run.fail(format!("150 signature lines took {took:?} to refuse"));
    }
}

/// The lexical rules of section 3, each broken in an otherwise valid, correctly signed
/// statement: 400, with a pointer where a field is at fault.
fn json_lexical(run: &mut Run, w: &World) {
    let t = w.good_text.as_str();
    let seq = "\"seq\":1,";
    let acc = "\"accounts\":2";
    let nested_huge = "9".repeat(400);
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |what: &str, text: Vec<u8>| cases.push((what.to_string(), text));
    for (what, v) in [
        ("2^53", "9007199254740992"),
        ("2^64", "18446744073709551616"),
        ("99999999999999999999999", "99999999999999999999999"),
        ("1e400", "1e400"),
        ("400 nines", nested_huge.as_str()),
        ("-1", "-1"),
        ("-0", "-0"),
        ("1.0", "1.0"),
        ("1.5", "1.5"),
        ("1E0", "1E0"),
        ("01", "01"),
        ("0x1", "0x1"),
        ("+1", "+1"),
        ("Infinity", "Infinity"),
        ("NaN", "NaN"),
        ("preceded by U+FEFF", "\u{feff}1"),
    ] {
        add(
            &format!("seq {what}"),
            subst(t, seq, &format!("\"seq\":{v},")).into_bytes(),
        );
    }
    for (what, v) in [
        ("2^53", "9007199254740992"),
        ("-2", "-2"),
        ("2.5", "2.5"),
        ("2e0", "2e0"),
    ] {
        add(
            &format!("nested targets.accounts {what}"),
            subst(t, acc, &format!("\"accounts\":{v}")).into_bytes(),
        );
    }
    add(
        "duplicate top-level key",
        subst(t, "{\"v\":1,", "{\"v\":1,\"v\":1,").into_bytes(),
    );
    add(
        "duplicate publisher, second one different",
        subst(
            t,
            "\"publisher\":\"acme.example\",",
            "\"publisher\":\"acme.example\",\"publisher\":\"evil.example\",",
        )
        .into_bytes(),
    );
    add(
        "duplicate key written with an escape",
        subst(t, "{\"v\":1,", "{\"v\":1,\"\\u0076\":1,").into_bytes(),
    );
    add(
        "duplicate nested key",
        subst(t, acc, "\"accounts\":2,\"accounts\":3").into_bytes(),
    );
    add(
        "duplicate key two levels down",
        subst(
            t,
            "\"type\":\"police\"",
            "\"type\":\"police\",\"type\":\"court\"",
        )
        .into_bytes(),
    );
    for (what, s) in [
        ("raw NUL", &b"a\x00b"[..]),
        ("escaped \\u0000", b"a\\u0000b"),
        ("escaped \\u001f", b"\\u001f"),
        ("escaped \\u007f (DEL)", b"\\u007f"),
        ("escaped \\u0085 (C1)", b"\\u0085"),
        ("escaped \\u009b (C1)", b"\\u009b"),
        ("raw DEL", b"a\x7fb"),
        ("raw C1 U+0085", "a\u{85}b".as_bytes()),
        ("raw ESC", b"\x1b[31m"),
        ("raw tab", b"a\tb"),
        ("raw CR", b"a\rb"),
        ("raw form feed", b"a\x0cb"),
        ("escaped \\n", b"a\\nb"),
        ("escaped \\t", b"a\\tb"),
        ("escaped \\r", b"a\\rb"),
        ("escaped \\b", b"a\\bb"),
        ("escaped \\f", b"a\\fb"),
        ("lone high surrogate \\ud800", b"\\ud800"),
        ("lone low surrogate \\udc00", b"\\udc00"),
        ("lone \\udfff", b"x\\udfffx"),
        ("high surrogate then a letter", b"\\ud800\\u0041"),
        ("two high surrogates", b"\\ud800\\ud800"),
        ("reversed surrogate pair", b"\\ude00\\ud83d"),
        ("high surrogate at the end", b"abc\\udbff"),
        ("high surrogate then a raw character", b"\\ud83dx"),
        ("invalid escape \\x41", b"\\x41"),
        ("invalid escape \\U0041", b"\\U0041"),
        ("invalid escape \\'", b"\\'"),
        ("invalid escape \\0", b"\\0"),
        ("short \\u escape", b"\\u12"),
        ("non-hex \\u escape", b"\\u12G4"),
    ] {
        add(&format!("notes with {what}"), with_notes(t, s));
    }
    add(
        "unterminated string",
        t.replacen("\"Example Police\"}", "\"Example Police}", 1)
            .into_bytes(),
    );
    // Spaces between tokens are allowed; JSON's other whitespace is a control character.
    add(
        "tab after a colon",
        subst(t, "{\"v\":1,", "{\"v\":\t1,").into_bytes(),
    );
    add("leading tab", format!("\t{t}").into_bytes());
    add("trailing tab", format!("{}\t\n", t.trim_end()).into_bytes());
    add(
        "CR between tokens",
        subst(t, "{\"v\":1,", "{\"v\":1\r,").into_bytes(),
    );
    add(
        "CRLF after the JSON",
        format!("{}\r\n", t.trim_end()).into_bytes(),
    );
    add(
        "text after the object",
        format!("{}x\n", t.trim_end()).into_bytes(),
    );
    add(
        "two objects",
        format!("{}{{}}\n", t.trim_end()).into_bytes(),
    );
    add("two lines of JSON", format!("{t}{t}").into_bytes());
    add("trailing comma", subst(t, "}\n", ",}\n").into_bytes());
    add(
        "missing colon",
        subst(t, "{\"v\":1,", "{\"v\"1,").into_bytes(),
    );
    add(
        "single-quoted key",
        subst(t, "{\"v\":1,", "{'v':1,").into_bytes(),
    );
    add(
        "comment",
        subst(t, "{\"v\":1,", "{/*x*/\"v\":1,").into_bytes(),
    );
    add(
        "bad literal",
        subst(t, "\"prev\":null", "\"prev\":nul").into_bytes(),
    );
    add(
        "capitalised literal",
        subst(t, "\"prev\":null", "\"prev\":Null").into_bytes(),
    );
    add("byte order mark", format!("\u{feff}{t}").into_bytes());
    add("a JSON array", b"[1,2,3]\n".to_vec());
    add("a JSON string", b"\"request\"\n".to_vec());
    add("a JSON number", b"1\n".to_vec());
    add("null", b"null\n".to_vec());
    add("empty text", b"\n".to_vec());
    add("uppercase UUID", {
        let v: Value = serde_json::from_str(t).unwrap();
        let id = v["id"].as_str().unwrap();
        subst(t, id, &id.to_uppercase()).into_bytes()
    });
    add(
        "uppercase hex",
        subst(
            t,
            "{\"v\":1,",
            &format!("{{\"v\":1,\"document_sha256\":\"{}\",", "AB".repeat(32)),
        )
        .into_bytes(),
    );
    add(
        "nested 17 levels",
        with_notes(t, b"").replace_notes(&format!("{}{}", "[".repeat(17), "]".repeat(17))),
    );
    add(
        "nested 1000 levels",
        with_notes(t, b"").replace_notes(&format!("{}{}", "[".repeat(1000), "]".repeat(1000))),
    );
    add(
        "nested 1000 objects",
        with_notes(t, b"").replace_notes(&format!(
            "{}1{}",
            "{\"a\":".repeat(1000),
            "}".repeat(1000)
        )),
    );
    add(
        "nested 14,000 levels",
        with_notes(t, b"").replace_notes(&format!("{}{}", "[".repeat(14_000), "]".repeat(14_000))),
    );
    for (what, text) in cases {
        let a = run.post_note(&signed(&text, &[&w.acme.key]));
        run.expect(&format!("JSON: {what}"), a, 400);
    }
    // A field error names its field.
    let a = run.post_note(&signed(
        subst(t, acc, "\"accounts\":2,\"accounts\":3"),
        &[&w.acme.key],
    ));
    if let Some(p) = run.expect("duplicate nested key (pointer)", a, 400) {
        if p["pointer"] != "/targets/accounts" {
            run.fail(format!("duplicate nested key: pointer {}", p["pointer"]));
        }
    }
}

/// Replaces the `notes` value written by [`with_notes`] (an empty string) with raw JSON.
trait ReplaceNotes {
    fn replace_notes(self, raw_json: &str) -> Vec<u8>;
}

impl ReplaceNotes for Vec<u8> {
    fn replace_notes(self, raw_json: &str) -> Vec<u8> {
        let s = String::from_utf8(self).unwrap();
        subst(&s, "\"notes\":\"\"", &format!("\"notes\":{raw_json}")).into_bytes()
    }
}

/// Invalid UTF-8 anywhere in a note: 400.
fn utf8(run: &mut Run, w: &World) {
    let t = w.good_text.as_str();
    for (what, bytes) in [
        ("lone continuation byte 0x80", &[0x80u8][..]),
        ("lone continuation bytes 0xbf 0xbf", &[0xbf, 0xbf]),
        ("overlong '/' C0 AF", &[0xc0, 0xaf]),
        ("overlong NUL C0 80", &[0xc0, 0x80]),
        ("overlong 3-byte E0 80 AF", &[0xe0, 0x80, 0xaf]),
        ("overlong 4-byte F0 80 80 AF", &[0xf0, 0x80, 0x80, 0xaf]),
        ("surrogate U+D800 as ED A0 80", &[0xed, 0xa0, 0x80]),
        ("surrogate U+DFFF as ED BF BF", &[0xed, 0xbf, 0xbf]),
        (
            "surrogate pair as CESU-8",
            &[0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80],
        ),
        ("beyond U+10FFFF F4 90 80 80", &[0xf4, 0x90, 0x80, 0x80]),
        ("F5 lead byte", &[0xf5, 0x80, 0x80, 0x80]),
        ("FE", &[0xfe]),
        ("FF", &[0xff]),
        ("truncated 3-byte sequence", &[0xe2, 0x82]),
        ("truncated 4-byte sequence", &[0xf0, 0x9f, 0x98]),
    ] {
        let a = run.post_note(&signed(with_notes(t, bytes), &[&w.acme.key]));
        run.expect(&format!("UTF-8 in the text: {what}"), a, 400);
    }
    // In the signature line's key name, and as the whole body.
    let line = w.acme.key.signature_line(t.as_bytes());
    let mut n = format!("{t}\n").into_bytes();
    n.extend_from_slice(&line.as_bytes()[..7]);
    n.extend_from_slice(&[0xc0, 0xaf]);
    n.extend_from_slice(&line.as_bytes()[7..]);
    let a = run.post_note(&n);
    run.expect("UTF-8: overlong bytes in the key name", a, 400);
    let mut n = w.good_note.clone();
    n[0] = 0xfe;
    let a = run.post_note(&n);
    run.expect("UTF-8: first byte FE", a, 400);
}

/// Well-formed statements that are not authorised: 403, before any content or order check.
fn authority(run: &mut Run, w: &World) {
    let acme = &w.acme;
    let rec = record();
    let evil = SecretKey::generate("evil.example").unwrap();
    let impostor = SecretKey::generate("acme.example").unwrap();
    let good = &w.good_text;
    let mut cases: Vec<(&str, Vec<u8>, Option<&str>)> = Vec::new();
    let mut body = acme.body("request", rec.clone());
    body["log"] = json!("other.example/log");
    cases.push((
        "log is another origin",
        signed(text(&body), &[&acme.key]),
        Some("/log"),
    ));
    body["log"] = json!(format!("{ORIGIN}/"));
    cases.push((
        "log with a trailing slash",
        signed(text(&body), &[&acme.key]),
        Some("/log"),
    ));
    body["log"] = json!(5);
    cases.push((
        "log is a number",
        signed(text(&body), &[&acme.key]),
        Some("/log"),
    ));
    let ev = Chain {
        id: "evil.example".into(),
        key: evil,
        seq: 0,
        prev: None,
    };
    cases.push((
        "unknown publisher, self-signed",
        signed(text(&ev.body("request", rec.clone())), &[&ev.key]),
        Some("/publisher"),
    ));
    let mut body = acme.body("request", rec.clone());
    body["publisher"] = json!("ACME.example");
    cases.push((
        "publisher id in uppercase",
        signed(text(&body), &[&acme.key]),
        Some("/publisher"),
    ));
    cases.push((
        "signed by an impostor key of the same name",
        signed(good, &[&impostor]),
        None,
    ));
    cases.push((
        "signed by the operator key",
        signed(good, &[&w.op.key]),
        None,
    ));
    cases.push(("signed by the log key", signed(good, &[&w.log_key]), None));
    cases.push((
        "signed by the publisher's recovery key",
        signed(good, &[&w.acme_recovery]),
        None,
    ));
    cases.push((
        "the signature line twice",
        signed(good, &[&acme.key, &acme.key]),
        None,
    ));
    cases.push((
        "an extra operator signature",
        signed(good, &[&acme.key, &w.op.key]),
        None,
    ));
    cases.push((
        "the impostor first",
        signed(good, &[&impostor, &acme.key]),
        None,
    ));
    let line = acme.key.signature_line(good.as_bytes());
    let raw = note::decode_b64(&sig_b64(&line)).unwrap();
    let mut forged = raw[..4].to_vec();
    forged.extend((0..64u8).map(|i| i.wrapping_mul(37)));
    cases.push((
        "right key id, forged signature bytes",
        with_sig_line(
            good,
            &format!("\u{2014} acme.example {}\n", note::encode_b64(&forged)),
        ),
        None,
    ));
    let mut flipped = raw.clone();
    flipped[40] ^= 1;
    cases.push((
        "one bit of the signature flipped",
        with_sig_line(
            good,
            &format!("\u{2014} acme.example {}\n", note::encode_b64(&flipped)),
        ),
        None,
    ));
    let mut wrong_id = raw.clone();
    wrong_id[..4].copy_from_slice(&w.op.key.id.to_be_bytes());
    cases.push((
        "acme's name with the operator's key id",
        with_sig_line(
            good,
            &format!("\u{2014} acme.example {}\n", note::encode_b64(&wrong_id)),
        ),
        None,
    ));
    let other_text = text(&acme.body("request", rec.clone()));
    cases.push((
        "a signature of another statement",
        with_sig_line(good, &acme.key.signature_line(other_text.as_bytes())),
        None,
    ));
    // Types in the wrong hands.
    let gamma = SecretKey::generate("gamma.example").unwrap();
    let gamma_rec = SecretKey::generate("gamma.example").unwrap();
    let reg_fields = register_fields("gamma.example", "Gamma", &gamma, &gamma_rec);
    cases.push((
        "register signed by a publisher",
        signed(
            text(&acme.body("register", reg_fields.clone())),
            &[&acme.key, &gamma],
        ),
        Some("/publisher"),
    ));
    cases.push((
        "revoke signed by a publisher",
        signed(
            text(&acme.body("revoke", json!({"subject": "acme.example", "reason": "x"}))),
            &[&acme.key],
        ),
        Some("/publisher"),
    ));
    cases.push((
        "a request by the operator",
        signed(text(&w.op.body("request", rec.clone())), &[&w.op.key]),
        Some("/publisher"),
    ));
    let reg = text(&w.op.body("register", reg_fields.clone()));
    cases.push((
        "register without the new key's signature",
        signed(&reg, &[&w.op.key]),
        None,
    ));
    cases.push((
        "register signed in the wrong order",
        signed(&reg, &[&gamma, &w.op.key]),
        None,
    ));
    cases.push((
        "register whose second signature is not by its key",
        signed(&reg, &[&w.op.key, &gamma_rec]),
        None,
    ));
    cases.push((
        "register signed only by the new key",
        signed(&reg, &[&gamma]),
        None,
    ));
    let genesis = json!({
        "v": 1, "log": ORIGIN, "publisher": ORIGIN, "seq": 1, "prev": null,
        "id": uuid::Uuid::now_v7().to_string(), "type": "genesis",
        "operator_key": w.op.key.verifier().to_string(),
    });
    cases.push((
        "a second genesis, properly signed",
        signed(text(&genesis), &[&w.log_key, &w.op.key]),
        None,
    ));
    let new = SecretKey::generate("acme.example").unwrap();
    cases.push((
        "rotate signed by an impostor",
        signed(
            text(&acme.body("rotate", json!({"key": new.verifier().to_string()}))),
            &[&impostor, &new],
        ),
        None,
    ));
    cases.push((
        "recover signed by the signing key",
        signed(
            text(&acme.body(
                "recover",
                json!({"key": new.verifier().to_string(), "reason": "lost"}),
            )),
            &[&acme.key, &new],
        ),
        None,
    ));
    // Authority comes before content and order.
    let mut bad_content = acme.body("request", rec.clone());
    bad_content["notes"] = json!("n".repeat(2001));
    bad_content["country"] = json!("ZZ");
    cases.push((
        "bad signature and invalid content",
        signed(text(&bad_content), &[&impostor]),
        None,
    ));
    let mut bad_order = acme.body("request", rec.clone());
    bad_order["seq"] = json!(7);
    cases.push((
        "bad signature and out of order",
        signed(text(&bad_order), &[&impostor]),
        None,
    ));
    for (what, note, pointer) in cases {
        let a = run.post_note(&note);
        let name = format!("authority: {what}");
        if let (Some(p), Some(ptr)) = (run.expect(&name, a, 403), pointer) {
            if p["pointer"] != ptr {
                run.fail(format!("{name}: pointer {} (want {ptr})", p["pointer"]));
            }
        }
    }
    // The most signature lines a note may carry, all by the right key: still exactly one is
    // required.
    let mut note = format!("{good}\n").into_bytes();
    for _ in 0..100 {
        note.extend_from_slice(line.as_bytes());
    }
    let start = Instant::now();
    let a = run.post_note(&note);
    let took = start.elapsed();
    run.expect("authority: 100 valid signature lines", a, 403);
    if took > Duration::from_secs(2) {
        run.fail(format!("100 signature lines took {took:?} to refuse"));
    }
}

/// Authorised, well-formed statements with invalid content: 422.
fn content(run: &mut Run, w: &World) {
    let acme = &w.acme;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = acme.body("request", record());
        f(&mut b);
        signed(text(&b), &[&acme.key])
    };
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        (
            "notes of 2001 characters",
            with(&|b| b["notes"] = json!("n".repeat(2001))),
            Some("/notes"),
        ),
        (
            "notes of 2001 two-byte characters",
            with(&|b| b["notes"] = json!("\u{e9}".repeat(2001))),
            Some("/notes"),
        ),
        (
            "notes of 2001 emoji",
            with(&|b| b["notes"] = json!("\u{1f600}".repeat(2001))),
            Some("/notes"),
        ),
        (
            "legal_basis of 501 characters",
            with(&|b| b["legal_basis"] = json!("l".repeat(501))),
            Some("/legal_basis"),
        ),
        (
            "service of 101 characters",
            with(&|b| b["service"] = json!("s".repeat(101))),
            Some("/service"),
        ),
        (
            "authority name of 201 characters",
            with(&|b| b["authority"]["name"] = json!("a".repeat(201))),
            None,
        ),
        ("an unknown field", with(&|b| b["x"] = json!(1)), None),
        (
            "an unknown nested field",
            with(&|b| b["authority"]["x"] = json!(1)),
            None,
        ),
        (
            "country ZZ",
            with(&|b| b["country"] = json!("ZZ")),
            Some("/country"),
        ),
        (
            "country in lowercase",
            with(&|b| b["country"] = json!("de")),
            Some("/country"),
        ),
        ("unknown kind", with(&|b| b["kind"] = json!("bogus")), None),
        (
            "no kind",
            with(&|b| {
                b.as_object_mut().unwrap().remove("kind");
            }),
            None,
        ),
        (
            "unknown type",
            with(&|b| b["type"] = json!("bogus")),
            Some("/type"),
        ),
        (
            "type is a number",
            with(&|b| b["type"] = json!(1)),
            Some("/type"),
        ),
        ("version 2", with(&|b| b["v"] = json!(2)), Some("/v")),
        (
            "version as a string",
            with(&|b| b["v"] = json!("1")),
            Some("/v"),
        ),
        ("seq 0", with(&|b| b["seq"] = json!(0)), Some("/seq")),
        (
            "seq as a string",
            with(&|b| b["seq"] = json!("1")),
            Some("/seq"),
        ),
        (
            "id not a UUID",
            with(&|b| b["id"] = json!("../../etc/passwd")),
            Some("/id"),
        ),
        (
            "received in the future",
            with(&|b| b["received_on"] = json!("2999-01-01")),
            None,
        ),
        (
            "received on 30 February",
            with(&|b| b["received_on"] = json!("2024-02-30")),
            None,
        ),
        (
            "received_on not a date",
            with(&|b| b["received_on"] = json!("yesterday")),
            None,
        ),
        ("no targets", with(&|b| b["targets"] = json!({})), None),
        (
            "targets as a string",
            with(&|b| b["targets"]["accounts"] = json!("2")),
            None,
        ),
        (
            "document_sha256 too short",
            with(&|b| b["document_sha256"] = json!("ab")),
            None,
        ),
    ];
    let mut cases = cases;
    // The operator's content: a name of 201 characters, bad urls, a key under another name.
    let op = &w.op;
    let reg = |subject: &str, f: &dyn Fn(&mut Value), key: &SecretKey, rec: &SecretKey| {
        let mut b = op.body("register", register_fields(subject, "Delta", key, rec));
        f(&mut b);
        signed(text(&b), &[&op.key, key])
    };
    let dk = SecretKey::generate("delta.example").unwrap();
    let dr = SecretKey::generate("delta.example").unwrap();
    cases.push((
        "register name of 201 characters",
        reg(
            "delta.example",
            &|b| b["name"] = json!("n".repeat(201)),
            &dk,
            &dr,
        ),
        Some("/name"),
    ));
    cases.push((
        "register name empty",
        reg("delta.example", &|b| b["name"] = json!(""), &dk, &dr),
        Some("/name"),
    ));
    cases.push((
        "register url over http",
        reg(
            "delta.example",
            &|b| b["url"] = json!("http://delta.example/"),
            &dk,
            &dr,
        ),
        Some("/url"),
    ));
    cases.push((
        "register url javascript:",
        reg(
            "delta.example",
            &|b| b["url"] = json!("javascript:alert(1)"),
            &dk,
            &dr,
        ),
        Some("/url"),
    ));
    cases.push((
        "register subject with a slash",
        {
            let k = SecretKey::generate("delta.example/x").unwrap();
            let r = SecretKey::generate("delta.example/x").unwrap();
            reg("delta.example/x", &|_| {}, &k, &r)
        },
        Some("/subject"),
    ));
    let other = SecretKey::generate("other.example").unwrap();
    cases.push((
        "register key named for another subject",
        reg(
            "delta.example",
            &|b| b["key"] = json!(other.verifier().to_string()),
            &other,
            &dr,
        ),
        Some("/key"),
    ));
    cases.push((
        "register recovery key not a key",
        reg(
            "delta.example",
            &|b| b["recovery_key"] = json!("not a key"),
            &dk,
            &dr,
        ),
        Some("/recovery_key"),
    ));
    for (what, note, pointer) in cases {
        let a = run.post_note(&note);
        let name = format!("content: {what}");
        if let (Some(p), Some(ptr)) = (run.expect(&name, a, 422), pointer) {
            if p["pointer"] != ptr {
                run.fail(format!("{name}: pointer {} (want {ptr})", p["pointer"]));
            }
        }
    }
}

/// Authorised, valid statements out of order: 409 with the publisher's head.
fn order(run: &mut Run, w: &World) {
    let acme = &w.acme;
    let mut b = acme.body("request", record());
    b["seq"] = json!(2);
    b["prev"] = json!("ab".repeat(32));
    let a = run.post_note(&signed(text(&b), &[&acme.key]));
    if let Some(p) = run.expect("order: seq 2 before seq 1", a, 409) {
        if p["head"] != json!({"seq": 0, "hash": null}) {
            run.fail(format!("order: seq 2: head {}", p["head"]));
        }
    }
    let mut b = acme.body("request", record());
    b["seq"] = json!(9007199254740991u64);
    b["prev"] = json!("ab".repeat(32));
    let a = run.post_note(&signed(text(&b), &[&acme.key]));
    run.expect("order: seq 2^53-1", a, 409);
    // The operator registers acme again, and registers acme's key under another name.
    let op = &w.op;
    let k = SecretKey::generate("acme.example").unwrap();
    let r = SecretKey::generate("acme.example").unwrap();
    let n = signed(
        text(&op.body("register", register_fields("acme.example", "Again", &k, &r))),
        &[&op.key, &k],
    );
    let a = run.post_note(&n);
    run.expect("order: register an existing subject", a, 409);
    let stolen = renamed(&acme.key, "eps.example");
    let er = SecretKey::generate("eps.example").unwrap();
    let n = signed(
        text(&op.body(
            "register",
            register_fields("eps.example", "Eps", &stolen, &er),
        )),
        &[&op.key, &stolen],
    );
    let a = run.post_note(&n);
    run.expect("order: register a public key already registered", a, 409);
    // Replaying the operator's first position with a new statement.
    let replay = Chain {
        id: op.id.clone(),
        key: renamed(&op.key, &op.id),
        seq: 0,
        prev: None,
    };
    let zk = SecretKey::generate("zeta.example").unwrap();
    let zr = SecretKey::generate("zeta.example").unwrap();
    let n = signed(
        text(&replay.body(
            "register",
            register_fields("zeta.example", "Zeta", &zk, &zr),
        )),
        &[&replay.key, &zk],
    );
    let a = run.post_note(&n);
    run.expect("order: operator seq 1 again", a, 409);
}

/// The batch envelope: exactly `{"statements": [note, …]}`, else 400 (413 for size).
fn batch_envelope(run: &mut Run, w: &World) {
    let note = String::from_utf8(w.good_note.clone()).unwrap();
    let deep = |n: usize| format!("{{\"statements\":{}{}}}", "[".repeat(n), "]".repeat(n));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty body", b"".to_vec()),
        ("not JSON", b"statements=1".to_vec()),
        ("truncated JSON", b"{\"statements\":[".to_vec()),
        ("a JSON array", json!([note]).to_string().into_bytes()),
        ("a JSON string", json!(note).to_string().into_bytes()),
        ("a JSON number", b"42".to_vec()),
        ("null", b"null".to_vec()),
        ("an empty object", b"{}".to_vec()),
        ("no statements", b"{\"statements\":[]}".to_vec()),
        (
            "statements is a string",
            json!({"statements": note}).to_string().into_bytes(),
        ),
        ("statements is an object", b"{\"statements\":{}}".to_vec()),
        ("statements is null", b"{\"statements\":null}".to_vec()),
        (
            "an extra member",
            json!({"statements": ["x"], "extra": 1})
                .to_string()
                .into_bytes(),
        ),
        (
            "a misspelt member",
            json!({"statement": ["x"]}).to_string().into_bytes(),
        ),
        ("statements 1e400", b"{\"statements\":[1e400]}".to_vec()),
        ("nested 1000 levels", deep(1000).into_bytes()),
        ("nested 100,000 levels", deep(100_000).into_bytes()),
        (
            "invalid UTF-8 in an item",
            b"{\"statements\":[\"\xc0\xaf\"]}".to_vec(),
        ),
        (
            "byte order mark",
            format!("\u{feff}{}", json!({"statements": ["x"]})).into_bytes(),
        ),
        (
            "text after the object",
            format!("{} x", json!({"statements": ["x"]})).into_bytes(),
        ),
        (
            "two objects",
            format!("{0}{0}", json!({"statements": ["x"]})).into_bytes(),
        ),
    ];
    for (what, body) in cases {
        let a = run.post_batch(&body);
        run.expect(&format!("batch: {what}"), a, 400);
    }
}

/// A batch's items are refused one by one, in place, with the status each deserves.
fn batch_items(run: &mut Run, w: &World) {
    let acme = &w.acme;
    let good = String::from_utf8(w.good_note.clone()).unwrap();
    let mut long = acme.body("request", record());
    long["notes"] = json!("n".repeat(2001));
    let mut ahead = acme.body("request", record());
    ahead["seq"] = json!(5);
    ahead["prev"] = json!("cd".repeat(32));
    let evil = SecretKey::generate("evil.example").unwrap();
    let ev = Chain {
        id: "evil.example".into(),
        key: evil,
        seq: 0,
        prev: None,
    };
    let mut huge = good.clone();
    huge.insert_str(1, &format!("\"x_pad\":\"{}\",", "p".repeat(30_000)));
    let line = acme.key.signature_line(w.good_text.as_bytes());
    let many_lines = format!("{}\n{}", w.good_text, line.repeat(10_000));
    let items = json!([
        1,
        null,
        {},
        [],
        true,
        99999999999999999999999u128 as f64,
        "",
        &good[..good.len() / 2],
        huge,
        many_lines,
        String::from_utf8(signed(text(&ev.body("request", record())), &[&ev.key])).unwrap(),
        String::from_utf8(signed(text(&long), &[&acme.key])).unwrap(),
        String::from_utf8(signed(text(&ahead), &[&acme.key])).unwrap(),
        good.replace("\"seq\":1,", "\"seq\":01,"),
        good.replace("acme.example", "ACME.example"),
    ]);
    let a = run.post_batch(json!({ "statements": items }).to_string().as_bytes());
    run.expect_items(
        "batch of refusable items",
        a,
        &[
            400, 400, 400, 400, 400, 400, 400, 400, 413, 413, 403, 422, 409, 400, 403,
        ],
    );
    // Exactly 1000 items is not too many; each is refused on its own.
    let items: Vec<Value> = (0..1000).map(|i| json!(format!("junk {i}"))).collect();
    let a = run.post_batch(json!({ "statements": items }).to_string().as_bytes());
    run.expect_items("batch of 1000 junk items", a, &[400; 1000]);
}

/// Hostile paths and parameters on the read API: 400 for what is malformed, 404 for what
/// is well formed but absent; never a crash, never a file outside the log.
fn read_api(run: &mut Run, _w: &World) {
    // Sent raw: a URL library would resolve the dot segments before sending.
    for (target, status) in [
        ("/tile/../checkpoint", 400),
        ("/tile/0/..%2F..%2Fetc%2Fpasswd", 400),
        ("/tile/entries/%2e%2e/000", 400),
        ("/tile/entries/../../../../etc/passwd", 400),
        ("/tile/0/%2e%2e/%2e%2e/checkpoint", 400),
        ("/tile/0/000%00", 400),
        ("/../../etc/passwd", 404),
        ("/%2e%2e/%2e%2e/etc/passwd", 404),
        ("/api/v1/publishers/..%2F..%2Fetc%2Fpasswd", 404),
        ("/api/v1/entries/..%2F1", 400),
        // No tile named at all: not the tile route, so an unknown route.
        ("/tile/", 404),
    ] {
        let a = run.raw(raw_request("GET", target, &[], b""));
        run.expect(&format!("GET {target} (raw)"), a, status);
    }
    let deep_tile = format!("/tile/0/{}000", "x001/".repeat(5000));
    let cases: Vec<(String, u16)> = vec![
        ("/tile/0/x999/x999/x999/x999/x999/x999/x999/999".into(), 400),
        (
            "/tile/entries/x999/x999/x999/x999/x999/x999/999".into(),
            400,
        ),
        (
            "/tile/entries/x018/x446/x744/x073/x709/x551/615".into(),
            400,
        ),
        ("/tile/7/x001/000".into(), 400),
        ("/tile/0/000.p/0".into(), 400),
        ("/tile/0/000.p/256".into(), 400),
        ("/tile/0/000.p/-1".into(), 400),
        ("/tile/0/000.p/007".into(), 400),
        ("/tile/0/000.p/".into(), 400),
        ("/tile/0/000.p/99999999999999999999".into(), 400),
        ("/tile/8/000".into(), 400),
        ("/tile/00/000".into(), 400),
        ("/tile/-1/000".into(), 400),
        ("/tile/0/1".into(), 400),
        ("/tile/0/0001".into(), 400),
        ("/tile/0/x000/001".into(), 400),
        ("/tile/0/-001".into(), 400),
        ("/tile/0/000/".into(), 400),
        ("/tile/0/".into(), 400),
        ("/tile/x/000".into(), 400),
        (deep_tile, 400),
        ("/tile/0/001".into(), 404),
        ("/tile/0/000".into(), 404),
        ("/tile/0/000.p/5".into(), 404),
        ("/tile/entries/000.p/3".into(), 404),
        ("/tile/1/000.p/1".into(), 404),
        ("/tile/7/000.p/1".into(), 404),
        (
            "/tile/entries/x018/x446/x744/x073/x709/x551/614".into(),
            400,
        ),
        ("/api/v1/proof/inclusion?index=-1".into(), 400),
        (
            "/api/v1/proof/inclusion?index=0&size=18446744073709551616".into(),
            400,
        ),
        (
            "/api/v1/proof/inclusion?index=0&size=18446744073709551615".into(),
            400,
        ),
        ("/api/v1/proof/inclusion?index=1e3".into(), 400),
        ("/api/v1/proof/inclusion?index=0x1".into(), 400),
        ("/api/v1/proof/inclusion?index=%2B1".into(), 400),
        ("/api/v1/proof/inclusion?index=%201".into(), 400),
        ("/api/v1/proof/inclusion?index=".into(), 400),
        ("/api/v1/proof/inclusion".into(), 400),
        ("/api/v1/proof/inclusion?index=0&size=0".into(), 400),
        ("/api/v1/proof/inclusion?index=5&size=2".into(), 400),
        ("/api/v1/proof/inclusion?index=%ff".into(), 400),
        (
            "/api/v1/proof/inclusion?index=1&size=99999999999999999999999".into(),
            400,
        ),
        ("/api/v1/proof/consistency?from=0".into(), 400),
        ("/api/v1/proof/consistency?from=1&to=abc".into(), 400),
        ("/api/v1/proof/consistency?from=2&to=1".into(), 400),
        ("/api/v1/proof/consistency?from=-1&to=2".into(), 400),
        (
            "/api/v1/proof/consistency?from=1&to=18446744073709551616".into(),
            400,
        ),
        (
            "/api/v1/proof/consistency?from=1&to=18446744073709551615".into(),
            400,
        ),
        ("/api/v1/proof/consistency?from=3".into(), 400),
        ("/api/v1/proof/consistency?to=1".into(), 400),
        ("/api/v1/proof/consistency?from=1.0&to=2".into(), 400),
        ("/api/v1/entries?limit=0".into(), 400),
        ("/api/v1/entries?limit=100000".into(), 400),
        ("/api/v1/entries?limit=1001".into(), 400),
        ("/api/v1/entries?start=-5".into(), 400),
        ("/api/v1/entries?start=abc".into(), 400),
        ("/api/v1/entries?limit=-1".into(), 400),
        ("/api/v1/entries?limit=1e3".into(), 400),
        ("/api/v1/entries?start=18446744073709551616".into(), 400),
        ("/api/v1/entries?limit=18446744073709551615".into(), 400),
        ("/api/v1/entries/-1".into(), 400),
        ("/api/v1/entries/1e3".into(), 400),
        ("/api/v1/entries/+1".into(), 400),
        ("/api/v1/entries/0x1".into(), 400),
        ("/api/v1/entries/18446744073709551616".into(), 400),
        ("/api/v1/entries/99999".into(), 404),
        ("/api/v1/entries/18446744073709551615".into(), 404),
        ("/api/v1/publishers/nobody.example".into(), 404),
        ("/api/v1/publishers/%00".into(), 404),
        (
            "/api/v1/publishers/acme.example/statements/not-a-uuid".into(),
            404,
        ),
        ("/api/v1/publishers/acme.example/statements/%00".into(), 404),
        ("/api/v1/stats?group_by=nope".into(), 400),
        (
            "/api/v1/stats?group_by=country,kind,channel,process".into(),
            400,
        ),
        ("/api/v1/stats?group_by=country,country".into(), 400),
        ("/api/v1/stats?interval=week".into(), 400),
        ("/api/v1/stats?from=yesterday".into(), 400),
        ("/api/v1/stats?drop=table".into(), 400),
        ("/api/v1/stats.csv?group_by=nope".into(), 400),
    ];
    for (path, status) in cases {
        let a = run.get(&path);
        let shown: String = path.chars().take(80).collect();
        run.expect(&format!("GET {shown}"), a, status);
    }
    // Paging past the end is not an error, whatever the start.
    let r = run
        .get("/api/v1/entries?start=18446744073709551615&limit=1000")
        .unwrap();
    let empty = r
        .json()
        .is_some_and(|v| v["entries"] == json!([]) && v["next"].is_null());
    if r.status != 200 || !empty {
        run.fail(format!("entries from u64::MAX: {} {}", r.status, r.text()));
    }
    run.sent += 1;
    run.alive("entries from u64::MAX");
}

/// Unknown routes are 404 problems; known routes with the wrong method are 405 problems
/// carrying `Allow`.
fn routes_and_methods(run: &mut Run, _w: &World) {
    for path in [
        "/nope",
        "/api/v2/statements",
        "/api/v1",
        "/api/v1/",
        "/CHECKPOINT",
        "/checkpoint/",
        "/tile",
        "/api/v1/entries/0/extra",
        "/.env",
        "/api/v1/statements/batch/x",
    ] {
        let a = run.get(path);
        run.expect(&format!("GET {path} (unknown route)"), a, 404);
    }
    let a = run.req(
        "POST",
        "/api/v1/statements/",
        Some("text/plain"),
        Some(b"x"),
    );
    run.expect("POST /api/v1/statements/ (trailing slash)", a, 404);
    for (method, path) in [
        ("DELETE", "/checkpoint"),
        ("POST", "/checkpoint"),
        ("PUT", "/checkpoint"),
        ("GET", "/api/v1/statements"),
        ("PUT", "/api/v1/statements"),
        ("DELETE", "/api/v1/statements"),
        ("GET", "/api/v1/statements/batch"),
        ("PATCH", "/api/v1/entries"),
        ("DELETE", "/api/v1/entries/0"),
        ("DELETE", "/tile/0/000"),
        ("POST", "/tile/0/000"),
        ("DELETE", "/api/v1/publishers/acme.example"),
        ("OPTIONS", "/api/v1/statements"),
        ("TRACE", "/healthz"),
        ("BREW", "/checkpoint"),
    ] {
        let body: Option<&[u8]> = if matches!(method, "POST" | "PUT" | "PATCH") {
            Some(b"x")
        } else {
            None
        };
        let a = run.req(method, path, Some("text/plain"), body);
        let name = format!("{method} {path} (wrong method)");
        let allow = a
            .as_ref()
            .ok()
            .and_then(|r| r.header("allow").map(str::to_string));
        if run.expect(&name, a, 405).is_some() && allow.is_none() {
            run.fail(format!("{name}: 405 without an Allow header"));
        }
    }
}

/// The wrong content type changes nothing: what is not a note is still refused.
fn content_types(run: &mut Run, w: &World) {
    let note = String::from_utf8(w.good_note.clone()).unwrap();
    let batch = json!({ "statements": [&note[..note.len() - 5]] }).to_string();
    let a = run.req(
        "POST",
        "/api/v1/statements",
        Some("application/json"),
        Some(batch.as_bytes()),
    );
    run.expect("a batch body sent to the single-note route as JSON", a, 400);
    let form = format!("note={}", note.replace(' ', "+").replace('\n', "%0A"));
    let a = run.req(
        "POST",
        "/api/v1/statements",
        Some("application/x-www-form-urlencoded"),
        Some(form.as_bytes()),
    );
    run.expect("a note sent as a URL-encoded form", a, 400);
    let multipart =
        format!("--b\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n{note}\r\n--b--\r\n");
    let a = run.req(
        "POST",
        "/api/v1/statements",
        Some("multipart/form-data; boundary=b"),
        Some(multipart.as_bytes()),
    );
    run.expect("a note wrapped in multipart/form-data", a, 400);
    let latin1: Vec<u8> = w
        .good_note
        .iter()
        .flat_map(|&b| if b == b'P' { vec![0xe9] } else { vec![b] })
        .collect();
    let a = run.req(
        "POST",
        "/api/v1/statements",
        Some("text/plain; charset=iso-8859-1"),
        Some(&latin1),
    );
    run.expect("a Latin-1 note", a, 400);
    let a = run.req(
        "POST",
        "/api/v1/statements",
        Some("application/gzip"),
        Some(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
    );
    run.expect("a gzip body", a, 400);
    let a = run.req(
        "POST",
        "/api/v1/statements/batch",
        Some("text/plain"),
        Some(note.as_bytes()),
    );
    run.expect("a note sent to the batch route", a, 400);
    let a = run.req("POST", "/api/v1/statements", Some("text/plain"), Some(b""));
    run.expect("an empty note", a, 400);
    let a = run.req("POST", "/api/v1/statements", None, None);
    run.expect("a POST without a body", a, 400);
    let a = run.req("POST", "/api/v1/statements/batch", None, None);
    run.expect("a batch POST without a body", a, 400);
    let a = run.raw(raw_request("POST", "/api/v1/statements", &[], b""));
    run.expect("a POST without Content-Length (raw)", a, 400);
}

/// Broken HTTP framing, refused below the routes (no problem body required) or, where the
/// request reaches a route, by it.
fn framing(run: &mut Run, w: &World) {
    let bare = |run: &mut Run, what: &str, bytes: Vec<u8>, ok: &[u16]| {
        let a = raw(run.addr, bytes, Duration::from_secs(5));
        run.expect_bare(&format!("framing: {what}"), a, ok);
    };
    bare(
        run,
        "garbage request line",
        b"GARBAGE\r\n\r\n".to_vec(),
        &[400, 0],
    );
    bare(
        run,
        "NUL in the request target",
        b"GET /heal\0thz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        &[400, 0],
    );
    bare(
        run,
        "header line without a colon",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n".to_vec(),
        &[400, 0],
    );
    bare(
        run,
        "folded header",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n".to_vec(),
        &[400, 0],
    );
    let big_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    bare(
        run,
        "a 1 MiB header",
        big_header.into_bytes(),
        &[431, 400, 0],
    );
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..10_000 {
        many.push_str(&format!("X-{i}: {i}\r\n"));
    }
    many.push_str("\r\n");
    bare(run, "10,000 headers", many.into_bytes(), &[431, 400, 0]);
    bare(
        run,
        "HTTP/9.9",
        b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(),
        &[400, 505, 0],
    );
    let post = |h: &str, body: &str| {
        format!("POST /api/v1/statements HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{h}\r\n{body}")
            .into_bytes()
    };
    bare(
        run,
        "Content-Length -1",
        post("Content-Length: -1\r\n", "x"),
        &[400, 0],
    );
    bare(
        run,
        "Content-Length 2^77",
        post("Content-Length: 99999999999999999999999\r\n", "x"),
        &[400, 413, 0],
    );
    bare(
        run,
        "two different Content-Lengths",
        post("Content-Length: 1\r\nContent-Length: 2\r\n", "xy"),
        &[400, 0],
    );
    bare(
        run,
        "Content-Length 1, 2",
        post("Content-Length: 1, 2\r\n", "xy"),
        &[400, 0],
    );
    bare(
        run,
        "bad chunk size",
        post("Transfer-Encoding: chunked\r\n", "zz\r\nxx\r\n0\r\n\r\n"),
        &[400, 0],
    );
    bare(
        run,
        "chunk size 2^64",
        post(
            "Transfer-Encoding: chunked\r\n",
            "10000000000000000\r\nxx\r\n0\r\n\r\n",
        ),
        &[400, 413, 0],
    );
    bare(
        run,
        "chunked and Content-Length",
        post(
            "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
            "2\r\nxx\r\n0\r\n\r\n",
        ),
        &[400, 0],
    );
    bare(
        run,
        "unknown transfer coding",
        post("Transfer-Encoding: gzip\r\n", "xx"),
        &[400, 501, 0],
    );
    // Chunked framing that is fine, carrying a note that is not: the route answers.
    let note = String::from_utf8(w.good_note.clone()).unwrap();
    let half = &note[..note.len() / 2];
    let chunked = format!("{:x}\r\n{half}\r\n0\r\n\r\n", half.len());
    let a = run.raw(post("Transfer-Encoding: chunked\r\n", &chunked));
    run.expect("framing: a truncated note, chunked", a, 400);
    // A body shorter than its Content-Length, then the client stops sending.
    let s = TcpStream::connect(run.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    (&s).write_all(&post("Content-Length: 100\r\n", "only ten b"))
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut buf = Vec::new();
    let _ = (&s).read_to_end(&mut buf);
    let a = parse_response(&buf, true)
        .ok_or_else(|| format!("no response: {:?}", String::from_utf8_lossy(&buf)));
    run.expect_bare("framing: body shorter than Content-Length", a, &[400, 0]);
}

/// Slow clients hold connections, not the server: while one sends its headers a byte every
/// 200 ms, others leave bodies unfinished and dozens of connections sit idle, /healthz and
/// real work still answer promptly on other connections.
fn slow_clients(run: &mut Run) {
    let addr = run.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let slowloris = {
        let stop = stop.clone();
        std::thread::spawn(move || -> Result<usize, String> {
            let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
            let req = b"GET /healthz HTTP/1.1\r\nHost: slow.example\r\nX-Slow: abcdefghijklmnopqrstuvwxyz\r\n\r\n";
            let mut sent = 0;
            for b in req {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                s.write_all(&[*b])
                    .map_err(|e| format!("after {sent} bytes: {e}"))?;
                sent += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            Ok(sent)
        })
    };
    // Bodies that never finish, on both write routes.
    let mut unfinished = Vec::new();
    for (path, declared) in [
        ("/api/v1/statements", 30_000),
        ("/api/v1/statements/batch", 8_000_000),
    ] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(
            format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {declared}\r\n\r\n{{\"statements\":[\"")
                .as_bytes(),
        )
        .unwrap();
        unfinished.push(s);
    }
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"POST /api/v1/statements HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789").unwrap();
    unfinished.push(s);
    // Idle connections with half a request line.
    let idle: Vec<TcpStream> = (0..64)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /heal").unwrap();
            s
        })
        .collect();

    // Each check opens a fresh connection and must be answered within 2 s (see `alive`).
    let start = Instant::now();
    let mut checks = 0;
    while start.elapsed() < Duration::from_millis(2400) {
        run.alive("while slow clients are connected");
        checks += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    // Real work too: a read and a refused write on other connections.
    let a = run.get("/api/v1/entries?start=0&limit=10");
    match a {
        Ok(r) if r.status == 200 => {}
        other => run.fail(format!("entries with slow clients connected: {other:?}")),
    }
    let a = run.post_note(b"not a note");
    run.expect("a refused note while slow clients are connected", a, 400);

    stop.store(true, Ordering::SeqCst);
    match slowloris.join().unwrap() {
        Ok(sent) if sent >= 8 => {}
        Ok(sent) => run.fail(format!("the slow client sent only {sent} bytes")),
        Err(e) => run.fail(format!("the slow client's connection was cut early: {e}")),
    }
    // The slow client, three unfinished bodies, the idle crowd.
    run.sent += 5;
    eprintln!("slow clients: {checks} health checks answered while they were connected");
    drop(unfinished);
    drop(idle);
}

// ---------------------------------------------------------------------------------------
// Bugs found by this corpus: each test asserts the right behaviour and is ignored until the
// fix lands.
// ---------------------------------------------------------------------------------------

/// Spec 6.2: errors are `application/problem+json`. A path parameter that percent-decodes to
/// invalid UTF-8 is refused by axum's own `Path` rejection, as `text/plain`.
#[test]

fn path_parameters_that_are_not_utf8_are_refused_with_problems() {
    let (_server, mut run, _w) = setup();
    for target in [
        "/tile/%ff/000",
        "/tile/entries/%c0%af",
        "/api/v1/entries/%ff",
        "/api/v1/publishers/%ff",
        "/api/v1/publishers/%ff/statements/%fe",
        "/api/v1/publishers/acme.example/statements/%ed%a0%80",
    ] {
        let a = run.raw(raw_request("GET", target, &[], b""));
        run.expect(&format!("GET {target}"), a, 400);
    }
    assert!(run.failures.is_empty(), "{}", run.failures.join("\n"));
}

/// The batch envelope is "exactly {"statements": [note, …]}" (src/api/write.rs): a second
/// `statements` member must not silently replace the first, or a proxy or auditor reading
/// the first sees another batch than the log sequences.
#[test]

fn batch_envelope_with_two_statements_members_is_refused() {
    let (_server, mut run, w) = setup();
    let half = String::from_utf8(w.good_note[..40].to_vec()).unwrap();
    let body = format!("{{\"statements\":[],\"statements\":[{}]}}", json!(half));
    let a = run.post_batch(body.as_bytes());
    run.expect("batch with two statements members", a, 400);
    let body = format!("{{\"statements\":[\"x\"],\"statements\":[\"y\",\"z\"]}}");
    let a = run.post_batch(body.as_bytes());
    run.expect("batch with two non-empty statements members", a, 400);
    assert!(run.failures.is_empty(), "{}", run.failures.join("\n"));
}

/// A note is at most 30,000 bytes, yet the single-note route buffers up to 8 MiB + 1 KiB
/// (the batch bound, applied router-wide) before answering 413; and a declared
/// Content-Length past the limit is not refused until that many bytes arrive. Both routes
/// should answer 413 as soon as the limit is known to be exceeded.
#[test]

fn oversized_bodies_are_refused_before_they_are_read() {
    let (server, mut run, _w) = setup();
    let addr = server.addr();
    let early_413 = |head: &str, body_sent: usize| -> Answer {
        let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        s.write_all(&vec![b'x'; body_sent])
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(r) = parse_response(&buf, false) {
                return Ok(r);
            }
            match (&s).read(&mut chunk) {
                Ok(0) => return parse_response(&buf, true).ok_or("closed".into()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => {
                    return Err(format!(
                        "no answer within 2 s of sending {body_sent} body bytes: {e}"
                    ))
                }
            }
        }
    };
    let a = early_413(
        "POST /api/v1/statements HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 9437184\r\n\r\n",
        40_000,
    );
    run.expect("single note: 9 MiB declared, 40,000 bytes sent", a, 413);
    let a = early_413(
        "POST /api/v1/statements/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9437184\r\n\r\n",
        0,
    );
    run.expect("batch: 9 MiB declared, nothing sent", a, 413);
    let a = early_413(
        "POST /api/v1/statements HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n9c40\r\n",
        40_000,
    );
    run.expect("single note: 40,000 bytes chunked, unfinished", a, 413);
    assert!(run.failures.is_empty(), "{}", run.failures.join("\n"));
}

/// Statement ids are UUIDs and publisher ids DNS names, but the statement route joins them
/// with '/' into a store key, so the origin (the genesis publisher) plus an id
/// `operator/<uuid>` reaches the operator's statement, served under the wrong publisher.
#[test]
fn statement_lookups_do_not_alias_other_publishers() {
    let (_server, mut run, w) = setup();
    let t = &w.acme_register[..w.acme_register.iter().position(|&b| b == b'\n').unwrap()];
    let v: Value = serde_json::from_slice(t).unwrap();
    let uuid = v["id"].as_str().unwrap();
    let real = run
        .get(&format!(
            "/api/v1/publishers/hostile.example%2Flog%2Foperator/statements/{uuid}"
        ))
        .unwrap();
    assert_eq!(real.status, 200, "the operator's register: {}", real.text());
    let a = run.get(&format!(
        "/api/v1/publishers/hostile.example%2Flog/statements/operator%2F{uuid}"
    ));
    run.expect("the operator's statement under the origin's name", a, 404);
    assert!(run.failures.is_empty(), "{}", run.failures.join("\n"));
}

/// A note may carry at most 100 signature lines; no type needs more than two. A batch of
/// notes each carrying 100 lines by a registered key should cost about what the same notes
/// cost with 100 lines by an unknown key (nothing to verify): every line past the ones the
/// type requires is refused by count (403), so it need not be verified.
#[test]

fn surplus_signature_lines_are_not_verified() {
    let (_server, run, w) = setup();
    let line = w.acme.key.signature_line(w.good_text.as_bytes());
    let unknown = line.replacen("acme.example", "zzzz.example", 1);
    let batch = |line: &str| {
        let note = format!("{}\n{}", w.good_text, line.repeat(100));
        json!({ "statements": vec![note; 600] }).to_string()
    };
    let time = |body: &str| {
        let t = Instant::now();
        let r = run.post_batch(body.as_bytes()).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json().unwrap();
        assert!(v["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == 403));
        t.elapsed()
    };
    let (known, unknown) = (batch(&line), batch(&unknown));
    let _ = time(&unknown); // warm up
    let base = time(&unknown);
    let verified = time(&known);
    eprintln!("600 notes x 100 lines: unknown key {base:?}, registered key {verified:?}");
    assert!(
        verified < base * 3 + Duration::from_millis(300),
        "60,000 surplus signature verifications: {verified:?} against {base:?} with nothing to verify"
    );
}
