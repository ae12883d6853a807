//! Lucent's integration tests: one binary, a real server per test (free port, temp folder, own
//! database), spoken to over HTTP.

mod access;
mod api_keys;
mod auth;
mod auth_hardening;
mod batch;
mod browser;
mod check;
mod cli;
mod collections;
mod config_schema;
mod email;
mod expand;
mod fuzz;
mod helpers;
mod idempotency;
mod init;
mod limits;
mod lists;
mod migrations;
mod openapi;
mod operations;
mod realtime;
mod receiver;
mod relations;
mod scenario;
mod serving;
mod static_site;
mod system_tables;
mod transfer;
mod types;
mod webhooks;
