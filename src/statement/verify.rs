//! The checks that need no log order, run before the sequencer and in parallel: signature
//! verification against every key that could be meant, and the content checks that depend on
//! the statement alone. Their results travel with the statement; the sequencer reports them
//! in the order of spec section 5 once it knows which keys are in force.

use super::{json, record, schema::Schemas, state, Parsed, Type};
use crate::note::VerifierKey;
use crate::problem::Problem;
use crate::store::StoreError;
use serde_json::Value;

/// The most signature lines any statement type takes.
pub const MAX_SIGNATURE_LINES: usize = 2;

/// A statement ready for the sequencer.
#[derive(Debug, Clone)]
pub struct Checked {
    pub parsed: Parsed,
    pub ty: Option<Type>,
    /// For each signature line, the keys it was checked against and whether it verified.
    pub signatures: Vec<Vec<(VerifierKey, bool)>>,
    /// The content checks that need no state (schema, record rules, key fields).
    pub content: Result<(), Problem>,
    /// The record a `reveal` opens, parsed.
    pub revealed: Option<Value>,
}

/// Looks up the keys the log knows by name (the publisher ids, `<origin>/operator`, and the
/// origin for the log key).
pub trait KeyLookup {
    fn publisher(&self, id: &str) -> Result<Option<state::PublisherState>, StoreError>;

    /// Keys that statements not applied yet declare under this name and key id, to try as
    /// well: an auditor pre-checks entries ahead of the rules (see `replay::Declared`).
    fn declared(&self, _name: &str, _id: u32) -> Vec<VerifierKey> {
        Vec::new()
    }
}

/// Parses a key field of the statement (`key`, `recovery_key`, `operator_key`).
pub fn key_field(parsed: &Parsed, field: &str) -> Result<VerifierKey, Problem> {
    let text = parsed.str_field(field).ok_or_else(|| {
        Problem::content(format!(
            "{field} is required: a verifier key <name>+<key id>+<base64>"
        ))
        .at(format!("/{field}"))
    })?;
    VerifierKey::parse(text)
        .map_err(|e| Problem::content(format!("{field}: {e}")).at(format!("/{field}")))
}

/// The key fields a type carries and the name each must have.
fn key_fields(t: Type, parsed: &Parsed, origin: &str) -> Vec<(&'static str, String)> {
    let subject = || parsed.str_field("subject").unwrap_or("").to_string();
    match t {
        Type::Genesis => vec![("operator_key", state::operator_id(origin))],
        Type::Register => vec![("key", subject()), ("recovery_key", subject())],
        Type::Rotate | Type::Recover => {
            vec![("key", parsed.publisher().unwrap_or("").to_string())]
        }
        _ => vec![],
    }
}

/// The keys a statement's body declares (a `genesis`, `register`, `rotate` or `recover`),
/// those that parse.
pub fn declared_keys(parsed: &Parsed, origin: &str) -> Vec<VerifierKey> {
    let Some(t) = parsed.statement_type() else {
        return Vec::new();
    };
    key_fields(t, parsed, origin)
        .into_iter()
        .filter_map(|(f, _)| key_field(parsed, f).ok())
        .collect()
}

/// Runs the order-free checks.
pub fn check(
    parsed: Parsed,
    keys: &dyn KeyLookup,
    origin: &str,
    log_key: &VerifierKey,
) -> Result<Checked, StoreError> {
    let checked = check_many(vec![Ok(((), parsed))], keys, origin, log_key, |_, e| e);
    match checked.into_iter().next() {
        Some(c) => c.map(|((), c)| c),
        None => Err(StoreError::Corrupt("no statement was checked".into())),
    }
}

/// Runs the order-free checks of several statements, verifying all their signatures together
/// (`note::verify_many` shares work between them; each is still judged alone). Each statement
/// comes with something of the caller's (`T`), or already refused (`E`, passed through);
/// `storage` makes an `E` of a failed key lookup, given the item's position.
pub fn check_many<T, E>(
    items: Vec<Result<(T, Parsed), E>>,
    keys: &dyn KeyLookup,
    origin: &str,
    log_key: &VerifierKey,
    storage: impl Fn(usize, StoreError) -> E,
) -> Vec<Result<(T, Checked), E>> {
    let items: Vec<_> = items
        .into_iter()
        .map(|r| r.map(|(t, p)| (candidates(&p, keys, origin, log_key), t, p)))
        .collect();
    let jobs: Vec<(&VerifierKey, &[u8], &[u8; 64])> = items
        .iter()
        .filter_map(|r| match r {
            Ok((Ok(c), _, p)) => Some((c, p)),
            _ => None,
        })
        .flat_map(|(c, p)| {
            let text = p.text().as_bytes();
            p.signatures
                .iter()
                .zip(c)
                .flat_map(move |(line, keys)| keys.iter().map(move |k| (k, text, &line.sig)))
        })
        .collect();
    let verdicts = crate::note::verify_many(&jobs);
    debug_assert_eq!(verdicts.len(), jobs.len());
    drop(jobs);
    let mut verdicts = verdicts.into_iter();
    let items = items.into_iter().enumerate();
    items
        .map(|(i, r)| {
            let (c, t, p) = r?;
            let signatures = c
                .map_err(|e| storage(i, e))?
                .into_iter()
                .map(|keys| {
                    let ok = verdicts.by_ref().take(keys.len());
                    keys.into_iter().zip(ok).collect()
                })
                .collect();
            Ok((t, content_checks(p, signatures, origin)))
        })
        .collect()
}

