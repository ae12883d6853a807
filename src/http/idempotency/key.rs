//! The pure parts of idempotent requests: the `Idempotency-Key` header checked at the edge, the
//! row a key has per caller, and a request's fingerprint.

use sha2::{Digest, Sha256};

/// The longest key, in characters.
pub const MAX_KEY: usize = 255;

/// The JSON Schema pattern of a header value the server takes (the OpenAPI document states it):
/// printable ASCII, not beginning with a space. Spaces at its end may be sent: HTTP drops them
/// before the value is read, so they are not part of the key.
pub const KEY_PATTERN: &str = "^[!-~][ -~]*$";

/// The key of an `Idempotency-Key` header value: 1–255 printable ASCII characters (U+0020 to
/// U+007E), taken verbatim. The draft's quoted form (`"abc"`) is simply a key with quotes: a
/// client that always sends its key the same way always finds it again.
///
/// # Errors
/// What is wrong with the value, for a 400.
pub fn parse(value: &[u8]) -> Result<&str, &'static str> {
    if value.is_empty() {
        return Err("Idempotency-Key must not be empty");
    }
    if value.len() > MAX_KEY {
        return Err("Idempotency-Key must be at most 255 characters");
    }
    if !value.iter().all(|b| (b' '..=b'~').contains(b)) {
        return Err("Idempotency-Key must be printable ASCII characters");
    }
    if value.starts_with(b" ") || value.ends_with(b" ") {
        return Err("Idempotency-Key must not begin or end with a space");
    }
    std::str::from_utf8(value).map_err(|_| "Idempotency-Key must be printable ASCII characters")
}

/// The row of `key` for `caller` (see `Principal::caller_id`): the hex SHA-256 of both, so one
/// caller's key never names another caller's row, and the key itself is not stored.
pub fn row_id(caller: &str, key: &str) -> String {
    let mut hash = Sha256::new();
    for part in [caller.as_bytes(), key.as_bytes()] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hex::encode(hash.finalize())
}

/// What makes two requests the same request: the hex SHA-256 of the method, the path with its
/// query string (as sent) and the body's bytes. Each part is length-prefixed, so no two
/// different requests run together into the same bytes.
pub fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    for part in [method.as_bytes(), path_and_query.as_bytes(), body] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hex::encode(hash.finalize())
}

#[cfg(test)]
mod tests {
    use super::{KEY_PATTERN, fingerprint, parse, row_id};

    #[test]
    fn keys_are_one_to_255_printable_ascii_characters() {
        let longest = "k".repeat(255);
        let too_long = "k".repeat(256);
        for (value, expected) in [
            ("a", Ok("a")),
            (
                "8e03978e-40d5-43e8-bc93-6894a57f9324",
                Ok("8e03978e-40d5-43e8-bc93-6894a57f9324"),
            ),
            ("\"quoted\"", Ok("\"quoted\"")),
            ("with inner space", Ok("with inner space")),
            ("!~", Ok("!~")),
            (longest.as_str(), Ok(longest.as_str())),
            ("", Err("Idempotency-Key must not be empty")),
            (
                too_long.as_str(),
                Err("Idempotency-Key must be at most 255 characters"),
            ),
            (
                "tab\there",
                Err("Idempotency-Key must be printable ASCII characters"),
            ),
            (
                "nul\0",
                Err("Idempotency-Key must be printable ASCII characters"),
            ),
            (
                "del\x7f",
                Err("Idempotency-Key must be printable ASCII characters"),
            ),
            (
                "café",
                Err("Idempotency-Key must be printable ASCII characters"),
            ),
            (
                " lead",
                Err("Idempotency-Key must not begin or end with a space"),
            ),
            (
                "trail ",
                Err("Idempotency-Key must not begin or end with a space"),
            ),
        ] {
            assert_eq!(parse(value.as_bytes()), expected, "{value:?}");
        }
    }

    #[test]
    fn the_documented_pattern_accepts_exactly_the_parsed_keys() {
        let pattern = regex::Regex::new(KEY_PATTERN).unwrap();
        for value in [
            "a", "a b", "!~", "\"q\"", "", " ", " a", "a ", "a  ", "a\tb", "é", "\x7f",
        ] {
            // What the server reads: HTTP drops spaces at a header value's end.
            let received = value.trim_end_matches(' ');
            assert_eq!(
                pattern.is_match(value),
                parse(received.as_bytes()).is_ok(),
                "{value:?}"
            );
        }
    }

    #[test]
    fn one_key_names_a_different_row_per_caller() {
        let ann = row_id("account\0users\0ann", "k1");
        assert_eq!(ann, row_id("account\0users\0ann", "k1"));
        assert_eq!(ann.len(), 64);
        assert_ne!(ann, row_id("account\0users\0bob", "k1"));
        assert_ne!(ann, row_id("key\0ann", "k1"));
        assert_ne!(ann, row_id("account\0users\0ann", "k2"));
        // The parts are length-prefixed: moving a character from one to the other changes it.
        assert_ne!(row_id("ab", "c"), row_id("a", "bc"));
    }

    #[test]
    fn the_fingerprint_covers_method_path_query_and_body() {
        let base = fingerprint("POST", "/api/posts", br#"{"title":"a"}"#);
        assert_eq!(base, fingerprint("POST", "/api/posts", br#"{"title":"a"}"#));
        for other in [
            fingerprint("PATCH", "/api/posts", br#"{"title":"a"}"#),
            fingerprint("POST", "/api/notes", br#"{"title":"a"}"#),
            fingerprint("POST", "/api/posts?x=1", br#"{"title":"a"}"#),
            fingerprint("POST", "/api/posts", br#"{"title":"b"}"#),
            // The same JSON, other bytes: a body is compared as sent.
            fingerprint("POST", "/api/posts", br#"{ "title":"a"}"#),
            fingerprint("POST", "/api/posts", b""),
            fingerprint("POST", "/api/posts{\"title\":\"a\"}", b""),
        ] {
            assert_ne!(base, other);
        }
    }
}
