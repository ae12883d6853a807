//! The JSON Schema (2020-12) of `lucent.toml` and of a collection file, generated from the raw
//! types the loader deserializes (`raw.rs`, with `schemars`), so the two cannot drift: a key the
//! loader takes is a key the schema describes, with the doc comment of its field as description.
//!
//! What serde types cannot say is added here from the tables the loader itself reads: the names
//! of field types, environments, transports and `on_delete` values; which field options apply to
//! which types; what a duration or a size looks like (patterns, tested against the parsers).
//! The schema never refuses what the loader accepts (a `${VAR}` reference is accepted wherever
//! a value is checked by pattern or name, since it is replaced before checking); it cannot see
//! everything the loader refuses (a predicate that does not compile, a relation to an unknown
//! collection, a `default` outside `options`): `lucent check` remains the full check.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value as Json, json};

use super::env::REFERENCE_PATTERN;
use super::{ENVS, TRANSPORTS};
use crate::schema::{FieldKind, ON_DELETE, RESERVED_SLUGS, SLUG_PATTERN};

/// `humantime`'s durations (`config::parse_duration`): numbers, each with a unit, optionally
/// separated by spaces: `15m`, `1h 30m`, `1.5h`, `7d`; or a bare `0`.
pub const DURATION_PATTERN: &str = concat!(
    r"^\s*0\s*$|^\s*(?:[0-9][0-9\s]*(?:\.[0-9\s]*[0-9][0-9\s]*)?",
    r"(?:nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s",
    r"|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w",
    r"|months|month|M|years|year|yrs|yr|y)\s*)+$",
);

/// `bytesize`'s sizes (`server.body_limit`): a number of bytes, or a number and a unit, any case:
/// `1MiB`, `512 KiB`, `2MB`, `1.5 mb`.
pub const SIZE_PATTERN: &str =
    r"^(?:\+?[0-9]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)\s*(?:[bB]|[kKmMgGtTpPeE][iI]?[bB]?))$";

/// A webhook event pattern (`config::EventPattern`): a slug, a dot, an action or `*`.
pub const EVENT_PATTERN: &str = r"^[a-z][a-z0-9_-]{0,62}\.(?:create|update|delete|\*)$";

/// A `whsec_` secret: base64, padded or not (`config::WebhookSecret`).
pub const SECRET_PATTERN: &str = r"^whsec_[A-Za-z0-9+/]+={0,2}$";

/// The string types of field values: `min_length`, `max_length` and `pattern` apply to them
/// (`FieldKind::is_textual`).
const TEXTUAL: &[&str] = &["string", "text", "email", "select", "relation"];

/// Options that apply to some field types only: the loader refuses them on the others.
const TYPE_OPTIONS: &[(&[&str], &[&str])] = &[
    (&["options"], &["select"]),
    (&["min", "max"], &["integer", "number"]),
    (&["min_length", "max_length", "pattern"], TEXTUAL),
    (&["to", "on_delete", "many", "max_items"], &["relation"]),
];

/// Options a to-many relation (`many = true`) does not take: it has no column to make unique or
/// index, no text to measure, and no default list. `max_items` needs `many = true`.
const NOT_WITH_MANY: &[&str] = &[
    "unique",
    "index",
    "default",
    "min_length",
    "max_length",
    "pattern",
];

/// Options a field type needs.
const REQUIRED_OPTIONS: &[(&str, &str)] = &[("select", "options"), ("relation", "to")];

/// What `default` must be, by field type (a datetime's is a TOML datetime or an RFC 3339
/// string; `json` takes anything).
const DEFAULT_TYPES: &[(&str, &[&str])] = &[
    (
        "string",
        &["string", "text", "email", "select", "relation", "datetime"],
    ),
    ("integer", &["integer"]),
    ("number", &["number"]),
    ("boolean", &["boolean"]),
];

/// A string checked by `pattern`, or holding a `${VAR}` reference (replaced before checking).
fn patterned(pattern: &str, description: &str) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": format!("{pattern}|{REFERENCE_PATTERN}"),
        "description": description,
    })
}

/// One of `names`, or a `${VAR}` reference.
fn named(names: &[&str], description: &str) -> Schema {
    json_schema!({
        "description": description,
        "anyOf": [
            {"enum": names},
            {"type": "string", "pattern": REFERENCE_PATTERN},
        ],
    })
}

