//! Mails through the outbox (SPEC §13): the request flows write a mail row and answer once it
//! is committed; the outbox worker hands each row to [`MailSender`], which prepares the mail —
//! the account looked up, the per-account rate limit applied, the token's digest stored, the
//! templates rendered — and gives it to the transport.
//!
//! Preparing is one transaction per mail, serialized per account (one at a time per instance,
//! and under a PostgreSQL advisory lock across instances), so two mails for one account can
//! neither both pass the rate limit nor both survive a supersession. The token is made when the
//! mail is sent, never stored in the outbox: an attempt that failed after preparing left its
//! token's digest on the row, and the next attempt deletes that token before making a new one,
//! so a retried mail counts once toward the limit.

use serde_json::Value as Json;
use tokio::sync::Mutex;

use super::{Accounts, Error, Result, chrono_duration, email_field};
use crate::auth::email::templates::{self, Rendered, Values};
use crate::auth::email::{Mailer, Purpose, tokens};
use crate::auth::secret::{Secret, digest};
use crate::config::EmailConfig;
use crate::outbox::{self, Claimed, MailAccount, MailJob, Outcome};
use crate::schema::{FieldRole, doc_id, now};

/// Mails one account may be sent per hour, verification and reset together. Further requests
/// still answer 202 and send nothing.
pub const MAILS_PER_HOUR: i64 = 5;

impl Accounts {
    /// Writes a mail row; returns once it is durable (the worker is woken).
    pub(super) async fn enqueue_mail(
        &self,
        purpose: Purpose,
        slug: &str,
        account: MailAccount,
    ) -> Result<()> {
        let job = MailJob {
            purpose: purpose.as_str().to_string(),
            collection: slug.to_string(),
            account,
        };
        self.inner.outbox.enqueue(&job.delivery()).await?;
        Ok(())
    }

    /// The sender the outbox worker gives mail rows to, with the transport of `config`.
    ///
    /// # Errors
    /// A transport that cannot be built (bad `from`, bad SMTP URL).
    pub fn mail_sender(&self, config: &EmailConfig) -> Result<MailSender, String> {
        Ok(MailSender {
            accounts: self.clone(),
            mailer: Mailer::new(config)?,
            config: config.clone(),
            preparing: Mutex::new(()),
        })
    }

    /// Finds the account, applies the rate limit, stores a new token and renders the mail.
    /// `None` when there is nothing to send (no such account, no address, already verified,
    /// over the limit).
    async fn prepare(
        &self,
        config: &EmailConfig,
        job: &MailJob,
        row: &Claimed,
    ) -> Result<Option<(String, Rendered)>> {
        let purpose = match job.purpose.as_str() {
            "verify" => Purpose::Verify,
            "reset" => Purpose::Reset,
            other => {
                return Err(Error::Records(crate::records::Error::Internal(format!(
                    "unknown mail purpose `{other}`"
                ))));
            }
        };
        let slug = job.collection.as_str();
        let collection = self.email_collection(slug)?;
        let field = email_field(collection)?;
        let account = match &job.account {
            MailAccount::Id(id) => self.records().account(slug, id, None).await?,
            MailAccount::Email(address) => {
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
        if purpose == Purpose::Verify && verified {
            return Ok(None);
        }
        let id = doc_id(&account).to_string();
        let (lifetime, link, overrides) = match purpose {
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
        let token = tokens::NewToken {
            hash: &hash,
            purpose,
            collection: slug,
            user_id: &id,
            email_hash: &email_hash,
            expires_at: now() + chrono_duration(lifetime),
        };
        if !self.issue(&token, row).await? {
            tracing::info!(
                collection = slug,
                purpose = purpose.as_str(),
                "email rate limit reached; nothing sent"
            );
            return Ok(None);
        }
        let url = link.replace("{token}", secret.expose());
        let mail = templates::render(
            purpose,
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

    /// Stores `token` unless the account is over the rate limit (false), in one transaction
    /// that holds the account's mail lock, undoes the token of an earlier attempt of `row`,
    /// and records the new one on the row.
    async fn issue(&self, token: &tokens::NewToken<'_>, row: &Claimed) -> Result<bool> {
        use sea_orm::TransactionTrait;
        let transaction = self.db().writer().begin().await?;
        tokens::lock_account(&transaction, token.collection, token.user_id).await?;
        if let Some(earlier) = &row.prepared {
            tokens::delete(&transaction, earlier).await?;
        }
        let window = now() - chrono::Duration::hours(1);
        let issued =
            tokens::issued_since(&transaction, token.collection, token.user_id, window).await?;
        if issued >= MAILS_PER_HOUR {
            transaction.commit().await?;
            return Ok(false);
        }
        tokens::insert(&transaction, token).await?;
        if !outbox::table::set_prepared(&transaction, row, Some(token.hash)).await? {
            // The claim lapsed: another attempt owns the row now.
            transaction.rollback().await?;
            return Err(Error::Records(crate::records::Error::Internal(
                "the mail's claim lapsed while it was prepared".into(),
            )));
        }
        transaction.commit().await?;
        Ok(true)
    }
}

/// Prepares and sends the mails of the outbox ([`outbox::Mails`]).
pub struct MailSender {
    accounts: Accounts,
    mailer: Mailer,
    config: EmailConfig,
    /// Mails are prepared one at a time on an instance (in the order they were claimed), so a
    /// newer reset request's token is the one made last; only sending runs in parallel.
    preparing: Mutex<()>,
}

impl outbox::Mails for MailSender {
    fn deliver<'a>(
        &'a self,
        row: &'a Claimed,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send + 'a>> {
        Box::pin(async move {
            let Some(job) = MailJob::from_row(row) else {
                return Outcome::Failed("the row does not hold a mail".into());
            };
            let prepared = {
                let _one = self.preparing.lock().await;
                self.accounts.prepare(&self.config, &job, row).await
            };
            match prepared {
                Ok(Some((to, mail))) => match self.mailer.send(&to, &mail).await {
                    Ok(()) => Outcome::Delivered,
                    Err(e) => Outcome::Failed(e.to_string()),
                },
                Ok(None) => Outcome::Nothing,
                Err(e) => Outcome::Failed(format!("cannot prepare the mail: {e}")),
            }
        })
    }
}

impl std::fmt::Debug for MailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MailSender")
    }
}
