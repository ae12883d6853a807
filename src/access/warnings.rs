//! Warnings for `lucent check` and `serve`: rules that let in more callers than they seem to.
//!
//! - Open sign-up: while an auth collection lets anonymous visitors register, a `read`,
//!   `update` or `delete` left to the default `user != null` lets in anyone.
//! - Self-set `user` fields: `user.<field>` merges the fields of every auth collection, so a rule
//!   such as `user.role == 'admin'` passes any account that could set its own `role`, in any
//!   auth collection. Which fields accounts can set themselves is found by a fixpoint over the
//!   create and update rules (collection and field), evaluated for suspects of whom only the
//!   fields they cannot set are known (see [`Rule::may_hold`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use serde_json::{Map, Value as Json};

use super::CollectionPolicy;
use crate::rules::{Env, Rule, Suspect};
use crate::schema::{Collection, Field, FieldRole, Schema};

/// Every warning about `schema`'s compiled rules (`policies`, by collection index).
pub(super) fn collect(schema: &Schema, policies: &[CollectionPolicy]) -> Vec<String> {
    let mut warnings = open_signup(schema, policies);
    warnings.extend(self_set_reads(schema, policies));
    warnings
}

fn open_signup(schema: &Schema, policies: &[CollectionPolicy]) -> Vec<String> {
    let anonymous = Env {
        user: None,
        now: Utc::now(),
        doc: None,
        data: Some(&Map::new()),
        guards: None,
        lookup: None,
    };
    let open: Vec<&str> = schema
        .collections
        .iter()
        .zip(policies)
        .filter(|(c, p)| c.auth.is_some() && p.create.eval(&anonymous))
        .map(|(c, _)| c.slug.as_str())
        .collect();
    if open.is_empty() {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    for (collection, policy) in schema.collections.iter().zip(policies) {
        let prefix = format!(
            "{}: collection `{}` leaves",
            collection.file.display(),
            collection.slug
        );
        let open = open.join(", ");
        if policy.defaulted.contains(&"read") {
            warnings.push(format!(
                "{prefix} read to the default `user != null` while {open} allows anonymous registration, so any visitor can sign up and then read all its documents"
            ));
        }
        let writes: Vec<&str> = policy
            .defaulted
            .iter()
            .copied()
            .filter(|operation| *operation != "read")
            .collect();
        if !writes.is_empty() {
            let operations = words(&writes);
            warnings.push(format!(
                "{prefix} {operations} to the default `user != null` while {open} allows anonymous registration, so any visitor can sign up and then {operations} its documents"
            ));
        }
    }
    warnings
}

/// `a`, `a and b`, `a, b and c`.
fn words<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", init.join(", "), last.as_ref())
        }
    }
}

/// `(auth collection index, field)` pairs whose value an account can choose for itself.
type Settable = BTreeSet<(usize, String)>;

/// Whether a field is one a rule could read as `user.<field>` and an account might set: data
/// fields other than the login field (every account chose its own, by design) and `verified`.
fn candidate(collection: &Collection, field: &Field) -> bool {
    let login = collection.auth.as_ref().map(|a| a.login_field.as_str());
    !field.hidden
        && Some(field.name.as_str()) != login
        && matches!(field.role, FieldRole::Data | FieldRole::Verified)
}

/// What is known of an account of `collection` that its owner controls: the fields it cannot
/// set keep their defaults; the rest (the settable fields, the login field, `verified` where
/// the owner can verify the address, the timestamps) may be anything.
fn known_fields(index: usize, collection: &Collection, settable: &Settable) -> Map<String, Json> {
    let verifies = collection.auth.as_ref().is_some_and(|a| a.verify_email);
    collection
        .fields
        .iter()
        .filter(|field| candidate(collection, field))
        .filter(|field| !settable.contains(&(index, field.name.clone())))
        .filter(|field| !(field.role == FieldRole::Verified && verifies))
        .map(|field| {
            let value = field.default.as_ref().map_or(Json::Null, |v| v.to_json());
            (field.name.clone(), value)
        })
        .collect()
}

