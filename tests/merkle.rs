//! The Merkle core against published vectors (Go's sumdb/tlog) and against an independent
//! implementation (the `tlog_tiles` crate, a port of Go's tlog), on random trees.

use base64::{engine::general_purpose::STANDARD, Engine};
use candor::merkle::{self, Frontier, Hash, NodeId};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::HashMap;

fn b64(s: &str) -> Hash {
    STANDARD.decode(s).unwrap().try_into().unwrap()
}

fn vectors(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Our stored hashes for the leaves `leaf 0` … `leaf n-1`.
fn ours(n: u64) -> HashMap<NodeId, Hash> {
    let mut m = HashMap::new();
    let mut f = Frontier::default();
    for i in 0..n {
        m.extend(f.append(merkle::leaf_hash(format!("leaf {i}").as_bytes())));
    }
    m
}

/// tlog_tiles' stored hashes for the same leaves.
struct Theirs(Vec<tlog_tiles::Hash>);
impl tlog_tiles::HashReader for Theirs {
    fn read_hashes(&self, idx: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        Ok(idx.iter().map(|&i| self.0[i as usize]).collect())
    }
}
fn theirs(n: u64) -> Theirs {
    let mut t = Theirs(Vec::new());
    for i in 0..n {
        let hs = tlog_tiles::stored_hashes(i, format!("leaf {i}").as_bytes(), &t).unwrap();
        t.0.extend(hs);
    }
    t
}

#[test]
fn go_tlog_vectors() {
    let v = vectors("tree.json");
    let tree = ours(1000);
    for (leaf, h) in v["leaf_hashes"].as_object().unwrap() {
        assert_eq!(merkle::leaf_hash(leaf.as_bytes()), b64(h.as_str().unwrap()));
    }
    for r in v["roots"].as_array().unwrap() {
        let size = r["size"].as_u64().unwrap();
        assert_eq!(
            merkle::root(size, &tree).unwrap(),
            b64(r["root"].as_str().unwrap()),
            "root at {size}"
        );
    }
    for p in v["inclusion"].as_array().unwrap() {
        let (i, size) = (p["index"].as_u64().unwrap(), p["size"].as_u64().unwrap());
        let expected: Vec<Hash> = p["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| b64(h.as_str().unwrap()))
            .collect();
        assert_eq!(
            merkle::inclusion_proof(i, size, &tree).unwrap(),
            expected,
            "inclusion {i} in {size}"
        );
        let leaf = merkle::leaf_hash(format!("leaf {i}").as_bytes());
        merkle::verify_inclusion(
            i,
            size,
            &leaf,
            &expected,
            &merkle::root(size, &tree).unwrap(),
        )
        .unwrap();
    }
    for p in v["consistency"].as_array().unwrap() {
        let (from, to) = (p["from"].as_u64().unwrap(), p["to"].as_u64().unwrap());
        let expected: Vec<Hash> = p["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| b64(h.as_str().unwrap()))
            .collect();
        assert_eq!(
            merkle::consistency_proof(from, to, &tree).unwrap(),
            expected,
            "consistency {from}..{to}"
        );
        let (a, b) = (
            merkle::root(from, &tree).unwrap(),
            merkle::root(to, &tree).unwrap(),
        );
        merkle::verify_consistency(from, to, &a, &b, &expected).unwrap();
    }
}

fn flip(proof: &[Hash], which: usize, bit: u8) -> Vec<Hash> {
    let mut p = proof.to_vec();
    p[which][(bit / 8) as usize % 32] ^= 1 << (bit % 8);
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn agrees_with_tlog_tiles(n in 1u64..3000, a in any::<u64>(), b in any::<u64>(), bit in any::<u8>()) {
        let tree = ours(n);
        let other = theirs(n);
        let size = 1 + a % n;
        let index = b % size;
        let root = merkle::root(size, &tree).unwrap();
        prop_assert_eq!(root, tlog_tiles::tree_hash(size, &other).unwrap().0);

        // Inclusion: same proof as tlog_tiles; every one-bit flip, wrong index or size refused.
        let proof = merkle::inclusion_proof(index, size, &tree).unwrap();
        let theirs_proof: Vec<Hash> = tlog_tiles::prove_record(size, index, &other).unwrap().iter().map(|h| h.0).collect();
        prop_assert_eq!(&proof, &theirs_proof);
        let leaf = merkle::leaf_hash(format!("leaf {index}").as_bytes());
        prop_assert!(merkle::verify_inclusion(index, size, &leaf, &proof, &root).is_ok());
        if !proof.is_empty() {
            let w = (a as usize) % proof.len();
            prop_assert!(merkle::verify_inclusion(index, size, &leaf, &flip(&proof, w, bit), &root).is_err());
        }
        if size > 1 {
            prop_assert!(merkle::verify_inclusion((index + 1) % size, size, &leaf, &proof, &root).is_err());
        }
        // A wrong size, presented with that size's real root, is refused (unless the proof
        // happens to be that size's proof too, in which case it is a right answer).
        let bigger = ours(size + 1);
        let proof_bigger = merkle::inclusion_proof(index, size + 1, &bigger).unwrap();
        let root_bigger = merkle::root(size + 1, &bigger).unwrap();
        if proof_bigger != proof {
            prop_assert!(merkle::verify_inclusion(index, size + 1, &leaf, &proof, &root_bigger).is_err());
        }
        let mut bad_leaf = leaf;
        bad_leaf[0] ^= 1;
        prop_assert!(merkle::verify_inclusion(index, size, &bad_leaf, &proof, &root).is_err());

        // Consistency between `from` and `size`.
        let from = 1 + b % size;
        let old = merkle::root(from, &tree).unwrap();
        let cproof = merkle::consistency_proof(from, size, &tree).unwrap();
        let theirs_c: Vec<Hash> = tlog_tiles::prove_tree(size, from, &other).unwrap().iter().map(|h| h.0).collect();
        prop_assert_eq!(&cproof, &theirs_c);
        prop_assert!(merkle::verify_consistency(from, size, &old, &root, &cproof).is_ok());
        if !cproof.is_empty() {
            let w = (a as usize) % cproof.len();
            prop_assert!(merkle::verify_consistency(from, size, &old, &root, &flip(&cproof, w, bit)).is_err());
        }
        if from < size {
            prop_assert!(merkle::verify_consistency(from + 1, size, &old, &root, &cproof).is_err());
            let bigger = ours(size + 1);
            let root_bigger = merkle::root(size + 1, &bigger).unwrap();
            let cbigger = merkle::consistency_proof(from, size + 1, &bigger).unwrap();
            if cbigger != cproof {
                prop_assert!(merkle::verify_consistency(from, size + 1, &old, &root_bigger, &cproof).is_err());
            }
            let mut bad_old = old;
            bad_old[31] ^= 1;
            prop_assert!(merkle::verify_consistency(from, size, &bad_old, &root, &cproof).is_err());
        }
    }
}

#[test]
fn frontier_reload_matches() {
    let tree = ours(777);
    let f = Frontier::load(777, &tree).unwrap();
    assert_eq!(f.root(), merkle::root(777, &tree).unwrap());
    let mut f2 = f.clone();
    let mut tree2 = tree.clone();
    tree2.extend(f2.append(merkle::leaf_hash(b"leaf 777")));
    assert_eq!(f2.root(), merkle::root(778, &ours(778)).unwrap());
}
