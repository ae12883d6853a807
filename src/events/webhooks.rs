//! The configured webhooks, compiled once: each one's event patterns and its `filter` compiled
//! against every collection its patterns name (a §6 expression over the document, fields by
//! name or `doc.<field>`, hidden fields refused as in a list filter), and the message a matching
//! change is posted as.

use std::collections::HashMap;

use serde_json::{Map, Value as Json};

use super::Change;
use crate::config::{Diagnostic, Diagnostics, WebhookConfig};
use crate::rules::{Env, Mode, Rule};
use crate::schema::{Action, Schema, format_time};

/// One webhook, ready to match changes.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    patterns: Vec<crate::config::EventPattern>,
    /// The compiled filter per collection slug; empty when the webhook has none.
    filters: HashMap<String, Rule>,
}

impl Webhook {
    /// Whether a change of `collection` by `action` may interest this webhook (its filter not
    /// yet asked).
    pub fn listens(&self, collection: &str, action: Action) -> bool {
        self.patterns.iter().any(|p| p.matches(collection, action))
    }

    /// Whether `change` is delivered to this webhook: a pattern names it and the filter holds
    /// for the document (a delete: as it was).
    pub fn wants(&self, change: &Change) -> bool {
        if !self.listens(&change.collection, change.action) {
            return false;
        }
        match self.filters.get(&change.collection) {
            None => true,
            Some(filter) => filter.eval(&Env {
                user: None,
                now: crate::schema::now(),
                doc: Some(&change.doc),
                data: None,
                guards: None,
                lookup: None,
            }),
        }
    }
}

/// Every configured webhook.
#[derive(Debug, Clone, Default)]
pub struct Webhooks(pub Vec<Webhook>);

impl Webhooks {
    /// Compiles the filters of `configs` against `schema`.
    ///
    /// # Errors
    /// Every filter problem, located by key path and column, saying for which collection.
    pub fn compile(
        configs: &[WebhookConfig],
        schema: &Schema,
        file: &std::path::Path,
    ) -> Result<Self, Diagnostics> {
        let mut diags = Diagnostics::default();
        let mut webhooks = Vec::new();
        for config in configs {
            let mut filters = HashMap::new();
            if let Some(source) = &config.filter {
                let mut slugs: Vec<&str> = config
                    .events
                    .iter()
                    .map(|p| p.collection.as_str())
                    .collect();
                slugs.sort_unstable();
                slugs.dedup();
                for slug in slugs {
                    let Some(collection) = schema.get(slug) else {
                        continue; // reported by the config already
                    };
                    let any = |_: &crate::schema::Collection, _: &crate::schema::Field| true;
                    match Rule::compile(&source.source, Mode::Filter, schema, collection, &any) {
                        // Evaluated in memory on the committed document alone: a path through a
                        // relation would need the related documents and the rules guarding them.
                        Ok(rule) if rule.crosses_relations() => {
                            diags.push(Diagnostic::new(
                                file,
                                &source.path,
                                format!(
                                    "a webhook filter cannot follow a relation (in `{slug}`): \
                                     name the document's own fields"
                                ),
                            ));
                        }
                        Ok(rule) => {
                            filters.insert(slug.to_string(), rule);
                        }
                        Err(errors) => {
                            for error in errors {
                                let mut diagnostic = Diagnostic::new(
                                    file,
                                    &source.path,
                                    format!("{} (in `{slug}`)", error.message),
                                );
                                diagnostic.snippet = Some((source.source.clone(), error.column));
                                diags.push(diagnostic);
                            }
                        }
                    }
                }
            }
            webhooks.push(Webhook {
                url: config.url.clone(),
                patterns: config.events.clone(),
                filters,
            });
        }
        diags.finish(Webhooks(webhooks))
    }
}

