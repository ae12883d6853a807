//! `lucent schema`: the committed copies in `docs/schema/` are its current output; every example
//! config points at them with a `#:schema` comment and passes them, checked by an independent
//! validator (Python's `jsonschema`, from the venv `.ci/run` installs: skipped without it); and
//! the schema agrees with `lucent check` on a table of good and broken configs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::helpers::lucent_bin;
use crate::openapi::{repository, tool};

/// Which file a document is, and so which schema it is held to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Config,
    Collection,
}

impl Kind {
    fn schema(self) -> PathBuf {
        repository().join(match self {
            Kind::Config => "docs/schema/lucent.schema.json",
            Kind::Collection => "docs/schema/collection.schema.json",
        })
    }
}

fn schema_output(args: &[&str]) -> String {
    let output = Command::new(lucent_bin()).args(args).output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn committed_schemas_are_the_commands_output() {
    for (args, kind) in [
        (&["schema"][..], Kind::Config),
        (&["schema", "--collection-file"][..], Kind::Collection),
    ] {
        let committed = std::fs::read_to_string(kind.schema()).unwrap();
        assert!(
            committed == schema_output(args),
            "{} is stale: run `cargo run -- {} > {}`",
            kind.schema().display(),
            args.join(" "),
            kind.schema().strip_prefix(repository()).unwrap().display(),
        );
    }
}

/// The errors the independent validator finds in each document (TOML text), by schema.
/// `None` when `.ci/run` did not provide the validator.
fn validate(kind: Kind, documents: &[String]) -> Option<Vec<Vec<String>>> {
    let python = tool("LUCENT_TEST_OPENAPI_VALIDATOR")?;
    let mut child = Command::new(python)
        .arg(repository().join("tests/config-schema/validate.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let request = json!({"schema": kind.schema(), "documents": documents});
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        request.to_string().as_bytes(),
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "validate.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

/// Every example config of the repository, with the schema it is held to.
fn example_configs() -> Vec<(PathBuf, Kind)> {
    let root = repository();
    let mut projects = vec![root.to_path_buf()];
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        projects.push(entry.unwrap().path());
    }
    let mut found = Vec::new();
    for project in projects {
        if project.join("lucent.toml").exists() {
            found.push((project.join("lucent.toml"), Kind::Config));
        }
        if let Ok(files) = std::fs::read_dir(project.join("schemas")) {
            for file in files {
                let file = file.unwrap().path();
                if file.extension().is_some_and(|e| e == "toml") {
                    found.push((file, Kind::Collection));
                }
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The file a `#:schema` first line points at, resolved against the file's folder.
fn schema_comment(file: &Path) -> PathBuf {
    let text = std::fs::read_to_string(file).unwrap();
    let first = text.lines().next().unwrap_or_default();
    let target = first
        .strip_prefix("#:schema ")
        .unwrap_or_else(|| panic!("{} does not start with `#:schema PATH`", file.display()));
    file.parent().unwrap().join(target.trim())
}

#[test]
fn every_example_config_points_at_its_schema_and_passes_it() {
    let examples = example_configs();
    assert!(examples.len() >= 3, "{examples:?}");
    for (file, kind) in &examples {
        let target = schema_comment(file);
        assert_eq!(
            target.canonicalize().unwrap(),
            kind.schema().canonicalize().unwrap(),
            "{}",
            file.display()
        );
    }
    for kind in [Kind::Config, Kind::Collection] {
        let documents: Vec<String> = examples
            .iter()
            .filter(|(_, k)| *k == kind)
            .map(|(file, _)| std::fs::read_to_string(file).unwrap())
            .collect();
        let Some(results) = validate(kind, &documents) else {
            return;
        };
        for ((file, _), errors) in examples.iter().filter(|(_, k)| *k == kind).zip(results) {
            assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
        }
    }
}

/// Whether `lucent check` accepts `text` as a `lucent.toml`, or as the one collection file.
fn check_accepts(kind: Kind, text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    match kind {
        Kind::Config => std::fs::write(dir.path().join("lucent.toml"), text).unwrap(),
        Kind::Collection => {
            std::fs::write(dir.path().join("lucent.toml"), "").unwrap();
            std::fs::create_dir(dir.path().join("schemas")).unwrap();
            std::fs::write(dir.path().join("schemas/notes.toml"), text).unwrap();
        }
    }
    let output = Command::new(lucent_bin())
        .arg("check")
        .arg("--config")
        .arg(dir.path().join("lucent.toml"))
        .env_remove("LUCENT_ENV")
        .env_remove("LUCENT_DATABASE_URL")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// (which file, its text, whether it is valid): `lucent check` and the schema both say so.
const CASES: &[(Kind, &str, bool)] = &[
    // Valid, with the shapes that are easy to get wrong in a schema.
    (
        Kind::Config,
        r#"
schemas = "collections"
[server]
env = "${LUCENT_ENV:-dev}"
body_limit = "512 KiB"
header_timeout = "1m 30s"
idle_timeout = "${IDLE:-60s}"
cors_origins = ["https://app.example.com"]
[database]
statement_timeout = "0s"
[auth]
jwt_expiry = "1.5h"
[auth.password]
min_length = 14
[email]
transport = "log"
[email.templates.verify]
subject = "Welcome"
[metrics]
enabled = true
token = "${METRICS_TOKEN:-a-long-random-token}"
[collections.users]
auth = { login_field = "username", lock_time = "15m" }
[collections.users.fields]
role = { type = "select", options = ["admin", "user"], default = "user" }
[collections.posts]
label = "Posts"
[collections.posts.fields]
title = { type = "string", required = true, max_length = 200, pattern = "[A-Z].*" }
views = { type = "integer", default = 0, min = 0 }
score = { type = "number", default = 1.5, max = 10 }
at = { type = "datetime", default = 2024-01-01T00:00:00Z }
meta = { type = "json", default = { a = [1, 2] } }
author = { type = "relation", to = "users", on_delete = "cascade" }
[collections.posts.access]
read = "true"
"#,
        true,
    ),
    (
        Kind::Collection,
        "slug = \"notes\"\nauth = true\n[fields]\ntext = { type = \"text\", hidden = true }\n",
        true,
    ),
    // Broken: each is refused by both.
    (Kind::Config, "nope = 1\n", false),
    (Kind::Config, "[server]\nprt = 80\n", false),
    (Kind::Config, "[server]\nport = \"eighty\"\n", false),
    (Kind::Config, "[server]\nport = 70000\n", false),
    (Kind::Config, "[server]\nenv = \"staging\"\n", false),
    (Kind::Config, "[server]\nbody_limit = \"lots\"\n", false),
    (Kind::Config, "[auth]\njwt_expiry = \"soon\"\n", false),
    (Kind::Config, "[auth]\njwt_expiry = \"15\"\n", false),
    (Kind::Config, "[email]\ntransport = \"pigeon\"\n", false),
    (Kind::Config, "[metrics]\nenabled = \"yes\"\n", false),
    (Kind::Config, "collections = 5\n", false),
    (
        Kind::Config,
        "[collections.posts.fields]\ntitle = { type = \"strng\" }\n",
        false,
    ),
    (Kind::Collection, "labl = \"typo\"\n", false),
    (Kind::Collection, "slug = \"Bad\"\n", false),
    (Kind::Collection, "slug = \"health\"\n", false),
    (Kind::Collection, "auth = 5\n", false),
    (Kind::Collection, "auth = { login = \"email\" }\n", false),
    (
        Kind::Collection,
        "[fields]\nid = { type = \"string\" }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields]\n\"Bad Name\" = { type = \"string\" }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields]\nt = { max_length = 3 }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields]\nt = { type = \"string\", options = [\"a\"] }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields]\nt = { type = \"boolean\", max_length = 3 }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields]\nt = { type = \"string\", min = 1 }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields]\nt = { type = \"string\", to = \"notes\" }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields]\nt = { type = \"select\" }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields]\nt = { type = \"select\", options = [] }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields]\nt = { type = \"relation\" }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields]\nt = { type = \"relation\", to = \"notes\", on_delete = \"nothing\" }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields]\nt = { type = \"relation\", to = \"notes\", many = true, max_items = 5 }\n",
        true,
    ),
    (
        Kind::Collection,
        "[fields]\nt = { type = \"relation\", to = \"notes\", max_items = 5 }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields]\nt = { type = \"relation\", to = \"notes\", many = true, unique = true }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields]\nt = { type = \"string\", many = true }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields]\nt = { type = \"integer\", default = \"x\" }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields]\nt = { type = \"boolean\", default = 1 }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields]\nt = { type = \"string\", required = \"yes\" }\n",
        false,
    ),
    (
        Kind::Collection,
        "[fields.t]\ntype = \"string\"\naccess = { rd = \"true\" }\n",
        false,
    ),
    (Kind::Collection, "[access]\nlist = \"true\"\n", false),
];

#[test]
fn the_schema_agrees_with_check() {
    for (kind, text, valid) in CASES {
        let (accepted, stderr) = check_accepts(*kind, text);
        assert_eq!(
            accepted, *valid,
            "lucent check on {kind:?}:\n{text}\n{stderr}"
        );
    }
    for kind in [Kind::Config, Kind::Collection] {
        let cases: Vec<&(Kind, &str, bool)> = CASES.iter().filter(|(k, ..)| *k == kind).collect();
        let documents: Vec<String> = cases.iter().map(|(_, text, _)| text.to_string()).collect();
        let Some(results) = validate(kind, &documents) else {
            return;
        };
        for ((_, text, valid), errors) in cases.iter().zip(results) {
            assert_eq!(
                errors.is_empty(),
                *valid,
                "the schema on {kind:?}:\n{text}\n{errors:#?}"
            );
        }
    }
}

#[test]
fn the_schema_is_valid_json_schema_2020_12() {
    for kind in [Kind::Config, Kind::Collection] {
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(kind.schema()).unwrap()).unwrap();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        // validate.py checks the schema against the 2020-12 meta-schema before using it.
        if validate(kind, &[String::new()]).is_none() {
            return;
        }
    }
}

#[test]
fn a_new_projects_config_points_at_its_schema_and_passes_it() {
    let dir = tempfile::tempdir().unwrap();
    let init = Command::new(lucent_bin())
        .arg("init")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(init.status.success());
    for (file, kind) in [
        ("lucent.toml", Kind::Config),
        ("schemas/posts.toml", Kind::Collection),
    ] {
        let file = dir.path().join(file);
        let target = schema_comment(&file);
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            std::fs::read_to_string(kind.schema()).unwrap(),
            "{} is a copy of {}",
            target.display(),
            kind.schema().display()
        );
        let Some(results) = validate(kind, &[std::fs::read_to_string(&file).unwrap()]) else {
            return;
        };
        assert!(
            results[0].is_empty(),
            "{}: {:#?}",
            file.display(),
            results[0]
        );
    }
}
