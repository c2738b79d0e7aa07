//! The auditor: verifies a log with nothing but its URL and its verifier key.
//!
//! It checks the checkpoint's signature, downloads entry bundles and hash tiles, recomputes
//! the tree, replays every statement with the service's own rules ([`Replayer`]), and checks
//! every hash tile it fetched against the hashes it computed. With a state directory it
//! remembers the last verified checkpoint, the tree's right edge and the replayed state, so
//! the next run checks a consistency proof and only the new entries; a log that shrank or
//! forked is reported with both signed checkpoints kept as evidence.

pub mod source;

use crate::checkpoint::Checkpoint;
use crate::entry;
use crate::merkle::{self, Frontier, Hash, NodeId};
use crate::note::{self, VerifierKey};
use crate::statement::replay::{Declared, Prechecker, Prepared, Read, Replayer};
use crate::statement::state::{self, PublisherState, Status};
use crate::store::{append_store::AppendStore, memory::MemStore, Store, StoreError};
use crate::tile::{self, TileId, TileKind};
use serde::Serialize;
use source::{Source, SourceError};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// One verification failure: where, which rule, what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub index: Option<u64>,
    pub rule: String,
    pub detail: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "entry {i}: {}: {}", self.rule, self.detail),
            None => write!(f, "{}: {}", self.rule, self.detail),
        }
    }
}

fn failure(index: Option<u64>, rule: &str, detail: String) -> Failure {
    Failure {
        index,
        rule: rule.into(),
        detail,
    }
}

/// What a verified log holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub origin: String,
    pub size: u64,
    pub root: String,
    /// Entries checked in this run.
    pub checked: u64,
    pub publishers: u64,
    pub revoked_publishers: u64,
    /// Itemised demands (requests and revealed seals), by kind.
    pub requests_by_kind: BTreeMap<String, u64>,
    pub aggregates: u64,
    pub bands: u64,
    pub seals_open: u64,
    pub seals_overdue: u64,
    /// Whether the log's published statistics were recomputed and found equal (None: the
    /// source publishes none, or the log moved on before they could be compared).
    pub stats_match: Option<bool>,
}

#[derive(Debug)]
pub enum Outcome {
    Verified(Summary),
    Failed(Vec<Failure>),
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("audit state: {0}")]
    State(String),
}

impl From<StoreError> for AuditError {
    fn from(e: StoreError) -> AuditError {
        AuditError::State(e.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Where to keep what is needed to continue (None: verify from scratch, in memory).
    pub state: Option<PathBuf>,
    /// Concurrent downloads.
    pub parallel: usize,
    /// Show a progress bar.
    pub progress: bool,
    /// Bundles per step: the unit of parallel checking and of saved progress.
    pub bundles_per_step: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            state: None,
            parallel: 8,
            progress: false,
            bundles_per_step: 64,
        }
    }
}

const KEY_CHECKPOINT: &[u8] = b"a/checkpoint";
const KEY_PROGRESS: &[u8] = b"a/progress";
const KEY_VERIFIED: &[u8] = b"a/verified";

/// A position in the log: the tree's edge and the last `logged_at`, and the checkpoint the
/// run that reached it was verifying.
#[derive(Debug, Clone, Default)]
struct Position {
    frontier: Frontier,
    last_logged_at: entry::Millis,
    target: String,
}

impl Position {
    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "frontier": hex::encode(self.frontier.to_bytes()),
            "last_logged_at": self.last_logged_at,
            "target": self.target,
        }))
        .unwrap_or_default()
    }

    fn decode(b: &[u8]) -> Option<Position> {
        let v: serde_json::Value = serde_json::from_slice(b).ok()?;
        Some(Position {
            frontier: Frontier::from_bytes(&hex::decode(v["frontier"].as_str()?).ok()?)?,
            last_logged_at: v["last_logged_at"].as_i64()?,
            target: v["target"].as_str()?.to_string(),
        })
    }
}

