//! The OpenAPI 3 document, built at startup from the same schema that builds the routes
//! (poem-openapi cannot describe routes that exist only at run time), and the Swagger UI page.

use serde_json::{Map, Value as Json, json};

use crate::config::Config;
use crate::schema::{Collection, Field, FieldKind, FieldRole};

fn field_schema(field: &Field) -> Json {
    let mut schema = match &field.kind {
        FieldKind::String | FieldKind::Text => json!({"type": "string"}),
        FieldKind::Email => json!({"type": "string", "format": "email"}),
        FieldKind::Integer => json!({"type": "integer", "format": "int64"}),
        FieldKind::Number => json!({"type": "number", "format": "double"}),
        FieldKind::Boolean => json!({"type": "boolean"}),
        FieldKind::Select(options) => json!({"type": "string", "enum": options}),
        FieldKind::Datetime => json!({"type": "string", "format": "date-time"}),
        FieldKind::Json => json!({}),
        FieldKind::Relation { to, .. } => {
            json!({"type": "string", "description": format!("id of a {to} document")})
        }
    };
    let object = schema.as_object_mut().expect("built as an object");
    if let Some(n) = field.min_length {
        object.insert("minLength".into(), json!(n));
    }
    if let Some(n) = field.max_length {
        object.insert("maxLength".into(), json!(n));
    }
    if let Some(n) = field.min {
        object.insert("minimum".into(), json!(n));
    }
    if let Some(n) = field.max {
        object.insert("maximum".into(), json!(n));
    }
    if let Some(pattern) = &field.pattern {
        object.insert("pattern".into(), json!(pattern.as_str()));
    }
    if let Some(default) = &field.default {
        object.insert("default".into(), default.to_json());
    }
    if let Some(label) = &field.label {
        object.insert("title".into(), json!(label));
    }
    if let Some(description) = &field.description {
        object.insert("description".into(), json!(description));
    }
    if !field.required && field.kind != FieldKind::Json {
        object.insert("nullable".into(), json!(true));
    }
    schema
}

/// The document as shown: system fields and every field that is not hidden.
fn doc_schema(collection: &Collection) -> Json {
    let mut properties = Map::new();
    properties.insert("id".into(), json!({"type": "string", "readOnly": true}));
    let mut required = vec![json!("id")];
    for field in collection.fields.iter().filter(|f| !f.hidden) {
        properties.insert(field.name.clone(), field_schema(field));
        if field.required {
            required.push(json!(field.name));
        }
    }
    properties.insert(
        "createdAt".into(),
        json!({"type": "string", "format": "date-time", "readOnly": true}),
    );
    properties.insert(
        "updatedAt".into(),
        json!({"type": "string", "format": "date-time", "readOnly": true}),
    );
    required.extend([json!("createdAt"), json!("updatedAt")]);
    json!({"type": "object", "title": collection.label, "properties": properties, "required": required})
}

