//! The writer: batches of checked documents into the database, one transaction per batch (or,
//! for a dry run, one savepoint per batch inside a transaction rolled back at the end). Each
//! document and each relation value is written under its own savepoint, so a refused one (a taken
//! unique value, an id already there) is rejected alone and the batch goes on.

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SimpleExpr};
use sea_orm::{DatabaseTransaction, DbErr, SqlErr, Statement, TransactionTrait};
use serde_json::Value as Json;

use super::super::lists::list_statements;
use super::super::{Records, Result};
use super::waiting::{Held, Link, Waiting};
use super::{Entry, IDS_PER_QUERY, Rejection};
use crate::db::{Writes, to_sql_value};
use crate::schema::{Collection, FieldError, FieldKind, Schema, Value};

/// Writes batches of entries, keeping what waits between them.
#[derive(Debug)]
pub struct Importer<'a> {
    records: &'a Records,
    /// A dry run's transaction: every batch is a savepoint inside it, and it is rolled back.
    dry_run: Option<DatabaseTransaction>,
    waiting: Waiting,
    /// Documents written, by collection index.
    written: Vec<u64>,
}

/// What one batch did so far.
#[derive(Debug, Default)]
struct Batch {
    /// Documents written, in order: what waits for them is released.
    arrived: Vec<(usize, String)>,
    /// Relation values of the documents written, to write once all of them are in.
    links: Vec<Link>,
    rejected: Vec<Rejection>,
}

/// Why the database refused a document or a relation value.
enum Refusal {
    /// A relation's target is not there (yet).
    ForeignKey,
    /// A value the database refused, as the API reports it.
    Field(FieldError),
}

impl Records {
    /// An importer into this database; with `dry_run`, everything is checked and written as an
    /// import would, then rolled back.
    ///
    /// # Errors
    /// The database's.
    pub async fn importer(&self, dry_run: bool) -> Result<Importer<'_>> {
        let dry_run = match dry_run {
            true => Some(self.db.begin().await?),
            false => None,
        };
        Ok(Importer {
            records: self,
            dry_run,
            waiting: Waiting::default(),
            written: vec![0; self.schema.collections.len()],
        })
    }
}

