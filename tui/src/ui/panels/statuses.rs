//! The status codes panel: how many answers of each HTTP status, coloured by what they mean.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::app::App;
use crate::ui::{Palette, block};

pub(in crate::ui) fn draw(f: &mut Frame, app: &App, area: Rect, p: &Palette) {
    let mut spans = Vec::new();
    for (status, n) in &app.statuses {
        let style = match status {
            200..=299 => p.fg(Color::Green),
            409 => p.fg(Color::Yellow),
            _ => p.fg(Color::Red),
        };
        spans.push(Span::styled(format!("{status}×{n}  "), style));
    }
    let body = if spans.is_empty() {
        Line::raw("no answers yet")
    } else {
        Line::from(spans)
    };
    f.render_widget(
        Paragraph::new(body)
            .block(block("Status codes".into(), p))
            .wrap(Wrap { trim: true }),
        area,
    );
}
