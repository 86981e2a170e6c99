//! Scenario mistakes, each with the file, line, column and field path where it stands.

use std::fmt;
use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    /// 1-based; `None` when the mistake came from the command line or has no place in the file.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Where in the scenario, e.g. `load.stages[1].duration`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: ", self.file)?,
            _ => write!(f, "{}: ", self.file)?,
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Every mistake found in one scenario; the run does not start while there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioErrors(pub Vec<ScenarioError>);

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioErrors {}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Finds where a field path stands in the source text.
pub struct Locator {
    doc: Option<toml_edit::Document<String>>,
}

impl Locator {
    pub fn new(text: &str) -> Locator {
        Locator {
            doc: toml_edit::Document::parse(text.to_owned()).ok(),
        }
    }

    /// The span of `path` (`a.b[2].c`), or of its nearest ancestor present in the file.
    pub fn span(&self, path: &str) -> Option<Range<usize>> {
        let doc = self.doc.as_ref()?;
        let mut item = doc.as_item();
        let mut best = None;
        for segment in segments(path) {
            let next = match segment {
                Segment::Key(k) => item.get(k),
                Segment::Index(i) => item.get(i),
            };
            match next {
                Some(n) => {
                    item = n;
                    if let Some(span) = n.span() {
                        best = Some(span);
                    }
                }
                None => break,
            }
        }
        best
    }
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(end) = rest.find(']') {
            if let Ok(i) = rest[1..end].parse() {
                out.push(Segment::Index(i));
            }
            rest = &rest[end + 1..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_fields_by_path() {
        let text = "name = \"x\"\n[load]\nusers = 5\n\n[[actions]]\nkind = \"http\"\n\n[[actions]]\nkind = \"rpc\"\nweight = 0\n";
        let loc = Locator::new(text);
        let span = loc.span("actions[1].weight").unwrap();
        assert_eq!(line_col(text, span.start), (10, 10));
        let span = loc.span("load.users").unwrap();
        assert_eq!(line_col(text, span.start).0, 3);
        // A missing field points at its table.
        let span = loc.span("actions[1].path").unwrap();
        assert_eq!(line_col(text, span.start).0, 8);
    }
}
