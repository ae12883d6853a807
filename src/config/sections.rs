//! The sections of `lucent.toml` besides collections: raw `[server]`, `[database]`, `[auth]`,
//! `[email]` and `[metrics]` tables checked into their typed configs, problems collected as
//! diagnostics.

use super::raw::{RawAuth, RawDatabase, RawEmail, RawMetrics, RawRealtime, RawServer};
use super::*;

/// `a`, `a or b`, `a, b or c`.
pub fn either(items: &[&str]) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// [`either`] of the quoted names: `"dev" or "prod"`.
pub fn one_of<const N: usize>(names: [&str; N]) -> String {
    let quoted = names.map(|name| format!("\"{name}\""));
    either(&quoted.each_ref().map(String::as_str))
}

/// The value `names` gives `text`.
fn lookup_name<T: Copy, const N: usize>(names: &[(&str, T); N], text: &str) -> Option<T> {
    names
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, value)| *value)
}

/// Parses a duration such as `15m`, `7d`, `12h` or `45s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("invalid duration `{text}`: {e}"))
}

fn duration(
    value: Option<String>,
    default: Duration,
    file: &Path,
    path: &str,
    diags: &mut Diagnostics,
) -> Duration {
    match value {
        None => default,
        Some(text) => parse_duration(&text).unwrap_or_else(|e| {
            diags.push(Diagnostic::new(file, path, e));
            default
        }),
    }
}

pub(super) fn build_server(
    raw: RawServer,
    file: &Path,
    root: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    diags: &mut Diagnostics,
) -> ServerConfig {
    let env_name = lookup("LUCENT_ENV")
        .or(raw.env)
        .unwrap_or_else(|| "dev".into());
    let env = lookup_name(&ENVS, &env_name).unwrap_or_else(|| {
        diags.push(Diagnostic::new(
            file,
            "server.env",
            format!(
                "expected {}, got \"{env_name}\"",
                one_of(ENVS.map(|(name, _)| name))
            ),
        ));
        Env::Dev
    });
    let body_limit = match raw.body_limit {
        None => 1024 * 1024,
        Some(text) => match text.parse::<bytesize::ByteSize>() {
            Ok(size) => usize::try_from(size.as_u64()).unwrap_or(usize::MAX),
            Err(e) => {
                diags.push(Diagnostic::new(
                    file,
                    "server.body_limit",
                    format!("invalid size `{text}`: {e}"),
                ));
                1024 * 1024
            }
        },
    };
    let max_limit = raw.max_limit.unwrap_or(100);
    let max_batch = raw.max_batch.unwrap_or(100);
    for (key, value) in [
        ("server.max_limit", max_limit),
        ("server.max_batch", max_batch),
    ] {
        if value == 0 {
            diags.push(Diagnostic::new(file, key, "must be at least 1"));
        }
    }
    for (i, origin) in raw.cors_origins.iter().flatten().enumerate() {
        if !(origin.starts_with("http://") || origin.starts_with("https://"))
            || origin.ends_with('/')
        {
            diags.push(Diagnostic::new(
                file,
                format!("server.cors_origins[{i}]"),
                format!("`{origin}` is not an origin (scheme://host[:port], no path)"),
            ));
        }
    }
    let public_url = raw.public_url.and_then(|text| match web_origin(&text) {
        Some(origin) => Some(origin),
        None => {
            diags.push(Diagnostic::new(
                file,
                "server.public_url",
                format!(
                    "`{text}` is not an origin (http:// or https://, a host, an optional port, no \
                     path)"
                ),
            ));
            None
        }
    });
    let header_timeout = duration(
        raw.header_timeout,
        Duration::from_secs(10),
        file,
        "server.header_timeout",
        diags,
    );
    let idle_timeout = duration(
        raw.idle_timeout,
        Duration::from_secs(60),
        file,
        "server.idle_timeout",
        diags,
    );
    for (key, value) in [
        ("server.header_timeout", header_timeout),
        ("server.idle_timeout", idle_timeout),
    ] {
        if value.is_zero() {
            diags.push(Diagnostic::new(file, key, "must be longer than 0s"));
        }
    }
    ServerConfig {
        header_timeout,
        idle_timeout,
        host: raw.host.unwrap_or_else(|| "127.0.0.1".into()),
        port: raw.port.unwrap_or(8080),
        env,
        cors_origins: raw.cors_origins.unwrap_or_default(),
        public_url,
        body_limit,
        max_limit: max_limit.max(1),
        max_batch: usize::try_from(max_batch.max(1)).unwrap_or(usize::MAX),
        static_dir: raw.static_dir.map(|dir| root.join(dir)),
    }
}

