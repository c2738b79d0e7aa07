//! What a demand's row needs from its record, read without building the whole record.
//!
//! Every committed batch, every start-up and every step of an audit turns stored records
//! (JSON) into rows. Decoding a record into a [`Merged`] builds a tree of maps and strings
//! only to read ten fields of it; [`decode`] reads those fields straight from the bytes,
//! borrowing the strings, and falls back to the full decoding for anything else (seals,
//! reports, or a record whose fields have unexpected types), so the rows come out the same.

use crate::statement::state::Merged;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::marker::PhantomData;

/// The counted fields of a request record; a missing field reads as empty (or zero).
///
/// Strings are borrowed from the stored bytes: one holding an escape cannot be, and sends the
/// record down the full decoding (the fields read here are codes and dates, never escaped).
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub(super) struct Fields<'a> {
    #[serde(borrow, default)]
    pub country: Option<&'a str>,
    #[serde(borrow, default)]
    pub kind: Option<&'a str>,
    #[serde(borrow, default)]
    pub channel: Option<&'a str>,
    #[serde(borrow, default)]
    pub process: Option<&'a str>,
    #[serde(borrow, default, deserialize_with = "object")]
    pub authority: Option<Authority<'a>>,
    #[serde(borrow, default)]
    pub disposition: Option<&'a str>,
    #[serde(borrow, default)]
    pub user_notified: Option<&'a str>,
    #[serde(borrow, default)]
    pub received_on: Option<&'a str>,
    #[serde(borrow, default)]
    pub reasons: Option<Vec<&'a str>>,
    #[serde(default, deserialize_with = "object")]
    pub targets: Option<Targets>,
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub(super) struct Authority<'a> {
    #[serde(rename = "type", borrow, default)]
    pub ty: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub(super) struct Targets {
    #[serde(default)]
    pub accounts: Option<u64>,
    #[serde(default)]
    pub identifiers: Option<u64>,
    #[serde(default)]
    pub items: Option<u64>,
    #[serde(default)]
    pub urls: Option<u64>,
}

/// A struct read from a JSON object only: serde's derived structs also accept an array,
/// field by field, which the lenient reading treats as holding nothing.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(V(PhantomData)).map(Object)
    }
}

/// An optional field holding an object (null reads as missing).
fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Ok(Option::<Object<T>>::deserialize(d)?.map(|o| o.0))
}

fn text<'a>(v: &'a Value, f: &str) -> Option<&'a str> {
    v.get(f).and_then(Value::as_str)
}

