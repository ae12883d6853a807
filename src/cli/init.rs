//! `lucent init [DIR]`: a new project that `lucent check` accepts and `lucent serve` serves as
//! is: `lucent.toml` (with an accounts collection), one example collection in `schemas/`, a
//! `.gitignore` for the data folder, and the editor schemas the `#:schema` comments point at.
//! Nothing is overwritten: when any of these files exists, nothing is written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::editor_schema;

const LUCENT_TOML: &str = r#"#:schema ./.lucent/lucent.schema.json
# A Lucent project. `lucent serve` serves it on http://127.0.0.1:8080: the API under /api, its
# OpenAPI document at /api/openapi.json, Swagger UI at /api/docs. `lucent check` checks this file
# and schemas/*.toml; every key is described in Lucent's docs/configuration.md, and an editor
# that reads the `#:schema` comment above (Taplo, Even Better TOML) completes and checks them.

[server]
host = "127.0.0.1"
port = 8080

[database]
# SQLite, created on first start; PostgreSQL: "postgres://user:pass@host/db".
url = "sqlite://data/lucent.db"

[auth]
# Unset in dev: a secret is generated into data/jwt_secret. Set JWT_SECRET in production.
jwt_secret = "${JWT_SECRET:-}"

# Accounts: POST /api/users/register, /api/users/login, GET /api/users/me, ...
[collections.users]
auth = true
[collections.users.access]
# Sign-up is open; each account sees and changes only itself.
read   = "user != null && doc.id == user.id"
update = "user != null && doc.id == user.id"
delete = "user != null && doc.id == user.id"
"#;

const POSTS_TOML: &str = r#"#:schema ../.lucent/collection.schema.json
# A collection: GET and POST /api/posts, GET, PATCH and DELETE /api/posts/:id.
label = "Posts"

[fields]
title     = { type = "string", required = true, max_length = 200 }
body      = { type = "text" }
published = { type = "boolean", default = false }
author    = { type = "relation", to = "users" }

[access]
# Anyone reads published posts; a signed-in user writes their own.
read   = "doc.published == true || (user != null && doc.author == user.id)"
create = "user != null && data.author == user.id"
update = "user != null && doc.author == user.id"
delete = "user != null && doc.author == user.id"
"#;

const GITIGNORE: &str = "# The database and the generated development secret.\n/data/\n";

/// The files of a new project, relative to its folder.
fn files() -> Vec<(&'static str, String)> {
    vec![
        ("lucent.toml", LUCENT_TOML.to_string()),
        ("schemas/posts.toml", POSTS_TOML.to_string()),
        (".gitignore", GITIGNORE.to_string()),
        (
            ".lucent/lucent.schema.json",
            format!("{:#}\n", editor_schema::lucent_toml()),
        ),
        (
            ".lucent/collection.schema.json",
            format!("{:#}\n", editor_schema::collection_file()),
        ),
    ]
}

/// Runs `lucent init`.
pub fn run(dir: &Path) -> ExitCode {
    let files = files();
    let existing: Vec<PathBuf> = files
        .iter()
        .map(|(path, _)| dir.join(path))
        .filter(|path| path.exists())
        .collect();
    if !existing.is_empty() {
        for path in &existing {
            eprintln!("lucent: {} already exists", path.display());
        }
        eprintln!("lucent: nothing written (init never overwrites a file)");
        return ExitCode::FAILURE;
    }
    for (path, contents) in &files {
        let path = dir.join(path);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| write_new(&path, contents));
        if let Err(e) = written {
            eprintln!("lucent: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("created {}", path.display());
    }
    let cd = if dir == Path::new(".") {
        String::new()
    } else {
        format!("cd {} && ", dir.display())
    };
    println!(
        "\nnext: {cd}lucent serve    (then open http://127.0.0.1:8080/api/docs)\n      \
         lucent types --lang ts --out lucent-types.ts    (TypeScript types of the collections)"
    );
    ExitCode::SUCCESS
}

/// Writes a file that must not exist yet (a file created since the check is not overwritten).
fn write_new(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?
        .write_all(contents.as_bytes())
}
