//! The routes of SPEC §3 for one collection, with `links` that chain create → get → update →
//! delete, so testing tools (schemathesis's stateful phase) can follow a document's life.

use serde_json::{Map, Value as Json, json};

use super::schemas::{DOC_ID_PATTERN, list_parameters};
use super::{Fail, Operation, expand, json_body, object, schema_ref};
use crate::config::Config;
use crate::schema::Collection;

/// The path parameter of a document route.
pub fn id_parameter() -> Json {
    json!({"name": "id", "in": "path", "required": true, "description": "the document's id",
           "schema": {"type": "string", "format": "uuid", "pattern": DOC_ID_PATTERN}})
}

/// A link passing the document id found at `pointer` of an answer.
fn with_id(pointer: &str) -> Json {
    json!({"parameters": {"id": format!("$response.body#{pointer}")}})
}

pub fn paths(config: &Config, collection: &Collection, paths: &mut Map<String, Json>) {
    let slug = &collection.slug;
    let label = &collection.label;
    let doc = object(json!({"doc": schema_ref(slug)}));
    // Writing an account hashes a password, which is refused when hashing is saturated.
    let hashing: &[Fail] = if collection.auth.is_some() {
        &[Fail::TooMany]
    } else {
        &[]
    };
    let op = |id: &str, summary: &str| Operation::new(label, format!("{id}_{slug}"), summary);
    let to = |id: &str| format!("{id}_{slug}");
    let expand = expand::parameter(&config.schema, collection);
    let mut list_parameters = list_parameters(collection, config.server.max_limit);
    list_parameters.extend(expand.clone());
    let list = op("list", &format!("List {label}"))
        .description("Only documents the read rule lets the caller see are listed and counted.")
        .parameters(list_parameters)
        .answer("200", "one page", schema_ref(&format!("{slug}Page")))
        .uri_too_long()
        .errors(&[
            Fail::BadRequest,
            Fail::Unauthorized,
            Fail::Forbidden,
            Fail::Timeout,
        ])
        .build();
    let create = op("create", &format!("Create a {label} document"))
        .body(json_body(schema_ref(&format!("{slug}Create"))))
        .answer("201", "created", doc.clone())
        .header("201", "Location", "the URL of the new document", true)
        .link("201", "GetCreated", to("get"), with_id("/doc/id"))
        .link("201", "UpdateCreated", to("update"), with_id("/doc/id"))
        .link("201", "DeleteCreated", to("delete"), with_id("/doc/id"))
        .idempotent("201")
        .errors(&[
            Fail::BadRequest,
            Fail::Unauthorized,
            Fail::Forbidden,
            Fail::Conflict,
            Fail::TooLarge,
            Fail::MediaType,
            Fail::Timeout,
        ])
        .errors(hashing)
        .build();
    paths.insert(format!("/api/{slug}"), json!({"get": list, "post": create}));

    let get = op("get", "Get one document")
        .parameters(expand.into_iter().collect())
        .answer("200", "the document", doc.clone())
        .link("200", "Update", to("update"), with_id("/doc/id"))
        .link("200", "Delete", to("delete"), with_id("/doc/id"))
        .errors(&[
            Fail::BadRequest,
            Fail::Unauthorized,
            Fail::Forbidden,
            Fail::NotFound,
            Fail::Timeout,
        ])
        .build();
    let update = op(
        "update",
        "Change some fields (null clears a non-required field)",
    )
    .body(json_body(schema_ref(&format!("{slug}Update"))))
    .answer("200", "the changed document", doc.clone())
    .link("200", "Get", to("get"), with_id("/doc/id"))
    .link("200", "Delete", to("delete"), with_id("/doc/id"))
    .idempotent("200")
    .errors(&[
        Fail::BadRequest,
        Fail::Unauthorized,
        Fail::Forbidden,
        Fail::NotFound,
        Fail::Conflict,
        Fail::TooLarge,
        Fail::MediaType,
        Fail::Timeout,
    ])
    .errors(hashing)
    .build();
    let delete = op("delete", "Delete a document")
        .answer("200", "the document as it was", doc)
        .idempotent("200")
        .errors(&[
            Fail::BadRequest,
            Fail::Unauthorized,
            Fail::Forbidden,
            Fail::NotFound,
            Fail::Conflict,
            Fail::Timeout,
        ])
        .build();
    paths.insert(
        format!("/api/{slug}/{{id}}"),
        json!({"parameters": [id_parameter()], "get": get, "patch": update, "delete": delete}),
    );
}
