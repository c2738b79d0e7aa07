//! The public dashboard: pages render with the numbers of a small known log, filters work,
//! untrusted text is escaped, unknown publishers and entries are 404; then the real binary
//! with demo data, rendered by a headless Chromium (skipped where none is installed).

mod common;

use candor::note::SecretKey;
use candor::receipt::Receipt;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The text inside an HTML fragment: tags dropped, entities decoded, spaces collapsed.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    unescape(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The HTML of the element with this id, from its start tag to the end of `until`.
fn element<'a>(html: &'a str, id: &str, until: &str) -> &'a str {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element with id {id}"));
    let start = html[..at].rfind('<').unwrap_or(0);
    let end = html[at..]
        .find(until)
        .map_or(html.len(), |e| at + e + until.len());
    &html[start..end]
}

/// The big number of a headline card.
fn stat(html: &str, id: &str) -> String {
    let el = element(html, id, "</li>");
    let v = &el[el.find("class=\"v\"").expect("a value")..];
    text_of(&v[v.find('>').unwrap() + 1..v.find("</span>").unwrap()])
}

/// The cells of a table row, as texts.
fn cells(row: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = row;
    loop {
        let next = ["<th", "<td"]
            .iter()
            .filter_map(|t| rest.find(t).map(|i| (i, *t)))
            .min();
        let Some((i, tag)) = next else { break };
        let r = &rest[i..];
        let open = r.find('>').unwrap() + 1;
        let close_tag = format!("</{}>", &tag[1..]);
        let close = r.find(&close_tag).unwrap();
        out.push(text_of(&r[open..close]));
        rest = &r[close + close_tag.len()..];
    }
    out
}

/// The body rows of a table, as cell texts.
fn table(html: &str, id: &str) -> Vec<Vec<String>> {
    let t = element(html, id, "</table>");
    let body = &t[t.find("<tbody>").map_or(0, |i| i + 7)..];
    body.split("<tr>")
        .skip(1)
        .map(|row| cells(row.split("</tr>").next().unwrap_or("")))
        .collect()
}

fn assert_html(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.text());
    assert!(
        r.content_type.starts_with("text/html"),
        "content type {}",
        r.content_type
    );
}

/// 3 DE user-data demands (one with telling the user prohibited), 1 US takedown with hostile
/// notes, and a seal already overdue; acme posts 5 statements in all.
struct Fixture {
    log: TestLog,
    acme: Signer,
    /// Entry index of the takedown whose notes hold markup.
    hostile: u64,
}

const HOSTILE: &str = "<script>alert(\"x\")</script> & <img src=x onerror=alert(1)>";

async fn fixture() -> Fixture {
    let log = TestLog::new().await;
    let mut op = log.operator();
    let mut acme = log.register(&mut op, "acme.example").await;
    for i in 0..3 {
        let mut r = user_data("DE");
        if i == 0 {
            r["user_notified"] = json!("prohibited");
        }
        let resp = log.post(&acme.next("request", r)).await;
        assert_eq!(resp.status, 201, "{}", resp.text());
    }
    let mut t = takedown("US");
    t["notes"] = json!(HOSTILE);
    let resp = log.post(&acme.next("request", t)).await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    let hostile = resp.json()["index"].as_u64().unwrap();
    let seal = acme.next("seal", json!({"commitment": "ab".repeat(32), "disclose_by": "2020-01-01", "basis": "non_disclosure_order", "kind": "user_data", "country": "DE"}));
    let resp = log.post(&seal).await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    Fixture { log, acme, hostile }
}

