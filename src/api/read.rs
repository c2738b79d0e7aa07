//! Read routes: checkpoint, tiles, entries, proofs, publishers and statements.

use super::problem::ApiPath;
use super::{ApiError, Shared};
use crate::entry;
use crate::merkle::{self, Hash};
use crate::note;
use crate::problem::Problem;
use crate::statement::json;
use crate::statement::state::{self, Merged, PublisherState, StatementRef};
use crate::tile::TileId;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

type Params = Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>;

/// Runs blocking store work off the async threads. Proofs and tiles do not come through
/// here: they read a few dozen hashes or one tile from memory and the page cache, in a few
/// microseconds, less than handing them to the blocking pool and back costs (two thread
/// switches a request, which were most of a proof's time under load).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ApiError(Problem::internal(format!("worker failed: {e}")))))
}

/// A non-negative decimal integer query parameter, written plainly.
fn param(q: &Params, name: &str) -> Result<Option<u64>, ApiError> {
    let q = q
        .as_ref()
        .map_err(|e| ApiError(Problem::form(format!("malformed query string: {e}"))))?;
    let Some(v) = q.get(name) else {
        return Ok(None);
    };
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError(Problem::form(format!(
            "{name} must be a non-negative decimal integer, not {v:?}"
        ))));
    }
    v.parse()
        .map(Some)
        .map_err(|_| ApiError(Problem::form(format!("{name} is out of range"))))
}

fn required(q: &Params, name: &str) -> Result<u64, ApiError> {
    param(q, name)?.ok_or_else(|| {
        ApiError(Problem::form(format!(
            "the query parameter {name} is required"
        )))
    })
}

/// A proof as JSON, `{"<a>":A,"<b>":B,"hashes":["<base64>",…]}`, written directly: the
/// hot read route of the log, and base64 never needs escaping, so building and escaping a
/// `serde_json::Value` would only cost time.
fn proof_json(a: (&str, u64), b: (&str, u64), hashes: &[Hash]) -> Response {
    let mut out = String::with_capacity(48 + hashes.len() * 47);
    out.push_str(&format!(
        r#"{{"{}":{},"{}":{},"hashes":["#,
        a.0, a.1, b.0, b.1
    ));
    for (i, h) in hashes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(&note::encode_b64(h));
        out.push('"');
    }
    out.push_str("]}");
    ([(header::CONTENT_TYPE, "application/json")], out).into_response()
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Prometheus metrics.
pub async fn metrics() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::get().encode(),
    )
        .into_response()
}

pub async fn readyz(State(s): State<Shared>) -> Result<&'static str, ApiError> {
    if s.ready.load(Ordering::SeqCst) && s.log.published().is_some() {
        Ok("ready\n")
    } else {
        Err(ApiError(Problem::unavailable("the log is starting")))
    }
}

pub async fn checkpoint(State(s): State<Shared>) -> Result<Response, ApiError> {
    let p = s.log.published().ok_or_else(|| {
        ApiError(Problem::unavailable(
            "no checkpoint yet: the log is starting",
        ))
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=2"),
        ],
        p.signed.clone(),
    )
        .into_response())
}

pub async fn tile(
    State(s): State<Shared>,
    ApiPath(path): ApiPath<String>,
) -> Result<Response, ApiError> {
    let full = format!("tile/{path}");
    let id = TileId::parse(&full).ok_or_else(|| {
        ApiError(Problem::form(format!(
            "{full:?} is not a tile path: expected tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>], N in 3-digit groups (x001/x234/067), 0 < W < 256"
        )))
    })?;
    let bytes = s.log.tile(&id)?;
    match bytes {
        Some(b) => Ok((
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            b,
        )
            .into_response()),
        None => Err(ApiError(Problem::not_found(format!(
            "{full} is beyond the current tree"
        )))),
    }
}

/// The JSON view of an entry.
pub fn entry_json(bytes: &[u8]) -> Result<Value, ApiError> {
    let e = entry::decode(bytes)
        .map_err(|e| ApiError(Problem::internal(format!("stored entry is corrupt: {e}"))))?;
    let line = e.statement.split('\n').next().unwrap_or("");
    let body = json::parse(line).unwrap_or(Value::Null);
    Ok(json!({
        "index": e.index,
        "logged_at": entry::format_instant(e.logged_at),
        "leaf_hash": note::encode_b64(&merkle::leaf_hash(bytes)),
        "statement": e.statement,
        "body": body,
    }))
}

pub async fn entry(
    State(s): State<Shared>,
    ApiPath(index): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let i: u64 = index
        .parse()
        .ok()
        .filter(|_| index.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            ApiError(Problem::form(format!(
                "entry index must be a non-negative integer, not {index:?}"
            )))
        })?;
    blocking(move || {
        let bytes = s.log.entry(i)?.ok_or_else(|| {
            ApiError(Problem::not_found(format!(
                "no entry {i}: the log has {} entries",
                s.log.size()
            )))
        })?;
        entry_json(&bytes).map(Json)
    })
    .await
}

