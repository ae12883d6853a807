//! The body of `POST /api/realtime`, parsed and checked: which topics, with which filters.

use serde_json::Value as Json;

use crate::auth::Principal;
use crate::records::{self, LiveFilter, Records};

/// Most subscriptions one client may hold.
pub const MAX_SUBSCRIPTIONS: usize = 100;

/// A checked `POST /api/realtime` body.
#[derive(Debug)]
pub struct Request {
    pub client_id: String,
    pub subscriptions: Vec<Json>,
    filters: serde_json::Map<String, Json>,
}

/// One topic a client listens to: a collection, or one document of it.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The event name: `posts` or `posts/<id>`.
    pub topic: String,
    pub collection: String,
    pub id: Option<String>,
    pub filter: Option<LiveFilter>,
}

impl Subscription {
    pub fn wants(&self, collection: &str, id: &str) -> bool {
        self.collection == collection && self.id.as_deref().is_none_or(|own| own == id)
    }
}

/// Why a body was refused (a 400, or what `records` said about a topic).
#[derive(Debug)]
pub enum Refusal {
    BadRequest(String),
    Records(records::Error),
}

fn bad(message: impl Into<String>) -> Refusal {
    Refusal::BadRequest(message.into())
}

impl Request {
    /// The body's shape: `clientId` (string), `subscriptions` (strings), optional `filters`
    /// (topic → string); `expand` is refused (not available yet).
    ///
    /// # Errors
    /// A 400 naming the first problem.
    pub fn parse(body: Json) -> Result<Self, Refusal> {
        let Json::Object(mut body) = body else {
            return Err(bad("the body must be a JSON object"));
        };
        let client_id = match body.remove("clientId") {
            Some(Json::String(id)) => id,
            _ => return Err(bad("clientId must be a string")),
        };
        let subscriptions = match body.remove("subscriptions") {
            Some(Json::Array(items)) => items,
            None | Some(Json::Null) => Vec::new(),
            Some(_) => return Err(bad("subscriptions must be a list of topics")),
        };
        let filters = match body.remove("filters") {
            Some(Json::Object(filters)) => filters,
            None | Some(Json::Null) => serde_json::Map::new(),
            Some(_) => return Err(bad("filters must be an object of topic → filter")),
        };
        match body.remove("expand") {
            None | Some(Json::Null) => {}
            Some(Json::Object(map)) if map.is_empty() => {}
            Some(_) => {
                return Err(bad("expand is not available on realtime subscriptions yet"));
            }
        }
        if let Some(key) = body.keys().next() {
            return Err(bad(format!("unknown key \"{key}\"")));
        }
        Ok(Self {
            client_id,
            subscriptions,
            filters,
        })
    }

    /// The subscriptions, each topic's collection known and its filter checked for `principal`
    /// as a list's would be; repeated topics counted once.
    ///
    /// # Errors
    /// 400 for more than [`MAX_SUBSCRIPTIONS`], a malformed or unknown topic, a filter for a
    /// topic not subscribed or that does not check; 403 for an API key without `read`.
    pub fn check(
        mut self,
        records: &Records,
        principal: &Principal,
    ) -> Result<Vec<Subscription>, Refusal> {
        let mut topics: Vec<String> = Vec::new();
        for item in &self.subscriptions {
            let Json::String(topic) = item else {
                return Err(bad("subscriptions must be a list of topics"));
            };
            if !topics.contains(topic) {
                topics.push(topic.clone());
            }
        }
        if topics.len() > MAX_SUBSCRIPTIONS {
            return Err(bad(format!(
                "at most {MAX_SUBSCRIPTIONS} subscriptions per client"
            )));
        }
        if let Some(key) = self.filters.keys().find(|k| !topics.contains(k)) {
            return Err(bad(format!(
                "filters names \"{key}\", which is not a subscription"
            )));
        }
        let mut checked = Vec::with_capacity(topics.len());
        for topic in topics {
            let (collection, id) = match topic.split_once('/') {
                Some((collection, id)) => (collection, Some(id)),
                None => (topic.as_str(), None),
            };
            if collection.is_empty() || id.is_some_and(|id| id.is_empty() || id.contains('/')) {
                return Err(bad(format!(
                    "\"{topic}\" is not a topic (collection or collection/id)"
                )));
            }
            let filter = match self.filters.remove(&topic) {
                None | Some(Json::Null) => None,
                Some(Json::String(filter)) => Some(filter),
                Some(_) => return Err(bad(format!("filters.{topic} must be a string"))),
            };
            let filter = records
                .live_filter(principal, collection, filter.as_deref())
                .map_err(|e| match e {
                    records::Error::NotFound => bad(format!("unknown collection \"{collection}\"")),
                    records::Error::BadRequest(message) => {
                        bad(format!("filters.{topic}: {message}"))
                    }
                    other => Refusal::Records(other),
                })?;
            checked.push(Subscription {
                collection: collection.to_string(),
                id: id.map(str::to_string),
                filter,
                topic,
            });
        }
        Ok(checked)
    }
}
