//! The auditor's state: a key-value log that is only ever appended to, with an in-memory
//! index of where each key's current value lies (the design of Bitcask).
//!
//! An auditor rebuilds a whole log's derived state: one merged record and one statement id
//! per entry, under keys in no useful order (statement ids are random), written once and
//! rarely read again. A B-tree is the wrong home for that: each step of a full audit touched
//! leaves all over sled's tree and rewrote them, so at a million entries sled wrote 5 GB,
//! held 1.5 GB on disk and took a third of the audit's time. Here a commit is one sequential
//! write and one fdatasync, a read is one `pread` (served by the page cache), and the file is
//! about the size of the values it holds.
//!
//! The file starts with [`MAGIC`], then holds one frame per commit: `cKv1`, the body's length
//! (u64, little-endian), the body, and a CRC-32 of length and body. A body is a sequence of records: `1` ‖ key length
//! (u32) ‖ key ‖ value length (u32) ‖ value, or `0` ‖ key length ‖ key for a deletion. Opening
//! reads every frame and rebuilds the index; a frame cut short or failing its checksum at the
//! end of the file (no whole frame after it) is what a crash during a commit leaves, and is
//! cut off: a commit is only acknowledged once its frame is synced. A bad frame with whole
//! ones after it is corruption, and reported. (Damage to the last frame itself cannot be told
//! from a torn write, so that commit is lost: the state goes back to the commit before, which
//! is whole, and an auditor checks that step again.)
//!
//! Keys inside the file: `s` ‖ key → derived state, compressed like sled's
//! ([`super::compress`]) but at the faster level, since an auditor keeps records only for the
//! updates that may follow them; hash blocks under [`super::blocks::key`]; `c` → the checkpoint.
//! It keeps no entries: the auditor reads those from the log.
//!
//! Overwritten and deleted values stay in the file until they outweigh the live ones; then a
//! commit rewrites the live ones into a new file and renames it into place.

use super::{blocks, compress, CommitBatch, Store, StoreError};
use crate::merkle::{Hash, NodeId};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// The first bytes of the file: its format.
pub const MAGIC: &[u8; 16] = b"candor-state-v1\n";

const PUT: u8 = 1;
const DELETE: u8 = 0;

/// Compaction waits until the dead bytes are at least this many (and more than the live
/// ones): rewriting a small file to save a little is not worth it.
const MIN_DEAD: u64 = 64 << 20;

/// Where a key's current value lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    at: u64,
    len: u32,
}

/// The bytes a record of this key and value takes in a frame.
fn record_len(key: &[u8], len: u32) -> u64 {
    9 + key.len() as u64 + u64::from(len)
}

struct Inner {
    file: Arc<File>,
    index: BTreeMap<Box<[u8]>, Loc>,
    /// Length of the file's committed frames.
    end: u64,
    /// Bytes of the records the index points at.
    live: u64,
}

pub struct AppendStore {
    path: PathBuf,
    inner: RwLock<Inner>,
    /// Held for a whole commit: frames are written at the committed end.
    commit_lock: Mutex<()>,
    /// The lock file, held while the store is open so that two processes cannot share it.
    _lock: File,
    min_dead: u64,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("state file: {e}"))
}

fn poisoned() -> StoreError {
    StoreError::Io("state file lock poisoned".into())
}

fn corrupt(path: &Path, at: u64, why: &str) -> StoreError {
    StoreError::Corrupt(format!("{} at byte {at}: {why}", path.display()))
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)
        }
        _ => Ok(()),
    }
}

fn state_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(b's');
    k.extend_from_slice(key);
    k
}

/// The start of every frame, so that whole frames can be told apart from garbage.
const FRAME_MAGIC: &[u8; 4] = b"cKv1";

/// Bytes a frame takes besides its body: magic, length, checksum.
const FRAMING: u64 = 16;

