//! `GET /`: the overview. Headline numbers, charts by period, country and legal process with
//! tables of the same numbers, the publishers, and the log's status with how to audit it.

use super::charts::{self, Bar, Stack};
use super::layout::{self, label, label_opt, num, pct, Nav};
use super::{basis_note, rows, stats_index, Filters, Row, WebError};
use crate::api::Shared;
use crate::statement::state::{self, PublisherState, Status};
use crate::stats::{parse_period, Interval, Query};
use maud::{html, Markup};
use serde_json::Value;
use std::collections::BTreeMap;

/// Kinds of demand, in the spec's order (section 3.2).
const KINDS: [&str; 4] = [
    "user_data",
    "content_restriction",
    "account_restriction",
    "preservation",
];

/// The most countries drawn in the chart (the table lists them all).
const TOP_COUNTRIES: usize = 15;

/// Gaps between periods are filled in (as empty columns) up to this many columns.
const MAX_FILLED_PERIODS: usize = 240;

/// Everything the overview shows, read under one lock of the stats index.
struct Data {
    size: u64,
    totals: Value,
    prohibited: u64,
    by_country: Vec<Row>,
    by_period_kind: Vec<Row>,
    by_process: Vec<Row>,
    by_publisher: Vec<Row>,
    reports_by_publisher: Vec<Row>,
    sealed: Vec<Value>,
    reports_requests: u64,
    reports_produced: u64,
    all_countries: Vec<String>,
}

fn load(s: &Shared, f: &Filters) -> Result<Data, WebError> {
    let idx = stats_index(s)?;
    let all = idx.query(&f.query(&[])?);
    let notified = idx.query(&f.query(&["user_notified"])?);
    let country = idx.query(&f.query(&["country"])?);
    let period = idx.query(&f.query(&["period", "kind"])?);
    let process = idx.query(&f.query(&["process"])?);
    let publisher = idx.query(&f.query(&["publisher"])?);
    let unfiltered = idx.query(&Query {
        group_by: vec!["country".into()],
        ..Query::default()
    });
    let size = idx.size;
    drop(idx);
    let prohibited = rows(&notified, "rows", &["user_notified"])
        .iter()
        .filter(|r| r.k(0) == Some("prohibited"))
        .map(|r| r.requests)
        .sum();
    let reports = rows(&all, "aggregates", &[]);
    Ok(Data {
        size,
        prohibited,
        reports_requests: reports.iter().map(|r| r.requests).sum(),
        reports_produced: reports.iter().map(|r| r.produced).sum(),
        by_country: rows(&country, "rows", &["country"]),
        by_period_kind: rows(&period, "rows", &["period", "kind"]),
        by_process: rows(&process, "rows", &["process"]),
        by_publisher: rows(&publisher, "rows", &["publisher"]),
        reports_by_publisher: rows(&publisher, "aggregates", &["publisher"]),
        sealed: all["sealed"].as_array().cloned().unwrap_or_default(),
        all_countries: rows(&unfiltered, "rows", &["country"])
            .into_iter()
            .filter_map(|r| r.key.into_iter().next().flatten())
            .collect(),
        totals: all["totals"].clone(),
    })
}

/// The publishers (the operator left out), by id.
fn publishers(s: &Shared) -> Result<Vec<PublisherState>, WebError> {
    let operator = state::operator_id(&s.log.origin);
    let mut list: Vec<PublisherState> = s
        .log
        .store
        .scan(b"p/")?
        .into_iter()
        .filter_map(|(_, v)| state::decode::<PublisherState>(Some(v)))
        .filter(|p| p.id != operator)
        .collect();
    list.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(list)
}

fn sum_sealed(sealed: &[Value], publisher: Option<&str>) -> (u64, u64) {
    sealed
        .iter()
        .filter(|x| publisher.is_none_or(|p| x["publisher"].as_str() == Some(p)))
        .fold((0, 0), |(o, d), x| {
            (
                o + x["open"].as_u64().unwrap_or(0),
                d + x["overdue"].as_u64().unwrap_or(0),
            )
        })
}

/// Period keys from the first to the last present, gaps filled in (if not too many).
fn period_axis(present: &[String], interval: Interval) -> Vec<String> {
    let (Some(first), Some(last)) = (present.first(), present.last()) else {
        return vec![];
    };
    let (Some((_, a, _)), Some((_, b, _))) = (parse_period(first), parse_period(last)) else {
        return present.to_vec();
    };
    let step = match interval {
        Interval::Month => 1,
        Interval::Quarter => 3,
        Interval::Half => 6,
        Interval::Year => 12,
    };
    let count = ((b.saturating_sub(a)) / step + 1) as usize;
    if count > MAX_FILLED_PERIODS {
        return present.to_vec();
    }
    (0..count as u32)
        .map(|k| interval.key(a + k * step))
        .collect()
}

