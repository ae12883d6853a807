//! Record operations independent of HTTP: authorize → validate → database. The HTTP handlers, the
//! CLI and the library API all call these.

mod error;
mod params;
mod write;

use std::sync::Arc;

use sea_orm::sea_query::{
    Alias, Asterisk, Condition, Expr, ExprTrait, Func, Order, Query, SelectStatement,
};
use sea_orm::{ConnectionTrait, QueryResult};

pub use error::{Error, Result};
pub use params::{ListParams, ListQuery, MAX_PAGE, MAX_SORT_KEYS};

use crate::access::{Caller, CollectionPolicy, Policies};
use crate::auth::Principal;
use crate::auth::password::Passwords;
use crate::config::PasswordPolicy;
use crate::db::{Column, Database, decode_row};
use crate::rules::{Mode, Residual, Rule};
use crate::schema::{Collection, FieldKind, Schema};

pub use crate::schema::Doc;

/// One page of a list.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    pub docs: Vec<Doc>,
    pub total_docs: u64,
    pub limit: u64,
    pub page: u64,
    pub total_pages: u64,
    pub has_next_page: bool,
    pub has_prev_page: bool,
}

impl Page {
    fn empty(limit: u64, page: u64) -> Self {
        Self {
            docs: Vec::new(),
            total_docs: 0,
            limit,
            page,
            total_pages: 0,
            has_next_page: false,
            has_prev_page: page > 1,
        }
    }
}

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
}

impl Records {
    pub fn new(
        schema: Arc<Schema>,
        db: Database,
        max_limit: u64,
        passwords: Passwords,
        policy: PasswordPolicy,
        policies: Policies,
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
        }
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

    /// Lists documents of `slug` visible to `principal`, one page at a time: the read rule and
    /// the `filter` become one SQL condition, so invisible rows are neither listed nor counted.
    ///
    /// # Errors
    /// `NotFound` for an unknown collection, `BadRequest` for bad parameters.
    pub async fn find(
        &self,
        principal: &Principal,
        slug: &str,
        params: &ListParams,
    ) -> Result<Page> {
        let (collection, _, policy) = self.collection(slug)?;
        let caller = Caller::new(principal);
        caller.require_scope("read")?;
        let backend = self.db.backend();
        let nameable = self.nameable(collection, policy, &caller);
        let readable = |i: usize| nameable[i];
        let query = ListQuery::parse(params, collection, self.max_limit, &readable)?;
        let mut condition = Condition::all();
        let mut nothing = false;
        match caller.condition(&policy.read, backend) {
            Residual::True => {}
            Residual::False => nothing = true,
            Residual::Cond(read) => condition = condition.add(read),
        }
        if let Some(filter) = params.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            let by_name = |name: &str| {
                collection
                    .fields
                    .iter()
                    .position(|f| f.name == name)
                    .is_some_and(|i| nameable[i])
            };
            let rule = Rule::compile(filter, Mode::Filter, &self.schema, collection, &by_name)
                .map_err(|errors| {
                    let first = &errors[0];
                    Error::BadRequest(format!(
                        "filter: column {}: {}",
                        first.column, first.message
                    ))
                })?;
            match rule.to_condition(&caller.env(None, None), backend) {
                Residual::True => {}
                Residual::False => nothing = true,
                Residual::Cond(filter) => condition = condition.add(filter),
            }
        }
        let page = Page::empty(query.limit, query.page);
        if nothing {
            return Ok(page);
        }

