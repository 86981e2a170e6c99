//! Inline SVG line charts for the HTML report: no scripts, no external references, readable offline.
//! A gap in a series (a second a source did not measure) is a gap in the line, never a drop to 0.

use std::fmt::Write as _;

use super::html::escape;

/// Colours of the runs, in order; the first run is the one the report is about.
pub const PALETTE: [&str; 6] = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#57606a"];

pub struct Series {
    pub label: String,
    pub color: &'static str,
    pub dashed: bool,
    /// (seconds since the load started, value); `None` = not measured in that second.
    pub points: Vec<(f64, Option<f64>)>,
}

/// A horizontal reference line, e.g. a baseline's median.
pub struct Reference {
    pub label: String,
    pub value: f64,
}

pub struct Chart {
    pub title: String,
    pub unit: String,
    pub series: Vec<Series>,
    /// Shaded span on the time axis (the post-load window), with its caption.
    pub shade: Option<(f64, f64, String)>,
    pub reference: Option<Reference>,
}

const W: f64 = 760.0;
const H: f64 = 230.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 44.0;
/// The plot area's size inside the margins.
const PLOT_W: f64 = W - LEFT - RIGHT;
const PLOT_H: f64 = H - TOP - BOTTOM;

/// A round step that gives about `n` ticks over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    step * mag
}

fn tick_label(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}").trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

impl Chart {
    pub fn measured(&self) -> bool {
        self.series.iter().any(|s| s.points.iter().any(|(_, v)| v.is_some()))
    }

    /// The chart as an `<svg>` element (HTML5 inline SVG needs no namespace declaration).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        self.heading(&mut out);
        if !self.measured() {
            let _ = write!(
                out,
                r#"<text x="{}" y="{}" class="nm" text-anchor="middle">not measured</text></svg>"#,
                W / 2.0,
                H / 2.0
            );
            return out;
        }
        let scale = self.scale();
        if let Some((from, to, caption)) = &self.shade {
            scale.shade(&mut out, *from, *to, caption);
        }
        scale.y_grid(&mut out);
        scale.time_ticks(&mut out);
        axes(&mut out);
        if let Some(r) = &self.reference {
            scale.reference(&mut out, r);
        }
        for s in &self.series {
            scale.line(&mut out, s);
        }
        out.push_str("</svg>");
        out
    }

    /// The opening tag and the title with its unit.
    fn heading(&self, out: &mut String) {
        let _ = write!(
            out,
            r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{}">"#,
            escape(&self.title)
        );
        let _ = write!(
            out,
            r#"<text x="{LEFT}" y="16" class="title">{} <tspan class="unit">({})</tspan></text>"#,
            escape(&self.title),
            escape(&self.unit)
        );
    }

    /// Axes that hold every point, the shaded span and the reference line; y starts at 0.
    fn scale(&self) -> Scale {
        let t_max = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|(t, _)| *t))
            .chain(self.shade.iter().map(|(_, end, _)| *end))
            .fold(1.0f64, f64::max);
        let mut y_max = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().filter_map(|(_, v)| *v))
            .chain(self.reference.iter().map(|r| r.value))
            .fold(0.0f64, f64::max);
        if y_max <= 0.0 {
            y_max = 1.0;
        }
        let y_step = nice_step(y_max, 4.0);
        let y_top = (y_max / y_step).ceil() * y_step;
        Scale { t_max, y_step, y_top }
    }

    /// The chart with its legend under it (HTML, so long labels wrap instead of overlapping).
    pub fn figure(&self) -> String {
        let mut out = String::from("<figure>");
        out.push_str(&self.render());
        if self.measured() {
            self.legend(&mut out);
        }
        out.push_str("</figure>");
        out
    }

    /// A `<figcaption>` with a swatch and the label of each series.
    fn legend(&self, out: &mut String) {
        out.push_str("<figcaption>");
        for s in &self.series {
            let style = if s.dashed { "dashed" } else { "solid" };
            let _ = write!(
                out,
                r#"<span class="key"><span class="swatch" style="border-top: 3px {style} {}"></span>{}</span>"#,
                s.color,
                escape(&s.label)
            );
        }
        out.push_str("</figcaption>");
    }
}

/// Where values land in the plot area: time from 0 to `t_max`, values from 0 to `y_top` in steps of `y_step`.
struct Scale {
    t_max: f64,
    y_step: f64,
    y_top: f64,
}

impl Scale {
    fn x(&self, t: f64) -> f64 {
        LEFT + t / self.t_max * PLOT_W
    }

