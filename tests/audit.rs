//! The auditor (`candor audit`, `candor monitor`, `audit::audit`) against real logs served by
//! the real binary, and against copies of them that were tampered with or forged with the
//! log's own key. Every check is shown failing with its rule and a message that says where.

mod common;

use candor::audit::source::{Dir, Local, Source, SourceError};
use candor::audit::{self, Options, Outcome, Summary};
use candor::checkpoint::Checkpoint;
use candor::entry;
use candor::keyfile;
use candor::merkle;
use candor::mirror;
use candor::note::{self, SecretKey};
use candor::statement::{self, chain::Chain, seal};
use candor::tile::{self, TileId, TileKind};
use common::{user_data, TestLog};
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const ORIGIN: &str = "audit.example/log";
const ACME: &str = "acme.example";
const BIN: &str = env!("CARGO_BIN_EXE_candor");

// ---------------------------------------------------------------------------------------
// The real binary.

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `candor serve` on a free loopback port; killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data: &Path, keys: &Path, demo: bool) -> Server {
        // Another test may take the free port first: then the server exits, try another.
        for _ in 0..3 {
            if let Some(s) = Server::try_start(data, keys, demo) {
                return s;
            }
        }
        panic!("the server exited before it was ready, three times");
    }

    fn try_start(data: &Path, keys: &Path, demo: bool) -> Option<Server> {
        let port = free_port();
        let mut cmd = Command::new(BIN);
        cmd.args([
            "serve",
            "--origin",
            ORIGIN,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--data")
        .arg(data)
        .arg("--keys")
        .arg(keys)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if demo {
            cmd.arg("--demo");
        }
        let child = cmd.spawn().unwrap();
        let mut s = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if ureq::get(&format!("{}/readyz", s.base)).call().is_ok() {
                return Some(s);
            }
            if let Ok(Some(_)) = s.child.try_wait() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not become ready");
    }

    fn checkpoint(&self) -> String {
        ureq::get(&format!("{}/checkpoint", self.base))
            .call()
            .unwrap()
            .into_string()
            .unwrap()
    }

    fn size(&self) -> u64 {
        parse_checkpoint(&self.checkpoint()).size
    }

    fn get(&self, path: &str) -> Value {
        ureq::get(&format!("{}{path}", self.base))
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    }

    /// Posts a note; it must be logged (201). Returns the receipt.
    fn post(&self, note: &str) -> Value {
        match ureq::post(&format!("{}/api/v1/statements", self.base)).send_string(note) {
            Ok(r) => {
                assert_eq!(r.status(), 201);
                r.into_json().unwrap()
            }
            Err(ureq::Error::Status(code, r)) => {
                panic!("refused {code}: {}", r.into_string().unwrap_or_default())
            }
            Err(e) => panic!("{e}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A demo log: `candor serve --demo` over `<tmp>/data` and `<tmp>/keys`.
struct Demo {
    dir: tempfile::TempDir,
    server: Option<Server>,
}

impl Demo {
    fn start() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(&dir.path().join("data"), &dir.path().join("keys"), true);
        Demo {
            dir,
            server: Some(server),
        }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn keys(&self) -> PathBuf {
        self.path("keys")
    }
    /// The log's verifier key file, as the CLI takes it.
    fn vkey(&self) -> String {
        self.path("keys/log.vkey").to_str().unwrap().to_string()
    }
    fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }
    fn base(&self) -> String {
        self.server().base.clone()
    }
    fn stop(&mut self) {
        self.server = None;
    }
    /// Acme's signing key and its chain as the live log sees it.
    fn acme(&self) -> (SecretKey, Chain) {
        acme_at(&self.keys(), self.server())
    }
    /// Posts `n` more requests as acme.
    fn post_requests(&self, n: usize) -> Vec<(String, Value)> {
        let (key, mut chain) = self.acme();
        (0..n)
            .map(|_| {
                let (note, _) = chain
                    .sign_next("request", user_data("DE"), &[&key])
                    .unwrap();
                let receipt = self.server().post(&note);
                (note, receipt)
            })
            .collect()
    }
    /// `candor export DIR --server URL --log-key K/log.vkey`.
    fn export(&self, rel: &str) -> PathBuf {
        let dir = self.path(rel);
        let (code, out, err) = candor([
            OsStr::new("export"),
            dir.as_os_str(),
            OsStr::new("--server"),
            OsStr::new(&self.base()),
            OsStr::new("--log-key"),
            OsStr::new(&self.vkey()),
        ]);
        assert_eq!(code, 0, "export: {out}{err}");
        dir
    }
}

fn acme_at(keys: &Path, server: &Server) -> (SecretKey, Chain) {
    let key = keyfile::read_secret(&keys.join("demo/acme.example.key")).unwrap();
    let p = server.get(&format!("/api/v1/publishers/{ACME}"));
    let chain = Chain::new(
        ORIGIN,
        ACME,
        p["head"]["seq"].as_u64().unwrap(),
        p["head"]["hash"].as_str().map(str::to_string),
    );
    (key, chain)
}

/// Runs the binary: (exit code, stdout, stderr).
fn candor<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `candor audit URL --log-key KEY [--state S] [--json]`.
fn audit_cli(url: &str, key: &str, state: Option<&Path>, json: bool) -> (i32, String, String) {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("audit"),
        OsStr::new(url),
        OsStr::new("--log-key"),
        OsStr::new(key),
    ];
    if let Some(s) = state {
        args.push(OsStr::new("--state"));
        args.push(s.as_os_str());
    }
    if json {
        args.push(OsStr::new("--json"));
    }
    candor(args)
}

/// The `--json` answer of an audit, with its exit code.
fn audit_json(url: &str, key: &str, state: Option<&Path>) -> (i32, Value) {
    let (code, out, err) = audit_cli(url, key, state, true);
    let v: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("audit --json printed no JSON ({e}): {out}{err}"));
    (code, v)
}

/// The one failure of a failed `--json` audit: (index, rule, detail).
fn only_failure(code: i32, v: &Value) -> (Option<u64>, String, String) {
    assert_eq!(code, 1, "a failed audit exits 1: {v}");
    assert_eq!(v["verified"], false, "{v}");
    let f = v["failures"].as_array().unwrap();
    assert_eq!(f.len(), 1, "{v}");
    (
        f[0]["index"].as_u64(),
        f[0]["rule"].as_str().unwrap().to_string(),
        f[0]["detail"].as_str().unwrap().to_string(),
    )
}

fn dir_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------
// Static trees.

fn parse_checkpoint(signed: &str) -> Checkpoint {
    Checkpoint::parse_body(note::parse(signed).unwrap().text).unwrap()
}

fn tree_size(dir: &Path) -> u64 {
    parse_checkpoint(&std::fs::read_to_string(dir.join("checkpoint")).unwrap()).size
}

fn bundle_id(n: u64, size: u64) -> TileId {
    TileId {
        kind: TileKind::Entries,
        index: n,
        width: (size - n * tile::WIDTH).min(tile::WIDTH) as u16,
    }
}

/// Every entry of a static tree, from its bundles.
fn read_entries(dir: &Path) -> Vec<Vec<u8>> {
    let size = tree_size(dir);
    let mut out = Vec::new();
    for n in 0..size.div_ceil(tile::WIDTH) {
        let b = std::fs::read(dir.join(bundle_id(n, size).path())).unwrap();
        out.extend(
            tile::split_bundle(&b)
                .unwrap()
                .into_iter()
                .map(<[u8]>::to_vec),
        );
    }
    assert_eq!(out.len() as u64, size);
    out
}

/// Rewrites entry `index` inside its bundle (the length prefixes stay valid).
fn rewrite_entry(dir: &Path, index: u64, f: impl FnOnce(&mut Vec<u8>)) {
    let size = tree_size(dir);
    let path = dir.join(bundle_id(index / tile::WIDTH, size).path());
    let old = std::fs::read(&path).unwrap();
    let mut entries: Vec<Vec<u8>> = tile::split_bundle(&old)
        .unwrap()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    f(&mut entries[(index % tile::WIDTH) as usize]);
    let mut new = Vec::new();
    for e in &entries {
        tile::push_bundle_entry(&mut new, e);
    }
    std::fs::write(&path, new).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The `.checkpoint` files an audit kept as evidence, sorted.
fn evidence(state: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(state.join("evidence")) else {
        return vec![];
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "checkpoint"))
        .collect();
    v.sort();
    v
}

/// Both evidence files, holding exactly the two contradicting signed checkpoints.
fn assert_evidence(state: &Path, verified: &str, new: &str) {
    let ev = evidence(state);
    assert_eq!(ev.len(), 2, "two checkpoints kept as evidence: {ev:?}");
    let mut texts: Vec<String> = ev
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    texts.sort();
    let mut want = vec![verified.to_string(), new.to_string()];
    want.sort();
    assert_eq!(texts, want);
}

fn b64_leaf(entry: &[u8]) -> String {
    note::encode_b64(&merkle::leaf_hash(entry))
}

/// A demo log's entries with what it takes to forge more: the log's and acme's secret keys.
struct Forge {
    _demo: Demo,
    log_key: SecretKey,
    acme_key: SecretKey,
    /// Acme's chain at the end of `entries`.
    acme: Chain,
    entries: Vec<Vec<u8>>,
    out: PathBuf,
}

impl Forge {
    fn new() -> Forge {
        let mut demo = Demo::start();
        let tree = demo.export("tree");
        let (acme_key, acme) = demo.acme();
        demo.stop();
        let log_key = keyfile::read_secret(&demo.keys().join("log.key")).unwrap();
        Forge {
            entries: read_entries(&tree),
            out: demo.path("forged"),
            _demo: demo,
            log_key,
            acme_key,
            acme,
        }
    }

    /// Appends a note as the next entry, logged at the time of the last one.
    fn append(entries: &mut Vec<Vec<u8>>, note: &str) -> u64 {
        let at = entry::decode(entries.last().unwrap()).unwrap().logged_at;
        let index = entries.len() as u64;
        entries.push(entry::encode(index, at, note));
        index
    }

    /// Writes `entries` as a tree signed by the real log key and audits it in-process.
    fn audit(&self, entries: &[Vec<u8>]) -> Outcome {
        self.audit_with(entries, &Options::default())
    }

    fn audit_with(&self, entries: &[Vec<u8>], opts: &Options) -> Outcome {
        let _ = std::fs::remove_dir_all(&self.out);
        mirror::write_tree(&self.out, entries, &self.log_key).unwrap();
        audit::audit(&Dir(self.out.clone()), &self.log_key.verifier(), opts).unwrap()
    }

    fn audit_fails(&self, entries: &[Vec<u8>]) -> audit::Failure {
        self.audit_fails_with(entries, &Options::default())
    }

    fn audit_fails_with(&self, entries: &[Vec<u8>], opts: &Options) -> audit::Failure {
        match self.audit_with(entries, opts) {
            Outcome::Failed(f) => {
                assert_eq!(f.len(), 1, "{f:?}");
                f.into_iter().next().unwrap()
            }
            Outcome::Verified(s) => panic!("the forged log verified: {s:?}"),
        }
    }

    fn audit_verifies(&self, entries: &[Vec<u8>]) -> Summary {
        match self.audit(entries) {
            Outcome::Verified(s) => s,
            Outcome::Failed(f) => panic!("the log does not verify: {f:?}"),
        }
    }
}

/// The signed text of an entry's statement (JSON line and newline) and its body.
fn statement_of(entry_bytes: &[u8]) -> (String, Value) {
    let e = entry::decode(entry_bytes).unwrap();
    let text = note::parse(&e.statement).unwrap().text.to_string();
    let body: Value = serde_json::from_str(text.trim_end()).unwrap();
    (text, body)
}

fn key_name(k: &note::VerifierKey) -> String {
    format!("{}+{:08x}", k.name, k.id)
}

// ---------------------------------------------------------------------------------------
// 1. A clean log verifies, then only its new entries are checked.

#[test]
fn a_clean_log_verifies_and_the_next_audit_checks_only_new_entries() {
    let demo = Demo::start();
    let state = demo.path("state");
    let size = demo.server().size();
    assert!(size > 300, "the demo log has its statements");

    let (code, out, err) = audit_cli(&demo.base(), &demo.vkey(), Some(&state), false);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("verified {ORIGIN} at size {size} (root ")),
        "{out}"
    );
    assert!(
        out.contains(&format!("entries checked in this run: {size}")),
        "{out}"
    );
    assert!(out.contains("publishers: 3 (0 revoked)"), "{out}");

    demo.post_requests(4);
    let (code, v) = audit_json(&demo.base(), &demo.vkey(), Some(&state));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["verified"], true, "{v}");
    let s = &v["summary"];
    assert_eq!(s["size"], size + 4, "{v}");
    assert_eq!(s["checked"], 4, "only the new entries are checked: {v}");
    let root = parse_checkpoint(&demo.server().checkpoint()).root;
    assert_eq!(s["root"], note::encode_b64(&root));
    // The state still knows everything before: all the demo's publishers and demands.
    assert_eq!(s["publishers"], 3, "{v}");
    assert!(s["requests_by_kind"]["user_data"].as_u64().unwrap() >= 4);

    // Nothing new: nothing checked, still verified.
    let (code, v) = audit_json(&demo.base(), &demo.vkey(), Some(&state));
    assert_eq!((code, &v["summary"]["checked"]), (0, &json!(0)), "{v}");
    assert!(evidence(&state).is_empty());
}