pub fn render(s: &Shared, f: &Filters, base_url: &str) -> Result<Markup, WebError> {
    let d = load(s, f)?;
    let pubs = publishers(s)?;
    let published = s.log.published();
    let log_size = published.as_ref().map_or(0, |p| p.size);
    let log_checkpoint = published
        .as_ref()
        .map_or_else(String::new, |p| p.signed.clone());
    let requests = d.totals["requests"].as_u64().unwrap_or(0);
    let produced = d.totals["produced"].as_u64().unwrap_or(0);
    let (open, overdue) = sum_sealed(&d.sealed, None);

    let body = html! {
        h1 { "Government demands on technology companies" }
        p.lede {
            "Demands for user data and for content takedowns that governments sent to the publishers "
            "below, as the publishers themselves signed and logged them. The log is public and "
            "append-only: entries can be added, never changed or removed without detection."
        }
        (basis_note(d.size, html! {
            "Anyone can recompute them: see " a href="#log-status" { "how to verify" } "."
        }))
        (filter_form(f, &d.all_countries, &pubs))
        (headline(requests, produced, d.prohibited, d.reports_requests, d.reports_produced, open, overdue))
        (period_section(f, &d.by_period_kind))
        div.grid2.stack {
            (country_section(f, &d.by_country, requests))
            (process_section(f, &d.by_process, requests))
        }
        (publishers_section(f, &pubs, &d))
        (status_section(s, log_size, &log_checkpoint, base_url))
    };
    Ok(layout::page("Overview", Nav::Overview, body))
}

