//! Access policies: every collection and field predicate compiled once at startup (with the
//! defaults of SPEC §6 filled in), and the decisions records make with them. Knows the rules and
//! who is calling (`auth::principal`), nothing of records or of how credentials are checked.

#[cfg(test)]
mod config_fuzz;
mod warnings;

use std::sync::Arc;

use chrono::Utc;
use sea_orm::DbBackend;
use serde_json::{Map, Value as Json};

use crate::auth::principal::{AuthUser, Principal, grants};
use crate::config::{Diagnostic, Diagnostics};
use crate::rules::{Env, Guards, Mode, Residual, Resolver, Rule, UserContext};
use crate::schema::{Collection, Field, PredicateSource, Schema};

/// The default of `read`, `update`, `delete`, and of `create` outside auth collections.
const SIGNED_IN: &str = "user != null";

/// The compiled rules of one field.
#[derive(Debug, Clone, Default)]
pub struct FieldPolicy {
    pub read: Option<Rule>,
    pub create: Option<Rule>,
    pub update: Option<Rule>,
}

/// The compiled rules of one collection.
#[derive(Debug, Clone)]
pub struct CollectionPolicy {
    pub read: Rule,
    pub create: Rule,
    pub update: Rule,
    pub delete: Rule,
    /// Which of `read`, `update` and `delete` were left to the default (for the
    /// open-registration warning).
    pub defaulted: Vec<&'static str>,
    /// By field index.
    pub fields: Vec<FieldPolicy>,
}

/// Every collection's policy, by collection index.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    pub collections: Arc<Vec<CollectionPolicy>>,
    /// Warnings for `lucent check` and `serve`.
    pub warnings: Vec<String>,
}

fn compile(
    schema: &Schema,
    collection: &Collection,
    source: Option<&PredicateSource>,
    default: &str,
    diags: &mut Diagnostics,
) -> Option<Rule> {
    let text = source.map_or(default, |s| s.source.as_str());
    match Rule::compile(
        text,
        Mode::Predicate,
        schema,
        collection,
        &|_: &Collection, _: &Field| true,
    ) {
        Ok(rule) => Some(rule),
        Err(errors) => {
            for error in errors {
                let path = source.map_or_else(String::new, |s| s.path.clone());
                let mut diagnostic = Diagnostic::new(&collection.file, path, error.message.clone());
                diagnostic.snippet = Some((text.to_string(), error.column));
                diags.push(diagnostic);
            }
            None
        }
    }
}

impl Policies {
    /// Compiles every predicate of `schema`.
    ///
    /// # Errors
    /// Every predicate that does not parse or check, located by file, key path and column; also
    /// (with only those diagnostics) a schema with [`crate::schema::Gaps`].
    pub fn compile(schema: &Schema) -> Result<Self, Diagnostics> {
        let mut diags = Diagnostics::default();
        let mut collections = Vec::new();
        for collection in &schema.collections {
            let access = &collection.access;
            let create_default = if collection.auth.is_some() {
                "true"
            } else {
                SIGNED_IN
            };
            let mut compile = |source: Option<&PredicateSource>, default: &str| {
                compile(schema, collection, source, default, &mut diags)
            };
            let read = compile(access.read.as_ref(), SIGNED_IN);
            let create = compile(access.create.as_ref(), create_default);
            let update = compile(access.update.as_ref(), SIGNED_IN);
            let delete = compile(access.delete.as_ref(), SIGNED_IN);
            // Field rules run in memory for each document shown or written, where related
            // documents are not at hand: they may not follow relations.
            let mut crossing = Vec::new();
            let mut field_rule = |source: Option<&PredicateSource>| {
                let source = source?;
                let rule = compile(Some(source), "")?;
                if rule.crosses_relations() {
                    crossing.push(source.path.clone());
                    return None;
                }
                Some(rule)
            };
            let fields: Vec<FieldPolicy> = collection
                .fields
                .iter()
                .map(|field| FieldPolicy {
                    read: field_rule(field.access.read.as_ref()),
                    create: field_rule(field.access.create.as_ref()),
                    update: field_rule(field.access.update.as_ref()),
                })
                .collect();
            for path in crossing {
                diags.push(Diagnostic::new(
                    &collection.file,
                    path,
                    "a field rule cannot follow relations (use the collection's rules)",
                ));
            }
            let mut defaulted = Vec::new();
            if access.read.is_none() {
                defaulted.push("read");
            }
            if access.update.is_none() {
                defaulted.push("update");
            }
            if access.delete.is_none() {
                defaulted.push("delete");
            }
            if let (Some(read), Some(create), Some(update), Some(delete)) =
                (read, create, update, delete)
            {
                collections.push(CollectionPolicy {
                    read,
                    create,
                    update,
                    delete,
                    defaulted,
                    fields,
                });
            }
        }
        read_loops(schema, &collections, &mut diags);
        // A schema with gaps comes from a configuration with errors: its rules were checked
        // for what they can tell, never to be served.
        if !diags.is_empty() || !schema.gaps.is_empty() {
            return Err(diags);
        }
        let warnings = warnings::collect(schema, &collections);
        Ok(Self {
            collections: Arc::new(collections),
            warnings,
        })
    }
}

