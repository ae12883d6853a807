//! `expand` (SPEC §10): related documents inside the answers of `GET /api/C` and
//! `GET /api/C/:id`, under `doc.expand.<name>` — an object for a relation field, an array for a
//! back-relation `<collection>_via_<field>`. Nested paths (`author.org`) sit in the expanded
//! document's own `expand`.
//!
//! The parameter is parsed once into a tree of [`Branch`]es; each branch then costs one query
//! for the whole page (the ids of every document at that level in one `IN (...)`, with the
//! target collection's `read` rule compiled into it), never one per document. Each expanded
//! document is rendered by [`Records::shown`], the one rendering of documents, so hidden fields
//! and field `read` rules apply to it for the caller; one the caller may not read is absent.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, Order, Query, WindowStatement};
use serde_json::{Map, Value as Json};

use super::params::unknown_field;
use super::{Doc, Error, Records, Result};
use crate::access::Caller;
use crate::db::decode_row;
use crate::rules::{Residual, Resolver};
use crate::schema::{Collection, Schema, Step, doc_id};

/// Most paths one `expand` may name.
pub const MAX_EXPAND_PATHS: usize = 10;
/// Most levels one path may have (`author.org.owner`).
pub const MAX_EXPAND_DEPTH: usize = 3;
/// Most documents a back-relation expands for each document (the oldest first).
pub const MAX_BACK_RELATED: u64 = 100;
/// Most expanded documents one answer may hold, counting each copy (a user expanded as the
/// author of twenty posts counts twenty times) and nested ones: beyond, 400. Bounds the memory
/// and time of a request whatever its `expand` and page size.
pub const MAX_EXPANDED: usize = 10_000;

/// An `expand` parameter checked against the schema for one caller.
#[derive(Debug, Default)]
pub struct Expand {
    branches: Vec<Branch>,
}

/// One name of a path, and the paths that continue from it.
#[derive(Debug)]
struct Branch {
    name: String,
    /// The collection reached (schema index).
    target: usize,
    link: Link,
    children: Expand,
}

#[derive(Debug, Clone, Copy)]
enum Link {
    /// A relation field (index in the expanded document's collection): its target.
    Forward { field: usize },
    /// A back-relation: the target's documents whose relation field (index in the target)
    /// names the expanded document.
    Back { field: usize },
}

impl Expand {
    /// Parses `expand=author,tags,author.org`. A name is a relation field the caller may name
    /// (as in `filter`) or a back-relation whose relation field the caller may name.
    ///
    /// # Errors
    /// `BadRequest`: more than [`MAX_EXPAND_PATHS`] paths or [`MAX_EXPAND_DEPTH`] levels, an
    /// empty name, a name that is not a relation; and, with exactly the message of an unknown
    /// field, a name that does not exist or that the caller may not read.
    pub fn parse(
        text: &str,
        schema: &Schema,
        collection: &Collection,
        names: &dyn Resolver,
    ) -> Result<Expand> {
        let paths: Vec<&str> = text.split(',').collect();
        if paths.len() > MAX_EXPAND_PATHS {
            return Err(Error::BadRequest(format!(
                "expand takes at most {MAX_EXPAND_PATHS} paths"
            )));
        }
        let mut expand = Expand::default();
        for path in paths {
            let names_in_path: Vec<&str> = path.split('.').collect();
            if names_in_path.len() > MAX_EXPAND_DEPTH {
                return Err(Error::BadRequest(format!(
                    "expand paths have at most {MAX_EXPAND_DEPTH} levels"
                )));
            }
            expand.add(&names_in_path, schema, collection, names)?;
        }
        Ok(expand)
    }

    /// Adds one path, sharing the branches it has in common with earlier ones.
    fn add(
        &mut self,
        path: &[&str],
        schema: &Schema,
        collection: &Collection,
        names: &dyn Resolver,
    ) -> Result<()> {
        let Some((name, rest)) = path.split_first() else {
            return Ok(());
        };
        if name.is_empty() {
            return Err(Error::BadRequest("expand has an empty name".into()));
        }
        let position = match self.branches.iter().position(|b| b.name == *name) {
            Some(position) => position,
            None => {
                let (target, link) = resolve(name, schema, collection, names)?;
                self.branches.push(Branch {
                    name: name.to_string(),
                    target,
                    link,
                    children: Expand::default(),
                });
                self.branches.len() - 1
            }
        };
        let branch = &mut self.branches[position];
        let target = &schema.collections[branch.target];
        branch.children.add(rest, schema, target, names)
    }

