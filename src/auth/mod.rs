//! Credentials and the state behind them, below `records`: who is calling ([`Principal`]),
//! argon2id passwords and the password policy, secrets and digests, JWT access tokens, refresh
//! sessions, login lockout, API keys, and the email tokens, templates and transports. Each is a
//! primitive over Lucent's own tables (`db::system`); nothing here reads or writes a collection's
//! table, and no flow lives here: register, login, refresh and the rest are `accounts`'.

pub mod email;
pub mod jwt;
pub mod keys;
pub mod lockout;
pub mod password;
pub mod principal;
pub mod secret;
pub mod sessions;

pub use principal::{AuthUser, Credential, Principal};
