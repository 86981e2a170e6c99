//! The requests-per-second panel: the rate over time, titled with the latest and the mean.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use stampede_loadgen::data::Window;

use crate::app::App;
use crate::ui::{Palette, block, line_chart};

pub(in crate::ui) fn draw(f: &mut Frame, app: &App, area: Rect, p: &Palette) {
    let w = app.visible();
    let now = w.last().map_or(0.0, |w| w.all.rps);
    let mean = if w.is_empty() {
        0.0
    } else {
        w.iter().map(|w| w.all.rps).sum::<f64>() / w.len() as f64
    };
    let title = format!("Requests/s {now:.0} now · {mean:.0} mean");
    line_chart(
        f,
        area,
        block(title, p),
        w,
        &[("rps", p.fg(Color::Green), &|w: &Window| Some(w.all.rps))],
        None,
        p,
    );
}