/// A create body: the fields a client may write (required ones without a default are required).
fn input_schema(collection: &Collection, for_update: bool) -> Json {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in collection
        .fields
        .iter()
        .filter(|f| f.role == FieldRole::Data)
    {
        properties.insert(field.name.clone(), field_schema(field));
        if field.required && field.default.is_none() && !for_update {
            required.push(json!(field.name));
        }
    }
    if collection.auth.is_some() {
        let password = json!({"type": "string", "format": "password", "writeOnly": true});
        properties.insert("password".into(), password.clone());
        if for_update {
            let mut old = password;
            old["description"] =
                json!("the current password, needed to change one's own password or login");
            properties.insert("oldPassword".into(), old);
        } else {
            required.push(json!("password"));
        }
    }
    let mut schema =
        json!({"type": "object", "properties": properties, "additionalProperties": false});
    // OpenAPI 3.0 wants a `required` list to be non-empty when present.
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn schema_ref(name: &str) -> Json {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn json_content(schema: Json) -> Json {
    json!({"application/json": {"schema": schema}})
}

fn error_responses(codes: &[&str]) -> Map<String, Json> {
    codes
        .iter()
        .map(|code| {
            let description = match *code {
                "400" => "bad request or validation failed",
                "401" => "no or invalid credentials",
                "403" => "forbidden",
                "404" => "not found",
                "409" => "unique violation",
                "413" => "payload too large",
                "415" => "unsupported media type",
                _ => "error",
            };
            (
                code.to_string(),
                json!({"description": description, "content": json_content(schema_ref("Error"))}),
            )
        })
        .collect()
}

fn responses(status: &str, description: &str, schema: Json, errors: &[&str]) -> Json {
    let mut all = error_responses(errors);
    all.insert(
        status.into(),
        json!({"description": description, "content": json_content(schema)}),
    );
    Json::Object(all)
}

fn collection_paths(collection: &Collection, paths: &mut Map<String, Json>) {
    let slug = &collection.slug;
    let tag = json!([collection.label]);
    let doc =
        json!({"type": "object", "properties": {"doc": schema_ref(slug)}, "required": ["doc"]});
    let page = schema_ref(&format!("{slug}Page"));
    let query = |name: &str, description: &str, schema: Json| json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema});
    let id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}});
    paths.insert(
        format!("/api/{slug}"),
        json!({
            "get": {
                "tags": tag, "summary": format!("List {}", collection.label), "operationId": format!("list_{slug}"),
                "parameters": [
                    query("filter", "an expression, ANDed with the read rule", json!({"type": "string"})),
                    query("sort", "comma list of fields, `-` for descending (default -createdAt)", json!({"type": "string"})),
                    query("limit", "page size", json!({"type": "integer", "minimum": 1, "default": 20})),
                    query("page", "1-based page", json!({"type": "integer", "minimum": 1, "default": 1})),
                    query("select", "comma list of fields to return (id always)", json!({"type": "string"})),
                ],
                "responses": responses("200", "one page", page, &["400", "401", "404"]),
            },
            "post": {
                "tags": tag, "summary": format!("Create a {} document", collection.label), "operationId": format!("create_{slug}"),
                "requestBody": {"required": true, "content": json_content(schema_ref(&format!("{slug}Create")))},
                "responses": responses("201", "created", doc.clone(), &["400", "401", "403", "404", "409", "413", "415"]),
            },
        }),
    );
    paths.insert(
        format!("/api/{slug}/{{id}}"),
        json!({
            "parameters": [id],
            "get": {
                "tags": tag, "summary": "Get one document", "operationId": format!("get_{slug}"),
                "responses": responses("200", "the document", doc.clone(), &["401", "404"]),
            },
            "patch": {
                "tags": tag, "summary": "Change some fields (null clears a non-required field)", "operationId": format!("update_{slug}"),
                "requestBody": {"required": true, "content": json_content(schema_ref(&format!("{slug}Update")))},
                "responses": responses("200", "the changed document", doc.clone(), &["400", "401", "403", "404", "409", "413", "415"]),
            },
            "delete": {
                "tags": tag, "summary": "Delete a document", "operationId": format!("delete_{slug}"),
                "responses": responses("200", "the document as it was", doc, &["401", "403", "404", "409"]),
            },
        }),
    );
}

