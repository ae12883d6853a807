//! Raw collection tables → the checked [`Schema`], every problem reported with its key path: the
//! one place that turns a file format into collections (`schema` knows no file format).

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use super::raw::{RawAuthCollection, RawCollection, RawField, RawFieldAccess};
use super::{Decoded, Diagnostic, Diagnostics, decode, key, parse_duration};
use crate::schema::{
    AuthOptions, Collection, CollectionAccess, DEFAULT_MAX_ITEMS, FIELD_NAME_PATTERN, Field,
    FieldAccess, FieldKind, FieldRole, Gaps, MAX_MAX_ITEMS, ON_DELETE, OnDelete, PredicateSource,
    RESERVED_FIELDS, RESERVED_SLUGS, SLUG_PATTERN, SYSTEM_FIELDS, Schema, Unsure, Value,
};

static SLUG: LazyLock<Regex> = LazyLock::new(|| Regex::new(SLUG_PATTERN).expect("valid regex"));
static FIELD_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(FIELD_NAME_PATTERN).expect("valid regex"));

/// One collection table as found in a file, before checking.
#[derive(Debug, Clone)]
pub struct Source {
    pub file: PathBuf,
    /// Key path of the table inside its file, ending in `.` (empty for a whole schema file).
    pub prefix: String,
    /// The slug the location implies (table key or file stem); a `slug` key overrides it.
    pub slug: Option<String>,
    pub table: toml::Table,
}

/// Fields an auth collection may get from Lucent: when its `auth` options did not build, rules
/// cannot know whether it has them.
const AUTH_FIELDS: [&str; 7] = [
    "email",
    "username",
    "password",
    "verified",
    "verificationToken",
    "resetToken",
    "resetExpiry",
];

/// Checks every collection and builds the schema.
///
/// # Errors
/// Every problem in every collection.
pub fn build(sources: Vec<Source>) -> Result<Schema, Diagnostics> {
    let (schema, diags) = build_partial(sources, true);
    diags.finish(schema)
}

/// Builds what can be built and reports every problem: the schema holds every collection
/// that could be checked (without the fields that could not), and [`Schema::gaps`] says what
/// it may lack. `complete` is false when some collection table could not even be read.
pub fn build_partial(sources: Vec<Source>, complete: bool) -> (Schema, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut collections: Vec<Collection> = Vec::new();
    let mut gaps = Gaps::default();
    gaps.user_fields.all = !complete;
    for source in sources {
        let Built {
            collection,
            mut unsure,
            maybe_auth,
        } = build_collection(source, &mut diags);
        if maybe_auth {
            // Its fields, and the ones Lucent would add, may be `user` fields.
            unsure.names.extend(AUTH_FIELDS.map(String::from));
            gaps.user_fields.add(&unsure);
            gaps.user_fields
                .names
                .extend(collection.fields.iter().map(|f| f.name.clone()));
        } else if collection.auth.is_some() {
            gaps.user_fields.add(&unsure);
        }
        if collections.iter().any(|c| c.slug == collection.slug) {
            diags.push(Diagnostic::new(
                &collection.file,
                format!("{}slug", collection.prefix),
                format!("duplicate collection slug `{}`", collection.slug),
            ));
            if collection.auth.is_some() {
                gaps.user_fields
                    .names
                    .extend(collection.fields.iter().map(|f| f.name.clone()));
            }
            continue;
        }
        if !unsure.is_empty() {
            gaps.fields.insert(collection.slug.clone(), unsure);
        }
        collections.push(collection);
    }
    for collection in &collections {
        for field in &collection.fields {
            // With a collection table unread, the target may be that one.
            if let FieldKind::Relation { to, .. } = &field.kind
                && complete
                && !collections.iter().any(|c| &c.slug == to)
            {
                diags.push(Diagnostic::new(
                    &collection.file,
                    format!("{}fields.{}.to", collection.prefix, field.name),
                    format!("relation to unknown collection `{to}`"),
                ));
            }
        }
    }
    let mut schema = Schema::new(collections);
    schema.gaps = gaps;
    (schema, diags)
}