    fn y(&self, v: f64) -> f64 {
        TOP + PLOT_H - v / self.y_top * PLOT_H
    }

    /// The shaded span (the post-load window) with its caption at the top left.
    fn shade(&self, out: &mut String, from: f64, to: f64, caption: &str) {
        let _ = write!(
            out,
            r#"<rect class="shade" x="{:.1}" y="{TOP}" width="{:.1}" height="{PLOT_H}"/><text class="shade-label" x="{:.1}" y="{}">{}</text>"#,
            self.x(from),
            (self.x(to) - self.x(from)).max(0.0),
            self.x(from) + 4.0,
            TOP + 12.0,
            escape(caption)
        );
    }

    /// Horizontal grid lines and the y ticks, from 0 up to `y_top`.
    fn y_grid(&self, out: &mut String) {
        let mut v = 0.0;
        while v <= self.y_top + self.y_step / 2.0 {
            let _ = write!(
                out,
                r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                W - RIGHT,
                self.y(v),
                self.y(v),
                LEFT - 6.0,
                self.y(v) + 4.0,
                tick_label(v)
            );
            v += self.y_step;
        }
    }

    /// Time ticks under the plot, whole seconds at the least, and the axis caption.
    fn time_ticks(&self, out: &mut String) {
        let t_step = nice_step(self.t_max, 8.0).max(1.0);
        let mut t = 0.0;
        while t <= self.t_max + 1e-9 {
            let _ = write!(
                out,
                r#"<text class="tick" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                self.x(t),
                H - BOTTOM + 16.0,
                tick_label(t)
            );
            t += t_step;
        }
        let _ = write!(
            out,
            r#"<text class="tick" x="{:.1}" y="{}" text-anchor="end">seconds since the load started</text>"#,
            W - RIGHT,
            H - BOTTOM + 30.0
        );
    }

    /// A horizontal reference line across the plot, labelled at its right end.
    fn reference(&self, out: &mut String, r: &Reference) {
        let _ = write!(
            out,
            r#"<line class="reference" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            W - RIGHT,
            self.y(r.value),
            self.y(r.value),
            W - RIGHT - 2.0,
            self.y(r.value) - 4.0,
            escape(&r.label)
        );
    }

    /// A series as one path; a gap (not measured) starts a new subpath rather than dropping to 0.
    fn line(&self, out: &mut String, s: &Series) {
        let mut d = String::new();
        let mut pen_down = false;
        for (t, v) in &s.points {
            match v {
                Some(v) => {
                    let _ = write!(
                        d,
                        "{}{:.1},{:.1} ",
                        if pen_down { "L" } else { "M" },
                        self.x(*t),
                        self.y(*v)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = write!(
            out,
            r#"<path class="line" d="{}" stroke="{}"{dash}><title>{}</title></path>"#,
            d.trim_end(),
            s.color,
            escape(&s.label)
        );
    }
}

/// The y axis and the time axis along the plot's left and bottom edges.
fn axes(out: &mut String) {
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{:.1}"/><line class="axis" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/>"#,
        TOP + PLOT_H,
        W - RIGHT,
        TOP + PLOT_H,
        TOP + PLOT_H
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(points: Vec<(f64, Option<f64>)>) -> Chart {
        Chart {
            title: "RPS".into(),
            unit: "requests/s".into(),
            series: vec![Series {
                label: "a & b".into(),
                color: PALETTE[0],
                dashed: false,
                points,
            }],
            shade: Some((10.0, 15.0, "post-load".into())),
            reference: None,
        }
    }

    #[test]
    fn gaps_break_the_line_and_nothing_measured_says_so() {
        let svg = chart(vec![(1.0, Some(5.0)), (2.0, None), (3.0, Some(7.0))]).render();
        let d = svg.split(r#"d=""#).nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(d.matches('M').count(), 2, "the unmeasured second splits the line: {d}");
        assert!(svg.contains("a &amp; b"), "labels are escaped");
        assert!(svg.contains(r#"class="shade""#));
        let none = chart(vec![(1.0, None), (2.0, None)]).render();
        assert!(none.contains("not measured"));
        assert!(!none.contains("<path"));
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(100.0, 4.0), 50.0);
        assert_eq!(nice_step(7.0, 4.0), 2.0);
        assert_eq!(nice_step(0.3, 4.0), 0.1);
        assert_eq!(tick_label(20_000.0), "20k");
        assert_eq!(tick_label(0.5), "0.5");
    }
}
