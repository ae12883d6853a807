//! Config diagnostics: one problem, located by file and key path (and, for predicates, a column).

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

/// A table key as one segment of a dotted key path: quoted when it is empty or would read as
/// more than one segment (`""`, `"a.b"`), so every path names exactly one place.
pub fn key(name: &str) -> Cow<'_, str> {
    if name.is_empty() || name.contains(['.', '"', '[', ']']) || name.chars().any(char::is_control)
    {
        Cow::Owned(format!("{name:?}"))
    } else {
        Cow::Borrowed(name)
    }
}

/// One problem found while loading the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// Dotted key path inside the file, e.g. `collections.posts.fields.title.max_length`.
    pub path: String,
    pub message: String,
    /// For problems inside a predicate: the predicate source and the 1-based column of the problem.
    pub snippet: Option<(String, usize)>,
}

impl Diagnostic {
    pub fn new(
        file: impl Into<PathBuf>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            path: path.into(),
            message: message.into(),
            snippet: None,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file.display())?;
        if !self.path.is_empty() {
            write!(f, "{}", self.path)?;
        }
        match &self.snippet {
            None if self.path.is_empty() => write!(f, "{}", self.message),
            None => write!(f, ": {}", self.message),
            Some((source, column)) => {
                // The column counts characters from the start of the predicate; a predicate
                // written over several lines shows the line the column falls on.
                let before: String = source.chars().take(column.saturating_sub(1)).collect();
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                let line_number = before.matches('\n').count() + 1;
                let offset = before[line_start..].chars().count();
                let line = source[line_start..].lines().next().unwrap_or("");
                write!(
                    f,
                    ":{line_number}:{}: {}\n    {line}\n    {}^",
                    offset + 1,
                    self.message,
                    " ".repeat(offset)
                )
            }
        }
    }
}

/// Every problem found in a configuration; loading fails only after all were collected.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was reported, else every diagnostic.
    pub fn finish<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
