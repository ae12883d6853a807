//! Record operations independent of HTTP: authorize → validate → database. The HTTP handlers, the
//! CLI, the account flows and the library API all call these; nothing else reads or writes a
//! collection's table.
//!
//! `mod` finds and renders single documents, `query` lists, `expand` puts related documents in
//! both, `write` creates, updates and deletes (`body` checks what they write), `lists` reads and
//! writes to-many relations, `batch` runs several writes in one transaction, `accounts` holds the
//! account reads and writes the auth flows need, `params` parses list parameters; `export` reads
//! whole collections out and `import` writes them back in (`lucent export` / `import`).

mod accounts;
mod batch;
mod body;
mod changes;
mod error;
mod expand;
mod export;
mod import;
mod lists;
mod live;
mod params;
mod query;
mod write;

use std::sync::Arc;

use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{ConnectionTrait, QueryResult};

pub use accounts::NewPassword;
pub use batch::{Change, Failed, Operation, Written};
pub use error::{Error, Result};
pub use expand::{MAX_BACK_RELATED, MAX_EXPAND_DEPTH, MAX_EXPAND_PATHS, MAX_EXPANDED};
pub use export::{Snapshot, dependency_order};
pub use import::{Entry, Importer, Rejection};
pub use live::{LiveFilter, Viewer};
pub use params::{ListParams, ListQuery, MAX_PAGE, MAX_SORT_KEYS};
pub use query::Page;

use crate::access::{Caller, CollectionPolicy, Policies};
use crate::auth::Principal;
use crate::auth::password::Passwords;
use crate::config::PasswordPolicy;
use crate::db::{Column, Database, Writes, decode_row};
use crate::events::Events;
use crate::rules::{Residual, Rule};
use crate::schema::{Collection, Schema, doc_id};

pub use crate::schema::Doc;

/// What is prepared once per collection at startup rather than per request.
#[derive(Debug)]
struct Plan {
    /// Every column, hidden ones too (predicates may read them); to-many relations have none.
    all_columns: Vec<Column>,
    /// `SELECT <all columns> FROM <table>`, to which a `WHERE id = ?` is added.
    select_all: SelectStatement,
}

/// The record operations over one schema and database.
#[derive(Debug, Clone)]
pub struct Records {
    schema: Arc<Schema>,
    db: Database,
    max_limit: u64,
    plans: Arc<Vec<Plan>>,
    passwords: Passwords,
    policy: Arc<PasswordPolicy>,
    policies: Policies,
    /// Told of every write (`changes`).
    events: Events,
}

impl Records {
    pub fn new(
        schema: Arc<Schema>,
        db: Database,
        max_limit: u64,
        passwords: Passwords,
        policy: PasswordPolicy,
        policies: Policies,
        events: Events,
    ) -> Self {
        let plans = schema
            .collections
            .iter()
            .map(|collection| {
                let all_columns: Vec<Column> = std::iter::once(Column::Id)
                    .chain(
                        (0..collection.fields.len())
                            .filter(|&i| collection.fields[i].has_column())
                            .map(Column::Field),
                    )
                    .chain([Column::CreatedAt, Column::UpdatedAt])
                    .collect();
                let mut select_all = Query::select();
                select_all.from(Alias::new(&collection.slug));
                for column in &all_columns {
                    // Qualified, so account lookups can join Lucent's own tables.
                    select_all.column((
                        Alias::new(&collection.slug),
                        Alias::new(column.name(collection)),
                    ));
                }
                Plan {
                    all_columns,
                    select_all,
                }
            })
            .collect();
        Self {
            schema,
            db,
            max_limit,
            plans: Arc::new(plans),
            passwords,
            policy: Arc::new(policy),
            policies,
            events,
        }
    }

