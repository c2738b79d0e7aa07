//! Merkle proof verification must never panic on any index, sizes, hashes and proof.
//!
//! Input layout (missing bytes read as zero):
//!   byte 0        mode: bit 0 shrinks index and size to 0..1024 (small trees, where most
//!                 proofs have a plausible length); bit 1 moves size (and, with bit 2, the
//!                 index) next to u64::MAX (overflow edges)
//!   bytes 1..9    index (the old size `from` for consistency), little-endian u64
//!   bytes 9..17   size (the new size `to` for consistency), little-endian u64
//!   bytes 17..49  leaf hash (the old root for consistency)
//!   bytes 49..81  root (the new root for consistency)
//!   the rest      proof hashes, 32 bytes each (a short tail is dropped)
#![no_main]

use candor::merkle::{self, Hash};
use libfuzzer_sys::fuzz_target;

fn take<const N: usize>(data: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = N.min(data.len());
    out[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    out
}

fuzz_target!(|data: &[u8]| {
    let mut d = data;
    let [mode] = take::<1>(&mut d);
    let mut index = u64::from_le_bytes(take::<8>(&mut d));
    let mut size = u64::from_le_bytes(take::<8>(&mut d));
    let leaf: Hash = take::<32>(&mut d);
    let root: Hash = take::<32>(&mut d);
    let proof: Vec<Hash> = d
        .chunks_exact(32)
        .map(|c| c.try_into().expect("32-byte chunk"))
        .collect();

    if mode & 1 != 0 {
        index %= 1024;
        size %= 1024;
    }
    if mode & 2 != 0 {
        size = u64::MAX - (size % 1024);
        if mode & 4 != 0 {
            index = u64::MAX - (index % 1024);
        }
    }

    if merkle::verify_inclusion(index, size, &leaf, &proof, &root).is_ok() {
        assert!(index < size, "inclusion verified with index >= size");
    }
    if merkle::verify_consistency(index, size, &leaf, &root, &proof).is_ok() {
        assert!(index >= 1 && index <= size, "consistency verified with bad sizes");
    }
});
