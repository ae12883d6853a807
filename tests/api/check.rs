//! `lucent check` and `serve` on configurations with problems: every error in one run, each at
//! its key; and the warnings about rules that say less than they seem to.

use std::path::Path;
use std::process::Command;

use crate::helpers::lucent_bin;

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