fn filter_form(f: &Filters, countries: &[String], pubs: &[PublisherState]) -> Markup {
    let country = f.get("country").unwrap_or("");
    let kind = f.get("kind").unwrap_or("");
    let publisher = f.get("publisher").unwrap_or("");
    let mut countries: Vec<&str> = countries.iter().map(String::as_str).collect();
    if !country.is_empty() && !countries.contains(&country) {
        countries.push(country);
        countries.sort_unstable();
    }
    let shown_publisher = |id: &str| pubs.iter().any(|p| p.id == id);
    // Filters this form has no field for (from links in tables) are kept as hidden fields.
    let hidden: Vec<&(String, String)> = f
        .pairs
        .iter()
        .filter(|(k, _)| !["country", "kind", "publisher", "from", "to"].contains(&k.as_str()))
        .collect();
    html! {
        section.card aria-labelledby="filters-h" {
            h2 #filters-h { "Filter" }
            p.sub { "Choose what to count. Every chart, table and download below follows these filters." }
            form method="get" action="/" {
                div.filters {
                div {
                    label for="f-country" { "Country" }
                    select #f-country name="country" {
                        option value="" selected[country.is_empty()] { "All countries" }
                        @for c in &countries {
                            option value=(c) selected[*c == country] { (c) }
                        }
                    }
                }
                div {
                    label for="f-kind" { "Kind of demand" }
                    select #f-kind name="kind" {
                        option value="" selected[kind.is_empty()] { "All kinds" }
                        @for k in KINDS {
                            option value=(k) selected[k == kind] { (label(k)) }
                        }
                        @if !kind.is_empty() && !KINDS.contains(&kind) {
                            option value=(kind) selected { (kind) }
                        }
                    }
                }
                div {
                    label for="f-publisher" { "Publisher" }
                    select #f-publisher name="publisher" {
                        option value="" selected[publisher.is_empty()] { "All publishers" }
                        @for p in pubs {
                            option value=(p.id) selected[p.id == publisher] { (p.name) }
                        }
                        @if !publisher.is_empty() && !shown_publisher(publisher) {
                            option value=(publisher) selected { (publisher) }
                        }
                    }
                }
                div {
                    label for="f-interval" { "Time series by" }
                    select #f-interval name="interval" {
                        @for (iv, name) in [(Interval::Month, "Month"), (Interval::Quarter, "Quarter"), (Interval::Half, "Half-year"), (Interval::Year, "Year")] {
                            option value=(iv.name()) selected[iv == f.interval] { (name) }
                        }
                    }
                }
                div {
                    label for="f-from" { "From period" }
                    input #f-from type="text" name="from" value=(f.get("from").unwrap_or(""))
                        placeholder="e.g. 2025-Q1" inputmode="text" autocomplete="off"
                        pattern="[0-9]{4}(-H[12]|-Q[1-4]|-(0[1-9]|1[0-2]))?"
                        title="A period key: 2025, 2025-H1, 2025-Q1 or 2025-03" aria-describedby="period-help";
                }
                div {
                    label for="f-to" { "To period" }
                    input #f-to type="text" name="to" value=(f.get("to").unwrap_or(""))
                        placeholder="e.g. 2026-Q2" inputmode="text" autocomplete="off"
                        pattern="[0-9]{4}(-H[12]|-Q[1-4]|-(0[1-9]|1[0-2]))?"
                        title="A period key: 2026, 2026-H1, 2026-Q2 or 2026-06" aria-describedby="period-help";
                }
                }
                @for (k, v) in &hidden {
                    input type="hidden" name=(k) value=(v);
                }
                p #period-help .sub { "Periods go by the date a demand was received: a year (2025), half (2025-H1), quarter (2025-Q1) or month (2025-03), inclusive." }
                div.actions {
                    button type="submit" { "Apply" }
                    a.button.secondary href="/" { "Reset" }
                }
            }
            @if !f.pairs.is_empty() {
                p.active-filters {
                    "Showing only: "
                    @for (k, v) in &f.pairs {
                        span.chip { (label(k)) ": " (v) }
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn headline(
    requests: u64,
    produced: u64,
    prohibited: u64,
    reports_requests: u64,
    reports_produced: u64,
    open: u64,
    overdue: u64,
) -> Markup {
    html! {
        section aria-labelledby="headline-h" {
            h2 #headline-h .sr-only { "Headline numbers" }
            ul.stats {
                li.stat #stat-demands {
                    span.v { (num(requests)) }
                    span.k { "Itemised demands" }
                    span.d { "Each demand logged one by one (requests and revealed seals)." }
                }
                li.stat #stat-produced {
                    span.v { (pct(produced, requests)) }
                    span.k { "Data produced or content restricted" }
                    span.d { (num(produced)) " of " (num(requests)) " demands were complied with, in full or in part." }
                }
                li.stat #stat-prohibited {
                    span.v { (pct(prohibited, requests)) }
                    span.k { "Telling the user was prohibited" }
                    span.d { (num(prohibited)) " of " (num(requests)) " demands came with a gag on notifying the user." }
                }
                li.stat.muted #stat-reports {
                    span.v { (num(reports_requests)) }
                    span.k { "Demands in counted reports" }
                    span.d { "Reported only as totals per period (" (num(reports_produced)) " produced); not included above." }
                }
                li.stat #stat-open {
                    span.v { (num(open)) }
                    span.k { "Sealed demands, not yet revealed" }
                    span.d { "Logged under a non-disclosure order, to be revealed by a set date." }
                }
                li.stat.warn[overdue > 0] #stat-overdue {
                    span.v { (num(overdue)) }
                    span.k { "Overdue seals" }
                    span.d { "Past their disclose-by date and still not revealed." }
                }
            }
        }
    }
}

/// The "download these numbers" links under a chart.
fn downloads(f: &Filters, group_by: &[&str]) -> Markup {
    html! {
        p.links {
            "These numbers as "
            a href=(f.api_href("/api/v1/stats.csv", group_by)) { "CSV" }
            " or "
            a href=(f.api_href("/api/v1/stats", group_by)) { "JSON" }
            "."
        }
    }
}

