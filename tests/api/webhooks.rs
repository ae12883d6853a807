//! Webhooks and the outbox over HTTP (SPEC §13), with a real receiver on a loopback port
//! (`receiver.rs`): Standard Webhooks messages checked by the official verifier (Python's
//! `standardwebhooks`, from the venv `.ci/run` installs; skipped without it), event patterns and
//! filters, hidden fields, cascades, rolled-back writes, retries with a stable `webhook-id`,
//! `lucent outbox`, kill -9 after acknowledged writes and before a mail is sent, and two
//! instances sharing one PostgreSQL.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Value, json};

use crate::auth::{PASSWORD, SECRET};
use crate::email::{token_in, wait_mails};
use crate::helpers::{Backend, Server, backends, lucent_bin};
use crate::openapi::{repository, tool};
use crate::receiver::{Delivery, Receiver};

/// The Standard Webhooks specification's example secret (24 bytes).
const SECRET_ALL: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRET_PUBLISHED: &str = "whsec_bHVjZW50IHRlc3RzOiBwdWJsaXNoZWQgaG9va3MhIQ==";

/// Retries every 300 ms (test schedule: `LUCENT_TEST_OUTBOX_DELAYS`).
const FAST_RETRIES: (&str, &str) = ("LUCENT_TEST_OUTBOX_DELAYS", "300ms, 300ms");

fn config(receiver: &Receiver, extra: &str) -> String {
    format!(
        r#"
[auth]
jwt_secret = "{SECRET}"
[metrics]
enabled = true

[[webhooks]]
url = "{all}"
events = ["posts.*", "users.*", "comments.*"]
secret = "{SECRET_ALL}"

[[webhooks]]
url = "{published}"
events = ["posts.create", "posts.update"]
filter = "status == 'published'"
secret = "{SECRET_PUBLISHED}"
{extra}
[collections.users]
auth = true
[collections.users.fields]
name = {{ type = "string" }}
[collections.users.access]
read = "true"
update = "true"
delete = "true"

[collections.posts.fields]
title = {{ type = "string", required = true, unique = true }}
status = {{ type = "select", options = ["draft", "published"], default = "draft" }}
secret = {{ type = "string", hidden = true }}
author = {{ type = "relation", to = "users", on_delete = "cascade" }}
[collections.posts.access]
read = "true"
create = "true"
update = "true"
delete = "true"

[collections.comments.fields]
text = {{ type = "string" }}
post = {{ type = "relation", to = "posts", on_delete = "cascade" }}
[collections.comments.access]
read = "true"
create = "true"
update = "true"
delete = "true"

[collections.notes.fields]
text = {{ type = "string" }}
[collections.notes.access]
read = "true"
create = "true"
update = "true"
delete = "true"
"#,
        all = receiver.url("/all"),
        published = receiver.url("/published"),
    )
}

async fn create(server: &Server, collection: &str, body: Value) -> Value {
    let (status, answer) = server.post(&format!("/api/{collection}"), &body).await;
    assert_eq!(status, 201, "{answer}");
    answer["doc"].clone()
}

