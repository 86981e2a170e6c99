//! `stampede run SCENARIO --matrix protocol=A,B,… -o FILE`: the scenario run once per protocol
//! version with every `mcp` action speaking it, one results file per version (`FILE` with the
//! version before its extension), then the runs side by side — what each era of MCP costs the
//! target: requests/s, p99, target CPU per request, streams held, post-load CPU.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use protocol::Version;

use crate::scenario::Override;

/// The versions a matrix runs, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    pub versions: Vec<Version>,
}

impl FromStr for Matrix {
    type Err = String;

    fn from_str(text: &str) -> Result<Matrix, String> {
        let all = || Version::ALL.map(Version::as_str).join(",");
        let Some(list) = text.strip_prefix("protocol=") else {
            return Err(format!("{text:?}: write protocol=VERSION,…, e.g. protocol={}", all()));
        };
        let versions = list
            .split(',')
            .map(|v| Version::parse(v.trim()).ok_or_else(|| format!("{v:?} is not a protocol version ({})", all())))
            .collect::<Result<Vec<_>, _>>()?;
        if versions.len() < 2 {
            return Err(format!("{text:?}: a matrix compares two versions or more"));
        }
        Ok(Matrix { versions })
    }
}

impl Matrix {
    /// What makes every `mcp` action of the scenario in `text` speak `version`.
    pub fn overrides(text: &str, version: Version) -> Result<Vec<Override>, String> {
        let root: toml::Table = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let actions = root.get("actions").and_then(toml::Value::as_array);
        let overrides: Vec<Override> = actions
            .into_iter()
            .flatten()
            .enumerate()
            .filter(|(_, a)| a.get("kind").and_then(toml::Value::as_str) == Some("mcp"))
            .map(|(i, _)| {
                Override::new(
                    &format!("actions[{i}].protocol"),
                    toml::Value::String(version.as_str().to_owned()),
                )
            })
            .collect();
        if overrides.is_empty() {
            return Err("has no kind = \"mcp\" action for --matrix protocol to set".to_owned());
        }
        Ok(overrides)
    }

    /// The results file of `version`'s run: `out` with the version before its extension.
    pub fn out_path(out: &Path, version: Version) -> PathBuf {
        let stem = out
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let ext = out
            .extension()
            .map_or_else(|| "json".to_owned(), |e| e.to_string_lossy().into_owned());
        out.with_file_name(format!("{stem}.{version}.{ext}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matrix_names_two_versions_or_more_and_sets_every_mcp_action() {
        let m: Matrix = "protocol=2025-03-26,2026-07-28".parse().unwrap();
        assert_eq!(m.versions, [Version::V2025_03_26, Version::V2026_07_28]);
        assert!("protocol=2026-07-28".parse::<Matrix>().is_err());
        assert!(
            "protocol=2025-03-26,1999-01-01"
                .parse::<Matrix>()
                .unwrap_err()
                .contains("1999-01-01")
        );
        assert!("era=x".parse::<Matrix>().is_err());
        let text = "[[actions]]\nkind = \"http\"\n[[actions]]\nkind = \"mcp\"\n";
        let o = Matrix::overrides(text, Version::V2026_07_28).unwrap();
        assert_eq!(
            o,
            [Override::new(
                "actions[1].protocol",
                toml::Value::String("2026-07-28".into())
            )]
        );
        assert!(Matrix::overrides("[[actions]]\nkind = \"http\"\n", Version::V2026_07_28).is_err());
        assert_eq!(
            Matrix::out_path(Path::new("out/m.json"), Version::V2025_06_18),
            Path::new("out/m.2025-06-18.json")
        );
    }
}