/// `read` rules that follow relations into each other in a loop (`posts` readable when its
/// author is, `users` readable when one of their posts is): a relation path applies the `read`
/// rule of every collection it reaches, so such rules would never finish. One diagnostic per
/// loop, at the `read` rule of its first collection.
fn read_loops(schema: &Schema, policies: &[CollectionPolicy], diags: &mut Diagnostics) {
    if policies.len() != schema.collections.len() {
        return; // some rules did not compile: reported already
    }
    let edges: Vec<Vec<usize>> = policies.iter().map(|p| p.read.reaches()).collect();
    let mut reported: Vec<usize> = Vec::new();
    for start in 0..policies.len() {
        // Depth-first from `start`, looking for a way back to it.
        let mut stack: Vec<(usize, Vec<usize>)> = vec![(start, vec![start])];
        let mut seen = vec![false; policies.len()];
        while let Some((at, trail)) = stack.pop() {
            for &next in &edges[at] {
                if next == start {
                    if trail.iter().any(|c| reported.contains(c)) {
                        continue;
                    }
                    reported.extend(&trail);
                    let names: Vec<&str> = trail
                        .iter()
                        .chain([&start])
                        .map(|&c| schema.collections[c].slug.as_str())
                        .collect();
                    let collection = &schema.collections[start];
                    let path = collection
                        .access
                        .read
                        .as_ref()
                        .map_or_else(String::new, |s| s.path.clone());
                    diags.push(Diagnostic::new(
                        &collection.file,
                        path,
                        format!(
                            "read rules follow relations in a loop ({}): each would need the other to decide",
                            names.join(" → ")
                        ),
                    ));
                } else if !seen[next] {
                    seen[next] = true;
                    let mut longer = trail.clone();
                    longer.push(next);
                    stack.push((next, longer));
                }
            }
        }
    }
}

/// The `user` a principal shows to predicates.
pub fn user_context(user: &AuthUser) -> UserContext {
    UserContext {
        id: user.id.clone(),
        collection: user.collection.clone(),
        fields: user.doc.clone(),
        scopes: user.scopes.clone(),
    }
}

/// An API key lacks the scope an operation needs (a 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the API key lacks the `{0}` scope")]
pub struct MissingScope(pub String);

/// One request's view for predicates: who, and when, and the rules of every collection (for the
/// documents a relation path reaches).
pub struct Caller {
    user: Option<UserContext>,
    /// API-key scopes, enforced before any predicate; `None` for sessions.
    key_scopes: Option<Vec<String>>,
    /// Lucent itself: predicates do not apply.
    system: bool,
    pub now: chrono::DateTime<Utc>,
    policies: Arc<Vec<CollectionPolicy>>,
    /// The rule that holds for nothing.
    never: Rule,
}

impl Caller {
    pub fn new(principal: &Principal, policies: &Policies) -> Self {
        Self {
            user: principal.user().map(user_context),
            key_scopes: principal.key_scopes().map(<[String]>::to_vec),
            system: matches!(principal, Principal::System),
            now: crate::schema::now(),
            policies: policies.collections.clone(),
            never: Rule::never(),
        }
    }

