//! Lucent's own record of migrations: `_lucent_migrations` (one row per applied file, with its
//! checksum) and `_lucent_schema` (the schema the tables have now, as JSON).

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{
    ColumnDef, ColumnType, Expr, ExprTrait, OnConflict, Order, Query, StringLen, Table,
};
use sea_orm::{ConnectionTrait, DbErr};

use super::snapshot::Snapshot;
use crate::db::system::{Migrations, SchemaRecord};

/// An applied migration.
#[derive(Debug, Clone)]
pub struct Record {
    pub name: String,
    pub checksum: String,
    pub applied_at: DateTime<Utc>,
}

/// Creates both tables when missing.
///
/// # Errors
/// When a statement fails.
pub async fn ensure_tables(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let time = || crate::db::datetime_type(backend);
    let migrations = Table::create()
        .table(Migrations::Table)
        .if_not_exists()
        .col(
            ColumnDef::new_with_type(Migrations::Name, ColumnType::String(StringLen::N(255)))
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new_with_type(Migrations::Checksum, ColumnType::String(StringLen::N(64)))
                .not_null(),
        )
        .col(ColumnDef::new_with_type(Migrations::AppliedAt, time()).not_null())
        .to_owned();
    let schema = Table::create()
        .table(SchemaRecord::Table)
        .if_not_exists()
        .col(
            ColumnDef::new_with_type(SchemaRecord::Id, ColumnType::Integer)
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new_with_type(SchemaRecord::Snapshot, ColumnType::Text).not_null())
        .col(ColumnDef::new_with_type(SchemaRecord::UpdatedAt, time()).not_null())
        .to_owned();
    db.execute(&migrations).await?;
    db.execute(&schema).await?;
    Ok(())
}

/// Applied migrations, by name.
///
/// # Errors
/// When the query fails.
pub async fn applied(db: &impl ConnectionTrait) -> Result<Vec<Record>, DbErr> {
    let select = Query::select()
        .columns([
            Migrations::Name,
            Migrations::Checksum,
            Migrations::AppliedAt,
        ])
        .from(Migrations::Table)
        .order_by(Migrations::Name, Order::Asc)
        .to_owned();
    db.query_all(&select)
        .await?
        .iter()
        .map(|row| {
            Ok(Record {
                name: row.try_get_by_index(0)?,
                checksum: row.try_get_by_index(1)?,
                applied_at: row.try_get_by_index(2)?,
            })
        })
        .collect()
}

/// The recorded schema; empty for a database Lucent has not migrated yet.
///
/// # Errors
/// When the query fails or the stored JSON does not parse.
pub async fn snapshot(db: &impl ConnectionTrait) -> Result<Snapshot, DbErr> {
    let select = Query::select()
        .column(SchemaRecord::Snapshot)
        .from(SchemaRecord::Table)
        .and_where(Expr::col(SchemaRecord::Id).eq(1))
        .to_owned();
    match db.query_one(&select).await? {
        None => Ok(Snapshot::default()),
        Some(row) => {
            let text: String = row.try_get_by_index(0)?;
            serde_json::from_str(&text).map_err(|e| {
                DbErr::Custom(format!("_lucent_schema holds an unreadable schema: {e}"))
            })
        }
    }
}

/// Records an applied migration and the schema it leaves.
///
/// # Errors
/// When a statement fails (a concurrent apply of the same file fails on the primary key).
pub async fn record(
    db: &impl ConnectionTrait,
    name: &str,
    checksum: &str,
    snapshot: &Snapshot,
) -> Result<(), DbErr> {
    let now = Utc::now().trunc_subsecs(3);
    let insert = Query::insert()
        .into_table(Migrations::Table)
        .columns([
            Migrations::Name,
            Migrations::Checksum,
            Migrations::AppliedAt,
        ])
        .values_panic([name.into(), checksum.into(), now.into()])
        .to_owned();
    db.execute(&insert).await?;
    let json = serde_json::to_string(snapshot).map_err(|e| DbErr::Custom(e.to_string()))?;
    let upsert = Query::insert()
        .into_table(SchemaRecord::Table)
        .columns([
            SchemaRecord::Id,
            SchemaRecord::Snapshot,
            SchemaRecord::UpdatedAt,
        ])
        .values_panic([1.into(), json.into(), now.into()])
        .on_conflict(
            OnConflict::column(SchemaRecord::Id)
                .update_columns([SchemaRecord::Snapshot, SchemaRecord::UpdatedAt])
                .to_owned(),
        )
        .to_owned();
    db.execute(&upsert).await?;
    Ok(())
}
