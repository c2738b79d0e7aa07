//! Signed notes and the other small text formats around them must never panic on any input.
//!
//! - `note::parse` on any UTF-8 string; if it succeeds, the text it returns is a prefix of the
//!   input that ends in a newline.
//! - `note::open` with two fixed known keys (same name, different key ids); if it succeeds,
//!   `note::parse` agrees on the text and at least one known key signed.
//! - `VerifierKey::parse`: if it succeeds, the key prints back to exactly the input
//!   (the parser is strict, so there is one spelling per key).
//! - `SecretKey::parse`: never panics; if it succeeds, the key text round-trips (less the
//!   trailing newlines the parser allows).
//! - `Checkpoint::parse_body`: if it succeeds, `body()` gives back exactly the input.
#![no_main]

use candor::checkpoint::Checkpoint;
use candor::note::{self, SecretKey, VerifierKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let fx = candor_fuzz::fixtures();

    let parsed = note::parse(s);
    if let Ok(n) = &parsed {
        assert!(s.starts_with(n.text), "note text is not a prefix of the note");
        assert!(n.text.ends_with('\n'), "note text does not end in a newline");
        assert!(n.signatures.len() <= note::MAX_SIGNATURES);
    }

    if let Ok((text, by)) = note::open(s, &fx.note_known) {
        let n = parsed.as_ref().expect("open accepted a note that parse refuses");
        assert_eq!(text, n.text, "open and parse disagree on the text");
        assert!(!by.is_empty(), "open succeeded with no known signer");
        assert!(by.iter().all(|k| fx.note_known.contains(k)));
    }

    if let Ok(k) = VerifierKey::parse(s) {
        assert_eq!(k.to_string(), s, "verifier key does not round-trip");
    }

    if let Ok(k) = SecretKey::parse(s) {
        assert_eq!(k.to_text(), s.trim_end_matches('\n'), "secret key does not round-trip");
    }

    if let Ok(cp) = Checkpoint::parse_body(s) {
        assert_eq!(cp.body(), s, "checkpoint body does not round-trip");
    }
});
