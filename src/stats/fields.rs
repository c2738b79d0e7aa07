//! What a demand's row needs from its record, read without building the whole record.
//!
//! Every committed batch, every start-up and every step of an audit turns stored records
//! (JSON) into rows. Decoding a record into a [`Merged`] builds a tree of maps and strings
//! only to read ten fields of it; [`decode`] reads those fields straight from the bytes,
//! borrowing the strings, and falls back to the full decoding for anything else (seals,
//! reports, or a record whose fields have unexpected types), so the rows come out the same.

use crate::statement::state::Merged;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

/// The counted fields of a request record; a missing field reads as empty (or zero).
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub(super) struct Fields<'a> {
    #[serde(borrow, default)]
    pub country: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub channel: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub process: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub authority: Option<Authority<'a>>,
    #[serde(borrow, default)]
    pub disposition: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub user_notified: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub received_on: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub reasons: Option<Vec<Cow<'a, str>>>,
    #[serde(default)]
    pub targets: Option<Targets>,
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub(super) struct Authority<'a> {
    #[serde(rename = "type", borrow, default)]
    pub ty: Option<Cow<'a, str>>,
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

fn text<'a>(v: &'a Value, f: &str) -> Option<Cow<'a, str>> {
    v.get(f).and_then(Value::as_str).map(Cow::Borrowed)
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
                    .filter_map(|r| r.as_str().map(Cow::Borrowed))
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

    pub fn str<'s>(f: &'s Option<Cow<'a, str>>) -> &'s str {
        f.as_deref().unwrap_or("")
    }

    pub fn authority(&self) -> &str {
        self.authority
            .as_ref()
            .and_then(|a| a.ty.as_deref())
            .unwrap_or("")
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

/// A stored merged request, as far as the row needs it.
#[derive(Deserialize)]
struct StoredRequest<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(borrow)]
    record: Fields<'a>,
    // Required, as decoding a `Merged` requires it.
    #[allow(dead_code)]
    updates: IgnoredAny,
}

/// A stored merged record, decoded as far as the index needs it.
pub(super) enum Decoded<'a> {
    Request(Fields<'a>),
    Other(Merged),
}

/// Decodes a stored merged record; None if it is not one.
pub(super) fn decode(value: &[u8]) -> Option<Decoded<'_>> {
    match serde_json::from_slice::<StoredRequest>(value) {
        Ok(r) if r.ty == "request" => Some(Decoded::Request(r.record)),
        _ => serde_json::from_slice::<Merged>(value)
            .ok()
            .map(Decoded::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The fast reading and the lenient one agree, whatever the record holds.
    #[test]
    fn reading_the_bytes_gives_the_fields_of_the_parsed_record() {
        let records = [
            json!({"country": "DE", "kind": "user_data", "channel": "portal",
                   "process": "court_order", "authority": {"type": "police", "name": "x"},
                   "disposition": "complied", "user_notified": "yes",
                   "received_on": "2026-03-04", "reasons": ["fraud", "terrorism"],
                   "targets": {"accounts": 3, "urls": 1}, "extra": [1, {"a": null}]}),
            json!({"country": "F\u{e9}\"R", "kind": "takedown"}),
            json!({}),
            // Unexpected types: the bytes path gives up and the lenient one decides.
            json!({"country": 5, "reasons": ["a", 1], "targets": {"accounts": -1},
                   "authority": "police"}),
        ];
        for r in records {
            let stored =
                serde_json::to_vec(&json!({"type": "request", "record": r, "updates": []}))
                    .unwrap();
            let Some(Decoded::Other(Merged::Request { record, .. })) =
                serde_json::from_slice::<Merged>(&stored)
                    .ok()
                    .map(Decoded::Other)
            else {
                panic!("not a request")
            };
            let lenient = Fields::of(&record);
            match decode(&stored) {
                Some(Decoded::Request(fast)) => {
                    assert_eq!(Fields::str(&fast.country), Fields::str(&lenient.country));
                    assert_eq!(Fields::str(&fast.kind), Fields::str(&lenient.kind));
                    assert_eq!(fast.authority(), lenient.authority());
                    assert_eq!(fast.targets(), lenient.targets());
                    assert_eq!(
                        fast.reasons.unwrap_or_default(),
                        lenient.reasons.unwrap_or_default()
                    );
                    assert_eq!(
                        Fields::str(&fast.received_on),
                        Fields::str(&lenient.received_on)
                    );
                }
                Some(Decoded::Other(Merged::Request { record: r2, .. })) => {
                    assert_eq!(r2, record, "fell back to the full decoding");
                }
                _ => panic!("a request must decode"),
            }
        }
        // Not a request, or not a record at all.
        let seal = json!({"type": "seal", "commitment": "c", "disclose_by": "2027-01-01",
                          "basis": "b", "kind": null, "country": null, "extensions": [],
                          "revealed": null, "updates": []});
        assert!(matches!(
            decode(&serde_json::to_vec(&seal).unwrap()),
            Some(Decoded::Other(Merged::Seal { .. }))
        ));
        assert!(decode(br#"{"type":"request","record":{}}"#).is_none());
        assert!(decode(b"not json").is_none());
    }
}
