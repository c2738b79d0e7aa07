//! Aggregate counts (spec 6.3): who demanded what from whom, computed from the merged
//! records, so that anyone replaying entries `0 … size−1` gets the same numbers.
//!
//! The [`Index`] holds one compact row per itemised demand (requests and revealed seals, in
//! merged state), plus counted reports, bands and unrevealed seals. The service keeps one in
//! memory, updated with each committed batch's changed records and rebuilt from the stored
//! records at start-up; the auditor builds one from its replay. Queries scan the compact rows:
//! dimension values are interned to small integers, so a grouped query over a million demands
//! is a tight loop.

mod fields;
mod slots;
mod snapshot;

use fields::{Decoded, Fields};

use crate::statement::state::Merged;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// The dimensions a query can group or filter by, in the spec's order.
pub const DIMENSIONS: [&str; 10] = [
    "publisher",
    "country",
    "kind",
    "channel",
    "process",
    "authority",
    "disposition",
    "reason",
    "user_notified",
    "period",
];

const MEASURES: [&str; 6] = [
    "requests",
    "produced",
    "accounts",
    "identifiers",
    "items",
    "urls",
];

/// Dispositions that count as `produced` (data disclosed or content restricted).
const PRODUCED: [&str; 3] = ["complied", "partially_complied", "actioned_under_terms"];

/// Period granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Month,
    Quarter,
    Half,
    Year,
}

