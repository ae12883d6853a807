//! Lucent's integration tests: one binary, a real server per test (free port, temp folder, own
//! database), spoken to over HTTP.

mod access;
mod api_keys;
mod auth;
mod browser;
mod cli;
mod collections;
mod email;
mod helpers;
mod limits;
mod lists;
mod migrations;
mod static_site;
