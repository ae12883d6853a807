//! `[[webhooks]]` checked into [`WebhookConfig`]s: the URL, the event patterns (against the
//! collections of the schema), the secret decoded from `whsec_<base64>`. The `filter` is kept as
//! written with its key path; `events` compiles it against the collections' fields, like the
//! access rules are compiled by `access`.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use super::decode::{Decoded, decode};
use super::raw::RawWebhook;
use super::{Diagnostic, Diagnostics};
use crate::schema::{Action, PredicateSource, Schema};

/// What `whsec_` secrets must decode to, in bytes (Standard Webhooks asks for 24 to 64 random
/// bytes).
pub const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// One receiver of committed writes.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `http://` or `https://`; also what names the webhook in the outbox (unique).
    pub url: String,
    pub events: Vec<EventPattern>,
    /// A §6 expression over the document, as written, with its key path.
    pub filter: Option<PredicateSource>,
    pub secret: WebhookSecret,
    /// `webhooks[<index>]`, for diagnostics.
    pub path: String,
}

/// `posts.create` or `posts.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPattern {
    pub collection: String,
    /// `None`: every action (`*`).
    pub action: Option<Action>,
}

impl EventPattern {
    /// Parses `collection.action` or `collection.*`.
    ///
    /// # Errors
    /// What is wrong with the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (collection, action) = text.rsplit_once('.').ok_or_else(|| {
            format!("`{text}` is not an event: write `collection.action` (create, update, delete) or `collection.*`")
        })?;
        let action = match action {
            "*" => None,
            name => Some(
                Action::ALL
                    .into_iter()
                    .find(|a| a.as_str() == name)
                    .ok_or_else(|| {
                        format!(
                            "unknown action `{name}` in `{text}` (expected create, update, delete or *)"
                        )
                    })?,
            ),
        };
        Ok(Self {
            collection: collection.to_string(),
            action,
        })
    }

    pub fn matches(&self, collection: &str, action: Action) -> bool {
        self.collection == collection && self.action.is_none_or(|a| a == action)
    }
}

