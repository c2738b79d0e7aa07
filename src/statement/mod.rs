//! Statements: what publishers sign and the log records (spec section 3).
//!
//! The checks run in the order of spec section 5, the first failure deciding:
//! size and form here ([`parse`]), then — in [`verify`], before the sequencer and in
//! parallel — signatures against the keys known so far and the JSON Schemas, then — in
//! [`rules`], inside the sequencer, in log order — duplicates, authority under the keys in
//! force at that position, the content rules that need the log's state, and the chain order.
//!
//! Nothing here does I/O: the state is read and written through the sequencer's
//! [`crate::sequencer::StateView`].

pub mod chain;
pub mod json;
pub mod record;
pub mod replay;
pub mod rules;
pub mod schema;
pub mod seal;
pub mod state;
pub mod verify;

use crate::merkle::Hash;
use crate::note::{self, SignatureLine};
use crate::problem::Problem;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Largest note (spec section 3).
pub const MAX_NOTE_BYTES: usize = 30_000;

/// The twelve statement types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    Genesis,
    Register,
    Revoke,
    Rotate,
    Recover,
    Request,
    Update,
    Seal,
    Extend,
    Reveal,
    Aggregate,
    Band,
}

impl Type {
    pub const ALL: [Type; 12] = [
        Type::Genesis,
        Type::Register,
        Type::Revoke,
        Type::Rotate,
        Type::Recover,
        Type::Request,
        Type::Update,
        Type::Seal,
        Type::Extend,
        Type::Reveal,
        Type::Aggregate,
        Type::Band,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Type::Genesis => "genesis",
            Type::Register => "register",
            Type::Revoke => "revoke",
            Type::Rotate => "rotate",
            Type::Recover => "recover",
            Type::Request => "request",
            Type::Update => "update",
            Type::Seal => "seal",
            Type::Extend => "extend",
            Type::Reveal => "reveal",
            Type::Aggregate => "aggregate",
            Type::Band => "band",
        }
    }

    pub fn from_name(s: &str) -> Option<Type> {
        Type::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Types only the operator signs.
    pub fn operator_only(self) -> bool {
        matches!(self, Type::Register | Type::Revoke)
    }

    /// Types that record or manage demands: a publisher's, never the operator's.
    pub fn publisher_only(self) -> bool {
        matches!(
            self,
            Type::Request
                | Type::Update
                | Type::Seal
                | Type::Extend
                | Type::Reveal
                | Type::Aggregate
                | Type::Band
        )
    }
}

/// A statement that passed the form checks (spec section 5, step 2).
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The note exactly as received.
    pub note: String,
    /// SHA-256 of the whole note: same bytes, same statement (duplicate detection).
    pub note_hash: Hash,
    /// The statement hash: SHA-256 of the text line and its newline (what `prev` chains).
    pub hash: Hash,
    /// The JSON object, as read: nothing changes it afterwards.
    pub body: Map<String, Value>,
    pub signatures: Vec<SignatureLine>,
    /// The `type` field, read once: every stage asks for it, and by the time the later ones
    /// do, the body is no longer in the processor's caches.
    kind: Option<Type>,
}

impl Parsed {
    pub fn text(&self) -> &str {
        let end = self.note.find('\n').map_or(0, |i| i + 1);
        &self.note[..end]
    }

    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }

    pub fn u64_field(&self, name: &str) -> Option<u64> {
        self.body.get(name).and_then(Value::as_u64)
    }

    pub fn statement_type(&self) -> Option<Type> {
        self.kind
    }

    pub fn publisher(&self) -> Option<&str> {
        self.str_field("publisher")
    }

    pub fn id(&self) -> Option<&str> {
        self.str_field("id")
    }
}

pub fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// The hashes of a note's text and of the whole note, which begins with it: one pass over
/// the text serves both.
fn prefix_and_whole_hash(text: &[u8], whole: &[u8]) -> (Hash, Hash) {
    let Some(rest) = whole.strip_prefix(text) else {
        return (sha256(text), sha256(whole));
    };
    let mut h = Sha256::new();
    h.update(text);
    let of_text = h.clone().finalize().into();
    h.update(rest);
    (of_text, h.finalize().into())
}

/// Fields that hold lowercase hex or UUIDs: writing them in uppercase is a form error (400),
/// not a content error, so that one statement has one spelling.
const LOWERCASE_FIELDS: [&str; 6] = ["prev", "id", "of", "commitment", "salt", "document_sha256"];