        let columns = match &query.select {
            Some(columns) => columns.clone(),
            None => visible_columns(collection, &nameable, policy),
        };
        let table = Alias::new(&collection.slug);
        let mut select = Query::select();
        select.from(table.clone()).cond_where(condition.clone());
        for column in &columns {
            select.column(Alias::new(column.name(collection)));
        }
        for (column, descending) in &query.sort {
            select.order_by(
                Alias::new(column.name(collection)),
                if *descending { Order::Desc } else { Order::Asc },
            );
        }
        // Ties are broken by creation (createdAt, then id, in the first key's direction): the
        // order every field index carries after its field, so a sorted page walks an index and
        // stops instead of sorting every match (measured 3.1 ms → 0.15 ms on 10,000 rows).
        let tie = if query.sort.first().is_some_and(|(_, d)| *d) {
            Order::Desc
        } else {
            Order::Asc
        };
        for column in [Column::CreatedAt, Column::Id] {
            if query.sort.iter().any(|(sorted, _)| *sorted == Column::Id) {
                break;
            }
            if !query.sort.iter().any(|(sorted, _)| *sorted == column) {
                select.order_by(Alias::new(column.name(collection)), tie.clone());
            }
        }
        select
            .limit(query.limit)
            .offset((query.page - 1) * query.limit);
        let mut count = Query::select();
        count
            .expr(Expr::col(Asterisk).count())
            .from(table)
            .cond_where(condition);

