//! The checked tree and the values it computes with: what `check` produces and `eval`, `sql` and
//! `analysis` walk. A stage of its own so that the checker and the evaluators depend on it, not
//! on each other.

use std::fmt;

use chrono::{DateTime, Utc};

use super::ast::CmpOp;
use crate::schema::FieldKind;

/// Longest string a `~` operand may be, in characters (SPEC §6).
pub const MAX_PATTERN: usize = 256;

/// Static types. `Any` is a `user` field that auth collections declare with different types; its
/// values are checked when the rule runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    Null,
    Bool,
    Int,
    Float,
    Str,
    Time,
    Json,
    List(Box<Ty>),
    User,
    Any,
}

impl Ty {
    pub(super) fn of(kind: &FieldKind) -> Ty {
        match kind {
            FieldKind::String
            | FieldKind::Text
            | FieldKind::Email
            | FieldKind::Select(_)
            | FieldKind::Relation { many: None, .. } => Ty::Str,
            FieldKind::Relation { many: Some(_), .. } => Ty::List(Box::new(Ty::Str)),
            FieldKind::Integer => Ty::Int,
            FieldKind::Number => Ty::Float,
            FieldKind::Boolean => Ty::Bool,
            FieldKind::Datetime => Ty::Time,
            FieldKind::Json => Ty::Json,
        }
    }

    pub(super) fn is_number(&self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }

    pub(super) fn orderable(&self) -> bool {
        matches!(
            self,
            Ty::Int | Ty::Float | Ty::Str | Ty::Time | Ty::Null | Ty::Any
        )
    }

    pub(super) fn loose(&self) -> bool {
        matches!(self, Ty::Null | Ty::Any)
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ty::Null => "null",
            Ty::Bool => "boolean",
            Ty::Int => "integer",
            Ty::Float => "number",
            Ty::Str => "string",
            Ty::Time => "datetime",
            Ty::Json => "json",
            Ty::List(_) => "list",
            Ty::User => "user",
            Ty::Any => "value",
        })
    }
}

/// A column of the collection's table. The name comes from the schema, never from the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: Ty,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UserAttr {
    Id,
    Collection,
    Scopes,
    Field(String, Ty),
}

/// The checked tree that evaluation and SQL generation walk.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    Const(Val),
    Now,
    /// Only as the right side of `in`.
    List(Vec<Node>),
    /// `user` itself: only compared with null.
    User,
    UserAttr(UserAttr),
    Data(String, Ty),
    Doc(Column),
    /// A column of the document a relation path started from, inside that path's
    /// [`Exists`] (`author.name == doc.title`: `title` is the posts' column).
    Outer(Column),
    /// Whether some readable document across relations satisfies a condition.
    Exists(Box<Exists>),
    /// The ids a to-many relation field of the document holds: only as the right side of `in`
    /// (`'<id>' in tags`), where SQL looks the id up in the field's join table.
    Ids(Ids),
}

/// A to-many relation field as a list of ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Ids {
    /// The field's name (its value in API form is the list).
    pub field: String,
    /// Its join table: `source` the document's id, `target` the ids.
    pub join: String,
}

/// `author.name == 'Ann'`: some document the hops reach, each step readable by the caller,
/// satisfies `cond`. The checker builds one around each comparison (or condition) a relation
/// path takes part in; while it is still checking the comparison, `cond` is the path's bare
/// column.
#[derive(Debug, Clone, PartialEq)]
pub struct Exists {
    /// One to three steps.
    pub hops: Vec<Hop>,
    /// Over the last hop's document (`Doc`) and the document the path started from (`Outer`).
    pub cond: Node,
}

/// One step of a relation path, and what reading the documents it reaches takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Hop {
    /// The collection reached: its index in the schema (whose rules guard it) and its table.
    pub to: usize,
    pub table: String,
    pub link: Link,
    /// Fields of the reached documents the path reads (the next hop's relation field, the
    /// compared field, a back-relation's own field) that have a field `read` rule: the caller
    /// must pass it for each document, as for the collection's `read` rule.
    pub guarded: Vec<usize>,
}

