//! Log entries (spec section 4): the exact bytes of each Merkle leaf.
//!
//! `{"index":N,"logged_at":"…","statement":"…"}` with no whitespace, and a statement string in
//! which only `"`, `\` and newline are escaped. The format is fixed so that any verifier can
//! rebuild the leaf from the parts, byte for byte.

use time::{format_description::FormatItem, macros::format_description, OffsetDateTime};

/// Largest entry (spec section 4): bundles carry a u16 length.
pub const MAX_ENTRY_BYTES: usize = 65_535;

const INSTANT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Milliseconds since the Unix epoch, the unit of `logged_at`.
pub type Millis = i64;

pub fn now_millis() -> Millis {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as Millis
}

/// `YYYY-MM-DDThh:mm:ss.sssZ`.
pub fn format_instant(ms: Millis) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(INSTANT).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_string())
}

/// Parses exactly `YYYY-MM-DDThh:mm:ss.sssZ`.
pub fn parse_instant(s: &str) -> Option<Millis> {
    // ASCII only: slicing below is then always on character boundaries.
    let b = s.as_bytes();
    if b.len() != 24 || !s.is_ascii() {
        return None;
    }
    let t = time::PrimitiveDateTime::parse(
        &s[..23],
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]"),
    )
    .ok()?;
    if b[23] != b'Z' {
        return None;
    }
    Some((t.assume_utc().unix_timestamp_nanos() / 1_000_000) as Millis)
}

/// The date part (`YYYY-MM-DD`) of an instant.
pub fn date_of(ms: Millis) -> String {
    format_instant(ms)[..10].to_string()
}

/// Builds the entry bytes.
pub fn encode(index: u64, logged_at: Millis, statement: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(statement.len() + 80);
    out.extend_from_slice(b"{\"index\":");
    out.extend_from_slice(index.to_string().as_bytes());
    out.extend_from_slice(b",\"logged_at\":\"");
    out.extend_from_slice(format_instant(logged_at).as_bytes());
    out.extend_from_slice(b"\",\"statement\":\"");
    for &b in statement.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
    out.extend_from_slice(b"\"}");
    out
}

/// An entry taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub index: u64,
    pub logged_at: Millis,
    pub statement: String,
}

/// Parses entry bytes and checks that they are exactly what `encode` writes for their parts,
/// so that an auditor accepts one spelling only.
pub fn decode(bytes: &[u8]) -> Result<Entry, String> {
    let s = std::str::from_utf8(bytes).map_err(|_| "entry is not UTF-8".to_string())?;
    let rest = s
        .strip_prefix("{\"index\":")
        .ok_or("entry must start with {\"index\":")?;
    let comma = rest.find(',').ok_or("entry has no logged_at")?;
    let idx_s = &rest[..comma];
    if idx_s.is_empty()
        || !idx_s.bytes().all(|b| b.is_ascii_digit())
        || (idx_s.len() > 1 && idx_s.starts_with('0'))
    {
        return Err("entry index is not a plain integer".into());
    }
    let index: u64 = idx_s.parse().map_err(|_| "entry index out of range")?;
    let rest = rest[comma..]
        .strip_prefix(",\"logged_at\":\"")
        .ok_or("entry must continue with ,\"logged_at\":")?;
    // `get` refuses a cut inside a multi-byte character instead of panicking.
    let (instant, after) = match (rest.get(..24), rest.get(24..)) {
        (Some(i), Some(a)) => (i, a),
        _ => return Err("entry logged_at is truncated or not YYYY-MM-DDThh:mm:ss.sssZ".into()),
    };
    let logged_at =
        parse_instant(instant).ok_or("entry logged_at is not YYYY-MM-DDThh:mm:ss.sssZ")?;
    let body = after
        .strip_prefix("\",\"statement\":\"")
        .and_then(|r| r.strip_suffix("\"}"))
        .ok_or("entry must end with ,\"statement\":\"…\"}")?;
    let statement = unescape(body)?;
    // The index was checked to be plain digits, and the escapes above are the only ones
    // `encode` writes, each undone exactly: the entry is canonical iff its instant is.
    if format_instant(logged_at) != instant {
        return Err("entry is not in canonical form".into());
    }
    let e = Entry {
        index,
        logged_at,
        statement,
    };
    Ok(e)
}

