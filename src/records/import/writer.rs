//! The writer: batches of checked documents into the database, one transaction per batch (or,
//! for a dry run, one savepoint per batch inside a transaction rolled back at the end).
//!
//! A batch's documents go in a collection at a time, many rows per insert, each insert under its
//! own savepoint; when one is refused (a taken unique value, an id already there, a required
//! relation whose target is further down), its documents are written again one by one, so only
//! the refused one fails and the batch goes on. The relation values written after the documents
//! (`statements::row` says which) go in the same way, a list field at a time.

use std::collections::{HashMap, HashSet};

use sea_orm::{DatabaseTransaction, TransactionTrait};
use serde_json::Value as Json;

use super::super::{Records, Result, dependency_order};
use super::statements::{self, Refusal, refusal, rows_per_statement};
use super::waiting::{Held, Link, Waiting};
use super::{Entry, IDS_PER_QUERY, Rejection};
use crate::db::Writes;
use crate::schema::{FieldError, FieldKind, Value};

/// Writes batches of entries, keeping what waits between them.
#[derive(Debug)]
pub struct Importer<'a> {
    records: &'a Records,
    /// A dry run's transaction: every batch is a savepoint inside it, and it is rolled back.
    dry_run: Option<DatabaseTransaction>,
    waiting: Waiting,
    /// Documents written, by collection index.
    written: Vec<u64>,
    /// Each collection's place in `export::dependency_order`: a batch writes its collections
    /// in that order, so most relations find their target written.
    rank: Vec<usize>,
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

/// Documents (collection index, id) known to exist.
type Known = HashSet<(usize, String)>;

impl Records {
    /// An importer into this database; with `dry_run`, everything is checked and written as an
    /// import would, then rolled back.
    ///
    /// # Errors
    /// The database's.
    pub async fn importer(&self, dry_run: bool) -> Result<Importer<'_>> {
        let dry_run = match dry_run {
            true => Some(self.db.writer().begin().await?),
            false => None,
        };
        let mut rank = vec![0; self.schema.collections.len()];
        for (place, collection) in dependency_order(&self.schema).into_iter().enumerate() {
            rank[collection] = place;
        }
        Ok(Importer {
            records: self,
            dry_run,
            waiting: Waiting::default(),
            written: vec![0; self.schema.collections.len()],
            rank,
        })
    }
}

