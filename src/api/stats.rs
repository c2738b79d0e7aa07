//! Aggregate counts (spec 6.3), their CSV, and an NDJSON export of every itemised demand in
//! merged state, for researchers.

use super::{ApiError, Shared};
use crate::problem::Problem;
use crate::statement::state::{self, Merged};
use crate::stats::{self, Query};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

fn query(raw: Option<String>) -> Result<Query, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| ApiError(Problem::form(format!("malformed query string: {e}"))))?;
    Query::from_params(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| ApiError(Problem::form(e)))
}

/// Runs a query on the index: the numbers and the size and checkpoint they are for.
pub fn run(s: &Shared, q: &Query) -> Result<Value, ApiError> {
    let idx = s
        .stats
        .read()
        .map_err(|_| ApiError(Problem::internal("stats index lock poisoned")))?;
    if idx.building {
        return Err(ApiError(Problem::unavailable(
            "the statistics index is being rebuilt after a restart; try again in a few seconds",
        )));
    }
    let mut v = idx.query(q);
    v["size"] = json!(idx.size);
    v["checkpoint"] = json!(idx.checkpoint);
    Ok(v)
}

pub async fn stats(
    State(s): State<Shared>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = query(raw)?;
    let v = tokio::task::spawn_blocking(move || run(&s, &q))
        .await
        .map_err(|e| ApiError(Problem::internal(e.to_string())))??;
    // Keys in the spec's order: size and checkpoint first.
    let mut out = serde_json::Map::new();
    for k in [
        "size",
        "checkpoint",
        "group_by",
        "interval",
        "rows",
        "totals",
        "aggregates",
        "bands",
        "sealed",
    ] {
        out.insert(k.into(), v[k].clone());
    }
    Ok(Json(Value::Object(out)))
}

pub async fn stats_csv(
    State(s): State<Shared>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = query(raw)?;
    let v = tokio::task::spawn_blocking(move || run(&s, &q))
        .await
        .map_err(|e| ApiError(Problem::internal(e.to_string())))??;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"candor-stats.csv\"",
            ),
        ],
        stats::to_csv(&v),
    )
        .into_response())
}

/// One JSON line per itemised demand (requests and revealed seals), in merged state,
/// streamed a page at a time.
pub async fn export_requests(State(s): State<Shared>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = match s.log.store.scan_page(b"r/", after.as_deref(), 1000) {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                    return;
                }
            };
            let Some((last, _)) = page.last() else { return };
            after = Some(last.clone());
            let mut chunk = Vec::new();
            for (k, v) in &page {
                let key = String::from_utf8_lossy(&k[2..]).to_string();
                let Some((publisher, id)) = key.rsplit_once('/') else {
                    continue;
                };
                let line = match state::decode::<Merged>(Some(v.clone())) {
                    Some(Merged::Request { record, updates }) => {
                        json!({"publisher": publisher, "id": id, "type": "request", "record": record, "updates": updates})
                    }
                    Some(Merged::Seal {
                        revealed: Some(r),
                        updates,
                        ..
                    }) => {
                        json!({"publisher": publisher, "id": id, "type": "seal", "record": r.record, "revealed_at": r.index, "updates": updates})
                    }
                    _ => continue,
                };
                chunk.extend(line.to_string().into_bytes());
                chunk.push(b'\n');
            }
            if tx.blocking_send(Ok(chunk)).is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}
