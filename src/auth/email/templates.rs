//! The subject, plain-text and HTML bodies of Lucent's two mails: defaults here, overridable per
//! key in `[email.templates.verify]` / `[email.templates.reset]`.
//!
//! Placeholders: `{url}` (the link with the token), `{email}` (the recipient), `{collection}` and
//! `{expires}` (how long the link works, e.g. "1h"). In the HTML body every value is
//! HTML-escaped.

use std::time::Duration;

use crate::config::EmailTemplate;

use super::tokens::Purpose;

// Lines stay under 76 characters: a longer one makes the part quoted-printable, which mail
// clients decode but which splits the link in the raw `.eml`.
const VERIFY_SUBJECT: &str = "Confirm your email address";
const VERIFY_TEXT: &str = "Hello,

please confirm your email address by opening this link:

{url}

The link works for {expires}.
If you did not sign up with {email}, ignore this message.
";
const VERIFY_HTML: &str = "<!doctype html>
<html><body>
<p>Hello,</p>
<p>please confirm your email address by opening this link:</p>
<p><a href=\"{url}\">Confirm {email}</a></p>
<p>The link works for {expires}.
If you did not sign up, ignore this message.</p>
</body></html>
";
const RESET_SUBJECT: &str = "Reset your password";
const RESET_TEXT: &str = "Hello,

someone asked to reset the password of your account.
To choose a new password, open this link:

{url}

The link works for {expires} and only once; a newer request replaces it.
If you did not ask, ignore this message: your password stays as it is.
";
const RESET_HTML: &str = "<!doctype html>
<html><body>
<p>Hello,</p>
<p>someone asked to reset the password of your account.
To choose a new password, open this link:</p>
<p><a href=\"{url}\">Choose a new password</a></p>
<p>The link works for {expires} and only once; a newer request replaces it.
If you did not ask, ignore this message: your password stays as it is.</p>
</body></html>
";

/// A mail ready for a transport.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The values put into a template.
#[derive(Debug)]
pub struct Values<'a> {
    pub url: &'a str,
    pub email: &'a str,
    pub collection: &'a str,
    pub expires: Duration,
}

/// Renders the mail for `purpose` from the configured overrides and the defaults.
pub fn render(purpose: Purpose, overrides: &EmailTemplate, values: &Values<'_>) -> Rendered {
    let (subject, text, html) = match purpose {
        Purpose::Verify => (VERIFY_SUBJECT, VERIFY_TEXT, VERIFY_HTML),
        Purpose::Reset => (RESET_SUBJECT, RESET_TEXT, RESET_HTML),
    };
    let expires = humantime::format_duration(values.expires).to_string();
    let pairs = [
        ("{url}", values.url),
        ("{email}", values.email),
        ("{collection}", values.collection),
        ("{expires}", expires.as_str()),
    ];
    let fill = |template: &str, escape: bool| {
        let mut out = template.to_string();
        for (placeholder, value) in pairs {
            let value = if escape {
                escape_html(value)
            } else {
                value.to_string()
            };
            out = out.replace(placeholder, &value);
        }
        out
    };
    Rendered {
        // A subject is one header line: no line breaks from a value may reach it.
        subject: fill(overrides.subject.as_deref().unwrap_or(subject), false)
            .replace(['\r', '\n'], " "),
        text: fill(overrides.text.as_deref().unwrap_or(text), false),
        html: fill(overrides.html.as_deref().unwrap_or(html), true),
    }
}

fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(url: &str) -> Values<'_> {
        Values {
            url,
            email: "jane@example.com",
            collection: "users",
            expires: Duration::from_secs(3600),
        }
    }

    #[test]
    fn defaults_carry_the_link_and_escape_html() {
        let url = "http://localhost/reset?token=abc&x=1";
        let mail = render(Purpose::Reset, &EmailTemplate::default(), &values(url));
        assert_eq!(mail.subject, "Reset your password");
        assert!(mail.text.contains(url) && mail.text.contains("1h"));
        assert!(
            mail.html
                .contains("http://localhost/reset?token=abc&amp;x=1")
        );
        assert!(!mail.html.contains("&x=1"));
    }

    #[test]
    fn overrides_replace_single_parts() {
        let overrides = EmailTemplate {
            subject: Some("Welcome to {collection}\r\nBcc: x@y".into()),
            text: Some("Go to {url}".into()),
            html: None,
        };
        let mail = render(Purpose::Verify, &overrides, &values("http://h/v?token=t"));
        assert_eq!(mail.subject, "Welcome to users  Bcc: x@y");
        assert_eq!(mail.text, "Go to http://h/v?token=t");
        assert!(mail.html.contains("confirm your email address"));
    }
}