impl Importer<'_> {
    /// Writes a batch in one transaction: the documents, those that waited for one of them,
    /// then every relation value whose targets are all there, including those of earlier batches
    /// that waited for this one. Returns the lines rejected, in order.
    ///
    /// # Errors
    /// The database's (a lost connection, ...): nothing of the batch is then written.
    pub async fn write(&mut self, entries: Vec<Entry>) -> Result<Vec<Rejection>> {
        let transaction = match &self.dry_run {
            Some(outer) => outer.begin().await?.into(),
            None => self.records.db.begin().await?,
        };
        let writes = Writes::Within(&transaction);
        let mut batch = Batch::default();
        let entries = self.new_ids(writes, entries, &mut batch.rejected).await?;
        let known = self.known_targets(writes, &entries).await?;
        self.insert_all(writes, entries, &known, &mut batch).await?;
        let mut ready = Vec::new();
        let mut next = 0;
        while let Some((collection, id)) = batch.arrived.get(next).cloned() {
            next += 1;
            let (links, entries) = self.waiting.arrive(collection, &id);
            ready.extend(links);
            for entry in entries {
                self.insert_one(writes, entry, &Known::new(), &mut batch)
                    .await?;
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
        self.link_all(writes, ready, &mut batch.rejected).await?;
        transaction.commit().await?;
        batch.rejected.sort_by_key(|r| r.line);
        Ok(batch.rejected)
    }

    /// Ends the import: every link or document still waiting found no target, and is reported
    /// (a line once, with every reason). A dry run is rolled back.
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
            let to = match &field.kind {
                FieldKind::Relation { to, .. } => to.as_str(),
                _ => "",
            };
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
        let asked: Known = entries
            .iter()
            .map(|e| (e.collection, e.id.clone()))
            .collect();
        let existing = self.existing(writes, asked).await?;
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

    /// Which to-one relation targets of `entries` exist already.
    async fn known_targets(&self, writes: Writes<'_>, entries: &[Entry]) -> Result<Known> {
        let schema = &self.records.schema;
        let mut asked = Known::new();
        for entry in entries {
            let collection = &schema.collections[entry.collection];
            for (index, value) in &entry.values {
                if let (FieldKind::Relation { to, many: None, .. }, Value::Text(target)) =
                    (&collection.fields[*index].kind, value)
                    && let Some(to) = schema.index_of(to)
                {
                    asked.insert((to, target.clone()));
                }
            }
        }
        self.existing(writes, asked).await
    }

    /// Which of `asked` exist: one query per collection and [`IDS_PER_QUERY`] ids.
    async fn existing(&self, writes: Writes<'_>, asked: Known) -> Result<Known> {
        let mut by_collection: HashMap<usize, Vec<String>> = HashMap::new();
        for (collection, id) in asked {
            by_collection.entry(collection).or_default().push(id);
        }
        let mut existing = Known::new();
        for (collection, ids) in by_collection {
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
        Ok(existing)
    }

    /// Inserts entries a collection at a time (targets first), many rows per statement; the rows
    /// of a refused statement are inserted again one by one. A document whose required relation
    /// points to neither a known document nor one of this batch waits for it without a try.
    async fn insert_all(
        &mut self,
        writes: Writes<'_>,
        entries: Vec<Entry>,
        known: &Known,
        batch: &mut Batch,
    ) -> Result<()> {
        let schema = &self.records.schema;
        let in_batch: Known = entries
            .iter()
            .map(|e| (e.collection, e.id.clone()))
            .collect();
        let mut groups: Vec<(usize, Vec<Entry>)> = Vec::new();
        for entry in entries {
            if let Some((field, to, target)) = self.required_elsewhere(&entry, known, &in_batch) {
                self.waiting.hold(
                    Held {
                        entry,
                        field,
                        target,
                    },
                    to,
                );
                continue;
            }
            match groups.iter_mut().find(|(c, _)| *c == entry.collection) {
                Some((_, group)) => group.push(entry),
                None => groups.push((entry.collection, vec![entry])),
            }
        }
        groups.sort_by_key(|(collection, _)| self.rank[*collection]);
        let backend = writes.backend();
        for (collection_index, group) in groups {
            let collection = &schema.collections[collection_index];
            let per_statement = rows_per_statement(statements::columns(collection).len());
            let mut group = group.into_iter().peekable();
            while group.peek().is_some() {
                let chunk: Vec<Entry> = group.by_ref().take(per_statement).collect();
                let mut rows = Vec::with_capacity(chunk.len());
                let mut links = Vec::new();
                for entry in &chunk {
                    let (row, deferred) = statements::row(schema, entry, known, backend);
                    rows.push(row);
                    links.extend(deferred);
                }
                let insert = writes.build(&statements::insert(collection, rows)?);
                if writes.execute(vec![insert]).await.is_ok() {
                    self.written[collection_index] += chunk.len() as u64;
                    batch
                        .arrived
                        .extend(chunk.into_iter().map(|e| (e.collection, e.id)));
                    batch.links.extend(links);
                    continue;
                }
                for entry in chunk {
                    self.insert_one(writes, entry, known, batch).await?;
                }
            }
        }
        Ok(())
    }

    /// The first required to-one relation of `entry` whose target is neither known to exist nor
    /// in the batch: the field, the target collection and id.
    fn required_elsewhere(
        &self,
        entry: &Entry,
        known: &Known,
        in_batch: &Known,
    ) -> Option<(usize, usize, String)> {
        let schema = &self.records.schema;
        let collection = &schema.collections[entry.collection];
        entry.values.iter().find_map(|(index, value)| {
            let field = &collection.fields[*index];
            let (FieldKind::Relation { to, many: None, .. }, Value::Text(target)) =
                (&field.kind, value)
            else {
                return None;
            };
            let key = (schema.index_of(to)?, target.clone());
            (field.required && !known.contains(&key) && !in_batch.contains(&key))
                .then_some((*index, key.0, key.1))
        })
    }

    /// Inserts one document; if a required relation's target is not there yet, it waits for it.
    async fn insert_one(
        &mut self,
        writes: Writes<'_>,
        entry: Entry,
        known: &Known,
        batch: &mut Batch,
    ) -> Result<()> {
        let records = self.records;
        let collection = &records.schema.collections[entry.collection];
        let (row, links) = statements::row(&records.schema, &entry, known, writes.backend());
        let insert = writes.build(&statements::insert(collection, vec![row])?);
        let Err(error) = writes.execute(vec![insert]).await else {
            self.written[entry.collection] += 1;
            batch.arrived.push((entry.collection, entry.id));
            batch.links.extend(links);
            return Ok(());
        };
        let problem = match refusal(collection, error)? {
            Refusal::Field(problem) => problem,
            Refusal::ForeignKey => match self.missing_required(writes, &entry).await? {
                Some((field, to, target)) => {
                    let held = Held {
                        entry,
                        field,
                        target,
                    };
                    self.waiting.hold(held, to);
                    return Ok(());
                }
                None => FieldError::new("", "invalid_relation", "a related document is missing"),
            },
        };
        batch.rejected.push(Rejection::document(
            entry.line,
            &collection.slug,
            Some(&entry.id),
            vec![problem],
        ));
        Ok(())
    }

    /// The first required to-one relation of `entry` whose target does not exist: the field,
    /// the target collection and id.
    async fn missing_required(
        &self,
        writes: Writes<'_>,
        entry: &Entry,
    ) -> Result<Option<(usize, usize, String)>> {
        let schema = &self.records.schema;
        let collection = &schema.collections[entry.collection];
        for (index, value) in &entry.values {
            let field = &collection.fields[*index];
            let (FieldKind::Relation { to, many: None, .. }, Value::Text(target), true) =
                (&field.kind, value, field.required)
            else {
                continue;
            };
            let absent = self
                .records
                .missing(writes, to, std::slice::from_ref(target))
                .await?;
            if let (false, Some(to)) = (absent.is_empty(), schema.index_of(to)) {
                return Ok(Some((*index, to, target.clone())));
            }
        }
        Ok(None)
    }

    /// Each link with the targets that do not exist.
    async fn missing(
        &self,
        writes: Writes<'_>,
        links: Vec<Link>,
    ) -> Result<Vec<(Link, Vec<String>)>> {
        let asked: Known = links
            .iter()
            .flat_map(|link| link.targets.iter().map(|id| (link.to, id.clone())))
            .collect();
        let existing = self.existing(writes, asked).await?;
        Ok(links
            .into_iter()
            .map(|link| {
                let missing = link
                    .targets
                    .iter()
                    .filter(|id| !existing.contains(&(link.to, (*id).clone())))
                    .cloned()
                    .collect();
                (link, missing)
            })
            .collect())
    }

    /// Writes links whose targets all exist: the lists of a field together, as many rows per
    /// statement as fit (again one by one when one is refused), each to-one relation alone.
    async fn link_all(
        &self,
        writes: Writes<'_>,
        links: Vec<Link>,
        rejected: &mut Vec<Rejection>,
    ) -> Result<()> {
        let schema = &self.records.schema;
        let mut lists: Vec<((usize, usize), Vec<Link>)> = Vec::new();
        for link in links {
            if !schema.collections[link.collection].fields[link.field].is_list() {
                self.link(writes, link, rejected).await?;
                continue;
            }
            let key = (link.collection, link.field);
            match lists.iter_mut().find(|(k, _)| *k == key) {
                Some((_, group)) => group.push(link),
                None => lists.push((key, vec![link])),
            }
        }
        for ((collection, field), group) in lists {
            let collection = &schema.collections[collection];
            for chunk in statements::by_rows(group, rows_per_statement(3)) {
                let insert = writes.build(&statements::join_rows(collection, field, &chunk)?);
                if writes.execute(vec![insert]).await.is_err() {
                    for link in chunk {
                        self.link(writes, link, rejected).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes one link whose targets all exist; a refused one is reported, its document kept.
    async fn link(
        &self,
        writes: Writes<'_>,
        link: Link,
        rejected: &mut Vec<Rejection>,
    ) -> Result<()> {
        let collection = &self.records.schema.collections[link.collection];
        let field = &collection.fields[link.field];
        let statement = match field.is_list() {
            true => writes.build(&statements::join_rows(
                collection,
                link.field,
                std::slice::from_ref(&link),
            )?),
            false => writes.build(&statements::set_relation(collection, &link)),
        };
        let Err(error) = writes.execute(vec![statement]).await else {
            return Ok(());
        };
        let problem = match refusal(collection, error)? {
            Refusal::Field(problem) => problem,
            Refusal::ForeignKey => FieldError::new(
                &field.name,
                "invalid_relation",
                "a related document is missing",
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