/// For each signature line, the keys it may have been made with.
fn candidates(
    parsed: &Parsed,
    keys: &dyn KeyLookup,
    origin: &str,
    log_key: &VerifierKey,
) -> Result<Vec<Vec<VerifierKey>>, StoreError> {
    // No type takes more than two signature lines: a note with more is refused (403) without
    // verifying any, so that a hostile note cannot buy a hundred verifications.
    if parsed.signatures.len() > MAX_SIGNATURE_LINES {
        return Ok(Vec::new());
    }
    let body_keys = declared_keys(parsed, origin);
    let mut all = Vec::with_capacity(parsed.signatures.len());
    for line in &parsed.signatures {
        let mut candidates: Vec<VerifierKey> = body_keys
            .iter()
            .filter(|k| k.name == line.name && k.id == line.id)
            .cloned()
            .collect();
        if line.name == log_key.name && line.id == log_key.id {
            candidates.push(log_key.clone());
        }
        if let Some(p) = keys.publisher(&line.name)? {
            candidates.extend(p.keys_with_id(&line.name, line.id));
        }
        for k in keys.declared(&line.name, line.id) {
            if !candidates.iter().any(|c| c.key == k.key) {
                candidates.push(k);
            }
        }
        all.push(candidates);
    }
    Ok(all)
}

