//! Lucent's own tables: their names and columns (sea-query [`Iden`] enums, so no statement spells
//! a system table or column as a string), and the versioned steps that create and change them.
//!
//! The auth tables (sessions, rotated refresh tokens, login attempts, API keys, email tokens) and
//! the stored answers of idempotent requests are changed only by [`bring_up_to_date`], one numbered [`Step`] at a time, each in its own
//! transaction with its row in `_lucent_system_migrations`; a future column change is a new step
//! appended to [`STEPS`], never an edit of an old one. Step 1 is the tables as Lucent created
//! them before they were versioned, with `IF NOT EXISTS` throughout, so a database made by an
//! earlier Lucent (which has them, and no version table) takes it as a no-op and is then at
//! version 1 like a new one.
//!
//! The schema-migration record (`_lucent_migrations`, `_lucent_schema`) is named here too; its two
//! tables are created by `db::migrate`, which `lucent migrate` runs without the rest.

use sea_orm::sea_query::{
    ColumnDef, ColumnType, Expr, ExprTrait, ForeignKey, ForeignKeyAction, Index, Query, StringLen,
    Table,
};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, DeriveIden, Iden, TransactionTrait,
};

use super::{Database, datetime_type};

/// Refresh sessions: one row per signed-in device, its current refresh digest and cookie digest.
#[derive(DeriveIden, Clone, Copy, Debug)]
pub enum Sessions {
    #[sea_orm(iden = "_lucent_sessions")]
    Table,
    Id,
    Collection,
    UserId,
    RefreshHash,
    CookieHash,
    UserAgent,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
}

/// The digests of refresh tokens a session has rotated away: presenting one of them is reuse.
/// A table of its own (not a column of sessions); rows go with their session.
#[derive(DeriveIden, Clone, Copy, Debug)]
pub enum RotatedRefresh {
    #[sea_orm(iden = "_lucent_rotated_refresh")]
    Table,
    Hash,
    SessionId,
    RotatedAt,
}

/// Failed logins per lockout key (see `auth::lockout`).
#[derive(DeriveIden, Clone, Copy, Debug)]
pub enum LoginAttempts {
    #[sea_orm(iden = "_lucent_login_attempts")]
    Table,
    Key,
    Failures,
    LockedUntil,
    UpdatedAt,
}

/// API keys, stored as SHA-256 digests with their scopes (comma-separated; null = all).
#[derive(DeriveIden, Clone, Copy, Debug)]
pub enum ApiKeys {
    #[sea_orm(iden = "_lucent_api_keys")]
    Table,
    Id,
    Collection,
    UserId,
    Name,
    Prefix,
    KeyHash,
    Scopes,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
}

/// Email verification and password-reset tokens, stored as digests.
#[derive(DeriveIden, Clone, Copy, Debug)]
pub enum EmailTokens {
    #[sea_orm(iden = "_lucent_email_tokens")]
    Table,
    Hash,
    Purpose,
    Collection,
    UserId,
    EmailHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

/// The answers of requests sent with an `Idempotency-Key` (see `http::idempotency`): one row per
/// caller and key, claimed while the first request runs, then its stored answer for 24 hours.
#[derive(DeriveIden, Clone, Copy, Debug)]
pub enum IdempotencyKeys {
    #[sea_orm(iden = "_lucent_idempotency_keys")]
    Table,
    /// SHA-256 of the caller and the key (the key itself is not kept).
    Id,
    /// SHA-256 of the request's method, path and body.
    Fingerprint,
    /// The current claim's random token: only its holder stores the answer or lets go.
    Claim,
    /// The answer's status; null while the first request runs.
    Status,
    /// The answer's headers that matter (`Content-Type`, `Location`, ...), as JSON.
    Headers,
    Body,
    /// While the first request runs: when its claim lapses unless renewed (a crashed instance's
    /// claim is taken over after it).
    LeaseUntil,
    /// When the row is forgotten (24 hours after the answer).
    ExpiresAt,
}

/// The transactional outbox: deliveries (webhook posts, mails) written in the same transaction
/// as what caused them, and sent by the delivery worker (`outbox`). A row lives until it is
/// sent (then deleted) or has failed for good (`state = 'failed'`, kept until retried).
#[derive(DeriveIden, Clone, Copy, Debug)]
pub enum Outbox {
    #[sea_orm(iden = "_lucent_outbox")]
    Table,
    /// A UUIDv7; also the `webhook-id` of a webhook post, stable across attempts.
    Id,
    /// `webhook` or `email`.
    Kind,
    /// The webhook's URL, or the auth collection of a mail.
    Target,
    /// `posts.create`, or a mail's purpose (`verify`, `reset`).
    Event,
    /// The body to post (JSON), or the mail to prepare (JSON).
    Payload,
    /// `pending` or `failed`.
    State,
    /// Attempts made so far.
    Attempts,
    /// When the next attempt is due; while claimed, when the claim lapses.
    NextAt,
    /// The claim of the worker sending it now (null when none).
    Claim,
    LastError,
    /// What an attempt left behind that the next one undoes (a mail's token digest).
    Prepared,
    CreatedAt,
}

/// The schema migrations applied to the collections (one row per file, with its checksum).
#[derive(DeriveIden, Clone, Copy, Debug)]
pub enum Migrations {
    #[sea_orm(iden = "_lucent_migrations")]
    Table,
    Name,
    Checksum,
    AppliedAt,
}

/// The collections' schema as the tables have it now (one row, as JSON).
#[derive(DeriveIden, Clone, Copy, Debug)]
pub enum SchemaRecord {
    #[sea_orm(iden = "_lucent_schema")]
    Table,
    Id,
    Snapshot,
    UpdatedAt,
}

/// The system-table steps applied, by version.
#[derive(DeriveIden, Clone, Copy, Debug)]
pub enum SystemMigrations {
    #[sea_orm(iden = "_lucent_system_migrations")]
    Table,
    Version,
    Name,
    AppliedAt,
}

/// One change of the system tables.
#[derive(Debug)]
pub struct Step {
    /// 1, 2, ...: a step's number never changes once released.
    pub version: i64,
    pub name: &'static str,
    /// Runs the change inside the step's transaction.
    pub run: for<'a> fn(&'a DatabaseTransaction) -> StepFuture<'a>,
}

