//! `candor aggregate` and `candor band`: counted reports, for demands a publisher does not
//! itemise and for national-security demands the law allows only in bands.

use super::client::{read_json, secret, Conn};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The report's fields as a JSON file (or -): for aggregate `period`, `country`, `kind`,
    /// optional `service`, `requests`, `targets`, optional `produced`; for band `period`
    /// (half-year), `category`, `requests` and `accounts` as {"min", "max"}.
    pub report: String,
    #[arg(long)]
    pub key: PathBuf,
    #[command(flatten)]
    pub conn: Conn,
}

pub fn run(ty: &str, a: Args) -> anyhow::Result<i32> {
    let key = secret(&a.key)?;
    let fields = read_json(&a.report)?;
    let (id, _) = a.conn.publish(&key.name.clone(), ty, fields, &[&key])?;
    println!("{id}");
    Ok(0)
}
