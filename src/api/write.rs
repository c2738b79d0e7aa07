//! Write routes: one statement, or a batch, each answered once durable with a receipt.

use super::{ApiError, Shared, MAX_BATCH_BYTES, MAX_BATCH_ITEMS};
use crate::entry;
use crate::merkle;
use crate::note;
use crate::problem::Problem;
use crate::receipt::Receipt;
use crate::sequencer::Ack;
use crate::statement::{self, verify};
use axum::body::Bytes;
use axum::extract::Request;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rayon::prelude::*;
use serde_json::{json, Value};
use std::net::SocketAddr;

/// Statements checked together on one core: enough to share the cost of encoding the
/// recomputed signature points, few enough to spread a batch over the cores.
const CHECK_CHUNK: usize = 16;

/// Form and order-free checks for each note, in parallel on all cores (in chunks of
/// [`CHECK_CHUNK`], so a batch of that many or fewer is checked on one).
async fn check_all(s: &Shared, notes: Vec<Vec<u8>>) -> Vec<Result<verify::Checked, Problem>> {
    let s = s.clone();
    let n = notes.len();
    tokio::task::spawn_blocking(move || {
        let store: &dyn crate::store::Store = s.log.store.as_ref();
        // In chunks, so that the signatures of a chunk are verified together.
        notes
            .par_chunks(CHECK_CHUNK)
            .flat_map_iter(|chunk| {
                let parsed = chunk.iter().map(|b| statement::parse(b).map(|p| ((), p)));
                let storage = |_, e| Problem::unavailable(format!("storage failed: {e}"));
                let keys = verify::StoreKeys(store);
                let checked =
                    verify::check_many(parsed.collect(), &keys, &s.log.origin, &s.log_key, storage);
                checked.into_iter().map(|c| {
                    let ((), checked) = c?;
                    // Charge a publisher's budget only for statements its own key signed, so
                    // that nobody else can exhaust it.
                    let signed = checked
                        .signatures
                        .first()
                        .is_some_and(|c| c.iter().any(|(_, ok)| *ok));
                    if let (true, Some(p)) = (signed, checked.parsed.publisher()) {
                        s.limits.check_publisher(p)?;
                    }
                    Ok(checked)
                })
            })
            .collect()
    })
    .await
    .unwrap_or_else(|e| {
        (0..n)
            .map(|_| Err(Problem::internal(format!("worker failed: {e}"))))
            .collect()
    })
}

/// Builds a receipt for an acknowledged entry from what is on disk.
pub fn receipt(s: &Shared, ack: &Ack) -> Result<Receipt, Problem> {
    let fail = |e: String| Problem::unavailable(format!("could not build the receipt: {e}"));
    // A statement just logged: its time is known and its leaf hash is stored. A duplicate:
    // read the original entry.
    let (leaf, logged_at) = match ack.logged_at {
        Some(at) => (
            s.log
                .leaf_hash(ack.index)
                .map_err(|e| fail(e.to_string()))?,
            at,
        ),
        None => {
            let bytes = s
                .log
                .store
                .entries(ack.index, ack.index + 1)
                .map_err(|e| fail(e.to_string()))?
                .pop()
                .ok_or_else(|| fail(format!("entry {} not found", ack.index)))?;
            let e = entry::decode(&bytes).map_err(fail)?;
            (merkle::leaf_hash(&bytes), e.logged_at)
        }
    };
    let proof = s
        .log
        .inclusion_proof(ack.index, ack.checkpoint.size)
        .map_err(|e| fail(e.to_string()))?;
    Ok(Receipt {
        index: ack.index,
        leaf_hash: note::encode_b64(&leaf),
        logged_at: entry::format_instant(logged_at),
        checkpoint: ack.checkpoint.signed.clone(),
        inclusion_proof: proof.iter().map(|h| note::encode_b64(h)).collect(),
    })
}

async fn receipts(
    s: &Shared,
    acks: Vec<Result<Ack, Problem>>,
) -> Vec<Result<(Ack, Receipt), Problem>> {
    let s = s.clone();
    let n = acks.len();
    tokio::task::spawn_blocking(move || {
        acks.into_par_iter()
            .map(|a| a.and_then(|a| receipt(&s, &a).map(|r| (a, r))))
            .collect()
    })
    .await
    .unwrap_or_else(|e| {
        (0..n)
            .map(|_| Err(Problem::internal(format!("worker failed: {e}"))))
            .collect()
    })
}

fn status_of(ack: &Ack) -> StatusCode {
    if ack.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    }
}

/// Submits checked statements in order; refused-before-sequencing items keep their problem.
async fn sequence(
    s: &Shared,
    checked: Vec<Result<verify::Checked, Problem>>,
) -> Vec<Result<(Ack, Receipt), Problem>> {
    let mut slots: Vec<Option<Result<Ack, Problem>>> = Vec::with_capacity(checked.len());
    let mut items = Vec::new();
    for c in checked {
        match c {
            Ok(item) => {
                items.push(item);
                slots.push(None);
            }
            Err(p) => slots.push(Some(Err(p))),
        }
    }
    let mut answers = s
        .sequencer
        .submit_all(items, || Problem::unavailable("the log is shutting down"))
        .await
        .into_iter();
    let acks: Vec<Result<Ack, Problem>> = slots
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| {
                answers
                    .next()
                    .unwrap_or_else(|| Err(Problem::internal("lost an answer")))
            })
        })
        .collect();
    receipts(s, acks).await
}

/// Submits notes in order through the same checks as the HTTP routes (for in-process
/// publishing, such as the demo).
pub async fn submit_notes(s: &Shared, notes: Vec<String>) -> Vec<Result<(Ack, Receipt), Problem>> {
    let checked = check_all(s, notes.into_iter().map(String::into_bytes).collect()).await;
    sequence(s, checked).await
}

