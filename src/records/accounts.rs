//! Accounts as records: the reads that find an account (by id while a session lives, by API key,
//! by login, by email) and the writes only Lucent makes to one (verified, a reset password). Also
//! the one rule of what ends when credentials change: a new password or login ends the account's
//! other sessions, a reset ends every session and revokes every key, a deleted account takes its
//! sessions and keys with it. The account flows (`accounts`) call these; nothing else touches an
//! auth collection's table.

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, Order};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement};

use super::lists::attach_lists;
use super::{Error, Records, Result};
use crate::auth::keys::{self, KeyRow};
use crate::auth::password::check_policy;
use crate::auth::sessions;
use crate::db::{Column, decode_row, to_sql_value};
use crate::schema::{Collection, Doc, FieldKind, FieldRole, Value, now};

/// A password that passed the policy, as its argon2id hash.
#[derive(Debug)]
pub struct NewPassword(String);

impl Records {
    /// A whole stored account (hidden fields too), optionally only while `session` is a live
    /// session of it — one query, so an ended session is refused at once on every instance.
    ///
    /// # Errors
    /// `NotFound` for an unknown collection; database failures.
    pub async fn account(
        &self,
        slug: &str,
        id: &str,
        session: Option<&str>,
    ) -> Result<Option<Doc>> {
        let (collection, plan, _) = self.collection(slug)?;
        let table = Alias::new(&collection.slug);
        let mut select = plan.select_all.clone();
        select.and_where(Expr::col((table.clone(), Alias::new("id"))).eq(id));
        if let Some(session) = session {
            select.and_where(sessions::is_live(
                session,
                slug,
                Expr::col((table, Alias::new("id"))),
            ));
        }
        // A reader sees every committed change (a session ended a moment ago included) and does
        // not queue behind writes; authentication's own never queues behind record reads.
        let backend = self.db.backend();
        Ok(self
            .db
            .read_auth(async |c| {
                let row = c.query_one(&select).await?;
                with_lists(c, collection, row, &plan.all_columns, backend).await
            })
            .await?)
    }

