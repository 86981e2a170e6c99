//! The blocked queries panel: PostgreSQL backends waiting on a lock over time — and, when PgBouncer is
//! watched, its clients waiting for a server connection beside them — and under the chart the latest
//! blocking chain when there is room for it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use stampede_loadgen::data::{ChainLink, Window};

use crate::app::App;
use crate::ui::{Palette, Series, YAxis, block, line_chart, not_measured};

pub(in crate::ui) fn draw(f: &mut Frame, app: &App, area: Rect, p: &Palette) {
    let w = app.visible();
    let measured = w.iter().any(|w| w.observed.blocked_queries.is_some());
    let pgbouncer = w.iter().rev().find_map(|w| w.observed.pgbouncer_waiting);
    if !measured && pgbouncer.is_none() {
        not_measured(
            f,
            area,
            block("Blocked queries — not measured".into(), p),
            "no PostgreSQL observer ([observe] postgres)",
            p,
        );
        return;
    }
    let now = w.iter().rev().find_map(|w| w.observed.blocked_queries).unwrap_or(0);
    let max = w.iter().filter_map(|w| w.observed.blocked_queries).max().unwrap_or(0);
    let mut title = if measured {
        format!("Blocked queries {now} now · max {max}")
    } else {
        "Blocked queries not measured".to_owned()
    };
    if let Some(waiting) = pgbouncer {
        title.push_str(&format!(" · PgBouncer waiting {waiting}"));
    }
    let mut series: Vec<Series<'_>> = Vec::new();
    if measured {
        series.push(("blocked", p.fg(Color::Red), &|w: &Window| {
            w.observed.blocked_queries.map(f64::from)
        }));
    }
    if pgbouncer.is_some() {
        series.push(("PgBouncer waiting", p.fg(Color::Yellow), &|w: &Window| {
            w.observed.pgbouncer_waiting.map(f64::from)
        }));
    }
    let chain = w
        .iter()
        .rev()
        .find(|w| !w.observed.blocking_chain.is_empty())
        .map(|w| &w.observed.blocking_chain);
    let [chart_area, chain_area] = if chain.is_some() && area.height > 8 {
        Layout::vertical([Constraint::Min(4), Constraint::Length(4)]).areas(area)
    } else {
        [area, Rect::default()]
    };
    line_chart(
        f,
        chart_area,
        block(title, p),
        w,
        &series,
        YAxis {
            unit: "queries",
            post_load: None,
        },
        p,
    );
    if let Some(chain) = chain
        && chain_area.height > 0
    {
        draw_chain(f, chain, chain_area, p);
    }
}

/// The first links of a blocking chain: the waiting query, then what blocks it.
fn draw_chain(f: &mut Frame, chain: &[ChainLink], area: Rect, p: &Palette) {
    let lines: Vec<Line> = chain
        .iter()
        .take(3)
        .enumerate()
        .map(|(i, l)| {
            Line::raw(format!(
                "{} {} {:.1}s {}",
                if i == 0 { "waits " } else { "blocks" },
                l.pid,
                l.age_s,
                l.query
            ))
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(block(format!("longest chain ({})", chain.len()), p)),
        area,
    );
}
