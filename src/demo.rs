//! `candor serve --demo`: fills an empty log with clearly synthetic statements from three
//! example publishers, so that a newcomer sees a living log: varied countries, kinds,
//! processes and outcomes, updates, a revealed, an extended and an overdue seal, counted
//! reports and national-security bands.
//!
//! Everything goes through the same checks as any submission. The publishers' keys are kept
//! in `<keys>/demo/` so that one can go on publishing as them.

use crate::api::{write, Shared};
use crate::keyfile;
use crate::note::SecretKey;
use crate::statement::{chain::Chain, seal, state::operator_id};
use anyhow::{anyhow, bail};
use serde_json::{json, Value};
use std::path::Path;
use time::{Duration, OffsetDateTime};

/// A small deterministic generator: the demo is the same every time, but for ids and dates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const COUNTRIES: [&str; 18] = [
    "US", "DE", "FR", "IN", "BR", "TR", "GB", "JP", "MX", "KR", "RU", "AU", "CA", "ES", "IT", "PK",
    "ID", "NG",
];

struct Publisher {
    key: SecretKey,
    chain: Chain,
}

fn days_ago(days: u64) -> String {
    let d = OffsetDateTime::now_utc().date() - Duration::days(days as i64);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A plausible, synthetic request record.
fn record(rng: &mut Rng) -> Value {
    let country = rng.pick(&COUNTRIES);
    let received = 2 + rng.below(600);
    let kind = rng.pick(&[
        "user_data",
        "user_data",
        "user_data",
        "content_restriction",
        "content_restriction",
        "account_restriction",
        "preservation",
    ]);
    let mut r = json!({
        "kind": kind,
        "channel": rng.pick(&["legal_process", "legal_process", "legal_process", "emergency", "mutual_legal_assistance", "informal"]),
        "country": country,
        "authority": {"type": rng.pick(&["police", "police", "prosecutor", "court", "regulator", "national_security", "executive"])},
        "received_on": days_ago(received),
        "user_notified": rng.pick(&["yes", "no", "prohibited", "delayed"]),
        "notes": "SYNTHETIC DEMO DATA: not a real demand",
    });
    let responded = received.saturating_sub(1 + rng.below(30)).max(1);
    match kind {
        "user_data" => {
            r["process"] = json!(rng.pick(&[
                "subpoena",
                "court_order",
                "search_warrant",
                "production_order",
                "pen_register"
            ]));
            r["targets"] = json!({"accounts": 1 + rng.below(5)});
            r["data_categories"] = json!(["subscriber", "non_content"]);
            let disp = rng.pick(&[
                "complied",
                "partially_complied",
                "rejected",
                "no_data",
                "pending",
            ]);
            r["disposition"] = json!(disp);
            if matches!(disp, "complied" | "partially_complied") {
                r["produced"] = json!(["subscriber"]);
            }
        }
        "content_restriction" => {
            r["process"] = json!(rng.pick(&[
                "court_order",
                "removal_order",
                "administrative_order",
                "none"
            ]));
            r["targets"] = json!({"urls": 1 + rng.below(20), "items": rng.below(5)});
            r["reasons"] = json!([rng.pick(&[
                "defamation",
                "hate_speech",
                "criticism_of_government",
                "copyright",
                "privacy",
                "public_order",
                "misinformation"
            ])]);
            r["scope"] = json!(rng.pick(&["national", "national", "global"]));
            r["disposition"] = json!(rng.pick(&[
                "complied",
                "partially_complied",
                "rejected",
                "actioned_under_terms",
                "challenged"
            ]));
        }
        "account_restriction" => {
            r["process"] = json!(rng.pick(&["court_order", "administrative_order"]));
            r["targets"] = json!({"accounts": 1 + rng.below(3)});
            r["scope"] = json!("national");
            r["disposition"] = json!(rng.pick(&["complied", "rejected", "withdrawn"]));
        }
        _ => {
            r["process"] = json!("preservation_order");
            r["targets"] = json!({"accounts": 1});
            r["disposition"] = json!("complied");
        }
    }
    if r["disposition"] != "pending" {
        r["responded_on"] = json!(days_ago(responded));
    }
    r
}

/// Logs the demo statements; `keys` is the service's key directory.
pub async fn populate(s: &Shared, keys: &Path, op_key: &SecretKey) -> anyhow::Result<usize> {
    if s.log.size() != 1 {
        bail!("--demo only fills an empty log (this one has {} entries); start on an empty data directory", s.log.size());
    }
    let origin = s.log.origin.clone();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut op = Chain::new(&origin, &operator_id(&origin), 0, None);
    let mut notes = Vec::new();
    let mut pubs = Vec::new();
    for (id, name) in [
        ("acme.example", "Acme Social (demo)"),
        ("globex.example", "Globex Mail (demo)"),
        ("initech.example", "Initech Cloud (demo)"),
    ] {
        let key = SecretKey::generate(id)?;
        let recovery = SecretKey::generate(id)?;
        let dir = keys.join("demo");
        if !dir.join(format!("{id}.key")).exists() {
            keyfile::write_pair(&dir, id, &key)?;
            keyfile::write_pair(&dir, &format!("{id}.recovery"), &recovery)?;
        }
        let key = keyfile::read_secret(&dir.join(format!("{id}.key")))?;
        let recovery = keyfile::read_secret(&dir.join(format!("{id}.recovery.key")))?;
        let fields = json!({"subject": id, "name": name, "url": format!("https://{id}/transparency"), "key": key.verifier().to_string(), "recovery_key": recovery.verifier().to_string()});
        notes.push(op.sign_next("register", fields, &[op_key, &key])?.0);
        pubs.push(Publisher {
            chain: Chain::new(&origin, id, 0, None),
            key,
        });
    }
    let mut requests: Vec<(usize, String, Value)> = Vec::new();
    for i in 0..300 {
        let p = (i * 7 + rng.below(3) as usize) % pubs.len();
        let rec = record(&mut rng);
        let pb = &mut pubs[p];
        let (n, id) = pb.chain.sign_next("request", rec.clone(), &[&pb.key])?;
        notes.push(n);
        requests.push((p, id, rec));
    }
    // Pending demands get answered later: updates.
    for (p, id, rec) in requests
        .iter()
        .filter(|(_, _, r)| r["disposition"] == "pending")
        .take(25)
    {
        let pb = &mut pubs[*p];
        let mut patch = json!({"disposition": "complied", "responded_on": days_ago(1)});
        if rec["kind"] == "user_data" {
            patch["produced"] = json!(["subscriber"]);
        }
        notes.push(
            pb.chain
                .sign_next("update", json!({"of": id, "patch": patch}), &[&pb.key])?
                .0,
        );
    }
    // Seals: one revealed, one extended, one overdue.
    let pb = &mut pubs[0];
    let mut sealed = Vec::new();
    for (disclose_by, show) in [
        (days_ago(0), true),
        (days_ago(0), false),
        (days_ago(60), true),
    ] {
        let rec = record(&mut rng);
        let text = serde_json::to_string(&rec)?;
        let mut salt = [0u8; 32];
        getrandom::getrandom(&mut salt).map_err(|e| anyhow!("no randomness: {e}"))?;
        let c = seal::commitment(&origin, &pb.chain.publisher, &salt, &text);
        let mut fields = json!({"commitment": hex::encode(c), "disclose_by": disclose_by, "basis": "non_disclosure_order"});
        if show {
            fields["kind"] = rec["kind"].clone();
            fields["country"] = rec["country"].clone();
        }
        let (n, id) = pb.chain.sign_next("seal", fields, &[&pb.key])?;
        notes.push(n);
        sealed.push((id, salt, text));
    }
    let (id, salt, text) = &sealed[0];
    notes.push(
        pb.chain
            .sign_next(
                "reveal",
                json!({"of": id, "salt": hex::encode(salt), "request": text}),
                &[&pb.key],
            )?
            .0,
    );
    let next_year = OffsetDateTime::now_utc().year() + 1;
    notes.push(pb.chain.sign_next("extend", json!({"of": sealed[1].0, "disclose_by": format!("{next_year}-06-30"), "reason": "non-disclosure order renewed by the court"}), &[&pb.key])?.0);
    // Counted reports and national-security bands.
    for (i, pb) in pubs.iter_mut().enumerate() {
        for (period, country) in [("2025-H1", "US"), ("2025-H2", "US"), ("2025-H2", "GB")] {
            let requests = 200 + 37 * i as u64 + rng.below(100);
            let fields = json!({"period": period, "country": country, "kind": "user_data", "requests": requests, "targets": {"accounts": requests * 2}, "produced": requests / 2});
            notes.push(pb.chain.sign_next("aggregate", fields, &[&pb.key])?.0);
        }
        for period in ["2025-H1", "2025-H2"] {
            let fields = json!({"period": period, "category": "nsl", "requests": {"min": 0, "max": 249}, "accounts": {"min": 0, "max": 249}});
            notes.push(pb.chain.sign_next("band", fields, &[&pb.key])?.0);
        }
    }
    let total = notes.len();
    let results = write::submit_notes(s, notes).await;
    if let Some(p) = results.iter().find_map(|r| r.as_ref().err()) {
        bail!(
            "the demo data was refused: {} ({})",
            p.detail,
            p.pointer.as_deref().unwrap_or("")
        );
    }
    Ok(total)
}
