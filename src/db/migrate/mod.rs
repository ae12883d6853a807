//! Schema migrations. The database records the schema its tables have (`_lucent_schema`) and the
//! migration files applied to it (`_lucent_migrations`, with checksums); the config is diffed
//! against that record. Changes that cannot lose data are written to `migrations/` and applied by
//! `serve`; the others wait for a reviewed file (`lucent migrate new`, `lucent migrate apply`).
//! Files hold engine-neutral operations, so one folder builds the same schema on every engine.

mod apply;
mod convert;
mod diff;
mod ops;
mod snapshot;
mod store;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, Query};
use sea_orm::{ConnectionTrait, DbErr};

pub use apply::Outcome;
pub use diff::Change;
pub use ops::{MigrationFile, Operation};
pub use snapshot::{Kind, Snapshot};
pub use store::Record;

use crate::config::Config;
use crate::db::Database;

/// Why the schema could not be brought up to date; nothing was half-applied.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    /// A file in `migrations/` that does not read, or whose operations do not fit.
    #[error("unreadable migration files:\n{}", bullets(.0))]
    Files(Vec<String>),
    /// Applied migrations whose file changed since.
    #[error(
        "applied migrations were edited since (their checksum differs); restore them, and put new changes in a new migration:\n{}",
        bullets(.0)
    )]
    Edited(Vec<String>),
    /// Pending files with operations that can lose data, which only `migrate apply` runs.
    #[error(
        "pending migrations can lose data and are applied only by `lucent migrate apply --config {config}` once reviewed:\n{}",
        bullets(.files),
        config = .config.display()
    )]
    NeedsReview { files: Vec<String>, config: PathBuf },
    /// Config changes that can lose data or fail on existing rows.
    #[error("{}", refusal(.changes, .config))]
    Refused {
        changes: Vec<Change>,
        config: PathBuf,
    },
    #[error(
        "migration {migration} failed at `{step}`: {reason}\nthe migration was rolled back: the database is as it was before it"
    )]
    Step {
        migration: String,
        step: String,
        reason: String,
    },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