#[test]
fn a_state_directory_from_the_sled_auditor_is_refused_with_what_to_do() {
    let demo = Demo::start();
    let state = demo.path("state");
    std::fs::create_dir_all(state.join("state")).unwrap();
    let (code, out, err) = audit_cli(&demo.base(), &demo.vkey(), Some(&state), false);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("older Candor auditor") && err.contains("remove"),
        "{err}"
    );
    assert!(
        !state.join("state.kv").exists(),
        "nothing was started beside it"
    );
}

// ---------------------------------------------------------------------------------------
// 2. A forked log after a first audit.

/// Server A audited into `state`, stopped; server B on the same keys but a new data
/// directory: the same origin and key, another history.
fn fork() -> (Demo, Server, PathBuf, String) {
    let mut a = Demo::start();
    let state = a.path("state");
    let (code, out, err) = audit_cli(&a.base(), &a.vkey(), Some(&state), false);
    assert_eq!(code, 0, "{out}{err}");
    let a_checkpoint = a.server().checkpoint();
    a.stop();
    let b = Server::start(&a.path("data-b"), &a.keys(), true);
    (a, b, state, a_checkpoint)
}

#[test]
fn a_forked_log_is_caught_with_both_checkpoints_as_evidence() {
    let (a, b, state, a_cp) = fork();
    let a_size = parse_checkpoint(&a_cp).size;
    assert_eq!(b.size(), a_size, "B's demo is as long as A's");
    assert_ne!(b.checkpoint(), a_cp);

    // Same size, another root: a fork on its face.
    let same = a.path("state-same-size");
    copy_dir(&state, &same);
    let (code, v) = audit_json(&b.base, &a.vkey(), Some(&same));
    let (index, rule, detail) = only_failure(code, &v);
    assert_eq!((index, rule.as_str()), (None, "fork"), "{detail}");
    let (ra, rb) = (
        note::encode_b64(&parse_checkpoint(&a_cp).root),
        note::encode_b64(&parse_checkpoint(&b.checkpoint()).root),
    );
    assert!(
        detail.starts_with(&format!(
            "two different signed roots for size {a_size}: {ra} (verified) and {rb} (now)"
        )),
        "{detail}"
    );
    assert!(detail.contains("kept as evidence"), "{detail}");
    assert_evidence(&same, &a_cp, &b.checkpoint());

    // B grows past A: its consistency proof cannot link A's root to B's.
    let (key, mut chain) = acme_at(&a.keys(), &b);
    for _ in 0..3 {
        let (n, _) = chain
            .sign_next("request", user_data("FR"), &[&key])
            .unwrap();
        b.post(&n);
    }
    let b_cp = b.checkpoint();
    assert_eq!(parse_checkpoint(&b_cp).size, a_size + 3);
    let (code, out, err) = audit_cli(&b.base, &a.vkey(), Some(&state), false);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("FAILED consistency: "), "{out}");
    let (code, v) = audit_json(&b.base, &a.vkey(), Some(&a.path("state-b")));
    assert_eq!(
        code, 0,
        "B alone, audited from scratch, is a valid log: {v}"
    );
    let ev = evidence(&state);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(
        out.contains(&format!(
            "the checkpoint of size {} is not consistent with the verified one of size {a_size}",
            a_size + 3
        )),
        "{out}"
    );
    assert_evidence(&state, &a_cp, &b_cp);
}

