//! Cross-site request checks: which origins may send cookie-authenticated requests and HTML form
//! posts. An origin is compared whole — scheme, host and port — against the server's own
//! (`server.public_url`, by default the listen address) and `server.cors_origins`, so
//! `https://host` is not `http://host`, nor `http://host:8081` `http://host:8080`.
//!
//! Without `public_url`, a server listening on a loopback or wildcard address (`127.0.0.1`,
//! `localhost`, `::1`, `0.0.0.0`, `::`) also counts `http://localhost:PORT`, `http://127.0.0.1:PORT`
//! and `http://[::1]:PORT` as its own: in development a browser opened on `localhost` reaches the
//! server listening on `127.0.0.1`, and those names always mean this machine. Any other name a
//! browser uses needs `public_url` (or `cors_origins`).

use std::net::IpAddr;

use poem::Request;
use poem::http::{Method, header};
use url::{Origin, Url};

use super::error::ApiError;
use crate::config::ServerConfig;

/// The origins a server accepts cross-site-sensitive requests from.
#[derive(Debug, Clone)]
pub struct Origins {
    /// The server's own origins: `public_url`, or the listen address (and its loopback names).
    own: Vec<Origin>,
    /// `cors_origins`.
    listed: Vec<Origin>,
}

fn origin_of(text: &str) -> Option<Origin> {
    let origin = Url::parse(text.trim()).ok()?.origin();
    origin.is_tuple().then_some(origin)
}

impl Origins {
    /// The origins of a server listening on `server.host:server.port` (the port already bound).
    pub fn new(server: &ServerConfig) -> Self {
        let port = server.port;
        let own = match &server.public_url {
            Some(url) => origin_of(url).into_iter().collect(),
            None => {
                let host = server.host.trim_start_matches('[').trim_end_matches(']');
                let ip = host.parse::<IpAddr>().ok();
                let listen = match ip {
                    Some(IpAddr::V6(ip)) => format!("http://[{ip}]:{port}"),
                    _ => format!("http://{host}:{port}"),
                };
                let local = host.eq_ignore_ascii_case("localhost")
                    || ip.is_some_and(|ip| ip.is_loopback() || ip.is_unspecified());
                let mut own: Vec<Origin> = origin_of(&listen).into_iter().collect();
                if local {
                    for name in ["localhost", "127.0.0.1", "[::1]"] {
                        own.extend(origin_of(&format!("http://{name}:{port}")));
                    }
                }
                own
            }
        };
        let listed = server
            .cors_origins
            .iter()
            .filter_map(|o| origin_of(o))
            .collect();
        Self { own, listed }
    }

    /// Whether an `Origin` header value is the server's own origin or a listed one.
    pub fn allows(&self, origin: &str) -> bool {
        origin_of(origin).is_some_and(|o| self.own.contains(&o) || self.listed.contains(&o))
    }

    /// Whether a URL (a `Referer`) is on one of the server's own origins.
    pub fn is_own(&self, url: &str) -> bool {
        origin_of(url).is_some_and(|o| self.own.contains(&o))
    }

    /// The server's own origins, for the startup log.
    pub fn describe(&self) -> String {
        self.own
            .iter()
            .map(Origin::ascii_serialization)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn header(request: &Request, name: header::HeaderName) -> Option<&str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `Sec-Fetch-Site` says the request was made by this very origin (or typed by the user).
fn fetched_same_origin(request: &Request) -> bool {
    matches!(
        header(request, header::HeaderName::from_static("sec-fetch-site")),
        Some("same-origin" | "none")
    )
}

/// An unsafe (POST, PATCH, PUT, DELETE) request authenticated by the session cookie must come
/// from an allowed origin: an allowed `Origin`, or — when the browser sent `Origin: null` or none
/// (a `no-referrer` page) — `Sec-Fetch-Site: same-origin`.
///
/// # Errors
/// 403 `csrf_failed` otherwise.
pub fn check_cookie_request(origins: &Origins, request: &Request) -> Result<(), ApiError> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return Ok(());
    }
    let allowed = match header(request, header::ORIGIN) {
        Some(origin) if origin != "null" => origins.allows(origin),
        _ => fetched_same_origin(request),
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::csrf_failed(
            "cookie-authenticated requests must come from an allowed Origin",
        ))
    }
}

