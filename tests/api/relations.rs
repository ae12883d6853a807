//! To-many relations over HTTP (SPEC §10): a list is an array of ids in order, checked like any
//! field, written with its document all together or not at all, shown by every answer, loaded for
//! a page at once, and kept by the database (`on_delete` for lists, chains of cascades).

use serde_json::{Value, json};

use crate::helpers::{Backend, Server, assert_error, backends};
use crate::openapi::repository;
use crate::scenario::{Step, run};

const PASSWORD: &str = "correct horse battery staple";

const CONFIG: &str = r#"
[collections.tags]
access = { read = "true", create = "true", update = "true", delete = "true" }
fields = { name = { type = "string" } }

[collections.posts]
access = { read = "true", create = "true", update = "true", delete = "true" }
[collections.posts.fields]
title = { type = "string", max_length = 10 }
tags = { type = "relation", to = "tags", many = true, max_items = 3 }
pinned = { type = "relation", to = "tags", many = true, on_delete = "restrict" }
"#;

async fn create(server: &Server, slug: &str, body: Value) -> String {
    let (status, body) = server.post(&format!("/api/{slug}"), &body).await;
    assert_eq!(status, 201, "{body}");
    body["doc"]["id"].as_str().unwrap().to_string()
}

/// Ids of the documents of a list answer, in order.
fn ids(page: &Value) -> Vec<String> {
    page["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn lists_are_arrays_of_ids_in_order_in_every_answer() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let mut tags = Vec::new();
        for name in ["a", "b", "c", "d"] {
            tags.push(create(&server, "tags", json!({ "name": name })).await);
        }
        let [a, b, c, d] = [&tags[0], &tags[1], &tags[2], &tags[3]].map(|s| json!(s));
        run(
            &server,
            &server.client,
            vec![
                Step::post("/api/posts", json!({"title": "first", "tags": [c, a, b]}))
                    .expect(201)
                    .json("/doc/tags", json!([c, a, b]))
                    .json("/doc/pinned", json!([]))
                    .because("order kept; an absent list is empty")
                    .save("first", "/doc/id"),
                Step::get("/api/posts/{first}").json("/doc/tags", json!([c, a, b])),
                Step::post("/api/posts", json!({"title": "second", "tags": null}))
                    .expect(201)
                    .json("/doc/tags", json!([]))
                    .because("null is the empty list")
                    .save("second", "/doc/id"),
                Step::patch("/api/posts/{first}", json!({"tags": [d, c]}))
                    .json("/doc/tags", json!([d, c]))
                    .json("/doc/title", json!("first"))
                    .because("an update replaces the whole list"),
                Step::patch("/api/posts/{first}", json!({"title": "renamed"}))
                    .json("/doc/tags", json!([d, c]))
                    .because("a list the body does not name is kept"),
                Step::get("/api/posts/{first}").json("/doc/tags", json!([d, c])),
                Step::get("/api/posts?sort=createdAt")
                    .json("/docs/0/tags", json!([d, c]))
                    .json("/docs/1/tags", json!([])),
                Step::get("/api/posts?sort=createdAt&select=tags")
                    .json("/docs/0", json!({"id": "{first}", "tags": [d, c]}))
                    .because("select names a list like any field"),
                Step::get("/api/posts?sort=createdAt&select=title")
                    .absent("/docs/0/tags")
                    .json("/docs/0/title", json!("renamed")),
                Step::patch("/api/posts/{first}", json!({"tags": []})).json("/doc/tags", json!([])),
                Step::patch("/api/posts/{second}", json!({"tags": [b]})),
                Step::delete("/api/posts/{second}")
                    .json("/doc/tags", json!([b]))
                    .because("a delete answers the document as it was, its list too"),
                // Filters and sorts cannot name a list yet: a clear 400, not a 500.
                Step::get("/api/posts?filter=tags%20%3D%3D%20'x'").error(400, "bad_request"),
                Step::get("/api/posts?sort=-tags").error(400, "bad_request"),
            ],
        )
        .await;
    }
}