/// The same fork, read from a static copy of B (no consistency-proof route: the tiles are
/// all an auditor gets from a C2SP mirror) must also be reported as a fork, with evidence.
#[test]
fn a_fork_read_from_a_static_mirror_is_reported_as_a_fork() {
    let (a, b, state, a_cp) = fork();
    let (key, mut chain) = acme_at(&a.keys(), &b);
    for _ in 0..3 {
        let (n, _) = chain
            .sign_next("request", user_data("FR"), &[&key])
            .unwrap();
        b.post(&n);
    }
    let b_cp = b.checkpoint();
    let mirror_dir = a.path("mirror-b");
    mirror::export(
        &candor::audit::source::Http::new(&b.base),
        &mirror_dir,
        None,
    )
    .unwrap();
    drop(b);
    let (code, v) = audit_json(dir_str(&mirror_dir), &a.vkey(), Some(&state));
    let (_, rule, detail) = only_failure(code, &v);
    assert!(
        ["consistency", "fork", "root"].contains(&rule.as_str()),
        "reported as {rule}: {detail}"
    );
    assert!(detail.contains("kept as evidence"), "{detail}");
    assert_evidence(&state, &a_cp, &b_cp);
}

// ---------------------------------------------------------------------------------------
// 3. A log rolled back to a smaller size.

