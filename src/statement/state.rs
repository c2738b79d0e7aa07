//! The derived state: publishers and their key history, statement ids, seals and merged
//! records. All of it is a function of the entries, so an auditor rebuilds it from the log
//! alone; the service keeps it in the store, written in the same commit as the entries.
//!
//! Keys in the store's state space:
//! `p/<publisher>` → [`PublisherState`]; `k/<public key hex>` → owning publisher;
//! `i/<publisher>/<statement id>` → [`StatementRef`]; `r/<publisher>/<statement id>` →
//! [`Merged`].

use crate::note::VerifierKey;
use crate::problem::Head;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Signing,
    Recovery,
}

/// One key and the entries for which it was in force: from `from` (the index after the entry
/// that set it) up to, not including, `until` (the index after the entry that replaced it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPeriod {
    pub vkey: String,
    pub role: Role,
    pub from: u64,
    pub until: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublisherState {
    pub id: String,
    pub name: String,
    pub url: Option<String>,
    pub status: Status,
    pub keys: Vec<KeyPeriod>,
    pub head: Head,
    /// Index of the entry that created it (genesis for the operator).
    pub registered_at: u64,
}

impl PublisherState {
    /// The key of `role` in force now.
    pub fn current(&self, role: Role) -> Option<VerifierKey> {
        self.current_text(role)
            .and_then(|k| VerifierKey::parse_cached(k).ok())
    }

    /// The text of the key of `role` in force now.
    pub fn current_text(&self, role: Role) -> Option<&str> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.role == role && k.until.is_none())
            .map(|k| k.vkey.as_str())
    }

    /// Every key this publisher ever had with this name and key id (for signature checks
    /// made before the statement's position is known).
    pub fn keys_with_id(&self, name: &str, id: u32) -> Vec<VerifierKey> {
        self.keys
            .iter()
            .filter_map(|k| VerifierKey::parse_cached(&k.vkey).ok())
            .filter(|k| k.name == name && k.id == id)
            .collect()
    }

    /// Ends the current key of `role` at `until` and starts `vkey` from there.
    pub fn replace_key(&mut self, role: Role, vkey: String, at: u64) {
        for k in self
            .keys
            .iter_mut()
            .filter(|k| k.role == role && k.until.is_none())
        {
            k.until = Some(at);
        }
        self.keys.push(KeyPeriod {
            vkey,
            role,
            from: at,
            until: None,
        });
    }
}

/// Where a statement id was used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementRef {
    pub index: u64,
    #[serde(rename = "type")]
    pub kind: String,
    /// SHA-256 of the whole note, hex: the same bytes again are a duplicate.
    pub note: String,
}

/// A revealed seal's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revealed {
    pub index: u64,
    pub record: Value,
}

/// The current state of a statement that later statements can change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Merged {
    Request {
        record: Value,
        updates: Vec<u64>,
    },
    Seal {
        commitment: String,
        disclose_by: String,
        basis: String,
        kind: Option<String>,
        country: Option<String>,
        /// Indexes of `extend` entries.
        extensions: Vec<u64>,
        revealed: Option<Revealed>,
        updates: Vec<u64>,
    },
    Aggregate {
        report: Value,
        updates: Vec<u64>,
    },
    Band {
        report: Value,
    },
}

pub fn publisher_key(id: &str) -> Vec<u8> {
    format!("p/{id}").into_bytes()
}

pub fn pubkey_key(pk: &[u8; 32]) -> Vec<u8> {
    format!("k/{}", hex::encode(pk)).into_bytes()
}

pub fn id_key(publisher: &str, id: &str) -> Vec<u8> {
    format!("i/{publisher}/{id}").into_bytes()
}

/// A statement's record as its updates left it. The store compresses the values under this
/// prefix ([`crate::store::compress::COMPRESSED`]): they are the bulk of the state.
pub fn merged_key(publisher: &str, id: &str) -> Vec<u8> {
    format!("r/{publisher}/{id}").into_bytes()
}

/// The operator's publisher id.
pub fn operator_id(origin: &str) -> String {
    format!("{origin}/operator")
}

/// The origin's host: what comes before its first `/` (spec section 2).
pub fn origin_host(origin: &str) -> &str {
    origin.split('/').next().unwrap_or(origin)
}

/// The stored form of a new request's merged record, exactly as [`encode`] writes
/// `Merged::Request { record: record_of_request(body), updates: [] }`, but written straight
/// from the statement's body: every request statement makes one, and copying the body to drop
/// its common fields cost more than the writing.
pub fn encode_new_request(body: &serde_json::Map<String, Value>) -> Vec<u8> {
    use serde::ser::{SerializeMap, Serializer};
    struct RecordOf<'a>(&'a serde_json::Map<String, Value>);
    impl Serialize for RecordOf<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(None)?;
            for (k, v) in self.0 {
                if !super::record::COMMON_FIELDS.contains(&k.as_str()) {
                    m.serialize_entry(k, v)?;
                }
            }
            m.end()
        }
    }
    #[derive(Serialize)]
    #[serde(tag = "type", rename = "request")]
    struct NewRequest<'a> {
        record: RecordOf<'a>,
        updates: [u64; 0],
    }
    encode(&NewRequest {
        record: RecordOf(body),
        updates: [],
    })
}

