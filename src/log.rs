//! The log as readers see it: the store plus the latest *published* checkpoint.
//!
//! Readers never look past the published size. Entries and hashes beyond it may already sit
//! in the store (a commit whose fsync failed, say) but are not part of any checkpoint anyone
//! has seen, so they are served as absent.

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::entry;
use crate::merkle::{self, Frontier, Hash, ProofError};
use crate::note::VerifierKey;
use crate::store::{Store, StoreError, StoreHashes};
use crate::tile::{self, TileId, TileKind};
use std::sync::{Arc, RwLock};

/// A checkpoint that is durable and may be shown.
#[derive(Debug, Clone)]
pub struct Published {
    pub size: u64,
    pub root: Hash,
    /// The signed note.
    pub signed: String,
    /// `logged_at` of the last entry, in milliseconds.
    pub last_logged_at: entry::Millis,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored checkpoint does not verify with the log key: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("the stored tree of size {size} has root {computed} but the last signed checkpoint says {signed}: refusing to serve a log that does not match its own signature")]
    RootMismatch {
        size: u64,
        computed: String,
        signed: String,
    },
    #[error("the stored tree is incomplete: {0}")]
    Proof(#[from] ProofError),
    #[error("the last entry is corrupt: {0}")]
    Entry(String),
}

/// What [`Log::open`] finds on disk.
pub struct Opened {
    pub log: Arc<Log>,
    /// The tree's right edge, for the sequencer.
    pub frontier: Frontier,
}

pub struct Log {
    pub store: Arc<dyn Store>,
    pub origin: String,
    pub log_key: VerifierKey,
    published: RwLock<Option<Arc<Published>>>,
}

impl Log {
    /// Opens a store: verifies the last checkpoint's signature, recomputes the stored tree's
    /// root from O(log n) stored hashes and compares. Reads no entries but the last one.
    pub fn open(store: Arc<dyn Store>, log_key: VerifierKey) -> Result<Opened, OpenError> {
        let origin = log_key.name.clone();
        let (published, frontier) = match store.checkpoint()? {
            None if !store.entries(0, 1)?.is_empty() => {
                return Err(OpenError::Entry(
                    "the store holds entries but no checkpoint (an interrupted import?): import again into an empty data directory".into(),
                ))
            }
            None => (None, Frontier::default()),
            Some(signed) => {
                let cp = Checkpoint::verify(&signed, &log_key)?;
                let frontier = Frontier::load(cp.size, &StoreHashes(store.as_ref()))?;
                if frontier.root() != cp.root {
                    return Err(OpenError::RootMismatch {
                        size: cp.size,
                        computed: crate::note::encode_b64(&frontier.root()),
                        signed: crate::note::encode_b64(&cp.root),
                    });
                }
                let last = cp
                    .size
                    .checked_sub(1)
                    .ok_or_else(|| OpenError::Entry("a checkpoint of size 0 was stored".into()))?;
                let bytes = store
                    .entries(last, cp.size)?
                    .pop()
                    .ok_or_else(|| OpenError::Entry(format!("entry {last} is missing")))?;
                if merkle::leaf_hash(&bytes)
                    != *store.hashes(&[(0, last)])?.first().unwrap_or(&[0; 32])
                {
                    return Err(OpenError::Entry(format!(
                        "entry {last} does not match its leaf hash"
                    )));
                }
                let e = entry::decode(&bytes).map_err(OpenError::Entry)?;
                let p = Published {
                    size: cp.size,
                    root: cp.root,
                    signed,
                    last_logged_at: e.logged_at,
                };
                (Some(Arc::new(p)), frontier)
            }
        };
        let log = Arc::new(Log {
            store,
            origin,
            log_key,
            published: RwLock::new(published),
        });
        Ok(Opened { log, frontier })
    }

    /// The latest published checkpoint; None only before the genesis entry is committed.
    pub fn published(&self) -> Option<Arc<Published>> {
        self.published.read().map(|p| p.clone()).unwrap_or(None)
    }

    pub fn size(&self) -> u64 {
        self.published().map_or(0, |p| p.size)
    }

    /// Called by the sequencer once a commit is durable.
    pub(crate) fn publish(&self, p: Published) {
        if let Ok(mut g) = self.published.write() {
            *g = Some(Arc::new(p));
        }
    }

    /// Entry bytes at `index`, if published.
    pub fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        if index >= self.size() {
            return Ok(None);
        }
        Ok(self.store.entries(index, index + 1)?.pop())
    }

    /// Published entry bytes in `start..end` (clamped to the published size).
    pub fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.store.entries(start, end.min(self.size()))
    }

    /// Stored hash of a leaf.
    pub fn leaf_hash(&self, index: u64) -> Result<Hash, StoreError> {
        Ok(self.store.hashes(&[(0, index)])?[0])
    }

    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        merkle::inclusion_proof(index, size, &StoreHashes(self.store.as_ref()))
    }

    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>, ProofError> {
        merkle::consistency_proof(from, to, &StoreHashes(self.store.as_ref()))
    }

    /// The bytes of a tile, if it lies within the published tree.
    pub fn tile(&self, id: &TileId) -> Result<Option<Vec<u8>>, StoreError> {
        let size = self.size();
        match id.min_tree_size() {
            Some(min) if min <= size => {}
            _ => return Ok(None),
        }
        let start = id.index * tile::WIDTH;
        let end = start + u64::from(id.width);
        match id.kind {
            TileKind::Entries => {
                let entries = self.store.entries(start, end)?;
                if entries.len() != usize::from(id.width) {
                    return Err(StoreError::Corrupt(format!(
                        "entries {start}..{end} missing"
                    )));
                }
                let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 2).sum());
                for e in &entries {
                    tile::push_bundle_entry(&mut out, e);
                }
                Ok(Some(out))
            }
            TileKind::Hash(_) => {
                let level = id.tree_level().unwrap_or(0);
                let hashes = self.store.hash_range(level, start, end)?;
                if hashes.len() != usize::from(id.width) {
                    return Err(StoreError::Corrupt(format!(
                        "hashes {start}..{end} at level {level} missing"
                    )));
                }
                Ok(Some(hashes.concat()))
            }
        }
    }
}
