//! Writing statements: a publisher's chain position and the signing of its next statement.
//! Used by the command line and the demo; independent clients do the same from the spec.

use crate::note::{self, NoteError, SecretKey};
use serde_json::{json, Value};

/// A publisher's next position in its own hash chain.
#[derive(Debug, Clone)]
pub struct Chain {
    pub origin: String,
    pub publisher: String,
    /// The last logged `seq` (0 before the first statement).
    pub seq: u64,
    /// The last statement's hash, hex (None before the first).
    pub prev: Option<String>,
}

impl Chain {
    pub fn new(origin: &str, publisher: &str, seq: u64, prev: Option<String>) -> Chain {
        Chain {
            origin: origin.into(),
            publisher: publisher.into(),
            seq,
            prev,
        }
    }

    /// Builds and signs the next statement of type `ty` with `fields`, and moves the chain on
    /// (call [`Chain::rewind`] if the log refuses it). Returns the note and the statement id.
    pub fn sign_next(
        &mut self,
        ty: &str,
        fields: Value,
        signers: &[&SecretKey],
    ) -> Result<(String, String), NoteError> {
        let id = uuid::Uuid::now_v7().to_string();
        let mut body = json!({
            "v": 1, "log": self.origin, "publisher": self.publisher, "seq": self.seq + 1,
            "prev": self.prev, "id": id, "type": ty,
        });
        if let Value::Object(f) = fields {
            for (k, v) in f {
                body[k] = v;
            }
        }
        let text = super::text_of(&body);
        let note = note::sign(&text, signers)?;
        self.seq += 1;
        self.prev = Some(hex::encode(super::sha256(text.as_bytes())));
        Ok((note, id))
    }
}
