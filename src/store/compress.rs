//! Compression of derived-state values.
//!
//! Most of the derived state is one record per statement: a few hundred bytes of JSON whose
//! field names and enum values come from a small vocabulary (`schemas/`). A value that short
//! gives a compressor little to learn from, so it is compressed with zstd against a fixed
//! dictionary of that vocabulary (`state-v1.dict`), which roughly halves the records.
//!
//! Only those records are compressed (keys under [`COMPRESSED`]): they are the bulk and are
//! rarely read, while the other values are few and hot (a publisher's state is read for
//! every statement it signs), so decompressing them would only cost time.
//!
//! Every stored value starts with one byte saying how the rest is encoded. Values written
//! with a dictionary can only be read with that exact dictionary: it must never change. A new
//! vocabulary gets a new file and a new tag byte, and the old tag stays readable.

use super::StoreError;
use std::cell::RefCell;
use std::sync::OnceLock;
use zstd::dict::{DecoderDictionary, EncoderDictionary};

/// The rest of the value is stored as it is.
const RAW: u8 = 0;
/// The rest is the value's length (u32, big-endian), then a zstd frame made with
/// [`DICT_V1`].
const ZSTD_V1: u8 = 1;

/// Field names and enum values of the statement schemas, frozen when the first records were
/// compressed with it.
const DICT_V1: &[u8] = include_bytes!("state-v1.dict");

/// Shorter values are not worth compressing.
const MIN_LEN: usize = 128;

/// The key prefix of the records ([`crate::statement::state::merged_key`]).
pub const COMPRESSED: &[u8] = b"r/";

/// How hard to compress: the service keeps its records for good and serves them, an auditor
/// only keeps them for the updates that may come, and every statement's record is compressed
/// on the one thread that applies the rules, in both. Any level decodes with the same
/// dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// zstd's level 1: on a typical record it takes 4.4 µs and 172 bytes, where the default
    /// level 3 takes 7.8 µs for 163 (higher levels gain a few bytes more and cost several
    /// times the time).
    Small,
    /// zstd's level -1, which leaves literals uncoded: about half the time of level 1, for
    /// a few per cent more bytes.
    Fast,
}

impl Level {
    fn zstd(self) -> i32 {
        match self {
            Level::Small => 1,
            Level::Fast => -1,
        }
    }
}

fn encoder_dict(level: Level) -> &'static EncoderDictionary<'static> {
    static SMALL: OnceLock<EncoderDictionary<'static>> = OnceLock::new();
    static FAST: OnceLock<EncoderDictionary<'static>> = OnceLock::new();
    let d = if level == Level::Small { &SMALL } else { &FAST };
    d.get_or_init(|| EncoderDictionary::copy(DICT_V1, level.zstd()))
}

fn decoder_dict() -> &'static DecoderDictionary<'static> {
    static D: OnceLock<DecoderDictionary<'static>> = OnceLock::new();
    D.get_or_init(|| DecoderDictionary::copy(DICT_V1))
}