/// The content checks, once the signatures are known.
fn content_checks(
    mut parsed: Parsed,
    signatures: Vec<Vec<(VerifierKey, bool)>>,
    origin: &str,
) -> Checked {
    let ty = parsed.statement_type();
    let (content, revealed) = match ty {
        None => (
            Err(Problem::content(format!(
                "type must be one of {}",
                Type::ALL
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .at("/type")),
            None,
        ),
        Some(t) => {
            // The schemas check a `Value`: lend them the body rather than copy it.
            let body = Value::Object(std::mem::take(&mut parsed.body));
            let alone = body_checks(t, &body);
            if let Value::Object(m) = body {
                parsed.body = m;
            }
            content(t, &parsed, origin, alone)
        }
    };
    Checked {
        parsed,
        ty,
        signatures,
        content,
        revealed,
    }
}

/// The checks of the body alone: its schema, then the rules of its record or report.
fn body_checks(t: Type, body: &Value) -> (Result<(), Problem>, Result<(), Problem>) {
    let schema = Schemas::get().check_statement(t, body);
    let rules = match t {
        // The record is the statement minus its common fields, none of which these rules
        // read: check the statement itself rather than copy it.
        Type::Request => record::check_record(body, ""),
        Type::Band => record::check_band(body),
        Type::Aggregate => record::check_aggregate(body),
        _ => Ok(()),
    };
    (schema, rules)
}

fn content(
    t: Type,
    parsed: &Parsed,
    origin: &str,
    (schema, rules): (Result<(), Problem>, Result<(), Problem>),
) -> (Result<(), Problem>, Option<Value>) {
    if let Err(p) = schema {
        return (Err(p), None);
    }
    if t == Type::Register {
        // Protocol section 2: a publisher id is never the origin's host, which would let a
        // publisher pass for the log itself.
        let host = state::origin_host(origin);
        if parsed.str_field("subject") == Some(host) {
            let detail = format!(
                "subject {host:?} is the log's own host name: a publisher id is never the origin's host"
            );
            return (Err(Problem::content(detail).at("/subject")), None);
        }
    }
    let schemas = Schemas::get();
    for (field, name) in key_fields(t, parsed, origin) {
        match key_field(parsed, field) {
            Err(p) => return (Err(p), None),
            Ok(k) if k.name != name => {
                return (
                    Err(Problem::content(format!(
                        "{field} is named {:?} but must be named {name:?}",
                        k.name
                    ))
                    .at(format!("/{field}"))),
                    None,
                )
            }
            Ok(_) => {}
        }
    }
    let result = match t {
        Type::Reveal => {
            let text = parsed.str_field("request").unwrap_or("");
            let rec = match json::parse(text) {
                Ok(v @ Value::Object(_)) => v,
                Ok(_) => {
                    return (
                        Err(Problem::content(
                            "request must hold a JSON object: the revealed request record",
                        )
                        .at("/request")),
                        None,
                    )
                }
                Err(e) => {
                    return (
                        Err(Problem::content(format!(
                            "request must be one line of strict JSON: {} at {}",
                            e.detail, e.pointer
                        ))
                        .at("/request")),
                        None,
                    )
                }
            };
            // The record lives inside a string: point at the string, name the inner field.
            let r = schemas
                .check_record(&rec, "")
                .and_then(|_| record::check_record(&rec, ""))
                .and_then(|_| record::check_sealable(&rec, ""))
                .map_err(|p| Problem {
                    detail: format!(
                        "the revealed request record is invalid at '{}': {}",
                        p.pointer.as_deref().unwrap_or(""),
                        p.detail
                    ),
                    pointer: Some("/request".into()),
                    ..p
                });
            return (r, Some(rec));
        }
        _ => rules,
    };
    (result, None)
}

/// Key lookups in the committed store.
pub struct StoreKeys<'a>(pub &'a dyn crate::store::Store);

impl KeyLookup for StoreKeys<'_> {
    fn publisher(&self, id: &str) -> Result<Option<state::PublisherState>, StoreError> {
        let bytes = self.0.get(&state::publisher_key(id))?;
        Ok(state::decode_publisher(id, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::SecretKey;
    use crate::statement::chain::Chain;
    use crate::statement::state::{KeyPeriod, PublisherState, Role, Status};

    const ORIGIN: &str = "test.example/log";

    /// One registered publisher; lookups of `broken.example` fail.
    struct Lookup(PublisherState);

    impl KeyLookup for Lookup {
        fn publisher(&self, id: &str) -> Result<Option<PublisherState>, StoreError> {
            if id == "broken.example" {
                return Err(StoreError::Io("the store is down".into()));
            }
            Ok((id == self.0.id).then(|| self.0.clone()))
        }
    }

    /// A group checked together gets, statement by statement, what each gets alone, whatever
    /// the mix: failed lookups, too many signature lines, lines no key could have made,
    /// several lines, tampered text.
    #[test]
    fn check_many_gives_each_statement_its_own_verdicts() {
        let key = SecretKey::generate("acme.example").unwrap(); // test-only
        let log = SecretKey::generate(ORIGIN).unwrap(); // test-only
        let decoy = SecretKey::generate("acme.example").unwrap(); // test-only
        let other = SecretKey::generate("other.example").unwrap(); // test-only
        let broken = SecretKey::generate("broken.example").unwrap(); // test-only
        let lookup = Lookup(PublisherState {
            id: "acme.example".into(),
            name: "Acme".into(),
            url: None,
            status: Status::Active,
            keys: vec![KeyPeriod {
                vkey: key.verifier().to_string(),
                role: Role::Signing,
                from: 1,
                until: None,
            }],
            head: crate::problem::Head { seq: 0, hash: None },
            registered_at: 0,
        });
        let record = serde_json::json!({"kind": "user_data", "country": "DE"});
        let mut chain = Chain::new(ORIGIN, "acme.example", 0, None);
        let mut sign = |signers: &[&SecretKey]| {
            let (note, _) = chain.sign_next("request", record.clone(), signers).unwrap(); // test-only
            note
        };
        let notes = [
            sign(&[&key]),
            sign(&[&key]).replace("\"DE\"", "\"FR\""),
            sign(&[&other]),
            sign(&[&key, &log, &decoy]),
            sign(&[&broken]),
            sign(&[&decoy]),
            sign(&[&key, &log]),
            sign(&[&key]),
        ];
        let parsed: Vec<Parsed> = notes
            .iter()
            .map(|n| super::super::parse(n.as_bytes()).unwrap()) // test-only
            .collect();
        let (k, l) = (key.verifier(), log.verifier());
        let items = parsed.iter().map(|p| Ok(((), p.clone()))).collect();
        let many: Vec<Result<Checked, StoreError>> =
            check_many(items, &lookup, ORIGIN, &l, |_, e| e)
                .into_iter()
                .map(|c| c.map(|((), c)| c))
                .collect();
        assert_eq!(many.len(), parsed.len());
        let verdicts: Vec<Option<Vec<Vec<(VerifierKey, bool)>>>> = many
            .iter()
            .map(|c| c.as_ref().ok().map(|c| c.signatures.clone()))
            .collect();
        assert_eq!(
            verdicts,
            vec![
                Some(vec![vec![(k.clone(), true)]]),
                Some(vec![vec![(k.clone(), false)]]),
                Some(vec![vec![]]),
                Some(vec![]),
                None,
                Some(vec![vec![]]),
                Some(vec![vec![(k.clone(), true)], vec![(l.clone(), true)]]),
                Some(vec![vec![(k.clone(), true)]]),
            ]
        );
        // Refusals pass through in place, and a failed lookup is reported at its position.
        let mut items: Vec<Result<((), Parsed), (usize, String)>> =
            parsed.iter().map(|p| Ok(((), p.clone()))).collect();
        items[1] = Err((99, "refused before".into()));
        let refused: Vec<Option<usize>> =
            check_many(items, &lookup, ORIGIN, &l, |i, e| (i, e.to_string()))
                .into_iter()
                .map(|c| c.err().map(|(i, _)| i))
                .collect();
        let mut want = vec![None; parsed.len()];
        (want[1], want[4]) = (Some(99), Some(4));
        assert_eq!(refused, want);
        for (p, together) in parsed.into_iter().zip(&many) {
            let alone = check(p, &lookup, ORIGIN, &l);
            assert_eq!(format!("{alone:?}"), format!("{together:?}"));
        }
    }
}
