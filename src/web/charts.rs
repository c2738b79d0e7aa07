//! Inline SVG charts: horizontal bars and stacked columns, drawn on the server.
//!
//! Each chart is an `<svg role="img">` with a `<title>`, a `<desc>` and an `aria-label` that
//! sums it up in words; the pages put a table of the same numbers under every chart, which is
//! the accessible alternative. Colours come from the style sheet's classes (`.bar`, `.s0`…).

use super::layout::num;
use maud::{html, Markup};

/// One bar: what it is and how many.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: u64,
}

/// One column of a stacked chart: its category and one value per series.
#[derive(Debug, Clone)]
pub struct Stack {
    pub label: String,
    pub values: Vec<u64>,
}

/// Coordinates are written with one decimal.
fn c(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// Shortens a label to `max` characters, with an ellipsis.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A round step for about `ticks` grid lines up to `max`: 1, 2 or 5 times a power of ten.
pub fn nice_step(max: u64, ticks: u64) -> u64 {
    let raw = max.div_ceil(ticks.max(1)).max(1);
    let mut mag = 1u64;
    while mag.saturating_mul(10) <= raw {
        mag *= 10;
    }
    for m in [1u64, 2, 5, 10] {
        if m.saturating_mul(mag) >= raw {
            return m.saturating_mul(mag);
        }
    }
    raw
}

/// The chart's summary in words, for `aria-label`: the first few bars, largest first.
fn bars_summary(title: &str, bars: &[Bar]) -> String {
    let mut sorted: Vec<&Bar> = bars.iter().collect();
    sorted.sort_by_key(|b| std::cmp::Reverse(b.value));
    let top: Vec<String> = sorted
        .iter()
        .take(5)
        .map(|b| format!("{} {}", b.label, num(b.value)))
        .collect();
    let more = if bars.len() > 5 {
        format!(", and {} more", bars.len() - 5)
    } else {
        String::new()
    };
    format!(
        "Bar chart, {title}: {}{more}. The table below lists every value.",
        top.join(", ")
    )
}

/// A horizontal bar chart, in the order given.
pub fn hbar(id: &str, title: &str, bars: &[Bar]) -> Markup {
    if bars.is_empty() {
        return html! { p.empty { "No demands match these filters." } };
    }
    const W: f64 = 480.0;
    const VALUE_W: f64 = 56.0;
    // The label column fits the longest (clipped) label, at about 7 units a character.
    let longest = bars
        .iter()
        .map(|b| b.label.chars().count().min(22))
        .max()
        .unwrap_or(0);
    let label_w = (longest as f64 * 7.5 + 16.0).clamp(40.0, 175.0);
    const ROW: f64 = 28.0;
    const BAR_H: f64 = 19.0;
    const TOP: f64 = 6.0;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1) as f64;
    let plot = W - label_w - VALUE_W;
    let h = TOP * 2.0 + ROW * bars.len() as f64;
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    html! {
        svg.chart #(id) role="img" viewBox=(format!("0 0 {} {}", c(W), c(h))) width=(c(W)) height=(c(h))
            aria-label=(bars_summary(title, bars)) xmlns="http://www.w3.org/2000/svg" {
            title #(title_id) { (title) }
            desc #(desc_id) { (bars_summary(title, bars)) }
            line.axis x1=(c(label_w)) y1=(c(TOP - 2.0)) x2=(c(label_w)) y2=(c(h - TOP + 2.0)) {}
            @for (i, b) in bars.iter().enumerate() {
                @let y = TOP + ROW * i as f64 + (ROW - BAR_H) / 2.0;
                @let w = if b.value == 0 { 0.0 } else { (plot * b.value as f64 / max).max(2.0) };
                g {
                    title { (b.label) ": " (num(b.value)) }
                    text x=(c(label_w - 8.0)) y=(c(y + BAR_H / 2.0 + 4.0)) text-anchor="end" { (clip(&b.label, 22)) }
                    rect.bar x=(c(label_w)) y=(c(y)) width=(c(w)) height=(c(BAR_H)) rx="2" {}
                    text.value x=(c(label_w + w + 6.0)) y=(c(y + BAR_H / 2.0 + 4.0)) { (num(b.value)) }
                }
            }
        }
    }
}

