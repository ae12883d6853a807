//! Source text → tokens, each with the 1-based character column where it starts.

use std::fmt;

use super::error::RuleError;

/// The longest source accepted, in bytes (SPEC §6).
pub const MAX_SOURCE_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    True,
    False,
    Null,
    Now,
    In,
    Or,
    And,
    Not,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Tilde,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Tok::Ident(name) => return write!(f, "`{name}`"),
            Tok::Str(_) => "a string",
            Tok::Int(_) | Tok::Float(_) => "a number",
            Tok::True => "`true`",
            Tok::False => "`false`",
            Tok::Null => "`null`",
            Tok::Now => "`now`",
            Tok::In => "`in`",
            Tok::Or => "`||`",
            Tok::And => "`&&`",
            Tok::Not => "`!`",
            Tok::Eq => "`==`",
            Tok::Ne => "`!=`",
            Tok::Lt => "`<`",
            Tok::Le => "`<=`",
            Tok::Gt => "`>`",
            Tok::Ge => "`>=`",
            Tok::Tilde => "`~`",
            Tok::LParen => "`(`",
            Tok::RParen => "`)`",
            Tok::LBracket => "`[`",
            Tok::RBracket => "`]`",
            Tok::Comma => "`,`",
            Tok::Dot => "`.`",
            Tok::End => "the end of the expression",
        };
        f.write_str(text)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub column: usize,
}

/// Splits `source` into tokens ending with [`Tok::End`].
///
/// # Errors
/// Every bad character, unterminated string, bad escape and unreadable number, or a source over
/// [`MAX_SOURCE_BYTES`] (then only that).
pub fn lex(source: &str) -> Result<Vec<Token>, Vec<RuleError>> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(vec![RuleError::new(
            1,
            format!("expression longer than {MAX_SOURCE_BYTES} bytes"),
        )]);
    }
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut errors = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let next = chars.get(i + 1).copied();
        let mut push = |tok: Tok, width: usize| {
            tokens.push(Token { tok, column });
            width
        };
        i += match (c, next) {
            _ if c.is_whitespace() => 1,
            ('|', Some('|')) => push(Tok::Or, 2),
            ('&', Some('&')) => push(Tok::And, 2),
            ('=', Some('=')) => push(Tok::Eq, 2),
            ('!', Some('=')) => push(Tok::Ne, 2),
            ('<', Some('=')) => push(Tok::Le, 2),
            ('>', Some('=')) => push(Tok::Ge, 2),
            ('!', _) => push(Tok::Not, 1),
            ('<', _) => push(Tok::Lt, 1),
            ('>', _) => push(Tok::Gt, 1),
            ('~', _) => push(Tok::Tilde, 1),
            ('(', _) => push(Tok::LParen, 1),
            (')', _) => push(Tok::RParen, 1),
            ('[', _) => push(Tok::LBracket, 1),
            (']', _) => push(Tok::RBracket, 1),
            (',', _) => push(Tok::Comma, 1),
            ('.', _) => push(Tok::Dot, 1),
            ('\'' | '"', _) => match string(&chars, i) {
                Ok((text, width)) => push(Tok::Str(text), width),
                Err((error, width)) => {
                    errors.push(error);
                    width
                }
            },
            _ if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let width = number_width(&chars[i..]);
                let text: String = chars[i..i + width].iter().collect();
                match number(&text) {
                    Some(tok) => push(tok, width),
                    None => {
                        errors.push(RuleError::new(column, format!("invalid number `{text}`")));
                        width
                    }
                }
            }
            _ if c.is_ascii_alphabetic() || c == '_' => {
                let width = chars[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .count();
                let word: String = chars[i..i + width].iter().collect();
                let tok = match word.as_str() {
                    "true" => Tok::True,
                    "false" => Tok::False,
                    "null" => Tok::Null,
                    "now" => Tok::Now,
                    "in" => Tok::In,
                    _ => Tok::Ident(word),
                };
                push(tok, width)
            }
            _ => {
                let hint = match c {
                    '=' => " (did you mean `==`?)",
                    '&' => " (did you mean `&&`?)",
                    '|' => " (did you mean `||`?)",
                    _ => "",
                };
                errors.push(RuleError::new(
                    column,
                    format!("unexpected character `{}`{hint}", c.escape_debug()),
                ));
                1
            }
        };
    }
    tokens.push(Token {
        tok: Tok::End,
        column: chars.len() + 1,
    });
    if errors.is_empty() {
        Ok(tokens)
    } else {
        Err(errors)
    }
}

/// A quoted string starting at `start`: its text and the characters it spans.
fn string(chars: &[char], start: usize) -> Result<(String, usize), (RuleError, usize)> {
    let quote = chars[start];
    let mut text = String::new();
    let mut i = start + 1;
    // The first bad escape or NUL character, reported once the string is read.
    let mut bad_escape = None;
    while let Some(&c) = chars.get(i) {
        match c {
            _ if c == quote => {
                let width = i + 1 - start;
                return match bad_escape {
                    Some(error) => Err((error, width)),
                    None => Ok((text, width)),
                };
            }
            '\\' => {
                let escaped = match chars.get(i + 1) {
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some(&c @ ('\\' | '\'' | '"')) => c,
                    _ => {
                        bad_escape.get_or_insert_with(|| {
                            RuleError::new(
                                i + 1,
                                "unknown escape (use \\\\, \\', \\\", \\n or \\t)",
                            )
                        });
                        '\\'
                    }
                };
                text.push(escaped);
                i += 2;
            }
            '\0' => {
                // PostgreSQL refuses NUL in text: refused here, so every engine answers alike.
                bad_escape.get_or_insert_with(|| {
                    RuleError::new(i + 1, "a string may not contain NUL characters (U+0000)")
                });
                i += 1;
            }
            _ => {
                text.push(c);
                i += 1;
            }
        }
    }
    Err((
        RuleError::new(start + 1, "unterminated string"),
        chars.len() - start,
    ))
}

