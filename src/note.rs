//! C2SP signed notes with Ed25519 keys, in the text formats of Go's
//! `golang.org/x/mod/sumdb/note`, so that notes, checkpoints and keys interoperate with the
//! transparency-log ecosystem.
//!
//! A note is `text` (ending in a newline), a blank line, then signature lines
//! `— <key name> <base64(key id ‖ signature)>`. Everything here is strict: base64 must be
//! canonical, signatures are judged exactly as ed25519-dalek's `verify_strict` judges them
//! (see [`verify_many`]), and keys with non-canonical or small-order points ("weak" keys) are
//! refused, so whatever Candor accepts verifies under every conforming Ed25519
//! implementation.

use base64::{engine::general_purpose::STANDARD, Engine};
use curve25519_dalek::edwards::VartimeEdwardsPrecomputation;
use curve25519_dalek::traits::VartimePrecomputedMultiscalarMul;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, OnceLock};

/// The signature type byte for Ed25519 in key ids and key text.
const ALG_ED25519: u8 = 0x01;

/// The em dash that opens a signature line.
const SIG_PREFIX: &str = "\u{2014} ";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed verifier key: {0}")]
    BadVerifierKey(String),
    #[error("malformed secret key: {0}")]
    BadSecretKey(String),
    #[error("malformed note: {0}")]
    Malformed(String),
    #[error("no signature by a known key")]
    NoKnownSignature,
    #[error("invalid signature by {0}")]
    BadSignature(String),
}

/// Decodes base64 that must be canonical (standard alphabet, padding, zero unused bits).
pub fn decode_b64(s: &str) -> Option<Vec<u8>> {
    let bytes = STANDARD.decode(s).ok()?;
    // The engine already refuses non-zero trailing bits and bad padding; re-encoding guards
    // against any other non-canonical spelling.
    (STANDARD.encode(&bytes) == s).then_some(bytes)
}

pub fn encode_b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A key name: non-empty, no whitespace, no `+` (Go's `note` rules).
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('+')
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The key id: the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key), big-endian.
pub fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Parses a 32-byte Ed25519 public key, refusing non-canonical and small-order points.
pub fn strict_public_key(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    let key = VerifyingKey::from_bytes(bytes).ok()?;
    if key.is_weak() || key.to_bytes() != *bytes {
        return None;
    }
    // `from_bytes` accepts a y coordinate >= p; the round trip above rejects it, and
    // decompressing the canonical re-encoding must give the same point.
    Some(key)
}

/// A verifier key: `<name>+<hex8 key id>+<base64(0x01 ‖ public key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    pub name: String,
    pub id: u32,
    pub key: VerifyingKey,
}

impl VerifierKey {
    pub fn new(name: &str, key: VerifyingKey) -> VerifierKey {
        VerifierKey {
            name: name.to_string(),
            id: key_id(name, key.as_bytes()),
            key,
        }
    }

