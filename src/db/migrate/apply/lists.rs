//! Migration steps of to-many relations, whose ids live in a join table rather than a column:
//! creating and dropping the table, renaming the field (a new table, rows copied), changing its
//! target or `on_delete` (SQLite rebuilds the join table, PostgreSQL alters its foreign key), and
//! turning one id into a list (each id becomes a one-element list) or a list into one id (each
//! document keeps the first id of its list).

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SubQueryStatement, Table};
use sea_orm::{ConnectionTrait, Statement};

use super::{Step, describe};
use crate::db::ddl::{
    cascade_trigger, drop_cascade_trigger, join_foreign_keys, join_statements,
    join_table_statement, join_target_index,
};
use crate::db::migrate::snapshot::{FieldDef, Kind, Snapshot};
use crate::schema::{Field, join_index, join_table};

impl Step<'_> {
    /// Creates the join table of `slug.name` as it is after this operation. PostgreSQL gets its
    /// foreign keys at the end of the migration, when every table exists.
    pub(super) async fn create_join(
        &self,
        slug: &str,
        name: &str,
        foreign_keys: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        let collection = self.collection_after(slug);
        let Some(field) = collection.field(name) else {
            return Err(format!("`{slug}` has no field `{name}`"));
        };
        for statement in join_statements(slug, field, self.backend, self.sqlite()) {
            self.exec_raw(statement).await?;
        }
        if !self.sqlite() {
            foreign_keys.push((slug.to_string(), name.to_string()));
        }
        Ok(())
    }

    /// Drops the join table of `slug.name` and its cascade trigger.
    pub(super) async fn drop_join(&self, slug: &str, name: &str) -> Result<(), String> {
        for sql in drop_cascade_trigger(slug, name, self.backend) {
            self.tx.execute_unprepared(&sql).await.map_err(describe)?;
        }
        let drop = Table::drop()
            .table(Alias::new(join_table(slug, name)))
            .if_exists()
            .to_owned();
        self.exec(&drop).await
    }

    /// A renamed to-many field: its rows move to the join table of the new name.
    pub(super) async fn rename_join(
        &self,
        slug: &str,
        from: &str,
        to: &str,
        foreign_keys: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        self.create_join(slug, to, foreign_keys).await?;
        self.copy_join(&join_table(slug, from), &join_table(slug, to))
            .await?;
        self.drop_join(slug, from).await
    }

    /// An altered relation that is, or becomes, to-many.
    pub(super) async fn alter_list(
        &self,
        slug: &str,
        old: &FieldDef,
        new: &FieldDef,
        fill: Option<&serde_json::Value>,
        foreign_keys: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        match (old.many, new.many) {
            (true, true) => self.retarget_join(slug, old, new, foreign_keys).await,
            (false, true) => self.one_to_many(slug, old, new, foreign_keys).await,
            (true, false) => self.many_to_one(slug, old, new, fill, foreign_keys).await,
            (false, false) => Ok(()),
        }
    }

    /// Another target collection or `on_delete` for a list: the join table's target foreign key
    /// and cascade trigger change (rows whose target does not exist in the new collection stop
    /// the migration).
    async fn retarget_join(
        &self,
        slug: &str,
        old: &FieldDef,
        new: &FieldDef,
        foreign_keys: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        if old.to == new.to && old.on_delete == new.on_delete {
            return Ok(());
        }
        let collection = self.collection_after(slug);
        let Some(field) = collection.field(&new.name) else {
            return Err(format!("`{slug}` has no field `{}`", new.name));
        };
        for sql in drop_cascade_trigger(slug, &new.name, self.backend) {
            self.tx.execute_unprepared(&sql).await.map_err(describe)?;
        }
        let table = join_table(slug, &new.name);
        if self.sqlite() {
            // SQLite cannot change a foreign key: the join table is built anew and its rows copied.
            let staging = join_index(slug, &new.name, "staging");
            let mut create = join_table_statement(slug, field, true);
            create.table(Alias::new(&staging));
            self.exec(&create).await?;
            self.copy_join(&table, &staging).await?;
            self.exec(&Table::drop().table(Alias::new(&table)).to_owned())
                .await?;
            self.exec(
                &Table::rename()
                    .table(Alias::new(&staging), Alias::new(&table))
                    .to_owned(),
            )
            .await?;
            self.exec(&join_target_index(slug, &new.name)).await?;
        } else {
            let key = join_index(slug, &new.name, "target_fk");
            let sql = format!("ALTER TABLE \"{table}\" DROP CONSTRAINT IF EXISTS \"{key}\"");
            self.tx.execute_unprepared(&sql).await.map_err(describe)?;
            foreign_keys.push((slug.to_string(), new.name.clone()));
        }
        for sql in cascade_trigger(slug, field, self.backend) {
            self.tx.execute_unprepared(&sql).await.map_err(describe)?;
        }
        Ok(())
    }

    /// One id becomes a list: each stored id becomes a one-element list, then the column goes.
    /// A field that was not a relation to the same collection is first converted to one (its
    /// values must be ids of that collection).
    async fn one_to_many(
        &self,
        slug: &str,
        old: &FieldDef,
        new: &FieldDef,
        foreign_keys: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        let single = single(new);
        if single.converts_from(old) {
            let between = with_field(self.after, slug, &single);
            let step = Step {
                after: &between,
                ..*self
            };
            step.convert_column(slug, old, &single).await?;
        }
        self.create_join(slug, &new.name, foreign_keys).await?;
        let select = Query::select()
            .column(Alias::new("id"))
            .column(Alias::new(&new.name))
            .expr(Expr::val(0))
            .from(Alias::new(slug))
            .and_where(Expr::col(Alias::new(&new.name)).is_not_null())
            .to_owned();
        let insert = Query::insert()
            .into_table(Alias::new(join_table(slug, &new.name)))
            .columns(["source", "target", "position"].map(Alias::new))
            .select_from(select)
            .map_err(|e| e.to_string())?
            .to_owned();
        self.exec(&insert).await?;
        if self.sqlite() {
            return self.rebuild(slug, &[]).await;
        }
        let drop = Table::alter()
            .table(Alias::new(slug))
            .drop_column(Alias::new(&new.name))
            .to_owned();
        self.exec(&drop).await
    }

    /// A list becomes one id: each document keeps the first id of its list (`fill`, or none, for
    /// an empty list), then the join table goes. A field that does not stay a relation to the same
    /// collection is then converted from that id.
    async fn many_to_one(
        &self,
        slug: &str,
        old: &FieldDef,
        new: &FieldDef,
        fill: Option<&serde_json::Value>,
        foreign_keys: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        let single = FieldDef {
            required: false,
            ..single(old)
        };
        self.add_column(slug, &single).await?;
        let table = join_table(slug, &old.name);
        let first = Query::select()
            .column(Alias::new("target"))
            .from(Alias::new(&table))
            .and_where(
                Expr::col((Alias::new(&table), Alias::new("source")))
                    .equals((Alias::new(slug), Alias::new("id"))),
            )
            .order_by(Alias::new("position"), sea_orm::sea_query::Order::Asc)
            .limit(1)
            .to_owned();
        let update = Query::update()
            .table(Alias::new(slug))
            .value(
                Alias::new(&old.name),
                Expr::SubQuery(None, Box::new(SubQueryStatement::SelectStatement(first))),
            )
            .to_owned();
        self.exec(&update).await?;
        if let Some(fill) = fill {
            self.fill(slug, &single, fill).await?;
        }
        self.drop_join(slug, &old.name).await?;
        if new.converts_from(&single) {
            self.convert_column(slug, &single, new).await?;
            if !self.sqlite() && new.kind == Kind::Relation {
                foreign_keys.push((slug.to_string(), new.name.clone()));
            }
            return Ok(());
        }
        if self.sqlite() {
            return self.rebuild(slug, &[]).await;
        }
        if new.required {
            self.set_required(slug, &new.name, true).await?;
        }
        self.create_field_index(slug, &new.name).await?;
        foreign_keys.push((slug.to_string(), new.name.clone()));
        Ok(())
    }

    /// Copies every row of one join table into another.
    async fn copy_join(&self, from: &str, to: &str) -> Result<(), String> {
        let columns = ["source", "target", "position"].map(Alias::new);
        let select = Query::select()
            .columns(columns.clone())
            .from(Alias::new(from))
            .to_owned();
        let insert = Query::insert()
            .into_table(Alias::new(to))
            .columns(columns)
            .select_from(select)
            .map_err(|e| e.to_string())?
            .to_owned();
        self.exec(&insert).await
    }

    async fn exec_raw(&self, statement: Statement) -> Result<(), String> {
        self.tx
            .execute_raw(statement)
            .await
            .map(|_| ())
            .map_err(describe)
    }
}

