//! The target's resources panel: its open files and sockets in CLOSE_WAIT over time (what a leak looks
//! like: lines that do not come down after the load), its memory and threads now in the title.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use stampede_loadgen::data::Window;

use crate::app::App;
use crate::ui::{Palette, YAxis, block, line_chart, not_measured};

pub(in crate::ui) fn draw(f: &mut Frame, app: &App, area: Rect, p: &Palette) {
    let w = app.visible();
    let latest = |value: &dyn Fn(&Window) -> Option<f64>| w.iter().rev().find_map(value);
    let fds = |w: &Window| w.observed.target_fds.map(f64::from);
    let close_wait = |w: &Window| w.observed.tcp_close_wait.map(f64::from);
    if latest(&fds).is_none() && latest(&close_wait).is_none() {
        not_measured(
            f,
            area,
            block("Target resources — not measured".into(), p),
            "no local pid and no listening port on this machine",
            p,
        );
        return;
    }
    let mib = |w: &Window| w.observed.target_rss_bytes.map(|b| b as f64 / (1024.0 * 1024.0));
    let first_rss = w.iter().find_map(mib);
    let rss = match (first_rss, latest(&mib)) {
        (Some(a), Some(b)) => format!("RSS {a:.0}→{b:.0} MiB"),
        _ => "RSS not measured".to_owned(),
    };
    let threads = latest(&|w: &Window| w.observed.target_threads.map(f64::from))
        .map_or_else(|| "not measured".to_owned(), |t| format!("{t:.0}"));
    let title = format!("Target {rss} · threads {threads}");
    line_chart(
        f,
        area,
        block(title, p),
        w,
        &[
            ("open files", p.fg(Color::Cyan), &fds),
            ("CLOSE_WAIT", p.fg(Color::Red), &close_wait),
        ],
        YAxis {
            unit: "count",
            post_load: Some(p.fg(Color::Magenta).add_modifier(Modifier::DIM)),
        },
        p,
    );
}
