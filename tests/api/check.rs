//! `lucent check` and `serve` on configurations with problems: every error in one run, each at
//! its key; and the warnings about rules that say less than they seem to.

use std::path::Path;
use std::process::Command;

use crate::helpers::{Server, assert_error, backends, decode, lucent_bin};

/// Runs `lucent <command> --config lucent.toml` in `dir`: success, stdout, stderr.
fn run_in(dir: &Path, command: &str) -> (bool, String, String) {
    let mut cmd = Command::new(lucent_bin());
    cmd.arg(command)
        .arg("--config")
        .arg(dir.join("lucent.toml"))
        .env_remove("LUCENT_ENV")
        .env_remove("LUCENT_DATABASE_URL")
        .env("LUCENT_LOG", "warn");
    if command == "serve" {
        cmd.args(["--port", "0"]);
    }
    let output = cmd.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A project folder with `lucent.toml` and other files.
fn project(config: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lucent.toml"), config).unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// The diagnostic lines of `stderr` (those naming the config file), without the file prefix.
fn diagnostic_lines(stderr: &str, dir: &Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    stderr
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_type_error_names_its_key_in_words_a_toml_writer_knows() {
    let dir = project(
        "[collections.posts.fields]\ntitle = { type = \"string\", max_length = \"long\" }\n",
        &[],
    );
    let (ok, _, stderr) = run_in(dir.path(), "check");
    assert!(!ok);
    assert_eq!(
        diagnostic_lines(&stderr, dir.path()),
        [
            "lucent.toml: collections.posts.fields.title.max_length: expected a non-negative integer, found the string \"long\""
        ],
        "{stderr}"
    );
}

/// Several broken collections and several bad rules in valid ones: each problem once, at its key;
/// nothing reported that only follows from another (a rule naming a field that did not build).
const BROKEN: &str = r#"
[server]
port = "eighty"
env = "qa"

[collections.users]
auth = true
[collections.users.fields]
name = { type = "string", max_length = "long" }
role = { type = "select", options = ["admin", "user"] }
[collections.users.access]
read = "user.nme != null"
update = "doc.name == user.name"

[collections.members]
auth = { login_field = "handle" }
[collections.members.fields]
level = { type = "integer" }

[collections.posts]
[collections.posts.fields]
title = { type = "strng" }
body = { type = "text" }
author = { type = "relation", to = "users" }
[collections.posts.access]
read = "doc.title == 'x' && doc.bdy != null"
create = "user.role == 1"
update = "user.level > 'x'"

[collections.notes]
[collections.notes.fields]
text = { type = "text", access = { read = "doc.txt != null" } }
[collections.notes.access]
delete = "doc.text ~ "

[collections.tags]
labl = "x"
[collections.tags.access]
read = "nope"
"#;

const BROKEN_ERRORS: [&str; 12] = [
    "lucent.toml: server.port: expected an integer from 0 to 65535, found the string \"eighty\"",
    "lucent.toml: server.env: expected \"dev\" or \"prod\", got \"qa\"",
    "lucent.toml: collections.users.fields.name.max_length: expected a non-negative integer, found the string \"long\"",
    "lucent.toml: collections.members.auth.login_field: login field `handle` is not declared",
    "lucent.toml: collections.posts.fields.title.type: unknown field type `strng`",
    "lucent.toml: collections.tags.labl: unknown key `labl`",
    "lucent.toml: collections.users.access.read:1:6: unknown field \"nme\"",
    "lucent.toml: collections.posts.access.read:1:25: unknown field \"bdy\"",
    "lucent.toml: collections.posts.access.create:1:14: cannot compare string with integer",
    "lucent.toml: collections.notes.access.delete:1:12: expected a value",
    "lucent.toml: collections.notes.fields.text.access.read:1:5: unknown field \"txt\"",
    "lucent.toml: collections.tags.access.read:1:1: unknown name `nope`",
];

#[test]
fn every_error_of_a_broken_config_is_reported_once_by_check_and_serve() {
    let dir = project(BROKEN, &[]);
    for command in ["check", "serve"] {
        let (ok, _, stderr) = run_in(dir.path(), command);
        assert!(!ok, "{command}");
        let lines = diagnostic_lines(&stderr, dir.path());
        for expected in BROKEN_ERRORS {
            let found = lines.iter().filter(|l| l.starts_with(expected)).count();
            assert_eq!(found, 1, "{command}: `{expected}` in:\n{stderr}");
        }
        assert_eq!(lines.len(), BROKEN_ERRORS.len(), "{command}:\n{stderr}");
        assert!(
            stderr.contains(&format!(
                "{} error(s) in the configuration",
                BROKEN_ERRORS.len()
            )),
            "{stderr}"
        );
    }
}

#[test]
fn an_unreadable_collection_file_hides_no_other_error() {
    // `schemas/users.toml` is not TOML, so `users` may exist and declare any field: a relation
    // to it and `user.role` are not errors, but the rest of the config is still checked.
    let dir = project(
        r#"
[collections.posts.fields]
author = { type = "relation", to = "users" }
[collections.posts.access]
read = "user.role == 'admin' && doc.athor == user.id"
"#,
        &[("schemas/users.toml", "auth = true\n[fields\nrole = 1\n")],
    );
    let (ok, _, stderr) = run_in(dir.path(), "check");
    assert!(!ok);
    let lines = diagnostic_lines(&stderr, dir.path());
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with("schemas/users.toml: invalid TOML at line 2, column 8: "),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(
            "lucent.toml: collections.posts.access.read:1:29: unknown field \"athor\""
        ),
        "{stderr}"
    );
}

/// Starts `lucent serve` on `dir`, waits until it listens, stops it: its stderr.
fn serve_output(dir: &Path) -> String {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(lucent_bin())
        .args(["serve", "--port", "0", "--config"])
        .arg(dir.join("lucent.toml"))
        .env_remove("LUCENT_ENV")
        .env_remove("LUCENT_DATABASE_URL")
        .env("LUCENT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        if line.unwrap().starts_with("listening on ") {
            break;
        }
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `members` set their own `role`; `posts` rules read `user.role`, one of them only for `users`.
const SELF_SET: &str = r#"
[collections.users]
auth = true
[collections.users.fields]
role = { type = "select", options = ["admin", "user"], default = "user", access = { create = "user.collection == 'users' && user.role == 'admin'", update = "user.collection == 'users' && user.role == 'admin'" } }
[collections.users.access]
read = "doc.id == user.id"
update = "doc.id == user.id"
delete = "false"
[collections.members]
auth = { login_field = "username" }
[collections.members.fields]
role = { type = "string" }
[collections.members.access]
read = "doc.id == user.id"
update = "doc.id == user.id"
delete = "doc.id == user.id"
[collections.posts.fields]
title = { type = "string" }
[collections.posts.access]
read = "true"
create = "true"
update = "user.collection == 'users' && user.role == 'admin'"
delete = "user.role == 'admin'"
"#;

#[test]
fn check_and_serve_warn_about_open_reads_and_self_set_user_fields() {
    let dir = project(
        &format!(
            "{SELF_SET}[collections.notes.fields]\ntext = {{ type = \"text\" }}\n[collections.notes.access]\nupdate = \"false\"\ndelete = \"false\"\n"
        ),
        &[],
    );
    let (ok, _, check) = run_in(dir.path(), "check");
    assert!(ok, "{check}");
    let serve = serve_output(dir.path());
    for stderr in [&check, &serve] {
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("lucent.toml: "))
            .collect();
        assert_eq!(warnings.len(), 2, "{stderr}");
        assert!(
            stderr.contains("collection `notes` leaves read to the default `user != null` while users, members allows anonymous registration, so any visitor can sign up and then read all its documents"),
            "{stderr}"
        );
        assert!(
            stderr.contains("lucent.toml: collections.posts.access.delete: reads `user.role`, which accounts of `members` can set for themselves, so any of them can pass this rule: if the rule is meant for `users` accounts, add `user.collection == 'users'` to it"),
            "{stderr}"
        );
    }
}

/// What the warning is about: a `members` account that gave itself `role = "admin"` passes
/// `user.role == 'admin'`, and not `user.collection == 'users' && user.role == 'admin'`.
#[tokio::test]
async fn a_self_set_role_passes_only_rules_that_do_not_name_the_collection() {
    use reqwest::Method;
    use serde_json::json;
    for backend in backends() {
        let server = Server::start(&backend, SELF_SET).await;
        let (status, body) = server
            .post(
                "/api/members/register",
                &json!({"username": "mallory", "password": "correct horse battery staple", "role": "admin"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let token = body["token"].as_str().unwrap().to_string();
        let as_member = |method: Method, path: String, body: Option<serde_json::Value>| {
            let mut request = server
                .client
                .request(method, server.url(&path))
                .bearer_auth(&token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            async move { decode(request.send().await.unwrap()).await }
        };
        let (status, post) = server.post("/api/posts", &json!({"title": "x"})).await;
        assert_eq!(status, 201, "{post}");
        let path = format!("/api/posts/{}", post["doc"]["id"].as_str().unwrap());
        let denied = as_member(Method::PATCH, path.clone(), Some(json!({"title": "y"}))).await;
        assert_error(&denied, 403, "forbidden");
        let (status, body) = as_member(Method::DELETE, path.clone(), None).await;
        assert!(status.is_success(), "{status} {body}");
    }
}

/// The example project: sign-up is open, so an account sees only itself in `users` (admins see
/// all), and `lucent check` has nothing to warn about.
#[tokio::test]
async fn the_example_project_keeps_accounts_from_listing_each_other() {
    use reqwest::Method;
    use serde_json::json;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = std::fs::read_to_string(root.join("lucent.toml")).unwrap();
    let posts = std::fs::read_to_string(root.join("schemas/posts.toml")).unwrap();
    let dir = project(&config, &[("schemas/posts.toml", &posts)]);
    let (ok, _, stderr) = run_in(dir.path(), "check");
    assert!(ok && !stderr.contains("warning"), "{stderr}");

    for backend in backends() {
        let server =
            Server::start_with(&backend, &config, &[("schemas/posts.toml", &posts)], &[]).await;
        let mut tokens = Vec::new();
        let mut ids = Vec::new();
        for email in ["ann@example.com", "bob@example.com"] {
            let (status, body) = server
                .post(
                    "/api/users/register",
                    &json!({"email": email, "password": "correct horse battery staple"}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            tokens.push(body["token"].as_str().unwrap().to_string());
            ids.push(body["user"]["id"].as_str().unwrap().to_string());
        }
        let get = |token: &str, path: String| {
            let request = server
                .client
                .request(Method::GET, server.url(&path))
                .bearer_auth(token);
            async move { decode(request.send().await.unwrap()).await }
        };
        let (status, page) = get(&tokens[0], "/api/users".into()).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["totalDocs"], 1, "{page}");
        assert_eq!(page["docs"][0]["id"], ids[0].as_str());
        let other = get(&tokens[0], format!("/api/users/{}", ids[1])).await;
        assert_error(&other, 404, "not_found");
        let (status, own) = get(&tokens[0], format!("/api/users/{}", ids[0])).await;
        assert_eq!(status, 200, "{own}");

        let admin = make_admin(&server);
        let (status, body) = server
            .post(
                "/api/users/login",
                &json!({"email": admin, "password": "correct horse battery staple"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (_, page) = get(body["token"].as_str().unwrap(), "/api/users".into()).await;
        assert_eq!(page["totalDocs"], 3, "{page}");
    }
}

/// `lucent user create --set role=admin` on the server's project and database: its email.
fn make_admin(server: &Server) -> &'static str {
    use std::process::Stdio;
    let mut command = Command::new(lucent_bin());
    command
        .args(["user", "create", "--config"])
        .arg(server.path().join("lucent.toml"))
        .args(["--collection", "users", "--email", "root@example.com"])
        .args(["--password-stdin", "--set", "role=admin"])
        .env("LUCENT_LOG", "warn")
        .env_remove("LUCENT_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if let Some(url) = &server.database_url {
        command.env("LUCENT_DATABASE_URL", url);
    }
    let mut child = command.spawn().unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        b"correct horse battery staple\n",
    )
    .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    "root@example.com"
}
