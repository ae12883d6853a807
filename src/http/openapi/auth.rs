//! The auth routes of SPEC §5 for one auth collection, and the schemas they share (sessions,
//! API keys). Each route states who may call it: `/me`, `/api-keys` and `logout-all` need
//! credentials, `/sessions` a session, and login and the email routes read none.

use serde_json::{Map, Value as Json, json};

use super::schemas::{HEX_ID_PATTERN, NO_NUL, email, password, redirect};
use super::{
    Fail, Operation, Security, form_or_json_body, json_body, json_content, object, schema_ref,
};
use crate::auth::principal::SCOPES;
use crate::config::Config;
use crate::schema::Collection;

/// Longest API key name, in characters.
const MAX_KEY_NAME: usize = 200;

fn time() -> Json {
    json!({"type": "string", "format": "date-time"})
}

fn nullable_time() -> Json {
    json!({"type": "string", "format": "date-time", "nullable": true})
}

fn scopes(description: &str) -> Json {
    json!({"type": "array", "nullable": true, "items": {"type": "string", "enum": SCOPES},
           "description": description})
}

/// `Session`, `ApiKey` and `NewApiKey`: every property is always present.
pub fn shared_schemas(schemas: &mut Map<String, Json>) {
    schemas.insert(
        "Session".into(),
        object(json!({
            "id": {"type": "string", "pattern": HEX_ID_PATTERN},
            "createdAt": time(), "lastUsedAt": time(), "expiresAt": time(),
            "userAgent": {"type": "string", "nullable": true},
            "current": {"type": "boolean", "description": "whether this is the session of the request"},
        })),
    );
    let key = |secret: bool| {
        let mut properties = json!({
            "id": {"type": "string", "pattern": HEX_ID_PATTERN},
            "name": {"type": "string"},
            "scopes": scopes("null: every operation"),
            "prefix": {"type": "string", "description": "the key's first characters, to recognize it"},
            "createdAt": time(),
            "expiresAt": nullable_time(),
        });
        if secret {
            properties["key"] = json!({"type": "string", "description": "the whole key, shown only in this answer"});
        } else {
            properties["lastUsedAt"] = nullable_time();
        }
        object(properties)
    };
    schemas.insert("ApiKey".into(), key(false));
    schemas.insert("NewApiKey".into(), key(true));
}

/// A plain string the server reads as is.
fn string() -> Json {
    json!({"type": "string", "pattern": NO_NUL})
}

/// A body of one or more string fields, all required, that ignores other fields; its form
/// version also takes `redirect`.
fn strings_body(fields: &[(&str, Json)], with_error_redirect: bool) -> Json {
    let mut properties = Map::new();
    for (name, schema) in fields {
        properties.insert((*name).into(), schema.clone());
    }
    let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
    let json_schema = json!({"type": "object", "properties": properties, "required": names});
    let mut form = json_schema.clone();
    form["properties"]["redirect"] =
        redirect("on success, answer 303 to this path of this site instead of the JSON answer");
    if with_error_redirect {
        form["properties"]["error_redirect"] = redirect(
            "with `redirect`: on failure, answer 303 to this path with `?error=CODE` (default: the Referer's path)",
        );
    }
    form_or_json_body(json_schema, form)
}