/// The least fixpoint: a field is settable when some suspect (anonymous, or an account of any
/// auth collection knowing only what the fields settable so far leave fixed) may pass the
/// collection's `create` or `update` rule together with the field's own rule for it. A
/// `verified` field is writable only through a field rule.
fn settable(schema: &Schema, policies: &[CollectionPolicy]) -> Settable {
    let auth: Vec<usize> = schema
        .collections
        .iter()
        .enumerate()
        .filter(|(_, c)| c.auth.is_some())
        .map(|(i, _)| i)
        .collect();
    let mut settable = Settable::new();
    loop {
        let known: Vec<(usize, Map<String, Json>)> = auth
            .iter()
            .map(|&i| (i, known_fields(i, &schema.collections[i], &settable)))
            .collect();
        let mut suspects = vec![Suspect::Anonymous];
        suspects.extend(known.iter().map(|(i, known)| Suspect::Account {
            collection: &schema.collections[*i].slug,
            known,
        }));
        let mut found = Vec::new();
        for &index in &auth {
            let collection = &schema.collections[index];
            let policy = &policies[index];
            for (field, rules) in collection.fields.iter().zip(&policy.fields) {
                if !candidate(collection, field) || settable.contains(&(index, field.name.clone()))
                {
                    continue;
                }
                let own_rule = |rule: &Option<Rule>, suspect: &Suspect<'_>| match rule {
                    Some(rule) => rule.may_hold(suspect),
                    None => field.role == FieldRole::Data,
                };
                let can = suspects.iter().any(|suspect| {
                    (policy.create.may_hold(suspect) && own_rule(&rules.create, suspect))
                        || (policy.update.may_hold(suspect) && own_rule(&rules.update, suspect))
                });
                if can {
                    found.push((index, field.name.clone()));
                }
            }
        }
        if found.is_empty() {
            return settable;
        }
        settable.extend(found);
    }
}

/// One warning per rule and `user` field it reads that some account can set for itself.
fn self_set_reads(schema: &Schema, policies: &[CollectionPolicy]) -> Vec<String> {
    let settable = settable(schema, policies);
    if settable.is_empty() {
        return Vec::new();
    }
    let auth = |only: &Option<BTreeSet<String>>| {
        schema
            .collections
            .iter()
            .enumerate()
            .filter(|(_, c)| c.auth.is_some())
            .filter(|(_, c)| only.as_ref().is_none_or(|only| only.contains(&c.slug)))
            .map(|(i, _)| i)
            .collect::<Vec<_>>()
    };
    let mut warnings = Vec::new();
    for (collection, policy) in schema.collections.iter().zip(policies) {
        for (path, rule) in written_rules(collection, policy) {
            // By field: the collections whose accounts can set it and reach the read, and those
            // that declare it but cannot.
            let mut reads: BTreeMap<String, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
            for read in rule.user_reads() {
                let entry = reads.entry(read.field.clone()).or_default();
                for index in auth(&read.only) {
                    let declaring = &schema.collections[index];
                    if declaring.field(&read.field).is_none() {
                        continue;
                    }
                    if settable.contains(&(index, read.field.clone())) {
                        entry.0.insert(&declaring.slug);
                    } else {
                        entry.1.insert(&declaring.slug);
                    }
                }
            }
            for (field, (open, safe)) in reads {
                if open.is_empty() {
                    continue;
                }
                let open: Vec<&str> = open.into_iter().collect();
                let quoted = |suffix: &str| -> Vec<String> {
                    open.iter()
                        .map(|slug| format!("`{slug}{suffix}`"))
                        .collect()
                };
                let protect = format!(
                    "protect {} with field `create` and `update` rules that those accounts do not pass",
                    words(&quoted(&format!(".{field}")))
                );
                let advice = match safe.iter().next() {
                    Some(slug) => format!(
                        "if the rule is meant for `{slug}` accounts, add `user.collection == '{slug}'` to it (`user.<field>` merges the fields of every auth collection), or {protect}"
                    ),
                    None => format!(
                        "{protect} (and where a rule is meant for one collection's accounts, say so with `user.collection == '<slug>'`: `user.<field>` merges the fields of every auth collection)"
                    ),
                };
                warnings.push(format!(
                    "{}: {path}: reads `user.{field}`, which accounts of {} can set for themselves, so any of them can pass this rule: {advice}",
                    collection.file.display(),
                    words(&quoted("")),
                ));
            }
        }
    }
    warnings
}

