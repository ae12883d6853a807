//! Access predicates and list filters (SPEC §6): one small expression language, compiled once
//! against the schema, then either evaluated in memory or turned into a SQL condition.
//!
//! `lex` → `parse` (syntax tree, `ast`) → `check` (names and types against the schema) give a
//! [`Rule`], whose checked tree and run-time values are `ir`'s; `eval` runs it in memory, `sql` evaluates what it can in memory and turns the rest
//! into a sea-query condition. Both follow the null rules written down in `eval.rs`, and a
//! property test (`agreement.rs`) holds them to agreeing on SQLite and PostgreSQL.

#[cfg(test)]
mod agreement;
mod analysis;
mod ast;
mod check;
mod error;
mod eval;
#[cfg(test)]
mod fuzz;
mod ir;
mod lex;
mod parse;
mod sql;
#[cfg(test)]
mod tests;

use sea_orm::DbBackend;
use sea_orm::sea_query::Condition;
use serde_json::{Map, Value as Json};

pub use analysis::{Suspect, UserRead};
pub use check::MAX_HOPS;
pub use error::RuleError;
pub use ir::{Hop, Link, MAX_PATTERN};
pub use lex::MAX_SOURCE_BYTES;
pub use parse::{MAX_DEPTH, MAX_LIST};

use crate::schema::{Collection, Field, Schema};

/// Which names a rule may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A collection or field access predicate: `user`, `doc`, `data`, `now`.
    Predicate,
    /// The list `filter` parameter: document fields by bare name (or `doc.x`), literals, `now`.
    Filter,
}

/// A parsed, type-checked expression.
#[derive(Debug, Clone)]
pub struct Rule {
    node: ir::Node,
    /// The table of the collection it was compiled for: where a relation path starts.
    table: String,
}

/// Which fields a filter may name: answered for one caller by `access`, so the rules engine never
/// learns what a caller may read, only which names it may use (PocketBase's
/// `record_field_resolver` allow-list plays this part there). Any `Fn(&Collection, &Field) ->
/// bool` is one.
pub trait Resolver {
    /// Whether a filter may name `field` of `collection` (hidden fields are refused before this
    /// is asked).
    fn nameable(&self, collection: &Collection, field: &Field) -> bool;
}

impl<F: Fn(&Collection, &Field) -> bool> Resolver for F {
    fn nameable(&self, collection: &Collection, field: &Field) -> bool {
        self(collection, field)
    }
}

/// The rules that guard related documents for the caller a rule runs for: a relation path only
/// reaches documents that pass their collection's `read` rule, and reads their fields only where
/// the fields' `read` rules pass. Implemented by `access`; collections by schema index.
pub trait Guards {
    /// The `read` rule of a collection's documents; `None`: readable without condition.
    fn read(&self, collection: usize) -> Option<&Rule>;
    /// The `read` rule of one field; `None`: readable wherever the document is.
    fn field_read(&self, collection: usize, field: usize) -> Option<&Rule>;
}

/// How in-memory evaluation finds related documents (SQL joins them instead). Production code
/// evaluates rules that cross relations in SQL; the property test evaluates them in memory
/// against tables it keeps itself, which is what holds the two to the same answers.
pub trait Lookup {
    /// The stored documents (in API form, every field) that `hop` reaches from `doc`; whether
    /// the caller may read them is the evaluator's question, not this one's.
    fn follow(&self, hop: &Hop, doc: &Map<String, Json>) -> Vec<Map<String, Json>>;
}

/// The signed-in account a rule sees as `user`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserContext {
    pub id: String,
    /// Slug of the user's auth collection.
    pub collection: String,
    /// The account's fields in API form (datetimes as RFC 3339 strings); hidden ones are
    /// ignored because rules cannot name them.
    pub fields: Map<String, Json>,
    /// The API key's scopes; `None` for other credentials.
    pub scopes: Option<Vec<String>>,
}

/// What a rule is evaluated against.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// `None` for anonymous requests.
    pub user: Option<&'a UserContext>,
    pub now: chrono::DateTime<chrono::Utc>,
    /// The stored document in API form; `None` when there is none (create).
    pub doc: Option<&'a Map<String, Json>>,
    /// The incoming body; `None` when there is none (read, delete).
    pub data: Option<&'a Map<String, Json>>,
    /// The rules guarding related documents; `None` makes a rule that crosses relations fail
    /// (deny).
    pub guards: Option<&'a dyn Guards>,
    /// In-memory evaluation of a rule that crosses relations needs it; `None` makes such a rule
    /// fail (deny) in memory.
    pub lookup: Option<&'a dyn Lookup>,
}