/// How a hop finds the documents it reaches.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// The document's relation `column` holds the id of the one reached.
    Forward { column: String },
    /// The reached documents' relation `column` holds the document's id (a back-relation).
    Back { column: String },
    /// The document's to-many `field` lists the ids reached: rows of `join` whose `source` is
    /// the document's id.
    ForwardMany { field: String, join: String },
    /// The reached documents' to-many `field` lists the document's id: rows of `join` whose
    /// `target` is the document's id.
    BackMany { field: String, join: String },
}

impl Node {
    /// Whether the value depends on the stored document (or documents related to it), i.e. must
    /// become SQL.
    pub fn uses_doc(&self) -> bool {
        match self {
            Node::Doc(_) | Node::Outer(_) | Node::Exists(_) | Node::Ids(_) => true,
            Node::Or(items) | Node::And(items) | Node::List(items) => {
                items.iter().any(Node::uses_doc)
            }
            Node::Not(inner) => inner.uses_doc(),
            Node::Cmp(_, left, right) => left.uses_doc() || right.uses_doc(),
            Node::Const(_) | Node::Now | Node::User | Node::UserAttr(_) | Node::Data(..) => false,
        }
    }

    /// Whether the rule crosses relations (and so needs related documents to be evaluated).
    pub fn crosses(&self) -> bool {
        match self {
            Node::Exists(_) => true,
            Node::Or(items) | Node::And(items) | Node::List(items) => {
                items.iter().any(Node::crosses)
            }
            Node::Not(inner) => inner.crosses(),
            Node::Cmp(_, left, right) => left.crosses() || right.crosses(),
            Node::Const(_)
            | Node::Now
            | Node::User
            | Node::UserAttr(_)
            | Node::Data(..)
            | Node::Doc(_)
            | Node::Outer(_)
            | Node::Ids(_) => false,
        }
    }

    /// Whether the node reads a to-many relation's ids.
    pub fn reads_ids(&self) -> bool {
        match self {
            Node::Ids(_) => true,
            Node::Exists(exists) => exists.cond.reads_ids(),
            Node::Or(items) | Node::And(items) | Node::List(items) => {
                items.iter().any(Node::reads_ids)
            }
            Node::Not(inner) => inner.reads_ids(),
            Node::Cmp(_, left, right) => left.reads_ids() || right.reads_ids(),
            Node::Const(_)
            | Node::Now
            | Node::User
            | Node::UserAttr(_)
            | Node::Data(..)
            | Node::Doc(_)
            | Node::Outer(_) => false,
        }
    }

    /// Adds the collections the relation paths of this node reach to `reached`.
    pub fn reached(&self, reached: &mut Vec<usize>) {
        match self {
            Node::Exists(exists) => {
                reached.extend(exists.hops.iter().map(|hop| hop.to));
                exists.cond.reached(reached);
            }
            Node::Or(items) | Node::And(items) | Node::List(items) => {
                items.iter().for_each(|item| item.reached(reached));
            }
            Node::Not(inner) => inner.reached(reached),
            Node::Cmp(_, left, right) => {
                left.reached(reached);
                right.reached(reached);
            }
            Node::Const(_)
            | Node::Now
            | Node::User
            | Node::UserAttr(_)
            | Node::Data(..)
            | Node::Doc(_)
            | Node::Outer(_)
            | Node::Ids(_) => {}
        }
    }

    /// The same value read from the document a relation path starts from: `Doc` columns become
    /// `Outer` ones (for the other side of a comparison moved inside an [`Exists`]).
    pub fn outer(self) -> Node {
        match self {
            Node::Doc(column) => Node::Outer(column),
            Node::Or(items) => Node::Or(items.into_iter().map(Node::outer).collect()),
            Node::And(items) => Node::And(items.into_iter().map(Node::outer).collect()),
            Node::List(items) => Node::List(items.into_iter().map(Node::outer).collect()),
            Node::Not(inner) => Node::Not(Box::new(inner.outer())),
            Node::Cmp(op, left, right) => {
                Node::Cmp(op, Box::new(left.outer()), Box::new(right.outer()))
            }
            other @ (Node::Const(_)
            | Node::Now
            | Node::User
            | Node::UserAttr(_)
            | Node::Data(..)
            | Node::Outer(_)
            | Node::Exists(_)
            | Node::Ids(_)) => other,
        }
    }
}

/// A run-time value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Time(DateTime<Utc>),
    List(Vec<Val>),
    /// A non-null json field value or the signed-in user: only ever compared with null.
    Opaque,
}
