//! The statements of an import, built from checked entries: many documents of a collection in
//! one insert, the relation values written after them (links), and what a refusal of the
//! database means. Many rows per statement, as far as the engines' limits on bound parameters
//! allow: a round trip per document would make a large import slow on PostgreSQL.

use std::collections::HashSet;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, InsertStatement, Query, SimpleExpr};
use sea_orm::{DbBackend, DbErr, SqlErr};

use super::super::{Error, Result};
use super::Entry;
use super::waiting::Link;
use crate::db::to_sql_value;
use crate::records::write::unique_field;
use crate::schema::{Collection, FieldError, FieldKind, Schema, Value, join_table};

/// Bound parameters one statement takes at most: SQLite's limit is 32,766, PostgreSQL's 65,535.
pub(super) const MAX_PARAMETERS: usize = 30_000;

/// How many rows of `columns` values one statement takes.
pub(super) fn rows_per_statement(columns: usize) -> usize {
    (MAX_PARAMETERS / columns.max(1)).max(1)
}

/// The columns of a collection's table, in the order [`row`] gives values.
pub(super) fn columns(collection: &Collection) -> Vec<Alias> {
    std::iter::once(Alias::new("id"))
        .chain(
            collection
                .fields
                .iter()
                .filter(|f| f.has_column())
                .map(|f| Alias::new(&f.name)),
        )
        .chain([Alias::new("createdAt"), Alias::new("updatedAt")])
        .collect()
}

/// A document's row, and the relation values written after it (links): every non-empty list,
/// and every optional to-one relation whose target is not in `known` (inserted empty, set once
/// its target is in). A required to-one relation is in the row, as its column cannot be empty.
pub(super) fn row(
    schema: &Schema,
    entry: &Entry,
    known: &HashSet<(usize, String)>,
    backend: DbBackend,
) -> (Vec<SimpleExpr>, Vec<Link>) {
    let collection = &schema.collections[entry.collection];
    let mut values: Vec<SimpleExpr> = vec![entry.id.clone().into()];
    let mut links = Vec::new();
    for (index, value) in &entry.values {
        let field = &collection.fields[*index];
        let deferred = match (&field.kind, value) {
            (
                FieldKind::Relation {
                    to, many: Some(_), ..
                },
                Value::List(targets),
            ) => Some((to, targets.as_slice())),
            (FieldKind::Relation { to, many: None, .. }, Value::Text(target))
                if !field.required =>
            {
                let to_index = schema.index_of(to).unwrap_or_default();
                match known.contains(&(to_index, target.clone())) {
                    true => None,
                    false => Some((to, std::slice::from_ref(target))),
                }
            }
            _ => None,
        };
        let value = match deferred {
            Some((to, targets)) => {
                if !targets.is_empty() {
                    links.push(Link {
                        line: entry.line,
                        collection: entry.collection,
                        source: entry.id.clone(),
                        field: *index,
                        to: schema.index_of(to).unwrap_or_default(),
                        targets: targets.to_vec(),
                    });
                }
                &Value::Null
            }
            None => value,
        };
        if field.has_column() {
            values.push(Expr::val(to_sql_value(&field.kind, value, backend)));
        }
    }
    values.push(entry.created.into());
    values.push(entry.updated.into());
    (values, links)
}

/// One insert of `rows` (each as [`row`] gives it) into `collection`'s table.
///
/// # Errors
/// `Internal` if a row does not fit the columns (it always does).
pub(super) fn insert(
    collection: &Collection,
    rows: Vec<Vec<SimpleExpr>>,
) -> Result<InsertStatement> {
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new(&collection.slug))
        .columns(columns(collection));
    for row in rows {
        insert
            .values(row)
            .map_err(|e| Error::Internal(e.to_string()))?;
    }
    Ok(insert)
}

