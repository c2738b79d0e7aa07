//! The embedded default store: entry bytes in an append-only file ([`EntryFile`], the file
//! `entries` in the data directory), everything else in one sled tree with prefixed keys, so
//! that the rest of a group commit is one atomic sled batch.
//!
//! Keys: `c` → last checkpoint; `o` ‖ u64 block → the end offsets in the entry file of up to
//! 256 consecutive entries (entry `i` in block `i / 256`); `b` ‖ u8 level ‖ u64 block → up to
//! 256 consecutive stored hashes of that level (hash `i` lives in block `i / 256`, at offset
//! `i % 256`), so a batch of entries rewrites a few blocks rather than inserting small keys
//! per entry; `s` ‖ key → derived state, compressed ([`super::compress`]). Big-endian integers keep range scans in order.
//!
//! A commit writes and fdatasyncs the new entries' bytes first, then commits their offsets
//! with the hashes, state and checkpoint: an entry exists once its offset is committed, and a
//! crash in between leaves only bytes that opening the store cuts off.
//!
//! A full block never changes again (the log only appends), so full blocks are also kept in a
//! bounded in-memory cache: proofs and tiles read the same upper blocks over and over, and
//! skipping sled's B-tree for them is most of a proof's cost.
//!
//! Durability: `sled::Db::flush` writes with `sync_file_range`, which does not flush the
//! disk's write cache, and sled never fsyncs the blob files it writes for large values. So
//! after every flush we `fdatasync` the database file, every blob file not yet synced, and
//! the blob directory.

use super::entry_file::EntryFile;
use super::{blocks, compress};
use super::{CommitBatch, Store, StoreError};
use crate::merkle::{Hash, NodeId};
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct SledStore {
    db: sled::Db,
    dir: PathBuf,
    /// Blob files already fsynced (they are immutable once written).
    synced_blobs: Mutex<HashSet<std::ffi::OsString>>,
    /// Full hash blocks by (level, block), at most [`CACHED_BLOCKS`] of them.
    full_blocks: quick_cache::sync::Cache<(u8, u64), sled::IVec>,
    entries: EntryFile,
    /// Held for a whole commit: the entry file is written at the committed end, which only
    /// one commit at a time may extend (the sequencer is one writer, but the store does not
    /// rely on it).
    commit_lock: Mutex<()>,
}

/// Full hash blocks kept in memory: 8 KiB each, so 16 MiB; enough for every block above
/// level 1 of a log of ten million entries.
const CACHED_BLOCKS: usize = 2048;

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

/// Entry offsets a block holds: as many as hashes in a hash block.
const BLOCK: u64 = blocks::BLOCK;

fn offsets_key(block: u64) -> [u8; 9] {
    let mut k = [b'o'; 9];
    k[1..].copy_from_slice(&block.to_be_bytes());
    k
}

/// The committed entries' end offsets, from their blocks.
fn load_offsets(db: &sled::Db) -> Result<Vec<u64>, StoreError> {
    let mut ends = Vec::new();
    for (n, kv) in db.scan_prefix(b"o").enumerate() {
        let (k, v) = kv.map_err(io)?;
        if k[..] != offsets_key(n as u64) || ends.len() as u64 != n as u64 * BLOCK {
            return Err(StoreError::Corrupt(format!(
                "entry offset block {n} is missing or out of place"
            )));
        }
        if v.is_empty() || v.len() % 8 != 0 || v.len() > BLOCK as usize * 8 {
            return Err(StoreError::Corrupt(format!(
                "entry offset block {n} holds {} bytes",
                v.len()
            )));
        }
        ends.extend(
            v.chunks_exact(8)
                .map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default())),
        );
    }
    Ok(ends)
}

fn state_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(b's');
    k.extend_from_slice(key);
    k
}

/// sled's cache for a server: hash blocks have their own cache and entries are read from
/// the page cache, so a large one only kept what a start-up scan of the records had touched
/// resident (100 MiB of it at 1M entries with 64 MiB), without making ingest or proofs
/// faster.
pub const SERVER_CACHE: u64 = 8 << 20;

/// sled's cache for rebuilding a whole log's state (an auditor's first run, an import):
/// millions of inserts spread over the tree, which re-read evicted nodes with a small cache
/// (a full audit at 1M entries took 142 s with 8 MiB, 123 s with 64 MiB).
pub const REPLAY_CACHE: u64 = 64 << 20;

/// How long opening waits for sled's lock to be released by a handle this process closed.
const LOCK_WAIT_MS: u64 = 2000;

