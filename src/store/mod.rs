//! Storage: one narrow interface, so that the sequencer and the read API do not care where
//! bytes live. The embedded default is sled ([`sled_store::SledStore`]); tests wrap it to
//! inject faults ([`faulty::FaultyStore`]).
//!
//! Everything a group commit changes (entries, new stored hashes, derived state, the new
//! checkpoint) goes down in one atomic, durable [`Store::commit`]: after a crash the store
//! holds either all of a batch or none of it.

pub mod append_store;
pub mod blocks;
pub mod compress;
pub mod entry_file;
pub mod faulty;
pub mod memory;
pub mod sled_store;

use crate::merkle::{Hash, NodeId};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("storage I/O failed: {0}")]
    Io(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// What one group commit writes.
#[derive(Debug, Default, Clone)]
pub struct CommitBatch {
    /// Entry bytes by index.
    pub entries: Vec<(u64, Vec<u8>)>,
    /// Stored Merkle hashes created by these entries.
    pub hashes: Vec<(NodeId, Hash)>,
    /// Derived state: key → new value, or None to delete.
    pub state: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// The signed checkpoint covering the new tree.
    pub checkpoint: String,
}

/// The storage interface.
pub trait Store: Send + Sync + 'static {
    /// Writes the batch atomically and returns only once it is on disk (flushed and fsynced).
    fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError>;
    /// The last committed checkpoint, if any.
    fn checkpoint(&self) -> Result<Option<String>, StoreError>;
    /// Entry bytes at `start..end` that exist, in order.
    fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Stored hashes at these addresses; an error if any is missing.
    fn hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError>;
    /// Consecutive stored hashes at one level, `start..end`, as far as they exist.
    fn hash_range(&self, level: u8, start: u64, end: u64) -> Result<Vec<Hash>, StoreError>;
    /// A derived-state value.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// All derived-state pairs whose key starts with `prefix`, in key order.
    fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError>;
    /// At most `limit` pairs under `prefix` whose key is after `after`, in key order: a page
    /// of a scan too large to hold at once.
    fn scan_page(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError>;
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError> {
        (**self).commit(batch)
    }
    fn checkpoint(&self) -> Result<Option<String>, StoreError> {
        (**self).checkpoint()
    }
    fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        (**self).entries(start, end)
    }
    fn hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        (**self).hashes(ids)
    }
    fn hash_range(&self, level: u8, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
        (**self).hash_range(level, start, end)
    }
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(key)
    }
    fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        (**self).scan(prefix)
    }
    fn scan_page(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        (**self).scan_page(prefix, after, limit)
    }
}

/// Lets the Merkle code read hashes straight from a store.
pub struct StoreHashes<'a>(pub &'a dyn Store);

impl crate::merkle::HashReader for StoreHashes<'_> {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, crate::merkle::ProofError> {
        self.0
            .hashes(ids)
            .map_err(|e| crate::merkle::ProofError::Read(e.to_string()))
    }
}
