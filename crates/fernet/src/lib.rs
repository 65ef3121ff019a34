//! Keystone-compatible Fernet tokens.
//!
//! Tokens are byte-for-byte those of OpenStack Keystone's Fernet provider:
//! the MessagePack payload layouts of `keystone/token/token_formatters.py`
//! (unscoped, domain, project, trust, system and application-credential
//! payloads), encrypted with the Fernet primary key and stripped of their
//! base64 padding; and the key repository of `keystone/common/fernet_utils.py`
//! (staged key `0`, highest index primary, rotation with purge).
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use ferrostack_fernet::{
//!     KeyRepository, Scope, TokenFormatter, TokenPayload, default_auth_methods,
//!     expires_at_from, random_audit_id,
//! };
//!
//! # let dir = std::env::temp_dir().join(format!("fernet-doc-{}", std::process::id()));
//! KeyRepository::setup(&dir)?;
//! let keys = KeyRepository::load(&dir)?;
//! let formatter = TokenFormatter::new(&keys, default_auth_methods())?;
//!
//! let now = SystemTime::now();
//! let payload = TokenPayload {
//!     user_id: "8a0a2e9e7e5b4b8e9c9a1f1d2c3b4a59".into(),
//!     methods: vec!["password".into()],
//!     scope: Scope::Project("b5e1e6a6c1c94b9c8e0f6a4c3d2e1f00".into()),
//!     expires_at: expires_at_from(now, Duration::from_secs(3600)),
//!     audit_ids: vec![random_audit_id()],
//! };
//! let token = formatter.encode(&payload)?;
//! let decoded = formatter.decode(&token)?;
//! assert_eq!(decoded.payload, payload);
//! assert!(!decoded.is_expired(now));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Deliberate differences from Keystone, all on inputs Keystone itself never
//! produces: only lowercase, undashed 32-hex UUIDs are packed as bytes
//! (Keystone also packs dashed or uppercase UUIDs and hands them back
//! changed); an unknown method name is an encode error instead of being
//! dropped; a methods bitmask with bits beyond the configured list is
//! rejected; and tokens longer than the maximum size are neither issued nor
//! accepted. Federated (4, 5, 6), OAuth1 (7) and OAuth2 (10) payloads are
//! authenticated but reported as [`TokenError::UnsupportedVersion`].

#![warn(missing_docs)]

mod crypto;
mod error;
mod formatter;
mod msgpack;
mod payload;
mod repository;

pub use error::{KeyRepositoryError, TokenError};
pub use formatter::{
    DEFAULT_AUTH_METHODS, DEFAULT_DOMAIN_ID, DEFAULT_MAX_TOKEN_SIZE, TokenFormatter,
    default_auth_methods,
};
pub use payload::{DecodedToken, Scope, TokenPayload, expires_at_from, random_audit_id};
pub use repository::{KeyRepository, Rotation, generate_key};
