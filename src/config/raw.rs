//! The configuration files exactly as written: serde structs that reject unknown keys.
//! `config::load` turns them into the checked [`super::Config`], and `lucent schema` describes
//! them as JSON Schema (see `json_schema`): the doc comments here are what an editor shows for
//! each key, so they are written for whoever edits `lucent.toml`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::json_schema::{
    DurationText, EnvName, EventName, FieldTypeName, OnDeleteName, SizeText, Slug, TransportName,
    WebhookSecretText,
};

/// `lucent.toml`: the server, the database, accounts, mail, metrics, webhooks, and collections
/// declared inline (`[collections.<slug>]`) beside the files of the `schemas` folder.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "lucent.toml")]
pub struct RawConfig {
    /// Folder of collection files (`<slug>.toml`), relative to this file; a missing folder means
    /// none. Default "schemas". Must come before the first `[table]`.
    pub schemas: Option<String>,
    pub server: Option<RawServer>,
    pub database: Option<RawDatabase>,
    pub auth: Option<RawAuth>,
    pub email: Option<RawEmail>,
    pub metrics: Option<RawMetrics>,
    pub realtime: Option<RawRealtime>,
    /// Receivers of committed writes (`[[webhooks]]`, docs/webhooks.md).
    // Kept as values: each entry is decoded on its own, so one bad entry does not hide the rest.
    #[schemars(with = "Option<Vec<RawWebhook>>")]
    pub webhooks: Option<Vec<toml::Value>>,
    /// Collections declared here, by slug; each may also be a file `schemas/<slug>.toml`.
    // Kept as tables: `schema::build` decodes each into a `RawCollection` on its own, so the
    // problems of one do not hide another's.
    #[schemars(with = "Option<BTreeMap<String, RawCollection>>")]
    pub collections: Option<toml::Table>,
}

/// `[server]`: where and how HTTP is served.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Server")]
pub struct RawServer {
    /// Address to bind (`--host` overrides). Default "127.0.0.1".
    pub host: Option<String>,
    /// Port (`--port` overrides; 0 picks a free one). Default 8080.
    pub port: Option<u16>,
    /// "dev" relaxes what a local machine cannot provide (a JWT secret); "prod" insists.
    /// `LUCENT_ENV` overrides. Default "dev".
    #[schemars(with = "Option<EnvName>")]
    pub env: Option<String>,
    /// Extra origins (`https://app.example.com`, no path) allowed for CORS, cookie-authenticated
    /// requests and form posts.
    pub cors_origins: Option<Vec<String>>,
    /// The origin browsers reach this server at (`https://cms.example.com`, no path). Default:
    /// the listen address.
    pub public_url: Option<String>,
    /// Largest request body (`"512KiB"`, `"2MB"`); larger ones get 413. Default "1MiB".
    #[schemars(with = "Option<SizeText>")]
    pub body_limit: Option<String>,
    /// The largest `limit` a list accepts. Default 100.
    #[schemars(range(min = 1))]
    pub max_limit: Option<u32>,
    /// The most requests one `POST /api/batch` may hold. Default 100.
    #[schemars(range(min = 1))]
    pub max_batch: Option<u32>,
    /// A folder served at `/` beside the API, relative to this file.
    pub static_dir: Option<String>,
    /// Time from a request's first byte to the end of its headers. Default "10s".
    #[schemars(with = "Option<DurationText>")]
    pub header_timeout: Option<String>,
    /// How long a keep-alive connection may wait for its next request. Default "60s".
    #[schemars(with = "Option<DurationText>")]
    pub idle_timeout: Option<String>,
}

/// `[database]`: which database, and how long a statement may run.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Database")]
pub struct RawDatabase {
    /// `sqlite://PATH` (relative to this file) or `postgres://...`; `LUCENT_DATABASE_URL`
    /// overrides. Default "sqlite://data/lucent.db".
    pub url: Option<String>,
    /// The longest any one SQL statement may run; "0s": no limit. Default "5s".
    #[schemars(with = "Option<DurationText>")]
    pub statement_timeout: Option<String>,
}

/// `[auth]`: tokens, sessions and the password policy.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Auth")]
pub struct RawAuth {
    /// The secret that signs access tokens, at least 32 bytes in prod; dev generates one into
    /// `data/jwt_secret` when unset or empty.
    pub jwt_secret: Option<String>,
    /// Lifetime of an access token. Default "15m".
    #[schemars(with = "Option<DurationText>")]
    pub jwt_expiry: Option<String>,
    /// Lifetime of a refresh session. Default "30d".
    #[schemars(with = "Option<DurationText>")]
    pub refresh_expiry: Option<String>,
    /// Whether sign-in also sets the session cookie for browsers. Default true.
    pub cookies: Option<bool>,
    /// Lifetime of an email verification link. Default "24h".
    #[schemars(with = "Option<DurationText>")]
    pub verify_expiry: Option<String>,
    /// Lifetime of a password reset link. Default "1h".
    #[schemars(with = "Option<DurationText>")]
    pub reset_expiry: Option<String>,
    pub password: Option<RawPassword>,
}

