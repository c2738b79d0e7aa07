//! Entry bytes in one append-only file.
//!
//! Entries are the bulk of the log (about a kilobyte each) and never change once written, so
//! a B-tree is the wrong home for them: it rewrites pages, keeps several versions of them
//! until it compacts, and holds their index in memory. Here they are simply concatenated.
//! Where each one ends is small and lives in the key-value store ([`super::sled_store`]),
//! committed in the same atomic batch as the rest of the group commit; this file only has to
//! hold the bytes those offsets point at.
//!
//! A commit therefore goes: write the new entries after the last committed one and fdatasync
//! the file, then commit the offsets with everything else. A crash in between leaves bytes
//! past the last committed offset; opening cuts them off, and the next commit would have
//! written over them anyway, because it writes at the committed end rather than appending.

use super::StoreError;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::RwLock;

pub struct EntryFile {
    file: File,
    /// End offset of every committed entry: entry `i` is the bytes `ends[i-1]..ends[i]`.
    /// Eight bytes per entry (8 MiB at a million), so reads need no lookup on disk.
    ends: RwLock<Vec<u64>>,
}

/// Entries written and synced by [`EntryFile::write`], not yet readable.
pub struct Written {
    pub first: u64,
    /// The end offsets of the entries written, in order.
    pub ends: Vec<u64>,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("entry file: {e}"))
}

fn poisoned() -> StoreError {
    StoreError::Io("entry file lock poisoned".into())
}

impl EntryFile {
    /// Opens (or creates) the file at `path`, given the committed end offsets, and cuts off
    /// whatever an unfinished commit left after the last of them.
    pub fn open(path: &Path, ends: Vec<u64>) -> Result<EntryFile, StoreError> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        if !existed {
            // The new file's name must survive a crash as surely as its contents.
            if let Some(dir) = path.parent() {
                File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
            }
        }
        if ends.windows(2).any(|w| w[0] > w[1]) {
            return Err(StoreError::Corrupt(
                "entry offsets are not in increasing order".into(),
            ));
        }
        let committed = ends.last().copied().unwrap_or(0);
        let len = file.metadata().map_err(io)?.len();
        if len < committed {
            return Err(StoreError::Corrupt(format!(
                "the entry file holds {len} bytes but the committed entries end at {committed}"
            )));
        }
        if len > committed {
            file.set_len(committed).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        Ok(EntryFile {
            file,
            ends: RwLock::new(ends),
        })
    }

    /// The committed end offsets of entries `from..`, for rewriting the last offset block.
    pub fn ends_from(&self, from: u64) -> Result<Vec<u64>, StoreError> {
        let ends = self.ends.read().map_err(|_| poisoned())?;
        Ok(ends.get(from as usize..).unwrap_or_default().to_vec())
    }

    /// Writes `entries` (consecutive indexes, in order) after the committed ones and
    /// fdatasyncs the file. Entries already committed are not written again: a batch retried
    /// after a failed commit carries them, and they must be the same bytes.
    pub fn write(&self, entries: &[(u64, Vec<u8>)]) -> Result<Written, StoreError> {
        let (committed, mut at) = {
            let ends = self.ends.read().map_err(|_| poisoned())?;
            (ends.len() as u64, ends.last().copied().unwrap_or(0))
        };
        // Entries come in index order: those already committed (a retried batch), then new.
        let (old, new) = entries.split_at(entries.partition_point(|(i, _)| *i < committed));
        if let Some((from, _)) = old.first() {
            let stored = self.read(*from, committed)?;
            for (k, (i, bytes)) in old.iter().enumerate() {
                if *i != from + k as u64 || stored.get(k) != Some(bytes) {
                    return Err(StoreError::Corrupt(format!(
                        "entry {i} is already committed with other bytes"
                    )));
                }
            }
        }
        for (k, (i, _)) in new.iter().enumerate() {
            if *i != committed + k as u64 {
                return Err(StoreError::Corrupt(format!(
                    "entry {i} would leave a gap after entry {}",
                    committed + k as u64
                )));
            }
        }
        let mut out = Written {
            first: committed,
            ends: Vec::with_capacity(new.len()),
        };
        if new.is_empty() {
            return Ok(out);
        }
        let mut buf = Vec::with_capacity(new.iter().map(|(_, b)| b.len()).sum());
        for (_, b) in new {
            buf.extend_from_slice(b);
            at += b.len() as u64;
            out.ends.push(at);
        }
        let start = at - buf.len() as u64;
        self.file.write_all_at(&buf, start).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        Ok(out)
    }

