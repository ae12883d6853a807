//! The one place where a committed write becomes an event (issues 15 and 16). Every record
//! operation (`records` create, update, delete, in a batch or alone, and each document a delete
//! cascades to) describes what it did as a [`Change`] and calls two hooks, nowhere else:
//!
//! 1. [`Events::statements`], before it executes: what the write must also write, in its own
//!    statement list (so in its transaction). Here, an outbox row for every webhook the change
//!    matches, and the verification mail of a new account of a `verify_email` collection. A
//!    change nothing listens to costs no statement.
//! 2. [`Events::committed`], once the write has committed (never before, never for one rolled
//!    back; for a batch, at its commit, in order): the change goes to every subscriber of
//!    [`Events::subscribe`] (realtime, issue 16), and the outbox worker is woken.

pub mod webhooks;

use std::sync::Arc;

use sea_orm::{DbBackend, Statement};
use tokio::sync::broadcast;

use crate::outbox::{Kind, MailAccount, MailJob, NewDelivery, Outbox};
use crate::schema::{Action, Doc, Schema};
pub use webhooks::{Webhook, Webhooks};

/// Changes a slow subscriber may fall behind by before it misses some (it is told it lagged).
const STREAM: usize = 4096;

/// What one record operation did to one document.
#[derive(Debug, Clone)]
pub struct Change {
    pub collection: String,
    pub action: Action,
    pub id: String,
    /// The stored document, hidden fields included: after a create or update, as it was before a
    /// delete.
    pub doc: Doc,
    /// Before an update or a delete (for a delete, the same as `doc`).
    pub previous: Option<Doc>,
}

impl Change {
    /// A document created (`doc` as stored).
    pub fn created(collection: &str, doc: Doc) -> Self {
        Self::new(collection, Action::Create, doc, None)
    }

    /// A document updated from `previous` to `doc`.
    pub fn updated(collection: &str, doc: Doc, previous: Doc) -> Self {
        Self::new(collection, Action::Update, doc, Some(previous))
    }

    /// A document deleted (`doc` as it was).
    pub fn deleted(collection: &str, doc: Doc) -> Self {
        let previous = Some(doc.clone());
        Self::new(collection, Action::Delete, doc, previous)
    }

    fn new(collection: &str, action: Action, doc: Doc, previous: Option<Doc>) -> Self {
        Self {
            collection: collection.to_string(),
            action,
            id: crate::schema::doc_id(&doc).to_string(),
            doc,
            previous,
        }
    }
}

/// The hooks, and what they need: the schema, the compiled webhooks, the outbox to wake, the
/// stream of committed changes.
#[derive(Debug, Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    schema: Arc<Schema>,
    webhooks: Webhooks,
    outbox: Outbox,
    stream: broadcast::Sender<Arc<Change>>,
}

impl Events {
    pub fn new(schema: Arc<Schema>, webhooks: Webhooks, outbox: Outbox) -> Self {
        let (stream, _) = broadcast::channel(STREAM);
        Self {
            inner: Arc::new(Inner {
                schema,
                webhooks,
                outbox,
                stream,
            }),
        }
    }

    /// Hook 1: the statements `change` adds to its write (none when nothing listens).
    pub fn statements(&self, change: &Change, backend: DbBackend) -> Vec<Statement> {
        let mut statements = Vec::new();
        let Some(collection) = self.inner.schema.get(&change.collection) else {
            return statements;
        };
        let mut shown: Option<(Doc, Option<Doc>)> = None;
        for webhook in self.inner.webhooks.0.iter().filter(|w| w.wants(change)) {
            // Rendered once per change, hidden fields removed, as it is at this commit.
            let (doc, previous) = shown.get_or_insert_with(|| {
                (
                    collection.without_hidden(change.doc.clone()),
                    change
                        .previous
                        .clone()
                        .map(|previous| collection.without_hidden(previous)),
                )
            });
            let delivery = NewDelivery {
                kind: Kind::Webhook,
                target: webhook.url.clone(),
                event: format!("{}.{}", change.collection, change.action.as_str()),
                payload: webhooks::message(change, doc.clone(), previous.clone()),
            };
            statements.push(delivery.insert(backend));
        }
        if self.signup_mail(change) {
            let job = MailJob {
                purpose: "verify".into(),
                collection: change.collection.clone(),
                account: MailAccount::Id(change.id.clone()),
            };
            statements.push(job.delivery().insert(backend));
        }
        statements
    }

    /// Whether a change of `collection` by `action` may add statements, whatever its document:
    /// a delete looks for the documents it cascades to only when one of them may.
    pub fn listens(&self, collection: &str, action: Action) -> bool {
        self.inner
            .webhooks
            .0
            .iter()
            .any(|w| w.listens(collection, action))
            || (action == Action::Create && self.verifies(collection))
            || self.inner.stream.receiver_count() > 0
    }

    /// Hook 2: `change` has committed.
    pub fn committed(&self, change: Change) {
        let wrote = self
            .inner
            .webhooks
            .0
            .iter()
            .any(|w| w.listens(&change.collection, change.action))
            || self.signup_mail(&change);
        if self.inner.stream.receiver_count() > 0 {
            let _ = self.inner.stream.send(Arc::new(change));
        }
        if wrote {
            self.inner.outbox.nudge();
        }
    }

    /// Every change from now on, as it commits.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.inner.stream.subscribe()
    }

    /// A new account of a collection that verifies addresses gets its verification mail.
    fn signup_mail(&self, change: &Change) -> bool {
        change.action == Action::Create && self.verifies(&change.collection)
    }

    fn verifies(&self, collection: &str) -> bool {
        self.inner
            .schema
            .get(collection)
            .and_then(|c| c.auth.as_ref())
            .is_some_and(|auth| auth.verify_email)
    }
}
