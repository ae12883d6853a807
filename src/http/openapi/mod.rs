//! The OpenAPI 3 document, built at startup from the same schema that builds the routes
//! (poem-openapi cannot describe routes that exist only at run time), and the Swagger UI page.
//!
//! The document is meant to be exact, so that generated clients type-check real answers and
//! testing tools find nothing to report: every status a route can answer is listed, request
//! schemas carry the limits the server enforces, response schemas hold for every parameter
//! (`select` makes fields optional, `expand` adds `expand`), and `links` chain create → get →
//! update → delete.
//! `tests/api/openapi.rs` holds it to that with schemathesis and a typed TypeScript client.

mod auth;
mod batch;
mod collections;
mod expand;
mod schemas;

use serde_json::{Map, Value as Json, json};

use super::idempotency::{KEY_PATTERN, MAX_KEY};
use crate::config::{Config, Env};

fn schema_ref(name: &str) -> Json {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn json_content(schema: Json) -> Json {
    json!({"application/json": {"schema": schema}})
}

/// A JSON request body (required).
fn json_body(schema: Json) -> Json {
    json!({"required": true, "content": json_content(schema)})
}

/// The body of a route marked F in SPEC §5: JSON, or an HTML form.
fn form_or_json_body(json: Json, form: Json) -> Json {
    json!({"required": true, "content": {
        "application/json": {"schema": json},
        "application/x-www-form-urlencoded": {"schema": form},
    }})
}

/// An object whose properties are all present.
fn object(properties: Json) -> Json {
    let required: Vec<Json> = properties
        .as_object()
        .map(|p| p.keys().map(|k| json!(k)).collect())
        .unwrap_or_default();
    json!({"type": "object", "properties": properties, "required": required})
}

/// Who may call an operation, where the document's default (anyone; credentials, when sent,
/// are checked) does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// A bearer token, an API key or the session cookie.
    SignedIn,
    /// A session: a bearer token or the cookie (an API key has no session).
    Session,
    /// The session cookie, or nothing (a body carries what is needed).
    CookieOrNone,
    /// Any of a bearer token, an API key or the session cookie, or none.
    AnyOrNone,
    /// Credentials are not read at all.
    Ignored,
}

/// An error answer of an operation, described once under `components/responses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    MediaType,
    Unprocessable,
    TooMany,
    Timeout,
}

impl Fail {
    const ALL: [Fail; 10] = [
        Fail::BadRequest,
        Fail::Unauthorized,
        Fail::Forbidden,
        Fail::NotFound,
        Fail::Conflict,
        Fail::TooLarge,
        Fail::MediaType,
        Fail::Unprocessable,
        Fail::TooMany,
        Fail::Timeout,
    ];

