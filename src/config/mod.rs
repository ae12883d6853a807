//! Configuration: `lucent.toml` plus `schemas/*.toml`, environment interpolation, every problem
//! collected with its file and key path before loading fails.

mod collections;
mod decode;
mod diag;
pub mod editor_schema;
mod env;
pub mod json_schema;
pub mod raw;
mod sections;
mod webhooks;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use decode::{Decoded, decode};
pub use diag::{Diagnostic, Diagnostics, key};
use raw::RawConfig;

pub use collections::{Source, build as build_schema};
pub use webhooks::{EventPattern, SECRET_BYTES, SECRET_PREFIX, WebhookConfig, WebhookSecret};

use crate::schema::Schema;

/// `server.env`, as written.
pub const ENVS: [(&str, Env); 2] = [("dev", Env::Dev), ("prod", Env::Prod)];

/// `email.transport`, as written.
pub const TRANSPORTS: [(&str, EmailTransport); 3] = [
    ("file", EmailTransport::File),
    ("smtp", EmailTransport::Smtp),
    ("log", EmailTransport::Log),
];

/// `dev` relaxes what a local machine cannot provide (a JWT secret); `prod` insists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Env {
    Dev,
    Prod,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub env: Env,
    pub cors_origins: Vec<String>,
    /// The origin browsers reach this server at (`scheme://host[:port]`, normalized); `None`: the
    /// listen address (see `http::origin`).
    pub public_url: Option<String>,
    pub body_limit: usize,
    pub max_limit: u32,
    /// The most requests one batch may hold.
    pub max_batch: usize,
    pub static_dir: Option<PathBuf>,
    /// How long a client may take to send a request's headers, from its first byte.
    pub header_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// Connection URL; a relative SQLite path is already resolved against the config's folder.
    pub url: String,
    /// The time limit of every statement; `None` (configured as `"0s"`): none.
    pub statement_timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
    pub reject_common: bool,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_numbers: bool,
    pub require_symbols: bool,
}

#[derive(Clone)]
pub struct AuthConfig {
    pub jwt_secret: Option<String>,
    pub jwt_expiry: Duration,
    pub refresh_expiry: Duration,
    pub cookies: bool,
    pub verify_expiry: Duration,
    pub reset_expiry: Duration,
    pub password: PasswordPolicy,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("jwt_expiry", &self.jwt_expiry)
            .field("refresh_expiry", &self.refresh_expiry)
            .finish_non_exhaustive()
    }
}

/// Where mails go: `.eml` files in `dir`, an SMTP server, or only a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailTransport {
    File,
    Smtp,
    Log,
}

/// Overrides of one mail's subject and bodies; `None` keeps Lucent's default.
#[derive(Debug, Clone, Default)]
pub struct EmailTemplate {
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

#[derive(Clone)]
pub struct EmailConfig {
    pub transport: EmailTransport,
    pub dir: PathBuf,
    /// `smtp://` (STARTTLS) or `smtps://` (TLS), with credentials: never in a `Debug`.
    pub url: Option<String>,
    pub from: String,
    /// Links in mails, with a `{token}` placeholder.
    pub verify_url: String,
    pub reset_url: String,
    pub verify_template: EmailTemplate,
    pub reset_template: EmailTemplate,
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("transport", &self.transport)
            .field("dir", &self.dir)
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("verify_url", &self.verify_url)
            .field("reset_url", &self.reset_url)
            .finish_non_exhaustive()
    }
}

/// `[metrics]`: whether `GET /api/metrics` is served, and to whom.
#[derive(Clone, Default)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// The bearer token every scrape must show; `None`: loopback callers only.
    pub token: Option<String>,
}

impl std::fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("enabled", &self.enabled)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `[realtime]`: limits of the Server-Sent Events API.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// Most clients one instance holds (503 beyond).
    pub max_clients: usize,
}

/// A loaded, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file; relative paths inside it are resolved against its folder.
    pub file: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub email: EmailConfig,
    pub metrics: MetricsConfig,
    pub realtime: RealtimeConfig,
    /// `[[webhooks]]`, in order.
    pub webhooks: Vec<WebhookConfig>,
    pub schema: Schema,
}