    /// Parses the text form strictly: lowercase matching key id, canonical base64, a strong
    /// canonical Ed25519 point.
    pub fn parse(text: &str) -> Result<VerifierKey, NoteError> {
        let bad = |why: &str| NoteError::BadVerifierKey(why.to_string());
        // Names never hold '+', base64 may: split from the left, as Go does.
        let mut parts = text.splitn(3, '+');
        let (name, hex_id, b64) = match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(h), Some(b)) => (n, h, b),
            _ => return Err(bad("expected <name>+<key id>+<base64 key>")),
        };
        if !is_valid_key_name(name) {
            return Err(bad("key name is empty or has a space or '+'"));
        }
        let id = parse_hex8(hex_id).ok_or_else(|| bad("key id must be 8 lowercase hex digits"))?;
        let raw = decode_b64(b64).ok_or_else(|| bad("key is not canonical base64"))?;
        if raw.len() != 33 || raw[0] != ALG_ED25519 {
            return Err(bad(
                "key must be 0x01 followed by a 32-byte Ed25519 public key",
            ));
        }
        let mut pk = [0u8; 32];
        pk.copy_from_slice(&raw[1..]);
        let key = strict_public_key(&pk)
            .ok_or_else(|| bad("public key is weak or not a canonical Ed25519 point"))?;
        if key_id(name, &pk) != id {
            return Err(bad("key id does not match the name and key"));
        }
        Ok(VerifierKey {
            name: name.to_string(),
            id,
            key,
        })
    }

    /// Parses a key the log has already accepted, through a cache: decoding a point costs
    /// about as much as a quarter of a signature check, and the same few keys sign
    /// everything.
    pub fn parse_cached(text: &str) -> Result<VerifierKey, NoteError> {
        use std::collections::HashMap;
        static CACHE: OnceLock<Mutex<HashMap<String, VerifierKey>>> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        if let Some(k) = cache.lock().ok().and_then(|c| c.get(text).cloned()) {
            return Ok(k);
        }
        let k = VerifierKey::parse(text)?;
        if let Ok(mut c) = cache.lock() {
            if c.len() >= 100_000 {
                c.clear(); // bounded: a log with more keys than this just decodes more often
            }
            c.insert(text.to_string(), k.clone());
        }
        Ok(k)
    }

    /// Whether `text` is this key written out (`<name>+<id>+<base64>`, as `to_string` writes
    /// it), compared without formatting: the writer asks this for every statement.
    pub fn is_text(&self, text: &str) -> bool {
        let rest = text.strip_prefix(self.name.as_str());
        let Some((id, b64)) = rest.and_then(|r| r.strip_prefix('+')?.split_once('+')) else {
            return false;
        };
        let mut hex = [0u8; 8];
        for (i, h) in hex.iter_mut().enumerate() {
            *h = b"0123456789abcdef"[(self.id >> (28 - 4 * i) & 0xf) as usize];
        }
        let mut raw = [ALG_ED25519; 33];
        raw[1..].copy_from_slice(self.key.as_bytes());
        let mut buf = [0u8; 44];
        let written = STANDARD.encode_slice(raw, &mut buf);
        id.as_bytes() == hex && written.is_ok_and(|n| b64.as_bytes() == &buf[..n])
    }

    pub fn public_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Checks `sig` over `msg` with strict Ed25519 verification.
    pub fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> bool {
        verify_many(&[(self, msg, sig)]).first() == Some(&true)
    }
}

/// Strict Ed25519 verification of many signatures at once, each judged on its own and exactly
/// as `VerifyingKey::verify_strict` judges it: `s` canonical, neither the key nor `R` of small
/// order, and `[s]B - [k]A` encoding to the very bytes of `R` (cofactorless, so canonical `R`
/// only). This is not batch verification, which would accept what strict verification refuses.
///
/// It is faster for two reasons. `verify_strict` decodes `R` (a square root) only to test its
/// order; here the recomputed point's encoding is tested instead, which is `R`'s whenever the
/// bytes match, and irrelevant when they do not. And the recomputed points are encoded together,
/// sharing one field inversion (Montgomery's trick) instead of one each. Together these are
/// about a quarter of a verification (`cargo bench --bench core -- limits/ed25519`).
///
/// `s` must be canonical, as in ed25519-dalek built without its `legacy_compatibility`
/// feature (which Candor does not enable); a test checks the two agree.
pub fn verify_many(jobs: &[(&VerifierKey, &[u8], &[u8; 64])]) -> Vec<bool> {
    // Each key once per call: how many of these signatures it made, then what it needs.
    let mut uses: FxHashMap<[u8; 32], (&VerifierKey, u32)> = FxHashMap::default();
    for (key, _, _) in jobs {
        uses.entry(*key.key.as_bytes()).or_insert((key, 0)).1 += 1;
    }
    let prepared: FxHashMap<[u8; 32], PreparedKey> = uses
        .into_iter()
        .map(|(bytes, (key, n))| (bytes, PreparedKey::of(key, n)))
        .collect();
    verify_prepared(jobs, &prepared)
}

