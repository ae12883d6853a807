//! Delivering a rendered mail: `.eml` files in a folder, SMTP through lettre (STARTTLS or TLS,
//! rustls), or a log line. Which one comes from `[email] transport`.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::templates::Rendered;
use crate::config::{EmailConfig, EmailTransport};

/// Why a mail did not go out. The text never contains a token (it names no body).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("invalid recipient address: {0}")]
    Address(#[from] lettre::address::AddressError),
    #[error("cannot build the message: {0}")]
    Message(#[from] lettre::error::Error),
    #[error("cannot write the .eml file: {0}")]
    File(#[from] std::io::Error),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// The configured transport and sender address.
#[derive(Debug)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

#[derive(Debug)]
enum Transport {
    File(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Log,
}

impl Mailer {
    /// Builds the transport of `config` (no connection is opened yet).
    ///
    /// # Errors
    /// An unusable `from` or SMTP URL, described without its credentials.
    pub fn new(config: &EmailConfig) -> Result<Self, String> {
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|e| format!("email.from: {e}"))?;
        let transport = match config.transport {
            EmailTransport::File => Transport::File(config.dir.clone()),
            EmailTransport::Log => Transport::Log,
            EmailTransport::Smtp => {
                let url = config
                    .url
                    .as_deref()
                    .ok_or("email.url is required for smtp")?;
                Transport::Smtp(smtp(url)?)
            }
        };
        Ok(Self { from, transport })
    }

    /// Sends one mail to `to`.
    ///
    /// # Errors
    /// A bad address, an unwritable folder, or an SMTP failure.
    pub async fn send(&self, to: &str, mail: &Rendered) -> Result<(), SendError> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to.parse()?))
            .subject(mail.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))?;
        match &self.transport {
            Transport::File(dir) => {
                // The mails hold live reset links: readable by the owner only (the folder, when
                // Lucent creates it, 0700; each file 0600).
                let mut folder = tokio::fs::DirBuilder::new();
                folder.recursive(true);
                #[cfg(unix)]
                folder.mode(0o700);
                folder.create(dir).await?;
                let name = format!(
                    "{}-{}.eml",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
                    uuid::Uuid::now_v7().simple()
                );
                // Written aside and renamed, so a reader of the folder never sees half a mail.
                let partial = dir.join(format!(".{name}.partial"));
                let mut file = tokio::fs::OpenOptions::new();
                file.write(true).create_new(true);
                #[cfg(unix)]
                file.mode(0o600);
                let mut file = file.open(&partial).await?;
                tokio::io::AsyncWriteExt::write_all(&mut file, &message.formatted()).await?;
                tokio::io::AsyncWriteExt::flush(&mut file).await?;
                drop(file);
                tokio::fs::rename(&partial, dir.join(&name)).await?;
                tracing::info!(file = %name, subject = %mail.subject, "email written");
            }
            Transport::Smtp(smtp) => {
                smtp.send(message).await?;
                tracing::info!(subject = %mail.subject, "email sent over SMTP");
            }
            Transport::Log => {
                // The log transport proves a mail would have gone out; the link stays secret.
                tracing::info!(to = %to, subject = %mail.subject, "email (log transport, not delivered)");
            }
        }
        Ok(())
    }
}

/// An SMTP transport from `smtp://[user:pass@]host[:port][?tls=required|opportunistic|none]` or
/// `smtps://...`. Plain `smtp://` insists on STARTTLS (`tls=required`); `tls=none` is for a
/// local relay or test sink only.
fn smtp(url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| format!("email.url: malformed query string: {e}"))?;
    let tls = pairs
        .iter()
        .find(|(key, _)| key == "tls")
        .map(|(_, value)| value.clone());
    pairs.retain(|(key, _)| key != "tls");
    if let Some((key, _)) = pairs.first() {
        return Err(format!("email.url: unknown parameter `{key}` (only `tls`)"));
    }
    let lettre_url = match (base.starts_with("smtps://"), tls.as_deref()) {
        (true, None) => base.to_string(),
        (false, None | Some("required")) => format!("{base}?tls=required"),
        (false, Some("opportunistic")) => format!("{base}?tls=opportunistic"),
        (false, Some("none")) => base.to_string(),
        (_, Some(other)) => {
            return Err(format!(
                "email.url: tls=`{other}` (expected required, opportunistic or none; smtps:// \
                 takes none)"
            ));
        }
    };
    let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&lettre_url)
        .map_err(|e| format!("email.url: {e}"))?;
    Ok(builder.timeout(Some(Duration::from_secs(20))).build())
}

#[cfg(test)]
mod tests {
    use super::smtp;

    // Building the pooled transport spawns its idle-connection reaper: a runtime is needed.
    #[tokio::test]
    async fn smtp_urls_choose_tls_by_scheme() {
        for good in [
            "smtp://user:pass@mail.example.com:587",
            "smtp://mail.example.com?tls=opportunistic",
            "smtp://127.0.0.1:2525?tls=none",
            "smtps://user:pass@mail.example.com",
        ] {
            assert!(smtp(good).is_ok(), "{good}");
        }
        for bad in [
            "smtps://mail.example.com?tls=none",
            "smtp://mail.example.com?tls=maybe",
            "smtp://mail.example.com?pool=1",
        ] {
            let error = smtp(bad).unwrap_err();
            assert!(!error.contains("pass"), "{error}");
        }
    }
}