impl Interval {
    pub fn parse(s: &str) -> Option<Interval> {
        Some(match s {
            "month" => Interval::Month,
            "quarter" => Interval::Quarter,
            "half" => Interval::Half,
            "year" => Interval::Year,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Interval::Month => "month",
            Interval::Quarter => "quarter",
            Interval::Half => "half",
            Interval::Year => "year",
        }
    }

    /// The period key of a month (months counted as year·12 + month−1).
    pub fn key(self, month: u32) -> String {
        let (y, m) = (month / 12, month % 12 + 1);
        match self {
            Interval::Month => format!("{y:04}-{m:02}"),
            Interval::Quarter => format!("{y:04}-Q{}", (m - 1) / 3 + 1),
            Interval::Half => format!("{y:04}-H{}", (m - 1) / 6 + 1),
            Interval::Year => format!("{y:04}"),
        }
    }
}

/// A period key's interval and its first and last month.
pub fn parse_period(key: &str) -> Option<(Interval, u32, u32)> {
    let year: u32 = key
        .get(..4)
        .filter(|y| y.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()?;
    let base = year * 12;
    let rest = &key[4..];
    Some(match rest {
        "" => (Interval::Year, base, base + 11),
        "-H1" => (Interval::Half, base, base + 5),
        "-H2" => (Interval::Half, base + 6, base + 11),
        _ if rest.len() == 3 && rest.starts_with("-Q") => {
            let q: u32 = rest[2..].parse().ok().filter(|q| (1..=4).contains(q))?;
            (Interval::Quarter, base + (q - 1) * 3, base + q * 3 - 1)
        }
        _ if rest.len() == 3
            && rest.starts_with('-')
            && rest[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            let m: u32 = rest[1..].parse().ok().filter(|m| (1..=12).contains(m))?;
            (Interval::Month, base + m - 1, base + m - 1)
        }
        _ => return None,
    })
}

/// Month number of a `YYYY-MM-DD` date.
fn month_of(date: &str) -> Option<u32> {
    let y: u32 = date.get(..4)?.parse().ok()?;
    let m: u32 = date.get(5..7)?.parse().ok()?;
    Some(y * 12 + m.checked_sub(1)?)
}

/// Interned strings for one dimension.
#[derive(Debug, Default, Clone)]
struct Interner {
    names: Vec<String>,
    codes: HashMap<String, u32>,
}

impl Interner {
    fn code(&mut self, s: &str) -> u32 {
        if let Some(c) = self.codes.get(s) {
            return *c;
        }
        let c = self.names.len() as u32 + 1; // 0 is "missing"
        self.names.push(s.to_string());
        self.codes.insert(s.to_string(), c);
        c
    }
    fn find(&self, s: &str) -> Option<u32> {
        self.codes.get(s).copied()
    }
    fn name(&self, c: u32) -> Option<&str> {
        c.checked_sub(1)
            .and_then(|i| self.names.get(i as usize))
            .map(String::as_str)
    }
}

// Dimension indexes, as in [`DIMENSIONS`].
const D_PUBLISHER: usize = 0;
const D_COUNTRY: usize = 1;
const D_KIND: usize = 2;
const D_CHANNEL: usize = 3;
const D_PROCESS: usize = 4;
const D_AUTHORITY: usize = 5;
const D_DISPOSITION: usize = 6;
const D_REASON: usize = 7;
const D_NOTIFIED: usize = 8;
const D_PERIOD: usize = 9;

/// One itemised demand, packed into a 64-byte row: a grouped query is a scan over all rows,
/// so the row size sets the query's speed (memory traffic, not arithmetic, is the cost).
///
/// Every dimension but the publisher is a schema enum (countries, kinds, channels …, at most a
/// few hundred values; `reasons` has fewer than 64), so their codes fit in 16 bits and the
/// reasons in a bitmask; `schema_enums_fit_the_packed_row` checks this against the schemas.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(from = "DemandRow", into = "DemandRow")]
struct Demand {
    targets: [u64; 4],
    /// Bit `c − 1` is set for each reason code `c`.
    reasons: u64,
    publisher: u32,
    /// `received_on` as 1 + month number; 0 if missing.
    month: u32,
    /// Codes of dimensions 1 to 6 and 8 (country … disposition, user_notified).
    dims: [u16; 7],
    produced: bool,
}

/// A demand as a tuple, for snapshots.
type DemandRow = ([u64; 4], u64, u32, u32, [u16; 7], bool);

impl From<DemandRow> for Demand {
    fn from((targets, reasons, publisher, month, dims, produced): DemandRow) -> Demand {
        Demand {
            targets,
            reasons,
            publisher,
            month,
            dims,
            produced,
        }
    }
}

impl From<Demand> for DemandRow {
    fn from(d: Demand) -> DemandRow {
        (
            d.targets,
            d.reasons,
            d.publisher,
            d.month,
            d.dims,
            d.produced,
        )
    }
}

impl Demand {
    /// The code of dimension `d` (any but reason and period).
    fn code(&self, d: usize) -> u32 {
        match d {
            D_PUBLISHER => self.publisher,
            D_NOTIFIED => u32::from(self.dims[6]),
            d => self
                .dims
                .get(d.wrapping_sub(1))
                .map_or(0, |c| u32::from(*c)),
        }
    }

    fn set(&mut self, d: usize, code: u32) {
        match d {
            D_PUBLISHER => self.publisher = code,
            D_NOTIFIED => self.dims[6] = u16::try_from(code).unwrap_or(u16::MAX),
            d => {
                if let Some(slot) = self.dims.get_mut(d.wrapping_sub(1)) {
                    *slot = u16::try_from(code).unwrap_or(u16::MAX);
                }
            }
        }
    }

    fn has_reason(&self, code: u32) -> bool {
        (1..=64).contains(&code) && self.reasons & (1 << (code - 1)) != 0
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Report {
    publisher: String,
    period: String,
    country: String,
    kind: String,
    requests: u64,
    produced: u64,
    targets: [u64; 4],
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Band {
    publisher: String,
    period: String,
    category: String,
    requests: Value,
    accounts: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sealed {
    publisher: String,
    basis: String,
    kind: Option<String>,
    country: Option<String>,
    disclose_by: String,
}

/// What a stats query asks.
#[derive(Debug, Clone)]
pub struct Query {
    pub group_by: Vec<String>,
    pub interval: Interval,
    pub from: Option<(Interval, u32, u32)>,
    pub to: Option<(Interval, u32, u32)>,
    /// Equality filters by dimension name.
    pub filters: Vec<(String, String)>,
}

impl Default for Query {
    fn default() -> Query {
        Query {
            group_by: vec![],
            interval: Interval::Half,
            from: None,
            to: None,
            filters: vec![],
        }
    }
}

impl Query {
    /// Reads query parameters; an error says which parameter to fix.
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Query, String> {
        let mut q = Query::default();
        for (k, v) in params {
            match k {
                "group_by" => {
                    for d in v.split(',').filter(|d| !d.is_empty()) {
                        if !DIMENSIONS.contains(&d) {
                            return Err(format!("group_by: unknown dimension {d:?}; use {}", DIMENSIONS.join(", ")));
                        }
                        if q.group_by.iter().any(|g| g == d) {
                            return Err(format!("group_by: {d} is given twice"));
                        }
                        q.group_by.push(d.to_string());
                    }
                    if q.group_by.len() > 3 {
                        return Err("group_by: at most 3 dimensions".into());
                    }
                }
                "interval" => q.interval = Interval::parse(v).ok_or_else(|| format!("interval must be month, quarter, half or year, not {v:?}"))?,
                "from" => q.from = Some(parse_period(v).ok_or_else(|| format!("from must be a period key (2026, 2026-H1, 2026-Q1, 2026-03), not {v:?}"))?),
                "to" => q.to = Some(parse_period(v).ok_or_else(|| format!("to must be a period key (2026, 2026-H1, 2026-Q1, 2026-03), not {v:?}"))?),
                d if DIMENSIONS.contains(&d) => {
                    if d == "period" && parse_period(v).is_none() {
                        return Err(format!("period must be a period key, not {v:?}"));
                    }
                    q.filters.push((d.to_string(), v.to_string()));
                }
                other => return Err(format!("unknown parameter {other:?}; use group_by, interval, from, to or a dimension ({})", DIMENSIONS.join(", "))),
            }
        }
        Ok(q)
    }
}

/// The aggregate index.
#[derive(Debug, Clone, Default)]
pub struct Index {
    interners: Vec<Interner>,
    demands: Vec<Demand>,
    /// The row in `demands` of each [`demand_key`] of (publisher, id).
    slots: slots::Slots,
    reports: HashMap<(String, String), Report>,
    bands: HashMap<(String, String), Band>,
    sealed: HashMap<(String, String), Sealed>,
    /// Tree size and signed checkpoint the numbers are for.
    pub size: u64,
    pub checkpoint: String,
    /// `logged_at` of entry size−1, which decides what is overdue.
    pub last_logged_at: crate::entry::Millis,
    /// True while the index is being rebuilt after a start: queries must wait.
    pub building: bool,
    /// The earliest and latest `received_on` months among the demands (bound the period
    /// codes; a replaced demand may leave them wider than needed, never narrower).
    min_month: Option<u32>,
    max_month: u32,
    /// Records committed while building, applied once the rebuild is done.
    pending: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A demand's identity, (publisher, id), as 128 bits of SHA-256: a million demands are then
/// a million small keys instead of two million strings (about 130 MiB less at 1M). Two
/// demands would share a slot only on a SHA-256 collision in 128 bits.
type DemandKey = [u64; 2];

fn demand_key(publisher: &str, id: &str) -> DemandKey {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(publisher.as_bytes());
    h.update([0]);
    h.update(id.as_bytes());
    let d = h.finalize();
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[i..i + 8]);
        u64::from_le_bytes(b)
    };
    [word(0), word(8)]
}

fn s(v: &Value, f: &str) -> String {
    v.get(f).and_then(Value::as_str).unwrap_or("").to_string()
}

fn targets(v: &Value) -> [u64; 4] {
    let t = &v["targets"];
    ["accounts", "identifiers", "items", "urls"].map(|f| t[f].as_u64().unwrap_or(0))
}

impl Index {
    pub fn new() -> Index {
        Index {
            interners: vec![Interner::default(); 10],
            ..Default::default()
        }
    }

    /// Updates the index with a merged record (`r/<publisher>/<id>`) that a batch changed.
    pub fn upsert(&mut self, publisher: &str, id: &str, m: &Merged) {
        let key = (publisher.to_string(), id.to_string());
        match m {
            Merged::Request { record, .. } => self.put_demand(key, &Fields::of(record)),
            Merged::Seal {
                revealed: Some(r), ..
            } => {
                self.sealed.remove(&key);
                self.put_demand(key, &Fields::of(&r.record));
            }
            Merged::Seal {
                basis,
                kind,
                country,
                disclose_by,
                ..
            } => {
                self.sealed.insert(
                    key,
                    Sealed {
                        publisher: publisher.into(),
                        basis: basis.clone(),
                        kind: kind.clone(),
                        country: country.clone(),
                        disclose_by: disclose_by.clone(),
                    },
                );
            }
            Merged::Aggregate { report, .. } => {
                let r = Report {
                    publisher: publisher.into(),
                    period: s(report, "period"),
                    country: s(report, "country"),
                    kind: s(report, "kind"),
                    requests: report["requests"].as_u64().unwrap_or(0),
                    produced: report["produced"].as_u64().unwrap_or(0),
                    targets: targets(report),
                };
                self.reports.insert(key, r);
            }
            Merged::Band { report } => {
                let b = Band {
                    publisher: publisher.into(),
                    period: s(report, "period"),
                    category: s(report, "category"),
                    requests: report["requests"].clone(),
                    accounts: report["accounts"].clone(),
                };
                self.bands.insert(key, b);
            }
        }
    }

    fn put_demand(&mut self, key: (String, String), record: &Fields) {
        let mut d = Demand::default();
        let values = [
            (D_PUBLISHER, key.0.as_str()),
            (D_COUNTRY, Fields::str(&record.country)),
            (D_KIND, Fields::str(&record.kind)),
            (D_CHANNEL, Fields::str(&record.channel)),
            (D_PROCESS, Fields::str(&record.process)),
            (D_AUTHORITY, record.authority()),
            (D_DISPOSITION, Fields::str(&record.disposition)),
            (D_NOTIFIED, Fields::str(&record.user_notified)),
        ];
        for (dim, v) in values {
            if !v.is_empty() {
                d.set(dim, self.interners[dim].code(v));
            }
        }
        for r in record.reasons.iter().flatten() {
            let c = self.interners[D_REASON].code(r);
            if (1..=64).contains(&c) {
                d.reasons |= 1 << (c - 1);
            }
        }
        if let Some(m) = month_of(Fields::str(&record.received_on)) {
            d.month = m + 1;
            self.max_month = self.max_month.max(m);
            self.min_month = Some(self.min_month.map_or(m, |x| x.min(m)));
        }
        d.produced = PRODUCED.contains(&Fields::str(&record.disposition));
        d.targets = record.targets();
        let key = demand_key(&key.0, &key.1);
        match self.slots.get(&key) {
            Some(i) => self.demands[i] = d,
            None => {
                self.slots.push(key);
                self.demands.push(d);
            }
        }
    }

    pub fn demand_count(&self) -> usize {
        self.demands.len()
    }

    /// Answers a query (spec 6.3), without `size` and `checkpoint`, which the caller adds.
    pub fn query(&self, q: &Query) -> Value {
        let today = crate::entry::date_of(self.last_logged_at);
        let plan = self.plan(q);
        let acc = plan.run(&self.demands);
        let key_json = |key: &[u32; 3]| -> Map<String, Value> {
            let mut m = Map::new();
            for (k, g) in key.iter().zip(&plan.group) {
                let v = match *g {
                    D_PERIOD => (*k > 0).then(|| q.interval.key(k - 1 + plan.base)),
                    i => self.interners[i].name(*k).map(str::to_string),
                };
                m.insert(
                    DIMENSIONS[*g].to_string(),
                    v.map_or(Value::Null, Value::String),
                );
            }
            m
        };
        let totals = acc.totals;
        let mut rows: Vec<(Map<String, Value>, [u64; 6])> = acc
            .into_rows(&plan)
            .map(|(k, v)| (key_json(&k), v))
            .collect();
        rows.sort_by(|a, b| sort_key(&a.0).cmp(&sort_key(&b.0)));
        let rows: Vec<Value> = rows
            .into_iter()
            .map(|(k, v)| measures_json(Some(k), &v))
            .collect();

        // Counted reports: grouped by the chosen dimensions they carry.
        let mut agg: HashMap<Vec<Option<String>>, [u64; 6]> = HashMap::new();
        for r in self.reports.values() {
            let carried = |d: &str| -> Option<Option<&str>> {
                match d {
                    "publisher" => Some(Some(&r.publisher)),
                    "country" => Some(Some(&r.country)),
                    "kind" => Some(Some(&r.kind)),
                    "period" => Some(Some(&r.period)),
                    _ => None,
                }
            };
            if !filters_match(&q.filters, carried) || !period_in_range(&r.period, q) {
                continue;
            }
            let key: Vec<Option<String>> = q
                .group_by
                .iter()
                .map(|g| carried(g).flatten().map(str::to_string))
                .collect();
            let acc = agg.entry(key).or_insert([0; 6]);
            for (a, m) in acc.iter_mut().zip([
                r.requests,
                r.produced,
                r.targets[0],
                r.targets[1],
                r.targets[2],
                r.targets[3],
            ]) {
                *a += m;
            }
        }
        let mut aggregates: Vec<(Map<String, Value>, [u64; 6])> = agg
            .into_iter()
            .map(|(k, v)| {
                let m: Map<String, Value> = q
                    .group_by
                    .iter()
                    .zip(k)
                    .map(|(g, v)| (g.clone(), v.map_or(Value::Null, Value::String)))
                    .collect();
                (m, v)
            })
            .collect();
        aggregates.sort_by(|a, b| sort_key(&a.0).cmp(&sort_key(&b.0)));
        let aggregates: Vec<Value> = aggregates
            .into_iter()
            .map(|(k, v)| measures_json(Some(k), &v))
            .collect();

        let mut bands: Vec<&Band> = self
            .bands
            .values()
            .filter(|b| {
                filters_match(&q.filters, |d| match d {
                    "publisher" => Some(Some(&b.publisher)),
                    "period" => Some(Some(&b.period)),
                    _ => None,
                }) && period_in_range(&b.period, q)
            })
            .collect();
        bands.sort_by(|a, b| {
            (&a.publisher, &a.period, &a.category).cmp(&(&b.publisher, &b.period, &b.category))
        });
        let bands: Vec<Value> = bands
            .into_iter()
            .map(|b| json!({"publisher": b.publisher, "period": b.period, "category": b.category, "requests": b.requests, "accounts": b.accounts}))
            .collect();

        let mut sealed: std::collections::BTreeMap<(String, String), (u64, u64)> =
            Default::default();
        for x in self.sealed.values() {
            let ok = filters_match(&q.filters, |d| match d {
                "publisher" => Some(Some(&x.publisher)),
                "kind" => Some(x.kind.as_deref()),
                "country" => Some(x.country.as_deref()),
                _ => None,
            });
            if !ok {
                continue;
            }
            let e = sealed
                .entry((x.publisher.clone(), x.basis.clone()))
                .or_default();
            e.0 += 1;
            if today.as_str() > x.disclose_by.as_str() {
                e.1 += 1;
            }
        }
        let sealed: Vec<Value> = sealed
            .into_iter()
            .map(|((p, b), (open, overdue))| json!({"publisher": p, "basis": b, "open": open, "overdue": overdue}))
            .collect();
        json!({
            "group_by": q.group_by,
            "interval": q.interval.name(),
            "rows": rows,
            "totals": measures_json(None, &totals),
            "aggregates": aggregates,
            "bands": bands,
            "sealed": sealed,
        })
    }
}

impl Index {
    /// Resolves a query's itemised part to codes.
    fn plan(&self, q: &Query) -> Plan {
        let mut plan = Plan {
            dims: vec![],
            reason: None,
            months: None,
            group: q
                .group_by
                .iter()
                .filter_map(|g| DIMENSIONS.iter().position(|x| x == g))
                .collect(),
            interval: q.interval,
            base: 0,
            sizes: [1; 3],
            dense: false,
            empty: false,
        };
        let mut months = (q.from.map(|(_, a, _)| a), q.to.map(|(_, _, b)| b));
        for (d, v) in &q.filters {
            let i = DIMENSIONS.iter().position(|x| x == d).unwrap_or(0);
            let code = match i {
                D_PERIOD => {
                    if let Some((_, a, b)) = parse_period(v) {
                        months.0 = Some(months.0.map_or(a, |x| x.max(a)));
                        months.1 = Some(months.1.map_or(b, |x| x.min(b)));
                    }
                    continue;
                }
                _ => self.interners[i].find(v),
            };
            // A value never seen matches nothing.
            let Some(code) = code else {
                plan.empty = true;
                continue;
            };
            if i == D_REASON {
                plan.reason = Some(code);
            } else {
                plan.dims.push((i, code));
            }
        }
        if months.0.is_some() || months.1.is_some() {
            plan.months = Some((months.0.unwrap_or(0), months.1.unwrap_or(u32::MAX)));
        }
        let start = |m: u32| period_start(q.interval, m);
        plan.base = self.min_month.map_or(0, start);
        for (size, g) in plan.sizes.iter_mut().zip(&plan.group) {
            *size = match *g {
                D_PERIOD => match self.min_month {
                    Some(_) => 2 + (start(self.max_month) - plan.base) as usize,
                    None => 1,
                },
                i => self.interners[i].names.len() + 1,
            };
        }
        plan.dense = plan
            .sizes
            .iter()
            .try_fold(1usize, |a, s| a.checked_mul(*s))
            .is_some_and(|n| n <= DENSE_MAX);
        plan
    }
}

/// Largest number of row keys accumulated in a dense array (per scanned chunk); small in unit
/// tests so that they cover both ways of accumulating.
const DENSE_MAX: usize = if cfg!(test) { 64 } else { 1 << 16 };

/// A query's itemised part, resolved to codes.
struct Plan {
    /// Equality filters on coded dimensions.
    dims: Vec<(usize, u32)>,
    reason: Option<u32>,
    /// The inclusive month range a demand must fall in, if a period bound is given.
    months: Option<(u32, u32)>,
    group: Vec<usize>,
    interval: Interval,
    /// First month of the earliest period: period codes are 1 + months since it.
    base: u32,
    /// Number of codes of each grouped dimension (1 for the unused ones).
    sizes: [usize; 3],
    /// Whether row keys are few enough to accumulate in a dense array.
    dense: bool,
    /// A filter names a value no demand has: nothing matches.
    empty: bool,
}

/// Sums of one scanned chunk: by row key, and in total.
struct Acc {
    /// Indexed by the row key, when [`Plan::dense`]: no hashing in the loop.
    dense: Vec<[u64; 6]>,
    rows: rustc_hash::FxHashMap<[u32; 3], [u64; 6]>,
    totals: [u64; 6],
}

impl Plan {
    fn dense_at(&self, key: &[u32; 3]) -> usize {
        (key[0] as usize * self.sizes[1] + key[1] as usize) * self.sizes[2] + key[2] as usize
    }

    /// Scans all demands, in chunks on all cores.
    fn run(&self, demands: &[Demand]) -> Acc {
        use rayon::prelude::*;
        if self.empty {
            return self.scan(&[]);
        }
        let chunk = (demands.len() / (2 * rayon::current_num_threads())).max(1 << 15);
        demands
            .par_chunks(chunk)
            .map(|c| self.scan(c))
            .reduce_with(Acc::merge)
            .unwrap_or_else(|| self.scan(&[]))
    }

    fn scan(&self, demands: &[Demand]) -> Acc {
        let by_reason = self.group.contains(&D_REASON);
        let mut acc = Acc {
            dense: if self.dense {
                vec![[0; 6]; self.sizes.iter().product()]
            } else {
                vec![]
            },
            rows: Default::default(),
            totals: [0; 6],
        };
        for d in demands {
            if self.dims.iter().any(|(i, c)| d.code(*i) != *c) {
                continue;
            }
            if let Some(r) = self.reason {
                if !d.has_reason(r) {
                    continue;
                }
            }
            if let Some((lo, hi)) = self.months {
                // `month` is 1 + the month number, 0 if missing.
                if d.month == 0 || d.month - 1 < lo || d.month - 1 > hi {
                    continue;
                }
            }
            let measures = [
                1,
                u64::from(d.produced),
                d.targets[0],
                d.targets[1],
                d.targets[2],
                d.targets[3],
            ];
            for (t, m) in acc.totals.iter_mut().zip(measures) {
                *t += m;
            }
            // A demand with several reasons counts once per reason when grouped by reason;
            // under a reason filter, only under that reason, as every row must match it.
            let mut bits = match (by_reason, self.reason) {
                (false, _) => 0,
                (true, None) => d.reasons,
                (true, Some(r)) => 1 << (r - 1),
            };
            let mut first = true;
            while first || bits != 0 {
                first = false;
                let reason = if bits == 0 {
                    0
                } else {
                    let b = bits.trailing_zeros();
                    bits &= bits - 1;
                    b + 1
                };
                let mut key = [0u32; 3];
                for (k, g) in key.iter_mut().zip(&self.group) {
                    *k = match *g {
                        D_REASON => reason,
                        D_PERIOD if d.month == 0 => 0,
                        D_PERIOD => 1 + period_start(self.interval, d.month - 1) - self.base,
                        i => d.code(i),
                    };
                }
                let at = self.dense_at(&key);
                let sums = match acc.dense.get_mut(at) {
                    Some(a) if self.dense => a,
                    _ => acc.rows.entry(key).or_insert([0; 6]),
                };
                for (a, m) in sums.iter_mut().zip(measures) {
                    *a += m;
                }
            }
        }
        acc
    }
}

impl Acc {
    fn merge(mut self, other: Acc) -> Acc {
        for (a, b) in self.dense.iter_mut().zip(&other.dense) {
            add(a, b);
        }
        for (k, v) in other.rows {
            add(self.rows.entry(k).or_insert([0; 6]), &v);
        }
        add(&mut self.totals, &other.totals);
        self
    }

    /// The non-empty rows (a row exists iff some demand counted in it).
    fn into_rows(self, plan: &Plan) -> impl Iterator<Item = ([u32; 3], [u64; 6])> + '_ {
        let [_, s1, s2] = plan.sizes;
        let dense = self.dense.into_iter().enumerate().filter(|(_, a)| a[0] > 0);
        dense
            .map(move |(at, a)| {
                (
                    [
                        (at / (s1 * s2)) as u32,
                        ((at / s2) % s1) as u32,
                        (at % s2) as u32,
                    ],
                    a,
                )
            })
            .chain(self.rows)
    }
}

fn add(a: &mut [u64; 6], b: &[u64; 6]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

impl Index {
    /// Follows one committed batch: its changed merged records, and the new checkpoint.
    pub fn apply_batch(&mut self, batch: &crate::store::CommitBatch, p: &crate::log::Published) {
        if self.building {
            self.pending.extend(
                batch
                    .state
                    .iter()
                    .filter(|(k, _)| k.starts_with(b"r/"))
                    .filter_map(|(k, v)| Some((k.clone(), v.clone()?))),
            );
            self.size = p.size;
            self.checkpoint = p.signed.clone();
            self.last_logged_at = p.last_logged_at;
            return;
        }
        let pairs: Vec<(&[u8], &[u8])> = batch
            .state
            .iter()
            .filter_map(|(k, v)| Some((k.as_slice(), v.as_deref()?)))
            .collect();
        self.apply_records(&pairs);
        self.size = p.size;
        self.checkpoint = p.signed.clone();
        self.last_logged_at = p.last_logged_at;
    }

    /// Applies changed state pairs in order (only merged records count); decoding them is the
    /// costly part, so it runs on all cores first.
    pub fn apply_records(&mut self, pairs: &[(&[u8], &[u8])]) {
        use rayon::prelude::*;
        let decoded: Vec<(&str, &str, Decoded)> = pairs
            .par_iter()
            .filter_map(|(k, v)| decode_record(k, v))
            .collect();
        for (publisher, id, d) in &decoded {
            self.apply_decoded(publisher, id, d);
        }
    }

    /// [`Index::apply_records`] on the calling thread alone, for a caller whose pool is busy
    /// with work it will wait for anyway (the auditor's pre-checks): handed to the pool, the
    /// decoding would queue behind that work and hold up the caller.
    pub fn apply_records_here(&mut self, pairs: &[(&[u8], &[u8])]) {
        for (k, v) in pairs {
            if let Some((publisher, id, d)) = decode_record(k, v) {
                self.apply_decoded(publisher, id, &d);
            }
        }
    }

    /// Counted reports, bands, and unrevealed seals with how many of them are overdue (as of
    /// the last entry's date).
    pub fn report_counts(&self) -> (u64, u64, u64, u64) {
        let today = crate::entry::date_of(self.last_logged_at);
        let overdue = self
            .sealed
            .values()
            .filter(|x| today.as_str() > x.disclose_by.as_str())
            .count();
        (
            self.reports.len() as u64,
            self.bands.len() as u64,
            self.sealed.len() as u64,
            overdue as u64,
        )
    }

    /// Applies one state pair if it is a merged record (`r/<publisher>/<id>`).
    pub fn apply_record(&mut self, key: &[u8], value: Option<&[u8]>) {
        if let Some((publisher, id, d)) = value.and_then(|v| decode_record(key, v)) {
            self.apply_decoded(publisher, id, &d);
        }
    }

    fn apply_decoded(&mut self, publisher: &str, id: &str, d: &Decoded) {
        match d {
            Decoded::Request(f) => self.put_demand((publisher.into(), id.into()), f),
            Decoded::Other(m) => self.upsert(publisher, id, m),
        }
    }
}

/// A merged record's state pair (`r/<publisher>/<id>` → JSON), decoded; None for any other
/// pair.
fn decode_record<'a>(key: &'a [u8], value: &'a [u8]) -> Option<(&'a str, &'a str, Decoded<'a>)> {
    let rest = std::str::from_utf8(key.strip_prefix(b"r/")?).ok()?;
    let (publisher, id) = rest.rsplit_once('/')?;
    Some((publisher, id, fields::decode(value)?))
}

/// Builds the index of a log from its stored merged records, a page at a time, decoding
/// each page on all cores.
pub fn rebuild(log: &crate::log::Log) -> Result<Index, crate::store::StoreError> {
    let mut idx = from_store(log.store.as_ref())?;
    if let Some(p) = log.published() {
        idx.size = p.size;
        idx.checkpoint = p.signed.clone();
        idx.last_logged_at = p.last_logged_at;
    }
    Ok(idx)
}

/// The index of the merged records held in a store (the caller sets size and checkpoint).
pub fn from_store(store: &dyn crate::store::Store) -> Result<Index, crate::store::StoreError> {
    let mut idx = Index::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.scan_page(b"r/", after.as_deref(), 8192)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        let pairs: Vec<(&[u8], &[u8])> = page
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        idx.apply_records(&pairs);
    }
    idx.demands.shrink_to_fit();
    idx.slots.shrink_to_fit();
    Ok(idx)
}

/// Rebuilds the shared index in the background, so that a restarted log serves at once:
/// meanwhile statistics answer "rebuilding", and the batches committed in the meantime are
/// kept aside and applied (last value wins) once the stored records are read.
pub fn rebuild_in_background(
    log: std::sync::Arc<crate::log::Log>,
    shared: std::sync::Arc<std::sync::RwLock<Index>>,
) -> std::thread::JoinHandle<()> {
    if let Ok(mut s) = shared.write() {
        s.building = true;
    }
    std::thread::spawn(move || match rebuild(&log) {
        Ok(mut fresh) => {
            if let Ok(mut s) = shared.write() {
                for (k, v) in std::mem::take(&mut s.pending) {
                    fresh.apply_record(&k, Some(&v));
                }
                if s.size > fresh.size {
                    fresh.size = s.size;
                    fresh.checkpoint = std::mem::take(&mut s.checkpoint);
                    fresh.last_logged_at = s.last_logged_at;
                }
                *s = fresh;
                tracing::info!(demands = s.demand_count(), "statistics index rebuilt");
            }
            crate::memory::release_freed();
        }
        Err(e) => tracing::error!(error = %e, "could not rebuild the statistics index"),
    })
}

/// The first month of the period (at interval `i`) that holds `month`.
fn period_start(i: Interval, month: u32) -> u32 {
    month
        - match i {
            Interval::Month => 0,
            Interval::Quarter => month % 3,
            Interval::Half => month % 6,
            Interval::Year => month % 12,
        }
}

/// Does an item that carries some dimensions pass the equality filters? An item that does not
/// carry a filtered dimension is left out (spec 6.3).
fn filters_match<'a>(
    filters: &[(String, String)],
    carried: impl Fn(&str) -> Option<Option<&'a str>>,
) -> bool {
    // A report's period filter compares its own period key.
    filters
        .iter()
        .all(|(d, v)| matches!(carried(d), Some(Some(x)) if x == v))
}

/// A report's period is kept by from/to only if it is of the range's interval and inside it.
fn period_in_range(period: &str, q: &Query) -> bool {
    let Some((iv, a, b)) = parse_period(period) else {
        return q.from.is_none() && q.to.is_none();
    };
    if let Some((fi, lo, _)) = q.from {
        if fi != iv || a < lo {
            return false;
        }
    }
    if let Some((ti, _, hi)) = q.to {
        if ti != iv || b > hi {
            return false;
        }
    }
    true
}

/// Sort rows by their key values, null first.
fn sort_key(m: &Map<String, Value>) -> Vec<(bool, String)> {
    m.values()
        .map(|v| (v.is_string(), v.as_str().unwrap_or("").to_string()))
        .collect()
}

fn measures_json(key: Option<Map<String, Value>>, v: &[u64; 6]) -> Value {
    let mut m = Map::new();
    if let Some(k) = key {
        m.insert("key".into(), Value::Object(k));
    }
    for (name, x) in MEASURES.iter().zip(v) {
        m.insert((*name).into(), json!(x));
    }
    Value::Object(m)
}

/// RFC 4180 CSV of a query's rows: the grouped dimensions, then the measures; every record
/// ends with CRLF, as RFC 4180 section 2 has it (the csv crate's default is LF).
pub fn to_csv(result: &Value) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let group: Vec<String> = result["group_by"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut header: Vec<String> = group.clone();
    header.extend(MEASURES.iter().map(|m| m.to_string()));
    let _ = w.write_record(&header);
    for row in result["rows"].as_array().into_iter().flatten() {
        let mut rec: Vec<String> = group
            .iter()
            .map(|g| row["key"][g].as_str().unwrap_or("").to_string())
            .collect();
        rec.extend(
            MEASURES
                .iter()
                .map(|m| row[*m].as_u64().unwrap_or(0).to_string()),
        );
        let _ = w.write_record(&rec);
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packed, chunked, parallel scan against a plain count over the records' JSON, for
    /// enough demands that the scan is split and merged, and for keys both dense and hashed.
    #[test]
    fn packed_scan_matches_a_plain_count() {
        let pick = |i: u64, xs: &[&'static str]| xs[(i % xs.len() as u64) as usize];
        let mut idx = Index::new();
        let mut records = vec![];
        for i in 0..50_000u64 {
            let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
            let mut r = json!({
                "kind": pick(h, &["user_data", "content_restriction", "preservation"]),
                "country": pick(h >> 3, &["US", "DE", "FR", "IN", "BR"]),
                "disposition": pick(h >> 6, &["complied", "rejected", "no_data", "partially_complied"]),
                "authority": {"type": pick(h >> 9, &["police", "court"])},
                "targets": {"accounts": h % 4, "urls": h % 3},
            });
            if h % 7 != 0 {
                r["received_on"] = json!(format!(
                    "20{:02}-{:02}-01",
                    20 + (h >> 12) % 5,
                    1 + (h >> 15) % 12
                ));
            }
            if h % 5 != 0 {
                let mut reasons = vec![pick(h >> 18, &["privacy", "defamation", "copyright"])];
                if h % 3 == 0 {
                    reasons.push("fraud");
                }
                r["reasons"] = json!(reasons);
            }
            let publisher = format!("p{}.example", h % 9);
            idx.upsert(
                &publisher,
                &i.to_string(),
                &Merged::Request {
                    record: r.clone(),
                    updates: vec![],
                },
            );
            records.push((publisher, r));
        }
        let value = |p: &str, r: &Value, d: &str, iv: Interval| -> Vec<Option<String>> {
            let one = |v: &Value| v.as_str().map(str::to_string);
            match d {
                "publisher" => vec![Some(p.to_string())],
                "authority" => vec![one(&r["authority"]["type"])],
                "reason" => match r["reasons"].as_array() {
                    Some(a) => a.iter().map(one).collect(),
                    None => vec![None],
                },
                "period" => vec![r["received_on"]
                    .as_str()
                    .and_then(month_of)
                    .map(|m| iv.key(m))],
                d => vec![one(&r[d])],
            }
        };
        for query in [
            "group_by=country,kind",
            "group_by=period,publisher&interval=quarter",
            "group_by=reason,disposition",
            "group_by=period&interval=month&from=2021-H2&to=2023",
            "country=DE&reason=fraud&group_by=period,authority,kind&interval=year",
            "period=2022-Q3&group_by=publisher,country,reason",
            "reason=fraud&group_by=reason,kind",
            "country=XX",
        ] {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap(); // test-only
            let q =
                Query::from_params(pairs.iter().map(|(a, b)| (a.as_str(), b.as_str()))).unwrap(); // test-only
            let (lo, hi) = (q.from.map_or(0, |f| f.1), q.to.map_or(u32::MAX, |t| t.2));
            let mut want: std::collections::BTreeMap<Vec<Option<String>>, [u64; 6]> =
                Default::default();
            let mut want_totals = [0u64; 6];
            for (p, r) in &records {
                let month = r["received_on"].as_str().and_then(month_of);
                let in_range = |(a, b): (u32, u32)| month.is_some_and(|m| (a..=b).contains(&m));
                let filtered = q.filters.iter().all(|(d, v)| match d.as_str() {
                    "period" => parse_period(v).is_some_and(|(_, a, b)| in_range((a, b))),
                    d => value(p, r, d, q.interval).contains(&Some(v.clone())),
                });
                if !filtered || ((q.from.is_some() || q.to.is_some()) && !in_range((lo, hi))) {
                    continue;
                }
                let t = &r["targets"];
                let produced = ["complied", "partially_complied"]
                    .contains(&r["disposition"].as_str().unwrap_or(""));
                let m = [
                    1,
                    u64::from(produced),
                    t["accounts"].as_u64().unwrap_or(0),
                    0,
                    0,
                    t["urls"].as_u64().unwrap_or(0),
                ];
                add(&mut want_totals, &m);
                let mut keys: Vec<Vec<Option<String>>> = vec![vec![]];
                for g in &q.group_by {
                    let mut vs = value(p, r, g, q.interval);
                    if g == "reason" {
                        // Rows match the filters: a reason filter keeps only its reason.
                        vs.retain(|v| {
                            q.filters
                                .iter()
                                .all(|(d, f)| d != "reason" || v.as_ref() == Some(f))
                        });
                    }
                    keys = keys
                        .into_iter()
                        .flat_map(|k| {
                            vs.iter().map(move |v| {
                                let mut k = k.clone();
                                k.push(v.clone());
                                k
                            })
                        })
                        .collect();
                }
                for k in keys {
                    add(want.entry(k).or_insert([0; 6]), &m);
                }
            }
            let got = idx.query(&q);
            let mut got_rows: std::collections::BTreeMap<Vec<Option<String>>, [u64; 6]> =
                Default::default();
            for row in got["rows"].as_array().unwrap() {
                // test-only
                let k = q
                    .group_by
                    .iter()
                    .map(|g| row["key"][g].as_str().map(str::to_string))
                    .collect();
                got_rows.insert(k, MEASURES.map(|m| row[m].as_u64().unwrap_or(u64::MAX)));
            }
            assert_eq!(got_rows, want, "{query}");
            assert_eq!(
                MEASURES.map(|m| got["totals"][m].as_u64().unwrap_or(u64::MAX)),
                want_totals,
                "{query}"
            );
        }
    }

    /// The packed row holds dimension codes in 16 bits and reasons in a 64-bit mask: true as
    /// long as the schemas keep these dimensions to enums of that size.
    #[test]
    fn schema_enums_fit_the_packed_row() {
        let record: Value =
            serde_json::from_str(include_str!("../../schemas/request-record.json")).unwrap(); // test-only
        let countries: Value =
            serde_json::from_str(include_str!("../../schemas/countries.json")).unwrap(); // test-only
        let p = &record["properties"];
        let reasons = p["reasons"]["items"]["enum"].as_array().map_or(0, Vec::len);
        assert!((10..=64).contains(&reasons), "{reasons} reasons");
        for e in [
            &p["channel"]["enum"],
            &p["process"]["enum"],
            &p["authority"]["properties"]["type"]["enum"],
            &p["disposition"]["enum"],
            &p["user_notified"]["enum"],
            &countries["enum"],
            &record["$defs"]["kind"]["enum"],
        ] {
            let n = e.as_array().map_or(0, Vec::len);
            assert!((2..u16::MAX as usize).contains(&n), "{e}");
        }
        assert_eq!(std::mem::size_of::<Demand>(), 64);
    }

    #[test]
    fn period_keys() {
        assert_eq!(
            parse_period("2026-H2"),
            Some((Interval::Half, 2026 * 12 + 6, 2026 * 12 + 11))
        );
        assert_eq!(parse_period("2026-Q3").map(|p| p.1), Some(2026 * 12 + 6));
        assert_eq!(parse_period("2026-03").map(|p| p.1), Some(2026 * 12 + 2));
        assert!(
            parse_period("2026-13").is_none()
                && parse_period("2026-Q5").is_none()
                && parse_period("26").is_none()
        );
        assert_eq!(Interval::Quarter.key(2026 * 12 + 7), "2026-Q3");
        assert_eq!(Interval::Half.key(2026 * 12), "2026-H1");
    }
}
