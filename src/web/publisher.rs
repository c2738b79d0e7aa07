//! `GET /publishers/{id}`: one publisher: who it is, its key history and chain head, its
//! numbers, its seals, counted reports and bands, and its latest statements.

use super::charts::{self, Bar};
use super::layout::{self, label, label_opt, num, pct, Nav};
use super::overview::status_badge;
use super::{basis_note, rows, stats_index, Filters, Row, WebError, DEFAULT_INTERVAL};
use crate::api::Shared;
use crate::entry;
use crate::statement::json;
use crate::statement::state::{self, Merged, PublisherState, Role, StatementRef};
use maud::{html, Markup};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Latest statements listed.
const LATEST: usize = 50;
/// Most seals listed (overdue first).
const MAX_SEALS: usize = 200;
/// Most counted-report rows listed.
const MAX_REPORTS: usize = 200;

struct Counts {
    size: u64,
    totals: Value,
    by_kind: Vec<Row>,
    by_country: Vec<Row>,
    reports: Vec<Row>,
    bands: Vec<Value>,
    sealed: Vec<Value>,
}

fn counts(s: &Shared, id: &str) -> Result<Counts, WebError> {
    let f = Filters {
        pairs: vec![("publisher".into(), id.into())],
        interval: DEFAULT_INTERVAL,
    };
    let idx = stats_index(s)?;
    let all = idx.query(&f.query(&[])?);
    let kind = idx.query(&f.query(&["kind"])?);
    let country = idx.query(&f.query(&["country"])?);
    let reports = idx.query(&f.query(&["period", "country", "kind"])?);
    let size = idx.size;
    drop(idx);
    Ok(Counts {
        size,
        by_kind: rows(&kind, "rows", &["kind"]),
        by_country: rows(&country, "rows", &["country"]),
        reports: rows(&reports, "aggregates", &["period", "country", "kind"]),
        bands: all["bands"].as_array().cloned().unwrap_or_default(),
        sealed: all["sealed"].as_array().cloned().unwrap_or_default(),
        totals: all["totals"].clone(),
    })
}

/// A seal of this publisher and where it stands.
struct SealRow {
    id: String,
    index: u64,
    status: &'static str,
    disclose_by: String,
    basis: String,
    kind: Option<String>,
    country: Option<String>,
}

/// A statement in the latest list.
struct Latest {
    index: u64,
    kind: String,
    id: String,
    logged_at: String,
    summary: String,
}

/// One pass over the publisher's statement ids: the latest few, and its seals.
fn statements(s: &Shared, id: &str) -> Result<(Vec<Latest>, Vec<SealRow>, u64), WebError> {
    let prefix = format!("i/{id}/").into_bytes();
    let mut heap: BinaryHeap<Reverse<(u64, String, String)>> = BinaryHeap::new();
    let mut seal_ids: Vec<(String, u64)> = Vec::new();
    let mut total = 0u64;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = s.log.store.scan_page(&prefix, after.as_deref(), 2048)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (k, v) in page {
            let Some(Ok(sid)) = k.get(prefix.len()..).map(std::str::from_utf8) else {
                continue;
            };
            // Ids of another publisher whose id continues with "/…" share the prefix.
            if sid.contains('/') {
                continue;
            }
            let Some(r) = state::decode::<StatementRef>(Some(v)) else {
                continue;
            };
            total += 1;
            if r.kind == "seal" {
                seal_ids.push((sid.to_string(), r.index));
            }
            heap.push(Reverse((r.index, r.kind, sid.to_string())));
            if heap.len() > LATEST {
                heap.pop();
            }
        }
    }
    let mut latest: Vec<(u64, String, String)> = heap.into_iter().map(|Reverse(x)| x).collect();
    latest.sort_by_key(|x| Reverse(x.0));
    let mut out = Vec::with_capacity(latest.len());
    for (index, kind, sid) in latest {
        // Statement ids are written in the same commit as their entries, which may not be
        // published yet: those are left out.
        let Some(bytes) = s.log.entry(index)? else {
            continue;
        };
        let (logged_at, summary) = match entry::decode(&bytes) {
            Ok(e) => {
                let body = e
                    .statement
                    .split('\n')
                    .next()
                    .and_then(|l| json::parse(l).ok())
                    .unwrap_or(Value::Null);
                (entry::format_instant(e.logged_at), summarize(&body))
            }
            Err(_) => (String::new(), String::new()),
        };
        out.push(Latest {
            index,
            kind,
            id: sid,
            logged_at,
            summary,
        });
    }

    let last_date = s
        .log
        .published()
        .map(|p| entry::date_of(p.last_logged_at))
        .unwrap_or_default();
    let mut seals = Vec::new();
    for (sid, index) in seal_ids {
        if let Some(m @ Merged::Seal { .. }) =
            state::decode::<Merged>(s.log.store.get(&state::merged_key(id, &sid))?)
        {
            let status = crate::api::read::seal_status(&m, &last_date);
            if let Merged::Seal {
                disclose_by,
                basis,
                kind,
                country,
                ..
            } = m
            {
                seals.push(SealRow {
                    id: sid,
                    index,
                    status,
                    disclose_by,
                    basis,
                    kind,
                    country,
                });
            }
        }
    }
    let rank = |st: &str| match st {
        "overdue" => 0,
        "open" => 1,
        "extended" => 2,
        _ => 3,
    };
    seals.sort_by(|a, b| {
        (rank(a.status), &a.disclose_by, a.index).cmp(&(rank(b.status), &b.disclose_by, b.index))
    });
    Ok((out, seals, total))
}

