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
}

impl Node {
    /// Whether the value depends on the stored document, i.e. must become SQL.
    pub fn uses_doc(&self) -> bool {
        match self {
            Node::Doc(_) => true,
            Node::Or(items) | Node::And(items) | Node::List(items) => {
                items.iter().any(Node::uses_doc)
            }
            Node::Not(inner) => inner.uses_doc(),
            Node::Cmp(_, left, right) => left.uses_doc() || right.uses_doc(),
            Node::Const(_) | Node::Now | Node::User | Node::UserAttr(_) | Node::Data(..) => false,
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
