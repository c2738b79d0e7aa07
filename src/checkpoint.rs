//! C2SP tlog-checkpoint bodies (`<origin>\n<size>\n<base64 root>\n`), signed as notes by the
//! log key.

use crate::merkle::Hash;
use crate::note::{self, NoteError, SecretKey, VerifierKey};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint signature: {0}")]
    Note(#[from] NoteError),
    #[error("malformed checkpoint body: {0}")]
    Body(String),
    #[error("checkpoint is for origin {found:?}, expected {expected:?}")]
    WrongOrigin { expected: String, found: String },
}

impl Checkpoint {
    /// The body text that is signed.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            note::encode_b64(&self.root)
        )
    }

    /// The signed note.
    pub fn sign(&self, log_key: &SecretKey) -> Result<String, NoteError> {
        note::sign(&self.body(), &[log_key])
    }

    /// Parses a body. Candor writes no extension lines; others' extension lines are refused
    /// too, since nothing here would know what they mean.
    pub fn parse_body(text: &str) -> Result<Checkpoint, CheckpointError> {
        let bad = |why: &str| CheckpointError::Body(why.to_string());
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("body must end in a newline"))?
            .split('\n')
            .collect();
        if lines.len() != 3 {
            return Err(bad("body must be exactly origin, size and root hash lines"));
        }
        let origin = lines[0];
        if origin.is_empty() {
            return Err(bad("empty origin"));
        }
        let size_s = lines[1];
        if size_s.is_empty()
            || !size_s.bytes().all(|b| b.is_ascii_digit())
            || (size_s.len() > 1 && size_s.starts_with('0'))
        {
            return Err(bad("size must be a decimal integer without leading zeros"));
        }
        let size: u64 = size_s.parse().map_err(|_| bad("size out of range"))?;
        let raw = note::decode_b64(lines[2]).ok_or_else(|| bad("root is not canonical base64"))?;
        let root: Hash = raw
            .try_into()
            .map_err(|_| bad("root hash must be 32 bytes"))?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }

    /// Verifies a signed checkpoint against the log's verifier key (which names the origin)
    /// and parses it. Cosignatures by other keys are ignored, as Go's `note.Open` does.
    pub fn verify(signed: &str, log_key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
        let (text, _) = note::open(signed, std::slice::from_ref(log_key))?;
        let cp = Checkpoint::parse_body(text)?;
        if cp.origin != log_key.name {
            return Err(CheckpointError::WrongOrigin {
                expected: log_key.name.clone(),
                found: cp.origin,
            });
        }
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let k = SecretKey::generate("example.org/log").unwrap();
        let cp = Checkpoint {
            origin: "example.org/log".into(),
            size: 7,
            root: [9; 32],
        };
        let signed = cp.sign(&k).unwrap();
        assert!(signed.starts_with("example.org/log\n7\nCQkJ"));
        assert_eq!(Checkpoint::verify(&signed, &k.verifier()).unwrap(), cp);
        let other = SecretKey::generate("example.org/log").unwrap();
        assert!(Checkpoint::verify(&signed, &other.verifier()).is_err());
        assert!(
            Checkpoint::parse_body("o\n07\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n")
                .is_err()
        );
        assert!(Checkpoint::parse_body(
            "o\n7\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\next\n"
        )
        .is_err());
    }
}
