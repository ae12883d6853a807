//! Migration files: engine-neutral operations in TOML, read from and written to `migrations/`,
//! and what each operation does to the recorded schema ([`Operation::apply_to`]).
//!
//! A file is a list of `[[operation]]` tables run in order; comments are free. Its checksum is the
//! SHA-256 of its bytes, so any edit after it was applied is noticed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::snapshot::{CollectionDef, FieldDef, Kind, Snapshot};
use crate::schema::{RESERVED_FIELDS, SYSTEM_FIELDS};

/// One schema change, rendered to SQL for the engine at apply time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    CreateCollection {
        collection: String,
        fields: Vec<FieldDef>,
    },
    DropCollection {
        collection: String,
    },
    AddField {
        collection: String,
        field: FieldDef,
        /// Written into the rows that exist when the field is added.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<serde_json::Value>,
    },
    DropField {
        collection: String,
        field: String,
    },
    RenameField {
        collection: String,
        from: String,
        to: String,
    },
    /// A new definition for an existing field: type, null, unique, index or relation.
    AlterField {
        collection: String,
        field: FieldDef,
        /// Written into the rows where the field is null (for a field becoming required).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<serde_json::Value>,
    },
}

impl Operation {
    /// One line for people: `add field posts.subtitle (string)`.
    pub fn summary(&self) -> String {
        match self {
            Operation::CreateCollection { collection, fields } => {
                format!("create collection {collection} ({} fields)", fields.len())
            }
            Operation::DropCollection { collection } => format!("drop collection {collection}"),
            Operation::AddField {
                collection, field, ..
            } => format!(
                "add field {collection}.{} ({})",
                field.name,
                field.type_label()
            ),
            Operation::DropField { collection, field } => {
                format!("drop field {collection}.{field}")
            }
            Operation::RenameField {
                collection,
                from,
                to,
            } => format!("rename field {collection}.{from} to {to}"),
            Operation::AlterField {
                collection, field, ..
            } => format!(
                "alter field {collection}.{} ({})",
                field.name,
                field.type_label()
            ),
        }
    }

    /// A short name for a generated file: `add_posts_subtitle`.
    pub fn slug(&self) -> String {
        match self {
            Operation::CreateCollection { collection, .. } => format!("create_{collection}"),
            Operation::DropCollection { collection } => format!("drop_{collection}"),
            Operation::AddField {
                collection, field, ..
            } => format!("add_{collection}_{}", field.name),
            Operation::DropField { collection, field } => format!("drop_{collection}_{field}"),
            Operation::RenameField { collection, to, .. } => format!("rename_{collection}_{to}"),
            Operation::AlterField {
                collection, field, ..
            } => format!("alter_{collection}_{}", field.name),
        }
        .replace('-', "_")
        .to_lowercase()
    }
}

impl Operation {
    /// Applies the operation to a recorded schema, checking it fits the schema as it is.
    ///
    /// # Errors
    /// What does not fit: an unknown collection or field, a name already taken, a relation
    /// without a target.
    pub fn apply_to(&self, schema: &mut Snapshot) -> Result<(), String> {
        match self {
            Operation::CreateCollection { collection, fields } => {
                check_slug(collection)?;
                if schema.collection(collection).is_some() {
                    return Err(format!("collection `{collection}` already exists"));
                }
                let mut created = CollectionDef {
                    name: collection.clone(),
                    fields: Vec::new(),
                };
                for field in fields {
                    check_new_field(&created, field)?;
                    created.fields.push(field.clone());
                }
                schema.collections.push(created);
            }
            Operation::DropCollection { collection } => {
                schema.collection_mut(collection)?;
                schema.collections.retain(|c| &c.name != collection);
            }
            Operation::AddField {
                collection,
                field,
                fill,
            } => {
                let target = schema.collection_mut(collection)?;
                check_new_field(target, field)?;
                if field.many && fill.is_some() {
                    return Err(format!(
                        "`fill` does not apply to a to-many relation (`{}`)",
                        field.name
                    ));
                }
                target.fields.push(field.clone());
            }
            Operation::DropField { collection, field } => {
                let target = schema.collection_mut(collection)?;
                existing(target, field)?;
                target.fields.retain(|f| &f.name != field);
            }
            Operation::RenameField {
                collection,
                from,
                to,
            } => {
                let target = schema.collection_mut(collection)?;
                existing(target, from)?;
                check_name(target, to)?;
                if let Some(field) = target.fields.iter_mut().find(|f| &f.name == from) {
                    field.name = to.clone();
                }
            }
            Operation::AlterField {
                collection,
                field,
                fill,
            } => {
                let target = schema.collection_mut(collection)?;
                existing(target, &field.name)?;
                check_relation(field)?;
                if field.many && fill.is_some() {
                    return Err(format!(
                        "`fill` does not apply to a to-many relation (`{}`)",
                        field.name
                    ));
                }
                if let Some(slot) = target.fields.iter_mut().find(|f| f.name == field.name) {
                    *slot = field.clone();
                }
            }
        }
        Ok(())
    }
}