pub async fn entries(State(s): State<Shared>, q: Params) -> Result<Json<Value>, ApiError> {
    let start = param(&q, "start")?.unwrap_or(0);
    let limit = param(&q, "limit")?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError(Problem::form(format!(
            "limit must be between 1 and 1000, not {limit}"
        ))));
    }
    blocking(move || {
        let size = s.log.size();
        let end = start.saturating_add(limit).min(size);
        let list = s.log.entries(start, end)?;
        let items = list
            .iter()
            .map(|b| entry_json(b))
            .collect::<Result<Vec<_>, _>>()?;
        let next = if end < size { json!(end) } else { Value::Null };
        Ok(Json(json!({"entries": items, "next": next})))
    })
    .await
}

pub async fn inclusion(State(s): State<Shared>, q: Params) -> Result<Response, ApiError> {
    crate::metrics::get()
        .proofs
        .get_or_create(&crate::metrics::Kind { kind: "inclusion" })
        .inc();
    let index = required(&q, "index")?;
    let current = s.log.size();
    let size = param(&q, "size")?.unwrap_or(current);
    if index >= size || size > current {
        return Err(ApiError(Problem::form(format!(
            "need index < size <= current size ({current}); got index {index}, size {size}"
        ))));
    }
    let proof = s
        .log
        .inclusion_proof(index, size)
        .map_err(|e| ApiError(Problem::internal(e.to_string())))?;
    Ok(proof_json(("index", index), ("size", size), &proof))
}

pub async fn consistency(State(s): State<Shared>, q: Params) -> Result<Response, ApiError> {
    crate::metrics::get()
        .proofs
        .get_or_create(&crate::metrics::Kind {
            kind: "consistency",
        })
        .inc();
    let from = required(&q, "from")?;
    let current = s.log.size();
    let to = param(&q, "to")?.unwrap_or(current);
    if from < 1 || from > to || to > current {
        return Err(ApiError(Problem::form(format!(
            "need 1 <= from <= to <= current size ({current}); got from {from}, to {to}"
        ))));
    }
    let proof = s
        .log
        .consistency_proof(from, to)
        .map_err(|e| ApiError(Problem::internal(e.to_string())))?;
    Ok(proof_json(("from", from), ("to", to), &proof))
}

/// The public view of a publisher.
pub fn publisher_json(p: &PublisherState) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "url": p.url,
        "status": p.status,
        "keys": p.keys,
        "head": p.head,
        "registered_at": p.registered_at,
    })
}

fn load_publisher(s: &Shared, id: &str) -> Result<PublisherState, ApiError> {
    state::decode(s.log.store.get(&state::publisher_key(id))?)
        .ok_or_else(|| ApiError(Problem::not_found(format!("no publisher {id:?}"))))
}

pub async fn publishers(State(s): State<Shared>) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let operator = state::operator_id(&s.log.origin);
        let mut list = Vec::new();
        for (_, v) in s.log.store.scan(b"p/")? {
            if let Some(p) = state::decode::<PublisherState>(Some(v)) {
                if p.id != operator {
                    list.push(publisher_json(&p));
                }
            }
        }
        Ok(Json(json!({"publishers": list})))
    })
    .await
}

pub async fn publisher(
    State(s): State<Shared>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || Ok(Json(publisher_json(&load_publisher(&s, &id)?)))).await
}

pub async fn operator(State(s): State<Shared>) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let id = state::operator_id(&s.log.origin);
        Ok(Json(publisher_json(&load_publisher(&s, &id)?)))
    })
    .await
}

/// A seal's status at the current size (spec 3.1): revealed, overdue, extended or open.
pub fn seal_status(m: &Merged, last_date: &str) -> &'static str {
    match m {
        Merged::Seal {
            revealed: Some(_), ..
        } => "revealed",
        Merged::Seal { disclose_by, .. } if last_date > disclose_by.as_str() => "overdue",
        Merged::Seal { extensions, .. } if !extensions.is_empty() => "extended",
        _ => "open",
    }
}

pub async fn statement(
    State(s): State<Shared>,
    ApiPath((id, sid)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        // Statement ids are UUIDs: nothing else can name a statement, and looking it up could
        // alias another publisher's key.
        if uuid::Uuid::parse_str(&sid).map(|u| u.hyphenated().to_string() != sid).unwrap_or(true) {
            return Err(ApiError(Problem::not_found(format!(
                "publisher {id:?} has no statement {sid:?}: statement ids are lowercase hyphenated UUIDs"
            ))));
        }
        let r: StatementRef = state::decode(s.log.store.get(&state::id_key(&id, &sid))?)
            .ok_or_else(|| {
                ApiError(Problem::not_found(format!(
                    "publisher {id:?} has no statement {sid:?}"
                )))
            })?;
        let bytes = s.log.entry(r.index)?.ok_or_else(|| {
            ApiError(Problem::not_found(format!(
                "entry {} is not published yet",
                r.index
            )))
        })?;
        let merged: Option<Merged> = state::decode(s.log.store.get(&state::merged_key(&id, &sid))?);
        let last_date = s
            .log
            .published()
            .map(|p| entry::date_of(p.last_logged_at))
            .unwrap_or_default();
        let current = merged.map(|m| {
            let mut v = serde_json::to_value(&m).unwrap_or(Value::Null);
            if matches!(m, Merged::Seal { .. }) {
                v["status"] = Value::from(seal_status(&m, &last_date));
            }
            v
        });
        Ok(Json(json!({
            "publisher": id,
            "id": sid,
            "type": r.kind,
            "entry": entry_json(&bytes)?,
            "current": current,
        })))
    })
    .await
}
