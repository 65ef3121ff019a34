/// Errors from registering, loading and enforcing policies.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The rule evaluated to false (map to HTTP 403).
    #[error("{action} is disallowed by policy")]
    Forbidden {
        /// The action (rule name) that was enforced.
        action: String,
    },
    /// The action was never registered as a default (a programming error;
    /// never treated as allowed).
    #[error("policy {0} has not been registered")]
    NotRegistered(String),
    /// A check string (or the policy file holding it) is invalid. `rule`
    /// names the offending rule; it is `(policy file)` for errors about the
    /// file as a whole. Also used for a duplicate registration.
    #[error("policy rule {rule:?}: {message}")]
    Parse {
        /// The rule whose check string is invalid.
        rule: String,
        /// What is wrong with it.
        message: String,
    },
    /// The token's scope is not one of the rule's `scope_types` (map to 403).
    #[error("{action} requires a scope of {required:?}, request was made with {token_scope} scope")]
    InvalidScope {
        /// The action (rule name) that was enforced.
        action: String,
        /// The rule's `scope_types`.
        required: Vec<String>,
        /// `system`, `domain`, `project` or `unscoped`.
        token_scope: String,
    },
    /// The policy file could not be read (the message includes the path).
    #[error("cannot read policy file: {0}")]
    Io(#[from] std::io::Error),
}

impl PolicyError {
    /// Whether the error means "deny the request" (403) rather than a
    /// server-side problem.
    pub fn is_denial(&self) -> bool {
        matches!(
            self,
            PolicyError::Forbidden { .. } | PolicyError::InvalidScope { .. }
        )
    }
}