fn existing(collection: &CollectionDef, name: &str) -> Result<(), String> {
    match collection.field(name) {
        Some(_) => Ok(()),
        None => Err(format!("`{}` has no field `{name}`", collection.name)),
    }
}

fn check_name(collection: &CollectionDef, name: &str) -> Result<(), String> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid || SYSTEM_FIELDS.contains(&name) || RESERVED_FIELDS.contains(&name) {
        return Err(format!("invalid field name `{name}`"));
    }
    if collection.field(name).is_some() {
        return Err(format!(
            "`{}` already has a field `{name}`",
            collection.name
        ));
    }
    Ok(())
}

fn check_slug(slug: &str) -> Result<(), String> {
    let valid = slug.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && slug.len() <= 63
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!("invalid collection name `{slug}`"))
    }
}

fn check_relation(field: &FieldDef) -> Result<(), String> {
    if field.many {
        if field.kind != Kind::Relation {
            return Err(format!(
                "`many` applies only to relation fields (`{}`)",
                field.name
            ));
        }
        // A list has no column: these would be recorded but mean nothing (`required` is
        // checked on writes, from the config).
        if field.required || field.unique || field.index || field.case_insensitive {
            return Err(format!(
                "a to-many relation takes no `required`, `unique`, `index` or `case_insensitive` (`{}`)",
                field.name
            ));
        }
    }
    match (field.kind, &field.to) {
        (Kind::Relation, None) => Err(format!(
            "relation field `{}` needs `to = \"<collection>\"`",
            field.name
        )),
        (Kind::Relation, Some(_)) | (_, None) => Ok(()),
        (_, Some(_)) => Err(format!(
            "`to` applies only to relation fields (`{}`)",
            field.name
        )),
    }
}

fn check_new_field(collection: &CollectionDef, field: &FieldDef) -> Result<(), String> {
    check_name(collection, &field.name)?;
    check_relation(field)
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    #[serde(default)]
    operation: Vec<Operation>,
}

/// A migration file as read from `migrations/`.
#[derive(Debug, Clone)]
pub struct MigrationFile {
    /// The file stem, `0003_rename_title`; the key it is recorded under.
    pub name: String,
    pub path: PathBuf,
    pub checksum: String,
    pub operations: Vec<Operation>,
}

/// The SHA-256 of a file's bytes, in hex.
pub fn checksum(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl MigrationFile {
    /// Reads and parses one file.
    ///
    /// # Errors
    /// The file cannot be read, or is not a list of known operations.
    pub fn read(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let text = String::from_utf8(bytes.clone())
            .map_err(|_| format!("{}: not UTF-8", path.display()))?;
        let body: FileBody =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.to_path_buf(),
            checksum: checksum(&bytes),
            operations: body.operation,
        })
    }
}

