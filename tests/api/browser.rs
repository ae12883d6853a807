//! The username/password example (`examples/username-password/`) in a real browser: headless
//! Chromium driven through chromedriver (WebDriver, with fantoccini). Sign up, profile, sign out,
//! sign in again with the username in another case, the errors a person sees on the form pages,
//! and a cross-origin form post refused by the CSRF origin check.
//!
//! Screenshots of every step go to `target/browser-artifacts/`. Without `chromium` and
//! `chromedriver` on the PATH the test prints a skip line, unless `LUCENT_TEST_BROWSER` is set
//! (as `.ci/run` does), in which case it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use poem::listener::{Acceptor, Listener, TcpListener};
use serde_json::json;

use crate::helpers::{Backend, Server};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/username-password");
const PASSWORD: &str = "correct horse battery staple";
/// Chromium's flags that work on a machine without a display, GPU or outside network, as root.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=900,700",
];

type Outcome = Result<(), String>;

/// Fails the flow (not the process) so that the browser is always shut down cleanly.
macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err(format!($($message)+));
        }
    };
}

#[tokio::test]
async fn username_password_example_in_a_real_browser() {
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    let server = Server::start_with(&Backend::Sqlite, &read_config(), &site_files(), &[]).await;
    let (attacker, attacker_task) = attacker_site(&server.base).await;
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    let outcome = flow(&mut browser, &server.base, &attacker).await;
    if outcome.is_err() {
        browser.screenshot("failure").await.ok();
    }
    browser.stop().await;
    attacker_task.abort();
    if let Err(problem) = outcome {
        panic!("{problem}\n(screenshots in {})", artifacts_dir().display());
    }
}

async fn flow(browser: &mut Browser, base: &str, attacker: &str) -> Outcome {
    // A weak password: the sign-up page says so, the person stays on it.
    browser.goto(&format!("{base}/signup.html")).await?;
    browser.screenshot("signup-form").await?;
    browser.submit_form("JaneSmith8000", "short").await?;
    browser.wait_for_path("/signup.html").await?;
    let error = browser.wait_for_text("#error", |t| !t.is_empty()).await?;
    ensure!(
        error.contains("at least 12 characters"),
        "weak password: {error:?}"
    );
    browser.screenshot("signup-weak-password").await?;

    // Sign up → the profile page shows the username and id.
    browser.submit_form("JaneSmith8000", PASSWORD).await?;
    browser.wait_for_path("/profile.html").await?;
    browser
        .wait_for_text("#username", |t| t == "JaneSmith8000")
        .await?;
    let id = browser.wait_for_text("#user-id", |t| t != "…").await?;
    ensure!(id.len() > 10, "user id {id:?}");
    browser.screenshot("profile-after-signup").await?;

    // A form post from another origin, sent with the cookie (same site, other port): refused.
    browser.goto(attacker).await?;
    browser.screenshot("attacker-page").await?;
    browser.click("button").await?;
    let answer = browser
        .wait_for_text("body", |t| t.contains("error"))
        .await?;
    ensure!(
        answer.contains("csrf_failed"),
        "cross-origin post: {answer}"
    );
    browser.screenshot("attacker-post-refused").await?;
    browser.goto(&format!("{base}/profile.html")).await?;
    browser
        .wait_for_text("#username", |t| t == "JaneSmith8000")
        .await?;
    browser.screenshot("profile-still-signed-in").await?;

    // Sign out → the login page; the profile now sends the person to it.
    browser.click("form button").await?;
    browser.wait_for_path("/login.html").await?;
    browser.screenshot("signed-out").await?;
    browser.goto(&format!("{base}/profile.html")).await?;
    browser.wait_for_path("/login.html").await?;
    browser.screenshot("profile-redirects-to-login").await?;

    // The same username in another case is taken.
    browser.goto(&format!("{base}/signup.html")).await?;
    browser.submit_form("janesmith8000", PASSWORD).await?;
    browser.wait_for_path("/signup.html").await?;
    let error = browser.wait_for_text("#error", |t| !t.is_empty()).await?;
    ensure!(error.contains("taken"), "taken username: {error:?}");
    browser.screenshot("signup-username-taken").await?;

    // A wrong password: the login page says so.
    browser.goto(&format!("{base}/login.html")).await?;
    browser
        .submit_form("JaneSmith8000", "not the password at all")
        .await?;
    browser.wait_for_path("/login.html").await?;
    let error = browser.wait_for_text("#error", |t| !t.is_empty()).await?;
    ensure!(error.contains("Incorrect"), "wrong password: {error:?}");
    browser.screenshot("login-wrong-password").await?;

    // Sign in with the username in another case → the profile of the same account.
    browser.submit_form("JANESMITH8000", PASSWORD).await?;
    browser.wait_for_path("/profile.html").await?;
    browser
        .wait_for_text("#username", |t| t == "JaneSmith8000")
        .await?;
    let again = browser.wait_for_text("#user-id", |t| t != "…").await?;
    ensure!(again == id, "signed in as {again}, signed up as {id}");
    browser.screenshot("profile-after-login").await?;
    Ok(())
}