/// Whether a body's content type is one a cross-site HTML form can send without a CORS
/// preflight: such a post may be forged by another site.
fn form_encoded(request: &Request) -> bool {
    let mime = request
        .content_type()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        mime.as_str(),
        "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
    )
}

/// A form post (`application/x-www-form-urlencoded`, `multipart/form-data`, `text/plain`) whose
/// `Origin` names another site is refused, whatever its credentials: a cross-site form could
/// otherwise sign the visitor in as someone else (login CSRF) or act for them. Without an `Origin`
/// (a script, an old browser), `Sec-Fetch-Site: cross-site` or `same-site` refuses it too, and
/// `Origin: null` (a sandboxed or `no-referrer` page) passes only with `Sec-Fetch-Site:
/// same-origin`. JSON bodies need a CORS preflight to be sent across sites, so they pass.
///
/// # Errors
/// 403 `csrf_failed`.
pub fn check_form_post(origins: &Origins, request: &Request) -> Result<(), ApiError> {
    if !form_encoded(request) {
        return Ok(());
    }
    let allowed = match header(request, header::ORIGIN) {
        Some("null") => fetched_same_origin(request),
        Some(origin) => origins.allows(origin),
        None => !matches!(
            header(request, header::HeaderName::from_static("sec-fetch-site")),
            Some("cross-site" | "same-site")
        ),
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::csrf_failed("form posts must come from this site"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, ServerConfig};

    fn server(host: &str, public_url: Option<&str>) -> ServerConfig {
        ServerConfig {
            host: host.into(),
            port: 8080,
            env: Env::Dev,
            cors_origins: vec!["https://app.example.com".into()],
            public_url: public_url.map(Into::into),
            body_limit: 1024,
            max_limit: 100,
            max_batch: 100,
            static_dir: None,
            header_timeout: std::time::Duration::from_secs(10),
            idle_timeout: std::time::Duration::from_secs(60),
        }
    }

    #[test]
    fn origins_match_by_scheme_host_and_port() {
        let cases: &[(&str, Option<&str>, &str, bool)] = &[
            ("127.0.0.1", None, "http://127.0.0.1:8080", true),
            ("127.0.0.1", None, "http://localhost:8080", true),
            ("127.0.0.1", None, "http://[::1]:8080", true),
            ("127.0.0.1", None, "HTTP://LOCALHOST:8080", true),
            ("127.0.0.1", None, "https://127.0.0.1:8080", false),
            ("127.0.0.1", None, "http://127.0.0.1:8081", false),
            ("127.0.0.1", None, "http://127.0.0.1", false),
            ("127.0.0.1", None, "http://evil.example", false),
            ("127.0.0.1", None, "null", false),
            ("127.0.0.1", None, "https://app.example.com", true),
            ("127.0.0.1", None, "https://app.example.com:443", true),
            ("127.0.0.1", None, "http://app.example.com", false),
            ("0.0.0.0", None, "http://localhost:8080", true),
            ("0.0.0.0", None, "http://cms.example.com:8080", false),
            ("::", None, "http://[::1]:8080", true),
            ("cms.internal", None, "http://cms.internal:8080", true),
            ("cms.internal", None, "http://localhost:8080", false),
            (
                "127.0.0.1",
                Some("https://cms.example.com"),
                "https://cms.example.com",
                true,
            ),
            (
                "127.0.0.1",
                Some("https://cms.example.com"),
                "http://cms.example.com",
                false,
            ),
            (
                "127.0.0.1",
                Some("https://cms.example.com"),
                "http://localhost:8080",
                false,
            ),
            (
                "127.0.0.1",
                Some("https://cms.example.com"),
                "https://app.example.com",
                true,
            ),
        ];
        for (host, public_url, origin, allowed) in cases {
            let origins = Origins::new(&server(host, *public_url));
            assert_eq!(
                origins.allows(origin),
                *allowed,
                "{host} {public_url:?} {origin}"
            );
        }
        let origins = Origins::new(&server("127.0.0.1", None));
        assert!(origins.is_own("http://localhost:8080/signup.html?x=1"));
        assert!(
            !origins.is_own("https://app.example.com/page"),
            "listed, not own"
        );
    }
}