#[test]
fn a_log_rolled_back_to_a_smaller_size_is_caught() {
    let demo = Demo::start();
    let earlier = demo.export("earlier");
    let old_cp = std::fs::read_to_string(earlier.join("checkpoint")).unwrap();
    let old = parse_checkpoint(&old_cp);
    demo.post_requests(3);
    let state = demo.path("state");
    let (code, v) = audit_json(&demo.base(), &demo.vkey(), Some(&state));
    assert_eq!(code, 0, "{v}");
    let now_cp = demo.server().checkpoint();
    let now = parse_checkpoint(&now_cp);
    assert_eq!(now.size, old.size + 3);

    // The same log, signed by the same key, served as it was 3 entries ago.
    let (code, v) = audit_json(dir_str(&earlier), &demo.vkey(), Some(&state));
    let (index, rule, detail) = only_failure(code, &v);
    assert_eq!((index, rule.as_str()), (None, "rollback"), "{detail}");
    assert!(
        detail.starts_with(&format!(
            "the log shrank: verified size {} (root {}), now size {} (root {})",
            now.size,
            note::encode_b64(&now.root),
            old.size,
            note::encode_b64(&old.root)
        )),
        "{detail}"
    );
    assert!(detail.contains("kept as evidence"), "{detail}");
    assert_evidence(&state, &now_cp, &old_cp);
    // Evidence is not a verdict that changes the state: the live log still verifies.
    let (code, v) = audit_json(&demo.base(), &demo.vkey(), Some(&state));
    assert_eq!((code, &v["summary"]["checked"]), (0, &json!(0)), "{v}");
}

// ---------------------------------------------------------------------------------------
// 4. Entry bundles altered.

#[test]
fn an_altered_byte_in_a_statement_is_caught_at_its_index() {
    let demo = Demo::start();
    let tree = demo.export("tree");
    let entries = read_entries(&tree);
    let (_, body) = statement_of(&entries[5]);
    assert_eq!(body["type"], "request");
    let signer = keyfile::read_verifier(
        demo.keys()
            .join(format!("demo/{}.vkey", body["publisher"].as_str().unwrap()))
            .to_str()
            .unwrap(),
    )
    .unwrap();
    rewrite_entry(&tree, 5, |e| {
        let at = e
            .windows(9)
            .position(|w| w == b"SYNTHETIC")
            .expect("demo requests say they are synthetic");
        e[at + 8] = b'X'; // same length, still valid JSON and a valid record
    });
    let (code, v) = audit_json(dir_str(&tree), &demo.vkey(), None);
    let (index, rule, detail) = only_failure(code, &v);
    assert_eq!(index, Some(5), "{detail}");
    match rule.as_str() {
        "authority" => assert_eq!(
            detail,
            format!(
                "signature line 1 does not verify under {}",
                key_name(&signer)
            )
        ),
        "hash-tile" => assert!(detail.starts_with("tile/0/000: "), "{detail}"),
        _ => panic!("caught as {rule}: {detail}"),
    }
    // The human output names the entry too.
    let (code, out, _) = audit_cli(dir_str(&tree), &demo.vkey(), None, false);
    assert_eq!(code, 1);
    assert!(
        out.starts_with(&format!("FAILED entry 5: {rule}: ")),
        "{out}"
    );
}

#[test]
fn an_entry_that_still_follows_the_rules_but_differs_from_its_leaf_hash_is_caught() {
    let demo = Demo::start();
    let tree = demo.export("tree");
    let size = tree_size(&tree);
    let last = size - 1;
    let before = read_entries(&tree)[last as usize].clone();
    let mut after = Vec::new();
    rewrite_entry(&tree, last, |e| {
        // Logged one millisecond later: same length, still in order, still valid.
        let d = entry::decode(e).unwrap();
        *e = entry::encode(d.index, d.logged_at + 1, &d.statement);
        after = e.clone();
    });
    assert_eq!(before.len(), after.len());
    let (code, v) = audit_json(dir_str(&tree), &demo.vkey(), None);
    let (index, rule, detail) = only_failure(code, &v);
    let tile0 = TileId {
        kind: TileKind::Hash(0),
        ..bundle_id(last / tile::WIDTH, size)
    };
    assert_eq!(
        (index, rule.as_str()),
        (Some(last), "hash-tile"),
        "{detail}"
    );
    assert_eq!(
        detail,
        format!(
            "{}: expected leaf hash {}, found {}",
            tile0.path(),
            b64_leaf(&after),
            b64_leaf(&before)
        )
    );
}