/// The rules written in the config (defaults read no `user` field), with their key paths.
fn written_rules<'a>(
    collection: &'a Collection,
    policy: &'a CollectionPolicy,
) -> Vec<(&'a str, &'a Rule)> {
    let access = &collection.access;
    let mut rules = Vec::new();
    for (source, rule) in [
        (&access.read, &policy.read),
        (&access.create, &policy.create),
        (&access.update, &policy.update),
        (&access.delete, &policy.delete),
    ] {
        if let Some(source) = source {
            rules.push((source.path.as_str(), rule));
        }
    }
    for (field, compiled) in collection.fields.iter().zip(&policy.fields) {
        for (source, rule) in [
            (&field.access.read, &compiled.read),
            (&field.access.create, &compiled.create),
            (&field.access.update, &compiled.update),
        ] {
            if let (Some(source), Some(rule)) = (source, rule) {
                rules.push((source.path.as_str(), rule));
            }
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use crate::access::Policies;

    /// The warnings of a `lucent.toml`, without the file name.
    fn warnings(config: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lucent.toml");
        std::fs::write(&path, config).unwrap();
        let config = crate::config::load_with_env(&path, &|_| None)
            .unwrap_or_else(|e| panic!("{e}\n{config}"));
        let policies = Policies::compile(&config.schema).unwrap_or_else(|e| panic!("{e}"));
        let prefix = format!("{}: ", path.display());
        policies
            .warnings
            .iter()
            .map(|w| w.strip_prefix(&prefix).unwrap_or(w).to_string())
            .collect()
    }

    const USERS: &str = r#"
[collections.users]
auth = true
[collections.users.fields]
role = { type = "select", options = ["admin", "user"], default = "user", access = { create = "user.role == 'admin'", update = "user.role == 'admin'" } }
[collections.users.access]
read = "user != null && (doc.id == user.id || user.role == 'admin')"
update = "user != null && (doc.id == user.id || user.role == 'admin')"
delete = "user.role == 'admin'"
"#;

    /// A second auth collection whose accounts set their own `role`.
    const MEMBERS: &str = r#"
[collections.members]
auth = { login_field = "username" }
[collections.members.fields]
role = { type = "string" }
[collections.members.access]
read = "doc.id == user.id"
update = "doc.id == user.id"
delete = "doc.id == user.id"
"#;

    #[test]
    fn open_sign_up_table() {
        let cases: &[(&str, &[&str])] = &[
            (USERS, &[]),
            (
                "[collections.users]\nauth = true\n",
                &[
                    "collection `users` leaves read to the default `user != null` while users allows anonymous registration, so any visitor can sign up and then read all its documents",
                    "collection `users` leaves update and delete to the default `user != null` while users allows anonymous registration, so any visitor can sign up and then update and delete its documents",
                ],
            ),
            (
                "[collections.users]\nauth = true\n[collections.users.access]\nread = \"doc.id == user.id\"\nupdate = \"doc.id == user.id\"\n",
                &[
                    "collection `users` leaves delete to the default `user != null` while users allows anonymous registration, so any visitor can sign up and then delete its documents",
                ],
            ),
            // Closed sign-up: "signed in" means someone an admin let in.
            (
                "[collections.users]\nauth = true\n[collections.users.access]\ncreate = \"user.role == 'admin'\"\n[collections.users.fields]\nrole = { type = \"string\", access = { create = \"user.role == 'admin'\", update = \"user.role == 'admin'\" } }\n",
                &[],
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(warnings(config), *expected, "{config}");
        }
    }

    #[test]
    fn self_set_user_fields_table() {
        let posts = |rules: &str| {
            format!(
                "[collections.posts.fields]\ntitle = {{ type = \"string\" }}\n[collections.posts.access]\nread = \"true\"\n{rules}"
            )
        };
        let members_role = "accounts of `members` can set for themselves";
        let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
            // One auth collection protecting `role`: nothing to say.
            (
                format!(
                    "{USERS}{}",
                    posts(
                        "update = \"user.role == 'admin'\"\ncreate = \"user != null\"\ndelete = \"user.role == 'admin'\"\n"
                    )
                ),
                vec![],
            ),
            // An unprotected `role` in the only auth collection: every reader is told.
            (
                format!(
                    "[collections.users]\nauth = true\n[collections.users.fields]\nrole = {{ type = \"string\" }}\n[collections.users.access]\nread = \"doc.id == user.id\"\nupdate = \"doc.id == user.id\"\ndelete = \"false\"\n{}",
                    posts(
                        "create = \"user.role == 'editor'\"\nupdate = \"false\"\ndelete = \"false\"\n"
                    )
                ),
                vec![(
                    "collections.posts.access.create: reads `user.role`, which accounts of `users` can set for themselves",
                    "protect `users.role` with field `create` and `update` rules",
                )],
            ),
            // `members` set their own role: rules meant for `users` must say so. Through
            // `users.role`'s own rules a member with role admin could even make `users` admins,
            // so `users.role` is reachable too, and its rules are named.
            (
                format!(
                    "{USERS}{MEMBERS}{}",
                    posts(
                        "create = \"user.collection == 'users' && user.role == 'admin'\"\nupdate = \"user.role == 'admin'\"\ndelete = \"false\"\n"
                    )
                ),
                vec![
                    (
                        "collections.users.access.read: reads `user.role`, which accounts of `members` and `users` can set",
                        "protect `members.role` and `users.role`",
                    ),
                    (
                        "collections.users.access.update: reads `user.role`",
                        "accounts of `members` and `users`",
                    ),
                    (
                        "collections.users.access.delete: reads `user.role`",
                        "accounts of `members` and `users`",
                    ),
                    (
                        "collections.users.fields.role.access.create: reads `user.role`",
                        "accounts of `members` and `users`",
                    ),
                    (
                        "collections.users.fields.role.access.update: reads `user.role`",
                        "accounts of `members` and `users`",
                    ),
                    (
                        "collections.posts.access.create: reads `user.role`, which accounts of `users` can set",
                        "protect `users.role`",
                    ),
                    (
                        "collections.posts.access.update: reads `user.role`",
                        "accounts of `members` and `users`",
                    ),
                ],
            ),
            // The documented fix: `users.role`'s rules and the rules meant for `users` say
            // `user.collection == 'users'`; only the unguarded read stays.
            (
                format!(
                    "{}{MEMBERS}{}",
                    USERS.replace(
                        "\"user.role == 'admin'\"",
                        "\"user.collection == 'users' && user.role == 'admin'\""
                    ),
                    posts(
                        "create = \"user.collection == 'users' && user.role == 'admin'\"\nupdate = \"user.role == 'admin'\"\ndelete = \"user.collection in ['users'] && user.role == 'admin'\"\n"
                    )
                ),
                vec![
                    (
                        "collections.users.access.read: reads `user.role`",
                        members_role,
                    ),
                    (
                        "collections.users.access.update: reads `user.role`",
                        members_role,
                    ),
                    (
                        "collections.posts.access.update: reads `user.role`, which accounts of `members` can set for themselves, so any of them can pass this rule: if the rule is meant for `users` accounts, add `user.collection == 'users'` to it",
                        "or protect `members.role`",
                    ),
                ],
            ),
            // A collection rule that stops the writes protects every field, for every caller.
            (
                format!(
                    "{USERS}[collections.members]\nauth = {{ login_field = \"username\" }}\n[collections.members.fields]\nrole = {{ type = \"string\" }}\n[collections.members.access]\ncreate = \"user.collection == 'users' && user.role == 'admin'\"\nread = \"doc.id == user.id\"\nupdate = \"user.collection == 'users' && user.role == 'admin'\"\ndelete = \"false\"\n{}",
                    posts(
                        "create = \"user.role == 'admin'\"\nupdate = \"false\"\ndelete = \"false\"\n"
                    )
                ),
                vec![],
            ),
            // `verified` is Lucent's unless a field rule opens it.
            (
                format!(
                    "[collections.users]\nauth = true\n[collections.users.access]\nread = \"doc.id == user.id\"\nupdate = \"doc.id == user.id\"\ndelete = \"false\"\n{}",
                    posts("create = \"user.verified\"\nupdate = \"false\"\ndelete = \"false\"\n")
                ),
                vec![],
            ),
            (
                format!(
                    "[collections.users]\nauth = true\n[collections.users.fields]\nverified = {{ type = \"boolean\", access = {{ update = \"true\" }} }}\n[collections.users.access]\nread = \"doc.id == user.id\"\nupdate = \"doc.id == user.id\"\ndelete = \"false\"\n{}",
                    posts("create = \"user.verified\"\nupdate = \"false\"\ndelete = \"false\"\n")
                ),
                vec![(
                    "collections.posts.access.create: reads `user.verified`, which accounts of `users` can set",
                    "protect `users.verified`",
                )],
            ),
        ];
        for (config, expected) in cases {
            let got = warnings(&config);
            assert_eq!(got.len(), expected.len(), "{config}\n{got:#?}");
            for (start, inside) in expected {
                assert!(
                    got.iter()
                        .any(|w| w.starts_with(start) && w.contains(inside)),
                    "{config}\nwanted `{start}` … `{inside}` in {got:#?}"
                );
            }
        }
    }
}
