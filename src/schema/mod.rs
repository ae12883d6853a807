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
/// What a field name must match (and not be one of [`SYSTEM_FIELDS`] or [`RESERVED_FIELDS`]).
pub const FIELD_NAME_PATTERN: &str = r"^[A-Za-z][A-Za-z0-9_]{0,62}$";

/// Route segments of `/api/<segment>` that Lucent serves itself, which a collection slug must not
/// shadow.
pub const RESERVED_SLUGS: [&str; 6] = [
    "health",
    "openapi.json",
    "docs",
    "metrics",
    "batch",
    "realtime",
];

/// `on_delete` of a relation field, as written.
pub const ON_DELETE: [(&str, OnDelete); 3] = [
    ("set_null", OnDelete::SetNull),
    ("cascade", OnDelete::Cascade),
    ("restrict", OnDelete::Restrict),
];

/// Field names Lucent manages on every collection; declaring them is a config error.
pub const SYSTEM_FIELDS: [&str; 3] = ["id", "createdAt", "updatedAt"];

/// Names a document's answer uses for something else (`expand` holds expanded relations);
/// declaring them is a config error.
pub const RESERVED_FIELDS: [&str; 1] = ["expand"];

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

    /// The back-relation `name` (`<collection>_via_<field>`) of `target`: the collection and its
    /// relation field that points at `target`. Slugs and field names may hold `_`, so the name
    /// is matched against every relation to `target` rather than split.
    pub fn back_relation(&self, target: &str, name: &str) -> Option<(&Collection, &Field)> {
        self.collections
            .iter()
            .flat_map(|source| source.fields.iter().map(move |field| (source, field)))
            .find(|(source, field)| {
                matches!(&field.kind, FieldKind::Relation { to, .. } if to == target)
                    && name
                        .strip_prefix(source.slug.as_str())
                        .and_then(|rest| rest.strip_prefix("_via_"))
                        == Some(field.name.as_str())
            })
    }

    /// What `name` leads to from a document of `collection` across a relation: its relation
    /// field of that name, else the back-relation of that name. A declared field wins over a
    /// back-relation of the same name.
    pub fn step<'s>(&'s self, collection: &'s Collection, name: &str) -> Option<Step<'s>> {
        match collection.field(name) {
            Some(field) => match &field.kind {
                FieldKind::Relation { to, .. } => Some(Step::Forward {
                    field,
                    to: self.get(to)?,
                }),
                _ => None,
            },
            None => self
                .back_relation(&collection.slug, name)
                .map(|(from, field)| Step::Back { from, field }),
        }
    }
}

/// One step across a relation, from a document of one collection to documents of another.
#[derive(Debug, Clone, Copy)]
pub enum Step<'s> {
    /// A relation field of the collection, to the document it names.
    Forward {
        field: &'s Field,
        to: &'s Collection,
    },
    /// `<collection>_via_<field>`: the documents of `from` whose relation `field` names this one.
    Back {
        from: &'s Collection,
        field: &'s Field,
    },
}

impl<'s> Step<'s> {
    /// The collection the step arrives in.
    pub fn target(&self) -> &'s Collection {
        match self {
            Step::Forward { to, .. } => to,
            Step::Back { from, .. } => from,
        }
    }

    /// Whether the step may arrive at several documents (a to-many relation, a back-relation).
    pub fn many(&self) -> bool {
        match self {
            Step::Forward { field, .. } => field.is_list(),
            Step::Back { .. } => true,
        }
    }

    /// The relation field the step follows (of this collection, or of the target for a
    /// back-relation).
    pub fn field(&self) -> &'s Field {
        match self {
            Step::Forward { field, .. } | Step::Back { field, .. } => field,
        }
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
/// 9. `docs/configuration.md` (the field type table) and the type list in `access/config_fuzz.rs`.
///
/// A to-many relation (`many: Some(max_items)`) has no column: [`Field::has_column`] is false,
/// and its ids live in a join table ([`join_table`]), written by `records/lists.rs` and loaded
/// for a page at once; `db/ddl.rs` `join_statements` creates the table, and `db/migrate/` adds,
/// drops and converts it.
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
    /// `many: None` holds one id in a column; `many: Some(max_items)` is a list of at most
    /// `max_items` ids kept in a join table.
    Relation {
        to: String,
        on_delete: OnDelete,
        many: Option<usize>,
    },
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

    /// Kinds whose values are strings and take `min_length`, `max_length` and `pattern` (a
    /// to-many relation's value is a list).
    pub fn is_textual(&self) -> bool {
        matches!(
            self,
            FieldKind::String
                | FieldKind::Text
                | FieldKind::Email
                | FieldKind::Select(_)
                | FieldKind::Relation { many: None, .. }
        )
    }

    /// The most ids a to-many relation holds; `None` for every other kind.
    pub fn max_items(&self) -> Option<usize> {
        match self {
            FieldKind::Relation { many, .. } => *many,
            FieldKind::String
            | FieldKind::Text
            | FieldKind::Email
            | FieldKind::Integer
            | FieldKind::Number
            | FieldKind::Boolean
            | FieldKind::Select(_)
            | FieldKind::Datetime
            | FieldKind::Json => None,
        }
    }
}

