//! `candor export` and `candor import`: backups as static C2SP tlog-tiles trees.

use crate::audit::source;
use crate::keyfile;
use crate::log::Log;
use crate::mirror;
use crate::store::sled_store::SledStore;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Directory to write the tree into (checkpoint, tile/…); existing full tiles are kept,
    /// so exporting again into the same directory is incremental.
    pub dir: PathBuf,
    /// Back up a running server over HTTP (consistent: a signed tree's tiles never change).
    #[arg(long, conflicts_with = "data")]
    pub server: Option<String>,
    /// Or read a stopped server's data directory.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The log's verifier key (text or file): the checkpoint must verify under it.
    #[arg(long, default_value = "keys/log.vkey")]
    pub log_key: String,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// A static tree written by `candor export` (or any C2SP tlog-tiles mirror of the log).
    pub dir: PathBuf,
    /// The empty data directory to rebuild.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// The log's verifier key (text or file).
    #[arg(long, default_value = "keys/log.vkey")]
    pub log_key: String,
}

pub fn export(a: ExportArgs) -> anyhow::Result<i32> {
    let key = keyfile::read_verifier(&a.log_key)?;
    let src: Box<dyn source::Source> = match (a.server, a.data) {
        (_, Some(data)) => {
            let store = SledStore::open(&data).map_err(|e| {
                anyhow::anyhow!(
                    "{e} (is the server still running? use --server to back it up online)"
                )
            })?;
            let opened = Log::open(Arc::new(store), key.clone())?;
            Box::new(source::Local(opened.log))
        }
        (server, None) => Box::new(source::Http::new(
            &server.unwrap_or_else(|| "http://127.0.0.1:8080".into()),
        )),
    };
    let cp = mirror::export(src.as_ref(), &a.dir, Some(&key))?;
    println!(
        "exported {} at size {} into {}",
        cp.origin,
        cp.size,
        a.dir.display()
    );
    Ok(0)
}

pub fn import(a: ImportArgs) -> anyhow::Result<i32> {
    let key = keyfile::read_verifier(&a.log_key)?;
    let cp = mirror::import(&a.dir, &a.data, &key)?;
    println!(
        "imported {} at size {} into {}",
        cp.origin,
        cp.size,
        a.data.display()
    );
    Ok(0)
}