/// The body length the frame header at `at` gives, if it is a header (the magic) whose body
/// fits in the file.
fn frame_len(file: &File, at: u64, total: u64) -> Result<Option<u64>, StoreError> {
    if total - at < FRAMING {
        return Ok(None);
    }
    let mut head = [0u8; 12];
    file.read_exact_at(&mut head, at).map_err(io)?;
    let len = u64::from_le_bytes(head[4..].try_into().unwrap_or_default());
    Ok((&head[..4] == FRAME_MAGIC && len <= total - at - FRAMING).then_some(len))
}

/// Reads the frame at `at` into `body` and returns its body's length, or None if no whole
/// frame starts there.
fn frame_at(
    file: &File,
    at: u64,
    total: u64,
    body: &mut Vec<u8>,
) -> Result<Option<u64>, StoreError> {
    let Some(len) = frame_len(file, at, total)? else {
        return Ok(None);
    };
    body.resize(len as usize + 4, 0);
    file.read_exact_at(body, at + 12).map_err(io)?;
    let crc = body.split_off(len as usize);
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(body);
    Ok((h.finalize().to_le_bytes()[..] == crc[..]).then_some(len))
}

/// Whether a whole frame starts at `at`, checked a chunk at a time: a length read from
/// garbage must not decide how much memory the check takes.
fn whole_frame_at(file: &File, at: u64, total: u64, chunk: &mut [u8]) -> Result<bool, StoreError> {
    let Some(len) = frame_len(file, at, total)? else {
        return Ok(false);
    };
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    let mut pos = at + 12;
    let end = pos + len;
    while pos < end {
        let n = (end - pos).min(chunk.len() as u64) as usize;
        file.read_exact_at(&mut chunk[..n], pos).map_err(io)?;
        h.update(&chunk[..n]);
        pos += n as u64;
    }
    let mut crc = [0u8; 4];
    file.read_exact_at(&mut crc, end).map_err(io)?;
    Ok(h.finalize().to_le_bytes() == crc)
}

/// Whether a whole frame starts anywhere in `from..total`: a damaged frame followed by whole
/// ones is corruption, not an interrupted commit.
fn any_frame_after(file: &File, from: u64, total: u64) -> Result<bool, StoreError> {
    let mut chunk = vec![0u8; 1 << 20];
    let mut probe = vec![0u8; 1 << 20];
    let mut at = from;
    while at < total {
        let n = (total - at).min(chunk.len() as u64) as usize;
        file.read_exact_at(&mut chunk[..n], at).map_err(io)?;
        for i in 0..n.saturating_sub(3) {
            if &chunk[i..i + 4] == FRAME_MAGIC
                && whole_frame_at(file, at + i as u64, total, &mut probe)?
            {
                return Ok(true);
            }
        }
        // Overlap by three bytes so that a magic across two chunks is seen.
        at += n.saturating_sub(3).max(1) as u64;
    }
    Ok(false)
}

/// Builds one frame; `locs` gets, for each put, its key and where its value lies relative
/// to the frame's start.
#[derive(Default)]
struct Frame {
    body: Vec<u8>,
    locs: Vec<(Vec<u8>, Option<Loc>)>,
}

impl Frame {
    fn put(&mut self, key: Vec<u8>, value: &[u8]) -> Result<(), StoreError> {
        let (kl, vl) = (len32(&key)?, len32(value)?);
        self.body.push(PUT);
        self.body.extend_from_slice(&kl.to_le_bytes());
        self.body.extend_from_slice(&key);
        self.body.extend_from_slice(&vl.to_le_bytes());
        let at = 12 + self.body.len() as u64;
        self.body.extend_from_slice(value);
        self.locs.push((key, Some(Loc { at, len: vl })));
        Ok(())
    }

    fn delete(&mut self, key: Vec<u8>) -> Result<(), StoreError> {
        self.body.push(DELETE);
        self.body.extend_from_slice(&len32(&key)?.to_le_bytes());
        self.body.extend_from_slice(&key);
        self.locs.push((key, None));
        Ok(())
    }