/// The join rows of lists of one field (`links` all of `collection.fields[field]`), in one
/// insert: each list's ids with their positions.
///
/// # Errors
/// `Internal` if a row does not fit the columns (it always does).
pub(super) fn join_rows(
    collection: &Collection,
    field: usize,
    links: &[Link],
) -> Result<InsertStatement> {
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new(join_table(
            &collection.slug,
            &collection.fields[field].name,
        )))
        .columns([
            Alias::new("source"),
            Alias::new("target"),
            Alias::new("position"),
        ]);
    for link in links {
        for (position, target) in link.targets.iter().enumerate() {
            let position = i64::try_from(position).unwrap_or(i64::MAX);
            insert
                .values([
                    link.source.as_str().into(),
                    target.as_str().into(),
                    position.into(),
                ])
                .map_err(|e| Error::Internal(e.to_string()))?;
        }
    }
    Ok(insert)
}

/// `links` in groups of at most `max` join rows (a list longer than `max` alone in its group).
pub(super) fn by_rows(links: Vec<Link>, max: usize) -> Vec<Vec<Link>> {
    let mut groups: Vec<Vec<Link>> = Vec::new();
    let mut rows = 0;
    for link in links {
        let size = link.targets.len();
        match groups.last_mut() {
            Some(group) if rows + size <= max => group.push(link),
            _ => {
                rows = 0;
                groups.push(vec![link]);
            }
        }
        rows += size;
    }
    groups
}

/// The update that sets a to-one relation (`link`, of one target) on its document.
pub(super) fn set_relation(
    collection: &Collection,
    link: &Link,
) -> sea_orm::sea_query::UpdateStatement {
    let target = link.targets.first().cloned().unwrap_or_default();
    let mut update = Query::update();
    update
        .table(Alias::new(&collection.slug))
        .value(Alias::new(&collection.fields[link.field].name), target)
        .and_where(Expr::col(Alias::new("id")).eq(link.source.as_str()));
    update
}

/// Why the database refused a document or a relation value.
#[derive(Debug, PartialEq)]
pub(super) enum Refusal {
    /// A relation's target is not there (yet).
    ForeignKey,
    /// A value the database refused, as the API reports it: a taken unique value or id.
    Field(FieldError),
}