/// [`verify_many`] with each key's [`PreparedKey`] at hand.
fn verify_prepared(
    jobs: &[(&VerifierKey, &[u8], &[u8; 64])],
    prepared: &FxHashMap<[u8; 32], PreparedKey>,
) -> Vec<bool> {
    use curve25519_dalek::{EdwardsPoint, Scalar};
    let mut points = Vec::with_capacity(jobs.len());
    let mut which = Vec::with_capacity(jobs.len());
    for (i, (key, msg, sig)) in jobs.iter().enumerate() {
        let (r, s) = sig.split_at(32);
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(s);
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            continue;
        };
        let a = key.key.as_bytes();
        let Some(prepared) = prepared.get(a).filter(|p| !p.weak) else {
            continue;
        };
        let mut h = sha2::Sha512::new();
        h.update(r);
        h.update(a);
        h.update(msg);
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        points.push(match &prepared.tables {
            // [s]B + [k](-A), the same point either way.
            Some(t) => t.vartime_multiscalar_mul([s, k]),
            None => EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &prepared.minus_a, &s),
        });
        which.push(i);
    }
    // Where the bytes match, R is the recomputed point, so R is of small order exactly when
    // its bytes are the encoding of one of the eight points of small order.
    let small = small_order_encodings();
    let mut ok = vec![false; jobs.len()];
    for (p, i) in EdwardsPoint::compress_batch_alloc(&points)
        .iter()
        .zip(which)
    {
        ok[i] = p.as_bytes()[..] == jobs[i].2[..32] && !small.contains(p.as_bytes());
    }
    ok
}

/// What [`verify_many`] needs of a key: `-A`, whether `A` is of small order, and, for a key
/// that has signed many statements, tables of multiples of `B` and `-A`.
///
/// `[s]B - [k]A` costs about 250 doublings and 70 additions. curve25519-dalek keeps a table
/// of 64 odd multiples of `B` and builds one of 8 odd multiples of `-A` for each signature;
/// with a table of 64 multiples of `-A` too, kept from one signature to the next, the same
/// point takes fewer additions and no table building: about 4 % less time a signature
/// (`cargo bench --bench core -- limits/ed25519`). Building the tables costs one or two
/// signatures' time and 20 KiB, so they are kept only for keys seen often, and only for a
/// bounded number of keys.
struct PreparedKey {
    minus_a: curve25519_dalek::EdwardsPoint,
    weak: bool,
    tables: Option<Arc<VartimeEdwardsPrecomputation>>,
}

/// Signatures a key must have been checked for before its tables are built.
const TABLES_AFTER: u32 = 64;

/// Keys whose signatures are counted or whose tables are kept; past that the count starts
/// over. 256 keys with tables take 5 MiB.
const MOST_PREPARED: usize = 256;

/// For each key recently checked: signatures checked, and its tables once built.
type Seen = FxHashMap<[u8; 32], (u32, Option<Arc<VartimeEdwardsPrecomputation>>)>;

fn prepared_keys() -> &'static Mutex<Seen> {
    static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
    SEEN.get_or_init(Default::default)
}

impl PreparedKey {
    /// Counts `uses` more signatures by `key`, building its tables if that makes enough.
    fn of(key: &VerifierKey, uses: u32) -> PreparedKey {
        PreparedKey::counted_in(prepared_keys(), key, uses)
    }

    fn counted_in(seen: &Mutex<Seen>, key: &VerifierKey, uses: u32) -> PreparedKey {
        let mut prepared = PreparedKey::new(key, false);
        if prepared.weak {
            return prepared;
        }
        let bytes = key.key.as_bytes();
        let build = match seen.lock() {
            Ok(mut seen) => {
                if seen.len() >= MOST_PREPARED && !seen.contains_key(bytes) {
                    seen.clear();
                }
                let (count, kept) = seen.entry(*bytes).or_default();
                *count = count.saturating_add(uses);
                prepared.tables = kept.clone();
                prepared.tables.is_none() && *count >= TABLES_AFTER
            }
            Err(_) => false,
        };
        if build {
            // Built outside the lock: two threads may both build a key's tables, once.
            prepared = PreparedKey::new(key, true);
            if let Ok(mut seen) = seen.lock() {
                if let Some((_, kept)) = seen.get_mut(bytes) {
                    kept.clone_from(&prepared.tables);
                }
            }
        }
        prepared
    }

