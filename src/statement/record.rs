//! The rules of request records and counted reports that a JSON Schema cannot say.

use crate::problem::Problem;
use serde_json::Value;

/// Rules that need only the record itself: `responded_on` ≥ `received_on`, `produced` ⊆
/// `data_categories`. `prefix` is the record's pointer inside the statement.
pub fn check_record(record: &Value, prefix: &str) -> Result<(), Problem> {
    let date = |f: &str| record.get(f).and_then(Value::as_str);
    if let (Some(rec), Some(resp)) = (date("received_on"), date("responded_on")) {
        if resp < rec {
            return Err(Problem::content(format!(
                "responded_on ({resp}) is before received_on ({rec}); a response cannot precede the demand"
            ))
            .at(format!("{prefix}/responded_on")));
        }
    }
    if let (Some(Value::Array(produced)), Some(Value::Array(cats))) =
        (record.get("produced"), record.get("data_categories"))
    {
        if let Some((i, p)) = produced.iter().enumerate().find(|(_, p)| !cats.contains(p)) {
            return Err(Problem::content(format!(
                "produced lists {p}, which is not among the data_categories demanded; produced must be a subset of data_categories"
            ))
            .at(format!("{prefix}/produced/{i}")));
        }
    }
    Ok(())
}

/// The legal processes whose demands the law lets a company report only in bands (`band`).
pub const BANDED_PROCESSES: [&str; 2] = ["national_security_letter", "fisa_order"];

/// Protocol section 3.1: seals are never used for NSL or FISA demands. A seal shows no
/// `process`, so the rule is enforced where the record comes to light: on the revealed
/// record, and on every patch of it.
pub fn check_sealable(record: &Value, prefix: &str) -> Result<(), Problem> {
    match record.get("process").and_then(Value::as_str) {
        Some(p) if BANDED_PROCESSES.contains(&p) => Err(Problem::content(format!(
            "a sealed demand cannot have process {p}: NSL and FISA demands are never sealed, \
             the law lets them be reported only in bands (a band statement)"
        ))
        .at(format!("{prefix}/process"))),
        _ => Ok(()),
    }
}

/// `received_on` must not be after the date the entry is logged.
pub fn check_received_by(record: &Value, logged_date: &str, prefix: &str) -> Result<(), Problem> {
    check_received_by_field(record.get("received_on"), logged_date, prefix)
}

/// The same check, given the `received_on` value itself.
pub fn check_received_by_field(
    received_on: Option<&Value>,
    logged_date: &str,
    prefix: &str,
) -> Result<(), Problem> {
    if let Some(rec) = received_on.and_then(Value::as_str) {
        if rec > logged_date {
            return Err(Problem::content(format!(
                "received_on ({rec}) is after the date the log records this statement ({logged_date}); a demand cannot be logged before it is received"
            ))
            .at(format!("{prefix}/received_on")));
        }
    }
    Ok(())
}

/// A band's ranges must have `min` ≤ `max`.
pub fn check_band(body: &Value) -> Result<(), Problem> {
    for f in ["requests", "accounts"] {
        let r = &body[f];
        if let (Some(min), Some(max)) = (r["min"].as_u64(), r["max"].as_u64()) {
            if min > max {
                return Err(
                    Problem::content(format!("{f}.min ({min}) exceeds {f}.max ({max})"))
                        .at(format!("/{f}/min")),
                );
            }
        }
    }
    Ok(())
}

/// An aggregate's `produced` cannot exceed its `requests`.
pub fn check_aggregate(body: &Value) -> Result<(), Problem> {
    if let (Some(p), Some(r)) = (body["produced"].as_u64(), body["requests"].as_u64()) {
        if p > r {
            return Err(
                Problem::content(format!("produced ({p}) exceeds requests ({r})")).at("/produced"),
            );
        }
    }
    Ok(())
}

/// The fields every statement has, which are not part of a request's record.
pub const COMMON_FIELDS: [&str; 7] = ["v", "log", "publisher", "seq", "prev", "id", "type"];

/// The record part of a `request` statement: the statement minus the common fields.
pub fn record_of_request(body: &serde_json::Map<String, Value>) -> Value {
    let mut m = body.clone();
    for f in COMMON_FIELDS {
        m.shift_remove(f);
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_rules() {
        let r = json!({"received_on": "2026-03-02", "responded_on": "2026-03-01"});
        assert_eq!(
            check_record(&r, "").unwrap_err().pointer.as_deref(),
            Some("/responded_on")
        );
        let r = json!({"data_categories": ["subscriber"], "produced": ["content"]});
        assert_eq!(
            check_record(&r, "").unwrap_err().pointer.as_deref(),
            Some("/produced/0")
        );
        for p in BANDED_PROCESSES {
            let r = json!({"process": p});
            assert_eq!(
                check_sealable(&r, "/patch").unwrap_err().pointer.as_deref(),
                Some("/patch/process")
            );
        }
        assert!(check_sealable(&json!({"process": "subpoena"}), "").is_ok());
        let r = json!({"received_on": "2026-03-02"});
        assert!(check_received_by(&r, "2026-03-01", "").is_err());
        assert!(check_received_by(&r, "2026-03-02", "").is_ok());
        assert!(check_band(
            &json!({"requests": {"min": 5, "max": 4}, "accounts": {"min": 0, "max": 0}})
        )
        .is_err());
    }
}
