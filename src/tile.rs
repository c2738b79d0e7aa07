//! C2SP tlog-tiles paths and tile contents.
//!
//! A hash tile at level L, index N holds up to 256 stored hashes of tree level 8·L, those at
//! indexes `N·256 ..`; an entry bundle (level `-1` in the test vectors, `entries` in paths)
//! holds the entries `N·256 ..`, each prefixed by its big-endian u16 length. A tile of width
//! W < 256 is partial.

/// Tile height: 2^8 = 256 hashes a tile.
pub const HEIGHT: u32 = 8;
pub const WIDTH: u64 = 1 << HEIGHT;

/// Which kind of tile a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileKind {
    /// A hash tile at this tile level (0 ..= 63/8).
    Hash(u8),
    /// An entry bundle.
    Entries,
}

/// A tile address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileId {
    pub kind: TileKind,
    pub index: u64,
    /// 1 ..= 256; 256 is a full tile.
    pub width: u16,
}

/// Highest tile level: 8·L must stay below the 64 levels of a tree of u64 size.
pub const MAX_LEVEL: u8 = 7;

impl TileId {
    /// The path, without a leading slash, e.g. `tile/0/x001/x234/067.p/5`.
    pub fn path(&self) -> String {
        let level = match self.kind {
            TileKind::Hash(l) => l.to_string(),
            TileKind::Entries => "entries".to_string(),
        };
        let mut p = format!("tile/{level}/{}", encode_index(self.index));
        if u64::from(self.width) < WIDTH {
            p.push_str(&format!(".p/{}", self.width));
        }
        p
    }

    /// Parses a path (with or without a leading slash). Refuses anything not written exactly
    /// as `path` would write it.
    pub fn parse(path: &str) -> Option<TileId> {
        let rest = path
            .strip_prefix('/')
            .unwrap_or(path)
            .strip_prefix("tile/")?;
        let (level, rest) = rest.split_once('/')?;
        let kind = if level == "entries" {
            TileKind::Entries
        } else {
            if level.is_empty() || level.len() > 1 || !level.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let l: u8 = level.parse().ok()?;
            if l > MAX_LEVEL {
                return None;
            }
            TileKind::Hash(l)
        };
        let (index_part, width) = match rest.split_once(".p/") {
            Some((i, w)) => {
                if w.is_empty()
                    || w.len() > 3
                    || w.starts_with('0')
                    || !w.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                let w: u16 = w.parse().ok()?;
                if w == 0 || u64::from(w) >= WIDTH {
                    return None;
                }
                (i, w)
            }
            None => (rest, WIDTH as u16),
        };
        let index = decode_index(index_part)?;
        let id = TileId { kind, index, width };
        // Refuse indexes whose first leaf would not fit in a u64 tree.
        id.first_leaf()?;
        Some(id)
    }

    /// The index of the first leaf this tile covers, if it fits in u64.
    fn first_leaf(&self) -> Option<u64> {
        let shift = match self.kind {
            TileKind::Hash(l) => u32::from(l) * HEIGHT + HEIGHT,
            TileKind::Entries => HEIGHT,
        };
        if shift >= 64 {
            return if self.index == 0 { Some(0) } else { None };
        }
        self.index.checked_mul(1u64 << shift)
    }

    /// The tree level of the hashes in a hash tile.
    pub fn tree_level(&self) -> Option<u8> {
        match self.kind {
            TileKind::Hash(l) => Some(l * HEIGHT as u8),
            TileKind::Entries => None,
        }
    }

    /// The smallest tree size that contains this tile at its width, or None on overflow.
    pub fn min_tree_size(&self) -> Option<u64> {
        let count = self
            .index
            .checked_mul(WIDTH)?
            .checked_add(u64::from(self.width))?;
        match self.kind {
            TileKind::Entries => Some(count),
            TileKind::Hash(l) => {
                let shift = u32::from(l) * HEIGHT;
                if shift == 0 {
                    return Some(count);
                }
                if count.leading_zeros() < shift {
                    return None;
                }
                Some(count << shift)
            }
        }
    }
}

/// N in 3-digit groups, `x` before all but the last: 1234067 → `x001/x234/067`.
pub fn encode_index(mut n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        groups.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

fn decode_index(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split('/').collect();
    let (last, init) = parts.split_last()?;
    if init.len() > 6 {
        return None;
    }
    let digits3 = |p: &str| p.len() == 3 && p.bytes().all(|b| b.is_ascii_digit());
    let mut n: u64 = 0;
    for (i, p) in init.iter().enumerate() {
        let d = p.strip_prefix('x')?;
        if !digits3(d) || (i == 0 && d == "000") {
            return None;
        }
        n = n.checked_mul(1000)?.checked_add(d.parse().ok()?)?;
    }
    if !digits3(last) {
        return None;
    }
    n.checked_mul(1000)?.checked_add(last.parse().ok()?)
}

/// Appends one entry to a bundle: big-endian u16 length, then the bytes. Entries are at most
/// 65,535 bytes (spec section 4), which the sequencer enforces.
pub fn push_bundle_entry(bundle: &mut Vec<u8>, entry: &[u8]) {
    let len = u16::try_from(entry.len()).unwrap_or(u16::MAX);
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(&entry[..usize::from(len)]);
}

/// Splits an entry bundle back into entries; None if it is malformed.
pub fn split_bundle(mut bundle: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !bundle.is_empty() {
        if bundle.len() < 2 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([bundle[0], bundle[1]]));
        if bundle.len() < 2 + len {
            return None;
        }
        out.push(&bundle[2..2 + len]);
        bundle = &bundle[2 + len..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for (kind, index, width, path) in [
            (TileKind::Hash(0), 1234067, 256, "tile/0/x001/x234/067"),
            (TileKind::Hash(1), 999, 17, "tile/1/999.p/17"),
            (TileKind::Hash(2), 1000, 256, "tile/2/x001/000"),
            (
                TileKind::Entries,
                1234067,
                5,
                "tile/entries/x001/x234/067.p/5",
            ),
            (TileKind::Hash(0), 0, 256, "tile/0/000"),
        ] {
            let id = TileId { kind, index, width };
            assert_eq!(id.path(), path);
            assert_eq!(TileId::parse(path), Some(id));
        }
    }

    #[test]
    fn malformed_paths_are_refused() {
        for p in [
            "tile/0/1",
            "tile/0/0001",
            "tile/0/x000/001",
            "tile/0/001/002",
            "tile/0/x1/002",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/007",
            "tile/0/000.p/",
            "tile/8/000",
            "tile/00/000",
            "tile/-1/000",
            "tile/entries/../000",
            "tile/0/",
            "tile/0/x999/x999/x999/x999/x999/x999/x999/999",
            "tile/a/000",
            "tile/0/00a",
        ] {
            assert_eq!(TileId::parse(p), None, "{p}");
        }
    }

    #[test]
    fn bundles_round_trip() {
        let mut b = Vec::new();
        push_bundle_entry(&mut b, b"abc");
        push_bundle_entry(&mut b, b"");
        assert_eq!(b, [0, 3, b'a', b'b', b'c', 0, 0]);
        assert_eq!(split_bundle(&b), Some(vec![&b"abc"[..], &b""[..]]));
        assert_eq!(split_bundle(&[0, 5, 1]), None);
    }
}
