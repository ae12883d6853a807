//! API keys of an account: create (scopes no wider than the creator's), list, revoke. Managing
//! keys needs a session of the account, or a key of it with the `admin` scope.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::{Accounts, Error, Result};
use crate::auth::keys::{self, ApiKey};
use crate::auth::principal::{AuthUser, SCOPES};
use crate::auth::{Credential, Principal};
use crate::schema::{FieldError, now, nul_error, parse_time};

/// A checked create body.
struct KeyRequest {
    name: String,
    scopes: Option<Vec<String>>,
    expires_at: Option<DateTime<Utc>>,
}

/// A create body: `name`, `scopes`, `expiresAt`, every problem listed at once.
fn key_request(body: &Json) -> Result<KeyRequest> {
    let Some(object) = body.as_object() else {
        return Err(Error::invalid(
            "",
            "invalid_type",
            "the body must be a JSON object",
        ));
    };
    let mut errors = Vec::new();
    for key in object
        .keys()
        .filter(|k| !["name", "scopes", "expiresAt"].contains(&k.as_str()))
    {
        errors.push(FieldError::new(
            key,
            "unknown_field",
            format!("unknown field \"{key}\""),
        ));
    }
    let name = object
        .get("name")
        .and_then(Json::as_str)
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldError::new(
            "name",
            "required",
            "name is required (at most 200 characters)",
        ));
    } else if name.contains('\0') {
        errors.push(nul_error("name"));
    }
    let scopes: Option<Vec<String>> = match object.get("scopes") {
        None | Some(Json::Null) => None,
        Some(Json::Array(items)) => {
            let mut scopes = Vec::new();
            for item in items {
                match item.as_str().filter(|s| SCOPES.contains(s)) {
                    Some(scope) if !scopes.iter().any(|s| s == scope) => {
                        scopes.push(scope.to_string())
                    }
                    Some(_) => {}
                    None => errors.push(FieldError::new(
                        "scopes",
                        "invalid_scope",
                        "scopes may be read, write and admin",
                    )),
                }
            }
            if scopes.is_empty() && errors.is_empty() {
                errors.push(FieldError::new(
                    "scopes",
                    "invalid_scope",
                    "give at least one scope, or omit scopes for all",
                ));
            }
            Some(scopes)
        }
        Some(_) => {
            errors.push(FieldError::new(
                "scopes",
                "invalid_type",
                "scopes must be a list",
            ));
            None
        }
    };
    let expires_at = match object.get("expiresAt") {
        None | Some(Json::Null) => None,
        Some(value) => match value.as_str().and_then(parse_time) {
            Some(at) if at > now() => Some(at),
            Some(_) => {
                errors.push(FieldError::new(
                    "expiresAt",
                    "in_the_past",
                    "expiresAt must be in the future",
                ));
                None
            }
            None => {
                errors.push(FieldError::new(
                    "expiresAt",
                    "invalid_type",
                    "expiresAt must be an RFC 3339 datetime",
                ));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(Error::validation(errors));
    }
    Ok(KeyRequest {
        name,
        scopes,
        expires_at,
    })
}

impl Accounts {
    /// The account behind a key-management request: a session (token or cookie), or a key with
    /// the `admin` scope; of this collection.
    fn key_manager<'p>(&self, principal: &'p Principal, slug: &str) -> Result<&'p AuthUser> {
        self.auth_collection(slug)?;
        let user = principal
            .user()
            .filter(|u| u.collection == slug)
            .ok_or(Error::Unauthorized)?;
        if user.credential == Credential::ApiKey
            && !user
                .scopes
                .as_ref()
                .is_some_and(|s| s.iter().any(|x| x == "admin"))
        {
            return Err(Error::forbidden("managing API keys needs the admin scope"));
        }
        Ok(user)
    }

    /// Creates a key for the principal's account. The whole key appears only in this answer.
    ///
    /// # Errors
    /// `Validation` for a missing name, unknown scopes or an `expiresAt` that is not a future
    /// RFC 3339 time; `Forbidden` for a key asking for scopes its creator lacks.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        slug: &str,
        body: &Json,
    ) -> Result<ApiKey> {
        let user = self.key_manager(principal, slug)?;
        let request = key_request(body)?;
        if user.credential == Credential::ApiKey {
            let wanted: Vec<&str> = request
                .scopes
                .as_ref()
                .map_or(SCOPES.to_vec(), |s| s.iter().map(String::as_str).collect());
            let have = user.scopes.as_deref().unwrap_or_default();
            if wanted.iter().any(|w| !have.iter().any(|h| h == w)) {
                return Err(Error::forbidden(
                    "a key cannot create a key with scopes it lacks",
                ));
            }
        }
        let new = keys::generate(
            slug,
            &user.id,
            request.name,
            request.scopes,
            request.expires_at,
        );
        keys::insert(self.db(), &new.row).await?;
        Ok(new.row.shown(Some(new.key), false))
    }

    /// The principal's own keys, without secrets.
    ///
    /// # Errors
    /// As for every key-management call.
    pub async fn list_api_keys(&self, principal: &Principal, slug: &str) -> Result<Vec<ApiKey>> {
        let user = self.key_manager(principal, slug)?;
        let rows = keys::of_user(self.db(), slug, &user.id).await?;
        Ok(rows.into_iter().map(|row| row.shown(None, true)).collect())
    }

    /// Revokes one of the principal's own keys; it stops working on the next request.
    ///
    /// # Errors
    /// `NotFound` for a key that is not the principal's.
    pub async fn revoke_api_key(&self, principal: &Principal, slug: &str, id: &str) -> Result<()> {
        let user = self.key_manager(principal, slug)?;
        if keys::revoke(self.db(), slug, &user.id, id).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }
}
