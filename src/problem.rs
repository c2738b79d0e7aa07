//! RFC 9457 problem details: every refusal says what went wrong and what to fix.
//!
//! Pure data: the statement layer produces problems, the HTTP layer serves them as
//! `application/problem+json`.

use serde::{Deserialize, Serialize};

/// A publisher's chain head: what the next statement's `seq` - 1 and `prev` must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    /// Hex statement hash of the last statement, or null before the first.
    pub hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// RFC 6901 pointer into the statement JSON, for a field error.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pointer: Option<String>,
    /// On 409, the publisher's chain head.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub head: Option<Head>,
    /// On 429, seconds to wait (sent as `Retry-After`, not in the body).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: u16, slug: &str, title: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("https://candor.dev/problems/{slug}"),
            title: title.to_string(),
            status,
            detail: detail.into(),
            pointer: None,
            head: None,
            retry_after: None,
        }
    }

    pub fn at(mut self, pointer: impl Into<String>) -> Problem {
        self.pointer = Some(pointer.into());
        self
    }

    pub fn with_head(mut self, head: Head) -> Problem {
        self.head = Some(head);
        self
    }

    /// 400: the request or the note is malformed.
    pub fn form(detail: impl Into<String>) -> Problem {
        Problem::new(400, "malformed", "Malformed request", detail)
    }

    /// 403: not signed by the keys in force, or not allowed for this signer.
    pub fn authority(detail: impl Into<String>) -> Problem {
        Problem::new(403, "authority", "Not authorised", detail)
    }

    /// 422: well-formed but not valid content.
    pub fn content(detail: impl Into<String>) -> Problem {
        Problem::new(422, "invalid-content", "Invalid content", detail)
    }

    /// 409: out of order with the log's state.
    pub fn order(detail: impl Into<String>) -> Problem {
        Problem::new(409, "conflict", "Conflicts with the log", detail)
    }

    pub fn too_large(detail: impl Into<String>) -> Problem {
        Problem::new(413, "too-large", "Request too large", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(404, "not-found", "Not found", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Problem {
        Problem::new(503, "unavailable", "Service unavailable", detail)
    }

    pub fn internal(detail: impl Into<String>) -> Problem {
        Problem::new(500, "internal", "Internal error", detail)
    }
}
