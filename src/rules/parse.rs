//! Tokens → syntax tree, by recursive descent over the grammar of SPEC §6, with the nesting and
//! list-size limits enforced while parsing (so no input can exhaust the stack).

use super::ast::{CmpOp, Expr, ExprKind, Literal, Segment};
use super::error::RuleError;
use super::lex::{Tok, Token};

/// Deepest nesting accepted: each `(`, `[` and `!` opens a level (SPEC §6).
pub const MAX_DEPTH: usize = 32;
/// Most items in a literal `in` list (SPEC §6).
pub const MAX_LIST: usize = 1000;

/// Parses a whole expression.
///
/// # Errors
/// The first syntax error: parsing stops there because what follows cannot be read reliably.
pub fn parse(tokens: &[Token]) -> Result<Expr, RuleError> {
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let expr = parser.or()?;
    match parser.peek() {
        Tok::End => Ok(expr),
        tok if comparison(tok).is_some() => {
            Err(parser.error("comparisons cannot be chained; add parentheses"))
        }
        tok => Err(parser.error(format!("unexpected {tok}"))),
    }
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
    depth: usize,
}

fn comparison(tok: &Tok) -> Option<CmpOp> {
    Some(match tok {
        Tok::Eq => CmpOp::Eq,
        Tok::Ne => CmpOp::Ne,
        Tok::Lt => CmpOp::Lt,
        Tok::Le => CmpOp::Le,
        Tok::Gt => CmpOp::Gt,
        Tok::Ge => CmpOp::Ge,
        Tok::In => CmpOp::In,
        Tok::Tilde => CmpOp::Contains,
        _ => return None,
    })
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos].tok
    }

    fn column(&self) -> usize {
        self.tokens[self.pos].column
    }

    fn bump(&mut self) -> &Token {
        let token = &self.tokens[self.pos];
        // The final `End` is never consumed, so `pos` stays in bounds.
        if token.tok != Tok::End {
            self.pos += 1;
        }
        token
    }

    fn error(&self, message: impl Into<String>) -> RuleError {
        RuleError::new(self.column(), message)
    }

    fn expect(&mut self, tok: Tok) -> Result<(), RuleError> {
        if *self.peek() == tok {
            self.bump();
            Ok(())
        } else {
            Err(self.error(format!("expected {tok}, found {}", self.peek())))
        }
    }

    /// Opens one nesting level at the current token.
    fn enter(&mut self) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("expression nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, RuleError> {
        self.chain(Tok::Or, Self::and, ExprKind::Or)
    }

    fn and(&mut self) -> Result<Expr, RuleError> {
        self.chain(Tok::And, Self::unary, ExprKind::And)
    }

    fn chain(
        &mut self,
        separator: Tok,
        operand: fn(&mut Self) -> Result<Expr, RuleError>,
        build: fn(Vec<Expr>) -> ExprKind,
    ) -> Result<Expr, RuleError> {
        let first = operand(self)?;
        if *self.peek() != separator {
            return Ok(first);
        }
        let column = first.column;
        let mut items = vec![first];
        while *self.peek() == separator {
            self.bump();
            items.push(operand(self)?);
        }
        Ok(Expr {
            kind: build(items),
            column,
        })
    }

    fn unary(&mut self) -> Result<Expr, RuleError> {
        if *self.peek() != Tok::Not {
            return self.cmp();
        }
        let column = self.column();
        self.enter()?;
        self.bump();
        let inner = self.unary()?;
        self.depth -= 1;
        Ok(Expr {
            kind: ExprKind::Not(Box::new(inner)),
            column,
        })
    }

    fn cmp(&mut self) -> Result<Expr, RuleError> {
        let left = self.value()?;
        let Some(op) = comparison(self.peek()) else {
            return Ok(left);
        };
        let column = self.column();
        self.bump();
        let right = self.value()?;
        Ok(Expr {
            kind: ExprKind::Cmp(op, Box::new(left), Box::new(right)),
            column,
        })
    }

    fn value(&mut self) -> Result<Expr, RuleError> {
        let column = self.column();
        let literal = |lit| {
            Ok(Expr {
                kind: ExprKind::Lit(lit),
                column,
            })
        };
        match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                literal(Literal::Str(s))
            }
            Tok::Int(i) => {
                self.bump();
                literal(Literal::Int(i))
            }
            Tok::Float(x) => {
                self.bump();
                literal(Literal::Float(x))
            }
            Tok::True | Tok::False => {
                let value = *self.peek() == Tok::True;
                self.bump();
                literal(Literal::Bool(value))
            }
            Tok::Null => {
                self.bump();
                literal(Literal::Null)
            }
            Tok::Now => {
                self.bump();
                literal(Literal::Now)
            }
            Tok::Ident(_) => self.path(),
            Tok::LParen => {
                self.enter()?;
                self.bump();
                let inner = self.or()?;
                self.expect(Tok::RParen)?;
                self.depth -= 1;
                Ok(inner)
            }
            Tok::LBracket => self.list(),
            tok => Err(self.error(format!("expected a value, found {tok}"))),
        }
    }

    fn path(&mut self) -> Result<Expr, RuleError> {
        let column = self.column();
        let mut segments = Vec::new();
        loop {
            let token = self.bump().clone();
            let Tok::Ident(name) = token.tok else {
                return Err(RuleError::new(
                    token.column,
                    format!("expected a field name, found {}", token.tok),
                ));
            };
            segments.push(Segment {
                name,
                column: token.column,
            });
            if *self.peek() != Tok::Dot {
                return Ok(Expr {
                    kind: ExprKind::Path(segments),
                    column,
                });
            }
            self.bump();
        }
    }

    fn list(&mut self) -> Result<Expr, RuleError> {
        let column = self.column();
        self.enter()?;
        self.bump();
        let mut items = Vec::new();
        if *self.peek() != Tok::RBracket {
            loop {
                if items.len() == MAX_LIST {
                    return Err(RuleError::new(
                        column,
                        format!("list longer than {MAX_LIST} items"),
                    ));
                }
                items.push(self.or()?);
                if *self.peek() != Tok::Comma {
                    break;
                }
                self.bump();
            }
        }
        self.expect(Tok::RBracket)?;
        self.depth -= 1;
        Ok(Expr {
            kind: ExprKind::List(items),
            column,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::lex::lex;
    use super::*;

    fn parse_str(source: &str) -> Result<Expr, RuleError> {
        parse(&lex(source).expect("lexes"))
    }

    #[test]
    fn tree_table() {
        let cases = [
            ("a", "a"),
            ("doc.title == 'x'", r#"(== doc.title "x")"#),
            ("a || b && c", "(|| a (&& b c))"),
            ("a && b || c && d", "(|| (&& a b) (&& c d))"),
            ("a || b || c", "(|| a b c)"),
            ("(a || b) && c", "(&& (|| a b) c)"),
            ("!a && !!b", "(&& (! a) (! (! b)))"),
            ("!(x == 1)", "(! (== x 1))"),
            ("x in [1, 'a', null, now]", r#"(in x [1, "a", null, now])"#),
            ("x in []", "(in x [])"),
            ("'write' in user.scopes", r#"(in "write" user.scopes)"#),
            ("title ~ 'a%_'", r#"(~ title "a%_")"#),
            (
                "x <= -1.5 && y >= 2 && z < 3 && w > 4 && v != null",
                "(&& (<= x -1.5) (>= y 2) (< z 3) (> w 4) (!= v null))",
            ),
            ("(a == b) == true", "(== (== a b) true)"),
            ("doc.createdAt < now", "(< doc.createdAt now)"),
        ];
        for (source, expected) in cases {
            let expr = parse_str(source).unwrap_or_else(|e| panic!("{source}: {e}"));
            assert_eq!(expr.to_string(), expected, "{source}");
        }
    }

    #[test]
    fn errors_table() {
        let cases = [
            ("", 1, "expected a value, found the end of the expression"),
            (
                "a ==",
                5,
                "expected a value, found the end of the expression",
            ),
            (
                "a == b == c",
                8,
                "comparisons cannot be chained; add parentheses",
            ),
            ("(a", 3, "expected `)`, found the end of the expression"),
            ("a b", 3, "unexpected `b`"),
            (
                "a.",
                3,
                "expected a field name, found the end of the expression",
            ),
            ("a.1", 3, "expected a field name, found a number"),
            ("[1, 2", 6, "expected `]`, found the end of the expression"),
            ("a && || b", 6, "expected a value, found `||`"),
            ("now.x", 4, "unexpected `.`"),
        ];
        for (source, column, message) in cases {
            let err = parse_str(source).unwrap_err();
            assert_eq!(
                (err.column, err.message.as_str()),
                (column, message),
                "{source}"
            );
        }
    }

    #[test]
    fn nesting_is_limited() {
        let ok = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse_str(&ok).is_ok());
        let deep = format!(
            "{}a{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        let err = parse_str(&deep).unwrap_err();
        assert_eq!(
            (err.column, err.message.as_str()),
            (33, "expression nested deeper than 32 levels")
        );
        let nots = format!("{}a", "!".repeat(MAX_DEPTH + 1));
        assert!(parse_str(&nots).is_err());
        let mixed = format!(
            "{}a{}",
            "!(".repeat(MAX_DEPTH / 2 + 1),
            ")".repeat(MAX_DEPTH / 2 + 1)
        );
        assert!(parse_str(&mixed).is_err());
    }

    #[test]
    fn lists_are_limited() {
        let items = |n: usize| vec!["1"; n].join(",");
        assert!(parse_str(&format!("x in [{}]", items(MAX_LIST))).is_ok());
        let err = parse_str(&format!("x in [{}]", items(MAX_LIST + 1))).unwrap_err();
        assert_eq!(
            (err.column, err.message.as_str()),
            (6, "list longer than 1000 items")
        );
    }
}
