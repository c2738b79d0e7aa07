//! Seal commitments (spec 3.1): SHA-256(`candor-seal-v1\n` ‖ origin ‖ `\n` ‖ publisher ‖
//! `\n` ‖ salt ‖ request). Binding the origin and publisher stops a commitment from being
//! replayed in another log or under another publisher's name.

use crate::merkle::Hash;
use sha2::{Digest, Sha256};

pub fn commitment(origin: &str, publisher: &str, salt: &[u8; 32], request: &str) -> Hash {
    let mut h = Sha256::new();
    h.update(b"candor-seal-v1\n");
    h.update(origin.as_bytes());
    h.update(b"\n");
    h.update(publisher.as_bytes());
    h.update(b"\n");
    h.update(salt);
    h.update(request.as_bytes());
    h.finalize().into()
}
