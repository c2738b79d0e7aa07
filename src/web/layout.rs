//! The page shell (header, navigation, footer), the style sheet, and small formatting helpers
//! shared by the pages. Everything is served inline: no font, script or style sheet is loaded
//! from anywhere, so the dashboard works offline and under a strict Content-Security-Policy.

use maud::{html, Markup, PreEscaped, DOCTYPE};

/// Which navigation item is the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Publishers,
    None,
}

/// A whole HTML document.
pub fn page(title: &str, nav: Nav, body: Markup) -> Markup {
    let item = |href: &str, label: &str, me: Nav| {
        html! {
            li { a href=(href) aria-current=[(nav == me).then_some(if me == Nav::Overview { "page" } else { "true" })] { (label) } }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light";
                title { (title) " · Candor" }
                style { (PreEscaped(CSS)) }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.site {
                    div.wrap {
                        a.brand href="/" {
                            span.logo aria-hidden="true" { (PreEscaped(LOGO)) }
                            span {
                                strong { "Candor" }
                                span.tagline { "Transparency log of government demands" }
                            }
                        }
                        nav aria-label="Main" {
                            ul {
                                (item("/", "Overview", Nav::Overview))
                                (item("/#publishers", "Publishers", Nav::Publishers))
                                li { a href="/#log-status" { "Verify the log" } }
                                li { a href="/checkpoint" { "Checkpoint" } }
                            }
                        }
                    }
                }
                main #main.wrap tabindex="-1" {
                    (body)
                }
                footer.site {
                    div.wrap {
                        p {
                            "Candor is an append-only, verifiable log: every number here is computed from "
                            "statements signed by the companies that received the demands, and anyone can "
                            "recompute it with " code { "candor audit" } "."
                        }
                        p {
                            "Machine-readable: "
                            a href="/api/v1/stats" { "statistics (JSON)" } " · "
                            a href="/api/v1/stats.csv?group_by=country" { "CSV" } " · "
                            a href="/api/v1/export/requests.ndjson" { "every demand (NDJSON)" } " · "
                            a href="/api/v1/publishers" { "publishers" } " · "
                            a href="/checkpoint" { "signed checkpoint" }
                        }
                    }
                }
            }
        }
    }
}

/// A small mark for the header: a stack of log entries with a check.
const LOGO: &str = r##"<svg viewBox="0 0 32 32" width="32" height="32" focusable="false"><rect x="3" y="4" width="20" height="5" rx="1.5" fill="#9cc3ee"/><rect x="3" y="12" width="20" height="5" rx="1.5" fill="#9cc3ee"/><rect x="3" y="20" width="14" height="5" rx="1.5" fill="#9cc3ee"/><circle cx="24" cy="23" r="6.5" fill="#ffffff"/><path d="M20.8 23.2l2.2 2.2 4.2-4.6" stroke="#0b2a4a" stroke-width="2.2" fill="none" stroke-linecap="round" stroke-linejoin="round"/></svg>"##;

