//! `lucent serve` on an existing project folder, with its log lines (stderr) read as they come:
//! for tests of what `helpers::Server` does not expose (a project `init` wrote, the log format).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A running `lucent serve`, killed when dropped.
pub struct Serving {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    logs: Receiver<String>,
}

impl Serving {
    /// Serves `dir/lucent.toml` on a free port, with `env` added to a clean environment.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Serving {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lucent"));
        command
            .current_dir(dir)
            .args(["serve", "--port", "0"])
            .env("LUCENT_LOG", "warn")
            .env_remove("LUCENT_ENV")
            .env_remove("LUCENT_DATABASE_URL")
            .env_remove("LUCENT_LOG_FORMAT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let (addresses, address) = std::sync::mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = addresses.send(addr.to_string());
                }
            }
        });
        let (lines, logs) = std::sync::mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        // Killed by `Drop` even when it never starts listening.
        let mut serving = Serving {
            child,
            base: String::new(),
            logs,
        };
        serving.base = address
            .recv_timeout(Duration::from_secs(60))
            .expect("lucent serve did not start");
        serving
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The log lines written so far and until `until` holds for one of them (or 10 s pass).
    pub fn logs_until(&self, until: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.logs.recv_timeout(left) {
                Ok(line) => {
                    let done = until(&line);
                    lines.push(line);
                    if done {
                        return lines;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the awaited log line did not come; got:\n{}",
                        lines.join("\n")
                    )
                }
            }
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
