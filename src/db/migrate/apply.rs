//! Running one migration: its operations rendered to SQL for the engine, in one transaction with
//! its record, so a failure leaves the database as it was before the migration.
//!
//! PostgreSQL alters tables in place. SQLite's `ALTER TABLE` can only add and rename columns, so
//! anything else rebuilds the table: create the new shape, copy the rows, drop the old table,
//! rename the new one, recreate the indexes; foreign keys are off during the transaction and
//! `PRAGMA foreign_key_check` runs before it commits. To-many relations (join tables) have their
//! own steps in `lists`.

mod lists;

use sea_orm::sea_query::{Alias, ColumnDef, Expr, ExprTrait, Index, Order, Query, Table};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement, TransactionTrait,
};

use super::convert::convert;
use super::ops::Operation;
use super::snapshot::{CollectionDef, FieldDef, Kind, Snapshot};
use super::store;
use crate::db::ddl::{column_type, field_index, foreign_key, index_statements, table_statement};
use crate::db::{Column, Database, decode_row, to_sql_value};
use crate::schema::{Collection, FieldKind};

/// The column a converted field is written to before it replaces the old one.
const CONVERTED: &str = "__lucent_converted";

/// Why a migration stopped; nothing of it was applied.
#[derive(Debug, Clone)]
pub struct StepError {
    /// The operation that failed, or the step of the migration around them.
    pub step: String,
    pub reason: String,
}

impl StepError {
    fn new(step: impl Into<String>, reason: impl ToString) -> Self {
        Self {
            step: step.into(),
            reason: reason.to_string(),
        }
    }
}

/// Whether the migration ran here or another process had already applied it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    AlreadyApplied,
}