    /// An API key must carry `scope` (or `admin`) for the operation: reads need `read`,
    /// writes `write`.
    ///
    /// # Errors
    /// [`MissingScope`] naming it.
    pub fn require_scope(&self, scope: &str) -> Result<(), MissingScope> {
        if grants(self.key_scopes.as_deref(), scope) {
            Ok(())
        } else {
            Err(MissingScope(scope.to_string()))
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.user.is_none() && !self.system
    }

    pub fn env<'a>(
        &'a self,
        doc: Option<&'a Map<String, Json>>,
        data: Option<&'a Map<String, Json>>,
    ) -> Env<'a> {
        Env {
            user: self.user.as_ref(),
            now: self.now,
            doc,
            data,
            guards: Some(self),
            lookup: None,
        }
    }

    /// A rule in memory; Lucent itself passes every rule.
    pub fn allows(
        &self,
        rule: &Rule,
        doc: Option<&Map<String, Json>>,
        data: Option<&Map<String, Json>>,
    ) -> bool {
        self.system || rule.eval(&self.env(doc, data))
    }

    /// A rule as a condition on the table.
    pub fn condition(&self, rule: &Rule, backend: DbBackend) -> Residual {
        self.condition_with(rule, None, backend)
    }

    /// A rule as a condition on the table, with an incoming body as `data`.
    pub fn condition_with(
        &self,
        rule: &Rule,
        data: Option<&Map<String, Json>>,
        backend: DbBackend,
    ) -> Residual {
        if self.system {
            Residual::True
        } else {
            rule.to_condition(&self.env(None, data), backend)
        }
    }

    /// Whether a field may be read whatever the document (usable in filter, sort, select).
    pub fn can_always_read(&self, policy: &FieldPolicy, backend: DbBackend) -> bool {
        match &policy.read {
            None => true,
            Some(rule) => matches!(self.condition(rule, backend), Residual::True),
        }
    }

    /// The fields of any collection of `schema` this caller may name in a filter (its relation
    /// paths included): not hidden, and readable whatever the document.
    pub fn names<'a>(&'a self, schema: &'a Schema, backend: DbBackend) -> impl Resolver + 'a {
        move |collection: &Collection, field: &Field| {
            let policy = schema.index_of(&collection.slug).and_then(|c| {
                let f = collection
                    .fields
                    .iter()
                    .position(|f| f.name == field.name)?;
                self.policies.get(c)?.fields.get(f)
            });
            !field.hidden && policy.is_some_and(|policy| self.can_always_read(policy, backend))
        }
    }
}

/// The rules a relation path applies to the documents it reaches, for this caller: none for
/// Lucent itself.
impl Guards for Caller {
    fn read(&self, collection: usize) -> Option<&Rule> {
        if self.system {
            return None;
        }
        // Policies are compiled one per collection of the schema the rules were checked
        // against; a missing one could only be a bug, and then nothing is readable.
        Some(
            self.policies
                .get(collection)
                .map_or(&self.never, |policy| &policy.read),
        )
    }

