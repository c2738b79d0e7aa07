//! The index as bytes. An auditor that verified a log keeps one beside its state, so that the
//! next run compares the published counts after decoding only the records that changed, not
//! every record of the log again.
//!
//! A snapshot carries a tag chosen by whoever saves it (the auditor uses the verified tree's
//! size and root): it is read back only under the same tag, so a snapshot can never be applied
//! to a state it was not taken from.

use super::{Band, Demand, DemandKey, Index, Interner, Report, Sealed};
use serde::{Deserialize, Serialize};

/// Changes whenever the layout does: a snapshot of another version is not read.
const VERSION: u32 = 2;

type Key = (String, String);

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    tag: String,
    /// Each dimension's values, in code order (code `i + 1` is `names[i]`).
    interners: Vec<Vec<String>>,
    /// `demands[i]` is the demand of `keys[i]`.
    keys: Vec<DemandKey>,
    demands: Vec<Demand>,
    reports: Vec<(Key, Report)>,
    bands: Vec<(Key, Band)>,
    sealed: Vec<(Key, Sealed)>,
    min_month: Option<u32>,
    max_month: u32,
    size: u64,
    checkpoint: String,
    last_logged_at: crate::entry::Millis,
}

impl Index {
    /// The index as bytes, under `tag`.
    pub fn to_snapshot(&self, tag: &str) -> Vec<u8> {
        let s = Snapshot {
            version: VERSION,
            tag: tag.to_string(),
            interners: self.interners.iter().map(|i| i.names.clone()).collect(),
            keys: self.slots.keys().to_vec(),
            demands: self.demands.clone(),
            reports: pairs(&self.reports),
            bands: pairs(&self.bands),
            sealed: pairs(&self.sealed),
            min_month: self.min_month,
            max_month: self.max_month,
            size: self.size,
            checkpoint: self.checkpoint.clone(),
            last_logged_at: self.last_logged_at,
        };
        serde_json::to_vec(&s).unwrap_or_default()
    }

    /// Reads a snapshot back; None if it is of another version or tag, or malformed.
    pub fn from_snapshot(bytes: &[u8], tag: &str) -> Option<Index> {
        let s: Snapshot = serde_json::from_slice(bytes).ok()?;
        if s.version != VERSION || s.tag != tag || s.keys.len() != s.demands.len() {
            return None;
        }
        if s.interners.len() != super::DIMENSIONS.len() {
            return None;
        }
        let interners = s
            .interners
            .into_iter()
            .map(|names| Interner {
                codes: names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.clone(), i as u32 + 1))
                    .collect(),
                names,
            })
            .collect();
        Some(Index {
            interners,
            demands: s.demands,
            slots: super::slots::Slots::from_keys(s.keys),
            reports: s.reports.into_iter().collect(),
            bands: s.bands.into_iter().collect(),
            sealed: s.sealed.into_iter().collect(),
            size: s.size,
            checkpoint: s.checkpoint,
            last_logged_at: s.last_logged_at,
            building: false,
            min_month: s.min_month,
            max_month: s.max_month,
            pending: vec![],
        })
    }
}

fn pairs<V: Clone>(m: &std::collections::HashMap<Key, V>) -> Vec<(Key, V)> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::state::Merged;
    use serde_json::json;

    #[test]
    fn a_snapshot_answers_like_the_index_and_only_under_its_tag() {
        let mut idx = Index::new();
        for i in 0..300u64 {
            let kind = ["user_data", "preservation"][(i % 2) as usize];
            let country = ["DE", "FR", "US"][(i % 3) as usize];
            let reason = ["privacy", "fraud"][(i % 2) as usize];
            let record = json!({
                "kind": kind,
                "country": country,
                "received_on": format!("2025-{:02}-03", 1 + i % 12),
                "reasons": [reason],
                "targets": {"accounts": i % 5},
            });
            let m = Merged::Request {
                record,
                updates: vec![],
            };
            idx.upsert(&format!("p{}.example", i % 4), &i.to_string(), &m);
        }
        idx.upsert(
            "p0.example",
            "seal-1",
            &Merged::Seal {
                basis: "gag_order".into(),
                kind: Some("user_data".into()),
                country: None,
                disclose_by: "2025-06-01".into(),
                commitment: "x".into(),
                extensions: vec![],
                revealed: None,
                updates: vec![],
            },
        );
        let bytes = idx.to_snapshot("size 300");
        assert!(Index::from_snapshot(&bytes, "size 301").is_none());
        let mut back = Index::from_snapshot(&bytes, "size 300").unwrap(); // test-only
        let q = super::super::Query {
            group_by: vec!["country".into(), "reason".into(), "period".into()],
            ..Default::default()
        };
        assert_eq!(back.query(&q), idx.query(&q));
        assert_eq!(back.report_counts(), idx.report_counts());
        // An upsert after loading replaces the loaded demand, as it would in the original.
        let changed = Merged::Request {
            record: json!({"kind": "user_data", "country": "BR", "received_on": "2025-01-09"}),
            updates: vec![],
        };
        idx.upsert("p1.example", "1", &changed);
        back.upsert("p1.example", "1", &changed);
        assert_eq!(back.query(&q), idx.query(&q));
        assert_eq!(back.demand_count(), 300);
    }
}
