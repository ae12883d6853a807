//! Reading through relations over HTTP (SPEC §10): `expand` on list and get (relation fields,
//! back-relations, nested paths), filters and rules through relations, what the database is asked
//! for it (one query per path and level), and that neither ever shows a caller a document or a
//! field it may not read — compared as different users. (`relations.rs` tests to-many storage.)

use reqwest::Method;
use serde_json::{Value, json};

use crate::auth::PASSWORD;
use crate::helpers::{Backend, Server, assert_error, backends, decode};

const CONFIG: &str = r#"
[auth]
jwt_secret = "test-secret-of-at-least-thirty-two-bytes"

[metrics]
enabled = true

[collections.orgs.fields]
name = { type = "string" }
plan = { type = "select", options = ["free", "pro"], access = { read = "user != null && doc.id == user.org" } }
[collections.orgs.access]
read = "true"
create = "true"

[collections.users]
auth = true
[collections.users.fields]
name   = { type = "string" }
org    = { type = "relation", to = "orgs" }
secret = { type = "string", hidden = true }
phone  = { type = "string", access = { read = "user != null && doc.id == user.id" } }
[collections.users.access]
read = "user != null"
update = "user != null && doc.id == user.id"

[collections.posts.fields]
title    = { type = "string", required = true }
status   = { type = "select", options = ["draft", "published"], default = "draft" }
author   = { type = "relation", to = "users" }
reviewer = { type = "relation", to = "users", hidden = true }
editor   = { type = "relation", to = "users", access = { read = "user != null && doc.author == user.id" } }
[collections.posts.access]
read   = "doc.status == 'published' || (user != null && doc.author == user.id)"
create = "user != null"
update = "user != null && doc.author == user.id"
delete = "user != null && doc.author.org == user.org"

[collections.comments.fields]
post = { type = "relation", to = "posts" }
body = { type = "string" }
[collections.comments.access]
read = "doc.post.status == 'published'"
create = "true"
"#;

/// Who asks: a bearer token, or nobody.
#[derive(Clone)]
struct As(Option<String>);

const ANON: As = As(None);

