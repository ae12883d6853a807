//! Collections and their fields, checked and ready to use: what every other module reads instead
//! of the raw configuration.

mod value;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

pub use value::{
    Doc, EMAIL_MAX_LENGTH, EMAIL_PATTERN, FieldError, Value, doc_id, format_time, has_nul, now,
    nul_error, parse_time,
};

/// What a collection slug must match (and not be one of [`RESERVED_SLUGS`]).
pub const SLUG_PATTERN: &str = r"^[a-z][a-z0-9_-]{0,62}$";
/// What a field name must match (and not be one of [`SYSTEM_FIELDS`]).
pub const FIELD_NAME_PATTERN: &str = r"^[A-Za-z][A-Za-z0-9_]{0,62}$";

/// Route segments of `/api/<segment>` that Lucent serves itself, which a collection slug must not
/// shadow.
pub const RESERVED_SLUGS: [&str; 5] = ["health", "openapi.json", "docs", "metrics", "realtime"];

/// `on_delete` of a relation field, as written.
pub const ON_DELETE: [(&str, OnDelete); 3] = [
    ("set_null", OnDelete::SetNull),
    ("cascade", OnDelete::Cascade),
    ("restrict", OnDelete::Restrict),
];

/// Field names Lucent manages on every collection; declaring them is a config error.
pub const SYSTEM_FIELDS: [&str; 3] = ["id", "createdAt", "updatedAt"];

/// Every collection of a configuration, in declaration order.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub collections: Vec<Collection>,
    by_slug: HashMap<String, usize>,
    /// Empty unless the schema was built from a configuration with errors.
    pub gaps: Gaps,
}

/// What a schema built from a configuration with errors may lack (a field that did not build, an
/// auth collection whose options did not): rule checks treat these names as present with an
/// unknown type, so they report only the errors that fixing the others cannot remove.
#[derive(Debug, Clone, Default)]
pub struct Gaps {
    /// By collection slug: names that may be fields of that collection.
    pub fields: HashMap<String, Unsure>,
    /// Names that may be `user.<name>` fields, or whose type there is not certain.
    pub user_fields: Unsure,
}

impl Gaps {
    pub fn is_empty(&self) -> bool {
        self.user_fields.is_empty() && self.fields.values().all(Unsure::is_empty)
    }

    /// Whether `collection` may have a field `name` that the schema does not show.
    pub fn may_have_field(&self, collection: &str, name: &str) -> bool {
        self.fields
            .get(collection)
            .is_some_and(|unsure| unsure.contains(name))
    }
}

/// A set of names, or every name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unsure {
    pub all: bool,
    pub names: BTreeSet<String>,
}

impl Unsure {
    pub fn contains(&self, name: &str) -> bool {
        self.all || self.names.contains(name)
    }

    pub fn is_empty(&self) -> bool {
        !self.all && self.names.is_empty()
    }

    pub fn add(&mut self, other: &Unsure) {
        self.all |= other.all;
        self.names.extend(other.names.iter().cloned());
    }
}

impl Schema {
    pub fn new(collections: Vec<Collection>) -> Self {
        let by_slug = collections
            .iter()
            .enumerate()
            .map(|(i, c)| (c.slug.clone(), i))
            .collect();
        Self {
            collections,
            by_slug,
            gaps: Gaps::default(),
        }
    }

    pub fn get(&self, slug: &str) -> Option<&Collection> {
        self.by_slug.get(slug).map(|&i| &self.collections[i])
    }

    /// The position of a collection in `collections`.
    pub fn index_of(&self, slug: &str) -> Option<usize> {
        self.by_slug.get(slug).copied()
    }
}

#[derive(Debug, Clone)]
pub struct Collection {
    pub slug: String,
    pub label: String,
    pub fields: Vec<Field>,
    pub auth: Option<AuthOptions>,
    pub access: CollectionAccess,
    /// Where the collection was declared, for diagnostics.
    pub file: PathBuf,
    pub prefix: String,
}

impl Collection {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// `doc` without the hidden fields: what any rendering of a stored document starts from
    /// (`records::present`, and webhook payloads, which no caller's field rules apply to).
    pub fn without_hidden(&self, mut doc: Doc) -> Doc {
        for field in self.fields.iter().filter(|f| f.hidden) {
            doc.remove(&field.name);
        }
        doc
    }

    /// The login field of an auth collection.
    pub fn login_field(&self) -> Option<&Field> {
        self.auth
            .as_ref()
            .and_then(|auth| self.field(&auth.login_field))
    }
}

