//! Receipts: what a publisher gets back for a logged statement, enough to prove offline,
//! with only the log's verifier key, that the statement is in the log.

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::entry;
use crate::merkle::{self, Hash};
use crate::note::{self, VerifierKey};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub index: u64,
    /// Base64 leaf hash of the entry.
    pub leaf_hash: String,
    pub logged_at: String,
    /// The signed checkpoint the proof leads to.
    pub checkpoint: String,
    /// Base64 hashes, leaf sibling first.
    pub inclusion_proof: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("malformed receipt: {0}")]
    Malformed(String),
    #[error("the receipt is not for this statement: {0}")]
    WrongStatement(String),
    #[error("the inclusion proof does not verify: {0}")]
    Proof(#[from] merkle::ProofError),
}

fn b64_hash(s: &str) -> Result<Hash, ReceiptError> {
    note::decode_b64(s)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ReceiptError::Malformed(format!("{s:?} is not a base64 SHA-256 hash")))
}

impl Receipt {
    /// Checks the receipt: the checkpoint is signed by the log key, and the leaf is included
    /// in it at `index`. With `statement`, also checks that the leaf is that very note logged
    /// at that index and time. Returns the verified checkpoint.
    pub fn verify(
        &self,
        log_key: &VerifierKey,
        statement: Option<&str>,
    ) -> Result<Checkpoint, ReceiptError> {
        let cp = Checkpoint::verify(&self.checkpoint, log_key)?;
        let leaf = b64_hash(&self.leaf_hash)?;
        if let Some(note) = statement {
            let at = entry::parse_instant(&self.logged_at).ok_or_else(|| {
                ReceiptError::Malformed("logged_at is not YYYY-MM-DDThh:mm:ss.sssZ".into())
            })?;
            let expected = merkle::leaf_hash(&entry::encode(self.index, at, note));
            if expected != leaf {
                return Err(ReceiptError::WrongStatement(format!(
                    "the entry for this statement at index {} and {} has leaf hash {}, not {}",
                    self.index,
                    self.logged_at,
                    note::encode_b64(&expected),
                    self.leaf_hash
                )));
            }
        }
        let proof = self
            .inclusion_proof
            .iter()
            .map(|h| b64_hash(h))
            .collect::<Result<Vec<_>, _>>()?;
        merkle::verify_inclusion(self.index, cp.size, &leaf, &proof, &cp.root)?;
        Ok(cp)
    }
}