/// `max_items` of a to-many relation when the configuration does not say.
pub const DEFAULT_MAX_ITEMS: usize = 100;

/// The largest `max_items`: a list is written as one multi-row insert of three parameters per
/// id, well inside every engine's limit on bound parameters (SQLite's is 32,766).
pub const MAX_MAX_ITEMS: usize = 1000;

/// PostgreSQL's limit on identifiers, in bytes (longer names are cut silently, so two long
/// names could meet); Lucent's generated names stay within it on every engine.
pub const MAX_IDENTIFIER: usize = 63;

/// The join table of the to-many relation `field` of `collection`:
/// `_lucent_rel_<collection>_<field>`, or, when that is longer than [`MAX_IDENTIFIER`] bytes, a
/// prefix of it, `_` and 8 hex digits of the SHA-256 of the whole name (so two long names do not
/// meet).
pub fn join_table(collection: &str, field: &str) -> String {
    fold(format!("_lucent_rel_{collection}_{field}"))
}

/// The name of an index, constraint, trigger or function belonging to the join table of
/// `collection.field`: the join table's full name and `_<suffix>`, folded like [`join_table`].
pub fn join_index(collection: &str, field: &str, suffix: &str) -> String {
    fold(format!("_lucent_rel_{collection}_{field}_{suffix}"))
}

/// `name` when it fits in [`MAX_IDENTIFIER`] bytes, else a prefix, `_` and 8 hex digits of its
/// SHA-256.
fn fold(name: String) -> String {
    if name.len() <= MAX_IDENTIFIER {
        return name;
    }
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    // Names are ASCII (slugs and field names are checked), so any byte is a char boundary.
    let keep = MAX_IDENTIFIER - 9;
    format!("{}_{}", &name[..keep], &digest[..8])
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

    /// Whether the field is a column of its collection's table: every field but a to-many
    /// relation, whose ids live in a join table.
    pub fn has_column(&self) -> bool {
        self.kind.max_items().is_none()
    }

    /// Whether the field is a to-many relation.
    pub fn is_list(&self) -> bool {
        !self.has_column()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_table_names_fit_every_engine() {
        assert_eq!(join_table("posts", "tags"), "_lucent_rel_posts_tags");
        assert_eq!(
            join_index("posts", "tags", "target"),
            "_lucent_rel_posts_tags_target"
        );
        let slug = "a".repeat(63);
        let field = "B".repeat(63);
        let long = join_table(&slug, &field);
        assert_eq!(long.len(), MAX_IDENTIFIER);
        assert!(long.starts_with("_lucent_rel_aaaa"), "{long}");
        // Names that share the kept prefix still differ.
        let other = join_table(&slug, &"C".repeat(63));
        assert_ne!(long, other);
        assert_eq!(long[..54], other[..54]);
        // Deterministic, and the suffix changes the name even when it falls in the cut part.
        assert_eq!(long, join_table(&slug, &field));
        assert_ne!(
            join_index(&slug, &field, "target"),
            join_index(&slug, &field, "cascade")
        );
        assert!(join_index(&slug, &field, "target").len() <= MAX_IDENTIFIER);
        // The longest name that is not folded.
        let fits = "x".repeat(MAX_IDENTIFIER - "_lucent_rel__f".len());
        assert_eq!(join_table(&fits, "f").len(), MAX_IDENTIFIER);
        assert_eq!(join_table(&fits, "f"), format!("_lucent_rel_{fits}_f"));
    }
}