    fn new(key: &VerifierKey, tables: bool) -> PreparedKey {
        let a = key.key.to_edwards();
        let (minus_a, weak) = (-a, a.is_small_order());
        let tables = (tables && !weak).then(|| {
            Arc::new(VartimeEdwardsPrecomputation::new([
                curve25519_dalek::constants::ED25519_BASEPOINT_POINT,
                minus_a,
            ]))
        });
        PreparedKey {
            minus_a,
            weak,
            tables,
        }
    }
}

/// The (canonical) encodings of the points of order dividing 8.
fn small_order_encodings() -> &'static [[u8; 32]; 8] {
    static E: std::sync::OnceLock<[[u8; 32]; 8]> = std::sync::OnceLock::new();
    E.get_or_init(|| curve25519_dalek::constants::EIGHT_TORSION.map(|p| p.compress().to_bytes()))
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, encode_b64(&raw))
    }
}

fn parse_hex8(s: &str) -> Option<u32> {
    if s.len() != 8
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// A signer: `PRIVATE+KEY+<name>+<hex8 key id>+<base64(0x01 ‖ seed)>`.
pub struct SecretKey {
    pub name: String,
    pub id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for SecretKey {
    /// Never prints the seed: secret keys must not reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({}+{:08x})", self.name, self.id)
    }
}

impl SecretKey {
    /// A fresh key from the operating system's random source.
    pub fn generate(name: &str) -> Result<SecretKey, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::BadSecretKey(format!(
                "invalid key name {name:?}"
            )));
        }
        loop {
            let mut seed = [0u8; 32];
            getrandom::getrandom(&mut seed)
                .map_err(|e| NoteError::BadSecretKey(format!("no randomness: {e}")))?;
            let key = SigningKey::from_bytes(&seed);
            // A random seed practically never gives a weak key, but the check is free.
            if strict_public_key(key.verifying_key().as_bytes()).is_some() {
                return Ok(SecretKey::from_signing_key(name, key));
            }
        }
    }

    pub fn from_signing_key(name: &str, key: SigningKey) -> SecretKey {
        SecretKey {
            name: name.to_string(),
            id: key_id(name, key.verifying_key().as_bytes()),
            key,
        }
    }

    pub fn parse(text: &str) -> Result<SecretKey, NoteError> {
        let bad = |why: &str| NoteError::BadSecretKey(why.to_string());
        let rest = text
            .trim_end_matches('\n')
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("expected PRIVATE+KEY+<name>+<key id>+<base64 seed>"))?;
        // Names never hold '+', base64 may: split from the left, as Go does.
        let mut parts = rest.splitn(3, '+');
        let (name, hex_id, b64) = match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(h), Some(b)) => (n, h, b),
            _ => return Err(bad("expected PRIVATE+KEY+<name>+<key id>+<base64 seed>")),
        };
        if !is_valid_key_name(name) {
            return Err(bad("key name is empty or has a space or '+'"));
        }
        let id = parse_hex8(hex_id).ok_or_else(|| bad("key id must be 8 lowercase hex digits"))?;
        let raw = decode_b64(b64).ok_or_else(|| bad("seed is not canonical base64"))?;
        if raw.len() != 33 || raw[0] != ALG_ED25519 {
            return Err(bad("seed must be 0x01 followed by 32 bytes"));
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&raw[1..]);
        let sk = SecretKey::from_signing_key(name, SigningKey::from_bytes(&seed));
        if sk.id != id {
            return Err(bad("key id does not match the name and key"));
        }
        if strict_public_key(sk.key.verifying_key().as_bytes()).is_none() {
            return Err(bad("the key's public point is weak"));
        }
        Ok(sk)
    }

    /// The secret key text. Only for writing key files.
    pub fn to_text(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            encode_b64(&raw)
        )
    }

    pub fn verifier(&self) -> VerifierKey {
        VerifierKey::new(&self.name, self.key.verifying_key())
    }

    /// The signature line for `text`, with its trailing newline.
    pub fn signature_line(&self, text: &[u8]) -> String {
        let sig = self.key.sign(text).to_bytes();
        let mut raw = self.id.to_be_bytes().to_vec();
        raw.extend_from_slice(&sig);
        format!("{SIG_PREFIX}{} {}\n", self.name, encode_b64(&raw))
    }
}

