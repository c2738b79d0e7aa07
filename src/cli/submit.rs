//! `candor submit` and `candor update`: record a demand, or correct and advance one.

use super::client::{read_json, secret, Conn};
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SubmitArgs {
    /// The request record (spec 3.2) as a JSON file, or - for standard input.
    pub record: String,
    /// The publisher's signing key; its name is the publisher id.
    #[arg(long)]
    pub key: PathBuf,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(clap::Args)]
pub struct UpdateArgs {
    /// The id of the request, revealed seal or aggregate to update.
    pub of: String,
    /// The RFC 7396 merge patch, as a JSON file or - for standard input.
    pub patch: String,
    #[arg(long)]
    pub key: PathBuf,
    #[command(flatten)]
    pub conn: Conn,
}

pub fn submit(a: SubmitArgs) -> anyhow::Result<i32> {
    let key = secret(&a.key)?;
    let record = read_json(&a.record)?;
    let (id, _) = a
        .conn
        .publish(&key.name.clone(), "request", record, &[&key])?;
    println!("{id}");
    Ok(0)
}

pub fn update(a: UpdateArgs) -> anyhow::Result<i32> {
    let key = secret(&a.key)?;
    let patch = read_json(&a.patch)?;
    let (id, _) = a.conn.publish(
        &key.name.clone(),
        "update",
        json!({"of": a.of, "patch": patch}),
        &[&key],
    )?;
    println!("{id}");
    Ok(0)
}
