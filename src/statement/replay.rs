//! Rebuilding the derived state from the entries alone, with the very rules the service
//! applies: what an auditor runs to check every statement, and what proves that the registry
//! and merged records the service shows follow from the log.
//!
//! Entries are checked in chunks: decoding, parsing and signature checks run in parallel on
//! all cores against the state as of the chunk's start; the rules then run in order, and
//! verify again only a signature whose key came into force inside the chunk.

use super::rules::LedgerRules;
use super::{state, verify, Parsed};
use crate::entry;
use crate::note::VerifierKey;
use crate::sequencer::{admit_one, Admit, Position};
use crate::store::{memory::MemStore, CommitBatch, Store, StoreError};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why an entry does not follow from the ones before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {index}: {rule}: {detail}")]
pub struct ReplayError {
    pub index: u64,
    /// A short name of the rule broken, e.g. `entry-format`, `authority`, `order`.
    pub rule: String,
    pub detail: String,
}

type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

pub struct Replayer {
    rules: LedgerRules,
    store: Arc<dyn Store>,
    /// Changes not yet written to `store`.
    pending: Changes,
    next: u64,
    last_logged_at: entry::Millis,
}

/// Key lookups through the pending changes, then the store.
struct Keys<'a> {
    store: &'a dyn Store,
    pending: &'a Changes,
}

impl verify::KeyLookup for Keys<'_> {
    fn publisher(&self, id: &str) -> Result<Option<state::PublisherState>, StoreError> {
        let k = state::publisher_key(id);
        let v = match self.pending.get(&k) {
            Some(v) => v.clone(),
            None => self.store.get(&k)?,
        };
        Ok(state::decode_publisher(id, v))
    }
}

impl Replayer {
    /// A replay from entry 0, in memory.
    pub fn new(log_key: VerifierKey) -> Replayer {
        Replayer::resume(log_key, Arc::new(MemStore::default()), 0, 0)
    }

    /// Goes on from entry `next` over the state kept in `store`.
    pub fn resume(
        log_key: VerifierKey,
        store: Arc<dyn Store>,
        next: u64,
        last_logged_at: entry::Millis,
    ) -> Replayer {
        Replayer {
            rules: LedgerRules {
                origin: log_key.name.clone(),
                log_key,
            },
            store,
            pending: BTreeMap::new(),
            next,
            last_logged_at,
        }
    }

    pub fn size(&self) -> u64 {
        self.next
    }

    pub fn last_logged_at(&self) -> entry::Millis {
        self.last_logged_at
    }

