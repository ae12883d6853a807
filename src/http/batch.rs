//! `POST /api/batch`: several collection writes in one transaction (SPEC §10). The body is parsed
//! and every request's shape checked here ([`Batch`]), before the caller is authenticated and the
//! database touched — every problem at once, each named `requests[i].…`; [`crate::records::Records::batch`] runs them; each answer is
//! rendered as its single route renders it ([`written`]). A failure is the failing request's own
//! error, its `details` naming the request.
//!
//! The handler is a plain function of the body, the caller and the state, so a wrapper (retries
//! under `Idempotency-Key`) can run it like any other write route.

use poem::web::Data;
use poem::{FromRequest, Request, RequestBody, Response, handler};
use serde_json::{Map, Value as Json, json};

use super::State;
use super::answer::ok;
use super::collections::written;
use super::error::ApiError;
use super::extract::{JsonBody, state};
use crate::auth::Principal;
use crate::records::{self, Failed, Operation};
use crate::schema::{FieldError, RESERVED_SLUGS, Schema};

/// What the `url` of a batched request may be.
const BATCHABLE: &str =
    "only POST /api/C, PATCH /api/C/:id and DELETE /api/C/:id of a collection can be batched";

/// A batch body whose every request is well-formed: read and checked before the caller is
/// authenticated (it needs nothing but the schema), so a malformed batch costs no lookup.
pub struct Batch(Vec<Operation>);

impl<'a> FromRequest<'a> for Batch {
    async fn from_request(request: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let JsonBody(body) = JsonBody::from_request(request, body).await?;
        let lucent = &state(request).lucent;
        let operations = parse(
            &body,
            lucent.records.schema(),
            lucent.config.server.max_batch,
        )
        .map_err(|problems| ApiError::from(records::Error::Validation(problems)))?;
        Ok(Self(operations))
    }
}

#[handler]
pub async fn batch(
    Batch(operations): Batch,
    principal: Principal,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let done = state
        .lucent
        .records
        .batch(&principal, &operations)
        .await
        .map_err(failed)?;
    let responses: Vec<Json> = done
        .into_iter()
        .map(|done| {
            let answer = written(done.change, &done.collection, done.doc);
            json!({"status": answer.status.as_u16(), "body": answer.body})
        })
        .collect();
    Ok(ok(&json!({ "responses": responses })))
}

/// The error of a failed batch: the failing request's own, its details named after the request
/// (`title` → `requests[3].title`), or one detail `requests[3]` for an error without any. A 500
/// stays bare.
fn failed(failed: Failed) -> ApiError {
    let mut error = ApiError::from(failed.error);
    let Some(index) = failed.index else {
        return error;
    };
    if error.status.is_server_error() && error.code == "internal" {
        return error;
    }
    let at = format!("requests[{index}]");
    if error.details.is_empty() {
        error
            .details
            .push(FieldError::new(&at, error.code, error.message.clone()));
    }
    for detail in &mut error.details {
        detail.field = if detail.field.is_empty() || detail.field == at {
            at.clone()
        } else {
            format!("{at}.{}", detail.field)
        };
    }
    error
}

