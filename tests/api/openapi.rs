//! The OpenAPI document, and the server behaviour it states. The document's shape is checked
//! here; third-party tools check it against a running example project when `.ci/run` provides
//! them: openapi-spec-validator, schemathesis (every check, signed in, following `links`) and a
//! typed TypeScript client (openapi-typescript with its default options, `tsc --strict`, a
//! register → CRUD → API key → logout flow). Without their variables those tests say "skipped";
//! with a variable set to a missing tool they fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

use crate::auth::PASSWORD;
use crate::helpers::{Backend, Server, assert_error, backends, decode, lucent_bin};

const EXAMPLE_CONFIG: &str = include_str!("../../lucent.toml");
const EXAMPLE_POSTS: &str = include_str!("../../schemas/posts.toml");

/// The example project (`lucent.toml` and `schemas/`) in a temp folder.
pub(crate) async fn example(backend: &Backend) -> Server {
    Server::start_with(
        backend,
        EXAMPLE_CONFIG,
        &[("schemas/posts.toml", EXAMPLE_POSTS)],
        &[],
    )
    .await
}

/// A tool `.ci/run` installs, named by `variable`: `None` (the test is skipped) when unset.
///
/// # Panics
/// When the variable names a path that does not exist: a broken install must fail, not skip.
pub(crate) fn tool(variable: &str) -> Option<PathBuf> {
    match std::env::var_os(variable) {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            assert!(
                path.exists(),
                "{variable}={} does not exist",
                path.display()
            );
            Some(path)
        }
        _ => {
            eprintln!("skipped: {variable} is not set (.ci/run sets it)");
            None
        }
    }
}

pub(crate) fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

const CONFIG: &str = r#"
[server]
max_limit = 50
max_batch = 7
[auth.password]
min_length = 14
max_length = 100

[collections.users]
auth = true
[collections.users.fields]
name = { type = "string", max_length = 100 }
role = { type = "select", options = ["admin", "user"], default = "user", access = { create = "user.role == 'admin'", update = "user.role == 'admin'" } }
follows = { type = "relation", to = "users", many = true }

[collections.members]
auth = { require_verified = true }

[collections.posts.fields]
title  = { type = "string", required = true, max_length = 20 }
slug   = { type = "string", pattern = "[a-z]+" }
status = { type = "select", options = ["draft", "published"], default = "draft" }
views  = { type = "integer", default = 0, min = 0 }
note   = { type = "string", access = { read = "user != null" } }
secret = { type = "string", hidden = true }
meta   = { type = "json" }
author = { type = "relation", to = "users" }
related = { type = "relation", to = "posts", many = true, max_items = 7 }
[collections.posts.access]
update = "user != null && doc.author == user.id"
delete = "user != null && doc.author == user.id"
[collections.users.access]
update = "user != null && doc.id == user.id"
delete = "user.role == 'admin'"
[collections.members.access]
update = "user != null && doc.id == user.id"
delete = "user != null && doc.id == user.id"
"#;

/// Every value under `value` whose key is `key`.
fn find_key<'a>(value: &'a Value, key: &str, found: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == key {
                    found.push(v);
                }
                find_key(v, key, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| find_key(v, key, found)),
        _ => {}
    }
}