/// Reads and writes typed state values as JSON.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: Option<Vec<u8>>) -> Option<T> {
    bytes.and_then(|b| serde_json::from_slice(&b).ok())
}

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

thread_local! {
    /// The last state decoded or encoded for each publisher on this thread, with its bytes.
    /// The writer reads the state of every statement's publisher and writes it back with a
    /// new head, and a few publishers sign everything: decoding the JSON just written was a
    /// twentieth of an audit's rules thread. A state is taken from here only for the very
    /// bytes it came from, so this changes no result.
    static PUBLISHERS: std::cell::RefCell<std::collections::HashMap<String, (Vec<u8>, PublisherState)>> =
        Default::default();
}

/// Most publishers remembered per thread; past that the memory starts over.
const MOST_PUBLISHERS: usize = 4096;

fn remember(bytes: Vec<u8>, state: &PublisherState) {
    PUBLISHERS.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MOST_PUBLISHERS && !m.contains_key(&state.id) {
            m.clear();
        }
        m.insert(state.id.clone(), (bytes, state.clone()));
    });
}

/// [`decode`] for the state of publisher `id`.
pub fn decode_publisher(id: &str, bytes: Option<Vec<u8>>) -> Option<PublisherState> {
    let bytes = bytes?;
    let known = PUBLISHERS.with(|m| {
        m.borrow()
            .get(id)
            .filter(|(b, _)| *b == bytes)
            .map(|(_, s)| s.clone())
    });
    if known.is_some() {
        return known;
    }
    let state: PublisherState = serde_json::from_slice(&bytes).ok()?;
    remember(bytes, &state);
    Some(state)
}

/// [`encode`] for a publisher's state.
pub fn encode_publisher(state: &PublisherState) -> Vec<u8> {
    let bytes = encode(state);
    remember(bytes.clone(), state);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A remembered publisher state is given back only for the bytes it came from, and it is
    /// what decoding those bytes gives.
    #[test]
    fn publisher_states_are_remembered_by_their_bytes() {
        let mut s = PublisherState {
            id: "acme.example".into(),
            name: "Acme \"Corp\"".into(),
            url: Some("https://acme.example".into()),
            status: Status::Active,
            keys: vec![KeyPeriod {
                vkey: "acme.example+01020304+AQ==".into(),
                role: Role::Signing,
                from: 3,
                until: None,
            }],
            head: Head {
                seq: 7,
                hash: Some("ab".repeat(32)),
            },
            registered_at: 2,
        };
        let first = encode_publisher(&s);
        s.head = Head {
            seq: 8,
            hash: Some("cd".repeat(32)),
        };
        let second = encode(&s); // written elsewhere: not remembered
        for bytes in [&first, &second, &first] {
            let want: Option<PublisherState> = decode(Some(bytes.clone()));
            assert!(want.is_some());
            assert_eq!(decode_publisher("acme.example", Some(bytes.clone())), want);
        }
        assert_eq!(decode_publisher("acme.example", Some(b"{".to_vec())), None);
        assert_eq!(decode_publisher("acme.example", None), None);
        // Another publisher's name never yields this one's state.
        let other: Option<PublisherState> = decode_publisher("other.example", Some(first.clone()));
        assert_eq!(other.map(|o| o.id), Some("acme.example".to_string()));
    }

    #[test]
    fn a_new_request_is_stored_as_its_merged_record_would_be() {
        let bodies = [
            serde_json::json!({"v": 1, "log": "l", "publisher": "p", "seq": 3, "prev": "ab",
                "id": "x", "type": "request", "kind": "user_data", "country": "DE",
                "reasons": ["a", "b"], "targets": {"accounts": 1}, "note": "q\"\\\n\u{e9}"}),
            serde_json::json!({"kind": "takedown", "id": "y", "zeta": null, "alpha": 1.5}),
            serde_json::json!({}),
        ];
        for b in bodies {
            let serde_json::Value::Object(body) = b else {
                panic!("an object")
            };
            let merged = Merged::Request {
                record: super::super::record::record_of_request(&body),
                updates: vec![],
            };
            assert_eq!(
                String::from_utf8(encode_new_request(&body)).unwrap(), // test-only
                String::from_utf8(encode(&merged)).unwrap()            // test-only
            );
        }
    }
}