/// `[auth.password]`: what a new password must be.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Password")]
pub struct RawPassword {
    /// Fewest characters. Default 12.
    pub min_length: Option<usize>,
    /// Most characters. Default 256.
    pub max_length: Option<usize>,
    /// Refuse the most common passwords. Default true.
    pub reject_common: Option<bool>,
    /// Require an uppercase letter. Default false.
    pub require_uppercase: Option<bool>,
    /// Require a lowercase letter. Default false.
    pub require_lowercase: Option<bool>,
    /// Require a digit. Default false.
    pub require_numbers: Option<bool>,
    /// Require a symbol. Default false.
    pub require_symbols: Option<bool>,
}

/// `[email]`: how verification and password reset mails are sent.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Email")]
pub struct RawEmail {
    /// "file" (`.eml` files in `dir`), "smtp" (needs `url`) or "log" (a log line only).
    /// Default "log".
    #[schemars(with = "Option<TransportName>")]
    pub transport: Option<String>,
    /// Folder of the file transport, relative to this file. Default "data/outbox".
    pub dir: Option<String>,
    /// `smtp://user:pass@host:587` (STARTTLS) or `smtps://user:pass@host:465` (TLS).
    pub url: Option<String>,
    /// Sender mailbox. Default "Lucent <no-reply@localhost>".
    pub from: Option<String>,
    /// Link in verification mails: an http(s) URL with the placeholder `{token}`.
    pub verify_url: Option<String>,
    /// Link in password reset mails: an http(s) URL with the placeholder `{token}`.
    pub reset_url: Option<String>,
    pub templates: Option<RawEmailTemplates>,
}

/// `[email.templates.verify]` and `[email.templates.reset]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "EmailTemplates")]
pub struct RawEmailTemplates {
    pub verify: Option<RawEmailTemplate>,
    pub reset: Option<RawEmailTemplate>,
}

/// Overrides of one mail; unset parts keep Lucent's default (see docs/email.md).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "EmailTemplate")]
pub struct RawEmailTemplate {
    /// The subject line.
    pub subject: Option<String>,
    /// The plain-text body.
    pub text: Option<String>,
    /// The HTML body.
    pub html: Option<String>,
}

/// `[metrics]`: `GET /api/metrics` in Prometheus text (docs/operations.md).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Metrics")]
pub struct RawMetrics {
    /// Serve `GET /api/metrics`. Default false.
    pub enabled: Option<bool>,
    /// When set, every scrape needs `Authorization: Bearer <token>`; unset, only loopback
    /// callers are answered.
    pub token: Option<String>,
}

/// `[realtime]`: the Server-Sent Events API (`/api/realtime`, docs/realtime.md).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Realtime")]
pub struct RawRealtime {
    /// Most realtime clients one instance holds; beyond, `GET /api/realtime` answers 503.
    /// Default 10000.
    #[schemars(range(min = 1))]
    pub max_clients: Option<u32>,
}

/// `[[webhooks]]`: a URL that receives every matching committed write as a signed POST
/// (Standard Webhooks).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Webhook")]
pub struct RawWebhook {
    /// The receiver: an http:// or https:// URL, once per config (it names the webhook).
    pub url: String,
    /// Which writes: `collection.action` (create, update, delete) or `collection.*`.
    #[schemars(with = "Vec<EventName>", length(min = 1))]
    pub events: Vec<String>,
    /// Only documents for which this expression holds (docs/access.md syntax; fields by name or
    /// `doc.<field>`; a delete is matched against the document as it was).
    pub filter: Option<String>,
    /// `whsec_<base64 of 24 to 64 random bytes>`; put it in the environment: `"${WEBHOOK_SECRET}"`.
    #[schemars(with = "WebhookSecretText")]
    pub secret: String,
}

/// A collection: a `[collections.<slug>]` table of `lucent.toml`, or a whole file
/// `schemas/<slug>.toml`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Collection", title = "Lucent collection")]
pub struct RawCollection {
    /// Overrides the slug implied by the table key or file name (`^[a-z][a-z0-9_-]{0,62}$`).
    #[schemars(with = "Option<Slug>")]
    pub slug: Option<String>,
    /// A human name (OpenAPI tag and title).
    pub label: Option<String>,
    /// `true`, or a table of options, makes this an auth collection (accounts).
    #[schemars(with = "Option<AuthSetting>")]
    pub auth: Option<toml::Value>,
    /// The fields, by name (`^[A-Za-z][A-Za-z0-9_]{0,62}$`; `id`, `createdAt` and `updatedAt`
    /// are Lucent's).
    #[schemars(with = "Option<FieldTable>")]
    pub fields: Option<toml::Table>,
    pub access: Option<RawAccess>,
}

