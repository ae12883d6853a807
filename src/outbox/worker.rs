//! The delivery worker of one instance: it claims due rows (a batch at a time, as many as it has
//! room for), sends each on its own task (at most [`IN_FLIGHT`] at once), and records outcomes
//! in batches: sent rows are deleted, failed ones scheduled again or marked failed.
//!
//! It looks for due rows when a commit on this instance wrote some ([`Outbox::nudge`]), and
//! every [`POLL`] (rows written by other instances, retries coming due). On shutdown it stops
//! claiming, lets the attempts running finish, and records their outcomes.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};

use super::Outbox;
use super::schedule::Schedule;
use super::sender::Poster;
use super::table::{self, Claimed, Kind};
use crate::config::{WebhookConfig, WebhookSecret};

/// Attempts running at once per instance.
pub const IN_FLIGHT: usize = 256;

/// Most rows claimed by one statement.
const BATCH: u64 = 256;

/// How often the worker looks for due rows without being nudged.
pub const POLL: Duration = Duration::from_secs(1);

/// How long a nudged worker lets further commits gather before it claims, and the recorder lets
/// outcomes gather before it writes them: under load, one claim and one delete per batch of
/// messages rather than per commit, which keeps the worker's statements from crowding the
/// writes that cause them (on SQLite they share one writer).
const GATHER: Duration = Duration::from_millis(20);

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// There was nothing to send (a mail for no account, or one over the rate limit).
    Nothing,
    Failed(String),
}

/// Sends the mails of the outbox (implemented by the account flows, which prepare them).
pub trait Mails: Send + Sync + 'static {
    fn deliver<'a>(
        &'a self,
        row: &'a Claimed,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;
}

/// What a worker sends with.
pub struct Worker {
    outbox: Outbox,
    webhooks: HashMap<String, WebhookSecret>,
    mails: Arc<dyn Mails>,
    schedule: Schedule,
    poster: Poster,
}

impl Worker {
    pub fn new(
        outbox: Outbox,
        webhooks: &[WebhookConfig],
        mails: Arc<dyn Mails>,
        schedule: Schedule,
    ) -> Self {
        Self {
            outbox,
            webhooks: webhooks
                .iter()
                .map(|w| (w.url.clone(), w.secret.clone()))
                .collect(),
            mails,
            schedule,
            poster: Poster::new(),
        }
    }

    /// Runs until `shutdown` completes, then finishes the attempts under way.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let worker = Arc::new(self);
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        let (outcomes, received) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(record(worker.clone(), received));
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            worker.dispatch(&slots, &outcomes).await;
            tokio::select! {
                () = worker.outbox.nudge.notified() => tokio::time::sleep(GATHER).await,
                () = tokio::time::sleep(POLL) => {}
                () = &mut shutdown => break,
            }
        }
        // Every slot back means every attempt has sent its outcome.
        let all = u32::try_from(IN_FLIGHT).expect("a small number");
        let _ = slots.acquire_many(all).await;
        drop(outcomes);
        let _ = recorder.await;
    }

    /// Claims and starts due rows while there are some and room for them.
    async fn dispatch(
        self: &Arc<Self>,
        slots: &Arc<Semaphore>,
        outcomes: &mpsc::UnboundedSender<(Claimed, Outcome)>,
    ) {
        loop {
            // Wait for room, then claim as much as there is room for.
            let Ok(first) = slots.clone().acquire_owned().await else {
                return;
            };
            let room = slots.available_permits() + 1;
            let asked = BATCH.min(room as u64);
            let until = crate::schema::now()
                + chrono::Duration::from_std(self.schedule.lease)
                    .unwrap_or(chrono::Duration::days(365));
            let rows = match table::claim(&self.outbox.db, asked, until).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "the outbox cannot be read");
                    return;
                }
            };
            let claimed = rows.len() as u64;
            let mut first = Some(first);
            for row in rows {
                let slot = match first.take() {
                    Some(slot) => slot,
                    None => match slots.clone().acquire_owned().await {
                        Ok(slot) => slot,
                        Err(_) => return,
                    },
                };
                let worker = self.clone();
                let outcomes = outcomes.clone();
                tokio::spawn(async move {
                    let outcome = worker.attempt(&row).await;
                    let _ = outcomes.send((row, outcome));
                    drop(slot);
                });
            }
            if claimed < asked {
                return;
            }
        }
    }

    async fn attempt(&self, row: &Claimed) -> Outcome {
        match row.kind {
            Kind::Email => self.mails.deliver(row).await,
            Kind::Webhook => {
                let Some(secret) = self.webhooks.get(&row.target) else {
                    return Outcome::Failed(
                        "no [[webhooks]] entry has this url any more".to_string(),
                    );
                };
                match self
                    .poster
                    .post(&row.target, secret, &row.id, &row.payload)
                    .await
                {
                    Ok(()) => Outcome::Delivered,
                    Err(error) => Outcome::Failed(error),
                }
            }
        }
    }
}

/// Writes outcomes as they come: every delivered (or empty) row of a batch in one statement,
/// each failure on its own.
async fn record(worker: Arc<Worker>, mut received: mpsc::UnboundedReceiver<(Claimed, Outcome)>) {
    let db = &worker.outbox.db;
    let mut batch = Vec::new();
    while received.recv_many(&mut batch, 1024).await > 0 {
        if batch.len() < 1024 {
            tokio::time::sleep(GATHER).await;
            while batch.len() < 1024 {
                match received.try_recv() {
                    Ok(outcome) => batch.push(outcome),
                    Err(_) => break,
                }
            }
        }
        let mut done = Vec::new();
        for (row, outcome) in batch.drain(..) {
            match outcome {
                Outcome::Delivered | Outcome::Nothing => done.push((row.id, row.claim)),
                Outcome::Failed(error) => {
                    let failed = row.attempts.saturating_add(1);
                    let next = worker.schedule.retry_after(failed).map(|delay| {
                        crate::schema::now()
                            + chrono::Duration::from_std(delay)
                                .unwrap_or(chrono::Duration::days(365))
                    });
                    match next {
                        Some(at) => tracing::warn!(
                            kind = row.kind.as_str(),
                            event = %row.event,
                            attempt = failed,
                            error = %error,
                            retry_at = %at,
                            "an outbox delivery failed; it will be retried"
                        ),
                        None => tracing::error!(
                            kind = row.kind.as_str(),
                            event = %row.event,
                            id = %row.id,
                            attempts = failed,
                            error = %error,
                            "an outbox delivery failed for good (lucent outbox retry requeues it)"
                        ),
                    }
                    if let Err(e) = table::attempt_failed(db, &row, next, &error).await {
                        tracing::error!(error = %e, "cannot record a failed delivery; it will be retried when its claim lapses");
                    }
                }
            }
        }
        if let Err(e) = table::delivered(db, &done).await {
            tracing::error!(error = %e, "cannot record deliveries; they will be sent again when their claims lapse");
        }
    }
}