/// One line about a statement, from its body.
fn summarize(b: &Value) -> String {
    let s = |f: &str| b[f].as_str().unwrap_or("").to_string();
    match b["type"].as_str().unwrap_or("") {
        "request" => {
            let mut parts = vec![label(&s("kind")), s("country"), label(&s("process"))];
            parts.retain(|p| !p.is_empty());
            parts.join(" · ")
        }
        "seal" => format!(
            "Sealed demand, to be disclosed by {} ({})",
            s("disclose_by"),
            label(&s("basis"))
        ),
        "extend" => format!("Seal extended to {}", s("disclose_by")),
        "reveal" => "Sealed demand revealed".into(),
        "update" => "Update of an earlier demand".into(),
        "aggregate" => format!(
            "Counted report: {} · {} · {} · {} demands",
            s("period"),
            s("country"),
            label(&s("kind")),
            b["requests"].as_u64().map(num).unwrap_or_default()
        ),
        "band" => format!("Band: {} · {}", s("period"), label(&s("category"))),
        "register" => format!("Registered {}", s("subject")),
        "rotate" => "Signing key rotated".into(),
        "recover" => "Keys replaced with the recovery key".into(),
        "revoke" => format!("Revoked {}", s("subject")),
        "genesis" => "Genesis: the log's first entry".into(),
        other => label(other),
    }
}

fn band_range(v: &Value) -> String {
    match (v["min"].as_u64(), v["max"].as_u64()) {
        (Some(a), Some(b)) => format!("{}–{}", num(a), num(b)),
        _ => "—".into(),
    }
}

