//! The target CPU panel: the target's CPU over time, the post-load window shaded, and its mean there
//! (a target still busy after the load stopped is what this panel is for).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use stampede_loadgen::data::{Phase, Window};

use crate::app::App;
use crate::ui::{Palette, YAxis, block, line_chart, not_measured};

pub(in crate::ui) fn draw(f: &mut Frame, app: &App, area: Rect, p: &Palette) {
    let w = app.visible();
    let measured = w.iter().any(|w| w.observed.cpu_pct.is_some());
    if !measured {
        not_measured(
            f,
            area,
            block("Target CPU — not measured".into(), p),
            "no local pid and no process_cpu_seconds_total",
            p,
        );
        return;
    }
    let now = w.iter().rev().find_map(|w| w.observed.cpu_pct).unwrap_or(0.0);
    let post: Vec<f64> = w
        .iter()
        .filter(|w| w.phase == Phase::PostLoad)
        .filter_map(|w| w.observed.cpu_pct)
        .collect();
    let post_text = if post.is_empty() {
        String::new()
    } else {
        format!(" · post-load mean {:.1}%", post.iter().sum::<f64>() / post.len() as f64)
    };
    let title = format!("Target CPU {now:.0}% now{post_text}");
    line_chart(
        f,
        area,
        block(title, p),
        w,
        &[("cpu %", p.fg(Color::Cyan), &|w: &Window| w.observed.cpu_pct)],
        YAxis {
            unit: "% of a core",
            post_load: Some(p.fg(Color::Magenta).add_modifier(Modifier::DIM)),
        },
        p,
    );
}