impl Config {
    /// The folder holding the config file.
    pub fn root(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }

    /// Where Lucent keeps generated state (the dev JWT secret, the default SQLite file).
    pub fn data_dir(&self) -> PathBuf {
        self.root().join("data")
    }
}

/// Loads `path` and the collection files it points to, reading `${VAR}` references from the process
/// environment.
///
/// # Errors
/// Every problem in every file, each with its location.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    load_with_env(path, &|name| std::env::var(name).ok())
}

/// [`load`] with an explicit environment, for tests.
///
/// # Errors
/// Every problem in every file, each with its location.
pub fn load_with_env(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Diagnostics> {
    let (config, diags) = load_partial(path, lookup);
    diags.finish(config)
}

/// Loads what can be loaded and reports every problem found: the config holds every collection
/// that could be built, and its `schema.gaps` say what may be missing, so that the rules of the
/// rest can still be checked (`app::load_checked` does). A config that comes with problems must
/// not be served.
pub fn load_partial(path: &Path, lookup: &dyn Fn(&str) -> Option<String>) -> (Config, Diagnostics) {
    let mut diags = Diagnostics::default();
    let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
    // Whether every collection's table was read: otherwise any slug may exist.
    let mut complete = true;
    let doc = read_toml(path, lookup, &mut diags).unwrap_or_else(|| {
        complete = false;
        toml::Table::new()
    });

    // Decoded with the type `lucent schema` describes; a bad key is reported and left out.
    let Decoded { value, bad } = decode::<RawConfig>(toml::Value::Table(doc), path, "", &mut diags);
    let raw = value.unwrap_or_default();
    // An unreadable `schemas` or `collections` leaves collections unread.
    if bad.contains("schemas") || bad.contains("collections") {
        complete = false;
    }
    let schemas_dir = match raw.schemas {
        Some(dir) => Some(dir),
        None if bad.contains("schemas") => None,
        None => Some("schemas".to_string()),
    };
    let mut sources = Vec::new();
    for (slug, value) in raw.collections.unwrap_or_default() {
        match value {
            toml::Value::Table(table) => sources.push(Source {
                file: path.to_path_buf(),
                prefix: format!("collections.{}.", key(&slug)),
                slug: Some(slug),
                table,
            }),
            _ => {
                diags.push(Diagnostic::new(
                    path,
                    format!("collections.{}", key(&slug)),
                    "expected a table",
                ));
                complete = false;
            }
        }
    }
    if let Some(dir) = schemas_dir {
        complete &= collect_schema_files(&root.join(dir), lookup, &mut sources, &mut diags);
    }

    let server = build_server(
        raw.server.unwrap_or_default(),
        path,
        &root,
        lookup,
        &mut diags,
    );
    let database = build_database(
        raw.database.unwrap_or_default(),
        path,
        &root,
        lookup,
        &mut diags,
    );
    let auth = build_auth(raw.auth.unwrap_or_default(), path, &mut diags);
    if server.env == Env::Prod && auth.jwt_secret.as_ref().is_some_and(|s| s.len() < 32) {
        diags.push(Diagnostic::new(
            path,
            "auth.jwt_secret",
            "must be at least 32 bytes in prod",
        ));
    }
    let email = build_email(raw.email.unwrap_or_default(), path, &root, &mut diags);
    let metrics = build_metrics(raw.metrics.unwrap_or_default(), path, &mut diags);
    let realtime = build_realtime(raw.realtime.unwrap_or_default(), path, &mut diags);
    let (schema, schema_diags) = collections::build_partial(sources, complete);
    diags.0.extend(schema_diags.0);
    let webhooks = webhooks::build_webhooks(
        raw.webhooks.unwrap_or_default(),
        &schema,
        complete,
        path,
        &mut diags,
    );
    let config = Config {
        file: path.to_path_buf(),
        server,
        database,
        auth,
        email,
        metrics,
        realtime,
        webhooks,
        schema,
    };
    (config, diags)
}

fn read_toml(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    diags: &mut Diagnostics,
) -> Option<toml::Table> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            diags.push(Diagnostic::new(path, "", format!("cannot read: {e}")));
            return None;
        }
    };
    let table: toml::Table = match toml::from_str(&text) {
        Ok(table) => table,
        Err(e) => {
            let at = e
                .span()
                .map(|span| {
                    let (line, column) = line_column(&text, span.start);
                    format!(" at line {line}, column {column}")
                })
                .unwrap_or_default();
            diags.push(Diagnostic::new(
                path,
                "",
                format!("invalid TOML{at}: {}", e.message().trim()),
            ));
            return None;
        }
    };
    let mut value = toml::Value::Table(table);
    let mut missing = Vec::new();
    env::interpolate(&mut value, "", lookup, &mut missing);
    for (key, var) in missing {
        diags.push(Diagnostic::new(
            path,
            key,
            format!("environment variable `{var}` is not set and has no default"),
        ));
    }
    match value {
        toml::Value::Table(table) => Some(table),
        _ => None,
    }
}

