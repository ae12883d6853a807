//! Tables, indexes and constraints for a schema, rendered per engine.

use sea_orm::sea_query::{
    Alias, ColumnDef, ColumnType, ForeignKey, ForeignKeyAction, ForeignKeyCreateStatement, Index,
    IndexCreateStatement, StringLen, Table, TableCreateStatement,
};
use sea_orm::{DbBackend, Statement};

use crate::schema::{Collection, Field, FieldKind, OnDelete, Schema, join_index, join_table};

/// The column type of document ids, and of the relation columns that hold them.
fn id_type() -> ColumnType {
    ColumnType::String(StringLen::N(64))
}

/// The column type a field is stored in, chosen per engine so results read back identically.
/// (A to-many relation has no column; its join table holds ids, [`join_table_statement`].)
pub fn column_type(field: &Field, backend: DbBackend) -> ColumnType {
    match &field.kind {
        FieldKind::String | FieldKind::Text | FieldKind::Email | FieldKind::Select(_) => {
            match backend {
                // MySQL cannot index TEXT without a prefix length.
                DbBackend::MySql if field.unique || field.index => ColumnType::String(
                    StringLen::N(field.max_length.unwrap_or(255).min(768) as u32),
                ),
                _ => ColumnType::Text,
            }
        }
        FieldKind::Relation { .. } => id_type(),
        FieldKind::Integer => ColumnType::BigInteger,
        FieldKind::Number => ColumnType::Double,
        FieldKind::Boolean => ColumnType::Boolean,
        FieldKind::Datetime => datetime_type(backend),
        FieldKind::Json => match backend {
            DbBackend::Postgres => ColumnType::JsonBinary,
            DbBackend::MySql => ColumnType::Json,
            _ => ColumnType::Text,
        },
    }
}

pub fn datetime_type(backend: DbBackend) -> ColumnType {
    match backend {
        // MySQL's TIMESTAMP keeps whole seconds and ends in 2038.
        DbBackend::MySql => ColumnType::DateTime,
        _ => ColumnType::TimestampWithTimeZone,
    }
}

/// `CREATE TABLE` for a collection. Foreign keys are included only when `with_foreign_keys`
/// (SQLite has no `ALTER TABLE ... ADD CONSTRAINT`, other engines add them once every table exists).
pub fn table_statement(
    collection: &Collection,
    backend: DbBackend,
    with_foreign_keys: bool,
) -> TableCreateStatement {
    let mut table = Table::create();
    table.table(Alias::new(&collection.slug)).if_not_exists();
    table.col(
        ColumnDef::new_with_type(Alias::new("id"), id_type())
            .not_null()
            .primary_key(),
    );
    for field in collection.fields.iter().filter(|f| f.has_column()) {
        let mut column =
            ColumnDef::new_with_type(Alias::new(&field.name), column_type(field, backend));
        if field.required {
            column.not_null();
        }
        table.col(column);
    }
    table.col(ColumnDef::new_with_type(Alias::new("createdAt"), datetime_type(backend)).not_null());
    table.col(ColumnDef::new_with_type(Alias::new("updatedAt"), datetime_type(backend)).not_null());
    if with_foreign_keys {
        for field in &collection.fields {
            if let FieldKind::Relation {
                to,
                on_delete,
                many: None,
            } = &field.kind
            {
                table.foreign_key(&mut foreign_key(collection, field, to, *on_delete));
            }
        }
    }
    table.to_owned()
}

/// The join table of a to-many relation (`schema::join_table`): `source` (the document holding
/// the list), `target` (an id in it) and `position` (0-based order in the list); no id twice in
/// one list (the primary key, which also serves loading a page's lists in order), and an index
/// (target, source) for deletes of a target and look-ups from the other side. Foreign keys are
/// included only when `with_foreign_keys` (as [`table_statement`]).
pub fn join_table_statement(
    slug: &str,
    field: &Field,
    with_foreign_keys: bool,
) -> TableCreateStatement {
    let mut table = Table::create();
    table
        .table(Alias::new(join_table(slug, &field.name)))
        .if_not_exists()
        .col(ColumnDef::new_with_type(Alias::new("source"), id_type()).not_null())
        .col(ColumnDef::new_with_type(Alias::new("target"), id_type()).not_null())
        .col(ColumnDef::new_with_type(Alias::new("position"), ColumnType::Integer).not_null())
        .primary_key(
            Index::create()
                .name(join_index(slug, &field.name, "pkey"))
                .col(Alias::new("source"))
                .col(Alias::new("target")),
        );
    if with_foreign_keys {
        for mut key in join_foreign_keys(slug, field) {
            table.foreign_key(&mut key);
        }
    }
    table.to_owned()
}

