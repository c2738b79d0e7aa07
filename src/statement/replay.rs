//! Rebuilding the derived state from the entries alone, with the very rules the service
//! applies: what an auditor runs to check every statement, and what proves that the registry
//! and merged records the service shows follow from the log.

use super::rules::LedgerRules;
use super::{verify, Parsed};
use crate::entry;
use crate::note::VerifierKey;
use crate::sequencer::{admit_one, Admit, Position};
use crate::store::{memory::MemStore, CommitBatch, Store};

/// Why an entry does not follow from the ones before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {index}: {rule}: {detail}")]
pub struct ReplayError {
    pub index: u64,
    /// A short name of the rule broken, e.g. `entry-format`, `signature`, `chain`.
    pub rule: String,
    pub detail: String,
}

pub struct Replayer {
    rules: LedgerRules,
    state: MemStore,
    next: u64,
    last_logged_at: entry::Millis,
}

impl Replayer {
    pub fn new(log_key: VerifierKey) -> Replayer {
        Replayer {
            rules: LedgerRules {
                origin: log_key.name.clone(),
                log_key,
            },
            state: MemStore::default(),
            next: 0,
            last_logged_at: 0,
        }
    }

    /// The state rebuilt so far.
    pub fn state(&self) -> &dyn Store {
        &self.state
    }

    pub fn size(&self) -> u64 {
        self.next
    }

    /// Checks the next entry against everything before it and applies it.
    pub fn apply(&mut self, bytes: &[u8]) -> Result<Parsed, ReplayError> {
        let index = self.next;
        let fail = |rule: &str, detail: String| ReplayError {
            index,
            rule: rule.into(),
            detail,
        };
        let e = entry::decode(bytes).map_err(|d| fail("entry-format", d))?;
        if e.index != index {
            return Err(fail(
                "entry-index",
                format!("expected index {index}, found {}", e.index),
            ));
        }
        if e.logged_at < self.last_logged_at {
            return Err(fail(
                "logged-at-order",
                format!(
                    "logged_at {} is before the previous entry's {}",
                    entry::format_instant(e.logged_at),
                    entry::format_instant(self.last_logged_at)
                ),
            ));
        }
        let parsed =
            super::parse(e.statement.as_bytes()).map_err(|p| fail("statement-form", p.detail))?;
        let checked = verify::check(
            parsed.clone(),
            &verify::StoreKeys(&self.state),
            &self.rules.origin,
            &self.rules.log_key,
        )
        .map_err(|s| fail("storage", s.to_string()))?;
        let at = Position {
            index,
            logged_at: e.logged_at,
        };
        let (admit, changes) =
            admit_one(&mut self.rules, &self.state, checked, at).map_err(|p| {
                let rule = match p.status {
                    403 => "authority",
                    422 => "content",
                    409 => "order",
                    _ => "statement",
                };
                fail(
                    rule,
                    format!(
                        "{}{}",
                        p.detail,
                        p.pointer.map(|x| format!(" (at {x})")).unwrap_or_default()
                    ),
                )
            })?;
        if let Admit::Duplicate(first) = admit {
            return Err(fail(
                "duplicate",
                format!("the same statement is already logged at entry {first}"),
            ));
        }
        self.state
            .commit(&CommitBatch {
                state: changes,
                ..Default::default()
            })
            .map_err(|s| fail("storage", s.to_string()))?;
        self.next += 1;
        self.last_logged_at = e.logged_at;
        Ok(parsed)
    }
}