/// The serialized origin (`scheme://host[:port]`, lower-cased, default port dropped) of an
/// `http://` or `https://` URL without path, query or credentials (a trailing `/` is allowed).
pub fn web_origin(text: &str) -> Option<String> {
    let url = url::Url::parse(text.trim()).ok()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.has_host()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    plain.then(|| url.origin().ascii_serialization())
}

/// The URL schemes of the engines Lucent runs on and tests: SQLite and PostgreSQL.
pub const DATABASE_SCHEMES: [&str; 3] = ["sqlite:", "postgres:", "postgresql:"];

pub(super) fn build_database(
    raw: RawDatabase,
    file: &Path,
    root: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    diags: &mut Diagnostics,
) -> DatabaseConfig {
    let url = lookup("LUCENT_DATABASE_URL")
        .or(raw.url)
        .unwrap_or_else(|| "sqlite://data/lucent.db".into());
    let statement_timeout = duration(
        raw.statement_timeout,
        Duration::from_secs(5),
        file,
        "database.statement_timeout",
        diags,
    );
    if !DATABASE_SCHEMES
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        let scheme = url.split(':').next().unwrap_or_default();
        diags.push(Diagnostic::new(
            file,
            "database.url",
            format!(
                "unsupported database \"{scheme}\": use sqlite://PATH (the embedded default) or \
                 postgres://... (MySQL and MariaDB are not supported)"
            ),
        ));
    }
    DatabaseConfig {
        url: resolve_sqlite_path(&url, root),
        statement_timeout: (!statement_timeout.is_zero()).then_some(statement_timeout),
    }
}

/// Makes a relative `sqlite://` path relative to the config folder rather than the working one.
fn resolve_sqlite_path(url: &str, root: &Path) -> String {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return url.to_string();
    };
    if rest.starts_with('/') || rest.starts_with(":memory:") || root.as_os_str().is_empty() {
        return format!("sqlite://{rest}");
    }
    format!("sqlite://{}", root.join(rest).display())
}

pub(super) fn build_auth(raw: RawAuth, file: &Path, diags: &mut Diagnostics) -> AuthConfig {
    let password = raw.password.unwrap_or_default();
    let policy = PasswordPolicy {
        min_length: password.min_length.unwrap_or(12),
        max_length: password.max_length.unwrap_or(256),
        reject_common: password.reject_common.unwrap_or(true),
        require_uppercase: password.require_uppercase.unwrap_or(false),
        require_lowercase: password.require_lowercase.unwrap_or(false),
        require_numbers: password.require_numbers.unwrap_or(false),
        require_symbols: password.require_symbols.unwrap_or(false),
    };
    if policy.min_length > policy.max_length {
        diags.push(Diagnostic::new(
            file,
            "auth.password.min_length",
            "is greater than max_length",
        ));
    }
    AuthConfig {
        jwt_secret: raw.jwt_secret.filter(|s| !s.is_empty()),
        jwt_expiry: duration(
            raw.jwt_expiry,
            Duration::from_secs(15 * 60),
            file,
            "auth.jwt_expiry",
            diags,
        ),
        refresh_expiry: duration(
            raw.refresh_expiry,
            Duration::from_secs(30 * 86400),
            file,
            "auth.refresh_expiry",
            diags,
        ),
        cookies: raw.cookies.unwrap_or(true),
        verify_expiry: duration(
            raw.verify_expiry,
            Duration::from_secs(86400),
            file,
            "auth.verify_expiry",
            diags,
        ),
        reset_expiry: duration(
            raw.reset_expiry,
            Duration::from_secs(3600),
            file,
            "auth.reset_expiry",
            diags,
        ),
        password: policy,
    }
}

