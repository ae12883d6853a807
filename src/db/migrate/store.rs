//! Lucent's own record of migrations: `_lucent_migrations` (one row per applied file, with its
//! checksum) and `_lucent_schema` (the schema the tables have now, as JSON).

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{
    Alias, ColumnDef, ColumnType, Expr, ExprTrait, OnConflict, Order, Query, StringLen, Table,
};
use sea_orm::{ConnectionTrait, DbErr};

use super::snapshot::Snapshot;

const MIGRATIONS: &str = "_lucent_migrations";
const SCHEMA: &str = "_lucent_schema";

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
    let time = || match backend {
        sea_orm::DbBackend::MySql => ColumnType::DateTime,
        _ => ColumnType::TimestampWithTimeZone,
    };
    let migrations = Table::create()
        .table(Alias::new(MIGRATIONS))
        .if_not_exists()
        .col(
            ColumnDef::new_with_type(Alias::new("name"), ColumnType::String(StringLen::N(255)))
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new_with_type(Alias::new("checksum"), ColumnType::String(StringLen::N(64)))
                .not_null(),
        )
        .col(ColumnDef::new_with_type(Alias::new("applied_at"), time()).not_null())
        .to_owned();
    let schema = Table::create()
        .table(Alias::new(SCHEMA))
        .if_not_exists()
        .col(
            ColumnDef::new_with_type(Alias::new("id"), ColumnType::Integer)
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new_with_type(Alias::new("snapshot"), ColumnType::Text).not_null())
        .col(ColumnDef::new_with_type(Alias::new("updated_at"), time()).not_null())
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
            Alias::new("name"),
            Alias::new("checksum"),
            Alias::new("applied_at"),
        ])
        .from(Alias::new(MIGRATIONS))
        .order_by(Alias::new("name"), Order::Asc)
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
        .column(Alias::new("snapshot"))
        .from(Alias::new(SCHEMA))
        .and_where(Expr::col(Alias::new("id")).eq(1))
        .to_owned();
    match db.query_one(&select).await? {
        None => Ok(Snapshot::default()),
        Some(row) => {
            let text: String = row.try_get_by_index(0)?;
            serde_json::from_str(&text)
                .map_err(|e| DbErr::Custom(format!("{SCHEMA} holds an unreadable schema: {e}")))
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
        .into_table(Alias::new(MIGRATIONS))
        .columns([
            Alias::new("name"),
            Alias::new("checksum"),
            Alias::new("applied_at"),
        ])
        .values_panic([name.into(), checksum.into(), now.into()])
        .to_owned();
    db.execute(&insert).await?;
    let json = serde_json::to_string(snapshot).map_err(|e| DbErr::Custom(e.to_string()))?;
    let upsert = Query::insert()
        .into_table(Alias::new(SCHEMA))
        .columns([
            Alias::new("id"),
            Alias::new("snapshot"),
            Alias::new("updated_at"),
        ])
        .values_panic([1.into(), json.into(), now.into()])
        .on_conflict(
            OnConflict::column(Alias::new("id"))
                .update_columns([Alias::new("snapshot"), Alias::new("updated_at")])
                .to_owned(),
        )
        .to_owned();
    db.execute(&upsert).await?;
    Ok(())
}