impl SledStore {
    /// Opens the store with the server's cache size.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        SledStore::open_with_cache(dir, SERVER_CACHE)
    }

    /// Opens the store with a sled cache of `cache_bytes`.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<SledStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(io)?;
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::HighThroughput);
        // sled releases its file lock only when its background threads let go of the file,
        // shortly after the last handle is dropped: reopening a store this process just
        // closed (an auditor's next run) can find it still held. Wait a little for that;
        // another process holding the directory still gets the error after the wait.
        let mut waited = 0;
        let db = loop {
            match config.open() {
                Err(e) if waited < LOCK_WAIT_MS && e.to_string().contains("acquire lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    waited += 50;
                }
                r => break r.map_err(io)?,
            }
        };
        if db.scan_prefix(b"e").next().is_some() {
            return Err(StoreError::Corrupt(format!(
                "{} holds entries inside its database, a layout older than this Candor: \
                 back it up with an older Candor's `candor export` and restore it with \
                 `candor import`",
                dir.display()
            )));
        }
        let entries = EntryFile::open(&dir.join("entries"), load_offsets(&db)?)?;
        let store = SledStore {
            db,
            dir: dir.to_path_buf(),
            synced_blobs: Mutex::new(HashSet::new()),
            full_blocks: quick_cache::sync::Cache::new(CACHED_BLOCKS),
            entries,
            commit_lock: Mutex::new(()),
        };
        Ok(store)
    }

    /// A hash block, from the cache if it is full and was read before.
    fn block(&self, level: u8, block: u64) -> Result<sled::IVec, StoreError> {
        if let Some(b) = self.full_blocks.get(&(level, block)) {
            return Ok(b);
        }
        let v = self
            .db
            .get(blocks::key(level, block))
            .map_err(io)?
            .unwrap_or_default();
        if v.len() == BLOCK as usize * 32 {
            self.full_blocks.insert((level, block), v.clone());
        }
        Ok(v)
    }

    /// fdatasync the database file, new blob files and the blob directory.
    fn sync_files(&self) -> Result<(), StoreError> {
        File::open(self.dir.join("db"))
            .and_then(|f| f.sync_data())
            .map_err(io)?;
        let blobs = self.dir.join("blobs");
        let Ok(listing) = std::fs::read_dir(&blobs) else {
            return Ok(());
        };
        let mut synced = self
            .synced_blobs
            .lock()
            .map_err(|_| StoreError::Io("blob list lock poisoned".into()))?;
        let mut seen = HashSet::new();
        let mut any_new = false;
        for item in listing {
            let item = item.map_err(io)?;
            let name = item.file_name();
            if !synced.contains(&name) {
                File::open(item.path())
                    .and_then(|f| f.sync_data())
                    .map_err(io)?;
                any_new = true;
            }
            seen.insert(name);
        }
        if any_new {
            File::open(&blobs).and_then(|f| f.sync_all()).map_err(io)?;
        }
        *synced = seen;
        Ok(())
    }
}

impl Store for SledStore {
    fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError> {
        let _one_at_a_time = self
            .commit_lock
            .lock()
            .map_err(|_| StoreError::Io("commit lock poisoned".into()))?;
        let mut b = sled::Batch::default();
        let written = self.entries.write(&batch.entries)?;
        if !written.ends.is_empty() {
            // Rewrite the last offset block with the new offsets appended, and add new blocks.
            let block0 = written.first / BLOCK;
            let mut ends = self.entries.ends_from(block0 * BLOCK)?;
            ends.extend_from_slice(&written.ends);
            for (n, chunk) in ends.chunks(BLOCK as usize).enumerate() {
                let value: Vec<u8> = chunk.iter().flat_map(|e| e.to_be_bytes()).collect();
                b.insert(&offsets_key(block0 + n as u64)[..], value);
            }
        }
        let blocks = blocks::updated(&batch.hashes, |level, block| {
            Ok(self
                .db
                .get(blocks::key(level, block))
                .map_err(io)?
                .map(|v| v.to_vec())
                .unwrap_or_default())
        })?;
        let touched: Vec<(u8, u64)> = blocks.iter().map(|(k, _)| *k).collect();
        for ((level, block), value) in blocks {
            b.insert(&blocks::key(level, block)[..], value);
        }
        for (k, v) in &batch.state {
            match v {
                Some(v) => b.insert(state_key(k), compress::encode(k, v, compress::Level::Small)),
                None => b.remove(state_key(k)),
            }
        }
        if !batch.checkpoint.is_empty() {
            b.insert(&b"c"[..], batch.checkpoint.as_bytes());
        }
        self.db.apply_batch(b).map_err(io)?;
        // A full block is only rewritten when an auditor re-verifies hashes after a failed
        // run; whatever the reason, a cached copy must not outlive a write.
        for k in &touched {
            self.full_blocks.remove(k);
        }
        self.db.flush().map_err(io)?;
        let t = std::time::Instant::now();
        let r = self.sync_files();
        crate::metrics::get()
            .fsync_seconds
            .observe(t.elapsed().as_secs_f64());
        r?;
        self.entries.publish(written)
    }

    fn checkpoint(&self) -> Result<Option<String>, StoreError> {
        match self.db.get(b"c").map_err(io)? {
            None => Ok(None),
            Some(v) => String::from_utf8(v.to_vec())
                .map(Some)
                .map_err(|_| StoreError::Corrupt("stored checkpoint is not UTF-8".into())),
        }
    }

    fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.entries.read(start, end)
    }

    fn hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        blocks::at(ids, |level, block| self.block(level, block))
    }

    fn hash_range(&self, level: u8, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
        blocks::range(level, start, end, |level, block| self.block(level, block))
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.db.get(state_key(key)).map_err(io)? {
            Some(v) => compress::decode(&v).map(Some),
            None => Ok(None),
        }
    }

    fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.db
            .scan_prefix(state_key(prefix))
            .map(|kv| {
                let (k, v) = kv.map_err(io)?;
                Ok((k[1..].to_vec(), compress::decode(&v)?))
            })
            .collect()
    }
    fn scan_page(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let p = state_key(prefix);
        let iter = match after {
            Some(a) => self.db.range((
                std::ops::Bound::Excluded(state_key(a)),
                std::ops::Bound::Unbounded,
            )),
            None => self.db.range(p.clone()..),
        };
        iter.take_while(|kv| kv.as_ref().map_or(true, |(k, _)| k.starts_with(&p)))
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(io)?;
                Ok((k[1..].to_vec(), compress::decode(&v)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An auditor re-verifying after a failed run writes other hashes over a full block it
    /// read before: the next read must see them, not the cached block.
    #[test]
    fn a_rewritten_full_block_is_not_served_from_the_cache() {
        let dir = tempfile::tempdir().unwrap(); // test-only
        let store = SledStore::open(dir.path()).unwrap(); // test-only
        let block = |v: u8| CommitBatch {
            hashes: (0..BLOCK).map(|i| ((0u8, i), [v; 32])).collect(),
            ..Default::default()
        };
        store.commit(&block(1)).unwrap(); // test-only
        assert_eq!(store.hash_range(0, 0, BLOCK).unwrap()[5], [1; 32]); // test-only
        assert!(
            store.full_blocks.get(&(0, 0)).is_some(),
            "a full block is cached"
        );
        store.commit(&block(2)).unwrap(); // test-only
        assert_eq!(store.hash_range(0, 0, BLOCK).unwrap()[5], [2; 32]); // test-only
        assert_eq!(store.hashes(&[(0, 7)]).unwrap(), vec![[2; 32]]); // test-only
    }

    fn entries_batch(from: u64, to: u64) -> CommitBatch {
        CommitBatch {
            entries: (from..to)
                .map(|i| (i, format!("entry number {i}").into_bytes()))
                .collect(),
            ..Default::default()
        }
    }

    /// Offsets span several blocks, survive a reopen, and bytes a crash left after the
    /// last committed entry are neither served nor kept.
    #[test]
    fn entries_survive_a_reopen_and_a_torn_write_is_dropped() {
        let dir = tempfile::tempdir().unwrap(); // test-only
        {
            let store = SledStore::open(dir.path()).unwrap(); // test-only
            for k in 0..6 {
                store
                    .commit(&entries_batch(k * 100, k * 100 + 100))
                    .unwrap(); // test-only
            }
        }
        let file = dir.path().join("entries");
        let committed = std::fs::metadata(&file).unwrap().len(); // test-only
        let mut torn = std::fs::read(&file).unwrap(); // test-only
        torn.extend_from_slice(b"half of an entry");
        std::fs::write(&file, torn).unwrap(); // test-only
        let store = SledStore::open(dir.path()).unwrap(); // test-only
        assert_eq!(std::fs::metadata(&file).unwrap().len(), committed); // test-only
        let all = store.entries(0, 700).unwrap(); // test-only
        assert_eq!(all.len(), 600);
        assert_eq!(all[257], b"entry number 257"); // test-only
        store.commit(&entries_batch(600, 650)).unwrap(); // test-only
        assert_eq!(store.entries(599, 601).unwrap()[1], b"entry number 600"); // test-only
    }

    #[test]
    fn a_database_holding_entries_itself_is_refused_with_a_way_out() {
        let dir = tempfile::tempdir().unwrap(); // test-only
        {
            let db = sled::open(dir.path()).unwrap(); // test-only
            db.insert(b"e\0\0\0\0\0\0\0\0", &b"old"[..]).unwrap(); // test-only
            db.flush().unwrap(); // test-only
        }
        match SledStore::open(dir.path()) {
            Err(StoreError::Corrupt(m)) => assert!(m.contains("candor import"), "{m}"),
            _ => panic!("an old layout must be refused"),
        }
    }

    /// A store closed a moment ago opens once its lock is let go; one held for good is
    /// still refused.
    #[test]
    fn opening_waits_briefly_for_a_lock_being_released() {
        let dir = tempfile::tempdir().unwrap(); // test-only
        let held = SledStore::open(dir.path()).unwrap(); // test-only
        let path = dir.path().to_path_buf();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(held);
        });
        assert!(SledStore::open(&path).is_ok(), "opened after the release");
        release.join().unwrap(); // test-only
        let _kept = SledStore::open(&path).unwrap(); // test-only
        match SledStore::open(&path) {
            Err(StoreError::Io(m)) => assert!(m.contains("lock"), "{m}"),
            _ => panic!("a lock held for good must be reported"),
        }
    }
}