/// Applies `operations` and records them as migration `name`, all in one transaction.
///
/// # Errors
/// The first operation that does not fit the recorded schema or fails in the database, with
/// every statement of the migration rolled back.
pub async fn apply(
    db: &Database,
    name: &str,
    checksum: &str,
    operations: &[Operation],
) -> Result<Outcome, StepError> {
    let writer = db.writer();
    let sqlite = db.backend() == DbBackend::Sqlite;
    // A migration may rebuild a whole table: no statement time limit while it runs.
    let _unlimited = db.lift_write_limit();
    // The pragma is a no-op inside a transaction; the writer is one connection, so it holds for
    // the transaction that follows.
    if sqlite {
        writer
            .execute_unprepared("PRAGMA foreign_keys = OFF")
            .await
            .map_err(|e| StepError::new("start", e))?;
    }
    let result = async {
        let tx = writer
            .begin()
            .await
            .map_err(|e| StepError::new("start", e))?;
        match run(&tx, name, checksum, operations).await {
            Ok(outcome) => {
                tx.commit().await.map_err(|e| StepError::new("commit", e))?;
                Ok(outcome)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
    .await;
    if sqlite {
        writer
            .execute_unprepared("PRAGMA foreign_keys = ON")
            .await
            .map_err(|e| StepError::new("finish", e))?;
    }
    result
}

async fn run(
    tx: &DatabaseTransaction,
    name: &str,
    checksum: &str,
    operations: &[Operation],
) -> Result<Outcome, StepError> {
    let backend = tx.get_database_backend();
    if backend == DbBackend::Postgres {
        // A migration may rebuild a whole table, or wait for another instance's: no statement
        // time limit in this transaction.
        tx.execute_unprepared("SET LOCAL statement_timeout = 0")
            .await
            .map_err(|e| StepError::new("start", e))?;
        // Several instances starting at once migrate one after the other.
        tx.execute_unprepared("SELECT pg_advisory_xact_lock(7163150201)")
            .await
            .map_err(|e| StepError::new("lock", e))?;
    }
    let applied = store::applied(tx)
        .await
        .map_err(|e| StepError::new("read records", e))?;
    if applied.iter().any(|r| r.name == name) {
        return Ok(Outcome::AlreadyApplied);
    }
    let mut snapshot = store::snapshot(tx)
        .await
        .map_err(|e| StepError::new("read schema", e))?;
    let mut foreign_keys = Vec::new();
    for operation in operations {
        let before = snapshot.clone();
        operation
            .apply_to(&mut snapshot)
            .map_err(|e| StepError::new(operation.summary(), e))?;
        let step = Step {
            tx,
            backend,
            before: &before,
            after: &snapshot,
        };
        step.run(operation, &mut foreign_keys)
            .await
            .map_err(|e| StepError::new(operation.summary(), e))?;
    }
    // Added last on PostgreSQL, when every table they point to exists.
    foreign_keys.sort();
    foreign_keys.dedup();
    for (slug, field) in foreign_keys {
        let Some(collection) = snapshot.collection(&slug).map(CollectionDef::to_collection) else {
            continue;
        };
        if let Some(field) = collection.field(&field)
            && field.is_list()
        {
            lists::add_join_foreign_keys(tx, &slug, field)
                .await
                .map_err(|e| StepError::new(format!("foreign keys {slug}.{}", field.name), e))?;
        } else if let Some(field) = collection.field(&field)
            && let FieldKind::Relation {
                to,
                on_delete,
                many: None,
            } = &field.kind
        {
            let key = foreign_key(&collection, field, to, *on_delete);
            let add = Table::alter()
                .table(Alias::new(&slug))
                .add_foreign_key(key.get_foreign_key())
                .to_owned();
            tx.execute(&add)
                .await
                .map_err(|e| StepError::new(format!("foreign key {slug}.{}", field.name), e))?;
        }
    }
    if backend == DbBackend::Sqlite {
        let broken = tx
            .query_all_raw(Statement::from_string(backend, "PRAGMA foreign_key_check"))
            .await
            .map_err(|e| StepError::new("foreign key check", e))?;
        if let Some(row) = broken.first() {
            let table: String = row.try_get_by_index(0).unwrap_or_default();
            return Err(StepError::new(
                "foreign key check",
                format!(
                    "{} row(s) point to missing rows (first in `{table}`)",
                    broken.len()
                ),
            ));
        }
    }
    store::record(tx, name, checksum, &snapshot)
        .await
        .map_err(|e| StepError::new("record", e))?;
    Ok(Outcome::Applied)
}

/// One operation in a transaction, with the schema before and after it.
#[derive(Clone, Copy)]
struct Step<'a> {
    tx: &'a DatabaseTransaction,
    backend: DbBackend,
    before: &'a Snapshot,
    after: &'a Snapshot,
}

impl Step<'_> {
    fn sqlite(&self) -> bool {
        self.backend == DbBackend::Sqlite
    }

    fn collection_after(&self, slug: &str) -> Collection {
        self.after
            .collection(slug)
            .map(CollectionDef::to_collection)
            .unwrap_or_else(|| empty_collection(slug))
    }

    fn field_before(&self, slug: &str, name: &str) -> Option<&FieldDef> {
        self.before.collection(slug).and_then(|c| c.field(name))
    }

    async fn run(
        &self,
        operation: &Operation,
        foreign_keys: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        let relation = |field: &FieldDef| field.kind == Kind::Relation;
        match operation {
            Operation::CreateCollection { collection, fields } => {
                let created = self.collection_after(collection);
                self.exec(&table_statement(&created, self.backend, self.sqlite()))
                    .await?;
                self.create_indexes(&created).await?;
                for field in created.fields.iter().filter(|f| f.is_list()) {
                    self.create_join(collection, &field.name, foreign_keys)
                        .await?;
                }
                if !self.sqlite() {
                    for field in fields.iter().filter(|f| relation(f)) {
                        foreign_keys.push((collection.clone(), field.name.clone()));
                    }
                }
            }
            Operation::DropCollection { collection } => {
                let lists = self
                    .before
                    .collection(collection)
                    .map_or_else(Vec::new, |c| {
                        c.fields.iter().filter(|f| f.many).cloned().collect()
                    });
                for field in lists {
                    self.drop_join(collection, &field.name).await?;
                }
                self.exec(&Table::drop().table(Alias::new(collection)).to_owned())
                    .await?;
            }
            Operation::AddField {
                collection, field, ..
            } if field.many => {
                self.create_join(collection, &field.name, foreign_keys)
                    .await?;
            }
            Operation::DropField { collection, field }
                if self.field_before(collection, field).is_some_and(|f| f.many) =>
            {
                self.drop_join(collection, field).await?;
            }
            Operation::RenameField {
                collection,
                from,
                to,
            } if self.field_before(collection, from).is_some_and(|f| f.many) => {
                self.rename_join(collection, from, to, foreign_keys).await?;
            }
            Operation::AlterField {
                collection,
                field,
                fill,
            } if field.many
                || self
                    .field_before(collection, &field.name)
                    .is_some_and(|f| f.many) =>
            {
                let Some(old) = self.field_before(collection, &field.name).cloned() else {
                    return Err(format!("`{collection}` has no field `{}`", field.name));
                };
                self.alter_list(collection, &old, field, fill.as_ref(), foreign_keys)
                    .await?;
            }
            Operation::AddField {
                collection,
                field,
                fill,
            } => {
                self.add_column(collection, field).await?;
                if let Some(fill) = fill {
                    self.fill(collection, field, fill).await?;
                }
                if self.sqlite() {
                    if field.required || relation(field) {
                        self.rebuild(collection, &[]).await?;
                    } else {
                        self.create_field_index(collection, &field.name).await?;
                    }
                } else {
                    if field.required {
                        self.set_required(collection, &field.name, true).await?;
                    }
                    self.create_field_index(collection, &field.name).await?;
                    if relation(field) {
                        foreign_keys.push((collection.clone(), field.name.clone()));
                    }
                }
            }
            Operation::DropField { collection, field } => {
                if self.sqlite() {
                    self.rebuild(collection, &[]).await?;
                } else {
                    let drop = Table::alter()
                        .table(Alias::new(collection))
                        .drop_column(Alias::new(field))
                        .to_owned();
                    self.exec(&drop).await?;
                }
            }
            Operation::RenameField {
                collection,
                from,
                to,
            } => {
                if self.sqlite() {
                    self.rebuild(collection, &[(to.as_str(), from.as_str())])
                        .await?;
                } else {
                    self.drop_field_index(collection, from).await?;
                    let old = self.field_before(collection, from).cloned();
                    if old.as_ref().is_some_and(relation) {
                        self.drop_foreign_key(collection, from).await?;
                        foreign_keys.push((collection.clone(), to.clone()));
                    }
                    let rename = Table::alter()
                        .table(Alias::new(collection))
                        .rename_column(Alias::new(from), Alias::new(to))
                        .to_owned();
                    self.exec(&rename).await?;
                    self.create_field_index(collection, to).await?;
                }
            }
            Operation::AlterField {
                collection,
                field,
                fill,
            } => {
                let Some(old) = self.field_before(collection, &field.name).cloned() else {
                    return Err(format!("`{collection}` has no field `{}`", field.name));
                };
                if field.converts_from(&old) {
                    self.convert_column(collection, &old, field).await?;
                    if !self.sqlite() && relation(field) {
                        foreign_keys.push((collection.clone(), field.name.clone()));
                    }
                } else {
                    if let Some(fill) = fill {
                        self.fill(collection, field, fill).await?;
                    }
                    let constraints_changed =
                        old.required != field.required || old.on_delete != field.on_delete;
                    if self.sqlite() && constraints_changed {
                        self.rebuild(collection, &[]).await?;
                    } else {
                        self.drop_field_index(collection, &field.name).await?;
                        if old.required != field.required {
                            self.set_required(collection, &field.name, field.required)
                                .await?;
                        }
                        if old.on_delete != field.on_delete && relation(field) {
                            self.drop_foreign_key(collection, &field.name).await?;
                            foreign_keys.push((collection.clone(), field.name.clone()));
                        }
                        self.create_field_index(collection, &field.name).await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn exec<S: sea_orm::StatementBuilder>(&self, statement: &S) -> Result<(), String> {
        self.tx
            .execute(statement)
            .await
            .map(|_| ())
            .map_err(describe)
    }

    /// `ALTER TABLE ... ADD COLUMN`, always nullable: constraints come after existing rows hold
    /// values.
    async fn add_column(&self, slug: &str, field: &FieldDef) -> Result<(), String> {
        let column = field.to_field();
        let add = Table::alter()
            .table(Alias::new(slug))
            .add_column(ColumnDef::new_with_type(
                Alias::new(&field.name),
                column_type(&column, self.backend),
            ))
            .to_owned();
        self.exec(&add).await
    }

    /// Writes `fill` into the rows where the field is null.
    async fn fill(
        &self,
        slug: &str,
        field: &FieldDef,
        fill: &serde_json::Value,
    ) -> Result<(), String> {
        let value = convert(fill, field.kind).map_err(|e| format!("fill: {e}"))?;
        let kind = field.to_field().kind;
        let update = Query::update()
            .table(Alias::new(slug))
            .value(
                Alias::new(&field.name),
                to_sql_value(&kind, &value, self.backend),
            )
            .and_where(Expr::col(Alias::new(&field.name)).is_null())
            .to_owned();
        self.exec(&update).await
    }

    async fn set_required(&self, slug: &str, name: &str, required: bool) -> Result<(), String> {
        let mut column = ColumnDef::new(Alias::new(name));
        if required {
            column.not_null();
        } else {
            column.null();
        }
        let alter = Table::alter()
            .table(Alias::new(slug))
            .modify_column(column)
            .to_owned();
        self.exec(&alter).await
    }

    async fn drop_foreign_key(&self, slug: &str, name: &str) -> Result<(), String> {
        let drop = Table::alter()
            .table(Alias::new(slug))
            .drop_foreign_key(Alias::new(format!("fk_{slug}_{name}")))
            .to_owned();
        self.exec(&drop).await
    }

    async fn create_indexes(&self, collection: &Collection) -> Result<(), String> {
        let (indexes, raw) = index_statements(collection, self.backend);
        for index in &indexes {
            self.exec(index).await?;
        }
        for sql in raw {
            self.tx.execute_unprepared(&sql).await.map_err(describe)?;
        }
        Ok(())
    }

    async fn create_field_index(&self, slug: &str, name: &str) -> Result<(), String> {
        let collection = self.collection_after(slug);
        let Some(field) = collection.field(name) else {
            return Ok(());
        };
        let (index, raw) = field_index(&collection, field, self.backend);
        if let Some(index) = index {
            self.exec(&index).await?;
        }
        if let Some(sql) = raw {
            self.tx.execute_unprepared(&sql).await.map_err(describe)?;
        }
        Ok(())
    }

    async fn drop_field_index(&self, slug: &str, name: &str) -> Result<(), String> {
        for index in [format!("uq_{slug}_{name}"), format!("ix_{slug}_{name}")] {
            let mut drop = Index::drop();
            drop.name(index).if_exists();
            if self.backend == DbBackend::MySql {
                drop.table(Alias::new(slug));
            }
            self.exec(&drop).await?;
        }
        Ok(())
    }

    /// Reads every value of the field, converts it to the new type (all or nothing), and puts
    /// the converted values in place of the old column.
    async fn convert_column(
        &self,
        slug: &str,
        old: &FieldDef,
        new: &FieldDef,
    ) -> Result<(), String> {
        let old_collection = CollectionDef {
            name: slug.to_string(),
            fields: vec![old.clone()],
        }
        .to_collection();
        let select = Query::select()
            .column(Alias::new("id"))
            .column(Alias::new(&old.name))
            .from(Alias::new(slug))
            .order_by(Alias::new("id"), Order::Asc)
            .to_owned();
        let rows = self.tx.query_all(&select).await.map_err(describe)?;
        let mut converted = Vec::new();
        let mut failures = Vec::new();
        for row in &rows {
            let doc = decode_row(
                row,
                &old_collection,
                &[Column::Id, Column::Field(0)],
                self.backend,
            )
            .map_err(describe)?;
            let id = doc["id"].as_str().unwrap_or_default().to_string();
            match convert(&doc[&old.name], new.kind) {
                Ok(value) if value.is_null() => {}
                Ok(value) => converted.push((id, value)),
                Err(e) => failures.push(format!("id {id}: {e}")),
            }
        }
        if !failures.is_empty() {
            let shown: Vec<&str> = failures.iter().take(5).map(String::as_str).collect();
            return Err(format!(
                "{} row(s) hold values that do not convert from {} to {}: {}{}",
                failures.len(),
                old.type_label(),
                new.type_label(),
                shown.join("; "),
                if failures.len() > shown.len() {
                    "; ..."
                } else {
                    ""
                }
            ));
        }
        let staging = FieldDef {
            name: CONVERTED.to_string(),
            required: false,
            unique: false,
            index: false,
            ..new.clone()
        };
        self.add_column(slug, &staging).await?;
        let kind = new.to_field().kind;
        for (id, value) in converted {
            let update = Query::update()
                .table(Alias::new(slug))
                .value(
                    Alias::new(CONVERTED),
                    to_sql_value(&kind, &value, self.backend),
                )
                .and_where(Expr::col(Alias::new("id")).eq(id))
                .to_owned();
            self.exec(&update).await?;
        }
        if self.sqlite() {
            return self.rebuild(slug, &[(new.name.as_str(), CONVERTED)]).await;
        }
        let drop = Table::alter()
            .table(Alias::new(slug))
            .drop_column(Alias::new(&old.name))
            .to_owned();
        self.exec(&drop).await?;
        let rename = Table::alter()
            .table(Alias::new(slug))
            .rename_column(Alias::new(CONVERTED), Alias::new(&new.name))
            .to_owned();
        self.exec(&rename).await?;
        if new.required {
            self.set_required(slug, &new.name, true).await?;
        }
        self.create_field_index(slug, &new.name).await
    }

    /// SQLite's copy-and-swap: the table takes the shape it has after this operation; each
    /// column is copied from the column of the same name, or from the one `sources` names.
    async fn rebuild(&self, slug: &str, sources: &[(&str, &str)]) -> Result<(), String> {
        let collection = self.collection_after(slug);
        let staging = format!("__lucent_new_{slug}");
        // SQLite refuses to rename a table while a trigger names a table that does not exist
        // (the old one, dropped): the cascade triggers of join tables are set aside meanwhile.
        let select = Query::select()
            .columns([Alias::new("name"), Alias::new("sql")])
            .from(Alias::new("sqlite_master"))
            .and_where(Expr::col(Alias::new("type")).eq("trigger"))
            .to_owned();
        let mut triggers = Vec::new();
        for row in self.tx.query_all(&select).await.map_err(describe)? {
            let name: String = row.try_get_by_index(0).map_err(describe)?;
            let sql: String = row.try_get_by_index(1).map_err(describe)?;
            let drop = format!("DROP TRIGGER \"{}\"", name.replace('"', "\"\""));
            self.tx.execute_unprepared(&drop).await.map_err(describe)?;
            triggers.push(sql);
        }
        let mut create = table_statement(&collection, self.backend, true);
        create.table(Alias::new(&staging));
        self.exec(&create).await?;

        let mut targets = vec!["id".to_string()];
        targets.extend(
            collection
                .fields
                .iter()
                .filter(|f| f.has_column())
                .map(|f| f.name.clone()),
        );
        targets.extend(["createdAt".to_string(), "updatedAt".to_string()]);
        let origins: Vec<String> = targets
            .iter()
            .map(|target| {
                sources
                    .iter()
                    .find(|(to, _)| to == target)
                    .map_or_else(|| target.clone(), |(_, from)| (*from).to_string())
            })
            .collect();
        let select = Query::select()
            .columns(origins.iter().map(Alias::new))
            .from(Alias::new(slug))
            .to_owned();
        let insert = Query::insert()
            .into_table(Alias::new(&staging))
            .columns(targets.iter().map(Alias::new))
            .select_from(select)
            .map_err(|e| e.to_string())?
            .to_owned();
        self.exec(&insert).await?;
        self.exec(&Table::drop().table(Alias::new(slug)).to_owned())
            .await?;
        self.exec(
            &Table::rename()
                .table(Alias::new(&staging), Alias::new(slug))
                .to_owned(),
        )
        .await?;
        for sql in triggers {
            self.tx.execute_unprepared(&sql).await.map_err(describe)?;
        }
        self.create_indexes(&collection).await
    }
}

fn empty_collection(slug: &str) -> Collection {
    CollectionDef {
        name: slug.to_string(),
        fields: Vec::new(),
    }
    .to_collection()
}

/// A database error as a reviewer reads it, without the driver's wrapping.
fn describe(error: DbErr) -> String {
    let text = error.to_string();
    text.rsplit_once("error returned from database: ")
        .map_or(text.clone(), |(_, message)| message.to_string())
}