/// 1-based line and character column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// Adds a source for every `*.toml` file of `dir`; false when one could not be read.
fn collect_schema_files(
    dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    sources: &mut Vec<Source>,
    diags: &mut Diagnostics,
) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return true; // a missing folder means no collection files
    };
    let mut complete = true;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    for file in files {
        if let Some(table) = read_toml(&file, lookup, diags) {
            let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned());
            sources.push(Source {
                file,
                prefix: String::new(),
                slug: stem,
                table,
            });
        } else {
            complete = false;
        }
    }
    complete
}

use sections::{
    build_auth, build_database, build_email, build_metrics, build_realtime, build_server,
};
pub use sections::{either, one_of, parse_duration, web_origin};

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads `text` as a `lucent.toml` with `env` as the environment; the diagnostics as
    /// `path: message` lines.
    fn diagnostics(text: &str, env: &[(&str, &str)]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lucent.toml");
        std::fs::write(&path, text).unwrap();
        let lookup = |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        match load_with_env(&path, &lookup) {
            Ok(_) => Vec::new(),
            Err(errors) => errors
                .0
                .iter()
                .map(|d| match d.path.as_str() {
                    "" => d.message.clone(),
                    path => format!("{path}: {}", d.message),
                })
                .collect(),
        }
    }

    #[test]
    fn diagnostics_table() {
        // (lucent.toml, environment, the diagnostics it must give)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: &[Case<'_>] = &[
            ("", &[], &[]),
            (
                "[server]\nport = 80\nhost = \"${HOST}\"\n",
                &[("HOST", "0.0.0.0")],
                &[],
            ),
            (
                "[server]\nhost = \"${HOST}\"\n",
                &[],
                &["server.host: environment variable `HOST` is not set and has no default"],
            ),
            ("nope = 1\n", &[], &["nope: unknown key `nope`"]),
            (
                "[server]\nprt = 1\n",
                &[],
                &["server.prt: unknown key `prt`"],
            ),
            // Type errors name their key and say what TOML value was expected.
            (
                "[collections.posts.fields]\ntitle = { type = \"string\", max_length = \"long\" }\n",
                &[],
                &[
                    "collections.posts.fields.title.max_length: expected a non-negative integer, found the string \"long\"",
                ],
            ),
            (
                "[server]\nport = \"eighty\"\nenv = \"qa\"\n",
                &[],
                &[
                    "server.port: expected an integer from 0 to 65535",
                    "server.env: expected \"dev\" or \"prod\"",
                ],
            ),
            (
                "server = 5\n",
                &[],
                &["server: expected a table, found the integer 5"],
            ),
            (
                "[server]\nport = 1\nport = 2\n",
                &[],
                &["invalid TOML at line 3, column 1: duplicate key"],
            ),
            (
                "[server]\nenv = \"staging\"\n",
                &[],
                &["server.env: expected \"dev\" or \"prod\", got \"staging\""],
            ),
            // Only the engines Lucent is tested on (issue 19: MySQL/MariaDB not claimed).
            (
                "[database]\nurl = \"mysql://root@127.0.0.1/test\"\n",
                &[],
                &["database.url: unsupported database \"mysql\": use sqlite://PATH"],
            ),
            (
                "[server]\nbody_limit = \"lots\"\n",
                &[],
                &["server.body_limit: invalid size `lots`"],
            ),
            (
                "[server]\ncors_origins = [\"https://a.io/\"]\n",
                &[],
                &["server.cors_origins[0]: `https://a.io/` is not an origin"],
            ),
            (
                "[server]\npublic_url = \"https://cms.example.com/admin\"\n",
                &[],
                &["server.public_url: `https://cms.example.com/admin` is not an origin"],
            ),
            (
                "[server]\npublic_url = \"ftp://cms.example.com\"\n",
                &[],
                &["server.public_url: `ftp://cms.example.com` is not an origin"],
            ),
            (
                "[auth]\njwt_expiry = \"soon\"\n",
                &[],
                &["auth.jwt_expiry: invalid duration `soon`"],
            ),
            (
                "[auth.password]\nmin_length = 20\nmax_length = 10\n",
                &[],
                &["auth.password.min_length: is greater than max_length"],
            ),
            (
                "[auth]\njwt_secret = \"short\"\n",
                &[("LUCENT_ENV", "prod")],
                &["auth.jwt_secret: must be at least 32 bytes in prod"],
            ),
            (
                "[metrics]\nenabled = true\ntoken = \" \"\n",
                &[],
                &["metrics.token: must not be empty"],
            ),
            (
                "[metrics]\nenabled = \"yes\"\n",
                &[],
                &["metrics.enabled: expected true or false, found the string \"yes\""],
            ),
            (
                "[[webhooks]]\nurl = \"ftp://x\"\nevents = [\"posts.create\", \"notes.*\", \"posts.created\"]\nsecret = \"abc\"\n[collections.posts]\n",
                &[],
                &[
                    "webhooks[0].url: `ftp://x` is not an http:// or https:// URL",
                    "webhooks[0].events[1]: unknown collection `notes`",
                    "webhooks[0].events[2]: unknown action `created`",
                    "webhooks[0].secret: must start with `whsec_`",
                ],
            ),
            (
                "[[webhooks]]\nurl = \"http://a.test/h\"\nevents = []\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n[[webhooks]]\nurl = \"http://a.test/h\"\nevents = [\"posts.*\"]\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nretries = 3\n[[webhooks]]\nevents = [\"posts.*\"]\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n[collections.posts]\n",
                &[],
                &[
                    "webhooks[0].events: needs at least one event",
                    "webhooks[1].retries: unknown key `retries`",
                    "webhooks[1].url: the same url as webhooks[0]",
                    "webhooks[2].url: missing required key `url`",
                ],
            ),
            (
                "[collections.metrics]\n",
                &[],
                &["collections.metrics.slug: invalid collection slug `metrics`"],
            ),
            (
                "[collections.batch]\n",
                &[],
                &["collections.batch.slug: invalid collection slug `batch`"],
            ),
            (
                "[server]\nmax_batch = 0\n",
                &[],
                &["server.max_batch: must be at least 1"],
            ),
            (
                "[collections.posts.fields]\nt = { type = \"strng\" }\n",
                &[],
                &["collections.posts.fields.t.type: unknown field type `strng`"],
            ),
            (
                "[collections.posts.fields]\nn = { type = \"integer\", default = \"x\" }\n",
                &[],
                &["collections.posts.fields.n.default: default fails the field's own rules"],
            ),
            (
                "[collections.posts.fields]\nr = { type = \"relation\" }\n",
                &[],
                &["collections.posts.fields.r.to: a relation field needs"],
            ),
            // To-many relations: `max_items` needs `many`; options a list cannot take are
            // refused one by one, each at its key.
            (
                "[collections.tags]\n[collections.posts.fields]\nt = { type = \"relation\", to = \"tags\", many = true, max_items = 5 }\n",
                &[],
                &[],
            ),
            (
                "[collections.tags]\n[collections.posts.fields]\nt = { type = \"relation\", to = \"tags\", max_items = 5 }\n",
                &[],
                &[
                    "collections.posts.fields.t.max_items: `max_items` applies only to a to-many relation",
                ],
            ),
            (
                "[collections.tags]\n[collections.posts.fields]\nt = { type = \"relation\", to = \"tags\", many = false, max_items = 5 }\n",
                &[],
                &[
                    "collections.posts.fields.t.max_items: `max_items` applies only to a to-many relation",
                ],
            ),
            (
                "[collections.tags]\n[collections.posts.fields]\nt = { type = \"relation\", to = \"tags\", many = true, max_items = 0 }\n",
                &[],
                &[
                    "collections.posts.fields.t.max_items: `max_items` must be from 1 to 1000, got 0",
                ],
            ),
            (
                "[collections.tags]\n[collections.posts.fields]\nt = { type = \"relation\", to = \"tags\", many = true, max_items = 1001 }\n",
                &[],
                &["collections.posts.fields.t.max_items: `max_items` must be from 1 to 1000"],
            ),
            (
                "[collections.posts.fields]\nn = { type = \"string\", many = true }\n",
                &[],
                &[
                    "collections.posts.fields.n.many: `many` and `max_items` apply only to relation fields",
                ],
            ),
            (
                "[collections.posts.fields]\nn = { type = \"integer\", max_items = 3 }\n",
                &[],
                &[
                    "collections.posts.fields.n.max_items: `many` and `max_items` apply only to relation fields",
                ],
            ),
            (
                "[collections.tags]\n[collections.posts.fields]\nt = { type = \"relation\", to = \"tags\", many = true, unique = true, index = true, default = [\"a\"], min_length = 1, max_length = 9, pattern = \"a\" }\n",
                &[],
                &[
                    "collections.posts.fields.t.unique: `unique` does not apply to a to-many relation",
                    "collections.posts.fields.t.index: `index` does not apply",
                    "collections.posts.fields.t.default: `default` does not apply",
                    "collections.posts.fields.t.min_length: `min_length` does not apply",
                    "collections.posts.fields.t.max_length: `max_length` does not apply",
                    "collections.posts.fields.t.pattern: `pattern` does not apply",
                ],
            ),
            (
                "[collections.posts.fields]\nt = { type = \"relation\", to = \"nope\", many = true }\n",
                &[],
                &["collections.posts.fields.t.to: relation to unknown collection `nope`"],
            ),
            (
                "[collections.posts.fields]\ncreatedAt = { type = \"datetime\" }\n",
                &[],
                &["collections.posts.fields.createdAt: `createdAt` is a system field"],
            ),
            (
                "[collections.posts.fields]\nexpand = { type = \"string\" }\n",
                &[],
                &["collections.posts.fields.expand: `expand` is reserved"],
            ),
            (
                "[collections.users]\nauth = { login_field = \"handle\" }\n",
                &[],
                &["collections.users.auth.login_field: login field `handle` is not declared"],
            ),
            (
                "[collections.users]\nauth = true\n[collections.users.fields]\npassword = { type = \"string\" }\n",
                &[],
                &[
                    "collections.users.fields.password: `password` holds a secret and must be declared with hidden = true",
                ],
            ),
            // Several problems are all reported, in one load.
            (
                "x = 1\n[server]\nenv = \"qa\"\n[collections.Bad]\n",
                &[],
                &[
                    "x: unknown key",
                    "server.env: expected",
                    "collections.Bad.slug: invalid collection slug",
                ],
            ),
        ];
        for (text, env, expected) in cases {
            let got = diagnostics(text, env);
            assert_eq!(got.len(), expected.len(), "{text}\n→ {got:#?}");
            for want in *expected {
                assert!(
                    got.iter().any(|line| line.starts_with(want)),
                    "{text}\nwanted `{want}` in {got:#?}"
                );
            }
        }
    }
}
