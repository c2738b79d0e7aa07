//! The checks that depend on the log's state, run by the sequencer in log order, and the
//! state changes of each accepted statement.
//!
//! Order (spec section 5): duplicate → 403 authority (keys in force at this position) →
//! 422 content (the pre-checked part, then the part that needs state) → 409 order. Every
//! change goes through the [`StateView`], which drops it if the statement is refused.

use super::state::{self, Merged, PublisherState, Revealed, Role, StatementRef, Status};
use super::verify::{key_field, Checked};
use super::{record, schema::Schemas, seal, Type};
use crate::entry;
use crate::note::VerifierKey;
use crate::problem::{Head, Problem};
use crate::sequencer::{Admit, Position, Rules, StateView};
use crate::store::StoreError;
use serde_json::Value;

/// The statement layer's [`Rules`].
pub struct LedgerRules {
    pub origin: String,
    pub log_key: VerifierKey,
}

fn store_err(e: StoreError) -> Problem {
    Problem::unavailable(format!("storage failed while checking the statement: {e}"))
}

impl Rules for LedgerRules {
    type Item = Checked;
    type Refusal = Problem;

    fn admit(
        &mut self,
        item: Checked,
        at: Position,
        st: &mut StateView<'_>,
    ) -> Result<Admit, Problem> {
        // 3. duplicate: the same note bytes are already logged. The same bytes name the same
        // publisher and id, so the id index finds them; a different note under that id is a
        // reused id, refused later (409).
        let existing = match (item.parsed.publisher(), item.parsed.id()) {
            (Some(p), Some(id)) => get_ref(st, p, id)?,
            _ => None,
        };
        if let Some(r) = &existing {
            if r.note == hex::encode(item.parsed.note_hash) {
                return Ok(Admit::Duplicate(r.index));
            }
        }
        if at.index == 0 && item.ty != Some(Type::Genesis) {
            return Err(Problem::unavailable(
                "the log is starting: its genesis entry is not logged yet",
            ));
        }
        let ctx = Ctx {
            rules: self,
            item: &item,
            at,
            existing,
        };
        let publisher = ctx.authority(st)?;
        ctx.content(st)?;
        ctx.order(st, publisher.as_ref())?;
        ctx.apply(st, publisher)?;
        Ok(Admit::Log(item.parsed.note))
    }

    fn unavailable(&self, why: &str) -> Problem {
        Problem::unavailable(why.to_string())
    }
}

struct Ctx<'a> {
    rules: &'a LedgerRules,
    item: &'a Checked,
    at: Position,
    /// What the log already holds under the statement's publisher and id: looked up once
    /// for duplicates, and used again for id reuse (nothing is written in between).
    existing: Option<StatementRef>,
}

fn get_publisher(st: &StateView<'_>, id: &str) -> Result<Option<PublisherState>, Problem> {
    let bytes = st.get(&state::publisher_key(id)).map_err(store_err)?;
    Ok(state::decode_publisher(id, bytes))
}

fn get_ref(st: &StateView<'_>, publisher: &str, id: &str) -> Result<Option<StatementRef>, Problem> {
    Ok(state::decode(
        st.get(&state::id_key(publisher, id)).map_err(store_err)?,
    ))
}

fn get_merged(st: &StateView<'_>, publisher: &str, id: &str) -> Result<Option<Merged>, Problem> {
    Ok(state::decode(
        st.get(&state::merged_key(publisher, id))
            .map_err(store_err)?,
    ))
}

