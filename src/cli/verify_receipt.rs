//! `candor verify-receipt`: check offline that a receipt proves a statement is in the log,
//! and optionally that the log still contains it today.

use super::client::VerificationFailed;
use crate::checkpoint::Checkpoint;
use crate::keyfile;
use crate::merkle;
use crate::note;
use crate::receipt::Receipt;
use anyhow::{anyhow, Context};
use serde_json::Value;

#[derive(clap::Args)]
pub struct Args {
    /// The receipt: a JSON file as `candor submit` keeps it ({"statement", "receipt"}) or a
    /// bare receipt.
    pub receipt: String,
    /// The log's verifier key (text or file).
    #[arg(long)]
    pub log_key: String,
    /// The signed statement the receipt is for (default: the one kept with the receipt).
    #[arg(long)]
    pub statement: Option<String>,
    /// Also fetch the log's current checkpoint and a consistency proof from this server.
    #[arg(long)]
    pub server: Option<String>,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let key = keyfile::read_verifier(&a.log_key)?;
    let v: Value = serde_json::from_slice(
        &std::fs::read(&a.receipt).with_context(|| format!("reading {}", a.receipt))?,
    )?;
    let (receipt_v, kept) = match v.get("receipt") {
        Some(r) => (r.clone(), v["statement"].as_str().map(str::to_string)),
        None => (v, None),
    };
    let receipt: Receipt = serde_json::from_value(receipt_v).context("not a receipt")?;
    let statement = match a.statement {
        Some(p) => Some(std::fs::read_to_string(&p).with_context(|| format!("reading {p}"))?),
        None => kept,
    };
    let cp = match receipt.verify(&key, statement.as_deref()) {
        Ok(cp) => cp,
        Err(e) => {
            println!("FAILED: {e}");
            return Ok(1);
        }
    };
    println!(
        "OK: entry {} is in {} at tree size {}{}",
        receipt.index,
        cp.origin,
        cp.size,
        if statement.is_some() {
            " (statement bytes checked)"
        } else {
            ""
        }
    );
    if let Some(server) = a.server {
        match still_there(&server, &key, &cp) {
            Ok(now) => {
                println!("OK: the log at size {now} is consistent with the receipt's checkpoint")
            }
            Err(e) if e.downcast_ref::<VerificationFailed>().is_some() => {
                println!("FAILED: {e}");
                return Ok(1);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(0)
}

fn still_there(server: &str, key: &note::VerifierKey, old: &Checkpoint) -> anyhow::Result<u64> {
    let base = server.trim_end_matches('/');
    let text = ureq::get(&format!("{base}/checkpoint"))
        .call()
        .map_err(|e| anyhow!("fetching the checkpoint: {e}"))?
        .into_string()?;
    let now = Checkpoint::verify(&text, key)
        .map_err(|e| VerificationFailed(format!("the log's current checkpoint: {e}")))?;
    if now.size < old.size {
        return Err(VerificationFailed(format!(
            "the log shrank from {} to {}",
            old.size, now.size
        ))
        .into());
    }
    let proof: Value = ureq::get(&format!(
        "{base}/api/v1/proof/consistency?from={}&to={}",
        old.size, now.size
    ))
    .call()
    .map_err(|e| anyhow!("fetching the consistency proof: {e}"))?
    .into_json()?;
    let hashes = proof["hashes"]
        .as_array()
        .ok_or_else(|| anyhow!("malformed consistency proof"))?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(note::decode_b64)
                .and_then(|b| b.try_into().ok())
        })
        .collect::<Option<Vec<merkle::Hash>>>()
        .ok_or_else(|| anyhow!("malformed consistency proof"))?;
    merkle::verify_consistency(old.size, now.size, &old.root, &now.root, &hashes).map_err(|e| {
        VerificationFailed(format!(
            "the log is not consistent with the receipt's checkpoint: {e}"
        ))
    })?;
    Ok(now.size)
}
