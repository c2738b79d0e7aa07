//! An in-memory store: for rebuilding derived state from entries alone (the auditor's
//! replay) and for tests. Not durable, by design.

use super::{CommitBatch, Store, StoreError};
use crate::merkle::{Hash, NodeId};
use std::collections::BTreeMap;
use std::sync::RwLock;

#[derive(Default)]
pub struct MemStore {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    checkpoint: Option<String>,
    entries: BTreeMap<u64, Vec<u8>>,
    hashes: BTreeMap<NodeId, Hash>,
    state: BTreeMap<Vec<u8>, Vec<u8>>,
}

fn poisoned() -> StoreError {
    StoreError::Io("memory store lock poisoned".into())
}

impl Store for MemStore {
    fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError> {
        let mut g = self.inner.write().map_err(|_| poisoned())?;
        g.entries.extend(batch.entries.iter().cloned());
        g.hashes.extend(batch.hashes.iter().cloned());
        for (k, v) in &batch.state {
            match v {
                Some(v) => g.state.insert(k.clone(), v.clone()),
                None => g.state.remove(k),
            };
        }
        if !batch.checkpoint.is_empty() {
            g.checkpoint = Some(batch.checkpoint.clone());
        }
        Ok(())
    }
    fn checkpoint(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .inner
            .read()
            .map_err(|_| poisoned())?
            .checkpoint
            .clone())
    }
    fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let g = self.inner.read().map_err(|_| poisoned())?;
        Ok(g.entries
            .range(start..end.max(start))
            .map(|(_, v)| v.clone())
            .collect())
    }
    fn hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        let g = self.inner.read().map_err(|_| poisoned())?;
        ids.iter()
            .map(|id| {
                g.hashes
                    .get(id)
                    .copied()
                    .ok_or_else(|| StoreError::Corrupt(format!("missing stored hash {id:?}")))
            })
            .collect()
    }
    fn hash_range(&self, level: u8, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
        let g = self.inner.read().map_err(|_| poisoned())?;
        Ok(g.hashes
            .range((level, start)..(level, end.max(start)))
            .map(|(_, h)| *h)
            .collect())
    }
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .inner
            .read()
            .map_err(|_| poisoned())?
            .state
            .get(key)
            .cloned())
    }
    fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let g = self.inner.read().map_err(|_| poisoned())?;
        Ok(g.state
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    fn scan_page(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let g = self.inner.read().map_err(|_| poisoned())?;
        let start = std::ops::Bound::Included(prefix.to_vec());
        let from = match after {
            Some(a) => std::ops::Bound::Excluded(a.to_vec()),
            None => start,
        };
        Ok(g.state
            .range((from, std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}
