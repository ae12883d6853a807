//! Writing documents in as an export holds them, for `lucent import`: ids, timestamps and every
//! stored field kept (password hashes as they are), checked with the API's field checks but not
//! its access rules, written in batches, one transaction each.
//!
//! The stages, each tested alone: `check` (the validator: a document against its collection),
//! `waiting` (what waits for documents further down the input), `statements` (rows, links and
//! what the database's refusals mean), `writer` (a batch into the database: [`Importer`]).
//!
//! Relations are resolved whatever the order of the input, cycles included, without deferring
//! the database's foreign keys (PostgreSQL cannot defer Lucent's): a document is inserted with
//! its optional to-one relations empty, then, once the batch's documents are in, its relations
//! and lists whose targets exist are written in the same transaction; the others wait (in
//! memory) for the batch that brings their target. A document whose *required* relation points
//! further down waits whole. What never finds its target is reported at the end. An export lists
//! collections targets first (`export::dependency_order`), so reading one back keeps little
//! waiting: only cycles and self-references.

mod check;
mod statements;
mod waiting;
mod writer;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

pub use writer::Importer;

use super::Records;
use crate::schema::{FieldError, Value};

/// The most ids one existence query asks about (within every engine's limit on parameters).
const IDS_PER_QUERY: usize = 1000;

/// A document that passed the validator, ready for a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Where it was read (1-based), for reports.
    pub line: u64,
    /// Its collection, by index.
    collection: usize,
    id: String,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    /// Every field's value, by field index.
    values: Vec<(usize, Value)>,
}

/// A line that was not imported, or not wholly, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub line: u64,
    /// The document, when the line got as far as naming one: `posts "0192…"`.
    pub subject: Option<String>,
    pub reasons: Vec<String>,
}

impl Rejection {
    /// A line rejected before it named a document (not JSON, no collection, ...).
    pub fn line(line: u64, reason: impl Into<String>) -> Self {
        Self {
            line,
            subject: None,
            reasons: vec![reason.into()],
        }
    }

    fn document(line: u64, slug: &str, id: Option<&str>, errors: Vec<FieldError>) -> Self {
        Self {
            line,
            subject: Some(match id {
                Some(id) => format!("{slug} {}", Json::String(id.to_string())),
                None => slug.to_string(),
            }),
            reasons: errors
                .into_iter()
                .map(|e| match e.field.as_str() {
                    "" => e.message,
                    field => format!("{field}: {}", e.message),
                })
                .collect(),
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: ", self.line)?;
        if let Some(subject) = &self.subject {
            write!(f, "{subject}: ")?;
        }
        f.write_str(&self.reasons.join("; "))
    }
}

impl Records {
    /// Checks one document of `slug` as an export holds it (see `check`): the entry to write, or
    /// the line rejected with every problem.
    ///
    /// # Errors
    /// The rejection: an unknown collection, or each failing field.
    pub fn check_import(&self, line: u64, slug: &str, doc: &Json) -> Result<Entry, Rejection> {
        let Some(collection) = self.schema.index_of(slug) else {
            return Err(Rejection::line(
                line,
                format!("unknown collection {}", Json::String(slug.to_string())),
            ));
        };
        match check::check_document(&self.schema.collections[collection], doc) {
            Ok(checked) => Ok(Entry {
                line,
                collection,
                id: checked.id,
                created: checked.created,
                updated: checked.updated,
                values: checked.values,
            }),
            Err(errors) => Err(Rejection::document(
                line,
                slug,
                doc.get("id").and_then(Json::as_str),
                errors,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_name_the_line_the_document_and_every_reason() {
        let cases = [
            (Rejection::line(3, "not JSON"), "line 3: not JSON"),
            (
                Rejection::document(
                    7,
                    "posts",
                    Some("p\"1"),
                    vec![
                        FieldError::new("title", "required", "title is required"),
                        FieldError::new("", "invalid_type", "the document must be an object"),
                    ],
                ),
                r#"line 7: posts "p\"1": title: title is required; the document must be an object"#,
            ),
            (
                Rejection::document(
                    9,
                    "posts",
                    None,
                    vec![FieldError::new("id", "required", "id is required")],
                ),
                "line 9: posts: id: id is required",
            ),
        ];
        for (rejection, expected) in cases {
            assert_eq!(rejection.to_string(), expected);
        }
    }
}
