//! The RFC 6962 Merkle tree: hashing, roots, inclusion and consistency proofs, and their
//! verification.
//!
//! The tree is never held in memory. Like Go's `sumdb/tlog`, the log stores one hash per
//! *perfect* subtree (a "stored hash", addressed by its level and its index at that level);
//! every root and proof is assembled from O(log n) of them through a [`HashReader`]. C2SP
//! hash tiles are slices of the same stored hashes (see [`crate::tile`]).
//!
//! This module does no I/O: storage hands it hashes, the auditor hands it hashes it fetched.

use sha2::{Digest, Sha256};

/// A SHA-256 hash of a leaf or an interior node.
pub type Hash = [u8; 32];

/// A stored hash's address: (level, index at that level). Level 0 holds the leaf hashes; the
/// node at (l, i) covers leaves `i·2^l .. (i+1)·2^l`.
pub type NodeId = (u8, u64);

/// The hash of the empty tree (SHA-256 of nothing). Candor never signs it: the genesis entry
/// is logged before the first checkpoint.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// RFC 6962 leaf hash: SHA-256(0x00 ‖ leaf).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// RFC 6962 interior node hash: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Why a proof could not be built or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("sizes out of order: need 1 <= from ({from}) <= to ({to})")]
    BadSizes { from: u64, to: u64 },
    #[error("proof has {found} hashes, expected {expected}")]
    WrongLength { expected: usize, found: usize },
    #[error("proof does not lead to the expected root")]
    RootMismatch,
    #[error("could not read stored hashes: {0}")]
    Read(String),
}

/// Gives access to stored hashes. Implemented by the store (hashes on disk), by the
/// sequencer's pending batch, and by the auditor (hashes cut from downloaded tiles).
pub trait HashReader {
    /// Returns the hashes at `ids`, in the same order, or an error if any is missing.
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ProofError>;
}

/// The perfect subtrees that make up the range `lo..hi` (hi > lo), left to right, as stored
/// hash addresses. Their hashes folded right to left give the RFC 6962 hash of the range when
/// `lo` is aligned (it always is in the recursions below).
fn perfect_subtrees(mut lo: u64, hi: u64, out: &mut Vec<NodeId>) {
    while lo < hi {
        // The largest power of two that both divides lo and fits in hi - lo.
        let max_by_align = if lo == 0 { 63 } else { lo.trailing_zeros() };
        let max_by_len = 63 - (hi - lo).leading_zeros();
        let level = max_by_align.min(max_by_len);
        out.push((level as u8, lo >> level));
        lo += 1u64 << level;
    }
}

/// Folds the hashes of consecutive perfect subtrees (left to right) into the hash of their
/// union, right to left as RFC 6962 defines it for unbalanced trees.
fn fold(hashes: &[Hash]) -> Hash {
    let mut iter = hashes.iter().rev();
    let mut acc = match iter.next() {
        Some(h) => *h,
        None => return EMPTY_ROOT,
    };
    for h in iter {
        acc = node_hash(h, &acc);
    }
    acc
}

/// The RFC 6962 hash of the leaves `lo..hi`, from stored hashes.
fn range_hash(lo: u64, hi: u64, r: &dyn HashReader) -> Result<Hash, ProofError> {
    let mut ids = Vec::new();
    perfect_subtrees(lo, hi, &mut ids);
    Ok(fold(&r.read_hashes(&ids)?))
}

/// The root of the tree of the first `size` leaves: reads at most 64 stored hashes.
pub fn root(size: u64, r: &dyn HashReader) -> Result<Hash, ProofError> {
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    range_hash(0, size, r)
}

/// Largest power of two strictly less than n (n >= 2).
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The audit path (RFC 6962 §2.1.1, leaf sibling first) of leaf `index` in the tree of
/// `size` leaves.
pub fn inclusion_proof(index: u64, size: u64, r: &dyn HashReader) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // Walk down from the root, collecting sibling ranges (root side first), then reverse.
    let mut ranges = Vec::new();
    let (mut lo, mut hi) = (0u64, size);
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index < lo + k {
            ranges.push((lo + k, hi));
            hi = lo + k;
        } else {
            ranges.push((lo, lo + k));
            lo += k;
        }
    }
    ranges.reverse();
    ranges
        .into_iter()
        .map(|(a, b)| range_hash(a, b, r))
        .collect()
}

/// The consistency proof (RFC 6962 §2.1.2) between the trees of `from` and `to` leaves.
/// `from == to` gives an empty proof.
pub fn consistency_proof(from: u64, to: u64, r: &dyn HashReader) -> Result<Vec<Hash>, ProofError> {
    if from == 0 || from > to {
        return Err(ProofError::BadSizes { from, to });
    }
    if from == to {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[lo..hi], b), unrolled: ranges are collected root side first.
    let mut ranges = Vec::new();
    let (mut lo, mut hi, m) = (0u64, to, from);
    let mut complete = true;
    loop {
        let n = hi - lo;
        let mm = m - lo;
        if mm == n {
            if !complete {
                ranges.push((lo, hi));
            }
            break;
        }
        let k = split(n);
        if mm <= k {
            ranges.push((lo + k, hi));
            hi = lo + k;
        } else {
            ranges.push((lo, lo + k));
            lo += k;
            complete = false;
        }
    }
    ranges.reverse();
    ranges
        .into_iter()
        .map(|(a, b)| range_hash(a, b, r))
        .collect()
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            found: proof.len(),
        });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::RootMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn == 0 && r == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The number of hashes in the audit path of `index` in a tree of `size`.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let mut len = 0;
    let (mut lo, mut hi) = (0u64, size);
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index < lo + k {
            hi = lo + k;
        } else {
            lo += k;
        }
        len += 1;
    }
    len
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2) between `old_root` at `from` and
/// `new_root` at `to`.
pub fn verify_consistency(
    from: u64,
    to: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if from == 0 || from > to {
        return Err(ProofError::BadSizes { from, to });
    }
    if from == to {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                expected: 0,
                found: proof.len(),
            });
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    // If from is a power of two, the old root is the first node of the path.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if from.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (first, rest) = match path.split_first() {
        Some(x) => x,
        None => {
            return Err(ProofError::WrongLength {
                expected: 1,
                found: 0,
            })
        }
    };
    let (mut fn_, mut sn) = (from - 1, to - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::RootMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn == 0 && fr == *old_root && sr == *new_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The right edge of the tree: the hashes of the perfect subtrees covering `0..size`, largest
/// first. Enough to append leaves and to compute the current root without reading storage;
/// rebuilt at start-up from one stored hash per set bit of `size`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (level, hash) pairs, levels strictly decreasing.
    nodes: Vec<(u8, Hash)>,
}

