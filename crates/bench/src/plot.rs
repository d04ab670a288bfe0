//! `--plot FILE.svg`: the latency distributions of a run as a hand-written SVG, drawn as a percentile
//! spectrum (the inverse CDF with the tail stretched out: x is the percentile on a log scale of
//! 1/(1 - p), y the latency on a log scale), so that p50 and p99.9 are equally readable.

use std::fmt::Write as _;

use crate::histogram::Histogram;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 520.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 230.0;
const TOP: f64 = 60.0;
const BOTTOM: f64 = 60.0;
/// The right edge of the x axis: the 99.99th percentile; anything beyond (the maximum) is drawn there.
const X_NINES: f64 = 4.0;

/// One line of the plot.
pub struct Curve<'a> {
    pub label: String,
    pub histogram: &'a Histogram,
    pub color: &'static str,
    pub dashed: bool,
}

fn nines(fraction: f64) -> f64 {
    if fraction >= 1.0 { X_NINES } else { (1.0 / (1.0 - fraction)).log10().min(X_NINES) }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn latency_label(ms_decade: i32) -> String {
    if ms_decade >= 3 { format!("{} s", 10f64.powi(ms_decade - 3)) } else { format!("{} ms", 10f64.powi(ms_decade)) }
}

/// The SVG document for `curves` under `title`.
pub fn svg(title: &str, curves: &[Curve<'_>]) -> String {
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let drawn: Vec<&Curve<'_>> = curves.iter().filter(|curve| curve.histogram.count() > 0).collect();
    let to_ms = |micros: u64| (micros.max(1) as f64) / 1000.0;
    let lowest = drawn.iter().filter_map(|c| c.histogram.cdf().first().map(|p| to_ms(p.0))).fold(f64::MAX, f64::min);
    let highest = drawn.iter().filter_map(|c| c.histogram.cdf().last().map(|p| to_ms(p.0))).fold(0.0, f64::max);
    let (y_low, y_high) = if drawn.is_empty() {
        (-1, 2)
    } else {
        let low = lowest.log10().floor() as i32;
        (low, (highest.log10().ceil() as i32).max(low + 1))
    };
    let x = |fraction: f64| LEFT + nines(fraction) / X_NINES * plot_width;
    let y = |ms: f64| {
        let span = f64::from(y_high - y_low);
        TOP + plot_height - (ms.log10() - f64::from(y_low)) / span * plot_height
    };

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#);
    let _ = writeln!(out, r#"<text x="{LEFT}" y="24" font-size="14" font-weight="bold">Latency by percentile</text>"#);
    let _ = writeln!(out, r##"<text x="{LEFT}" y="42" fill="#444">{}</text>"##, escape(title));
    for (fraction, label) in
        [(0.0, "0%"), (0.5, "50%"), (0.9, "90%"), (0.99, "99%"), (0.999, "99.9%"), (0.9999, "99.99%")]
    {
        let at = x(fraction);
        let _ = writeln!(
            out,
            r##"<line x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{:.1}" stroke="#ddd"/><text x="{at:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            TOP + plot_height,
            TOP + plot_height + 18.0
        );
    }
    for decade in y_low..=y_high {
        let at = y(10f64.powi(decade));
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{at:.1}" x2="{:.1}" y2="{at:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_width,
            LEFT - 6.0,
            at + 4.0,
            latency_label(decade)
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_width}" height="{plot_height}" fill="none" stroke="#888"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile (the right edge is the maximum)</text>"#,
        LEFT + plot_width / 2.0,
        HEIGHT - 16.0
    );
    let _ = writeln!(
        out,
        r#"<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle">latency (log scale)</text>"#,
        TOP + plot_height / 2.0
    );
    for (index, curve) in drawn.iter().enumerate() {
        let mut points = String::new();
        let mut below = 0.0;
        for (micros, fraction) in curve.histogram.cdf() {
            let level = y(to_ms(micros));
            let _ = write!(points, "{:.1},{level:.1} {:.1},{level:.1} ", x(below), x(fraction));
            below = fraction;
        }
        let dash = if curve.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
            points.trim_end(),
            curve.color
        );
        let legend_y = TOP + 10.0 + 22.0 * index as f64;
        let legend_x = LEFT + plot_width + 16.0;
        let _ = writeln!(
            out,
            r#"<line x1="{legend_x:.1}" y1="{legend_y:.1}" x2="{:.1}" y2="{legend_y:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            legend_x + 28.0,
            curve.color,
            legend_x + 34.0,
            legend_y + 4.0,
            escape(&curve.label)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_svg_has_one_line_per_curve_with_data() {
        let mut histogram = Histogram::default();
        for micros in [200, 300, 450, 5_000] {
            histogram.record(micros);
        }
        let empty = Histogram::default();
        let curves = [
            Curve { label: "delivery <palomar>".into(), histogram: &histogram, color: "#1f77b4", dashed: false },
            Curve { label: "nothing".into(), histogram: &empty, color: "#d62728", dashed: true },
        ];
        let svg = svg("10 clients & 1 room", &curves);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("10 clients &amp; 1 room") && svg.contains("delivery &lt;palomar&gt;"));
        assert!(svg.contains(">0.1 ms<") && svg.contains(">10 ms<"), "decades from 0.1 to 10 ms");
    }
}
