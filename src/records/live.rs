//! Committed changes as one caller may see them (realtime, SPEC §12): the collection `read` rule
//! and a subscription's filter evaluated in memory on the committed document, then the one
//! rendering ([`Records::shown`]) — no query per subscriber.

use super::{Records, Result};
use crate::access::Caller;
use crate::auth::Principal;
use crate::events::Change;
use crate::rules::Rule;
use crate::schema::{Action, Doc};

/// A subscription's filter, checked for the caller who subscribed (as a list's `filter`).
#[derive(Debug, Clone)]
pub struct LiveFilter(Rule);

/// One caller, prepared once per change for every subscriber who shares its credentials.
pub struct Viewer(Caller);

impl Records {
    /// Checks that `principal` may subscribe to `slug` with `filter`.
    ///
    /// # Errors
    /// `NotFound` for an unknown collection, `Forbidden` (missing scope) for an API key without
    /// `read`, `BadRequest` for a filter a list would refuse this caller.
    pub fn live_filter(
        &self,
        principal: &Principal,
        slug: &str,
        filter: Option<&str>,
    ) -> Result<Option<LiveFilter>> {
        let (collection, _, policy) = self.collection(slug)?;
        let _ = policy;
        let caller = Caller::new(principal, &self.policies);
        caller.require_scope("read")?;
        let Some(filter) = filter.filter(|f| !f.trim().is_empty()) else {
            return Ok(None);
        };
        Ok(Some(LiveFilter(
            self.compile_filter(collection, &caller, filter)?,
        )))
    }

    /// `principal` as it decides on changes now.
    pub fn viewer(&self, principal: &Principal) -> Viewer {
        Viewer(Caller::new(principal, &self.policies))
    }

    /// `change` as `viewer` may see it, or `None`: the collection `read` rule (for a delete, on
    /// the document as it was), then hidden fields and field `read` rules removed.
    pub fn live_view(&self, viewer: &Viewer, change: &Change) -> Option<Doc> {
        let (collection, _, policy) = self.collection(&change.collection).ok()?;
        let caller = &viewer.0;
        if caller.require_scope("read").is_err() {
            return None;
        }
        let doc = stored(change);
        if !caller.allows(&policy.read, Some(doc), None) {
            return None;
        }
        Some(self.shown(collection, policy, caller, doc.clone()))
    }

    /// Whether a subscription's `filter` holds on `change` for `viewer` (in memory).
    pub fn live_allows(&self, viewer: &Viewer, change: &Change, filter: &LiveFilter) -> bool {
        viewer.0.allows(&filter.0, Some(stored(change)), None)
    }
}

/// The document a change is judged on: as written, or as it was before a delete.
fn stored(change: &Change) -> &Doc {
    match change.action {
        Action::Delete => change.previous.as_ref().unwrap_or(&change.doc),
        Action::Create | Action::Update => &change.doc,
    }
}
