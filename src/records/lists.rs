//! To-many relations: the ids of a list live in the field's join table (`schema::join_table`),
//! one row per id with its position. Written with the document, in the same all-or-nothing
//! statements (the list replaced whole on update); read for a whole page at once, one query per
//! list field (`... WHERE source IN (<the page's ids>) ORDER BY source, position`), before the
//! document is rendered.

use std::collections::HashMap;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DbErr, Statement};
use serde_json::Value as Json;

use super::{Error, Result};
use crate::db::Writes;
use crate::schema::{Collection, Doc, Value, doc_id, join_table};

/// Attaches the lists of `collection` to stored documents read through `writes` (so they see
/// the latest writes).
///
/// # Errors
/// The database's.
pub(super) async fn attach_lists_via(
    writes: Writes<'_>,
    collection: &Collection,
    docs: &mut [Doc],
) -> std::result::Result<(), DbErr> {
    match writes {
        Writes::Shared(db) => attach_lists(db.writer(), collection, None, docs).await,
        Writes::Within(transaction) => attach_lists(&**transaction, collection, None, docs).await,
    }
}

/// The most documents whose lists one query loads: a page (at most `server.max_limit`, 100 by
/// default) takes one, and no page passes the engines' limits on bound parameters (PostgreSQL's
/// is 65,535), whatever `max_limit` says.
const IDS_PER_QUERY: usize = 1000;

/// Sets every list field of `collection` (or only those of `only`, by field index) on each of
/// `docs`: the ids in order, `[]` for none. One query per list field for a page of up to
/// [`IDS_PER_QUERY`] documents.
///
/// # Errors
/// The database's.
pub(super) async fn attach_lists<C: ConnectionTrait>(
    connection: &C,
    collection: &Collection,
    only: Option<&[usize]>,
    docs: &mut [Doc],
) -> std::result::Result<(), DbErr> {
    let fields: Vec<usize> = (0..collection.fields.len())
        .filter(|&i| collection.fields[i].is_list())
        .filter(|i| only.is_none_or(|only| only.contains(i)))
        .collect();
    if fields.is_empty() || docs.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = docs.iter().map(|doc| doc_id(doc).to_string()).collect();
    for index in fields {
        let name = &collection.fields[index].name;
        let mut lists: HashMap<String, Vec<Json>> = HashMap::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let rows = connection
                .query_all(&page_select(&collection.slug, name, chunk))
                .await?;
            for row in rows {
                let source: String = row.try_get_by_index(0)?;
                let target: String = row.try_get_by_index(1)?;
                lists.entry(source).or_default().push(Json::String(target));
            }
        }
        for doc in docs.iter_mut() {
            let list = lists.remove(doc_id(doc)).unwrap_or_default();
            doc.insert(name.clone(), Json::Array(list));
        }
    }
    for doc in docs.iter_mut() {
        reorder(collection, doc);
    }
    Ok(())
}

/// `SELECT source, target FROM <join> WHERE source IN (<ids>) ORDER BY source, position`.
fn page_select(slug: &str, field: &str, ids: &[String]) -> SelectStatement {
    Query::select()
        .columns([Alias::new("source"), Alias::new("target")])
        .from(Alias::new(join_table(slug, field)))
        .and_where(Expr::col(Alias::new("source")).is_in(ids.iter().map(String::as_str)))
        .order_by(Alias::new("source"), Order::Asc)
        .order_by(Alias::new("position"), Order::Asc)
        .to_owned()
}

/// A document's keys in declaration order (id, the fields, createdAt, updatedAt), so a list
/// loaded after the columns sits where its field is declared, as in a create's answer.
fn reorder(collection: &Collection, doc: &mut Doc) {
    let mut ordered = Doc::with_capacity(doc.len());
    let names = std::iter::once("id")
        .chain(collection.fields.iter().map(|f| f.name.as_str()))
        .chain(["createdAt", "updatedAt"]);
    for name in names {
        if let Some(value) = doc.remove(name) {
            ordered.insert(name.to_string(), value);
        }
    }
    ordered.append(doc);
    *doc = ordered;
}

/// The statements that write the lists among `values` for document `id`: its rows of each list
/// (replacing any it had, when `replace`), in order.
///
/// # Errors
/// `Internal` if the insert cannot be built (it always can: three values per row).
pub(super) fn list_statements(
    writes: Writes<'_>,
    collection: &Collection,
    id: &str,
    values: &[(usize, Value)],
    replace: bool,
) -> Result<Vec<Statement>> {
    let mut statements = Vec::new();
    for (index, value) in values {
        let field = &collection.fields[*index];
        let Value::List(targets) = value else {
            continue;
        };
        let table = Alias::new(join_table(&collection.slug, &field.name));
        if replace {
            let mut delete = Query::delete();
            delete
                .from_table(table.clone())
                .and_where(Expr::col(Alias::new("source")).eq(id));
            statements.push(writes.build(&delete));
        }
        if targets.is_empty() {
            continue;
        }
        let mut insert = Query::insert();
        insert.into_table(table).columns([
            Alias::new("source"),
            Alias::new("target"),
            Alias::new("position"),
        ]);
        for (position, target) in targets.iter().enumerate() {
            let position = i64::try_from(position).unwrap_or(i64::MAX);
            insert
                .values([id.into(), target.as_str().into(), position.into()])
                .map_err(|e| Error::Internal(e.to_string()))?;
        }
        statements.push(writes.build(&insert));
    }
    Ok(statements)
}
