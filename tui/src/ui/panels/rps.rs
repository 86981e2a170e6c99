//! The requests-per-second panel: the rate over time, titled with the latest and the mean over the
//! load (the post-load window has no load to average in).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use stampede_loadgen::data::{Phase, Window};

use crate::app::App;
use crate::ui::{Palette, YAxis, block, line_chart};

pub(in crate::ui) fn draw(f: &mut Frame, app: &App, area: Rect, p: &Palette) {
    let w = app.visible();
    let now = w.last().map_or(0.0, |w| w.all.rps);
    let loaded: Vec<f64> = w
        .iter()
        .filter(|w| w.phase != Phase::PostLoad)
        .map(|w| w.all.rps)
        .collect();
    let mean = if loaded.is_empty() {
        0.0
    } else {
        loaded.iter().sum::<f64>() / loaded.len() as f64
    };
    let title = format!("Requests/s {now:.0} now · {mean:.0} mean");
    line_chart(
        f,
        area,
        block(title, p),
        w,
        &[("rps", p.fg(Color::Green), &|w: &Window| Some(w.all.rps))],
        YAxis {
            unit: "/s",
            post_load: None,
        },
        p,
    );
}
