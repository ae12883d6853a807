//! Realtime (SPEC §12): clients of `GET /api/realtime`, their subscriptions and the credentials
//! bound to them, and the delivery of every committed change to each as its own rules allow.
//!
//! - A client is a bounded queue of frames ([`BUFFER`]) read by its response stream. A client
//!   whose queue is full is dropped (its stream ends), never buffered without bound.
//! - One delivery task reads [`crate::events::Events::subscribe`] in commit order. For each
//!   change, subscribers are grouped by their credentials: the collection `read` rule and the
//!   rendering run once per group, in memory on the committed document; each subscription's
//!   filter is evaluated in memory too. No query per subscriber.
//! - One check task re-authenticates every distinct bound credential each [`CHECK_EVERY`]:
//!   a session that ended (logout, logout-all, revocation, reset), a revoked key or an expired
//!   token removes its clients, which end their streams.

mod topics;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::sync::{broadcast, mpsc};

use crate::accounts::{self, Accounts, Credentials};
use crate::auth::Principal;
use crate::auth::secret::Secret;
use crate::events::Change;
use crate::records::{self, Records};
pub use topics::{MAX_SUBSCRIPTIONS, Refusal, Subscription};

/// Frames a client may have waiting before it is dropped as not reading.
pub const BUFFER: usize = 256;
/// Bytes of event data a client may have waiting (beyond one event) before it is dropped.
pub const BUFFER_BYTES: usize = 1024 * 1024;
/// How often bound credentials are checked: events stop, and streams close, at most this long
/// (plus one authentication per distinct credential) after a session or key ends.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The heartbeat comment's interval.
pub const HEARTBEAT: Duration = Duration::from_secs(25);

/// One event for one client, shared by every client it goes to.
#[derive(Debug, Clone)]
pub struct Frame {
    pub event: Arc<str>,
    pub data: Arc<str>,
}

/// The realtime hub of one instance.
#[derive(Clone)]
pub struct Realtime {
    inner: Arc<Hub>,
}

struct Hub {
    records: Records,
    accounts: Accounts,
    max_clients: usize,
    clients: Mutex<HashMap<Arc<str>, Client>>,
    started: Once,
    closed: AtomicBool,
}

struct Client {
    sender: mpsc::Sender<Frame>,
    queue: Arc<Queue>,
    binding: Option<Binding>,
    subscriptions: Arc<Vec<Subscription>>,
}

/// What a client's queue holds, shared by the hub (which adds) and its stream (which takes).
#[derive(Default)]
pub struct Queue {
    bytes: AtomicUsize,
    /// Set when the hub removed the client: its stream ends without sending what is queued.
    gone: AtomicBool,
}

impl Queue {
    /// Whether the client was removed (its stream should end now).
    pub fn gone(&self) -> bool {
        self.gone.load(Ordering::SeqCst)
    }

    /// A frame left the queue for the wire.
    pub fn taken(&self, frame: &Frame) {
        self.bytes.fetch_sub(frame.data.len(), Ordering::SeqCst);
    }

    /// Room for `bytes` more (an empty queue always takes one frame).
    fn admit(&self, bytes: usize) -> bool {
        let queued = self.bytes.fetch_add(bytes, Ordering::SeqCst);
        if queued > 0 && queued + bytes > BUFFER_BYTES {
            self.bytes.fetch_sub(bytes, Ordering::SeqCst);
            return false;
        }
        true
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.queue.gone.store(true, Ordering::SeqCst);
    }
}

#[derive(Clone)]
struct Binding {
    credentials: Credentials,
    principal: Principal,
}

/// Why a client could not connect.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// `realtime.max_clients` reached, or the server is stopping.
    Full,
}

/// Why subscriptions were refused.
#[derive(Debug)]
pub enum SubscribeError {
    UnknownClient,
    /// Credentials other than those bound first.
    OtherCredentials,
    Refused(Refusal),
}

/// A connected client: its id and the frames for its stream. Dropping it (the stream ends)
/// removes the client.
pub struct Connection {
    pub id: Arc<str>,
    pub frames: mpsc::Receiver<Frame>,
    pub queue: Arc<Queue>,
    guard: Guard,
}

struct Guard {
    hub: Arc<Hub>,
    id: Arc<str>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.hub.lock().remove(&self.id);
    }
}

