//! `POST /api/batch`: its body (each request one of the collection writes, with that route's own
//! body schema) and its answer (each request's answer as its single route gives it).

use serde_json::{Map, Value as Json, json};

use super::schemas::DOC_ID_PATTERN;
use super::{Fail, Operation, json_body, object, schema_ref};
use crate::config::Config;

pub fn paths(config: &Config, paths: &mut Map<String, Json>, schemas: &mut Map<String, Json>) {
    let max = config.server.max_batch;
    let id = DOC_ID_PATTERN.trim_start_matches('^').trim_end_matches('$');
    let mut requests = Vec::new();
    let mut docs = Vec::new();
    for collection in &config.schema.collections {
        let slug = &collection.slug;
        let url = |pattern: String, description: &str| json!({"type": "string", "pattern": pattern, "description": description});
        let request = |method: &str, url: Json, body: Option<Json>| {
            let mut properties =
                json!({"method": {"type": "string", "enum": [method]}, "url": url});
            if let Some(body) = body {
                properties["body"] = body;
            }
            let mut schema = object(properties);
            schema["additionalProperties"] = json!(false);
            schema
        };
        requests.push(request(
            "POST",
            url(format!("^/api/{slug}$"), &format!("`/api/{slug}`")),
            Some(schema_ref(&format!("{slug}Create"))),
        ));
        let document = url(format!("^/api/{slug}/{id}$"), &format!("`/api/{slug}/:id`"));
        requests.push(request(
            "PATCH",
            document.clone(),
            Some(schema_ref(&format!("{slug}Update"))),
        ));
        requests.push(request("DELETE", document, None));
        docs.push(schema_ref(slug));
    }
    let mut body = object(json!({"requests": {
        "type": "array", "minItems": 1, "maxItems": max, "items": {"oneOf": requests},
        "description": format!("at most {max} (`server.max_batch`)"),
    }}));
    body["additionalProperties"] = json!(false);
    schemas.insert("BatchRequest".into(), body);
    let answer = object(json!({
        "status": {"type": "integer", "enum": [200, 201], "description": "the single route's status"},
        "body": object(json!({"doc": {"anyOf": docs}})),
    }));
    schemas.insert(
        "BatchResponse".into(),
        object(json!({"responses": {"type": "array", "items": answer}})),
    );
    let operation = Operation::new("Batch", "batch".into(), "Several writes, all or nothing")
        .description(
            "Runs every request in one transaction, each exactly as its single route would (the \
             caller's credentials, the access rules, the validation): all are written, or none. \
             On failure the answer is the failing request's own error, its `details` naming the \
             request (`requests[3].title`, or `requests[3]` for an error about the whole \
             request). A body whose shape is wrong (a method other than POST, PATCH and DELETE, \
             a URL that is not a collection's, an auth route) is refused before anything runs: \
             400 `validation_failed`, every problem in `details`.",
        )
        .body(json_body(schema_ref("BatchRequest")))
        .answer(
            "200",
            "every request was written; their answers, in order",
            schema_ref("BatchResponse"),
        )
        .errors(&[
            Fail::BadRequest,
            Fail::Unauthorized,
            Fail::Forbidden,
            Fail::NotFound,
            Fail::Conflict,
            Fail::TooLarge,
            Fail::MediaType,
            Fail::TooMany,
            Fail::Timeout,
        ])
        .idempotent("200")
        .build();
    paths.insert("/api/batch".into(), json!({ "post": operation }));
}
