//! Refusals through the real router: every way a statement can be turned away (spec
//! sections 3 and 5), each answered with the right status and an RFC 9457 problem, and each
//! leaving the log exactly as it was: same tree size, same checkpoint, same publisher heads.

mod common;

use base64::Engine;
use candor::note::{self, SecretKey};
use candor::receipt::Receipt;
use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::future::Future;

const PROBLEM_JSON: &str = "application/problem+json";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn operator_id() -> String {
    format!("{ORIGIN}/operator")
}

/// The publisher a note speaks for, read leniently (the note may be malformed on purpose).
fn publisher_of(note: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(note);
    let line = s.lines().next()?;
    let v: Value = serde_json::from_str(line).ok()?;
    v["publisher"].as_str().map(str::to_string)
}

/// The statement id of a note.
fn id_of(note: &str) -> String {
    let v: Value = serde_json::from_str(note.lines().next().unwrap()).unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// How the registry shows a publisher (or the operator): HTTP status and body.
async fn publisher_view(log: &TestLog, id: &str) -> (u16, Value) {
    let uri = if id == operator_id() {
        "/api/v1/operator".to_string()
    } else {
        format!("/api/v1/publishers/{id}")
    };
    let r = log.get(&uri).await;
    (r.status.as_u16(), r.json())
}

/// Everything a refusal must leave untouched.
#[derive(Debug, PartialEq)]
struct Snapshot {
    size: u64,
    checkpoint: String,
    /// The statement's publisher as GET /api/v1/publishers/{id} shows it (404 if unknown).
    publisher: Option<(u16, Value)>,
    operator: Value,
    publishers: Value,
}

async fn snapshot(log: &TestLog, publisher: Option<&str>) -> Snapshot {
    let publisher = match publisher {
        Some(id) => Some(publisher_view(log, id).await),
        None => None,
    };
    Snapshot {
        size: log.size().await,
        checkpoint: log.get("/checkpoint").await.text(),
        publisher,
        operator: log.get("/api/v1/operator").await.json(),
        publishers: log.get("/api/v1/publishers").await.json(),
    }
}

/// Checks an RFC 9457 problem object (a response body or a batch item's `problem`).
fn check_problem(p: &Value, status: u16, pointer: Option<&str>, ctx: &str) {
    assert_eq!(p["status"], status, "{ctx}: problem status: {p}");
    assert!(
        p["type"].as_str().is_some_and(|t| !t.is_empty()),
        "{ctx}: problem type: {p}"
    );
    assert!(
        p["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{ctx}: problem title: {p}"
    );
    assert!(
        p["detail"].as_str().is_some_and(|d| !d.trim().is_empty()),
        "{ctx}: problem detail must say what to fix: {p}"
    );
    if let Some(ptr) = pointer {
        assert_eq!(
            p["pointer"].as_str(),
            Some(ptr),
            "{ctx}: problem pointer: {p}"
        );
    }
}

/// Checks a refused HTTP response: status, content type, problem body.
fn check_response(r: &Resp, status: u16, pointer: Option<&str>, ctx: &str) -> Value {
    assert_eq!(
        r.status.as_u16(),
        status,
        "{ctx}: HTTP status; body: {}",
        r.text()
    );
    assert_eq!(
        r.content_type,
        PROBLEM_JSON,
        "{ctx}: content type; body: {}",
        r.text()
    );
    let p = r.json();
    check_problem(&p, status, pointer, ctx);
    p
}

/// Sends `send` (a request not yet awaited) and checks that it is refused with `status` and
/// `pointer`, that a 409 carries `publisher`'s real head, and that nothing changed: tree
/// size, checkpoint, the publisher's registry entry (head, keys, status), every publisher.
async fn refused_by(
    log: &TestLog,
    publisher: Option<&str>,
    send: impl Future<Output = Resp>,
    status: u16,
    pointer: Option<&str>,
    ctx: &str,
) -> Value {
    let before = snapshot(log, publisher).await;
    let r = send.await;
    let p = check_response(&r, status, pointer, ctx);
    if status == 409 {
        let (code, view) = before.publisher.as_ref().expect("a 409 names a publisher");
        assert_eq!(*code, 200, "{ctx}: the publisher of a 409 exists");
        assert_eq!(
            p["head"], view["head"],
            "{ctx}: a 409 carries the publisher's real head: {p}"
        );
        assert!(p["head"].is_object(), "{ctx}: 409 head: {p}");
    }
    let after = snapshot(log, publisher).await;
    assert_eq!(before, after, "{ctx}: a refusal changes nothing");
    p
}

/// Posts one note (bytes, possibly not UTF-8) through the router.
async fn post_note(log: &TestLog, note: &[u8]) -> Resp {
    match std::str::from_utf8(note) {
        Ok(s) => log.post(s).await,
        Err(_) => log.call("POST", "/api/v1/statements", note.to_vec()).await,
    }
}

/// Posts `note` and checks the refusal (see [`refused_by`]); returns the problem.
async fn assert_refused(
    log: &TestLog,
    note: impl AsRef<[u8]>,
    status: u16,
    pointer: Option<&str>,
) -> Value {
    let note = note.as_ref();
    let publisher = publisher_of(note);
    let ctx = String::from_utf8_lossy(&note[..note.len().min(300)]).into_owned();
    refused_by(
        log,
        publisher.as_deref(),
        post_note(log, note),
        status,
        pointer,
        &ctx,
    )
    .await
}

/// Posts a note that must be accepted.
async fn accept(log: &TestLog, note: &str) {
    let r = log.post(note).await;
    assert_eq!(r.status, 201, "expected acceptance of {note}: {}", r.text());
}

/// A log with two publishers: `acme` has one request logged (`first`), `beta` none.
struct World {
    log: TestLog,
    op: Signer,
    acme: Signer,
    beta: Signer,
    first: String,
}

async fn world() -> World {
    let log = TestLog::new().await;
    let mut op = log.operator();
    let mut acme = log.register(&mut op, "acme.example").await;
    let beta = log.register(&mut op, "beta.example").await;
    let n = acme.next("request", user_data("DE"));
    accept(&log, &n).await;
    let first = id_of(&n);
    World {
        log,
        op,
        acme,
        beta,
        first,
    }
}

/// The same key pair under another name (the secret key text re-spelled, key id recomputed).
fn same_key_named(k: &SecretKey, name: &str) -> SecretKey {
    let text = k.to_text();
    let rest = text.strip_prefix("PRIVATE+KEY+").unwrap();
    let b64 = rest.splitn(3, '+').nth(2).unwrap();
    let id = note::key_id(name, &k.verifier().public_bytes());
    SecretKey::parse(&format!("PRIVATE+KEY+{name}+{id:08x}+{b64}")).unwrap()
}

/// Re-spells the last signature's base64 non-canonically: flips the unused low bits of the
/// last character before the padding, which lenient decoders ignore.
fn noncanonical_last_signature(n: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let body = n.strip_suffix('\n').unwrap();
    let sp = body.rfind(' ').unwrap();
    let b64 = &body[sp + 1..];
    // 68 bytes (key id and signature): 92 characters, one '=', 2 unused bits in the last one.
    assert!(b64.ends_with('=') && !b64.ends_with("=="), "{b64}");
    let mut chars = b64.as_bytes().to_vec();
    let i = chars.len() - 2;
    let v = ALPHABET.iter().position(|&c| c == chars[i]).unwrap();
    chars[i] = ALPHABET[v ^ 0b11];
    let bad = String::from_utf8(chars).unwrap();
    // The same bytes to a lenient decoder: only the spelling is wrong.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    assert_eq!(lenient.decode(&bad).unwrap(), lenient.decode(b64).unwrap());
    assert_ne!(bad, b64);
    format!("{}{bad}\n", &body[..sp + 1])
}

/// A date a day and a half from now: after the date of any entry logged in the next 12 hours.
fn future_date() -> String {
    candor::entry::date_of(candor::entry::now_millis() + 36 * 3600 * 1000)
}

/// A seal of `record` by `s`, posted; returns (seal id, salt, request text).
async fn seal(
    log: &TestLog,
    s: &mut Signer,
    record: &Value,
    fields: Value,
) -> (String, [u8; 32], String) {
    let salt = [0x5au8; 32];
    let request_text = serde_json::to_string(record).unwrap();
    let commitment = hex::encode(candor::statement::seal::commitment(
        ORIGIN,
        &s.id,
        &salt,
        &request_text,
    ));
    let mut f = json!({"commitment": commitment, "disclose_by": "2027-06-01", "basis": "non_disclosure_order"});
    for (k, v) in fields.as_object().unwrap() {
        f[k] = v.clone();
    }
    let n = s.next("seal", f);
    accept(log, &n).await;
    (id_of(&n), salt, request_text)
}

// ---------------------------------------------------------------------------------------
// 413 size
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_note_over_30000_bytes_is_413_and_exactly_30000_is_not() {
    let World { log, acme, .. } = world().await;
    let note_with_notes = |len: usize| {
        let mut rec = user_data("DE");
        rec["notes"] = Value::from("a".repeat(len));
        acme.sign(&acme.body("request", rec))
    };
    let base = note_with_notes(0).len();
    let over = note_with_notes(30_001 - base);
    assert_eq!(over.len(), 30_001);
    assert_refused(&log, &over, 413, None).await;
    let far_over = note_with_notes(60_000);
    assert_refused(&log, &far_over, 413, None).await;
    // At the limit the size check passes; the note is then refused for its content
    // (notes is at most 2000 characters), not its size.
    let at = note_with_notes(30_000 - base);
    assert_eq!(at.len(), 30_000);
    assert_refused(&log, &at, 422, Some("/notes")).await;
}

#[tokio::test]
async fn a_batch_of_1001_items_is_413_and_nothing_is_logged() {
    let World { log, mut acme, .. } = world().await;
    let n = acme.next("request", user_data("DE"));
    let notes = vec![n.clone(); 1001];
    refused_by(
        &log,
        Some("acme.example"),
        log.post_batch(&notes),
        413,
        None,
        "batch of 1001",
    )
    .await;
    // 1000 is within the limit: the first copy is logged, the others are duplicates of it.
    let r = log.post_batch(&notes[..1000]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let results = r.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 1000);
    assert_eq!(results[0]["status"], 201);
    assert!(
        results[1..].iter().all(|x| x["status"] == 200),
        "later copies are duplicates"
    );
}

#[tokio::test]
async fn a_batch_over_8_mib_is_413() {
    let World { log, acme, .. } = world().await;
    // Notes of 30,000 bytes each (within the note limit), 300 of them: about 9 MB.
    let mut rec = user_data("DE");
    rec["notes"] = Value::from("");
    let base = acme.sign(&acme.body("request", rec.clone())).len();
    rec["notes"] = Value::from("a".repeat(30_000 - base));
    let big = acme.sign(&acme.body("request", rec));
    assert_eq!(big.len(), 30_000);
    let notes = vec![big; 300];
    refused_by(
        &log,
        Some("acme.example"),
        log.post_batch(&notes),
        413,
        None,
        "9 MB batch",
    )
    .await;
    // Just over 8 MiB (8,388,608 bytes) of JSON.
    let len = |n: &[String]| json!({"statements": n}).to_string().len();
    let mut notes = notes;
    while len(&notes) > 8_388_609 - 100 {
        notes.pop();
    }
    let short = 8_388_609 - len(&notes) - 3; // `,""` per extra item
    notes.push("x".repeat(short));
    assert_eq!(len(&notes), 8_388_609);
    refused_by(
        &log,
        Some("acme.example"),
        log.post_batch(&notes),
        413,
        None,
        "8 MiB + 1 batch",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// 400 form
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_lexical_rules_are_400() {
    let World { log, acme, .. } = world().await;
    let b = acme.body("request", user_data("DE"));
    let t = text(&b);
    let prev = acme.prev.clone().unwrap();
    let cases: Vec<(String, Option<&str>)> = vec![
        (
            t.replacen("\"Example Police\"", "\"Example \\ud800Police\"", 1),
            Some("/authority/name"),
        ),
        (
            t.replacen("\"Example Police\"", "\"Example \\udc00Police\"", 1),
            Some("/authority/name"),
        ),
        (
            t.replacen("\"Example Police\"", "\"Example \\u0001Police\"", 1),
            Some("/authority/name"),
        ),
        (
            t.replacen("\"Example Police\"", "\"Example \\tPolice\"", 1),
            Some("/authority/name"),
        ),
        (
            t.replacen("\"Example Police\"", "\"Example \u{7f}Police\"", 1),
            None,
        ),
        (
            t.replacen("\"accounts\":2", "\"accounts\":9007199254740992", 1),
            Some("/targets/accounts"),
        ),
        (
            t.replacen("\"accounts\":2", "\"accounts\":02", 1),
            Some("/targets/accounts"),
        ),
        (t.replacen("\"v\":1,", "\"v\":\t1,", 1), None),
        (t.replacen("\"v\":1,", "\"v\":1,\r", 1), None),
        (t.replacen(&prev, &prev.to_uppercase(), 1), Some("/prev")),
        ("[1,2,3]\n".to_string(), None),
        ("\"a string\"\n".to_string(), None),
    ];
    for (text, pointer) in cases {
        assert_ne!(text, t);
        // Signed by hand: the library's signer refuses some of these texts itself.
        let n = format!("{text}\n{}", acme.key.signature_line(text.as_bytes()));
        assert_refused(&log, &n, 400, pointer).await;
    }
}

/// Spaces between tokens are not a lexical error (protocol section 3 does not forbid them):
/// such a statement is logged as sent, and its hash is that of the text with its spaces.
#[tokio::test]
async fn spaces_between_tokens_are_accepted_and_kept() {
    let World { log, mut acme, .. } = world().await;
    let b = acme.body("request", user_data("DE"));
    let compact = text(&b);
    let spaced = serde_json::to_string_pretty(&b).unwrap().replace('\n', " ") + "\n"; // test-only
    assert!(spaced.contains("\"v\": 1,") && spaced.starts_with("{ "));
    let n = format!("{spaced}\n{}", acme.key.signature_line(spaced.as_bytes()));
    let r = log.post(&n).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let index = r.json()["index"].as_u64().unwrap(); // test-only
    let e = log.get(&format!("/api/v1/entries/{index}")).await.json();
    assert_eq!(e["statement"], n.as_str(), "stored exactly as received");
    assert_eq!(e["body"], b, "the same statement as its compact spelling");
    acme.advance(&n);
    let head = log.get("/api/v1/publishers/acme.example").await.json()["head"]["hash"].clone();
    assert_eq!(head, hex::encode(Sha256::digest(spaced.as_bytes())));
    assert_ne!(head, hex::encode(Sha256::digest(compact.as_bytes())));
    // The next statement chains on the spaced text's hash.
    accept(&log, &acme.next("request", user_data("FR"))).await;
}

#[tokio::test]
async fn bad_utf8_is_400() {
    let World { log, acme, .. } = world().await;
    let mut rec = user_data("DE");
    rec["notes"] = Value::from("@@@@");
    let n = acme.sign(&acme.body("request", rec)).into_bytes();
    let at = n.windows(4).position(|w| w == b"@@@@").unwrap();
    for bad in [
        &[0xc3u8, 0x28][..],
        &[0xff, 0xfe],
        &[0xed, 0xa0, 0x80], /* a surrogate in UTF-8 */
    ] {
        let mut b = n.clone();
        b.splice(at..at + bad.len(), bad.iter().copied());
        assert!(std::str::from_utf8(&b).is_err());
        assert_refused(&log, &b, 400, None).await;
    }
}

#[tokio::test]
async fn a_note_without_blank_line_or_signature_is_400() {
    let World { log, acme, .. } = world().await;
    let b = acme.body("request", user_data("DE"));
    let t = text(&b);
    let signed = acme.sign(&b);
    let sig_line = signed.lines().last().unwrap().to_string();
    for bad in [
        t.clone(),                                 // the JSON line alone
        format!("{t}\n"),                          // blank line, no signature
        format!("{t}{sig_line}\n"),                // signature without the blank line
        signed.trim_end_matches('\n').to_string(), // signature line without its newline
        format!("{t}\nnot a signature line\n"),
    ] {
        assert_refused(&log, &bad, 400, None).await;
    }
}

#[tokio::test]
async fn two_json_lines_are_400() {
    let World { log, acme, .. } = world().await;
    let b = acme.body("request", user_data("DE"));
    let two = format!("{}{}", text(&b), text(&json!({"extra": true})));
    let n = note::sign(&two, &[&acme.key]).unwrap();
    assert_refused(&log, &n, 400, None).await;
    // Pretty-printed JSON is several lines too.
    let pretty = format!("{}\n", serde_json::to_string_pretty(&b).unwrap());
    let n = note::sign(&pretty, &[&acme.key]).unwrap();
    assert_refused(&log, &n, 400, None).await;
}

#[tokio::test]
async fn a_duplicate_json_key_is_400() {
    let World { log, acme, .. } = world().await;
    let b = acme.body("request", user_data("DE"));
    // The duplicate repeats the right value: a lenient parser would accept it.
    let t = text(&b).replacen('{', &format!("{{\"seq\":{},", acme.seq + 1), 1);
    let n = note::sign(&t, &[&acme.key]).unwrap();
    assert_refused(&log, &n, 400, Some("/seq")).await;
    // In a nested object too.
    let t = text(&b).replacen(
        "{\"type\":\"police\"",
        "{\"type\":\"police\",\"type\":\"police\"",
        1,
    );
    assert_ne!(t, text(&b));
    let n = note::sign(&t, &[&acme.key]).unwrap();
    assert_refused(&log, &n, 400, Some("/authority/type")).await;
}

#[tokio::test]
async fn non_canonical_base64_in_a_signature_is_400() {
    let World { log, mut acme, .. } = world().await;
    let b = acme.body("request", user_data("DE"));
    let good = acme.sign(&b);
    let bad = noncanonical_last_signature(&good);
    assert_refused(&log, &bad, 400, None).await;
    // The canonical spelling of the same signature is accepted.
    accept(&log, &good).await;
    acme.advance(&good);
}

#[tokio::test]
async fn an_uppercase_uuid_in_id_is_400() {
    let World { log, acme, .. } = world().await;
    let mut b = acme.body("request", user_data("DE"));
    b["id"] = Value::from(b["id"].as_str().unwrap().to_uppercase());
    let n = acme.sign(&b);
    assert_refused(&log, &n, 400, Some("/id")).await;
}

#[tokio::test]
async fn a_float_for_seq_is_400() {
    let World { log, beta, .. } = world().await;
    // beta's next seq is 1: `1.0` has the right value, the wrong spelling.
    let b = beta.body("request", user_data("DE"));
    let t = text(&b);
    let t = t.replacen("\"seq\":1,", "\"seq\":1.0,", 1);
    assert!(t.contains("\"seq\":1.0,"));
    let n = note::sign(&t, &[&beta.key]).unwrap();
    assert_refused(&log, &n, 400, Some("/seq")).await;
    for spelling in ["1e0", "01", "-1"] {
        let t = text(&b).replacen("\"seq\":1,", &format!("\"seq\":{spelling},"), 1);
        let n = note::sign(&t, &[&beta.key]).unwrap();
        assert_refused(&log, &n, 400, Some("/seq")).await;
    }
}

// ---------------------------------------------------------------------------------------
// 403 authority
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_extra_signature_line_is_403() {
    let World { log, acme, .. } = world().await;
    let b = acme.body("request", user_data("DE"));
    let recovery = acme.recovery.as_ref().unwrap();
    assert_refused(&log, acme.sign_with(&b, &[recovery]), 403, None).await;
    assert_refused(&log, acme.sign_with(&b, &[&acme.key]), 403, None).await;
    assert_refused(&log, acme.sign_with(&b, &[&log.op_key]), 403, None).await;
}

#[tokio::test]
async fn a_register_with_only_the_operator_signature_is_403() {
    let World { log, op, .. } = world().await;
    let key = SecretKey::generate("gamma.example").unwrap();
    let recovery = SecretKey::generate("gamma.example").unwrap();
    let b = op.body(
        "register",
        json!({
            "subject": "gamma.example", "name": "Gamma", "key": key.verifier().to_string(),
            "recovery_key": recovery.verifier().to_string(),
        }),
    );
    assert_refused(&log, op.sign(&b), 403, None).await;
    assert_eq!(
        log.get("/api/v1/publishers/gamma.example").await.status,
        404
    );
}

#[tokio::test]
async fn a_signature_by_another_key_with_the_same_name_is_403() {
    let World { log, acme, .. } = world().await;
    let b = acme.body("request", user_data("DE"));
    let impostor = SecretKey::generate("acme.example").unwrap();
    assert_ne!(impostor.id, acme.key.id);
    assert_refused(
        &log,
        note::sign(&text(&b), &[&impostor]).unwrap(),
        403,
        None,
    )
    .await;
    // The publisher's own recovery key has the same name, but it does not sign requests.
    let recovery = acme.recovery.as_ref().unwrap();
    assert_refused(&log, note::sign(&text(&b), &[recovery]).unwrap(), 403, None).await;
    // A valid signature line whose signature is over another text.
    let other = acme.body("request", user_data("FR"));
    let theirs = acme.sign(&other);
    let forged = format!("{}\n{}\n", text(&b), theirs.lines().last().unwrap());
    assert_refused(&log, &forged, 403, None).await;
}

#[tokio::test]
async fn a_signature_by_a_rotated_out_key_is_403() {
    let World { log, mut acme, .. } = world().await;
    let new_key = SecretKey::generate("acme.example").unwrap();
    let b = acme.body("rotate", json!({"key": new_key.verifier().to_string()}));
    let n = acme.sign_with(&b, &[&new_key]);
    accept(&log, &n).await;
    acme.advance(&n);
    let old = std::mem::replace(&mut acme.key, new_key);
    let b = acme.body("request", user_data("DE"));
    assert_refused(&log, note::sign(&text(&b), &[&old]).unwrap(), 403, None).await;
    // The new key is in force.
    let n = acme.next("request", user_data("DE"));
    accept(&log, &n).await;
}

#[tokio::test]
async fn a_statement_by_a_revoked_publisher_is_403() {
    let World {
        log, mut op, acme, ..
    } = world().await;
    let n = op.next(
        "revoke",
        json!({"subject": "acme.example", "reason": "key compromise reported"}),
    );
    accept(&log, &n).await;
    let b = acme.body("request", user_data("DE"));
    assert_refused(&log, acme.sign(&b), 403, Some("/publisher")).await;
}

#[tokio::test]
async fn a_register_not_cosigned_by_the_new_key_is_403() {
    let World { log, op, .. } = world().await;
    let key = SecretKey::generate("gamma.example").unwrap();
    let recovery = SecretKey::generate("gamma.example").unwrap();
    let other = SecretKey::generate("gamma.example").unwrap();
    let b = op.body(
        "register",
        json!({
            "subject": "gamma.example", "name": "Gamma", "key": key.verifier().to_string(),
            "recovery_key": recovery.verifier().to_string(),
        }),
    );
    // Co-signed by a key of the same name that is not `key`.
    assert_refused(&log, op.sign_with(&b, &[&other]), 403, None).await;
    // Co-signed by the recovery key rather than the signing key.
    assert_refused(&log, op.sign_with(&b, &[&recovery]), 403, None).await;
    // The right keys in the wrong order.
    assert_refused(
        &log,
        note::sign(&text(&b), &[&key, &log.op_key]).unwrap(),
        403,
        None,
    )
    .await;
    // The new key alone.
    assert_refused(&log, note::sign(&text(&b), &[&key]).unwrap(), 403, None).await;
    assert_eq!(
        log.get("/api/v1/publishers/gamma.example").await.status,
        404
    );
}

#[tokio::test]
async fn the_operator_cannot_make_publisher_statements_in_its_own_name() {
    let World { log, op, .. } = world().await;
    // publisher = <origin>/operator, signed by the operator key.
    let b = op.body("request", user_data("DE"));
    assert_eq!(b["publisher"], operator_id());
    assert_refused(&log, op.sign(&b), 403, Some("/publisher")).await;
    let b = op.body("band", json!({"period": "2026-H1", "category": "nsl", "requests": {"min": 0, "max": 249}, "accounts": {"min": 0, "max": 249}}));
    assert_refused(&log, op.sign(&b), 403, Some("/publisher")).await;
}

#[tokio::test]
async fn the_operator_key_alone_cannot_make_a_statement_in_a_publishers_name() {
    let World {
        log, acme, first, ..
    } = world().await;
    let op_key = &log.op_key;
    let by_operator = |b: &Value| note::sign(&text(b), &[op_key]).unwrap();
    // A request in acme's name.
    let b = acme.body("request", user_data("DE"));
    assert_eq!(b["publisher"], "acme.example");
    assert_refused(&log, by_operator(&b), 403, None).await;
    // An update of acme's request.
    let b = acme.body(
        "update",
        json!({"of": first, "patch": {"disposition": "rejected"}}),
    );
    assert_refused(&log, by_operator(&b), 403, None).await;
    // Taking over acme's chain: a rotate or recover to a key the operator holds.
    let taken = SecretKey::generate("acme.example").unwrap();
    let b = acme.body("rotate", json!({"key": taken.verifier().to_string()}));
    assert_refused(
        &log,
        note::sign(&text(&b), &[op_key, &taken]).unwrap(),
        403,
        None,
    )
    .await;
    let b = acme.body(
        "recover",
        json!({"key": taken.verifier().to_string(), "reason": "operator says so"}),
    );
    assert_refused(
        &log,
        note::sign(&text(&b), &[op_key, &taken]).unwrap(),
        403,
        None,
    )
    .await;
    // The operator's key renamed to acme's name is still not acme's key.
    let renamed = same_key_named(op_key, "acme.example");
    let b = acme.body("request", user_data("DE"));
    assert_refused(&log, note::sign(&text(&b), &[&renamed]).unwrap(), 403, None).await;
}

#[tokio::test]
async fn a_wrong_log_is_403_at_log() {
    let World { log, acme, .. } = world().await;
    for other in [
        "other.example/log",
        "test.example/log/",
        "TEST.example/log",
        "",
    ] {
        let mut b = acme.body("request", user_data("DE"));
        b["log"] = Value::from(other);
        assert_refused(&log, acme.sign(&b), 403, Some("/log")).await;
    }
}

#[tokio::test]
async fn an_unknown_publisher_is_403() {
    let World { log, .. } = world().await;
    let nobody = Signer::new(
        "nobody.example",
        SecretKey::generate("nobody.example").unwrap(),
    );
    let b = nobody.body("request", user_data("DE"));
    let p = assert_refused(&log, nobody.sign(&b), 403, Some("/publisher")).await;
    assert!(p.get("head").is_none() || p["head"].is_null(), "{p}");
    assert_eq!(
        log.get("/api/v1/publishers/nobody.example").await.status,
        404
    );
}

// ---------------------------------------------------------------------------------------
// 409 order
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_reused_public_key_in_register_is_409_at_key() {
    let World { log, op, acme, .. } = world().await;
    // acme's signing key, re-spelled under the new subject's name: a valid key named
    // `subject`, but its public key is already registered.
    let reused = same_key_named(&acme.key, "gamma.example");
    assert_eq!(
        reused.verifier().public_bytes(),
        acme.key.verifier().public_bytes()
    );
    let recovery = SecretKey::generate("gamma.example").unwrap();
    let b = op.body(
        "register",
        json!({
            "subject": "gamma.example", "name": "Gamma", "key": reused.verifier().to_string(),
            "recovery_key": recovery.verifier().to_string(),
        }),
    );
    assert_refused(&log, op.sign_with(&b, &[&reused]), 409, Some("/key")).await;
    // The operator's own key is registered too.
    let op_reused = same_key_named(&log.op_key, "gamma.example");
    let b = op.body(
        "register",
        json!({
            "subject": "gamma.example", "name": "Gamma", "key": op_reused.verifier().to_string(),
            "recovery_key": recovery.verifier().to_string(),
        }),
    );
    assert_refused(&log, op.sign_with(&b, &[&op_reused]), 409, Some("/key")).await;
    assert_eq!(
        log.get("/api/v1/publishers/gamma.example").await.status,
        404
    );
}

#[tokio::test]
async fn a_seq_gap_is_409_at_seq() {
    let World {
        log, acme, beta, ..
    } = world().await;
    let mut b = acme.body("request", user_data("DE"));
    b["seq"] = Value::from(acme.seq + 2);
    let p = assert_refused(&log, acme.sign(&b), 409, Some("/seq")).await;
    assert_eq!(p["head"]["seq"], acme.seq);
    assert_eq!(p["head"]["hash"].as_str(), acme.prev.as_deref());
    // Replaying a position already taken.
    let mut b = acme.body("request", user_data("DE"));
    b["seq"] = Value::from(1);
    b["prev"] = Value::Null;
    assert_refused(&log, acme.sign(&b), 409, Some("/seq")).await;
    // A publisher with no statements yet: its head is seq 0, hash null.
    let mut b = beta.body("request", user_data("DE"));
    b["seq"] = Value::from(2);
    let p = assert_refused(&log, beta.sign(&b), 409, Some("/seq")).await;
    assert_eq!(p["head"], json!({"seq": 0, "hash": null}));
}

#[tokio::test]
async fn a_wrong_prev_is_409_at_prev() {
    let World {
        log, acme, beta, ..
    } = world().await;
    let mut b = acme.body("request", user_data("DE"));
    b["prev"] = Value::from(hex::encode(candor::statement::sha256(b"not the head")));
    assert_refused(&log, acme.sign(&b), 409, Some("/prev")).await;
    let mut b = acme.body("request", user_data("DE"));
    b["prev"] = Value::Null;
    assert_refused(&log, acme.sign(&b), 409, Some("/prev")).await;
    // seq 1 must have prev null.
    let mut b = beta.body("request", user_data("DE"));
    b["prev"] = acme.prev.clone().into();
    assert_refused(&log, beta.sign(&b), 409, Some("/prev")).await;
}

#[tokio::test]
async fn a_reused_id_is_409_at_id() {
    let World {
        log,
        mut acme,
        mut beta,
        first,
        ..
    } = world().await;
    let mut b = acme.body("request", user_data("FR"));
    b["id"] = Value::from(first.clone());
    assert_refused(&log, acme.sign(&b), 409, Some("/id")).await;
    // Ids are unique per publisher: beta may use the same id.
    let mut b = beta.body("request", user_data("FR"));
    b["id"] = Value::from(first.clone());
    let n = beta.sign(&b);
    accept(&log, &n).await;
    beta.advance(&n);
    // And acme's chain still takes a fresh id.
    let n = acme.next("request", user_data("FR"));
    accept(&log, &n).await;
}

// ---------------------------------------------------------------------------------------
// 422 content
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_field_is_422() {
    let World { log, acme, .. } = world().await;
    let mut b = acme.body("request", user_data("DE"));
    b["colour"] = Value::from("blue");
    assert_refused(&log, acme.sign(&b), 422, Some("/colour")).await;
    // Inside a nested object.
    let mut b = acme.body("request", user_data("DE"));
    b["authority"]["badge"] = Value::from(7);
    assert_refused(&log, acme.sign(&b), 422, Some("/authority/badge")).await;
}

#[tokio::test]
async fn a_missing_field_is_422_at_that_field() {
    let World { log, acme, .. } = world().await;
    for (rec, field) in [
        (user_data("DE"), "data_categories"),
        (takedown("DE"), "reasons"),
        (user_data("DE"), "disposition"),
    ] {
        let mut rec = rec;
        rec.as_object_mut().unwrap().remove(field); // test-only
        let pointer = format!("/{field}");
        let n = acme.sign(&acme.body("request", rec));
        let p = assert_refused(&log, n, 422, Some(&pointer)).await;
        assert!(p["detail"].as_str().unwrap().contains(field), "{p}"); // test-only
    }
    let mut rec = takedown("DE");
    rec["scope"] = json!("regional");
    let n = acme.sign(&acme.body("request", rec));
    assert_refused(&log, n, 422, Some("/territories")).await;
}

/// Protocol section 2: a publisher id is never the origin's host.
#[tokio::test]
async fn a_register_of_the_origins_host_is_422_at_subject() {
    let World { log, op, .. } = world().await;
    let host = ORIGIN.split('/').next().unwrap(); // test-only
    let key = SecretKey::generate(host).unwrap(); // test-only
    let recovery = SecretKey::generate(host).unwrap(); // test-only
    let b = op.body(
        "register",
        json!({
            "subject": host, "name": "Not the log", "key": key.verifier().to_string(),
            "recovery_key": recovery.verifier().to_string(),
        }),
    );
    let p = assert_refused(&log, op.sign_with(&b, &[&key]), 422, Some("/subject")).await;
    assert!(p["detail"].as_str().unwrap().contains("host"), "{p}"); // test-only
    assert_eq!(
        log.get(&format!("/api/v1/publishers/{host}")).await.status,
        404
    );
}

#[tokio::test]
async fn a_field_not_allowed_for_the_kind_is_422_at_that_field() {
    let World { log, acme, .. } = world().await;
    let mut rec = user_data("DE");
    rec["reasons"] = json!(["defamation"]);
    assert_refused(
        &log,
        acme.sign(&acme.body("request", rec)),
        422,
        Some("/reasons"),
    )
    .await;
    let mut rec = user_data("DE");
    rec["scope"] = json!("national");
    assert_refused(
        &log,
        acme.sign(&acme.body("request", rec)),
        422,
        Some("/scope"),
    )
    .await;
    let mut rec = takedown("DE");
    rec["data_categories"] = json!(["subscriber"]);
    assert_refused(
        &log,
        acme.sign(&acme.body("request", rec)),
        422,
        Some("/data_categories"),
    )
    .await;
}

#[tokio::test]
async fn an_invalid_country_is_422_at_country() {
    let World { log, acme, .. } = world().await;
    for c in ["UK", "de", "XX", "DEU"] {
        assert_refused(
            &log,
            acme.sign(&acme.body("request", user_data(c))),
            422,
            Some("/country"),
        )
        .await;
    }
}

#[tokio::test]
async fn responded_on_before_received_on_is_422_at_responded_on() {
    let World { log, acme, .. } = world().await;
    let mut rec = user_data("DE");
    rec["responded_on"] = Value::from("2026-01-14");
    assert_refused(
        &log,
        acme.sign(&acme.body("request", rec)),
        422,
        Some("/responded_on"),
    )
    .await;
}

#[tokio::test]
async fn received_on_after_the_log_date_is_422_at_received_on() {
    let World { log, mut acme, .. } = world().await;
    let mut rec = user_data("DE");
    rec.as_object_mut().unwrap().remove("responded_on");
    rec["received_on"] = Value::from(future_date());
    assert_refused(
        &log,
        acme.sign(&acme.body("request", rec.clone())),
        422,
        Some("/received_on"),
    )
    .await;
    rec["received_on"] = Value::from("2999-01-01");
    assert_refused(
        &log,
        acme.sign(&acme.body("request", rec.clone())),
        422,
        Some("/received_on"),
    )
    .await;
    // A demand received today is fine (the log's date is UTC).
    rec["received_on"] = Value::from(candor::entry::date_of(
        candor::entry::now_millis() - 3600 * 1000,
    ));
    let n = acme.next("request", rec);
    accept(&log, &n).await;
}

#[tokio::test]
async fn a_patch_that_makes_the_record_invalid_is_422() {
    let World {
        log,
        mut acme,
        first,
        ..
    } = world().await;
    let cases = [
        (json!({"country": "UK"}), Some("/patch/country")),
        (
            json!({"responded_on": "2026-01-01"}),
            Some("/patch/responded_on"),
        ),
        (
            json!({"received_on": future_date(), "responded_on": null}),
            Some("/patch/received_on"),
        ),
        (json!({"produced": ["location"]}), Some("/patch/produced/0")),
        (json!({"reasons": ["defamation"]}), Some("/patch/reasons")),
        (json!({"disposition": null}), None),
        (json!({"colour": "blue"}), None),
    ];
    for (patch, pointer) in cases {
        let b = acme.body("update", json!({"of": first, "patch": patch}));
        assert_refused(&log, acme.sign(&b), 422, pointer).await;
    }
    // The record is as it was.
    let s = log
        .get(&format!(
            "/api/v1/publishers/acme.example/statements/{first}"
        ))
        .await
        .json();
    assert_eq!(s["current"]["record"], user_data("DE"));
    assert_eq!(s["current"]["updates"], json!([]));
    // A valid patch still applies.
    let n = acme.next(
        "update",
        json!({"of": first, "patch": {"disposition": "complied"}}),
    );
    accept(&log, &n).await;
}

#[tokio::test]
async fn a_patch_that_changes_kind_is_422() {
    let World {
        log, acme, first, ..
    } = world().await;
    // Otherwise a valid content-restriction record: only the change of kind is at fault.
    let patch = json!({
        "kind": "content_restriction", "data_categories": null, "produced": null,
        "reasons": ["defamation"], "scope": "national",
    });
    let b = acme.body("update", json!({"of": first, "patch": patch}));
    assert_refused(&log, acme.sign(&b), 422, Some("/patch/kind")).await;
    let b = acme.body(
        "update",
        json!({"of": first, "patch": {"kind": "preservation"}}),
    );
    assert_refused(&log, acme.sign(&b), 422, Some("/patch/kind")).await;
}

#[tokio::test]
async fn a_reveal_with_a_wrong_salt_is_422() {
    let World { log, mut acme, .. } = world().await;
    let record = user_data("FR");
    let (seal_id, salt, request_text) = seal(
        &log,
        &mut acme,
        &record,
        json!({"kind": "user_data", "country": "FR"}),
    )
    .await;
    let mut wrong = salt;
    wrong[31] ^= 1;
    let b = acme.body(
        "reveal",
        json!({"of": seal_id, "salt": hex::encode(wrong), "request": request_text}),
    );
    assert_refused(&log, acme.sign(&b), 422, Some("/salt")).await;
    // The right salt with another request text (same record, other spelling) does not match either.
    let respelled = serde_json::to_string(
        &serde_json::from_str::<serde_json::Map<String, Value>>(&request_text)
            .unwrap()
            .into_iter()
            .rev()
            .collect::<serde_json::Map<_, _>>(),
    )
    .unwrap();
    assert_ne!(respelled, request_text);
    let b = acme.body(
        "reveal",
        json!({"of": seal_id, "salt": hex::encode(salt), "request": respelled}),
    );
    assert_refused(&log, acme.sign(&b), 422, None).await;
    // The right salt and text open it.
    let n = acme.next(
        "reveal",
        json!({"of": seal_id, "salt": hex::encode(salt), "request": request_text}),
    );
    accept(&log, &n).await;
}

#[tokio::test]
async fn a_reveal_whose_record_differs_from_the_seal_in_kind_or_country_is_422() {
    let World { log, mut acme, .. } = world().await;
    // The commitment matches; the seal said user_data, the record is a content restriction.
    let record = takedown("FR");
    let (seal_id, salt, request_text) = seal(
        &log,
        &mut acme,
        &record,
        json!({"kind": "user_data", "country": "FR"}),
    )
    .await;
    let b = acme.body(
        "reveal",
        json!({"of": seal_id, "salt": hex::encode(salt), "request": request_text}),
    );
    assert_refused(&log, acme.sign(&b), 422, Some("/request")).await;
    // Same for country.
    let record = user_data("DE");
    let (seal_id, salt, request_text) = seal(
        &log,
        &mut acme,
        &record,
        json!({"kind": "user_data", "country": "FR"}),
    )
    .await;
    let b = acme.body(
        "reveal",
        json!({"of": seal_id, "salt": hex::encode(salt), "request": request_text}),
    );
    assert_refused(&log, acme.sign(&b), 422, Some("/request")).await;
}

/// Protocol section 3.1: seals are never used for NSL or FISA demands. The log sees the
/// demand's process only when it is revealed, or patched after.
#[tokio::test]
async fn a_sealed_nsl_or_fisa_demand_is_422_when_revealed_or_patched() {
    let World { log, mut acme, .. } = world().await;
    for process in ["national_security_letter", "fisa_order"] {
        let mut record = user_data("US");
        record["process"] = json!(process);
        let (seal_id, salt, request_text) = seal(&log, &mut acme, &record, json!({})).await;
        let b = acme.body(
            "reveal",
            json!({"of": seal_id, "salt": hex::encode(salt), "request": request_text}),
        );
        let p = assert_refused(&log, acme.sign(&b), 422, Some("/request")).await;
        let detail = p["detail"].as_str().unwrap(); // test-only
        assert!(
            detail.contains("/process") && detail.contains("band"),
            "{p}"
        );
    }
    // Revealed as a subpoena, then patched into an NSL.
    let (seal_id, salt, request_text) = seal(&log, &mut acme, &user_data("US"), json!({})).await;
    let n = acme.next(
        "reveal",
        json!({"of": seal_id, "salt": hex::encode(salt), "request": request_text}),
    );
    accept(&log, &n).await;
    let b = acme.body(
        "update",
        json!({"of": seal_id, "patch": {"process": "national_security_letter"}}),
    );
    assert_refused(&log, acme.sign(&b), 422, Some("/patch/process")).await;
    // A plain request may still name those processes (section 3.2 lists them).
    let mut record = user_data("US");
    record["process"] = json!("fisa_order");
    accept(&log, &acme.next("request", record)).await;
}

#[tokio::test]
async fn a_band_with_min_over_max_is_422() {
    let World { log, acme, .. } = world().await;
    let b = acme.body("band", json!({"period": "2026-H1", "category": "nsl", "requests": {"min": 250, "max": 249}, "accounts": {"min": 0, "max": 249}}));
    assert_refused(&log, acme.sign(&b), 422, Some("/requests/min")).await;
    let b = acme.body("band", json!({"period": "2026-H1", "category": "nsl", "requests": {"min": 0, "max": 249}, "accounts": {"min": 500, "max": 499}}));
    assert_refused(&log, acme.sign(&b), 422, Some("/accounts/min")).await;
}

// ---------------------------------------------------------------------------------------
// 409 on seals and references
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_second_reveal_is_409() {
    let World { log, mut acme, .. } = world().await;
    let record = user_data("FR");
    let (seal_id, salt, request_text) =
        seal(&log, &mut acme, &record, json!({"kind": "user_data"})).await;
    let n = acme.next(
        "reveal",
        json!({"of": seal_id, "salt": hex::encode(salt), "request": request_text}),
    );
    accept(&log, &n).await;
    let b = acme.body(
        "reveal",
        json!({"of": seal_id, "salt": hex::encode(salt), "request": request_text}),
    );
    assert_refused(&log, acme.sign(&b), 409, Some("/of")).await;
    // A second reveal that does not match the commitment either is a content error first
    // (section 5 decides 422 before 409).
    let mut wrong = salt;
    wrong[0] ^= 1;
    let b = acme.body(
        "reveal",
        json!({"of": seal_id, "salt": hex::encode(wrong), "request": request_text}),
    );
    assert_refused(&log, acme.sign(&b), 422, Some("/salt")).await;
}

#[tokio::test]
async fn an_extend_that_does_not_postpone_is_409_at_disclose_by() {
    let World { log, mut acme, .. } = world().await;
    let (seal_id, _, _) = seal(&log, &mut acme, &user_data("FR"), json!({})).await;
    for date in ["2027-01-01", "2027-06-01"] {
        let b = acme.body(
            "extend",
            json!({"of": seal_id, "disclose_by": date, "reason": "order renewed"}),
        );
        assert_refused(&log, acme.sign(&b), 409, Some("/disclose_by")).await;
    }
    let n = acme.next(
        "extend",
        json!({"of": seal_id, "disclose_by": "2027-06-02", "reason": "order renewed"}),
    );
    accept(&log, &n).await;
}

#[tokio::test]
async fn an_update_of_another_publishers_statement_is_409_at_of() {
    let World {
        log,
        acme,
        mut beta,
        ..
    } = world().await;
    let n = beta.next("request", user_data("US"));
    accept(&log, &n).await;
    let theirs = id_of(&n);
    let b = acme.body(
        "update",
        json!({"of": theirs, "patch": {"disposition": "rejected"}}),
    );
    assert_refused(&log, acme.sign(&b), 409, Some("/of")).await;
    // Nor extend or reveal another publisher's seal.
    let (seal_id, salt, request_text) = seal(&log, &mut beta, &user_data("FR"), json!({})).await;
    let b = acme.body(
        "extend",
        json!({"of": seal_id, "disclose_by": "2030-01-01", "reason": "x"}),
    );
    assert_refused(&log, acme.sign(&b), 409, Some("/of")).await;
    let b = acme.body(
        "reveal",
        json!({"of": seal_id, "salt": hex::encode(salt), "request": request_text}),
    );
    assert_refused(&log, acme.sign(&b), 409, Some("/of")).await;
}

// ---------------------------------------------------------------------------------------
// Precedence (spec section 5: the first failing check decides)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_log_and_seq_gap_and_unknown_field_is_403() {
    let World { log, acme, .. } = world().await;
    let mut b = acme.body("request", user_data("DE"));
    b["log"] = Value::from("other.example/log");
    b["seq"] = Value::from(acme.seq + 5);
    b["colour"] = Value::from("blue");
    assert_refused(&log, acme.sign(&b), 403, Some("/log")).await;
}

#[tokio::test]
async fn unknown_field_and_seq_gap_is_422() {
    let World { log, acme, .. } = world().await;
    let mut b = acme.body("request", user_data("DE"));
    b["seq"] = Value::from(acme.seq + 5);
    b["colour"] = Value::from("blue");
    let p = assert_refused(&log, acme.sign(&b), 422, None).await;
    assert_ne!(p["pointer"], "/seq", "{p}");
}

#[tokio::test]
async fn each_check_beats_the_later_ones() {
    let World { log, acme, .. } = world().await;
    let impostor = SecretKey::generate("acme.example").unwrap();
    // 413 before 400: an oversized note that is not even UTF-8.
    let mut big = vec![b'{'; 30_001];
    big[10] = 0xff;
    assert_refused(&log, &big, 413, None).await;
    // 400 before 403: uppercase id, wrong log, bad signature.
    let mut b = acme.body("request", user_data("DE"));
    b["id"] = Value::from(b["id"].as_str().unwrap().to_uppercase());
    b["log"] = Value::from("other.example/log");
    assert_refused(
        &log,
        note::sign(&text(&b), &[&impostor]).unwrap(),
        400,
        Some("/id"),
    )
    .await;
    // 403 before 422: a bad signature on a record with an invalid country.
    let b = acme.body("request", user_data("UK"));
    assert_refused(
        &log,
        note::sign(&text(&b), &[&impostor]).unwrap(),
        403,
        None,
    )
    .await;
    // 422 before 409: an invalid country and a wrong prev.
    let mut b = acme.body("request", user_data("UK"));
    b["prev"] = Value::Null;
    assert_refused(&log, acme.sign(&b), 422, Some("/country")).await;
}

#[tokio::test]
async fn an_operator_only_type_made_by_a_publisher_is_403() {
    let World { log, acme, .. } = world().await;
    let b = acme.body(
        "revoke",
        json!({"subject": "beta.example", "reason": "acme does not like beta"}),
    );
    assert_refused(&log, acme.sign(&b), 403, Some("/publisher")).await;
    let key = SecretKey::generate("gamma.example").unwrap();
    let recovery = SecretKey::generate("gamma.example").unwrap();
    let b = acme.body(
        "register",
        json!({
            "subject": "gamma.example", "name": "Gamma", "key": key.verifier().to_string(),
            "recovery_key": recovery.verifier().to_string(),
        }),
    );
    assert_refused(&log, acme.sign_with(&b, &[&key]), 403, Some("/publisher")).await;
    // In the operator's name but signed by a publisher.
    let op = log.operator();
    let b = op.body(
        "revoke",
        json!({"subject": "beta.example", "reason": "acme does not like beta"}),
    );
    assert_refused(&log, acme.sign(&b), 403, None).await;
}

#[tokio::test]

async fn a_register_with_a_malformed_key_not_signed_by_the_operator_is_403() {
    let World { log, op, .. } = world().await;
    let impostor = SecretKey::generate(&operator_id()).unwrap();
    let recovery = SecretKey::generate("gamma.example").unwrap();
    let b = op.body(
        "register",
        json!({
            "subject": "gamma.example", "name": "Gamma", "key": "gamma.example+00000000+not-a-key",
            "recovery_key": recovery.verifier().to_string(),
        }),
    );
    // Signed by a key that is not the operator's: step 4 (403) fails before step 5 (422).
    assert_refused(
        &log,
        note::sign(&text(&b), &[&impostor, &recovery]).unwrap(),
        403,
        None,
    )
    .await;
}

#[tokio::test]

async fn a_rotate_with_a_malformed_key_not_signed_by_the_publisher_is_403() {
    let World { log, acme, .. } = world().await;
    let b = acme.body("rotate", json!({"key": "acme.example+00000000+not-a-key"}));
    assert_refused(
        &log,
        note::sign(&text(&b), &[&log.op_key]).unwrap(),
        403,
        None,
    )
    .await;
}

#[tokio::test]

async fn an_unknown_publisher_with_an_unknown_type_is_403() {
    let World {
        log, mut op, acme, ..
    } = world().await;
    let nobody = Signer::new(
        "nobody.example",
        SecretKey::generate("nobody.example").unwrap(),
    );
    let b = nobody.body("confession", json!({}));
    assert_refused(&log, nobody.sign(&b), 403, Some("/publisher")).await;
    let n = op.next(
        "revoke",
        json!({"subject": "acme.example", "reason": "key compromise reported"}),
    );
    accept(&log, &n).await;
    let b = acme.body("confession", json!({}));
    assert_refused(&log, acme.sign(&b), 403, Some("/publisher")).await;
}

// ---------------------------------------------------------------------------------------
// Batches: items refused in place
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_batch_with_a_refused_middle_item_logs_the_other_two() {
    let World { log, mut acme, .. } = world().await;
    let one = acme.next("request", user_data("DE"));
    // Item 2 takes the next position but is invalid (422); item 3 takes the same position.
    let two = acme.sign(&acme.body("request", user_data("UK")));
    let three = acme.next("request", takedown("TR"));
    let notes = vec![one, two, three];
    let before = log.size().await;
    let r = log.post_batch(&notes).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let results = r.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 3);
    for i in [0, 2] {
        assert_eq!(results[i]["status"], 201, "item {i}: {}", results[i]);
        let receipt: Receipt = serde_json::from_value(results[i]["receipt"].clone()).unwrap();
        receipt.verify(&log.vkey(), Some(&notes[i])).unwrap();
    }
    assert!(results[1].get("receipt").is_none(), "{}", results[1]);
    assert_eq!(results[1]["status"], 422);
    check_problem(
        &results[1]["problem"],
        422,
        Some("/country"),
        "batch item 2",
    );
    assert_eq!(log.size().await, before + 2);
    let p = publisher_view(&log, "acme.example").await.1;
    assert_eq!(p["head"]["seq"], acme.seq);
    assert_eq!(p["head"]["hash"].as_str(), acme.prev.as_deref());
    assert_eq!(
        log.get(&format!(
            "/api/v1/publishers/acme.example/statements/{}",
            id_of(&notes[1])
        ))
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn a_batch_item_out_of_order_gets_the_head_as_of_its_position() {
    let World { log, mut acme, .. } = world().await;
    let one = acme.next("request", user_data("DE"));
    let mut b = acme.body("request", user_data("FR"));
    b["seq"] = Value::from(acme.seq + 2);
    let two = acme.sign(&b);
    let three = acme.next("request", user_data("US"));
    let r = log.post_batch(&[one.clone(), two, three]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let results = r.json()["results"].as_array().unwrap().clone();
    assert_eq!(results[0]["status"], 201);
    assert_eq!(results[2]["status"], 201);
    let p = &results[1]["problem"];
    check_problem(p, 409, Some("/seq"), "batch item 2");
    // The head after item 1, which is what item 2 had to follow.
    let after_one = hex::encode(candor::statement::sha256(
        one[..one.find('\n').unwrap() + 1].as_bytes(),
    ));
    assert_eq!(p["head"], json!({"seq": acme.seq - 1, "hash": after_one}));
}

#[tokio::test]
async fn a_batch_item_that_is_not_a_string_is_400_in_place() {
    let World { log, mut acme, .. } = world().await;
    let one = acme.next("request", user_data("DE"));
    let three = acme.next("request", user_data("FR"));
    let before = log.size().await;
    let r = log
        .post_batch_values(&[
            json!(one),
            json!(42),
            json!(three),
            json!({"note": "x"}),
            Value::Null,
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let results = r.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 5);
    assert_eq!(results[0]["status"], 201, "{}", results[0]);
    assert_eq!(results[2]["status"], 201, "{}", results[2]);
    for i in [1, 3, 4] {
        assert_eq!(results[i]["status"], 400, "item {i}: {}", results[i]);
        check_problem(
            &results[i]["problem"],
            400,
            Some(&format!("/statements/{i}")),
            &format!("item {i}"),
        );
    }
    assert_eq!(log.size().await, before + 2);
}