#[tokio::test]
async fn overview_shows_the_numbers_of_the_log() {
    let Fixture { log, .. } = fixture().await;
    let r = log.get("/").await;
    assert_html(&r, 200);
    let html = r.text();
    assert_eq!(stat(&html, "stat-demands"), "4");
    // All four were complied with (partially or fully); one of four had a gag.
    assert_eq!(stat(&html, "stat-produced"), "100.0%");
    assert_eq!(stat(&html, "stat-prohibited"), "25.0%");
    assert_eq!(stat(&html, "stat-open"), "1");
    assert_eq!(stat(&html, "stat-overdue"), "1");
    assert_eq!(stat(&html, "stat-reports"), "0");
    let countries = table(&html, "table-country");
    assert_eq!(countries.len(), 2, "{countries:?}");
    assert_eq!(countries[0][..2], ["DE".to_string(), "3".to_string()]);
    assert_eq!(countries[1][..2], ["US".to_string(), "1".to_string()]);
    // Charts: inline SVG with a role, a title and a label.
    for id in ["chart-country", "chart-period", "chart-process"] {
        let svg = element(&html, id, "</svg>");
        assert!(
            svg.contains("role=\"img\"") && svg.contains("aria-label=\"") && svg.contains("<title"),
            "{id}"
        );
    }
    assert!(element(&html, "chart-country", "</svg>").contains(">DE<"));
    // Periods: user data received 2026-01-15 (Q1), the takedown 2026-03-01 (Q1).
    let periods = table(&html, "table-period");
    assert_eq!(periods.len(), 1, "{periods:?}");
    assert_eq!(periods[0][0], "2026-Q1");
    assert_eq!(periods[0].last().unwrap(), "4");
    let processes = table(&html, "table-process");
    assert_eq!(processes[0][..2], ["Subpoena".to_string(), "3".to_string()]);
    // The publisher, the log's status, how to audit, and what size the numbers are for.
    let pubs = table(&html, "table-publishers");
    assert_eq!(pubs.len(), 1);
    assert!(pubs[0][0].contains("acme.example"));
    assert_eq!(pubs[0][2], "4");
    let size = log.size().await;
    assert!(html.contains(&format!("at tree size <strong>{size}</strong>")));
    let vkey = log.vkey().to_string();
    assert!(
        html.contains(&format!("--log-key '{vkey}'")),
        "the audit command"
    );
    // Without a Host header (in-process requests) the URL is a placeholder.
    assert!(html.contains("candor audit URL-OF-THIS-LOG --log-key"));
    let cp = log.get("/checkpoint").await.text();
    assert!(
        text_of(&html).contains(&text_of(&cp)),
        "the signed checkpoint is shown"
    );
    // Accessibility basics.
    assert!(html.contains("<html lang=\"en\">") && html.contains("name=\"viewport\""));
    for id in [
        "f-country",
        "f-kind",
        "f-publisher",
        "f-interval",
        "f-from",
        "f-to",
    ] {
        assert!(
            html.contains(&format!("<label for=\"{id}\"")),
            "label for {id}"
        );
    }
    assert!(
        html.contains("<caption>")
            && html.contains("scope=\"col\"")
            && html.contains("scope=\"row\"")
    );
    // No script, no outside resource.
    assert!(
        !html.contains("<script") && !html.contains("src=\"http") && !html.contains("href=\"//")
    );
    assert!(r.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
}

#[tokio::test]
async fn filters_are_a_stats_query() {
    let Fixture { log, .. } = fixture().await;
    let html = log.get("/?country=DE&kind=&publisher=").await.text();
    assert_eq!(stat(&html, "stat-demands"), "3");
    assert_eq!(stat(&html, "stat-prohibited"), "33.3%");
    let countries = table(&html, "table-country");
    assert_eq!(countries.len(), 1);
    assert_eq!(countries[0][..2], ["DE".to_string(), "3".to_string()]);
    // The form shows the filter, and the downloads are the same query.
    assert!(html.contains("<option value=\"DE\" selected>DE</option>"));
    let csv_href = "/api/v1/stats.csv?group_by=country&amp;country=DE&amp;interval=quarter";
    assert!(html.contains(csv_href), "CSV link");
    let csv = log.get(&unescape(csv_href)).await;
    assert_eq!(csv.status, 200);
    assert!(csv.text().contains("DE,3,3,6,0,0,0"), "{}", csv.text());
    let json_href = "/api/v1/stats?group_by=country&amp;country=DE&amp;interval=quarter";
    assert!(html.contains(json_href));
    assert_eq!(
        log.get(&unescape(json_href)).await.json()["totals"]["requests"],
        3
    );

    let html = log.get("/?kind=content_restriction").await.text();
    assert_eq!(stat(&html, "stat-demands"), "1");
    assert_eq!(table(&html, "table-country")[0][0], "US");
    let html = log
        .get("/?publisher=acme.example&from=2026-Q1&to=2026-Q1&interval=month")
        .await
        .text();
    assert_eq!(stat(&html, "stat-demands"), "4");
    let months: Vec<String> = table(&html, "table-period")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(
        months,
        ["2026-01", "2026-02", "2026-03"],
        "gaps are filled in"
    );
    let html = log.get("/?from=2026-Q2").await.text();
    assert_eq!(stat(&html, "stat-demands"), "0");
    assert!(html.contains("No demands match these filters."));
    // Any other dimension is a filter too (links from the tables use this).
    let html = log.get("/?process=court_order&utm_source=x").await.text();
    assert_eq!(stat(&html, "stat-demands"), "1");
    assert!(html.contains("<input type=\"hidden\" name=\"process\" value=\"court_order\">"));

    for bad in ["/?from=2026-Q9", "/?interval=week", "/?to=soon"] {
        let r = log.get(bad).await;
        assert_html(&r, 400);
        assert!(r.text().contains("role=\"alert\""));
    }
}

#[tokio::test]
async fn publisher_page_lists_keys_head_seals_and_statements() {
    let Fixture { log, acme, .. } = fixture().await;
    let r = log.get("/publishers/acme.example").await;
    assert_html(&r, 200);
    let html = r.text();
    assert!(html.contains("<h1>acme.example Inc.</h1>"));
    assert!(html.contains("href=\"https://acme.example/transparency\""));
    let keys = table(&html, "table-keys");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0][0], acme.key.verifier().to_string());
    assert_eq!(keys[0][1], "Signing");
    assert_eq!(
        keys[1][0],
        acme.recovery.as_ref().unwrap().verifier().to_string()
    );
    assert_eq!(keys[1][1], "Recovery");
    assert_eq!(text_of(element(&html, "head-seq", "</dd>")), "5");
    assert_eq!(acme.seq, 5);
    assert_eq!(stat(&html, "stat-demands"), "4");
    assert_eq!(stat(&html, "stat-overdue"), "1");
    let seals = table(&html, "table-seals");
    assert_eq!(seals.len(), 1);
    assert!(seals[0][1].eq_ignore_ascii_case("overdue"), "{seals:?}");
    let latest = table(&html, "table-latest");
    assert_eq!(latest.len(), 5, "{latest:?}");
    let size = log.size().await;
    assert_eq!(latest[0][0], (size - 1).to_string(), "newest first");
    assert_eq!(latest[0][2], "Seal");
    assert!(html.contains(&format!("href=\"/entries/{}\"", size - 1)));
    // The operator's page: its id holds slashes, percent-encoded in the path.
    let r = log.get("/publishers/test.example%2Flog%2Foperator").await;
    assert_html(&r, 200);
    assert!(r.text().contains("Signing"));
    // Unknown publishers.
    let r = log.get("/publishers/nobody.example").await;
    assert_html(&r, 404);
    assert!(r.text().contains("nobody.example"));
}