/// The form checks: UTF-8, note syntax, canonical base64, one JSON line, the lexical rules.
/// The size limit (413) is the caller's, as it applies before reading the body.
pub fn parse(bytes: &[u8]) -> Result<Parsed, Problem> {
    if bytes.len() > MAX_NOTE_BYTES {
        return Err(Problem::too_large(format!(
            "the note is {} bytes; a statement note may be at most {MAX_NOTE_BYTES} bytes",
            bytes.len()
        )));
    }
    let s = std::str::from_utf8(bytes)
        .map_err(|e| Problem::form(format!("the note is not valid UTF-8 ({e})")))?;
    let n = note::parse(s).map_err(|e| Problem::form(format!("{e}; a statement is one line of JSON, a blank line, then its signature lines '\u{2014} <key name> <base64>'")))?;
    let text = n.text;
    let line = text.strip_suffix('\n').unwrap_or(text);
    if line.contains('\n') {
        return Err(Problem::form(
            "the statement text must be exactly one line of JSON followed by one newline",
        ));
    }
    let value = json::parse(line).map_err(|e| {
        let mut p = Problem::form(format!("statement JSON: {}", e.detail));
        if !e.pointer.is_empty() {
            p = p.at(e.pointer);
        }
        p
    })?;
    let Value::Object(body) = value else {
        return Err(Problem::form("the statement text must be a JSON object"));
    };
    for field in LOWERCASE_FIELDS {
        if let Some(Value::String(v)) = body.get(field) {
            if v.bytes().any(|b| b.is_ascii_uppercase())
                && v.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
            {
                return Err(
                    Problem::form(format!("{field} must be written in lowercase"))
                        .at(format!("/{field}")),
                );
            }
        }
    }
    let (hash, note_hash) = prefix_and_whole_hash(text.as_bytes(), bytes);
    let kind = body
        .get("type")
        .and_then(Value::as_str)
        .and_then(Type::from_name);
    Ok(Parsed {
        note: s.to_string(),
        note_hash,
        hash,
        body,
        signatures: n.signatures,
        kind,
    })
}

/// Formats a statement text: the JSON object on one line and its newline. serde_json writes
/// no whitespace and escapes only what JSON requires, which the strict parser reads back.
pub fn text_of(body: &Value) -> String {
    let mut s = serde_json::to_string(body).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_errors_are_400() {
        let k = note::SecretKey::generate("acme.example").unwrap(); // ok: test
        let good = note::sign("{\"a\":1}\n", &[&k]).unwrap(); // ok: test
        assert!(parse(good.as_bytes()).is_ok());
        for bad in [
            note::sign("{\"a\":1}\n{\"b\":2}\n", &[&k]).unwrap(), // ok: test
            note::sign("{\"a\":1,\"a\":1}\n", &[&k]).unwrap(),    // ok: test
            note::sign("[1]\n", &[&k]).unwrap(),                  // ok: test
            note::sign("{\"id\":\"0190A3B4-0000-7000-8000-000000000000\"}\n", &[&k]).unwrap(), // ok: test
            "{\"a\":1}\n".to_string(),
        ] {
            assert_eq!(parse(bad.as_bytes()).unwrap_err().status, 400, "{bad}");
        }
        assert_eq!(parse(&[0xff, b'\n']).unwrap_err().status, 400);
        assert_eq!(parse(&vec![b'a'; 30_001]).unwrap_err().status, 413);
    }

    #[test]
    fn both_hashes_are_plain_sha256() {
        let k = note::SecretKey::generate("acme.example").unwrap(); // ok: test
        let text = "{\"a\":\"a long enough value to fill more than one block of SHA-256\"}\n";
        let signed = note::sign(text, &[&k]).unwrap(); // ok: test
        let p = parse(signed.as_bytes()).unwrap(); // ok: test
        assert_eq!(p.hash, <[u8; 32]>::from(Sha256::digest(text.as_bytes())));
        assert_eq!(
            p.note_hash,
            <[u8; 32]>::from(Sha256::digest(signed.as_bytes()))
        );
        let (a, b) = prefix_and_whole_hash(b"other", b"not a prefix");
        assert_eq!((a, b), (sha256(b"other"), sha256(b"not a prefix")));
    }
}