/// One collection as far as it could be built.
struct Built {
    collection: Collection,
    /// Declared fields that did not build (every name, when `fields` was not a table).
    unsure: Unsure,
    /// `auth` was given but its options did not build: it may be an auth collection.
    maybe_auth: bool,
}

fn build_collection(source: Source, diags: &mut Diagnostics) -> Built {
    let Source {
        file,
        prefix,
        slug,
        table,
    } = source;
    let at = |path: &str| format!("{prefix}{path}");
    // Decoded with the type `lucent schema` describes; a bad key is reported and left out, so it
    // hides neither the problems of the others nor their values.
    let path = prefix.strip_suffix('.').unwrap_or(&prefix);
    let Decoded { value, bad } =
        decode::<RawCollection>(toml::Value::Table(table), &file, path, diags);
    let raw = value.unwrap_or_default();
    let slug = raw.slug.or(slug).unwrap_or_default();
    // Without its table of fields, any name may be a field.
    let mut unsure = Unsure {
        all: bad.contains("fields"),
        ..Unsure::default()
    };
    let field_table = raw.fields.unwrap_or_default();
    if !SLUG.is_match(&slug) || RESERVED_SLUGS.contains(&slug.as_str()) {
        diags.push(Diagnostic::new(
            &file,
            at("slug"),
            format!(
                "invalid collection slug `{slug}` (expected {SLUG_PATTERN}, not a reserved route)"
            ),
        ));
    }

    let mut fields = Vec::new();
    for (name, value) in field_table {
        let path = format!("{prefix}fields.{}", key(&name));
        if SYSTEM_FIELDS.contains(&name.as_str()) {
            diags.push(Diagnostic::new(
                &file,
                &path,
                format!("`{name}` is a system field and cannot be declared"),
            ));
            continue;
        }
        if RESERVED_FIELDS.contains(&name.as_str()) {
            diags.push(Diagnostic::new(
                &file,
                &path,
                format!("`{name}` is reserved (answers hold expanded relations there) and cannot be declared"),
            ));
            continue;
        }
        if !FIELD_NAME.is_match(&name) {
            diags.push(Diagnostic::new(
                &file,
                &path,
                format!("invalid field name `{name}` (expected ^[A-Za-z][A-Za-z0-9_]{{0,62}}$)"),
            ));
            continue;
        }
        let before = diags.0.len();
        let Decoded { value, bad } = decode::<RawField>(value, &file, &path, diags);
        let field = value.and_then(|raw| build_field(&name, raw, &bad, &file, &path, diags));
        match field {
            Some(field) if diags.0.len() == before => fields.push(field),
            _ => {
                unsure.names.insert(name);
            }
        }
    }

    let access = raw
        .access
        .map(|a| CollectionAccess {
            read: predicate(a.read, &at("access.read")),
            create: predicate(a.create, &at("access.create")),
            update: predicate(a.update, &at("access.update")),
            delete: predicate(a.delete, &at("access.delete")),
        })
        .unwrap_or_default();

    // `auth` given but unreadable: it may be an auth collection.
    let mut maybe_auth = bad.contains("auth");
    let auth = match raw.auth {
        None | Some(toml::Value::Boolean(false)) => None,
        Some(toml::Value::Boolean(true)) => Some(RawAuthCollection::default()),
        Some(value @ toml::Value::Table(_)) => {
            let Decoded { value, bad } =
                decode::<RawAuthCollection>(value, &file, &at("auth"), diags);
            // Without its login field, which fields Lucent adds is unknown.
            maybe_auth = value.is_none() || bad.contains("login_field");
            value.filter(|_| !maybe_auth)
        }
        Some(_) => {
            diags.push(Diagnostic::new(
                &file,
                at("auth"),
                "expected true, false or a table of auth options",
            ));
            maybe_auth = true;
            None
        }
    };
    let auth = auth.and_then(|raw_auth| {
        let auth = build_auth(raw_auth, &mut fields, &file, &prefix, diags);
        maybe_auth = auth.is_none();
        auth
    });

    Built {
        collection: Collection {
            label: raw.label.unwrap_or_else(|| slug.clone()),
            slug,
            fields,
            auth,
            access,
            file,
            prefix,
        },
        unsure,
        maybe_auth,
    }
}

