//! The scenario language's parts that both the scenario and each action kind use: templates,
//! durations, and a problem at a field path. A leaf: it imports nothing of ours, so an action kind can
//! plan itself without importing the scenario that lists it.

pub mod duration;
pub mod template;

pub use duration::{Dur, DurRange, DurationError, format_duration, parse_duration};
pub use template::{Context, Template, TemplateError, Values, Var, json_template};

/// A problem at a field path (`actions[2].path`); the scenario loader locates it in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

pub fn problem(field: impl Into<String>, message: impl std::fmt::Display) -> Problem {
    Problem {
        field: field.into(),
        message: message.to_string(),
    }
}
