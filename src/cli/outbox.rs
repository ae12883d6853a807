//! `lucent outbox status` and `lucent outbox retry <id> | --failed`: what waits in the outbox
//! (webhook deliveries and mails), and requeuing what failed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::db::{Database, system};
use crate::outbox::table::{self, Requeue};

/// Failed rows listed by `status` at most.
const LISTED: u64 = 50;

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Pending and failed deliveries per target, the oldest's age, and the failed ones.
    Status {
        #[arg(long, default_value = "lucent.toml")]
        config: PathBuf,
    },
    /// Requeue one delivery by id, or every failed one: due now, with a fresh retry schedule.
    Retry {
        /// The delivery's id (as `status` lists it).
        #[arg(required_unless_present = "failed")]
        id: Option<String>,
        /// Every failed delivery.
        #[arg(long, conflicts_with = "id")]
        failed: bool,
        #[arg(long, default_value = "lucent.toml")]
        config: PathBuf,
    },
}

/// Runs an `outbox` subcommand.
pub async fn run(command: OutboxCommand) -> ExitCode {
    let path = match &command {
        OutboxCommand::Status { config } | OutboxCommand::Retry { config, .. } => config.clone(),
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
    let result = match system::bring_up_to_date(&db).await {
        Err(e) => Err(e),
        Ok(_) => match command {
            OutboxCommand::Status { .. } => status(&db).await,
            OutboxCommand::Retry { id, failed, .. } => {
                let which = match (&id, failed) {
                    (Some(id), _) => Requeue::One(id),
                    (None, _) => Requeue::Failed,
                };
                retry(&db, which).await
            }
        },
    };
    db.close().await;
    result.unwrap_or_else(|e| {
        eprintln!("lucent: database: {e}");
        ExitCode::FAILURE
    })
}

async fn status(db: &Database) -> Result<ExitCode, sea_orm::DbErr> {
    let targets = table::status(db).await?;
    if targets.is_empty() {
        println!("the outbox is empty: every delivery has been sent");
        return Ok(ExitCode::SUCCESS);
    }
    let now = chrono::Utc::now();
    let width = targets.iter().map(|t| t.target.len()).max().unwrap_or(0);
    println!(
        "{:<7}  {:<width$}  {:>7}  {:>6}  oldest",
        "kind", "target", "pending", "failed"
    );
    for target in &targets {
        let age = target.oldest.map_or_else(String::new, |oldest| {
            let seconds = (now - oldest).num_seconds().max(0);
            let age = std::time::Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
            humantime::format_duration(age).to_string()
        });
        println!(
            "{:<7}  {:<width$}  {:>7}  {:>6}  {age}",
            target.kind, target.target, target.pending, target.failed
        );
    }
    let failed = table::failed(db, LISTED).await?;
    if !failed.is_empty() {
        println!("\nfailed (lucent outbox retry <id> | --failed requeues):");
        for row in failed {
            println!(
                "  {}  {} {} {}  {} attempt(s), written {}: {}",
                row.id,
                row.kind,
                row.target,
                row.event,
                row.attempts,
                row.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                row.last_error.as_deref().unwrap_or("no error recorded"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn retry(db: &Database, which: Requeue<'_>) -> Result<ExitCode, sea_orm::DbErr> {
    let requeued = table::requeue(db, which).await?;
    match which {
        Requeue::One(id) if requeued == 0 => {
            eprintln!("lucent: no delivery in the outbox has id {id}");
            return Ok(ExitCode::FAILURE);
        }
        _ => println!(
            "requeued {requeued} deliver{}",
            if requeued == 1 { "y" } else { "ies" }
        ),
    }
    Ok(ExitCode::SUCCESS)
}