/// PostgreSQL, at the end of a migration: the foreign keys of a join table that it lacks (a
/// table created by this migration has none yet; a retargeted one lacks its target's).
///
/// # Errors
/// The database's, e.g. ids without a row in the target collection.
pub(super) async fn add_join_foreign_keys(
    tx: &impl ConnectionTrait,
    slug: &str,
    field: &Field,
) -> Result<(), String> {
    let table = join_table(slug, &field.name);
    for key in join_foreign_keys(slug, field) {
        let name = key
            .get_foreign_key()
            .get_name()
            .unwrap_or_default()
            .to_string();
        let exists = Query::select()
            .expr(Expr::val(1))
            .from(Alias::new("pg_constraint"))
            .and_where(Expr::col(Alias::new("conname")).eq(name.as_str()))
            .to_owned();
        if tx.query_one(&exists).await.map_err(describe)?.is_some() {
            continue;
        }
        let add = Table::alter()
            .table(Alias::new(&table))
            .add_foreign_key(key.get_foreign_key())
            .to_owned();
        tx.execute(&add).await.map_err(describe)?;
    }
    Ok(())
}

/// The to-one relation a list field is, or was, stored as one id.
fn single(list: &FieldDef) -> FieldDef {
    FieldDef {
        many: false,
        kind: Kind::Relation,
        unique: false,
        index: false,
        case_insensitive: false,
        ..list.clone()
    }
}

/// `snapshot` with `field` of `slug` replaced: the shape of a table between two steps of one
/// operation.
fn with_field(snapshot: &Snapshot, slug: &str, field: &FieldDef) -> Snapshot {
    let mut snapshot = snapshot.clone();
    if let Ok(collection) = snapshot.collection_mut(slug)
        && let Some(slot) = collection.fields.iter_mut().find(|f| f.name == field.name)
    {
        *slot = field.clone();
    }
    snapshot
}
