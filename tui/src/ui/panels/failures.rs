//! The failures panel: the failure rate overall and now, failed against expected, and the kinds.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::app::App;
use crate::ui::{Palette, block, failed_pct};

pub(in crate::ui) fn draw(f: &mut Frame, app: &App, area: Rect, p: &Palette) {
    let t = &app.totals;
    let rate = failed_pct(t);
    let now = app.visible().last().map(|w| failed_pct(&w.all));
    let title = format!("Failures {rate:.2}% · now {:.2}%", now.unwrap_or(0.0));
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!("failed {}", t.failed),
            if t.failed > 0 {
                p.fg(Color::Red)
            } else {
                p.fg(Color::Green)
            },
        ),
        Span::raw("  "),
        Span::styled(format!("expected {} (not failures)", t.expected), p.fg(Color::Yellow)),
    ])];
    if app.failures.is_empty() {
        lines.push(Line::raw("no failures"));
    } else {
        let kinds: Vec<String> = app.failures.iter().map(|(k, n)| format!("{} {n}", k.label())).collect();
        lines.push(Line::raw(kinds.join(" · ")));
    }
    f.render_widget(
        Paragraph::new(lines).block(block(title, p)).wrap(Wrap { trim: true }),
        area,
    );
}