/// A marker type whose schema is written here, for a raw field whose Rust type says too little
/// (`#[schemars(with = "Option<Marker>")]`).
macro_rules! described {
    ($(#[$doc:meta])* $marker:ident, $name:literal, |$generator:ident| $schema:expr) => {
        $(#[$doc])*
        pub struct $marker;

        impl JsonSchema for $marker {
            fn schema_name() -> Cow<'static, str> {
                $name.into()
            }

            fn json_schema($generator: &mut SchemaGenerator) -> Schema {
                $schema
            }
        }
    };
}

described!(
    /// A duration such as `"15m"`, `"7d"` or `"1h 30m"`.
    DurationText,
    "Duration",
    |_generator| patterned(
        DURATION_PATTERN,
        "A duration: numbers with units (ms, s, m, h, d, w, ...), e.g. \"15m\", \"7d\", \"1h 30m\"."
    )
);

described!(
    /// A size such as `"1MiB"`.
    SizeText,
    "Size",
    |_generator| patterned(
        SIZE_PATTERN,
        "A size in bytes, with an optional unit (B, KB, KiB, MB, MiB, ...), e.g. \"1MiB\", \"512KiB\"."
    )
);

described!(
    /// `server.env`.
    EnvName,
    "Env",
    |_generator| named(&ENVS.map(|(name, _)| name), "\"dev\" or \"prod\".")
);

described!(
    /// `email.transport`.
    TransportName,
    "Transport",
    |_generator| named(
        &TRANSPORTS.map(|(name, _)| name),
        "Where mails go: \"file\", \"smtp\" or \"log\"."
    )
);

described!(
    /// `on_delete` of a relation field.
    OnDeleteName,
    "OnDelete",
    |_generator| named(
        &ON_DELETE.map(|(name, _)| name),
        "What deleting the target does: \"set_null\" (default), \"cascade\" or \"restrict\"."
    )
);

described!(
    /// A webhook event: `collection.action` or `collection.*`.
    EventName,
    "WebhookEvent",
    |_generator| patterned(
        EVENT_PATTERN,
        "`collection.create`, `collection.update`, `collection.delete`, or `collection.*` for all three."
    )
);

described!(
    /// A Standard Webhooks secret.
    WebhookSecretText,
    "WebhookSecret",
    |_generator| patterned(
        SECRET_PATTERN,
        "whsec_ followed by the base64 of 24 to 64 random bytes (Standard Webhooks)."
    )
);

described!(
    /// A field's `type` (never interpolated: it decides the table's shape).
    FieldTypeName,
    "FieldType",
    |_generator| json_schema!({
        "description": "The field type (docs/configuration.md#field-types).",
        "enum": FieldKind::NAMES,
    })
);

described!(
    /// A collection slug.
    Slug,
    "Slug",
    |_generator| json_schema!({
        "type": "string",
        "pattern": SLUG_PATTERN,
        "not": {"enum": RESERVED_SLUGS},
    })
);

/// What `type` decides about the other keys of a field: which options apply, which are needed,
/// what `default` must be. Added to `RawField`'s schema as `allOf` of `if`/`then` rules, each
/// keyed on `type`, so an editor flags the key that is wrong.
pub fn field_type_rules(schema: &mut Schema) {
    let when = |types: Json| json!({"properties": {"type": types}, "required": ["type"]});
    let mut rules = Vec::new();
    for (options, types) in TYPE_OPTIONS {
        let forbidden: Map<String, Json> = options
            .iter()
            .map(|option| (option.to_string(), json!(false)))
            .collect();
        rules.push(json!({
            "if": when(json!({"not": {"enum": types}})),
            "then": {"properties": forbidden},
        }));
    }
    for (kind, option) in REQUIRED_OPTIONS {
        let mut then = json!({"required": [option]});
        if *option == "options" {
            then["properties"] = json!({"options": {"minItems": 1}});
        }
        rules.push(json!({"if": when(json!({"const": kind})), "then": then}));
    }
    for (value_type, kinds) in DEFAULT_TYPES {
        rules.push(json!({
            "if": when(json!({"enum": kinds})),
            "then": {"properties": {"default": {"type": value_type}}},
        }));
    }
    let many = json!({"properties": {"many": {"const": true}}, "required": ["many"]});
    let refused: Map<String, Json> = NOT_WITH_MANY
        .iter()
        .map(|option| (option.to_string(), json!(false)))
        .collect();
    rules.push(json!({"if": many, "then": {"properties": refused}}));
    rules.push(json!({
        "if": {"not": many},
        "then": {"properties": {"max_items": false}},
    }));
    schema.insert("allOf".into(), Json::Array(rules));
}

/// Whether `option` applies to fields of type `kind` (every option that is not type-specific
/// does).
#[cfg(test)]
fn applies(option: &str, kind: &str) -> bool {
    TYPE_OPTIONS
        .iter()
        .find(|(options, _)| options.contains(&option))
        .is_none_or(|(_, types)| types.contains(&kind))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::editor_schema::{collection_file, lucent_toml};

    use proptest::prelude::*;
    use regex::Regex;

    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        Regex::new(pattern).unwrap().is_match(text)
    }

    #[test]
    fn patterns_take_what_the_parsers_take() {
        let durations = [
            ("15m", true),
            ("7d", true),
            ("1h 30m", true),
            ("1h30m", true),
            ("1.5h", true),
            (" 45s ", true),
            ("0s", true),
            ("0", true),
            ("00", false),
            ("10 seconds", true),
            ("2 weeks", true),
            ("500ms", true),
            ("", false),
            ("15", false),
            ("soon", false),
            ("m5", false),
            ("5 parsecs", false),
            ("1.h", false),
            ("-5s", false),
        ];
        for (text, valid) in durations {
            assert_eq!(
                super::super::parse_duration(text).is_ok(),
                valid,
                "{text:?}"
            );
            assert_eq!(matches(DURATION_PATTERN, text), valid, "{text:?}");
        }
        let sizes = [
            ("1MiB", true),
            ("512 KiB", true),
            ("2MB", true),
            ("1.5 mb", true),
            ("1024", true),
            ("+5", true),
            ("3k", true),
            (".5GiB", true),
            ("", false),
            ("lots", false),
            ("1.5", false),
            ("5 parsecs", false),
            (" 5MB", false),
            ("5MB ", false),
            ("1.2.3MB", false),
        ];
        for (text, valid) in sizes {
            assert_eq!(
                text.parse::<bytesize::ByteSize>().is_ok(),
                valid,
                "{text:?}"
            );
            assert_eq!(matches(SIZE_PATTERN, text), valid, "{text:?}");
        }
        let events = [
            ("posts.create", true),
            ("posts.*", true),
            ("my_posts-2.delete", true),
            ("posts", false),
            ("posts.created", false),
            ("Posts.create", false),
            ("posts.*.create", false),
        ];
        for (text, valid) in events {
            let parsed = crate::config::EventPattern::parse(text)
                .is_ok_and(|p| matches(crate::schema::SLUG_PATTERN, &p.collection));
            assert_eq!(parsed, valid, "{text:?}");
            assert_eq!(matches(EVENT_PATTERN, text), valid, "{text:?}");
        }
        let key = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        for (text, valid) in [
            (format!("whsec_{key}"), true),
            (format!("whsec_{key}AAAA"), true),
            // 32 bytes, unpadded (43 characters).
            (format!("whsec_{}", "B".repeat(42) + "A"), true),
            (key.to_string(), false),
            (format!("whsec_{key}!"), false),
            (format!(" whsec_{key}"), false),
        ] {
            assert_eq!(
                crate::config::WebhookSecret::parse(&text).is_ok(),
                valid,
                "{text:?}"
            );
            // The pattern cannot count bytes; it refuses no secret the loader takes.
            if valid {
                assert!(matches(SECRET_PATTERN, &text), "{text:?}");
            } else {
                assert!(
                    text.len() < 40 || !matches(SECRET_PATTERN, &text),
                    "{text:?}"
                );
            }
        }
    }

    proptest! {
        // Cases that once failed go into the tables above, not into a file.
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        /// The schema never refuses a duration the loader takes.
        #[test]
        fn every_parsed_duration_matches(text in "[0-9 .a-zµM]{0,9}") {
            if super::super::parse_duration(&text).is_ok() {
                prop_assert!(matches(DURATION_PATTERN, &text), "{text:?}");
            }
        }

        /// The schema never refuses a size the loader takes.
        #[test]
        fn every_parsed_size_matches(text in "[0-9 .+bBkKmMiIgGx]{0,8}") {
            if text.parse::<bytesize::ByteSize>().is_ok() {
                prop_assert!(matches(SIZE_PATTERN, &text), "{text:?}");
            }
        }
    }

    /// A sample value for an option, and what else the field needs to be valid with it.
    fn sample(option: &str) -> &'static str {
        match option {
            "options" => "options = ['a']",
            "min" => "min = 0",
            "max" => "max = 10",
            "min_length" => "min_length = 1",
            "max_length" => "max_length = 10",
            "pattern" => "pattern = '[a-z]+'",
            "to" => "to = 'posts'",
            "on_delete" => "on_delete = 'cascade'",
            "many" => "many = true",
            "max_items" => "many = true, max_items = 5",
            "unique" => "unique = true",
            "index" => "index = true",
            "default" => "default = 'x'",
            other => panic!("no sample for {other}"),
        }
    }

    /// Whether the loader accepts one field of `kind` with `extra` keys.
    fn loads(kind: &str, extra: &[&str]) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lucent.toml");
        let mut keys = vec![format!("type = '{kind}'")];
        keys.extend(extra.iter().map(|key| key.to_string()));
        for (needs, option) in REQUIRED_OPTIONS {
            if *needs == kind && !extra.iter().any(|key| key.starts_with(option)) {
                keys.push(sample(option).to_string());
            }
        }
        let text = format!(
            "[collections.posts.fields]\nf = {{ {} }}\n",
            keys.join(", ")
        );
        std::fs::write(&path, text).unwrap();
        super::super::load_with_env(Path::new(&path), &|_| None).is_ok()
    }

    /// The table of type-specific options is the loader's: every (type, option) pair the schema
    /// allows loads, and every pair it forbids is refused.
    #[test]
    fn type_options_agree_with_the_loader() {
        for kind in FieldKind::NAMES {
            assert!(loads(kind, &[]), "{kind} alone");
            for option in TYPE_OPTIONS.iter().flat_map(|(options, _)| options.iter()) {
                assert_eq!(
                    loads(kind, &[sample(option)]),
                    applies(option, kind),
                    "{kind} with {option}"
                );
            }
        }
        for (kind, option) in REQUIRED_OPTIONS {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("lucent.toml");
            std::fs::write(
                &path,
                format!("[collections.posts.fields]\nf = {{ type = '{kind}' }}\n"),
            )
            .unwrap();
            let errors = super::super::load_with_env(&path, &|_| None).unwrap_err();
            assert!(
                errors.0.iter().any(|d| d.path.ends_with(option)),
                "{kind} without {option}: {errors}"
            );
        }
    }

    /// What the schema refuses beside `many = true` the loader refuses too, and `max_items`
    /// needs `many = true` in both.
    #[test]
    fn to_many_options_agree_with_the_loader() {
        assert!(loads("relation", &["many = true"]));
        assert!(loads("relation", &["many = false"]));
        assert!(!loads("relation", &["max_items = 5"]));
        assert!(!loads("relation", &["many = false", "max_items = 5"]));
        for option in NOT_WITH_MANY {
            assert!(loads("relation", &[sample(option)]), "{option} alone");
            assert!(
                !loads("relation", &["many = true", sample(option)]),
                "{option} with many"
            );
        }
        let schema = collection_file();
        let rules = schema["$defs"]["Field"]["allOf"].as_array().unwrap();
        let with_many = rules
            .iter()
            .find(|rule| rule["if"]["properties"]["many"] == json!({"const": true}))
            .unwrap();
        let refused: Vec<&str> = with_many["then"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = NOT_WITH_MANY.to_vec();
        expected.sort_unstable();
        let mut refused = refused;
        refused.sort_unstable();
        assert_eq!(refused, expected);
    }

    /// Every key of the generated schema is one the loader knows, and the other way round:
    /// both come from the same types, so this holds by construction; it is checked on the
    /// top-level keys as a guard against a loader that stops using them.
    #[test]
    fn top_level_keys_are_the_loaders() {
        let schema = lucent_toml();
        let keys: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "schemas",
                "server",
                "database",
                "auth",
                "email",
                "metrics",
                "realtime",
                "webhooks",
                "collections"
            ]
        );
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(
            schema["$schema"],
            json!("https://json-schema.org/draft/2020-12/schema")
        );
        let collection = collection_file();
        let keys: Vec<&str> = collection["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["slug", "label", "auth", "fields", "access"]);
    }

    #[test]
    fn no_null_is_left() {
        fn walk(value: &Json, at: &str) {
            match value {
                Json::Object(object) => {
                    assert_ne!(object.get("type"), Some(&json!("null")), "{at}");
                    if let Some(Json::Array(types)) = object.get("type") {
                        assert!(!types.contains(&json!("null")), "{at}");
                    }
                    assert_ne!(object.get("default"), Some(&Json::Null), "{at}");
                    for (key, value) in object {
                        walk(value, &format!("{at}/{key}"));
                    }
                }
                Json::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        walk(item, &format!("{at}/{i}"));
                    }
                }
                _ => {}
            }
        }
        walk(&lucent_toml(), "#");
        walk(&collection_file(), "#");
    }

    /// Every raw key carries the description an editor shows.
    #[test]
    fn every_key_is_described() {
        let schema = lucent_toml();
        let definitions: &Map<String, Json> = schema["$defs"].as_object().unwrap();
        for (name, definition) in definitions {
            for (key, property) in definition["properties"].as_object().into_iter().flatten() {
                let described = property.get("description").is_some()
                    || property
                        .get("$ref")
                        .and_then(Json::as_str)
                        .and_then(|r| r.strip_prefix("#/$defs/"))
                        .is_some_and(|target| definitions[target].get("description").is_some());
                assert!(described, "{name}.{key} has no description");
            }
        }
    }
}