pub fn paths(config: &Config, collection: &Collection, paths: &mut Map<String, Json>) {
    let Some(options) = &collection.auth else {
        return;
    };
    let slug = &collection.slug;
    let tag = format!("{} auth", collection.label);
    let op = |id: &str, summary: &str| Operation::new(&tag, format!("{id}_{slug}"), summary);
    let to = |id: &str| format!("{id}_{slug}");
    let mut add = |path: &str, method: &str, operation: Json| {
        let entry = paths
            .entry(format!("/api/{slug}/{path}"))
            .or_insert_with(|| json!({}));
        entry[method] = operation;
    };
    let user = object(json!({"user": schema_ref(slug)}));
    let tokens = object(json!({
        "token": {"type": "string", "description": "an access token (HS256 JWT) for `Authorization: Bearer`"},
        "refreshToken": {"type": "string", "description": "trade it at refresh for new tokens"},
        "exp": {"type": "integer", "description": "when the access token expires, in Unix seconds"},
    }));
    let mut signed_in = tokens.clone();
    signed_in["properties"]["user"] = schema_ref(slug);
    signed_in["required"]
        .as_array_mut()
        .expect("built with required")
        .push(json!("user"));
    let message = schema_ref("Message");
    let cookie = "the session cookie (`[auth] cookies`), set or cleared";
    let refresh_link = json!({"requestBody": {"refreshToken": "$response.body#/refreshToken"}});
    let login_field = options.login_field.as_str();
    let mut credentials = Map::new();
    credentials.insert(login_field.into(), string());
    credentials.insert(
        "password".into(),
        json!({"type": "string", "format": "password", "writeOnly": true, "pattern": NO_NUL}),
    );

    let register = op("register", "Create an account and sign in")
        .body(form_or_json_body(
            schema_ref(&format!("{slug}Create")),
            schema_ref(&format!("{slug}RegisterForm")),
        ))
        .see_other()
        .errors(&[
            Fail::BadRequest,
            Fail::Unauthorized,
            Fail::Forbidden,
            Fail::Conflict,
            Fail::TooLarge,
            Fail::MediaType,
            Fail::TooMany,
            Fail::Timeout,
        ]);
    let register = if options.require_verified {
        register
            .description("With `require_verified`, no tokens: the account signs in once its address is verified.")
            .answer("201", "the new account", user.clone())
    } else {
        register
            .answer("201", "the new account, signed in", signed_in.clone())
            .header("201", "Set-Cookie", cookie, false)
            .link("201", "Refresh", to("refresh"), refresh_link.clone())
            .link("201", "Logout", to("logout"), refresh_link.clone())
    };
    let register = register
        .header("201", "Location", "the URL of the new account", true)
        .link(
            "201",
            "GetAccount",
            to("get"),
            json!({"parameters": {"id": "$response.body#/user/id"}}),
        );
    add("register", "post", register.build());

    let login = op("login", "Sign in")
        .security(Security::Ignored)
        .body(strings_body(
            &credentials
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect::<Vec<_>>(),
            true,
        ))
        .answer("200", "signed in", signed_in)
        .header("200", "Set-Cookie", cookie, false)
        .link("200", "Refresh", to("refresh"), refresh_link.clone())
        .link("200", "Logout", to("logout"), refresh_link.clone())
        .see_other()
        .errors(&[
            Fail::BadRequest,
            Fail::Unauthorized,
            Fail::Forbidden,
            Fail::TooLarge,
            Fail::MediaType,
            Fail::TooMany,
            Fail::Timeout,
        ])
        .build();
    add("login", "post", login);

    let refresh_body = json!({"type": "object", "properties": {"refreshToken": string()}});
    let refresh = op("refresh", "Trade a refresh token (or the cookie) for new tokens")
        .description("The refresh token is rotated: the one sent stops working, and sending it again ends the session.")
        .security(Security::CookieOrNone)
        .body(json!({"required": false, "content": json_content(refresh_body.clone())}))
        .answer("200", "new tokens", tokens)
        .link("200", "Refresh", to("refresh"), refresh_link.clone())
        .link("200", "Logout", to("logout"), refresh_link)
        .errors(&[
            Fail::BadRequest,
            Fail::Unauthorized,
            Fail::Forbidden,
            Fail::TooLarge,
            Fail::MediaType,
            Fail::Timeout,
        ])
        .build();
    add("refresh", "post", refresh);

    let mut logout_form = refresh_body.clone();
    logout_form["properties"]["redirect"] =
        redirect("on success, answer 303 to this path of this site instead of the JSON answer");
    logout_form["properties"]["error_redirect"] = redirect(
        "with `redirect`: on failure, answer 303 to this path with `?error=CODE` (default: the Referer's path)",
    );
    let logout = op(
        "logout",
        "End a session: the refresh token's, else the caller's",
    )
    .body(json!({"required": false, "content": {
        "application/json": {"schema": refresh_body},
        "application/x-www-form-urlencoded": {"schema": logout_form},
    }}))
    .answer("200", "the session has ended", message.clone())
    .header("200", "Set-Cookie", cookie, false)
    .see_other()
    .errors(&[
        Fail::BadRequest,
        Fail::Unauthorized,
        Fail::Forbidden,
        Fail::TooLarge,
        Fail::MediaType,
        Fail::Timeout,
    ])
    .build();
    add("logout", "post", logout);

    let logout_all = op("logout_all", "End every session of the account (API keys stay)")
        .security(Security::SignedIn)
        .answer(
            "200",
            "every session has ended",
            object(json!({"message": {"type": "string"}, "sessionsEnded": {"type": "integer", "minimum": 0}})),
        )
        .header("200", "Set-Cookie", cookie, false)
        .errors(&[
            Fail::BadRequest,
            Fail::Unauthorized,
            Fail::Forbidden,
            Fail::Timeout,
        ])
        .build();
    add("logout-all", "post", logout_all);

    let me = op("me", "The signed-in account")
        .security(Security::SignedIn)
        .answer("200", "the account", user.clone())
        .errors(&[
            Fail::BadRequest,
            Fail::Unauthorized,
            Fail::Forbidden,
            Fail::Timeout,
        ]);
    // Relations to this collection can name the signed-in account.
    let mut me = me.link(
        "200",
        "GetAccount",
        to("get"),
        json!({"parameters": {"id": "$response.body#/user/id"}}),
    );
    for other in &config.schema.collections {
        for field in &other.fields {
            if matches!(&field.kind, crate::schema::FieldKind::Relation { to, .. } if to == slug) {
                me = me.link(
                    "200",
                    &format!("Create{}With{}", pascal(&other.slug), pascal(&field.name)),
                    format!("create_{}", other.slug),
                    json!({"requestBody": {field.name.clone(): "$response.body#/user/id"}}),
                );
            }
        }
    }
    add("me", "get", me.build());

    let sessions = op("sessions", "The account's sessions")
        .security(Security::Session)
        .answer(
            "200",
            "every live session",
            object(json!({"sessions": {"type": "array", "items": schema_ref("Session")}})),
        )
        .errors(&[Fail::BadRequest, Fail::Unauthorized, Fail::Timeout])
        .build();
    add("sessions", "get", sessions);
    let hex_id = |what: &str| {
        json!([{"name": "id", "in": "path", "required": true, "description": format!("the {what}'s id"),
                "schema": {"type": "string", "pattern": HEX_ID_PATTERN}}])
    };
    let end_session = op("end_session", "End one of the account's sessions")
        .security(Security::Session)
        .parameters(
            hex_id("session")
                .as_array()
                .cloned()
                .expect("built as an array"),
        )
        .answer("200", "the session has ended", message.clone())
        .errors(&[
            Fail::BadRequest,
            Fail::Unauthorized,
            Fail::Forbidden,
            Fail::NotFound,
            Fail::Timeout,
        ])
        .build();
    add("sessions/{id}", "delete", end_session);

    let new_key = json!({
        "type": "object", "required": ["name"], "additionalProperties": false,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_NAME, "pattern": "^[^\\u0000]*\\S[^\\u0000]*$",
                     "description": "1–200 characters, not only spaces (leading and trailing spaces are dropped)"},
            "scopes": {"type": "array", "minItems": 1, "nullable": true, "items": {"type": "string", "enum": SCOPES},
                       "description": "omitted or null: every operation; a key may only give scopes it has"},
            "expiresAt": {"type": "string", "format": "date-time", "nullable": true,
                          "description": "must be in the future; omitted or null: never"},
        },
    });
    let key_errors = [
        Fail::BadRequest,
        Fail::Unauthorized,
        Fail::Forbidden,
        Fail::Timeout,
    ];
    let create_key = op(
        "create_api_key",
        "Create an API key (the key is shown once)",
    )
    .description("Needs a session, or a key with the `admin` scope.")
    .security(Security::SignedIn)
    .body(json_body(new_key))
    .answer(
        "201",
        "the new key",
        object(json!({"apiKey": schema_ref("NewApiKey")})),
    )
    .header("201", "Location", "the URL of the new key", true)
    .link(
        "201",
        "Revoke",
        to("revoke_api_key"),
        json!({"parameters": {"id": "$response.body#/apiKey/id"}}),
    )
    .errors(&key_errors)
    .errors(&[Fail::TooLarge, Fail::MediaType])
    .build();
    let list_keys = op("list_api_keys", "The account's API keys (never the secret)")
        .security(Security::SignedIn)
        .answer(
            "200",
            "every key of the account",
            object(json!({"apiKeys": {"type": "array", "items": schema_ref("ApiKey")}})),
        )
        .errors(&key_errors)
        .build();
    add("api-keys", "post", create_key);
    add("api-keys", "get", list_keys);
    let revoke_key = op("revoke_api_key", "Revoke an API key")
        .security(Security::SignedIn)
        .parameters(
            hex_id("key")
                .as_array()
                .cloned()
                .expect("built as an array"),
        )
        .answer("200", "the key stops working at once", message.clone())
        .errors(&key_errors)
        .errors(&[Fail::NotFound])
        .build();
    add("api-keys/{id}", "delete", revoke_key);

    let accepted = "accepted; the same answer whether or not the account exists";
    let email_errors = [Fail::BadRequest, Fail::TooLarge, Fail::MediaType];
    let send = op("send_verification_email", "Mail a verification link")
        .security(Security::Ignored)
        .body(strings_body(&[("email", email())], false))
        .answer("202", accepted, message.clone())
        .see_other()
        .errors(&email_errors)
        .build();
    add("send-verification-email", "post", send);
    let verify = op("verify_email", "Verify an address with a mailed token")
        .security(Security::Ignored)
        .body(strings_body(&[("token", string())], false))
        .answer("200", "the account, verified", user)
        .see_other()
        .errors(&email_errors)
        .errors(&[Fail::Timeout])
        .build();
    add("verify-email", "post", verify);
    let request_reset = op("request_password_reset", "Mail a password-reset link")
        .security(Security::Ignored)
        .body(strings_body(&[("email", email())], false))
        .answer("202", accepted, message.clone())
        .see_other()
        .errors(&email_errors)
        .build();
    add("request-password-reset", "post", request_reset);
    let reset = op(
        "reset_password",
        "Set a new password with a mailed token; every session ends",
    )
    .security(Security::Ignored)
    .body(strings_body(
        &[
            ("token", string()),
            ("password", password(&config.auth.password)),
        ],
        false,
    ))
    .answer("200", "the password is changed", message)
    .see_other()
    .errors(&email_errors)
    .errors(&[Fail::TooMany, Fail::Timeout])
    .build();
    add("reset-password", "post", reset);
}

/// `posts_archive` → `PostsArchive`, for link names.
fn pascal(name: &str) -> String {
    name.split(['_', '-'])
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}
