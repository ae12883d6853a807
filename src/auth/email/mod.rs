//! Email verification and password reset (SPEC §5 "Email"): the four operations on [`Auth`], and
//! the background worker that finds the account, issues the token and sends the mail.
//!
//! The two request operations (`send_verification_email`, `request_password_reset`) only check
//! what the schema says and queue a job, so their answer and its timing are the same whether or
//! not the account exists. The worker then looks the account up, applies the per-account rate
//! limit, stores the token's digest, renders the templates and hands the mail to the transport,
//! retrying a failed send a few times.

mod templates;
pub mod tokens;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use chrono::SubsecRound;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde_json::Value as Json;
use tokio::sync::{Semaphore, mpsc};

pub use templates::{Rendered, Values};
pub use tokens::Purpose;
pub use transport::{Mailer, SendError};

use super::accounts::{Auth, Error, lockout_key};
use super::api_keys;
use super::password::check_policy;
use super::secret::{Secret, digest};
use super::{Principal, store};
use crate::config::EmailConfig;
use crate::db::to_sql_value;
use crate::records::{self, Doc};
use crate::schema::{Collection, FieldKind, FieldRole, Value};

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

/// What an email operation can fail with; `http::email` maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// Unknown, used, superseded or expired, of the other purpose or collection, or mailed to an
    /// address the account no longer has.
    #[error("the token is invalid, expired or already used")]
    InvalidToken,
    /// The collection has no `email` field to send to.
    #[error(
        "collection \"{0}\" has no `email` field of type email: declare one to use email \
         verification and password reset"
    )]
    NoEmailField(String),
    #[error(transparent)]
    Auth(#[from] Error),
}

impl From<sea_orm::DbErr> for EmailError {
    fn from(e: sea_orm::DbErr) -> Self {
        EmailError::Auth(e.into())
    }
}

impl From<records::Error> for EmailError {
    fn from(e: records::Error) -> Self {
        EmailError::Auth(e.into())
    }
}

type Result<T, E = EmailError> = std::result::Result<T, E>;

/// Which account a job is for: by id (right after register) or by the address a request named.
#[derive(Debug)]
enum Account {
    Id(String),
    Email(String),
}

/// One mail to prepare and send.
#[derive(Debug)]
pub struct Job {
    purpose: Purpose,
    collection: String,
    account: Account,
}

/// The sending side of the job queue, kept by [`Auth`].
#[derive(Debug, Clone)]
pub struct Outbox {
    jobs: mpsc::Sender<Job>,
}

/// The receiving side, handed to [`Auth::start_email_worker`].
#[derive(Debug)]
pub struct Jobs(mpsc::Receiver<Job>);

impl Outbox {
    pub fn channel() -> (Outbox, Jobs) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        (Outbox { jobs: sender }, Jobs(receiver))
    }

    fn push(&self, job: Job) {
        if let Err(e) = self.jobs.try_send(job) {
            tracing::warn!(error = %e, "email queue unavailable: a mail was dropped");
        }
    }
}

/// The `email` field mails go to: the login field of an email collection, or a declared one.
fn email_field(collection: &Collection) -> Result<&str> {
    match collection.field("email") {
        Some(field) if field.kind == FieldKind::Email => Ok(&field.name),
        _ => Err(EmailError::NoEmailField(collection.slug.clone())),
    }
}

fn field_of_role(collection: &Collection, role: FieldRole) -> Option<&crate::schema::Field> {
    collection.fields.iter().find(|f| f.role == role)
}

fn invalid(field: &str, message: &str) -> EmailError {
    EmailError::Auth(Error::Records(records::Error::Validation(vec![
        crate::schema::FieldError::new(field, "required", message),
    ])))
}

impl Auth {
    fn email_collection(&self, slug: &str) -> Result<&Collection> {
        let (collection, _) = self.auth_collection(slug)?;
        email_field(collection)?;
        Ok(collection)
    }

    /// Queues a verification mail to the account of `slug` whose `email` is `email`. Nothing
    /// tells whether that account exists: with none, nothing is sent.
    ///
    /// # Errors
    /// `NotFound` for a collection without auth; `NoEmailField`; `Validation` for an empty
    /// address. Never anything about the account.
    pub fn send_verification_email(&self, slug: &str, email: &str) -> Result<()> {
        self.queue_by_email(Purpose::Verify, slug, email)
    }

