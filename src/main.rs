//! The `lucent` binary: parse arguments, set up logging, run a command, exit with its code.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    return_large_buffers_to_the_system();
    // Log lines are written by a background thread, so a request never waits on stderr; the
    // guard flushes what is queued when `main` returns.
    let (writer, _flush_on_exit) = tracing_appender::non_blocking(std::io::stderr());
    let filter = EnvFilter::try_from_env("LUCENT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match std::env::var("LUCENT_LOG_FORMAT").as_deref() {
        // One JSON object per line, with the fields of the line's spans (the request id).
        Ok("json") => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
        Ok("text") | Ok("") | Err(_) => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        Ok(other) => {
            logs.with_ansi(false).init();
            tracing::warn!("LUCENT_LOG_FORMAT={other:?} is not \"json\" or \"text\": writing text");
        }
    }
    lucent::cli::run(lucent::cli::Cli::parse()).await
}

/// Each argon2 hash allocates a 19 MiB buffer. glibc's default lets such blocks, once freed, raise
/// its mmap threshold and stay in per-thread arenas: measured 248 MiB RSS after a 5 s login flood.
/// A fixed threshold keeps every block of 1 MiB or more on its own mapping, returned when freed
/// (RSS after the same flood: see docs/performance-costs.md).
fn return_large_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called once, before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}
