//! What record writes tell `events`: the change of each written document (hook 1 adds its
//! statements, hook 2 announces it after the commit), and the documents a delete cascades to.
//!
//! A delete takes with it every document linked to it by a `cascade` relation (the database
//! does it, through foreign keys), and those documents' own cascades: each is a delete of its
//! own for events. They are looked up before the delete, one query per relation and level (ids
//! in chunks), and only along relations something listens to (a webhook on the collection's
//! deletes, a realtime subscriber): a delete nothing listens to costs no query. A to-many
//! relation's edge goes through its join table.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};

use super::{Records, Result};
use crate::db::{Writes, decode_row};
use crate::events::Change;
use crate::schema::{Action, Collection, FieldKind, OnDelete, join_table};

/// Relation levels followed at most (a chain of cascades longer than this is a schema nobody
/// writes; a cycle ends when it meets a document already found).
const MAX_LEVELS: usize = 16;

/// Ids per `IN (...)` of one query.
const CHUNK: usize = 500;

/// How deleting a document reaches another: the collection holding the link, and the link.
#[derive(Debug, Clone, Copy)]
enum Edge {
    /// A to-one `relation` field (its index) with `on_delete = "cascade"`.
    ToOne { collection: usize, field: usize },
    /// A to-many `relation` field with `on_delete = "cascade"`: deleting any document of its
    /// list deletes the document holding the list (the join table's trigger does it).
    ToMany { collection: usize, field: usize },
}

impl Edge {
    fn collection(self) -> usize {
        match self {
            Edge::ToOne { collection, .. } | Edge::ToMany { collection, .. } => collection,
        }
    }
}

impl Records {
    /// Hook 2 for the changes of one operation: announced once `writes` has committed them, in
    /// order (at once on the shared path, at a batch's commit, never if it rolls back).
    pub(super) fn announce(&self, writes: Writes<'_>, changes: Vec<Change>) {
        let events = self.events.clone();
        writes.after_commit(move || {
            for change in changes {
                events.committed(change);
            }
        });
    }

    /// The deletes that deleting `id` of `collection` cascades to, as changes (none when nothing
    /// listens to them).
    pub(super) async fn cascaded(
        &self,
        writes: Writes<'_>,
        collection: &Collection,
        id: &str,
    ) -> Result<Vec<Change>> {
        let mut changes = Vec::new();
        if !self.cascade_listened(&collection.slug) {
            return Ok(changes);
        }
        let mut seen: BTreeSet<(String, String)> =
            BTreeSet::from([(collection.slug.clone(), id.to_string())]);
        let mut frontier: BTreeMap<String, Vec<String>> =
            BTreeMap::from([(collection.slug.clone(), vec![id.to_string()])]);
        for _ in 0..MAX_LEVELS {
            let mut next: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (target, ids) in &frontier {
                for edge in self.edges_to(target) {
                    let collection = edge.collection();
                    let source = &self.schema.collections[collection];
                    if !self.events.listens(&source.slug, Action::Delete)
                        && !self.cascade_listened(&source.slug)
                    {
                        continue;
                    }
                    let plan = &self.plans[collection];
                    for chunk in ids.chunks(CHUNK) {
                        let mut select = plan.select_all.clone();
                        let targets = chunk.iter().map(String::as_str);
                        match edge {
                            Edge::ToOne { field, .. } => select.and_where(
                                Expr::col(Alias::new(&source.fields[field].name)).is_in(targets),
                            ),
                            Edge::ToMany { field, .. } => {
                                let mut sources = Query::select();
                                sources
                                    .column(Alias::new("source"))
                                    .from(Alias::new(join_table(
                                        &source.slug,
                                        &source.fields[field].name,
                                    )))
                                    .and_where(Expr::col(Alias::new("target")).is_in(targets));
                                select.and_where(
                                    Expr::col((Alias::new(&source.slug), Alias::new("id")))
                                        .in_subquery(sources),
                                )
                            }
                        };
                        for row in writes.query_all(&select).await? {
                            let doc =
                                decode_row(&row, source, &plan.all_columns, self.db.backend())?;
                            let change = Change::deleted(&source.slug, doc);
                            if seen.insert((source.slug.clone(), change.id.clone())) {
                                next.entry(source.slug.clone())
                                    .or_default()
                                    .push(change.id.clone());
                                changes.push(change);
                            }
                        }
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        changes.retain(|c| self.events.listens(&c.collection, Action::Delete));
        Ok(changes)
    }

    /// The cascading links into `target`.
    fn edges_to(&self, target: &str) -> Vec<Edge> {
        let mut edges = Vec::new();
        for (c, collection) in self.schema.collections.iter().enumerate() {
            for (f, field) in collection.fields.iter().enumerate() {
                if let FieldKind::Relation {
                    to,
                    on_delete: OnDelete::Cascade,
                    many,
                } = &field.kind
                    && to == target
                {
                    edges.push(match many {
                        None => Edge::ToOne {
                            collection: c,
                            field: f,
                        },
                        Some(_) => Edge::ToMany {
                            collection: c,
                            field: f,
                        },
                    });
                }
            }
        }
        edges
    }

    /// Whether a delete that `slug`'s deletes cascade to (however far) may interest a listener.
    fn cascade_listened(&self, slug: &str) -> bool {
        let mut stack = vec![slug.to_string()];
        let mut visited = BTreeSet::new();
        while let Some(slug) = stack.pop() {
            if !visited.insert(slug.clone()) {
                continue;
            }
            for edge in self.edges_to(&slug) {
                let source = &self.schema.collections[edge.collection()].slug;
                if self.events.listens(source, Action::Delete) {
                    return true;
                }
                stack.push(source.clone());
            }
        }
        false
    }
}
