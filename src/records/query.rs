//! Lists: the read rule and the `filter` made into one SQL condition, sorted, paged and counted,
//! so invisible rows are neither listed nor counted; the page's to-many lists loaded with it.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Asterisk, Condition, Expr, ExprTrait, Order, Query};

use super::lists::attach_lists;
use super::{Error, ListParams, ListQuery, MAX_EXPANDED, Records, Result};
use crate::access::{Caller, CollectionPolicy};
use crate::auth::Principal;
use crate::db::{Column, decode_row};
use crate::rules::{Mode, Residual, Rule};
use crate::schema::{Collection, Doc};

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

impl Records {
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
        let caller = Caller::new(principal, &self.policies);
        caller.require_scope("read")?;
        let backend = self.db.backend();
        let nameable = self.nameable(collection, policy, &caller);
        let readable = |i: usize| nameable[i];
        let query = ListQuery::parse(params, collection, self.max_limit, &readable)?;
        let expand = self.parse_expand(params.expand.as_deref(), collection, &caller)?;
        let mut condition = Condition::all();
        let mut nothing = false;
        match caller.condition(&policy.read, backend) {
            Residual::True => {}
            Residual::False => nothing = true,
            Residual::Cond(read) => condition = condition.add(read),
        }
        if let Some(filter) = params.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            let rule = self.compile_filter(collection, &caller, filter)?;
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

        let mut shown = match &query.select {
            Some(columns) => columns.clone(),
            None => visible_columns(collection, &nameable, policy),
        };
        // The relation fields `expand` follows, loaded even when `select` leaves them out (and
        // dropped again after expanding), so a document's shape depends on `select` alone.
        let mut unselected = Vec::new();
        for field in expand.iter().flat_map(|e| e.forward_fields()) {
            if !shown.contains(&Column::Field(field)) {
                shown.push(Column::Field(field));
                unselected.push(collection.fields[field].name.clone());
            }
        }
        // Lists have no column: loaded for the whole page after it, one query per list.
        let is_list =
            |column: &Column| matches!(column, Column::Field(i) if collection.fields[*i].is_list());
        let lists: Vec<usize> = shown
            .iter()
            .filter_map(|column| match column {
                Column::Field(i) if is_list(column) => Some(*i),
                _ => None,
            })
            .collect();
        let columns: Vec<Column> = shown.into_iter().filter(|c| !is_list(c)).collect();
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
        let (docs, total) = self
            .db
            .read(async |c| {
                let rows = c.query_all(&select).await?;
                let mut docs = rows
                    .iter()
                    .map(|row| decode_row(row, collection, &columns, backend))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                if !lists.is_empty() {
                    attach_lists(c, collection, Some(&lists), &mut docs).await?;
                }
                Ok((docs, c.query_one(&count).await?))
            })
            .await?;
        let total_docs = match total {
            Some(row) => u64::try_from(row.try_get_by_index::<i64>(0)?).unwrap_or(0),
            None => 0,
        };
        let mut docs: Vec<Doc> = docs
            .into_iter()
            .map(|doc| self.shown(collection, policy, &caller, doc))
            .collect();
        if let Some(expand) = &expand {
            self.expand(&caller, expand, collection, &mut docs, MAX_EXPANDED)
                .await?;
            for doc in &mut docs {
                for name in &unselected {
                    doc.remove(name);
                }
            }
        }
        let total_pages = total_docs.div_ceil(query.limit);
        Ok(Page {
            docs,
            total_docs,
            total_pages,
            has_next_page: query.page < total_pages,
            ..page
        })
    }
}

impl Records {
    /// A `filter` as `nameable` allows this caller to name fields: 400 like a field that does not
    /// exist for a hidden or unreadable one. Lists and realtime subscriptions share it.
    pub(super) fn compile_filter(
        &self,
        collection: &Collection,
        caller: &Caller,
        filter: &str,
    ) -> Result<Rule> {
        let names = caller.names(&self.schema, self.db.backend());
        Rule::compile(filter, Mode::Filter, &self.schema, collection, &names).map_err(|errors| {
            let first = &errors[0];
            Error::BadRequest(format!(
                "filter: column {}: {}",
                first.column, first.message
            ))
        })
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
