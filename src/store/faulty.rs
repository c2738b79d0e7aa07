//! A store wrapper that fails commits on demand, to test how the service behaves when the
//! disk fails or fills up: it must answer 503, acknowledge nothing it did not persist, and
//! recover by itself once the fault clears.

use super::{CommitBatch, Store, StoreError};
use crate::merkle::{Hash, NodeId};
use std::sync::atomic::{AtomicU8, Ordering};

/// What the next commits do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None = 0,
    /// Fail before anything is written (a refused write, a full disk).
    FailWrite = 1,
    /// Write, then report the fsync as failed (the batch may or may not be on disk).
    FailSync = 2,
}

pub struct FaultyStore<S> {
    inner: S,
    fault: AtomicU8,
}

impl<S: Store> FaultyStore<S> {
    pub fn new(inner: S) -> FaultyStore<S> {
        FaultyStore {
            inner,
            fault: AtomicU8::new(0),
        }
    }

    pub fn set(&self, f: Fault) {
        self.fault.store(f as u8, Ordering::SeqCst);
    }
}

impl<S: Store> Store for FaultyStore<S> {
    fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError> {
        match self.fault.load(Ordering::SeqCst) {
            1 => Err(StoreError::Io(
                "injected write failure: no space left on device".into(),
            )),
            2 => {
                self.inner.commit(batch)?;
                Err(StoreError::Io("injected fsync failure".into()))
            }
            _ => self.inner.commit(batch),
        }
    }
    fn checkpoint(&self) -> Result<Option<String>, StoreError> {
        self.inner.checkpoint()
    }
    fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.entries(start, end)
    }
    fn hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        self.inner.hashes(ids)
    }
    fn hash_range(&self, level: u8, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
        self.inner.hash_range(level, start, end)
    }
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.inner.scan(prefix)
    }
    fn scan_page(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.inner.scan_page(prefix, after, limit)
    }
}
