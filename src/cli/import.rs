//! `lucent import`: an export file (or stdin) read line by line and written in batches, one
//! transaction each. The stages: `ndjson::Lines` (the line reader), `ndjson::parse` (a line),
//! `Records::check_import` (the validator), `Importer` (the writer). Every rejected line is
//! reported with its number and why; the others are imported; the exit status says whether any
//! was rejected.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use indicatif::ProgressBar;

use super::ndjson::{self, Line, Lines};
use super::progress;
use crate::app::Lucent;
use crate::records::{Entry, Importer, Records, Rejection};

/// Lines per transaction, unless `--batch-size` says otherwise.
pub const BATCH: u64 = 500;

/// What one import did.
#[derive(Debug, Default)]
struct Tally {
    /// Lines read besides the header and the end line: documents, or lines that should have
    /// been (what the end line counts).
    documents: u64,
    rejected: u64,
    /// Rejections not printed yet: a batch's are printed together, in line order.
    unreported: Vec<Rejection>,
    /// Whether the header, and the end line (with its count), were read.
    header: bool,
    end: Option<u64>,
}

impl Tally {
    fn reject(&mut self, rejection: Rejection) {
        self.rejected += 1;
        self.unreported.push(rejection);
    }

    /// Whether the file was whole, as far as its end line tells; says why not on stderr.
    fn whole(&self) -> bool {
        match self.end {
            Some(documents) if documents != self.documents => {
                eprintln!(
                    "lucent: the file's end line counts {}, but {} {} read",
                    super::count(documents, "document"),
                    super::count(self.documents, "document line"),
                    if self.documents == 1 { "was" } else { "were" },
                );
                false
            }
            None if self.header => {
                eprintln!(
                    "lucent: the file has no end line: it was cut short (or is not a whole export)"
                );
                false
            }
            Some(_) | None => true,
        }
    }

    /// Prints the rejections gathered since the last report on stderr, in line order.
    fn report(&mut self, bar: &ProgressBar) {
        self.unreported.sort_by_key(|r| r.line);
        bar.suspend(|| {
            let mut stderr = io::stderr().lock();
            for rejection in self.unreported.drain(..) {
                let _ = writeln!(stderr, "{rejection}");
            }
        });
    }
}

/// The input (`-`: stdin) and its length when known.
fn open(file: &Path) -> io::Result<(Box<dyn Read>, Option<u64>)> {
    if file == Path::new("-") {
        return Ok((Box::new(io::stdin().lock()), None));
    }
    let opened = File::open(file)?;
    let length = opened.metadata().ok().map(|m| m.len());
    Ok((Box::new(opened), length))
}