/// Options of an auth collection (`auth = true` or `auth = { ... }`).
#[derive(Debug, Clone)]
pub struct AuthOptions {
    pub login_field: String,
    pub verify_email: bool,
    pub require_verified: bool,
    pub max_login_attempts: u32,
    pub lock_time: Duration,
}

/// A predicate as written in the config, with where it was written.
#[derive(Debug, Clone)]
pub struct PredicateSource {
    pub source: String,
    pub path: String,
}

#[derive(Debug, Clone, Default)]
pub struct CollectionAccess {
    pub read: Option<PredicateSource>,
    pub create: Option<PredicateSource>,
    pub update: Option<PredicateSource>,
    pub delete: Option<PredicateSource>,
}

#[derive(Debug, Clone, Default)]
pub struct FieldAccess {
    pub read: Option<PredicateSource>,
    pub create: Option<PredicateSource>,
    pub update: Option<PredicateSource>,
}

/// What a write did to a document: the actions webhooks name (`posts.create`) and events carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Create, Action::Update, Action::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    SetNull,
    Cascade,
    Restrict,
}

/// A field's type.
///
/// Places a new field type touches (every `match` on it is exhaustive, so the compiler lists
/// most of them; keep it so — no `_ =>` arm over kinds):
/// 1. here: the variant, [`FieldKind::name`] and [`FieldKind::is_textual`];
/// 2. `config/collections.rs`: the `type = "..."` name and the options the type takes;
/// 3. `schema/value.rs`: [`Field::parse`] (a JSON value → [`Value`]) and what it expects;
/// 4. `db/ddl.rs` `column_type`: the column per engine (results must read back identically);
/// 5. `db/rows.rs`: `to_sql_value` (the bound parameter) and `decode_row` (the column → JSON);
/// 6. `db/migrate/`: `snapshot.rs` `Kind` (the recorded storage), `convert.rs` (existing values
///    when a field changes type) and `diff.rs` (which type changes keep every row);
/// 7. `rules/ir.rs` `Ty::of`: the type access rules and filters see;
/// 8. `http/openapi/schemas.rs`: the field's JSON Schema in the OpenAPI document;
/// 9. `docs/configuration.md` (the field type table) and the type list in `config/fuzz.rs`.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    String,
    Text,
    Email,
    Integer,
    Number,
    Boolean,
    Select(Vec<String>),
    Datetime,
    Json,
    Relation { to: String, on_delete: OnDelete },
}

impl FieldKind {
    /// Every field type's name, as `type` is written in the configuration.
    pub const NAMES: [&str; 10] = [
        "string", "text", "email", "integer", "number", "boolean", "select", "datetime", "json",
        "relation",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            FieldKind::String => "string",
            FieldKind::Text => "text",
            FieldKind::Email => "email",
            FieldKind::Integer => "integer",
            FieldKind::Number => "number",
            FieldKind::Boolean => "boolean",
            FieldKind::Select(_) => "select",
            FieldKind::Datetime => "datetime",
            FieldKind::Json => "json",
            FieldKind::Relation { .. } => "relation",
        }
    }

    /// Kinds whose values are strings and take `min_length`, `max_length` and `pattern`.
    pub fn is_textual(&self) -> bool {
        matches!(
            self,
            FieldKind::String
                | FieldKind::Text
                | FieldKind::Email
                | FieldKind::Select(_)
                | FieldKind::Relation { .. }
        )
    }
}

/// What a field is for: ordinary data, or one of the auth fields Lucent manages itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRole {
    Data,
    /// Write-only; stored as an argon2id hash.
    Password,
    /// Set by email verification; writable only where field access allows.
    Verified,
    /// Token state for email flows; never read or written through the API.
    Secret,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub kind: FieldKind,
    pub role: FieldRole,
    pub required: bool,
    pub unique: bool,
    pub hidden: bool,
    /// Compared and kept unique regardless of case (login fields).
    pub case_insensitive: bool,
    pub default: Option<Value>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub pattern: Option<Regex>,
    pub index: bool,
    pub label: Option<String>,
    pub description: Option<String>,
    pub access: FieldAccess,
}

impl Field {
    /// A plain optional field of `kind`, the starting point of the builder and the auth fields.
    pub fn new(name: &str, kind: FieldKind) -> Self {
        Self {
            name: name.to_string(),
            kind,
            role: FieldRole::Data,
            required: false,
            unique: false,
            hidden: false,
            case_insensitive: false,
            default: None,
            min: None,
            max: None,
            min_length: None,
            max_length: None,
            pattern: None,
            index: false,
            label: None,
            description: None,
            access: FieldAccess::default(),
        }
    }
}
