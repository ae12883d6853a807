//! The composition root: a loaded configuration, a connected database with its tables, and the
//! operations over them. `serve`, the other commands and the tests all build one of these.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use sea_orm::DbBackend;

use crate::access::Policies;
use crate::accounts::{Accounts, MailSender};
use crate::auth::password::Passwords;
use crate::auth::secret::Secret;
use crate::config::{self, Config, Diagnostics, Env};
use crate::db::{self, Database};
use crate::events::{Events, Webhooks};
use crate::outbox::{Outbox, Schedule, Worker};
use crate::records::Records;

/// Why Lucent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] Diagnostics),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("{0}")]
    Migration(#[from] db::migrate::MigrateError),
    #[error("{0}")]
    Setup(String),
}

/// A running Lucent instance, usable as a library.
#[derive(Debug, Clone)]
pub struct Lucent {
    pub config: Arc<Config>,
    pub records: Records,
    pub accounts: Accounts,
    /// The hashing pool `records` and `accounts` share, kept here for its queue's metrics.
    passwords: Passwords,
    pub outbox: Outbox,
    /// What the outbox worker sends mails with.
    mails: Arc<MailSender>,
}

impl Lucent {
    /// Loads the config at `path`, connects to its database and creates what is missing.
    ///
    /// # Errors
    /// Every config problem, or a database that cannot be reached or set up.
    pub async fn from_config_file(path: &Path) -> Result<Self, StartError> {
        let (config, policies) = load_checked(path)?;
        Self::start(config, policies).await
    }

    /// As [`Lucent::from_config_file`], from an already loaded config.
    ///
    /// # Errors
    /// A predicate that does not compile, or a database that cannot be reached or set up.
    pub async fn from_config(config: Config) -> Result<Self, StartError> {
        let policies = Policies::compile(&config.schema)?;
        Webhooks::compile(&config.webhooks, &config.schema, &config.file)?;
        Self::start(config, policies).await
    }

    /// Starts from a config and its compiled rules (see [`load_checked`]), logging the rules'
    /// warnings.
    ///
    /// # Errors
    /// A webhook filter that does not compile (checked by [`load_checked`] already), a mail
    /// transport that cannot be built, or a database that cannot be reached or set up.
    pub async fn start(config: Config, policies: Policies) -> Result<Self, StartError> {
        for warning in &policies.warnings {
            tracing::warn!("{warning}");
        }
        let jwt_secret = jwt_secret(&config)?;
        let webhooks = Webhooks::compile(&config.webhooks, &config.schema, &config.file)?;
        let database = Database::connect(&config.database).await?;
        db::migrate::bring_up_to_date(&database, &config).await?;
        db::system::bring_up_to_date(&database).await?;
        database.optimize().await?;
        let schema = Arc::new(config.schema.clone());
        let passwords = Passwords::new();
        let outbox = Outbox::new(database.clone());
        let events = Events::new(schema.clone(), webhooks, outbox.clone());
        let records = Records::new(
            schema,
            database,
            u64::from(config.server.max_limit),
            passwords.clone(),
            config.auth.password.clone(),
            policies,
            events,
        );
        let accounts = Accounts::new(
            records.clone(),
            config.auth.clone(),
            &jwt_secret,
            passwords.clone(),
            outbox.clone(),
        );
        let mails = Arc::new(
            accounts
                .mail_sender(&config.email)
                .map_err(StartError::Setup)?,
        );
        Ok(Self {
            config: Arc::new(config),
            records,
            accounts,
            passwords,
            outbox,
            mails,
        })
    }

    /// Runs this instance's outbox worker until `shutdown` completes, then lets the deliveries
    /// under way finish. `serve` runs it; a program embedding Lucent runs it on one or more of
    /// its instances (rows wait in the database until a worker sends them).
    ///
    /// # Errors
    /// A database failure while releasing the claims of a previous SQLite process.
    pub async fn deliver(&self, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
        let dev = self.config.server.env == Env::Dev;
        let schedule = Schedule::from_env(dev, &|name| std::env::var(name).ok());
        if self.database().backend() == DbBackend::Sqlite {
            // One process serves a SQLite database: claims left are those of one that is gone.
            let released = crate::outbox::table::release_claims(self.database()).await?;
            if released > 0 {
                tracing::info!(
                    released,
                    "outbox deliveries claimed by a previous process are due again"
                );
            }
        }
        let mails: Arc<dyn crate::outbox::Mails> = self.mails.clone();
        Worker::new(self.outbox.clone(), &self.config.webhooks, mails, schedule)
            .run(shutdown)
            .await;
        Ok(())
    }

    pub fn database(&self) -> &Database {
        self.records.database()
    }

    /// The password-hashing pool (its queue is a metric).
    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }
}

/// Loads the config at `path` and compiles its rules, gathering every problem of both in one
/// list: the rules of every collection that could be built are checked even when others could
/// not (`lucent check` and `serve` report everything at once).
///
/// # Errors
/// Every config and rule problem, each located.
pub fn load_checked(path: &Path) -> Result<(Config, Policies), Diagnostics> {
    let (config, mut diags) = config::load_partial(path, &|name| std::env::var(name).ok());
    if let Err(filter_errors) = Webhooks::compile(&config.webhooks, &config.schema, path) {
        diags.0.extend(filter_errors.0);
    }
    match Policies::compile(&config.schema) {
        Ok(policies) => diags.finish((config, policies)),
        Err(rule_errors) => {
            diags.0.extend(rule_errors.0);
            Err(diags)
        }
    }
}

/// The JWT secret: configured (at least 32 bytes in prod), or in dev generated once and kept in
/// the data folder so tokens survive restarts.
fn jwt_secret(config: &Config) -> Result<Vec<u8>, StartError> {
    if let Some(secret) = &config.auth.jwt_secret {
        return Ok(secret.as_bytes().to_vec());
    }
    if config.server.env == Env::Prod {
        return Err(StartError::Setup(
            "auth.jwt_secret is required in prod (at least 32 bytes)".into(),
        ));
    }
    let path = config.data_dir().join("jwt_secret");
    if let Ok(secret) = std::fs::read_to_string(&path)
        && secret.trim().len() >= 32
    {
        return Ok(secret.trim().as_bytes().to_vec());
    }
    let secret = Secret::generate();
    db::create_private_dir(&config.data_dir())
        .map_err(|e| StartError::Setup(format!("cannot create the data folder: {e}")))?;
    write_private(&path, secret.expose())
        .map_err(|e| StartError::Setup(format!("cannot write {}: {e}", path.display())))?;
    tracing::warn!(path = %path.display(), "auth.jwt_secret is not set: generated a development secret (set JWT_SECRET in production)");
    Ok(secret.expose().as_bytes().to_vec())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod change_events_tests;
#[cfg(test)]
mod import_tests;