    /// The frame's bytes: magic, length, body, checksum of length and body.
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + FRAMING as usize);
        out.extend_from_slice(FRAME_MAGIC);
        out.extend_from_slice(&(self.body.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.body);
        let crc = crc32fast::hash(&out[4..]);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }
}

fn len32(b: &[u8]) -> Result<u32, StoreError> {
    u32::try_from(b.len()).map_err(|_| StoreError::Io("a state value over 4 GiB".into()))
}

/// Applies a frame's records, read back from `body` found at `start` in the file.
fn replay_body(
    body: &[u8],
    start: u64,
    index: &mut BTreeMap<Box<[u8]>, Loc>,
    live: &mut u64,
) -> Option<()> {
    let mut at = 0usize;
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?))
    };
    while at < body.len() {
        let op = body[at];
        let kl = u32_at(at + 1)? as usize;
        let key = body.get(at + 5..at + 5 + kl)?;
        at += 5 + kl;
        let old = match op {
            PUT => {
                let len = u32_at(at)?;
                let v = at + 4;
                body.get(v..v + len as usize)?;
                at = v + len as usize;
                *live += record_len(key, len);
                let loc = Loc {
                    at: start + 12 + v as u64,
                    len,
                };
                index.insert(key.into(), loc)
            }
            DELETE => index.remove(key),
            _ => return None,
        };
        if let Some(old) = old {
            *live -= record_len(key, old.len);
        }
    }
    Some(())
}

impl AppendStore {
    /// Opens (or creates) the store in the file at `path`.
    pub fn open(path: &Path) -> Result<AppendStore, StoreError> {
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path.with_extension("lock"))
            .map_err(io)?;
        lock.try_lock().map_err(|_| {
            StoreError::Io(format!(
                "{} is in use by another process",
                path.with_extension("lock").display()
            ))
        })?;
        // A compaction that did not finish leaves its new file behind: the old one is whole.
        let _ = std::fs::remove_file(path.with_extension("compact"));
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < MAGIC.len() as u64 {
            // New, or created by a crash before its first bytes were synced.
            file.set_len(0).map_err(io)?;
            file.write_all_at(MAGIC, 0).map_err(io)?;
            file.sync_all().map_err(io)?;
            if !existed {
                sync_dir(path)?;
            }
        }
        let (index, end, live) = Self::read_frames(path, &mut file)?;
        if end < file.metadata().map_err(io)?.len() {
            // A commit the crash interrupted: it was never acknowledged.
            file.set_len(end).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        Ok(AppendStore {
            path: path.to_path_buf(),
            inner: RwLock::new(Inner {
                file: Arc::new(file),
                index,
                end,
                live,
            }),
            commit_lock: Mutex::new(()),
            _lock: lock,
            min_dead: MIN_DEAD,
        })
    }

    /// Reads every frame: the index, the end of the last whole frame, the live bytes.
    #[allow(clippy::type_complexity)]
    fn read_frames(
        path: &Path,
        file: &mut File,
    ) -> Result<(BTreeMap<Box<[u8]>, Loc>, u64, u64), StoreError> {
        let total = file.metadata().map_err(io)?.len();
        let mut magic = [0u8; 16];
        file.read_exact_at(&mut magic, 0).map_err(io)?;
        if &magic != MAGIC {
            return Err(corrupt(path, 0, "not a Candor state file"));
        }
        let (mut index, mut live) = (BTreeMap::new(), 0u64);
        let mut end = MAGIC.len() as u64;
        let mut body = Vec::new();
        while end < total {
            match frame_at(file, end, total, &mut body)? {
                Some(len) => {
                    replay_body(&body, end, &mut index, &mut live)
                        .ok_or_else(|| corrupt(path, end, "a commit holds a malformed record"))?;
                    end += FRAMING + len;
                }
                // What a crash during the last commit leaves: no whole frame after it.
                None if !any_frame_after(file, end + 1, total)? => break,
                None => {
                    return Err(corrupt(
                        path,
                        end,
                        "a damaged commit with whole ones after it",
                    ))
                }
            }
        }
        Ok((index, end, live))
    }

