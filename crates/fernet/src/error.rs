//! Error types.
//!
//! No message produced here ever contains token text or key material: the
//! variants carry only static reasons, method names, sizes, indices and
//! file paths.

use std::io;
use std::path::PathBuf;

/// Errors from building, encoding or decoding tokens.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is not a valid token for this deployment: too long,
    /// malformed, issued too far in the future, not authenticated by any of
    /// the active keys, or carrying a malformed payload. The reason is a
    /// static description for logs; callers answer 401/404 either way.
    #[error("invalid token: {0}")]
    Invalid(&'static str),
    /// The token authenticated, but its payload version is one this crate
    /// does not decode (e.g. Keystone's federated or OAuth payloads).
    #[error("unsupported token payload version {0}")]
    UnsupportedVersion(u64),
    /// A payload given to the encoder cannot be represented the way
    /// Keystone represents it (e.g. a trust id that is not a UUID).
    #[error("cannot encode token payload: {0}")]
    InvalidPayload(&'static str),
    /// The payload names an authentication method that is not in the
    /// configured method list, so it has no bit in the methods bitmask.
    #[error("authentication method {0:?} is not in the configured method list")]
    UnknownMethod(String),
    /// The encoded token would exceed the configured maximum token size.
    #[error("token length {len} exceeds the maximum of {max} characters")]
    TooLong {
        /// Length of the token that would have been produced.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The formatter configuration (keys or method list) is unusable.
    #[error("invalid token formatter configuration: {0}")]
    Config(String),
    /// The operating system's random number generator failed.
    #[error("system random number generator failed")]
    Rng,
}

impl TokenError {
    /// True for errors that mean "this token is not valid here"
    /// ([`TokenError::Invalid`] and [`TokenError::UnsupportedVersion`]), as
    /// opposed to configuration or encoding errors.
    pub fn is_invalid_token(&self) -> bool {
        matches!(self, Self::Invalid(_) | Self::UnsupportedVersion(_))
    }
}

/// Errors from the on-disk key repository.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRepositoryError {
    /// A filesystem operation failed.
    #[error("key repository I/O error at {}: {source}", path.display())]
    Io {
        /// File or directory the operation was about.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: io::Error,
    },
    /// A key file does not hold a 32-byte urlsafe-base64 Fernet key.
    #[error("malformed fernet key in {}", path.display())]
    MalformedKey {
        /// The offending key file.
        path: PathBuf,
    },
    /// The repository holds no usable key.
    #[error("no fernet keys found in {}", path.display())]
    NoKeys {
        /// The repository directory.
        path: PathBuf,
    },
    /// Rotation needs a staged key `0`; run setup first.
    #[error("key repository {} is not initialized (no staged key 0)", path.display())]
    NotInitialized {
        /// The repository directory.
        path: PathBuf,
    },
    /// Another process changed the repository during the operation (a file
    /// this operation was about to create already exists).
    #[error("key repository changed concurrently: {} already exists", path.display())]
    Conflict {
        /// The file that unexpectedly existed.
        path: PathBuf,
    },
    /// `max_active_keys` must be at least 1 (as Keystone's option).
    #[error("max_active_keys must be at least 1")]
    InvalidMaxActiveKeys,
    /// The operating system's random number generator failed.
    #[error("system random number generator failed")]
    Rng,
}

impl KeyRepositoryError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
