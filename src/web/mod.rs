//! The public web dashboard: server-rendered HTML pages over the same log, state and
//! statistics index that the JSON API reads.
//!
//! - `GET /`: overview: headline numbers, charts and tables of a stats query (spec 6.3) whose
//!   filters come from a plain GET form, the publishers, and the log's status with how to audit it;
//! - `GET /publishers/{id}`: one publisher: keys, chain head, counts, seals, counted reports,
//!   bands and latest statements;
//! - `GET /entries/{index}`: one entry: the signed statement, its parsed body, and its inclusion
//!   proof against the current checkpoint.
//!
//! No JavaScript, no external resource: pages work offline and under a strict
//! Content-Security-Policy. Every value from the log is untrusted text and goes through
//! `maud`, which escapes it. Handlers are thin: reading the store and the stats index, and
//! rendering, run on blocking threads.

mod charts;
mod entry;
mod layout;
mod overview;
mod publisher;

use crate::api::{ApiError, Shared};
use crate::stats::{Interval, Query, DIMENSIONS};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

/// Content-Security-Policy of every page: nothing but inline style (inline SVG needs no more).
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// An HTML page as a response.
fn html_response(status: StatusCode, page: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        page.into_string(),
    )
        .into_response()
}

/// A page that could not be shown: served as an HTML page with the right status.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub title: String,
    pub detail: String,
}

impl WebError {
    pub fn new(status: StatusCode, title: &str, detail: impl Into<String>) -> WebError {
        WebError {
            status,
            title: title.into(),
            detail: detail.into(),
        }
    }
    pub fn not_found(detail: impl Into<String>) -> WebError {
        WebError::new(StatusCode::NOT_FOUND, "Not found", detail)
    }
    pub fn bad_request(detail: impl Into<String>) -> WebError {
        WebError::new(StatusCode::BAD_REQUEST, "Cannot show this page", detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> WebError {
        WebError::new(StatusCode::SERVICE_UNAVAILABLE, "Not available yet", detail)
    }
    pub fn internal(detail: impl Into<String>) -> WebError {
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            detail,
        )
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> WebError {
        let status = StatusCode::from_u16(e.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        WebError::new(status, &e.0.title, e.0.detail)
    }
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> WebError {
        tracing::error!(error = %e, "storage error while rendering a page");
        WebError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            format!("storage failed: {e}"),
        )
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let body = html! {
            h1 { (self.title) }
            p.error role="alert" { (self.detail) }
            p { a href="/" { "Back to the overview" } }
        };
        let mut r = html_response(
            self.status,
            layout::page(&self.title, layout::Nav::None, body),
        );
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

/// Runs page work (store reads, queries, rendering) on a blocking thread.
async fn blocking(
    f: impl FnOnce() -> Result<Markup, WebError> + Send + 'static,
) -> Result<Response, WebError> {
    let page = tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(WebError::internal(format!("page worker failed: {e}"))))?;
    Ok(html_response(StatusCode::OK, page))
}

/// The overview's filters, as the GET form sends them: equality filters on dimensions,
/// `from`/`to` period keys and the `interval` of the time series. Empty values mean "all";
/// unknown parameters are ignored (a page should not fail on a tracking parameter).
#[derive(Debug, Clone)]
pub struct Filters {
    /// Dimension filters (in [`DIMENSIONS`] order), then `from` and `to`.
    pub pairs: Vec<(String, String)>,
    pub interval: Interval,
}

/// The dashboard's default period granularity.
pub const DEFAULT_INTERVAL: Interval = Interval::Quarter;

impl Filters {
    pub fn parse(raw: Option<&str>) -> Result<Filters, WebError> {
        let given: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| WebError::bad_request(format!("malformed query string: {e}")))?;
        let mut interval = DEFAULT_INTERVAL;
        let mut map: std::collections::HashMap<String, String> = Default::default();
        for (k, v) in given {
            let v = v.trim().to_string();
            if v.is_empty() {
                continue;
            }
            if v.len() > 200 {
                return Err(WebError::bad_request(format!("{k}: value too long")));
            }
            if k == "interval" {
                interval = Interval::parse(&v).ok_or_else(|| {
                    WebError::bad_request(format!(
                        "interval must be month, quarter, half or year, not {v:?}"
                    ))
                })?;
            } else if k == "from" || k == "to" || DIMENSIONS.contains(&k.as_str()) {
                map.insert(k, v);
            }
        }
        let order = DIMENSIONS.iter().copied().chain(["from", "to"]);
        let pairs: Vec<(String, String)> = order
            .filter_map(|k| map.remove(k).map(|v| (k.to_string(), v)))
            .collect();
        let f = Filters { pairs, interval };
        f.query(&[])?; // the stats query checks period keys
        Ok(f)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    }

    /// The parameters of a stats query grouped by `group_by`.
    pub fn params(&self, group_by: &[&str]) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if !group_by.is_empty() {
            p.push(("group_by".to_string(), group_by.join(",")));
        }
        p.extend(self.pairs.iter().cloned());
        p.push(("interval".to_string(), self.interval.name().to_string()));
        p
    }

    pub fn query(&self, group_by: &[&str]) -> Result<Query, WebError> {
        let p = self.params(group_by);
        Query::from_params(p.iter().map(|(a, b)| (a.as_str(), b.as_str())))
            .map_err(WebError::bad_request)
    }

    /// The same filters with one changed (for links from table rows).
    pub fn with(&self, k: &str, v: &str) -> Filters {
        let mut f = self.clone();
        f.pairs.retain(|(a, _)| a != k);
        f.pairs.push((k.to_string(), v.to_string()));
        f
    }

    /// A link to the overview with these filters.
    pub fn page_href(&self) -> String {
        let mut p = self.pairs.clone();
        if self.interval != DEFAULT_INTERVAL {
            p.push(("interval".into(), self.interval.name().into()));
        }
        if p.is_empty() {
            "/".into()
        } else {
            format!("/?{}", layout::query_string(&p))
        }
    }

    /// A link to an API route (`/api/v1/stats`, `/api/v1/stats.csv`) with this query.
    pub fn api_href(&self, route: &str, group_by: &[&str]) -> String {
        format!("{route}?{}", layout::query_string(&self.params(group_by)))
    }
}

/// The base URL that `candor audit` should be pointed at, from the request's `Host` (when it
/// looks like a host name) and `X-Forwarded-Proto`.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    match host {
        Some(h) => format!("{scheme}://{h}"),
        None => "URL-OF-THIS-LOG".into(),
    }
}

