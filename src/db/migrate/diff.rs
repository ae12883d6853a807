//! What separates the recorded schema from the configured one, as operations, each marked safe to
//! apply at start or not.

use super::ops::{Entry, Operation};
use super::snapshot::{CollectionDef, FieldDef, Kind, Snapshot};

/// One difference and the operation that removes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub operation: Operation,
    /// `None` when applying it can neither lose data nor fail on existing data; otherwise why it
    /// needs a reviewed migration file.
    pub risk: Option<String>,
    /// Lines for the reviewer, written above the operation in a file.
    pub comments: Vec<String>,
}

impl Change {
    fn safe(operation: Operation) -> Self {
        Self {
            operation,
            risk: None,
            comments: Vec::new(),
        }
    }

    fn risky(operation: Operation, risk: String) -> Self {
        Self {
            operation,
            risk: Some(risk),
            comments: Vec::new(),
        }
    }

    pub fn entry(&self) -> Entry {
        let mut comments = self.comments.clone();
        if let Some(risk) = &self.risk {
            comments.insert(0, format!("Review: {risk}."));
        }
        Entry {
            operation: self.operation.clone(),
            comments,
        }
    }
}

/// The changes that turn `current` into `target`: new collections first, then field changes
/// collection by collection, dropped collections last (relations to them are gone by then).
/// `defaults` gives a field's configured default as JSON, used to fill existing rows.
pub fn diff(
    current: &Snapshot,
    target: &Snapshot,
    defaults: &dyn Fn(&str, &str) -> Option<serde_json::Value>,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for collection in &target.collections {
        if current.collection(&collection.name).is_none() {
            changes.push(Change::safe(Operation::CreateCollection {
                collection: collection.name.clone(),
                fields: collection.fields.clone(),
            }));
        }
    }
    for collection in &target.collections {
        if let Some(before) = current.collection(&collection.name) {
            diff_fields(before, collection, defaults, &mut changes);
        }
    }
    for collection in &current.collections {
        if target.collection(&collection.name).is_none() {
            changes.push(Change::risky(
                Operation::DropCollection {
                    collection: collection.name.clone(),
                },
                format!(
                    "collection `{}` was removed; dropping it deletes its table and every row",
                    collection.name
                ),
            ));
        }
    }
    changes
}

fn diff_fields(
    before: &CollectionDef,
    after: &CollectionDef,
    defaults: &dyn Fn(&str, &str) -> Option<serde_json::Value>,
    changes: &mut Vec<Change>,
) {
    let slug = &after.name;
    let dropped: Vec<&FieldDef> = before
        .fields
        .iter()
        .filter(|f| after.field(&f.name).is_none())
        .collect();
    let added: Vec<&FieldDef> = after
        .fields
        .iter()
        .filter(|f| before.field(&f.name).is_none())
        .collect();

    for field in &dropped {
        let mut change = Change::risky(
            Operation::DropField {
                collection: slug.clone(),
                field: field.name.clone(),
            },
            format!(
                "field `{slug}.{}` was removed; dropping it deletes its values",
                field.name
            ),
        );
        // A drop beside an add of the same type is often a rename: say how to keep the values.
        if let Some(twin) = added.iter().find(|a| !a.converts_from(field)) {
            change.comments.extend([
                format!(
                    "If `{}` was renamed to `{}`, keep its values: replace this operation and the",
                    field.name, twin.name
                ),
                format!("`add_field` of `{}` below with:", twin.name),
                "  [[operation]]".into(),
                "  op = \"rename_field\"".into(),
                format!("  collection = \"{slug}\""),
                format!("  from = \"{}\"", field.name),
                format!("  to = \"{}\"", twin.name),
            ]);
            if twin.required != field.required
                || twin.unique != field.unique
                || twin.index != field.index
            {
                change.comments.push(format!(
                    "and add an `alter_field` for `{}` with its new options.",
                    twin.name
                ));
            }
        }
        changes.push(change);
    }

    for field in &added {
        let fill = defaults(slug, &field.name);
        let operation = Operation::AddField {
            collection: slug.clone(),
            field: (*field).clone(),
            fill: fill.clone(),
        };
        if field.required && fill.is_none() {
            let mut change = Change::risky(
                operation,
                format!(
                    "new required field `{slug}.{}` has no default for the rows that exist",
                    field.name
                ),
            );
            change.comments.push(
                "Add `fill = <value>` to this operation to give existing rows a value.".into(),
            );
            changes.push(change);
        } else {
            changes.push(Change::safe(operation));
        }
    }

    for field in &after.fields {
        let Some(old) = before.field(&field.name) else {
            continue;
        };
        if old == field {
            continue;
        }
        let mut fill = None;
        let risk = if becomes_list(old, field) {
            None
        } else if becomes_single(old, field) {
            if field.required {
                fill = defaults(slug, &field.name);
            }
            Some(format!(
                "field `{slug}.{}` becomes one id: each document keeps only the first id of its list",
                field.name
            ))
        } else if field.converts_from(old) {
            Some(format!(
                "field `{slug}.{}` changes type from {} to {}; values that do not convert stop the migration",
                field.name,
                old.type_label(),
                field.type_label()
            ))
        } else if field.required && !old.required {
            fill = defaults(slug, &field.name);
            fill.is_none().then(|| {
                format!(
                    "field `{slug}.{}` becomes required without a default; rows holding null stop the migration",
                    field.name
                )
            })
        } else {
            None
        };
        let mut change = Change {
            operation: Operation::AlterField {
                collection: slug.clone(),
                field: field.clone(),
                fill,
            },
            risk,
            comments: Vec::new(),
        };
        change.comments.push(format!(
            "Was: {}{}{}{}",
            old.type_label(),
            if old.required { ", required" } else { "" },
            if old.unique { ", unique" } else { "" },
            if old.index { ", index" } else { "" },
        ));
        changes.push(change);
    }
}

