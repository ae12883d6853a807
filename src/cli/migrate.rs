//! `lucent migrate status | new NAME | apply`, and the pending-changes report of `lucent check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::{self, Config};
use crate::db::Database;
use crate::db::migrate::{self, Change, MigrateError, Status};

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Show applied and pending migrations and the config changes not in any migration yet.
    Status {
        #[arg(long, default_value = "lucent.toml")]
        config: PathBuf,
    },
    /// Write the config's changes to `migrations/NNNN_NAME.toml` to review and edit.
    New {
        name: String,
        #[arg(long, default_value = "lucent.toml")]
        config: PathBuf,
    },
    /// Apply pending migration files in order, each in its own transaction.
    Apply {
        #[arg(long, default_value = "lucent.toml")]
        config: PathBuf,
    },
}

/// Runs a `migrate` subcommand.
pub async fn run(command: MigrateCommand) -> ExitCode {
    let path = match &command {
        MigrateCommand::Status { config }
        | MigrateCommand::New { config, .. }
        | MigrateCommand::Apply { config } => config.clone(),
    };
    let Some(config) = super::load(&path) else {
        return ExitCode::FAILURE;
    };
    let db = match Database::connect(&config.database).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("lucent: database: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        MigrateCommand::Status { .. } => status(&db, &config).await,
        MigrateCommand::New { name, .. } => new(&db, &config, &name).await,
        MigrateCommand::Apply { .. } => apply(&db, &config).await,
    };
    db.close().await;
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lucent: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn status(db: &Database, config: &Config) -> Result<ExitCode, MigrateError> {
    let status = migrate::status(db, config).await?;
    println!("applied: {}", status.applied.len());
    for record in &status.applied {
        let mark = if status.edited.contains(&record.name) {
            "  EDITED since applied (checksum differs)"
        } else if status.missing.contains(&record.name) {
            "  (file not in migrations/)"
        } else {
            ""
        };
        println!(
            "  {}  {}{mark}",
            record.name,
            record.applied_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    println!("pending: {}", status.pending.len());
    for (file, risks) in &status.pending {
        println!("  {}", file.name);
        for operation in &file.operations {
            println!("    {}", operation.summary());
        }
        for risk in risks {
            println!("    review: {risk}");
        }
    }
    print_changes(&status);
    Ok(if status.edited.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_changes(status: &Status) {
    if status.changes.is_empty() {
        println!("config changes not in a migration: none");
        return;
    }
    println!(
        "config changes not in a migration: {}",
        status.changes.len()
    );
    for change in &status.changes {
        print_change(change);
    }
}

fn print_change(change: &Change) {
    match &change.risk {
        None => println!("  {}  (applied by `serve`)", change.operation.summary()),
        Some(risk) => println!(
            "  {}  (needs `lucent migrate new`: {risk})",
            change.operation.summary()
        ),
    }
}

async fn new(db: &Database, config: &Config, name: &str) -> Result<ExitCode, MigrateError> {
    match migrate::new_migration(db, config, name).await? {
        None => {
            println!("nothing to write: the schema (with pending migrations) matches the config")
        }
        Some((path, changes)) => {
            println!("wrote {}", path.display());
            for change in &changes {
                print_change(change);
            }
            println!("review and edit it, then run `lucent migrate apply`");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn apply(db: &Database, config: &Config) -> Result<ExitCode, MigrateError> {
    let applied = migrate::apply_pending(db, config).await?;
    if applied.is_empty() {
        println!("nothing to apply");
    }
    for name in &applied {
        println!("applied {name}");
    }
    let status = migrate::status(db, config).await?;
    if !status.changes.is_empty() {
        print_changes(&status);
    }
    Ok(ExitCode::SUCCESS)
}

/// After `lucent check` validated the config: what the database lacks. A database that cannot
/// be reached is noted, not an error (check works without one).
pub async fn report_pending(path: &Path, code: ExitCode) -> ExitCode {
    let Ok(config) = config::load(path) else {
        return code;
    };
    if let Some(file) = sqlite_file(&config.database.url)
        && !Path::new(file).exists()
    {
        println!("database: not created yet; `serve` creates it");
        return code;
    }
    let db = match Database::connect(&config.database).await {
        Ok(db) => db,
        Err(e) => {
            println!("database: not reachable ({e}); schema changes not checked");
            return code;
        }
    };
    let result = migrate::status(&db, &config).await;
    db.close().await;
    match result {
        Ok(status) => {
            if status.is_up_to_date() {
                println!("database: up to date");
            }
            if !status.pending.is_empty() {
                println!(
                    "pending migrations: {}",
                    status
                        .pending
                        .iter()
                        .map(|(f, _)| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            for name in &status.edited {
                println!("edited after it was applied: {name}");
            }
            if !status.changes.is_empty() {
                print_changes(&status);
            }
            code
        }
        Err(e) => {
            println!("database: {e}");
            code
        }
    }
}

fn sqlite_file(url: &str) -> Option<&str> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(path.split('?').next().unwrap_or_default())
}
