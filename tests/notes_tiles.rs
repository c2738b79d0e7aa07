//! Signed notes and tiles against Go's reference implementation (shared vectors), and the
//! tiles a real store serves.

use candor::checkpoint::Checkpoint;
use candor::log::Log;
use candor::merkle::{self, Frontier};
use candor::note::{self, SecretKey, VerifierKey};
use candor::store::{sled_store::SledStore, CommitBatch, Store};
use candor::tile::{TileId, TileKind};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

fn vectors(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn go_note_vectors() {
    let v = vectors("notes.json");
    let keys: Vec<(SecretKey, VerifierKey)> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let sk = SecretKey::parse(k["Skey"].as_str().unwrap()).unwrap();
            let vk = VerifierKey::parse(k["Vkey"].as_str().unwrap()).unwrap();
            assert_eq!(sk.verifier(), vk, "secret and verifier key agree");
            assert_eq!(sk.to_text(), k["Skey"].as_str().unwrap());
            assert_eq!(vk.to_string(), k["Vkey"].as_str().unwrap());
            (sk, vk)
        })
        .collect();
    for n in v["notes"].as_array().unwrap() {
        let signers: Vec<&(SecretKey, VerifierKey)> = n["signed_by"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let s = s.as_str().unwrap();
                let (name, second) = match s.strip_suffix(" (second key)") {
                    Some(n) => (n, true),
                    None => (s, false),
                };
                keys.iter()
                    .filter(|(k, _)| k.name == name)
                    .nth(usize::from(second))
                    .unwrap()
            })
            .collect();
        let text = n["text"].as_str().unwrap();
        let expected = n["note"].as_str().unwrap();
        // Ed25519 is deterministic: we must produce Go's bytes exactly.
        let sks: Vec<&SecretKey> = signers.iter().map(|(s, _)| s).collect();
        assert_eq!(note::sign(text, &sks).unwrap(), expected);
        let vks: Vec<VerifierKey> = signers.iter().map(|(_, v)| v.clone()).collect();
        let (t, by) = note::open(expected, &vks).unwrap();
        assert_eq!(t, text);
        assert_eq!(by.len(), vks.len());
        // Unknown extra signatures are ignored: verifying with one known key still works.
        note::open(expected, &vks[..1]).unwrap();
        // A tampered text fails.
        let tampered = expected.replacen(&text[..3], "[[[", 1);
        assert!(note::open(&tampered, &vks).is_err());
    }
}

#[test]
fn tile_path_vectors() {
    for p in vectors("tile-paths.json")["paths"].as_array().unwrap() {
        let level = p["level"].as_i64().unwrap();
        let id = TileId {
            kind: if level < 0 {
                TileKind::Entries
            } else {
                TileKind::Hash(level as u8)
            },
            index: p["index"].as_u64().unwrap(),
            width: p["width"].as_u64().unwrap() as u16,
        };
        assert_eq!(id.path(), p["path"].as_str().unwrap());
        assert_eq!(TileId::parse(p["path"].as_str().unwrap()), Some(id));
    }
}

/// A store holding the raw leaves `leaf 0` … `leaf 999` serves exactly Go's tiles.
#[test]
fn served_tiles_match_go() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let key = SecretKey::generate("example.org/log").unwrap();
    let mut batch = CommitBatch::default();
    let mut f = Frontier::default();
    for i in 0..1000u64 {
        let leaf = format!("leaf {i}").into_bytes();
        batch.hashes.extend(f.append(merkle::leaf_hash(&leaf)));
        batch.entries.push((i, leaf));
    }
    let cp = Checkpoint {
        origin: "example.org/log".into(),
        size: 1000,
        root: f.root(),
    };
    batch.checkpoint = cp.sign(&key).unwrap();
    store.commit(&batch).unwrap();
    // The entries are not in Candor's entry format, so open the log by hand.
    let store: Arc<dyn Store> = Arc::new(store);
    let _ = Log::open(store.clone(), key.verifier()).err(); // last entry is not a Candor entry
    let v = vectors("tiles.json");
    for t in v["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v["entry_bundles"].as_array().unwrap())
    {
        let path = t["path"].as_str().unwrap();
        let id = TileId::parse(path).unwrap();
        let start = id.index * 256;
        let end = start + u64::from(id.width);
        let bytes = match id.kind {
            TileKind::Entries => {
                let mut out = Vec::new();
                for e in store.entries(start, end).unwrap() {
                    candor::tile::push_bundle_entry(&mut out, &e);
                }
                out
            }
            TileKind::Hash(l) => store.hash_range(l * 8, start, end).unwrap().concat(),
        };
        assert_eq!(bytes.len() as u64, t["length"].as_u64().unwrap(), "{path}");
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            t["sha256_of_bytes"].as_str().unwrap(),
            "{path}"
        );
    }
}
