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
use sea_orm::sea_query::{
    Alias, Asterisk, Expr, ExprTrait, JoinType, Order, Query, WindowStatement,
};
use serde_json::{Map, Value as Json};

use super::lists::attach_lists;
use super::params::unknown_field;
use super::{Doc, Error, Records, Result};
use crate::access::Caller;
use crate::db::decode_row;
use crate::rules::{Residual, Resolver};
use crate::schema::{Collection, Schema, Step, doc_id, join_table};

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
    /// A to-many relation field: its targets, in the list's order.
    ForwardMany { field: usize },
    /// A back-relation: the target's documents whose relation field (index in the target)
    /// names the expanded document.
    Back { field: usize },
    /// A back-relation through a to-many field of the target.
    BackMany { field: usize },
}

impl Link {
    /// Whether the expansion is a list (an array in `expand`).
    fn many(self) -> bool {
        !matches!(self, Link::Forward { .. })
    }
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
                Link::Forward { field } | Link::ForwardMany { field } => Some(field),
                Link::Back { .. } | Link::BackMany { .. } => None,
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
            let list = field.is_list();
            position(collection, field).map(|field| {
                let link = if list {
                    Link::ForwardMany { field }
                } else {
                    Link::Forward { field }
                };
                (to, link)
            })
        }
        Some(Step::Back { from, field }) if usable(from, field) => {
            let list = field.is_list();
            position(from, field).map(|field| {
                let link = if list {
                    Link::BackMany { field }
                } else {
                    Link::Back { field }
                };
                (from, link)
            })
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
        let mut keys: Vec<String> = docs
            .iter()
            .flat_map(|doc| keys(branch.link, collection, doc))
            .collect();
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
        let mut select = plan.select_all.clone();
        if let Some(read) = read {
            select.cond_where(read);
        }
        // The column whose value matches a document of `docs`, by which a back-relation's
        // documents are ranked: the target's id, its relation column, or — through a list — the
        // join table's `target`, selected after the target's columns as `_key`.
        let (ranked_by, ranked_in): ((Alias, Alias), Alias) = match branch.link {
            Link::Forward { .. } | Link::ForwardMany { .. } => {
                select.and_where(Expr::col((table.clone(), Alias::new("id"))).is_in(keys));
                ((table.clone(), Alias::new("id")), table)
            }
            Link::Back { field } => {
                let column = (table.clone(), Alias::new(&target.fields[field].name));
                select.and_where(Expr::col(column.clone()).is_in(keys));
                (column, table)
            }
            Link::BackMany { field } => {
                let join = Alias::new(join_table(&target.slug, &target.fields[field].name));
                let (rows, found) = (Alias::new("_rows"), Alias::new("_found"));
                // The target's documents the caller may read that list one of `keys` (its
                // read rule alone in its own query, so no join table column can shadow one of
                // its columns), then one row per (document, key).
                let mut listing = Query::select();
                listing
                    .column(Alias::new("source"))
                    .from(join.clone())
                    .and_where(Expr::col(Alias::new("target")).is_in(keys.clone()));
                select.and_where(Expr::col((table, Alias::new("id"))).in_subquery(listing));
                let mut pairs = Query::select();
                pairs
                    .column((found.clone(), Asterisk))
                    .expr_as(
                        Expr::col((rows.clone(), Alias::new("target"))),
                        Alias::new("_key"),
                    )
                    .from_as(join, rows.clone())
                    .join_subquery(
                        JoinType::InnerJoin,
                        select,
                        found.clone(),
                        Expr::col((found.clone(), Alias::new("id")))
                            .equals((rows.clone(), Alias::new("source"))),
                    )
                    .and_where(Expr::col((rows.clone(), Alias::new("target"))).is_in(keys));
                select = pairs;
                ((rows, Alias::new("target")), found)
            }
        };
        if matches!(branch.link, Link::Back { .. } | Link::BackMany { .. }) {
            // At most MAX_BACK_RELATED per document, the oldest first.
            let mut window = WindowStatement::partition_by(ranked_by);
            window
                .order_by((ranked_in.clone(), Alias::new("createdAt")), Order::Asc)
                .order_by((ranked_in, Alias::new("id")), Order::Asc);
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
        select.limit(u64::try_from(budget).unwrap_or(u64::MAX).saturating_add(1));
        // The lists the expanded documents show, loaded for all of them at once.
        let lists: Vec<usize> = (0..target.fields.len())
            .filter(|&i| target.fields[i].is_list() && !target.fields[i].hidden)
            .collect();
        let extra = plan.all_columns.len();
        let found = self
            .db
            .read(async |c| {
                let rows = c.query_all(&select).await?;
                if rows.len() > budget {
                    return Ok(None);
                }
                let mut keys = Vec::with_capacity(rows.len());
                let mut stored = Vec::with_capacity(rows.len());
                for row in &rows {
                    let doc = decode_row(row, target, &plan.all_columns, backend)?;
                    keys.push(match branch.link {
                        Link::Forward { .. } | Link::ForwardMany { .. } => doc_id(&doc).to_string(),
                        Link::Back { field } => doc
                            .get(&target.fields[field].name)
                            .and_then(Json::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        Link::BackMany { .. } => row.try_get_by_index::<String>(extra)?,
                    });
                    stored.push(doc);
                }
                if !lists.is_empty() {
                    attach_lists(c, target, Some(&lists), &mut stored).await?;
                }
                Ok(Some((keys, stored)))
            })
            .await?;
        let Some((keys, stored)) = found else {
            return Err(too_many());
        };
        let mut found: Vec<Found> = keys
            .into_iter()
            .zip(stored)
            .map(|(key, doc)| Found {
                key,
                doc: self.shown(target, policy, caller, doc),
                weight: 1,
            })
            .collect();
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

/// The keys a document matches what a branch finds by: the id (or ids) its relation field
/// holds, or its own id for a back-relation.
fn keys(link: Link, collection: &Collection, doc: &Doc) -> Vec<String> {
    match link {
        Link::Forward { field } => doc
            .get(&collection.fields[field].name)
            .and_then(Json::as_str)
            .map(str::to_string)
            .into_iter()
            .collect(),
        Link::ForwardMany { field } => doc
            .get(&collection.fields[field].name)
            .and_then(Json::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(Json::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        Link::Back { .. } | Link::BackMany { .. } => vec![doc_id(doc).to_string()],
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
        let mut take = |f: &Found| {
            attached += f.weight;
            Json::Object(f.doc.clone())
        };
        let value = if branch.link.many() {
            // A list in its own order (the ids the caller may not read left out); a
            // back-relation in the order found (oldest first).
            let items: Vec<Json> = keys(branch.link, collection, doc)
                .iter()
                .filter_map(|key| by_key.get(key))
                .flat_map(|matching| match branch.link {
                    Link::ForwardMany { .. } => matching[..1].iter(),
                    _ => matching.iter(),
                })
                .map(&mut take)
                .collect();
            Some(Json::Array(items))
        } else {
            keys(branch.link, collection, doc)
                .first()
                .and_then(|key| by_key.get(key))
                .and_then(|matching| matching.first())
                .map(&mut take)
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::{Source, build_schema};

    fn schema() -> Schema {
        let table: toml::Table = toml::from_str(
            r#"
            [users]
            auth = true
            [posts.fields]
            title = { type = "string" }
            author = { type = "relation", to = "users" }
            secret = { type = "relation", to = "users", hidden = true }
            "#,
        )
        .unwrap();
        let sources = table
            .into_iter()
            .map(|(slug, table)| Source {
                file: "t.toml".into(),
                prefix: String::new(),
                slug: Some(slug),
                table: table.as_table().unwrap().clone(),
            })
            .collect();
        build_schema(sources).unwrap()
    }

    fn doc(value: serde_json::Value) -> Doc {
        value.as_object().unwrap().clone()
    }

    /// Paths are checked for what they name; shared starts share a branch.
    #[test]
    fn parse_table() {
        let schema = schema();
        let posts = schema.get("posts").unwrap();
        let anything = |_: &Collection, _: &crate::schema::Field| true;
        let parse = |text: &str| {
            Expand::parse(text, &schema, posts, &anything)
                .map(|e| {
                    e.branches
                        .iter()
                        .map(|b| format!("{}({})", b.name, b.children.branches.len()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .map_err(|e| e.to_string())
        };
        assert_eq!(parse("author").unwrap(), "author(0)");
        assert_eq!(
            parse("author.posts_via_author,author").unwrap(),
            "author(1)"
        );
        for (text, message) in [
            ("secret", "unknown field \"secret\""),
            ("author.nope", "unknown field \"nope\""),
            ("title", "expand: `title` is not a relation"),
            ("id", "expand: `id` is not a relation"),
            ("", "expand has an empty name"),
        ] {
            assert_eq!(parse(text).unwrap_err(), message, "{text}");
        }
    }

    /// Every copy an answer holds counts against the budget, nested documents included.
    #[test]
    fn attaching_counts_every_copy() {
        let schema = schema();
        let posts = schema.get("posts").unwrap();
        let branch = Branch {
            name: "author".into(),
            target: schema.index_of("users").unwrap(),
            link: Link::Forward {
                field: posts
                    .fields
                    .iter()
                    .position(|f| f.name == "author")
                    .unwrap(),
            },
            children: Expand::default(),
        };
        let found = || {
            vec![Found {
                key: "u1".into(),
                doc: doc(json!({"id": "u1", "expand": {"posts_via_author": [{"id": "p9"}]}})),
                weight: 2,
            }]
        };
        let mut docs: Vec<Doc> = (0..3)
            .map(|i| doc(json!({"id": format!("p{i}"), "author": "u1"})))
            .chain([doc(json!({"id": "p3", "author": null}))])
            .collect();
        assert_eq!(attach(&branch, posts, &mut docs, found(), 6).unwrap(), 6);
        assert_eq!(docs[0]["expand"]["author"]["id"], "u1");
        assert_eq!(docs[3]["expand"], json!({}), "no author, no key");
        assert!(attach(&branch, posts, &mut docs, found(), 5).is_err());
        assert_eq!(weight(&docs[0]), 2);
    }
}