/// Why an operation of a pending file needs review before it runs, if it does: `serve` applies
/// only files without such operations.
pub fn operation_risk(before: &Snapshot, operation: &Operation) -> Option<String> {
    match operation {
        Operation::CreateCollection { .. } => None,
        Operation::DropCollection { .. } => Some("deletes a table and its rows".into()),
        Operation::AddField { field, fill, .. } => (field.required && fill.is_none())
            .then(|| "a required field without `fill` fails on existing rows".into()),
        Operation::DropField { .. } => Some("deletes the values of a field".into()),
        Operation::RenameField { .. } => Some("renames a field".into()),
        Operation::AlterField {
            collection,
            field,
            fill,
        } => {
            let old = before.collection(collection)?.field(&field.name)?;
            if becomes_list(old, field) {
                None
            } else if becomes_single(old, field) {
                Some("keeps only the first id of each list".into())
            } else if field.converts_from(old) {
                Some("changes the type of a field".into())
            } else if field.required && !old.required && fill.is_none() {
                Some("makes a field required without `fill`".into())
            } else {
                None
            }
        }
    }
}

/// A to-one relation becoming a to-many one to the same collection: every id is kept, as a
/// one-element list.
fn becomes_list(old: &FieldDef, new: &FieldDef) -> bool {
    old.kind == Kind::Relation && !old.many && new.many && old.to == new.to
}