pub type StepFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), DbErr>> + Send + 'a>>;

/// Every step, in order. Append; never edit or remove a released one.
pub const STEPS: &[Step] = &[
    Step {
        version: 1,
        name: "auth tables",
        run: |tx| Box::pin(auth_tables(tx)),
    },
    Step {
        version: 2,
        name: "idempotency keys",
        run: |tx| Box::pin(idempotency_keys(tx)),
    },
    Step {
        version: 3,
        name: "outbox",
        run: |tx| Box::pin(outbox_table(tx)),
    },
];

/// The lock several instances starting at once take, so they migrate one after the other (the
/// same one `db::migrate` takes).
const LOCK: &str = "SELECT pg_advisory_xact_lock(7163150201)";

/// Applies every step the database lacks; returns the versions applied.
///
/// # Errors
/// The first failing step (rolled back: the database is as it was before it).
pub async fn bring_up_to_date(db: &Database) -> Result<Vec<i64>, DbErr> {
    // A step may rebuild a table: no statement time limit on SQLite's writer meanwhile.
    let _unlimited = db.lift_write_limit();
    let mut applied = Vec::new();
    for step in STEPS {
        let tx = db.writer().begin().await?;
        match apply(&tx, step).await {
            Ok(true) => {
                tx.commit().await?;
                tracing::info!(
                    version = step.version,
                    step = step.name,
                    "system tables updated"
                );
                applied.push(step.version);
            }
            Ok(false) => tx.rollback().await?,
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(DbErr::Custom(format!(
                    "system tables, step {} ({}): {e}",
                    step.version, step.name
                )));
            }
        }
    }
    Ok(applied)
}

/// Runs `step` unless it was applied; returns whether it ran.
async fn apply(tx: &DatabaseTransaction, step: &Step) -> Result<bool, DbErr> {
    if tx.get_database_backend() == DbBackend::Postgres {
        tx.execute_unprepared("SET LOCAL statement_timeout = 0")
            .await?;
        tx.execute_unprepared(LOCK).await?;
    }
    let versions = Table::create()
        .table(SystemMigrations::Table)
        .if_not_exists()
        .col(
            ColumnDef::new_with_type(SystemMigrations::Version, ColumnType::BigInteger)
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new_with_type(
                SystemMigrations::Name,
                ColumnType::String(StringLen::N(255)),
            )
            .not_null(),
        )
        .col(
            ColumnDef::new_with_type(
                SystemMigrations::AppliedAt,
                datetime_type(tx.get_database_backend()),
            )
            .not_null(),
        )
        .to_owned();
    tx.execute(&versions).await?;
    let mut done = Query::select();
    done.expr(Expr::val(1))
        .from(SystemMigrations::Table)
        .and_where(Expr::col(SystemMigrations::Version).eq(step.version));
    if tx.query_one(&done).await?.is_some() {
        return Ok(false);
    }
    (step.run)(tx).await?;
    let mut record = Query::insert();
    record
        .into_table(SystemMigrations::Table)
        .columns([
            SystemMigrations::Version,
            SystemMigrations::Name,
            SystemMigrations::AppliedAt,
        ])
        .values_panic([
            step.version.into(),
            step.name.into(),
            crate::schema::now().into(),
        ]);
    tx.execute(&record).await?;
    Ok(true)
}