    /// Where committed writes are announced (`Events::subscribe`).
    pub fn events(&self) -> &Events {
        &self.events
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    fn collection(&self, slug: &str) -> Result<(&Collection, &Plan, &CollectionPolicy)> {
        let index = self.schema.index_of(slug).ok_or(Error::NotFound)?;
        Ok((
            &self.schema.collections[index],
            &self.plans[index],
            &self.policies.collections[index],
        ))
    }

    /// Which fields a caller may name in `filter`, `sort` and `select`: not hidden, and readable
    /// whatever the document.
    fn nameable(
        &self,
        collection: &Collection,
        policy: &CollectionPolicy,
        caller: &Caller,
    ) -> Vec<bool> {
        let backend = self.db.backend();
        collection
            .fields
            .iter()
            .zip(&policy.fields)
            .map(|(field, rules)| !field.hidden && caller.can_always_read(rules, backend))
            .collect()
    }

    /// A stored document (or account) of `slug` as `principal` may see it: the one rendering of
    /// every answer that shows a document — the collection routes, and `me`, login, register and
    /// verify-email for accounts. Hidden fields and fields whose `read` rule denies this caller
    /// for this document are removed.
    ///
    /// # Errors
    /// `NotFound` for an unknown collection.
    pub fn render(&self, principal: &Principal, slug: &str, doc: Doc) -> Result<Doc> {
        let (collection, _, policy) = self.collection(slug)?;
        Ok(self.shown(
            collection,
            policy,
            &Caller::new(principal, &self.policies),
            doc,
        ))
    }

    /// A document as this caller sees it: hidden fields and fields whose read rule denies it for
    /// this document removed.
    fn shown(
        &self,
        collection: &Collection,
        policy: &CollectionPolicy,
        caller: &Caller,
        mut doc: Doc,
    ) -> Doc {
        let denied: Vec<usize> = policy
            .fields
            .iter()
            .enumerate()
            .filter(|(_, rules)| {
                rules
                    .read
                    .as_ref()
                    .is_some_and(|rule| !caller.allows(rule, Some(&doc), None))
            })
            .map(|(i, _)| i)
            .collect();
        for i in denied {
            doc.remove(&collection.fields[i].name);
        }
        present(collection, doc)
    }

    /// One document by id, with the relations `expand` names (SPEC §10) under `expand`.
    ///
    /// # Errors
    /// `NotFound` for an unknown collection or id, or a document the caller may not read;
    /// `BadRequest` for a bad `expand`.
    pub async fn find_by_id(
        &self,
        principal: &Principal,
        slug: &str,
        id: &str,
        expand: Option<&str>,
    ) -> Result<Doc> {
        let (collection, plan, policy) = self.collection(slug)?;
        let caller = Caller::new(principal, &self.policies);
        caller.require_scope("read")?;
        let expand = self.parse_expand(expand, collection, &caller)?;
        let stored = self
            .load_readable(collection, plan, policy, &caller, id, None)
            .await?;
        let mut docs = [self.shown(collection, policy, &caller, stored)];
        if let Some(expand) = &expand {
            self.expand(&caller, expand, collection, &mut docs, MAX_EXPANDED)
                .await?;
        }
        let [doc] = docs;
        Ok(doc)
    }

    /// An `expand` parameter checked for this caller; `None` when there is none.
    fn parse_expand(
        &self,
        text: Option<&str>,
        collection: &Collection,
        caller: &Caller,
    ) -> Result<Option<expand::Expand>> {
        let Some(text) = text else {
            return Ok(None);
        };
        let names = caller.names(&self.schema, self.db.backend());
        expand::Expand::parse(text, &self.schema, collection, &names).map(Some)
    }

    /// Loads a stored row the caller may read, or `NotFound`; through `via` when it must see the
    /// latest writes (before changing it), else from a reader.
    async fn load_readable(
        &self,
        collection: &Collection,
        plan: &Plan,
        policy: &CollectionPolicy,
        caller: &Caller,
        id: &str,
        via: Option<Writes<'_>>,
    ) -> Result<Doc> {
        let read = match caller.condition(&policy.read, self.db.backend()) {
            Residual::False => return Err(Error::NotFound),
            Residual::True => None,
            Residual::Cond(condition) => Some(condition),
        };
        self.load(collection, plan, id, read, via)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Whether `rule` (an update or delete rule) lets the caller change the stored document
    /// `stored` with body `data`. In memory; but a rule that follows relations needs the
    /// related documents, which are in the database: it is asked there, as a condition on the
    /// row, through `writes` (so it sees what the write that follows will see).
    async fn permits(
        &self,
        writes: Writes<'_>,
        collection: &Collection,
        caller: &Caller,
        rule: &Rule,
        stored: &Doc,
        data: Option<&Doc>,
    ) -> Result<bool> {
        if !rule.crosses_relations() {
            return Ok(caller.allows(rule, Some(stored), data));
        }
        let condition = match caller.condition_with(rule, data, self.db.backend()) {
            Residual::True => return Ok(true),
            Residual::False => return Ok(false),
            Residual::Cond(condition) => condition,
        };
        let mut select = Query::select();
        select
            .column(Alias::new("id"))
            .from(Alias::new(&collection.slug))
            .and_where(Expr::col(Alias::new("id")).eq(doc_id(stored)))
            .cond_where(condition);
        Ok(writes.query_one(&select).await?.is_some())
    }

    /// Loads a whole stored document (hidden fields and lists too) by id, if it also matches
    /// `condition`.
    async fn load(
        &self,
        collection: &Collection,
        plan: &Plan,
        id: &str,
        condition: Option<Condition>,
        via: Option<Writes<'_>>,
    ) -> Result<Option<Doc>> {
        let mut select = plan.select_all.clone();
        select.and_where(Expr::col(Alias::new("id")).eq(id));
        if let Some(condition) = condition {
            select.cond_where(condition);
        }
        let backend = self.db.backend();
        let decode = |row: QueryResult| decode_row(&row, collection, &plan.all_columns, backend);
        let doc = match via {
            Some(writes) => {
                let Some(row) = writes.query_one(&select).await? else {
                    return Ok(None);
                };
                let mut docs = [decode(row)?];
                lists::attach_lists_via(writes, collection, &mut docs).await?;
                let [doc] = docs;
                doc
            }
            None => {
                let doc = self
                    .db
                    .read(async |c| {
                        let Some(row) = c.query_one(&select).await? else {
                            return Ok(None);
                        };
                        let mut docs = [decode(row)?];
                        lists::attach_lists(c, collection, None, &mut docs).await?;
                        let [doc] = docs;
                        Ok(Some(doc))
                    })
                    .await?;
                let Some(doc) = doc else { return Ok(None) };
                doc
            }
        };
        Ok(Some(doc))
    }
}

/// A stored document as the caller may see it: hidden fields removed.
pub fn present(collection: &Collection, doc: Doc) -> Doc {
    collection.without_hidden(doc)
}
