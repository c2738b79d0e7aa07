//! What the publisher and operator commands share: talking to a log, keeping a chain, signing,
//! and checking and keeping receipts.

use crate::keyfile;
use crate::note::{SecretKey, VerifierKey};
use crate::receipt::Receipt;
use crate::statement;
use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Options every command that posts statements takes.
#[derive(clap::Args, Clone)]
pub struct Conn {
    /// The log's base URL.
    #[arg(long, env = "CANDOR_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The log's verifier key (text or file) that receipts must verify under. Default:
    /// keys/log.vkey if present.
    #[arg(long, env = "CANDOR_LOG_KEY")]
    pub log_key: Option<String>,
    /// Where to keep receipts (one JSON file per statement, named by entry index).
    #[arg(long, env = "CANDOR_RECEIPTS", default_value = "receipts")]
    pub receipts: PathBuf,
}

/// Errors that mean "usage or network" (exit 2) versus "verification failed" (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct VerificationFailed(pub String);

impl Conn {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.trim_end_matches('/'))
    }

    pub fn get_text(&self, path: &str) -> anyhow::Result<String> {
        match ureq::get(&self.url(path)).call() {
            Ok(r) => Ok(r.into_string()?),
            Err(ureq::Error::Status(code, r)) => bail!(
                "GET {path}: {code}: {}",
                r.into_string().unwrap_or_default()
            ),
            Err(e) => Err(anyhow!("GET {path}: {e}")),
        }
    }

    pub fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&self.get_text(path)?)?)
    }

    /// The pinned log key.
    pub fn log_key(&self) -> anyhow::Result<VerifierKey> {
        let text = match &self.log_key {
            Some(t) => t.clone(),
            None if std::path::Path::new("keys/log.vkey").exists() => "keys/log.vkey".into(),
            None => bail!(
                "--log-key is required: the log's verifier key (text or file), to check receipts"
            ),
        };
        Ok(keyfile::read_verifier(&text)?)
    }

    /// The publisher's chain head, from the log: (seq, prev).
    pub fn head(&self, publisher: &str, operator: bool) -> anyhow::Result<(u64, Option<String>)> {
        let path = if operator {
            "/api/v1/operator".to_string()
        } else {
            format!("/api/v1/publishers/{publisher}")
        };
        let p = self
            .get_json(&path)
            .with_context(|| format!("looking up {publisher}"))?;
        let seq = p["head"]["seq"]
            .as_u64()
            .ok_or_else(|| anyhow!("the log gave no head for {publisher}"))?;
        Ok((seq, p["head"]["hash"].as_str().map(str::to_string)))
    }

    /// Builds the statement for `publisher`'s next position, signs it, posts it, checks the
    /// receipt against the pinned log key and keeps it. Returns (statement id, receipt).
    pub fn publish(
        &self,
        publisher: &str,
        ty: &str,
        fields: Value,
        signers: &[&SecretKey],
    ) -> anyhow::Result<(String, Receipt)> {
        let log_key = self.log_key()?;
        let origin = log_key.name.clone();
        let operator = publisher == statement::state::operator_id(&origin);
        let (seq, prev) = self.head(publisher, operator)?;
        let mut chain = statement::chain::Chain::new(&origin, publisher, seq, prev);
        let (note, id) = chain.sign_next(ty, fields, signers)?;
        let receipt = self.post(&note)?;
        receipt
            .verify(&log_key, Some(&note))
            .map_err(|e| VerificationFailed(format!("the log's receipt does not verify: {e}")))?;
        std::fs::create_dir_all(&self.receipts)?;
        let path = self.receipts.join(format!("{}.json", receipt.index));
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&json!({"statement": note, "receipt": receipt}))?,
        )?;
        eprintln!(
            "logged {ty} {id} at index {} (receipt verified, kept in {})",
            receipt.index,
            path.display()
        );
        Ok((id, receipt))
    }

    pub fn post(&self, note: &str) -> anyhow::Result<Receipt> {
        match ureq::post(&self.url("/api/v1/statements"))
            .set("content-type", "text/plain")
            .send_string(note)
        {
            Ok(r) => Ok(r.into_json()?),
            Err(ureq::Error::Status(code, r)) => {
                let body: Value = r.into_json().unwrap_or(Value::Null);
                let pointer = body["pointer"]
                    .as_str()
                    .map(|p| format!(" (at {p})"))
                    .unwrap_or_default();
                bail!(
                    "the log refused the statement ({code} {}): {}{pointer}",
                    body["title"].as_str().unwrap_or(""),
                    body["detail"].as_str().unwrap_or("")
                )
            }
            Err(e) => bail!("could not reach the log: {e}"),
        }
    }
}

/// Reads a secret key file.
pub fn secret(path: &PathBuf) -> anyhow::Result<SecretKey> {
    Ok(keyfile::read_secret(path)?)
}

/// Reads a JSON object from a file (or `-` for standard input).
pub fn read_json(path: &str) -> anyhow::Result<Value> {
    let text = if path == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?
    };
    let v: Value = serde_json::from_str(&text).with_context(|| format!("{path} is not JSON"))?;
    if !v.is_object() {
        bail!("{path} must hold a JSON object");
    }
    Ok(v)
}
