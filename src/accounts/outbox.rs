//! The mail worker: jobs queued by the email flows are prepared one at a time — the account
//! looked up, the per-account rate limit applied, the token's digest stored, the templates
//! rendered — and handed to the transport, a failed send retried a few times.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::{Semaphore, mpsc};

use super::{Accounts, Result, chrono_duration, email_field};
use crate::auth::email::templates::{self, Rendered, Values};
use crate::auth::email::{Mailer, Purpose, tokens};
use crate::auth::secret::{Secret, digest};
use crate::config::EmailConfig;
use crate::schema::{FieldRole, doc_id, now};

/// Mails one account may be sent per hour, verification and reset together. Further requests
/// still answer 202 and send nothing.
pub const MAILS_PER_HOUR: i64 = 5;

/// Jobs waiting for the worker; beyond this a request's mail is dropped and logged rather than
/// queued without bound.
const QUEUE: usize = 1024;

/// Mails being sent at once (each may wait on SMTP retries).
const SENDERS: usize = 8;

/// Waits before the second, third and fourth attempt to send a mail.
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(2),
    Duration::from_secs(10),
    Duration::from_secs(30),
];

/// Which account a job is for: by id (right after register) or by the address a request named.
#[derive(Debug)]
pub(super) enum Account {
    Id(String),
    Email(String),
}

/// One mail to prepare and send.
#[derive(Debug)]
pub struct Job {
    pub(super) purpose: Purpose,
    pub(super) collection: String,
    pub(super) account: Account,
}

/// The sending side of the job queue, kept by [`Accounts`].
#[derive(Debug, Clone)]
pub struct Outbox {
    jobs: mpsc::Sender<Job>,
}

/// The receiving side, handed to [`Accounts::start_email_worker`].
#[derive(Debug)]
pub struct Jobs(mpsc::Receiver<Job>);

impl Outbox {
    pub fn channel() -> (Outbox, Jobs) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        (Outbox { jobs: sender }, Jobs(receiver))
    }

    pub(super) fn push(&self, job: Job) {
        if let Err(e) = self.jobs.try_send(job) {
            tracing::warn!(error = %e, "email queue unavailable: a mail was dropped");
        }
    }
}

impl Accounts {
    /// Starts the background worker that runs queued jobs with the transport of `config`.
    ///
    /// # Errors
    /// A transport that cannot be built (bad `from`, bad SMTP URL).
    pub fn start_email_worker(&self, config: &EmailConfig, jobs: Jobs) -> Result<(), String> {
        let mailer = Arc::new(Mailer::new(config)?);
        let config = config.clone();
        let auth = self.clone();
        let Jobs(mut jobs) = jobs;
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(SENDERS));
            while let Some(job) = jobs.recv().await {
                // Jobs are prepared one at a time, so two requests for one account cannot both
                // pass the rate limit or both survive a supersession; only sending runs in parallel.
                let purpose = job.purpose;
                let (to, mail) = match auth.prepare(&config, job).await {
                    Ok(Some(prepared)) => prepared,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::error!(
                            error = %e,
                            purpose = purpose.as_str(),
                            "cannot prepare an email"
                        );
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let mailer = mailer.clone();
                tokio::spawn(async move {
                    deliver(&mailer, &to, &mail, purpose).await;
                    drop(slot);
                });
            }
        });
        Ok(())
    }

    /// Finds the account, applies the rate limit, stores a new token and renders the mail.
    /// `None` when there is nothing to send (no such account, no address, already verified,
    /// over the limit).
    async fn prepare(&self, config: &EmailConfig, job: Job) -> Result<Option<(String, Rendered)>> {
        let slug = job.collection.as_str();
        let collection = self.email_collection(slug)?;
        let field = email_field(collection)?;
        let account = match &job.account {
            Account::Id(id) => self.records().account(slug, id, None).await?,
            Account::Email(address) => {
                self.records()
                    .account_by_email(slug, field, address)
                    .await?
            }
        };
        let Some(account) = account else {
            tracing::debug!(collection = slug, "email requested for no account");
            return Ok(None);
        };
        let Some(address) = account
            .get(field)
            .and_then(Json::as_str)
            .filter(|a| !a.is_empty())
        else {
            return Ok(None);
        };
        let verified = collection
            .fields
            .iter()
            .find(|f| f.role == FieldRole::Verified)
            .and_then(|f| account.get(&f.name))
            .is_some_and(|v| v == &Json::Bool(true));
        if job.purpose == Purpose::Verify && verified {
            return Ok(None);
        }
        let id = doc_id(&account).to_string();
        let window = now() - chrono::Duration::hours(1);
        if tokens::issued_since(self.db(), slug, &id, window).await? >= MAILS_PER_HOUR {
            tracing::info!(
                collection = slug,
                purpose = job.purpose.as_str(),
                "email rate limit reached; nothing sent"
            );
            return Ok(None);
        }
        let (lifetime, link, overrides) = match job.purpose {
            Purpose::Verify => (
                self.inner.config.verify_expiry,
                &config.verify_url,
                &config.verify_template,
            ),
            Purpose::Reset => (
                self.inner.config.reset_expiry,
                &config.reset_url,
                &config.reset_template,
            ),
        };
        let secret = Secret::generate();
        let hash = secret.digest();
        let email_hash = digest(address);
        tokens::insert(
            self.db(),
            &tokens::NewToken {
                hash: &hash,
                purpose: job.purpose,
                collection: slug,
                user_id: &id,
                email_hash: &email_hash,
                expires_at: now() + chrono_duration(lifetime),
            },
        )
        .await?;
        let url = link.replace("{token}", secret.expose());
        let mail = templates::render(
            job.purpose,
            overrides,
            &Values {
                url: &url,
                email: address,
                collection: slug,
                expires: lifetime,
            },
        );
        Ok(Some((address.to_string(), mail)))
    }
}

/// Hands a mail to the transport, retrying a failed send after each of [`RETRY_DELAYS`]. The
/// token is stored already: a mail lost for good leaves the account as it was, and the user can ask
/// again.
async fn deliver(mailer: &Mailer, to: &str, mail: &Rendered, purpose: Purpose) {
    let mut delays = RETRY_DELAYS.iter();
    loop {
        let Err(e) = mailer.send(to, mail).await else {
            return;
        };
        let Some(delay) = delays.next() else {
            tracing::error!(
                error = %e,
                purpose = purpose.as_str(),
                "sending an email failed for good"
            );
            return;
        };
        tracing::warn!(
            error = %e,
            purpose = purpose.as_str(),
            retry_in = ?delay,
            "sending an email failed; retrying"
        );
        tokio::time::sleep(*delay).await;
    }
}