impl Connection {
    /// The id, the frames (ending when the client is removed), the queue's state, and a guard
    /// that removes the client when dropped.
    pub fn into_parts(
        self,
    ) -> (
        Arc<str>,
        mpsc::Receiver<Frame>,
        Arc<Queue>,
        impl Send + Sync + 'static,
    ) {
        (self.id, self.frames, self.queue, self.guard)
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Client>> {
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Realtime {
    pub fn new(records: Records, accounts: Accounts, max_clients: usize) -> Self {
        Self {
            inner: Arc::new(Hub {
                records,
                accounts,
                max_clients,
                clients: Mutex::new(HashMap::new()),
                started: Once::new(),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.inner.lock().len()
    }

    /// A new client (the delivery and check tasks start with the first).
    ///
    /// # Errors
    /// [`ConnectError::Full`] at `max_clients`, or once [`Realtime::close`] was called.
    pub fn connect(&self) -> Result<Connection, ConnectError> {
        self.start();
        let (sender, frames) = mpsc::channel(BUFFER);
        let queue = Arc::new(Queue::default());
        let id: Arc<str> = Secret::generate().expose().into();
        {
            let mut clients = self.inner.lock();
            if self.inner.closed.load(Ordering::SeqCst) || clients.len() >= self.inner.max_clients {
                return Err(ConnectError::Full);
            }
            clients.insert(
                id.clone(),
                Client {
                    sender,
                    queue: queue.clone(),
                    binding: None,
                    subscriptions: Arc::new(Vec::new()),
                },
            );
        }
        Ok(Connection {
            id: id.clone(),
            frames,
            queue,
            guard: Guard {
                hub: self.inner.clone(),
                id,
            },
        })
    }

    /// Sets a client's subscriptions from a `POST /api/realtime` body, binding `credentials`
    /// (proving `principal`) to it on its first call.
    ///
    /// # Errors
    /// Unknown client, other credentials than the bound ones, a body refused.
    pub fn subscribe(
        &self,
        credentials: Credentials,
        principal: Principal,
        body: Json,
    ) -> Result<(), SubscribeError> {
        let request = topics::Request::parse(body).map_err(SubscribeError::Refused)?;
        let id: &str = &request.client_id;
        let bound = {
            let clients = self.inner.lock();
            let client = clients.get(id).ok_or(SubscribeError::UnknownClient)?;
            client.binding.clone()
        };
        if let Some(bound) = &bound
            && !same_caller(bound, &credentials, &principal)
        {
            return Err(SubscribeError::OtherCredentials);
        }
        let client_id = request.client_id.clone();
        let subscriptions = request
            .check(&self.inner.records, &principal)
            .map_err(SubscribeError::Refused)?;
        let mut clients = self.inner.lock();
        let client = clients
            .get_mut(client_id.as_str())
            .ok_or(SubscribeError::UnknownClient)?;
        if let Some(bound) = &client.binding
            && !same_caller(bound, &credentials, &principal)
        {
            return Err(SubscribeError::OtherCredentials);
        }
        client.binding = Some(Binding {
            credentials,
            principal,
        });
        client.subscriptions = Arc::new(subscriptions);
        Ok(())
    }

    /// Ends every stream and refuses new clients (the server is stopping).
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.lock().clear();
    }

    fn start(&self) {
        self.inner.started.call_once(|| {
            let changes = self.inner.records.events().subscribe();
            tokio::spawn(deliver(Arc::downgrade(&self.inner), changes));
            tokio::spawn(check(Arc::downgrade(&self.inner)));
        });
    }
}

/// Whether a later call comes from the caller bound first: the same credentials, or another
/// token of the same session (a refreshed access token).
fn same_caller(bound: &Binding, credentials: &Credentials, principal: &Principal) -> bool {
    if bound.credentials == *credentials {
        return true;
    }
    match (bound.principal.user(), principal.user()) {
        (Some(old), Some(new)) => {
            old.session_id.is_some()
                && old.session_id == new.session_id
                && old.collection == new.collection
                && old.id == new.id
        }
        _ => false,
    }
}

/// One subscriber of a change: where to send, as whom, which topics matched.
struct Target {
    id: Arc<str>,
    sender: mpsc::Sender<Frame>,
    queue: Arc<Queue>,
    binding: Binding,
    subscriptions: Arc<Vec<Subscription>>,
}

/// The delivery task: every committed change, in order, to every client that may see it.
async fn deliver(hub: std::sync::Weak<Hub>, mut changes: broadcast::Receiver<Arc<Change>>) {
    loop {
        let change = match changes.recv().await {
            Ok(change) => change,
            Err(broadcast::error::RecvError::Closed) => return,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                // Events were lost for everyone: end every stream rather than go on with gaps
                // (EventSource reconnects and subscribes again).
                tracing::warn!(
                    missed,
                    "realtime fell behind the writes: closing every stream"
                );
                if let Some(hub) = hub.upgrade() {
                    hub.lock().clear();
                }
                continue;
            }
        };
        let Some(hub) = hub.upgrade() else { return };
        let dropped = fan_out(&hub, &change);
        if !dropped.is_empty() {
            let mut clients = hub.lock();
            for id in &dropped {
                clients.remove(id);
            }
            tracing::info!(
                clients = dropped.len(),
                "realtime clients dropped: not reading their stream"
            );
        }
    }
}

/// Sends `change` to its subscribers; returns the clients whose buffer was full.
fn fan_out(hub: &Hub, change: &Change) -> Vec<Arc<str>> {
    let targets: Vec<Target> = {
        let clients = hub.lock();
        clients
            .iter()
            .filter_map(|(id, client)| {
                let binding = client.binding.as_ref()?;
                client
                    .subscriptions
                    .iter()
                    .any(|s| s.wants(&change.collection, &change.id))
                    .then(|| Target {
                        id: id.clone(),
                        sender: client.sender.clone(),
                        queue: client.queue.clone(),
                        binding: binding.clone(),
                        subscriptions: client.subscriptions.clone(),
                    })
            })
            .collect()
    };
    // Per group of clients with the same credentials: the viewer, and the rendered record.
    let mut groups: HashMap<&Credentials, (records::Viewer, Option<Arc<str>>)> = HashMap::new();
    let mut dropped = Vec::new();
    for target in &targets {
        let (viewer, data) = groups
            .entry(&target.binding.credentials)
            .or_insert_with(|| {
                let viewer = hub.records.viewer(&target.binding.principal);
                let data = hub.records.live_view(&viewer, change).map(|record| {
                    Arc::from(
                        json!({"action": change.action.as_str(), "record": record}).to_string(),
                    )
                });
                (viewer, data)
            });
        let Some(data) = data else { continue };
        for subscription in target
            .subscriptions
            .iter()
            .filter(|s| s.wants(&change.collection, &change.id))
        {
            if subscription
                .filter
                .as_ref()
                .is_some_and(|filter| !hub.records.live_allows(viewer, change, filter))
            {
                continue;
            }
            let frame = Frame {
                event: subscription.topic.as_str().into(),
                data: data.clone(),
            };
            if !target.queue.admit(frame.data.len()) {
                dropped.push(target.id.clone());
                break;
            }
            match target.sender.try_send(frame) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    dropped.push(target.id.clone());
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => break,
            }
        }
    }
    dropped
}

/// The check task: every bound credential authenticated again each [`CHECK_EVERY`]; the
/// clients of one that no longer proves anyone are removed, the others see its account as
/// it is now.
async fn check(hub: std::sync::Weak<Hub>) {
    let mut every = tokio::time::interval(CHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(strong) = hub.upgrade() else { return };
        let accounts = strong.accounts.clone();
        let bound: Vec<Credentials> = {
            let clients = strong.lock();
            let mut bound: Vec<Credentials> = clients
                .values()
                .filter_map(|c| c.binding.as_ref())
                .map(|b| b.credentials.clone())
                .filter(|c| *c != Credentials::None)
                .collect();
            bound.sort_by_key(|c| format!("{c:?}"));
            bound.dedup();
            bound
        };
        drop(strong);
        for credentials in bound {
            let outcome = accounts.authenticate(&credentials).await;
            let Some(strong) = hub.upgrade() else { return };
            let mut clients = strong.lock();
            match outcome {
                Ok(principal) => {
                    for client in clients.values_mut() {
                        if let Some(binding) = client.binding.as_mut()
                            && binding.credentials == credentials
                        {
                            binding.principal = principal.clone();
                        }
                    }
                }
                Err(accounts::Error::Unauthorized | accounts::Error::TokenExpired) => {
                    clients.retain(|_, client| {
                        client
                            .binding
                            .as_ref()
                            .is_none_or(|b| b.credentials != credentials)
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "checking a realtime client's credentials failed");
                }
            }
        }
    }
}