/// Signs `text` (which must end in a newline) with each signer in order.
pub fn sign(text: &str, signers: &[&SecretKey]) -> Result<String, NoteError> {
    check_text(text)?;
    let mut out = String::with_capacity(text.len() + 1 + 100 * signers.len());
    out.push_str(text);
    out.push('\n');
    for s in signers {
        out.push_str(&s.signature_line(text.as_bytes()));
    }
    Ok(out)
}

/// A note's text must be non-empty, end in a newline and hold no control character other
/// than newline (Go's rule).
fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("text must end in a newline".into()));
    }
    if crate::scan::has_control(text, true) {
        return Err(NoteError::Malformed(
            "text holds a control character other than newline".into(),
        ));
    }
    Ok(())
}

/// One parsed signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLine {
    pub name: String,
    pub id: u32,
    pub sig: [u8; 64],
}

/// A note split into its text and signature lines, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note<'a> {
    /// The signed text, with its final newline.
    pub text: &'a str,
    pub signatures: Vec<SignatureLine>,
}

/// Most signature lines a note may carry: Candor's types need at most two; cosigned
/// checkpoints carry a few more. A bound keeps hostile notes cheap to refuse.
pub const MAX_SIGNATURES: usize = 100;

/// Splits a note into text and signature lines, checking the syntax strictly. Signature lines
/// whose signature is not 4 + 64 bytes (other algorithms) are refused here: Candor only
/// speaks Ed25519.
pub fn parse(note: &str) -> Result<Note<'_>, NoteError> {
    let bad = |why: &str| NoteError::Malformed(why.to_string());
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| bad("no blank line between text and signatures"))?;
    let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
    check_text(text)?;
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(bad(
            "signature block must be signature lines each ending in a newline",
        ));
    }
    let mut signatures = Vec::new();
    for line in sigs[..sigs.len() - 1].split('\n') {
        if signatures.len() == MAX_SIGNATURES {
            return Err(bad("too many signature lines"));
        }
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or_else(|| bad("signature line must start with '\u{2014} '"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| bad("signature line must be '\u{2014} <name> <base64>'"))?;
        if !is_valid_key_name(name) || b64.contains(' ') {
            return Err(bad("signature line has an invalid key name"));
        }
        let raw = decode_b64(b64).ok_or_else(|| bad("signature is not canonical base64"))?;
        if raw.len() != 68 {
            return Err(bad(
                "signature must be a 4-byte key id and a 64-byte Ed25519 signature",
            ));
        }
        let id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&raw[4..]);
        signatures.push(SignatureLine {
            name: name.to_string(),
            id,
            sig,
        });
    }
    Ok(Note { text, signatures })
}

/// Opens a note the way Go's `note.Open` does: signatures by unknown keys are ignored, every
/// signature by a known key must verify, and at least one must. Returns the text and the
/// verifier keys that signed it.
pub fn open<'a>(
    note: &'a str,
    known: &[VerifierKey],
) -> Result<(&'a str, Vec<VerifierKey>), NoteError> {
    let n = parse(note)?;
    let mut signed_by = Vec::new();
    for s in &n.signatures {
        if let Some(k) = known.iter().find(|k| k.name == s.name && k.id == s.id) {
            if !k.verify(n.text.as_bytes(), &s.sig) {
                return Err(NoteError::BadSignature(s.name.clone()));
            }
            if !signed_by.contains(k) {
                signed_by.push(k.clone());
            }
        }
    }
    if signed_by.is_empty() {
        return Err(NoteError::NoKnownSignature);
    }
    Ok((n.text, signed_by))
}

#[cfg(test)]
mod tests {
    use super::*;

    const C2SP_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const C2SP_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    #[test]
    fn c2sp_example_verifies() {
        let k = VerifierKey::parse(C2SP_VKEY).unwrap();
        assert_eq!(k.to_string(), C2SP_VKEY);
        let (text, by) = open(C2SP_NOTE, &[k.clone()]).unwrap();
        assert_eq!(text, "This is an example message.\n");
        assert_eq!(by, vec![k]);
    }