impl As {
    async fn call(
        &self,
        server: &Server,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let mut request = server.client.request(method, server.url(path));
        if let Some(token) = &self.0 {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        decode(request.send().await.expect("request")).await
    }

    async fn get(&self, server: &Server, path: &str) -> Value {
        let (status, body) = self.call(server, Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn create(&self, server: &Server, slug: &str, body: Value) -> String {
        let (status, answer) = self
            .call(server, Method::POST, &format!("/api/{slug}"), Some(body))
            .await;
        assert_eq!(status, 201, "{answer}");
        answer["doc"]["id"].as_str().expect("id").to_string()
    }
}

struct Account {
    id: String,
    who: As,
}

async fn sign_up(server: &Server, email: &str, name: &str, org: &str) -> Account {
    let (status, body) = server
        .post(
            "/api/users/register",
            &json!({"email": email, "password": PASSWORD, "name": name, "org": org,
                    "secret": format!("secret of {name}"), "phone": format!("phone of {name}")}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    Account {
        id: body["user"]["id"].as_str().expect("id").into(),
        who: As(Some(body["token"].as_str().expect("token").into())),
    }
}

/// Two orgs; Ann and Dan in Acme, Bob in Beta; Ann's posts p1 (published) and p2 (draft), Bob's
/// p3 (published), with comments on p1 and p2.
struct World {
    server: Server,
    acme: String,
    beta: String,
    ann: Account,
    bob: Account,
    dan: Account,
    p1: String,
    p2: String,
    p3: String,
}

async fn world(backend: &Backend) -> World {
    let server = Server::start(backend, CONFIG).await;
    let acme = ANON
        .create(&server, "orgs", json!({"name": "Acme", "plan": "pro"}))
        .await;
    let beta = ANON
        .create(&server, "orgs", json!({"name": "Beta", "plan": "free"}))
        .await;
    let ann = sign_up(&server, "ann@example.com", "Ann", &acme).await;
    let bob = sign_up(&server, "bob@example.com", "Bob", &beta).await;
    let dan = sign_up(&server, "dan@example.com", "Dan", &acme).await;
    let post = |title: &str, status: &str, by: &Account| json!({"title": title, "status": status, "author": by.id, "reviewer": bob.id, "editor": bob.id});
    let p1 = ann
        .who
        .create(&server, "posts", post("p1", "published", &ann))
        .await;
    let p2 = ann
        .who
        .create(&server, "posts", post("p2", "draft", &ann))
        .await;
    let p3 = bob
        .who
        .create(&server, "posts", post("p3", "published", &bob))
        .await;
    for (post, body) in [(&p1, "on p1"), (&p1, "more on p1"), (&p2, "on p2")] {
        ANON.create(&server, "comments", json!({"post": post, "body": body}))
            .await;
    }
    World {
        server,
        acme,
        beta,
        ann,
        bob,
        dan,
        p1,
        p2,
        p3,
    }
}

/// The documents of a page by title.
fn by_title(page: &Value) -> std::collections::BTreeMap<String, Value> {
    page["docs"]
        .as_array()
        .expect("docs")
        .iter()
        .map(|doc| {
            (
                doc["title"].as_str().expect("title").to_string(),
                doc.clone(),
            )
        })
        .collect()
}

fn titles(docs: &Value) -> Vec<&str> {
    docs.as_array()
        .expect("an array")
        .iter()
        .map(|d| d["title"].as_str().or(d["body"].as_str()).expect("title"))
        .collect()
}

#[tokio::test]
async fn expand_relations_back_relations_and_nested_paths() {
    for backend in backends() {
        let w = world(&backend).await;
        let s = &w.server;

        // Anonymous callers may not read users: the author is simply absent, its id stays.
        let page = ANON.get(s, "/api/posts?expand=author").await;
        for doc in page["docs"].as_array().unwrap() {
            assert_eq!(doc["expand"], json!({}), "{doc}");
            assert!(doc["author"].is_string(), "{doc}");
        }

        // Ann: her own posts and Bob's; authors and their orgs, each as Ann may see them.
        let page = w
            .ann
            .who
            .get(s, "/api/posts?expand=author,author.org")
            .await;
        let docs = by_title(&page);
        assert_eq!(docs.len(), 3);
        let p1 = &docs["p1"];
        assert_eq!(p1["author"], json!(w.ann.id), "the field keeps the id");
        let author = &p1["expand"]["author"];
        assert_eq!(author["name"], "Ann");
        assert_eq!(author["phone"], "phone of Ann", "her own phone");
        assert!(author.get("secret").is_none(), "hidden: {author}");
        assert!(author.get("password").is_none(), "{author}");
        assert_eq!(author["expand"]["org"]["name"], "Acme");
        assert_eq!(author["expand"]["org"]["plan"], "pro", "her own org's plan");
        let bob = &docs["p3"]["expand"]["author"];
        assert_eq!(bob["name"], "Bob");
        assert!(bob.get("phone").is_none(), "not Ann's to read: {bob}");
        assert!(bob.get("secret").is_none(), "{bob}");
        assert_eq!(bob["expand"]["org"]["name"], "Beta");
        assert!(
            bob["expand"]["org"].get("plan").is_none(),
            "not her org: {bob}"
        );
        // The same document without expand has the same fields, minus `expand`.
        let mut plain = w.ann.who.get(s, &format!("/api/posts/{}", w.p1)).await["doc"].clone();
        let mut expanded = p1.clone();
        expanded.as_object_mut().unwrap().remove("expand");
        plain.as_object_mut().unwrap().remove("expand");
        assert_eq!(plain, expanded);

        // Get one, with a back-relation: the posts whose author is Ann, oldest first, as each
        // caller may read them.
        let path = format!("/api/users/{}?expand=posts_via_author,org", w.ann.id);
        let as_ann = w.ann.who.get(s, &path).await;
        assert_eq!(
            titles(&as_ann["doc"]["expand"]["posts_via_author"]),
            ["p1", "p2"]
        );
        assert_eq!(as_ann["doc"]["expand"]["org"]["id"], json!(w.acme));
        let as_bob = w.bob.who.get(s, &path).await;
        assert_eq!(titles(&as_bob["doc"]["expand"]["posts_via_author"]), ["p1"]);
        assert!(as_bob["doc"].get("phone").is_none());

        // Back-relations nest under relations, and the other way round.
        let page = w
            .bob
            .who
            .get(s, "/api/comments?expand=post.author,post.comments_via_post")
            .await;
        assert_eq!(
            page["totalDocs"], 2,
            "comments on a draft are not readable: {page}"
        );
        for comment in page["docs"].as_array().unwrap() {
            let post = &comment["expand"]["post"];
            assert_eq!(post["id"], json!(w.p1));
            assert_eq!(post["expand"]["author"]["name"], "Ann");
            assert_eq!(
                titles(&post["expand"]["comments_via_post"]),
                ["on p1", "more on p1"]
            );
        }

        // `select` cuts the document; `expand` still follows the relation it left out.
        let filter = urlencode(&format!("id == '{}'", w.p3));
        let page = w
            .ann
            .who
            .get(
                s,
                &format!("/api/posts?select=title&expand=author&filter={filter}"),
            )
            .await;
        let doc = &page["docs"][0];
        assert_eq!(doc["title"], "p3");
        assert!(doc.get("author").is_none(), "{doc}");
        assert_eq!(doc["expand"]["author"]["name"], "Bob");

        // A back-relation to a collection with no readable match is an empty list.
        let orgs = w
            .bob
            .who
            .get(s, &format!("/api/orgs/{}?expand=users_via_org", w.beta))
            .await;
        assert_eq!(orgs["doc"]["expand"]["users_via_org"][0]["name"], "Bob");
        let orgs = ANON
            .get(s, &format!("/api/orgs/{}?expand=users_via_org", w.beta))
            .await;
        assert_eq!(orgs["doc"]["expand"]["users_via_org"], json!([]));
    }
}

#[tokio::test]
async fn bad_expand_paths_are_400_and_unreadable_ones_read_like_unknown_fields() {
    for backend in backends() {
        let w = world(&backend).await;
        let s = &w.server;
        let message = |answer: &(reqwest::StatusCode, Value)| {
            assert_error(answer, 400, "bad_request")["message"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let for_name = |name: &str| format!("unknown field \"{name}\"");
        let as_ann = |path: String| {
            let who = w.ann.who.clone();
            async move { who.call(s, Method::GET, &path, None).await }
        };
        // The sort of an unknown field, for comparison.
        assert_eq!(
            message(&as_ann("/api/posts?sort=nope".into()).await),
            for_name("nope")
        );
        for (expand, name) in [
            ("nope", "nope"),
            ("author.nope", "nope"),
            // Hidden, and readable only on some documents: as if they did not exist.
            ("reviewer", "reviewer"),
            ("editor", "editor"),
            ("author.secret", "secret"),
            ("author.phone", "phone"),
            ("comments_via_nope", "comments_via_nope"),
        ] {
            let answer = as_ann(format!("/api/posts?expand={expand}")).await;
            assert_eq!(message(&answer), for_name(name), "{expand}");
            let answer = as_ann(format!("/api/posts/{}?expand={expand}", w.p1)).await;
            assert_eq!(message(&answer), for_name(name), "{expand}");
        }
        // Back-relations through a field the caller may not name are unknown too.
        for expand in ["posts_via_reviewer", "posts_via_editor"] {
            let answer = as_ann(format!("/api/users/{}?expand={expand}", w.ann.id)).await;
            assert_eq!(message(&answer), for_name(expand));
        }
        let eleven = ["author"; 11].join(",");
        for (query, expected) in [
            (format!("expand={eleven}"), "expand takes at most 10 paths"),
            (
                "expand=author.org.users_via_org.org".into(),
                "expand paths have at most 3 levels",
            ),
            ("expand=".into(), "expand has an empty name"),
            ("expand=author,".into(), "expand has an empty name"),
            ("expand=author..org".into(), "expand has an empty name"),
            ("expand=title".into(), "expand: `title` is not a relation"),
            (
                "expand=author.name".into(),
                "expand: `name` is not a relation",
            ),
            (
                "expand=author&expand=author".into(),
                "query parameter \"expand\" is given twice",
            ),
        ] {
            let answer = as_ann(format!("/api/posts?{query}")).await;
            assert_eq!(message(&answer), expected, "{query}");
        }
        // Ten paths (repeated ones share their queries) and three levels are fine.
        let ten = ["author.org.users_via_org"; 10].join(",");
        w.ann.who.get(s, &format!("/api/posts?expand={ten}")).await;
        // The document route takes `expand` and nothing else.
        let answer = as_ann(format!("/api/posts/{}?select=title", w.p1)).await;
        assert_eq!(message(&answer), "unknown query parameter \"select\"");
    }
}

#[tokio::test]
async fn filters_through_relations_see_only_what_the_caller_may_read() {
    for backend in backends() {
        let w = world(&backend).await;
        let s = &w.server;
        let count = |who: As, path: String| async move {
            let (status, page) = who.call(s, Method::GET, &path, None).await;
            assert_eq!(status, 200, "{path}: {page}");
            page["totalDocs"].as_u64().unwrap()
        };
        let q = |slug: &str, filter: &str| format!("/api/{slug}?filter={}", urlencode(filter));
        // (caller, list, filter, total)
        let cases: Vec<(&str, As, String, u64)> = vec![
            (
                "ann",
                w.ann.who.clone(),
                q("posts", "author.name == 'Ann'"),
                2,
            ),
            (
                "bob",
                w.bob.who.clone(),
                q("posts", "author.name == 'Ann'"),
                1,
            ),
            // Users are not readable anonymously: nothing matches through them.
            ("anon", ANON, q("posts", "author.name == 'Ann'"), 0),
            ("anon", ANON, q("posts", "!(author.name == 'Ann')"), 2),
            (
                "bob",
                w.bob.who.clone(),
                q("posts", "author.org.name == 'Acme'"),
                1,
            ),
            (
                "ann",
                w.ann.who.clone(),
                q("posts", "author.org.name ~ 'acm'"),
                2,
            ),
            (
                "ann",
                w.ann.who.clone(),
                q("posts", &format!("author.org == '{}'", w.acme)),
                2,
            ),
            (
                "ann",
                w.ann.who.clone(),
                q("users", "posts_via_author.status == 'draft'"),
                1,
            ),
            // Ann's draft is hers alone: Bob cannot find her through it.
            (
                "bob",
                w.bob.who.clone(),
                q("users", "posts_via_author.status == 'draft'"),
                0,
            ),
            (
                "bob",
                w.bob.who.clone(),
                q("users", "posts_via_author.id != null"),
                2,
            ),
            (
                "bob",
                w.bob.who.clone(),
                q("orgs", "users_via_org.posts_via_author.title == 'p2'"),
                0,
            ),
            (
                "ann",
                w.ann.who.clone(),
                q("orgs", "users_via_org.posts_via_author.title == 'p2'"),
                1,
            ),
            // Comments are readable only on published posts, whoever asks.
            (
                "ann",
                w.ann.who.clone(),
                q("comments", "post.title == 'p2'"),
                0,
            ),
            (
                "ann",
                w.ann.who.clone(),
                q("comments", "post.author.name == 'Ann'"),
                2,
            ),
            (
                "ann",
                w.ann.who.clone(),
                q("posts", "comments_via_post.body ~ 'more'"),
                1,
            ),
            (
                "ann",
                w.ann.who.clone(),
                q("posts", "author.name == title"),
                0,
            ),
        ];
        for (who, caller, path, expected) in cases {
            assert_eq!(count(caller, path.clone()).await, expected, "{who}: {path}");
        }
        // Hidden fields, and fields readable only on some documents, are unknown through a
        // relation too — for the one who may read them as well, so the answer never depends on
        // the data.
        let nope = w
            .ann
            .who
            .call(s, Method::GET, &q("posts", "author.nope == 'x'"), None)
            .await;
        let nope = assert_error(&nope, 400, "bad_request")["message"].clone();
        assert_eq!(nope, "filter: column 8: unknown field \"nope\"");
        for (filter, name) in [
            ("author.secret == 'x'", "secret"),
            ("author.phone == 'x'", "phone"),
            ("author.org.plan == 'pro'", "plan"),
            ("reviewer.name == 'x'", "reviewer"),
            ("editor.name == 'x'", "editor"),
            ("posts_via_reviewer.title == 'x'", "posts_via_reviewer"),
        ] {
            for who in [&w.ann.who, &w.bob.who, &ANON] {
                let answer = who
                    .call(
                        s,
                        Method::GET,
                        &q(
                            if filter.starts_with("posts_via") {
                                "users"
                            } else {
                                "posts"
                            },
                            filter,
                        ),
                        None,
                    )
                    .await;
                let message = assert_error(&answer, 400, "bad_request")["message"].clone();
                let message = message.as_str().unwrap();
                assert!(
                    message.ends_with(&format!("unknown field \"{name}\"")),
                    "{filter}: {message}"
                );
            }
        }
        let deep = w
            .ann
            .who
            .call(
                s,
                Method::GET,
                &q("comments", "post.author.org.users_via_org.name == 'x'"),
                None,
            )
            .await;
        assert_error(&deep, 400, "bad_request");
    }
}

/// Rules may follow relations: the comments' read rule, and the posts' delete rule, which is
/// asked in SQL (its related documents are in the database).
#[tokio::test]
async fn rules_through_relations() {
    for backend in backends() {
        let w = world(&backend).await;
        let s = &w.server;
        let comments = ANON.get(s, "/api/comments").await;
        assert_eq!(
            comments["totalDocs"], 2,
            "only the comments on p1: {comments}"
        );
        // Bob is not in Acme: he may read p1, not delete it; Dan is.
        let path = format!("/api/posts/{}", w.p1);
        let answer = w.bob.who.call(s, Method::DELETE, &path, None).await;
        assert_error(&answer, 403, "forbidden");
        let answer = w.dan.who.call(s, Method::DELETE, &path, None).await;
        assert_eq!(answer.0, 200, "{}", answer.1);
        // Ann's draft is not Dan's to read, so not his to delete: 404.
        let answer = w
            .dan
            .who
            .call(s, Method::DELETE, &format!("/api/posts/{}", w.p2), None)
            .await;
        assert_error(&answer, 404, "not_found");
        let answer = w
            .ann
            .who
            .call(s, Method::DELETE, &format!("/api/posts/{}", w.p2), None)
            .await;
        assert_eq!(answer.0, 200, "{}", answer.1);
    }
}

/// Compared as two different users, a filter or an expand through a relation answers the same
/// whatever the data the caller may not read holds.
#[tokio::test]
async fn what_a_caller_may_not_read_changes_nothing_it_sees() {
    for backend in backends() {
        let w = world(&backend).await;
        let s = &w.server;
        // What Bob sees, before and after Ann changes her hidden field, her phone, her org's plan
        // and her drafts.
        let views = [
            "/api/posts?expand=author,author.org,comments_via_post".to_string(),
            format!("/api/users/{}?expand=posts_via_author,org", w.ann.id),
            format!("/api/posts?filter={}", urlencode("author.name == 'Ann'")),
            format!(
                "/api/users?filter={}",
                urlencode("posts_via_author.title ~ 'p'")
            ),
            format!(
                "/api/orgs?filter={}&expand=users_via_org",
                urlencode("users_via_org.name != null")
            ),
        ];
        let snapshot = |who: As| {
            let views = views.clone();
            async move {
                let mut seen = Vec::new();
                for view in &views {
                    seen.push(who.get(s, view).await);
                }
                seen
            }
        };
        // `updatedAt` moves with any change, seen or not; everything else must stay.
        let before = without_updated_at(snapshot(w.bob.who.clone()).await);
        let (status, body) = w
            .ann
            .who
            .call(
                s,
                Method::PATCH,
                &format!("/api/users/{}", w.ann.id),
                Some(json!({"secret": "changed", "phone": "changed"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        w.ann
            .who
            .create(
                s,
                "posts",
                json!({"title": "p4", "status": "draft", "author": w.ann.id}),
            )
            .await;
        w.ann
            .who
            .create(
                s,
                "posts",
                json!({"title": "p5", "status": "draft", "author": w.ann.id}),
            )
            .await;
        let after = without_updated_at(snapshot(w.bob.who.clone()).await);
        assert_eq!(
            before, after,
            "Bob's views changed with data he may not read"
        );
        // Ann herself does see the change.
        let hers = w.ann.who.get(s, &views[1]).await;
        assert_eq!(
            titles(&hers["doc"]["expand"]["posts_via_author"]),
            ["p1", "p2", "p4", "p5"]
        );
    }
}

/// The statements the record readers ran, from `GET /api/metrics`.
async fn statements(server: &Server) -> u64 {
    let text = server
        .client
        .get(server.url("/api/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix("lucent_db_read_statements_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no statement counter in\n{text}"))
}

/// Expanding costs one query per path and level for the whole page, however many documents it
/// holds (SPEC §10).
#[tokio::test]
async fn expand_costs_one_query_per_path_and_level() {
    for backend in backends() {
        let w = world(&backend).await;
        let s = &w.server;
        for i in 0..12 {
            let by = if i % 2 == 0 { &w.ann } else { &w.bob };
            let id = by
                .who
                .create(
                    s,
                    "posts",
                    json!({"title": format!("extra {i}"), "status": "published", "author": by.id}),
                )
                .await;
            ANON.create(s, "comments", json!({"post": id, "body": "hi"}))
                .await;
        }
        // (path, documents at least, statements: page + count + one per path and level)
        let cases = [
            ("/api/posts?limit=1", 1, 2),
            ("/api/posts?limit=1&expand=author", 1, 3),
            ("/api/posts?limit=15&expand=author", 15, 3),
            ("/api/posts?limit=15&expand=author,author.org", 15, 4),
            (
                "/api/posts?limit=15&expand=author.org,author,author.org",
                15,
                4,
            ),
            (
                "/api/posts?limit=15&expand=author.org,comments_via_post,author.posts_via_author",
                15,
                6,
            ),
            (
                "/api/users?expand=posts_via_author.comments_via_post,org.users_via_org",
                3,
                6,
            ),
        ];
        for (path, docs, expected) in cases {
            let before = statements(s).await;
            let page = w.ann.who.get(s, path).await;
            let after = statements(s).await;
            assert!(
                page["docs"].as_array().unwrap().len() >= docs,
                "{path}: {page}"
            );
            assert_eq!(after - before, expected, "{path}");
        }
        let before = statements(s).await;
        let one = w
            .ann
            .who
            .get(
                s,
                &format!("/api/posts/{}?expand=author.org,comments_via_post", w.p1),
            )
            .await;
        assert_eq!(
            statements(s).await - before,
            4,
            "get + author + org + comments"
        );
        assert_eq!(
            one["doc"]["expand"]["author"]["expand"]["org"]["name"],
            "Acme"
        );
    }
}

/// A back-relation expands at most 100 documents per document, the oldest first.
#[tokio::test]
async fn back_relations_expand_at_most_100() {
    for backend in backends() {
        let server = Server::start(&backend, CONFIG).await;
        let org = ANON.create(&server, "orgs", json!({"name": "Big"})).await;
        let ann = sign_up(&server, "ann@example.com", "Ann", &org).await;
        let post = ann
            .who
            .create(
                &server,
                "posts",
                json!({"title": "popular", "status": "published", "author": ann.id}),
            )
            .await;
        let bodies: Vec<String> = (0..101).map(|i| format!("c{i:03}")).collect();
        for body in &bodies {
            ANON.create(&server, "comments", json!({"post": post, "body": body}))
                .await;
        }
        let doc = ANON
            .get(
                &server,
                &format!("/api/posts/{post}?expand=comments_via_post"),
            )
            .await;
        let expanded = titles(&doc["doc"]["expand"]["comments_via_post"]);
        assert_eq!(expanded.len(), 100);
        assert_eq!(
            expanded,
            bodies[..100].iter().map(String::as_str).collect::<Vec<_>>()
        );
    }
}

fn without_updated_at(views: Vec<Value>) -> Vec<Value> {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("updatedAt");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut views = views;
    views.iter_mut().for_each(strip);
    views
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const LISTS: &str = r#"
[auth]
jwt_secret = "test-secret-of-at-least-thirty-two-bytes"

[metrics]
enabled = true

[collections.users]
auth = true

[collections.tags.fields]
name   = { type = "string" }
public = { type = "boolean", default = true }
[collections.tags.access]
read   = "doc.public == true || user != null"
create = "true"

[collections.posts.fields]
title  = { type = "string", required = true }
status = { type = "select", options = ["draft", "published"], default = "draft" }
tags   = { type = "relation", to = "tags", many = true }
[collections.posts.access]
read   = "doc.status == 'published' || user != null"
create = "true"
"#;

/// To-many relations: expanded in the list's order (what the caller may not read left out, the
/// ids kept), back-relations through lists, filters through lists and `'<id>' in tags`.
#[tokio::test]
async fn lists_expand_in_order_and_filter_through_their_targets() {
    for backend in backends() {
        let s = &Server::start(&backend, LISTS).await;
        let (status, body) = s
            .post(
                "/api/users/register",
                &json!({"email": "ann@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let ann = As(Some(body["token"].as_str().unwrap().to_string()));
        let rust = ANON.create(s, "tags", json!({"name": "rust"})).await;
        let private = ANON
            .create(s, "tags", json!({"name": "private", "public": false}))
            .await;
        let web = ANON.create(s, "tags", json!({"name": "web"})).await;
        let p1 = ANON
            .create(
                s,
                "posts",
                json!({"title": "p1", "status": "published", "tags": [web, private, rust]}),
            )
            .await;
        ANON.create(
            s,
            "posts",
            json!({"title": "p2", "status": "draft", "tags": [rust]}),
        )
        .await;
        let names = |docs: &Value| -> Vec<String> {
            docs.as_array()
                .expect("an array")
                .iter()
                .map(|d| {
                    d["name"]
                        .as_str()
                        .or(d["title"].as_str())
                        .unwrap()
                        .to_string()
                })
                .collect()
        };

        // The list's order; the tag anonymous callers may not read is left out of `expand`,
        // its id stays in the field.
        let doc = ANON.get(s, &format!("/api/posts/{p1}?expand=tags")).await;
        assert_eq!(doc["doc"]["tags"], json!([web, private, rust]));
        assert_eq!(names(&doc["doc"]["expand"]["tags"]), ["web", "rust"]);
        let doc = ann.get(s, &format!("/api/posts/{p1}?expand=tags")).await;
        assert_eq!(
            names(&doc["doc"]["expand"]["tags"]),
            ["web", "private", "rust"]
        );

        // Back through a list, and nested: the posts listing a tag, as each caller may see them.
        let path = format!("/api/tags/{rust}?expand=posts_via_tags,posts_via_tags.tags");
        let doc = ANON.get(s, &path).await;
        assert_eq!(names(&doc["doc"]["expand"]["posts_via_tags"]), ["p1"]);
        let doc = ann.get(s, &path).await;
        let posts = &doc["doc"]["expand"]["posts_via_tags"];
        assert_eq!(names(posts), ["p1", "p2"]);
        assert_eq!(
            names(&posts[0]["expand"]["tags"]),
            ["web", "private", "rust"]
        );
        assert_eq!(posts[1]["tags"], json!([rust]));

        // A page: one query for the page, one for its lists, one for the count, one for the
        // expansion (tags have no lists of their own).
        let before = statements(s).await;
        let page = ann.get(s, "/api/posts?expand=tags").await;
        assert_eq!(statements(s).await - before, 4);
        assert_eq!(page["totalDocs"], 2);
        let page = ann.get(s, "/api/posts?expand=tags&select=title").await;
        for doc in page["docs"].as_array().unwrap() {
            assert!(doc.get("tags").is_none(), "{doc}");
            assert!(doc["expand"]["tags"].is_array(), "{doc}");
        }

        // Filters: any tag the caller may read; an id in the list, as the field shows it.
        let q = |filter: &str| format!("/api/posts?filter={}", urlencode(filter));
        for (who, caller, filter, total) in [
            ("anon", &ANON, "tags.name == 'rust'".to_string(), 1),
            ("ann", &ann, "tags.name == 'rust'".to_string(), 2),
            ("anon", &ANON, "tags.name == 'private'".to_string(), 0),
            ("ann", &ann, "tags.name == 'private'".to_string(), 1),
            ("anon", &ANON, format!("'{private}' in tags"), 1),
            (
                "ann",
                &ann,
                format!("'{rust}' in tags && !('{web}' in tags)"),
                1,
            ),
            (
                "ann",
                &ann,
                "tags.posts_via_tags.title == 'p2'".to_string(),
                2,
            ),
        ] {
            let page = caller.get(s, &q(&filter)).await;
            assert_eq!(page["totalDocs"], total, "{who}: {filter}");
        }
        let page = ANON
            .get(
                s,
                &format!(
                    "/api/tags?filter={}",
                    urlencode("posts_via_tags.title == 'p2'")
                ),
            )
            .await;
        assert_eq!(page["totalDocs"], 0, "p2 is a draft");
        let answer = ANON.call(s, Method::GET, &q("tags == null"), None).await;
        assert_error(&answer, 400, "bad_request");
    }
}

/// Each `curl` example of docs/api.md's "Expanding relations" and "Filtering through relations"
/// sections, run against the example project, answers what the JSON block after it shows (a
/// `"..."` value stands for anything, a `"...": "..."` member for more members, `$NAME` for the
/// ids the example makes).
#[tokio::test]
async fn the_documented_examples_answer_what_the_docs_show() {
    let page = std::fs::read_to_string(crate::openapi::repository().join("docs/api.md")).unwrap();
    let mut examples = Vec::new();
    for title in ["## Expanding relations", "## Filtering through relations"] {
        let section = page[page.find(title).expect("the section") + title.len()..]
            .split("\n## ")
            .next()
            .unwrap();
        for block in section.split("```sh\n").skip(1) {
            let curl = block.split("```").next().unwrap().trim().to_string();
            let answer = block
                .split("```json\n")
                .nth(1)
                .and_then(|rest| rest.split("```").next())
                .expect("a JSON answer after each curl")
                .to_string();
            examples.push((curl, answer));
        }
    }
    assert_eq!(examples.len(), 3);
    for backend in backends() {
        let server = crate::openapi::example(&backend).await;
        let (status, body) = server
            .post(
                "/api/users/register",
                &json!({"email": "ann@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let token = body["token"].as_str().unwrap().to_string();
        let me = body["user"]["id"].as_str().unwrap().to_string();
        let ann = As(Some(token.clone()));
        let first = ann
            .create(
                &server,
                "posts",
                json!({"title": "First", "status": "published", "author": me}),
            )
            .await;
        let post = ann
            .create(
                &server,
                "posts",
                json!({"title": "Second", "author": me, "related": [first]}),
            )
            .await;
        let vars = [
            ("$TOKEN", token),
            ("$POST", post),
            ("$FIRST", first),
            ("$ME", me),
        ];
        let fill = |text: &str| {
            vars.iter().fold(text.to_string(), |text, (name, value)| {
                text.replace(name, value)
            })
        };
        for (curl, answer) in &examples {
            let words = shell_words(&fill(curl));
            let mut request = server.client.get("http://placeholder");
            let mut url = None;
            let mut query = Vec::new();
            let mut words = words.iter().skip(1);
            while let Some(word) = words.next() {
                match word.as_str() {
                    "-s" | "-G" => {}
                    "-H" => {
                        let (name, value) = words.next().unwrap().split_once(": ").unwrap();
                        request = request.header(name, value);
                    }
                    "--data-urlencode" => {
                        let (name, value) = words.next().unwrap().split_once('=').unwrap();
                        query.push((name.to_string(), value.to_string()));
                    }
                    other => {
                        url = Some(
                            other
                                .strip_prefix("localhost:8080")
                                .expect("a URL")
                                .to_string(),
                        )
                    }
                }
            }
            let url = url.expect("a URL");
            let built = request.build().unwrap();
            let mut request = server.client.get(server.url(&url)).query(&query);
            for (name, value) in built.headers() {
                request = request.header(name, value);
            }
            let (_, got) = decode(request.send().await.unwrap()).await;
            let expected: Value =
                serde_json::from_str(&fill(answer)).unwrap_or_else(|e| panic!("{e}: {answer}"));
            if let Err(at) = matches(&expected, &got, "") {
                panic!("{curl}\nanswered {got}\nnot as documented at {at}");
            }
        }
    }
}

/// Whether `got` is as `expected` shows it (see above); the path of the first difference.
fn matches(expected: &Value, got: &Value, at: &str) -> Result<(), String> {
    match (expected, got) {
        (Value::String(s), _) if s == "..." => Ok(()),
        (Value::Object(expected), Value::Object(got)) => {
            let open = expected.contains_key("...");
            for (key, value) in expected.iter().filter(|(k, _)| *k != "...") {
                let found = got
                    .get(key)
                    .ok_or_else(|| format!("{at}/{key} (missing)"))?;
                matches(value, found, &format!("{at}/{key}"))?;
            }
            match got.keys().find(|k| !open && !expected.contains_key(*k)) {
                Some(extra) => Err(format!("{at}/{extra} (not documented)")),
                None => Ok(()),
            }
        }
        (Value::Array(expected), Value::Array(got)) if expected.len() == got.len() => expected
            .iter()
            .zip(got)
            .enumerate()
            .try_for_each(|(i, (e, g))| matches(e, g, &format!("{at}/{i}"))),
        _ if expected == got => Ok(()),
        _ => Err(at.to_string()),
    }
}

/// A command line split as a shell would: words, with '…' and "…" quoting.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut started = false;
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (_, c) => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}
