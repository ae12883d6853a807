//! The schema a database has, as Lucent recorded it: each collection with the part of its fields
//! that shapes storage (type, relation, to-many, null, unique, index). Stored as JSON in `_lucent_schema`,
//! built from the config to diff against, and changed one operation at a time.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::schema::{
    Collection, CollectionAccess, DEFAULT_MAX_ITEMS, Field, FieldKind, OnDelete, Schema,
};

/// Collections in creation order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub collections: Vec<CollectionDef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionDef {
    pub name: String,
    pub fields: Vec<FieldDef>,
}

/// The storage of one field. Validation-only options (`max_length`, `pattern`, select `options`,
/// `default`, ...) live in the config alone: changing them changes no table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The target collection of a relation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "is_set_null")]
    pub on_delete: OnDeleteDef,
    /// A to-many relation: no column, a join table (`schema::join_table`). Its `max_items`, like
    /// `required`, is checked on writes and lives in the config alone.
    #[serde(default, skip_serializing_if = "is_false")]
    pub many: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub index: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub case_insensitive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    String,
    Text,
    Email,
    Integer,
    Number,
    Boolean,
    Select,
    Datetime,
    Json,
    Relation,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDeleteDef {
    #[default]
    SetNull,
    Cascade,
    Restrict,
}

fn is_false(value: &bool) -> bool {
    !value
}

fn is_set_null(value: &OnDeleteDef) -> bool {
    *value == OnDeleteDef::SetNull
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Text => "text",
            Kind::Email => "email",
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::Boolean => "boolean",
            Kind::Select => "select",
            Kind::Datetime => "datetime",
            Kind::Json => "json",
            Kind::Relation => "relation",
        }
    }
}

impl FieldDef {
    pub fn from_field(field: &Field) -> Self {
        let many = field.is_list();
        let (kind, to, on_delete) = match &field.kind {
            FieldKind::String => (Kind::String, None, OnDelete::SetNull),
            FieldKind::Text => (Kind::Text, None, OnDelete::SetNull),
            FieldKind::Email => (Kind::Email, None, OnDelete::SetNull),
            FieldKind::Integer => (Kind::Integer, None, OnDelete::SetNull),
            FieldKind::Number => (Kind::Number, None, OnDelete::SetNull),
            FieldKind::Boolean => (Kind::Boolean, None, OnDelete::SetNull),
            FieldKind::Select(_) => (Kind::Select, None, OnDelete::SetNull),
            FieldKind::Datetime => (Kind::Datetime, None, OnDelete::SetNull),
            FieldKind::Json => (Kind::Json, None, OnDelete::SetNull),
            FieldKind::Relation { to, on_delete, .. } => {
                (Kind::Relation, Some(to.clone()), *on_delete)
            }
        };
        Self {
            name: field.name.clone(),
            kind,
            to,
            on_delete: match on_delete {
                OnDelete::SetNull => OnDeleteDef::SetNull,
                OnDelete::Cascade => OnDeleteDef::Cascade,
                OnDelete::Restrict => OnDeleteDef::Restrict,
            },
            many,
            // A list has no column to constrain: `required` (at least one id) is a write check.
            required: field.required && !many,
            unique: field.unique && !many,
            index: field.index && !many,
            case_insensitive: field.case_insensitive && !many,
        }
    }

    /// A schema field with this storage, for the DDL and row code that take one.
    pub fn to_field(&self) -> Field {
        let kind = match self.kind {
            Kind::String => FieldKind::String,
            Kind::Text => FieldKind::Text,
            Kind::Email => FieldKind::Email,
            Kind::Integer => FieldKind::Integer,
            Kind::Number => FieldKind::Number,
            Kind::Boolean => FieldKind::Boolean,
            Kind::Select => FieldKind::Select(Vec::new()),
            Kind::Datetime => FieldKind::Datetime,
            Kind::Json => FieldKind::Json,
            Kind::Relation => FieldKind::Relation {
                to: self.to.clone().unwrap_or_default(),
                on_delete: match self.on_delete {
                    OnDeleteDef::SetNull => OnDelete::SetNull,
                    OnDeleteDef::Cascade => OnDelete::Cascade,
                    OnDeleteDef::Restrict => OnDelete::Restrict,
                },
                many: self.many.then_some(DEFAULT_MAX_ITEMS),
            },
        };
        let mut field = Field::new(&self.name, kind);
        field.required = self.required;
        field.unique = self.unique;
        field.index = self.index;
        field.case_insensitive = self.case_insensitive;
        field
    }

    /// Whether the stored values must be converted: another type, a relation to another
    /// collection, or one id becoming a list or the other way round.
    pub fn converts_from(&self, before: &FieldDef) -> bool {
        self.kind != before.kind || self.to != before.to || self.many != before.many
    }

    /// `string`, `relation → users`, or `relation → [tags]` (to-many).
    pub fn type_label(&self) -> String {
        match &self.to {
            Some(to) if self.kind == Kind::Relation && self.many => format!("relation → [{to}]"),
            Some(to) if self.kind == Kind::Relation => format!("relation → {to}"),
            _ => self.kind.name().to_string(),
        }
    }

    /// Whether the field has a column (every field but a to-many relation).
    pub fn has_column(&self) -> bool {
        !self.many
    }
}

impl CollectionDef {
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// A schema collection with this storage, for the DDL and row code that take one.
    pub fn to_collection(&self) -> Collection {
        Collection {
            slug: self.name.clone(),
            label: self.name.clone(),
            fields: self.fields.iter().map(FieldDef::to_field).collect(),
            auth: None,
            access: CollectionAccess::default(),
            file: PathBuf::new(),
            prefix: String::new(),
        }
    }
}

impl Snapshot {
    /// The storage the config asks for.
    pub fn from_schema(schema: &Schema) -> Self {
        Self {
            collections: schema
                .collections
                .iter()
                .map(|c| CollectionDef {
                    name: c.slug.clone(),
                    fields: c.fields.iter().map(FieldDef::from_field).collect(),
                })
                .collect(),
        }
    }

    pub fn collection(&self, name: &str) -> Option<&CollectionDef> {
        self.collections.iter().find(|c| c.name == name)
    }

    pub(super) fn collection_mut(&mut self, name: &str) -> Result<&mut CollectionDef, String> {
        self.collections
            .iter_mut()
            .find(|c| c.name == name)
            .ok_or_else(|| format!("there is no collection `{name}`"))
    }
}
