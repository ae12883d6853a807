//! The commands besides `serve`: `check` and `openapi` (the document itself: openapi.rs).

use std::process::Command;

use serde_json::Value;

use crate::helpers::{POSTS, lucent_bin};

fn run(args: &[&str], config: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lucent.toml"), config).unwrap();
    run_in(dir.path(), args)
}

#[test]
fn check_summarizes_a_good_config() {
    let (ok, stdout, _) = run(&["check"], POSTS);
    assert!(ok);
    assert!(stdout.contains("2 collection(s)"), "{stdout}");
    assert!(stdout.contains("posts: title: string!"), "{stdout}");
}

#[test]
fn check_lists_every_error_with_its_location() {
    let config = r#"
unknown_top = 1
[server]
port = "eighty"
[auth]
jwt_expiry = "soon"
[collections.posts]
labl = "typo"
[collections.posts.fields]
title = { type = "strng" }
n = { type = "integer", min = 5, max = 1, default = "x" }
p = { type = "string", pattern = "(" }
r = { type = "relation", to = "ghosts" }
s = { type = "select" }
id = { type = "string" }
"Bad Name" = { type = "string" }
[collections.Bad]
"#;
    let (ok, _, stderr) = run(&["check"], config);
    assert!(!ok);
    for expected in [
        "unknown_top: unknown key",
        "server.port: expected an integer from 0 to 65535, found the string \"eighty\"",
        "auth.jwt_expiry: invalid duration `soon`",
        "collections.posts.labl: unknown key `labl`",
        "collections.posts.fields.title.type: unknown field type `strng`",
        "collections.posts.fields.n.min: `min` is greater than `max`",
        "collections.posts.fields.n.default: default fails",
        "collections.posts.fields.p.pattern: invalid regex",
        "collections.posts.fields.r.to: relation to unknown collection `ghosts`",
        "collections.posts.fields.s.options: a select field needs",
        "collections.posts.fields.id: `id` is a system field",
        "collections.posts.fields.Bad Name: invalid field name",
        "collections.Bad.slug: invalid collection slug `Bad`",
    ] {
        assert!(
            stderr.contains(expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("lucent.toml: "),
        "errors name their file:\n{stderr}"
    );
}

#[test]
fn environment_references_are_interpolated_or_reported() {
    let (ok, _, stderr) = run(
        &["check"],
        "[database]\nurl = \"${LUCENT_TEST_SURELY_UNSET_VAR}\"\n",
    );
    assert!(!ok);
    assert!(
        stderr.contains(
            "database.url: environment variable `LUCENT_TEST_SURELY_UNSET_VAR` is not set"
        ),
        "{stderr}"
    );
    let (ok, _, stderr) = run(
        &["check"],
        "[server]\nhost = \"${LUCENT_TEST_SURELY_UNSET_VAR:-0.0.0.0}\"\n",
    );
    assert!(ok, "{stderr}");
}

#[test]
fn schema_files_are_collections_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lucent.toml"),
        "[collections.users]\nauth = true\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("schemas")).unwrap();
    std::fs::write(
        dir.path().join("schemas/notes.toml"),
        "[fields]\ntext = { type = \"text\" }\nowner = { type = \"relation\", to = \"users\" }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("schemas/users.toml"),
        "[fields]\nx = { type = \"text\" }\n",
    )
    .unwrap();
    let output = Command::new(lucent_bin())
        .arg("check")
        .arg("--config")
        .arg(dir.path().join("lucent.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("users.toml: slug: duplicate collection slug `users`"),
        "{stderr}"
    );
    std::fs::remove_file(dir.path().join("schemas/users.toml")).unwrap();
    let output = Command::new(lucent_bin())
        .arg("check")
        .arg("--config")
        .arg(dir.path().join("lucent.toml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("notes: text: text, owner → users"));
}

#[test]
fn openapi_command_prints_the_document() {
    let (ok, stdout, _) = run(&["openapi"], POSTS);
    assert!(ok);
    let document: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(document["openapi"], "3.0.3");
    assert!(document["paths"]["/api/posts/{id}"]["patch"].is_object());
}

fn run_in(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
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
fn verification_needs_an_email_field() {
    let config =
        "[collections.members]\nauth = { login_field = \"username\", verify_email = true }\n";
    let (ok, _, stderr) = run(&["check"], config);
    assert!(!ok);
    assert!(
        stderr
            .contains("collections.members.auth.verify_email: verify_email needs an `email` field"),
        "{stderr}"
    );
    let with_email = "[collections.members]\nauth = { login_field = \"username\", verify_email = true }\n[collections.members.fields]\nemail = { type = \"email\" }\n";
    let (ok, _, stderr) = run(&["check"], with_email);
    assert!(ok, "{stderr}");
}