impl<'a> Env<'a> {
    /// The same caller and time, reading another document with no body: how the `read` rules
    /// of related documents are evaluated.
    fn reading(&self, doc: Option<&'a Map<String, Json>>) -> Env<'a> {
        Env {
            doc,
            data: None,
            ..*self
        }
    }
}

/// A rule after the in-memory part is done.
#[derive(Debug, Clone)]
pub enum Residual {
    /// Holds for every row: add no condition.
    True,
    /// Holds for no row (also when the rule failed at run time): skip the query.
    False,
    /// Holds for the rows matching this condition on the collection's table.
    Cond(Condition),
}

impl Rule {
    /// Parses `source` and checks it against `collection` (`doc`/`data` fields, system fields
    /// included for `doc`) and `schema` (`user.<field>` = the non-hidden fields of every auth
    /// collection, plus `id`, `collection` and `scopes`).
    ///
    /// A `doc` path (a bare path in filters) may cross up to [`MAX_HOPS`] relations: relation
    /// fields, and back-relations named `<collection>_via_<field>`.
    ///
    /// In [`Mode::Filter`], a declared field — of the collection or of one a path reaches — is
    /// usable only if it is not hidden and `resolver` says so; otherwise it gets the same
    /// `unknown field "x"` error as a name that does not exist, so filters cannot probe for
    /// hidden fields. System fields are always usable. In [`Mode::Predicate`] every declared
    /// field is usable and `resolver` is not asked.
    ///
    /// # Errors
    /// Every lexical error, or the first syntax error, or every name and type error, each with
    /// its column; also the limits (source size, nesting, list length, `~` operand length).
    pub fn compile(
        source: &str,
        mode: Mode,
        schema: &Schema,
        collection: &Collection,
        resolver: &dyn Resolver,
    ) -> Result<Rule, Vec<RuleError>> {
        let tokens = lex::lex(source)?;
        let expr = parse::parse(&tokens).map_err(|error| vec![error])?;
        let names = check::Names {
            mode,
            schema,
            collection,
            resolver,
        };
        let node = check::check(&expr, &names)?;
        Ok(Rule {
            node,
            table: collection.slug.clone(),
        })
    }

    /// The rule that holds for no document and no caller.
    pub fn never() -> Rule {
        Rule {
            node: ir::Node::Const(ir::Val::Bool(false)),
            table: String::new(),
        }
    }

    /// Evaluates completely in memory. A rule that fails at run time (e.g. a body value of the
    /// wrong type) is false; so is one that crosses relations without `env.lookup` and
    /// `env.guards`.
    pub fn eval(&self, env: &Env<'_>) -> bool {
        eval::truth(&self.node, env).unwrap_or(false)
    }

    /// Whether the rule follows relations (then evaluating it needs related documents: records
    /// evaluates such rules in SQL).
    pub fn crosses_relations(&self) -> bool {
        self.node.crosses()
    }

    /// The collections (schema indexes) the rule's relation paths reach, for the check that
    /// `read` rules do not reach each other in a loop.
    pub fn reaches(&self) -> Vec<usize> {
        let mut reached = Vec::new();
        self.node.reached(&mut reached);
        reached
    }

    /// Evaluates what depends only on `user`, `now` and `data` in memory and turns the rest into
    /// a condition over the collection's columns (unqualified column names; a relation path
    /// becomes an `EXISTS` sub-query that names this collection's table); `env.doc` is not
    /// read. A rule that fails at run time gives [`Residual::False`].
    pub fn to_condition(&self, env: &Env<'_>, backend: DbBackend) -> Residual {
        match sql::lower(&self.node, &self.table, env, backend) {
            Ok(sql::Truth::Known(true)) => Residual::True,
            Ok(sql::Truth::Known(false)) | Err(_) => Residual::False,
            Ok(sql::Truth::Sql(expr)) => Residual::Cond(Condition::all().add(expr)),
        }
    }
}
