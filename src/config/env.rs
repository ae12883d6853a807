//! `${VAR}` and `${VAR:-default}` interpolation of every string in a TOML document.

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// A reference to an environment variable: `${NAME}` or `${NAME:-default}`.
pub const REFERENCE_PATTERN: &str = r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}";

static REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(REFERENCE_PATTERN).expect("valid regex"));

/// Replaces references in every string of `value`, walking tables and arrays. Each unset variable
/// without a default is reported as `(key path, variable name)`.
pub fn interpolate(
    value: &mut toml::Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    missing: &mut Vec<(String, String)>,
) {
    match value {
        toml::Value::String(text) => {
            if !text.contains("${") {
                return;
            }
            let replaced = REFERENCE.replace_all(text, |caps: &Captures<'_>| {
                let name = &caps[1];
                match (lookup(name), caps.get(2)) {
                    (Some(found), _) => found,
                    (None, Some(default)) => default.as_str().to_string(),
                    (None, None) => {
                        missing.push((path.to_string(), name.to_string()));
                        String::new()
                    }
                }
            });
            *text = replaced.into_owned();
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{i}]"), lookup, missing);
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                let child = if path.is_empty() {
                    super::key(key).into_owned()
                } else {
                    format!("{path}.{}", super::key(key))
                };
                interpolate(item, &child, lookup, missing);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> (String, Vec<(String, String)>) {
        let mut value = toml::Value::String(input.to_string());
        let mut missing = Vec::new();
        let lookup = |name: &str| (name == "SET").then(|| "value".to_string());
        interpolate(&mut value, "k", &lookup, &mut missing);
        (value.as_str().unwrap().to_string(), missing)
    }

    #[test]
    fn cases() {
        let cases = [
            ("plain", "plain", 0),
            ("${SET}", "value", 0),
            ("a-${SET}-b", "a-value-b", 0),
            ("${UNSET:-fallback}", "fallback", 0),
            ("${UNSET:-}", "", 0),
            ("${SET:-fallback}", "value", 0),
            ("${UNSET}", "", 1),
            ("$SET", "$SET", 0),
        ];
        for (input, expected, errors) in cases {
            let (out, missing) = run(input);
            assert_eq!(out, expected, "{input}");
            assert_eq!(missing.len(), errors, "{input}");
        }
    }
}
