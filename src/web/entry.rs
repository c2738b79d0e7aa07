//! `GET /entries/{index}`: one entry: its signed statement, the statement's JSON, its leaf
//! hash and its inclusion proof against the current checkpoint, with how to check it offline.

use super::layout::{self, label, Nav};
use super::WebError;
use crate::api::Shared;
use crate::entry;
use crate::merkle;
use crate::note;
use crate::statement::json;
use crate::statement::state::{self, StatementRef};
use maud::{html, Markup};
use serde_json::{json, Value};

pub fn render(s: &Shared, index: u64) -> Result<Markup, WebError> {
    // One checkpoint for the whole page: the proof, the size and the text shown agree.
    let p = s.log.published().ok_or_else(|| {
        WebError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "The log is starting: no checkpoint yet.",
        )
    })?;
    if index >= p.size {
        return Err(WebError::not_found(format!(
            "There is no entry {index}: the log has {} entries (0 … {}).",
            layout::num(p.size),
            layout::num(p.size.saturating_sub(1))
        )));
    }
    let bytes = s
        .log
        .store
        .entries(index, index + 1)?
        .pop()
        .ok_or_else(|| WebError::not_found(format!("entry {index} is missing")))?;
    let e = entry::decode(&bytes)
        .map_err(|e| WebError::internal(format!("stored entry {index} is corrupt: {e}")))?;
    let leaf = note::encode_b64(&merkle::leaf_hash(&bytes));
    let proof: Vec<String> = s
        .log
        .inclusion_proof(index, p.size)
        .map_err(|e| WebError::internal(format!("no inclusion proof: {e}")))?
        .iter()
        .map(|h| note::encode_b64(h))
        .collect();
    let logged_at = entry::format_instant(e.logged_at);
    let body: Option<Value> = e
        .statement
        .split('\n')
        .next()
        .and_then(|l| json::parse(l).ok());
    let pretty = body
        .as_ref()
        .and_then(|b| serde_json::to_string_pretty(b).ok())
        .unwrap_or_else(|| "(the statement's first line is not JSON)".into());
    let field = |f: &str| -> Option<String> {
        body.as_ref()
            .and_then(|b| b[f].as_str())
            .map(str::to_string)
    };
    let kind = field("type").unwrap_or_default();
    let publisher = field("publisher");
    let sid = field("id");
    // Link the publisher only if it is one (the genesis statement is the origin's).
    let publisher_known = match &publisher {
        Some(id) => s.log.store.get(&state::publisher_key(id))?.is_some(),
        None => false,
    };
    // The statement that an update, reveal or extend is about.
    let of_index = match (&publisher, field("of")) {
        (Some(pid), Some(of)) if of.len() <= 100 => {
            state::decode::<StatementRef>(s.log.store.get(&state::id_key(pid, &of))?)
                .map(|r| (of, r.index))
        }
        _ => None,
    };
    let receipt = json!({
        "statement": e.statement,
        "receipt": {
            "index": index,
            "leaf_hash": leaf,
            "logged_at": logged_at,
            "checkpoint": p.signed,
            "inclusion_proof": proof,
        }
    });
    let receipt_text = serde_json::to_string_pretty(&receipt).unwrap_or_default();
    let vkey = s.log_key.to_string();
    let verify = format!(
        "candor verify-receipt receipt-{index}.json --log-key {}",
        layout::shell_quote(&vkey)
    );
    let title = format!("Entry {index}");

    let page = html! {
        nav.pager aria-label="Entries" {
            @if index > 0 {
                a href=(format!("/entries/{}", index - 1)) rel="prev" { "← Entry " (index - 1) }
            } @else { span {} }
            @if index + 1 < p.size {
                a href=(format!("/entries/{}", index + 1)) rel="next" { "Entry " (index + 1) " →" }
            }
        }
        h1 { (title) @if !kind.is_empty() { ": " (label(&kind)) } }
        dl.facts {
            dt { "Index" } dd #entry-index { (index) }
            dt { "Logged at" } dd { time datetime=(logged_at) { (logged_at) } }
            @if let Some(pid) = &publisher {
                dt { "Publisher" }
                dd.mono {
                    @if publisher_known { a href=(layout::publisher_href(pid)) { (pid) } } @else { (pid) }
                }
            }
            @if let Some(sid) = &sid {
                dt { "Statement id" }
                dd.mono {
                    @if let Some(pid) = publisher.as_ref().filter(|_| publisher_known) {
                        a href=(format!("/api/v1/publishers/{}/statements/{}", layout::seg(pid), layout::seg(sid))) title="its current state, with updates (JSON)" { (sid) }
                    } @else { (sid) }
                }
            }
            @if let Some((of, at)) = &of_index {
                dt { "About statement" } dd { a href=(format!("/entries/{at}")) { "entry " (at) } " " span.mono.sub { "(" (of) ")" } }
            }
            dt { "Leaf hash" } dd.mono.break #leaf-hash { (leaf) }
        }

        section.card aria-labelledby="statement-h" {
            h2 #statement-h { "Signed statement" }
            p.sub { "Exactly as the publisher signed it: the statement text, a blank line, and its signature lines (C2SP signed note)." }
            pre #statement { code { (e.statement) } }
            h3 { "Its content" }
            pre.light #statement-json { code { (pretty) } }
        }

        section.card aria-labelledby="proof-h" {
            h2 #proof-h { "Inclusion proof" }
            p.sub {
                "These hashes lead from the entry's leaf hash to the root of the tree of size "
                (layout::num(p.size)) ", which the log signed in the checkpoint below (RFC 6962 / RFC 9162, leaf sibling first)."
            }
            @if proof.is_empty() {
                p { "The tree has one entry: its root is the leaf hash itself." }
            } @else {
                ol.mono.break #proof {
                    @for h in &proof { li { (h) } }
                }
            }
            h3 { "Checkpoint" }
            (layout::pre(&p.signed))
            h3 { "Verify it yourself" }
            p {
                "Save the JSON below as " code { "receipt-" (index) ".json" } " and run:"
            }
            pre { code { (verify) } }
            p.sub {
                "It checks, offline, that the checkpoint is signed by the log's key, that the leaf "
                "hash is that of this very statement logged at this index and time, and that the "
                "proof leads to the checkpoint's root. Add " code { "--server URL" } " to also check "
                "that the log still holds it today. The same data as JSON: "
                a href=(format!("/api/v1/entries/{index}")) { "entry" } ", "
                a href=(format!("/api/v1/proof/inclusion?index={index}&size={}", p.size)) { "proof" } "."
            }
            details {
                summary { "Show the receipt JSON" }
                pre.light #receipt { code { (receipt_text) } }
            }
        }
    };
    Ok(layout::page(&title, Nav::None, page))
}
