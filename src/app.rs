//! The composition root: a loaded configuration, a connected database with its tables, and the
//! operations over them. `serve`, the other commands and the tests all build one of these.

use std::path::Path;
use std::sync::Arc;

use crate::config::{self, Config, Diagnostics};
use crate::db::{self, Database};
use crate::records::Records;

/// Why Lucent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] Diagnostics),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

/// A running Lucent instance, usable as a library.
#[derive(Debug, Clone)]
pub struct Lucent {
    pub config: Arc<Config>,
    pub records: Records,
}

impl Lucent {
    /// Loads the config at `path`, connects to its database and creates what is missing.
    ///
    /// # Errors
    /// Every config problem, or a database that cannot be reached or set up.
    pub async fn from_config_file(path: &Path) -> Result<Self, StartError> {
        let config = config::load(path)?;
        Self::from_config(config).await
    }

    /// As [`Lucent::from_config_file`], from an already loaded config.
    ///
    /// # Errors
    /// A database that cannot be reached or set up.
    pub async fn from_config(config: Config) -> Result<Self, StartError> {
        let database = Database::connect(&config.database.url).await?;
        db::create_schema(database.writer(), &config.schema).await?;
        let schema = Arc::new(config.schema.clone());
        let records = Records::new(schema, database, u64::from(config.server.max_limit));
        Ok(Self {
            config: Arc::new(config),
            records,
        })
    }

    pub fn database(&self) -> &Database {
        self.records.database()
    }
}