/// `Some((chromium, chromedriver))`, or `None` after a skip line when they are missing and
/// `LUCENT_TEST_BROWSER` is unset.
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| on_path(name));
    let chromedriver = on_path("chromedriver");
    let required = std::env::var_os("LUCENT_TEST_BROWSER").is_some_and(|v| !v.is_empty());
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Some((chromium, chromedriver)),
        (chromium, chromedriver) => {
            let missing = [
                ("chromium", chromium.is_none()),
                ("chromedriver", chromedriver.is_none()),
            ]
            .iter()
            .filter(|(_, missing)| *missing)
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(" and ");
            assert!(
                !required,
                "LUCENT_TEST_BROWSER is set but {missing} not found on the PATH \
                 (apt-get install chromium chromium-driver)"
            );
            // Straight to stderr: the test harness swallows eprintln! of a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "browser test skipped: {missing} not found (apt-get install chromium \
                 chromium-driver; set LUCENT_TEST_BROWSER=1 to make this a failure)"
            );
            None
        }
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// The example's `lucent.toml`, as a newcomer runs it (the harness picks the port).
fn read_config() -> String {
    std::fs::read_to_string(Path::new(EXAMPLE).join("lucent.toml")).expect("example config")
}

/// Every file of the example's site and migrations, to be written beside the config in the
/// test's folder.
fn site_files() -> Vec<(&'static str, &'static str)> {
    let mut files = Vec::new();
    for folder in ["site", "migrations"] {
        let dir = Path::new(EXAMPLE).join(folder);
        for entry in std::fs::read_dir(&dir).expect("example folder") {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            let contents = std::fs::read_to_string(&path).unwrap();
            // Leaked once per test run: the harness takes borrowed strings.
            files.push((
                &*Box::leak(format!("{folder}/{name}").into_boxed_str()),
                &*Box::leak(contents.into_boxed_str()),
            ));
        }
    }
    files
}

/// A page on another origin (same host, another port) whose form posts to Lucent's logout, as a
/// cross-site request forgery would. Returns its URL and the task serving it.
async fn attacker_site(lucent: &str) -> (String, tokio::task::JoinHandle<()>) {
    let page = format!(
        r#"<!doctype html><title>Free prizes</title>
<form method="post" action="{lucent}/api/members/logout">
  <input type="hidden" name="redirect" value="/login.html">
  <button type="submit">Claim your prize</button>
</form>"#
    );
    let endpoint = poem::endpoint::make_sync(move |_| poem::web::Html(page.clone()));
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind the attacker's site");
    let addr = acceptor.local_addr()[0]
        .as_socket_addr()
        .copied()
        .expect("a TCP address");
    let task = tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor)
            .run(endpoint)
            .await;
    });
    (format!("http://{addr}/"), task)
}

fn artifacts_dir() -> PathBuf {
    // CARGO_BIN_EXE_lucent is <target>/<profile>/lucent, wherever CARGO_TARGET_DIR points.
    Path::new(env!("CARGO_BIN_EXE_lucent"))
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("browser-artifacts")
}

/// chromedriver (in its own process group, with the Chromium it starts) and a WebDriver session.
struct Browser {
    driver: Child,
    client: Option<Client>,
    profile: tempfile::TempDir,
    step: usize,
}

impl Browser {
    async fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = std::os::unix::process::CommandExt::process_group(
            Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            0,
        )
        .spawn()
        .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("browser profile dir");
        let mut browser = Browser {
            driver,
            client: None,
            profile,
            step: 0,
        };
        let dir = artifacts_dir();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("artifacts dir");

        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!(
            "--user-data-dir={}",
            browser.profile.path().display()
        ));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let attempt = ClientBuilder::new(connector.clone())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await;
            match attempt {
                Ok(client) => {
                    browser.client = Some(client);
                    return browser;
                }
                Err(e) if started.elapsed() > Duration::from_secs(30) => {
                    panic!("no WebDriver session from chromedriver: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    async fn goto(&self, url: &str) -> Outcome {
        self.client()
            .goto(url)
            .await
            .map_err(|e| format!("goto {url}: {e}"))
    }

    async fn click(&self, css: &str) -> Outcome {
        let element = self.client().find(Locator::Css(css)).await;
        let element = element.map_err(|e| format!("find {css}: {e}"))?;
        element
            .click()
            .await
            .map_err(|e| format!("click {css}: {e}"))
    }

    /// Fills the username and password of the page's form and submits it with its button.
    async fn submit_form(&self, username: &str, password: &str) -> Outcome {
        for (css, value) in [("#username", username), ("#password", password)] {
            let input = self.client().find(Locator::Css(css)).await;
            let input = input.map_err(|e| format!("find {css}: {e}"))?;
            input.clear().await.map_err(|e| e.to_string())?;
            input.send_keys(value).await.map_err(|e| e.to_string())?;
        }
        self.click("form button[type=submit]").await
    }

    async fn wait_for_path(&self, path: &str) -> Outcome {
        let mut seen = String::new();
        for _ in 0..100 {
            let url = self
                .client()
                .current_url()
                .await
                .map_err(|e| e.to_string())?;
            if url.path() == path {
                return Ok(());
            }
            seen = url.to_string();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("expected to be on {path}, still on {seen}"))
    }

    /// The text of the first element matching `css` once `ready` accepts it (10 s at most).
    async fn wait_for_text(
        &self,
        css: &str,
        ready: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let mut seen = String::new();
        for _ in 0..100 {
            if let Ok(element) = self.client().find(Locator::Css(css)).await {
                seen = element.text().await.unwrap_or_default();
                if ready(&seen) {
                    return Ok(seen);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("{css} never became ready; last text {seen:?}"))
    }

    async fn screenshot(&mut self, name: &str) -> Outcome {
        self.step += 1;
        let png = self
            .client()
            .screenshot()
            .await
            .map_err(|e| e.to_string())?;
        let path = artifacts_dir().join(format!("{:02}-{name}.png", self.step));
        std::fs::write(&path, png).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Ends the session (which quits Chromium), then chromedriver.
    async fn stop(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and any Chromium process a failed session left behind.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}