impl Importer<'_> {
    /// Writes a batch in one transaction: the documents (each alone, so a refused one fails
    /// alone), those that waited for one of them, then every relation value whose targets are
    /// all there, including those of earlier batches that waited for this one. Returns the
    /// lines rejected.
    ///
    /// # Errors
    /// The database's (a lost connection, ...): nothing of the batch is then written.
    pub async fn write(&mut self, entries: Vec<Entry>) -> Result<Vec<Rejection>> {
        let transaction = match &self.dry_run {
            Some(outer) => outer.begin().await?,
            None => self.records.db.begin().await?,
        };
        let writes = Writes::Within(&transaction);
        let mut batch = Batch::default();
        let entries = self.new_ids(writes, entries, &mut batch.rejected).await?;
        for entry in entries {
            self.insert(writes, entry, &mut batch).await?;
        }
        let mut ready = Vec::new();
        let mut next = 0;
        while let Some((collection, id)) = batch.arrived.get(next).cloned() {
            next += 1;
            let (links, entries) = self.waiting.arrive(collection, &id);
            ready.extend(links);
            for entry in entries {
                self.insert(writes, entry, &mut batch).await?;
            }
        }
        for (link, missing) in self
            .missing(writes, std::mem::take(&mut batch.links))
            .await?
        {
            if missing.is_empty() {
                ready.push(link);
            } else {
                self.waiting.add_link(link, missing);
            }
        }
        for link in ready {
            self.link(writes, link, &mut batch.rejected).await?;
        }
        transaction.commit().await?;
        Ok(batch.rejected)
    }

    /// Ends the import: every link or document still waiting found no target, and is reported.
    /// A dry run is rolled back.
    ///
    /// # Errors
    /// The database's.
    pub async fn finish(self) -> Result<Vec<Rejection>> {
        let schema = &self.records.schema;
        let (links, held) = self.waiting.into_parts();
        let mut rejected = Vec::new();
        for Held {
            entry,
            field,
            target,
        } in held
        {
            let collection = &schema.collections[entry.collection];
            let field = &collection.fields[field];
            let to = relation_target(&field.kind);
            rejected.push(Rejection::document(
                entry.line,
                &collection.slug,
                Some(&entry.id),
                vec![FieldError::new(
                    &field.name,
                    "invalid_relation",
                    format!("no {to} document has id {}", Json::String(target)),
                )],
            ));
        }
        for (link, missing) in links {
            let collection = &schema.collections[link.collection];
            let field = &collection.fields[link.field];
            let to = &schema.collections[link.to].slug;
            let ids: Vec<String> = missing
                .into_iter()
                .map(|id| Json::String(id).to_string())
                .collect();
            let message = match ids.as_slice() {
                [id] => format!("no {to} document has id {id}"),
                ids => format!("no {to} documents have ids {}", ids.join(", ")),
            };
            rejected.push(Rejection::document(
                link.line,
                &collection.slug,
                Some(&link.source),
                vec![FieldError::new(
                    &field.name,
                    "invalid_relation",
                    format!(
                        "{message}; the document was imported without {}",
                        field.name
                    ),
                )],
            ));
        }
        // One line lacking several targets is one rejection with every reason.
        rejected.sort_by_key(|r| r.line);
        rejected.dedup_by(|later, earlier| {
            let same = later.line == earlier.line;
            if same {
                earlier.reasons.append(&mut later.reasons);
            }
            same
        });
        if let Some(outer) = self.dry_run {
            outer.rollback().await?;
        }
        Ok(rejected)
    }

    /// Documents written so far (or, in a dry run, that would be), by collection slug, in the
    /// schema's order.
    pub fn written(&self) -> Vec<(&str, u64)> {
        self.records
            .schema
            .collections
            .iter()
            .zip(&self.written)
            .map(|(c, n)| (c.slug.as_str(), *n))
            .collect()
    }

    /// The entries whose id is new: not twice in the batch, not already in the database.
    async fn new_ids(
        &self,
        writes: Writes<'_>,
        entries: Vec<Entry>,
        rejected: &mut Vec<Rejection>,
    ) -> Result<Vec<Entry>> {
        let mut ids: HashMap<usize, Vec<String>> = HashMap::new();
        for entry in &entries {
            ids.entry(entry.collection)
                .or_default()
                .push(entry.id.clone());
        }
        let mut existing = HashSet::new();
        for (collection, ids) in ids {
            let slug = &self.records.schema.collections[collection].slug;
            for chunk in ids.chunks(IDS_PER_QUERY) {
                let absent: HashSet<String> = self
                    .records
                    .missing(writes, slug, chunk)
                    .await?
                    .into_iter()
                    .collect();
                existing.extend(
                    chunk
                        .iter()
                        .filter(|id| !absent.contains(*id))
                        .map(|id| (collection, id.clone())),
                );
            }
        }
        let mut lines: HashMap<(usize, String), u64> = HashMap::new();
        let mut fresh = Vec::with_capacity(entries.len());
        for entry in entries {
            let key = (entry.collection, entry.id.clone());
            let slug = &self.records.schema.collections[entry.collection].slug;
            let taken = if existing.contains(&key) {
                Some(format!("a {slug} document with this id already exists"))
            } else {
                lines
                    .get(&key)
                    .map(|line| format!("line {line} has the same id"))
            };
            match taken {
                Some(message) => rejected.push(Rejection::document(
                    entry.line,
                    slug,
                    Some(&entry.id),
                    vec![FieldError::new("id", "duplicate_id", message)],
                )),
                None => {
                    lines.insert(key, entry.line);
                    fresh.push(entry);
                }
            }
        }
        Ok(fresh)
    }

    /// Inserts one document with its optional relations empty (they become links, written once
    /// the batch is in). If a required relation's target is not there yet, the document waits
    /// for it.
    async fn insert(&mut self, writes: Writes<'_>, entry: Entry, batch: &mut Batch) -> Result<()> {
        let records = self.records;
        let collection = &records.schema.collections[entry.collection];
        let (statement, links) = insert_statement(writes, &records.schema, &entry)?;
        let Err(error) = writes.execute(vec![statement]).await else {
            self.written[entry.collection] += 1;
            batch.arrived.push((entry.collection, entry.id));
            batch.links.extend(links);
            return Ok(());
        };
        match refusal(collection, error)? {
            Refusal::Field(problem) => batch.rejected.push(Rejection::document(
                entry.line,
                &collection.slug,
                Some(&entry.id),
                vec![problem],
            )),
            Refusal::ForeignKey => match self.missing_required(writes, collection, &entry).await? {
                Some((field, to, target)) => {
                    self.waiting.hold(
                        Held {
                            entry,
                            field,
                            target,
                        },
                        to,
                    );
                }
                None => batch.rejected.push(Rejection::document(
                    entry.line,
                    &collection.slug,
                    Some(&entry.id),
                    vec![FieldError::new(
                        "",
                        "invalid_relation",
                        "a related document does not exist",
                    )],
                )),
            },
        }
        Ok(())
    }

    /// The first required to-one relation of `entry` whose target does not exist: the field,
    /// the target collection and id.
    async fn missing_required(
        &self,
        writes: Writes<'_>,
        collection: &Collection,
        entry: &Entry,
    ) -> Result<Option<(usize, usize, String)>> {
        for (index, value) in &entry.values {
            let field = &collection.fields[*index];
            let (FieldKind::Relation { to, many: None, .. }, Value::Text(target), true) =
                (&field.kind, value, field.required)
            else {
                continue;
            };
            if !self
                .records
                .missing(writes, to, std::slice::from_ref(target))
                .await?
                .is_empty()
            {
                let to = self.records.schema.index_of(to).unwrap_or_default();
                return Ok(Some((*index, to, target.clone())));
            }
        }
        Ok(None)
    }

    /// Each link with the targets that do not exist: one query per target collection and
    /// [`IDS_PER_QUERY`] ids.
    async fn missing(
        &self,
        writes: Writes<'_>,
        links: Vec<Link>,
    ) -> Result<Vec<(Link, Vec<String>)>> {
        let mut wanted: HashMap<usize, HashSet<&str>> = HashMap::new();
        for link in &links {
            wanted
                .entry(link.to)
                .or_default()
                .extend(link.targets.iter().map(String::as_str));
        }
        let mut absent: HashSet<(usize, String)> = HashSet::new();
        for (to, ids) in wanted {
            let slug = &self.records.schema.collections[to].slug;
            let ids: Vec<String> = ids.into_iter().map(str::to_string).collect();
            for chunk in ids.chunks(IDS_PER_QUERY) {
                absent.extend(
                    self.records
                        .missing(writes, slug, chunk)
                        .await?
                        .into_iter()
                        .map(|id| (to, id)),
                );
            }
        }
        Ok(links
            .into_iter()
            .map(|link| {
                let missing = link
                    .targets
                    .iter()
                    .filter(|id| absent.contains(&(link.to, (*id).clone())))
                    .cloned()
                    .collect();
                (link, missing)
            })
            .collect())
    }

    /// Writes a relation value whose targets all exist.
    async fn link(
        &self,
        writes: Writes<'_>,
        link: Link,
        rejected: &mut Vec<Rejection>,
    ) -> Result<()> {
        let collection = &self.records.schema.collections[link.collection];
        let field = &collection.fields[link.field];
        let statements = link_statements(writes, collection, &link)?;
        let Err(error) = writes.execute(statements).await else {
            return Ok(());
        };
        let problem = match refusal(collection, error)? {
            Refusal::Field(problem) => problem,
            Refusal::ForeignKey => FieldError::new(
                &field.name,
                "invalid_relation",
                "a related document does not exist",
            ),
        };
        rejected.push(Rejection::document(
            link.line,
            &collection.slug,
            Some(&link.source),
            vec![FieldError::new(
                &field.name,
                problem.code,
                format!(
                    "{}; the document was imported without {}",
                    problem.message, field.name
                ),
            )],
        ));
        Ok(())
    }
}

