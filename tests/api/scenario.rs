//! Integration tests as tables of steps (PocketBase's `ApiScenario`, in small): each [`Step`] is
//! one request and what its answer must be, and [`run`] plays them in order against a server.
//!
//! A step may save parts of an answer (`save("token", "/token")`) for later steps, which name them
//! as `{token}` in a path, a header, a body or an expected value: a string that is exactly
//! `{name}` becomes the saved JSON value, else `{name}` inside a string becomes its text. The
//! empty pointer `""` is the whole answer.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Server, assert_error};

/// Values saved by earlier steps, by name.
pub type Vars = HashMap<String, Value>;

type Check = Box<dyn Fn(&Value, &Vars)>;

enum Body {
    Json(Value),
    Form(Vec<(String, String)>),
}

/// One request and what its answer must be.
pub struct Step {
    method: Method,
    path: String,
    body: Option<Body>,
    headers: Vec<(String, String)>,
    /// A pause instead of a request.
    wait: Option<Duration>,
    status: u16,
    code: Option<&'static str>,
    equal: Vec<(String, Value)>,
    absent: Vec<String>,
    header_is: Vec<(String, String)>,
    header_starts: Vec<(String, String)>,
    header_has: Vec<(String, String)>,
    header_lacks: Vec<(String, String)>,
    checks: Vec<Check>,
    save: Vec<(String, String)>,
    save_with: Vec<(String, Saver)>,
    because: &'static str,
}

type Saver = Box<dyn Fn(&Value) -> Value>;

