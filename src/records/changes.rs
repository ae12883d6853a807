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

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tokio::sync::broadcast::error::TryRecvError;

    use crate::app::Lucent;
    use crate::auth::Principal;
    use crate::db::Writes;
    use crate::schema::Action;

    /// Hook 2 fires once per committed change, after the commit, in order, and never for a
    /// write that was rolled back: alone, or in a transaction held for several (a batch).
    #[tokio::test]
    async fn committed_changes_are_announced_once_and_only_after_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lucent.toml");
        std::fs::write(
            &path,
            "[collections.posts.fields]\ntitle = { type = \"string\", unique = true }\n[collections.posts.access]\nread = \"true\"\ncreate = \"true\"\nupdate = \"true\"\ndelete = \"true\"\n",
        )
        .unwrap();
        let config = crate::config::load_with_env(&path, &|_| None).unwrap();
        let lucent = Lucent::from_config(config).await.unwrap();
        let records = &lucent.records;
        let anyone = Principal::Anonymous;
        let mut stream = records.events().subscribe();
        let mut next = || match stream.try_recv() {
            Ok(change) => Some((change.action, change.id.clone())),
            Err(TryRecvError::Empty) => None,
            Err(e) => panic!("{e}"),
        };

        let a = records
            .create(&anyone, "posts", &json!({"title": "a"}))
            .await
            .unwrap();
        let a_id = a["id"].as_str().unwrap().to_string();
        assert_eq!(next(), Some((Action::Create, a_id.clone())));
        assert!(
            records
                .create(&anyone, "posts", &json!({"title": "a"}))
                .await
                .is_err()
        );
        assert_eq!(next(), None, "a unique violation announces nothing");
        records
            .update(&anyone, "posts", &a_id, &json!({"title": "b"}))
            .await
            .unwrap();
        assert_eq!(next(), Some((Action::Update, a_id.clone())));
        records.delete(&anyone, "posts", &a_id).await.unwrap();
        assert_eq!(next(), Some((Action::Delete, a_id.clone())));
        assert!(
            records
                .update(&anyone, "posts", &a_id, &json!({"title": "c"}))
                .await
                .is_err()
        );
        assert_eq!(next(), None);

        // Held transactions: announced at the commit, in order; nothing when rolled back.
        let db = records.database();
        let transaction = db.begin().await.unwrap();
        let mut ids = Vec::new();
        for title in ["x", "y"] {
            let doc = records
                .create_in(
                    Writes::Within(&transaction),
                    &anyone,
                    "posts",
                    &json!({"title": title}),
                    None,
                )
                .await
                .unwrap();
            ids.push(doc["id"].as_str().unwrap().to_string());
        }
        assert_eq!(next(), None, "not before the commit");
        transaction.commit().await.unwrap();
        assert_eq!(next(), Some((Action::Create, ids[0].clone())));
        assert_eq!(next(), Some((Action::Create, ids[1].clone())));

        let transaction = db.begin().await.unwrap();
        let doc = records
            .create_in(
                Writes::Within(&transaction),
                &anyone,
                "posts",
                &json!({"title": "z"}),
                None,
            )
            .await
            .unwrap();
        transaction.rollback().await.unwrap();
        let transaction = db.begin().await.unwrap();
        records
            .delete_in(Writes::Within(&transaction), &anyone, "posts", &ids[0])
            .await
            .unwrap();
        drop(transaction);
        assert_eq!(next(), None, "rolled back or dropped: nothing");
        let z = doc["id"].as_str().unwrap();
        assert!(records.find_by_id(&anyone, "posts", z, None).await.is_err());
        assert!(
            records
                .find_by_id(&anyone, "posts", &ids[0], None)
                .await
                .is_ok()
        );
        lucent.database().clone().close().await;
    }
}