/// The two foreign keys of a join table. `source` cascades: a deleted document takes its list
/// with it. `target`: `set_null` and `cascade` cascade (the id leaves every list; for `cascade`
/// the trigger of [`cascade_trigger`] then deletes the documents that listed it), `restrict`
/// refuses the delete — checked at the end of the statement (`NO ACTION`), so a document that
/// lists itself, or documents deleted by the same statement, do not block it.
pub fn join_foreign_keys(slug: &str, field: &Field) -> Vec<ForeignKeyCreateStatement> {
    let FieldKind::Relation { to, on_delete, .. } = &field.kind else {
        return Vec::new();
    };
    let table = join_table(slug, &field.name);
    let target_action = match on_delete {
        OnDelete::SetNull | OnDelete::Cascade => ForeignKeyAction::Cascade,
        OnDelete::Restrict => ForeignKeyAction::NoAction,
    };
    vec![
        ForeignKey::create()
            .name(join_index(slug, &field.name, "source_fk"))
            .from(Alias::new(&table), Alias::new("source"))
            .to(Alias::new(slug), Alias::new("id"))
            .on_delete(ForeignKeyAction::Cascade)
            .to_owned(),
        ForeignKey::create()
            .name(join_index(slug, &field.name, "target_fk"))
            .from(Alias::new(&table), Alias::new("target"))
            .to(Alias::new(to), Alias::new("id"))
            .on_delete(target_action)
            .to_owned(),
    ]
}

/// The index (target, source) of a join table.
pub fn join_target_index(slug: &str, field: &str) -> IndexCreateStatement {
    Index::create()
        .name(join_index(slug, field, "target"))
        .table(Alias::new(join_table(slug, field)))
        .col(Alias::new("target"))
        .col(Alias::new("source"))
        .if_not_exists()
        .to_owned()
}

/// `on_delete = "cascade"` on a to-many relation: when a join row goes because its target was
/// deleted, the document that listed the target is deleted too. A trigger on the join table
/// (not on the target's), so it also runs for join rows removed by the database's own cascades
/// (chains of cascades) and never deletes a document twice (a cycle ends where a document is
/// already gone). SQLite runs it nested in itself only with `recursive_triggers` on, which every
/// connection sets. Statements to create it, in order; none for other engines (MySQL does not
/// fire triggers for foreign-key actions).
pub fn cascade_trigger(slug: &str, field: &Field, backend: DbBackend) -> Vec<String> {
    let FieldKind::Relation {
        to,
        on_delete: OnDelete::Cascade,
        many: Some(_),
    } = &field.kind
    else {
        return Vec::new();
    };
    // Identifiers come from the checked schema (^[a-z][a-z0-9_-]*$, ^[A-Za-z][A-Za-z0-9_]*$ and
    // names made of them), so quoting them is enough.
    let table = join_table(slug, &field.name);
    let trigger = join_index(slug, &field.name, "cascade");
    let gone = format!("NOT EXISTS (SELECT 1 FROM \"{to}\" WHERE \"id\" = OLD.\"target\")");
    let delete = format!("DELETE FROM \"{slug}\" WHERE \"id\" = OLD.\"source\"");
    match backend {
        DbBackend::Sqlite => vec![format!(
            "CREATE TRIGGER IF NOT EXISTS \"{trigger}\" AFTER DELETE ON \"{table}\" FOR EACH ROW WHEN {gone} BEGIN {delete}; END"
        )],
        DbBackend::Postgres => vec![
            format!(
                "CREATE OR REPLACE FUNCTION \"{trigger}\"() RETURNS trigger LANGUAGE plpgsql AS $lucent$ BEGIN IF {gone} THEN {delete}; END IF; RETURN NULL; END $lucent$"
            ),
            format!("DROP TRIGGER IF EXISTS \"{trigger}\" ON \"{table}\""),
            format!(
                "CREATE TRIGGER \"{trigger}\" AFTER DELETE ON \"{table}\" FOR EACH ROW EXECUTE FUNCTION \"{trigger}\"()"
            ),
        ],
        _ => Vec::new(),
    }
}