#[test]
fn a_missing_or_malformed_entry_bundle_is_caught() {
    let demo = Demo::start();
    let tree = demo.export("tree");
    let size = tree_size(&tree);
    assert!(size > tile::WIDTH);
    let id = bundle_id(1, size);
    let path = tree.join(id.path());
    let bytes = std::fs::read(&path).unwrap();

    // A length prefix that runs past the end.
    let mut bad = bytes.clone();
    bad.truncate(bad.len() - 1);
    std::fs::write(&path, &bad).unwrap();
    let (code, v) = audit_json(dir_str(&tree), &demo.vkey(), None);
    let (index, rule, detail) = only_failure(code, &v);
    assert_eq!((index, rule.as_str()), (Some(256), "entry-bundle"));
    assert_eq!(
        detail,
        format!("{} is not a sequence of length-prefixed entries", id.path())
    );

    std::fs::remove_file(&path).unwrap();
    let (code, v) = audit_json(dir_str(&tree), &demo.vkey(), None);
    let (index, rule, detail) = only_failure(code, &v);
    assert_eq!((index, rule.as_str()), (Some(256), "entry-bundle"));
    assert_eq!(
        detail,
        format!("{} is missing from {}", id.path(), tree.display())
    );
}

// ---------------------------------------------------------------------------------------
// 5. Hash tiles altered.

#[test]
fn an_altered_hash_tile_is_caught_and_named() {
    let demo = Demo::start();
    let tree = demo.export("tree");
    let size = tree_size(&tree);
    assert!(size > tile::WIDTH && size < tile::WIDTH * tile::WIDTH);
    let entries = read_entries(&tree);

    // Level 0, full tile: the leaf hash of entry 7.
    let t0 = tree.join("tile/0/000");
    let good = std::fs::read(&t0).unwrap();
    let mut bad = good.clone();
    bad[7 * 32 + 3] ^= 0x40;
    std::fs::write(&t0, &bad).unwrap();
    let (code, v) = audit_json(dir_str(&tree), &demo.vkey(), None);
    let (index, rule, detail) = only_failure(code, &v);
    assert_eq!((index, rule.as_str()), (Some(7), "hash-tile"), "{detail}");
    assert_eq!(
        detail,
        format!(
            "tile/0/000: expected leaf hash {}, found {}",
            b64_leaf(&entries[7]),
            note::encode_b64(&bad[7 * 32..8 * 32])
        )
    );
    std::fs::write(&t0, &good).unwrap();

    // Level 1, partial tile: a hash the auditor recomputes from the entries.
    let t1 = TileId {
        kind: TileKind::Hash(1),
        index: 0,
        width: (size >> 8) as u16,
    };
    let p1 = tree.join(t1.path());
    let mut bad = std::fs::read(&p1).unwrap();
    bad[0] ^= 1;
    std::fs::write(&p1, &bad).unwrap();
    let (code, v) = audit_json(dir_str(&tree), &demo.vkey(), None);
    let (index, rule, detail) = only_failure(code, &v);
    assert_eq!((index, rule.as_str()), (None, "hash-tile"), "{detail}");
    assert_eq!(
        detail,
        format!(
            "{} does not match the hashes recomputed from the entries",
            t1.path()
        )
    );

    // Gone: missing, by name.
    std::fs::remove_file(&p1).unwrap();
    let (code, v) = audit_json(dir_str(&tree), &demo.vkey(), None);
    let (_, rule, detail) = only_failure(code, &v);
    assert_eq!(rule, "hash-tile");
    assert_eq!(detail, format!("{} is missing", t1.path()));
}

// ---------------------------------------------------------------------------------------
// 6. A checkpoint signed by another key.

#[test]
fn a_checkpoint_signed_by_another_key_of_the_same_name_is_refused() {
    let demo = Demo::start();
    let tree = demo.export("tree");
    let other = SecretKey::generate(ORIGIN).unwrap().verifier();
    let real = keyfile::read_verifier(&demo.vkey()).unwrap();
    assert_eq!(other.name, real.name);
    let (code, v) = audit_json(dir_str(&tree), &other.to_string(), None);
    let (index, rule, detail) = only_failure(code, &v);
    assert_eq!((index, rule.as_str()), (None, "checkpoint-signature"));
    assert!(
        detail.starts_with(&format!(
            "the checkpoint from {} does not verify with {other}: ",
            tree.display()
        )),
        "{detail}"
    );
    // Over HTTP too, and the state remembers nothing from it.
    let state = demo.path("state");
    let (code, v) = audit_json(&demo.base(), &other.to_string(), Some(&state));
    let (_, rule, detail) = only_failure(code, &v);
    assert_eq!(rule, "checkpoint-signature");
    assert!(detail.contains(&demo.base()), "{detail}");
    let (code, v) = audit_json(&demo.base(), &demo.vkey(), Some(&state));
    assert_eq!(code, 0, "{v}");
}

// ---------------------------------------------------------------------------------------
// 7–9. Histories well-formed and signed by the log key, breaking the statement rules.