/// Runs one audit.
pub fn audit(src: &dyn Source, key: &VerifierKey, opts: &Options) -> Result<Outcome, AuditError> {
    let store: Arc<dyn Store> = match &opts.state {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| AuditError::State(format!("{}: {e}", dir.display())))?;
            if dir.join("state").is_dir() {
                return Err(AuditError::State(format!(
                    "{} holds the state of an older Candor auditor (a sled database); remove \
                     that directory, and the next run verifies the log again from the start",
                    dir.join("state").display()
                )));
            }
            Arc::new(AppendStore::open(&dir.join("state.kv"))?)
        }
        None => Arc::new(MemStore::default()),
    };
    let a = Auditor {
        src,
        key,
        opts,
        store,
        evidence: opts.state.as_ref().map(|d| d.join("evidence")),
    };
    match a.run() {
        Ok(s) => Ok(Outcome::Verified(s)),
        Err(Stop::Failed(f)) => {
            // Nothing from a run that failed verification may stay in the state.
            a.restore()?;
            Ok(Outcome::Failed(f))
        }
        // A network error keeps the progress: the next run resumes from it.
        Err(Stop::Error(e)) => Err(e),
    }
}

enum Stop {
    Failed(Vec<Failure>),
    Error(AuditError),
}

impl From<AuditError> for Stop {
    fn from(e: AuditError) -> Stop {
        Stop::Error(e)
    }
}
impl From<SourceError> for Stop {
    fn from(e: SourceError) -> Stop {
        Stop::Error(e.into())
    }
}
impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        Stop::Error(e.into())
    }
}

fn fail<T>(index: Option<u64>, rule: &str, detail: String) -> Result<T, Stop> {
    Err(Stop::Failed(vec![failure(index, rule, detail)]))
}

struct Auditor<'a> {
    src: &'a dyn Source,
    key: &'a VerifierKey,
    opts: &'a Options,
    store: Arc<dyn Store>,
    evidence: Option<PathBuf>,
}

fn b64(h: &Hash) -> String {
    note::encode_b64(h)
}