    fn status(self) -> &'static str {
        match self {
            Fail::BadRequest => "400",
            Fail::Unauthorized => "401",
            Fail::Forbidden => "403",
            Fail::NotFound => "404",
            Fail::Conflict => "409",
            Fail::TooLarge => "413",
            Fail::MediaType => "415",
            Fail::Unprocessable => "422",
            Fail::TooMany => "429",
            Fail::Timeout => "503",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Fail::BadRequest => "BadRequest",
            Fail::Unauthorized => "Unauthorized",
            Fail::Forbidden => "Forbidden",
            Fail::NotFound => "NotFound",
            Fail::Conflict => "Conflict",
            Fail::TooLarge => "PayloadTooLarge",
            Fail::MediaType => "UnsupportedMediaType",
            Fail::Unprocessable => "UnprocessableEntity",
            Fail::TooMany => "TooManyRequests",
            Fail::Timeout => "Timeout",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Fail::BadRequest => {
                "`validation_failed`: the body breaks the field rules (every failing field is in `details`); `bad_request`: malformed JSON, form or query string, a query parameter the route does not take, a bad `filter`/`sort`/`select`/`limit`/`page`, text holding U+0000, a `redirect` that is not a relative path of this site, an `Idempotency-Key` that is malformed, repeated or sent without credentials"
            }
            Fail::Unauthorized => {
                "`unauthorized`: no credentials where they are needed, or refused ones (an `Authorization` header that is not `Bearer <token>`, a bad or ended token, a revoked key); `token_expired`: an expired access token or API key; `invalid_credentials`: a failed login"
            }
            Fail::Forbidden => {
                "`forbidden`: an access rule, a field rule or an API key's scopes deny it; `csrf_failed`: a cookie-authenticated request (or a form post) from another origin; `email_not_verified`: login before the address is verified"
            }
            Fail::NotFound => "`not_found`: no such document, or one the caller may not read",
            Fail::Conflict => {
                "`unique_violation`: a unique field's value is taken (`details[0].field` names it); `conflict`: a `restrict` relation still points at the document, or concurrent writes kept conflicting with a batch (retry it); `idempotency_in_progress`: the first request with this `Idempotency-Key` is still running (retry after `Retry-After` seconds)"
            }
            Fail::TooLarge => "`payload_too_large`: the body is over `server.body_limit`",
            Fail::MediaType => {
                "`unsupported_media_type`: the body is not `application/json` (form routes also take `application/x-www-form-urlencoded`)"
            }
            Fail::Unprocessable => {
                "`idempotency_mismatch`: this `Idempotency-Key` was used for another request (method, path or body)"
            }
            Fail::TooMany => {
                "`account_locked`: too many failed logins for this account; `rate_limited`: password hashing is saturated, retry in a moment"
            }
            Fail::Timeout => "`timeout`: a database statement ran past the time limit; retry later",
        }
    }

    fn response(self) -> Json {
        json!({"description": self.description(), "content": json_content(schema_ref("Error"))})
    }
}

/// One operation, built up from its parts.
struct Operation {
    value: Json,
}

impl Operation {
    fn new(tag: &str, operation_id: String, summary: &str) -> Self {
        Self {
            value: json!({"tags": [tag], "operationId": operation_id, "summary": summary, "responses": {}}),
        }
    }

    fn description(mut self, text: &str) -> Self {
        self.value["description"] = json!(text);
        self
    }

    fn parameters(mut self, parameters: Vec<Json>) -> Self {
        self.value["parameters"] = json!(parameters);
        self
    }

    fn body(mut self, body: Json) -> Self {
        self.value["requestBody"] = body;
        self
    }

    fn security(mut self, who: Security) -> Self {
        let bearer = json!({"bearerAuth": []});
        let key = json!({"apiKey": []});
        let cookie = json!({"cookieAuth": []});
        let security = match who {
            Security::SignedIn => json!([bearer, key, cookie]),
            Security::Session => json!([bearer, cookie]),
            Security::CookieOrNone => json!([cookie, {}]),
            Security::AnyOrNone => json!([bearer, key, cookie, {}]),
            Security::Ignored => json!([]),
        };
        self.value["security"] = security;
        self
    }

    /// A success answer with a JSON body.
    fn answer(mut self, status: &str, description: &str, schema: Json) -> Self {
        self.value["responses"][status] =
            json!({"description": description, "content": json_content(schema)});
        self
    }

    /// The 303 of a form post: to `redirect` on success, to the form page on failure.
    fn see_other(mut self) -> Self {
        self.value["responses"]["303"] = json!({"$ref": "#/components/responses/SeeOther"});
        self
    }

    /// 414, answered by the HTTP layer before Lucent sees the request (no body): the request
    /// line is over 65,534 bytes, which a `filter` near its 16 KiB limit can reach once
    /// percent-encoded.
    fn uri_too_long(mut self) -> Self {
        self.value["responses"]["414"] =
            json!({"description": "the URL is longer than 65,534 bytes"});
        self
    }

    fn header(mut self, status: &str, name: &str, description: &str, required: bool) -> Self {
        self.value["responses"][status]["headers"][name] =
            json!({"description": description, "required": required, "schema": {"type": "string"}});
        self
    }

