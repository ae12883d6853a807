//! Email verification and password reset (SPEC §5 "Email"): the four operations.
//!
//! The two request operations (`send_verification_email`, `request_password_reset`) only check
//! what the schema says and write a mail row to the outbox (see `mail`), so their answer and its
//! timing are the same whether or not the account exists, and a crash after the answer loses no
//! mail. The two token operations spend a token and change the
//! account through `records`.

use serde_json::Value as Json;

use super::{Accounts, Error, Result, email_field};
use crate::auth::Principal;
use crate::auth::email::Purpose;
use crate::auth::email::tokens;
use crate::auth::lockout;
use crate::auth::secret::{Secret, digest, same_digest};
use crate::outbox::MailAccount;
use crate::records::Doc;
use crate::schema::{Collection, Value, doc_id};

impl Accounts {
    /// Writes a verification mail for the account of `slug` whose `email` is `email` to the
    /// outbox; returns once it is durable. Nothing tells whether that account exists: with none,
    /// nothing is sent.
    ///
    /// # Errors
    /// `NotFound` for a collection without auth; `NoEmailField`; `Validation` for an address no
    /// account could hold; a database failure. Never anything about the account.
    pub async fn send_verification_email(&self, slug: &str, email: &str) -> Result<()> {
        self.mail_by_email(Purpose::Verify, slug, email).await
    }

    /// Writes a password-reset mail, as [`Accounts::send_verification_email`] does.
    ///
    /// # Errors
    /// As [`Accounts::send_verification_email`].
    pub async fn request_password_reset(&self, slug: &str, email: &str) -> Result<()> {
        self.mail_by_email(Purpose::Reset, slug, email).await
    }

    async fn mail_by_email(&self, purpose: Purpose, slug: &str, email: &str) -> Result<()> {
        let collection = self.email_collection(slug)?;
        let field = collection
            .field(email_field(collection)?)
            .ok_or_else(|| Error::NoEmailField(slug.to_string()))?;
        // The field's own rules (a valid address, its length and pattern): an address no account
        // could hold is a 400, as the OpenAPI document's pattern says.
        let address = match field.parse(&Json::String(email.to_string())) {
            Ok(Value::Text(address)) => address,
            Ok(_) => return Err(Error::invalid("email", "required", "email is required")),
            Err(error) => return Err(Error::validation(vec![error])),
        };
        self.enqueue_mail(purpose, slug, MailAccount::Email(address))
            .await
    }

    /// Marks the account of a verification token verified; the token is spent.
    ///
    /// # Errors
    /// `InvalidToken` for anything but a live verification token of this collection mailed to the
    /// account's current address.
    pub async fn verify_email(&self, slug: &str, token: &str) -> Result<Doc> {
        let collection = self.email_collection(slug)?;
        let (account, hash) = self.live_token(collection, Purpose::Verify, token).await?;
        if !tokens::consume(self.db(), &hash, Purpose::Verify, slug).await? {
            return Err(Error::InvalidToken);
        }
        let id = doc_id(&account).to_string();
        self.records().mark_verified(slug, &id).await?;
        tokens::retire(self.db(), slug, &id, Purpose::Verify).await?;
        let stored = self
            .records()
            .account(slug, &id, None)
            .await?
            .ok_or(Error::InvalidToken)?;
        // The token proves control of a mailbox, not who is asking: shown as to anyone.
        Ok(self.records().render(&Principal::Anonymous, slug, stored)?)
    }

    /// Sets a new password with a reset token: the policy applies (every unmet rule is listed),
    /// the token is spent along with every other reset token of the account, every session of
    /// the account ends, every API key of it is revoked, and its login lockout is lifted. The
    /// mailed link proved the address, so the account is also marked verified.
    ///
    /// # Errors
    /// `InvalidToken` as for [`Accounts::verify_email`]; `Validation` for a password that breaks
    /// the policy (the token stays usable); `Busy` when hashing is saturated.
    pub async fn reset_password(&self, slug: &str, token: &str, password: &str) -> Result<()> {
        let collection = self.email_collection(slug)?;
        // The token first: guessing tokens costs neither the policy check (5–10 ms of CPU, its
        // common-password matching) nor argon2 time.
        let (account, hash) = self.live_token(collection, Purpose::Reset, token).await?;
        let password = self.records().new_password(password).await?;
        if !tokens::consume(self.db(), &hash, Purpose::Reset, slug).await? {
            return Err(Error::InvalidToken);
        }
        let id = doc_id(&account);
        self.records().reset_password(slug, id, password).await?;
        tokens::retire(self.db(), slug, id, Purpose::Reset).await?;
        lockout::clear(self.db(), &lockout::key(slug, Some(id), "")).await?;
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
            return Err(Error::InvalidToken);
        }
        let hash = Secret::from_client(token).digest();
        let owner = tokens::live(self.db(), &hash, purpose, &collection.slug)
            .await?
            .ok_or(Error::InvalidToken)?;
        let account = self
            .records()
            .account(&collection.slug, &owner.user_id, None)
            .await?
            .ok_or(Error::InvalidToken)?;
        let address = email_field(collection)
            .ok()
            .and_then(|field| account.get(field))
            .and_then(Json::as_str)
            .unwrap_or_default();
        if !same_digest(&digest(address), &owner.email_hash) {
            return Err(Error::InvalidToken);
        }
        Ok((account, hash))
    }
}
