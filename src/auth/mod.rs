//! Who is calling: the principal every operation is authorized against.

/// The caller of an operation.
#[derive(Debug, Clone)]
pub enum Principal {
    /// No credentials.
    Anonymous,
    /// Lucent itself (the CLI bootstrapping an account): access predicates do not apply,
    /// validation does.
    System,
}
