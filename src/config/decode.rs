//! Raw TOML tables → the serde structs of `raw.rs`, with every bad key reported at its own key
//! path and in words a TOML writer knows (`expected a non-negative integer`, not `expected usize`).

use std::collections::BTreeSet;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use super::{Diagnostic, Diagnostics};

/// What [`decode`] made of a table.
pub(crate) struct Decoded<T> {
    /// The value built from the keys that were fine; `None` when even that was impossible (a
    /// required key missing or bad, or the value not a table at all).
    pub value: Option<T>,
    /// The keys (first segment of each bad path) that were reported and left out.
    pub bad: BTreeSet<String>,
}

/// Deserializes `value`, reporting every problem under `path` (the key path of `value` in its
/// file). A key that fails is reported, removed, and the rest decoded again, so one bad key hides
/// neither the problems of the others nor their values.
pub(crate) fn decode<T: DeserializeOwned>(
    mut value: toml::Value,
    file: &Path,
    path: &str,
    diags: &mut Diagnostics,
) -> Decoded<T> {
    let mut bad = BTreeSet::new();
    // Full relative paths removed so far: a later "missing field" for one of them is the same
    // problem again, not a new one.
    let mut removed: BTreeSet<String> = BTreeSet::new();
    loop {
        let error = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(parsed) => {
                return Decoded {
                    value: Some(parsed),
                    bad,
                };
            }
            Err(error) => error,
        };
        let segments: Vec<&Segment> = error.path().iter().collect();
        let message = error.inner().message().trim().to_string();
        if let Some(missing) = missing_key(&message) {
            let relative = join(&relative_path(&segments), missing);
            if !removed.contains(&relative) {
                diags.push(Diagnostic::new(
                    file,
                    join(path, &relative),
                    format!("missing required key `{missing}`"),
                ));
            }
            return Decoded { value: None, bad };
        }
        let relative = relative_path(&segments);
        diags.push(Diagnostic::new(
            file,
            join(path, &relative),
            humanize(&message),
        ));
        match remove_key(&mut value, &segments) {
            Some(key_path) => {
                if let Some(Segment::Map { key }) = segments.first() {
                    bad.insert(key.clone());
                }
                removed.insert(key_path);
            }
            None => return Decoded { value: None, bad },
        }
    }
}

/// `a.b[0].c` for the segments of a serde path.
fn relative_path(segments: &[&Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&super::key(key));
            }
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// `base.rest`, either side possibly empty.
pub(crate) fn join(base: &str, rest: &str) -> String {
    match (base.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (false, true) => base.to_string(),
        (false, false) if rest.starts_with('[') => format!("{base}{rest}"),
        (false, false) => format!("{base}.{rest}"),
    }
}

