//! The configuration file exactly as written: serde structs that reject unknown keys.
//! `config::load` turns them into the checked [`super::Config`].

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub env: Option<String>,
    pub cors_origins: Option<Vec<String>>,
    pub public_url: Option<String>,
    pub body_limit: Option<String>,
    pub max_limit: Option<u32>,
    pub static_dir: Option<String>,
    pub header_timeout: Option<String>,
    pub idle_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    pub url: Option<String>,
    pub statement_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub jwt_secret: Option<String>,
    pub jwt_expiry: Option<String>,
    pub refresh_expiry: Option<String>,
    pub cookies: Option<bool>,
    pub verify_expiry: Option<String>,
    pub reset_expiry: Option<String>,
    pub password: Option<RawPassword>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPassword {
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub reject_common: Option<bool>,
    pub require_uppercase: Option<bool>,
    pub require_lowercase: Option<bool>,
    pub require_numbers: Option<bool>,
    pub require_symbols: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    pub transport: Option<String>,
    pub dir: Option<String>,
    pub url: Option<String>,
    pub from: Option<String>,
    pub verify_url: Option<String>,
    pub reset_url: Option<String>,
    pub templates: Option<RawEmailTemplates>,
}

/// `[email.templates.verify]` and `[email.templates.reset]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmailTemplates {
    pub verify: Option<RawEmailTemplate>,
    pub reset: Option<RawEmailTemplate>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmailTemplate {
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthCollection {
    pub login_field: Option<String>,
    pub verify_email: Option<bool>,
    pub require_verified: Option<bool>,
    pub max_login_attempts: Option<u32>,
    pub lock_time: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccess {
    pub read: Option<String>,
    pub create: Option<String>,
    pub update: Option<String>,
    pub delete: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFieldAccess {
    pub read: Option<String>,
    pub create: Option<String>,
    pub update: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    #[serde(rename = "type")]
    pub kind: String,
    pub required: Option<bool>,
    pub unique: Option<bool>,
    pub hidden: Option<bool>,
    pub default: Option<toml::Value>,
    pub options: Option<Vec<String>>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub pattern: Option<String>,
    pub index: Option<bool>,
    pub label: Option<String>,
    pub description: Option<String>,
    pub access: Option<RawFieldAccess>,
    pub to: Option<String>,
    pub on_delete: Option<String>,
}