    /// Queues a password-reset mail, as [`Auth::send_verification_email`] does.
    ///
    /// # Errors
    /// As [`Auth::send_verification_email`].
    pub fn request_password_reset(&self, slug: &str, email: &str) -> Result<()> {
        self.queue_by_email(Purpose::Reset, slug, email)
    }

    fn queue_by_email(&self, purpose: Purpose, slug: &str, email: &str) -> Result<()> {
        let collection = self.email_collection(slug)?;
        let field = collection
            .field(email_field(collection)?)
            .ok_or_else(|| EmailError::NoEmailField(slug.to_string()))?;
        // The field's own rules (a valid address, its length and pattern): an address no account
        // could hold is a 400, as the OpenAPI document's `format: email` says.
        let address = match field.parse(&Json::String(email.to_string())) {
            Ok(Value::Text(address)) => address,
            Ok(_) => return Err(invalid("email", "email is required")),
            Err(error) => return Err(records::Error::Validation(vec![error]).into()),
        };
        self.inner.outbox.push(Job {
            purpose,
            collection: slug.to_string(),
            account: Account::Email(address),
        });
        Ok(())
    }

    /// Queues the verification mail of a just registered account (`verify_email = true`).
    pub(super) fn queue_verification(&self, slug: &str, user_id: &str) {
        self.inner.outbox.push(Job {
            purpose: Purpose::Verify,
            collection: slug.to_string(),
            account: Account::Id(user_id.to_string()),
        });
    }

    /// Marks the account of a verification token verified; the token is spent.
    ///
    /// # Errors
    /// `InvalidToken` for anything but a live verification token of this collection mailed to the
    /// account's current address.
    pub async fn verify_email(&self, slug: &str, token: &str) -> Result<Doc> {
        let collection = self.email_collection(slug)?;
        let (account, hash) = self.live_token(collection, Purpose::Verify, token).await?;
        if !tokens::consume(&self.inner.db, &hash, Purpose::Verify, slug).await? {
            return Err(EmailError::InvalidToken);
        }
        let id = account_id(&account);
        let now = store::now();
        let mut update = Query::update();
        update.table(Alias::new(slug));
        if let Some(field) = field_of_role(collection, FieldRole::Verified) {
            let verified = to_sql_value(&field.kind, &Value::Bool(true), self.inner.db.backend());
            update.value(Alias::new(&field.name), verified);
        }
        update
            .value(Alias::new("updatedAt"), now)
            .and_where(Expr::col(Alias::new("id")).eq(id.as_str()));
        self.inner.db.writer().execute(&update).await?;
        tokens::retire(&self.inner.db, slug, &id, Purpose::Verify).await?;
        let stored = self
            .inner
            .records
            .account(slug, &id, None)
            .await?
            .ok_or(EmailError::InvalidToken)?;
        // The token proves control of a mailbox, not who is asking: shown as to anyone.
        Ok(self
            .inner
            .records
            .render(&Principal::Anonymous, slug, stored)?)
    }

