//! Hook 2 of `events` (records/changes.rs), through the whole composition: a committed change
//! is announced once, after the commit; a rolled-back one never. Here rather than in `records`,
//! which may not import the composition root above it.

use serde_json::json;
use tokio::sync::broadcast::error::TryRecvError;

use super::Lucent;
use crate::auth::Principal;
use crate::db::Writes;
use crate::schema::Action;

/// Hook 2 fires once per committed change, after the commit, in order, and never for a
/// write that was rolled back: alone, or in a transaction held for several (a batch).
#[tokio::test]
async fn committed_changes_are_announced_once_and_only_after_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lucent.toml");
    std::fs::write(
        &path,
        "[collections.posts.fields]\ntitle = { type = \"string\", unique = true }\n[collections.posts.access]\nread = \"true\"\ncreate = \"true\"\nupdate = \"true\"\ndelete = \"true\"\n",
    )
    .unwrap();
    let config = crate::config::load_with_env(&path, &|_| None).unwrap();
    let lucent = Lucent::from_config(config).await.unwrap();
    let records = &lucent.records;
    let anyone = Principal::Anonymous;
    let mut stream = records.events().subscribe();
    let mut next = || match stream.try_recv() {
        Ok(change) => Some((change.action, change.id.clone())),
        Err(TryRecvError::Empty) => None,
        Err(e) => panic!("{e}"),
    };

    let a = records
        .create(&anyone, "posts", &json!({"title": "a"}))
        .await
        .unwrap();
    let a_id = a["id"].as_str().unwrap().to_string();
    assert_eq!(next(), Some((Action::Create, a_id.clone())));
    assert!(
        records
            .create(&anyone, "posts", &json!({"title": "a"}))
            .await
            .is_err()
    );
    assert_eq!(next(), None, "a unique violation announces nothing");
    records
        .update(&anyone, "posts", &a_id, &json!({"title": "b"}))
        .await
        .unwrap();
    assert_eq!(next(), Some((Action::Update, a_id.clone())));
    records.delete(&anyone, "posts", &a_id).await.unwrap();
    assert_eq!(next(), Some((Action::Delete, a_id.clone())));
    assert!(
        records
            .update(&anyone, "posts", &a_id, &json!({"title": "c"}))
            .await
            .is_err()
    );
    assert_eq!(next(), None);

    // Held transactions: announced at the commit, in order; nothing when rolled back.
    let db = records.database();
    let transaction = db.begin().await.unwrap();
    let mut ids = Vec::new();
    for title in ["x", "y"] {
        let doc = records
            .create_in(
                Writes::Within(&transaction),
                &anyone,
                "posts",
                &json!({"title": title}),
                None,
            )
            .await
            .unwrap();
        ids.push(doc["id"].as_str().unwrap().to_string());
    }
    assert_eq!(next(), None, "not before the commit");
    transaction.commit().await.unwrap();
    assert_eq!(next(), Some((Action::Create, ids[0].clone())));
    assert_eq!(next(), Some((Action::Create, ids[1].clone())));

    let transaction = db.begin().await.unwrap();
    let doc = records
        .create_in(
            Writes::Within(&transaction),
            &anyone,
            "posts",
            &json!({"title": "z"}),
            None,
        )
        .await
        .unwrap();
    transaction.rollback().await.unwrap();
    let transaction = db.begin().await.unwrap();
    records
        .delete_in(Writes::Within(&transaction), &anyone, "posts", &ids[0])
        .await
        .unwrap();
    drop(transaction);
    assert_eq!(next(), None, "rolled back or dropped: nothing");
    let z = doc["id"].as_str().unwrap();
    assert!(records.find_by_id(&anyone, "posts", z, None).await.is_err());
    assert!(
        records
            .find_by_id(&anyone, "posts", &ids[0], None)
            .await
            .is_ok()
    );
    lucent.database().clone().close().await;
}
