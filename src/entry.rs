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
    civil::format(ms).unwrap_or_else(|| time_format(ms))
}

/// Parses exactly `YYYY-MM-DDThh:mm:ss.sssZ`.
pub fn parse_instant(s: &str) -> Option<Millis> {
    civil::parse(s.as_bytes()).or_else(|| time_parse(s))
}

/// [`format_instant`] by the `time` crate.
fn time_format(ms: Millis) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(INSTANT).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_string())
}

/// [`parse_instant`] by the `time` crate.
fn time_parse(s: &str) -> Option<Millis> {
    // ASCII only: slicing below is then always on character boundaries.
    let b = s.as_bytes();
    if b.len() != 24 || !s.is_ascii() || b[23] != b'Z' {
        return None;
    }
    let t = time::PrimitiveDateTime::parse(
        &s[..23],
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]"),
    )
    .ok()?;
    Some((t.assume_utc().unix_timestamp_nanos() / 1_000_000) as Millis)
}

/// Instants of the years 0000 to 9999, read and written digit by digit. Every entry carries
/// one, and the `time` crate's general formats took about a microsecond an instant each way,
/// a fiftieth of an audit. Anything else (another spelling, another year) still goes to
/// `time`, so the answers stay `time`'s; a test compares the two.
mod civil {
    use super::Millis;

    const MS_PER_DAY: i64 = 86_400_000;

    /// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
    /// `days_from_civil`).
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
        era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
    }

    /// The date `days` after 1970-01-01 (`civil_from_days`).
    fn civil_from_days(days: i64) -> (i64, i64, i64) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }

    fn days_in_month(y: i64, m: i64) -> i64 {
        match m {
            2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    /// The instant, if it lies in the years 0000 to 9999.
    pub fn format(ms: Millis) -> Option<String> {
        let (days, in_day) = (ms.div_euclid(MS_PER_DAY), ms.rem_euclid(MS_PER_DAY));
        let (y, m, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) {
            return None;
        }
        let mut out = String::with_capacity(24);
        let mut put = |n: i64, width: u32, then: char| {
            for p in (0..width).rev() {
                out.push(char::from(b'0' + (n / 10_i64.pow(p) % 10) as u8));
            }
            out.push(then);
        };
        put(y, 4, '-');
        put(m, 2, '-');
        put(d, 2, 'T');
        put(in_day / 3_600_000, 2, ':');
        put(in_day / 60_000 % 60, 2, ':');
        put(in_day / 1000 % 60, 2, '.');
        put(in_day % 1000, 3, 'Z');
        Some(out)
    }

    /// The instant that `b` names, if it is written `YYYY-MM-DDThh:mm:ss.sssZ` exactly and
    /// is a real time.
    pub fn parse(b: &[u8]) -> Option<Millis> {
        const SEPARATORS: [(usize, u8); 7] = [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (23, b'Z'),
        ];
        if b.len() != 24 || SEPARATORS.iter().any(|&(at, c)| b[at] != c) {
            return None;
        }
        let num = |from: usize, to: usize| {
            b[from..to].iter().try_fold(0i64, |n, &c| {
                c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
            })
        };
        let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
        let (h, mi, s, ms) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
        let real = (1..=12).contains(&m)
            && (1..=days_in_month(y, m)).contains(&d)
            && h < 24
            && mi < 60
            && s < 60;
        real.then(|| days_from_civil(y, m, d) * MS_PER_DAY + ((h * 60 + mi) * 60 + s) * 1000 + ms)
    }
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

    /// The digit-by-digit reading and writing give `time`'s answers.
    #[test]
    fn instants_are_read_and_written_as_time_does() {
        // Instants spread over years 0000 to 9999 and beyond both ends, and the edges.
        let mut instants = vec![
            0,
            1,
            -1,
            i64::MIN,
            i64::MAX,
            951_782_400_000,
            253_402_300_799_999,
        ];
        instants.extend([
            253_402_300_800_000,
            -62_167_219_200_000,
            -62_167_219_200_001,
        ]);
        let mut x = 1u64;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            instants.push((x >> 16) as i64 % 330_000_000_000_000 - 70_000_000_000_000);
        }
        for ms in instants {
            let want = time_format(ms);
            assert_eq!(format_instant(ms), want, "{ms}");
            let in_range = (-62_167_219_200_000..=253_402_300_799_999).contains(&ms);
            assert_eq!(civil::format(ms).is_some(), in_range, "{ms}");
            if in_range {
                assert_eq!(civil::parse(want.as_bytes()), Some(ms), "{want}");
            }
            assert_eq!(parse_instant(&want), time_parse(&want), "{want}");
        }
        // Every month and day number around the real ones, in common, leap and century years,
        // then every instant spelled with one character changed.
        let mut texts = Vec::new();
        for y in [
            "0000", "0004", "1900", "1969", "1970", "2000", "2024", "2026", "2100", "9999",
        ] {
            for m in 0..=13 {
                for d in 0..=32 {
                    texts.push(format!("{y}-{m:02}-{d:02}T23:59:59.999Z"));
                }
            }
        }
        for t in [
            "2026-11-29T00:15:01.123Z",
            "2024-02-29T24:00:00.000Z",
            "2026-01-01T12:60:61.000Z",
        ] {
            for at in 0..24 {
                for c in b"0123456789-+:.TZ z" {
                    let mut b = t.as_bytes().to_vec();
                    b[at] = *c;
                    texts.push(String::from_utf8(b).unwrap()); // test-only
                }
            }
        }
        let mut read = 0;
        for t in &texts {
            let want = time_parse(t);
            assert_eq!(parse_instant(t), want, "{t}");
            // What the digit-by-digit reading accepts, it reads as time does.
            if let Some(ms) = civil::parse(t.as_bytes()) {
                assert_eq!(Some(ms), want, "{t}");
                read += 1;
            }
        }
        assert!(read > 1000, "{read}");
    }

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