fn bullets(lines: &[String]) -> String {
    lines
        .iter()
        .map(|line| format!("  - {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn refusal(changes: &[Change], config: &Path) -> String {
    let mut text = String::from(
        "the configuration changes the database schema in ways that can lose data or fail on existing rows; they are not applied at start:\n",
    );
    for change in changes {
        if let Some(risk) = &change.risk {
            let _ = writeln!(text, "  - {}: {risk}", change.operation.summary());
        }
    }
    let _ = write!(
        text,
        "write a migration to review and edit with `lucent migrate new NAME --config {config}`, then run `lucent migrate apply --config {config}`",
        config = config.display()
    );
    text
}

/// Where the database stands against the migration files and the config.
#[derive(Debug)]
pub struct Status {
    pub applied: Vec<Record>,
    /// Applied migrations whose file changed since.
    pub edited: Vec<String>,
    /// Applied migrations whose file is gone (kept elsewhere, or deleted).
    pub missing: Vec<String>,
    /// Files not applied yet, in order, each with why it needs review if it does.
    pub pending: Vec<(MigrationFile, Vec<String>)>,
    /// What the config changes beyond the pending files.
    pub changes: Vec<Change>,
    /// The recorded schema.
    pub schema: Snapshot,
}

impl Status {
    pub fn is_up_to_date(&self) -> bool {
        self.pending.is_empty() && self.changes.is_empty()
    }
}

/// The folder of migration files of a config: `migrations/` next to the config file.
pub fn folder(config: &Config) -> PathBuf {
    config.root().join("migrations")
}

/// Reads the record, the files and the config and compares them; changes nothing but creating
/// Lucent's two tables when missing.
///
/// # Errors
/// Unreadable files or database.
pub async fn status(db: &Database, config: &Config) -> Result<Status, MigrateError> {
    let writer = db.writer();
    store::ensure_tables(writer).await?;
    let applied = store::applied(writer).await?;
    let schema = store::snapshot(writer).await?;
    let files = ops::read_folder(&folder(config)).map_err(MigrateError::Files)?;

    let mut edited = Vec::new();
    let mut pending = Vec::new();
    let mut projected = schema.clone();
    let mut errors = Vec::new();
    for file in files {
        match applied.iter().find(|r| r.name == file.name) {
            Some(record) if record.checksum != file.checksum => edited.push(file.name.clone()),
            Some(_) => {}
            None => {
                let mut risks = Vec::new();
                for operation in &file.operations {
                    if let Some(risk) = diff::operation_risk(&projected, operation) {
                        risks.push(format!("{}: {risk}", operation.summary()));
                    }
                    if let Err(e) = operation.apply_to(&mut projected) {
                        errors.push(format!("{}: {}: {e}", file.name, operation.summary()));
                    }
                }
                pending.push((file, risks));
            }
        }
    }
    if !errors.is_empty() {
        return Err(MigrateError::Files(errors));
    }
    let missing = applied
        .iter()
        .filter(|r| !folder(config).join(format!("{}.toml", r.name)).exists())
        .map(|r| r.name.clone())
        .collect();

    let target = Snapshot::from_schema(&config.schema);
    let defaults = |slug: &str, name: &str| {
        config
            .schema
            .get(slug)
            .and_then(|c| c.field(name))
            .and_then(|f| f.default.as_ref())
            .map(crate::schema::Value::to_json)
    };
    let mut changes = diff::diff(&projected, &target, &defaults);
    check_unique(writer, &schema, &mut changes).await?;
    check_lists(writer, &schema, &mut changes).await?;
    Ok(Status {
        applied,
        edited,
        missing,
        pending,
        changes,
        schema,
    })
}

/// A unique constraint over values that repeat cannot be created: such a change needs review.
async fn check_unique(
    db: &impl ConnectionTrait,
    schema: &Snapshot,
    changes: &mut [Change],
) -> Result<(), DbErr> {
    for change in changes.iter_mut().filter(|c| c.risk.is_none()) {
        let Operation::AlterField {
            collection, field, ..
        } = &change.operation
        else {
            continue;
        };
        let Some(old) = schema
            .collection(collection)
            .and_then(|c| c.field(&field.name))
        else {
            continue;
        };
        if !field.unique || (old.unique && old.case_insensitive == field.case_insensitive) {
            continue;
        }
        let column = if field.case_insensitive {
            Expr::expr(Func::lower(Expr::col(Alias::new(&field.name))))
        } else {
            Expr::col(Alias::new(&field.name))
        };
        let select = Query::select()
            .expr(column.clone())
            .from(Alias::new(collection))
            .and_where(Expr::col(Alias::new(&field.name)).is_not_null())
            .add_group_by([column.clone()])
            .and_having(Expr::expr(Func::count(Expr::col(Alias::new("id")))).gt(1))
            .limit(1)
            .to_owned();
        if db.query_one(&select).await?.is_some() {
            change.risk = Some(format!(
                "`{collection}.{}` becomes unique but some values appear more than once; make them unique first",
                field.name
            ));
        }
    }
    Ok(())
}

/// A list becoming one id loses nothing when no list holds more than one id (and, for a field
/// becoming required, none is empty or a `fill` is given): then the change is safe.
async fn check_lists(
    db: &impl ConnectionTrait,
    schema: &Snapshot,
    changes: &mut [Change],
) -> Result<(), DbErr> {
    for change in changes.iter_mut().filter(|c| c.risk.is_some()) {
        let Operation::AlterField {
            collection,
            field,
            fill,
        } = &change.operation
        else {
            continue;
        };
        let Some(old) = schema
            .collection(collection)
            .and_then(|c| c.field(&field.name))
        else {
            continue;
        };
        if !diff::becomes_single(old, field) {
            continue;
        }
        let table = Alias::new(crate::schema::join_table(collection, &field.name));
        let longer = Query::select()
            .column(Alias::new("source"))
            .from(table.clone())
            .add_group_by([Expr::col(Alias::new("source"))])
            .and_having(Expr::expr(Func::count(Expr::col(Alias::new("target")))).gt(1))
            .limit(1)
            .to_owned();
        if db.query_one(&longer).await?.is_some() {
            continue;
        }
        if field.required && fill.is_none() {
            let listed = Query::select()
                .expr(Expr::val(1))
                .from(table)
                .and_where(
                    Expr::col(Alias::new("source"))
                        .equals((Alias::new(collection), Alias::new("id"))),
                )
                .to_owned();
            let empty = Query::select()
                .expr(Expr::val(1))
                .from(Alias::new(collection))
                .and_where(Expr::exists(listed).not())
                .limit(1)
                .to_owned();
            if db.query_one(&empty).await?.is_some() {
                change.risk = Some(format!(
                    "field `{collection}.{}` becomes one required id but some lists are empty; give it a default",
                    field.name
                ));
                continue;
            }
        }
        change.risk = None;
    }
    Ok(())
}

/// What `serve` does at start: applies pending files that cannot lose data, then writes and
/// applies a migration for the config's changes when none can lose data. Returns the names of
/// the migrations applied.
///
/// # Errors
/// Edited applied files, pending files that need review, config changes that need review
/// ([`MigrateError::Refused`], naming each), or a failing migration (rolled back).
pub async fn bring_up_to_date(db: &Database, config: &Config) -> Result<Vec<String>, MigrateError> {
    let status = status(db, config).await?;
    if !status.edited.is_empty() {
        return Err(MigrateError::Edited(status.edited));
    }
    let needs_review: Vec<String> = status
        .pending
        .iter()
        .filter(|(_, risks)| !risks.is_empty())
        .map(|(file, risks)| format!("{}: {}", file.name, risks.join("; ")))
        .collect();
    if !needs_review.is_empty() {
        return Err(MigrateError::NeedsReview {
            files: needs_review,
            config: config.file.clone(),
        });
    }
    if status.changes.iter().any(|c| c.risk.is_some()) {
        return Err(MigrateError::Refused {
            changes: status.changes,
            config: config.file.clone(),
        });
    }
    let mut applied = Vec::new();
    for (file, _) in &status.pending {
        run_file(db, file).await?;
        applied.push(file.name.clone());
    }
    if status.changes.is_empty() {
        return Ok(applied);
    }
    let name = if status.schema.collections.is_empty() && status.applied.is_empty() {
        "initial".to_string()
    } else {
        generated_name(&status.changes)
    };
    let header =
        ["Written by `lucent serve`: changes that keep every row, applied at start.".to_string()];
    let path = write_file(config, &status, &name, &header)?;
    let file = MigrationFile::read(&path).map_err(|e| MigrateError::Files(vec![e]))?;
    if let Err(e) = run_file(db, &file).await {
        // A file for changes that did not apply would be replayed elsewhere as if they had.
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    applied.push(file.name);
    Ok(applied)
}

/// Writes the config's changes (beyond the pending files) as a migration to review; `None` when
/// there are none.
///
/// # Errors
/// An invalid name, unreadable files or database, or a file that cannot be written.
pub async fn new_migration(
    db: &Database,
    config: &Config,
    name: &str,
) -> Result<Option<(PathBuf, Vec<Change>)>, MigrateError> {
    let valid = !name.is_empty()
        && name.len() <= 60
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(MigrateError::Files(vec![format!(
            "invalid migration name `{name}` (use a-z, 0-9 and _)"
        )]));
    }
    let status = status(db, config).await?;
    if status.changes.is_empty() {
        return Ok(None);
    }
    let header = [
        format!("Written by `lucent migrate new {name}`. Review every operation and edit freely,"),
        "then run `lucent migrate apply`. Once applied, leave it unchanged: its checksum is recorded.".into(),
    ];
    let path = write_file(config, &status, name, &header)?;
    Ok(Some((path, status.changes)))
}

/// Applies every pending file in order, each in its own transaction with its record; stops at
/// the first failure. Returns the names applied.
///
/// # Errors
/// Edited applied files, unreadable files or database, or the failing migration (rolled back).
pub async fn apply_pending(db: &Database, config: &Config) -> Result<Vec<String>, MigrateError> {
    let status = status(db, config).await?;
    if !status.edited.is_empty() {
        return Err(MigrateError::Edited(status.edited));
    }
    let mut applied = Vec::new();
    for (file, _) in &status.pending {
        if run_file(db, file).await? == Outcome::Applied {
            applied.push(file.name.clone());
        }
    }
    Ok(applied)
}

async fn run_file(db: &Database, file: &MigrationFile) -> Result<Outcome, MigrateError> {
    tracing::info!(migration = %file.name, "applying migration");
    apply::apply(db, &file.name, &file.checksum, &file.operations)
        .await
        .map_err(|e| MigrateError::Step {
            migration: file.name.clone(),
            step: e.step,
            reason: e.reason,
        })
}

fn generated_name(changes: &[Change]) -> String {
    let mut name = changes[0].operation.slug();
    name.truncate(48);
    if changes.len() > 1 {
        name.push_str("_and_more");
    }
    name
}

/// Writes `NNNN_name.toml`, numbered after every file and record.
fn write_file(
    config: &Config,
    status: &Status,
    name: &str,
    header: &[String],
) -> Result<PathBuf, MigrateError> {
    let number = |name: &str| -> u32 {
        name.split('_')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let last = status
        .applied
        .iter()
        .map(|r| number(&r.name))
        .chain(status.pending.iter().map(|(f, _)| number(&f.name)))
        .max()
        .unwrap_or(0);
    let dir = folder(config);
    let path = dir.join(format!("{:04}_{name}.toml", last + 1));
    let mut lines = header.to_vec();
    lines.push("Operations run in order in one transaction; each is rendered for the database engine when applied.".into());
    let entries: Vec<_> = status.changes.iter().map(Change::entry).collect();
    let text = ops::render(&lines, &entries).map_err(|reason| MigrateError::Write {
        path: path.clone(),
        reason,
    })?;
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, text))
        .map_err(|e| MigrateError::Write {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    Ok(path)
}