fn predicate(source: Option<String>, path: &str) -> Option<PredicateSource> {
    source.map(|source| PredicateSource {
        source,
        path: path.to_string(),
    })
}

/// `bad` holds the keys that failed to decode (already reported): they count as absent, without
/// a second complaint about their absence.
fn build_field(
    name: &str,
    raw: RawField,
    bad: &BTreeSet<String>,
    file: &PathBuf,
    path: &str,
    diags: &mut Diagnostics,
) -> Option<Field> {
    let before = diags.0.len();
    let mut report = |key: &str, message: String| {
        diags.push(Diagnostic::new(file, format!("{path}.{key}"), message))
    };
    let kind = match raw.kind.as_str() {
        "string" => FieldKind::String,
        "text" => FieldKind::Text,
        "email" => FieldKind::Email,
        "integer" => FieldKind::Integer,
        "number" => FieldKind::Number,
        "boolean" => FieldKind::Boolean,
        "datetime" => FieldKind::Datetime,
        "json" => FieldKind::Json,
        "select" => match &raw.options {
            Some(options) if !options.is_empty() => FieldKind::Select(options.clone()),
            None if bad.contains("options") => FieldKind::Select(Vec::new()),
            _ => {
                report(
                    "options",
                    "a select field needs a non-empty `options` list".into(),
                );
                FieldKind::Select(Vec::new())
            }
        },
        "relation" => {
            let on_delete = match raw.on_delete.as_deref() {
                None => OnDelete::SetNull,
                Some(text) => match ON_DELETE.iter().find(|(name, _)| *name == text) {
                    Some((_, on_delete)) => *on_delete,
                    None => {
                        report(
                            "on_delete",
                            format!(
                                "expected {}, got \"{text}\"",
                                crate::config::one_of(ON_DELETE.map(|(name, _)| name))
                            ),
                        );
                        OnDelete::SetNull
                    }
                },
            };
            let many = match (raw.many, raw.max_items) {
                (Some(true), max_items) => Some(max_items.unwrap_or(DEFAULT_MAX_ITEMS)),
                (_, None) => None,
                (_, Some(_)) => {
                    report(
                        "max_items",
                        "`max_items` applies only to a to-many relation (`many = true`)".into(),
                    );
                    None
                }
            };
            if let Some(max_items) = many.filter(|n| !(1..=MAX_MAX_ITEMS).contains(n)) {
                report(
                    "max_items",
                    format!("`max_items` must be from 1 to {MAX_MAX_ITEMS}, got {max_items}"),
                );
            }
            let to = match &raw.to {
                Some(to) => to.clone(),
                None => {
                    if !bad.contains("to") {
                        report(
                            "to",
                            "a relation field needs `to = \"<collection>\"`".into(),
                        );
                    }
                    String::new()
                }
            };
            FieldKind::Relation {
                to,
                on_delete,
                many,
            }
        }
        other => {
            report(
                "type",
                format!(
                    "unknown field type `{other}` (expected {})",
                    crate::config::either(&FieldKind::NAMES)
                ),
            );
            return None;
        }
    };
    if (raw.many.is_some() || raw.max_items.is_some())
        && !matches!(kind, FieldKind::Relation { .. })
    {
        let key = if raw.many.is_some() {
            "many"
        } else {
            "max_items"
        };
        report(
            key,
            "`many` and `max_items` apply only to relation fields".into(),
        );
    }
    if kind.max_items().is_some() {
        // A list has no column: nothing to make unique or index (its join table is indexed
        // both ways), no text to measure, and no default list.
        let refused = [
            ("unique", raw.unique.is_some()),
            ("index", raw.index.is_some()),
            ("default", raw.default.is_some()),
            ("min_length", raw.min_length.is_some()),
            ("max_length", raw.max_length.is_some()),
            ("pattern", raw.pattern.is_some()),
        ];
        for (key, given) in refused {
            if given {
                report(
                    key,
                    format!("`{key}` does not apply to a to-many relation (`many = true`)"),
                );
            }
        }
    }
    if raw.options.is_some() && !matches!(kind, FieldKind::Select(_)) {
        report("options", "`options` applies only to select fields".into());
    }
    if (raw.to.is_some() || raw.on_delete.is_some()) && !matches!(kind, FieldKind::Relation { .. })
    {
        report(
            "to",
            "`to` and `on_delete` apply only to relation fields".into(),
        );
    }
    if (raw.min.is_some() || raw.max.is_some())
        && !matches!(kind, FieldKind::Integer | FieldKind::Number)
    {
        report(
            "min",
            "`min` and `max` apply only to integer and number fields".into(),
        );
    }
    if (raw.min_length.is_some() || raw.max_length.is_some() || raw.pattern.is_some())
        && !kind.is_textual()
        && kind.max_items().is_none()
    {
        report(
            "max_length",
            "`min_length`, `max_length` and `pattern` apply only to string-like fields".into(),
        );
    }
    if let (Some(min), Some(max)) = (raw.min, raw.max)
        && min > max
    {
        report("min", "`min` is greater than `max`".into());
    }
    if let (Some(min), Some(max)) = (raw.min_length, raw.max_length)
        && min > max
    {
        report(
            "min_length",
            "`min_length` is greater than `max_length`".into(),
        );
    }
    let pattern = raw
        .pattern
        .as_ref()
        .and_then(|p| match Regex::new(&format!("^(?:{p})$")) {
            Ok(regex) => Some(regex),
            Err(e) => {
                report(
                    "pattern",
                    format!(
                        "invalid regex: {}",
                        e.to_string().lines().last().unwrap_or_default().trim()
                    ),
                );
                None
            }
        });
    let access = raw.access.map(
        |RawFieldAccess {
             read,
             create,
             update,
         }| FieldAccess {
            read: predicate(read, &format!("{path}.access.read")),
            create: predicate(create, &format!("{path}.access.create")),
            update: predicate(update, &format!("{path}.access.update")),
        },
    );

    let mut field = Field::new(name, kind);
    field.required = raw.required.unwrap_or(false);
    field.unique = raw.unique.unwrap_or(false);
    field.hidden = raw.hidden.unwrap_or(false);
    field.min = raw.min;
    field.max = raw.max;
    field.min_length = raw.min_length;
    field.max_length = raw.max_length;
    field.pattern = pattern;
    field.index = raw.index.unwrap_or(false);
    field.label = raw.label;
    field.description = raw.description;
    field.access = access.unwrap_or_default();
    if let Some(default) = raw.default {
        match field.parse(&toml_to_json(default)) {
            Ok(value) => field.default = Some(value),
            Err(e) => diags.push(Diagnostic::new(
                file,
                format!("{path}.default"),
                format!("default fails the field's own rules: {}", e.message),
            )),
        }
    }
    (diags.0.len() == before).then_some(field)
}

