//! `lucent types --lang ts`: the example project's types compile with `tsc --strict` together
//! with a file that uses them (tests/ts-types/uses.ts, whose `@ts-expect-error` lines must each
//! fail), and a misuse (a select value that is not an option) does not compile. TypeScript comes
//! from `.ci/run`'s cache (`LUCENT_TEST_TS_CLIENT`); without it the compile test is skipped.

use std::path::Path;
use std::process::{Command, Output};

use crate::helpers::lucent_bin;
use crate::openapi::{repository, tool};

fn types(config: &Path, out: &Path) -> Output {
    Command::new(lucent_bin())
        .args(["types", "--lang", "ts", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .env_remove("LUCENT_ENV")
        .output()
        .unwrap()
}

#[test]
fn the_examples_types_compile_strictly_and_catch_misuse() {
    let Some(packages) = tool("LUCENT_TEST_TS_CLIENT") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let output = types(
        &repository().join("lucent.toml"),
        &work.path().join("lucent-types.ts"),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in [
        "uses.ts",
        "misuse.ts",
        "tsconfig.json",
        "tsconfig.misuse.json",
    ] {
        std::fs::copy(
            repository().join("tests/ts-types").join(file),
            work.path().join(file),
        )
        .unwrap();
    }
    let tsc = |project: &str| {
        Command::new(packages.join("node_modules/.bin/tsc"))
            .current_dir(work.path())
            .args(["-p", project])
            .output()
            .unwrap()
    };
    let uses = tsc("tsconfig.json");
    assert!(
        uses.status.success(),
        "uses.ts does not compile against the generated types:\n{}{}",
        String::from_utf8_lossy(&uses.stdout),
        String::from_utf8_lossy(&uses.stderr)
    );
    let misuse = tsc("tsconfig.misuse.json");
    let said = String::from_utf8_lossy(&misuse.stdout);
    assert!(!misuse.status.success(), "misuse.ts compiled");
    assert!(
        said.contains("misuse.ts(4,") && said.contains("\"archived\""),
        "misuse.ts failed for another reason:\n{said}"
    );
}

#[test]
fn hidden_fields_are_write_only_and_withheld_fields_optional() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("lucent.toml");
    std::fs::write(
        &config,
        r#"
[collections.users]
auth = true
[collections.blog-posts.fields]
title  = { type = "string", required = true }
status = { type = "select", options = ["draft", "published"], default = "draft" }
secret = { type = "string", hidden = true }
note   = { type = "string", access = { read = "user != null" } }
meta   = { type = "json", required = true }
author = { type = "relation", to = "users" }
"#,
    )
    .unwrap();
    let out = work.path().join("types.ts");
    let output = types(&config, &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let block = |name: &str| {
        let start = text
            .find(&format!("export interface {name} {{"))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"));
        let end = start + text[start..].find("\n}\n").unwrap();
        text[start..end].to_string()
    };
    let document = block("BlogPosts");
    assert!(!document.contains("secret"), "{document}");
    assert!(document.contains("  note?: string | null;"), "{document}");
    assert!(document.contains("  title: string;"), "{document}");
    assert!(
        document.contains("  status: \"draft\" | \"published\" | null;"),
        "{document}"
    );
    assert!(
        document.contains("  meta: Exclude<LucentJson, null>;"),
        "{document}"
    );
    assert!(document.contains("  author: string | null;"), "{document}");
    let create = block("BlogPostsCreate");
    assert!(
        create.contains("Write-only: never in an answer. */\n  secret?: string | null;"),
        "{create}"
    );
    assert!(create.contains("  title: string;"), "{create}");
    assert!(!block("Users").contains("password"));
    assert!(block("UsersCreate").contains("  password: string;"));
    assert!(
        text.contains("  \"blog-posts\": {\n    document: BlogPosts;"),
        "{text}"
    );
    assert!(text.contains("  docs: BlogPostsSelected[];"), "{text}");
    // What `expand` adds: the relation's target document, and back-relations as arrays.
    assert!(
        document.contains("  expand?: BlogPostsExpand;"),
        "{document}"
    );
    assert!(block("BlogPostsExpand").contains("  author?: Users;"));
    assert!(block("UsersExpand").contains("  \"blog-posts_via_author\"?: BlogPosts[];"));
}

#[test]
fn colliding_type_names_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("lucent.toml");
    std::fs::write(
        &config,
        "[collections.blog-posts.fields]\nt = { type = \"text\" }\n[collections.blog_posts.fields]\nt = { type = \"text\" }\n",
    )
    .unwrap();
    let output = types(&config, &work.path().join("types.ts"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("both give the TypeScript name `BlogPosts`"),
        "{stderr}"
    );
}
