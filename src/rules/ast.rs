//! The syntax tree the parser builds, before names and types are checked. Its `Display` is a
//! compact prefix form, used by the parser's tests.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    /// 1-based character column of the expression's first token (of the operator for a
    /// comparison), where errors about it point.
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// Two or more operands: chains stay flat, so `a || b || c` is one level of nesting.
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    Lit(Literal),
    Path(Vec<Segment>),
    List(Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    /// `~`: case-insensitive substring.
    Contains,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::In => "in",
            CmpOp::Contains => "~",
        }
    }

    /// The operator that gives the same answer with its operands swapped (`a < b` ⇔ `b > a`).
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Now,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub name: String,
    pub column: usize,
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, head: &str, items: &[Expr]| {
            write!(f, "({head}")?;
            items.iter().try_for_each(|item| write!(f, " {item}"))?;
            f.write_str(")")
        };
        match &self.kind {
            ExprKind::Or(items) => list(f, "||", items),
            ExprKind::And(items) => list(f, "&&", items),
            ExprKind::Not(inner) => write!(f, "(! {inner})"),
            ExprKind::Cmp(op, left, right) => write!(f, "({} {left} {right})", op.symbol()),
            ExprKind::Lit(Literal::Str(s)) => write!(f, "{s:?}"),
            ExprKind::Lit(Literal::Int(i)) => write!(f, "{i}"),
            ExprKind::Lit(Literal::Float(x)) => write!(f, "{x:?}"),
            ExprKind::Lit(Literal::Bool(b)) => write!(f, "{b}"),
            ExprKind::Lit(Literal::Null) => f.write_str("null"),
            ExprKind::Lit(Literal::Now) => f.write_str("now"),
            ExprKind::Path(segments) => {
                let names: Vec<&str> = segments.iter().map(|s| s.name.as_str()).collect();
                f.write_str(&names.join("."))
            }
            ExprKind::List(items) => {
                let items: Vec<String> = items.iter().map(ToString::to_string).collect();
                write!(f, "[{}]", items.join(", "))
            }
        }
    }
}
