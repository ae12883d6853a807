//! The `lucent` command line: `serve`, `check`, `migrate`, `user`, `outbox`, `openapi`, `schema`,
//! `types`, `init`, `export`, `import`. Each command returns an exit code; `main` only parses
//! arguments and exits.

mod export;
mod import;
mod init;
mod migrate;
mod ndjson;
mod outbox;
mod progress;
mod schema;
mod types;
mod user;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::Lucent;
use crate::config::{self, Config};
use crate::schema::FieldKind;

#[derive(Debug, Parser)]
#[command(
    name = "lucent",
    version,
    about = "A config-driven headless CMS backend"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the config, bring the database up to date, serve HTTP.
    Serve {
        #[arg(long, default_value = "lucent.toml")]
        config: PathBuf,
        /// Overrides `server.host`.
        #[arg(long)]
        host: Option<String>,
        /// Overrides `server.port`; 0 picks a free port.
        #[arg(long)]
        port: Option<u16>,
    },
    /// Validate the config and every predicate; print a summary or every error.
    Check {
        #[arg(long, default_value = "lucent.toml")]
        config: PathBuf,
    },
    /// Show, write and apply schema migrations.
    Migrate {
        #[command(subcommand)]
        command: migrate::MigrateCommand,
    },
    /// Manage accounts without HTTP.
    User {
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// Show and requeue the outbox: webhook deliveries and mails waiting to be sent.
    Outbox {
        #[command(subcommand)]
        command: outbox::OutboxCommand,
    },
    /// Print the OpenAPI document.
    Openapi {
        #[arg(long, default_value = "lucent.toml")]
        config: PathBuf,
    },
    /// Print the JSON Schema of `lucent.toml` (or of a collection file), for editors.
    Schema {
        /// The schema of a collection file (`schemas/<slug>.toml`) instead.
        #[arg(long)]
        collection_file: bool,
    },
    /// Write a new project (`lucent.toml`, `schemas/`, `.gitignore`) that serves as is.
    Init {
        /// The project folder, created when missing.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Write types for every collection (document, create and update bodies, list page).
    Types {
        #[arg(long, value_enum)]
        lang: types::Lang,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value = "lucent.toml")]
        config: PathBuf,
    },
    /// Write every document (hidden fields and password hashes included) as NDJSON: a backup.
    Export {
        /// Only this collection.
        #[arg(long)]
        collection: Option<String>,
        /// Write to this file (created readable by its owner only) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value = "lucent.toml")]
        config: PathBuf,
    },
    /// Read an export (NDJSON) into the database, in batches; report every rejected line.
    Import {
        /// The export file; `-` reads stdin.
        file: PathBuf,
        /// Check and write everything, then roll it all back.
        #[arg(long)]
        dry_run: bool,
        /// Lines per transaction.
        #[arg(long, default_value_t = import::BATCH, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        batch_size: u64,
        #[arg(long, default_value = "lucent.toml")]
        config: PathBuf,
    },
}

/// Runs a parsed command.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve { config, host, port } => serve(config, host, port).await,
        Command::Check { config } => {
            let code = check(config.clone());
            migrate::report_pending(&config, code).await
        }
        Command::Migrate { command } => migrate::run(command).await,
        Command::User { command } => user::run(command).await,
        Command::Outbox { command } => outbox::run(command).await,
        Command::Openapi { config } => match load(&config) {
            Some(config) => {
                // A closed pipe (`lucent openapi | head`) is not an error worth a panic.
                let _ = writeln!(
                    std::io::stdout().lock(),
                    "{:#}",
                    crate::http::openapi_document(&config)
                );
                ExitCode::SUCCESS
            }
            None => ExitCode::FAILURE,
        },
        Command::Schema { collection_file } => schema::run(collection_file),
        Command::Init { dir } => init::run(&dir),
        Command::Types { lang, out, config } => match load(&config) {
            Some(config) => types::run(&config, lang, out),
            None => ExitCode::FAILURE,
        },
        Command::Export {
            collection,
            out,
            config,
        } => export::run(&config, collection, out).await,
        Command::Import {
            file,
            dry_run,
            batch_size,
            config,
        } => import::run(&config, &file, dry_run, batch_size).await,
    }
}

/// `1 document`, `2 documents`.
fn count(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// Loads the config, printing every error.
pub(crate) fn load(path: &Path) -> Option<Config> {
    report(config::load(path))
}

/// The value, or every diagnostic printed.
fn report<T>(loaded: Result<T, config::Diagnostics>) -> Option<T> {
    match loaded {
        Ok(config) => Some(config),
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            eprintln!("{} error(s) in the configuration", diagnostics.0.len());
            None
        }
    }
}

fn check(path: PathBuf) -> ExitCode {
    let Some((config, policies)) = report(crate::app::load_checked(&path)) else {
        return ExitCode::FAILURE;
    };
    for warning in &policies.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "{}: ok, {} collection(s)",
        path.display(),
        config.schema.collections.len()
    );
    for collection in &config.schema.collections {
        let fields: Vec<String> = collection
            .fields
            .iter()
            .filter(|f| !f.hidden)
            .map(|f| match &f.kind {
                FieldKind::Relation { to, many: None, .. } => format!("{} → {to}", f.name),
                FieldKind::Relation {
                    to, many: Some(_), ..
                } => format!("{} → [{to}]", f.name),
                kind => format!(
                    "{}: {}{}",
                    f.name,
                    kind.name(),
                    if f.required { "!" } else { "" }
                ),
            })
            .collect();
        let auth = if collection.auth.is_some() {
            " (auth)"
        } else {
            ""
        };
        println!("  {}{auth}: {}", collection.slug, fields.join(", "));
    }
    for webhook in &config.webhooks {
        let events: Vec<String> = webhook
            .events
            .iter()
            .map(|e| format!("{}.{}", e.collection, e.action.map_or("*", |a| a.as_str())))
            .collect();
        let filter = webhook
            .filter
            .as_ref()
            .map_or_else(String::new, |f| format!(" if {}", f.source));
        // A password in the URL is a secret.
        let url = match url::Url::parse(&webhook.url) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            _ => webhook.url.clone(),
        };
        println!("  webhook {url}: {}{filter}", events.join(", "));
    }
    ExitCode::SUCCESS
}

async fn serve(path: PathBuf, host: Option<String>, port: Option<u16>) -> ExitCode {
    let Some((config, policies)) = report(crate::app::load_checked(&path)) else {
        return ExitCode::FAILURE;
    };
    let host = host.unwrap_or_else(|| config.server.host.clone());
    let port = port.unwrap_or(config.server.port);
    let lucent = match Lucent::start(config, policies).await {
        Ok(lucent) => lucent,
        Err(e) => {
            eprintln!("lucent: {e}");
            return ExitCode::FAILURE;
        }
    };
    match crate::http::serve(lucent, &host, port).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lucent: cannot serve on {host}:{port}: {e}");
            ExitCode::FAILURE
        }
    }
}