    /// A link from the `status` answer to the operation `target`.
    fn link(mut self, status: &str, name: &str, target: String, link: Json) -> Self {
        let mut link = link;
        link["operationId"] = json!(target);
        self.value["responses"][status]["links"][name] = link;
        self
    }

    /// An unsafe operation that takes `Idempotency-Key`: the header, the answers only it gives
    /// (409 while the first request runs, 422 for a key reused for another request), and
    /// `Idempotent-Replayed` on the `success` answer when it is a stored one.
    fn idempotent(mut self, success: &str) -> Self {
        let parameter = json!({"$ref": "#/components/parameters/IdempotencyKey"});
        match self.value["parameters"].as_array_mut() {
            Some(parameters) => parameters.push(parameter),
            None => self.value["parameters"] = json!([parameter]),
        }
        self.value["responses"][success]["headers"]["Idempotent-Replayed"] = json!({
            "description": "`true` when this is the stored answer of an earlier request with the same `Idempotency-Key`",
            "schema": {"type": "string", "enum": ["true"]},
        });
        self.errors(&[Fail::Conflict, Fail::Unprocessable])
    }

    fn errors(mut self, fails: &[Fail]) -> Self {
        for fail in fails {
            self.value["responses"][fail.status()] =
                json!({"$ref": format!("#/components/responses/{}", fail.name())});
        }
        self
    }

    fn build(self) -> Json {
        self.value
    }
}

/// The error envelope.
fn error_schema() -> Json {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message", "details", "requestId"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": object(json!({
                    "field": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"},
                }))},
                "requestId": {"type": "string", "description": "the request's id, as in the `X-Request-Id` answer header and the server's log lines"},
            },
        }},
    })
}

/// The `Idempotency-Key` request header.
fn idempotency_key() -> Json {
    json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Makes a retry safe: the first request with a key (per caller: an account or an API key; anonymous callers may not send one) is answered and its 2xx or 4xx answer stored for 24 hours; the same request again gets that answer with `Idempotent-Replayed: true`, without doing the work again. Use a new random key (a UUID) per operation.",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY, "pattern": KEY_PATTERN},
    })
}

