//! `lucent init`: the new project passes `check`, `serve` serves it at once (sign up, write, read
//! as the rules say), and `init` never overwrites a file.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;

use crate::auth::PASSWORD;
use crate::helpers::{
    Backend, backends, create_postgres_database, decode, drop_postgres_database, lucent_bin,
};
use crate::serving::Serving;

fn lucent(dir: &Path, args: &[&str]) -> Output {
    Command::new(lucent_bin())
        .current_dir(dir)
        .args(args)
        .env_remove("LUCENT_ENV")
        .env_remove("LUCENT_DATABASE_URL")
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_new_project_checks_and_serves_at_once() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("site");
        let init = lucent(dir.path(), &["init", "site"]);
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        for file in [
            "lucent.toml",
            "schemas/posts.toml",
            ".gitignore",
            ".lucent/lucent.schema.json",
        ] {
            assert!(project.join(file).is_file(), "{file}");
        }
        let check = lucent(&project, &["check"]);
        let said = String::from_utf8_lossy(&check.stdout);
        assert!(
            check.status.success(),
            "{said}{}",
            String::from_utf8_lossy(&check.stderr)
        );
        assert!(said.contains("2 collection(s)"), "{said}");
        assert!(
            check.stderr.is_empty(),
            "check warns: {}",
            String::from_utf8_lossy(&check.stderr)
        );

        let database = match &backend {
            Backend::Sqlite => None,
            Backend::Postgres(admin) => Some((admin.clone(), create_postgres_database(admin))),
        };
        let url = database.as_ref().map(|(_, (url, _))| url.as_str());
        let env: Vec<(&str, &str)> = url
            .map(|u| ("LUCENT_DATABASE_URL", u))
            .into_iter()
            .collect();
        let server = Serving::start(&project, &env);
        let client = reqwest::Client::new();
        let at = |path: &str| server.url(path);
        let (status, registered) = decode(
            client
                .post(at("/api/users/register"))
                .json(&json!({"email": "jane@example.com", "password": PASSWORD}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{registered}");
        let token = registered["token"].as_str().unwrap();
        let me = registered["user"]["id"].as_str().unwrap();
        for (title, published) in [("Hello", true), ("Draft", false)] {
            let (status, created) = decode(
                client
                    .post(at("/api/posts"))
                    .bearer_auth(token)
                    .json(&json!({"title": title, "published": published, "author": me}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 201, "{created}");
        }
        let (status, page) = decode(client.get(at("/api/posts")).send().await.unwrap()).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(
            page["totalDocs"], 1,
            "anonymous readers see published posts: {page}"
        );
        let (_, mine) = decode(
            client
                .get(at("/api/posts"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(mine["totalDocs"], 2, "{mine}");
        assert!(
            project.join("data").is_dir() || url.is_some(),
            "the data folder .gitignore names"
        );
        drop(server);
        if let Some((admin, (_, name))) = database {
            drop_postgres_database(&admin, &name);
        }
    }
}

#[test]
fn init_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("schemas")).unwrap();
    std::fs::write(dir.path().join("schemas/posts.toml"), "mine").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "unrelated").unwrap();
    let refused = lucent(dir.path(), &["init"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("posts.toml already exists"), "{said}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("schemas/posts.toml")).unwrap(),
        "mine"
    );
    assert!(
        !dir.path().join("lucent.toml").exists(),
        "nothing is written when one file exists"
    );
    std::fs::remove_file(dir.path().join("schemas/posts.toml")).unwrap();
    assert!(lucent(dir.path(), &["init"]).status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "unrelated"
    );
    let again = lucent(dir.path(), &["init"]);
    assert!(!again.status.success());
}
