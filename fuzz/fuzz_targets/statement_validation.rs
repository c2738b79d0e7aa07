//! Statements: form checks (`statement::parse`, which runs the strict JSON reader) and the
//! order-free checks (`verify::check`: signatures against body keys, the log key and the one
//! publisher in an in-memory key lookup; JSON Schemas; record rules) must never panic, and
//! must be deterministic: the same bytes give the same result twice.
#![no_main]

use candor::statement::{self, json, verify};
use candor_fuzz::ORIGIN;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The strict JSON reader on its own, on the whole input.
    if let Ok(s) = std::str::from_utf8(data) {
        let a = json::parse(s);
        let b = json::parse(s);
        assert_eq!(a, b, "json::parse is not deterministic");
    }

    let Ok(parsed) = statement::parse(data) else {
        return;
    };
    let again = statement::parse(data).expect("statement::parse is not deterministic");
    assert_eq!(parsed.note, again.note);
    assert_eq!(parsed.note_hash, again.note_hash);
    assert_eq!(parsed.hash, again.hash);
    assert_eq!(parsed.body, again.body);
    assert_eq!(parsed.signatures, again.signatures);

    let fx = candor_fuzz::fixtures();
    let a = verify::check(parsed, &fx.keys, ORIGIN, &fx.log_vkey)
        .expect("the in-memory key lookup never fails");
    let b = verify::check(again, &fx.keys, ORIGIN, &fx.log_vkey)
        .expect("the in-memory key lookup never fails");

    assert_eq!(a.ty, b.ty, "verify::check: type differs between runs");
    assert_eq!(a.signatures, b.signatures, "verify::check: signatures differ between runs");
    assert_eq!(a.content, b.content, "verify::check: content result differs between runs");
    assert_eq!(a.revealed, b.revealed, "verify::check: revealed record differs between runs");
});