    /// Makes written entries readable, once the commit that records their offsets is durable.
    pub fn publish(&self, w: Written) -> Result<(), StoreError> {
        let mut ends = self.ends.write().map_err(|_| poisoned())?;
        if w.first == ends.len() as u64 {
            ends.extend(w.ends);
        }
        Ok(())
    }

    /// The committed entries at `start..end`, as far as they exist.
    pub fn read(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let (from, offsets) = {
            let ends = self.ends.read().map_err(|_| poisoned())?;
            let end = end.min(ends.len() as u64);
            if start >= end {
                return Ok(Vec::new());
            }
            let from = match start {
                0 => 0,
                s => ends[s as usize - 1],
            };
            (from, ends[start as usize..end as usize].to_vec())
        };
        let to = offsets.last().copied().unwrap_or(from);
        let mut buf = vec![0u8; (to - from) as usize];
        self.file.read_exact_at(&mut buf, from).map_err(io)?;
        let mut out = Vec::with_capacity(offsets.len());
        let mut prev = from;
        for e in offsets {
            out.push(buf[(prev - from) as usize..(e - from) as usize].to_vec());
            prev = e;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(first: u64, n: u64) -> Vec<(u64, Vec<u8>)> {
        (first..first + n)
            .map(|i| {
                (
                    i,
                    format!("entry {i}").repeat(i as usize % 3 + 1).into_bytes(),
                )
            })
            .collect()
    }

    #[test]
    fn written_entries_are_readable_only_once_published() {
        let dir = tempfile::tempdir().unwrap(); // test-only
        let f = EntryFile::open(&dir.path().join("entries"), Vec::new()).unwrap(); // test-only
        let w = f.write(&entries(0, 5)).unwrap(); // test-only
        assert!(f.read(0, 5).unwrap().is_empty()); // test-only
        f.publish(w).unwrap(); // test-only
        let want: Vec<Vec<u8>> = entries(0, 5).into_iter().map(|(_, b)| b).collect();
        assert_eq!(f.read(0, 5).unwrap(), want); // test-only
        assert_eq!(f.read(2, 99).unwrap(), want[2..].to_vec()); // test-only
        assert!(f.read(5, 9).unwrap().is_empty()); // test-only
    }

    /// A crash after the file write but before the offsets were committed leaves bytes that
    /// no committed offset covers; reopening drops them, and the retried batch fits.
    #[test]
    fn bytes_after_the_committed_offsets_are_cut_off_when_opening() {
        let dir = tempfile::tempdir().unwrap(); // test-only
        let path = dir.path().join("entries");
        let f = EntryFile::open(&path, Vec::new()).unwrap(); // test-only
        let w = f.write(&entries(0, 3)).unwrap(); // test-only
        let committed = w.ends.clone();
        f.publish(w).unwrap(); // test-only
        f.write(&entries(3, 4)).unwrap(); // test-only: never committed
        drop(f);
        let f = EntryFile::open(&path, committed.clone()).unwrap(); // test-only
        let size = std::fs::metadata(&path).unwrap().len(); // test-only
        assert_eq!(size, *committed.last().unwrap()); // test-only
        let w = f.write(&entries(3, 2)).unwrap(); // test-only
        f.publish(w).unwrap(); // test-only
        assert_eq!(f.read(3, 5).unwrap()[1], entries(4, 1)[0].1); // test-only
    }

    #[test]
    fn a_retried_batch_must_repeat_committed_entries_exactly() {
        let dir = tempfile::tempdir().unwrap(); // test-only
        let f = EntryFile::open(&dir.path().join("entries"), Vec::new()).unwrap(); // test-only
        let w = f.write(&entries(0, 3)).unwrap(); // test-only
        f.publish(w).unwrap(); // test-only
                               // The same batch again, plus more: only the new entries are written.
        let w = f.write(&entries(0, 5)).unwrap(); // test-only
        assert_eq!((w.first, w.ends.len()), (3, 2)); // test-only
        f.publish(w).unwrap(); // test-only
        assert_eq!(f.read(0, u64::MAX).unwrap().len(), 5); // test-only
        let mut other = entries(1, 1);
        other[0].1[0] ^= 1;
        assert!(matches!(f.write(&other), Err(StoreError::Corrupt(_)))); // test-only
        assert!(matches!(
            f.write(&entries(7, 1)),
            Err(StoreError::Corrupt(m)) if m.contains("gap")
        ));
    }

    #[test]
    fn a_file_shorter_than_its_offsets_is_corrupt() {
        let dir = tempfile::tempdir().unwrap(); // test-only
        let path = dir.path().join("entries");
        std::fs::write(&path, b"short").unwrap(); // test-only
        assert!(matches!(
            EntryFile::open(&path, vec![3, 10]),
            Err(StoreError::Corrupt(m)) if m.contains("5 bytes")
        ));
    }
}
