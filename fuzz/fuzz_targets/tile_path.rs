//! C2SP tile paths and entry bundles.
//!
//! - `TileId::parse` never panics; if it gives an id, `path()` parses back to the same id,
//!   and is the input itself (less an optional leading slash): the parser refuses anything
//!   not written exactly as `path()` writes it. `tree_level` and `min_tree_size` never panic.
//! - `split_bundle` never panics; if it splits the bytes, `push_bundle_entry` of the pieces
//!   rebuilds exactly the input.
#![no_main]

use candor::tile::{self, TileId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(id) = TileId::parse(s) {
            let p = id.path();
            assert_eq!(TileId::parse(&p), Some(id), "tile path {p:?} does not parse back");
            assert_eq!(
                p,
                s.strip_prefix('/').unwrap_or(s),
                "tile parser accepted a non-canonical spelling"
            );
            assert!(id.width >= 1 && u64::from(id.width) <= tile::WIDTH);
            let _ = id.tree_level();
            let _ = id.min_tree_size();
        }
    }

    if let Some(entries) = tile::split_bundle(data) {
        let mut rebuilt = Vec::with_capacity(data.len());
        for e in &entries {
            tile::push_bundle_entry(&mut rebuilt, e);
        }
        assert_eq!(rebuilt, data, "entry bundle does not round-trip");
    }
});