    /// The stored bytes under an internal key.
    fn raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let g = self.inner.read().map_err(|_| poisoned())?;
        match g.index.get(key) {
            None => Ok(None),
            Some(loc) => read_at(&g.file, *loc).map(Some),
        }
    }

    fn block(&self, level: u8, block: u64) -> Result<Vec<u8>, StoreError> {
        Ok(self.raw(&blocks::key(level, block))?.unwrap_or_default())
    }

    /// Rewrites the live records into a new file and renames it into place. The caller holds
    /// the commit lock.
    fn compact(&self) -> Result<(), StoreError> {
        let tmp = self.path.with_extension("compact");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io)?;
        file.write_all_at(MAGIC, 0).map_err(io)?;
        let mut end = MAGIC.len() as u64;
        let mut index = BTreeMap::new();
        let mut live = 0;
        {
            let g = self.inner.read().map_err(|_| poisoned())?;
            let mut frame = Frame::default();
            let mut keys = g.index.iter().peekable();
            while let Some((k, loc)) = keys.next() {
                frame.put(k.to_vec(), &read_at(&g.file, *loc)?)?;
                if frame.body.len() >= 8 << 20 || keys.peek().is_none() {
                    file.write_all_at(&frame.bytes(), end).map_err(io)?;
                    replay_body(&frame.body, end, &mut index, &mut live).ok_or_else(|| {
                        StoreError::Io("compaction built a malformed frame".into())
                    })?;
                    end += FRAMING + frame.body.len() as u64;
                    frame = Frame::default();
                }
            }
        }
        file.sync_all().map_err(io)?;
        {
            // Renamed and swapped together: once the new file has the name, commits must go
            // to it, whatever happens next.
            let mut g = self.inner.write().map_err(|_| poisoned())?;
            std::fs::rename(&tmp, &self.path).map_err(io)?;
            *g = Inner {
                file: Arc::new(file),
                index,
                end,
                live,
            };
        }
        sync_dir(&self.path)
    }

    /// Bytes the file holds and bytes of live records in it.
    pub fn sizes(&self) -> Result<(u64, u64), StoreError> {
        let g = self.inner.read().map_err(|_| poisoned())?;
        Ok((g.end, g.live))
    }
}

fn read_at(file: &File, loc: Loc) -> Result<Vec<u8>, StoreError> {
    let mut v = vec![0u8; loc.len as usize];
    file.read_exact_at(&mut v, loc.at).map_err(io)?;
    Ok(v)
}

impl Store for AppendStore {
    fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError> {
        if !batch.entries.is_empty() {
            return Err(StoreError::Io(
                "the state file keeps derived state, not entries".into(),
            ));
        }
        let _one_at_a_time = self
            .commit_lock
            .lock()
            .map_err(|_| StoreError::Io("commit lock poisoned".into()))?;
        let mut frame = Frame::default();
        for ((level, block), value) in blocks::updated(&batch.hashes, |l, b| self.block(l, b))? {
            frame.put(blocks::key(level, block).to_vec(), &value)?;
        }
        for (k, v) in &batch.state {
            match v {
                Some(v) => {
                    frame.put(state_key(k), &compress::encode(k, v, compress::Level::Fast))?
                }
                None => frame.delete(state_key(k))?,
            }
        }
        if !batch.checkpoint.is_empty() {
            frame.put(b"c".to_vec(), batch.checkpoint.as_bytes())?;
        }
        if frame.locs.is_empty() {
            return Ok(());
        }
        let (file, start) = {
            let g = self.inner.read().map_err(|_| poisoned())?;
            (g.file.clone(), g.end)
        };
        file.write_all_at(&frame.bytes(), start).map_err(io)?;
        file.sync_data().map_err(io)?;
        let (dead, live) = {
            let mut g = self.inner.write().map_err(|_| poisoned())?;
            for (key, loc) in frame.locs {
                let old = match loc {
                    Some(loc) => {
                        let loc = Loc {
                            at: start + loc.at,
                            len: loc.len,
                        };
                        g.live += record_len(&key, loc.len);
                        g.index.insert(key.clone().into_boxed_slice(), loc)
                    }
                    None => g.index.remove(&key[..]),
                };
                if let Some(old) = old {
                    g.live -= record_len(&key, old.len);
                }
            }
            g.end = start + FRAMING + frame.body.len() as u64;
            (g.end - MAGIC.len() as u64 - g.live, g.live)
        };
        if dead >= self.min_dead && dead > live {
            // The commit is durable already: a compaction that fails leaves the old file
            // whole, and the next commit tries again.
            if let Err(e) = self.compact() {
                tracing::warn!(error = %e, "could not compact the state file");
            }
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<Option<String>, StoreError> {
        match self.raw(b"c")? {
            None => Ok(None),
            Some(v) => String::from_utf8(v)
                .map(Some)
                .map_err(|_| StoreError::Corrupt("stored checkpoint is not UTF-8".into())),
        }
    }

    /// None: the auditor reads entries from the log it checks.
    fn entries(&self, _start: u64, _end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(Vec::new())
    }

    fn hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        blocks::at(ids, |level, block| self.block(level, block))
    }

    fn hash_range(&self, level: u8, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
        blocks::range(level, start, end, |level, block| self.block(level, block))
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.raw(&state_key(key))?
            .map(|v| compress::decode(&v))
            .transpose()
    }

    fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.scan_page(prefix, None, usize::MAX)
    }

