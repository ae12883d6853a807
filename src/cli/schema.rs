//! `lucent schema [--collection-file]`: the JSON Schema of `lucent.toml` or of a collection file,
//! for editors that read a `#:schema` comment (Taplo, Even Better TOML). Copies are committed in
//! `docs/schema/`; a test keeps them equal to this output.

use std::io::Write;
use std::process::ExitCode;

use crate::config::editor_schema;

/// Prints the schema, pretty, with a final newline (the committed copies are this output).
pub fn run(collection_file: bool) -> ExitCode {
    let schema = if collection_file {
        editor_schema::collection_file()
    } else {
        editor_schema::lucent_toml()
    };
    // A closed pipe (`lucent schema | head`) is not an error worth a panic.
    let _ = writeln!(std::io::stdout().lock(), "{schema:#}");
    ExitCode::SUCCESS
}