/// The auth routes of an auth collection (SPEC §5).
fn auth_paths(collection: &Collection, paths: &mut Map<String, Json>) {
    let slug = &collection.slug;
    let login = collection
        .auth
        .as_ref()
        .map_or("email", |a| a.login_field.as_str());
    let tag = json!([format!("{} auth", collection.label)]);
    let user =
        json!({"type": "object", "properties": {"user": schema_ref(slug)}, "required": ["user"]});
    let tokens = json!({
        "type": "object",
        "properties": {
            "user": schema_ref(slug),
            "token": {"type": "string", "description": "HS256 access token"},
            "refreshToken": {"type": "string"},
            "exp": {"type": "integer", "description": "access-token expiry, unix seconds"},
        },
        "required": ["token", "refreshToken", "exp"],
    });
    let credentials = json!({
        "type": "object",
        "properties": {login: {"type": "string"}, "password": {"type": "string", "format": "password"},
                       "redirect": {"type": "string", "description": "form posts: a relative path to 303 to on success"},
                       "error_redirect": {"type": "string", "description": "form posts with redirect: the page to 303 back to with ?error=CODE on failure (default: the Referer path)"}},
        "required": [login, "password"],
    });
    let form_or_json = |schema: Json| {
        json!({"required": true, "content": {
            "application/json": {"schema": schema.clone()},
            "application/x-www-form-urlencoded": {"schema": schema},
        }})
    };
    let message = json!({"type": "object", "properties": {"message": {"type": "string"}}});
    let refresh_body =
        json!({"type": "object", "properties": {"refreshToken": {"type": "string"}}});
    let session = json!({"type": "object", "properties": {
        "id": {"type": "string"}, "createdAt": {"type": "string", "format": "date-time"},
        "lastUsedAt": {"type": "string", "format": "date-time"}, "expiresAt": {"type": "string", "format": "date-time"},
        "userAgent": {"type": "string", "nullable": true}, "current": {"type": "boolean"},
    }});
    let api_key = json!({"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "scopes": {"type": "array", "nullable": true, "items": {"type": "string", "enum": ["read", "write", "admin"]}},
        "key": {"type": "string", "description": "the whole key; only in the create answer"},
        "prefix": {"type": "string"}, "createdAt": {"type": "string", "format": "date-time"},
        "expiresAt": {"type": "string", "format": "date-time", "nullable": true},
        "lastUsedAt": {"type": "string", "format": "date-time", "nullable": true},
    }});
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
    let op = |summary: &str,
              operation: &str,
              body: Option<Json>,
              status: &str,
              answer: Json,
              errors: &[&str]| {
        let mut op = json!({
            "tags": tag, "summary": summary, "operationId": format!("{operation}_{slug}"),
            "responses": responses(status, summary, answer, errors),
        });
        if let Some(body) = body {
            op["requestBody"] = body;
        }
        op
    };
    let mut add = |path: &str, value: Json| {
        paths.insert(format!("/api/{slug}/{path}"), value);
    };
    add(
        "register",
        json!({"post": op("Create an account and sign in", "register", Some(form_or_json(schema_ref(&format!("{slug}Create")))), "201", tokens.clone(), &["400", "403", "409", "413", "415", "429"])}),
    );
    add(
        "login",
        json!({"post": op("Sign in", "login", Some(form_or_json(credentials)), "200", tokens.clone(), &["400", "401", "403", "429"])}),
    );
    add(
        "refresh",
        json!({"post": op("Rotate the refresh token", "refresh", Some(json!({"content": json_content(refresh_body.clone())})), "200", tokens, &["401", "403"])}),
    );
    add(
        "logout",
        json!({"post": op("End this session", "logout", Some(json!({"content": json_content(refresh_body)})), "200", message.clone(), &["401", "403"])}),
    );
    add(
        "logout-all",
        json!({"post": op("End every session of the account", "logout_all", None, "200", message.clone(), &["401", "403"])}),
    );
    add(
        "me",
        json!({"get": op("The signed-in account", "me", None, "200", user.clone(), &["401", "403"])}),
    );
    add(
        "sessions",
        json!({"get": op("The account's sessions", "sessions", None, "200", json!({"type": "object", "properties": {"sessions": {"type": "array", "items": session}}}), &["401"])}),
    );
    add(
        "sessions/{id}",
        json!({"parameters": id.clone(), "delete": op("End one of the account's sessions", "end_session", None, "200", message.clone(), &["401", "404"])}),
    );
    add(
        "api-keys",
        json!({
            "post": op("Create an API key (the key is shown once)", "create_api_key",
                Some(json!({"required": true, "content": json_content(json!({"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"}, "scopes": {"type": "array", "items": {"type": "string", "enum": ["read", "write", "admin"]}},
                    "expiresAt": {"type": "string", "format": "date-time"}}}))})),
                "201", json!({"type": "object", "properties": {"apiKey": api_key.clone()}}), &["400", "401", "403"]),
            "get": op("The account's API keys (never the secret)", "list_api_keys", None, "200", json!({"type": "object", "properties": {"apiKeys": {"type": "array", "items": api_key}}}), &["401", "403"]),
        }),
    );
    add(
        "api-keys/{id}",
        json!({"parameters": id, "delete": op("Revoke an API key", "revoke_api_key", None, "200", message.clone(), &["401", "403", "404"])}),
    );
    let email = json!({"type": "object", "required": ["email"], "properties": {"email": {"type": "string", "format": "email"}}});
    let token = json!({"type": "object", "required": ["token"], "properties": {"token": {"type": "string"},
        "redirect": {"type": "string", "description": "form posts: a relative path to 303 to on success"}}});
    let reset = json!({"type": "object", "required": ["token", "password"], "properties": {"token": {"type": "string"},
        "password": {"type": "string", "format": "password", "writeOnly": true},
        "redirect": {"type": "string", "description": "form posts: a relative path to 303 to on success"}}});
    let accepted = "accepted; the same answer whether or not the account exists";
    add(
        "send-verification-email",
        json!({"post": op("Mail a verification link", "send_verification_email", Some(json!({"required": true, "content": json_content(email.clone())})), "202", message.clone(), &["400", "404"])}),
    );
    add(
        "verify-email",
        json!({"post": op("Verify an address with a mailed token", "verify_email", Some(form_or_json(token)), "200", user.clone(), &["400", "404"])}),
    );
    add(
        "request-password-reset",
        json!({"post": op("Mail a password-reset link", "request_password_reset", Some(form_or_json(email)), "202", message.clone(), &["400", "404"])}),
    );
    add(
        "reset-password",
        json!({"post": op("Set a new password with a mailed token; every session ends", "reset_password", Some(form_or_json(reset)), "200", message, &["400", "404"])}),
    );
    for path in ["send-verification-email", "request-password-reset"] {
        if let Some(answer) = paths
            .get_mut(&format!("/api/{slug}/{path}"))
            .and_then(|p| p.pointer_mut("/post/responses/202"))
        {
            answer["description"] = json!(accepted);
        }
    }
}

