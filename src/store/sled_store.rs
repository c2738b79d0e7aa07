//! The embedded default store: one sled tree with prefixed keys, so that a whole group
//! commit is one atomic sled batch.
//!
//! Keys: `c` → last checkpoint; `e` ‖ u64 → entry; `h` ‖ u8 level ‖ u64 index → stored hash;
//! `s` ‖ key → derived state. Big-endian integers keep range scans in index order.
//!
//! Durability: `sled::Db::flush` writes with `sync_file_range`, which does not flush the
//! disk's write cache, and sled never fsyncs the blob files it writes for large values. So
//! after every flush we `fdatasync` the database file, every blob file not yet synced, and
//! the blob directory.

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
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

fn entry_key(i: u64) -> [u8; 9] {
    let mut k = [b'e'; 9];
    k[1..].copy_from_slice(&i.to_be_bytes());
    k
}

fn hash_key((level, index): NodeId) -> [u8; 10] {
    let mut k = [b'h'; 10];
    k[1] = level;
    k[2..].copy_from_slice(&index.to_be_bytes());
    k
}

fn state_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(b's');
    k.extend_from_slice(key);
    k
}

fn to_hash(v: &[u8]) -> Result<Hash, StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt("stored hash is not 32 bytes".into()))
}

impl SledStore {
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(io)?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(64 << 20)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(io)?;
        let store = SledStore {
            db,
            dir: dir.to_path_buf(),
            synced_blobs: Mutex::new(HashSet::new()),
        };
        Ok(store)
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
        let mut b = sled::Batch::default();
        for (i, bytes) in &batch.entries {
            b.insert(&entry_key(*i)[..], bytes.as_slice());
        }
        for (id, h) in &batch.hashes {
            b.insert(&hash_key(*id)[..], &h[..]);
        }
        for (k, v) in &batch.state {
            match v {
                Some(v) => b.insert(state_key(k), v.as_slice()),
                None => b.remove(state_key(k)),
            }
        }
        if !batch.checkpoint.is_empty() {
            b.insert(&b"c"[..], batch.checkpoint.as_bytes());
        }
        self.db.apply_batch(b).map_err(io)?;
        self.db.flush().map_err(io)?;
        let t = std::time::Instant::now();
        let r = self.sync_files();
        crate::metrics::get()
            .fsync_seconds
            .observe(t.elapsed().as_secs_f64());
        r
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
        if start >= end {
            return Ok(Vec::new());
        }
        self.db
            .range(entry_key(start)..entry_key(end))
            .values()
            .map(|v| v.map(|v| v.to_vec()).map_err(io))
            .collect()
    }

    fn hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        ids.iter()
            .map(|id| match self.db.get(hash_key(*id)).map_err(io)? {
                Some(v) => to_hash(&v),
                None => Err(StoreError::Corrupt(format!(
                    "missing stored hash at level {} index {}",
                    id.0, id.1
                ))),
            })
            .collect()
    }

    fn hash_range(&self, level: u8, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
        if start >= end {
            return Ok(Vec::new());
        }
        self.db
            .range(hash_key((level, start))..hash_key((level, end)))
            .values()
            .map(|v| v.map_err(io).and_then(|v| to_hash(&v)))
            .collect()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(state_key(key)).map_err(io)?.map(|v| v.to_vec()))
    }

    fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.db
            .scan_prefix(state_key(prefix))
            .map(|kv| kv.map(|(k, v)| (k[1..].to_vec(), v.to_vec())).map_err(io))
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
            .map(|kv| kv.map(|(k, v)| (k[1..].to_vec(), v.to_vec())).map_err(io))
            .collect()
    }
}