/// `GET /`.
pub async fn overview(
    State(s): State<Shared>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let f = Filters::parse(raw.as_deref())?;
    let url = base_url(&headers);
    blocking(move || overview::render(&s, &f, &url)).await
}

/// `GET /publishers/{id}`.
pub async fn publisher(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    if id.len() > 300 {
        return Err(WebError::not_found("no such publisher"));
    }
    blocking(move || publisher::render(&s, &id)).await
}

/// `GET /entries/{index}`.
pub async fn entry(
    State(s): State<Shared>,
    Path(index): Path<String>,
) -> Result<Response, WebError> {
    let i: u64 = index
        .parse()
        .ok()
        .filter(|_| {
            !index.is_empty() && index.len() <= 20 && index.bytes().all(|b| b.is_ascii_digit())
        })
        .ok_or_else(|| {
            WebError::bad_request(format!(
                "an entry index is a non-negative integer, not {index:?}"
            ))
        })?;
    blocking(move || entry::render(&s, i)).await
}

/// One row of a grouped stats result: its key values and the two measures the pages show.
#[derive(Debug, Clone)]
struct Row {
    key: Vec<Option<String>>,
    requests: u64,
    produced: u64,
}

impl Row {
    /// The value of the `i`-th grouped dimension (None if missing).
    fn k(&self, i: usize) -> Option<&str> {
        self.key.get(i).and_then(|v| v.as_deref())
    }
}

fn measure(v: &serde_json::Value, m: &str) -> u64 {
    v[m].as_u64().unwrap_or(0)
}

/// The rows (or `aggregates`, with `list` = "aggregates") of a stats result grouped by `dims`.
fn rows(v: &serde_json::Value, list: &str, dims: &[&str]) -> Vec<Row> {
    v[list]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| Row {
                    key: dims
                        .iter()
                        .map(|d| r["key"][*d].as_str().map(str::to_string))
                        .collect(),
                    requests: measure(r, "requests"),
                    produced: measure(r, "produced"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The stats index, read-locked: every query of one page runs under one lock, so all its
/// numbers are for the same tree size.
fn stats_index(
    s: &Shared,
) -> Result<std::sync::RwLockReadGuard<'_, crate::stats::Index>, WebError> {
    let idx = s
        .stats
        .read()
        .map_err(|_| WebError::internal("the statistics index is unavailable (lock poisoned)"))?;
    if idx.building {
        return Err(WebError::unavailable(
            "The statistics are being rebuilt after a restart; try again in a few seconds.",
        ));
    }
    Ok(idx)
}

/// "Computed from signed entries" note.
fn basis_note(size: u64, extra: Markup) -> Markup {
    html! {
        div.basis role="note" {
            (layout::info_icon())
            div {
                "Numbers on this page are computed from the signed entries "
                strong { "0 … " (layout::num(size.saturating_sub(1))) }
                " of this log, at tree size " strong { (layout::num(size)) } ". "
                (extra)
            }
        }
    }
}