pub fn render(s: &Shared, id: &str) -> Result<Markup, WebError> {
    let p: PublisherState = state::decode(s.log.store.get(&state::publisher_key(id))?)
        .ok_or_else(|| WebError::not_found(format!("There is no publisher {id:?} in this log.")))?;
    let c = counts(s, id)?;
    let (latest, seals, statement_count) = statements(s, id)?;
    let requests = c.totals["requests"].as_u64().unwrap_or(0);
    let produced = c.totals["produced"].as_u64().unwrap_or(0);
    let (open, overdue) = c.sealed.iter().fold((0, 0), |(o, d), x| {
        (
            o + x["open"].as_u64().unwrap_or(0),
            d + x["overdue"].as_u64().unwrap_or(0),
        )
    });
    let reported: u64 = c.reports.iter().map(|r| r.requests).sum();
    let mut by_country: Vec<&Row> = c.by_country.iter().collect();
    by_country.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.key.cmp(&b.key)));
    let bars: Vec<Bar> = by_country
        .iter()
        .take(15)
        .map(|r| Bar {
            label: r
                .k(0)
                .map(str::to_string)
                .unwrap_or_else(|| "Not given".into()),
            value: r.requests,
        })
        .collect();
    let overview_href = Filters {
        pairs: vec![("publisher".into(), id.into())],
        interval: DEFAULT_INTERVAL,
    }
    .page_href();
    let url = p
        .url
        .as_deref()
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"));

    let body = html! {
        p.sub { a href="/#publishers" { "← All publishers" } }
        h1 { (p.name) }
        dl.facts {
            dt { "Publisher id" } dd.mono { (p.id) }
            @if let Some(u) = url {
                dt { "Transparency page" } dd { a href=(u) rel="nofollow noopener" { (u) } }
            }
            dt { "Status" } dd { (status_badge(p.status)) }
            dt { "Registered" } dd { "in " a href=(format!("/entries/{}", p.registered_at)) { "entry " (p.registered_at) } }
            dt { "Statements logged" } dd { (num(statement_count)) }
        }
        (basis_note(c.size, html! { "Charts across all publishers: " a href=(overview_href) { "overview filtered to this publisher" } "." }))

        ul.stats {
            li.stat #stat-demands { span.v { (num(requests)) } span.k { "Itemised demands" } }
            li.stat #stat-produced { span.v { (pct(produced, requests)) } span.k { "Data produced or content restricted" } span.d { (num(produced)) " of " (num(requests)) } }
            li.stat.muted #stat-reports { span.v { (num(reported)) } span.k { "Demands in counted reports" } }
            li.stat #stat-open { span.v { (num(open)) } span.k { "Open seals" } }
            li.stat.warn[overdue > 0] #stat-overdue { span.v { (num(overdue)) } span.k { "Overdue seals" } }
        }

        div.grid2.stack {
            section.card aria-labelledby="country-h" {
                h2 #country-h { "Demands by country" }
                figure { (charts::hbar("chart-country", "Demands by country", &bars)) }
                details {
                    summary { "Show the numbers as a table" }
                    div.table-wrap {
                        table #table-country {
                            caption { "Demands by country" }
                            thead { tr { th scope="col" { "Country" } th.n scope="col" { "Demands" } th.n scope="col" { "Produced or restricted" } } }
                            tbody {
                                @for r in &by_country {
                                    tr { th scope="row" { (r.k(0).unwrap_or("Not given")) } td.n { (num(r.requests)) } td.n { (num(r.produced)) } }
                                }
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="kind-h" {
                h2 #kind-h { "Demands by kind" }
                @if c.by_kind.is_empty() {
                    p.empty { "No itemised demands yet." }
                } @else {
                    div.table-wrap {
                        table #table-kind {
                            caption { "Itemised demands by kind" }
                            thead { tr { th scope="col" { "Kind" } th.n scope="col" { "Demands" } th.n scope="col" { "Produced or restricted" } th.n scope="col" { "Share" } } }
                            tbody {
                                @for r in &c.by_kind {
                                    tr { th scope="row" { (label_opt(r.k(0))) } td.n { (num(r.requests)) } td.n { (num(r.produced)) } td.n { (pct(r.produced, r.requests)) } }
                                }
                            }
                        }
                    }
                }
            }
        }

        section.card aria-labelledby="keys-h" {
            h2 #keys-h { "Keys and chain" }
            p.sub { "Statements are valid only under the key in force at their position in the log. A key is in force from the entry after the one that set it, up to the entry after the one that replaced it." }
            div.table-wrap {
                table #table-keys {
                    caption { "Key history" }
                    thead { tr { th scope="col" { "Verifier key" } th scope="col" { "Role" } th.n scope="col" { "From entry" } th.n scope="col" { "Until entry" } th scope="col" { "Set by" } } }
                    tbody {
                        @for k in &p.keys {
                            tr {
                                td.mono.break { (k.vkey) }
                                td { (match k.role { Role::Signing => "Signing", Role::Recovery => "Recovery" }) }
                                td.n { (k.from) }
                                td.n { @match k.until { Some(u) => (u), None => "now (in force)" } }
                                td { a href=(format!("/entries/{}", k.from.saturating_sub(1))) { "entry " (k.from.saturating_sub(1)) } }
                            }
                        }
                    }
                }
            }
            h3 { "Chain head" }
            dl.facts #head {
                dt { "Sequence number" } dd #head-seq { (p.head.seq) }
                dt { "Hash of the last statement" } dd.mono.break { (p.head.hash.as_deref().unwrap_or("none yet")) }
            }
        }

        section.card aria-labelledby="seals-h" {
            h2 #seals-h { "Sealed demands" }
            p.sub { "A seal commits to a demand that cannot be disclosed yet. It must be revealed by its date (or extended); an overdue seal is one past its date and not revealed." }
            @if seals.is_empty() {
                p.empty { "No seals." }
            } @else {
                div.table-wrap {
                    table #table-seals {
                        caption { "Seals, overdue first" }
                        thead { tr { th scope="col" { "Statement" } th scope="col" { "Status" } th scope="col" { "Disclose by" } th scope="col" { "Basis" } th scope="col" { "Kind" } th scope="col" { "Country" } } }
                        tbody {
                            @for x in seals.iter().take(MAX_SEALS) {
                                tr {
                                    th scope="row" { a href=(format!("/entries/{}", x.index)) { "Entry " (x.index) } br; span.mono.sub { (x.id) } }
                                    td { span class=(format!("badge {}", x.status)) { (x.status) } }
                                    td { (x.disclose_by) }
                                    td { (label(&x.basis)) }
                                    td { (x.kind.as_deref().map(label).unwrap_or_else(|| "—".into())) }
                                    td { (x.country.as_deref().unwrap_or("—")) }
                                }
                            }
                        }
                    }
                }
                @if seals.len() > MAX_SEALS { p.sub { "Showing " (MAX_SEALS) " of " (num(seals.len() as u64)) " seals." } }
            }
        }

        section.card aria-labelledby="reports-h" {
            h2 #reports-h { "Counted reports and bands" }
            p.sub { "Demands the publisher reports only as totals per period, and national-security demands the law lets it report only in bands. These are not part of the itemised numbers." }
            @if c.reports.is_empty() {
                p.empty { "No counted reports." }
            } @else {
                div.table-wrap {
                    table #table-reports {
                        caption { "Counted reports" }
                        thead { tr { th scope="col" { "Period" } th scope="col" { "Country" } th scope="col" { "Kind" } th.n scope="col" { "Demands" } th.n scope="col" { "Produced" } } }
                        tbody {
                            @for r in c.reports.iter().take(MAX_REPORTS) {
                                tr {
                                    th scope="row" { (r.k(0).unwrap_or("—")) }
                                    td { (r.k(1).unwrap_or("—")) }
                                    td { (label_opt(r.k(2))) }
                                    td.n { (num(r.requests)) }
                                    td.n { (num(r.produced)) }
                                }
                            }
                        }
                    }
                }
            }
            @if c.bands.is_empty() {
                p.empty { "No bands." }
            } @else {
                div.table-wrap {
                    table #table-bands {
                        caption { "National-security bands" }
                        thead { tr { th scope="col" { "Period" } th scope="col" { "Category" } th.n scope="col" { "Demands" } th.n scope="col" { "Accounts" } } }
                        tbody {
                            @for b in &c.bands {
                                tr {
                                    th scope="row" { (b["period"].as_str().unwrap_or("")) }
                                    td { (label(b["category"].as_str().unwrap_or(""))) }
                                    td.n { (band_range(&b["requests"])) }
                                    td.n { (band_range(&b["accounts"])) }
                                }
                            }
                        }
                    }
                }
            }
        }

        section.card aria-labelledby="latest-h" {
            h2 #latest-h { "Latest statements" }
            @if latest.is_empty() {
                p.empty { "No statements yet." }
            } @else {
                div.table-wrap {
                    table #table-latest {
                        caption { "The " (latest.len()) " latest statements, newest first" }
                        thead { tr { th scope="col" { "Entry" } th scope="col" { "Logged at (UTC)" } th scope="col" { "Type" } th scope="col" { "Summary" } } }
                        tbody {
                            @for l in &latest {
                                tr {
                                    th scope="row" { a href=(format!("/entries/{}", l.index)) { (l.index) } }
                                    td { (l.logged_at.replace('T', " ").trim_end_matches('Z')) }
                                    td { (label(&l.kind)) }
                                    td { (l.summary) br; span.mono.sub { (l.id) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&p.name, Nav::Publishers, body))
}