/// Every `NNNN_name.toml` of `dir`, sorted by name; a missing folder holds none.
///
/// # Errors
/// Every file that cannot be read or parsed.
pub fn read_folder(dir: &Path) -> Result<Vec<MigrationFile>, Vec<String>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match MigrationFile::read(&path) {
            Ok(file) => files.push(file),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

/// One operation to write, with the comment lines that explain it to the reviewer.
#[derive(Debug, Clone)]
pub struct Entry {
    pub operation: Operation,
    pub comments: Vec<String>,
}

/// The text of a migration file.
///
/// # Errors
/// An operation TOML cannot hold (a `fill` value containing `null`).
pub fn render(header: &[String], entries: &[Entry]) -> Result<String, String> {
    let mut text = String::new();
    for line in header {
        text.push_str(&format!("# {line}\n"));
    }
    for entry in entries {
        text.push('\n');
        for line in &entry.comments {
            text.push_str(&format!("# {line}\n"));
        }
        let body = FileBody {
            operation: vec![entry.operation.clone()],
        };
        let rendered =
            toml::to_string(&body).map_err(|e| format!("{}: {e}", entry.operation.summary()))?;
        text.push_str(&rendered);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::migrate::snapshot::{Kind, OnDeleteDef};

    fn field(name: &str, kind: Kind) -> FieldDef {
        FieldDef {
            name: name.into(),
            kind,
            to: None,
            on_delete: OnDeleteDef::SetNull,
            many: false,
            required: false,
            unique: false,
            index: false,
            case_insensitive: false,
        }
    }

    #[test]
    fn rendered_files_parse_back_to_the_same_operations() {
        let operations = vec![
            Operation::CreateCollection {
                collection: "posts".into(),
                fields: vec![field("title", Kind::String), field("views", Kind::Integer)],
            },
            Operation::AddField {
                collection: "posts".into(),
                field: FieldDef {
                    required: true,
                    ..field("status", Kind::Select)
                },
                fill: Some(serde_json::json!("draft")),
            },
            Operation::RenameField {
                collection: "posts".into(),
                from: "title".into(),
                to: "headline".into(),
            },
            Operation::DropCollection {
                collection: "old".into(),
            },
        ];
        let entries: Vec<Entry> = operations
            .iter()
            .map(|operation| Entry {
                operation: operation.clone(),
                comments: vec!["why".into()],
            })
            .collect();
        let text = render(&["header".into()], &entries).unwrap();
        let body: FileBody = toml::from_str(&text).unwrap();
        assert_eq!(body.operation, operations, "{text}");
    }

    #[test]
    fn unknown_operations_and_keys_are_errors() {
        for text in [
            "[[operation]]\nop = \"truncate\"\ncollection = \"posts\"\n",
            "[[operation]]\nop = \"drop_field\"\ncollection = \"posts\"\nfield = \"a\"\nextra = 1\n",
            "[[operation]]\nop = \"add_field\"\ncollection = \"posts\"\nfield = { name = \"a\", type = \"strng\" }\n",
        ] {
            assert!(toml::from_str::<FileBody>(text).is_err(), "{text}");
        }
    }

    /// A list in a file is a relation without column constraints and without `fill`.
    #[test]
    fn lists_are_checked_when_applied() {
        let list = FieldDef {
            to: Some("tags".into()),
            many: true,
            ..field("tags", Kind::Relation)
        };
        let mut schema = Snapshot::default();
        Operation::CreateCollection {
            collection: "posts".into(),
            fields: vec![],
        }
        .apply_to(&mut schema)
        .unwrap();
        let add = |field: FieldDef, fill: Option<serde_json::Value>| Operation::AddField {
            collection: "posts".into(),
            field,
            fill,
        };
        let refused = [
            (
                add(
                    FieldDef {
                        many: true,
                        ..field("n", Kind::String)
                    },
                    None,
                ),
                "`many` applies only to relation fields",
            ),
            (
                add(
                    FieldDef {
                        unique: true,
                        ..list.clone()
                    },
                    None,
                ),
                "a to-many relation takes no",
            ),
            (
                add(
                    FieldDef {
                        required: true,
                        ..list.clone()
                    },
                    None,
                ),
                "a to-many relation takes no",
            ),
            (
                add(list.clone(), Some(serde_json::json!(["x"]))),
                "`fill` does not apply",
            ),
        ];
        for (operation, expected) in refused {
            let error = operation.apply_to(&mut schema.clone()).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
        add(list.clone(), None).apply_to(&mut schema).unwrap();
        let alter = Operation::AlterField {
            collection: "posts".into(),
            field: list,
            fill: Some(serde_json::json!("x")),
        };
        assert!(alter.apply_to(&mut schema).unwrap_err().contains("`fill`"));
    }
}