/// The messages' types and document ids, in the order they came.
fn events(deliveries: &[Delivery]) -> Vec<(String, String)> {
    deliveries
        .iter()
        .map(|d| {
            let message = d.json();
            (
                message["type"].as_str().unwrap().to_string(),
                message["data"]["doc"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// What the official Standard Webhooks library says of each message (`None`: it verifies),
/// or `None` when `.ci/run` did not provide it.
fn verify(messages: &[(&str, &Delivery)]) -> Option<Vec<Option<String>>> {
    let python = tool("LUCENT_TEST_WEBHOOK_VERIFIER")?;
    let input: Vec<Value> = messages
        .iter()
        .map(|(secret, delivery)| {
            json!({"secret": secret, "headers": delivery.headers, "body": delivery.body})
        })
        .collect();
    let mut child = Command::new(python)
        .arg(repository().join("tests/webhooks/verify.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), &input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "verify.py failed");
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

/// Every message verifies with its secret; changed bodies and other secrets do not.
fn assert_signed(secret: &str, deliveries: &[Delivery]) {
    let mut messages: Vec<(&str, &Delivery)> = deliveries.iter().map(|d| (secret, d)).collect();
    let mut tampered = deliveries[0].clone();
    tampered.body = tampered.body.replace("\"data\"", "\"data\" ");
    let other = if secret == SECRET_ALL {
        SECRET_PUBLISHED
    } else {
        SECRET_ALL
    };
    messages.push((secret, &tampered));
    messages.push((other, &deliveries[0]));
    let Some(results) = verify(&messages) else {
        return;
    };
    let (good, bad) = results.split_at(deliveries.len());
    assert!(good.iter().all(Option::is_none), "{good:?}");
    assert!(bad.iter().all(Option::is_some), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_writes_are_posted_as_signed_standard_webhooks() {
    for backend in backends() {
        let receiver = Receiver::start().await;
        let server = Server::start(&backend, &config(&receiver, "")).await;

        // A draft: every post event goes to /all; /published filters it out.
        let started = Instant::now();
        let draft = create(&server, "posts", json!({"title": "first", "secret": "s1"})).await;
        let all = receiver.wait("/all", 1).await;
        let latency = all[0].at - started;
        let message = all[0].json();
        assert_eq!(message["type"], "posts.create");
        assert_eq!(
            message["data"]["doc"], draft,
            "the document as the API shows it"
        );
        assert!(message["data"]["doc"].get("secret").is_none(), "hidden");
        assert!(message["data"].get("previous").is_none(), "{message}");
        let stamp = message["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );
        let headers = &all[0].headers;
        assert_eq!(headers["content-type"], "application/json");
        assert!(headers["webhook-id"].starts_with("msg_"), "{headers:?}");
        assert!(
            headers["webhook-signature"].starts_with("v1,"),
            "{headers:?}"
        );
        let sent: i64 = headers["webhook-timestamp"].parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - sent).abs() < 60);

        // Published by an update: both receivers, with the document before and after.
        let id = draft["id"].as_str().unwrap();
        let (status, _) = server
            .patch(&format!("/api/posts/{id}"), &json!({"status": "published"}))
            .await;
        assert_eq!(status, 200);
        let published = receiver.wait("/published", 1).await;
        let message = published[0].json();
        assert_eq!(message["type"], "posts.update");
        assert_eq!(message["data"]["previous"]["status"], "draft");
        assert_eq!(message["data"]["doc"]["status"], "published");
        assert!(message["data"]["previous"].get("secret").is_none());
        let second = create(
            &server,
            "posts",
            json!({"title": "second", "status": "published"}),
        )
        .await;
        receiver.wait("/published", 2).await;

        // A rolled-back write (a taken unique value) sends nothing; a write no webhook names
        // neither.
        let (status, _) = server.post("/api/posts", &json!({"title": "first"})).await;
        assert_eq!(status, 409);
        create(&server, "notes", json!({"text": "unwatched"})).await;
        let third = create(&server, "posts", json!({"title": "third"})).await;
        receiver.wait("/all", 4).await;

        // A delete: the document as it was, as `doc` and `previous`.
        let second_id = second["id"].as_str().unwrap();
        let (status, _) = server.delete(&format!("/api/posts/{second_id}")).await;
        assert_eq!(status, 200);
        let all = receiver.wait("/all", 5).await;
        let message = all[4].json();
        assert_eq!(message["type"], "posts.delete");
        assert_eq!(message["data"]["doc"], second);
        assert_eq!(message["data"]["previous"], second);

        // An account's hidden fields (its password hash) never leave; a delete reaches what it
        // cascades to, however far.
        let ann = create(
            &server,
            "users",
            json!({"email": "ann@example.com", "password": PASSWORD, "name": "Ann"}),
        )
        .await;
        let ann_id = ann["id"].as_str().unwrap();
        let post = create(
            &server,
            "posts",
            json!({"title": "by ann", "author": ann_id}),
        )
        .await;
        let post_id = post["id"].as_str().unwrap();
        let comment = create(&server, "comments", json!({"text": "hi", "post": post_id})).await;
        let all = receiver.wait("/all", 8).await;
        let account = all
            .iter()
            .map(Delivery::json)
            .find(|m| m["type"] == "users.create")
            .unwrap();
        let fields: Vec<&String> = account["data"]["doc"].as_object().unwrap().keys().collect();
        assert!(
            !fields.iter().any(
                |f| ["password", "verificationToken", "resetToken", "resetExpiry"]
                    .contains(&f.as_str())
            ),
            "{fields:?}"
        );
        let (status, _) = server.delete(&format!("/api/users/{ann_id}")).await;
        assert_eq!(status, 200);
        let all = receiver.wait("/all", 11).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let all_now = receiver.at("/all");
        assert_eq!(all_now.len(), 11, "{:?}", events(&all_now));
        let mut cascade = events(&all[8..]);
        cascade.sort();
        assert_eq!(
            cascade,
            [
                (
                    "comments.delete".into(),
                    comment["id"].as_str().unwrap().into()
                ),
                ("posts.delete".into(), post_id.into()),
                ("users.delete".into(), ann_id.into()),
            ]
        );
        let creates: Vec<String> = all
            .iter()
            .map(Delivery::json)
            .filter(|m| m["type"] == "posts.create")
            .map(|m| m["data"]["doc"]["title"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(creates, ["first", "second", "third", "by ann"]);
        assert!(third["id"].is_string());
        assert_eq!(receiver.at("/published").len(), 2);

        // Each message once, with its own id; signed so the official verifier accepts it.
        let mut ids: Vec<&str> = all.iter().map(Delivery::id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        assert_signed(SECRET_ALL, &all);
        assert_signed(SECRET_PUBLISHED, &receiver.at("/published"));

        // The worker is woken by the commit, not by its once-a-second look.
        assert!(
            latency < Duration::from_millis(900),
            "the first delivery took {latency:?}"
        );
    }
}

/// `lucent outbox ...` against the server's database; its exit status and stdout.
fn outbox_command(server: &Server, args: &[&str]) -> (bool, String) {
    let mut command = Command::new(lucent_bin());
    command
        .arg("outbox")
        .args(args)
        .arg("--config")
        .arg(server.path().join("lucent.toml"))
        .env("LUCENT_LOG", "error")
        .env_remove("LUCENT_DATABASE_URL");
    if let Some(url) = &server.database_url {
        command.env("LUCENT_DATABASE_URL", url);
    }
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

fn backlog(metrics: &str, state: &str) -> f64 {
    let series = format!(r#"lucent_outbox_backlog{{kind="webhook",state="{state}"}} "#);
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .unwrap_or_else(|| panic!("{series} in:\n{metrics}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_with_the_same_id_then_kept_until_requeued() {
    for backend in backends() {
        let receiver = Receiver::start().await;
        let mut server = Server::prepare(&backend, &config(&receiver, ""), &[]);
        server.spawn(&[FAST_RETRIES]);

        // Two failures, then success: three attempts of one message.
        receiver.then(&[500, 503]);
        create(&server, "posts", json!({"title": "retried"})).await;
        let attempts = receiver.wait("/all", 3).await;
        assert!(attempts.iter().all(|a| a.id() == attempts[0].id()));
        assert!(attempts.iter().all(|a| a.body == attempts[0].body));
        assert!(attempts[1].at - attempts[0].at >= Duration::from_millis(250));
        assert_signed(SECRET_ALL, &attempts);

        // Always refused: after the schedule (one try and two retries) it has failed for good,
        // is kept, counted and listed, and sent again when requeued.
        receiver.answer(500);
        create(&server, "posts", json!({"title": "refused"})).await;
        let attempts = receiver.wait("/all", 6).await;
        let refused = attempts[3].id().to_string();
        assert!(attempts[3..].iter().all(|a| a.id() == refused));
        let started = Instant::now();
        let (ok, status) = loop {
            let (ok, status) = outbox_command(&server, &["status"]);
            if status.contains("failed (") || started.elapsed() > Duration::from_secs(10) {
                break (ok, status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(ok, "{status}");
        assert!(status.contains(&receiver.url("/all")), "{status}");
        assert!(
            status.contains("the receiver answered HTTP 500"),
            "{status}"
        );
        assert!(status.contains("posts.create"), "{status}");
        let (_, metrics) = (
            (),
            server
                .client
                .get(server.url("/api/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
        assert_eq!(backlog(&metrics, "failed"), 1.0, "{metrics}");
        assert_eq!(backlog(&metrics, "pending"), 0.0, "{metrics}");
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(receiver.at("/all").len(), 6, "no attempt after failing");

        assert!(!outbox_command(&server, &["retry", "no-such-id"]).0);
        receiver.answer(200);
        let (ok, out) = outbox_command(&server, &["retry", "--failed"]);
        assert!(ok && out.contains("requeued 1 delivery"), "{out}");
        let attempts = receiver.wait("/all", 7).await;
        assert_eq!(attempts[6].id(), refused);
        let started = Instant::now();
        loop {
            let (_, status) = outbox_command(&server, &["status"]);
            if status.contains("the outbox is empty") {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "{status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_is_delivered_after_a_kill() {
    for backend in backends() {
        let receiver = Receiver::start().await;
        // Slow answers: deliveries are under way when the server dies.
        receiver.delay(Duration::from_millis(100));
        let mut server = Server::prepare(&backend, &config(&receiver, ""), &[]);
        // Claims of the killed process come back after 1 s (PostgreSQL; SQLite at start).
        let lease = ("LUCENT_TEST_OUTBOX_LEASE", "1s");
        server.spawn(&[lease]);
        let writes = (0..60).map(|i| {
            let server = &server;
            async move {
                server
                    .post("/api/posts", &json!({"title": format!("post {i}")}))
                    .await
            }
        });
        let answers = join_all(writes).await;
        server.kill();
        let mut acknowledged: Vec<String> = answers
            .iter()
            .filter(|(status, _)| *status == 201)
            .map(|(_, body)| body["doc"]["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(acknowledged.len(), 60);
        let before = receiver.at("/all").len();

        server.spawn(&[lease]);
        let started = Instant::now();
        loop {
            let got = receiver.at("/all");
            let mut delivered: Vec<String> = events(&got).into_iter().map(|(_, id)| id).collect();
            delivered.sort();
            delivered.dedup();
            acknowledged.retain(|id| delivered.binary_search(id).is_err());
            // Done when every write is delivered and the restarted server has sent what the
            // killed one was sending (whose outcome it never recorded).
            if acknowledged.is_empty() && got.len() > before {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "never delivered: {acknowledged:?} ({} before the kill, {} now)",
                before,
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_mail_requested_before_a_kill_is_sent_after_the_restart() {
    for backend in backends() {
        let receiver = Receiver::start().await;
        let email = "[email]\ntransport = \"file\"\ndir = \"outbox\"\nreset_url = \"http://app.test/reset?token={token}\"\n";
        let mut server = Server::prepare(&backend, &config(&receiver, email), &[]);
        let retries = ("LUCENT_TEST_OUTBOX_DELAYS", &*["300ms"; 30].join(","));
        server.spawn(&[retries]);
        create(
            &server,
            "users",
            json!({"email": "bea@example.com", "password": PASSWORD}),
        )
        .await;
        // The mail cannot be written yet (its folder is a file): attempts fail and are retried.
        std::fs::write(server.path().join("outbox"), "in the way").unwrap();
        let (status, _) = server
            .post(
                "/api/users/request-password-reset",
                &json!({"email": "bea@example.com"}),
            )
            .await;
        assert_eq!(status, 202);
        tokio::time::sleep(Duration::from_millis(800)).await;
        server.kill();
        assert!(
            server.path().join("outbox").is_file(),
            "no mail was written"
        );
        std::fs::remove_file(server.path().join("outbox")).unwrap();

        server.spawn(&[retries]);
        let mails = wait_mails(&server, "bea@example.com", 1).await;
        let token = token_in(&mails[0], "reset");
        let (status, body) = server
            .post(
                "/api/users/reset-password",
                &json!({"token": token, "password": "a brand new passphrase here"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        // The failed attempts did not count toward the limit (five an hour): four more mails.
        for _ in 0..5 {
            let (status, _) = server
                .post(
                    "/api/users/request-password-reset",
                    &json!({"email": "bea@example.com"}),
                )
                .await;
            assert_eq!(status, 202);
        }
        wait_mails(&server, "bea@example.com", 5).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(crate::email::mails_to(&server, "bea@example.com").len(), 5);
        server.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgresql_send_each_message_once() {
    let Some(Backend::Postgres(admin)) = backends()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres(_)))
    else {
        return; // `backends()` printed that PostgreSQL is skipped
    };
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_millis(20));
    let first = Server::start(&Backend::Postgres(admin), &config(&receiver, "")).await;
    let mut second = Server::start(&Backend::Sqlite, &config(&receiver, "")).await;
    second.stop();
    second.database_url = first.database_url.clone();
    second.spawn(&[]);
    let writes = (0..200).map(|i| {
        let server = if i % 2 == 0 { &first } else { &second };
        async move {
            let (status, body) = server
                .post("/api/posts", &json!({"title": format!("post {i}")}))
                .await;
            assert_eq!(status, 201, "{body}");
        }
    });
    join_all(writes).await;
    receiver.wait("/all", 200).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all = receiver.at("/all");
    let mut ids: Vec<&str> = all.iter().map(Delivery::id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    assert_eq!(all.len(), 200, "a message was sent twice");
    second.database_url = None; // the database belongs to `first`, which drops it
}