    /// A state value, pending changes included.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.pending.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.store.get(key),
        }
    }

    /// All state pairs under `prefix`, pending changes included, in key order.
    pub fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let mut all: BTreeMap<Vec<u8>, Vec<u8>> = self.store.scan(prefix)?.into_iter().collect();
        for (k, v) in self
            .pending
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            match v {
                Some(v) => all.insert(k.clone(), v.clone()),
                None => all.remove(k),
            };
        }
        Ok(all.into_iter().collect())
    }

    /// The pending values under `prefix` (deletions left out), in key order.
    pub fn pending_values(&self, prefix: &[u8]) -> Vec<(&[u8], &[u8])> {
        self.pending
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter_map(|(k, v)| Some((k.as_slice(), v.as_deref()?)))
            .collect()
    }

    /// The keys the pending changes will write.
    pub fn pending_keys(&self) -> Vec<Vec<u8>> {
        self.pending.keys().cloned().collect()
    }

    /// Writes the pending changes, with `extra` state and stored hashes, in one commit.
    pub fn flush(
        &mut self,
        extra: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        hashes: Vec<(crate::merkle::NodeId, crate::merkle::Hash)>,
    ) -> Result<(), StoreError> {
        let mut state: Vec<_> = std::mem::take(&mut self.pending).into_iter().collect();
        state.extend(extra);
        self.store.commit(&CommitBatch {
            state,
            hashes,
            ..Default::default()
        })
    }

    /// Checks the next entry against everything before it and applies it.
    pub fn apply(&mut self, bytes: &[u8]) -> Result<Parsed, ReplayError> {
        Ok(self
            .apply_all(&[bytes])?
            .pop()
            .unwrap_or_else(|| unreachable_parsed()))
    }

    /// Checks and applies consecutive entries; stops at the first that fails.
    pub fn apply_all<B: AsRef<[u8]> + Sync>(
        &mut self,
        entries: &[B],
    ) -> Result<Vec<Parsed>, ReplayError> {
        let first = self.next;
        let keys = Keys {
            store: self.store.as_ref(),
            pending: &self.pending,
        };
        let (origin, log_key) = (&self.rules.origin, &self.rules.log_key);
        let prepared: Vec<Prepared> = entries
            .par_iter()
            .enumerate()
            .map(|(i, bytes)| prepare(&keys, origin, log_key, first + i as u64, bytes.as_ref()))
            .collect();
        self.admit_all(prepared)
    }

    /// A pre-checker over the stored state only, to run beside this replayer (on entries
    /// further on) while it applies others. Whatever state it sees, the outcome is the same:
    /// the rules verify again any signature whose key the pre-check did not try.
    pub fn prechecker(&self) -> Prechecker {
        Prechecker {
            store: self.store.clone(),
            origin: self.rules.origin.clone(),
            log_key: self.rules.log_key.clone(),
        }
    }

    /// Applies pre-checked entries, which must be the next ones, in order: the rules.
    pub fn admit_all(&mut self, prepared: Vec<Prepared>) -> Result<Vec<Parsed>, ReplayError> {
        let mut out = Vec::with_capacity(prepared.len());
        self.admit_each(prepared, |p| out.push(p.clone()))?;
        Ok(out)
    }

    /// [`Replayer::admit_all`] for a caller that needs only the verdict (an auditor): no copy
    /// of each statement is kept.
    pub fn admit(&mut self, prepared: Vec<Prepared>) -> Result<(), ReplayError> {
        self.admit_each(prepared, |_| {})
    }

    /// Applies pre-checked entries in order, showing each statement to `seen` first.
    fn admit_each(
        &mut self,
        prepared: Vec<Prepared>,
        mut seen: impl FnMut(&Parsed),
    ) -> Result<(), ReplayError> {
        let first = self.next;
        let fail = |index: u64, rule: &str, detail: String| ReplayError {
            index,
            rule: rule.into(),
            detail,
        };
        for (i, p) in prepared.into_iter().enumerate() {
            let index = first + i as u64;
            let (e, checked) = p?;
            if e.index != index {
                return Err(fail(
                    index,
                    "entry-index",
                    format!("expected index {index}, found {}", e.index),
                ));
            }
            if e.logged_at < self.last_logged_at {
                return Err(fail(
                    index,
                    "logged-at-order",
                    format!(
                        "logged_at {} is before the previous entry's {}",
                        entry::format_instant(e.logged_at),
                        entry::format_instant(self.last_logged_at)
                    ),
                ));
            }
            seen(&checked.parsed);
            let at = Position {
                index,
                logged_at: e.logged_at,
            };
            let (admit, changes) = admit_one(
                &mut self.rules,
                self.store.as_ref(),
                &self.pending,
                checked,
                at,
            )
            .map_err(|p| {
                let rule = match p.status {
                    403 => "authority",
                    422 => "content",
                    409 => "order",
                    _ => "statement",
                };
                fail(
                    index,
                    rule,
                    format!(
                        "{}{}",
                        p.detail,
                        p.pointer.map(|x| format!(" (at {x})")).unwrap_or_default()
                    ),
                )
            })?;
            if let Admit::Duplicate(dup) = admit {
                return Err(fail(
                    index,
                    "duplicate",
                    format!("the same statement is already logged at entry {dup}"),
                ));
            }
            self.pending.extend(changes);
            self.next += 1;
            self.last_logged_at = e.logged_at;
        }
        Ok(())
    }
}

/// An entry decoded, parsed and pre-checked (signatures against the keys known then), or why
/// it could not be.
pub type Prepared = Result<(entry::Entry, verify::Checked), ReplayError>;