/// Removes the innermost table key on the path of an error (the whole array for an error inside
/// one), returning that key's path; `None` when the error is about `value` itself.
fn remove_key(value: &mut toml::Value, segments: &[&Segment]) -> Option<String> {
    let keys: Vec<&str> = segments
        .iter()
        .map_while(|segment| match segment {
            Segment::Map { key } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    let (last, parents) = keys.split_last()?;
    let mut table = value.as_table_mut()?;
    for key in parents {
        table = table.get_mut(*key)?.as_table_mut()?;
    }
    table.remove(*last)?;
    Some(
        keys.iter()
            .map(|k| super::key(k))
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// The key named by serde's `missing field `x``.
fn missing_key(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
}

/// serde's wording, in TOML's terms: `invalid type: string "long", expected usize` becomes
/// `expected a non-negative integer, found the string "long"`; `unknown field` becomes
/// `unknown key`. Messages of other shapes pass unchanged.
pub(crate) fn humanize(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((found, expected)) = rest.rsplit_once(", expected ")
        {
            return format!(
                "expected {}, found {}",
                expected_words(expected),
                found_words(found)
            );
        }
    }
    if let Some(rest) = message.strip_prefix("invalid length ")
        && let Some((length, expected)) = rest.rsplit_once(", expected ")
    {
        return format!(
            "expected {}, found {length} items",
            expected_words(expected)
        );
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return match rest.split_once(", ") {
            Some((key, "there are no fields")) => format!("unknown key {key}"),
            Some((key, expected)) => format!("unknown key {key} ({expected})"),
            None => format!("unknown key {rest}"),
        };
    }
    message.to_string()
}

/// What serde's visitors expect, as a TOML writer would say it.
fn expected_words(expected: &str) -> String {
    let words = match expected {
        "u8" => "an integer from 0 to 255",
        "u16" => "an integer from 0 to 65535",
        "u32" => "an integer from 0 to 4294967295",
        "u64" | "u128" | "usize" => "a non-negative integer",
        "i8" => "an integer from -128 to 127",
        "i16" => "an integer from -32768 to 32767",
        "i32" => "an integer from -2147483648 to 2147483647",
        "i64" | "i128" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a string" | "a borrowed string" | "a string or bytes" => "a string",
        "a character" => "a single character",
        "a sequence" => "an array",
        "a map" => "a table",
        "option" => "a value",
        "unit" => "no value",
        other if other.starts_with("struct ") => "a table",
        other => return other.to_string(),
    };
    words.to_string()
}

/// serde's description of the value that was found, in TOML's terms.
fn found_words(found: &str) -> String {
    let unquote = |s: &str| s.trim_matches('`').to_string();
    if let Some(text) = found.strip_prefix("string ") {
        return format!("the string {text}");
    }
    if let Some(n) = found.strip_prefix("integer ") {
        return format!("the integer {}", unquote(n));
    }
    if let Some(x) = found.strip_prefix("floating point ") {
        return format!("the number {}", unquote(x));
    }
    if let Some(b) = found.strip_prefix("boolean ") {
        return unquote(b);
    }
    match found {
        "map" => "a table".into(),
        "sequence" => "an array".into(),
        "unit value" => "no value".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::config::raw::{RawField, RawPassword, RawServer};

    /// The diagnostics of decoding `text` as a `T` found at `at`, as `path: message` lines.
    fn problems<T: DeserializeOwned>(text: &str, at: &str) -> Vec<String> {
        let value: toml::Value = toml::from_str(text).unwrap();
        let mut diags = Diagnostics::default();
        let _ = decode::<T>(value, Path::new("lucent.toml"), at, &mut diags);
        diags
            .0
            .iter()
            .map(|d| format!("{}: {}", d.path, d.message))
            .collect()
    }

    #[test]
    fn type_errors_are_located_and_worded_for_toml() {
        let f = "collections.posts.fields.title";
        let cases: &[(&str, &[String])] = &[
            (
                "type = 'string'\nmax_length = 'long'",
                &[format!(
                    "{f}.max_length: expected a non-negative integer, found the string \"long\""
                )],
            ),
            (
                "type = 'string'\nmax_length = -1",
                &[format!(
                    "{f}.max_length: expected a non-negative integer, found the integer -1"
                )],
            ),
            (
                "type = 'string'\nmin_length = 1.5\nmax_length = true",
                &[
                    format!(
                        "{f}.min_length: expected a non-negative integer, found the number 1.5"
                    ),
                    format!("{f}.max_length: expected a non-negative integer, found true"),
                ],
            ),
            (
                "type = 'integer'\nmin = 'x'\nrequired = 1",
                &[
                    format!("{f}.min: expected a number, found the string \"x\""),
                    format!("{f}.required: expected true or false, found the integer 1"),
                ],
            ),
            (
                "type = 'select'\noptions = 'a'",
                &[format!(
                    "{f}.options: expected an array, found the string \"a\""
                )],
            ),
            (
                "type = 'select'\noptions = ['a', 2]",
                &[format!(
                    "{f}.options[1]: expected a string, found the integer 2"
                )],
            ),
            (
                "type = 'string'\naccess = { read = 5, rd = 'x' }",
                &[
                    format!("{f}.access.read: expected a string, found the integer 5"),
                    format!(
                        "{f}.access.rd: unknown key `rd` (expected one of `read`, `create`, `update`)"
                    ),
                ],
            ),
            (
                "type = 'string'\naccess = 3",
                &[format!("{f}.access: expected a table, found the integer 3")],
            ),
            (
                "type = 'string'\nlabel = { a = 1 }\npattern = [1]",
                &[
                    format!("{f}.label: expected a string, found a table"),
                    format!("{f}.pattern: expected a string, found an array"),
                ],
            ),
            (
                "max_length = 3",
                &[format!("{f}.type: missing required key `type`")],
            ),
            // A bad `type` is reported once, not again as missing.
            (
                "type = 5\nmax_length = 'x'",
                &[
                    format!("{f}.type: expected a string, found the integer 5"),
                    format!(
                        "{f}.max_length: expected a non-negative integer, found the string \"x\""
                    ),
                ],
            ),
        ];
        for (text, expected) in cases {
            let mut got = problems::<RawField>(text, f);
            let mut want = expected.to_vec();
            got.sort();
            want.sort();
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn every_raw_type_is_worded_for_toml() {
        assert_eq!(
            problems::<RawServer>("port = 70000\nmax_limit = -2\nhost = 1", "server"),
            [
                "server.port: expected an integer from 0 to 65535, found the integer 70000",
                "server.max_limit: expected an integer from 0 to 4294967295, found the integer -2",
                "server.host: expected a string, found the integer 1",
            ]
        );
        assert_eq!(
            problems::<RawPassword>("reject_common = 'yes'", "auth.password"),
            ["auth.password.reject_common: expected true or false, found the string \"yes\""]
        );
        // The list of keys grows with the config; what matters is the wording and that it lists.
        let unknown = &problems::<RawServer>("prt = 1", "server")[0];
        assert!(
            unknown.starts_with("server.prt: unknown key `prt` (expected one of `host`, `port`,"),
            "{unknown}"
        );
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Every {
            a: Option<u8>,
            b: Option<i64>,
            c: Option<i32>,
            d: Option<char>,
            e: Option<f32>,
            f: Option<Vec<u16>>,
        }
        let got = problems::<Every>(
            "a = 300\nb = 'x'\nc = 3000000000\nd = 'ab'\ne = []\nf = [1, 'x']",
            "t",
        );
        assert_eq!(
            got,
            [
                "t.a: expected an integer from 0 to 255, found the integer 300",
                "t.b: expected an integer, found the string \"x\"",
                "t.c: expected an integer from -2147483648 to 2147483647, found the integer 3000000000",
                "t.d: expected a single character, found the string \"ab\"",
                "t.e: expected a number, found an array",
                "t.f[1]: expected an integer from 0 to 65535, found the string \"x\"",
            ]
        );
        assert!(
            got.iter()
                .chain(&problems::<RawServer>("port = 'x'", "server"))
                .all(|line| {
                    ![
                        "usize",
                        "u16",
                        "u32",
                        "i64",
                        "f64",
                        "a sequence",
                        "a map",
                        "struct ",
                    ]
                    .iter()
                    .any(|serde_word| line.contains(serde_word))
                })
        );
    }

    #[test]
    fn good_keys_survive_bad_ones() {
        let value: toml::Value = toml::from_str("port = 'x'\nhost = '0.0.0.0'\nprt = 2").unwrap();
        let mut diags = Diagnostics::default();
        let decoded = decode::<RawServer>(value, Path::new("f"), "server", &mut diags);
        let server = decoded.value.expect("the good keys");
        assert_eq!(server.host.as_deref(), Some("0.0.0.0"));
        assert_eq!(server.port, None);
        assert_eq!(diags.0.len(), 2);
        assert_eq!(
            decoded.bad,
            BTreeSet::from(["port".to_string(), "prt".to_string()])
        );
    }

    #[test]
    fn a_value_that_is_not_a_table_is_one_problem() {
        assert_eq!(
            problems::<RawServer>("x = 5", "server").len(),
            1,
            "an unknown key"
        );
        let mut diags = Diagnostics::default();
        let decoded = decode::<RawServer>(
            toml::Value::Integer(5),
            Path::new("f"),
            "server",
            &mut diags,
        );
        assert!(decoded.value.is_none());
        assert_eq!(
            diags.0[0].to_string(),
            "f: server: expected a table, found the integer 5"
        );
    }
}
