//! The page around the report: escaping, the inline style sheet and small table helpers. The page is
//! well-formed XML as well as HTML (tests parse it strictly) and references nothing outside itself.

use std::fmt::Write as _;

/// Escape text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; background: #fff;
       max-width: 1180px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de; }
.meta { color: #57606a; margin: 0 0 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; min-width: 150px; }
.card .v { font-size: 20px; font-weight: 600; } .card .k { color: #57606a; font-size: 12px; }
.bad { color: #d1242f; } .good { color: #1a7f37; } .nm { fill: #8c959f; color: #8c959f; font-style: italic; }
table { border-collapse: collapse; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: right; vertical-align: top; }
th:first-child, td:first-child, table.left th, table.left td { text-align: left; } th { background: #f6f8fa; }
td.q { text-align: left; font-family: ui-monospace, monospace; font-size: 12px; max-width: 640px; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 8px 18px; }
figure { margin: 0; } svg.chart { width: 100%; height: auto; }
figcaption { font-size: 12px; color: #57606a; margin: -6px 0 8px 56px; }
.key { display: inline-block; margin-right: 14px; white-space: nowrap; }
.swatch { display: inline-block; width: 18px; height: 0; vertical-align: middle; margin-right: 5px; }
svg .title { font-size: 13px; font-weight: 600; fill: #1f2328; } svg .unit { font-weight: 400; fill: #57606a; }
svg .tick, svg .legend, svg .shade-label { font-size: 11px; fill: #57606a; }
svg .grid { stroke: #eaeef2; } svg .axis { stroke: #8c959f; }
svg .line { fill: none; stroke-width: 1.8; stroke-linejoin: round; }
svg .shade { fill: #fff1e5; } svg .reference { stroke: #8c959f; stroke-dasharray: 2 3; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #d1242f; font-weight: 600; } .other { color: #57606a; }
"#;

/// The whole page around `body`.
pub fn page(title: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 4096);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        escape(title)
    );
    out
}

/// A table from a header row and body rows; cells are escaped here.
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", escape(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            super::escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