impl<'a> Fields<'a> {
    /// The fields of a parsed record, read leniently: a field of another type reads as
    /// missing, and a reason that is not a string is skipped.
    pub fn of(record: &'a Value) -> Fields<'a> {
        let t = &record["targets"];
        let n = |f: &str| t[f].as_u64();
        Fields {
            country: text(record, "country"),
            kind: text(record, "kind"),
            channel: text(record, "channel"),
            process: text(record, "process"),
            authority: Some(Authority {
                ty: text(&record["authority"], "type"),
            }),
            disposition: text(record, "disposition"),
            user_notified: text(record, "user_notified"),
            received_on: text(record, "received_on"),
            reasons: Some(
                record["reasons"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect(),
            ),
            targets: Some(Targets {
                accounts: n("accounts"),
                identifiers: n("identifiers"),
                items: n("items"),
                urls: n("urls"),
            }),
        }
    }

    pub fn str(f: &Option<&'a str>) -> &'a str {
        f.unwrap_or("")
    }

    pub fn authority(&self) -> &str {
        self.authority.as_ref().and_then(|a| a.ty).unwrap_or("")
    }

    pub fn targets(&self) -> [u64; 4] {
        let t = self.targets.as_ref();
        let n = |f: fn(&Targets) -> Option<u64>| t.and_then(f).unwrap_or(0);
        [
            n(|t| t.accounts),
            n(|t| t.identifiers),
            n(|t| t.items),
            n(|t| t.urls),
        ]
    }
}

/// A stored merged request, as far as the row needs it, with the types `Merged` requires.
#[derive(Deserialize)]
struct StoredRequest<'a> {
    #[serde(rename = "type", borrow)]
    ty: &'a str,
    #[serde(borrow)]
    record: Object<Fields<'a>>,
    #[allow(dead_code)]
    updates: Vec<u64>,
}

/// A stored merged record, decoded as far as the index needs it.
pub(super) enum Decoded<'a> {
    Request(Fields<'a>),
    Other(Merged),
}

/// Decodes a stored merged record; None if it is not one.
pub(super) fn decode(value: &[u8]) -> Option<Decoded<'_>> {
    match serde_json::from_slice::<StoredRequest>(value) {
        Ok(r) if r.ty == "request" => Some(Decoded::Request(r.record.0)),
        _ => serde_json::from_slice::<Merged>(value)
            .ok()
            .map(Decoded::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Index;
    use super::*;
    use serde_json::json;

    /// Rows built from the stored bytes equal the rows built from the decoded records, read
    /// leniently, whatever the records hold.
    #[test]
    fn reading_the_bytes_gives_the_rows_of_the_decoded_records() {
        let records = [
            json!({"country": "DE", "kind": "user_data", "channel": "portal",
                   "process": "court_order", "authority": {"type": "police", "name": "x"},
                   "disposition": "complied", "user_notified": "yes",
                   "received_on": "2026-03-04", "reasons": ["fraud", "terrorism"],
                   "targets": {"accounts": 3, "urls": 1}, "extra": [1, {"a": null}]}),
            json!({"country": "F\u{e9}\"R", "kind": "takedown", "authority": null}),
            json!({}),
            // Unexpected types: the bytes give up and the lenient reading decides.
            json!({"country": 5, "reasons": ["a", 1], "targets": {"accounts": -1},
                   "authority": "police"}),
            json!({"authority": ["police"], "country": "FR"}),
            json!({"targets": [3, 0, 0, 0], "kind": "takedown"}),
            json!(["DE", "user_data"]),
        ];
        let mut stored: Vec<Vec<u8>> = records
            .iter()
            .map(|r| serde_json::to_vec(&json!({"type": "request", "record": r, "updates": []})))
            .collect::<Result<_, _>>()
            .unwrap();
        // Not a valid merged record at all: neither reading counts it.
        stored.push(br#"{"type":"request","record":{"country":"DE"},"updates":"x"}"#.to_vec());
        stored.push(br#"{"type":"request","record":{"country":"DE"}}"#.to_vec());
        let (mut fast, mut full) = (Index::new(), Index::new());
        for (i, bytes) in stored.iter().enumerate() {
            fast.apply_record(format!("r/p/{i}").as_bytes(), Some(bytes));
            if let Ok(m) = serde_json::from_slice::<Merged>(bytes) {
                full.upsert("p", &i.to_string(), &m);
            }
        }
        assert_eq!(fast.demand_count(), 7);
        assert_eq!(format!("{:?}", fast.demands), format!("{:?}", full.demands));
        let names = |x: &Index| {
            x.interners
                .iter()
                .map(|i| i.names.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&fast), names(&full));
        // The common record does take the short way.
        assert!(matches!(decode(&stored[0]), Some(Decoded::Request(_))));
        assert!(matches!(decode(&stored[6]), Some(Decoded::Other(_))));
        let seal = json!({"type": "seal", "commitment": "c", "disclose_by": "2027-01-01",
                          "basis": "b", "kind": null, "country": null, "extensions": [],
                          "revealed": null, "updates": []});
        assert!(matches!(
            decode(&serde_json::to_vec(&seal).unwrap()),
            Some(Decoded::Other(Merged::Seal { .. }))
        ));
        assert!(decode(b"not json").is_none());
    }
}
