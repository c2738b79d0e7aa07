//! The JSON Schemas in `schemas/`, compiled once.
//!
//! The schema files are the single source of truth for the shape of statements; they are
//! built into the binary so that the service and `candor audit` validate with exactly the
//! same text, wherever they run. References resolve among these files only: no network
//! loading exists in this build of the `jsonschema` crate.

use super::Type;
use crate::problem::Problem;
use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, Registry, Validator};
use serde_json::Value;
use std::sync::OnceLock;

/// Every schema file, by name.
pub const FILES: [(&str, &str); 17] = [
    (
        "countries.json",
        include_str!("../../schemas/countries.json"),
    ),
    ("defs.json", include_str!("../../schemas/defs.json")),
    (
        "statement-common.json",
        include_str!("../../schemas/statement-common.json"),
    ),
    (
        "request-record.json",
        include_str!("../../schemas/request-record.json"),
    ),
    (
        "request-record-strict.json",
        include_str!("../../schemas/request-record-strict.json"),
    ),
    ("genesis.json", include_str!("../../schemas/genesis.json")),
    ("register.json", include_str!("../../schemas/register.json")),
    ("revoke.json", include_str!("../../schemas/revoke.json")),
    ("rotate.json", include_str!("../../schemas/rotate.json")),
    ("recover.json", include_str!("../../schemas/recover.json")),
    ("request.json", include_str!("../../schemas/request.json")),
    ("update.json", include_str!("../../schemas/update.json")),
    ("seal.json", include_str!("../../schemas/seal.json")),
    ("extend.json", include_str!("../../schemas/extend.json")),
    ("reveal.json", include_str!("../../schemas/reveal.json")),
    (
        "aggregate.json",
        include_str!("../../schemas/aggregate.json"),
    ),
    ("band.json", include_str!("../../schemas/band.json")),
];

const BASE: &str = "https://candor.dev/schemas/";

pub struct Schemas {
    by_type: Vec<(Type, Validator)>,
    record: Validator,
}

/// Every schema file under its URI, so that references resolve among them and nowhere else.
fn registry() -> Result<Registry<'static>, String> {
    let mut registry = Registry::new();
    for (file, text) in FILES {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("{file}: {e}"))?;
        registry = registry
            .add(format!("{BASE}{file}"), v)
            .map_err(|e| format!("{file}: {e}"))?;
    }
    registry.prepare().map_err(|e| e.to_string())
}

fn compile(name: &str, registry: &Registry<'_>) -> Result<Validator, String> {
    let text = FILES
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, text)| *text)
        .ok_or_else(|| format!("no schema named {name}"))?;
    let root: Value = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .with_registry(registry)
        .build(&root)
        .map_err(|e| format!("{name}: {e}"))
}

impl Schemas {
    fn load() -> Result<Schemas, String> {
        let registry = registry()?;
        let mut by_type = Vec::new();
        for t in Type::ALL {
            by_type.push((t, compile(&format!("{}.json", t.name()), &registry)?));
        }
        Ok(Schemas {
            by_type,
            record: compile("request-record-strict.json", &registry)?,
        })
    }

    /// The compiled schemas. They are part of the binary and checked by the tests, so a
    /// failure here is a build defect: it is reported once, loudly.
    pub fn get() -> &'static Schemas {
        static S: OnceLock<Schemas> = OnceLock::new();
        S.get_or_init(|| match Schemas::load() {
            Ok(s) => s,
            Err(e) => panic!("the built-in JSON Schemas do not compile: {e}"),
        })
    }

    /// Validates a whole statement against its type's schema.
    pub fn check_statement(&self, t: Type, body: &Value) -> Result<(), Problem> {
        let v = self
            .by_type
            .iter()
            .find(|(ty, _)| *ty == t)
            .map(|(_, v)| v)
            .ok_or_else(|| Problem::internal("missing schema"))?;
        first_error(v, body, &format!("{}.json", t.name()), "")
    }

    /// Validates a request record on its own (a reveal's `request`, a patched record).
    /// `prefix` is the pointer of the record inside the statement, for error pointers.
    pub fn check_record(&self, record: &Value, prefix: &str) -> Result<(), Problem> {
        first_error(&self.record, record, "request-record-strict.json", prefix)
    }
}