/// `GET` and `POST /api/realtime` (docs/realtime.md).
fn realtime() -> Json {
    let body = json!({"required": true, "content": json_content(json!({
        "type": "object",
        "required": ["clientId"],
        "additionalProperties": false,
        "properties": {
            "clientId": {"type": "string", "description": "from the stream's `connect` event"},
            "subscriptions": {"type": "array", "maxItems": 100, "items": {"type": "string", "description": "`collection` or `collection/id`"}},
            "filters": {"type": "object", "additionalProperties": {"type": "string"}, "description": "per topic, a filter expression (as a list's `filter`)"},
        },
    }))});
    json!({
        "get": Operation::new("Realtime", "realtimeStream".into(), "Open a realtime stream")
            .description("Server-Sent Events: first `event: connect` with `{\"clientId\"}`, then one event per committed change of a subscribed topic (`event: <collection>` or `<collection>/<id>`, `data: {\"action\", \"record\"}`), a heartbeat comment every 25 s. The stream ends when the bound credentials end, when the client does not read, and when the server stops.")
            .security(Security::Ignored)
            .build()
            .as_object()
            .cloned()
            .map(|mut op| {
                op["responses"] = json!({
                    "200": {"description": "the event stream", "content": {"text/event-stream": {"schema": {
                        "description": "one event of the stream: `connect` (data `{\"clientId\"}`), then `<collection>` or `<collection>/<id>` (data `{\"action\", \"record\"}`)",
                        "type": "object",
                        "properties": {"event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}, "retry": {"type": "integer"}},
                    }}}},
                    "503": {"description": "`unavailable`: `realtime.max_clients` clients are connected", "content": json_content(schema_ref("Error"))},
                });
                Json::Object(op)
            })
            .unwrap_or_default(),
        "post": Operation::new("Realtime", "realtimeSubscribe".into(), "Set a realtime client's subscriptions")
            .description("Replaces the client's subscriptions and, on the first call, binds this request's credentials to it (later calls need the same credentials). Events are judged with the bound caller's rules.")
            .security(Security::AnyOrNone)
            .body(body)
            .errors(&[Fail::BadRequest, Fail::Unauthorized, Fail::Forbidden, Fail::NotFound, Fail::TooLarge, Fail::MediaType])
            .build()
            .as_object()
            .cloned()
            .map(|mut op| {
                op["responses"]["204"] = json!({"description": "subscriptions set"});
                Json::Object(op)
            })
            .unwrap_or_default(),
    })
}

/// The whole document for `config`.
pub fn document(config: &Config) -> Json {
    let mut paths = Map::new();
    paths.insert(
        "/api/health".into(),
        json!({"get": Operation::new("Server", "health".into(), "Health")
            .security(Security::Ignored)
            .answer("200", "the database answers", object(json!({"status": {"type": "string", "enum": ["ok"]}})))
            .answer("503", "`unavailable`: the database does not answer", schema_ref("Error"))
            .errors(&[Fail::BadRequest])
            .build()}),
    );
    paths.insert("/api/realtime".into(), realtime());
    let mut schemas = Map::new();
    schemas.insert("Error".into(), error_schema());
    schemas.insert(
        "Message".into(),
        object(json!({"message": {"type": "string"}})),
    );
    auth::shared_schemas(&mut schemas);
    let policy = &config.auth.password;
    for collection in &config.schema.collections {
        let slug = &collection.slug;
        collections::paths(config, collection, &mut paths);
        if collection.auth.is_some() {
            auth::paths(config, collection, &mut paths);
            schemas.insert(
                format!("{slug}RegisterForm"),
                schemas::input(collection, policy, schemas::Body::Form),
            );
        }
        schemas.insert(slug.clone(), schemas::document(collection, false));
        schemas.insert(
            format!("{slug}Selected"),
            schemas::document(collection, true),
        );
        schemas.insert(
            format!("{slug}Create"),
            schemas::input(collection, policy, schemas::Body::Create),
        );
        schemas.insert(
            format!("{slug}Update"),
            schemas::input(collection, policy, schemas::Body::Update),
        );
        schemas.insert(format!("{slug}Page"), schemas::page(slug));
        schemas.insert(
            format!("{slug}Expand"),
            expand::component(&config.schema, collection),
        );
    }
    batch::paths(config, &mut paths, &mut schemas);
    let mut responses: Map<String, Json> = Fail::ALL
        .iter()
        .map(|f| (f.name().to_string(), f.response()))
        .collect();
    responses.insert(
        "SeeOther".into(),
        json!({
            "description": "a form post with `redirect`: to that path on success, or back to the form page (`error_redirect`, else the Referer) with `?error=CODE` on failure",
            "headers": {"Location": {"required": true, "description": "where to go", "schema": {"type": "string"}}},
        }),
    );
    let cookie = match config.server.env {
        Env::Prod => "__Host-lucent_session",
        Env::Dev => "lucent_session",
    };
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Lucent API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Generated from lucent.toml. A route answers a query parameter it does not list with 400, and a method it does not have with 405 and `Allow`.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": responses,
            "parameters": {"IdempotencyKey": idempotency_key()},
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "an access token from login, register or refresh"},
                "apiKey": {"type": "http", "scheme": "bearer", "description": "an API key (`lcnt_...`); its scopes limit what it may do"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": cookie, "description": "the session cookie set by login and register; unsafe methods must come from an allowed Origin"},
            },
        },
        "security": [{"bearerAuth": []}, {"apiKey": []}, {"cookieAuth": []}, {}],
    })
}

/// Swagger UI with `document` embedded, using poem-openapi's bundled offline assets (the page
/// template is private to poem-openapi, so its rendering for an empty API is reused with our
/// document put in place of its own).
pub fn swagger_html(document: &str) -> String {
    let empty = poem_openapi::OpenApiService::new((), "Lucent API", env!("CARGO_PKG_VERSION"));
    empty.swagger_ui_html().replace(&empty.spec(), document)
}