/// An entry decoded and its statement parsed, or why it could not be.
pub type Read = Result<(entry::Entry, Parsed), ReplayError>;

/// The order-free checks of one entry: entry format, statement form, signatures.
fn prepare(
    keys: &dyn verify::KeyLookup,
    origin: &str,
    log_key: &VerifierKey,
    index: u64,
    bytes: &[u8],
) -> Prepared {
    signatures(keys, origin, log_key, index, read(index, bytes))
}

/// Decodes entry `index` and parses its statement.
fn read(index: u64, bytes: &[u8]) -> Read {
    let fail = |rule: &str, detail: String| ReplayError {
        index,
        rule: rule.into(),
        detail,
    };
    let e = entry::decode(bytes).map_err(|d| fail("entry-format", d))?;
    let parsed =
        super::parse(e.statement.as_bytes()).map_err(|p| fail("statement-form", p.detail))?;
    Ok((e, parsed))
}

/// The checks of a read entry that need no order: signatures, and content on its own.
fn signatures(
    keys: &dyn verify::KeyLookup,
    origin: &str,
    log_key: &VerifierKey,
    index: u64,
    read: Read,
) -> Prepared {
    let (e, parsed) = read?;
    let checked = verify::check(parsed, keys, origin, log_key).map_err(|s| ReplayError {
        index,
        rule: "storage".into(),
        detail: s.to_string(),
    })?;
    Ok((e, checked))
}

/// Publisher states read once for a run of entries: a bundle names the same few publishers
/// hundreds of times, and each read is a store lookup and a decode.
struct Memo<'a> {
    keys: Keys<'a>,
    seen: std::cell::RefCell<std::collections::HashMap<String, Option<state::PublisherState>>>,
    declared: &'a Declared,
}

impl verify::KeyLookup for Memo<'_> {
    fn publisher(&self, id: &str) -> Result<Option<state::PublisherState>, StoreError> {
        if let Some(p) = self.seen.borrow().get(id) {
            return Ok(p.clone());
        }
        let p = verify::KeyLookup::publisher(&self.keys, id)?;
        self.seen.borrow_mut().insert(id.to_string(), p.clone());
        Ok(p)
    }

    fn declared(&self, name: &str, id: u32) -> Vec<VerifierKey> {
        self.declared.with_id(name, id)
    }
}

/// The keys declared by statements a pre-check has read (`genesis`, `register`, `rotate`,
/// `recover`), which the rules may not have applied, let alone stored, yet.
///
/// The pre-check runs up to three steps (some 49,000 entries) ahead of the rules, against
/// the stored state: a publisher registered in that stretch is not there yet. Without these
/// keys, its first statements' signatures would be verified again, one at a time, by the
/// rules, while the other cores wait (about 49,000 of them after each group of new
/// publishers in a full audit). Trying them changes no verdict: a pre-check result only
/// says "this key signed this text", and which key is in force stays the rules' decision.
#[derive(Debug, Default)]
pub struct Declared {
    by_name: std::collections::HashMap<String, Vec<VerifierKey>>,
}

impl Declared {
    /// Keys kept per name, the latest: a name's next statements are signed with its newest
    /// keys, and a hostile log cannot make one signature line try more than these.
    const PER_NAME: usize = 4;

    /// Names kept at most. The pre-check runs about three steps (some 49,000 entries) ahead
    /// of the stored state, so older names are stored by now: forgetting them all when the
    /// map is full costs at worst a few verifications by the rules, and keeps a log of
    /// millions of publishers from growing it without end.
    const MOST_NAMES: usize = 1 << 17;

    /// Learns the keys a read entry's statement declares.
    fn learn(&mut self, read: &Read, origin: &str) {
        let Ok((_, parsed)) = read else { return };
        for k in verify::declared_keys(parsed, origin) {
            self.insert(k);
        }
    }

