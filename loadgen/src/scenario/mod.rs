//! Scenarios: TOML files parsed into typed structs and validated before anything starts. Every
//! mistake is reported with the file, line, column and field path.

mod error;
mod overrides;
mod plan;
mod spec;

use std::path::Path;

pub use crate::actions::{Action, ActionPlan, OkStatuses};
pub use crate::lang::{Dur, DurRange, Template, Values, Var, format_duration, parse_duration};
pub use error::{ScenarioError, ScenarioErrors};
pub use overrides::Override;
pub use plan::{AuthPlan, LoadPlan, Scenario, Stage, TargetPlan, UpstreamPlan};
pub use spec::*;

use error::{Locator, line_col};

/// Read, parse, override and validate a scenario file.
pub fn load(path: &Path, overrides: &[Override]) -> Result<Scenario, ScenarioErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ScenarioErrors(vec![ScenarioError {
            file: file.clone(),
            line: None,
            column: None,
            field: String::new(),
            message: format!("cannot read: {e}"),
        }])
    })?;
    let stem = path
        .file_stem()
        .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
    parse(&file, &text, &stem, overrides)
}

/// Parse scenario `text` (named `file` in messages).
pub fn parse(file: &str, text: &str, default_name: &str, overrides: &[Override]) -> Result<Scenario, ScenarioErrors> {
    let at = |span: Option<std::ops::Range<usize>>, field: String, message: String| {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = line_col(text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ScenarioError {
            file: file.to_owned(),
            line,
            column,
            field,
            message,
        }
    };
    let from_file: ScenarioSpec =
        deserialize_text(text).map_err(|(span, field, message)| ScenarioErrors(vec![at(span, field, message)]))?;
    let spec = if overrides.is_empty() {
        from_file
    } else {
        overrides::apply(text, overrides).map_err(|(field, message)| {
            ScenarioErrors(vec![ScenarioError {
                file: file.to_owned(),
                line: None,
                column: None,
                field,
                message: format!("{message} (after command-line overrides)"),
            }])
        })?
    };
    let locator = Locator::new(text);
    plan::plan(spec, default_name).map_err(|problems| {
        ScenarioErrors(
            problems
                .into_iter()
                .map(|p| {
                    let overridden = overrides.iter().any(|o| p.field.starts_with(o.path.as_str()));
                    if overridden {
                        let message = format!("{} (set on the command line)", p.message);
                        at(None, p.field, message)
                    } else {
                        at(locator.span(&p.field), p.field, p.message)
                    }
                })
                .collect(),
        )
    })
}

/// Deserialize with the path of the failing field and the span of the mistake.
fn deserialize_text(text: &str) -> Result<ScenarioSpec, (Option<std::ops::Range<usize>>, String, String)> {
    let de = toml::Deserializer::parse(text).map_err(|e| (e.span(), String::new(), e.message().trim().to_owned()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let field = if field == "." { String::new() } else { field };
        (inner.span(), field, inner.message().trim().to_owned())
    })
}

#[cfg(test)]
mod tests;
