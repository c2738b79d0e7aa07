//! Writes the seed corpus under `fuzz/seeds/<target>/`. Deterministic: fixed keys, fixed
//! statement ids and instants, and Ed25519 signatures are deterministic, so running it again
//! rewrites the same bytes.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example make_seeds
//!
//! The tile paths come from `tests/vectors/tile-paths.json`.

use candor::checkpoint::Checkpoint;
use candor::entry;
use candor::merkle::{self, Hash, HashReader, NodeId, ProofError};
use candor::note;
use candor::tile;
use candor_fuzz::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn text(body: &Value) -> String {
    format!("{}\n", serde_json::to_string(body).unwrap())
}

/// A statement body with the common fields, as a publisher's client writes it.
fn statement(publisher: &str, seq: u64, prev: Option<&str>, id: &str, ty: &str, fields: Value) -> Value {
    let mut b = json!({
        "v": 1, "log": ORIGIN, "publisher": publisher, "seq": seq, "prev": prev,
        "id": id, "type": ty,
    });
    for (k, v) in fields.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

/// Stored hashes of a small tree, for making real proofs.
struct Tree(HashMap<NodeId, Hash>);

impl Tree {
    fn new(leaves: u64) -> Tree {
        let mut f = merkle::Frontier::default();
        let mut m = HashMap::new();
        for i in 0..leaves {
            for (id, h) in f.append(merkle::leaf_hash(format!("leaf {i}").as_bytes())) {
                m.insert(id, h);
            }
        }
        Tree(m)
    }
}

impl HashReader for Tree {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ProofError> {
        ids.iter()
            .map(|id| self.0.get(id).copied().ok_or(ProofError::Read(format!("{id:?}"))))
            .collect()
    }
}

fn proof_input(mode: u8, a: u64, b: u64, h1: &Hash, h2: &Hash, proof: &[Hash]) -> Vec<u8> {
    let mut v = vec![mode];
    v.extend_from_slice(&a.to_le_bytes());
    v.extend_from_slice(&b.to_le_bytes());
    v.extend_from_slice(h1);
    v.extend_from_slice(h2);
    for p in proof {
        v.extend_from_slice(p);
    }
    v
}

fn main() {
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    let seeds = root.join("seeds");

    // note_parse: signed notes, keys and a checkpoint body.
    let d = seeds.join("note_parse");
    let k = note_key();
    let k2 = note_key_other();
    let other = fixed_key("someone.else/key", 7);
    write(&d, "one-signature.note", note::sign("Hello, transparency.\n", &[&k]).unwrap().as_bytes());
    write(
        &d,
        "three-signatures.note",
        note::sign("line one\nline two\n", &[&other, &k, &k2]).unwrap().as_bytes(),
    );
    write(&d, "unknown-signer.note", note::sign("nobody we know\n", &[&other]).unwrap().as_bytes());
    let cp = Checkpoint {
        origin: ORIGIN.to_string(),
        size: 1000,
        root: merkle::leaf_hash(b"fuzz"),
    };
    write(&d, "checkpoint.note", cp.sign(&log_key()).unwrap().as_bytes());
    write(&d, "checkpoint.body", cp.body().as_bytes());
    write(&d, "verifier-key.txt", k.verifier().to_string().as_bytes());
    write(&d, "secret-key.txt", format!("{}\n", other.to_text()).as_bytes());

    // statement_validation: statements that verify against the in-memory lookup.
    let d = seeds.join("statement_validation");
    let pk = publisher_key();
    let user_data = json!({
        "kind": "user_data", "channel": "legal_process", "process": "subpoena", "country": "DE",
        "authority": {"type": "police", "name": "Example Police"}, "received_on": "2026-01-15",
        "responded_on": "2026-02-01", "targets": {"accounts": 2}, "data_categories": ["subscriber", "non_content"],
        "produced": ["subscriber"], "disposition": "partially_complied", "user_notified": "no",
    });
    let b1 = statement(PUBLISHER, 1, None, "018f0000-0000-7000-8000-000000000001", "request", user_data);
    let t1 = text(&b1);
    write(&d, "request.note", note::sign(&t1, &[&pk]).unwrap().as_bytes());
    let prev = candor::statement::sha256(t1.as_bytes());
    let takedown = json!({
        "kind": "content_restriction", "channel": "legal_process", "process": "court_order", "country": "TR",
        "authority": {"type": "court"}, "received_on": "2026-03-01", "targets": {"urls": 3},
        "reasons": ["defamation"], "scope": "national", "disposition": "complied", "user_notified": "yes",
    });
    let b2 = statement(
        PUBLISHER, 2, Some(&hex(&prev)), "018f0000-0000-7000-8000-000000000002", "request", takedown,
    );
    write(&d, "request-takedown.note", note::sign(&text(&b2), &[&pk]).unwrap().as_bytes());
    let new_key = fixed_key("beta.example", 8);
    let new_rec = fixed_key("beta.example", 9);
    let op = operator_key();
    let op_id = format!("{ORIGIN}/operator");
    let b3 = statement(&op_id, 1, None, "018f0000-0000-7000-8000-000000000003", "register", json!({
        "subject": "beta.example", "name": "Beta Inc.", "url": "https://beta.example/transparency",
        "key": new_key.verifier().to_string(), "recovery_key": new_rec.verifier().to_string(),
    }));
    write(&d, "register.note", note::sign(&text(&b3), &[&op, &new_key]).unwrap().as_bytes());
    let rotated = fixed_key(PUBLISHER, 10);
    let b4 = statement(PUBLISHER, 3, Some(&hex(&prev)), "018f0000-0000-7000-8000-000000000004", "rotate", json!({
        "key": rotated.verifier().to_string(),
    }));
    write(&d, "rotate.note", note::sign(&text(&b4), &[&pk, &rotated]).unwrap().as_bytes());
    // A form-valid statement by the log key, and one signed by nobody known.
    write(&d, "log-signed.note", note::sign("{\"type\":\"genesis\"}\n", &[&log_key()]).unwrap().as_bytes());
    write(&d, "unknown-type.note", note::sign("{\"type\":\"nope\",\"a\":[1,2.5,\"\\u00e9\"]}\n", &[&other]).unwrap().as_bytes());

    // The publisher's and the operator's statements pass every order-free check here, so the
    // fuzzer starts from inputs that reach the schemas and record rules.
    let fx = fixtures();
    for name in ["request.note", "request-takedown.note", "register.note", "rotate.note"] {
        let bytes = std::fs::read(d.join(name)).unwrap();
        let parsed = candor::statement::parse(&bytes).unwrap();
        let c = candor::statement::verify::check(parsed, &fx.keys, ORIGIN, &fx.log_vkey).unwrap();
        assert_eq!(c.content, Ok(()), "{name}");
        // Every signature verifies under the keys it was checked against; the operator is not
        // in the lookup (it holds one publisher), so the register note's first line has none.
        assert!(c.signatures.iter().flatten().all(|(_, ok)| *ok), "{name}");
        assert!(!c.signatures.last().unwrap().is_empty(), "{name}");
    }

    // tile_path: every path of the reference vectors, and an entry bundle.
    let d = seeds.join("tile_path");
    let vectors: Value = serde_json::from_slice(
        &std::fs::read(root.join("../tests/vectors/tile-paths.json")).unwrap(),
    )
    .unwrap();
    for (i, p) in vectors["paths"].as_array().unwrap().iter().enumerate() {
        write(&d, &format!("vector-{i}.path"), p["path"].as_str().unwrap().as_bytes());
    }
    write(&d, "leading-slash.path", b"/tile/3/x001/x002/003.p/255");
    let mut bundle = Vec::new();
    for i in 0..3 {
        tile::push_bundle_entry(&mut bundle, &entry::encode(i, 1_764_374_400_000 + i as i64, "{\"a\":1}\n"));
    }
    write(&d, "bundle.bin", &bundle);

    // proof_verification: real proofs from a tree of 1000 leaves, in the target's layout.
    let d = seeds.join("proof_verification");
    let tree = Tree::new(1000);
    for (name, index, size) in [("inclusion-0-1", 0, 1), ("inclusion-7-8", 7, 8), ("inclusion-123-1000", 123, 1000)] {
        let proof = merkle::inclusion_proof(index, size, &tree).unwrap();
        let leaf = merkle::leaf_hash(format!("leaf {index}").as_bytes());
        let root = merkle::root(size, &tree).unwrap();
        merkle::verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
        write(&d, &format!("{name}.bin"), &proof_input(0, index, size, &leaf, &root, &proof));
    }
    for (name, from, to) in [("consistency-4-8", 4, 8), ("consistency-3-7", 3, 7), ("consistency-513-1000", 513, 1000)] {
        let proof = merkle::consistency_proof(from, to, &tree).unwrap();
        let old = merkle::root(from, &tree).unwrap();
        let new = merkle::root(to, &tree).unwrap();
        merkle::verify_consistency(from, to, &old, &new, &proof).unwrap();
        write(&d, &format!("{name}.bin"), &proof_input(0, from, to, &old, &new, &proof));
    }
    write(&d, "near-max.bin", &proof_input(6, 5, 3, &[0; 32], &[1; 32], &[[2; 32]; 3]));

    // entry_decode: entries as the log writes them.
    let d = seeds.join("entry_decode");
    let request_note = std::fs::read_to_string(seeds.join("statement_validation/request.note")).unwrap();
    write(&d, "request.entry", &entry::encode(2, 1_764_374_400_123, &request_note));
    write(&d, "escapes.entry", &entry::encode(0, 0, "a \"quoted\" \\ back\nslash\n"));
    write(&d, "large-index.entry", &entry::encode(u64::MAX, 253_402_300_799_999, "{}\n"));

    println!("seeds written under {}", seeds.display());
}

fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}