#[test]
fn a_statement_whose_signature_does_not_verify_is_caught() {
    let f = Forge::new();
    // The real entries, rebuilt and signed again, verify: what follows is the forgery alone.
    let s = f.audit_verifies(&f.entries);
    assert_eq!(s.size, f.entries.len() as u64);

    let i = f
        .entries
        .iter()
        .position(|e| {
            let (_, b) = statement_of(e);
            b["publisher"] == ACME && b["type"] == "request"
        })
        .unwrap();
    let e = entry::decode(&f.entries[i]).unwrap();
    let (text, body) = statement_of(&f.entries[i]);
    let real = f.acme_key.verifier();

    // Signed by another key named acme.example.
    let impostor = SecretKey::generate(ACME).unwrap();
    let mut forged = f.entries.clone();
    forged[i] = entry::encode(
        i as u64,
        e.logged_at,
        &note::sign(&text, &[&impostor]).unwrap(),
    );
    let fail = f.audit_fails(&forged);
    assert_eq!(
        (fail.index, fail.rule.as_str()),
        (Some(i as u64), "authority")
    );
    assert_eq!(
        fail.detail,
        format!(
            "signature line 1 must be by the key in force {}, not {}",
            key_name(&real),
            key_name(&impostor.verifier())
        )
    );

    // Acme's real signature line, but made over other text.
    let mut other = body.clone();
    other["id"] = json!(uuid::Uuid::now_v7().to_string());
    let other_note = note::sign(&statement::text_of(&other), &[&f.acme_key]).unwrap();
    let sig_line = &other_note[other_note.rfind("\n\n").unwrap() + 2..];
    let mut forged = f.entries.clone();
    forged[i] = entry::encode(i as u64, e.logged_at, &format!("{text}\n{sig_line}"));
    let fail = f.audit_fails(&forged);
    assert_eq!(
        (fail.index, fail.rule.as_str()),
        (Some(i as u64), "authority")
    );
    assert_eq!(
        fail.detail,
        format!("signature line 1 does not verify under {}", key_name(&real))
    );
}

/// The auditor pre-checks a step's signatures while the rules still run on the step before,
/// against the keys stored then: a rotation in one step is not yet known to the pre-check of
/// the next. The new key must still be accepted there, and the old one refused.
#[test]
fn a_rotation_is_honoured_by_the_next_step_although_it_was_pre_checked_before() {
    let f = Forge::new();
    let opts = Options {
        bundles_per_step: 1,
        ..Default::default()
    };
    let mut entries = f.entries.clone();
    let mut acme = f.acme.clone();
    // Requests up to the end of a bundle, the rotation as its last entry, then the next
    // bundle signed with the new key.
    while (entries.len() as u64 + 1) % tile::WIDTH != 0 {
        let (n, _) = acme
            .sign_next("request", user_data("DE"), &[&f.acme_key])
            .unwrap();
        Forge::append(&mut entries, &n);
    }
    let new_key = SecretKey::generate(ACME).unwrap();
    let (n, _) = acme
        .sign_next(
            "rotate",
            json!({"key": new_key.verifier().to_string()}),
            &[&f.acme_key, &new_key],
        )
        .unwrap();
    let rotation = Forge::append(&mut entries, &n);
    assert_eq!(
        (rotation + 1) % tile::WIDTH,
        0,
        "the rotation ends a bundle"
    );
    let before_old = (entries.clone(), acme.clone());
    for _ in 0..3 {
        let (n, _) = acme
            .sign_next("request", user_data("FR"), &[&new_key])
            .unwrap();
        Forge::append(&mut entries, &n);
    }
    match f.audit_with(&entries, &opts) {
        Outcome::Verified(s) => assert_eq!(s.size, rotation + 4),
        Outcome::Failed(fail) => panic!("{fail:?}"),
    }

    // The old key, which the pre-check of that step still knew, is refused by the rules.
    let (mut entries, mut acme) = before_old;
    let (n, _) = acme
        .sign_next("request", user_data("FR"), &[&f.acme_key])
        .unwrap();
    let i = Forge::append(&mut entries, &n);
    let fail = f.audit_fails_with(&entries, &opts);
    assert_eq!((fail.index, fail.rule.as_str()), (Some(i), "authority"));
    assert_eq!(
        fail.detail,
        format!(
            "signature line 1 must be by the key in force {}, not {}",
            key_name(&new_key.verifier()),
            key_name(&f.acme_key.verifier())
        )
    );
}

#[test]
fn a_publisher_chain_with_a_gap_or_a_wrong_prev_is_caught() {
    let f = Forge::new();
    let n = f.entries.len() as u64;
    let head = f.acme.seq;

    // One good statement, then one that skips a seq.
    let mut chain = f.acme.clone();
    let mut forged = f.entries.clone();
    let (good, _) = chain
        .sign_next("request", user_data("DE"), &[&f.acme_key])
        .unwrap();
    assert_eq!(Forge::append(&mut forged, &good), n);
    let mut valid = forged.clone();
    let good_hash = hex::encode(statement::sha256(
        note::parse(&good).unwrap().text.as_bytes(),
    ));
    assert_eq!(chain.prev.as_deref(), Some(good_hash.as_str()));
    let mut gap = chain.clone();
    gap.seq += 1;
    let (skip, _) = gap
        .sign_next("request", user_data("DE"), &[&f.acme_key])
        .unwrap();
    assert_eq!(Forge::append(&mut forged, &skip), n + 1);
    let fail = f.audit_fails(&forged);
    assert_eq!((fail.index, fail.rule.as_str()), (Some(n + 1), "order"));
    assert!(
        fail.detail.starts_with(&format!(
            "out of order: the next statement of \"{ACME}\" must have seq {} and prev \"{good_hash}\"; this one has seq {} and prev \"{good_hash}\"",
            head + 2,
            head + 3
        )),
        "{}",
        fail.detail
    );
    assert!(fail.detail.ends_with("(at /seq)"), "{}", fail.detail);

    // The right seq, the wrong prev.
    let zeros = "0".repeat(64);
    let mut wrong = Chain::new(ORIGIN, ACME, chain.seq, Some(zeros.clone()));
    let (bad, _) = wrong
        .sign_next("request", user_data("DE"), &[&f.acme_key])
        .unwrap();
    assert_eq!(Forge::append(&mut valid, &bad), n + 1);
    let fail = f.audit_fails(&valid);
    assert_eq!((fail.index, fail.rule.as_str()), (Some(n + 1), "order"));
    assert!(
        fail.detail.contains(&format!(
            "must have seq {} and prev \"{good_hash}\"; this one has seq {} and prev \"{zeros}\"",
            head + 2,
            head + 2
        )),
        "{}",
        fail.detail
    );
    assert!(fail.detail.ends_with("(at /prev)"), "{}", fail.detail);

    // The good statement alone verifies.
    valid.pop();
    f.audit_verifies(&valid);
}

