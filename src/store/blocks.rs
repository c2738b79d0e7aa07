//! Stored Merkle hashes grouped in blocks, the layout both persistent stores share.
//!
//! Hash `i` of a level lives in block `i / 256` of that level, at offset `i % 256`: a batch of
//! entries rewrites a few blocks instead of inserting one small key per hash, and a tile (256
//! hashes of one level) is one block. The log only appends, so a block only ever grows at its
//! end, and once full it never changes.

use super::StoreError;
use crate::merkle::{Hash, NodeId};
use std::collections::BTreeMap;

/// Hashes a block holds.
pub const BLOCK: u64 = 256;

/// The key of a block: `b` ‖ u8 level ‖ u64 block, big-endian so that blocks sort in order.
pub fn key(level: u8, block: u64) -> [u8; 10] {
    let mut k = [b'b'; 10];
    k[1] = level;
    k[2..].copy_from_slice(&block.to_be_bytes());
    k
}

fn to_hash(v: &[u8]) -> Result<Hash, StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt("stored hash is not 32 bytes".into()))
}

/// The blocks a commit of `hashes` rewrites, with their new contents: what `read` says each
/// block holds now, with the new hashes written in. A hash past a block's end would leave a
/// gap, which only a bug can ask for.
pub fn updated(
    hashes: &[(NodeId, Hash)],
    mut read: impl FnMut(u8, u64) -> Result<Vec<u8>, StoreError>,
) -> Result<Vec<((u8, u64), Vec<u8>)>, StoreError> {
    let mut grouped: BTreeMap<(u8, u64), Vec<(u64, Hash)>> = BTreeMap::new();
    for ((level, index), h) in hashes {
        grouped
            .entry((*level, index / BLOCK))
            .or_default()
            .push((index % BLOCK, *h));
    }
    let mut out = Vec::with_capacity(grouped.len());
    for ((level, block), hashes) in grouped {
        let mut value = read(level, block)?;
        for (offset, h) in hashes {
            let at = offset as usize * 32;
            if at > value.len() {
                return Err(StoreError::Corrupt(format!(
                    "hash {} at level {level} would leave a gap",
                    block * BLOCK + offset
                )));
            }
            // Rewriting a hash (a retried batch) writes the same value.
            if at == value.len() {
                value.extend_from_slice(&h);
            } else {
                value[at..at + 32].copy_from_slice(&h);
            }
        }
        out.push(((level, block), value));
    }
    Ok(out)
}

/// The hashes at `ids`, reading each block once per run of ids that fall in it.
pub fn at<B: AsRef<[u8]> + Clone>(
    ids: &[NodeId],
    mut read: impl FnMut(u8, u64) -> Result<B, StoreError>,
) -> Result<Vec<Hash>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    let mut last: Option<((u8, u64), B)> = None;
    for (level, index) in ids {
        let key = (*level, index / BLOCK);
        let block = match &last {
            Some((k, v)) if *k == key => v.clone(),
            _ => {
                let v = read(key.0, key.1)?;
                last = Some((key, v.clone()));
                v
            }
        };
        let at = (index % BLOCK) as usize * 32;
        let h = block.as_ref().get(at..at + 32).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "missing stored hash at level {level} index {index}"
            ))
        })?;
        out.push(to_hash(h)?);
    }
    Ok(out)
}

/// Consecutive hashes of one level, `start..end`, as far as they are stored.
pub fn range<B: AsRef<[u8]>>(
    level: u8,
    start: u64,
    end: u64,
    mut read: impl FnMut(u8, u64) -> Result<B, StoreError>,
) -> Result<Vec<Hash>, StoreError> {
    let mut out = Vec::new();
    let mut i = start;
    while i < end {
        let block = read(level, i / BLOCK)?;
        let block = block.as_ref();
        let from = (i % BLOCK) as usize * 32;
        let to = (((end - i / BLOCK * BLOCK).min(BLOCK)) as usize * 32).min(block.len());
        if from >= to {
            break; // the range ends where the stored hashes end
        }
        for c in block[from..to].chunks(32) {
            out.push(to_hash(c)?);
        }
        i = (i / BLOCK + 1) * BLOCK;
        if to < BLOCK as usize * 32 && i < end {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn h(n: u64) -> Hash {
        let mut x = [0u8; 32];
        x[..8].copy_from_slice(&n.to_be_bytes());
        x
    }

    #[test]
    fn hashes_written_across_blocks_read_back_by_id_and_by_range() {
        let mut blocks: HashMap<(u8, u64), Vec<u8>> = HashMap::new();
        for chunk in (0..600u64).collect::<Vec<_>>().chunks(100) {
            let batch: Vec<(NodeId, Hash)> = chunk.iter().map(|i| ((0, *i), h(*i))).collect();
            let new = updated(&batch, |l, b| {
                Ok(blocks.get(&(l, b)).cloned().unwrap_or_default())
            })
            .unwrap();
            blocks.extend(new);
        }
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[&(0, 0)].len(), 256 * 32);
        assert_eq!(blocks[&(0, 2)].len(), 88 * 32);
        let read = |l: u8, b: u64| Ok(blocks.get(&(l, b)).cloned().unwrap_or_default());
        assert_eq!(
            at(&[(0, 0), (0, 255), (0, 256), (0, 599)], read).unwrap(),
            vec![h(0), h(255), h(256), h(599)]
        );
        assert!(at(&[(0, 600)], read).is_err());
        let r = range(0, 250, 700, read).unwrap();
        assert_eq!(r, (250..600).map(h).collect::<Vec<_>>());
        assert!(range(0, 600, 700, read).unwrap().is_empty());
        // A gap is refused rather than written.
        assert!(updated(&[((0, 700), h(700))], read).is_err());
    }
}