impl Ctx<'_> {
    fn p(&self) -> &super::Parsed {
        &self.item.parsed
    }

    fn ty(&self) -> Result<Type, Problem> {
        match self.item.ty {
            Some(t) => Ok(t),
            None => Err(self
                .item
                .content
                .clone()
                .err()
                .unwrap_or_else(|| Problem::content("unknown type").at("/type"))),
        }
    }

    fn operator(&self) -> String {
        state::operator_id(&self.rules.origin)
    }

    /// Step 4 (403): the statement is for this log, its type may be made by its publisher,
    /// and it carries exactly the signature lines its type requires, each valid under the
    /// key in force at this position. Returns the publisher's state (None for genesis).
    fn authority(&self, st: &StateView<'_>) -> Result<Option<PublisherState>, Problem> {
        let origin = &self.rules.origin;
        if self.p().str_field("log") != Some(origin.as_str()) {
            return Err(Problem::authority(format!(
                "log must be {origin:?}, the origin of this log"
            ))
            .at("/log"));
        }
        let publisher = self.p().publisher().unwrap_or("");
        let operator = self.operator();
        if self.item.ty == Some(Type::Genesis) {
            if self.at.index != 0 {
                return Err(Problem::authority(
                    "a genesis statement can only be entry 0, which this log already has",
                ));
            }
            if publisher != origin {
                return Err(Problem::authority(format!(
                    "the genesis publisher must be the origin {origin:?}"
                ))
                .at("/publisher"));
            }
            self.signature_count(2, || "the log key, then the operator key".into())?;
            self.signature_line(0, &self.rules.log_key)?;
            self.signature_line(1, &key_field(self.p(), "operator_key")?)?;
            return Ok(None);
        }
        // Who the publisher is and whether it may sign at all come before what it said.
        let state = get_publisher(st, publisher)?.ok_or_else(|| {
            Problem::authority(format!(
                "unknown publisher {publisher:?}: it must first be registered by the operator"
            ))
            .at("/publisher")
        })?;
        if state.status == Status::Revoked && self.item.ty != Some(Type::Recover) {
            return Err(Problem::authority(format!("publisher {publisher:?} is revoked: its keys are no longer accepted until it recovers with its recovery key")).at("/publisher"));
        }
        let t = self.ty()?;
        if t.operator_only() && publisher != operator {
            return Err(Problem::authority(format!("{} is an operator statement: its publisher must be {operator:?} and it must be signed by the operator key", t.name())).at("/publisher"));
        }
        if t.publisher_only() && publisher == operator {
            return Err(Problem::authority(format!("the operator cannot make {} statements: only a registered publisher records demands", t.name())).at("/publisher"));
        }
        let role = if t == Type::Recover {
            Role::Recovery
        } else {
            Role::Signing
        };
        // The key in force, as the pre-check already parsed it when it could (decoding a
        // point is not free, and this runs in the single writer).
        let text = state.current_text(role).ok_or_else(|| {
            Problem::authority(format!(
                "publisher {publisher:?} has no {} key",
                if role == Role::Signing {
                    "signing"
                } else {
                    "recovery"
                }
            ))
        })?;
        let pre = self.item.signatures.first().and_then(|c| {
            c.iter()
                .find(|(k, _)| k.is_text(text))
                .map(|(k, _)| k.clone())
        });
        let first = match pre {
            Some(k) => k,
            None => VerifierKey::parse(text)
                .map_err(|e| Problem::internal(format!("a stored key does not parse: {e}")))?,
        };
        let first_name = || format!("{}+{:08x}", first.name, first.id);
        if matches!(t, Type::Register | Type::Rotate | Type::Recover) {
            self.signature_count(2, || {
                format!("{}, then the new key given in key", first_name())
            })?;
            self.signature_line(0, &first)?;
            // Only now read the new key: a statement not signed by the key in force is a 403
            // whatever its body says.
            self.signature_line(1, &key_field(self.p(), "key")?)?;
        } else {
            self.signature_count(1, first_name)?;
            self.signature_line(0, &first)?;
        }
        Ok(Some(state))
    }

    /// The statement must carry exactly `n` signature lines, by whom `by` says. (The
    /// messages are written only when needed: these checks run for every statement.)
    fn signature_count(&self, n: usize, by: impl FnOnce() -> String) -> Result<(), Problem> {
        let found = self.p().signatures.len();
        if found != n {
            return Err(Problem::authority(format!(
                "a {} statement carries exactly {n} signature line(s), by {}; this one has {found}",
                self.item.ty.map_or("", |t| t.name()),
                by(),
            )));
        }
        Ok(())
    }

    /// Signature line `i` must be by `key` and valid.
    fn signature_line(&self, i: usize, key: &VerifierKey) -> Result<(), Problem> {
        let name = || format!("{}+{:08x}", key.name, key.id);
        let line = self.p().signatures.get(i).ok_or_else(|| {
            Problem::authority(format!("signature line {} by {} is missing", i + 1, name()))
        })?;
        if line.name != key.name || line.id != key.id {
            return Err(Problem::authority(format!(
                "signature line {} must be by the key in force {}, not {}+{:08x}",
                i + 1,
                name(),
                line.name,
                line.id
            )));
        }
        let pre = self
            .item
            .signatures
            .get(i)
            .and_then(|c| c.iter().find(|(k, _)| k.key == key.key).map(|(_, ok)| *ok));
        // A key that came into force after the statement was pre-checked (earlier in the
        // same batch) is verified here.
        let ok = pre.unwrap_or_else(|| key.verify(self.p().text().as_bytes(), &line.sig));
        if !ok {
            return Err(Problem::authority(format!(
                "signature line {} does not verify under {}",
                i + 1,
                name()
            )));
        }
        Ok(())
    }

    /// Step 5 (422): the pre-checked content, then what needs the entry's date or a
    /// referenced statement.
    fn content(&self, st: &StateView<'_>) -> Result<(), Problem> {
        self.item.content.clone()?;
        let t = self.ty()?;
        let date = entry::date_of(self.at.logged_at);
        let publisher = self.p().publisher().unwrap_or("");
        match t {
            Type::Request => {
                record::check_received_by_field(self.p().body.get("received_on"), &date, "")
            }
            Type::Reveal => {
                let rec = self.item.revealed.clone().unwrap_or(Value::Null);
                record::check_received_by(&rec, &date, "/request").map_err(|p| p.at("/request"))?;
                let of = self.p().str_field("of").unwrap_or("");
                // Checked even when the seal is already open: a mismatch is a content error
                // (422), which section 5 decides before the order error of a second reveal.
                if let Some(Merged::Seal {
                    commitment,
                    kind,
                    country,
                    ..
                }) = get_merged(st, publisher, of)?
                {
                    let salt_hex = self.p().str_field("salt").unwrap_or("");
                    let mut salt = [0u8; 32];
                    hex::decode_to_slice(salt_hex, &mut salt).map_err(|_| {
                        Problem::content("salt must be 32 bytes of hex").at("/salt")
                    })?;
                    let request = self.p().str_field("request").unwrap_or("");
                    let c = seal::commitment(&self.rules.origin, publisher, &salt, request);
                    if hex::encode(c) != commitment {
                        return Err(Problem::content("the salt and request do not match the seal's commitment: reveal exactly the request text and salt that were committed to").at("/salt"));
                    }
                    for (f, sealed) in [("kind", kind), ("country", country)] {
                        if let Some(s) = sealed {
                            if rec.get(f).and_then(Value::as_str) != Some(s.as_str()) {
                                return Err(Problem::content(format!(
                                    "the revealed record's {f} must be {s:?}, as the seal said"
                                ))
                                .at("/request"));
                            }
                        }
                    }
                }
                Ok(())
            }
            Type::Update => {
                let of = self.p().str_field("of").unwrap_or("");
                if let Some(m) = get_merged(st, publisher, of)? {
                    self.patched(&m)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Applies this update's patch to a merged statement. Returns None when the target cannot
    /// be patched (an unrevealed seal, a band: a 409, reported by `order`), else the new state.
    fn patched(&self, m: &Merged) -> Result<Option<Merged>, Problem> {
        let patch = self.p().body.get("patch").cloned().unwrap_or(Value::Null);
        let date = entry::date_of(self.at.logged_at);
        let apply = |doc: &Value| {
            let mut out = doc.clone();
            json_patch::merge(&mut out, &patch);
            out
        };
        let kind_kept = |before: &Value, after: &Value| {
            if before.get("kind") != after.get("kind") {
                Err(
                    Problem::content("a patch cannot change kind; record a new statement instead")
                        .at("/patch/kind"),
                )
            } else {
                Ok(())
            }
        };
        let check_record = |before: &Value, after: &Value| -> Result<(), Problem> {
            kind_kept(before, after)?;
            Schemas::get()
                .check_record(after, "/patch")
                .map_err(|p| Problem {
                    detail: format!("the patched record would be invalid: {}", p.detail),
                    ..p
                })?;
            record::check_record(after, "/patch")?;
            record::check_received_by(after, &date, "/patch")
        };
        let idx = self.at.index;
        Ok(match m {
            Merged::Request { record, updates } => {
                let after = apply(record);
                check_record(record, &after)?;
                let mut updates = updates.clone();
                updates.push(idx);
                Some(Merged::Request {
                    record: after,
                    updates,
                })
            }
            Merged::Seal {
                revealed: Some(r),
                updates,
                ..
            } => {
                let after = apply(&r.record);
                check_record(&r.record, &after)?;
                record::check_sealable(&after, "/patch")?;
                let mut m2 = m.clone();
                if let Merged::Seal {
                    revealed: Some(rv),
                    updates: u2,
                    ..
                } = &mut m2
                {
                    rv.record = after;
                    *u2 = updates.iter().copied().chain([idx]).collect();
                }
                Some(m2)
            }
            Merged::Aggregate { report, updates } => {
                let after = apply(report);
                kind_kept(report, &after)?;
                // Validate the patched report as a whole aggregate statement would be.
                let mut whole = self.p().body.clone();
                whole.retain(|k, _| {
                    matches!(
                        k.as_str(),
                        "v" | "log" | "publisher" | "seq" | "prev" | "id"
                    )
                });
                whole.insert("type".into(), Value::from("aggregate"));
                if let Value::Object(fields) = &after {
                    for (k, v) in fields {
                        whole.insert(k.clone(), v.clone());
                    }
                }
                let whole = Value::Object(whole);
                Schemas::get()
                    .check_statement(Type::Aggregate, &whole)
                    .and_then(|_| record::check_aggregate(&whole))
                    .map_err(|p| Problem {
                        detail: format!("the patched report would be invalid: {}", p.detail),
                        pointer: Some("/patch".into()),
                        ..p
                    })?;
                let mut updates = updates.clone();
                updates.push(idx);
                Some(Merged::Aggregate {
                    report: after,
                    updates,
                })
            }
            _ => None,
        })
    }

    fn head_problem(&self, detail: String, head: &Head) -> Problem {
        Problem::order(detail).with_head(head.clone())
    }

    /// Step 6 (409): chain order, unique ids, references, keys not reused.
    fn order(&self, st: &StateView<'_>, publisher: Option<&PublisherState>) -> Result<(), Problem> {
        let t = self.ty()?;
        let seq = self.p().u64_field("seq").unwrap_or(0);
        let prev = self.p().str_field("prev");
        let pid = self.p().publisher().unwrap_or("");
        let head = publisher
            .map(|p| p.head.clone())
            .unwrap_or(Head { seq: 0, hash: None });
        if seq != head.seq + 1 || prev != head.hash.as_deref() {
            return Err(self.head_problem(
                format!(
                    "out of order: the next statement of {pid:?} must have seq {} and prev {}; this one has seq {seq} and prev {}",
                    head.seq + 1,
                    head.hash.as_deref().map_or("null".to_string(), |h| format!("{h:?}")),
                    prev.map_or("null".to_string(), |h| format!("{h:?}"))
                ),
                &head,
            )
            .at(if seq != head.seq + 1 { "/seq" } else { "/prev" }));
        }
        let id = self.p().id().unwrap_or("");
        if let Some(r) = &self.existing {
            return Err(self.head_problem(format!("id {id} is already used by {pid:?} (entry {}): every statement needs a fresh id", r.index), &head).at("/id"));
        }
        let key_taken = |field: &str| -> Result<(), Problem> {
            let k = key_field(self.p(), field)?;
            if st
                .get(&state::pubkey_key(&k.public_bytes()))
                .map_err(store_err)?
                .is_some()
            {
                return Err(self.head_problem(format!("the public key in {field} is already registered in this log; every key must be new"), &head).at(format!("/{field}")));
            }
            Ok(())
        };
        let of = self.p().str_field("of").unwrap_or("");
        let target = || -> Result<Merged, Problem> {
            get_merged(st, pid, of)?.ok_or_else(|| {
                self.head_problem(
                    format!(
                        "of names no statement of {pid:?} that a {} can refer to: {of}",
                        t.name()
                    ),
                    &head,
                )
                .at("/of")
            })
        };
        match t {
            Type::Genesis => {}
            Type::Register => {
                let subject = self.p().str_field("subject").unwrap_or("");
                if get_publisher(st, subject)?.is_some() || subject == self.operator() {
                    return Err(self.head_problem(format!("publisher {subject:?} already exists"), &head).at("/subject"));
                }
                key_taken("key")?;
                key_taken("recovery_key")?;
                if key_field(self.p(), "key")?.key == key_field(self.p(), "recovery_key")?.key {
                    return Err(self.head_problem("key and recovery_key must be different keys".into(), &head).at("/recovery_key"));
                }
            }
            Type::Revoke => {
                let subject = self.p().str_field("subject").unwrap_or("");
                match get_publisher(st, subject)? {
                    Some(s) if s.status == Status::Active && subject != self.operator() => {}
                    Some(_) => return Err(self.head_problem(format!("publisher {subject:?} is already revoked"), &head).at("/subject")),
                    None => return Err(self.head_problem(format!("no publisher {subject:?} to revoke"), &head).at("/subject")),
                }
            }
            Type::Rotate | Type::Recover => key_taken("key")?,
            Type::Update => match target()? {
                Merged::Request { .. } | Merged::Aggregate { .. } | Merged::Seal { revealed: Some(_), .. } => {}
                _ => return Err(self.head_problem(format!("{of} cannot be updated: only a request, an aggregate or a revealed seal can"), &head).at("/of")),
            },
            Type::Extend => match target()? {
                Merged::Seal { revealed: None, disclose_by, .. } => {
                    let new = self.p().str_field("disclose_by").unwrap_or("");
                    if new <= disclose_by.as_str() {
                        return Err(self.head_problem(format!("extend must postpone: disclose_by {new} is not after the seal's current {disclose_by}"), &head).at("/disclose_by"));
                    }
                }
                Merged::Seal { .. } => return Err(self.head_problem(format!("seal {of} is already revealed"), &head).at("/of")),
                _ => return Err(self.head_problem(format!("{of} is not a seal"), &head).at("/of")),
            },
            Type::Reveal => match target()? {
                Merged::Seal { revealed: None, .. } => {}
                Merged::Seal { .. } => return Err(self.head_problem(format!("seal {of} is already revealed: a seal opens once"), &head).at("/of")),
                _ => return Err(self.head_problem(format!("{of} is not a seal"), &head).at("/of")),
            },
            _ => {}
        }
        Ok(())
    }

    /// Records the statement's effects.
    fn apply(
        &self,
        st: &mut StateView<'_>,
        publisher: Option<PublisherState>,
    ) -> Result<(), Problem> {
        let t = self.ty()?;
        let idx = self.at.index;
        let p = self.p();
        let pid = p.publisher().unwrap_or("").to_string();
        let id = p.id().unwrap_or("").to_string();
        let next = idx + 1;
        let hash = Some(hex::encode(p.hash));
        st.put(
            state::id_key(&pid, &id),
            state::encode(&StatementRef {
                index: idx,
                kind: t.name().into(),
                note: hex::encode(p.note_hash),
            }),
        );
        if let Some(mut me) = publisher.clone() {
            me.head = Head {
                seq: me.head.seq + 1,
                hash: hash.clone(),
            };
            match t {
                Type::Rotate | Type::Recover => {
                    let k = key_field(p, "key")?;
                    st.put(
                        state::pubkey_key(&k.public_bytes()),
                        me.id.clone().into_bytes(),
                    );
                    me.replace_key(Role::Signing, k.to_string(), next);
                    me.status = Status::Active;
                }
                _ => {}
            }
            st.put(state::publisher_key(&me.id), state::encode_publisher(&me));
        }
        let str_opt = |f: &str| p.str_field(f).map(str::to_string);
        match t {
            Type::Genesis => {
                let op = key_field(p, "operator_key")?;
                st.put(
                    state::pubkey_key(&self.rules.log_key.public_bytes()),
                    self.rules.origin.clone().into_bytes(),
                );
                st.put(
                    state::pubkey_key(&op.public_bytes()),
                    self.operator().into_bytes(),
                );
                let operator = PublisherState {
                    id: self.operator(),
                    name: format!("Operator of {}", self.rules.origin),
                    url: None,
                    status: Status::Active,
                    keys: vec![state::KeyPeriod {
                        vkey: op.to_string(),
                        role: Role::Signing,
                        from: next,
                        until: None,
                    }],
                    head: Head { seq: 0, hash: None },
                    registered_at: idx,
                };
                st.put(
                    state::publisher_key(&operator.id),
                    state::encode_publisher(&operator),
                );
            }
            Type::Register => {
                let subject = str_opt("subject").unwrap_or_default();
                let key = key_field(p, "key")?;
                let rec = key_field(p, "recovery_key")?;
                st.put(
                    state::pubkey_key(&key.public_bytes()),
                    subject.clone().into_bytes(),
                );
                st.put(
                    state::pubkey_key(&rec.public_bytes()),
                    subject.clone().into_bytes(),
                );
                let new = PublisherState {
                    id: subject.clone(),
                    name: str_opt("name").unwrap_or_default(),
                    url: str_opt("url"),
                    status: Status::Active,
                    keys: vec![
                        state::KeyPeriod {
                            vkey: key.to_string(),
                            role: Role::Signing,
                            from: next,
                            until: None,
                        },
                        state::KeyPeriod {
                            vkey: rec.to_string(),
                            role: Role::Recovery,
                            from: next,
                            until: None,
                        },
                    ],
                    head: Head { seq: 0, hash: None },
                    registered_at: idx,
                };
                st.put(
                    state::publisher_key(&subject),
                    state::encode_publisher(&new),
                );
            }
            Type::Revoke => {
                let subject = str_opt("subject").unwrap_or_default();
                if let Some(mut s) = get_publisher(st, &subject)? {
                    s.status = Status::Revoked;
                    st.put(state::publisher_key(&subject), state::encode_publisher(&s));
                }
            }
            Type::Request => {
                st.put(
                    state::merged_key(&pid, &id),
                    state::encode_new_request(&p.body),
                );
            }
            Type::Seal => {
                let m = Merged::Seal {
                    commitment: str_opt("commitment").unwrap_or_default(),
                    disclose_by: str_opt("disclose_by").unwrap_or_default(),
                    basis: str_opt("basis").unwrap_or_default(),
                    kind: str_opt("kind"),
                    country: str_opt("country"),
                    extensions: vec![],
                    revealed: None,
                    updates: vec![],
                };
                st.put(state::merged_key(&pid, &id), state::encode(&m));
            }
            Type::Extend | Type::Reveal | Type::Update => {
                let of = str_opt("of").unwrap_or_default();
                let Some(mut m) = get_merged(st, &pid, &of)? else {
                    return Err(Problem::order(format!("of names no statement: {of}")).at("/of"));
                };
                match (t, &mut m) {
                    (
                        Type::Extend,
                        Merged::Seal {
                            disclose_by,
                            extensions,
                            ..
                        },
                    ) => {
                        *disclose_by = str_opt("disclose_by").unwrap_or_default();
                        extensions.push(idx);
                    }
                    (Type::Reveal, Merged::Seal { revealed, .. }) => {
                        *revealed = Some(Revealed {
                            index: idx,
                            record: self.item.revealed.clone().unwrap_or(Value::Null),
                        });
                    }
                    (Type::Update, _) => {
                        if let Some(after) = self.patched(&m)? {
                            m = after;
                        }
                    }
                    _ => {}
                }
                st.put(state::merged_key(&pid, &of), state::encode(&m));
            }
            Type::Aggregate => {
                let mut report = p.body.clone();
                report.retain(|k, _| {
                    matches!(
                        k.as_str(),
                        "period"
                            | "country"
                            | "kind"
                            | "service"
                            | "requests"
                            | "targets"
                            | "produced"
                    )
                });
                let m = Merged::Aggregate {
                    report: Value::Object(report),
                    updates: vec![],
                };
                st.put(state::merged_key(&pid, &id), state::encode(&m));
            }
            Type::Band => {
                let mut report = p.body.clone();
                report.retain(|k, _| {
                    matches!(k.as_str(), "period" | "category" | "requests" | "accounts")
                });
                st.put(
                    state::merged_key(&pid, &id),
                    state::encode(&Merged::Band {
                        report: Value::Object(report),
                    }),
                );
            }
            Type::Rotate | Type::Recover => {}
        }
        Ok(())
    }
}