/// The most useful error: an `unevaluatedProperties` complaint is reported only when nothing
/// else is wrong, since a failing branch also makes every field it declared "unevaluated".
fn first_error(v: &Validator, instance: &Value, schema: &str, prefix: &str) -> Result<(), Problem> {
    // Almost every statement is valid: the yes/no check stops early and builds no errors,
    // and only a refused one pays for collecting them.
    if v.is_valid(instance) {
        return Ok(());
    }
    let mut unevaluated = None;
    for e in v.iter_errors(instance) {
        let mut pointer = format!("{prefix}{}", e.instance_path());
        let unexpected = match e.kind() {
            ValidationErrorKind::UnevaluatedProperties { unexpected } => Some(unexpected),
            ValidationErrorKind::AdditionalProperties { unexpected } => Some(unexpected),
            _ => None,
        };
        let shown = if pointer.is_empty() {
            "/".to_string()
        } else {
            pointer.clone()
        };
        // A missing field is at fault itself: point where it should be (RFC 6901 allows a
        // pointer to a member that is absent), as for an unknown one.
        if let ValidationErrorKind::Required {
            property: Value::String(missing),
        } = e.kind()
        {
            pointer = format!("{pointer}/{}", super::json::pointer_token(missing));
        }
        let detail = match unexpected {
            Some(fields) => {
                // Point at the first unknown field itself, not at its parent object.
                if let Some(f) = fields.first() {
                    pointer = format!("{pointer}/{}", super::json::pointer_token(f));
                }
                format!("unknown field(s) {} in '{shown}': remove them; unknown fields are refused (schemas/{schema})", fields.join(", "))
            }
            None => format!("'{shown}': {e} (schemas/{schema})"),
        };
        let p = Problem::content(detail).at(pointer);
        if !matches!(e.kind(), ValidationErrorKind::UnevaluatedProperties { .. }) {
            return Err(p);
        }
        unevaluated.get_or_insert(p);
    }
    match unevaluated {
        Some(p) => Err(p),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_compiles() {
        let s = Schemas::get();
        assert_eq!(s.by_type.len(), 12);
    }

    /// A missing field is pointed at where it belongs, at any depth and under a prefix.
    #[test]
    fn missing_fields_are_pointed_at() {
        let record = serde_json::json!({
            "kind": "content_restriction", "channel": "legal_process", "process": "court_order",
            "country": "DE", "authority": {"type": "court"}, "received_on": "2026-03-01",
            "targets": {"urls": 3}, "reasons": ["defamation"], "scope": "regional",
            "territories": ["DE"], "disposition": "complied", "user_notified": "yes",
        });
        let s = Schemas::get();
        assert!(s.check_record(&record, "").is_ok());
        for (path, expected) in [
            (&["reasons"][..], "/reasons"),
            (&["territories"], "/territories"),
            (&["scope", "territories"], "/scope"),
            (&["disposition"], "/disposition"),
        ] {
            let mut r = record.clone();
            for field in path {
                r.as_object_mut().map(|m| m.remove(*field));
            }
            let p = s.check_record(&r, "/patch").unwrap_err(); // ok: test
            assert_eq!(
                p.pointer.as_deref(),
                Some(format!("/patch{expected}").as_str())
            );
            assert!(p.detail.contains("required"), "{}", p.detail);
        }
        let mut r = record.clone();
        r["authority"] = serde_json::json!({"name": "A court"});
        let p = s.check_record(&r, "").unwrap_err(); // ok: test
        assert_eq!(p.pointer.as_deref(), Some("/authority/type"));
    }
}