pub async fn run(config: &Path, file: &Path, dry_run: bool, batch: u64) -> ExitCode {
    let Some(mut config) = super::load(config) else {
        return ExitCode::FAILURE;
    };
    // A dry run holds one transaction for the whole file.
    config.database.statement_timeout = None;
    // A document the API took fits in a body; its line adds the system fields, lists and
    // escapes. Anything much longer is not an export's.
    let max_line = config.server.body_limit.saturating_mul(4) + (1 << 20);
    let (input, length) = match open(file) {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!("lucent: cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let lucent = match Lucent::from_config(config).await {
        Ok(lucent) => lucent,
        Err(e) => {
            eprintln!("lucent: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bar = progress::bar(
        length,
        match length {
            Some(_) => "{spinner} importing [{bar:30}] {bytes}/{total_bytes} {msg}",
            None => "{spinner} importing {bytes} {msg}",
        },
    );
    let reader = BufReader::with_capacity(1 << 20, bar.wrap_read(input));
    let mut tally = Tally::default();
    let result = import(
        &lucent.records,
        Lines::new(reader, max_line),
        dry_run,
        usize::try_from(batch.max(1)).unwrap_or(usize::MAX),
        &bar,
        &mut tally,
    )
    .await;
    bar.finish_and_clear();
    lucent.database().clone().close().await;
    let written = match result {
        Ok(written) => written,
        Err(e) => {
            eprintln!("lucent: {e}");
            return ExitCode::FAILURE;
        }
    };
    let complete = tally.whole();
    println!("{}", summary(&written, &tally, dry_run));
    if tally.rejected > 0 || !complete {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `imported 4 documents (users 1, posts 3); 2 lines rejected`, or what a dry run would have.
fn summary(written: &[(String, u64)], tally: &Tally, dry_run: bool) -> String {
    let total: u64 = written.iter().map(|(_, n)| n).sum();
    let each: Vec<String> = written
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(slug, n)| format!("{slug} {n}"))
        .collect();
    let each = match each.is_empty() {
        true => String::new(),
        false => format!(" ({})", each.join(", ")),
    };
    let rejected = match tally.rejected {
        0 => String::new(),
        n => format!("; {} rejected", super::count(n, "line")),
    };
    let total = super::count(total, "document");
    match dry_run {
        true => format!("dry run: {total} would be imported{each}{rejected}; nothing was written"),
        false => format!("imported {total}{each}{rejected}"),
    }
}

/// Why an import stopped before the end of its input.
#[derive(Debug, thiserror::Error)]
enum ImportError {
    #[error("{0}")]
    Records(#[from] crate::records::Error),
    #[error("cannot read the input: {0}")]
    Read(#[from] io::Error),
    #[error(
        "line {0}: the file is format {1}, from a later Lucent; this one reads format {format}",
        format = ndjson::FORMAT
    )]
    Format(u64, u64),
    /// A batch failed as a whole (the database went away, ...): the batches before it are
    /// written, what waited for later lines is not.
    #[error(
        "the batch from line {line} on could not be written: {error}\nthe batches before it are \
         written, without the relations that waited for later lines: empty the database and \
         import the file again"
    )]
    Stopped {
        line: u64,
        error: crate::records::Error,
    },
}

/// Reads every line, writing the documents a batch at a time; the documents written per
/// collection.
async fn import<R: BufRead>(
    records: &Records,
    mut lines: Lines<R>,
    dry_run: bool,
    batch: usize,
    bar: &ProgressBar,
    tally: &mut Tally,
) -> Result<Vec<(String, u64)>, ImportError> {
    let mut importer = records.importer(dry_run).await?;
    let mut entries: Vec<Entry> = Vec::with_capacity(batch);
    let mut first = true;
    while let Some((number, line)) = lines.next_line()? {
        let line = match line {
            Ok(line) => line,
            Err(ndjson::TooLong) => {
                tally.documents += 1;
                tally.reject(Rejection::line(number, "the line is too long"));
                continue;
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let is_first = std::mem::take(&mut first);
        if tally.end.is_some() {
            tally.reject(Rejection::line(number, "a line after the end line"));
            continue;
        }
        let parsed = ndjson::parse(&line);
        if !matches!(parsed, Ok(Line::Header { .. } | Line::End { .. })) {
            tally.documents += 1;
        }
        match parsed {
            Err(reason) => tally.reject(Rejection::line(number, reason)),
            Ok(Line::Header { format }) if is_first => {
                if format > ndjson::FORMAT {
                    return Err(ImportError::Format(number, format));
                }
                tally.header = true;
            }
            Ok(Line::Header { .. }) => {
                tally.reject(Rejection::line(number, "a header line may only come first"))
            }
            Ok(Line::End { documents }) => tally.end = Some(documents),
            Ok(Line::Document { collection, doc }) => {
                match records.check_import(number, &collection, &doc) {
                    Ok(entry) => entries.push(entry),
                    Err(rejection) => tally.reject(rejection),
                }
            }
        }
        if entries.len() >= batch {
            write(&mut importer, &mut entries, bar, tally).await?;
        } else if tally.unreported.len() >= batch {
            tally.report(bar);
        }
    }
    write(&mut importer, &mut entries, bar, tally).await?;
    let written: Vec<(String, u64)> = importer
        .written()
        .into_iter()
        .map(|(slug, n)| (slug.to_string(), n))
        .collect();
    for rejection in importer.finish().await? {
        tally.reject(rejection);
    }
    tally.report(bar);
    Ok(written)
}

/// Writes the entries read so far as one batch, then reports the lines rejected since the last
/// batch.
async fn write(
    importer: &mut Importer<'_>,
    entries: &mut Vec<Entry>,
    bar: &ProgressBar,
    tally: &mut Tally,
) -> Result<(), ImportError> {
    if let Some(first) = entries.first() {
        let line = first.line;
        let rejected = importer
            .write(std::mem::take(entries))
            .await
            .map_err(|error| ImportError::Stopped { line, error })?;
        for rejection in rejected {
            tally.reject(rejection);
        }
    }
    tally.report(bar);
    let written: u64 = importer.written().iter().map(|(_, n)| n).sum();
    bar.set_message(format!("{written} documents, {} rejected", tally.rejected));
    Ok(())
}
