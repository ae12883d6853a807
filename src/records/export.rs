//! Reading collections out whole, for `lucent export`: every stored field of every document
//! (hidden ones and an account's password hash included: an export is a backup, not an answer),
//! each to-many list as its ids in order. Read a page at a time in id order from one snapshot, so
//! memory stays flat however large a collection is and every page sees the same moment.

use std::collections::HashSet;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction};

use super::lists::attach_lists;
use super::{Records, Result};
use crate::db::decode_row;
use crate::schema::{Doc, FieldKind, Schema};

/// Documents per page of an export. Each page is one query, and one more per list field.
const EXPORT_PAGE: u64 = 500;

/// One moment of the database, read collection by collection.
#[derive(Debug)]
pub struct Snapshot<'a> {
    records: &'a Records,
    transaction: DatabaseTransaction,
}

impl Records {
    /// Opens a [`Snapshot`]: what it reads is the database as it was now, whatever is written
    /// meanwhile.
    ///
    /// # Errors
    /// The database's.
    pub async fn snapshot(&self) -> Result<Snapshot<'_>> {
        Ok(Snapshot {
            records: self,
            transaction: self.db.snapshot().await?,
        })
    }
}

impl Snapshot<'_> {
    /// How many documents `slug` holds.
    ///
    /// # Errors
    /// `NotFound` for an unknown collection; the database's.
    pub async fn count(&self, slug: &str) -> Result<u64> {
        let (collection, _, _) = self.records.collection(slug)?;
        let mut select = Query::select();
        select
            .expr(Func::count(Expr::col(Alias::new("id"))))
            .from(Alias::new(&collection.slug));
        let row = self.transaction.query_one(&select).await?;
        let count: i64 = match row {
            Some(row) => row.try_get_by_index(0)?,
            None => 0,
        };
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// The next [`EXPORT_PAGE`] documents of `slug` after the id `after` (from the first when
    /// `None`), in the order of ids, whole: every column, hidden ones too, and every list. An
    /// empty page is the end.
    ///
    /// Ids are compared in the engine's own order (the primary key's), so the key serves every
    /// page: SQLite compares bytes, PostgreSQL the database's collation. The two agree on the
    /// ids Lucent makes (lower-case UUIDs), so both engines list such documents in the same order.
    ///
    /// # Errors
    /// `NotFound` for an unknown collection; the database's.
    pub async fn page(&self, slug: &str, after: Option<&str>) -> Result<Vec<Doc>> {
        let (collection, plan, _) = self.records.collection(slug)?;
        let id = (Alias::new(&collection.slug), Alias::new("id"));
        let mut select = plan.select_all.clone();
        if let Some(after) = after {
            select.and_where(Expr::col(id.clone()).gt(after));
        }
        select.order_by(id, Order::Asc).limit(EXPORT_PAGE);
        let backend = self.records.db.backend();
        let rows = self.transaction.query_all(&select).await?;
        let mut docs = rows
            .iter()
            .map(|row| decode_row(row, collection, &plan.all_columns, backend))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        attach_lists(&self.transaction, collection, None, &mut docs).await?;
        Ok(docs)
    }

    /// Ends the snapshot.
    ///
    /// # Errors
    /// The database's.
    pub async fn close(self) -> Result<()> {
        self.transaction.rollback().await?;
        Ok(())
    }
}

/// The collections of `schema` (by index) in an order where each comes after the collections
/// its relations point to, as far as cycles allow: read back in this order, most relations find
/// their target already written. A cycle is broken at the first collection (in declaration order)
/// whose required relations are all satisfied, else at the first one left; self-references
/// never order anything.
pub fn dependency_order(schema: &Schema) -> Vec<usize> {
    let targets: Vec<Vec<(usize, bool)>> = schema
        .collections
        .iter()
        .enumerate()
        .map(|(index, collection)| {
            collection
                .fields
                .iter()
                .filter_map(|field| match &field.kind {
                    FieldKind::Relation { to, many, .. } => schema
                        .index_of(to)
                        .filter(|&target| target != index)
                        .map(|target| (target, field.required && many.is_none())),
                    _ => None,
                })
                .collect()
        })
        .collect();
    let mut placed = HashSet::new();
    let mut order = Vec::with_capacity(targets.len());
    while order.len() < targets.len() {
        let left = || (0..targets.len()).filter(|i| !placed.contains(i));
        let ready = |needed: &dyn Fn(bool) -> bool| {
            left().find(|&i| {
                targets[i]
                    .iter()
                    .all(|&(target, required)| !needed(required) || placed.contains(&target))
            })
        };
        let next = ready(&|_| true)
            .or_else(|| ready(&|required| required))
            .or_else(|| left().next())
            .expect("a collection is left");
        placed.insert(next);
        order.push(next);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Collection, CollectionAccess, Field, OnDelete};

    fn collection(slug: &str, relations: &[(&str, bool, bool)]) -> Collection {
        Collection {
            slug: slug.into(),
            label: slug.into(),
            fields: relations
                .iter()
                .enumerate()
                .map(|(i, &(to, required, many))| {
                    let mut field = Field::new(
                        &format!("r{i}"),
                        FieldKind::Relation {
                            to: to.into(),
                            on_delete: OnDelete::SetNull,
                            many: many.then_some(10),
                        },
                    );
                    field.required = required;
                    field
                })
                .collect(),
            auth: None,
            access: CollectionAccess::default(),
            file: "lucent.toml".into(),
            prefix: String::new(),
        }
    }

    fn order(collections: Vec<Collection>) -> Vec<String> {
        let schema = Schema::new(collections);
        dependency_order(&schema)
            .into_iter()
            .map(|i| schema.collections[i].slug.clone())
            .collect()
    }

    #[test]
    fn targets_come_first_and_cycles_break_where_nothing_required_waits() {
        let cases: Vec<(Vec<Collection>, &[&str])> = vec![
            // No relations: declaration order.
            (
                vec![collection("a", &[]), collection("b", &[])],
                &["a", "b"],
            ),
            // posts → users, posts → [tags]: users and tags first.
            (
                vec![
                    collection("posts", &[("users", true, false), ("tags", false, true)]),
                    collection("users", &[]),
                    collection("tags", &[]),
                ],
                &["users", "tags", "posts"],
            ),
            // A self-reference orders nothing.
            (
                vec![collection("nodes", &[("nodes", false, false)])],
                &["nodes"],
            ),
            // A cycle: users.favorite → posts (optional), posts.author → users (required):
            // users first, so every post finds its author.
            (
                vec![
                    collection("posts", &[("users", true, false)]),
                    collection("users", &[("posts", false, false)]),
                ],
                &["users", "posts"],
            ),
            // A cycle of optional relations: declaration order breaks it.
            (
                vec![
                    collection("a", &[("b", false, false)]),
                    collection("b", &[("a", false, true)]),
                    collection("c", &[("a", false, false)]),
                ],
                &["a", "b", "c"],
            ),
            // A cycle of required relations: the first one left.
            (
                vec![
                    collection("a", &[("b", true, false)]),
                    collection("b", &[("a", true, false)]),
                ],
                &["a", "b"],
            ),
        ];
        for (collections, expected) in cases {
            assert_eq!(order(collections), expected);
        }
    }
}