/// The collection a relation field points to.
fn relation_target(kind: &FieldKind) -> &str {
    match kind {
        FieldKind::Relation { to, .. } => to,
        _ => "",
    }
}

/// The insert of a document, and its relation values to write after it: every list, and every
/// optional to-one relation (inserted empty). A required to-one relation is inserted with the
/// document, as its column cannot be empty.
///
/// # Errors
/// `Internal` if the statement cannot be built (it always can).
fn insert_statement(
    writes: Writes<'_>,
    schema: &Schema,
    entry: &Entry,
) -> Result<(Statement, Vec<Link>)> {
    let collection = &schema.collections[entry.collection];
    let backend = writes.backend();
    let mut columns = vec![Alias::new("id")];
    let mut row: Vec<SimpleExpr> = vec![entry.id.clone().into()];
    let mut links = Vec::new();
    for (index, value) in &entry.values {
        let field = &collection.fields[*index];
        let deferred = match (&field.kind, value) {
            (
                FieldKind::Relation {
                    to, many: Some(_), ..
                },
                Value::List(targets),
            ) => Some((to, targets.clone())),
            (FieldKind::Relation { to, many: None, .. }, Value::Text(target))
                if !field.required =>
            {
                Some((to, vec![target.clone()]))
            }
            _ => None,
        };
        let value = match deferred {
            Some((to, targets)) => {
                if !targets.is_empty() {
                    links.push(Link {
                        line: entry.line,
                        collection: entry.collection,
                        source: entry.id.clone(),
                        field: *index,
                        to: schema.index_of(to).unwrap_or_default(),
                        targets,
                    });
                }
                &Value::Null
            }
            None => value,
        };
        if field.has_column() {
            columns.push(Alias::new(&field.name));
            row.push(Expr::val(to_sql_value(&field.kind, value, backend)));
        }
    }
    columns.push(Alias::new("createdAt"));
    columns.push(Alias::new("updatedAt"));
    row.push(entry.created.into());
    row.push(entry.updated.into());
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new(&collection.slug))
        .columns(columns)
        .values(row)
        .map_err(|e| super::super::Error::Internal(e.to_string()))?;
    Ok((writes.build(&insert), links))
}