fn toml_to_json(value: toml::Value) -> serde_json::Value {
    match value {
        toml::Value::String(s) => serde_json::Value::String(s),
        toml::Value::Integer(i) => serde_json::Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        toml::Value::Boolean(b) => serde_json::Value::Bool(b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(toml_to_json).collect())
        }
        toml::Value::Table(table) => serde_json::Value::Object(
            table
                .into_iter()
                .map(|(k, v)| (k, toml_to_json(v)))
                .collect(),
        ),
    }
}

/// Checks the auth options and adds the auth fields the collection does not declare.
fn build_auth(
    raw: RawAuthCollection,
    fields: &mut Vec<Field>,
    file: &PathBuf,
    prefix: &str,
    diags: &mut Diagnostics,
) -> Option<AuthOptions> {
    let login_field = raw.login_field.unwrap_or_else(|| "email".into());
    let lock_time = match raw.lock_time.as_deref().map(parse_duration) {
        None => Duration::from_secs(600),
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            diags.push(Diagnostic::new(file, format!("{prefix}auth.lock_time"), e));
            Duration::from_secs(600)
        }
    };
    match fields.iter_mut().find(|f| f.name == login_field) {
        Some(field) => {
            if !field.kind.is_textual() {
                diags.push(Diagnostic::new(
                    file,
                    format!("{prefix}fields.{login_field}"),
                    "a login field must be a string or email field",
                ));
            }
            field.required = true;
            field.unique = true;
            field.case_insensitive = true;
        }
        None => {
            let mut field = match login_field.as_str() {
                "email" => Field::new("email", FieldKind::Email),
                "username" => {
                    let mut f = Field::new("username", FieldKind::String);
                    f.min_length = Some(4);
                    f.max_length = Some(31);
                    f
                }
                other => {
                    diags.push(Diagnostic::new(
                        file,
                        format!("{prefix}auth.login_field"),
                        format!("login field `{other}` is not declared (only `email` and `username` are added automatically)"),
                    ));
                    return None;
                }
            };
            field.required = true;
            field.unique = true;
            field.case_insensitive = true;
            fields.insert(0, field);
        }
    }

    let declared: HashSet<String> = fields.iter().map(|f| f.name.clone()).collect();
    let secret_fields = [
        ("password", FieldKind::String, FieldRole::Password),
        ("verificationToken", FieldKind::String, FieldRole::Secret),
        ("resetToken", FieldKind::String, FieldRole::Secret),
        ("resetExpiry", FieldKind::Datetime, FieldRole::Secret),
    ];
    for (name, kind, role) in secret_fields {
        if let Some(field) = fields.iter_mut().find(|f| f.name == name) {
            if !field.hidden {
                diags.push(Diagnostic::new(
                    file,
                    format!("{prefix}fields.{name}"),
                    format!("`{name}` holds a secret and must be declared with hidden = true"),
                ));
            }
            field.role = role;
        } else {
            let mut field = Field::new(name, kind);
            field.hidden = true;
            field.role = role;
            fields.push(field);
        }
    }
    if declared.contains("verified") {
        if let Some(field) = fields.iter_mut().find(|f| f.name == "verified") {
            if field.kind != FieldKind::Boolean {
                diags.push(Diagnostic::new(
                    file,
                    format!("{prefix}fields.verified"),
                    "`verified` must be a boolean field",
                ));
            }
            field.role = FieldRole::Verified;
        }
    } else {
        let mut field = Field::new("verified", FieldKind::Boolean);
        field.default = Some(Value::Bool(false));
        field.role = FieldRole::Verified;
        fields.push(field);
    }
    let verify_email = raw.verify_email.unwrap_or(false);
    let mailable = fields
        .iter()
        .any(|f| f.name == "email" && f.kind == FieldKind::Email);
    if verify_email && !mailable {
        diags.push(Diagnostic::new(
            file,
            format!("{prefix}auth.verify_email"),
            "verify_email needs an `email` field of type email (declare one for a username collection)",
        ));
    }
    Some(AuthOptions {
        login_field,
        verify_email,
        require_verified: raw.require_verified.unwrap_or(false),
        max_login_attempts: raw.max_login_attempts.unwrap_or(5),
        lock_time,
    })
}