    pub fn is_empty(&self) -> bool {
        self.branches.is_empty()
    }

    /// The relation fields (indexes in the expanded collection) the first level reads: a list
    /// cut by `select` loads them anyway, and drops them after expanding.
    pub fn forward_fields(&self) -> Vec<usize> {
        self.branches
            .iter()
            .filter_map(|branch| match branch.link {
                Link::Forward { field } => Some(field),
                Link::Back { .. } => None,
            })
            .collect()
    }
}

/// What `name` expands to from a document of `collection`.
fn resolve(
    name: &str,
    schema: &Schema,
    collection: &Collection,
    names: &dyn Resolver,
) -> Result<(usize, Link)> {
    let usable = |collection: &Collection, field: &crate::schema::Field| {
        !field.hidden && names.nameable(collection, field)
    };
    let position = |collection: &Collection, field: &crate::schema::Field| {
        collection.fields.iter().position(|f| f.name == field.name)
    };
    let resolved = match schema.step(collection, name) {
        Some(Step::Forward { field, to }) if usable(collection, field) => {
            position(collection, field).map(|field| (to, Link::Forward { field }))
        }
        Some(Step::Back { from, field }) if usable(from, field) => {
            position(from, field).map(|field| (from, Link::Back { field }))
        }
        Some(_) => None,
        None => match collection.field(name) {
            Some(field) if usable(collection, field) => {
                return Err(Error::BadRequest(format!(
                    "expand: `{name}` is not a relation"
                )));
            }
            _ if matches!(name, "id" | "createdAt" | "updatedAt") => {
                return Err(Error::BadRequest(format!(
                    "expand: `{name}` is not a relation"
                )));
            }
            _ => None,
        },
    };
    let (target, link) = resolved.ok_or_else(|| unknown_field(name))?;
    let index = schema
        .index_of(&target.slug)
        .ok_or_else(|| unknown_field(name))?;
    Ok((index, link))
}

/// What expanding one level leaves to attach: the rendered documents found, each with the key
/// that matches it to the documents it belongs to, and its weight (itself and what it holds).
struct Found {
    key: String,
    doc: Doc,
    weight: usize,
}

type Expanding<'a> = Pin<Box<dyn Future<Output = Result<usize>> + Send + 'a>>;

impl Records {
    /// Expands `expand` into `docs` (rendered documents of `collection`): one query per branch
    /// for all of them, then the branch's own branches over what it found. Returns how many
    /// expanded documents were attached, nested ones included.
    ///
    /// # Errors
    /// `BadRequest` past [`MAX_EXPANDED`]; database errors.
    pub(super) fn expand<'a>(
        &'a self,
        caller: &'a Caller,
        expand: &'a Expand,
        collection: &'a Collection,
        docs: &'a mut [Doc],
        budget: usize,
    ) -> Expanding<'a> {
        Box::pin(async move {
            let mut attached = 0;
            for branch in &expand.branches {
                let found = self
                    .expand_branch(caller, branch, collection, docs, budget - attached)
                    .await?;
                attached += attach(branch, collection, docs, found, budget - attached)?;
            }
            Ok(attached)
        })
    }

    /// Loads what one branch reaches from every document of `docs`, rendered and expanded
    /// further.
    async fn expand_branch(
        &self,
        caller: &Caller,
        branch: &Branch,
        collection: &Collection,
        docs: &[Doc],
        budget: usize,
    ) -> Result<Vec<Found>> {
        let target = &self.schema.collections[branch.target];
        let plan = &self.plans[branch.target];
        let policy = &self.policies.collections[branch.target];
        let backend = self.db.backend();
        let mut keys: Vec<String> = match branch.link {
            Link::Forward { field } => {
                let name = &collection.fields[field].name;
                docs.iter()
                    .filter_map(|doc| doc.get(name).and_then(Json::as_str))
                    .map(str::to_string)
                    .collect()
            }
            Link::Back { .. } => docs.iter().map(|doc| doc_id(doc).to_string()).collect(),
        };
        keys.sort_unstable();
        keys.dedup();
        let read = match caller.condition(&policy.read, backend) {
            Residual::False => return Ok(Vec::new()),
            Residual::True => None,
            Residual::Cond(condition) => Some(condition),
        };
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let table = Alias::new(&target.slug);
        let key_column = match branch.link {
            Link::Forward { .. } => "id".to_string(),
            Link::Back { field } => target.fields[field].name.clone(),
        };
        let mut select = plan.select_all.clone();
        select.and_where(Expr::col((table.clone(), Alias::new(&key_column))).is_in(keys));
        if let Some(read) = read {
            select.cond_where(read);
        }
        let over = u64::try_from(budget).unwrap_or(u64::MAX).saturating_add(1);
        if let Link::Back { .. } = branch.link {
            // At most MAX_BACK_RELATED per document, the oldest first.
            let mut window =
                WindowStatement::partition_by((table.clone(), Alias::new(&key_column)));
            window
                .order_by((table.clone(), Alias::new("createdAt")), Order::Asc)
                .order_by((table, Alias::new("id")), Order::Asc);
            select.expr_window_as(Expr::cust("ROW_NUMBER()"), window, Alias::new("_n"));
            let mut ranked = Query::select();
            ranked
                .column(Asterisk)
                .from_subquery(select, Alias::new("_ranked"))
                .and_where(Expr::col(Alias::new("_n")).lte(MAX_BACK_RELATED))
                .order_by(Alias::new("createdAt"), Order::Asc)
                .order_by(Alias::new("id"), Order::Asc);
            select = ranked;
        }
        select.limit(over);
        let rows = self.db.read(async |c| c.query_all(&select).await).await?;
        if rows.len() > budget {
            return Err(too_many());
        }
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            let stored = decode_row(row, target, &plan.all_columns, backend)?;
            let key = match branch.link {
                Link::Forward { .. } => doc_id(&stored).to_string(),
                Link::Back { .. } => stored
                    .get(&key_column)
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_string(),
            };
            let doc = self.shown(target, policy, caller, stored);
            found.push(Found {
                key,
                doc,
                weight: 1,
            });
        }
        if !branch.children.is_empty() {
            let mut nested: Vec<Doc> = found
                .iter_mut()
                .map(|f| std::mem::take(&mut f.doc))
                .collect();
            self.expand(caller, &branch.children, target, &mut nested, budget)
                .await?;
            for (f, doc) in found.iter_mut().zip(nested) {
                f.weight += weight(&doc);
                f.doc = doc;
            }
        }
        Ok(found)
    }
}

