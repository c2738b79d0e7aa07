//! Aggregate counts (spec 6.3): who demanded what from whom, computed from the merged
//! records, so that anyone replaying entries `0 … size−1` gets the same numbers.
//!
//! The [`Index`] holds one compact row per itemised demand (requests and revealed seals, in
//! merged state), plus counted reports, bands and unrevealed seals. The service keeps one in
//! memory, updated with each committed batch's changed records and rebuilt from the stored
//! records at start-up; the auditor builds one from its replay. Queries scan the compact rows:
//! dimension values are interned to small integers, so a grouped query over a million demands
//! is a tight loop.

use crate::statement::state::Merged;
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

// Dimension slots in `Demand::dims` (reason and period are held apart).
const D_PUBLISHER: usize = 0;
const D_COUNTRY: usize = 1;
const D_KIND: usize = 2;
const D_CHANNEL: usize = 3;
const D_PROCESS: usize = 4;
const D_AUTHORITY: usize = 5;
const D_DISPOSITION: usize = 6;
const D_NOTIFIED: usize = 8;

/// One itemised demand, compactly.
#[derive(Debug, Clone, Default)]
struct Demand {
    /// Codes by dimension index (reason and period slots unused).
    dims: [u32; 10],
    reasons: Vec<u32>,
    /// received_on, as a month number (None if missing).
    month: Option<u32>,
    produced: bool,
    targets: [u64; 4],
}

#[derive(Debug, Clone)]
struct Report {
    publisher: String,
    period: String,
    country: String,
    kind: String,
    requests: u64,
    produced: u64,
    targets: [u64; 4],
}

#[derive(Debug, Clone)]
struct Band {
    publisher: String,
    period: String,
    category: String,
    requests: Value,
    accounts: Value,
}

