//! Lucent's own tables under versions: a database made before they had versions (by lucent at
//! 783742e, dumped in `fixtures/before_system_versions/`) is opened by this Lucent, takes the
//! first step as a no-op, and everything stored in it keeps working: password, refresh session
//! and its reuse detection, API key, reset token, documents.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};

use crate::auth::PASSWORD;
use crate::helpers::{Backend, Server, assert_error, backends, decode};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/fixtures/before_system_versions"
);

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURE}/{name}")).unwrap()
}

fn engine(backend: &Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres(_) => "postgres",
    }
}

/// The system steps recorded in a database.
async fn versions(db: &DatabaseConnection) -> Vec<i64> {
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT version FROM _lucent_system_migrations ORDER BY version",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get_by_index(0).unwrap())
        .collect()
}

/// Every column of Lucent's tables, with its type, nullability and default, and every index on
/// them: what a database's system tables are, compared between an upgraded and a new database.
async fn system_shape(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => {
            "SELECT m.name || '.' || p.name || ' ' || p.type || ' ' || p.\"notnull\" || ' ' || \
             p.pk || ' ' || COALESCE(p.dflt_value, '') FROM sqlite_master m, \
             pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name LIKE '\\_lucent%' ESCAPE '\\' \
             UNION ALL SELECT 'index ' || name || ' ' || COALESCE(sql, '') FROM sqlite_master \
             WHERE type = 'index' AND tbl_name LIKE '\\_lucent%' ESCAPE '\\' ORDER BY 1"
        }
        _ => {
            "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || \
             COALESCE(character_maximum_length::text, '') || ' ' || is_nullable || ' ' || \
             COALESCE(column_default, '') FROM information_schema.columns WHERE table_schema = \
             'public' AND table_name LIKE '\\_lucent%' UNION ALL SELECT 'index ' || indexname || \
             ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename LIKE \
             '\\_lucent%' ORDER BY 1"
        }
    };
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

async fn bearer(server: &Server, path: &str, token: &str) -> (reqwest::StatusCode, Value) {
    decode(
        reqwest::Client::new()
            .get(server.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_database_made_before_system_versions_upgrades_and_keeps_working() {
    for backend in backends() {
        let config = fixture("lucent.toml");
        let migration = fixture("migrations/0001_initial.toml");
        let secrets: Value =
            serde_json::from_str(&fixture(&format!("{}.json", engine(&backend)))).unwrap();
        let mut server = Server::prepare(
            &backend,
            &config,
            &[("migrations/0001_initial.toml", &migration)],
        );
        std::fs::create_dir_all(server.path().join("data")).unwrap();
        let db = server.connect_database().await;
        db.execute_unprepared(&fixture(&format!("{}.sql", engine(&backend))))
            .await
            .unwrap();
        assert!(
            db.query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT 1 FROM _lucent_sessions",
            ))
            .await
            .is_ok(),
            "the fixture has the auth tables"
        );
        server.spawn(&[]);
        assert_eq!(
            versions(&db).await,
            [1, 2, 3],
            "step 1 is recorded, steps 2 (idempotency keys) and 3 (outbox) applied"
        );

        // Everything the old Lucent stored still works.
        let (status, login) = server
            .post(
                "/api/users/login",
                &json!({"email": "ann@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{login}");
        assert_eq!(login["user"]["name"], "Ann");
        let (status, notes) =
            bearer(&server, "/api/notes", secrets["apiKey"].as_str().unwrap()).await;
        assert_eq!(status, 200, "{notes}");
        assert_eq!(notes["docs"][0]["text"], "kept");
        let (status, rotated) = server
            .post(
                "/api/users/refresh",
                &json!({"refreshToken": secrets["refreshToken"]}),
            )
            .await;
        assert_eq!(status, 200, "{rotated}");
        // A token the old Lucent rotated away is reuse: the session ends.
        assert_error(
            &server
                .post(
                    "/api/users/refresh",
                    &json!({"refreshToken": secrets["rotatedRefreshToken"]}),
                )
                .await,
            401,
            "unauthorized",
        );
        assert_error(
            &server
                .post(
                    "/api/users/refresh",
                    &json!({"refreshToken": rotated["refreshToken"]}),
                )
                .await,
            401,
            "unauthorized",
        );
        let (status, reset) = server
            .post(
                "/api/users/reset-password",
                &json!({"token": secrets["resetToken"], "password": "a new passphrase for ann"}),
            )
            .await;
        assert_eq!(status, 200, "{reset}");
        assert_error(
            &bearer(&server, "/api/notes", secrets["apiKey"].as_str().unwrap()).await,
            401,
            "unauthorized",
        );
        assert_eq!(
            server
                .post(
                    "/api/users/login",
                    &json!({"email": "ann@example.com", "password": "a new passphrase for ann"}),
                )
                .await
                .0,
            200
        );

        // A restart applies nothing again; the tables are those of a new database.
        server.stop();
        server.spawn(&[]);
        assert_eq!(versions(&db).await, [1, 2, 3]);
        let fresh = Server::start(&backend, &config).await;
        let fresh_db = fresh.connect_database().await;
        assert_eq!(versions(&fresh_db).await, [1, 2, 3]);
        assert_eq!(system_shape(&db).await, system_shape(&fresh_db).await);
        db.close().await.ok();
        fresh_db.close().await.ok();
    }
}