    /// Sets a new password with a reset token: the policy applies (every unmet rule is listed),
    /// the token is spent along with every other reset token of the account, every session of
    /// the account ends, every API key of it is revoked (the link proves control of the mailbox,
    /// not of the keys), and its login lockout is lifted. The mailed link proved the address, so
    /// the account is also marked verified.
    ///
    /// # Errors
    /// `InvalidToken` as for [`Auth::verify_email`]; `Validation` for a password that breaks the
    /// policy (the token stays usable); `Busy` when hashing is saturated.
    pub async fn reset_password(&self, slug: &str, token: &str, password: &str) -> Result<()> {
        let collection = self.email_collection(slug)?;
        // The token first: guessing tokens costs neither the policy check (5–10 ms of CPU, its
        // common-password matching) nor argon2 time.
        let (account, hash) = self.live_token(collection, Purpose::Reset, token).await?;
        let broken = check_policy(&self.inner.config.password, password, "password");
        if !broken.is_empty() {
            return Err(EmailError::Auth(Error::Records(
                records::Error::Validation(broken),
            )));
        }
        let password_hash = self
            .inner
            .passwords
            .hash(password.to_string())
            .await
            .map_err(Error::from)?;
        if !tokens::consume(&self.inner.db, &hash, Purpose::Reset, slug).await? {
            return Err(EmailError::InvalidToken);
        }
        let id = account_id(&account);
        let backend = self.inner.db.backend();
        let mut update = Query::update();
        update.table(Alias::new(slug));
        if let Some(field) = field_of_role(collection, FieldRole::Password) {
            update.value(
                Alias::new(&field.name),
                to_sql_value(&field.kind, &Value::Text(password_hash), backend),
            );
        }
        if let Some(field) = field_of_role(collection, FieldRole::Verified) {
            update.value(
                Alias::new(&field.name),
                to_sql_value(&field.kind, &Value::Bool(true), backend),
            );
        }
        update
            .value(Alias::new("updatedAt"), chrono::Utc::now().trunc_subsecs(3))
            .and_where(Expr::col(Alias::new("id")).eq(id.as_str()));
        self.inner.db.writer().execute(&update).await?;
        tokens::retire(&self.inner.db, slug, &id, Purpose::Reset).await?;
        store::delete_user_sessions(&self.inner.db, slug, &id, None).await?;
        api_keys::delete_user_keys(&self.inner.db, slug, &id).await?;
        store::clear_attempts(&self.inner.db, &lockout_key(slug, Some(&id), "")).await?;
        Ok(())
    }

    /// The stored account behind a live token of `purpose`, and the token's digest. A token
    /// mailed to an address the account no longer has is refused.
    async fn live_token(
        &self,
        collection: &Collection,
        purpose: Purpose,
        token: &str,
    ) -> Result<(Doc, String)> {
        let token = token.trim();
        if token.is_empty() || token.len() > 128 {
            return Err(EmailError::InvalidToken);
        }
        let hash = Secret::from_client(token).digest();
        let owner = tokens::live(&self.inner.db, &hash, purpose, &collection.slug)
            .await?
            .ok_or(EmailError::InvalidToken)?;
        let account = self
            .inner
            .records
            .account(&collection.slug, &owner.user_id, None)
            .await?
            .ok_or(EmailError::InvalidToken)?;
        let address = email_field(collection)
            .ok()
            .and_then(|field| account.get(field))
            .and_then(Json::as_str)
            .unwrap_or_default();
        if !super::secret::same_digest(&digest(address), &owner.email_hash) {
            return Err(EmailError::InvalidToken);
        }
        Ok((account, hash))
    }

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
            Account::Id(id) => self.inner.records.account(slug, id, None).await?,
            Account::Email(address) => self.account_by_email(collection, field, address).await?,
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
        let verified = field_of_role(collection, FieldRole::Verified)
            .and_then(|f| account.get(&f.name))
            .is_some_and(|v| v == &Json::Bool(true));
        if job.purpose == Purpose::Verify && verified {
            return Ok(None);
        }
        let id = account_id(&account);
        let window = store::now() - chrono::Duration::hours(1);
        if tokens::issued_since(&self.inner.db, slug, &id, window).await? >= MAILS_PER_HOUR {
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
            &self.inner.db,
            &tokens::NewToken {
                hash: &hash,
                purpose: job.purpose,
                collection: slug,
                user_id: &id,
                email_hash: &email_hash,
                expires_at: store::now()
                    + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::days(3650)),
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

    /// The account whose `email` field holds `address` (stored lower-cased); the oldest one if
    /// a non-unique field holds it more than once.
    async fn account_by_email(
        &self,
        collection: &Collection,
        field: &str,
        address: &str,
    ) -> Result<Option<Doc>> {
        let mut select = Query::select();
        select
            .column(Alias::new("id"))
            .from(Alias::new(&collection.slug))
            .and_where(Expr::col(Alias::new(field)).eq(address.to_lowercase()))
            .order_by(Alias::new("id"), Order::Asc)
            .limit(1);
        let Some(row) = self.inner.db.writer().query_one(&select).await? else {
            return Ok(None);
        };
        let id: String = row.try_get_by_index(0)?;
        Ok(self
            .inner
            .records
            .account(&collection.slug, &id, None)
            .await?)
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

fn account_id(account: &Doc) -> String {
    account
        .get("id")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string()
}
