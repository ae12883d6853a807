//! A mail waiting in the outbox: which mail (its purpose), to which account of which auth
//! collection, found by id (a new account) or by the address a request named. Never the token
//! or the text: the account flows prepare both when the mail is sent (`accounts::mail`), so no
//! secret is stored in the outbox.

use serde::{Deserialize, Serialize};

use super::table::{Claimed, Kind, NewDelivery};

/// The account a mail is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MailAccount {
    Id(String),
    Email(String),
}

/// One mail to prepare and send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailJob {
    /// `verify` or `reset` (`auth::email::Purpose`).
    pub purpose: String,
    pub collection: String,
    pub account: MailAccount,
}

impl MailJob {
    /// The outbox row of this mail.
    pub fn delivery(&self) -> NewDelivery {
        NewDelivery {
            kind: Kind::Email,
            target: self.collection.clone(),
            event: self.purpose.clone(),
            payload: serde_json::to_string(&self.account).expect("serializable"),
        }
    }

    /// The mail a claimed email row holds, if it is one.
    pub fn from_row(row: &Claimed) -> Option<Self> {
        if row.kind != Kind::Email {
            return None;
        }
        Some(Self {
            purpose: row.event.clone(),
            collection: row.target.clone(),
            account: serde_json::from_str(&row.payload).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_round_trips_through_its_row() {
        for account in [
            MailAccount::Id("0190f3a2".into()),
            MailAccount::Email("ann@example.com".into()),
        ] {
            let job = MailJob {
                purpose: "reset".into(),
                collection: "users".into(),
                account,
            };
            let delivery = job.delivery();
            let row = Claimed {
                id: "1".into(),
                claim: "c".into(),
                kind: delivery.kind,
                target: delivery.target,
                event: delivery.event,
                payload: delivery.payload,
                attempts: 0,
                prepared: None,
                created_at: chrono::Utc::now(),
            };
            assert_eq!(MailJob::from_row(&row), Some(job));
        }
    }
}