/// Statements that remove the trigger of [`cascade_trigger`] (wherever it may exist).
pub fn drop_cascade_trigger(slug: &str, field: &str, backend: DbBackend) -> Vec<String> {
    let table = join_table(slug, field);
    let trigger = join_index(slug, field, "cascade");
    match backend {
        DbBackend::Sqlite => vec![format!("DROP TRIGGER IF EXISTS \"{trigger}\"")],
        DbBackend::Postgres => vec![
            format!("DROP TRIGGER IF EXISTS \"{trigger}\" ON \"{table}\""),
            format!("DROP FUNCTION IF EXISTS \"{trigger}\"()"),
        ],
        _ => Vec::new(),
    }
}

/// Every statement that creates the join table of a to-many `field` of `slug`: the table, its
/// index and its cascade trigger (foreign keys inline only when `with_foreign_keys`).
pub fn join_statements(
    slug: &str,
    field: &Field,
    backend: DbBackend,
    with_foreign_keys: bool,
) -> Vec<Statement> {
    let mut statements = vec![
        backend.build(&join_table_statement(slug, field, with_foreign_keys)),
        backend.build(&join_target_index(slug, &field.name)),
    ];
    statements.extend(
        cascade_trigger(slug, field, backend)
            .into_iter()
            .map(|sql| Statement::from_string(backend, sql)),
    );
    statements
}

/// The foreign key of a relation field, named `fk_<collection>_<field>`.
pub fn foreign_key(
    collection: &Collection,
    field: &Field,
    to: &str,
    on_delete: OnDelete,
) -> sea_orm::sea_query::ForeignKeyCreateStatement {
    let action = match on_delete {
        OnDelete::SetNull => ForeignKeyAction::SetNull,
        OnDelete::Cascade => ForeignKeyAction::Cascade,
        OnDelete::Restrict => ForeignKeyAction::Restrict,
    };
    ForeignKey::create()
        .name(format!("fk_{}_{}", collection.slug, field.name))
        .from(Alias::new(&collection.slug), Alias::new(&field.name))
        .to(Alias::new(to), Alias::new("id"))
        .on_delete(action)
        .to_owned()
}

/// Index statements of a collection: the default sort, declared indexes, unique constraints.
/// Case-insensitive unique fields need an expression index, returned as raw SQL.
pub fn index_statements(
    collection: &Collection,
    backend: DbBackend,
) -> (Vec<IndexCreateStatement>, Vec<String>) {
    let mut indexes = vec![
        Index::create()
            .name(format!("ix_{}_created", collection.slug))
            .table(Alias::new(&collection.slug))
            .col(Alias::new("createdAt"))
            .col(Alias::new("id"))
            .if_not_exists()
            .to_owned(),
    ];
    let mut raw = Vec::new();
    for field in collection.fields.iter().filter(|f| f.has_column()) {
        let (index, expression) = field_index(collection, field, backend);
        indexes.extend(index);
        raw.extend(expression);
    }
    (indexes, raw)
}

/// The one index a field needs, if any: unique, declared, or on a relation. A case-insensitive
/// unique field needs an expression index, returned as raw SQL.
pub fn field_index(
    collection: &Collection,
    field: &Field,
    backend: DbBackend,
) -> (Option<IndexCreateStatement>, Option<String>) {
    let table = Alias::new(&collection.slug);
    let lowered = field.case_insensitive && field.kind != FieldKind::Email;
    if field.unique && lowered && backend != DbBackend::MySql {
        // Identifiers come from the checked schema (^[a-z][a-z0-9_-]*$ and ^[A-Za-z][A-Za-z0-9_]*$).
        let sql = format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS \"uq_{slug}_{name}\" ON \"{slug}\" (lower(\"{name}\"))",
            slug = collection.slug,
            name = field.name
        );
        (None, Some(sql))
    } else if field.unique {
        let index = Index::create()
            .name(unique_index_name(collection, field))
            .table(table)
            .col(Alias::new(&field.name))
            .unique()
            .if_not_exists()
            .to_owned();
        (Some(index), None)
    } else if field.index || matches!(field.kind, FieldKind::Relation { many: None, .. }) {
        // (field, createdAt, id) rather than (field): a list filtered on the field in the default
        // order (`status = 'published'`, newest first) walks the index and stops after one page,
        // where a one-column index makes SQLite sort every matching row — measured 146 against
        // several thousand pages/s on 10,000 rows. Range scans and sorts on the field still use it.
        let index = Index::create()
            .name(plain_index_name(&collection.slug, &field.name))
            .table(table)
            .col(Alias::new(&field.name))
            .col(Alias::new("createdAt"))
            .col(Alias::new("id"))
            .if_not_exists()
            .to_owned();
        (Some(index), None)
    } else {
        (None, None)
    }
}