        // Page and count run one after the other on one connection: a list never holds more
        // than one reader, so no few slow lists can take every reader.
        let (rows, total) = self
            .db
            .read(async |c| Ok((c.query_all(&select).await?, c.query_one(&count).await?)))
            .await?;
        let total_docs = match total {
            Some(row) => u64::try_from(row.try_get_by_index::<i64>(0)?).unwrap_or(0),
            None => 0,
        };
        let docs = rows
            .iter()
            .map(|row| {
                decode_row(row, collection, &columns, backend)
                    .map(|doc| self.shown(collection, policy, &caller, doc))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let total_pages = total_docs.div_ceil(query.limit);
        Ok(Page {
            docs,
            total_docs,
            total_pages,
            has_next_page: query.page < total_pages,
            ..page
        })
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
            .load_readable(collection, plan, policy, &caller, id, false)
            .await?;
        Ok(self.shown(collection, policy, &caller, stored))
    }

    /// Loads a stored row the caller may read, or `NotFound`.
    async fn load_readable(
        &self,
        collection: &Collection,
        plan: &Plan,
        policy: &CollectionPolicy,
        caller: &Caller,
        id: &str,
        from_writer: bool,
    ) -> Result<Doc> {
        let read = match caller.condition(&policy.read, self.db.backend()) {
            Residual::False => return Err(Error::NotFound),
            Residual::True => None,
            Residual::Cond(condition) => Some(condition),
        };
        self.load(collection, plan, id, read, from_writer)
            .await?
            .ok_or(Error::NotFound)
    }

    /// A whole stored account (hidden fields too), optionally only while `session` is a live
    /// session of it — one query, so an ended session is refused at once on every instance.
    ///
    /// # Errors
    /// Database failures.
    pub async fn account(
        &self,
        slug: &str,
        id: &str,
        session: Option<&str>,
    ) -> Result<Option<Doc>> {
        let (collection, plan, _) = self.collection(slug)?;
        let mut select = plan.select_all.clone();
        select.and_where(Expr::col((Alias::new(&collection.slug), Alias::new("id"))).eq(id));
        if let Some(session) = session {
            let mut live = Query::select();
            live.expr(Expr::val(1))
                .from(Alias::new(crate::auth::store::SESSIONS))
                .and_where(Expr::col(Alias::new("id")).eq(session))
                .and_where(Expr::col(Alias::new("collection")).eq(slug))
                .and_where(
                    Expr::col(Alias::new("user_id"))
                        .equals((Alias::new(&collection.slug), Alias::new("id"))),
                )
                .and_where(Expr::col(Alias::new("expires_at")).gt(crate::auth::store::now()));
            select.and_where(Expr::exists(live));
        }
        // A reader sees every committed change (a session ended a moment ago included) and does
        // not queue behind writes; authentication's own never queues behind record reads.
        let row = self
            .db
            .read_auth(async |c| c.query_one(&select).await)
            .await?;
        Ok(row
            .map(|row| decode_row(&row, collection, &plan.all_columns, self.db.backend()))
            .transpose()?)
    }

    /// A whole stored account found through one of its API keys (by the key's digest), in one
    /// statement; the row also carries `key_columns` of the key, from column `offset` on.
    ///
    /// # Errors
    /// Database failures.
    pub async fn account_by_key(
        &self,
        slug: &str,
        key_hash: &str,
        key_columns: &[&str],
    ) -> Result<Option<(Doc, QueryResult, usize)>> {
        let (collection, plan, _) = self.collection(slug)?;
        let keys = Alias::new(crate::auth::api_keys::API_KEYS);
        let mut select = plan.select_all.clone();
        for column in key_columns {
            select.column((keys.clone(), Alias::new(*column)));
        }
        select
            .inner_join(
                keys.clone(),
                Expr::col((keys.clone(), Alias::new("user_id")))
                    .equals((Alias::new(&collection.slug), Alias::new("id"))),
            )
            .and_where(Expr::col((keys.clone(), Alias::new("collection"))).eq(slug))
            .and_where(Expr::col((keys, Alias::new("key_hash"))).eq(key_hash));
        let Some(row) = self
            .db
            .read_auth(async |c| c.query_one(&select).await)
            .await?
        else {
            return Ok(None);
        };
        let doc = decode_row(&row, collection, &plan.all_columns, self.db.backend())?;
        Ok(Some((doc, row, plan.all_columns.len())))
    }

    /// A whole stored account by its login field, compared regardless of case.
    ///
    /// # Errors
    /// Database failures.
    pub async fn account_by_login(&self, slug: &str, identifier: &str) -> Result<Option<Doc>> {
        let (collection, plan, _) = self.collection(slug)?;
        let field = collection.login_field().ok_or(Error::NotFound)?;
        let mut select = plan.select_all.clone();
        if field.kind == FieldKind::Email {
            // Stored lower-cased already: the plain unique index serves the lookup.
            select.and_where(Expr::col(Alias::new(&field.name)).eq(identifier.to_lowercase()));
        } else {
            select.and_where(
                Func::lower(Expr::col(Alias::new(&field.name)))
                    .eq(Func::lower(Expr::val(identifier))),
            );
        }
        let row = self.db.writer().query_one(&select).await?;
        Ok(row
            .map(|row| decode_row(&row, collection, &plan.all_columns, self.db.backend()))
            .transpose()?)
    }

    /// Loads a whole stored row (hidden fields too) by id, if it also matches `condition`.
    async fn load(
        &self,
        collection: &Collection,
        plan: &Plan,
        id: &str,
        condition: Option<Condition>,
        from_writer: bool,
    ) -> Result<Option<Doc>> {
        let mut select = plan.select_all.clone();
        select.and_where(Expr::col(Alias::new("id")).eq(id));
        if let Some(condition) = condition {
            select.cond_where(condition);
        }
        let row: Option<QueryResult> = if from_writer {
            self.db.writer().query_one(&select).await?
        } else {
            self.db.read(async |c| c.query_one(&select).await).await?
        };
        Ok(row
            .map(|row| decode_row(&row, collection, &plan.all_columns, self.db.backend()))
            .transpose()?)
    }
}

/// The columns a list returns by default: every field the caller may name, in table order.
/// Fields readable only for some documents are selected too and removed per document.
fn visible_columns(
    collection: &Collection,
    nameable: &[bool],
    policy: &CollectionPolicy,
) -> Vec<Column> {
    std::iter::once(Column::Id)
        .chain(
            collection
                .fields
                .iter()
                .enumerate()
                .filter(|(i, f)| !f.hidden && (nameable[*i] || policy.fields[*i].read.is_some()))
                .map(|(i, _)| Column::Field(i)),
        )
        .chain([Column::CreatedAt, Column::UpdatedAt])
        .collect()
}

/// A stored document as the caller may see it: hidden fields removed.
pub fn present(collection: &Collection, mut doc: Doc) -> Doc {
    for field in collection.fields.iter().filter(|f| f.hidden) {
        doc.remove(&field.name);
    }
    doc
}
