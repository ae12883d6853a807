//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): the HMAC-SHA256, keyed
//! by the secret's bytes, of `<webhook-id>.<webhook-timestamp>.<body>`, sent base64-encoded as
//! `webhook-signature: v1,<signature>`. Any Standard Webhooks library verifies it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::WebhookSecret;

/// The `webhook-signature` header of a message.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.key()).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-id` of an outbox row: the same for every attempt.
pub fn message_id(row_id: &str) -> String {
    format!("msg_{}", row_id.replace('-', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (and of its reference libraries'
    /// tests): this secret, id, timestamp and body sign to this value.
    #[test]
    fn the_specifications_example() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &secret,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn ids_are_stable_and_prefixed() {
        let row = "0190f3a2-7b1c-7d4e-8f00-123456789abc";
        assert_eq!(message_id(row), "msg_0190f3a27b1c7d4e8f00123456789abc");
        assert_eq!(message_id(row), message_id(row));
    }
}
