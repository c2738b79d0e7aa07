//! `candor seal`, `extend`, `reveal`: delayed disclosure of demands under a gag order.
//!
//! `seal` commits now to a request record without showing it; the salt and the exact record
//! text stay on this machine (in `--seals`, mode 0600) until `reveal` publishes them.

use super::client::{read_json, secret, Conn};
use crate::statement::seal::commitment;
use anyhow::{anyhow, Context};
use serde_json::{json, Value};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SealArgs {
    /// The request record to commit to (JSON file, or -).
    pub record: String,
    /// The date by which it is to be disclosed (YYYY-MM-DD).
    #[arg(long)]
    pub disclose_by: String,
    /// Why it cannot be disclosed yet.
    #[arg(long, value_parser = ["non_disclosure_order", "court_seal", "foreign_law", "other"])]
    pub basis: String,
    /// Also state the record's kind publicly now.
    #[arg(long)]
    pub show_kind: bool,
    /// Also state the record's country publicly now.
    #[arg(long)]
    pub show_country: bool,
    #[arg(long)]
    pub key: PathBuf,
    /// Where the salt and record text are kept until the reveal.
    #[arg(long, default_value = "seals")]
    pub seals: PathBuf,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(clap::Args)]
pub struct ExtendArgs {
    /// The seal's id.
    pub of: String,
    #[arg(long)]
    pub disclose_by: String,
    #[arg(long)]
    pub reason: String,
    #[arg(long)]
    pub key: PathBuf,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(clap::Args)]
pub struct RevealArgs {
    /// The seal's id.
    pub of: String,
    #[arg(long)]
    pub key: PathBuf,
    #[arg(long, default_value = "seals")]
    pub seals: PathBuf,
    #[command(flatten)]
    pub conn: Conn,
}

pub fn seal(a: SealArgs) -> anyhow::Result<i32> {
    let key = secret(&a.key)?;
    let record = read_json(&a.record)?;
    let text = serde_json::to_string(&record)?;
    let mut salt = [0u8; 32];
    getrandom::getrandom(&mut salt).map_err(|e| anyhow!("no randomness: {e}"))?;
    let origin = a.conn.log_key()?.name;
    let c = commitment(&origin, &key.name, &salt, &text);
    let mut fields =
        json!({"commitment": hex::encode(c), "disclose_by": a.disclose_by, "basis": a.basis});
    if a.show_kind {
        fields["kind"] = record["kind"].clone();
    }
    if a.show_country {
        fields["country"] = record["country"].clone();
    }
    // Keep the secret part before posting: a seal whose salt is lost can never be opened.
    std::fs::create_dir_all(&a.seals)?;
    let pending = a
        .seals
        .join(format!("pending-{}.json", hex::encode(&c[..8])));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&pending)?;
    f.write_all(&serde_json::to_vec_pretty(
        &json!({"salt": hex::encode(salt), "request": text, "publisher": key.name}),
    )?)?;
    f.sync_all()?;
    let (id, _) = a.conn.publish(&key.name.clone(), "seal", fields, &[&key])?;
    std::fs::rename(&pending, a.seals.join(format!("{id}.json")))?;
    println!("{id}");
    Ok(0)
}

pub fn extend(a: ExtendArgs) -> anyhow::Result<i32> {
    let key = secret(&a.key)?;
    a.conn.publish(
        &key.name.clone(),
        "extend",
        json!({"of": a.of, "disclose_by": a.disclose_by, "reason": a.reason}),
        &[&key],
    )?;
    Ok(0)
}

pub fn reveal(a: RevealArgs) -> anyhow::Result<i32> {
    let key = secret(&a.key)?;
    let path = a.seals.join(format!("{}.json", a.of));
    let kept: Value = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )?;
    let fields = json!({"of": a.of, "salt": kept["salt"], "request": kept["request"]});
    a.conn
        .publish(&key.name.clone(), "reveal", fields, &[&key])?;
    Ok(0)
}
