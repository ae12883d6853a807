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
pub use error::RuleError;
pub use ir::MAX_PATTERN;
pub use lex::MAX_SOURCE_BYTES;
pub use parse::{MAX_DEPTH, MAX_LIST};

use crate::schema::{Collection, Schema};

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
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// `None` for anonymous requests.
    pub user: Option<&'a UserContext>,
    pub now: chrono::DateTime<chrono::Utc>,
    /// The stored document in API form; `None` when there is none (create).
    pub doc: Option<&'a Map<String, Json>>,
    /// The incoming body; `None` when there is none (read, delete).
    pub data: Option<&'a Map<String, Json>>,
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
    /// In [`Mode::Filter`], a declared field is usable only if it is not hidden and `readable`
    /// says so; otherwise it gets the same `unknown field "x"` error as a name that does not
    /// exist, so filters cannot probe for hidden fields. System fields are always usable. In
    /// [`Mode::Predicate`] every declared field is usable and `readable` is not called.
    ///
    /// # Errors
    /// Every lexical error, or the first syntax error, or every name and type error, each with
    /// its column; also the limits (source size, nesting, list length, `~` operand length).
    pub fn compile(
        source: &str,
        mode: Mode,
        schema: &Schema,
        collection: &Collection,
        readable: &dyn Fn(&str) -> bool,
    ) -> Result<Rule, Vec<RuleError>> {
        let tokens = lex::lex(source)?;
        let expr = parse::parse(&tokens).map_err(|error| vec![error])?;
        let names = check::Names {
            mode,
            schema,
            collection,
            readable,
        };
        let node = check::check(&expr, &names)?;
        Ok(Rule { node })
    }

    /// Evaluates completely in memory. A rule that fails at run time (e.g. a body value of the
    /// wrong type) is false.
    pub fn eval(&self, env: &Env<'_>) -> bool {
        eval::truth(&self.node, env).unwrap_or(false)
    }

    /// Evaluates what depends only on `user`, `now` and `data` in memory and turns the rest into
    /// a condition over the collection's columns (unqualified column names); `env.doc` is not
    /// read. A rule that fails at run time gives [`Residual::False`].
    pub fn to_condition(&self, env: &Env<'_>, backend: DbBackend) -> Residual {
        match sql::lower(&self.node, env, backend) {
            Ok(sql::Truth::Known(true)) => Residual::True,
            Ok(sql::Truth::Known(false)) | Err(_) => Residual::False,
            Ok(sql::Truth::Sql(expr)) => Residual::Cond(Condition::all().add(expr)),
        }
    }
}
