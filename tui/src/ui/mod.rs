//! Drawing: a header and a grid of panels (two columns at 80 columns, three when there is room), or
//! one panel full size, or the help. Each panel's title carries its current figures, so the numbers
//! are readable even where a chart is only a few rows high. Not measured says so. Each panel is drawn
//! by its own module under `panels`; this one keeps the layout and what they share.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Clear, Dataset, GraphType, Paragraph, Wrap};

use crate::app::{App, Mode, Panel};
use stampede_loadgen::data::{Phase, Summary, Window};

mod panels;

struct Palette {
    on: bool,
}

impl Palette {
    fn fg(&self, c: Color) -> Style {
        if self.on {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    fn dim(&self) -> Style {
        if self.on {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }
    fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
}

pub fn draw(f: &mut Frame, app: &App) {
    let p = Palette { on: app.color };
    let header_lines = header(app, f.area().width, &p);
    let [header, body] =
        Layout::vertical([Constraint::Length(header_lines.len() as u16), Constraint::Min(0)]).areas(f.area());
    f.render_widget(Paragraph::new(header_lines), header);
    if let Some(panel) = app.focus {
        draw_panel(f, app, panel, body, &p);
    } else {
        let cols = if body.width >= 150 { 3 } else { 2 };
        let rows = Panel::ALL.len().div_ceil(cols);
        let row_areas = Layout::vertical(vec![Constraint::Ratio(1, rows as u32); rows]).split(body);
        for (r, row) in row_areas.iter().enumerate() {
            let cells = Layout::horizontal(vec![Constraint::Ratio(1, cols as u32); cols]).split(*row);
            for (c, cell) in cells.iter().enumerate() {
                if let Some(panel) = Panel::ALL.get(r * cols + c) {
                    draw_panel(f, app, *panel, *cell, &p);
                }
            }
        }
    }
    if app.help {
        draw_help(f, &p);
    }
}

/// The failure rate of `s` as a percentage (`Summary::failure_rate`: failed connects count; 0 when
/// nothing was attempted). The header and the failures panel show it for the totals and for the latest
/// window; one definition keeps them equal, and equal to the summary's.
fn failed_pct(s: &Summary) -> f64 {
    s.failure_rate().map_or(0.0, |r| r * 100.0)
}

/// The header: what runs and where it is, the totals, and a status line (or the keys). Two lines when
/// they fit the width, else the status gets a line of its own rather than being cut.
fn header<'a>(app: &App, width: u16, p: &Palette) -> Vec<Line<'a>> {
    let mode = match (app.mode, app.paused(), app.playing) {
        (Mode::Replay, _, true) => "REPLAY ▶".to_owned(),
        (Mode::Replay, _, false) => "REPLAY".to_owned(),
        (_, true, _) => "PAUSED".to_owned(),
        (Mode::Run, false, _) => "RUN".to_owned(),
        (Mode::Attach, false, _) => "ATTACHED".to_owned(),
    };
    let status = app
        .status
        .clone()
        .unwrap_or_else(|| "q quit · tab panels · +/- span · p pause · ? help".into());
    if !app.has_run() {
        // Nothing received yet (attach before the run, run before its first snapshot): no phase to show.
        return vec![
            Line::from(vec![
                Span::styled(format!(" {mode} "), p.bold()),
                Span::raw("waiting for a run"),
            ]),
            Line::from(Span::styled(format!(" {status}"), p.dim())),
        ];
    }
    let level = match app.visible().last() {
        Some(w) if w.users > 0 => format!("{} users", w.users),
        Some(w) if w.target > 0.0 => format!("{:.0}/s target", w.target),
        _ => String::new(),
    };
    let phase_style = if app.phase == Phase::PostLoad {
        p.fg(Color::Magenta)
    } else {
        p.fg(Color::Cyan)
    };
    let line1 = Line::from(vec![
        Span::styled(format!(" {mode} "), p.bold()),
        Span::raw(format!("{} → {}  ", app.scenario, app.target)),
        Span::styled(app.phase.label().to_owned(), phase_style.add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            "  {:.0}s elapsed, {:.0}s left  {level}  view {}",
            app.elapsed_s,
            app.remaining_s,
            app.span_label()
        )),
    ]);
    let t = &app.totals;
    let fail = failed_pct(t);
    let totals = format!(
        " total {} · ok {} · expected {} · failed {} ({fail:.2}%)  ",
        t.count, t.ok, t.expected, t.failed
    );
    let fits = |text: &str| totals.chars().count() + text.chars().count() <= usize::from(width);
    // The key hint shrinks to fit; a real status (where the results went, the feed's state) is never cut.
    let status = match (&app.status, fits(&status)) {
        (None, false) if fits("q quit · ? help") => "q quit · ? help".to_owned(),
        (None, false) => "? help".to_owned(),
        _ => status,
    };
    if fits(&status) {
        vec![
            line1,
            Line::from(vec![Span::raw(totals), Span::styled(status, p.dim())]),
        ]
    } else {
        vec![
            line1,
            Line::raw(totals),
            Line::from(Span::styled(format!(" {status}"), p.dim())),
        ]
    }
}

fn block<'a>(title: String, p: &Palette) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(p.dim())
        .title(Span::styled(title, p.bold()))
}

/// One panel into `area`; each panel is drawn by its own module (see `panels`).
fn draw_panel(f: &mut Frame, app: &App, panel: Panel, area: Rect, p: &Palette) {
    let draw = match panel {
        Panel::Rps => panels::rps::draw,
        Panel::Latency => panels::latency::draw,
        Panel::Failures => panels::failures::draw,
        Panel::Statuses => panels::statuses::draw,
        Panel::Blocked => panels::blocked::draw,
        Panel::Cpu => panels::cpu::draw,
        Panel::Resources => panels::resources::draw,
        Panel::Streams => panels::streams::draw,
        Panel::Thresholds => panels::thresholds::draw,
    };
    draw(f, app, area, p);
}

fn not_measured(f: &mut Frame, area: Rect, block: Block, why: &str, p: &Palette) {
    let text = vec![
        Line::styled("not measured", p.fg(Color::Yellow).add_modifier(Modifier::BOLD)),
        Line::styled(why.to_owned(), p.dim()),
    ];
    f.render_widget(Paragraph::new(text).block(block).wrap(Wrap { trim: true }), area);
}

type Series<'a> = (&'a str, Style, &'a dyn Fn(&Window) -> Option<f64>);

/// A line chart over the visible windows; `shade` marks the post-load window with bars behind it.
/// A chart's y axis: the unit its labels carry, and the style of the post-load window's shading (none:
/// not shaded).
struct YAxis<'a> {
    unit: &'a str,
    post_load: Option<Style>,
}

