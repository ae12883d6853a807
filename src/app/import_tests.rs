//! The writer alone, on a SQLite file: the same documents, in many line orders and batch sizes,
//! always come out whole — relations through a cycle, a self-reference, a required relation
//! pointing further down, a list — and what never finds its target is reported by line.

use serde_json::{Value as Json, json};

use super::Lucent;
use crate::records::{Records, Rejection};

const CONFIG: &str = r#"
[collections.users.fields]
manager  = { type = "relation", to = "users" }
favorite = { type = "relation", to = "posts" }
[collections.posts.fields]
author = { type = "relation", to = "users", required = true }
tags   = { type = "relation", to = "tags", many = true }
[collections.tags.fields]
name = { type = "string", unique = true }
"#;

const TIME: &str = "2026-01-02T03:04:05.678Z";

/// The documents, each as its line holds it and as the database must give it back.
fn documents() -> Vec<(&'static str, Json)> {
    let doc = |value: Json| {
        let mut value = value;
        value["createdAt"] = json!(TIME);
        value["updatedAt"] = json!(TIME);
        value
    };
    vec![
        (
            "users",
            doc(json!({"id": "u1", "manager": "u2", "favorite": "p1"})),
        ),
        (
            "users",
            doc(json!({"id": "u2", "manager": "u2", "favorite": null})),
        ),
        (
            "posts",
            doc(json!({"id": "p1", "author": "u1", "tags": ["t2", "t1"]})),
        ),
        (
            "posts",
            doc(json!({"id": "p2", "author": "u2", "tags": []})),
        ),
        ("tags", doc(json!({"id": "t1", "name": "one"}))),
        ("tags", doc(json!({"id": "t2", "name": "two"}))),
    ]
}

async fn start(dir: &std::path::Path) -> Lucent {
    std::fs::write(dir.join("lucent.toml"), CONFIG).unwrap();
    let config = crate::config::load(&dir.join("lucent.toml")).expect("config");
    Lucent::from_config(config).await.expect("start")
}

/// Writes `lines` (collection and document, numbered from 1) in batches of `batch`.
async fn import(records: &Records, lines: &[(&str, Json)], batch: usize) -> Vec<Rejection> {
    let mut importer = records.importer(false).await.unwrap();
    let mut rejected = Vec::new();
    let mut entries = Vec::new();
    for (number, (slug, doc)) in lines.iter().enumerate() {
        match records.check_import(number as u64 + 1, slug, doc) {
            Ok(entry) => entries.push(entry),
            Err(rejection) => rejected.push(rejection),
        }
        if entries.len() == batch {
            rejected.extend(importer.write(std::mem::take(&mut entries)).await.unwrap());
        }
    }
    rejected.extend(importer.write(entries).await.unwrap());
    rejected.extend(importer.finish().await.unwrap());
    rejected
}

/// Every stored document, by collection, in id order.
async fn stored(records: &Records) -> Vec<(String, Json)> {
    let snapshot = records.snapshot().await.unwrap();
    let mut all = Vec::new();
    for slug in ["users", "posts", "tags"] {
        for doc in snapshot.page(slug, None).await.unwrap() {
            all.push((slug.to_string(), Json::Object(doc)));
        }
    }
    snapshot.close().await.unwrap();
    all
}

#[tokio::test]
async fn any_line_order_and_batch_size_gives_the_same_documents() {
    let documents = documents();
    let expected: Vec<(String, Json)> = ["users", "posts", "tags"]
        .into_iter()
        .flat_map(|slug| {
            documents
                .iter()
                .filter(move |(s, _)| *s == slug)
                .map(|(s, d)| (s.to_string(), d.clone()))
        })
        .collect();
    let orders: [[usize; 6]; 4] = [
        [0, 1, 2, 3, 4, 5],
        [5, 4, 3, 2, 1, 0],
        [2, 0, 4, 3, 1, 5],
        [3, 2, 1, 5, 0, 4],
    ];
    for order in orders {
        for batch in [1, 2, 6] {
            let dir = tempfile::tempdir().unwrap();
            let lucent = start(dir.path()).await;
            let lines: Vec<(&str, Json)> = order.iter().map(|&i| documents[i].clone()).collect();
            let rejected = import(&lucent.records, &lines, batch).await;
            assert_eq!(rejected, Vec::new(), "order {order:?}, batch {batch}");
            assert_eq!(
                stored(&lucent.records).await,
                expected,
                "order {order:?}, batch {batch}"
            );
            lucent.database().clone().close().await;
        }
    }
}

#[tokio::test]
async fn what_never_finds_its_target_is_reported_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let lucent = start(dir.path()).await;
    let time = |value: Json| {
        let mut value = value;
        value["createdAt"] = json!(TIME);
        value["updatedAt"] = json!(TIME);
        value
    };
    let lines = vec![
        ("users", time(json!({"id": "u1", "manager": "nobody"}))),
        ("posts", time(json!({"id": "p1", "author": "ghost"}))),
        (
            "posts",
            time(json!({"id": "p2", "author": "u1", "tags": ["t1", "x", "y"]})),
        ),
        ("tags", time(json!({"id": "t1", "name": "one"}))),
        ("tags", time(json!({"id": "t2", "name": "one"}))),
        ("tags", time(json!({"id": "t1", "name": "again"}))),
    ];
    let rejected: Vec<String> = import(&lucent.records, &lines, 2)
        .await
        .iter()
        .map(Rejection::to_string)
        .collect();
    assert_eq!(
        rejected,
        [
            r#"line 5: tags "t2": name: name is already taken"#,
            r#"line 6: tags "t1": id: a tags document with this id already exists"#,
            r#"line 1: users "u1": manager: no users document has id "nobody"; the document was imported without manager"#,
            r#"line 2: posts "p1": author: no users document has id "ghost""#,
            r#"line 3: posts "p2": tags: no tags documents have ids "x", "y"; the document was imported without tags"#,
        ]
    );
    let ids: Vec<Json> = stored(&lucent.records)
        .await
        .into_iter()
        .map(|(_, doc)| doc["id"].clone())
        .collect();
    assert_eq!(ids, [json!("u1"), json!("p2"), json!("t1")]);
    lucent.database().clone().close().await;
}
