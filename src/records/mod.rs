//! Record operations independent of HTTP: authorize → validate → database. The HTTP handlers, the
//! CLI and the library API all call these.

mod error;
mod params;
mod write;

use std::sync::Arc;

use sea_orm::sea_query::{
    Alias, Asterisk, Condition, Expr, ExprTrait, Order, Query, SelectStatement,
};
use sea_orm::{ConnectionTrait, QueryResult};
use serde_json::{Map, Value as Json};

pub use error::{Error, Result};
pub use params::{ListParams, ListQuery, MAX_SORT_KEYS, unknown_field};

use crate::auth::Principal;
use crate::db::{Column, Database, decode_row};
use crate::schema::{Collection, Schema};

/// A document as the API shows it: field name → JSON value.
pub type Doc = Map<String, Json>;

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
}

impl Records {
    pub fn new(schema: Arc<Schema>, db: Database, max_limit: u64) -> Self {
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
                    select_all.column(Alias::new(column.name(collection)));
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
        }
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    fn collection(&self, slug: &str) -> Result<(&Collection, &Plan)> {
        let index = self.schema.index_of(slug).ok_or(Error::NotFound)?;
        Ok((&self.schema.collections[index], &self.plans[index]))
    }

    /// Lists documents of `slug` visible to `principal`, one page at a time.
    ///
    /// # Errors
    /// `NotFound` for an unknown collection, `BadRequest` for bad parameters.
    pub async fn find(
        &self,
        principal: &Principal,
        slug: &str,
        params: &ListParams,
    ) -> Result<Page> {
        let (collection, _) = self.collection(slug)?;
        let _ = principal;
        let readable = |i: usize| !collection.fields[i].hidden;
        let query = ListQuery::parse(params, collection, self.max_limit, &readable)?;
        if params
            .filter
            .as_deref()
            .is_some_and(|f| !f.trim().is_empty())
        {
            return Err(Error::BadRequest("filter is not supported yet".into()));
        }
        let condition = Condition::all();

        let columns = match &query.select {
            Some(columns) => columns.clone(),
            None => visible_columns(collection),
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
        if !query.sort.iter().any(|(column, _)| *column == Column::Id) {
            let descending = query.sort.first().is_some_and(|(_, d)| *d);
            select.order_by(
                Alias::new("id"),
                if descending { Order::Desc } else { Order::Asc },
            );
        }
        select
            .limit(query.limit)
            .offset((query.page - 1) * query.limit);
        let mut count = Query::select();
        count
            .expr(Expr::col(Asterisk).count())
            .from(table)
            .cond_where(condition);

        let reader = self.db.reader();
        let (rows, total) = tokio::try_join!(reader.query_all(&select), reader.query_one(&count))?;
        let total_docs = match total {
            Some(row) => u64::try_from(row.try_get_by_index::<i64>(0)?).unwrap_or(0),
            None => 0,
        };
        let backend = self.db.backend();
        let docs = rows
            .iter()
            .map(|row| decode_row(row, collection, &columns, backend))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let total_pages = total_docs.div_ceil(query.limit);
        Ok(Page {
            docs,
            total_docs,
            limit: query.limit,
            page: query.page,
            total_pages,
            has_next_page: query.page < total_pages,
            has_prev_page: query.page > 1,
        })
    }

    /// One document by id.
    ///
    /// # Errors
    /// `NotFound` for an unknown collection or id, or a document the caller may not read.
    pub async fn find_by_id(&self, principal: &Principal, slug: &str, id: &str) -> Result<Doc> {
        let (collection, plan) = self.collection(slug)?;
        let _ = principal;
        let stored = self
            .load(collection, plan, id, false)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(present(collection, stored))
    }

    /// Loads a whole stored row (hidden fields too) by id.
    async fn load(
        &self,
        collection: &Collection,
        plan: &Plan,
        id: &str,
        from_writer: bool,
    ) -> Result<Option<Doc>> {
        let mut select = plan.select_all.clone();
        select.and_where(Expr::col(Alias::new("id")).eq(id));
        let connection = if from_writer {
            self.db.writer()
        } else {
            self.db.reader()
        };
        let row: Option<QueryResult> = connection.query_one(&select).await?;
        Ok(row
            .map(|row| decode_row(&row, collection, &plan.all_columns, self.db.backend()))
            .transpose()?)
    }
}

/// Every column but hidden ones, in table order.
fn visible_columns(collection: &Collection) -> Vec<Column> {
    std::iter::once(Column::Id)
        .chain(
            collection
                .fields
                .iter()
                .enumerate()
                .filter(|(_, f)| !f.hidden)
                .map(|(i, _)| Column::Field(i)),
        )
        .chain([Column::CreatedAt, Column::UpdatedAt])
        .collect()
}

/// A stored document as the caller may see it: hidden fields removed.
fn present(collection: &Collection, mut doc: Doc) -> Doc {
    for field in collection.fields.iter().filter(|f| f.hidden) {
        doc.remove(&field.name);
    }
    doc
}