    #[test]
    fn tampering_is_detected() {
        let k = VerifierKey::parse(C2SP_VKEY).unwrap();
        let tampered = C2SP_NOTE.replace("example message", "exemple message");
        assert_eq!(
            open(&tampered, &[k.clone()]),
            Err(NoteError::BadSignature("example.com/foo".into()))
        );
        let renamed = C2SP_NOTE.replace("\u{2014} example.com/foo", "\u{2014} example.com/bar");
        assert_eq!(open(&renamed, &[k]), Err(NoteError::NoKnownSignature));
    }

    #[test]
    fn a_key_recognises_its_own_text_only() {
        let a = SecretKey::generate("a.example").unwrap().verifier(); // test-only
        let b = SecretKey::generate("a.example").unwrap().verifier(); // test-only
        let text = a.to_string();
        assert!(a.is_text(&text));
        assert!(!b.is_text(&text));
        let (name, rest) = text.split_once('+').unwrap(); // test-only
        let (id, b64) = rest.split_once('+').unwrap(); // test-only
        for other in [
            format!("b.example+{id}+{b64}"),
            format!("{name}+{}+{b64}", id.to_uppercase()),
            format!("{name}+{:08x}+{b64}", a.id ^ 1),
            format!("{name}+{id}+{b64}="),
            format!("{name}+{id}"),
            format!("{name}{id}+{b64}"),
            text[..text.len() - 1].to_string(),
        ] {
            if other != text {
                assert!(!a.is_text(&other), "{other}");
            }
        }
    }

    #[test]
    fn a_key_seen_often_gets_tables() {
        let seen = Mutex::new(Seen::default());
        let k = SecretKey::generate("often.example").unwrap().verifier(); // test-only
        let count = |k: &VerifierKey| {
            seen.lock()
                .ok()
                .and_then(|s| s.get(&k.public_bytes()).map(|e| e.0))
        };
        assert!(PreparedKey::counted_in(&seen, &k, TABLES_AFTER - 1)
            .tables
            .is_none());
        assert!(PreparedKey::counted_in(&seen, &k, 1).tables.is_some());
        // Kept: the next call finds them without building.
        let kept = seen
            .lock()
            .map(|s| s.get(&k.public_bytes()).and_then(|e| e.1.clone()));
        let again = PreparedKey::counted_in(&seen, &k, 1).tables;
        assert!(matches!((kept, again), (Ok(Some(a)), Some(b)) if Arc::ptr_eq(&a, &b)));
        assert_eq!(count(&k), Some(TABLES_AFTER + 1));
        // Weak keys are neither counted nor given tables.
        let weak = VerifyingKey::from_bytes(&[0; 32]).map(|w| VerifierKey::new("weak", w));
        let weak = weak.unwrap(); // test-only
        let p = PreparedKey::counted_in(&seen, &weak, TABLES_AFTER);
        assert!(p.weak && p.tables.is_none() && count(&weak).is_none());
        // At most MOST_PREPARED keys: one more starts the count over.
        for i in 1..MOST_PREPARED {
            let other = SecretKey::generate(&format!("k{i}.example")).unwrap(); // test-only
            PreparedKey::counted_in(&seen, &other.verifier(), 1);
        }
        assert_eq!(count(&k), Some(TABLES_AFTER + 1));
        let last = SecretKey::generate("last.example").unwrap().verifier(); // test-only
        PreparedKey::counted_in(&seen, &last, 1);
        assert_eq!((count(&k), count(&last)), (None, Some(1)));
    }