#[derive(Debug, Clone)]
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
    /// (publisher, id) → slot in `demands`.
    demand_slots: HashMap<(String, String), usize>,
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
    /// The latest `received_on` month among the demands (bounds the period codes).
    max_month: u32,
    /// Records committed while building, applied once the rebuild is done.
    pending: Vec<(Vec<u8>, Vec<u8>)>,
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
            Merged::Request { record, .. } => self.put_demand(key, record),
            Merged::Seal {
                revealed: Some(r), ..
            } => {
                self.sealed.remove(&key);
                self.put_demand(key, &r.record);
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

    fn put_demand(&mut self, key: (String, String), record: &Value) {
        let mut d = Demand::default();
        let mut set = |slot: usize, v: &str, ints: &mut Vec<Interner>| {
            if !v.is_empty() {
                d.dims[slot] = ints[slot].code(v);
            }
        };
        set(D_PUBLISHER, &key.0, &mut self.interners);
        set(D_COUNTRY, &s(record, "country"), &mut self.interners);
        set(D_KIND, &s(record, "kind"), &mut self.interners);
        set(D_CHANNEL, &s(record, "channel"), &mut self.interners);
        set(D_PROCESS, &s(record, "process"), &mut self.interners);
        set(
            D_AUTHORITY,
            &s(&record["authority"], "type"),
            &mut self.interners,
        );
        set(
            D_DISPOSITION,
            &s(record, "disposition"),
            &mut self.interners,
        );
        set(D_NOTIFIED, &s(record, "user_notified"), &mut self.interners);
        d.reasons = record["reasons"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|r| self.interners[7].code(r))
                    .collect()
            })
            .unwrap_or_default();
        d.month = month_of(&s(record, "received_on"));
        if let Some(m) = d.month {
            self.max_month = self.max_month.max(m);
        }
        d.produced = PRODUCED.contains(&s(record, "disposition").as_str());
        d.targets = targets(record);
        match self.demand_slots.get(&key) {
            Some(&i) => self.demands[i] = d,
            None => {
                self.demand_slots.insert(key, self.demands.len());
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
        // Resolve filters to codes; a value never seen matches nothing.
        let mut dim_filters: Vec<(usize, Option<u32>)> = Vec::new();
        let mut reason_filter: Option<Option<u32>> = None;
        let mut period_filter: Option<(u32, u32)> = None;
        for (d, v) in &q.filters {
            let i = DIMENSIONS.iter().position(|x| x == d).unwrap_or(0);
            match d.as_str() {
                "reason" => reason_filter = Some(self.interners[7].find(v)),
                "period" => period_filter = parse_period(v).map(|(_, a, b)| (a, b)),
                _ => dim_filters.push((i, self.interners[i].find(v))),
            }
        }
        let lo = q.from.map(|(_, a, _)| a).unwrap_or(0);
        let hi = q.to.map(|(_, _, b)| b).unwrap_or(u32::MAX);
        let group: Vec<usize> = q
            .group_by
            .iter()
            .filter_map(|g| DIMENSIONS.iter().position(|x| x == g))
            .collect();
        let by_reason = group.contains(&7);
        // Row keys are small integers: when their combinations are few, accumulate in a dense
        // array indexed by the key (no hashing in the loop); otherwise in a hash map.
        let card = |g: usize| -> usize {
            match g {
                9 => self.max_month as usize + 2,
                i => self.interners[i].names.len() + 1,
            }
        };
        let mut sizes = [1usize; 3];
        for (s, g) in sizes.iter_mut().zip(&group) {
            *s = card(*g);
        }
        let dense_len = sizes
            .iter()
            .try_fold(1usize, |a, s| a.checked_mul(*s))
            .filter(|n| *n <= 1 << 20);
        let mut dense: Vec<[u64; 6]> = vec![[0; 6]; dense_len.unwrap_or(0)];
        let mut rows: rustc_hash::FxHashMap<[u32; 3], [u64; 6]> = Default::default();
        let mut totals = [0u64; 6];
        for d in &self.demands {
            if dim_filters.iter().any(|(i, c)| Some(d.dims[*i]) != *c) {
                continue;
            }
            if let Some(r) = reason_filter {
                match r {
                    Some(c) if d.reasons.contains(&c) => {}
                    _ => continue,
                }
            }
            if q.from.is_some() || q.to.is_some() || period_filter.is_some() {
                let Some(m) = d.month else { continue };
                if m < lo || m > hi {
                    continue;
                }
                if let Some((a, b)) = period_filter {
                    if m < a || m > b {
                        continue;
                    }
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
            for (t, m) in totals.iter_mut().zip(measures) {
                *t += m;
            }
            // A demand with several reasons counts once per reason when grouped by reason.
            let reasons: &[u32] = if by_reason && !d.reasons.is_empty() {
                &d.reasons
            } else {
                &[0]
            };
            for &r in reasons {
                let mut key = [0u32; 3];
                for (k, g) in key.iter_mut().zip(&group) {
                    *k = match *g {
                        7 => r,
                        9 => d.month.map_or(0, |m| period_code(q.interval, m)),
                        i => d.dims[i],
                    };
                }
                let acc = if dense_len.is_some() {
                    let at =
                        (key[0] as usize * sizes[1] + key[1] as usize) * sizes[2] + key[2] as usize;
                    match dense.get_mut(at) {
                        Some(a) => a,
                        None => rows.entry(key).or_insert([0; 6]),
                    }
                } else {
                    rows.entry(key).or_insert([0; 6])
                };
                for (a, m) in acc.iter_mut().zip(measures) {
                    *a += m;
                }
            }
        }
        // Fold the dense rows (a row exists iff some demand counted in it) into the map.
        for (at, acc) in dense.iter().enumerate().filter(|(_, a)| a[0] > 0) {
            let key = [
                (at / (sizes[1] * sizes[2])) as u32,
                ((at / sizes[2]) % sizes[1]) as u32,
                (at % sizes[2]) as u32,
            ];
            let e = rows.entry(key).or_insert([0; 6]);
            for (x, y) in e.iter_mut().zip(acc) {
                *x += y;
            }
        }
        let key_json = |key: &[u32; 3]| -> Map<String, Value> {
            let mut m = Map::new();
            for (k, g) in key.iter().zip(&group) {
                let v = match *g {
                    9 => (*k > 0).then(|| q.interval.key(k - 1)),
                    i => self.interners[i].name(*k).map(str::to_string),
                };
                m.insert(
                    DIMENSIONS[*g].to_string(),
                    v.map_or(Value::Null, Value::String),
                );
            }
            m
        };
        let mut rows: Vec<(Map<String, Value>, [u64; 6])> =
            rows.iter().map(|(k, v)| (key_json(k), *v)).collect();
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
    /// Follows one committed batch: its changed merged records, and the new checkpoint.
    pub fn apply_batch(&mut self, batch: &crate::store::CommitBatch, p: &crate::log::Published) {
        use rayon::prelude::*;
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
        // Decoding the records is the costly part: do it on all cores, then apply in order.
        let decoded: Vec<(String, String, Merged)> = batch
            .state
            .par_iter()
            .filter_map(|(k, v)| decode_record(k, v.as_deref()?))
            .collect();
        for (publisher, id, m) in &decoded {
            self.upsert(publisher, id, m);
        }
        self.size = p.size;
        self.checkpoint = p.signed.clone();
        self.last_logged_at = p.last_logged_at;
    }

    /// Applies one state pair if it is a merged record (`r/<publisher>/<id>`).
    pub fn apply_record(&mut self, key: &[u8], value: Option<&[u8]>) {
        if let Some((publisher, id, m)) = value.and_then(|v| decode_record(key, v)) {
            self.upsert(&publisher, &id, &m);
        }
    }
}

/// A merged record's state pair (`r/<publisher>/<id>` → JSON), decoded; None for any other
/// pair.
fn decode_record(key: &[u8], value: &[u8]) -> Option<(String, String, Merged)> {
    let rest = std::str::from_utf8(key.strip_prefix(b"r/")?).ok()?;
    let (publisher, id) = rest.rsplit_once('/')?;
    let m = serde_json::from_slice::<Merged>(value).ok()?;
    Some((publisher.to_string(), id.to_string(), m))
}

/// Builds the index of a log from its stored merged records, a page at a time, decoding
/// each page on all cores.
pub fn rebuild(log: &crate::log::Log) -> Result<Index, crate::store::StoreError> {
    use rayon::prelude::*;
    let mut idx = Index::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = log.store.scan_page(b"r/", after.as_deref(), 8192)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        let decoded: Vec<(String, String, Merged)> = page
            .par_iter()
            .filter_map(|(k, v)| decode_record(k, v))
            .collect();
        for (p, id, m) in &decoded {
            idx.upsert(p, id, m);
        }
    }
    if let Some(p) = log.published() {
        idx.size = p.size;
        idx.checkpoint = p.signed.clone();
        idx.last_logged_at = p.last_logged_at;
    }
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
        }
        Err(e) => tracing::error!(error = %e, "could not rebuild the statistics index"),
    })
}

/// Period codes for grouping: 1 + the first month of the period (0 means missing).
fn period_code(i: Interval, month: u32) -> u32 {
    1 + match i {
        Interval::Month => month,
        Interval::Quarter => month - month % 3,
        Interval::Half => month - month % 6,
        Interval::Year => month - month % 12,
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

/// RFC 4180 CSV of a query's rows: the grouped dimensions, then the measures.
pub fn to_csv(result: &Value) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
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