fn statuses(operation: &Value) -> Vec<&str> {
    operation["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

#[tokio::test]
async fn document_states_the_schemas_limits_and_answers() {
    let server = Server::start(&Backend::Sqlite, CONFIG).await;
    let (status, document) = server.get("/api/openapi.json").await;
    assert_eq!(status, 200);
    let schemas = &document["components"]["schemas"];
    let paths = &document["paths"];

    // Answers: a whole document has every field it can show; `select` leaves only `id` sure.
    let posts = &schemas["posts"];
    assert_eq!(
        posts["required"],
        json!([
            "id",
            "title",
            "slug",
            "status",
            "views",
            "meta",
            "author",
            "related",
            "createdAt",
            "updatedAt"
        ]),
        "all but the field a read rule can withhold"
    );
    // A to-many relation answers an array of ids, never null.
    assert_eq!(
        posts["properties"]["related"],
        json!({
            "type": "array",
            "items": {"type": "string", "format": "uuid"},
            "description": "ids of posts documents, in order"
        })
    );
    assert!(posts["properties"].get("secret").is_none());
    assert_eq!(
        posts["properties"]["status"]["enum"],
        json!(["draft", "published", null])
    );
    assert_eq!(schemas["postsSelected"]["required"], json!(["id"]));
    assert_eq!(
        schemas["postsPage"]["properties"]["docs"]["items"]["$ref"],
        "#/components/schemas/postsSelected"
    );
    assert!(schemas["users"]["properties"].get("password").is_none());

    // `expand`: what a document's `expand` may hold (the related documents, whole), and a
    // parameter whose pattern spells out the paths every caller may expand.
    let doc_ref = |slug: &str| json!({"$ref": format!("#/components/schemas/{slug}")});
    for name in ["posts", "postsSelected"] {
        assert_eq!(
            schemas[name]["properties"]["expand"],
            doc_ref("postsExpand")
        );
    }
    let expand = &schemas["postsExpand"]["properties"];
    assert_eq!(schemas["postsExpand"]["additionalProperties"], false);
    assert_eq!(expand["author"], doc_ref("users"));
    assert_eq!(
        expand["related"],
        json!({"type": "array", "items": doc_ref("posts"), "maxItems": 7})
    );
    assert_eq!(
        expand["posts_via_related"],
        json!({"type": "array", "items": doc_ref("posts"), "maxItems": 100})
    );
    let users_expand = &schemas["usersExpand"]["properties"];
    assert_eq!(users_expand["follows"]["items"], doc_ref("users"));
    assert_eq!(users_expand["posts_via_author"]["items"], doc_ref("posts"));
    assert_eq!(users_expand["users_via_follows"]["maxItems"], 100);
    assert!(
        schemas["membersExpand"]["properties"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    for (path, method) in [("/api/posts", "get"), ("/api/posts/{id}", "get")] {
        let parameters = paths[path][method]["parameters"].as_array().unwrap();
        let expand = parameters
            .iter()
            .find(|p| p["name"] == "expand")
            .unwrap_or_else(|| panic!("{path}: no expand"));
        let pattern = regex::Regex::new(expand["schema"]["pattern"].as_str().unwrap()).unwrap();
        let ten = ["author"; 10].join(",");
        for ok in [
            "author",
            "author.posts_via_author.related",
            "related.related.related",
            "author,related,posts_via_related,author.follows",
            ten.as_str(),
        ] {
            assert!(pattern.is_match(ok), "{path}: {ok}");
        }
        let eleven = ["author"; 11].join(",");
        for refused in [
            "",
            "nope",
            "author.nope",
            "author,",
            "related.related.related.related",
            "title",
            eleven.as_str(),
        ] {
            assert!(!pattern.is_match(refused), "{path}: {refused}");
        }
    }
    // Nothing to expand, no parameter.
    let members = paths["/api/members"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert!(members.iter().all(|p| p["name"] != "expand"));

    // Bodies: no `default` (generators make such properties required); hidden fields writable
    // but write-only; the limits the server checks.
    for name in [
        "postsCreate",
        "postsUpdate",
        "usersCreate",
        "usersUpdate",
        "usersRegisterForm",
    ] {
        let mut defaults = Vec::new();
        find_key(&schemas[name], "default", &mut defaults);
        assert!(defaults.is_empty(), "{name} has a default: {defaults:?}");
        assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
    }
    let create = &schemas["postsCreate"];
    assert_eq!(create["required"], json!(["title"]));
    assert_eq!(create["properties"]["secret"]["writeOnly"], true);
    assert_eq!(create["properties"]["slug"]["pattern"], "^(?:[a-z]+)$");
    assert_eq!(create["properties"]["title"]["maxLength"], 20);
    assert_eq!(create["properties"]["views"]["minimum"], 0);
    let related = &create["properties"]["related"];
    assert_eq!(
        (
            &related["type"],
            &related["maxItems"],
            &related["minItems"],
            &related["uniqueItems"],
            &related["nullable"],
        ),
        (
            &json!("array"),
            &json!(7),
            &json!(0),
            &json!(true),
            &json!(true)
        )
    );
    assert!(related["items"]["pattern"].is_string());
    assert!(schemas["postsUpdate"].get("required").is_none());
    let password = &schemas["usersCreate"]["properties"]["password"];
    assert_eq!(
        (&password["minLength"], &password["maxLength"]),
        (&json!(14), &json!(100))
    );
    assert_eq!(
        schemas["usersCreate"]["required"],
        json!(["email", "password"])
    );
    let form = &schemas["usersRegisterForm"]["properties"];
    assert!(form["redirect"]["pattern"].is_string());
    assert!(form["error_redirect"].is_object());
    assert!(form.get("role").is_some() && form.get("verified").is_none());
    assert!(
        form.get("follows").is_none(),
        "a form value is one string: it cannot carry a list"
    );
    assert_eq!(
        schemas["usersCreate"]["properties"]["follows"]["type"],
        "array"
    );

    // A batch: at most max_batch requests, each one collection write with that route's body.
    let requests = &schemas["BatchRequest"]["properties"]["requests"];
    assert_eq!(
        (&requests["minItems"], &requests["maxItems"]),
        (&json!(1), &json!(7))
    );
    let kinds: Vec<String> = requests["items"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let body = r["properties"]["body"]["$ref"].as_str().unwrap_or("none");
            format!(
                "{} {} {body}",
                r["properties"]["method"]["enum"][0], r["properties"]["url"]["pattern"]
            )
        })
        .collect();
    let id = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
    let mut expected = Vec::new();
    for slug in ["users", "members", "posts"] {
        let schema = |name: &str| format!("#/components/schemas/{slug}{name}");
        expected.push(format!("\"POST\" \"^/api/{slug}$\" {}", schema("Create")));
        expected.push(format!(
            "\"PATCH\" \"^/api/{slug}/{id}$\" {}",
            schema("Update")
        ));
        expected.push(format!("\"DELETE\" \"^/api/{slug}/{id}$\" none"));
    }
    assert_eq!(kinds, expected);
    let answer_docs = &schemas["BatchResponse"]["properties"]["responses"]["items"]["properties"]["body"]
        ["properties"]["doc"]["anyOf"];
    assert_eq!(answer_docs.as_array().unwrap().len(), 3);

    // Parameters.
    let list = &paths["/api/posts"]["get"];
    let parameter = |name: &str| {
        list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["schema"]
            .clone()
    };
    assert_eq!(parameter("limit")["maximum"], 50);
    assert_eq!(parameter("page")["maximum"], 1_000_000_000);
    let sort = parameter("sort")["pattern"].as_str().unwrap().to_string();
    assert!(sort.contains("title") && !sort.contains("secret"), "{sort}");
    let key_name = &paths["/api/users/api-keys"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["properties"]["name"];
    assert_eq!(
        (&key_name["minLength"], &key_name["maxLength"]),
        (&json!(1), &json!(200))
    );

    // Who may call what.
    let anyone = json!([{"bearerAuth": []}, {"apiKey": []}, {"cookieAuth": []}, {}]);
    assert_eq!(document["security"], anyone);
    let signed_in = json!([{"bearerAuth": []}, {"apiKey": []}, {"cookieAuth": []}]);
    for (path, method) in [
        ("/api/users/me", "get"),
        ("/api/users/logout-all", "post"),
        ("/api/users/api-keys", "get"),
        ("/api/users/api-keys", "post"),
        ("/api/users/api-keys/{id}", "delete"),
    ] {
        assert_eq!(paths[path][method]["security"], signed_in, "{path}");
    }
    let session = json!([{"bearerAuth": []}, {"cookieAuth": []}]);
    assert_eq!(paths["/api/users/sessions"]["get"]["security"], session);
    assert_eq!(paths["/api/users/login"]["post"]["security"], json!([]));
    assert!(paths["/api/posts"]["get"].get("security").is_none());

    // Every status: 401 wherever credentials are read, 415/413/400 on bodies, 303 on form
    // routes, 429 where a password is hashed, 503 where a query runs, 414 on lists.
    for (path, method, expected) in [
        (
            "/api/posts",
            "get",
            &["200", "400", "401", "403", "414", "503"][..],
        ),
        (
            "/api/posts",
            "post",
            &[
                "201", "400", "401", "403", "409", "413", "415", "422", "503",
            ],
        ),
        (
            "/api/posts/{id}",
            "get",
            &["200", "400", "401", "403", "404", "503"],
        ),
        (
            "/api/users",
            "post",
            &[
                "201", "400", "401", "403", "409", "413", "415", "422", "429", "503",
            ],
        ),
        (
            "/api/users/register",
            "post",
            &[
                "201", "303", "400", "401", "403", "409", "413", "415", "429", "503",
            ],
        ),
        (
            "/api/users/login",
            "post",
            &[
                "200", "303", "400", "401", "403", "413", "415", "429", "503",
            ],
        ),
        (
            "/api/users/refresh",
            "post",
            &["200", "400", "401", "403", "413", "415", "503"],
        ),
        (
            "/api/users/logout",
            "post",
            &["200", "303", "400", "401", "403", "413", "415", "503"],
        ),
        (
            "/api/users/reset-password",
            "post",
            &["200", "303", "400", "413", "415", "429", "503"],
        ),
        (
            "/api/users/request-password-reset",
            "post",
            &["202", "303", "400", "413", "415"],
        ),
        (
            "/api/batch",
            "post",
            &[
                "200", "400", "401", "403", "404", "409", "413", "415", "422", "429", "503",
            ],
        ),
    ] {
        let mut found = statuses(&paths[path][method]);
        found.sort_unstable();
        assert_eq!(found, expected, "{method} {path}");
    }

    // `Idempotency-Key` on the unsafe collection routes, with its 409 and 422 and the replay
    // header; not on the other routes.
    let idempotency_key = json!({"$ref": "#/components/parameters/IdempotencyKey"});
    for (path, method, success) in [
        ("/api/posts", "post", "201"),
        ("/api/posts/{id}", "patch", "200"),
        ("/api/posts/{id}", "delete", "200"),
        ("/api/batch", "post", "200"),
    ] {
        let operation = &paths[path][method];
        assert!(
            operation["parameters"]
                .as_array()
                .unwrap()
                .contains(&idempotency_key),
            "{method} {path}"
        );
        let found = statuses(operation);
        assert!(
            found.contains(&"409") && found.contains(&"422"),
            "{method} {path}"
        );
        assert!(
            operation["responses"][success]["headers"]["Idempotent-Replayed"].is_object(),
            "{method} {path}"
        );
    }
    for (path, method) in [("/api/posts", "get"), ("/api/users/login", "post")] {
        assert!(
            paths[path][method]["parameters"]
                .as_array()
                .is_none_or(|parameters| !parameters.contains(&idempotency_key)),
            "{method} {path}"
        );
    }
    assert_eq!(
        document["components"]["parameters"]["IdempotencyKey"],
        json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": document["components"]["parameters"]["IdempotencyKey"]["description"],
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~][ -~]*$"},
        })
    );

    // Answers by shape: register with `require_verified` has no tokens; the key list no secret.
    let answer = |path: &str, method: &str, status: &str| {
        paths[path][method]["responses"][status]["content"]["application/json"]["schema"].clone()
    };
    assert_eq!(
        answer("/api/users/register", "post", "201")["required"],
        json!(["token", "refreshToken", "exp", "user"])
    );
    assert_eq!(
        answer("/api/members/register", "post", "201")["required"],
        json!(["user"])
    );
    assert_eq!(
        answer("/api/users/logout-all", "post", "200")["required"],
        json!(["message", "sessionsEnded"])
    );
    let api_key = &schemas["ApiKey"];
    assert!(api_key["properties"].get("key").is_none());
    assert!(
        schemas["NewApiKey"]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("key"))
    );
    for name in ["ApiKey", "NewApiKey", "Session"] {
        let properties = schemas[name]["properties"].as_object().unwrap().len();
        assert_eq!(
            schemas[name]["required"].as_array().unwrap().len(),
            properties,
            "{name}"
        );
    }

    // Links chain a document's life; 201s say where the new thing is.
    let created = &paths["/api/posts"]["post"]["responses"]["201"];
    assert_eq!(created["links"]["GetCreated"]["operationId"], "get_posts");
    assert_eq!(
        created["links"]["GetCreated"]["parameters"]["id"],
        "$response.body#/doc/id"
    );
    assert_eq!(created["headers"]["Location"]["required"], true);
    assert_eq!(
        paths["/api/users/me"]["get"]["responses"]["200"]["links"]["CreatePostsWithAuthor"]["requestBody"],
        json!({"author": "$response.body#/user/id"})
    );

    let page = server
        .client
        .get(server.url("/api/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("SwaggerUIBundle") && html.contains("\"/api/posts/{id}\""),
        "Swagger UI embeds our document"
    );
}

fn run_in(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(lucent_bin())
        .args(args)
        .arg("--config")
        .arg(dir.join("lucent.toml"))
        .env_remove("LUCENT_DATABASE_URL")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

#[test]
fn document_passes_a_validator() {
    let Some(python) = tool("LUCENT_TEST_OPENAPI_VALIDATOR") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("schemas")).unwrap();
    for (config, posts) in [(CONFIG, None), (EXAMPLE_CONFIG, Some(EXAMPLE_POSTS))] {
        std::fs::write(dir.path().join("lucent.toml"), config).unwrap();
        let posts_file = dir.path().join("schemas/posts.toml");
        match posts {
            Some(posts) => std::fs::write(&posts_file, posts).unwrap(),
            None => {
                let _ = std::fs::remove_file(&posts_file);
            }
        }
        let (ok, document, stderr) = run_in(dir.path(), &["openapi"]);
        assert!(ok, "{stderr}");
        let file = dir.path().join("openapi.json");
        std::fs::write(&file, document).unwrap();
        let check = "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))";
        let output = Command::new(&python)
            .args(["-c", check])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "invalid OpenAPI document: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

async fn raw(server: &Server, method: Method, path: &str) -> reqwest::Response {
    server
        .client
        .request(method, server.url(path))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_method_a_path_does_not_have_is_405_with_allow() {
    let server = Server::start(&Backend::Sqlite, crate::helpers::POSTS).await;
    for (method, path, allow) in [
        (Method::PUT, "/api/posts", "GET, POST, HEAD"),
        (Method::OPTIONS, "/api/posts/x", "GET, PATCH, DELETE, HEAD"),
        (Method::GET, "/api/users/login", "POST"),
        (Method::DELETE, "/api/users/api-keys", "GET, POST, HEAD"),
        (Method::TRACE, "/api/health", "GET, HEAD"),
        (Method::POST, "/api/openapi.json", "GET, HEAD"),
    ] {
        let response = raw(&server, method.clone(), path).await;
        let header = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(header.as_deref(), Some(allow), "{method} {path}");
        assert_error(&decode(response).await, 405, "method_not_allowed");
    }
    let head = raw(&server, Method::HEAD, "/api/posts").await;
    assert_eq!(head.status(), 200, "HEAD is GET without the body");
}

#[tokio::test]
async fn a_query_parameter_a_route_does_not_take_is_400() {
    let server = Server::start(&Backend::Sqlite, crate::helpers::POSTS).await;
    let (_, created) = server.post("/api/posts", &json!({"title": "a"})).await;
    let id = created["doc"]["id"].as_str().unwrap().to_string();
    for (method, path) in [
        (Method::GET, format!("/api/posts/{id}?bogus=1")),
        (Method::PATCH, format!("/api/posts/{id}?select=title")),
        (Method::DELETE, format!("/api/posts/{id}?force=true")),
        (Method::POST, "/api/posts?x=1".to_string()),
        (Method::GET, "/api/users/me?x=1".to_string()),
        (Method::POST, "/api/users/login?x".to_string()),
        (Method::GET, "/api/health?verbose=1".to_string()),
    ] {
        let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
        let answer = server.request(method.clone(), &path, body.as_ref()).await;
        assert_error(&answer, 400, "bad_request");
    }
    let (status, _) = server.get(&format!("/api/posts/{id}")).await;
    assert_eq!(status, 200, "the document is untouched");
    assert_eq!(
        server.get(&format!("/api/posts/{id}?")).await.0,
        200,
        "an empty query is none"
    );
}

#[tokio::test]
async fn list_parameters_take_exactly_their_grammar() {
    let server = Server::start(&Backend::Sqlite, crate::helpers::POSTS).await;
    server.post("/api/posts", &json!({"title": "a"})).await;
    for path in [
        "/api/posts?select=",
        "/api/posts?select=title,",
        "/api/posts?select=,title",
        "/api/posts?select=%20title",
        "/api/posts?sort=",
        "/api/posts?sort=title,%20id",
        "/api/posts?limit=%2B5",
        "/api/posts?page=%2B1",
    ] {
        assert_error(&server.get(path).await, 400, "bad_request");
    }
    for path in [
        "/api/posts?select=title,id",
        "/api/posts?sort=-title,%2Bid&limit=5",
    ] {
        assert_eq!(server.get(path).await.0, 200, "{path}");
    }
}

#[tokio::test]
async fn what_is_created_has_a_location() {
    let server = Server::start(&Backend::Sqlite, crate::helpers::POSTS).await;
    let post = |path: &str, body: Value, token: Option<&str>| {
        let mut request = server.client.post(server.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let created = post("/api/posts", json!({"title": "a"}), None)
        .await
        .unwrap();
    let location = created.headers()["location"].to_str().unwrap().to_string();
    let (status, body) = decode(created).await;
    assert_eq!(status, 201);
    assert_eq!(
        location,
        format!("/api/posts/{}", body["doc"]["id"].as_str().unwrap())
    );
    assert_eq!(server.get(&location).await.1["doc"], body["doc"]);

    let registered = post(
        "/api/users/register",
        json!({"email": "loc@example.com", "password": PASSWORD}),
        None,
    )
    .await
    .unwrap();
    let location = registered.headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let (_, account) = decode(registered).await;
    let user = account["user"]["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/users/{user}"));

    let token = account["token"].as_str().unwrap();
    let key = post("/api/users/api-keys", json!({"name": "k"}), Some(token))
        .await
        .unwrap();
    let location = key.headers()["location"].to_str().unwrap().to_string();
    let (_, key) = decode(key).await;
    let id = key["apiKey"]["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/users/api-keys/{id}"));
    let revoked = server
        .client
        .delete(server.url(&location))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200, "the Location is the key's own route");
}

async fn sign_up(server: &Server, email: &str) -> (String, String) {
    let (status, body) = server
        .post(
            "/api/users/register",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (
        body["token"].as_str().unwrap().into(),
        body["user"]["id"].as_str().unwrap().into(),
    )
}

async fn as_user(
    server: &Server,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (reqwest::StatusCode, Value) {
    let mut request = server
        .client
        .request(method, server.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    decode(request.send().await.unwrap()).await
}

/// In the example project a post is created by its author: one without an author (or with
/// another's) would be a draft its creator could not read back.
#[tokio::test]
async fn example_posts_are_created_by_their_author() {
    for backend in backends() {
        let server = example(&backend).await;
        let (token, me) = sign_up(&server, "ann@example.com").await;
        let (_, other) = sign_up(&server, "bob@example.com").await;
        for body in [
            json!({"title": "no author"}),
            json!({"title": "someone else's", "author": other}),
            json!({"title": "null author", "author": null}),
        ] {
            let answer = as_user(&server, &token, Method::POST, "/api/posts", Some(body)).await;
            assert_error(&answer, 403, "forbidden");
        }
        let (status, created) = as_user(
            &server,
            &token,
            Method::POST,
            "/api/posts",
            Some(json!({"title": "mine", "author": me})),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let path = format!("/api/posts/{}", created["doc"]["id"].as_str().unwrap());
        let (status, fetched) = as_user(&server, &token, Method::GET, &path, None).await;
        assert_eq!((status.as_u16(), &fetched["doc"]), (200, &created["doc"]));
    }
}

#[tokio::test]
async fn schemathesis_finds_nothing() {
    let Some(schemathesis) = tool("LUCENT_TEST_SCHEMATHESIS") else {
        return;
    };
    let mut failed = Vec::new();
    for backend in backends() {
        let server = example(&backend).await;
        let email = "schemathesis@example.com";
        sign_up(&server, email).await;
        let work = tempfile::tempdir().unwrap();
        let output = Command::new(&schemathesis)
            .current_dir(work.path())
            .arg("--config-file")
            .arg(repository().join("tests/schemathesis/schemathesis.toml"))
            .args(["run", &server.url("/api/openapi.json")])
            .args(["--checks", "all", "--seed", "1", "--no-color"])
            .env("PYTHONPATH", repository().join("tests/schemathesis"))
            .env("SCHEMATHESIS_HOOKS", "lucent_hooks")
            .env("LUCENT_ST_BASE", &server.base)
            .env("LUCENT_ST_EMAIL", email)
            .env("LUCENT_ST_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let summary = stdout
            .find("=== SUMMARY")
            .map_or(&stdout[..0], |at| &stdout[at..]);
        eprintln!("schemathesis on {backend:?}:\n{summary}");
        if !output.status.success() {
            eprintln!(
                "schemathesis found failures on {backend:?}:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            failed.push(format!("{backend:?}"));
        }
    }
    assert!(
        failed.is_empty(),
        "schemathesis failed on {failed:?} (above)"
    );
}

#[tokio::test]
async fn a_typed_client_runs_a_whole_flow() {
    let Some(packages) = tool("LUCENT_TEST_TS_CLIENT") else {
        return;
    };
    let bin = packages.join("node_modules/.bin");
    let server = example(&Backend::Sqlite).await;
    let work = tempfile::tempdir().unwrap();
    let source = repository().join("tests/ts-client");
    for file in ["flow.ts", "tsconfig.json", "package.json"] {
        std::fs::copy(source.join(file), work.path().join(file)).unwrap();
    }
    std::os::unix::fs::symlink(
        packages.join("node_modules"),
        work.path().join("node_modules"),
    )
    .unwrap();
    let run = |program: PathBuf, args: &[&str]| {
        let output = Command::new(&program)
            .current_dir(work.path())
            .args(args)
            .env("LUCENT_BASE", &server.base)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{} {args:?} failed:\n{}\n{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let document = server.url("/api/openapi.json");
    run(
        bin.join("openapi-typescript"),
        &[&document, "-o", "api.d.ts"],
    );
    run(bin.join("tsc"), &["-p", "."]);
    let out = run(PathBuf::from("node"), &["out/flow.js"]);
    assert!(out.contains("typed client flow: ok"), "{out}");
}