impl Step {
    fn new(method: Method, path: &str, body: Option<Body>) -> Self {
        Self {
            method,
            path: path.to_string(),
            body,
            headers: Vec::new(),
            wait: None,
            status: 200,
            code: None,
            equal: Vec::new(),
            absent: Vec::new(),
            header_is: Vec::new(),
            header_starts: Vec::new(),
            header_has: Vec::new(),
            header_lacks: Vec::new(),
            checks: Vec::new(),
            save: Vec::new(),
            save_with: Vec::new(),
            because: "",
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new(Method::GET, path, None)
    }

    pub fn post(path: &str, body: Value) -> Self {
        Self::new(Method::POST, path, Some(Body::Json(body)))
    }

    /// A POST without a body.
    pub fn post_empty(path: &str) -> Self {
        Self::new(Method::POST, path, None)
    }

    /// An HTML form post (`application/x-www-form-urlencoded`).
    pub fn form(path: &str, fields: &[(&str, &str)]) -> Self {
        let fields = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::new(Method::POST, path, Some(Body::Form(fields)))
    }

    pub fn patch(path: &str, body: Value) -> Self {
        Self::new(Method::PATCH, path, Some(Body::Json(body)))
    }

    pub fn delete(path: &str) -> Self {
        Self::new(Method::DELETE, path, None)
    }

    /// Waits instead of sending a request.
    pub fn wait(duration: Duration) -> Self {
        let mut step = Self::get("");
        step.wait = Some(duration);
        step
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The status the answer must have (200 unless said).
    pub fn expect(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// An error envelope with this status and code.
    pub fn error(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = Some(code);
        self
    }

    /// The value at `pointer` must equal `value`.
    pub fn json(mut self, pointer: &str, value: Value) -> Self {
        self.equal.push((pointer.to_string(), value));
        self
    }

    /// Nothing may be at `pointer`.
    pub fn absent(mut self, pointer: &str) -> Self {
        self.absent.push(pointer.to_string());
        self
    }

    /// Header `name` must be exactly `value` (its first value).
    pub fn header_is(mut self, name: &str, value: &str) -> Self {
        self.header_is.push((name.to_string(), value.to_string()));
        self
    }

    /// Header `name` must start with `prefix` (its first value).
    pub fn header_starts(mut self, name: &str, prefix: &str) -> Self {
        self.header_starts
            .push((name.to_string(), prefix.to_string()));
        self
    }

    /// Header `name` must be present and contain `text`.
    pub fn header_has(mut self, name: &str, text: &str) -> Self {
        self.header_has.push((name.to_string(), text.to_string()));
        self
    }

    /// Header `name`, if present, must not contain `text`.
    pub fn header_lacks(mut self, name: &str, text: &str) -> Self {
        self.header_lacks.push((name.to_string(), text.to_string()));
        self
    }

    /// Any other assertion on the answer's body.
    pub fn check(mut self, check: impl Fn(&Value, &Vars) + 'static) -> Self {
        self.checks.push(Box::new(check));
        self
    }

    /// Keeps the value at `pointer` as `{name}`.
    pub fn save(mut self, name: &str, pointer: &str) -> Self {
        self.save.push((name.to_string(), pointer.to_string()));
        self
    }

    /// Keeps what `pick` finds in the answer as `{name}`.
    pub fn save_with(mut self, name: &str, pick: impl Fn(&Value) -> Value + 'static) -> Self {
        self.save_with.push((name.to_string(), Box::new(pick)));
        self
    }

    /// Why the step expects what it does (shown when it fails).
    pub fn because(mut self, why: &'static str) -> Self {
        self.because = why;
        self
    }
}

/// `text` with every `{name}` of `vars` replaced.
fn fill(text: &str, vars: &Vars) -> String {
    let mut text = text.to_string();
    for (name, value) in vars {
        let shown = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        text = text.replace(&format!("{{{name}}}"), &shown);
    }
    text
}

fn fill_json(value: &Value, vars: &Vars) -> Value {
    match value {
        Value::String(s) => {
            let whole = s
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .and_then(|name| vars.get(name));
            match whole {
                Some(saved) => saved.clone(),
                None => Value::String(fill(s, vars)),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| fill_json(v, vars)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill_json(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Plays `steps` in order with `client` (which keeps cookies or not, follows redirects or not);
/// returns what they saved.
pub async fn run(server: &Server, client: &reqwest::Client, steps: Vec<Step>) -> Vars {
    let mut vars = Vars::new();
    for (number, step) in steps.into_iter().enumerate() {
        if let Some(duration) = step.wait {
            tokio::time::sleep(duration).await;
            continue;
        }
        let path = fill(&step.path, &vars);
        let at = format!("step {number}: {} {path}", step.method);
        let mut request = client.request(step.method.clone(), server.url(&path));
        for (name, value) in &step.headers {
            request = request.header(name.as_str(), fill(value, &vars));
        }
        request = match &step.body {
            Some(Body::Json(body)) => request.json(&fill_json(body, &vars)),
            Some(Body::Form(fields)) => {
                let fields: Vec<(String, String)> = fields
                    .iter()
                    .map(|(k, v)| (k.clone(), fill(v, &vars)))
                    .collect();
                request.form(&fields)
            }
            None => request,
        };
        let response = request.send().await.expect("request");
        let status: StatusCode = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        // Every answer of the API is JSON, but a redirect's, which has no body.
        let body = if status.is_redirection() && text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{at}: not JSON ({status}): {text}"))
        };
        let why = step.because;
        assert_eq!(status.as_u16(), step.status, "{at}: {why} {body}");
        if let Some(code) = step.code {
            assert_error(&(status, body.clone()), step.status, code);
        }
        for (pointer, expected) in &step.equal {
            let expected = fill_json(expected, &vars);
            assert_eq!(
                body.pointer(pointer),
                Some(&expected),
                "{at}: {pointer} {why} {body}"
            );
        }
        for pointer in &step.absent {
            assert_eq!(body.pointer(pointer), None, "{at}: {pointer} {why} {body}");
        }
        for (name, value) in &step.header_is {
            let found = headers.get(name.as_str()).and_then(|v| v.to_str().ok());
            assert_eq!(
                found,
                Some(fill(value, &vars).as_str()),
                "{at}: {name} {why}"
            );
        }
        for (name, prefix) in &step.header_starts {
            let found = headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            assert!(
                found.starts_with(prefix.as_str()),
                "{at}: {name}: {found} {why}"
            );
        }
        for (name, text) in &step.header_has {
            let values: Vec<&str> = headers
                .get_all(name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            assert!(
                values.iter().any(|v| v.contains(text.as_str())),
                "{at}: {name} lacks {text:?}: {values:?} {why}"
            );
        }
        for (name, text) in &step.header_lacks {
            for value in headers.get_all(name.as_str()) {
                let value = value.to_str().unwrap_or_default();
                assert!(
                    !value.contains(text.as_str()),
                    "{at}: {name}: {value} {why}"
                );
            }
        }
        for check in &step.checks {
            check(&body, &vars);
        }
        for (name, pointer) in &step.save {
            let value = body
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{at}: nothing at {pointer} to save: {body}"));
            vars.insert(name.clone(), value.clone());
        }
        for (name, pick) in &step.save_with {
            vars.insert(name.clone(), pick(&body));
        }
    }
    vars
}

/// `{"email": email, "password": password}`.
pub fn credentials(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password})
}