/// The style sheet. Colours meet WCAG AA contrast on their backgrounds; the chart palette is
/// Okabe–Ito (distinguishable with the common colour-vision deficiencies), and stacked segments
/// are also separated by white gaps and named in a legend and a table.
pub const CSS: &str = r#"
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;display:flex;flex-direction:column;min-height:100vh;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif;font-size:16px;line-height:1.5;color:#1b2430;background:#f3f5f8}
.wrap{max-width:1160px;margin:0 auto;padding:0 20px}
a{color:#0b5cad}
a:hover{color:#083f78}
:focus-visible{outline:3px solid #f2a900;outline-offset:2px}
.sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:8px 12px;z-index:10}
.skip:focus{left:8px;top:8px}
header.site{background:#0b2a4a;color:#fff;border-bottom:4px solid #1f6fb5}
header.site .wrap{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:8px 24px;padding-top:12px;padding-bottom:12px}
.brand{display:flex;align-items:center;gap:10px;color:#fff;text-decoration:none}
.brand:hover{color:#fff}
.brand strong{display:block;font-size:1.3rem;letter-spacing:.02em;line-height:1.1}
.brand .tagline{display:block;font-size:.82rem;color:#c9d8ea}
.logo{display:flex}
header nav ul{display:flex;flex-wrap:wrap;gap:4px;list-style:none;margin:0;padding:0}
header nav a{display:block;color:#e6eef8;text-decoration:none;padding:6px 10px;border-radius:6px;font-size:.95rem}
header nav a:hover{background:#163e68;color:#fff}
header nav a[aria-current=page]{background:#1f6fb5;color:#fff}
main{display:block;flex:1 0 auto;width:100%;padding-top:20px;padding-bottom:32px}
main:focus{outline:none}
h1{font-size:1.75rem;line-height:1.2;margin:8px 0 6px}
h2{font-size:1.25rem;margin:0 0 4px}
h3{font-size:1.05rem;margin:16px 0 6px}
p{margin:6px 0 10px}
.lede{color:#3f4b5a;margin:0 0 16px;max-width:75ch}
.basis{display:flex;gap:10px;align-items:flex-start;background:#e8f1fb;border:1px solid #b9d3ef;border-radius:8px;padding:10px 14px;margin:0 0 20px;font-size:.95rem}
.basis svg{flex:none;margin-top:3px}
.card{background:#fff;border:1px solid #d9e0e8;border-radius:10px;padding:18px 20px;margin:0 0 20px;box-shadow:0 1px 2px rgba(16,32,56,.05)}
.card>h2+p.sub,.sub{color:#4a5666;font-size:.92rem;margin:0 0 12px}
.grid2{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:20px}
.grid2>.card{margin:0}
.stack{margin-bottom:20px}
.stats{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:14px;margin:0 0 20px;padding:0;list-style:none}
.stat{background:#fff;border:1px solid #d9e0e8;border-radius:10px;padding:14px 16px;border-top:4px solid #1f6fb5}
.stat .v{display:block;font-size:1.9rem;font-weight:700;line-height:1.15;font-variant-numeric:tabular-nums;color:#0b2a4a}
.stat .k{display:block;font-weight:600;font-size:.95rem;margin-top:2px}
.stat .d{display:block;color:#4a5666;font-size:.84rem;margin-top:4px}
.stat.warn{border-top-color:#b3261e}
.stat.warn .v{color:#b3261e}
.stat.muted{border-top-color:#6b7785}
.filters{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;align-items:end;margin-bottom:8px}
div.filters label{display:block;font-size:.85rem;font-weight:600;margin-bottom:4px;color:#2b3644}
div.filters select,div.filters input{width:100%;height:40px;font:inherit;font-size:.95rem;padding:7px 8px;border:1px solid #8a96a6;border-radius:6px;background:#fff;color:#1b2430}
.actions{display:flex;gap:10px;align-items:center;flex-wrap:wrap}
button,.button{font:inherit;font-size:.95rem;font-weight:600;padding:8px 14px;border-radius:6px;border:1px solid #0b5cad;background:#0b5cad;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
button:hover{background:#084a8c}
.button.secondary{background:#fff;color:#0b5cad}
.active-filters{margin:12px 0 0;font-size:.9rem;color:#3f4b5a}
.chip{display:inline-block;background:#eef2f7;border:1px solid #cfd8e3;border-radius:999px;padding:1px 10px;margin:2px 4px 2px 0;font-size:.85rem}
.error{background:#fdecea;border:1px solid #f1b0aa;color:#7a1c14;border-radius:8px;padding:10px 14px}
figure{margin:0}
.chart-scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
svg.chart.wide{min-width:560px}
svg.chart{display:block;width:100%;height:auto;max-width:100%;overflow:visible}
svg.chart text{font-family:inherit;font-size:13px;fill:#2b3644}
svg.chart.wide text{font-size:13px}
svg.chart .value{font-size:13px;fill:#1b2430;font-weight:600}
svg.chart .axis{stroke:#6b7785;stroke-width:1}
svg.chart .grid{stroke:#e3e8ee;stroke-width:1}
svg.chart .bar{fill:#1f6fb5}
.s0{fill:#0072b2;background:#0072b2}
.s1{fill:#e69f00;background:#e69f00}
.s2{fill:#009e73;background:#009e73}
.s3{fill:#cc79a7;background:#cc79a7}
.s4{fill:#d55e00;background:#d55e00}
.s5{fill:#6b7785;background:#6b7785}
svg.chart rect.seg{stroke:#fff;stroke-width:1}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;list-style:none;padding:0;margin:8px 0 0;font-size:.9rem}
.legend li{display:flex;align-items:center;gap:6px}
.swatch{display:inline-block;width:14px;height:14px;border-radius:3px}
.links{font-size:.88rem;margin:10px 0 0;color:#4a5666}
details{margin-top:10px}
details>summary{cursor:pointer;color:#0b5cad;font-weight:600;font-size:.92rem}
.empty{color:#4a5666;font-style:italic}
.table-wrap{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.93rem;margin:8px 0 4px}
caption{text-align:left;font-weight:600;padding:4px 0 8px;color:#2b3644}
th,td{padding:6px 10px;border-bottom:1px solid #e3e8ee;text-align:left;vertical-align:top}
thead th{background:#f3f6f9;border-bottom:2px solid #c9d3de;font-size:.85rem;color:#2b3644}
tbody tr:nth-child(even){background:#fafbfc}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:.86rem}
pre{background:#0f1b2a;color:#e6edf5;padding:12px 14px;border-radius:8px;overflow-x:auto;white-space:pre-wrap;word-break:break-all;margin:6px 0 12px}
pre.light{background:#f3f6f9;color:#1b2430;border:1px solid #d9e0e8}
code{background:#eef2f7;border-radius:4px;padding:1px 4px}
pre code{background:none;padding:0;font-size:inherit;color:inherit}
.break{word-break:break-all}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:6px 16px;margin:0 0 12px}
dl.facts dt{font-weight:600;color:#2b3644}
dl.facts dd{margin:0;min-width:0;overflow-wrap:anywhere}
.badge{display:inline-block;font-size:.78rem;font-weight:700;padding:1px 8px;border-radius:999px;background:#e7f4ea;color:#1d6b34;border:1px solid #a9d8b6;text-transform:uppercase;letter-spacing:.03em}
.badge.revoked,.badge.overdue{background:#fdecea;color:#8f1d14;border-color:#f1b0aa}
.badge.open,.badge.extended{background:#fff4e0;color:#7a4a00;border-color:#f0cf8c}
.badge.revealed{background:#e8f1fb;color:#0b4a8a;border-color:#b9d3ef}
ol.steps{padding-left:1.3em;margin:6px 0}
ol.steps li{margin-bottom:6px}
.pager{display:flex;justify-content:space-between;gap:10px;margin:0 0 12px}
footer.site{border-top:1px solid #d9e0e8;background:#fff;color:#3f4b5a;font-size:.9rem;padding:14px 0}
@media (max-width:900px){.stats{grid-template-columns:repeat(2,minmax(0,1fr))}}
@media (max-width:760px){
 .wrap{padding:0 14px}
 .grid2{grid-template-columns:1fr}
 h1{font-size:1.45rem}
 .stat .v{font-size:1.6rem}
 dl.facts{grid-template-columns:1fr}
 dl.facts dd{margin-bottom:6px}
 .card{padding:14px}
}
@media print{header.site nav,.skip,div.filters,.actions{display:none}}
"#;

/// An information icon for notes.
pub fn info_icon() -> Markup {
    PreEscaped(
        r##"<svg width="18" height="18" viewBox="0 0 20 20" aria-hidden="true" focusable="false"><circle cx="10" cy="10" r="9" fill="#1f6fb5"/><rect x="9" y="8.5" width="2" height="6.5" rx="1" fill="#fff"/><circle cx="10" cy="5.7" r="1.2" fill="#fff"/></svg>"##
            .to_string(),
    )
}

/// `1234567` → `1,234,567`.
pub fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share as a percentage with one decimal, or a dash when there is nothing to divide.
pub fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "—".into();
    }
    let p = part as f64 * 100.0 / whole as f64;
    if part > 0 && p < 0.1 {
        return "<0.1%".into();
    }
    format!("{p:.1}%")
}

/// A protocol value as words: `user_data` → `User data`.
pub fn label(v: &str) -> String {
    let known = match v {
        "nsl" => "National security letters (NSL)",
        "fisa_content" => "FISA, content",
        "fisa_non_content" => "FISA, non-content",
        "national_security_combined" => "National security, combined",
        "non_disclosure_order" => "Non-disclosure order",
        "user_notified" => "User notified",
        "none" => "None given",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    let words = v.replace('_', " ");
    let mut c = words.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A value that may be missing (`null` rows), as words.
pub fn label_opt(v: Option<&str>) -> String {
    v.map_or_else(|| "Not given".to_string(), label)
}

/// Percent-encodes a path segment (publisher ids may hold `/`).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string (`a=1&b=2`), percent-encoded.
pub fn query_string(pairs: &[(String, String)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// Quotes a word for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A link to a publisher's page.
pub fn publisher_href(id: &str) -> String {
    format!("/publishers/{}", seg(id))
}

/// A labelled pre-formatted block.
pub fn pre(text: &str) -> Markup {
    html! { pre { code { (text) } } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(num(0), "0");
        assert_eq!(num(999), "999");
        assert_eq!(num(1000), "1,000");
        assert_eq!(num(1234567), "1,234,567");
        assert_eq!(pct(1, 4), "25.0%");
        assert_eq!(pct(0, 0), "—");
        assert_eq!(label("user_data"), "User data");
        assert_eq!(seg("a.example/op x"), "a.example%2Fop%20x");
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
    }
}