/// Step 1: the auth tables as Lucent made them before they were versioned (`IF NOT EXISTS`, so a
/// database that has them is unchanged).
async fn auth_tables(tx: &DatabaseTransaction) -> Result<(), DbErr> {
    let backend = tx.get_database_backend();
    let id = || ColumnType::String(StringLen::N(64));
    let time = || datetime_type(backend);

    let sessions = Table::create()
        .table(Sessions::Table)
        .if_not_exists()
        .col(
            ColumnDef::new_with_type(Sessions::Id, id())
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new_with_type(Sessions::Collection, id()).not_null())
        .col(ColumnDef::new_with_type(Sessions::UserId, id()).not_null())
        .col(ColumnDef::new_with_type(Sessions::RefreshHash, id()).not_null())
        .col(ColumnDef::new_with_type(Sessions::CookieHash, id()))
        .col(ColumnDef::new_with_type(
            Sessions::UserAgent,
            ColumnType::String(StringLen::N(256)),
        ))
        .col(ColumnDef::new_with_type(Sessions::CreatedAt, time()).not_null())
        .col(ColumnDef::new_with_type(Sessions::LastUsedAt, time()).not_null())
        .col(ColumnDef::new_with_type(Sessions::ExpiresAt, time()).not_null())
        .to_owned();
    tx.execute(&sessions).await?;
    index(
        tx,
        "ix__lucent_sessions_user",
        Sessions::Table,
        &[Sessions::Collection, Sessions::UserId],
    )
    .await?;

    let attempts = Table::create()
        .table(LoginAttempts::Table)
        .if_not_exists()
        .col(
            ColumnDef::new_with_type(LoginAttempts::Key, id())
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new_with_type(LoginAttempts::Failures, ColumnType::BigInteger).not_null())
        .col(ColumnDef::new_with_type(LoginAttempts::LockedUntil, time()))
        .col(ColumnDef::new_with_type(LoginAttempts::UpdatedAt, time()).not_null())
        .to_owned();
    tx.execute(&attempts).await?;
    index(
        tx,
        "ix__lucent_login_attempts_updated",
        LoginAttempts::Table,
        &[LoginAttempts::UpdatedAt],
    )
    .await?;

    let rotated = Table::create()
        .table(RotatedRefresh::Table)
        .if_not_exists()
        .col(
            ColumnDef::new_with_type(RotatedRefresh::Hash, id())
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new_with_type(RotatedRefresh::SessionId, id()).not_null())
        .col(ColumnDef::new_with_type(RotatedRefresh::RotatedAt, time()).not_null())
        .foreign_key(
            ForeignKey::create()
                .name("fk__lucent_rotated_refresh_session")
                .from(RotatedRefresh::Table, RotatedRefresh::SessionId)
                .to(Sessions::Table, Sessions::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned();
    tx.execute(&rotated).await?;
    index(
        tx,
        "ix__lucent_rotated_refresh_session",
        RotatedRefresh::Table,
        &[RotatedRefresh::SessionId],
    )
    .await?;
    index(
        tx,
        "ix__lucent_rotated_refresh_age",
        RotatedRefresh::Table,
        &[RotatedRefresh::RotatedAt],
    )
    .await?;

    let keys = Table::create()
        .table(ApiKeys::Table)
        .if_not_exists()
        .col(
            ColumnDef::new_with_type(ApiKeys::Id, id())
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new_with_type(ApiKeys::Collection, id()).not_null())
        .col(ColumnDef::new_with_type(ApiKeys::UserId, id()).not_null())
        .col(
            ColumnDef::new_with_type(ApiKeys::Name, ColumnType::String(StringLen::N(200)))
                .not_null(),
        )
        .col(
            ColumnDef::new_with_type(ApiKeys::Prefix, ColumnType::String(StringLen::N(16)))
                .not_null(),
        )
        .col(
            ColumnDef::new_with_type(ApiKeys::KeyHash, id())
                .not_null()
                .unique_key(),
        )
        .col(ColumnDef::new_with_type(
            ApiKeys::Scopes,
            ColumnType::String(StringLen::N(64)),
        ))
        .col(ColumnDef::new_with_type(ApiKeys::CreatedAt, time()).not_null())
        .col(ColumnDef::new_with_type(ApiKeys::ExpiresAt, time()))
        .col(ColumnDef::new_with_type(ApiKeys::LastUsedAt, time()))
        .to_owned();
    tx.execute(&keys).await?;
    index(
        tx,
        "ix__lucent_api_keys_user",
        ApiKeys::Table,
        &[ApiKeys::Collection, ApiKeys::UserId],
    )
    .await?;

    let tokens = Table::create()
        .table(EmailTokens::Table)
        .if_not_exists()
        .col(
            ColumnDef::new_with_type(EmailTokens::Hash, id())
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new_with_type(EmailTokens::Purpose, ColumnType::String(StringLen::N(16)))
                .not_null(),
        )
        .col(ColumnDef::new_with_type(EmailTokens::Collection, id()).not_null())
        .col(ColumnDef::new_with_type(EmailTokens::UserId, id()).not_null())
        .col(ColumnDef::new_with_type(EmailTokens::EmailHash, id()).not_null())
        .col(ColumnDef::new_with_type(EmailTokens::CreatedAt, time()).not_null())
        .col(ColumnDef::new_with_type(EmailTokens::ExpiresAt, time()).not_null())
        .col(ColumnDef::new_with_type(EmailTokens::UsedAt, time()))
        .to_owned();
    tx.execute(&tokens).await?;
    index(
        tx,
        "ix__lucent_email_tokens_user",
        EmailTokens::Table,
        &[EmailTokens::Collection, EmailTokens::UserId],
    )
    .await?;
    Ok(())
}

/// Step 2: the stored answers of idempotent requests (`IF NOT EXISTS` too: a database whose
/// version record was lost takes every step again).
async fn idempotency_keys(tx: &DatabaseTransaction) -> Result<(), DbErr> {
    let backend = tx.get_database_backend();
    let digest = || ColumnType::String(StringLen::N(64));
    let time = || datetime_type(backend);
    let table = Table::create()
        .table(IdempotencyKeys::Table)
        .if_not_exists()
        .col(
            ColumnDef::new_with_type(IdempotencyKeys::Id, digest())
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new_with_type(IdempotencyKeys::Fingerprint, digest()).not_null())
        .col(ColumnDef::new_with_type(IdempotencyKeys::Claim, digest()).not_null())
        .col(ColumnDef::new_with_type(
            IdempotencyKeys::Status,
            ColumnType::Integer,
        ))
        .col(ColumnDef::new_with_type(
            IdempotencyKeys::Headers,
            ColumnType::Text,
        ))
        .col(ColumnDef::new_with_type(
            IdempotencyKeys::Body,
            ColumnType::Blob,
        ))
        .col(ColumnDef::new_with_type(IdempotencyKeys::LeaseUntil, time()).not_null())
        .col(ColumnDef::new_with_type(IdempotencyKeys::ExpiresAt, time()).not_null())
        .to_owned();
    tx.execute(&table).await?;
    index(
        tx,
        "ix__lucent_idempotency_keys_expires",
        IdempotencyKeys::Table,
        &[IdempotencyKeys::ExpiresAt],
    )
    .await
}

/// Step 3: the outbox (webhook deliveries and mails, issue 15).
async fn outbox_table(tx: &DatabaseTransaction) -> Result<(), DbErr> {
    let backend = tx.get_database_backend();
    let text = |n: u32| ColumnType::String(StringLen::N(n));
    // `IF NOT EXISTS` like step 1: a database whose version record was lost takes it again.
    let table = Table::create()
        .table(Outbox::Table)
        .if_not_exists()
        .col(
            ColumnDef::new_with_type(Outbox::Id, text(64))
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new_with_type(Outbox::Kind, text(16)).not_null())
        .col(ColumnDef::new_with_type(Outbox::Target, text(2048)).not_null())
        .col(ColumnDef::new_with_type(Outbox::Event, text(200)).not_null())
        .col(ColumnDef::new_with_type(Outbox::Payload, ColumnType::Text).not_null())
        .col(ColumnDef::new_with_type(Outbox::State, text(16)).not_null())
        .col(ColumnDef::new_with_type(Outbox::Attempts, ColumnType::BigInteger).not_null())
        .col(ColumnDef::new_with_type(Outbox::NextAt, datetime_type(backend)).not_null())
        .col(ColumnDef::new_with_type(Outbox::Claim, text(64)))
        .col(ColumnDef::new_with_type(Outbox::LastError, text(1024)))
        .col(ColumnDef::new_with_type(Outbox::Prepared, text(64)))
        .col(ColumnDef::new_with_type(Outbox::CreatedAt, datetime_type(backend)).not_null())
        .to_owned();
    tx.execute(&table).await?;
    // The worker's claim: the due rows of a state, oldest first.
    index(
        tx,
        "ix__lucent_outbox_due",
        Outbox::Table,
        &[Outbox::State, Outbox::NextAt],
    )
    .await
}

async fn index<T: Iden + Copy + 'static>(
    tx: &DatabaseTransaction,
    name: &str,
    table: T,
    columns: &[T],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table).if_not_exists();
    for column in columns {
        index.col(*column);
    }
    tx.execute(&index).await.map(|_| ())
}