/// The name of the non-unique index of a field.
pub fn plain_index_name(slug: &str, field: &str) -> String {
    format!("ix_{slug}_{field}")
}

/// The name of the unique index of a field, which unique-violation errors are matched against.
pub fn unique_index_name(collection: &Collection, field: &Field) -> String {
    format!("uq_{}_{}", collection.slug, field.name)
}

/// Every statement that creates `schema` on `backend`, in order (foreign keys inline on SQLite only).
pub fn table_statements(schema: &Schema, backend: DbBackend) -> Vec<Statement> {
    let inline_foreign_keys = backend == DbBackend::Sqlite;
    let mut statements = Vec::new();
    for collection in &schema.collections {
        statements.push(backend.build(&table_statement(collection, backend, inline_foreign_keys)));
    }
    for collection in &schema.collections {
        for field in collection.fields.iter().filter(|f| f.is_list()) {
            statements.extend(join_statements(
                &collection.slug,
                field,
                backend,
                inline_foreign_keys,
            ));
        }
    }
    for collection in &schema.collections {
        let (indexes, raw) = index_statements(collection, backend);
        statements.extend(indexes.iter().map(|index| backend.build(index)));
        statements.extend(
            raw.into_iter()
                .map(|sql| Statement::from_string(backend, sql)),
        );
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, build_schema};

    fn schema(text: &str) -> Schema {
        let table: toml::Table = toml::from_str(text).unwrap();
        build_schema(vec![Source {
            file: "t.toml".into(),
            prefix: String::new(),
            slug: Some("posts".into()),
            table,
        }])
        .unwrap()
    }

    #[test]
    fn ddl_per_engine() {
        let s = schema(
            r#"
            [fields]
            title = { type = "string", required = true, unique = true }
            views = { type = "integer", index = true }
            data = { type = "json" }
            when = { type = "datetime" }
            parent = { type = "relation", to = "posts", on_delete = "cascade" }
            "#,
        );
        let sqlite: Vec<String> = table_statements(&s, DbBackend::Sqlite)
            .into_iter()
            .map(|s| s.sql)
            .collect();
        assert_eq!(
            sqlite[0],
            r#"CREATE TABLE IF NOT EXISTS "posts" ( "id" varchar(64) NOT NULL PRIMARY KEY, "title" text NOT NULL, "views" integer, "data" text, "when" timestamp_with_timezone_text, "parent" varchar(64), "createdAt" timestamp_with_timezone_text NOT NULL, "updatedAt" timestamp_with_timezone_text NOT NULL, FOREIGN KEY ("parent") REFERENCES "posts" ("id") ON DELETE CASCADE )"#
        );
        assert!(
            sqlite.contains(
                &r#"CREATE UNIQUE INDEX IF NOT EXISTS "uq_posts_title" ON "posts" ("title")"#
                    .to_string()
            ),
            "{sqlite:#?}"
        );
        assert!(
            sqlite.contains(
                &r#"CREATE INDEX IF NOT EXISTS "ix_posts_views" ON "posts" ("views", "createdAt", "id")"#.to_string()
            ),
            "{sqlite:#?}"
        );

        let postgres: Vec<String> = table_statements(&s, DbBackend::Postgres)
            .into_iter()
            .map(|s| s.sql)
            .collect();
        assert_eq!(
            postgres[0],
            r#"CREATE TABLE IF NOT EXISTS "posts" ( "id" varchar(64) NOT NULL PRIMARY KEY, "title" text NOT NULL, "views" bigint, "data" jsonb, "when" timestamp with time zone, "parent" varchar(64), "createdAt" timestamp with time zone NOT NULL, "updatedAt" timestamp with time zone NOT NULL )"#
        );
    }

    #[test]
    fn join_tables_per_engine() {
        let table: toml::Table = toml::from_str(
            r#"
            [tags]
            [posts.fields]
            title = { type = "string" }
            tags = { type = "relation", to = "tags", many = true }
            related = { type = "relation", to = "posts", many = true, max_items = 5, on_delete = "cascade" }
            pinned = { type = "relation", to = "tags", many = true, on_delete = "restrict" }
            "#,
        )
        .unwrap();
        let sources = table
            .into_iter()
            .map(|(slug, table)| Source {
                file: "t.toml".into(),
                prefix: String::new(),
                slug: Some(slug),
                table: table.as_table().unwrap().clone(),
            })
            .collect();
        let s = build_schema(sources).unwrap();
        let sqlite: Vec<String> = table_statements(&s, DbBackend::Sqlite)
            .into_iter()
            .map(|s| s.sql)
            .collect();
        // No column for a list in the collection's own table.
        let posts = sqlite
            .iter()
            .find(|sql| sql.contains("TABLE IF NOT EXISTS \"posts\""))
            .unwrap();
        assert!(
            !posts.contains("tags") && !posts.contains("related"),
            "{posts}"
        );
        let joined = sqlite.join("\n");
        for expected in [
            r#"CREATE TABLE IF NOT EXISTS "_lucent_rel_posts_tags" ( "source" varchar(64) NOT NULL, "target" varchar(64) NOT NULL, "position" integer NOT NULL, CONSTRAINT "_lucent_rel_posts_tags_pkey" PRIMARY KEY ("source", "target"), FOREIGN KEY ("source") REFERENCES "posts" ("id") ON DELETE CASCADE, FOREIGN KEY ("target") REFERENCES "tags" ("id") ON DELETE CASCADE )"#,
            r#"CREATE INDEX IF NOT EXISTS "_lucent_rel_posts_tags_target" ON "_lucent_rel_posts_tags" ("target", "source")"#,
            r#"FOREIGN KEY ("target") REFERENCES "tags" ("id") ON DELETE NO ACTION"#,
            r#"CREATE TRIGGER IF NOT EXISTS "_lucent_rel_posts_related_cascade" AFTER DELETE ON "_lucent_rel_posts_related" FOR EACH ROW WHEN NOT EXISTS (SELECT 1 FROM "posts" WHERE "id" = OLD."target") BEGIN DELETE FROM "posts" WHERE "id" = OLD."source"; END"#,
        ] {
            assert!(joined.contains(expected), "{expected}\nin\n{joined}");
        }
        // Only the cascade list has a trigger.
        assert_eq!(joined.matches("CREATE TRIGGER").count(), 1);

        let postgres: Vec<String> = table_statements(&s, DbBackend::Postgres)
            .into_iter()
            .map(|s| s.sql)
            .collect();
        let joined = postgres.join("\n");
        assert!(
            joined.contains(r#"CREATE TABLE IF NOT EXISTS "_lucent_rel_posts_tags" ( "source" varchar(64) NOT NULL, "target" varchar(64) NOT NULL, "position" integer NOT NULL, CONSTRAINT "_lucent_rel_posts_tags_pkey" PRIMARY KEY ("source", "target") )"#),
            "{joined}"
        );
        assert!(
            joined.contains(r#"EXECUTE FUNCTION "_lucent_rel_posts_related_cascade"()"#),
            "{joined}"
        );
    }

    #[test]
    fn username_login_is_unique_regardless_of_case() {
        let s = schema("auth = { login_field = \"username\" }");
        let sqlite: Vec<String> = table_statements(&s, DbBackend::Sqlite)
            .into_iter()
            .map(|s| s.sql)
            .collect();
        assert!(
            sqlite
                .iter()
                .any(|sql| sql.contains("(lower(\"username\"))")),
            "{sqlite:#?}"
        );
    }
}