pub(super) fn build_email(
    raw: RawEmail,
    file: &Path,
    root: &Path,
    diags: &mut Diagnostics,
) -> EmailConfig {
    let name = raw.transport.as_deref().unwrap_or("log");
    let transport = lookup_name(&TRANSPORTS, name).unwrap_or_else(|| {
        diags.push(Diagnostic::new(
            file,
            "email.transport",
            format!(
                "expected {}, got \"{name}\"",
                one_of(TRANSPORTS.map(|(name, _)| name))
            ),
        ));
        EmailTransport::Log
    });
    match (&raw.url, transport) {
        (None, EmailTransport::Smtp) => diags.push(Diagnostic::new(
            file,
            "email.url",
            "the smtp transport needs a url (smtp://user:pass@host:587 or smtps://host:465)",
        )),
        (Some(url), _) if !url.starts_with("smtp://") && !url.starts_with("smtps://") => {
            diags.push(Diagnostic::new(
                file,
                "email.url",
                "must start with smtp:// (STARTTLS) or smtps:// (TLS)",
            ));
        }
        _ => {}
    }
    let from = raw
        .from
        .unwrap_or_else(|| "Lucent <no-reply@localhost>".into());
    if let Err(e) = from.parse::<lettre::message::Mailbox>() {
        diags.push(Diagnostic::new(
            file,
            "email.from",
            format!("`{from}` is not a mailbox (\"Name <address>\" or \"address\"): {e}"),
        ));
    }
    let mut link = |value: Option<String>, key: &str, default: &str| {
        let link = value.unwrap_or_else(|| default.into());
        if !(link.starts_with("http://") || link.starts_with("https://"))
            || !link.contains("{token}")
        {
            diags.push(Diagnostic::new(
                file,
                key,
                "must be an http(s) URL containing the placeholder {token}",
            ));
        }
        link
    };
    let verify_url = link(
        raw.verify_url,
        "email.verify_url",
        "http://localhost:8080/verify?token={token}",
    );
    let reset_url = link(
        raw.reset_url,
        "email.reset_url",
        "http://localhost:8080/reset?token={token}",
    );
    let templates = raw.templates.unwrap_or_default();
    let template = |raw: Option<raw::RawEmailTemplate>| {
        let raw = raw.unwrap_or_default();
        EmailTemplate {
            subject: raw.subject,
            text: raw.text,
            html: raw.html,
        }
    };
    EmailConfig {
        transport,
        dir: root.join(raw.dir.unwrap_or_else(|| "data/outbox".into())),
        url: raw.url,
        from,
        verify_url,
        reset_url,
        verify_template: template(templates.verify),
        reset_template: template(templates.reset),
    }
}

pub(super) fn build_metrics(
    raw: RawMetrics,
    file: &Path,
    diags: &mut Diagnostics,
) -> MetricsConfig {
    let token = raw.token;
    if token.as_ref().is_some_and(|t| t.trim().is_empty()) {
        diags.push(Diagnostic::new(
            file,
            "metrics.token",
            "must not be empty (leave it unset to answer loopback callers only)",
        ));
    }
    MetricsConfig {
        enabled: raw.enabled.unwrap_or(false),
        token,
    }
}

pub(super) fn build_realtime(
    raw: RawRealtime,
    file: &Path,
    diags: &mut Diagnostics,
) -> RealtimeConfig {
    let max_clients = raw.max_clients.unwrap_or(10_000);
    if max_clients == 0 {
        diags.push(Diagnostic::new(
            file,
            "realtime.max_clients",
            "must be at least 1",
        ));
    }
    RealtimeConfig {
        max_clients: usize::try_from(max_clients.max(1)).unwrap_or(usize::MAX),
    }
}