/// What a refused write means; any other failure stays the database's.
///
/// # Errors
/// `Database` for a failure that is not a refusal (a lost connection, ...).
pub(super) fn refusal(collection: &Collection, error: DbErr) -> Result<Refusal> {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) => {
            // As the API names the field; anything else is the primary key.
            Ok(Refusal::Field(match unique_field(collection, &message) {
                Some(field) => FieldError::new(
                    &field.name,
                    "unique",
                    format!("{} is already taken", field.name),
                ),
                None => FieldError::new(
                    "id",
                    "duplicate_id",
                    format!("a {} document with this id already exists", collection.slug),
                ),
            }))
        }
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => Ok(Refusal::ForeignKey),
        // SQLite reports some foreign-key failures with a code sea-orm does not map.
        _ if error.to_string().contains("FOREIGN KEY constraint failed") => Ok(Refusal::ForeignKey),
        _ => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::SqliteQueryBuilder;

    use super::*;
    use crate::schema::{CollectionAccess, Field, OnDelete, parse_time};

    fn relation(name: &str, to: &str, required: bool, many: bool) -> Field {
        let mut field = Field::new(
            name,
            FieldKind::Relation {
                to: to.into(),
                on_delete: OnDelete::SetNull,
                many: many.then_some(10),
            },
        );
        field.required = required;
        field
    }

    fn schema() -> Schema {
        let posts = Collection {
            slug: "posts".into(),
            label: "Posts".into(),
            fields: vec![
                Field::new("title", FieldKind::String),
                relation("author", "users", true, false),
                relation("editor", "users", false, false),
                relation("tags", "tags", false, true),
            ],
            auth: None,
            access: CollectionAccess::default(),
            file: "lucent.toml".into(),
            prefix: String::new(),
        };
        let bare = |slug: &str| Collection {
            slug: slug.into(),
            label: slug.into(),
            fields: Vec::new(),
            auth: None,
            access: CollectionAccess::default(),
            file: "lucent.toml".into(),
            prefix: String::new(),
        };
        Schema::new(vec![posts, bare("users"), bare("tags")])
    }

    fn entry(editor: &str, tags: &[&str]) -> Entry {
        let time = parse_time("2026-01-02T03:04:05.678Z").unwrap();
        Entry {
            line: 4,
            collection: 0,
            id: "p1".into(),
            created: time,
            updated: time,
            values: vec![
                (0, Value::Text("Hi".into())),
                (1, Value::Text("u1".into())),
                (2, Value::Text(editor.into())),
                (3, Value::List(tags.iter().map(|t| t.to_string()).collect())),
            ],
        }
    }

    fn link(field: usize, to: usize, targets: &[&str]) -> Link {
        Link {
            line: 4,
            collection: 0,
            source: "p1".into(),
            field,
            to,
            targets: targets.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn optional_relations_to_unknown_targets_and_lists_are_written_after_the_row() {
        let schema = schema();
        let posts = &schema.collections[0];
        let known: HashSet<(usize, String)> = [(1, "u2".to_string())].into();
        let cases = [
            // A known editor is in the row; the list follows it.
            (
                entry("u2", &["t1", "t2"]),
                "('p1', 'Hi', 'u1', 'u2', '2026-01-02 03:04:05.678000 +00:00', '2026-01-02 03:04:05.678000 +00:00')",
                vec![link(3, 2, &["t1", "t2"])],
            ),
            // An editor not known to exist is set after the row; an empty list needs nothing.
            (
                entry("u3", &[]),
                "('p1', 'Hi', 'u1', NULL, '2026-01-02 03:04:05.678000 +00:00', '2026-01-02 03:04:05.678000 +00:00')",
                vec![link(2, 1, &["u3"])],
            ),
        ];
        for (entry, values, links) in cases {
            let (row, deferred) = row(&schema, &entry, &known, DbBackend::Sqlite);
            let sql = insert(posts, vec![row])
                .unwrap()
                .to_string(SqliteQueryBuilder);
            assert_eq!(
                sql,
                format!(
                    r#"INSERT INTO "posts" ("id", "title", "author", "editor", "createdAt", "updatedAt") VALUES {values}"#
                )
            );
            assert_eq!(deferred, links);
        }
    }

    #[test]
    fn links_become_join_rows_or_an_update() {
        let schema = schema();
        let posts = &schema.collections[0];
        let mut second = link(3, 2, &["t3"]);
        second.source = "p2".into();
        assert_eq!(
            join_rows(posts, 3, &[link(3, 2, &["t2", "t1"]), second])
                .unwrap()
                .to_string(SqliteQueryBuilder),
            r#"INSERT INTO "_lucent_rel_posts_tags" ("source", "target", "position") VALUES ('p1', 't2', 0), ('p1', 't1', 1), ('p2', 't3', 0)"#
        );
        assert_eq!(
            set_relation(posts, &link(2, 1, &["u3"])).to_string(SqliteQueryBuilder),
            r#"UPDATE "posts" SET "editor" = 'u3' WHERE "id" = 'p1'"#
        );
        let sizes = |max: usize, lists: &[usize]| -> Vec<Vec<usize>> {
            let links = lists.iter().map(|&n| link(3, 2, &vec!["t"; n])).collect();
            by_rows(links, max)
                .iter()
                .map(|group| group.iter().map(|l| l.targets.len()).collect())
                .collect()
        };
        assert_eq!(sizes(4, &[]), Vec::<Vec<usize>>::new());
        assert_eq!(
            sizes(4, &[1, 2, 1, 3, 5, 1]),
            vec![vec![1, 2, 1], vec![3], vec![5], vec![1]]
        );
        assert_eq!(rows_per_statement(6), 5000);
        assert_eq!(rows_per_statement(0), MAX_PARAMETERS);
        assert_eq!(rows_per_statement(40_000), 1);
    }
}
