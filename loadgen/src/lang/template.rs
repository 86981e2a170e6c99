//! Path and body templates: `{tool_id}` and friends, filled per request from the ids setup provides.
//! Parsed once at validation; rendering appends to a caller's buffer.

use std::fmt::Write as _;

/// A value a template can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Var {
    GatewayId,
    ToolId,
    ServerId,
    PromptId,
    ResourceId,
    ToolName,
    PromptName,
    ResourceUri,
    /// `true` or `false`, at random.
    Bool,
    /// 16 hex characters, different at every use (a name for a create that must not collide).
    Unique,
    /// The run's upstream MCP server (`http://127.0.0.1:PORT`).
    UpstreamUrl,
}

impl Var {
    pub const ALL: [Var; 11] = [
        Var::GatewayId,
        Var::ToolId,
        Var::ServerId,
        Var::PromptId,
        Var::ResourceId,
        Var::ToolName,
        Var::PromptName,
        Var::ResourceUri,
        Var::Bool,
        Var::Unique,
        Var::UpstreamUrl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Var::GatewayId => "gateway_id",
            Var::ToolId => "tool_id",
            Var::ServerId => "server_id",
            Var::PromptId => "prompt_id",
            Var::ResourceId => "resource_id",
            Var::ToolName => "tool_name",
            Var::PromptName => "prompt_name",
            Var::ResourceUri => "resource_uri",
            Var::Bool => "bool",
            Var::Unique => "unique",
            Var::UpstreamUrl => "upstream_url",
        }
    }

    fn from_name(name: &str) -> Option<Var> {
        Var::ALL.into_iter().find(|v| v.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(Var),
}

/// Where a template's values go: into a URL (percent-encoded) or into a JSON string (escaped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Url,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    context: Context,
}

/// Supplies the value of a variable for one request.
pub trait Values {
    fn value(&mut self, var: Var) -> &str;
}

/// A template that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed '{{' in {0:?}")]
    Unclosed(String),
    #[error("unknown template variable {{{name}}}; known: {known}")]
    UnknownVariable { name: String, known: String },
}

impl Template {
    /// Parse `text`; `{name}` must name a known variable. `{{` and `}}` are literal braces.
    pub fn parse(text: &str, context: Context) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let rest = &text[i + 1..];
                    let end = rest.find('}').ok_or_else(|| TemplateError::Unclosed(text.to_owned()))?;
                    let name = &rest[..end];
                    let var = Var::from_name(name).ok_or_else(|| {
                        let known: Vec<&str> = Var::ALL.iter().map(|v| v.name()).collect();
                        TemplateError::UnknownVariable {
                            name: name.to_owned(),
                            known: known.join(", "),
                        }
                    })?;
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(var));
                    for _ in 0..=end {
                        chars.next();
                    }
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template { parts, context })
    }

    pub fn vars(&self) -> impl Iterator<Item = Var> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(*v),
            Part::Lit(_) => None,
        })
    }

    /// The text when the template has no variables.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Append the rendered template to `out`.
    pub fn render_into(&self, out: &mut String, values: &mut impl Values) {
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var(v) => {
                    let value = values.value(*v);
                    match self.context {
                        Context::Url => percent_encode_into(out, value),
                        Context::Json => json_escape_into(out, value),
                    }
                }
            }
        }
    }
}

/// A template of a JSON document: variables may stand inside its strings (`"{tool_name}"`); every
/// other brace is literal.
pub fn json_template(value: &serde_json::Value) -> Result<Template, TemplateError> {
    let mut source = String::new();
    write_json_source(&mut source, value);
    Template::parse(&source, Context::Json)
}

fn write_json_source(out: &mut String, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            out.push_str("{{");
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string_source(out, k);
                out.push(':');
                write_json_source(out, v);
            }
            out.push_str("}}");
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_source(out, v);
            }
            out.push(']');
        }
        Value::String(s) => write_json_string_source(out, s),
        other => out.push_str(&other.to_string()),
    }
}

/// A JSON string literal whose `{known_var}` stay variables and whose other braces are doubled.
fn write_json_string_source(out: &mut String, s: &str) {
    let escaped = serde_json::to_string(s).expect("a string serializes");
    let mut rest = escaped.as_str();
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let var_len = tail[1..]
            .find('}')
            .filter(|&end| tail.starts_with('{') && Var::from_name(&tail[1..1 + end]).is_some())
            .map(|end| end + 2);
        match var_len {
            Some(n) => {
                out.push_str(&tail[..n]);
                rest = &tail[n..];
            }
            None => {
                out.push_str(if tail.starts_with('{') { "{{" } else { "}}" });
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
}

fn percent_encode_into(out: &mut String, value: &str) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn json_escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Values for Fixed {
        fn value(&mut self, var: Var) -> &str {
            match var {
                Var::ToolId => "abc",
                Var::Bool => "true",
                Var::ToolName => "a \"b\"/c",
                _ => "x",
            }
        }
    }

    #[test]
    fn renders_vars_in_their_context() {
        let t = Template::parse("/tools/{tool_id}/state?activate={bool}&n={tool_name}", Context::Url).unwrap();
        let mut out = String::new();
        t.render_into(&mut out, &mut Fixed);
        assert_eq!(out, "/tools/abc/state?activate=true&n=a%20%22b%22%2Fc");
        assert_eq!(t.vars().collect::<Vec<_>>(), [Var::ToolId, Var::Bool, Var::ToolName]);
        let t = Template::parse(r#"{{"name":"{tool_name}"}}"#, Context::Json).unwrap();
        let mut out = String::new();
        t.render_into(&mut out, &mut Fixed);
        assert_eq!(out, r#"{"name":"a \"b\"/c"}"#);
    }

    #[test]
    fn json_bodies_template_their_strings_only() {
        let body = serde_json::json!({"tool": {"name": "{tool_name}", "note": "{not a var}", "n": 3}});
        let t = json_template(&body).unwrap();
        let mut out = String::new();
        t.render_into(&mut out, &mut Fixed);
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back["tool"]["name"], "a \"b\"/c");
        assert_eq!(back["tool"]["note"], "{not a var}");
        assert_eq!(back["tool"]["n"], 3);
        assert_eq!(
            json_template(&serde_json::json!({"a": 1})).unwrap().as_literal(),
            Some(r#"{"a":1}"#)
        );
    }

    #[test]
    fn unknown_and_unclosed_variables_are_errors() {
        let e = Template::parse("/tools/{tool}", Context::Url).unwrap_err();
        assert!(e.to_string().contains("unknown template variable {tool}"), "{e}");
        assert_eq!(
            Template::parse("/tools/{tool_id", Context::Url).unwrap_err(),
            TemplateError::Unclosed("/tools/{tool_id".to_owned())
        );
        assert_eq!(
            Template::parse("/health", Context::Url).unwrap().as_literal(),
            Some("/health")
        );
    }
}