/// The operations of a batch body, or every problem with its shape.
fn parse(body: &Json, schema: &Schema, max: usize) -> Result<Vec<Operation>, Vec<FieldError>> {
    let Some(object) = body.as_object() else {
        return Err(vec![FieldError::new(
            "",
            "invalid_type",
            "the body must be a JSON object",
        )]);
    };
    let mut problems = unknown_keys(object, &["requests"], "");
    let requests = match object.get("requests") {
        Some(Json::Array(requests)) => requests,
        Some(_) => {
            problems.push(FieldError::new(
                "requests",
                "invalid_type",
                "requests must be an array",
            ));
            return Err(problems);
        }
        None => {
            problems.push(FieldError::new(
                "requests",
                "required",
                "requests is required (an array of requests)",
            ));
            return Err(problems);
        }
    };
    if requests.is_empty() {
        problems.push(FieldError::new(
            "requests",
            "too_short",
            "requests must hold at least one request",
        ));
    }
    if requests.len() > max {
        problems.push(FieldError::new(
            "requests",
            "too_long",
            format!("a batch holds at most {max} requests (server.max_batch)"),
        ));
        return Err(problems);
    }
    let mut operations = Vec::with_capacity(requests.len());
    for (index, request) in requests.iter().enumerate() {
        match parse_request(&format!("requests[{index}]"), request, schema) {
            Ok(operation) => operations.push(operation),
            Err(mut more) => problems.append(&mut more),
        }
    }
    if problems.is_empty() {
        Ok(operations)
    } else {
        Err(problems)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Post,
    Patch,
    Delete,
}

/// One request of a batch (`at` is its name, `requests[i]`).
fn parse_request(at: &str, request: &Json, schema: &Schema) -> Result<Operation, Vec<FieldError>> {
    let Some(object) = request.as_object() else {
        return Err(vec![FieldError::new(
            at,
            "invalid_type",
            "a request must be an object with method, url and body",
        )]);
    };
    let mut problems = unknown_keys(object, &["method", "url", "body"], at);
    let method = match object.get("method") {
        Some(Json::String(method)) if method == "POST" => Some(Method::Post),
        Some(Json::String(method)) if method == "PATCH" => Some(Method::Patch),
        Some(Json::String(method)) if method == "DELETE" => Some(Method::Delete),
        Some(_) => {
            problems.push(FieldError::new(
                &format!("{at}.method"),
                "invalid_option",
                "method must be \"POST\", \"PATCH\" or \"DELETE\"",
            ));
            None
        }
        None => {
            problems.push(FieldError::new(
                &format!("{at}.method"),
                "required",
                "method is required",
            ));
            None
        }
    };
    let route = match object.get("url") {
        Some(Json::String(url)) => match route(url, schema) {
            Ok(route) => Some(route),
            Err((code, message)) => {
                problems.push(FieldError::new(&format!("{at}.url"), code, message));
                None
            }
        },
        Some(_) => {
            problems.push(FieldError::new(
                &format!("{at}.url"),
                "invalid_type",
                "url must be a string",
            ));
            None
        }
        None => {
            problems.push(FieldError::new(
                &format!("{at}.url"),
                "required",
                "url is required",
            ));
            None
        }
    };
    let body = object.get("body");
    let body_at = format!("{at}.body");
    match (method, body) {
        (Some(Method::Post | Method::Patch), Some(Json::Object(_)))
        | (Some(Method::Delete), None) => {}
        (Some(Method::Post | Method::Patch), Some(_)) => problems.push(FieldError::new(
            &body_at,
            "invalid_type",
            "body must be a JSON object",
        )),
        (Some(Method::Post | Method::Patch), None) => problems.push(FieldError::new(
            &body_at,
            "required",
            "body is required (a JSON object)",
        )),
        (Some(Method::Delete), Some(_)) => problems.push(FieldError::new(
            &body_at,
            "unknown_field",
            "a DELETE takes no body",
        )),
        (None, _) => {}
    }
    let (Some(method), Some((collection, id))) = (method, route) else {
        return Err(problems);
    };
    let operation = match (method, id) {
        (Method::Post, None) => Operation::Create {
            collection,
            body: body.cloned().unwrap_or_default(),
        },
        (Method::Patch, Some(id)) => Operation::Update {
            collection,
            id,
            body: body.cloned().unwrap_or_default(),
        },
        (Method::Delete, Some(id)) => Operation::Delete { collection, id },
        (Method::Post, Some(_)) => {
            problems.push(FieldError::new(
                &format!("{at}.url"),
                "not_batchable",
                "POST takes a collection's URL, /api/C",
            ));
            return Err(problems);
        }
        (Method::Patch | Method::Delete, None) => {
            problems.push(FieldError::new(
                &format!("{at}.url"),
                "not_batchable",
                "PATCH and DELETE take a document's URL, /api/C/:id",
            ));
            return Err(problems);
        }
    };
    if problems.is_empty() {
        Ok(operation)
    } else {
        Err(problems)
    }
}

/// The collection and document id a batched `url` names: `/api/C` or `/api/C/:id`, where `C` is
/// a collection and `:id` a document id. Anything else — a query string, Lucent's own routes,
/// the auth routes (`/api/users/login`, `/api/users/me`, `/api/users/sessions/:id`, ...) — is
/// refused with the detail's code and message.
fn route(url: &str, schema: &Schema) -> Result<(String, Option<String>), (&'static str, String)> {
    let not_batchable = || ("not_batchable", format!("{url:?}: {BATCHABLE}"));
    let Some(path) = url.strip_prefix("/api/") else {
        return Err(not_batchable());
    };
    if path.contains(['?', '#']) {
        return Err((
            "not_batchable",
            "a batched url takes no query string".into(),
        ));
    }
    let segments: Vec<&str> = path.split('/').collect();
    let (slug, id) = match segments.as_slice() {
        [slug] => (*slug, None),
        // Every other route under a collection (login, me, sessions, api-keys, ...) is a word.
        [slug, id] if is_doc_id(id) => (*slug, Some((*id).to_string())),
        _ => return Err(not_batchable()),
    };
    if RESERVED_SLUGS.contains(&slug) {
        return Err(not_batchable());
    }
    match schema.get(slug) {
        Some(collection) => Ok((collection.slug.clone(), id)),
        None => Err((
            "unknown_collection",
            format!("there is no collection {slug:?}"),
        )),
    }
}

/// A document id as Lucent makes them: a UUID, lower-case hex in groups of 8-4-4-4-12.
fn is_doc_id(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => matches!(c, '0'..='9' | 'a'..='f'),
        })
}

