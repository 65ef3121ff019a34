//! Keystone's `TokenFormatter`: payload packing plus Fernet encryption.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::crypto::{self, FernetKey, HEADER_LEN};
use crate::error::TokenError;
use crate::payload::{Codec, DecodedToken, TokenPayload};

/// Keystone's default `[auth] methods`, whose order defines the bits of the
/// methods bitmask (1, 2, 4, 8, 16, 32).
pub const DEFAULT_AUTH_METHODS: [&str; 6] = [
    "external",
    "password",
    "token",
    "oauth1",
    "mapped",
    "application_credential",
];

/// Keystone's default `[DEFAULT] max_token_size`.
pub const DEFAULT_MAX_TOKEN_SIZE: usize = 255;

/// Keystone's default `[identity] default_domain_id`.
pub const DEFAULT_DOMAIN_ID: &str = "default";

/// [`DEFAULT_AUTH_METHODS`] as owned strings, for [`TokenFormatter::new`].
pub fn default_auth_methods() -> Vec<String> {
    DEFAULT_AUTH_METHODS
        .iter()
        .map(|m| (*m).to_owned())
        .collect()
}

/// Encodes payloads into Fernet tokens with the primary key and decodes
/// tokens with any active key. Cheap to share: it is `Send + Sync` and holds
/// no lock; build a new one after the key repository changes.
#[derive(Clone)]
pub struct TokenFormatter {
    /// Primary first, as [`crate::KeyRepository::load`] orders them.
    keys: Vec<FernetKey>,
    codec: Codec,
    max_token_size: usize,
}

impl fmt::Debug for TokenFormatter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenFormatter")
            .field("keys", &self.keys.len())
            .field("methods", &self.codec.methods)
            .field("default_domain_id", &self.codec.default_domain_id)
            .field("max_token_size", &self.max_token_size)
            .finish()
    }
}

impl TokenFormatter {
    /// A formatter over `keys` (primary first, as
    /// [`crate::KeyRepository::load`] returns them; every key is tried when
    /// decoding) and the authentication method list whose order defines the
    /// methods bitmask (Keystone's `[auth] methods`; see
    /// [`default_auth_methods`]).
    ///
    /// Uses [`DEFAULT_DOMAIN_ID`] and [`DEFAULT_MAX_TOKEN_SIZE`]; change them
    /// with [`Self::with_default_domain_id`] and [`Self::with_max_token_size`].
    pub fn new<S: AsRef<str>>(keys: &[S], methods: Vec<String>) -> Result<Self, TokenError> {
        if keys.is_empty() {
            return Err(TokenError::Config("no fernet keys".into()));
        }
        let keys = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                FernetKey::parse(k.as_ref()).ok_or_else(|| {
                    TokenError::Config(format!("fernet key at position {i} is malformed"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if methods.len() > 64 {
            return Err(TokenError::Config(
                "at most 64 authentication methods are supported".into(),
            ));
        }
        for (i, m) in methods.iter().enumerate() {
            if methods[..i].contains(m) {
                return Err(TokenError::Config(format!(
                    "authentication method {m:?} is listed twice"
                )));
            }
        }
        Ok(Self {
            keys,
            codec: Codec {
                methods,
                default_domain_id: DEFAULT_DOMAIN_ID.to_owned(),
            },
            max_token_size: DEFAULT_MAX_TOKEN_SIZE,
        })
    }

    /// Set the default domain id (Keystone's `[identity] default_domain_id`),
    /// the one non-UUID domain id a domain-scoped token can carry.
    pub fn with_default_domain_id(mut self, id: impl Into<String>) -> Self {
        self.codec.default_domain_id = id.into();
        self
    }

    /// Set the maximum token length in characters (Keystone's
    /// `[DEFAULT] max_token_size`). Longer tokens are refused by
    /// [`Self::decode`], and [`Self::encode`] refuses to make them.
    pub fn with_max_token_size(mut self, max: usize) -> Self {
        self.max_token_size = max;
        self
    }

    /// The configured authentication method list.
    pub fn methods(&self) -> &[String] {
        &self.codec.methods
    }

    /// Encode `payload` into a token stamped with the current time.
    pub fn encode(&self, payload: &TokenPayload) -> Result<String, TokenError> {
        self.encode_at(payload, unix_now())
    }

    /// Encode `payload` into a token whose Fernet timestamp (its
    /// `issued_at`) is `issued_at` Unix seconds.
    pub fn encode_at(&self, payload: &TokenPayload, issued_at: u64) -> Result<String, TokenError> {
        let mut buf = Vec::with_capacity(256);
        buf.resize(HEADER_LEN, 0);
        self.codec.encode(payload, &mut buf)?;
        let plaintext_len = buf.len() - HEADER_LEN;
        let raw_len = HEADER_LEN + (plaintext_len / 16 + 1) * 16 + 32;
        let len = (raw_len * 4).div_ceil(3);
        if len > self.max_token_size {
            return Err(TokenError::TooLong {
                len,
                max: self.max_token_size,
            });
        }
        let mut iv = [0u8; 16];
        crypto::os_random(&mut iv).map_err(|_| TokenError::Rng)?;
        let token = crypto::seal(&self.keys[0], issued_at, &iv, buf);
        debug_assert_eq!(token.len(), len);
        Ok(token)
    }

    /// Decode and authenticate a token (with or without its base64 padding),
    /// checking it against the current time only for Fernet's 60-second
    /// clock-skew rule. Expiry is not checked here: see
    /// [`DecodedToken::is_expired`].
    pub fn decode(&self, token: &str) -> Result<DecodedToken, TokenError> {
        self.decode_at(token, unix_now())
    }

    /// [`Self::decode`] with `now` (Unix seconds) as the current time.
    pub fn decode_at(&self, token: &str, now: u64) -> Result<DecodedToken, TokenError> {
        let result = self.decode_inner(token, now);
        if let Err(e) = &result {
            tracing::debug!(error = %e, "fernet token rejected");
        }
        result
    }

    fn decode_inner(&self, token: &str, now: u64) -> Result<DecodedToken, TokenError> {
        if token.len() > self.max_token_size {
            return Err(TokenError::Invalid("token too long"));
        }
        let mut data = crypto::decode_token(token)
            .ok_or(TokenError::Invalid("token is not urlsafe base64"))?;
        let (issued_at, plaintext) =
            crypto::open(&self.keys, &mut data, now).map_err(TokenError::Invalid)?;
        let payload = self.codec.decode(plaintext).inspect_err(|e| {
            if matches!(e, TokenError::Invalid(_)) {
                // The HMAC matched, so one of our keys made this payload.
                tracing::warn!(error = %e, "authenticated fernet token carries a malformed payload");
            }
        })?;
        Ok(DecodedToken { payload, issued_at })
    }

    /// The MessagePack payload bytes [`Self::encode`] encrypts: Keystone's
    /// `msgpack.packb((version,) + payload)`.
    pub fn pack_payload(&self, payload: &TokenPayload) -> Result<Vec<u8>, TokenError> {
        let mut buf = Vec::with_capacity(160);
        self.codec.encode(payload, &mut buf)?;
        Ok(buf)
    }

    /// Unpack decrypted payload bytes, as [`Self::decode`] does after
    /// decryption.
    pub fn unpack_payload(&self, bytes: &[u8]) -> Result<TokenPayload, TokenError> {
        self.codec.decode(bytes)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