    fn scan_page(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        use std::ops::Bound;
        let p = state_key(prefix);
        let from = match after {
            Some(a) => Bound::Excluded(state_key(a).into_boxed_slice()),
            None => Bound::Included(p.clone().into_boxed_slice()),
        };
        let g = self.inner.read().map_err(|_| poisoned())?;
        g.index
            .range((from, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&p))
            .take(limit)
            .map(|(k, loc)| Ok((k[1..].to_vec(), compress::decode(&read_at(&g.file, *loc)?)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(pairs: &[(&str, &str)]) -> CommitBatch {
        CommitBatch {
            state: pairs
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec())))
                .collect(),
            ..Default::default()
        }
    }

    fn get(s: &AppendStore, k: &str) -> Option<String> {
        s.get(k.as_bytes())
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap())
    }

    fn record(n: usize) -> String {
        // Long enough to be compressed, like a merged record.
        format!(
            "{{\"type\":\"request\",\"record\":{{\"id\":\"{n}\",\"country\":\"DE\"}},\"pad\":\"{}\"}}",
            "x".repeat(200)
        )
    }

    #[test]
    fn state_hashes_and_checkpoint_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.kv");
        {
            let s = AppendStore::open(&path).unwrap();
            let mut b = put(&[("p/a", "one"), ("p/b", "two"), ("q/c", "three")]);
            b.hashes = (0..300u64).map(|i| ((0u8, i), [i as u8; 32])).collect();
            b.checkpoint = "origin\n300\nroot\n".into();
            s.commit(&b).unwrap();
            let mut b = put(&[("p/a", "uno"), ("r/x", &record(1))]);
            b.state.push((b"p/b".to_vec(), None));
            b.hashes = vec![((0u8, 300), [9; 32]), ((8u8, 0), [8; 32])];
            s.commit(&b).unwrap();
        }
        let s = AppendStore::open(&path).unwrap();
        assert_eq!(get(&s, "p/a").as_deref(), Some("uno"));
        assert_eq!(get(&s, "p/b"), None);
        assert_eq!(get(&s, "r/x"), Some(record(1)));
        assert_eq!(
            s.checkpoint().unwrap().as_deref(),
            Some("origin\n300\nroot\n")
        );
        assert_eq!(
            s.hash_range(0, 298, 400).unwrap(),
            vec![[42; 32], [43; 32], [9; 32]]
        );
        assert_eq!(s.hashes(&[(8, 0), (0, 5)]).unwrap(), vec![[8; 32], [5; 32]]);
        let keys: Vec<Vec<u8>> = s.scan(b"p/").unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"p/a".to_vec()]);
        // Pages go on after the key given, and stop at the prefix's end.
        let all = s.scan_page(b"", None, 10).unwrap();
        assert_eq!(all.len(), 3);
        let page = s.scan_page(b"", Some(b"p/a"), 1).unwrap();
        assert_eq!(page[0].0, b"q/c".to_vec());
        // The record was stored compressed.
        let stored = s.raw(&state_key(b"r/x")).unwrap().unwrap();
        assert!(stored.len() < record(1).len() / 2, "{}", stored.len());
    }

    #[test]
    fn a_torn_last_commit_is_cut_off_and_a_damaged_earlier_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.kv");
        let whole = {
            let s = AppendStore::open(&path).unwrap();
            s.commit(&put(&[("k/1", "a")])).unwrap();
            let whole = std::fs::metadata(&path).unwrap().len();
            s.commit(&put(&[("k/2", "b")])).unwrap();
            whole
        };
        let full = std::fs::read(&path).unwrap();
        // Cut in the middle of the second frame: the first survives, the second is gone.
        for cut in [whole + 3, whole + 9, full.len() as u64 - 1] {
            std::fs::write(&path, &full[..cut as usize]).unwrap();
            let s = AppendStore::open(&path).unwrap();
            assert_eq!(get(&s, "k/1").as_deref(), Some("a"));
            assert_eq!(get(&s, "k/2"), None);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
            // And the next commit goes where the torn one was.
            s.commit(&put(&[("k/3", "c")])).unwrap();
            drop(s);
            let s = AppendStore::open(&path).unwrap();
            assert_eq!(get(&s, "k/3").as_deref(), Some("c"));
        }
        // A flipped byte in a frame that is not the last (in its length, in its body) is
        // corruption, not a torn write: nothing after it is cut off.
        for at in [20, whole as usize - 6] {
            let mut bad = full.clone();
            bad[at] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            match AppendStore::open(&path) {
                Err(StoreError::Corrupt(m)) => assert!(m.contains("damaged"), "{m}"),
                other => panic!("expected corruption, got {:?}", other.map(|_| ())),
            }
            assert_eq!(std::fs::read(&path).unwrap(), bad);
        }
        std::fs::write(&path, b"something else entirely").unwrap();
        assert!(matches!(
            AppendStore::open(&path),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn dead_values_are_compacted_away_and_the_state_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.kv");
        let mut s = AppendStore::open(&path).unwrap();
        s.min_dead = 4096;
        for round in 0..20 {
            let pairs: Vec<(String, String)> = (0..20)
                .map(|i| (format!("r/{i}"), format!("{round}-{}", record(i))))
                .collect();
            let refs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            s.commit(&put(&refs)).unwrap();
        }
        let mut gone = put(&[]);
        gone.state.push((b"r/0".to_vec(), None));
        s.commit(&gone).unwrap();
        let (len, live) = s.sizes().unwrap();
        assert!(len - 16 - live <= s.min_dead.max(live), "{len} {live}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        let expect = |s: &AppendStore| {
            assert_eq!(get(s, "r/0"), None);
            for i in 1..20 {
                assert_eq!(get(s, &format!("r/{i}")), Some(format!("19-{}", record(i))));
            }
        };
        expect(&s);
        drop(s);
        expect(&AppendStore::open(&path).unwrap());
        assert!(!path.with_extension("compact").exists());
    }

    #[test]
    fn a_second_open_of_the_same_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.kv");
        let s = AppendStore::open(&path).unwrap();
        assert!(AppendStore::open(&path).is_err());
        drop(s);
        assert!(AppendStore::open(&path).is_ok());
    }

    #[test]
    fn entries_are_refused_rather_than_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let s = AppendStore::open(&dir.path().join("state.kv")).unwrap();
        let b = CommitBatch {
            entries: vec![(0, b"entry".to_vec())],
            ..Default::default()
        };
        assert!(s.commit(&b).is_err());
    }
}