/// An `unknown_field` problem for every key of `object` not in `known` (`at` names the object).
fn unknown_keys(object: &Map<String, Json>, known: &[&str], at: &str) -> Vec<FieldError> {
    object
        .keys()
        .filter(|key| !known.contains(&key.as_str()))
        .map(|key| {
            let field = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            FieldError::new(&field, "unknown_field", format!("unknown field {key:?}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{is_doc_id, parse};
    use crate::config::{Source, build_schema};
    use crate::records::Operation;
    use crate::schema::Schema;

    const ID: &str = "0190f4a2-7c3b-7d41-9a2e-5b6c7d8e9f01";

    fn schema() -> Schema {
        let source = |slug: &str, table: &str| Source {
            file: "t".into(),
            prefix: String::new(),
            slug: Some(slug.into()),
            table: toml::from_str(table).unwrap(),
        };
        build_schema(vec![
            source("posts", "[fields]\ntitle = { type = \"string\" }\n"),
            source("users", "auth = true\n"),
        ])
        .unwrap()
    }

    /// The problems of a body, as `field code` lines.
    fn problems(body: serde_json::Value, max: usize) -> Vec<String> {
        match parse(&body, &schema(), max) {
            Ok(operations) => panic!("parsed: {operations:?}"),
            Err(problems) => problems
                .iter()
                .map(|p| format!("{} {}", p.field, p.code))
                .collect(),
        }
    }

    #[test]
    fn well_formed_requests_become_operations() {
        let body = json!({"requests": [
            {"method": "POST", "url": "/api/posts", "body": {"title": "a"}},
            {"method": "PATCH", "url": format!("/api/posts/{ID}"), "body": {}},
            {"method": "DELETE", "url": format!("/api/users/{ID}")},
        ]});
        let operations = parse(&body, &schema(), 3).unwrap();
        assert_eq!(
            operations,
            [
                Operation::Create {
                    collection: "posts".into(),
                    body: json!({"title": "a"})
                },
                Operation::Update {
                    collection: "posts".into(),
                    id: ID.into(),
                    body: json!({})
                },
                Operation::Delete {
                    collection: "users".into(),
                    id: ID.into()
                },
            ]
        );
    }

    #[test]
    fn every_shape_problem_is_named() {
        let cases: Vec<(serde_json::Value, usize, Vec<&str>)> = vec![
            (json!([]), 5, vec![" invalid_type"]),
            (json!({}), 5, vec!["requests required"]),
            (json!({"requests": {}}), 5, vec!["requests invalid_type"]),
            (
                json!({"requests": [], "x": 1}),
                5,
                vec!["x unknown_field", "requests too_short"],
            ),
            (
                json!({"requests": vec![json!({"method": "DELETE", "url": format!("/api/posts/{ID}")}); 3]}),
                2,
                vec!["requests too_long"],
            ),
            (
                json!({"requests": [1]}),
                5,
                vec!["requests[0] invalid_type"],
            ),
            (
                json!({"requests": [{"method": "GET", "url": "/api/posts", "headers": {}}]}),
                5,
                vec![
                    "requests[0].headers unknown_field",
                    "requests[0].method invalid_option",
                ],
            ),
            (
                json!({"requests": [{"method": "post", "url": "/api/posts", "body": {}}]}),
                5,
                vec!["requests[0].method invalid_option"],
            ),
            (
                json!({"requests": [{"url": 7, "body": []}]}),
                5,
                vec![
                    "requests[0].method required",
                    "requests[0].url invalid_type",
                ],
            ),
            (
                json!({"requests": [
                    {"method": "POST", "url": "/api/posts", "body": {}},
                    {"method": "POST", "url": "/api/users/login", "body": {}},
                    {"method": "POST", "url": "/api/users/register", "body": {}},
                    {"method": "PATCH", "url": "/api/users/me", "body": {}},
                    {"method": "DELETE", "url": format!("/api/users/sessions/{ID}")},
                    {"method": "POST", "url": "/api/auth/login", "body": {}},
                    {"method": "POST", "url": "/api/users/api-keys", "body": {}},
                ]}),
                9,
                vec![
                    "requests[1].url not_batchable",
                    "requests[2].url not_batchable",
                    "requests[3].url not_batchable",
                    "requests[4].url not_batchable",
                    "requests[5].url not_batchable",
                    "requests[6].url not_batchable",
                ],
            ),
            (
                json!({"requests": [
                    {"method": "POST", "url": "/api/batch", "body": {}},
                    {"method": "POST", "url": "/api/health", "body": {}},
                    {"method": "POST", "url": "/api/posts?x=1", "body": {}},
                    {"method": "POST", "url": "http://localhost/api/posts", "body": {}},
                    {"method": "POST", "url": "/api/nope", "body": {}},
                    {"method": "PATCH", "url": "/api/posts/", "body": {}},
                    {"method": "PATCH", "url": format!("/api/posts/{}", ID.to_uppercase()), "body": {}},
                ]}),
                9,
                vec![
                    "requests[0].url not_batchable",
                    "requests[1].url not_batchable",
                    "requests[2].url not_batchable",
                    "requests[3].url not_batchable",
                    "requests[4].url unknown_collection",
                    "requests[5].url not_batchable",
                    "requests[6].url not_batchable",
                ],
            ),
            (
                json!({"requests": [
                    {"method": "POST", "url": format!("/api/posts/{ID}"), "body": {}},
                    {"method": "PATCH", "url": "/api/posts", "body": {}},
                    {"method": "DELETE", "url": "/api/posts"},
                    {"method": "POST", "url": "/api/posts"},
                    {"method": "PATCH", "url": format!("/api/posts/{ID}"), "body": "x"},
                    {"method": "DELETE", "url": format!("/api/posts/{ID}"), "body": {}},
                ]}),
                9,
                vec![
                    "requests[0].url not_batchable",
                    "requests[1].url not_batchable",
                    "requests[2].url not_batchable",
                    "requests[3].body required",
                    "requests[4].body invalid_type",
                    "requests[5].body unknown_field",
                ],
            ),
        ];
        for (body, max, expected) in cases {
            assert_eq!(problems(body.clone(), max), expected, "{body}");
        }
    }

    #[test]
    fn document_ids_are_lower_case_uuids() {
        assert!(is_doc_id(ID));
        for bad in [
            "",
            "login",
            "0190F4A2-7C3B-7D41-9A2E-5B6C7D8E9F01",
            "0190f4a27c3b7d419a2e5b6c7d8e9f01",
            "0190f4a2-7c3b-7d41-9a2e-5b6c7d8e9f0g",
            "0190f4a2-7c3b-7d41-9a2e-5b6c7d8e9f011",
        ] {
            assert!(!is_doc_id(bad), "{bad}");
        }
    }
}