#[tokio::test]
async fn list_values_are_checked_and_every_failing_field_reported() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let tag = create(&server, "tags", json!({"name": "a"})).await;
        let cases: Vec<(Value, &[(&str, &str)])> = vec![
            (json!({"tags": tag}), &[("tags", "invalid_type")]),
            (json!({"tags": [tag, 5]}), &[("tags", "invalid_type")]),
            (json!({"tags": {"id": tag}}), &[("tags", "invalid_type")]),
            (json!({"tags": [tag, tag]}), &[("tags", "invalid_relation")]),
            (json!({"tags": ["", tag]}), &[("tags", "invalid_relation")]),
            (
                json!({"tags": ["x1", "x2", "x3", "x4"]}),
                &[("tags", "too_many")],
            ),
            (
                json!({"tags": ["nope", tag], "pinned": ["gone"]}),
                &[("tags", "invalid_relation"), ("pinned", "invalid_relation")],
            ),
            (
                json!({"title": "far too long a title", "tags": [tag, tag], "pinned": ["gone"]}),
                &[
                    ("title", "too_long"),
                    ("tags", "invalid_relation"),
                    ("pinned", "invalid_relation"),
                ],
            ),
        ];
        for (body, expected) in cases {
            for answer in [server.post("/api/posts", &body).await, {
                let id = create(&server, "posts", json!({})).await;
                server.patch(&format!("/api/posts/{id}"), &body).await
            }] {
                let error = assert_error(&answer, 400, "validation_failed");
                let found: Vec<(String, String)> = error["details"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| {
                        (
                            d["field"].as_str().unwrap().to_string(),
                            d["code"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect();
                let expected: Vec<(String, String)> = expected
                    .iter()
                    .map(|(f, c)| (f.to_string(), c.to_string()))
                    .collect();
                assert_eq!(found, expected, "{body}: {error}");
            }
        }
        // A missing target is named, with its id.
        let (_, answer) = server
            .post("/api/posts", &json!({"tags": ["nope", tag, "gone"]}))
            .await;
        assert_eq!(
            answer["error"]["details"][0]["message"],
            json!("no tags documents have ids \"nope\", \"gone\"")
        );
        // Nothing of a failed write was written: no document, no join row.
        let (_, page) = server.get("/api/posts").await;
        for doc in page["docs"].as_array().unwrap() {
            assert_eq!(doc["tags"], json!([]), "{doc}");
        }
    }
}

#[tokio::test]
async fn required_lists_need_an_id_and_field_rules_apply() {
    let config = r#"
[collections.tags]
access = { read = "true", create = "true", update = "true", delete = "true" }
fields = { name = { type = "string" } }
[collections.posts]
access = { read = "true", create = "true", update = "true", delete = "true" }
[collections.posts.fields]
tags = { type = "relation", to = "tags", many = true, required = true }
[collections.posts.fields.secret]
type = "relation"
to = "tags"
many = true
access = { read = "false", update = "false" }
"#;
    for backend in backends() {
        let server = Server::start(&backend, config).await;
        let tag = json!(create(&server, "tags", json!({"name": "a"})).await);
        run(
            &server,
            &server.client,
            vec![
                Step::post("/api/posts", json!({}))
                    .error(400, "validation_failed")
                    .json("/error/details/0/code", json!("required")),
                Step::post("/api/posts", json!({"tags": []}))
                    .error(400, "validation_failed")
                    .json("/error/details/0/code", json!("required")),
                Step::post("/api/posts", json!({"tags": [tag], "secret": [tag]}))
                    .expect(201)
                    .absent("/doc/secret")
                    .because("a field read rule hides a list like any field")
                    .save("id", "/doc/id"),
                Step::get("/api/posts/{id}").absent("/doc/secret"),
                Step::get("/api/posts").absent("/docs/0/secret"),
                Step::get("/api/posts?select=secret").error(400, "bad_request"),
                Step::patch("/api/posts/{id}", json!({"secret": []}))
                    .error(403, "forbidden")
                    .because("a field update rule guards a list like any field"),
                Step::patch("/api/posts/{id}", json!({"tags": null}))
                    .error(400, "validation_failed"),
            ],
        )
        .await;
    }
}

const ON_DELETE: &str = r#"
[collections.tags]
access = { read = "true", create = "true", update = "true", delete = "true" }
fields = { name = { type = "string" } }

[collections.posts]
access = { read = "true", create = "true", update = "true", delete = "true" }
[collections.posts.fields]
title = { type = "string" }
tags = { type = "relation", to = "tags", many = true }
pinned = { type = "relation", to = "tags", many = true, on_delete = "restrict" }
topics = { type = "relation", to = "tags", many = true, on_delete = "cascade" }
related = { type = "relation", to = "posts", many = true, on_delete = "cascade" }

[collections.digests]
access = { read = "true", create = "true", update = "true", delete = "true" }
[collections.digests.fields]
posts = { type = "relation", to = "posts", many = true, on_delete = "cascade" }
keep = { type = "relation", to = "posts", many = true, on_delete = "restrict" }

[collections.notes]
access = { read = "true", create = "true", update = "true", delete = "true" }
[collections.notes.fields]
digest = { type = "relation", to = "digests", on_delete = "cascade" }
"#;

async fn exists(server: &Server, slug: &str, id: &str) -> bool {
    let (status, _) = server.get(&format!("/api/{slug}/{id}")).await;
    status == 200
}

#[tokio::test]
async fn on_delete_for_lists() {
    for backend in backends() {
        let server = Server::start(&backend, ON_DELETE).await;
        let tag = |name: &'static str| {
            let server = &server;
            async move { create(server, "tags", json!({ "name": name })).await }
        };
        let (kept, gone, held) = (tag("kept").await, tag("gone").await, tag("held").await);

        // set_null: the id leaves every list, the documents stay, the order of the rest is kept.
        let one = create(&server, "posts", json!({"tags": [gone, kept]})).await;
        let two = create(&server, "posts", json!({"tags": [kept, gone]})).await;
        assert_eq!(server.delete(&format!("/api/tags/{gone}")).await.0, 200);
        for (id, expected) in [(&one, json!([kept])), (&two, json!([kept]))] {
            let (_, doc) = server.get(&format!("/api/posts/{id}")).await;
            assert_eq!(doc["doc"]["tags"], expected);
        }

        // restrict: 409 while a list holds it; nothing changes; fine once no list does.
        let holder = create(&server, "posts", json!({"pinned": [held]})).await;
        assert_error(
            &server.delete(&format!("/api/tags/{held}")).await,
            409,
            "conflict",
        );
        let (_, doc) = server.get(&format!("/api/posts/{holder}")).await;
        assert_eq!(doc["doc"]["pinned"], json!([held]));
        assert!(exists(&server, "tags", &held).await);
        server
            .patch(&format!("/api/posts/{holder}"), &json!({"pinned": []}))
            .await;
        assert_eq!(server.delete(&format!("/api/tags/{held}")).await.0, 200);

        // A document's own restricted list never blocks deleting the document itself.
        let restricted = tag("restricted").await;
        let owner = create(&server, "posts", json!({"pinned": [restricted]})).await;
        assert_eq!(server.delete(&format!("/api/posts/{owner}")).await.0, 200);
        assert!(exists(&server, "tags", &restricted).await);

        // cascade, two levels and a to-one at the end: a tag → the posts whose `topics` list it
        // → the digests whose `posts` list those → the notes of those digests. Documents that
        // do not list a deleted one stay.
        let topic = tag("topic").await;
        let other = tag("other").await;
        let listed = create(&server, "posts", json!({"topics": [other, topic]})).await;
        let unlisted = create(&server, "posts", json!({"topics": [other]})).await;
        let digest = create(&server, "digests", json!({"posts": [unlisted, listed]})).await;
        let calm = create(&server, "digests", json!({"posts": [unlisted]})).await;
        let note = create(&server, "notes", json!({ "digest": digest })).await;
        let (status, answer) = server.delete(&format!("/api/tags/{topic}")).await;
        assert_eq!(status, 200, "{answer}");
        for (slug, id, alive) in [
            ("posts", &listed, false),
            ("digests", &digest, false),
            ("notes", &note, false),
            ("posts", &unlisted, true),
            ("digests", &calm, true),
            ("tags", &other, true),
        ] {
            assert_eq!(exists(&server, slug, id).await, alive, "{slug} {id}");
        }

        // A cycle of cascading lists ends: a → b → c → a, and a document listing itself.
        let a = create(&server, "posts", json!({"title": "a"})).await;
        let b = create(&server, "posts", json!({"title": "b", "related": [a]})).await;
        let c = create(&server, "posts", json!({"title": "c", "related": [b]})).await;
        let (status, _) = server
            .patch(&format!("/api/posts/{a}"), &json!({"related": [c, a]}))
            .await;
        assert_eq!(status, 200);
        let bystander = create(&server, "posts", json!({"title": "d"})).await;
        let (status, answer) = server.delete(&format!("/api/posts/{b}")).await;
        assert_eq!(status, 200, "{answer}");
        for id in [&a, &b, &c] {
            assert!(!exists(&server, "posts", id).await, "{id} was in the cycle");
        }
        assert!(exists(&server, "posts", &bystander).await);

        // A cascade that reaches a document a restricted list holds is refused as a whole (409):
        // the tag, the post it would take along and the list holding that post all stay.
        let blocker = tag("blocker").await;
        let held_post = create(&server, "posts", json!({"topics": [blocker]})).await;
        let keeper = create(&server, "digests", json!({ "keep": [held_post] })).await;
        assert_error(
            &server.delete(&format!("/api/tags/{blocker}")).await,
            409,
            "conflict",
        );
        assert!(exists(&server, "tags", &blocker).await);
        let (_, doc) = server.get(&format!("/api/posts/{held_post}")).await;
        assert_eq!(doc["doc"]["topics"], json!([blocker]));
        let (_, doc) = server.get(&format!("/api/digests/{keeper}")).await;
        assert_eq!(doc["doc"]["keep"], json!([held_post]));
        // Released, the same delete cascades.
        server
            .patch(&format!("/api/digests/{keeper}"), &json!({"keep": []}))
            .await;
        assert_eq!(server.delete(&format!("/api/tags/{blocker}")).await.0, 200);
        assert!(!exists(&server, "posts", &held_post).await);
    }
}

#[tokio::test]
async fn accounts_show_their_lists() {
    let config = r#"
[collections.tags]
access = { read = "true", create = "true", update = "true", delete = "true" }
fields = { name = { type = "string" } }
[collections.users]
auth = true
access = { read = "true", update = "doc.id == user.id" }
[collections.users.fields]
interests = { type = "relation", to = "tags", many = true }
"#;
    for backend in backends() {
        let server = Server::start(&backend, config).await;
        let (x, y) = (
            json!(create(&server, "tags", json!({"name": "x"})).await),
            json!(create(&server, "tags", json!({"name": "y"})).await),
        );
        let client = reqwest::Client::new();
        run(
            &server,
            &client,
            vec![
                Step::post(
                    "/api/users/register",
                    json!({"email": "ann@example.com", "password": PASSWORD, "interests": [y, x]}),
                )
                .expect(201)
                .json("/user/interests", json!([y, x]))
                .save("token", "/token")
                .save("id", "/user/id"),
                Step::get("/api/users/me")
                    .bearer("{token}")
                    .json("/user/interests", json!([y, x])),
                Step::post(
                    "/api/users/login",
                    json!({"email": "ann@example.com", "password": PASSWORD}),
                )
                .json("/user/interests", json!([y, x])),
                Step::patch("/api/users/{id}", json!({"interests": [x]}))
                    .bearer("{token}")
                    .json("/doc/interests", json!([x])),
                Step::get("/api/users/me")
                    .bearer("{token}")
                    .json("/user/interests", json!([x])),
                Step::get("/api/users").json("/docs/0/interests", json!([x])),
            ],
        )
        .await;
    }
}

/// Concurrent replacements of one list: each is written whole, so the list ends as exactly one
/// of them (never a mix); a target deleted while a document naming it is created gives either
/// the document without it or a 400, never a dangling id or a 500; a document deleted while its
/// list is replaced gives 200 or 404.
#[tokio::test]
async fn concurrent_list_writes_never_mix() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let mut tags = Vec::new();
        for i in 0..6 {
            tags.push(create(&server, "tags", json!({ "name": format!("t{i}") })).await);
        }
        let post = create(&server, "posts", json!({})).await;
        let lists: Vec<Value> = (0..12)
            .map(|i| json!([tags[i % 6], tags[(i + 1) % 6], tags[(i + 3) % 6]]))
            .collect();
        let writes = lists.iter().map(|list| {
            let server = &server;
            let path = format!("/api/posts/{post}");
            async move { server.patch(&path, &json!({ "tags": list })).await }
        });
        for (status, body) in futures::future::join_all(writes).await {
            assert_eq!(status, 200, "{body}");
        }
        let (_, doc) = server.get(&format!("/api/posts/{post}")).await;
        assert!(lists.contains(&doc["doc"]["tags"]), "{doc}");

        let victim = create(&server, "tags", json!({"name": "victim"})).await;
        let creates = (0..8).map(|_| {
            let server = &server;
            let body = json!({ "tags": [victim.clone(), tags[0].clone()] });
            async move { server.post("/api/posts", &body).await }
        });
        let victim_path = format!("/api/tags/{victim}");
        let delete = server.delete(&victim_path);
        let (answers, deleted) = tokio::join!(futures::future::join_all(creates), delete);
        assert_eq!(deleted.0, 200);
        for answer in answers {
            match answer.0.as_u16() {
                201 => {}
                400 => {
                    assert_eq!(answer.1["error"]["details"][0]["field"], json!("tags"));
                }
                other => panic!("{other}: {}", answer.1),
            }
        }
        let (_, page) = server.get("/api/posts?limit=100").await;
        for doc in page["docs"].as_array().unwrap() {
            assert!(
                !doc["tags"].as_array().unwrap().contains(&json!(victim)),
                "{doc}"
            );
        }

        // A document deleted while its list is replaced: each update is 200 or 404, never a
        // conflict from the list's foreign key.
        let doomed = create(&server, "posts", json!({})).await;
        let path = format!("/api/posts/{doomed}");
        let updates = (0..8).map(|i| {
            let (server, path) = (&server, &path);
            let body = json!({ "tags": [tags[i % 6].clone()] });
            async move { server.patch(path, &body).await }
        });
        let (answers, deleted) =
            tokio::join!(futures::future::join_all(updates), server.delete(&path));
        assert_eq!(deleted.0, 200);
        for (status, body) in answers {
            assert!([200, 404].contains(&status.as_u16()), "{status}: {body}");
        }
    }
}