/// Counts statements by outcome for the metrics.
fn count<T>(route: &'static str, results: &[Result<(Ack, T), Problem>]) {
    let m = crate::metrics::get();
    for r in results {
        let status = match r {
            Ok((ack, _)) => status_of(ack).as_u16(),
            Err(p) => p.status,
        };
        m.submissions
            .get_or_create(&crate::metrics::Outcome { route, status })
            .inc();
    }
}

/// The per-address write limit (skipped when the address is unknown, in-process).
fn check_ip(
    s: &Shared,
    addr: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
) -> Result<(), ApiError> {
    match addr {
        Some(axum::Extension(ConnectInfo(a))) => s.limits.check_ip(a.ip()).map_err(ApiError),
        None => Ok(()),
    }
}

/// Reads a body of at most `limit` bytes. A larger one is refused with 413, after reading
/// and discarding what the client sends within a short grace (so that a client that writes
/// its whole body before reading the answer gets the answer, not a broken connection).
async fn read_body(
    req: Request,
    limit: usize,
    too_large: impl Fn(u64) -> Problem,
) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = req.into_body();
    if let Some(n) = declared.filter(|n| *n > limit as u64) {
        // A client declaring a little too much is probably sending it all before reading:
        // take it in, so it gets the answer. One declaring far too much gets it at once.
        if n <= DRAIN_MAX as u64 {
            drain(&mut body).await;
        }
        return Err(ApiError(too_large(n)));
    }
    let mut out = Vec::new();
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        let frame = frame.map_err(|e| {
            ApiError(Problem::form(format!(
                "could not read the request body: {e}"
            )))
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                let seen = (out.len() + data.len()) as u64;
                drain(&mut body).await;
                return Err(ApiError(too_large(seen)));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(out))
}

/// Most bytes of a refused body read and discarded.
const DRAIN_MAX: usize = 2 << 20;

/// Reads and discards up to [`DRAIN_MAX`] bytes of a refused body, for at most half a second.
async fn drain(body: &mut axum::body::Body) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(500);
    let mut left: usize = DRAIN_MAX;
    while left > 0 {
        match tokio::time::timeout_at(deadline, http_body_util::BodyExt::frame(body)).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(d) = frame.into_data() {
                    left = left.saturating_sub(d.len());
                }
            }
            _ => return,
        }
    }
}

pub async fn submit(
    State(s): State<Shared>,
    addr: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    req: Request,
) -> Result<Response, ApiError> {
    check_ip(&s, addr)?;
    let body = read_body(req, statement::MAX_NOTE_BYTES, |n| {
        Problem::too_large(format!(
            "the note is {n} bytes or more; a statement note may be at most {} bytes",
            statement::MAX_NOTE_BYTES
        ))
    })
    .await?;
    if body.len() > statement::MAX_NOTE_BYTES {
        return Err(ApiError(Problem::too_large(format!(
            "the note is {} bytes; a statement note may be at most {} bytes",
            body.len(),
            statement::MAX_NOTE_BYTES
        ))));
    }
    let checked = check_all(&s, vec![body.to_vec()]).await;
    let results = sequence(&s, checked).await;
    count("single", &results);
    let result = results
        .into_iter()
        .next()
        .unwrap_or_else(|| Err(Problem::internal("no answer")));
    let (ack, receipt) = result?;
    Ok((status_of(&ack), Json(receipt)).into_response())
}

/// The batch envelope: exactly one member (a duplicate member is refused, not resolved).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    statements: Vec<Value>,
}

pub async fn submit_batch(
    State(s): State<Shared>,
    addr: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    req: Request,
) -> Result<Response, ApiError> {
    check_ip(&s, addr)?;
    let body = read_body(req, MAX_BATCH_BYTES, |n| {
        Problem::too_large(format!(
            "the batch is {n} bytes or more; at most 8 MiB (8388608 bytes)"
        ))
    })
    .await?;
    if body.len() > MAX_BATCH_BYTES {
        return Err(ApiError(Problem::too_large(format!(
            "the batch is {} bytes; at most 8 MiB (8388608 bytes)",
            body.len()
        ))));
    }
    let envelope: Envelope = serde_json::from_slice(&body).map_err(|e| {
        ApiError(
            Problem::form(format!(
                "the batch must be exactly {{\"statements\": [note, …]}}: {e}"
            ))
            .at("/statements"),
        )
    })?;
    let list = envelope.statements;
    if list.len() > MAX_BATCH_ITEMS {
        return Err(ApiError(Problem::too_large(format!(
            "the batch has {} statements; at most {MAX_BATCH_ITEMS}",
            list.len()
        ))));
    }
    if list.is_empty() {
        return Err(ApiError(
            Problem::form("the batch has no statements").at("/statements"),
        ));
    }
    // Items that are not strings are refused in place; the others are checked in parallel.
    let mut notes = Vec::with_capacity(list.len());
    let mut not_strings = Vec::new();
    for (i, item) in list.iter().enumerate() {
        match item.as_str() {
            Some(n) => notes.push(n.as_bytes().to_vec()),
            None => {
                notes.push(Vec::new());
                not_strings.push(i);
            }
        }
    }
    let mut checked = check_all(&s, notes).await;
    for i in not_strings {
        checked[i] = Err(
            Problem::form("each batch item must be a string holding one signed note")
                .at(format!("/statements/{i}")),
        );
    }
    let results = sequence(&s, checked).await;
    count("batch", &results);
    let results: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            Ok((ack, receipt)) => json!({"status": status_of(&ack).as_u16(), "receipt": receipt}),
            Err(p) => json!({"status": p.status, "problem": p}),
        })
        .collect();
    Ok((StatusCode::OK, Json(json!({"results": results}))).into_response())
}