fn period_section(f: &Filters, rows: &[Row]) -> Markup {
    let mut present: Vec<String> = rows
        .iter()
        .filter_map(|r| r.k(0).map(str::to_string))
        .collect();
    present.dedup();
    let axis = period_axis(&present, f.interval);
    // Series: the known kinds that occur, in the spec's order, then any other value.
    let mut kinds: Vec<Option<String>> = KINDS
        .iter()
        .filter(|k| rows.iter().any(|r| r.k(1) == Some(**k)))
        .map(|k| Some(k.to_string()))
        .collect();
    for r in rows {
        if !kinds.iter().any(|k| k.as_deref() == r.k(1)) {
            kinds.push(r.k(1).map(str::to_string));
        }
    }
    let mut cells: BTreeMap<(String, Option<String>), u64> = BTreeMap::new();
    let mut undated = 0;
    for r in rows {
        match r.k(0) {
            Some(p) => {
                *cells
                    .entry((p.to_string(), r.k(1).map(str::to_string)))
                    .or_default() += r.requests
            }
            None => undated += r.requests,
        }
    }
    let stacks: Vec<Stack> = axis
        .iter()
        .map(|p| Stack {
            label: p.clone(),
            values: kinds
                .iter()
                .map(|k| cells.get(&(p.clone(), k.clone())).copied().unwrap_or(0))
                .collect(),
        })
        .collect();
    let series: Vec<String> = kinds.iter().map(|k| label_opt(k.as_deref())).collect();
    let by = match f.interval {
        Interval::Month => "month",
        Interval::Quarter => "quarter",
        Interval::Half => "half-year",
        Interval::Year => "year",
    };
    let title = format!("Demands by {by} received, by kind");
    html! {
        section.card aria-labelledby="period-h" {
            h2 #period-h { (title) }
            p.sub { "Itemised demands by the date they were received, stacked by kind of demand." }
            figure {
                (charts::stacked("chart-period", &title, &series, &stacks))
                @if !stacks.is_empty() { (charts::legend(&series)) }
            }
            @if undated > 0 { p.sub { (num(undated)) " demands have no date and are not drawn." } }
            details {
                summary { "Show the numbers as a table" }
                div.table-wrap {
                    table #table-period {
                        caption { (title) }
                        thead {
                            tr {
                                th scope="col" { "Period" }
                                @for s in &series { th.n scope="col" { (s) } }
                                th.n scope="col" { "Total" }
                            }
                        }
                        tbody {
                            @for st in &stacks {
                                tr {
                                    th scope="row" { (st.label) }
                                    @for v in &st.values { td.n { (num(*v)) } }
                                    td.n { (num(st.values.iter().sum())) }
                                }
                            }
                        }
                    }
                }
            }
            (downloads(f, &["period", "kind"]))
        }
    }
}

fn country_section(f: &Filters, rows: &[Row], total: u64) -> Markup {
    let mut sorted: Vec<&Row> = rows.iter().collect();
    sorted.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.key.cmp(&b.key)));
    let bars: Vec<Bar> = sorted
        .iter()
        .take(TOP_COUNTRIES)
        .map(|r| Bar {
            label: r
                .k(0)
                .map(str::to_string)
                .unwrap_or_else(|| "Not given".into()),
            value: r.requests,
        })
        .collect();
    let title = if rows.len() > TOP_COUNTRIES {
        format!("Demands by country (top {TOP_COUNTRIES} of {})", rows.len())
    } else {
        "Demands by country".to_string()
    };
    html! {
        section.card aria-labelledby="country-h" {
            h2 #country-h { (title) }
            p.sub { "The state that made the demand (ISO 3166-1 code)." }
            figure { (charts::hbar("chart-country", &title, &bars)) }
            details {
                summary { "Show the numbers as a table" }
                div.table-wrap {
                    table #table-country {
                        caption { "Demands by country, all countries" }
                        thead {
                            tr {
                                th scope="col" { "Country" }
                                th.n scope="col" { "Demands" }
                                th.n scope="col" { "Produced or restricted" }
                                th.n scope="col" { "Share of all" }
                            }
                        }
                        tbody {
                            @for r in &sorted {
                                tr {
                                    th scope="row" {
                                        @match r.k(0) {
                                            Some(c) => a href=(f.with("country", c).page_href()) { (c) },
                                            None => "Not given",
                                        }
                                    }
                                    td.n { (num(r.requests)) }
                                    td.n { (num(r.produced)) }
                                    td.n { (pct(r.requests, total)) }
                                }
                            }
                        }
                    }
                }
            }
            (downloads(f, &["country"]))
        }
    }
}

fn process_section(f: &Filters, rows: &[Row], total: u64) -> Markup {
    let mut sorted: Vec<&Row> = rows.iter().collect();
    sorted.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.key.cmp(&b.key)));
    let bars: Vec<Bar> = sorted
        .iter()
        .map(|r| Bar {
            label: label_opt(r.k(0)),
            value: r.requests,
        })
        .collect();
    let title = "Demands by legal process";
    html! {
        section.card aria-labelledby="process-h" {
            h2 #process-h { (title) }
            p.sub { "The legal instrument the demand came with." }
            figure { (charts::hbar("chart-process", title, &bars)) }
            details {
                summary { "Show the numbers as a table" }
                div.table-wrap {
                    table #table-process {
                        caption { (title) }
                        thead {
                            tr {
                                th scope="col" { "Legal process" }
                                th.n scope="col" { "Demands" }
                                th.n scope="col" { "Produced or restricted" }
                                th.n scope="col" { "Share of all" }
                            }
                        }
                        tbody {
                            @for r in &sorted {
                                tr {
                                    th scope="row" {
                                        @match r.k(0) {
                                            Some(p) => a href=(f.with("process", p).page_href()) { (label(p)) },
                                            None => "Not given",
                                        }
                                    }
                                    td.n { (num(r.requests)) }
                                    td.n { (num(r.produced)) }
                                    td.n { (pct(r.requests, total)) }
                                }
                            }
                        }
                    }
                }
            }
            (downloads(f, &["process"]))
        }
    }
}

