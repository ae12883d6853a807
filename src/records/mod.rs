//! Record operations independent of HTTP: authorize → validate → database. The HTTP handlers, the
//! CLI, the account flows and the library API all call these; nothing else reads or writes a
//! collection's table.
//!
//! `mod` finds and renders single documents, `query` lists, `write` creates, updates and deletes
//! (`body` checks what they write), `accounts` holds the account reads and writes the auth flows
//! need, `params` parses list parameters.

mod accounts;
mod body;
mod changes;
mod error;
mod live;
mod params;
mod query;
mod write;

use std::sync::Arc;

use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{ConnectionTrait, QueryResult};

pub use accounts::NewPassword;
pub use error::{Error, Result};
pub use live::{LiveFilter, Viewer};
pub use params::{ListParams, ListQuery, MAX_PAGE, MAX_SORT_KEYS};
pub use query::Page;

use crate::access::{Caller, CollectionPolicy, Policies};
use crate::auth::Principal;
use crate::auth::password::Passwords;
use crate::config::PasswordPolicy;
use crate::db::{Column, Database, Writes, decode_row};
use crate::events::Events;
use crate::rules::Residual;
use crate::schema::{Collection, Schema};

pub use crate::schema::Doc;

/// What is prepared once per collection at startup rather than per request.
#[derive(Debug)]
struct Plan {
    /// Every column, hidden ones too (predicates may read them).
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
                    .chain((0..collection.fields.len()).map(Column::Field))
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
        Ok(self.shown(collection, policy, &Caller::new(principal), doc))
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

    /// One document by id.
    ///
    /// # Errors
    /// `NotFound` for an unknown collection or id, or a document the caller may not read.
    pub async fn find_by_id(&self, principal: &Principal, slug: &str, id: &str) -> Result<Doc> {
        let (collection, plan, policy) = self.collection(slug)?;
        let caller = Caller::new(principal);
        caller.require_scope("read")?;
        let stored = self
            .load_readable(collection, plan, policy, &caller, id, None)
            .await?;
        Ok(self.shown(collection, policy, &caller, stored))
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

    /// Loads a whole stored row (hidden fields too) by id, if it also matches `condition`.
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
        let row: Option<QueryResult> = match via {
            Some(writes) => writes.query_one(&select).await?,
            None => self.db.read(async |c| c.query_one(&select).await).await?,
        };
        Ok(row
            .map(|row| decode_row(&row, collection, &plan.all_columns, self.db.backend()))
            .transpose()?)
    }
}

/// A stored document as the caller may see it: hidden fields removed.
pub fn present(collection: &Collection, doc: Doc) -> Doc {
    collection.without_hidden(doc)
}