/// The body posted for `change`: `{type, timestamp, data: {doc, previous}}`, with the documents
/// as given (hidden fields already removed); `previous` on updates and deletes only.
pub fn message(
    change: &Change,
    doc: Map<String, Json>,
    previous: Option<Map<String, Json>>,
) -> String {
    let mut data = Map::new();
    data.insert("doc".into(), Json::Object(doc));
    if let Some(previous) = previous {
        data.insert("previous".into(), Json::Object(previous));
    }
    let mut body = Map::new();
    body.insert(
        "type".into(),
        Json::String(format!("{}.{}", change.collection, change.action.as_str())),
    );
    body.insert(
        "timestamp".into(),
        Json::String(format_time(&crate::schema::now())),
    );
    body.insert("data".into(), Json::Object(data));
    Json::Object(body).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(webhooks: &str) -> Result<Webhooks, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lucent.toml");
        std::fs::write(
            &path,
            format!(
                "{webhooks}[collections.users]\nauth = true\n[collections.posts.fields]\ntitle = {{ type = \"string\" }}\nstatus = {{ type = \"select\", options = [\"draft\", \"published\"] }}\nsecret = {{ type = \"string\", hidden = true }}\nauthor = {{ type = \"relation\", to = \"users\" }}\n"
            ),
        )
        .unwrap();
        let config = crate::config::load_with_env(&path, &|_| None).unwrap();
        Webhooks::compile(&config.webhooks, &config.schema, &path).map_err(|diags| {
            diags
                .0
                .iter()
                .map(|d| {
                    let column = d.snippet.as_ref().map_or(0, |(_, c)| *c);
                    format!("{}: {} @ {column}", d.path, d.message)
                })
                .collect()
        })
    }

    fn hook(events: &str, filter: &str) -> String {
        format!(
            "[[webhooks]]\nurl = \"http://127.0.0.1:9/h\"\nevents = {events}\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n{filter}\n"
        )
    }

    fn change(collection: &str, action: Action, doc: Json) -> Change {
        let Json::Object(doc) = doc else { panic!() };
        Change {
            collection: collection.into(),
            action,
            id: "1".into(),
            previous: (action != Action::Create).then(|| doc.clone()),
            doc,
        }
    }

    #[test]
    fn patterns_and_filters_choose_changes() {
        let config = hook(
            "[\"posts.create\", \"posts.delete\"]",
            "filter = \"doc.status == 'published'\"",
        ) + &hook("[\"users.*\"]", "filter = \"id == 'u1'\"").replace("9/h", "9/u");
        let webhooks = compile(&config)
            .map(|w| w.0)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let published = serde_json::json!({"id": "p1", "status": "published"});
        let draft = serde_json::json!({"id": "p2", "status": "draft"});
        // (change, wanted by the posts webhook, by the users webhook)
        let cases = [
            (
                change("posts", Action::Create, published.clone()),
                true,
                false,
            ),
            (change("posts", Action::Create, draft.clone()), false, false),
            // update is not listed
            (
                change("posts", Action::Update, published.clone()),
                false,
                false,
            ),
            (change("posts", Action::Delete, published), true, false),
            (change("posts", Action::Delete, draft), false, false),
            (
                change("users", Action::Update, serde_json::json!({"id": "u1"})),
                false,
                true,
            ),
            (
                change("users", Action::Delete, serde_json::json!({"id": "u2"})),
                false,
                false,
            ),
            (
                change("notes", Action::Create, serde_json::json!({"id": "n"})),
                false,
                false,
            ),
        ];
        for (change, posts, users) in cases {
            assert_eq!(webhooks[0].wants(&change), posts, "{change:?}");
            assert_eq!(webhooks[1].wants(&change), users, "{change:?}");
        }
    }

    #[test]
    fn filter_errors_are_located_per_collection() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("[\"posts.*\"]", "filter = \"title == 'x'\"", &[]),
            (
                "[\"posts.*\", \"users.create\"]",
                "filter = \"title == 'x'\"",
                &["webhooks[0].filter: unknown field \"title\" (in `users`) @ 1"],
            ),
            (
                "[\"posts.*\"]",
                "filter = \"secret == 'x'\"",
                &["webhooks[0].filter: unknown field \"secret\" (in `posts`) @ 1"],
            ),
            (
                "[\"posts.*\"]",
                "filter = \"user.id == 'x'\"",
                &["webhooks[0].filter: `user` is not available in filters (in `posts`) @ 1"],
            ),
            (
                "[\"posts.*\"]",
                "filter = \"status ==\"",
                &[
                    "webhooks[0].filter: expected a value, found the end of the expression (in `posts`) @ 10",
                ],
            ),
            // Paths through relations are refused (the filter sees one document, no query).
            (
                "[\"posts.*\"]",
                "filter = \"author.email == 'x'\"",
                &["webhooks[0].filter: "],
            ),
        ];
        for (events, filter, expected) in cases {
            let got = compile(&hook(events, filter)).err().unwrap_or_default();
            assert_eq!(got.len(), expected.len(), "{filter}: {got:?}");
            for (got, want) in got.iter().zip(*expected) {
                assert!(got.starts_with(want), "{filter}: {got} (wanted {want})");
            }
        }
    }
}
