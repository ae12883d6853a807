//! Lists: the envelope, pagination edges, sort, select, and parameters that must be refused.

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{Backend, POSTS, Server, assert_error, backends};

async fn seed(server: &Server, count: usize) {
    for i in 0..count {
        let body = json!({"title": format!("post {i:02}"), "views": (i * 7) % 10, "rating": i as f64 / 10.0, "secret": format!("s{i}")});
        let (status, answer) = server.post("/api/posts", &body).await;
        assert_eq!(status, 201, "{answer}");
    }
}

fn titles(page: &Value) -> Vec<String> {
    page["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn pages_sorts_and_selects() {
    for backend in backends() {
        let server = Server::start(&backend, POSTS).await;
        seed(&server, 25).await;

        let (status, first) = server.get("/api/posts").await;
        assert_eq!(status, 200);
        assert_eq!(
            (
                &first["totalDocs"],
                &first["limit"],
                &first["page"],
                &first["totalPages"],
                &first["hasNextPage"],
                &first["hasPrevPage"]
            ),
            (
                &json!(25),
                &json!(20),
                &json!(1),
                &json!(2),
                &json!(true),
                &json!(false)
            )
        );
        assert_eq!(titles(&first)[0], "post 24", "default sort is newest first");
        let (_, second) = server.get("/api/posts?page=2").await;
        assert_eq!(titles(&second).len(), 5);
        assert_eq!(
            (&second["hasNextPage"], &second["hasPrevPage"]),
            (&json!(false), &json!(true))
        );
        let (_, beyond) = server.get("/api/posts?page=9").await;
        assert_eq!(
            (
                beyond["docs"].as_array().unwrap().len(),
                &beyond["totalDocs"]
            ),
            (0, &json!(25))
        );

        // Every document exactly once across pages of 7.
        let mut seen = Vec::new();
        for page in 1..=4 {
            let (_, body) = server
                .get(&format!("/api/posts?limit=7&page={page}&sort=views"))
                .await;
            seen.extend(titles(&body));
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 25);

        let (_, by_title) = server.get("/api/posts?sort=title&limit=3").await;
        assert_eq!(titles(&by_title), ["post 00", "post 01", "post 02"]);
        let (_, by_views) = server.get("/api/posts?sort=-views,title&limit=4").await;
        let views: Vec<i64> = by_views["docs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["views"].as_i64().unwrap())
            .collect();
        assert_eq!(views, [9, 9, 8, 8]);
        assert_eq!(
            titles(&by_views),
            ["post 07", "post 17", "post 04", "post 14"],
            "ties follow the second key"
        );

        let (_, selected) = server.get("/api/posts?select=title,views&limit=1").await;
        let keys: Vec<&String> = selected["docs"][0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "title", "views"]);
        let (_, whole) = server.get("/api/posts?limit=1").await;
        assert!(
            whole["docs"][0].get("secret").is_none(),
            "hidden fields never appear"
        );
    }
}

#[tokio::test]
async fn bad_list_parameters_are_400() {
    let server = Server::start(&Backend::Sqlite, POSTS).await;
    seed(&server, 3).await;
    let unknown = assert_error(
        &server.get("/api/posts?sort=nope").await,
        400,
        "bad_request",
    );
    let hidden = assert_error(
        &server.get("/api/posts?sort=secret").await,
        400,
        "bad_request",
    );
    assert_eq!(
        unknown["message"].as_str().unwrap().replace("nope", "X"),
        hidden["message"].as_str().unwrap().replace("secret", "X"),
        "a hidden field reads exactly like an unknown one"
    );
    for path in [
        "/api/posts?select=secret",
        "/api/posts?select=title,password",
        "/api/posts?sort=-secret",
        "/api/posts?limit=101",
        "/api/posts?limit=0",
        "/api/posts?limit=-5",
        "/api/posts?limit=abc",
        "/api/posts?page=0",
        "/api/posts?page=1.5",
        "/api/posts?sort=a,b,c,d,e,f",
        "/api/posts?sort=title;DROP TABLE posts",
        "/api/posts?sort=\"title\"",
        "/api/posts?bogus=1",
        "/api/posts?limit=1&limit=2",
    ] {
        assert_error(&server.get(path).await, 400, "bad_request");
    }
    let (status, list) = server.get("/api/posts?limit=100").await;
    assert_eq!(
        (status.as_u16(), &list["totalDocs"]),
        (200, &json!(3)),
        "the table is intact"
    );
}

#[tokio::test]
async fn max_limit_is_configurable() {
    let config = format!("[server]\nmax_limit = 5\n{POSTS}");
    let server = Server::start(&Backend::Sqlite, &config).await;
    seed(&server, 6).await;
    let (_, page) = server.get("/api/posts").await;
    assert_eq!(
        page["limit"], 5,
        "the default page size never exceeds max_limit"
    );
    assert_error(&server.get("/api/posts?limit=6").await, 400, "bad_request");
    let answers = join_all((0..4).map(|_| server.get("/api/posts?limit=5"))).await;
    assert!(answers.iter().all(|a| a.0 == 200));
}