/// The HMAC key a `whsec_` secret holds. Never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// Decodes `whsec_<base64>` (padded or not).
    ///
    /// # Errors
    /// What is wrong, never quoting the secret.
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or("must start with `whsec_` (a Standard Webhooks secret: whsec_<base64>)")?;
        let key = STANDARD
            .decode(encoded)
            .or_else(|_| STANDARD_NO_PAD.decode(encoded))
            .map_err(|_| "the part after `whsec_` is not base64")?;
        if !SECRET_BYTES.contains(&key.len()) {
            return Err(format!(
                "decodes to {} bytes; a secret must hold {} to {} random bytes",
                key.len(),
                SECRET_BYTES.start(),
                SECRET_BYTES.end()
            ));
        }
        Ok(Self(key))
    }

    pub fn key(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Checks each `[[webhooks]]` table. `complete` is false when some collection could not be
/// read, so a pattern naming an unknown collection may name one of those.
pub(super) fn build_webhooks(
    tables: Vec<toml::Value>,
    schema: &Schema,
    complete: bool,
    file: &Path,
    diags: &mut Diagnostics,
) -> Vec<WebhookConfig> {
    let mut webhooks = Vec::new();
    let mut urls: HashMap<String, String> = HashMap::new();
    for (index, table) in tables.into_iter().enumerate() {
        let path = format!("webhooks[{index}]");
        let Decoded { value, .. } = decode::<RawWebhook>(table, file, &path, diags);
        let Some(raw) = value else {
            continue;
        };
        let mut fail = |key: &str, message: String| {
            diags.push(Diagnostic::new(file, format!("{path}.{key}"), message));
        };
        let mut ok = true;
        let url = raw.url.trim().to_string();
        match url::Url::parse(&url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {}
            _ => {
                fail("url", format!("`{url}` is not an http:// or https:// URL"));
                ok = false;
            }
        }
        if let Some(first) = urls.insert(url.clone(), path.clone()) {
            fail(
                "url",
                format!(
                    "the same url as {first}: list every event of one receiver in one entry (the url names the webhook)"
                ),
            );
            ok = false;
        }
        if raw.events.is_empty() {
            fail(
                "events",
                "needs at least one event, e.g. \"posts.*\"".into(),
            );
            ok = false;
        }
        let mut events = Vec::new();
        for (i, text) in raw.events.iter().enumerate() {
            match EventPattern::parse(text) {
                Ok(pattern) if schema.get(&pattern.collection).is_some() || !complete => {
                    events.push(pattern);
                }
                Ok(pattern) => {
                    fail(
                        &format!("events[{i}]"),
                        format!("unknown collection `{}`", pattern.collection),
                    );
                    ok = false;
                }
                Err(message) => {
                    fail(&format!("events[{i}]"), message);
                    ok = false;
                }
            }
        }
        let secret = match WebhookSecret::parse(&raw.secret) {
            Ok(secret) => Some(secret),
            Err(message) => {
                fail("secret", message);
                None
            }
        };
        let filter = raw.filter.map(|source| PredicateSource {
            source,
            path: format!("{path}.filter"),
        });
        if let (true, Some(secret)) = (ok, secret) {
            webhooks.push(WebhookConfig {
                url,
                events,
                filter,
                secret,
                path,
            });
        }
    }
    webhooks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_patterns() {
        // (text, the collection and action it names, or part of the error)
        type Case<'a> = (&'a str, Result<(&'a str, Option<Action>), &'a str>);
        let cases: &[Case<'_>] = &[
            ("posts.create", Ok(("posts", Some(Action::Create)))),
            ("posts.delete", Ok(("posts", Some(Action::Delete)))),
            ("posts.*", Ok(("posts", None))),
            ("my-posts.update", Ok(("my-posts", Some(Action::Update)))),
            ("posts", Err("is not an event")),
            ("posts.created", Err("unknown action `created`")),
            ("posts.", Err("unknown action ``")),
        ];
        for (text, expected) in cases {
            match (EventPattern::parse(text), expected) {
                (Ok(pattern), Ok((collection, action))) => {
                    assert_eq!(pattern.collection, *collection, "{text}");
                    assert_eq!(pattern.action, *action, "{text}");
                }
                (Err(message), Err(part)) => assert!(message.contains(part), "{text}: {message}"),
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
        let all = EventPattern::parse("posts.*").unwrap();
        assert!(Action::ALL.iter().all(|a| all.matches("posts", *a)));
        assert!(!all.matches("users", Action::Create));
        let one = EventPattern::parse("posts.update").unwrap();
        assert!(one.matches("posts", Action::Update));
        assert!(!one.matches("posts", Action::Delete));
    }

    #[test]
    fn secrets() {
        let key = [7u8; 32];
        let padded = format!("whsec_{}", STANDARD.encode(key));
        let unpadded = format!("whsec_{}", STANDARD_NO_PAD.encode([7u8; 31]));
        assert_eq!(WebhookSecret::parse(&padded).unwrap().key(), key);
        assert_eq!(WebhookSecret::parse(&unpadded).unwrap().key(), [7u8; 31]);
        for (bad, part) in [
            (STANDARD.encode(key), "must start with `whsec_`"),
            ("whsec_not base64!".to_string(), "not base64"),
            (format!("whsec_{}", STANDARD.encode([1u8; 8])), "8 bytes"),
            (format!("whsec_{}", STANDARD.encode([1u8; 65])), "65 bytes"),
        ] {
            let message = WebhookSecret::parse(&bad).unwrap_err();
            assert!(message.contains(part), "{bad}: {message}");
            assert!(!message.contains(&bad[6..]), "the secret is never quoted");
        }
        assert_eq!(
            format!("{:?}", WebhookSecret::parse(&padded).unwrap()),
            "WebhookSecret(<redacted>)"
        );
    }
}
