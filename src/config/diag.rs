//! Config diagnostics: one problem, located by file and key path (and, for predicates, a column).

use std::fmt;
use std::path::PathBuf;

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
        match &self.snippet {
            None => write!(
                f,
                "{}: {}: {}",
                self.file.display(),
                self.path,
                self.message
            ),
            Some((source, column)) => {
                write!(
                    f,
                    "{}: {}:1:{}: {}",
                    self.file.display(),
                    self.path,
                    column,
                    self.message
                )?;
                write!(
                    f,
                    "\n    {source}\n    {}^",
                    " ".repeat(column.saturating_sub(1))
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