/// The statements that write a link: an update of the to-one column, or the list's join rows.
///
/// # Errors
/// `Internal` if a statement cannot be built (it always can).
fn link_statements(
    writes: Writes<'_>,
    collection: &Collection,
    link: &Link,
) -> Result<Vec<Statement>> {
    let field = &collection.fields[link.field];
    if field.is_list() {
        return list_statements(
            writes,
            collection,
            &link.source,
            &[(link.field, Value::List(link.targets.clone()))],
            false,
        );
    }
    let target = link.targets.first().cloned().unwrap_or_default();
    let mut update = Query::update();
    update
        .table(Alias::new(&collection.slug))
        .value(Alias::new(&field.name), target)
        .and_where(Expr::col(Alias::new("id")).eq(link.source.as_str()));
    Ok(vec![writes.build(&update)])
}

/// What a refused write means: a missing relation target, or a taken unique value (or id) as a
/// field problem; any other failure stays the database's.
fn refusal(collection: &Collection, error: DbErr) -> Result<Refusal> {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) => {
            let field = collection.fields.iter().filter(|f| f.unique).find(|f| {
                let index = format!("uq_{}_{}", collection.slug, f.name);
                let column = format!("{}.{}", collection.slug, f.name);
                message.contains(&index) || message.split([' ', ',']).any(|part| part == column)
            });
            Ok(Refusal::Field(match field {
                Some(field) => FieldError::new(
                    &field.name,
                    "unique",
                    format!("{} is already taken", field.name),
                ),
                None => FieldError::new(
                    "id",
                    "duplicate_id",
                    format!("a {} document with this id already exists", collection.slug),
                ),
            }))
        }
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => Ok(Refusal::ForeignKey),
        // SQLite reports some foreign-key failures with a code sea-orm does not map.
        _ if error.to_string().contains("FOREIGN KEY constraint failed") => Ok(Refusal::ForeignKey),
        _ => Err(error.into()),
    }
}
