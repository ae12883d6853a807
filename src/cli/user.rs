//! `lucent user create`: an account made without HTTP, to bootstrap the first admin. Access
//! predicates do not apply; validation and the password policy do.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{Map, Value as Json};

use crate::app::Lucent;
use crate::auth::Principal;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account.
    Create {
        #[arg(long, default_value = "lucent.toml")]
        config: PathBuf,
        /// The auth collection.
        #[arg(long)]
        collection: String,
        /// The email (sets the `email` field).
        #[arg(long)]
        email: Option<String>,
        /// The username (sets the `username` field).
        #[arg(long)]
        username: Option<String>,
        /// Read the password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
        /// Other fields, `field=value`; a value that parses as JSON is taken as JSON.
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        set: Vec<String>,
    },
}

pub async fn run(command: UserCommand) -> ExitCode {
    let UserCommand::Create {
        config,
        collection,
        email,
        username,
        password_stdin,
        set,
    } = command;
    let mut body = Map::new();
    if let Some(email) = email {
        body.insert("email".into(), Json::String(email));
    }
    if let Some(username) = username {
        body.insert("username".into(), Json::String(username));
    }
    for assignment in set {
        let Some((field, value)) = assignment.split_once('=') else {
            eprintln!("lucent: --set expects FIELD=VALUE, got `{assignment}`");
            return ExitCode::FAILURE;
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| Json::String(value.to_string()));
        body.insert(field.to_string(), value);
    }
    if password_stdin {
        let mut password = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut password) {
            eprintln!("lucent: cannot read the password: {e}");
            return ExitCode::FAILURE;
        }
        let password = password.lines().next().unwrap_or_default().to_string();
        body.insert("password".into(), Json::String(password));
    }
    let Some(config) = super::load(&config) else {
        return ExitCode::FAILURE;
    };
    let lucent = match Lucent::from_config(config).await {
        Ok(lucent) => lucent,
        Err(e) => {
            eprintln!("lucent: {e}");
            return ExitCode::FAILURE;
        }
    };
    let is_auth = lucent
        .records
        .schema()
        .get(&collection)
        .is_some_and(|c| c.auth.is_some());
    if !is_auth {
        eprintln!("lucent: `{collection}` is not an auth collection");
        return ExitCode::FAILURE;
    }
    let result = lucent
        .records
        .create(&Principal::System, &collection, &Json::Object(body))
        .await;
    lucent.database().clone().close().await;
    match result {
        Ok(doc) => {
            println!(
                "created {collection} {}",
                doc.get("id").and_then(Json::as_str).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(crate::records::Error::Validation(details)) => {
            for detail in details {
                eprintln!("{}: {}", detail.field, detail.message);
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("lucent: {e}");
            ExitCode::FAILURE
        }
    }
}
