//! Command-line overrides of scenario fields: `--set load.users=200`, `--set target.token=…`, and the
//! shorthands `--users`, `--duration`, `--rate`, `--target`.

use std::str::FromStr;

use super::spec::ScenarioSpec;

/// One `path=value`. The value is read as TOML (`200`, `true`, `"10s"`, `[409]`), or as a plain string
/// when it is not valid TOML (`10s`, `http://…`).
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub path: String,
    pub value: toml::Value,
}

impl FromStr for Override {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (path, raw) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: write --set path=value, e.g. load.users=200"))?;
        let path = path.trim();
        if path.is_empty() {
            return Err(format!("{s:?}: the path before '=' is empty"));
        }
        if path.split('.').any(str::is_empty) {
            return Err(format!("{s:?}: the path {path:?} has an empty part, e.g. load.users"));
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
        Ok(Override {
            path: path.to_owned(),
            value,
        })
    }
}

impl Override {
    pub fn new(path: &str, value: toml::Value) -> Override {
        Override {
            path: path.to_owned(),
            value,
        }
    }
}

/// Apply the overrides to the scenario text and deserialize the result. `--set target.url=…` makes
/// the target that URL (a spawned gateway is replaced, not added to).
pub fn apply(text: &str, overrides: &[Override]) -> Result<ScenarioSpec, (String, String)> {
    let mut root: toml::Table = toml::from_str(text).map_err(|e| (String::new(), e.message().to_owned()))?;
    for o in overrides {
        if o.path == "target.url"
            && let Some(toml::Value::Table(target)) = root.get_mut("target")
        {
            for spawn_only in ["spawn", "profile", "env", "database_url"] {
                target.remove(spawn_only);
            }
        }
        set(&mut root, &o.path, o.value.clone()).map_err(|e| (o.path.clone(), e))?;
    }
    serde_path_to_error::deserialize(toml::Value::Table(root)).map_err(|e| {
        let field = e.path().to_string();
        (field, e.into_inner().message().trim().to_owned())
    })
}

fn set(root: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), String> {
    let mut keys: Vec<(&str, Option<usize>)> = Vec::new();
    for part in path.split('.') {
        match part.split_once('[') {
            Some((key, idx)) => {
                let i = idx
                    .strip_suffix(']')
                    .and_then(|i| i.parse().ok())
                    .ok_or_else(|| format!("bad index in {part:?}"))?;
                keys.push((key, Some(i)));
            }
            None => keys.push((part, None)),
        }
    }
    let (last, parents) = keys.split_last().expect("a path has one key at least");
    let mut table = root;
    for (key, index) in parents {
        let entry = table
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let entry = match index {
            Some(i) => entry
                .as_array_mut()
                .and_then(|a| a.get_mut(*i))
                .ok_or_else(|| format!("{key}[{i}] does not exist"))?,
            None => entry,
        };
        table = entry.as_table_mut().ok_or_else(|| format!("{key} is not a table"))?;
    }
    match last.1 {
        Some(i) => {
            let array = table
                .get_mut(last.0)
                .and_then(|v| v.as_array_mut())
                .ok_or_else(|| format!("{} is not an array", last.0))?;
            let slot = array
                .get_mut(i)
                .ok_or_else(|| format!("{}[{i}] does not exist", last.0))?;
            *slot = value;
        }
        None => {
            table.insert(last.0.to_owned(), value);
        }
    }
    Ok(())
}