fn line_chart(
    f: &mut Frame,
    area: Rect,
    block: Block,
    windows: &[Window],
    series: &[Series<'_>],
    y: YAxis<'_>,
    p: &Palette,
) {
    let YAxis { unit, post_load: shade } = y;
    if windows.is_empty() || area.height < 3 {
        f.render_widget(Paragraph::new("waiting for data…").block(block), area);
        return;
    }
    let points: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|(_, _, value)| {
            windows
                .iter()
                .filter_map(|w| value(w).map(|v| (w.t as f64, v)))
                .collect()
        })
        .collect();
    let x0 = windows.first().map_or(0.0, |w| w.t as f64);
    let x1 = windows.last().map_or(1.0, |w| w.t as f64).max(x0 + 1.0);
    let ymax = points.iter().flatten().map(|(_, y)| *y).fold(0.0, f64::max).max(1.0) * 1.1;
    let shade_points: Vec<(f64, f64)> = windows
        .iter()
        .filter(|w| w.phase == Phase::PostLoad)
        .map(|w| (w.t as f64, ymax))
        .collect();
    let mut datasets = Vec::new();
    if let Some(style) = shade
        && !shade_points.is_empty()
    {
        datasets.push(
            Dataset::default()
                .name("post-load")
                .marker(Marker::Dot)
                .graph_type(GraphType::Bar)
                .style(style)
                .data(&shade_points),
        );
    }
    for ((name, style, _), pts) in series.iter().zip(&points) {
        datasets.push(
            Dataset::default()
                .name(*name)
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(*style)
                .data(pts),
        );
    }
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .bounds([x0, x1])
                .labels(vec![Span::raw(format!("{x0:.0}s")), Span::raw(format!("{x1:.0}s"))])
                .style(p.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, ymax])
                .labels(vec![
                    Span::raw(format!("0 {unit}")),
                    Span::raw(format!("{:.0} {unit}", ymax / 1.1)),
                ])
                .style(p.dim()),
        )
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)));
    f.render_widget(chart, area);
}

fn draw_help(f: &mut Frame, p: &Palette) {
    let area = f.area();
    let lines = vec![
        Line::raw("q, Ctrl-C   quit (run: stop the load, write results)"),
        Line::raw("tab         next panel full size; esc: all panels"),
        Line::raw("+ / -       shorter / longer time span"),
        Line::raw("p           pause the view (replay: play/stop)"),
        Line::raw("← →         replay: move one second"),
        Line::raw("PgUp PgDn   replay: move ten seconds"),
        Line::raw("Home End    replay: start / end"),
        Line::raw("?           this help"),
        Line::raw(""),
        Line::styled("any key closes the help", p.dim()),
    ];
    // Sized to its longest line (plus border and a space each side), so nothing is cut.
    let widest = lines.iter().map(Line::width).max().unwrap_or(0) as u16;
    let w = (widest + 4).min(area.width);
    let h = (lines.len() as u16 + 2).min(area.height);
    let rect = Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h);
    let lines: Vec<Line> = lines
        .into_iter()
        .map(|l| {
            let mut spans = vec![Span::raw(" ")];
            spans.extend(l.spans);
            Line::from(spans).style(l.style)
        })
        .collect();
    f.render_widget(Clear, rect);
    f.render_widget(Paragraph::new(lines).block(block("Help".into(), p)), rect);
}