/// A page of documents loads each list with one query, whatever the number of documents:
/// counted by PostgreSQL's scans of the join table.
#[tokio::test]
async fn a_page_loads_each_list_with_one_query() {
    let Some(backend) = backends()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres(_)))
    else {
        return;
    };
    let server = Server::start(&backend, CONFIG).await;
    let tag = create(&server, "tags", json!({"name": "a"})).await;
    for _ in 0..20 {
        create(&server, "posts", json!({ "tags": [tag] })).await;
    }
    let url = server.database_url.clone().unwrap();
    let db = sea_orm::Database::connect(&url).await.unwrap();
    let scans = || async {
        use sea_orm::ConnectionTrait;
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = '_lucent_rel_posts_tags'",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    };
    // A backend reports its statistics when idle, up to seconds after its statements, and the
    // migration that made the table scanned it too (its index, its foreign keys): a first page is
    // read and its count left to settle, then the second is measured.
    let settled = async |from: i64| {
        let started = std::time::Instant::now();
        let mut now = scans().await;
        while now == from && started.elapsed() < std::time::Duration::from_secs(30) {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            now = scans().await;
        }
        let mut still = std::time::Instant::now();
        while still.elapsed() < std::time::Duration::from_secs(3) {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            let later = scans().await;
            if later != now {
                (now, still) = (later, std::time::Instant::now());
            }
        }
        now
    };
    let start = scans().await;
    assert_eq!(server.get("/api/posts?limit=20").await.0, 200);
    let before = settled(start).await;
    let (status, page) = server.get("/api/posts?limit=20").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&page).len(), 20);
    assert!(
        page["docs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["tags"] == json!([tag]))
    );
    let after = settled(before).await;
    assert!(
        (1..=2).contains(&(after - before)),
        "a page of 20 scanned the join table {} times",
        after - before
    );
    db.close().await.ok();
}

