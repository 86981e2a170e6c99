//! The latency panel: p50, p95 and p99 over time, titled with the last window that had requests
//! while the run goes on, and with the whole run's once it is over (its last seconds are the post-load
//! window's, which says nothing of the load).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use stampede_loadgen::data::Window;
use stampede_loadgen::format::ms;

use crate::app::App;
use crate::ui::{Palette, YAxis, block, line_chart};

pub(in crate::ui) fn draw(f: &mut Frame, app: &App, area: Rect, p: &Palette) {
    let w = app.visible();
    let (when, shown) = if app.at_the_end() {
        ("whole run", Some(&app.totals))
    } else {
        ("now", w.iter().rev().find(|w| w.all.count > 0).map(|w| &w.all))
    };
    let title = format!(
        "Latency ({when}) p50 {} p95 {} p99 {}",
        ms(shown.and_then(|s| s.p50_ms)),
        ms(shown.and_then(|s| s.p95_ms)),
        ms(shown.and_then(|s| s.p99_ms))
    );
    line_chart(
        f,
        area,
        block(title, p),
        w,
        &[
            ("p50", p.fg(Color::Green), &|w: &Window| w.all.p50_ms),
            ("p95", p.fg(Color::Yellow), &|w: &Window| w.all.p95_ms),
            ("p99", p.fg(Color::Red), &|w: &Window| w.all.p99_ms),
        ],
        YAxis {
            unit: "ms",
            post_load: None,
        },
        p,
    );
}