#[tokio::test]
async fn entry_page_shows_statement_and_a_proof_that_verifies() {
    let Fixture { log, hostile, .. } = fixture().await;
    let r = log.get(&format!("/entries/{hostile}")).await;
    assert_html(&r, 200);
    let html = r.text();
    let api = log.get(&format!("/api/v1/entries/{hostile}")).await.json();
    // The statement, escaped: the markup in its notes is shown as text, never as markup.
    assert!(!html.contains("<script>alert"), "unescaped script");
    assert!(!html.contains("<img src=x"), "unescaped img");
    assert!(html.contains("&lt;script&gt;alert("));
    let shown = text_of(element(&html, "statement", "</pre>"));
    let expected = api["statement"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(shown, expected);
    assert!(text_of(element(&html, "statement-json", "</pre>"))
        .contains("\"kind\": \"content_restriction\""));
    assert!(html.contains(api["leaf_hash"].as_str().unwrap()));
    assert!(html.contains(api["logged_at"].as_str().unwrap()));
    // The proof's hashes, against the current size.
    let size = log.size().await;
    let proof = log
        .get(&format!(
            "/api/v1/proof/inclusion?index={hostile}&size={size}"
        ))
        .await
        .json();
    let hashes = proof["hashes"].as_array().unwrap();
    assert!(!hashes.is_empty());
    let listed = element(&html, "proof", "</ol>");
    for h in hashes {
        assert!(listed.contains(h.as_str().unwrap()), "proof hash {h}");
    }
    // The receipt on the page verifies with the log key and the statement bytes.
    let receipt_html = element(&html, "receipt", "</pre>");
    let receipt_json = unescape(
        &receipt_html
            [receipt_html.find("<code>").unwrap() + 6..receipt_html.find("</code>").unwrap()],
    );
    let v: Value = serde_json::from_str(&receipt_json).unwrap();
    let receipt: Receipt = serde_json::from_value(v["receipt"].clone()).unwrap();
    let cp = receipt
        .verify(&log.vkey(), v["statement"].as_str())
        .unwrap();
    assert_eq!((receipt.index, cp.size), (hostile, size));
    assert!(html.contains("candor verify-receipt"));

    // The genesis entry: no publisher page to link to, and no previous entry.
    assert_html(&log.get("/entries/0").await, 200);
    // Unknown and malformed indices.
    let r = log.get(&format!("/entries/{size}")).await;
    assert_html(&r, 404);
    assert_html(&log.get("/entries/99999999999999999999").await, 400);
    assert_html(&log.get("/entries/-1").await, 400);
    assert_html(&log.get("/entries/1x").await, 400);
}

#[tokio::test]
async fn publisher_names_and_urls_are_escaped_everywhere() {
    let log = TestLog::new().await;
    let op = log.operator();
    let id = "evil.example";
    let key = SecretKey::generate(id).unwrap();
    let recovery = SecretKey::generate(id).unwrap();
    let name = "<b onmouseover=\"alert(1)\">Evil</b> & Co";
    let body = op.body(
        "register",
        json!({
            "subject": id, "name": name, "url": "https://evil.example/\"><script>alert(1)</script>",
            "key": key.verifier().to_string(), "recovery_key": recovery.verifier().to_string(),
        }),
    );
    let n = op.sign_with(&body, &[&key]);
    let r = log.post(&n).await;
    assert_eq!(r.status, 201, "{}", r.text());
    // In the entry page the name is inside JSON, so its quotes carry a backslash.
    for (page, shown) in [
        (
            "/",
            "&lt;b onmouseover=&quot;alert(1)&quot;&gt;Evil&lt;/b&gt; &amp; Co",
        ),
        (
            "/publishers/evil.example",
            "&lt;b onmouseover=&quot;alert(1)&quot;&gt;Evil&lt;/b&gt; &amp; Co",
        ),
        (
            "/entries/1",
            "&lt;b onmouseover=\\&quot;alert(1)\\&quot;&gt;Evil&lt;/b&gt; &amp; Co",
        ),
    ] {
        let r = log.get(page).await;
        assert_html(&r, 200);
        let html = r.text();
        assert!(!html.contains("<b onmouseover"), "{page}");
        assert!(!html.contains("<script>"), "{page}");
        assert!(html.contains(shown), "{page}");
    }
    // The URL is an escaped attribute value: it cannot close the attribute.
    let html = log.get("/publishers/evil.example").await.text();
    assert!(html
        .contains("href=\"https://evil.example/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""));
}

// ---- End to end: the real binary and a real browser. ----

const CHROMIUM: &str = "/usr/bin/chromium";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_demo(dir: &Path, port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_candor"))
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--keys")
        .arg(dir.join("keys"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ureq::get(&format!("http://127.0.0.1:{port}/readyz"))
            .call()
            .is_ok()
        {
            return server;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the server did not become ready");
}

/// Runs headless Chromium with `args`; returns its standard output.
fn chromium(profile: &Path, args: &[String]) -> String {
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).ok();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

#[test]
fn browser_renders_the_demo_dashboard() {
    if !Path::new(CHROMIUM).exists() {
        println!("skipping the browser test: {CHROMIUM} is not installed (.ci/run installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = start_demo(dir.path(), port);
    let base = format!("http://127.0.0.1:{port}");
    let stats: Value = ureq::get(&format!("{base}/api/v1/stats"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let demands = stats["totals"]["requests"].as_u64().unwrap();
    assert!(demands > 100, "the demo logs a few hundred demands");
    let by_country: Value = ureq::get(&format!(
        "{base}/api/v1/stats?group_by=country&interval=quarter"
    ))
    .call()
    .unwrap()
    .into_json()
    .unwrap();

    let dom = chromium(
        &dir.path().join("profile"),
        &["--dump-dom".into(), format!("{base}/")],
    );
    for id in ["chart-period", "chart-country", "chart-process"] {
        let svg = element(&dom, id, "</svg>");
        assert!(
            svg.contains("role=\"img\"") && svg.contains("<title"),
            "{id} in the rendered DOM"
        );
        assert!(svg.matches("<rect").count() >= 5, "{id} has bars");
    }
    let shown = stat(&dom, "stat-demands").replace(',', "");
    assert_eq!(shown, demands.to_string());
    let rows = table(&dom, "table-country");
    assert_eq!(rows.len(), by_country["rows"].as_array().unwrap().len());
    for r in by_country["rows"].as_array().unwrap() {
        let c = r["key"]["country"].as_str().unwrap();
        let row = rows
            .iter()
            .find(|x| x[0] == c)
            .unwrap_or_else(|| panic!("{c} in the table"));
        assert_eq!(row[1], r["requests"].to_string(), "{c}");
    }
    assert!(dom.contains("Acme Social (demo)"));
    assert!(dom.contains(&format!("candor audit {base} --log-key")));

    let dom = chromium(
        &dir.path().join("profile"),
        &[
            "--dump-dom".into(),
            format!("{base}/publishers/acme.example"),
        ],
    );
    assert!(dom.contains("<h1>Acme Social (demo)</h1>") && dom.contains("id=\"table-keys\""));
    let dom = chromium(
        &dir.path().join("profile"),
        &["--dump-dom".into(), format!("{base}/entries/1")],
    );
    assert!(dom.contains("id=\"proof\"") && dom.contains("candor verify-receipt"));

    let shot = target_dir().join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &dir.path().join("profile"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".into(),
            "--hide-scrollbars".into(),
            format!("{base}/"),
        ],
    );
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        png.len() > 10_000,
        "a screenshot of {} bytes is too small",
        png.len()
    );
    println!("dashboard screenshot: {}", shot.display());
}