/// `auth = { ... }`: options of an auth collection.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AuthCollection")]
pub struct RawAuthCollection {
    /// The field people sign in with; `email` and `username` are added when not declared.
    /// Default "email".
    pub login_field: Option<String>,
    /// Send a verification mail on sign-up. Default false.
    pub verify_email: Option<bool>,
    /// Refuse sign-in until the address is verified. Default false.
    pub require_verified: Option<bool>,
    /// Consecutive failed logins before the account is locked. Default 5.
    pub max_login_attempts: Option<u32>,
    /// How long a locked account stays locked. Default "10m".
    #[schemars(with = "Option<DurationText>")]
    pub lock_time: Option<String>,
}

/// Who may do what (docs/access.md); an unset rule is `user != null` (`create` on auth
/// collections: `true`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Access")]
pub struct RawAccess {
    /// Who may list and get a document (`doc.*`, `user.*`).
    pub read: Option<String>,
    /// Who may create one (`data.*`, `user.*`).
    pub create: Option<String>,
    /// Who may change one (`doc.*`, `data.*`, `user.*`).
    pub update: Option<String>,
    /// Who may delete one (`doc.*`, `user.*`).
    pub delete: Option<String>,
}

/// Field rules: who may see or set this field.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "FieldAccess")]
pub struct RawFieldAccess {
    /// Who sees the field in answers; others get the document without it.
    pub read: Option<String>,
    /// Who may set it on create.
    pub create: Option<String>,
    /// Who may change it.
    pub update: Option<String>,
}

/// One field. Which options apply depends on `type` (see docs/configuration.md).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Field", transform = super::json_schema::field_type_rules)]
pub struct RawField {
    /// The field type.
    #[serde(rename = "type")]
    #[schemars(with = "FieldTypeName")]
    pub kind: String,
    /// Must be present and not null on create; cannot be set to null.
    pub required: Option<bool>,
    /// Enforced by a unique index: a taken value is 409.
    pub unique: Option<bool>,
    /// Never in an answer, `sort`, `select` or `filter`; still writable (write-only).
    pub hidden: Option<bool>,
    /// Used when a create omits the field; must pass the field's own rules.
    #[schemars(with = "Option<serde_json::Value>")]
    pub default: Option<toml::Value>,
    /// select: the allowed values.
    pub options: Option<Vec<String>>,
    /// integer, number: inclusive lower bound.
    pub min: Option<f64>,
    /// integer, number: inclusive upper bound.
    pub max: Option<f64>,
    /// string-like types: fewest characters.
    pub min_length: Option<usize>,
    /// string-like types: most characters.
    pub max_length: Option<usize>,
    /// string-like types: a regex the whole value must match.
    pub pattern: Option<String>,
    /// Index (field, createdAt, id), so a list filtered on the field pages without sorting.
    pub index: Option<bool>,
    /// A human name (OpenAPI title).
    pub label: Option<String>,
    /// A description (OpenAPI description).
    pub description: Option<String>,
    pub access: Option<RawFieldAccess>,
    /// relation: the target collection's slug.
    pub to: Option<String>,
    /// relation: what deleting the target does to this document.
    #[schemars(with = "Option<OnDeleteName>")]
    pub on_delete: Option<String>,
    /// relation: a list of ids (an array, order kept, no duplicates) instead of one id.
    pub many: Option<bool>,
    /// relation with `many = true`: the most ids a list holds (1 to 1000). Default 100.
    #[schemars(range(min = 1, max = 1000))]
    pub max_items: Option<usize>,
}

/// `auth = true` or `auth = { ... }`, for the editor schema (here, beside the types it names).
pub struct AuthSetting;

impl JsonSchema for AuthSetting {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AuthSetting".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [{"type": "boolean"}, generator.subschema_for::<RawAuthCollection>()],
        })
    }
}

/// `[fields]`: fields by name, for the editor schema.
pub struct FieldTable;

impl JsonSchema for FieldTable {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Fields".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        use crate::schema::{FIELD_NAME_PATTERN, RESERVED_FIELDS, SYSTEM_FIELDS};
        let refused: Vec<&str> = SYSTEM_FIELDS.into_iter().chain(RESERVED_FIELDS).collect();
        schemars::json_schema!({
            "type": "object",
            "propertyNames": {"pattern": FIELD_NAME_PATTERN, "not": {"enum": refused}},
            "additionalProperties": generator.subschema_for::<RawField>(),
        })
    }
}
