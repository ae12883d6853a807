//! The transactional outbox (SPEC §13): webhook messages and mails are rows of `_lucent_outbox`
//! written in the same transaction as the write that causes them, so a committed write always
//! has its deliveries and a rolled-back one never does; each instance's worker sends them.
//!
//! `table` reads and writes the rows (`mail` says what a mail row holds), `worker` claims and sends them (`sender` posts a webhook,
//! signed by `signature`; mails are prepared and sent by the account flows through
//! [`worker::Mails`]), `schedule` says when a failed attempt is retried. At least once: an
//! attempt whose outcome was not recorded (a crash) is made again when its claim lapses.

mod mail;
mod schedule;
mod sender;
mod signature;
pub mod table;
mod worker;

use std::sync::Arc;

use sea_orm::DbErr;
use tokio::sync::Notify;

pub use mail::{MailAccount, MailJob};
pub use schedule::{LEASE, Schedule, TEST_DELAYS_VAR, TEST_LEASE_VAR};
pub use sender::TIMEOUT;
pub use signature::{message_id, sign};
pub use table::{Claimed, Kind, NewDelivery};
pub use worker::{Mails, Outcome, Worker};

use crate::db::Database;

/// The outbox of one instance: its database and the nudge that wakes its worker.
#[derive(Debug, Clone)]
pub struct Outbox {
    db: Database,
    nudge: Arc<Notify>,
}

impl Outbox {
    pub fn new(db: Database) -> Self {
        Self {
            db,
            nudge: Arc::new(Notify::new()),
        }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Wakes the worker: a commit has written rows (called after the commit, never before).
    pub fn nudge(&self) {
        self.nudge.notify_one();
    }

    /// Writes one delivery on its own (group-committed on SQLite) and wakes the worker; returns
    /// once it is durable.
    ///
    /// # Errors
    /// Database failures (then nothing was written).
    pub async fn enqueue(&self, delivery: &NewDelivery) -> Result<(), DbErr> {
        self.db
            .write_all(vec![delivery.insert(self.db.backend())])
            .await?;
        self.nudge();
        Ok(())
    }
}