    /// The account an API key belongs to (found by the key's digest), with its collection and the
    /// key: one statement per auth collection (usually one), so a key costs one lookup.
    ///
    /// # Errors
    /// Database failures.
    pub async fn account_by_key(&self, key_hash: &str) -> Result<Option<(Doc, KeyRow)>> {
        for (index, collection) in self.schema.collections.iter().enumerate() {
            if collection.auth.is_none() {
                continue;
            }
            let plan = &self.plans[index];
            let mut select = plan.select_all.clone();
            keys::join_owner(&mut select, &collection.slug, &collection.slug, key_hash);
            let backend = self.db.backend();
            let found = self
                .db
                .read_auth(async |c| {
                    let Some(row) = c.query_one(&select).await? else {
                        return Ok(None);
                    };
                    let key = KeyRow::from_row(&row, plan.all_columns.len())?;
                    let doc =
                        with_lists(c, collection, Some(row), &plan.all_columns, backend).await?;
                    Ok(doc.map(|doc| (doc, key)))
                })
                .await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// A whole stored account by its login field, compared regardless of case.
    ///
    /// # Errors
    /// `NotFound` for a collection without auth; database failures.
    pub async fn account_by_login(&self, slug: &str, identifier: &str) -> Result<Option<Doc>> {
        let (collection, plan, _) = self.collection(slug)?;
        let field = collection.login_field().ok_or(Error::NotFound)?;
        let mut select = plan.select_all.clone();
        if field.kind == FieldKind::Email {
            // Stored lower-cased already: the plain unique index serves the lookup.
            select.and_where(Expr::col(Alias::new(&field.name)).eq(identifier.to_lowercase()));
        } else {
            select.and_where(
                Func::lower(Expr::col(Alias::new(&field.name)))
                    .eq(Func::lower(Expr::val(identifier))),
            );
        }
        let writer = self.db.writer();
        let row = writer.query_one(&select).await?;
        Ok(with_lists(
            writer,
            collection,
            row,
            &plan.all_columns,
            self.db.backend(),
        )
        .await?)
    }

    /// The account whose email field `field` holds `address` (stored lower-cased); the oldest one
    /// if a non-unique field holds it more than once.
    ///
    /// # Errors
    /// `NotFound` for an unknown collection; database failures.
    pub async fn account_by_email(
        &self,
        slug: &str,
        field: &str,
        address: &str,
    ) -> Result<Option<Doc>> {
        let (collection, plan, _) = self.collection(slug)?;
        let mut select = plan.select_all.clone();
        select
            .and_where(Expr::col(Alias::new(field)).eq(address.to_lowercase()))
            .order_by((Alias::new(&collection.slug), Alias::new("id")), Order::Asc)
            .limit(1);
        let writer = self.db.writer();
        let row = writer.query_one(&select).await?;
        Ok(with_lists(
            writer,
            collection,
            row,
            &plan.all_columns,
            self.db.backend(),
        )
        .await?)
    }

    /// Marks an account's address verified (a verification link was followed).
    ///
    /// # Errors
    /// `NotFound` for an unknown collection; database failures.
    pub async fn mark_verified(&self, slug: &str, id: &str) -> Result<()> {
        let (collection, _, _) = self.collection(slug)?;
        self.write_account(collection, id, None).await
    }

    /// Checks `password` against the password policy (every broken rule listed) and hashes it.
    ///
    /// # Errors
    /// `Validation` for a password that breaks the policy; `Busy` when hashing is saturated.
    pub async fn new_password(&self, password: &str) -> Result<NewPassword> {
        let broken = check_policy(&self.policy, password, "password");
        if !broken.is_empty() {
            return Err(Error::Validation(broken));
        }
        Ok(NewPassword(
            self.passwords.hash(password.to_string()).await?,
        ))
    }

    /// Sets an account's password from a reset link: the link proved the address, so the account
    /// is also verified; every session ends and every API key is revoked (the link proves control
    /// of the mailbox, not of the keys).
    ///
    /// # Errors
    /// `NotFound` for an unknown collection; database failures.
    pub async fn reset_password(&self, slug: &str, id: &str, password: NewPassword) -> Result<()> {
        let (collection, _, _) = self.collection(slug)?;
        self.write_account(collection, id, Some(password)).await?;
        sessions::delete_of_user(&self.db, slug, id, None).await?;
        keys::delete_of_user(&self.db, slug, id).await?;
        Ok(())
    }

    /// Sets `verified` (when the collection has it) and, if given, the password of an account.
    async fn write_account(
        &self,
        collection: &Collection,
        id: &str,
        password: Option<NewPassword>,
    ) -> Result<()> {
        let backend = self.db.backend();
        let mut update = sea_orm::sea_query::Query::update();
        update.table(Alias::new(&collection.slug));
        if let Some(NewPassword(hash)) = password
            && let Some(field) = field_of_role(collection, FieldRole::Password)
        {
            update.value(
                Alias::new(&field.name),
                to_sql_value(&field.kind, &Value::Text(hash), backend),
            );
        }
        if let Some(field) = field_of_role(collection, FieldRole::Verified) {
            update.value(
                Alias::new(&field.name),
                to_sql_value(&field.kind, &Value::Bool(true), backend),
            );
        }
        update
            .value(Alias::new("updatedAt"), now())
            .and_where(Expr::col(Alias::new("id")).eq(id));
        self.db.write(&update).await?;
        Ok(())
    }

    /// For an account update: whether the password or login changes (then the account's other
    /// sessions end, see [`Records::credentials_changed`]), and `verified` reset when the email
    /// changes.
    pub(super) fn account_changes(
        &self,
        collection: &Collection,
        stored: &Doc,
        values: &mut Vec<(usize, Value)>,
    ) -> bool {
        let Some(auth) = &collection.auth else {
            return false;
        };
        let mut changed = false;
        let mut email_changed = false;
        for (index, value) in values.iter() {
            let field = &collection.fields[*index];
            let differs = stored.get(&field.name) != Some(&value.to_json());
            changed |=
                field.role == FieldRole::Password || (field.name == auth.login_field && differs);
            email_changed |= field.name == "email" && differs;
        }
        if email_changed
            && let Some(index) = collection
                .fields
                .iter()
                .position(|f| f.role == FieldRole::Verified)
            && !values.iter().any(|(i, _)| *i == index)
        {
            values.push((index, Value::Bool(false)));
        }
        changed
    }

    /// A new password or login ends every session of the account but `keep` (the one that made
    /// the change): the statements, written with the change.
    pub(super) fn credentials_changed(
        &self,
        collection: &Collection,
        id: &str,
        keep: Option<&str>,
    ) -> Vec<Statement> {
        let backend = self.db.backend();
        vec![backend.build(&sessions::delete_of_user_statement(
            &collection.slug,
            id,
            keep,
        ))]
    }

    /// A deleted account's sessions and keys go with it: the statements, written with the
    /// delete.
    pub(super) fn account_deleted(&self, collection: &Collection, id: &str) -> Vec<Statement> {
        let backend = self.db.backend();
        if collection.auth.is_none() {
            return Vec::new();
        }
        vec![
            backend.build(&sessions::delete_of_user_statement(
                &collection.slug,
                id,
                None,
            )),
            backend.build(&keys::delete_of_user_statement(&collection.slug, id)),
        ]
    }
}

/// A stored account row as a document, with its lists (if its collection has any).
async fn with_lists<C: ConnectionTrait>(
    connection: &C,
    collection: &Collection,
    row: Option<QueryResult>,
    columns: &[Column],
    backend: DbBackend,
) -> std::result::Result<Option<Doc>, DbErr> {
    let Some(row) = row else { return Ok(None) };
    let mut docs = [decode_row(&row, collection, columns, backend)?];
    attach_lists(connection, collection, None, &mut docs).await?;
    let [doc] = docs;
    Ok(Some(doc))
}

fn field_of_role(collection: &Collection, role: FieldRole) -> Option<&crate::schema::Field> {
    collection.fields.iter().find(|f| f.role == role)
}