#[test]
fn a_reveal_that_does_not_match_its_seal_is_caught() {
    let f = Forge::new();
    let n = f.entries.len() as u64;
    let sealed = serde_json::to_string(&user_data("DE")).unwrap();
    let salt = [7u8; 32];
    let commitment = seal::commitment(ORIGIN, ACME, &salt, &sealed);
    let mut chain = f.acme.clone();
    let mut base = f.entries.clone();
    let (seal_note, seal_id) = chain
        .sign_next(
            "seal",
            json!({"commitment": hex::encode(commitment), "disclose_by": "2027-06-30", "basis": "non_disclosure_order"}),
            &[&f.acme_key],
        )
        .unwrap();
    assert_eq!(Forge::append(&mut base, &seal_note), n);

    let reveal = |salt: &[u8; 32], request: &str| {
        let mut c = chain.clone();
        let (note, _) = c
            .sign_next(
                "reveal",
                json!({"of": seal_id, "salt": hex::encode(salt), "request": request}),
                &[&f.acme_key],
            )
            .unwrap();
        let mut e = base.clone();
        Forge::append(&mut e, &note);
        e
    };

    // The honest reveal verifies, and counts as a demand.
    let s = f.audit_verifies(&reveal(&salt, &sealed));
    assert_eq!(s.size, n + 2);

    let want = "the salt and request do not match the seal's commitment: reveal exactly the request text and salt that were committed to (at /salt)";
    // Another request than the one committed to.
    let other = serde_json::to_string(&user_data("FR")).unwrap();
    let fail = f.audit_fails(&reveal(&salt, &other));
    assert_eq!((fail.index, fail.rule.as_str()), (Some(n + 1), "content"));
    assert_eq!(fail.detail, want);
    // The right request with another salt.
    let fail = f.audit_fails(&reveal(&[8u8; 32], &sealed));
    assert_eq!((fail.index, fail.rule.as_str()), (Some(n + 1), "content"));
    assert_eq!(fail.detail, want);
}

// ---------------------------------------------------------------------------------------
// 10. Receipts.

