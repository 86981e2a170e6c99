//! The thresholds panel: the scenario's thresholds judged on the figures so far, one line each.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use stampede_loadgen::data::{Judged, Verdict};

use crate::app::App;
use crate::ui::{Palette, block};

pub(in crate::ui) fn draw(f: &mut Frame, app: &App, area: Rect, p: &Palette) {
    let (title, lines) = contents(app, p);
    f.render_widget(
        Paragraph::new(lines).block(block(title, p)).wrap(Wrap { trim: true }),
        area,
    );
}

/// The title (how many fail right now) and the lines; invalid thresholds are listed as errors instead.
fn contents<'a>(app: &App, p: &Palette) -> (String, Vec<Line<'a>>) {
    if app.thresholds.is_empty() {
        return ("Thresholds".into(), vec![Line::raw("none in this scenario")]);
    }
    match app.judge_thresholds() {
        Err(errors) => (
            "Thresholds — invalid".into(),
            errors.into_iter().map(|e| Line::raw(e.to_string())).collect(),
        ),
        Ok(judged) => {
            let failing = judged.iter().filter(|j| j.verdict == Verdict::Fail).count();
            let title = if failing > 0 {
                format!("Thresholds — {failing} failing now")
            } else {
                "Thresholds — holding".into()
            };
            (title, judged.iter().map(|j| judged_line(j, p)).collect())
        }
    }
}

/// One judged threshold: its verdict, scope, the threshold and the value it was judged on.
fn judged_line<'a>(j: &Judged, p: &Palette) -> Line<'a> {
    let (mark, style) = match j.verdict {
        Verdict::Pass => ("pass", p.fg(Color::Green)),
        Verdict::Fail => ("FAIL", p.fg(Color::Red).add_modifier(Modifier::BOLD)),
        Verdict::NotMeasured | Verdict::NoBaseline | Verdict::Stale => ("  - ", p.dim()),
    };
    let value = match (j.verdict, j.value) {
        (Verdict::NotMeasured, _) => "not measured".to_owned(),
        (Verdict::NoBaseline, _) => "needs a baseline".to_owned(),
        (_, Some(v)) => format!("now {v:.3}"),
        (_, None) => String::new(),
    };
    let scope = if j.scope == "all" {
        String::new()
    } else {
        format!("{}: ", j.scope)
    };
    Line::from(vec![
        Span::styled(format!("{mark} "), style),
        Span::raw(format!("{scope}{} ({value})", j.threshold)),
    ])
}