impl Frontier {
    /// Rebuilds the frontier of a stored tree of `size` leaves.
    pub fn load(size: u64, r: &dyn HashReader) -> Result<Frontier, ProofError> {
        let mut ids = Vec::new();
        if size > 0 {
            perfect_subtrees(0, size, &mut ids);
        }
        let hashes = r.read_hashes(&ids)?;
        let nodes = ids.iter().zip(hashes).map(|((l, _), h)| (*l, h)).collect();
        Ok(Frontier { size, nodes })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect subtrees of the tree, largest first, with their addresses.
    pub fn nodes_with_ids(&self) -> Vec<(NodeId, Hash)> {
        let mut ids = Vec::new();
        if self.size > 0 {
            perfect_subtrees(0, self.size, &mut ids);
        }
        ids.into_iter()
            .zip(self.nodes.iter().map(|(_, h)| *h))
            .collect()
    }

    /// Serialises the frontier: size (8 bytes, big-endian), then (level, hash) pairs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.size.to_be_bytes().to_vec();
        for (l, h) in &self.nodes {
            out.push(*l);
            out.extend_from_slice(h);
        }
        out
    }

    /// Reads what [`Frontier::to_bytes`] wrote; None if it is malformed.
    pub fn from_bytes(b: &[u8]) -> Option<Frontier> {
        let size = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
        let rest = &b[8..];
        if rest.len() % 33 != 0 {
            return None;
        }
        let nodes: Vec<(u8, Hash)> = rest
            .chunks(33)
            .map(|c| (c[0], c[1..].try_into().unwrap_or([0; 32])))
            .collect();
        // The levels must be those of the set bits of size, largest first.
        let expected: Vec<u8> = (0..64u8).rev().filter(|l| size >> l & 1 == 1).collect();
        if nodes.iter().map(|(l, _)| *l).collect::<Vec<_>>() != expected {
            return None;
        }
        Some(Frontier { size, nodes })
    }

    /// Appends a leaf hash; returns every stored hash this creates (the leaf's own, and one
    /// per perfect subtree it completes), to be written with the leaf.
    pub fn append(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let mut created = vec![((0u8, self.size), leaf)];
        let mut cur = (0u8, leaf);
        let mut index = self.size;
        while let Some(&(level, left)) = self.nodes.last() {
            if level != cur.0 {
                break;
            }
            self.nodes.pop();
            let h = node_hash(&left, &cur.1);
            index >>= 1;
            cur = (level + 1, h);
            created.push(((level + 1, index), h));
        }
        self.nodes.push(cur);
        self.size += 1;
        created
    }

    /// The root of the tree of `size` leaves.
    pub fn root(&self) -> Hash {
        let hashes: Vec<Hash> = self.nodes.iter().map(|(_, h)| *h).collect();
        fold(&hashes)
    }
}

/// A [`HashReader`] over an in-memory map, for tests and for batches not yet on disk.
impl HashReader for std::collections::HashMap<NodeId, Hash> {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ProofError> {
        ids.iter()
            .map(|id| {
                self.get(id)
                    .copied()
                    .ok_or_else(|| ProofError::Read(format!("no stored hash at {id:?}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn build(n: u64) -> (HashMap<NodeId, Hash>, Frontier) {
        let mut m = HashMap::new();
        let mut f = Frontier::default();
        for i in 0..n {
            for (id, h) in f.append(leaf_hash(format!("leaf {i}").as_bytes())) {
                m.insert(id, h);
            }
        }
        (m, f)
    }

    /// Recursive RFC 6962 MTH straight from the RFC's definition.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => EMPTY_ROOT,
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn roots_match_the_rfc_definition() {
        let (m, f) = build(300);
        let leaves: Vec<Hash> = (0..300)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect();
        for n in 1..=300u64 {
            assert_eq!(root(n, &m).unwrap(), mth(&leaves[..n as usize]), "size {n}");
        }
        assert_eq!(f.root(), mth(&leaves));
    }

    #[test]
    fn proofs_round_trip() {
        let (m, _) = build(70);
        for size in 1..=70u64 {
            let r = root(size, &m).unwrap();
            for i in 0..size {
                let p = inclusion_proof(i, size, &m).unwrap();
                let leaf = leaf_hash(format!("leaf {i}").as_bytes());
                verify_inclusion(i, size, &leaf, &p, &r).unwrap();
            }
            for from in 1..=size {
                let p = consistency_proof(from, size, &m).unwrap();
                verify_consistency(from, size, &root(from, &m).unwrap(), &r, &p).unwrap();
            }
        }
    }
}