/// A to-many relation becoming a to-one one to the same collection: lists of more than one id
/// lose all but the first (`status` checks whether any has; none → the change is safe, unless
/// the field becomes required: an empty list leaves it null).
pub fn becomes_single(old: &FieldDef, new: &FieldDef) -> bool {
    old.many && !new.many && new.kind == Kind::Relation && old.to == new.to
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

    fn posts(fields: Vec<FieldDef>) -> Snapshot {
        Snapshot {
            collections: vec![CollectionDef {
                name: "posts".into(),
                fields,
            }],
        }
    }

    fn no_defaults(_: &str, _: &str) -> Option<serde_json::Value> {
        None
    }

    /// (case, before, after, expected summaries with `!` marking a risky change)
    #[test]
    fn changes_are_classified() {
        let title = field("title", Kind::String);
        let single = FieldDef {
            to: Some("tags".into()),
            ..field("tags", Kind::Relation)
        };
        let list = FieldDef {
            many: true,
            ..single.clone()
        };
        let required = |f: FieldDef| FieldDef {
            required: true,
            ..f
        };
        let cases: Vec<(&str, Snapshot, Snapshot, Vec<&str>)> = vec![
            (
                "same",
                posts(vec![title.clone()]),
                posts(vec![title.clone()]),
                vec![],
            ),
            (
                "new collection",
                Snapshot::default(),
                posts(vec![title.clone()]),
                vec!["create collection posts (1 fields)"],
            ),
            (
                "new optional field",
                posts(vec![]),
                posts(vec![title.clone()]),
                vec!["add field posts.title (string)"],
            ),
            (
                "new required field without default",
                posts(vec![]),
                posts(vec![required(title.clone())]),
                vec!["!add field posts.title (string)"],
            ),
            (
                "dropped field",
                posts(vec![title.clone()]),
                posts(vec![]),
                vec!["!drop field posts.title"],
            ),
            (
                "renamed field is a drop and an add",
                posts(vec![title.clone()]),
                posts(vec![field("headline", Kind::String)]),
                vec![
                    "!drop field posts.title",
                    "add field posts.headline (string)",
                ],
            ),
            (
                "type change",
                posts(vec![title.clone()]),
                posts(vec![field("title", Kind::Integer)]),
                vec!["!alter field posts.title (integer)"],
            ),
            (
                "relaxed constraint",
                posts(vec![required(title.clone())]),
                posts(vec![title.clone()]),
                vec!["alter field posts.title (string)"],
            ),
            (
                "new index",
                posts(vec![title.clone()]),
                posts(vec![FieldDef {
                    index: true,
                    ..title.clone()
                }]),
                vec!["alter field posts.title (string)"],
            ),
            (
                "becomes required",
                posts(vec![title.clone()]),
                posts(vec![required(title.clone())]),
                vec!["!alter field posts.title (string)"],
            ),
            (
                "dropped collection",
                posts(vec![]),
                Snapshot::default(),
                vec!["!drop collection posts"],
            ),
            (
                "new list",
                posts(vec![]),
                posts(vec![list.clone()]),
                vec!["add field posts.tags (relation → [tags])"],
            ),
            (
                "dropped list",
                posts(vec![list.clone()]),
                posts(vec![]),
                vec!["!drop field posts.tags"],
            ),
            (
                "one id becomes a list",
                posts(vec![single.clone()]),
                posts(vec![list.clone()]),
                vec!["alter field posts.tags (relation → [tags])"],
            ),
            (
                "a list becomes one id",
                posts(vec![list.clone()]),
                posts(vec![single.clone()]),
                vec!["!alter field posts.tags (relation → tags)"],
            ),
            (
                "a list of other targets",
                posts(vec![list.clone()]),
                posts(vec![FieldDef {
                    to: Some("users".into()),
                    ..list.clone()
                }]),
                vec!["!alter field posts.tags (relation → [users])"],
            ),
            (
                "a list that cascades",
                posts(vec![list.clone()]),
                posts(vec![FieldDef {
                    on_delete: OnDeleteDef::Cascade,
                    ..list.clone()
                }]),
                vec!["alter field posts.tags (relation → [tags])"],
            ),
            (
                "text becomes a list",
                posts(vec![field("tags", Kind::String)]),
                posts(vec![list.clone()]),
                vec!["!alter field posts.tags (relation → [tags])"],
            ),
        ];
        for (case, before, after, expected) in cases {
            let found: Vec<String> = diff(&before, &after, &no_defaults)
                .iter()
                .map(|c| {
                    format!(
                        "{}{}",
                        if c.risk.is_some() { "!" } else { "" },
                        c.operation.summary()
                    )
                })
                .collect();
            assert_eq!(found, expected, "{case}");
        }
    }

    #[test]
    fn a_default_fills_existing_rows_of_a_new_required_field() {
        let status = FieldDef {
            required: true,
            ..field("status", Kind::Select)
        };
        let changes = diff(&posts(vec![]), &posts(vec![status]), &|_, _| {
            Some(serde_json::json!("draft"))
        });
        assert_eq!(changes.len(), 1);
        assert!(changes[0].risk.is_none());
        assert!(matches!(
            &changes[0].operation,
            Operation::AddField { fill: Some(v), .. } if v == "draft"
        ));
    }

    #[test]
    fn applying_the_changes_reaches_the_target() {
        let before = posts(vec![field("title", Kind::String), field("old", Kind::Json)]);
        let after = posts(vec![
            field("title", Kind::Text),
            field("views", Kind::Integer),
        ]);
        let mut snapshot = before.clone();
        for change in diff(&before, &after, &no_defaults) {
            change.operation.apply_to(&mut snapshot).unwrap();
        }
        assert!(diff(&snapshot, &after, &no_defaults).is_empty());
    }
}
