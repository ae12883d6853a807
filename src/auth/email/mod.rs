//! The parts of Lucent's two mails (SPEC §5 "Email"): their tokens (`_lucent_email_tokens`),
//! their templates and the transports that deliver them. The flows that use them (send, verify,
//! reset, and the worker that prepares mails) are `accounts::email`'s.

pub mod templates;
pub mod tokens;
pub mod transport;

pub use templates::{Rendered, Values};
pub use tokens::Purpose;
pub use transport::{Mailer, SendError};