impl Auditor<'_> {
    /// Keeps both signed checkpoints that contradict each other.
    fn keep_evidence(&self, what: &str, old: &str, new: &str) -> String {
        let Some(dir) = &self.evidence else {
            return String::new();
        };
        let stamp = entry::now_millis();
        let _ = std::fs::create_dir_all(dir);
        let a = dir.join(format!("{stamp}-{what}-verified.checkpoint"));
        let b = dir.join(format!("{stamp}-{what}-new.checkpoint"));
        let ok = std::fs::write(&a, old).is_ok() && std::fs::write(&b, new).is_ok();
        if ok {
            format!(
                "; both signed checkpoints kept as evidence in {} and {}",
                a.display(),
                b.display()
            )
        } else {
            String::new()
        }
    }

    fn run(&self) -> Result<Summary, Stop> {
        let signed = self.src.checkpoint()?;
        let cp = match Checkpoint::verify(&signed, self.key) {
            Ok(cp) => cp,
            Err(e) => {
                return fail(
                    None,
                    "checkpoint-signature",
                    format!(
                        "the checkpoint from {} does not verify with {}: {e}",
                        self.src.name(),
                        self.key
                    ),
                )
            }
        };
        if cp.size == 0 {
            return fail(
                None,
                "checkpoint",
                "the log signed a checkpoint of size 0".into(),
            );
        }
        // What we verified before.
        let old = match self.store.get(KEY_CHECKPOINT)? {
            Some(b) => {
                let text = String::from_utf8(b)
                    .map_err(|_| AuditError::State("stored checkpoint is not UTF-8".into()))?;
                let c = Checkpoint::verify(&text, self.key).map_err(|e| {
                    AuditError::State(format!("the stored checkpoint no longer verifies: {e}"))
                })?;
                Some((text, c))
            }
            None => None,
        };
        if let Some((old_text, old)) = &old {
            if cp.size < old.size {
                let ev = self.keep_evidence("rollback", old_text, &signed);
                return fail(
                    None,
                    "rollback",
                    format!(
                        "the log shrank: verified size {} (root {}), now size {} (root {}){ev}",
                        old.size,
                        b64(&old.root),
                        cp.size,
                        b64(&cp.root)
                    ),
                );
            }
            if cp.size == old.size && cp.root != old.root {
                let ev = self.keep_evidence("fork", old_text, &signed);
                return fail(
                    None,
                    "fork",
                    format!(
                        "two different signed roots for size {}: {} (verified) and {} (now){ev}",
                        cp.size,
                        b64(&old.root),
                        b64(&cp.root)
                    ),
                );
            }
            if cp.size > old.size {
                if let Some(proof) = self.src.consistency(old.size, cp.size)? {
                    if let Err(e) =
                        merkle::verify_consistency(old.size, cp.size, &old.root, &cp.root, &proof)
                    {
                        let ev = self.keep_evidence("fork", old_text, &signed);
                        return fail(None, "consistency", format!("the checkpoint of size {} is not consistent with the verified one of size {}: {e}{ev}", cp.size, old.size));
                    }
                }
            }
        }
        // Where the last verified run left the tree, and where an interrupted run stopped.
        let verified = self.read_position(KEY_VERIFIED)?.unwrap_or_default();
        if let Some((old_text, old)) = &old {
            // Without a proof route (a static mirror), the new tree's own tiles must hold the
            // verified tree's edge: otherwise it is another history.
            if self.src.consistency(old.size, cp.size)?.is_none() && cp.size > old.size {
                if let Some(why) = self.edge_mismatch(&verified.frontier, cp.size)? {
                    let ev = self.keep_evidence("fork", old_text, &signed);
                    return fail(None, "consistency", format!("the log of size {} does not contain the verified tree of size {}: {why}{ev}", cp.size, old.size));
                }
            }
        }
        let mut position = verified.clone();
        if let Some(p) = self.read_position(KEY_PROGRESS)? {
            if p.frontier.size() > verified.frontier.size() {
                // An interrupted run: go on only towards this checkpoint or one consistent with
                // the one it was verifying; otherwise start again from the verified tree.
                let same = p.target == signed;
                let consistent = !same
                    && p.frontier.size() <= cp.size
                    && self.edge_mismatch(&p.frontier, cp.size)?.is_none();
                if same || consistent {
                    position = p;
                } else {
                    self.restore()?;
                }
            }
        }
        let (mut frontier, last_at) = (position.frontier.clone(), position.last_logged_at);
        let start = frontier.size();
        let mut replay = Replayer::resume(self.key.clone(), self.store.clone(), start, last_at);
        let bar = self.progress_bar(cp.size - start);
        // The counts as of `position`: from the snapshot the last verified run left, or
        // from the stored records (a first run, or one resuming an interrupted run).
        let (mut index, kept) = self.load_index(&position.frontier)?;
        // Steps of bundles; the next step downloads while this one is checked.
        let last_bundle = (cp.size - 1) / tile::WIDTH;
        let steps: Vec<Vec<u64>> = (start / tile::WIDTH..=last_bundle)
            .collect::<Vec<u64>>()
            .chunks(self.opts.bundles_per_step.max(1) as usize)
            .map(<[u64]>::to_vec)
            .collect();
        // Three stages, each working a step ahead of the next: downloads; pre-checks
        // (signatures, schemas) on all cores; the rules, in order, on this thread. Downloading
        // apart from pre-checking keeps the cores busy while a step's bundles arrive.
        let checker = replay.prechecker();
        let checker = &checker;
        let steps = &steps;
        std::thread::scope(|scope| -> Result<(), Stop> {
            type Step<T> = Result<Vec<T>, Stop>;
            let (to_precheck, downloaded) = std::sync::mpsc::sync_channel::<Step<Download>>(1);
            let (to_rules, prechecked) = std::sync::mpsc::sync_channel::<Step<Fetched>>(1);
            let size = cp.size;
            let downloader = scope.spawn(move || {
                for ids in steps {
                    let r = self.fetch(ids, size);
                    let failed = r.is_err();
                    if to_precheck.send(r).is_err() || failed {
                        break;
                    }
                }
            });
            let prechecks = scope.spawn(move || {
                let mut declared = Declared::default();
                for (ids, r) in steps.iter().zip(downloaded) {
                    let r = r.map(|d| self.precheck_step(ids, d, start, checker, &mut declared));
                    let failed = r.is_err();
                    if to_rules.send(r).is_err() || failed {
                        break;
                    }
                }
            });
            let mut done = 0;
            for (ids, fetched) in steps.iter().zip(prechecked.iter()) {
                let fetched = fetched?;
                done += 1;
                let mut hashes: Vec<(NodeId, Hash)> = Vec::new();
                for (n, fetched) in ids.iter().zip(fetched) {
                    let checked = self.check_bundle(
                        *n,
                        cp.size,
                        fetched,
                        checker,
                        &mut replay,
                        &mut frontier,
                        &mut hashes,
                    )?;
                    if let Some(b) = &bar {
                        b.inc(checked);
                    }
                }
                let progress = Position {
                    frontier: frontier.clone(),
                    last_logged_at: replay.last_logged_at(),
                    target: signed.clone(),
                };
                let mut extra = self.undo_records(&replay)?;
                extra.push((KEY_PROGRESS.to_vec(), Some(progress.encode())));
                index.apply_records_here(&replay.pending_values(b"r/"));
                replay.flush(extra, hashes)?;
            }
            let stopped = downloader.join().is_err() | prechecks.join().is_err();
            if stopped || done < steps.len() {
                return Err(Stop::Error(AuditError::State(
                    "a download or pre-check thread stopped unexpectedly".into(),
                )));
            }
            Ok(())
        })?;
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        if frontier.root() != cp.root {
            let ev = old
                .as_ref()
                .map(|(t, _)| self.keep_evidence("fork", t, &signed))
                .unwrap_or_default();
            return fail(
                None,
                "root",
                format!(
                    "the entries recompute root {} for size {}, but the checkpoint says {}{ev}",
                    b64(&frontier.root()),
                    cp.size,
                    b64(&cp.root)
                ),
            );
        }
        self.check_upper_tiles(start, cp.size)?;
        // Every step flushed its changes (and fed its records to `index`): nothing is pending.
        index.size = cp.size;
        index.checkpoint = signed.clone();
        index.last_logged_at = replay.last_logged_at();
        let stats_match = self.check_stats(&index, &cp)?;
        // Verified: the progress becomes the verified position, and the undo records go.
        let done = Position {
            frontier: frontier.clone(),
            last_logged_at: replay.last_logged_at(),
            target: signed.clone(),
        };
        loop {
            let page = self.store.scan_page(b"u/", None, 10_000)?;
            if page.is_empty() {
                break;
            }
            let state = page.into_iter().map(|(k, _)| (k, None)).collect();
            self.store.commit(&crate::store::CommitBatch {
                state,
                ..Default::default()
            })?;
        }
        let extra = vec![
            (KEY_VERIFIED.to_vec(), Some(done.encode())),
            (KEY_PROGRESS.to_vec(), Some(done.encode())),
            (KEY_CHECKPOINT.to_vec(), Some(signed.clone().into_bytes())),
        ];
        replay.flush(extra, vec![])?;
        if !(kept && done.frontier.size() == start) {
            self.save_index(&index, &done.frontier);
        }
        let mut summary = self.summary(&replay, &index, &cp, cp.size - start)?;
        summary.stats_match = stats_match;
        Ok(summary)
    }

    fn read_position(&self, key: &[u8]) -> Result<Option<Position>, Stop> {
        match self.store.get(key)? {
            None => Ok(None),
            Some(b) => Position::decode(&b)
                .map(Some)
                .ok_or_else(|| Stop::Error(AuditError::State("corrupt position record".into()))),
        }
    }

    /// Before unverified changes overwrite state, the values they replace are kept under
    /// `u/<key>` (once: the oldest, verified, value wins), so a failed run can be undone.
    fn undo_records(&self, replay: &Replayer) -> Result<Vec<(Vec<u8>, Option<Vec<u8>>)>, Stop> {
        let mut out = Vec::new();
        // Before anything was ever verified, undoing means wiping: no records needed.
        if self.store.get(KEY_VERIFIED)?.is_none() {
            return Ok(out);
        }
        for k in replay.pending_keys() {
            let mut u = b"u/".to_vec();
            u.extend_from_slice(&k);
            if self.store.get(&u)?.is_none() {
                let old = self.store.get(&k)?;
                out.push((
                    u,
                    Some(serde_json::to_vec(&old.map(hex::encode)).unwrap_or_default()),
                ));
            }
        }
        Ok(out)
    }

    /// Undoes every change since the last verified position (all of them, if nothing was
    /// ever verified), a page at a time.
    fn restore(&self) -> Result<(), AuditError> {
        let verified = self.store.get(KEY_VERIFIED)?;
        let prefix: &[u8] = if verified.is_some() { b"u/" } else { b"" };
        loop {
            let page = self.store.scan_page(prefix, None, 10_000)?;
            if page.is_empty() {
                break;
            }
            let mut state = Vec::with_capacity(page.len() * 2);
            for (u, v) in page {
                if verified.is_some() {
                    let old: Option<String> = serde_json::from_slice(&v)
                        .map_err(|_| AuditError::State("corrupt undo record".into()))?;
                    let old = old
                        .map(hex::decode)
                        .transpose()
                        .map_err(|_| AuditError::State("corrupt undo record".into()))?;
                    state.push((u[2..].to_vec(), old));
                }
                state.push((u, None));
            }
            self.store.commit(&crate::store::CommitBatch {
                state,
                ..Default::default()
            })?;
        }
        if let Some(v) = verified {
            self.store.commit(&crate::store::CommitBatch {
                state: vec![(KEY_PROGRESS.to_vec(), Some(v))],
                ..Default::default()
            })?;
        }
        Ok(())
    }

    /// Checks that the tree of `size` served by the source holds the perfect subtrees of the
    /// edge `edge` (a smaller tree already verified): read from the source's hash tiles, each
    /// must hash to the same value. Returns what differs, if anything.
    fn edge_mismatch(&self, edge: &Frontier, size: u64) -> Result<Option<String>, Stop> {
        for ((level, index), hash) in edge.nodes_with_ids() {
            let base = level - level % tile::HEIGHT as u8;
            let span = 1u64 << (level - base);
            let lo = index * span; // first hash at level `base`
            let n = lo / tile::WIDTH;
            let count = size >> base;
            let width = (count - n * tile::WIDTH).min(tile::WIDTH) as u16;
            let id = TileId {
                kind: TileKind::Hash(base / tile::HEIGHT as u8),
                index: n,
                width,
            };
            let Some(t) = self.src.tile(&id)? else {
                return Ok(Some(format!("{} is missing", id.path())));
            };
            let start = ((lo % tile::WIDTH) * 32) as usize;
            let end = start + (span * 32) as usize;
            let Some(slice) = t.get(start..end) else {
                return Ok(Some(format!("{} is too short", id.path())));
            };
            let mut f = Frontier::default();
            for c in slice.chunks(32) {
                f.append(c.try_into().unwrap_or([0; 32]));
            }
            if f.root() != hash {
                return Ok(Some(format!(
                    "the subtree at level {level}, index {index} hashes to {} in its tiles, but to {} in the verified tree",
                    b64(&f.root()),
                    b64(&hash)
                )));
            }
        }
        Ok(None)
    }

    /// Checks one entry bundle against its level-0 hash tile, applies its new entries (those
    /// past `frontier`) and appends their leaves; returns how many entries were new.
    #[allow(clippy::too_many_arguments)]
    fn check_bundle(
        &self,
        n: u64,
        size: u64,
        (bundle, tile0, prepared): Fetched,
        checker: &Prechecker,
        replay: &mut Replayer,
        frontier: &mut Frontier,
        hashes: &mut Vec<(NodeId, Hash)>,
    ) -> Result<u64, Stop> {
        let width = tile_width(n, size);
        let path = TileId {
            kind: TileKind::Entries,
            index: n,
            width: width as u16,
        }
        .path();
        let Some(bundle) = bundle else {
            return fail(
                Some(n * tile::WIDTH),
                "entry-bundle",
                format!("{path} is missing from {}", self.src.name()),
            );
        };
        let Some(entries) = tile::split_bundle(&bundle) else {
            return fail(
                Some(n * tile::WIDTH),
                "entry-bundle",
                format!("{path} is not a sequence of length-prefixed entries"),
            );
        };
        if entries.len() as u64 != width {
            return fail(
                Some(n * tile::WIDTH),
                "entry-bundle",
                format!("{path}: expected {width} entries, found {}", entries.len()),
            );
        }
        let skip = (frontier.size() - n * tile::WIDTH) as usize;
        if skip > 0 {
            // The entries verified before, fetched again in this bundle, must not
            // have changed.
            let before =
                self.store
                    .hash_range(0, n * tile::WIDTH, n * tile::WIDTH + skip as u64)?;
            if let Some(i) = entries[..skip]
                .iter()
                .zip(&before)
                .position(|(e, h)| merkle::leaf_hash(e) != *h)
            {
                return fail(
                    Some(n * tile::WIDTH + i as u64),
                    "consistency",
                    format!("{path}: this entry differs from the one verified before"),
                );
            }
        }
        let new = &entries[skip..];
        let prepared = match prepared {
            Some(p) if p.len() == new.len() => p,
            _ => checker.run(n * tile::WIDTH + skip as u64, new),
        };
        replay
            .admit(prepared)
            .map_err(|e| Stop::Failed(vec![failure(Some(e.index), &e.rule, e.detail)]))?;
        let mut leaves = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let h = merkle::leaf_hash(e);
            if i >= skip {
                hashes.extend(frontier.append(h));
            }
            leaves.push(h);
        }
        // The level-0 hash tile must hold exactly these leaf hashes.
        let tile_path = TileId {
            kind: TileKind::Hash(0),
            index: n,
            width: width as u16,
        }
        .path();
        match tile0 {
            None => {
                return fail(
                    Some(n * tile::WIDTH),
                    "hash-tile",
                    format!("{tile_path} is missing"),
                )
            }
            Some(t) if t != leaves.concat() => {
                let at = t
                    .chunks(32)
                    .zip(&leaves)
                    .position(|(a, b)| a != b)
                    .unwrap_or(leaves.len().min(t.len() / 32));
                let found = t
                    .chunks(32)
                    .nth(at)
                    .map(|c| note::encode_b64(c))
                    .unwrap_or_else(|| format!("{} bytes", t.len()));
                return fail(
                    Some(n * tile::WIDTH + at as u64),
                    "hash-tile",
                    format!(
                        "{tile_path}: expected leaf hash {}, found {found}",
                        leaves.get(at).map(b64).unwrap_or_default()
                    ),
                );
            }
            Some(_) => {}
        }
        Ok(new.len() as u64)
    }

    /// Fetches a step's entry bundles and level-0 hash tiles, and pre-checks the entries of
    /// each bundle that splits (those after `start`, the first not verified before), on all
    /// cores. What does not split is reported when the step is checked, in order.
    /// Pre-checks the new entries of a step's downloaded bundles, on all cores.
    fn precheck_step(
        &self,
        ids: &[u64],
        downloaded: Vec<Download>,
        start: u64,
        checker: &Prechecker,
        declared: &mut Declared,
    ) -> Vec<Fetched> {
        use rayon::prelude::*;
        // Read every entry in parallel, learn in log order the keys they declare, then check
        // the signatures in parallel against those keys too.
        let read: Vec<Option<(u64, Vec<Read>)>> = ids
            .par_iter()
            .zip(&downloaded)
            .map(|(n, (bundle, _))| {
                let entries = tile::split_bundle(bundle.as_ref()?)?;
                let first = n * tile::WIDTH;
                let skip = (start.saturating_sub(first) as usize).min(entries.len());
                let first = first + skip as u64;
                Some((first, checker.read(first, &entries[skip..])))
            })
            .collect();
        for (_, r) in read.iter().flatten() {
            checker.learn(declared, r);
        }
        let declared = &*declared;
        let prepared: Vec<Option<Vec<Prepared>>> = read
            .into_par_iter()
            .map(|r| r.map(|(first, r)| checker.check(first, r, declared)))
            .collect();
        downloaded
            .into_iter()
            .zip(prepared)
            .map(|((b, t), p)| (b, t, p))
            .collect()
    }

    /// Downloads a step's entry bundles and their level-0 hash tiles.
    fn fetch(&self, ids: &[u64], size: u64) -> Result<Vec<Download>, Stop> {
        let jobs: Vec<(usize, TileId)> = ids
            .iter()
            .enumerate()
            .flat_map(|(i, n)| {
                let width = tile_width(*n, size) as u16;
                [
                    (
                        i,
                        TileId {
                            kind: TileKind::Entries,
                            index: *n,
                            width,
                        },
                    ),
                    (
                        i,
                        TileId {
                            kind: TileKind::Hash(0),
                            index: *n,
                            width,
                        },
                    ),
                ]
            })
            .collect();
        let results: Vec<Result<Option<Vec<u8>>, SourceError>> =
            parallel_map(&jobs, self.opts.parallel, |(_, id)| self.src.tile(id));
        let mut out = vec![(None, None); ids.len()];
        for ((i, id), r) in jobs.iter().zip(results) {
            let r = r?;
            match id.kind {
                TileKind::Entries => out[*i].0 = r,
                TileKind::Hash(_) => out[*i].1 = r,
            }
        }
        Ok(out)
    }

    /// Hash tiles above level 0 that cover new hashes must match the auditor's own.
    fn check_upper_tiles(&self, start: u64, size: u64) -> Result<(), Stop> {
        for level in 1..=tile::MAX_LEVEL {
            let shift = u32::from(level) * tile::HEIGHT;
            let count = size >> shift;
            if count == 0 {
                break;
            }
            let first_tile = (start >> shift) / tile::WIDTH;
            let last_tile = (count - 1) / tile::WIDTH;
            let ids: Vec<TileId> = (first_tile..=last_tile)
                .map(|n| TileId {
                    kind: TileKind::Hash(level),
                    index: n,
                    width: (count - n * tile::WIDTH).min(tile::WIDTH) as u16,
                })
                .collect();
            let fetched = parallel_map(&ids, self.opts.parallel, |id| self.src.tile(id));
            for (id, got) in ids.iter().zip(fetched) {
                let got = got?;
                let lo = id.index * tile::WIDTH;
                let ours = self
                    .store
                    .hash_range(level * tile::HEIGHT as u8, lo, lo + u64::from(id.width))?
                    .concat();
                match got {
                    Some(t) if t == ours => {}
                    Some(_) => {
                        return fail(
                            None,
                            "hash-tile",
                            format!(
                                "{} does not match the hashes recomputed from the entries",
                                id.path()
                            ),
                        )
                    }
                    None => return fail(None, "hash-tile", format!("{} is missing", id.path())),
                }
            }
        }
        Ok(())
    }

    /// Recomputes the published counts from the replayed records and compares them with the
    /// log's `/api/v1/stats`, when it answers for the very size just verified.
    fn check_stats(
        &self,
        index: &crate::stats::Index,
        cp: &Checkpoint,
    ) -> Result<Option<bool>, Stop> {
        const QUERIES: [&str; 5] = [
            "",
            "group_by=country,kind",
            "group_by=publisher,period&interval=quarter",
            "group_by=reason,disposition",
            "group_by=process,user_notified,channel&interval=year",
        ];
        for q in QUERIES {
            let Some(published) = self.src.stats(q)? else {
                return Ok(None);
            };
            if published["size"].as_u64() != Some(cp.size) {
                return Ok(None); // the log moved on; the next run compares again
            }
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap_or_default();
            let query = crate::stats::Query::from_params(
                pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())),
            )
            .map_err(|e| Stop::Error(AuditError::State(e)))?;
            let ours = index.query(&query);
            for field in ["rows", "totals", "aggregates", "bands", "sealed"] {
                if ours[field] != published[field] {
                    return fail(
                        None,
                        "stats",
                        format!(
                            "/api/v1/stats?{q} at size {}: {field} recomputed from the entries is {}, the log publishes {}",
                            cp.size, ours[field], published[field]
                        ),
                    );
                }
            }
        }
        Ok(Some(true))
    }

    fn progress_bar(&self, total: u64) -> Option<indicatif::ProgressBar> {
        if !self.opts.progress || total == 0 {
            return None;
        }
        let b = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} entries  {per_sec}  ETA {eta}",
        ) {
            b.set_style(style);
        }
        Some(b)
    }

    fn summary(
        &self,
        replay: &Replayer,
        index: &crate::stats::Index,
        cp: &Checkpoint,
        checked: u64,
    ) -> Result<Summary, StoreError> {
        let (aggregates, bands, seals_open, seals_overdue) = index.report_counts();
        let mut s = Summary {
            origin: cp.origin.clone(),
            size: cp.size,
            root: b64(&cp.root),
            checked,
            aggregates,
            bands,
            seals_open,
            seals_overdue,
            ..Default::default()
        };
        let operator = state::operator_id(&cp.origin);
        for (_, v) in replay.scan(b"p/")? {
            if let Some(p) = state::decode::<PublisherState>(Some(v)) {
                if p.id != operator {
                    s.publishers += 1;
                    if p.status == Status::Revoked {
                        s.revoked_publishers += 1;
                    }
                }
            }
        }
        let by_kind = index.query(&crate::stats::Query {
            group_by: vec!["kind".into()],
            ..Default::default()
        });
        for row in by_kind["rows"].as_array().into_iter().flatten() {
            let kind = row["key"]["kind"].as_str().unwrap_or("").to_string();
            *s.requests_by_kind.entry(kind).or_default() += row["requests"].as_u64().unwrap_or(0);
        }
        Ok(s)
    }

    /// Where the counts of the last verified run are kept.
    fn index_path(&self) -> Option<PathBuf> {
        self.opts.state.as_ref().map(|d| d.join("stats-index.json"))
    }

    /// What a snapshot of the counts is tagged with: the tree it was taken at.
    fn index_tag(&self, at: &Frontier) -> String {
        format!("{} {} {}", self.key, at.size(), b64(&at.root()))
    }

    /// The counts of the replayed state at `at`: the last verified run's snapshot if it was
    /// taken there (then also `true`), otherwise rebuilt from the stored records.
    fn load_index(&self, at: &Frontier) -> Result<(crate::stats::Index, bool), Stop> {
        let tag = self.index_tag(at);
        if let Some(bytes) = self.index_path().and_then(|p| std::fs::read(p).ok()) {
            if let Some(index) = crate::stats::Index::from_snapshot(&bytes, &tag) {
                return Ok((index, true));
            }
        }
        Ok((crate::stats::from_store(self.store.as_ref())?, false))
    }

    /// Keeps the counts for the next run (written whole, then renamed into place). Only a
    /// cache: if it cannot be written, the next run rebuilds the counts from the records.
    fn save_index(&self, index: &crate::stats::Index, at: &Frontier) {
        let Some(path) = self.index_path() else {
            return;
        };
        let tmp = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, &index.to_snapshot(&self.index_tag(at)))?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::warn!(error = %e, path = %path.display(), "could not keep the counts for the next audit");
        }
    }
}

/// An entry bundle and its level-0 hash tile, each None where the source has none.
type Download = (Option<Vec<u8>>, Option<Vec<u8>>);

/// A download and, if the bundle splits, its new entries pre-checked.
type Fetched = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<Prepared>>);

/// The width of entry bundle / level-0 tile `n` in a tree of `size`.
fn tile_width(n: u64, size: u64) -> u64 {
    (size - n * tile::WIDTH).min(tile::WIDTH)
}

/// Maps `f` over `items` with up to `workers` threads, keeping the order.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let workers = workers.max(1).min(items.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                if let Ok(mut slot) = results[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .filter_map(|m| m.into_inner().ok().flatten())
        .collect()
}