    fn insert(&mut self, k: VerifierKey) {
        if self.by_name.len() >= Self::MOST_NAMES && !self.by_name.contains_key(&k.name) {
            self.by_name.clear();
        }
        let keys = self.by_name.entry(k.name.clone()).or_default();
        if keys.iter().any(|x| x.key == k.key) {
            return;
        }
        if keys.len() == Self::PER_NAME {
            keys.remove(0);
        }
        keys.push(k);
    }

    fn with_id(&self, name: &str, id: u32) -> Vec<VerifierKey> {
        self.by_name.get(name).map_or_else(Vec::new, |keys| {
            keys.iter().filter(|k| k.id == id).cloned().collect()
        })
    }
}

/// Pre-checks entries against the stored state, apart from the replayer that will apply them.
pub struct Prechecker {
    store: Arc<dyn Store>,
    origin: String,
    log_key: VerifierKey,
}

impl Prechecker {
    /// Pre-checks consecutive entries starting at index `first`, in this thread.
    pub fn run<B: AsRef<[u8]>>(&self, first: u64, entries: &[B]) -> Vec<Prepared> {
        self.check(first, self.read(first, entries), &Declared::default())
    }

    /// Decodes consecutive entries starting at index `first` and parses their statements.
    pub fn read<B: AsRef<[u8]>>(&self, first: u64, entries: &[B]) -> Vec<Read> {
        let at = |i: usize| first + i as u64;
        let entries = entries.iter().enumerate();
        entries.map(|(i, b)| read(at(i), b.as_ref())).collect()
    }

    /// Learns the keys that read entries declare, in log order.
    pub fn learn(&self, declared: &mut Declared, read: &[Read]) {
        for r in read {
            declared.learn(r, &self.origin);
        }
    }

    /// Checks the signatures (against the stored keys and `declared`) and the content of
    /// consecutive read entries starting at index `first`, in this thread.
    pub fn check(&self, first: u64, read: Vec<Read>, declared: &Declared) -> Vec<Prepared> {
        let pending = Changes::new();
        let keys = Memo {
            keys: Keys {
                store: self.store.as_ref(),
                pending: &pending,
            },
            seen: Default::default(),
            declared,
        };
        // All the bundle's signatures are verified together.
        let storage = |i: usize, e: StoreError| ReplayError {
            index: first + i as u64,
            rule: "storage".into(),
            detail: e.to_string(),
        };
        verify::check_many(read, &keys, &self.origin, &self.log_key, storage)
    }
}

/// `apply_all` of one entry returns one result; this is never reached.
fn unreachable_parsed() -> Parsed {
    Parsed {
        note: String::new(),
        note_hash: [0; 32],
        hash: [0; 32],
        body: Default::default(),
        signatures: vec![],
        kind: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::SecretKey;

    #[test]
    fn declared_keys_stay_bounded() {
        let fresh = |name: &str| SecretKey::generate(name).unwrap().verifier(); // test-only
        let mut d = Declared::default();
        // A name keeps its latest keys only.
        let keys: Vec<VerifierKey> = (0..Declared::PER_NAME + 1)
            .map(|_| fresh("a.example"))
            .collect();
        for k in &keys {
            d.insert(k.clone());
            d.insert(k.clone()); // a key declared twice is kept once
        }
        let kept = &d.by_name["a.example"];
        assert_eq!(kept.len(), Declared::PER_NAME);
        assert!(kept.iter().all(|k| k.key != keys[0].key));
        assert_eq!(d.with_id("a.example", keys[1].id).len(), 1);
        assert!(d.with_id("a.example", keys[0].id).is_empty());
        // The map of names is emptied when full, rather than grown.
        let k = fresh("x");
        for i in 1..Declared::MOST_NAMES {
            d.insert(VerifierKey {
                name: format!("p{i}"),
                ..k.clone()
            });
        }
        assert_eq!(d.by_name.len(), Declared::MOST_NAMES);
        d.insert(VerifierKey {
            name: "p1".into(),
            ..fresh("p1")
        }); // a known name: no reset
        assert_eq!(d.by_name.len(), Declared::MOST_NAMES);
        d.insert(k);
        assert_eq!(d.by_name.len(), 1);
    }
}
