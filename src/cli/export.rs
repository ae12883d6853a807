//! `lucent export`: every document of every collection (or of one) as NDJSON (`ndjson`), read
//! from one snapshot of the database a page at a time, to a file or stdout. A backup: hidden
//! fields and password hashes included, so the file is created readable by its owner only, and
//! written beside its final name, which it takes only once complete.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::ProgressBar;

use super::{ndjson, progress};
use crate::app::Lucent;
use crate::records::{Records, dependency_order};

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error("{0}")]
    Records(#[from] crate::records::Error),
    #[error("cannot write the export: {0}")]
    Write(#[from] io::Error),
}

pub async fn run(config: &Path, collection: Option<String>, out: Option<PathBuf>) -> ExitCode {
    let Some(mut config) = super::load(config) else {
        return ExitCode::FAILURE;
    };
    // One snapshot is read for as long as the export takes.
    config.database.statement_timeout = None;
    let lucent = match Lucent::from_config(config).await {
        Ok(lucent) => lucent,
        Err(e) => {
            eprintln!("lucent: {e}");
            return ExitCode::FAILURE;
        }
    };
    let schema = lucent.records.schema();
    let order: Vec<usize> = match &collection {
        None => dependency_order(schema),
        Some(slug) => match schema.index_of(slug) {
            Some(index) => vec![index],
            None => {
                eprintln!("lucent: there is no collection \"{slug}\"");
                lucent.database().clone().close().await;
                return ExitCode::FAILURE;
            }
        },
    };
    let slugs: Vec<&str> = order
        .iter()
        .map(|&i| schema.collections[i].slug.as_str())
        .collect();
    let result = export(&lucent.records, &slugs, out.as_deref()).await;
    lucent.database().clone().close().await;
    match result {
        Ok(counts) => {
            let total: u64 = counts.iter().map(|(_, n)| n).sum();
            let each: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
            let to = out.map_or("stdout".into(), |p| p.display().to_string());
            eprintln!(
                "exported {} ({}) to {to}",
                super::count(total, "document"),
                each.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            if let Some(path) = &out {
                let _ = std::fs::remove_file(partial(path));
            }
            eprintln!("lucent: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the header, every document of `slugs` (in that order, each collection in id order)
/// and the end line; the documents written per collection.
async fn export<'a>(
    records: &Records,
    slugs: &[&'a str],
    out: Option<&Path>,
) -> Result<Vec<(&'a str, u64)>, ExportError> {
    let snapshot = records.snapshot().await?;
    // Counting is a scan of every table: only for a bar someone sees.
    let bar = match progress::visible() {
        true => {
            let mut total = 0;
            for slug in slugs {
                total += snapshot.count(slug).await?;
            }
            progress::bar(
                Some(total),
                "{spinner} exporting [{bar:30}] {pos}/{len} documents {msg}",
            )
        }
        false => ProgressBar::hidden(),
    };
    let mut output = Output::open(out)?;
    writeln!(output, "{}", ndjson::header(slugs))?;
    let mut counts = Vec::with_capacity(slugs.len());
    for slug in slugs {
        bar.set_message(slug.to_string());
        let collection = records
            .schema()
            .get(slug)
            .expect("a collection of the schema");
        let mut written = 0;
        let mut after: Option<String> = None;
        loop {
            let page = snapshot.page(slug, after.as_deref()).await?;
            let Some(last) = page.last() else { break };
            after = Some(crate::schema::doc_id(last).to_string());
            let size = page.len() as u64;
            for doc in page {
                writeln!(output, "{}", ndjson::document(collection, doc))?;
            }
            written += size;
            bar.inc(size);
        }
        counts.push((*slug, written));
    }
    let written = counts.iter().map(|(_, n)| n).sum();
    writeln!(output, "{}", ndjson::end(written))?;
    output.finish()?;
    bar.finish_and_clear();
    snapshot.close().await?;
    Ok(counts)
}

/// Where the lines go.
enum Output {
    /// Stdout, or an `--out` that is not a regular file (a pipe, a device, a symlink): written
    /// straight through, its mode left alone.
    Stream(BufWriter<Box<dyn Write>>),
    /// A regular file, or a new one: written under a temporary name beside it ([`partial`],
    /// owner-only), which takes its name once complete.
    File {
        writer: BufWriter<File>,
        path: PathBuf,
    },
}

impl Output {
    fn open(out: Option<&Path>) -> io::Result<Self> {
        let Some(path) = out else {
            return Ok(Output::Stream(BufWriter::new(Box::new(
                io::stdout().lock(),
            ))));
        };
        match std::fs::symlink_metadata(path) {
            Ok(metadata) if !metadata.is_file() => {
                let stream = OpenOptions::new().write(true).open(path)?;
                Ok(Output::Stream(BufWriter::new(Box::new(stream))))
            }
            Ok(_) | Err(_) => Ok(Output::File {
                writer: BufWriter::with_capacity(1 << 20, private_file(&partial(path))?),
                path: path.to_path_buf(),
            }),
        }
    }

    /// Flushes everything; a file is synced to disk, then takes its name.
    fn finish(self) -> io::Result<()> {
        match self {
            Output::Stream(mut writer) => writer.flush(),
            Output::File { writer, path } => {
                writer
                    .into_inner()
                    .map_err(|e| e.into_error())?
                    .sync_all()?;
                std::fs::rename(partial(&path), &path)
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stream(writer) => writer.write(buf),
            Output::File { writer, .. } => writer.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stream(writer) => writer.flush(),
            Output::File { writer, .. } => writer.flush(),
        }
    }
}

/// Where an export to `path` is written until it is complete: `path` and `.partial`.
fn partial(path: &Path) -> PathBuf {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    PathBuf::from(partial)
}

/// Creates a new file readable and writable by its owner only, in place of any file of that
/// name (never through a symlink).
fn private_file(path: &Path) -> io::Result<File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        Ok(()) | Err(_) => {}
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