thread_local! {
    // zstd contexts hold sizeable buffers: one of each per thread, reused.
    static COMPRESSOR: RefCell<[Option<zstd::bulk::Compressor<'static>>; 2]> = const { RefCell::new([None, None]) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn raw(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 1);
    out.push(RAW);
    out.extend_from_slice(value);
    out
}

/// The stored form of the value of `key`: compressed when it is a record and that makes it
/// smaller.
pub fn encode(key: &[u8], value: &[u8], level: Level) -> Vec<u8> {
    if !key.starts_with(COMPRESSED) || value.len() < MIN_LEN || value.len() > u32::MAX as usize {
        return raw(value);
    }
    let frame = COMPRESSOR.with(|c| {
        let c = &mut c.borrow_mut()[level as usize];
        if c.is_none() {
            *c = zstd::bulk::Compressor::with_prepared_dictionary(encoder_dict(level)).ok();
        }
        c.as_mut().and_then(|c| c.compress(value).ok())
    });
    match frame {
        Some(frame) if frame.len() + 5 < value.len() => {
            let mut out = Vec::with_capacity(frame.len() + 5);
            out.push(ZSTD_V1);
            out.extend_from_slice(&(value.len() as u32).to_be_bytes());
            out.extend_from_slice(&frame);
            out
        }
        _ => raw(value),
    }
}

/// A value from its stored form.
pub fn decode(stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    match stored.split_first() {
        Some((&RAW, rest)) => Ok(rest.to_vec()),
        Some((&ZSTD_V1, rest)) if rest.len() >= 4 => {
            let (len, frame) = rest.split_at(4);
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let out = DECOMPRESSOR.with(|d| {
                let mut d = d.borrow_mut();
                if d.is_none() {
                    *d = zstd::bulk::Decompressor::with_prepared_dictionary(decoder_dict()).ok();
                }
                d.as_mut().map(|d| d.decompress(frame, len))
            });
            match out {
                Some(Ok(v)) if v.len() == len => Ok(v),
                Some(Ok(v)) => Err(StoreError::Corrupt(format!(
                    "a compressed state value holds {} bytes instead of {len}",
                    v.len()
                ))),
                Some(Err(e)) => Err(StoreError::Corrupt(format!(
                    "a compressed state value does not decompress: {e}"
                ))),
                None => Err(StoreError::Io("no zstd decompression context".into())),
            }
        }
        Some((tag, _)) => Err(StoreError::Corrupt(format!(
            "a state value has unknown encoding {tag}"
        ))),
        None => Err(StoreError::Corrupt("a state value is empty".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"type":"request","record":{"kind":"user_data","channel":"legal_process","process":"subpoena","country":"IN","authority":{"type":"police","name":"Bundeskriminalamt"},"received_on":"2026-01-15","responded_on":"2026-02-01","targets":{"accounts":1},"data_categories":["subscriber","non_content"],"produced":["subscriber"],"disposition":"partially_complied","user_notified":"no","legal_basis":"StPO 100j"},"updates":[]}"#;

    #[test]
    fn values_round_trip_and_records_shrink() {
        for level in [Level::Small, Level::Fast] {
            for v in [&b""[..], b"acme.example", RECORD.as_bytes(), &[0xff; 4096]] {
                assert_eq!(decode(&encode(b"r/a/b", v, level)).unwrap(), v); // test-only
            }
        }
        let small = encode(b"r/a/b", RECORD.as_bytes(), Level::Small);
        let fast = encode(b"r/a/b", RECORD.as_bytes(), Level::Fast);
        assert_eq!((small[0], fast[0]), (ZSTD_V1, ZSTD_V1));
        assert!(
            small.len() * 2 < RECORD.len() && fast.len() * 3 < RECORD.len() * 2,
            "{} and {} bytes for {}",
            small.len(),
            fast.len(),
            RECORD.len()
        );
        assert_eq!(encode(b"r/a/b", b"acme.example", Level::Small)[0], RAW);
        // Records are what gets compressed; hot values (a publisher's state) are left as
        // they are.
        assert!(crate::statement::state::merged_key("a", "b").starts_with(COMPRESSED));
        assert_eq!(
            encode(b"p/acme.example", RECORD.as_bytes(), Level::Small)[0],
            RAW
        );
    }

    /// The dictionary is part of the storage format: records written with it must stay
    /// readable, so a change to it has to fail here first.
    #[test]
    fn the_dictionary_is_frozen() {
        use sha2::Digest;
        assert_eq!(
            hex::encode(sha2::Sha256::digest(DICT_V1)),
            "65ae0c194925033bc293fecb307abb9dc6889672f9f94df1c74d22dbde6b280d"
        );
    }

    #[test]
    fn damaged_values_are_reported_not_trusted() {
        let mut stored = encode(b"r/a/b", RECORD.as_bytes(), Level::Small);
        let last = stored.len() - 3;
        stored[last] ^= 0x55;
        stored[3] ^= 1; // the length
        assert!(matches!(decode(&stored), Err(StoreError::Corrupt(_)))); // test-only
        assert!(matches!(decode(&[9, 1, 2]), Err(StoreError::Corrupt(m)) if m.contains("9")));
        assert!(matches!(decode(&[]), Err(StoreError::Corrupt(_)))); // test-only
    }
}