/// How many characters the number at the start of `chars` spans: an optional minus, digits, an
/// optional fraction and exponent. Letters right after it are taken too, so `12ab` is one bad
/// number instead of a number followed by a name.
fn number_width(chars: &[char]) -> usize {
    let mut i = usize::from(chars[0] == '-');
    let digits = |from: usize| {
        chars[from..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    i += digits(i);
    if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
        i += 1 + digits(i + 1);
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        let sign = usize::from(matches!(chars.get(i + 1), Some('+' | '-')));
        if chars.get(i + 1 + sign).is_some_and(char::is_ascii_digit) {
            i += 1 + sign + digits(i + 1 + sign);
        }
    }
    i + chars[i..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
        .count()
}

/// Integers stay exact when they fit an i64; anything with a fraction or exponent is an f64.
fn number(text: &str) -> Option<Tok> {
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return text.parse().ok().map(Tok::Int);
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Tok::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(source: &str) -> Vec<Tok> {
        lex(source).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn tokens_table() {
        let cases: Vec<(&str, Vec<Tok>)> = vec![
            (
                "a.b",
                vec![
                    Tok::Ident("a".into()),
                    Tok::Dot,
                    Tok::Ident("b".into()),
                    Tok::End,
                ],
            ),
            (
                "== != < <= > >= ~",
                vec![
                    Tok::Eq,
                    Tok::Ne,
                    Tok::Lt,
                    Tok::Le,
                    Tok::Gt,
                    Tok::Ge,
                    Tok::Tilde,
                    Tok::End,
                ],
            ),
            (
                "!a&&b||c",
                vec![
                    Tok::Not,
                    Tok::Ident("a".into()),
                    Tok::And,
                    Tok::Ident("b".into()),
                    Tok::Or,
                    Tok::Ident("c".into()),
                    Tok::End,
                ],
            ),
            (
                "'it\\'s' \"q\\\"\"",
                vec![Tok::Str("it's".into()), Tok::Str("q\"".into()), Tok::End],
            ),
            (
                "'a\"b' \"a'b\"",
                vec![Tok::Str("a\"b".into()), Tok::Str("a'b".into()), Tok::End],
            ),
            (
                "12 -3 1.5 2e3 -0.25",
                vec![
                    Tok::Int(12),
                    Tok::Int(-3),
                    Tok::Float(1.5),
                    Tok::Float(2000.0),
                    Tok::Float(-0.25),
                    Tok::End,
                ],
            ),
            (
                "true false null now in",
                vec![
                    Tok::True,
                    Tok::False,
                    Tok::Null,
                    Tok::Now,
                    Tok::In,
                    Tok::End,
                ],
            ),
            (
                "[1,2]",
                vec![
                    Tok::LBracket,
                    Tok::Int(1),
                    Tok::Comma,
                    Tok::Int(2),
                    Tok::RBracket,
                    Tok::End,
                ],
            ),
            ("'héllo'", vec![Tok::Str("héllo".into()), Tok::End]),
        ];
        for (source, expected) in cases {
            assert_eq!(toks(source), expected, "{source}");
        }
    }

    #[test]
    fn columns_count_characters() {
        let tokens = lex("'é' == x").unwrap();
        let columns: Vec<usize> = tokens.iter().map(|t| t.column).collect();
        assert_eq!(columns, vec![1, 5, 8, 9]);
    }

    #[test]
    fn errors_table() {
        let cases: Vec<(&str, Vec<(usize, &str)>)> = vec![
            (
                "a = b",
                vec![(3, "unexpected character `=` (did you mean `==`?)")],
            ),
            ("'abc", vec![(1, "unterminated string")]),
            (
                "x == 'a\\qb'",
                vec![(8, "unknown escape (use \\\\, \\', \\\", \\n or \\t)")],
            ),
            (
                "x == 'a\u{0}b'",
                vec![(8, "a string may not contain NUL characters (U+0000)")],
            ),
            ("x == \u{0}", vec![(6, "unexpected character `\\0`")]),
            ("12ab", vec![(1, "invalid number `12ab`")]),
            (
                "99999999999999999999",
                vec![(1, "invalid number `99999999999999999999`")],
            ),
            (
                "a # b $",
                vec![
                    (3, "unexpected character `#`"),
                    (7, "unexpected character `$`"),
                ],
            ),
        ];
        for (source, expected) in cases {
            let errors = lex(source).unwrap_err();
            let got: Vec<(usize, &str)> = errors
                .iter()
                .map(|e| (e.column, e.message.as_str()))
                .collect();
            assert_eq!(got, expected, "{source}");
        }
    }

    #[test]
    fn source_size_is_limited() {
        let long = "a".repeat(MAX_SOURCE_BYTES + 1);
        assert_eq!(
            lex(&long).unwrap_err()[0].message,
            "expression longer than 16384 bytes"
        );
        assert!(lex(&"a".repeat(MAX_SOURCE_BYTES)).is_ok());
    }
}