    /// `verify_many` against ed25519-dalek's `verify_strict`, the reference, on valid
    /// signatures, on every kind of tampering, and on the edge cases strict verification
    /// exists for: non-canonical `s`, small-order and mixed-order keys and `R`, non-canonical
    /// `R`. All in one batch, so that the shared inversion is exercised too.
    #[test]
    fn verify_many_judges_exactly_as_verify_strict() {
        use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
        use curve25519_dalek::{EdwardsPoint, Scalar};
        use ed25519_dalek::Signature;
        // Deterministic bytes, so that a failure can be replayed.
        let mut counter = 0u64;
        let mut bytes = move || -> [u8; 32] {
            counter += 1;
            Sha256::digest(counter.to_le_bytes()).into()
        };
        let mut scalar = || Scalar::from_bytes_mod_order(bytes());
        let hram = |r: &[u8], a: &[u8], m: &[u8]| {
            let mut h = sha2::Sha512::new();
            h.update(r);
            h.update(a);
            h.update(m);
            Scalar::from_bytes_mod_order_wide(&h.finalize().into())
        };
        // Signs "by hand", so that keys and nonces may carry torsion.
        let sign = |a: &Scalar, big_a: &EdwardsPoint, r: &Scalar, t: &EdwardsPoint, m: &[u8]| {
            let big_r = (B * r + t).compress();
            let k = hram(big_r.as_bytes(), big_a.compress().as_bytes(), m);
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(big_r.as_bytes());
            sig[32..].copy_from_slice((r + k * a).as_bytes());
            sig
        };
        let mut cases: Vec<(VerifyingKey, Vec<u8>, [u8; 64])> = Vec::new();
        let (mut mixed_at, mut small_r_holds) = (Vec::new(), 0);
        for i in 0..48u8 {
            let a = scalar();
            let msg = vec![i; i as usize * 7];
            // A prime-order key, a valid signature and every way to spoil it.
            let big_a = B * a;
            let key = VerifyingKey::from_bytes(big_a.compress().as_bytes()).unwrap(); // test-only
            let good = sign(&a, &big_a, &scalar(), &EdwardsPoint::default(), &msg);
            cases.push((key, msg.clone(), good));
            let mut bad_r = good;
            bad_r[(i % 32) as usize] ^= 1 << (i % 8);
            cases.push((key, msg.clone(), bad_r));
            let mut bad_s = good;
            bad_s[32 + (i % 31) as usize] ^= 1 << (i % 8);
            cases.push((key, msg.clone(), bad_s));
            let mut other_msg = msg.clone();
            other_msg.push(i);
            cases.push((key, other_msg, good));
            // s + l: the same scalar, not canonical.
            let mut big_s = good;
            let l = Scalar::ZERO - Scalar::ONE; // l - 1
            let (mut carry, l) = (1u16, l.to_bytes());
            for (b, lb) in big_s[32..].iter_mut().zip(l) {
                let v = *b as u16 + lb as u16 + carry;
                *b = v as u8;
                carry = v >> 8;
            }
            cases.push((key, msg.clone(), big_s));
            // R with a torsion component: the cofactored equation holds, the strict one not.
            let t = EIGHT_TORSION[(i % 7 + 1) as usize];
            cases.push((key, msg.clone(), sign(&a, &big_a, &scalar(), &t, &msg)));
            // A mixed-order key: strict verification accepts exactly when [k]T vanishes.
            let mixed = big_a + t;
            let mixed_key = VerifyingKey::from_bytes(mixed.compress().as_bytes()).unwrap(); // test-only
            mixed_at.push(cases.len());
            cases.push((
                mixed_key,
                msg.clone(),
                sign(&a, &mixed, &scalar(), &t, &msg),
            ));
            cases.push((
                mixed_key,
                msg.clone(),
                sign(&a, &mixed, &scalar(), &EdwardsPoint::default(), &msg),
            ));
            // Small-order keys and small-order R, with s = 0 (then [s]B - [k]A is small order).
            let weak = EIGHT_TORSION[(i % 8) as usize];
            let weak_key = VerifyingKey::from_bytes(weak.compress().as_bytes()).unwrap(); // test-only
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(EIGHT_TORSION[(i / 8 % 8) as usize].compress().as_bytes());
            cases.push((weak_key, msg.clone(), sig));
            cases.push((key, msg.clone(), sig));
            // R written with the wrong sign: [s]B - [k]A is -R, whose encoding differs from
            // R's in the sign bit alone.
            let r = scalar();
            let minus_r = (-(B * r)).compress();
            let k = hram(minus_r.as_bytes(), big_a.compress().as_bytes(), &msg);
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(minus_r.as_bytes());
            sig[32..].copy_from_slice((r + k * a).as_bytes());
            cases.push((key, msg.clone(), sig));
            // A real key signs with nonce 0: R is the identity, and the equation holds.
            cases.push((
                key,
                msg.clone(),
                sign(&a, &big_a, &Scalar::ZERO, &EdwardsPoint::default(), &msg),
            ));
            // A small-order key "signs" with secret 0: [s]B - [k]A = R whenever [k]A vanishes.
            cases.push((
                weak_key,
                msg.clone(),
                sign(
                    &Scalar::ZERO,
                    &weak,
                    &scalar(),
                    &EdwardsPoint::default(),
                    &msg,
                ),
            ));
            // R encoded with y + p (only small y have such an encoding: the identity's y is 1),
            // and the identity with its sign bit set ("negative zero"), by a real key and
            // by a weak one, with s = k·a so that [s]B - [k]A is the identity.
            let mut y_plus_p = [0xffu8; 32];
            y_plus_p[0] = 0xee;
            y_plus_p[31] = 0x7f;
            let mut negative_zero = [0u8; 32];
            negative_zero[0] = 1;
            negative_zero[31] = 0x80;
            for r in [y_plus_p, negative_zero] {
                let k = hram(&r, big_a.compress().as_bytes(), &msg);
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(&r);
                sig[32..].copy_from_slice((k * a).as_bytes());
                cases.push((key, msg.clone(), sig));
                cases.push((weak_key, msg.clone(), sig));
            }
            // A mixed-order key and R of small order, with s = k·a: [s]B - [k]A is -[k]T,
            // which is R for about one R in eight, and strict verification refuses it for R's
            // order alone.
            for small in EIGHT_TORSION {
                let r = small.compress();
                let k = hram(r.as_bytes(), mixed.compress().as_bytes(), &msg);
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(r.as_bytes());
                sig[32..].copy_from_slice((k * a).as_bytes());
                let holds =
                    EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-mixed, &(k * a));
                if holds.compress() == r && small != EdwardsPoint::default() {
                    small_r_holds += 1;
                }
                cases.push((mixed_key, msg.clone(), sig));
            }
        }
        let keys: Vec<VerifierKey> = cases
            .iter()
            .map(|(k, _, _)| VerifierKey::new("test", *k))
            .collect();
        let jobs: Vec<(&VerifierKey, &[u8], &[u8; 64])> = cases
            .iter()
            .zip(&keys)
            .map(|((_, m, s), k)| (k, &m[..], s))
            .collect();
        let got = verify_many(&jobs);
        let want: Vec<bool> = cases
            .iter()
            .map(|(k, m, s)| k.verify_strict(m, &Signature::from_bytes(s)).is_ok())
            .collect();
        assert_eq!(got, want);
        // The same verdicts whether each key has its tables (a key seen often) or not.
        for tables in [false, true] {
            let prepared = keys
                .iter()
                .map(|k| (k.public_bytes(), PreparedKey::new(k, tables)))
                .collect();
            assert_eq!(verify_prepared(&jobs, &prepared), want, "tables: {tables}");
        }
        // The cases cover both verdicts, and mixed-order keys both ways.
        let accepted = want.iter().filter(|ok| **ok).count();
        assert!(accepted > 48 && accepted < want.len() / 2, "{accepted}");
        let mixed: Vec<bool> = mixed_at.iter().map(|&i| want[i]).collect();
        assert!(mixed.contains(&true) && mixed.contains(&false));
        // Some cases satisfy the equation with an R of small order other than the identity.
        assert!(small_r_holds > 0);
        // One at a time, the same.
        for ((k, m, s), want) in jobs.iter().zip(&want) {
            assert_eq!(k.verify(m, s), *want);
        }
        assert!(verify_many(&[]).is_empty());
    }

    #[test]
    fn weak_and_noncanonical_keys_are_refused() {
        // The identity point (small order) encoded as a verifier key.
        let mut raw = vec![1u8];
        let mut ident = [0u8; 32];
        ident[0] = 1;
        raw.extend_from_slice(&ident);
        let text = format!("weak+{:08x}+{}", key_id("weak", &ident), encode_b64(&raw));
        assert!(VerifierKey::parse(&text).is_err());
        // Uppercase key id.
        assert!(VerifierKey::parse(&C2SP_VKEY.replace("530d903a", "530D903A")).is_err());
    }
}