/// The whole document for `config`.
pub fn document(config: &Config) -> Json {
    let mut paths = Map::new();
    paths.insert(
        "/api/health".into(),
        json!({"get": {"summary": "Health", "operationId": "health", "security": [], "responses": {
            "200": {"description": "the database answers", "content": json_content(json!({"type": "object", "properties": {"status": {"type": "string"}}}))}
        }}}),
    );
    let mut schemas = Map::new();
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "array", "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}},
                    }},
                },
            }},
        }),
    );
    for collection in &config.schema.collections {
        let slug = &collection.slug;
        collection_paths(collection, &mut paths);
        if collection.auth.is_some() {
            auth_paths(collection, &mut paths);
        }
        schemas.insert(slug.clone(), doc_schema(collection));
        schemas.insert(format!("{slug}Create"), input_schema(collection, false));
        schemas.insert(format!("{slug}Update"), input_schema(collection, true));
        schemas.insert(
            format!("{slug}Page"),
            json!({
                "type": "object",
                "required": ["docs", "totalDocs", "limit", "page", "totalPages", "hasNextPage", "hasPrevPage"],
                "properties": {
                    "docs": {"type": "array", "items": schema_ref(slug)},
                    "totalDocs": {"type": "integer"}, "limit": {"type": "integer"}, "page": {"type": "integer"},
                    "totalPages": {"type": "integer"}, "hasNextPage": {"type": "boolean"}, "hasPrevPage": {"type": "boolean"},
                },
            }),
        );
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Lucent API", "version": env!("CARGO_PKG_VERSION"), "description": "Generated from lucent.toml."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "an access token from login or refresh"},
                "apiKey": {"type": "http", "scheme": "bearer", "description": "an API key (lcnt_...)"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "lucent_session"},
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