/// How many expanded documents a rendered document holds, nested ones included.
fn weight(doc: &Doc) -> usize {
    let Some(Json::Object(expanded)) = doc.get("expand") else {
        return 0;
    };
    expanded
        .values()
        .map(|value| match value {
            Json::Object(doc) => 1 + weight(doc),
            Json::Array(docs) => docs
                .iter()
                .map(|doc| 1 + doc.as_object().map_or(0, weight))
                .sum(),
            _ => 0,
        })
        .sum()
}

/// Puts what a branch found under `expand.<name>` of each document it belongs to (an object
/// for a relation field, absent when there is none the caller may read; an array for a
/// back-relation). Returns the weight attached.
fn attach(
    branch: &Branch,
    collection: &Collection,
    docs: &mut [Doc],
    found: Vec<Found>,
    budget: usize,
) -> Result<usize> {
    let mut by_key: HashMap<String, Vec<Found>> = HashMap::new();
    for f in found {
        by_key.entry(f.key.clone()).or_default().push(f);
    }
    let mut attached = 0usize;
    for doc in docs.iter_mut() {
        let key = match branch.link {
            Link::Forward { field } => doc
                .get(&collection.fields[field].name)
                .and_then(Json::as_str)
                .map(str::to_string),
            Link::Back { .. } => Some(doc_id(doc).to_string()),
        };
        let matching = key.as_ref().and_then(|key| by_key.get(key));
        let value = match branch.link {
            Link::Forward { .. } => match matching.and_then(|m| m.first()) {
                Some(f) => {
                    attached += f.weight;
                    Some(Json::Object(f.doc.clone()))
                }
                None => None,
            },
            Link::Back { .. } => {
                let docs: Vec<Json> = matching
                    .map(|m| {
                        m.iter()
                            .map(|f| {
                                attached += f.weight;
                                Json::Object(f.doc.clone())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Some(Json::Array(docs))
            }
        };
        if attached > budget {
            return Err(too_many());
        }
        let expanded = doc
            .entry("expand")
            .or_insert_with(|| Json::Object(Map::new()));
        if let (Json::Object(expanded), Some(value)) = (expanded, value) {
            expanded.insert(branch.name.clone(), value);
        }
    }
    Ok(attached)
}

fn too_many() -> Error {
    Error::BadRequest(format!(
        "expand would hold more than {MAX_EXPANDED} documents: expand fewer paths or ask for a smaller page"
    ))
}
