//! Lucent: a config-driven headless CMS backend. Collections declared in TOML become tables and
//! REST routes; the HTTP layer is a thin adapter over the library API in [`app::Lucent`].

pub mod access;
pub mod accounts;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod http;
pub mod records;
pub mod rules;
pub mod schema;

pub use app::Lucent;
