//! Errors of the rule language: compile errors located by column, and the run-time fault that
//! makes a predicate deny.

use std::fmt;

/// A problem found while compiling an expression, at a 1-based character column of its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub column: usize,
    pub message: String,
}

impl RuleError {
    pub(crate) fn new(column: usize, message: impl Into<String>) -> Self {
        Self {
            column,
            message: message.into(),
        }
    }

    /// The source line the error points into, with a caret under the column, for diagnostics
    /// such as `lucent check`.
    pub fn caret(&self, source: &str) -> String {
        let before: String = source.chars().take(self.column.saturating_sub(1)).collect();
        // Columns count characters from the start of the source, so a multi-line predicate shows
        // only the line the column falls on.
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = source[line_start..].lines().next().unwrap_or("");
        let offset = before[line_start..].chars().count();
        format!("{line}\n{}^", " ".repeat(offset))
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.column, self.message)
    }
}

impl std::error::Error for RuleError {}

/// Why an evaluation could not finish (a body value of the wrong type, a `~` pattern over the
/// limit, ...). It never reaches a client: the predicate denies. The text helps tests and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault(pub &'static str);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_points_at_the_column() {
        let err = RuleError::new(5, "x");
        assert_eq!(err.caret("doc.titel == 1"), "doc.titel == 1\n    ^");
        assert_eq!(err.caret("a\n  bc"), "  bc\n  ^");
    }
}