    fn field_read(&self, collection: usize, field: usize) -> Option<&Rule> {
        if self.system {
            return None;
        }
        match self.policies.get(collection) {
            Some(policy) => policy
                .fields
                .get(field)
                .map_or(Some(&self.never), |f| f.read.as_ref()),
            None => Some(&self.never),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    /// The config's policies (or its diagnostics, as `path: message @ column`).
    fn compile(collections: &str) -> (crate::config::Config, Result<Policies, Vec<String>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lucent.toml");
        std::fs::write(&path, collections).unwrap();
        let (config, diags) = crate::config::load_partial(&path, &|_| None);
        assert!(diags.is_empty(), "{diags}");
        let policies = Policies::compile(&config.schema).map_err(|diags| {
            diags
                .0
                .iter()
                .map(|d| {
                    let column = d.snippet.as_ref().map_or(0, |(_, column)| *column);
                    format!("{}: {} @ {column}", d.path, d.message)
                })
                .collect()
        });
        (config, policies)
    }

    /// Whether anonymous callers, and a signed-in account, may read, create, update and delete
    /// (rules that look at no document).
    fn decisions(policy: &CollectionPolicy) -> [[bool; 4]; 2] {
        let user = UserContext {
            id: "u1".into(),
            collection: "users".into(),
            fields: Map::new(),
            scopes: None,
        };
        let data = Map::new();
        [None, Some(&user)].map(|user| {
            let env = Env {
                user,
                now: Utc::now(),
                doc: None,
                data: Some(&data),
                guards: None,
                lookup: None,
            };
            [&policy.read, &policy.create, &policy.update, &policy.delete].map(|r| r.eval(&env))
        })
    }

    const NOTES: &str = "[collections.notes.fields]\ntext = { type = \"string\" }\n";
    const USERS: &str = "[collections.users]\nauth = true\n";

    #[test]
    fn compile_table() {
        const NONE: [bool; 4] = [false; 4];
        const ALL: [bool; 4] = [true; 4];
        // (config, collection, [anonymous, signed in] × [read, create, update, delete],
        //  operations left to the default, warnings)
        type Case = (
            String,
            &'static str,
            [[bool; 4]; 2],
            &'static [&'static str],
            usize,
        );
        let cases: Vec<Case> = vec![
            // Every operation defaults to "signed in".
            (
                NOTES.into(),
                "notes",
                [NONE, ALL],
                &["read", "update", "delete"],
                0,
            ),
            // Auth collections let anyone sign up; open sign-up warns about the defaults left.
            (
                USERS.into(),
                "users",
                [[false, true, false, false], ALL],
                &["read", "update", "delete"],
                2,
            ),
            (
                format!("{USERS}[collections.users.access]\ncreate = \"user != null\"\n"),
                "users",
                [NONE, ALL],
                &["read", "update", "delete"],
                0,
            ),
            (
                format!(
                    "{USERS}{NOTES}[collections.notes.access]\nread = \"true\"\ndelete = \"false\"\n"
                ),
                "notes",
                [[true, false, false, false], [true, true, true, false]],
                &["update"],
                3,
            ),
            (
                format!(
                    "{USERS}[collections.users.access]\nread = \"user.collection == 'users'\"\nupdate = \"user.collection == 'users'\"\ndelete = \"false\"\n"
                ),
                "users",
                [[false, true, false, false], [true, true, true, false]],
                &[],
                0,
            ),
        ];
        for (config, slug, expected, defaulted, warnings) in cases {
            let (config_loaded, policies) = compile(&config);
            let policies = policies.unwrap_or_else(|e| panic!("{e:?}\n{config}"));
            let index = config_loaded.schema.index_of(slug).unwrap();
            let policy = &policies.collections[index];
            assert_eq!(decisions(policy), expected, "{config}");
            assert_eq!(policy.defaulted, defaulted, "{config}");
            assert_eq!(
                policies.warnings.len(),
                warnings,
                "{config}\n{:?}",
                policies.warnings
            );
            assert_eq!(
                policy.fields.len(),
                config_loaded.schema.collections[index].fields.len()
            );
        }
    }

    #[test]
    fn compile_errors_are_located() {
        let cases: &[(&str, &[&str])] = &[
            (
                "[collections.notes.access]\nread = \"doc.titel == 'x'\"\n",
                &["collections.notes.access.read: unknown field \"titel\" @ 5"],
            ),
            (
                "[collections.notes.fields]\ntext = { type = \"string\", access = { read = \"user.nope == 1\" } }\n[collections.notes.access]\nupdate = \"true &&\"\n",
                &[
                    "collections.notes.access.update: expected a value, found the end of the expression @ 8",
                    "collections.notes.fields.text.access.read: unknown field \"nope\" @ 6",
                ],
            ),
            (
                "[collections.users]\nauth = true\n[collections.users.access]\nread = \"doc.posts_via_author.title == 'x'\"\n[collections.posts.fields]\nauthor = { type = \"relation\", to = \"users\" }\ntitle = { type = \"string\", access = { read = \"doc.author.verified\" } }\n[collections.posts.access]\nread = \"doc.author.verified\"\n",
                &[
                    "collections.posts.fields.title.access.read: a field rule cannot follow relations (use the collection's rules) @ 0",
                    "collections.users.access.read: read rules follow relations in a loop (users → posts → users): each would need the other to decide @ 0",
                ],
            ),
            (
                "[collections.posts.fields]\nparent = { type = \"relation\", to = \"posts\" }\n[collections.posts.access]\nread = \"doc.parent == null || doc.parent.parent == null\"\n",
                &[
                    "collections.posts.access.read: read rules follow relations in a loop (posts → posts): each would need the other to decide @ 0",
                ],
            ),
        ];
        for (config, expected) in cases {
            let (_, policies) = compile(config);
            let mut errors = policies.expect_err(config);
            errors.sort();
            assert_eq!(errors, *expected, "{config}");
        }
    }
}
