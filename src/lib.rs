//! Lucent: a config-driven headless CMS backend. Collections declared in TOML become tables and
//! REST routes; the HTTP layer is a thin adapter over the library API in [`app::Lucent`].
//!
//! # Module map
//!
//! | module     | what it is |
//! |------------|------------|
//! | `schema`   | collections, field types, values, documents: what every other module reads instead of the configuration |
//! | `config`   | `lucent.toml` and `schemas/*.toml` → a checked [`config::Config`] (its [`schema::Schema`] built in `config::collections`), every error located |
//! | `rules`    | the predicate and filter language: lex → parse → check → `ir`, run by `eval` (in memory) or `sql` |
//! | `db`       | connections per engine, DDL, rows ↔ values, collection migrations, and Lucent's own tables (`db::system`, versioned) |
//! | `auth`     | credential primitives: the principal, passwords, secrets, JWT, sessions, lockout, API keys, email tokens and transports |
//! | `outbox`   | the transactional outbox: rows written with the write that causes them, and the worker that sends them (webhooks, mails) |
//! | `events`   | the one place where a committed write becomes an event: outbox rows in the write's transaction, and a stream after the commit |
//! | `access`   | every rule compiled at startup, and the decisions records make with them |
//! | `records`  | record operations (authorize → validate → database), every read and write of an account, and whole collections out and in (export, import): the only module that touches collection tables |
//! | `accounts` | the account flows: register, login, refresh, sessions, authenticate, API keys, email verification and reset |
//! | `realtime` | Server-Sent Events: clients, their subscriptions and bound credentials, each committed change delivered as its subscriber's rules allow |
//! | `app`      | the composition root: [`app::Lucent`] from a config |
//! | `http`     | routes, extractors, thin handlers, the error envelope, idempotent retries, the OpenAPI document |
//! | `cli`      | `serve`, `check`, `migrate`, `outbox`, `openapi`, `user`, `schema`, `types`, `init`, `export`, `import` |
//!
//! # Dependency rule
//!
//! Imports run one way, downward; nothing lower imports upward:
//!
//! ```text
//! cli → http → app → accounts → records → access → rules → schema
//!        http → realtime → accounts, records, events
//!                               accounts → auth,  records → auth,  access → auth::principal
//!                               records → events → outbox → db,    accounts → outbox
//!                    auth → db → config → schema
//! ```
//!
//! [`DEPENDENCY_RULE`] says exactly what each module may import, and the `layering` test parses
//! every file to hold the crate to it, and to keep the modules inside each module free of import
//! loops. Where things go: a new auth route is a method in one `accounts` file, a handler in
//! `http`, and its OpenAPI entry; a new field type follows the checklist on
//! [`schema::FieldKind`]; a new system table (or column) is a step in `db::system`.

pub mod access;
pub mod accounts;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod events;
pub mod http;
pub mod outbox;
pub mod realtime;
pub mod records;
pub mod rules;
pub mod schema;

#[cfg(test)]
mod layering;

pub use app::Lucent;

/// What each module may import (`crate::…` paths; `auth::principal` allows that module and what
/// is inside it, `auth` all of `auth`). Enforced by the `layering` test.
#[cfg(any(test, doc))]
pub const DEPENDENCY_RULE: &[(&str, &[&str])] = &[
    ("schema", &[]),
    ("config", &["schema"]),
    ("rules", &["schema"]),
    ("db", &["config", "schema"]),
    ("auth", &["config", "db", "schema"]),
    ("outbox", &["config", "db", "schema"]),
    ("events", &["config", "db", "outbox", "rules", "schema"]),
    ("access", &["auth::principal", "config", "rules", "schema"]),
    (
        "records",
        &[
            "access", "auth", "config", "db", "events", "rules", "schema",
        ],
    ),
    (
        "accounts",
        &[
            "access", "auth", "config", "db", "outbox", "records", "schema",
        ],
    ),
    (
        "app",
        &[
            "access", "accounts", "auth", "config", "db", "events", "outbox", "records",
        ],
    ),
    ("realtime", &["accounts", "auth", "events", "records"]),
    (
        "http",
        &[
            "accounts", "app", "auth", "config", "db", "outbox", "realtime", "records", "schema",
        ],
    ),
    (
        "cli",
        &[
            "accounts", "app", "auth", "config", "db", "http", "outbox", "records", "schema",
        ],
    ),
];