/// The example of docs/configuration.md#to-many-relations, as written there, does what the page
/// says.
#[tokio::test]
async fn the_documented_example_works() {
    let page = std::fs::read_to_string(repository().join("docs/configuration.md")).unwrap();
    let section = &page[page.find("### To-many relations").expect("the section")..];
    let example = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a TOML example");
    let mut config = example.to_string();
    for slug in ["tags", "posts"] {
        config.push_str(&format!(
            "[collections.{slug}.access]\nread = \"true\"\ncreate = \"true\"\nupdate = \"true\"\ndelete = \"true\"\n"
        ));
    }
    for backend in backends() {
        let server = Server::start(&backend, &config).await;
        let rust = json!(create(&server, "tags", json!({"name": "rust"})).await);
        let cms = json!(create(&server, "tags", json!({"name": "cms"})).await);
        run(
            &server,
            &server.client,
            vec![
                Step::post("/api/posts", json!({"title": "Hello", "tags": [rust, cms]}))
                    .expect(201)
                    .json("/doc/tags", json!([rust, cms]))
                    .json("/doc/related", json!([]))
                    .json("/doc/pinned", json!([]))
                    .save("hello", "/doc/id"),
                Step::post(
                    "/api/posts",
                    json!({"title": "Sequel", "related": ["{hello}"], "pinned": [cms]}),
                )
                .expect(201)
                .save("sequel", "/doc/id"),
                Step::post("/api/posts", json!({"tags": [rust, rust]}))
                    .error(400, "validation_failed")
                    .json("/error/details/0/field", json!("tags")),
                // restrict: cms is pinned by the sequel.
                Step::delete(&format!("/api/tags/{}", cms.as_str().unwrap()))
                    .error(409, "conflict"),
                // set_null: rust leaves the list of tags.
                Step::delete(&format!("/api/tags/{}", rust.as_str().unwrap())),
                Step::get("/api/posts/{hello}").json("/doc/tags", json!([cms])),
                // cascade: the sequel lists hello as related.
                Step::delete("/api/posts/{hello}"),
                Step::get("/api/posts/{sequel}").error(404, "not_found"),
            ],
        )
        .await;
    }
}