#[test]
fn a_receipt_for_a_statement_not_in_the_log_is_refused() {
    let demo = Demo::start();
    let mut posted = demo.post_requests(2);
    let (note_b, _) = posted.pop().unwrap();
    let (note_a, receipt_a) = posted.pop().unwrap();
    let file = demo.path("receipt.json");
    std::fs::write(
        &file,
        json!({"statement": note_a, "receipt": receipt_a}).to_string(),
    )
    .unwrap();
    let vkey = demo.vkey();
    let verify = |file: &Path, extra: &[&str]| {
        let mut args = vec!["verify-receipt", file.to_str().unwrap(), "--log-key", &vkey];
        args.extend_from_slice(extra);
        candor(args)
    };
    let index = receipt_a["index"].as_u64().unwrap();
    let base = demo.base();
    let (code, out, err) = verify(&file, &["--server", &base]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("OK: entry {index} is in {ORIGIN}")),
        "{out}"
    );
    assert!(out.contains("(statement bytes checked)"), "{out}");

    // The receipt of A shown with statement B.
    let other = demo.path("other-note");
    std::fs::write(&other, &note_b).unwrap();
    let (code, out, err) = verify(&file, &["--statement", other.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with(&format!(
            "FAILED: the receipt is not for this statement: the entry for this statement at index {index} and "
        )),
        "{out}"
    );

    // A's receipt moved to another index: the proof no longer leads to the root.
    let mut moved = receipt_a.clone();
    moved["index"] = json!(index - 1);
    let bare = demo.path("moved.json");
    std::fs::write(&bare, moved.to_string()).unwrap();
    let (code, out, err) = verify(&bare, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with("FAILED: the inclusion proof does not verify"),
        "{out}"
    );
    // And kept with its statement, the statement no longer matches the leaf.
    std::fs::write(
        &file,
        json!({"statement": note_a, "receipt": moved}).to_string(),
    )
    .unwrap();
    let (code, out, _) = verify(&file, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAILED: "), "{out}");
}

// ---------------------------------------------------------------------------------------
// 11. An interrupted audit resumes where it stopped.

/// A static tree that fails after a number of tile fetches, and counts them.
struct Flaky {
    inner: Dir,
    fetched: AtomicUsize,
    fail_after: Option<usize>,
}

impl Flaky {
    fn new(dir: &Path, fail_after: Option<usize>) -> Flaky {
        Flaky {
            inner: Dir(dir.to_path_buf()),
            fetched: AtomicUsize::new(0),
            fail_after,
        }
    }
    fn fetched(&self) -> usize {
        self.fetched.load(Ordering::SeqCst)
    }
}

impl Source for Flaky {
    fn checkpoint(&self) -> Result<String, SourceError> {
        self.inner.checkpoint()
    }
    fn tile(&self, id: &TileId) -> Result<Option<Vec<u8>>, SourceError> {
        let n = self.fetched.fetch_add(1, Ordering::SeqCst);
        if self.fail_after.is_some_and(|k| n >= k) {
            return Err(SourceError::Unreachable(format!(
                "{}: connection reset",
                id.path()
            )));
        }
        self.inner.tile(id)
    }
    fn name(&self) -> String {
        self.inner.name()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_audit_resumes_without_starting_over() {
    let log = TestLog::new().await;
    let mut op = log.operator();
    let mut p = log.register(&mut op, "acme.example").await;
    let notes: Vec<String> = (0..1000)
        .map(|_| p.next("request", user_data("DE")))
        .collect();
    let r = log.post_batch(&notes).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["status"] == 201));
    let size = log.size().await;
    assert_eq!(size, 1002);
    let tree = log.dir.path().join("tree");
    mirror::export(&Local(log.service.state.log.clone()), &tree, None).unwrap();
    let key = log.vkey();
    let bundles = size.div_ceil(tile::WIDTH) as usize; // 4
    let state = log.dir.path().join("audit-state");
    let opts = Options {
        bundles_per_step: 1,
        state: Some(state.clone()),
        parallel: 2,
        ..Default::default()
    };

    // A full run, for comparison.
    let full_src = Flaky::new(&tree, None);
    let full = match audit::audit(
        &full_src,
        &key,
        &Options {
            state: None,
            ..opts.clone()
        },
    )
    .unwrap()
    {
        Outcome::Verified(s) => s,
        Outcome::Failed(f) => panic!("{f:?}"),
    };
    assert_eq!((full.size, full.checked), (size, size));
    assert_eq!(
        full_src.fetched(),
        2 * bundles + 1,
        "bundles, level-0 and level-1 tiles"
    );

    // The connection drops after two steps (a bundle and its hash tile each).
    let broken = Flaky::new(&tree, Some(4));
    match audit::audit(&broken, &key, &opts) {
        Err(audit::AuditError::Source(SourceError::Unreachable(why))) => {
            assert!(why.contains("connection reset"), "{why}")
        }
        other => panic!("expected a source error, got {other:?}"),
    }

    // The next run goes on from entry 512.
    let resumed_src = Flaky::new(&tree, None);
    let resumed = match audit::audit(&resumed_src, &key, &opts).unwrap() {
        Outcome::Verified(s) => s,
        Outcome::Failed(f) => panic!("{f:?}"),
    };
    assert!(resumed.checked < size);
    assert_eq!(resumed.checked, size - 2 * tile::WIDTH);
    assert!(resumed_src.fetched() < full_src.fetched());
    assert_eq!(resumed_src.fetched(), 2 * (bundles - 2) + 1);
    // The state carried over: the same log, the same counts.
    assert_eq!(
        Summary {
            checked: full.checked,
            ..resumed.clone()
        },
        full
    );
    assert_eq!(resumed.requests_by_kind.get("user_data"), Some(&1000));
}

// ---------------------------------------------------------------------------------------
// The state must hold only what was verified.

/// A mirror that fails the audit (its entries do not recompute its signed root) must not
/// leave its unverified entries in the state: the honest log, at the very checkpoint that
/// was verified before, must still verify.
#[test]
fn a_failed_audit_does_not_poison_the_state() {
    let demo = Demo::start();
    let state = demo.path("state");
    let (code, v) = audit_json(&demo.base(), &demo.vkey(), Some(&state));
    assert_eq!(code, 0, "{v}");
    let tree = demo.export("tree");
    let (acme_key, mut acme) = demo.acme();
    let log_key = keyfile::read_secret(&demo.keys().join("log.key")).unwrap();

    // A bad mirror: the last verified entry altered, three new ones that follow the rules.
    let mut entries = read_entries(&tree);
    let last = entries.len() - 1;
    let d = entry::decode(&entries[last]).unwrap();
    entries[last] = entry::encode(d.index, d.logged_at + 1, &d.statement);
    for _ in 0..3 {
        let (n, _) = acme
            .sign_next("request", user_data("DE"), &[&acme_key])
            .unwrap();
        Forge::append(&mut entries, &n);
    }
    let bad = demo.path("bad-mirror");
    mirror::write_tree(&bad, &entries, &log_key).unwrap();
    let (code, v) = audit_json(dir_str(&bad), &demo.vkey(), Some(&state));
    let (_, rule, _) = only_failure(code, &v);
    // Caught before any replay (its tiles do not hold the verified tree) or at the root.
    assert!(rule == "consistency" || rule == "root", "{v}");

    // The honest log has not changed since it was verified.
    let (code, v) = audit_json(&demo.base(), &demo.vkey(), Some(&state));
    assert_eq!(code, 0, "{v}");
}

// ---------------------------------------------------------------------------------------
// candor monitor.

#[test]
fn monitor_runs_the_failure_command_and_exits_1() {
    let demo = Demo::start();
    let clean = demo.export("clean");
    let tampered = demo.export("tampered");
    let t0 = tampered.join("tile/0/000");
    let mut bytes = std::fs::read(&t0).unwrap();
    bytes[0] ^= 0x80;
    std::fs::write(&t0, bytes).unwrap();
    let alarm = demo.path("alarm");
    let monitor = |dir: &Path, count: &str| {
        candor([
            OsStr::new("monitor"),
            dir.as_os_str(),
            OsStr::new("--log-key"),
            OsStr::new(&demo.vkey()),
            OsStr::new("--interval"),
            OsStr::new("0"),
            OsStr::new("--count"),
            OsStr::new(count),
            OsStr::new("--on-failure"),
            OsStr::new(&format!("cat > '{}'", alarm.display())),
        ])
    };

    let (code, out, err) = monitor(&clean, "2");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("verified ").count(), 2, "{out}");
    assert!(!alarm.exists(), "no alarm for a clean log");

    let (code, out, err) = monitor(&tampered, "3");
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        out.matches("FAILED ").count(),
        1,
        "stops at the first failure: {out}"
    );
    let said = std::fs::read_to_string(&alarm).expect("the failure command ran");
    assert!(
        said.starts_with("entry 0: hash-tile: tile/0/000: expected leaf hash "),
        "the failures are on its standard input: {said:?}"
    );
}