/// A stacked column chart: one column per category, one coloured segment per series.
pub fn stacked(id: &str, title: &str, series: &[String], stacks: &[Stack]) -> Markup {
    if stacks.is_empty() {
        return html! { p.empty { "No demands match these filters." } };
    }
    const W: f64 = 880.0;
    const H: f64 = 320.0;
    const ML: f64 = 52.0;
    const MR: f64 = 8.0;
    const MT: f64 = 18.0;
    const MB: f64 = 40.0;
    let plot_w = W - ML - MR;
    let plot_h = H - MT - MB;
    let totals: Vec<u64> = stacks.iter().map(|s| s.values.iter().sum()).collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let step = nice_step(max, 5);
    let ymax = max.div_ceil(step).max(1) * step;
    let n = stacks.len();
    let band = plot_w / n as f64;
    let bw = (band * 0.72).clamp(1.0, 64.0);
    let every = (n as f64 / (plot_w / 70.0)).ceil().max(1.0) as usize;
    let scale = |v: u64| plot_h * v as f64 / ymax as f64;
    // Each non-empty segment of a column: series index, top and height, bottom up.
    let segments = |s: &Stack| -> Vec<(usize, f64, f64)> {
        let mut base = MT + plot_h;
        let mut out = Vec::new();
        for (k, v) in s.values.iter().enumerate() {
            if *v > 0 {
                let h = scale(*v);
                base -= h;
                out.push((k, base, h));
            }
        }
        out
    };
    let ticks: Vec<u64> = (0..=ymax / step).map(|k| k * step).collect();
    let sum: u64 = totals.iter().sum();
    let (peak_i, peak) = totals
        .iter()
        .enumerate()
        .max_by_key(|(i, v)| (**v, usize::MAX - *i))
        .map(|(i, v)| (i, *v))
        .unwrap_or((0, 0));
    let summary = format!(
        "Stacked bar chart, {title}: {} periods from {} to {}, {} demands in all; the most, {}, in {}. Segments by {}. The table below lists every value.",
        n,
        stacks.first().map_or("", |s| s.label.as_str()),
        stacks.last().map_or("", |s| s.label.as_str()),
        num(sum),
        num(peak),
        stacks.get(peak_i).map_or("", |s| s.label.as_str()),
        series.join(", "),
    );
    html! {
        div.chart-scroll {
        svg.chart.wide #(id) role="img" viewBox=(format!("0 0 {} {}", c(W), c(H))) width=(c(W)) height=(c(H))
            aria-label=(summary) xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            desc { (summary) }
            @for t in &ticks {
                @let y = MT + plot_h - scale(*t);
                line.grid x1=(c(ML)) y1=(c(y)) x2=(c(W - MR)) y2=(c(y)) {}
                text x=(c(ML - 6.0)) y=(c(y + 4.0)) text-anchor="end" { (num(*t)) }
            }
            line.axis x1=(c(ML)) y1=(c(MT + plot_h)) x2=(c(W - MR)) y2=(c(MT + plot_h)) {}
            @for (i, s) in stacks.iter().enumerate() {
                @let x = ML + band * i as f64 + (band - bw) / 2.0;
                g {
                    title {
                        (s.label) ": " (num(totals[i]))
                        @for (k, v) in s.values.iter().enumerate() {
                            @if *v > 0 { "; " (series.get(k).map_or("", String::as_str)) " " (num(*v)) }
                        }
                    }
                    @for (k, y, h) in segments(s) {
                        rect class=(format!("seg s{}", k.min(5))) x=(c(x)) y=(c(y)) width=(c(bw)) height=(c(h)) {}
                    }
                    @if n <= 30 && totals[i] > 0 {
                        text.value x=(c(x + bw / 2.0)) y=(c(MT + plot_h - scale(totals[i]) - 4.0)) text-anchor="middle" { (num(totals[i])) }
                    }
                    @if i % every == 0 {
                        text x=(c(x + bw / 2.0)) y=(c(MT + plot_h + 18.0)) text-anchor="middle" { (s.label) }
                    }
                }
            }
        }
        }
    }
}

/// The legend of a stacked chart, as an HTML list with colour swatches.
pub fn legend(series: &[String]) -> Markup {
    html! {
        ul.legend aria-label="Legend" {
            @for (k, s) in series.iter().enumerate() {
                li { span class=(format!("swatch s{}", k.min(5))) aria-hidden="true" {} (s) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(1, 5), 1);
        assert_eq!(nice_step(7, 5), 2);
        assert_eq!(nice_step(23, 5), 5);
        assert_eq!(nice_step(130, 5), 50);
        assert_eq!(nice_step(1000, 5), 200);
    }

    #[test]
    fn charts_escape_labels() {
        let m = hbar(
            "x",
            "t",
            &[Bar {
                label: "<b>".into(),
                value: 3,
            }],
        )
        .into_string();
        assert!(m.contains("&lt;b&gt;") && !m.contains("<b>"));
        let m = stacked(
            "y",
            "t",
            &["a".into(), "b".into()],
            &[Stack {
                label: "2026-Q1".into(),
                values: vec![2, 1],
            }],
        )
        .into_string();
        assert!(m.contains("seg s0") && m.contains("seg s1") && m.contains(">3<"));
    }
}
