//! Backup and restore as static C2SP tlog-tiles trees.
//!
//! `export` writes the log at one checkpoint as the files any static web server can serve
//! (`checkpoint`, `tile/<L>/…`, `tile/entries/…`), and that `candor audit` verifies. It reads
//! through a [`Source`], so it backs up a running server over HTTP as consistently as a
//! stopped one: the tiles of a signed tree never change. `import` rebuilds a data directory
//! from such a tree, and refuses one that does not verify.

use crate::audit::{self, source::Source, Outcome};
use crate::checkpoint::Checkpoint;
use crate::merkle::{self, Frontier};
use crate::note::{self, VerifierKey};
use crate::statement::replay::Replayer;
use crate::store::{sled_store::SledStore, CommitBatch, Store};
use crate::tile::{self, TileId, TileKind};
use anyhow::{anyhow, bail, Context};
use std::path::Path;
use std::sync::Arc;

/// Every tile of a tree of `size`: full tiles and the partial one at each level's edge.
pub fn tiles_of(size: u64) -> Vec<TileId> {
    let mut out = Vec::new();
    for (kind, shift) in std::iter::once((TileKind::Entries, 0))
        .chain((0..=tile::MAX_LEVEL).map(|l| (TileKind::Hash(l), u32::from(l) * tile::HEIGHT)))
    {
        let count = if shift >= 64 { 0 } else { size >> shift };
        for n in 0..count.div_ceil(tile::WIDTH) {
            let width = (count - n * tile::WIDTH).min(tile::WIDTH) as u16;
            out.push(TileId {
                kind,
                index: n,
                width,
            });
        }
    }
    out
}

/// Writes the tree at the source's current checkpoint into `dir`. Full tiles already there
/// are kept (they cannot change); the checkpoint is written last. Returns the checkpoint.
pub fn export(
    src: &dyn Source,
    dir: &Path,
    key: Option<&VerifierKey>,
) -> anyhow::Result<Checkpoint> {
    let signed = src.checkpoint()?;
    let cp = match key {
        Some(k) => Checkpoint::verify(&signed, k)?,
        None => {
            let text = note::parse(&signed)?.text;
            Checkpoint::parse_body(text)?
        }
    };
    for id in tiles_of(cp.size) {
        let path = dir.join(id.path());
        if u64::from(id.width) == tile::WIDTH && path.exists() {
            continue;
        }
        let bytes = src
            .tile(&id)?
            .ok_or_else(|| anyhow!("{} is missing from {}", id.path(), src.name()))?;
        write_file(&path, &bytes)?;
    }
    write_file(&dir.join("checkpoint"), signed.as_bytes())?;
    Ok(cp)
}

/// Writes through a temporary file and a rename, fsynced, so a crash leaves no half file.
fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let parent = path
        .parent()
        .ok_or_else(|| anyhow!("bad path {}", path.display()))?;
    std::fs::create_dir_all(parent)?;
    let tmp = path.with_extension("tmp-candor");
    {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Rebuilds a data directory from a static tree in `from`, after verifying it completely.
pub fn import(from: &Path, data: &Path, key: &VerifierKey) -> anyhow::Result<Checkpoint> {
    let src = audit::source::Dir(from.to_path_buf());
    match audit::audit(&src, key, &audit::Options::default())? {
        Outcome::Verified(_) => {}
        Outcome::Failed(f) => {
            let lines: Vec<String> = f.iter().map(|x| x.to_string()).collect();
            bail!(
                "{} does not verify, refusing to import it:\n{}",
                from.display(),
                lines.join("\n")
            );
        }
    }
    let store: Arc<dyn Store> = Arc::new(SledStore::open_with_cache(
        data,
        crate::store::sled_store::REPLAY_CACHE,
    )?);
    if store.checkpoint()?.is_some() || !store.entries(0, 1)?.is_empty() {
        bail!(
            "{} already holds a log; import into an empty data directory",
            data.display()
        );
    }
    let signed = src.checkpoint()?;
    let cp = Checkpoint::verify(&signed, key)?;
    let mut replay = Replayer::resume(key.clone(), store.clone(), 0, 0);
    let mut frontier = Frontier::default();
    for n in 0..cp.size.div_ceil(tile::WIDTH) {
        let width = (cp.size - n * tile::WIDTH).min(tile::WIDTH) as u16;
        let bundle = src
            .tile(&TileId {
                kind: TileKind::Entries,
                index: n,
                width,
            })?
            .ok_or_else(|| anyhow!("bundle {n} vanished"))?;
        let entries =
            tile::split_bundle(&bundle).ok_or_else(|| anyhow!("bundle {n} is malformed"))?;
        replay.apply_all(&entries)?;
        let mut batch = CommitBatch::default();
        for e in entries {
            let index = frontier.size();
            batch.hashes.extend(frontier.append(merkle::leaf_hash(e)));
            batch.entries.push((index, e.to_vec()));
        }
        // Entries, hashes and state first; the checkpoint, which makes them a log, last.
        store.commit(&batch)?;
        replay.flush(vec![], vec![])?;
    }
    if frontier.root() != cp.root {
        bail!("the imported entries do not recompute the checkpoint's root");
    }
    store.commit(&CommitBatch {
        checkpoint: signed,
        ..Default::default()
    })?;
    Ok(cp)
}

/// Writes a static tree holding exactly `entries`, with a checkpoint signed by `log_key`:
/// what a log operator with its key could publish. Used to test that auditors catch a
/// history that is well-formed and signed but breaks the statement rules.
pub fn write_tree(
    dir: &Path,
    entries: &[Vec<u8>],
    log_key: &crate::note::SecretKey,
) -> anyhow::Result<Checkpoint> {
    let store = Arc::new(crate::store::memory::MemStore::default());
    let mut batch = CommitBatch::default();
    let mut f = Frontier::default();
    for (i, e) in entries.iter().enumerate() {
        batch.hashes.extend(f.append(merkle::leaf_hash(e)));
        batch.entries.push((i as u64, e.clone()));
    }
    let cp = Checkpoint {
        origin: log_key.name.clone(),
        size: f.size(),
        root: f.root(),
    };
    batch.checkpoint = cp.sign(log_key)?;
    store.commit(&batch)?;
    let opened = crate::log::Log::open(store, log_key.verifier())?;
    export(&crate::audit::source::Local(opened.log), dir, None)?;
    Ok(cp)
}
