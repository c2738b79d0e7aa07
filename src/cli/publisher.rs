//! `candor publisher add | revoke | rotate | recover`: the publisher registry, which lives in
//! the log itself.

use super::client::{secret, Conn};
use crate::keyfile;
use crate::statement::state::operator_id;
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Operator: register a publisher. The new signing key co-signs, so a key is only ever
    /// registered by someone who holds it.
    Add {
        /// Publisher id: a lowercase DNS name, e.g. acme.example.
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Transparency page (https://…).
        #[arg(long)]
        url: Option<String>,
        /// The publisher's new signing key (secret key file; it co-signs the registration).
        #[arg(long)]
        key: PathBuf,
        /// The publisher's recovery verifier key (text or .vkey file). Keep its secret offline.
        #[arg(long)]
        recovery: String,
        /// The operator's secret key.
        #[arg(long, default_value = "keys/operator.key")]
        operator_key: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// Operator: revoke a publisher's keys (only its recovery key can reopen it).
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "keys/operator.key")]
        operator_key: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// Publisher: replace the signing key (signed by the current key and the new one).
    Rotate {
        /// Current signing key.
        #[arg(long)]
        key: PathBuf,
        /// New signing key (create it with `candor keygen`).
        #[arg(long)]
        new_key: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// Publisher: replace a lost or stolen signing key with the recovery key; lifts a revocation.
    Recover {
        #[arg(long)]
        recovery_key: PathBuf,
        #[arg(long)]
        new_key: PathBuf,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        conn: Conn,
    },
}

fn operator(conn: &Conn, path: &PathBuf) -> anyhow::Result<(String, crate::note::SecretKey)> {
    let origin = conn.log_key()?.name;
    Ok((operator_id(&origin), secret(path)?))
}

pub fn run(cmd: Cmd) -> anyhow::Result<i32> {
    match cmd {
        Cmd::Add {
            id,
            name,
            url,
            key,
            recovery,
            operator_key,
            conn,
        } => {
            let (op_id, op) = operator(&conn, &operator_key)?;
            let new = secret(&key)?;
            let rec = keyfile::read_verifier(&recovery)?;
            let mut fields = json!({"subject": id, "name": name, "key": new.verifier().to_string(), "recovery_key": rec.to_string()});
            if let Some(u) = url {
                fields["url"] = json!(u);
            }
            conn.publish(&op_id, "register", fields, &[&op, &new])?;
        }
        Cmd::Revoke {
            id,
            reason,
            operator_key,
            conn,
        } => {
            let (op_id, op) = operator(&conn, &operator_key)?;
            conn.publish(
                &op_id,
                "revoke",
                json!({"subject": id, "reason": reason}),
                &[&op],
            )?;
        }
        Cmd::Rotate { key, new_key, conn } => {
            let (cur, new) = (secret(&key)?, secret(&new_key)?);
            conn.publish(
                &cur.name.clone(),
                "rotate",
                json!({"key": new.verifier().to_string()}),
                &[&cur, &new],
            )?;
        }
        Cmd::Recover {
            recovery_key,
            new_key,
            reason,
            conn,
        } => {
            let (rec, new) = (secret(&recovery_key)?, secret(&new_key)?);
            conn.publish(
                &rec.name.clone(),
                "recover",
                json!({"key": new.verifier().to_string(), "reason": reason}),
                &[&rec, &new],
            )?;
        }
    }
    Ok(0)
}