/// Undoes the three escapes an entry's statement may hold (\" \\ \n), a run of plain bytes
/// at a time; a raw quote or newline, or any other escape, is refused.
fn unescape(body: &str) -> Result<String, String> {
    let b = body.as_bytes();
    let mut out = String::with_capacity(b.len());
    let (mut i, mut run) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'\\' => {
                // Runs start and end next to ASCII bytes, so on character boundaries.
                out.push_str(body.get(run..i).ok_or("entry is not UTF-8")?);
                out.push(match b.get(i + 1) {
                    Some(b'"') => '"',
                    Some(b'\\') => '\\',
                    Some(b'n') => '\n',
                    _ => return Err("statement uses an escape other than \\\" \\\\ \\n".into()),
                });
                i += 2;
                run = i;
            }
            b'"' => return Err("unescaped quote in statement".into()),
            b'\n' => return Err("unescaped newline in statement".into()),
            _ => i += 1,
        }
    }
    out.push_str(body.get(run..).ok_or("entry is not UTF-8")?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_bytes_are_exact() {
        let ms = parse_instant("2026-11-29T00:15:01.123Z").unwrap();
        let stmt = "{\"a\":\"q\\\"x\",\"é\":1}\n\n\u{2014} k c2ln\n";
        let bytes = encode(42, ms, stmt);
        let expected = "{\"index\":42,\"logged_at\":\"2026-11-29T00:15:01.123Z\",\"statement\":\"{\\\"a\\\":\\\"q\\\\\\\"x\\\",\\\"é\\\":1}\\n\\n\u{2014} k c2ln\\n\"}";
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), expected);
        let e = decode(&bytes).unwrap();
        assert_eq!((e.index, e.logged_at, e.statement.as_str()), (42, ms, stmt));
        assert_eq!(format_instant(ms), "2026-11-29T00:15:01.123Z");
        assert!(parse_instant("2026-11-29T00:15:01Z").is_none());
        // Found by fuzzing: a multi-byte character where the instant should be.
        assert!(parse_instant("2026-11-29T00:15:01.12\u{e9}Z").is_none());
        assert!(decode(
            "{\"index\":0,\"logged_at\":\"2026-11-29T00:15:01.123\u{e9}\",\"statement\":\"\"}"
                .as_bytes()
        )
        .is_err());
        assert!(decode(
            b"{\"index\":042,\"logged_at\":\"2026-11-29T00:15:01.123Z\",\"statement\":\"\"}"
        )
        .is_err());
    }

    /// Whatever `decode` accepts is exactly what `encode` writes for its parts: mutate a valid
    /// entry byte by byte and check every mutant that decodes.
    #[test]
    fn only_the_canonical_spelling_decodes() {
        let ms = parse_instant("2026-11-29T00:15:01.123Z").unwrap();
        let valid = encode(7, ms, "{\"a\":\"q\\\"x\\\\\"}\n\n\u{2014} k c2ln\n");
        let alphabet = b"\\\"nt\n0129:.TZ-{}, a\t\x7f";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut m = valid.clone();
            for _ in 0..1 + next() % 3 {
                let at = (next() % m.len() as u64) as usize;
                let b = alphabet[(next() % alphabet.len() as u64) as usize];
                match next() % 3 {
                    0 => m[at] = b,
                    1 => m.insert(at, b),
                    _ => {
                        m.remove(at);
                    }
                }
            }
            if let Ok(e) = decode(&m) {
                accepted += 1;
                assert_eq!(
                    encode(e.index, e.logged_at, &e.statement),
                    m,
                    "{}",
                    String::from_utf8_lossy(&m)
                );
            }
        }
        assert!(
            accepted > 100,
            "the mutations must also produce valid entries"
        );
    }
}
