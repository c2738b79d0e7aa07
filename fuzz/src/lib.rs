//! Fixtures shared by the fuzz targets and by the seed generator (`examples/make_seeds.rs`).
//!
//! Every key here comes from a fixed seed, so the seeds under `seeds/` are reproducible
//! (Ed25519 signatures are deterministic) and the signatures in them verify under the keys
//! the targets use.

use candor::note::{SecretKey, VerifierKey};
use candor::problem::Head;
use candor::statement::state::{KeyPeriod, PublisherState, Role, Status};
use candor::statement::verify::KeyLookup;
use candor::store::StoreError;
use ed25519_dalek::SigningKey;
use std::sync::OnceLock;

/// The log the statements are addressed to.
pub const ORIGIN: &str = "fuzz.example/log";
/// The one publisher registered in the in-memory key lookup.
pub const PUBLISHER: &str = "acme.example";
/// The name of the key `note_parse` opens notes with.
pub const NOTE_KEY_NAME: &str = "fuzz.example/note";

/// A secret key from a fixed 32-byte seed (every byte `seed`).
pub fn fixed_key(name: &str, seed: u8) -> SecretKey {
    SecretKey::from_signing_key(name, SigningKey::from_bytes(&[seed; 32]))
}

pub fn log_key() -> SecretKey {
    fixed_key(ORIGIN, 1)
}

pub fn publisher_key() -> SecretKey {
    fixed_key(PUBLISHER, 2)
}

pub fn publisher_recovery_key() -> SecretKey {
    fixed_key(PUBLISHER, 3)
}

pub fn operator_key() -> SecretKey {
    fixed_key(&format!("{ORIGIN}/operator"), 4)
}

pub fn note_key() -> SecretKey {
    fixed_key(NOTE_KEY_NAME, 5)
}

/// A key that is known to `note_parse` under the same name as [`note_key`] but a different
/// key id, so that "known name, unknown id" is exercised too.
pub fn note_key_other() -> SecretKey {
    fixed_key(NOTE_KEY_NAME, 6)
}

/// An in-memory [`KeyLookup`] holding exactly one registered publisher, with a signing and a
/// recovery key (as a `register` statement leaves it).
pub struct MemKeys {
    pub publisher: PublisherState,
}

impl MemKeys {
    pub fn new() -> MemKeys {
        MemKeys {
            publisher: PublisherState {
                id: PUBLISHER.to_string(),
                name: "Acme Inc.".to_string(),
                url: Some("https://acme.example/transparency".to_string()),
                status: Status::Active,
                keys: vec![
                    KeyPeriod {
                        vkey: publisher_key().verifier().to_string(),
                        role: Role::Signing,
                        from: 2,
                        until: None,
                    },
                    KeyPeriod {
                        vkey: publisher_recovery_key().verifier().to_string(),
                        role: Role::Recovery,
                        from: 2,
                        until: None,
                    },
                ],
                head: Head { seq: 0, hash: None },
                registered_at: 1,
            },
        }
    }
}

impl Default for MemKeys {
    fn default() -> Self {
        MemKeys::new()
    }
}

impl KeyLookup for MemKeys {
    fn publisher(&self, id: &str) -> Result<Option<PublisherState>, StoreError> {
        Ok((id == self.publisher.id).then(|| self.publisher.clone()))
    }
}

/// What the targets need, built once per process (key derivation is not what is fuzzed).
pub struct Fixtures {
    pub keys: MemKeys,
    pub log_vkey: VerifierKey,
    pub note_known: Vec<VerifierKey>,
}

pub fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| Fixtures {
        keys: MemKeys::new(),
        log_vkey: log_key().verifier(),
        note_known: vec![note_key().verifier(), note_key_other().verifier()],
    })
}