fn publishers_section(f: &Filters, pubs: &[PublisherState], d: &Data) -> Markup {
    let only = f.get("publisher");
    let shown: Vec<&PublisherState> = pubs
        .iter()
        .filter(|p| only.is_none_or(|o| o == p.id))
        .collect();
    let demands = |id: &str| {
        d.by_publisher
            .iter()
            .find(|r| r.k(0) == Some(id))
            .map_or((0, 0), |r| (r.requests, r.produced))
    };
    let reported = |id: &str| {
        d.reports_by_publisher
            .iter()
            .filter(|r| r.k(0) == Some(id))
            .map(|r| r.requests)
            .sum::<u64>()
    };
    html! {
        section.card #publishers aria-labelledby="publishers-h" {
            h2 #publishers-h { "Publishers" }
            p.sub { "Companies that log the demands they receive. Numbers follow the filters above." }
            @if shown.is_empty() {
                p.empty { "No publisher is registered yet." }
            } @else {
                div.table-wrap {
                    table #table-publishers {
                        caption { "Publishers and their numbers" }
                        thead {
                            tr {
                                th scope="col" { "Publisher" }
                                th scope="col" { "Status" }
                                th.n scope="col" { "Itemised demands" }
                                th.n scope="col" { "Produced or restricted" }
                                th.n scope="col" { "In counted reports" }
                                th.n scope="col" { "Open seals" }
                                th.n scope="col" { "Overdue seals" }
                            }
                        }
                        tbody {
                            @for p in &shown {
                                @let (req, prod) = demands(&p.id);
                                @let (open, overdue) = sum_sealed(&d.sealed, Some(&p.id));
                                tr {
                                    th scope="row" {
                                        a href=(layout::publisher_href(&p.id)) { (p.name) }
                                        br;
                                        span.mono.sub { (p.id) }
                                    }
                                    td { (status_badge(p.status)) }
                                    td.n { (num(req)) }
                                    td.n { (pct(prod, req)) }
                                    td.n { (num(reported(&p.id))) }
                                    td.n { (num(open)) }
                                    td.n { (num(overdue)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn status_badge(s: Status) -> Markup {
    match s {
        Status::Active => html! { span.badge { "Active" } },
        Status::Revoked => html! { span.badge.revoked { "Revoked" } },
    }
}

fn status_section(s: &Shared, size: u64, checkpoint: &str, base_url: &str) -> Markup {
    let vkey = s.log_key.to_string();
    let audit = format!(
        "candor audit {base_url} --log-key {}",
        layout::shell_quote(&vkey)
    );
    html! {
        section.card #log-status aria-labelledby="status-h" {
            h2 #status-h { "Log status and how to verify it" }
            dl.facts {
                dt { "Origin" } dd.mono { (s.log.origin) }
                dt { "Tree size" } dd { (num(size)) " entries" }
                dt { "Log verifier key" } dd.mono.break { (vkey) }
            }
            h3 { "Latest signed checkpoint" }
            p.sub { "The log's signature over its size and Merkle root. Every later checkpoint must be consistent with it." }
            (layout::pre(checkpoint))
            h3 { "How to audit" }
            ol.steps {
                li { "Get the log's verifier key from a source you trust (the operator's own site, a monitor, a colleague) and compare it with the key above." }
                li {
                    "Run:"
                    pre { code { (audit) } }
                    "It downloads every entry, checks every signature and the Merkle tree against the "
                    "signed checkpoint, replays the publishers' chains and recomputes the numbers on this page. "
                    "Exit status 0 means verified."
                }
                li { "Add " code { "--state DIR" } " and run it again later: it then checks that the log only grew, and was not rewritten." }
                li { "Each entry page shows an inclusion proof that " code { "candor verify-receipt" } " checks offline." }
            }
        }
    }
}
