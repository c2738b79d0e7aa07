//! Log entries: `entry::decode` never panics on any bytes, and accepts one spelling only: if
//! it decodes, `entry::encode` of the parts gives back exactly the input.
#![no_main]

use candor::entry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = entry::decode(data) {
        let again = entry::encode(e.index, e.logged_at, &e.statement);
        assert_eq!(again, data, "entry does not round-trip through encode");
        assert_eq!(entry::decode(&again), Ok(e), "re-encoded entry decodes differently");
    }
});
