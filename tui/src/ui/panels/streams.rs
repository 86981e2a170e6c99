//! The streams panel: client sessions open (HTTP+SSE and Streamable HTTP) and, when the target
//! reports it, server sessions active, with the server's session end reasons on a line under the
//! chart.

use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::widgets::Paragraph;
use stampede_loadgen::data::Window;

use crate::app::App;
use crate::ui::{Palette, Series, YAxis, block, line_chart};

pub(in crate::ui) fn draw(f: &mut Frame, app: &App, area: Rect, p: &Palette) {
    let w = app.visible();
    let server = w.iter().rev().find_map(|w| w.observed.mcp_sessions_active);
    let (sse, mcp) = w
        .last()
        .map_or((app.sse.open, app.mcp.open), |w| (w.sse_open, w.mcp_open));
    let client = match (sse, mcp, app.mcp.opened > 0) {
        (sse, _, false) => format!("SSE {sse}"),
        (0, mcp, true) => format!("MCP {mcp}"),
        (sse, mcp, true) => format!("SSE {sse} + MCP {mcp}"),
    };
    let m = &app.mcp;
    // Which era the MCP sessions spoke, when any spoke the stateless one.
    let eras = if m.stateless + m.fell_back > 0 {
        format!(
            " · eras: {} stateless, {} session ({} fell back){}",
            m.stateless,
            m.opened.saturating_sub(m.stateless),
            m.fell_back,
            if m.mrtr_rounds > 0 {
                format!(", {} input rounds", m.mrtr_rounds)
            } else {
                String::new()
            }
        )
    } else {
        String::new()
    };
    let title = format!(
        "Streams: client {client} open · server {}{eras}",
        server.map_or("not measured".to_owned(), |s| format!("{s:.0} active"))
    );
    let ends = w.last().map(|w| &w.observed.mcp_session_ends_total);
    let mut series: Vec<Series<'_>> = vec![("client open", p.fg(Color::Green), &|w: &Window| {
        Some((w.sse_open + w.mcp_open) as f64)
    })];
    if server.is_some() {
        series.push(("server active", p.fg(Color::Magenta), &|w: &Window| {
            w.observed.mcp_sessions_active
        }));
    }
    let [chart, reasons] = if area.height > 7 {
        Layout::vertical([Constraint::Min(4), Constraint::Length(1)]).areas(area)
    } else {
        [area, Rect::default()]
    };
    line_chart(
        f,
        chart,
        block(title, p),
        w,
        &series,
        YAxis {
            unit: "streams",
            post_load: None,
        },
        p,
    );
    if reasons.height > 0 {
        f.render_widget(Paragraph::new(end_reasons(ends)).style(p.dim()), reasons);
    }
}

/// The server's session end reasons in the latest window, those that happened at all.
fn end_reasons(ends: Option<&BTreeMap<String, f64>>) -> String {
    match ends {
        Some(e) if !e.is_empty() => {
            let parts: Vec<String> = e
                .iter()
                .filter(|(_, n)| **n > 0.0)
                .map(|(k, n)| format!("{k} {n:.0}"))
                .collect();
            format!(
                " ends: {}",
                if parts.is_empty() {
                    "none".into()
                } else {
                    parts.join(" · ")
                }
            )
        }
        _ => " server end reasons: not measured".into(),
    }
}
