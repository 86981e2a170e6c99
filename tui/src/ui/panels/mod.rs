//! One module per dashboard panel, each with `draw(f, app, area, p)`, dispatched by `ui::draw_panel`.

pub(super) mod blocked;
pub(super) mod cpu;
pub(super) mod failures;
pub(super) mod latency;
pub(super) mod resources;
pub(super) mod rps;
pub(super) mod statuses;
pub(super) mod streams;
pub(super) mod thresholds;
