//! Token payloads and their MessagePack layout, field for field as
//! Keystone's `keystone/token/token_formatters.py` payload classes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::TokenError;
use crate::msgpack::{self, Malformed, Reader};

/// Keystone payload versions (the first element of the packed array).
mod version {
    pub const UNSCOPED: u64 = 0;
    pub const DOMAIN: u64 = 1;
    pub const PROJECT: u64 = 2;
    pub const TRUST: u64 = 3;
    pub const SYSTEM: u64 = 8;
    pub const APPLICATION_CREDENTIAL: u64 = 9;
}

/// What a token is scoped to; selects Keystone's payload class.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `UnscopedPayload` (version 0).
    Unscoped,
    /// `ProjectScopedPayload` (version 2); the project id.
    Project(String),
    /// `DomainScopedPayload` (version 1); the domain id, which must be a
    /// UUID in 32-hex form or the configured default domain id.
    Domain(String),
    /// `SystemScopedPayload` (version 8); the system scope, `"all"`.
    System(String),
    /// `TrustScopedPayload` (version 3). The trust id must be a UUID in
    /// 32-hex form.
    Trust {
        /// The trustor's project the token is scoped to.
        project_id: String,
        /// The trust in effect.
        trust_id: String,
    },
    /// `ApplicationCredentialScopedPayload` (version 9).
    ApplicationCredential {
        /// The project the application credential is bound to.
        project_id: String,
        /// The application credential in effect.
        app_cred_id: String,
    },
}

impl Scope {
    /// The Keystone payload version used for this scope.
    pub fn payload_version(&self) -> u8 {
        (match self {
            Self::Unscoped => version::UNSCOPED,
            Self::Domain(_) => version::DOMAIN,
            Self::Project(_) => version::PROJECT,
            Self::Trust { .. } => version::TRUST,
            Self::System(_) => version::SYSTEM,
            Self::ApplicationCredential { .. } => version::APPLICATION_CREDENTIAL,
        }) as u8
    }
}

/// The contents of a token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenPayload {
    /// The user the token was issued to. A UUID in 32-hex form (lowercase,
    /// no dashes) is packed as 16 bytes; any other id as a string.
    pub user_id: String,
    /// Authentication methods, packed as a bitmask over the formatter's
    /// method list. Decoding lists them in Keystone's order: highest bit
    /// (latest in the configured list) first.
    pub methods: Vec<String>,
    /// What the token is scoped to.
    pub scope: Scope,
    /// Expiry as a Unix timestamp in seconds, packed as a float64 exactly as
    /// given. Keystone packs whole seconds (its ISO expiry strings carry
    /// `.000000`); see [`expires_at_from`]. Keystone's `expires_at` output
    /// and its expiry check use this value truncated to the second.
    pub expires_at: f64,
    /// Audit ids: 22-character urlsafe base64 strings without padding
    /// (16 bytes), packed as raw bytes. See [`random_audit_id`].
    pub audit_ids: Vec<String>,
}

impl TokenPayload {
    /// Whether the token has expired at `now`, by Keystone's rule: valid
    /// while `now < expires_at` with `expires_at` truncated to whole seconds.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        let now = match now.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        now >= self.expires_at.floor()
    }
}

/// A decoded, authenticated token.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedToken {
    /// The payload.
    pub payload: TokenPayload,
    /// Creation time (Unix seconds) from the Fernet timestamp, which is
    /// where Keystone takes a token's `issued_at` from.
    pub issued_at: u64,
}

impl DecodedToken {
    /// Whether the token has expired at `now`; see [`TokenPayload::is_expired`].
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.payload.is_expired(now)
    }
}

/// A new random audit id, as Keystone's `random_urlsafe_str()`: the 16
/// bytes of a version-4 UUID in urlsafe base64 without padding
/// (22 characters).
pub fn random_audit_id() -> String {
    URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

/// A Keystone-style expiry: `now + ttl`, truncated to whole seconds as
/// Keystone's ISO timestamps are before they are packed.
pub fn expires_at_from(now: SystemTime, ttl: Duration) -> f64 {
    (now + ttl)
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as f64)
        .unwrap_or(0.0)
}

/// Whether `id` is a UUID in the form Keystone stores ids (32 lowercase hex
/// digits), the only form packed as bytes here: it is the form Keystone
/// unpacks them to, so the round trip is exact. (Keystone would also pack
/// dashed or uppercase UUIDs as bytes, and hand them back changed.)
fn uuid_hex_to_bytes(id: &str) -> Option<[u8; 16]> {
    let s = id.as_bytes();
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn uuid_bytes_to_hex(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &byte in b {
        s.push(HEX[(byte >> 4) as usize] as char);
        s.push(HEX[(byte & 0xf) as usize] as char);
    }
    s
}

/// Packs and unpacks payloads for one method list and default domain.
#[derive(Debug, Clone)]
pub(crate) struct Codec {
    pub(crate) methods: Vec<String>,
    pub(crate) default_domain_id: String,
}

const MALFORMED: TokenError = TokenError::Invalid("malformed token payload");

impl From<Malformed> for TokenError {
    fn from(_: Malformed) -> Self {
        MALFORMED
    }
}

impl Codec {
    /// Append the packed payload to `buf`.
    pub(crate) fn encode(&self, p: &TokenPayload, buf: &mut Vec<u8>) -> Result<(), TokenError> {
        let methods = self.methods_to_int(&p.methods)?;
        if !p.expires_at.is_finite() {
            return Err(TokenError::InvalidPayload(
                "expires_at is not a finite number",
            ));
        }
        let fields = match &p.scope {
            Scope::Unscoped => 5,
            Scope::Domain(_) | Scope::Project(_) | Scope::System(_) => 6,
            Scope::Trust { .. } | Scope::ApplicationCredential { .. } => 7,
        };
        msgpack::write_array_len(buf, fields);
        msgpack::write_uint(buf, p.scope.payload_version().into());
        write_id(buf, &p.user_id);
        msgpack::write_uint(buf, methods);
        match &p.scope {
            Scope::Unscoped => {}
            Scope::Domain(domain_id) => {
                if let Some(b) = uuid_hex_to_bytes(domain_id) {
                    msgpack::write_bin(buf, &b);
                } else if *domain_id == self.default_domain_id {
                    msgpack::write_str(buf, domain_id);
                } else {
                    return Err(TokenError::InvalidPayload(
                        "domain id must be a 32-hex UUID or the default domain id",
                    ));
                }
            }
            Scope::Project(project_id)
            | Scope::Trust { project_id, .. }
            | Scope::ApplicationCredential { project_id, .. } => write_id(buf, project_id),
            Scope::System(system) => msgpack::write_str(buf, system),
        }
        msgpack::write_f64(buf, p.expires_at);
        msgpack::write_array_len(buf, p.audit_ids.len());
        for audit_id in &p.audit_ids {
            let mut raw = [0u8; 64];
            let n = URL_SAFE_NO_PAD
                .decode_slice(audit_id, &mut raw)
                .map_err(|_| TokenError::InvalidPayload("audit id is not urlsafe base64"))?;
            msgpack::write_bin(buf, &raw[..n]);
        }
        match &p.scope {
            Scope::Trust { trust_id, .. } => {
                let b = uuid_hex_to_bytes(trust_id)
                    .ok_or(TokenError::InvalidPayload("trust id must be a 32-hex UUID"))?;
                msgpack::write_bin(buf, &b);
            }
            Scope::ApplicationCredential { app_cred_id, .. } => write_id(buf, app_cred_id),
            _ => {}
        }
        Ok(())
    }

    /// Unpack a payload.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<TokenPayload, TokenError> {
        let mut r = Reader::new(bytes);
        let fields = r.array_len()?;
        if fields == 0 {
            return Err(MALFORMED);
        }
        let version = r.uint()?;
        let expected = match version {
            version::UNSCOPED => 5,
            version::DOMAIN | version::PROJECT | version::SYSTEM => 6,
            version::TRUST | version::APPLICATION_CREDENTIAL => 7,
            other => return Err(TokenError::UnsupportedVersion(other)),
        };
        if fields != expected {
            return Err(MALFORMED);
        }
        let user_id = read_id(&mut r)?;
        let methods = self.int_to_methods(r.uint()?)?;
        let scope_field = match version {
            version::DOMAIN => Some(self.read_domain_id(&mut r)?),
            version::PROJECT | version::TRUST | version::APPLICATION_CREDENTIAL => {
                Some(read_id(&mut r)?)
            }
            version::SYSTEM => Some(read_string(&mut r)?),
            _ => None,
        };
        let expires_at = r.float()?;
        if !expires_at.is_finite() {
            return Err(MALFORMED);
        }
        let n = r.array_len()?;
        let mut audit_ids = Vec::with_capacity(n.min(4));
        for _ in 0..n {
            audit_ids.push(URL_SAFE_NO_PAD.encode(r.raw()?));
        }
        let scope = match (version, scope_field) {
            (version::UNSCOPED, _) => Scope::Unscoped,
            (version::DOMAIN, Some(id)) => Scope::Domain(id),
            (version::PROJECT, Some(id)) => Scope::Project(id),
            (version::SYSTEM, Some(s)) => Scope::System(s),
            (version::TRUST, Some(project_id)) => {
                let raw = r.raw()?;
                if raw.len() != 16 {
                    return Err(MALFORMED);
                }
                Scope::Trust {
                    project_id,
                    trust_id: uuid_bytes_to_hex(raw),
                }
            }
            (version::APPLICATION_CREDENTIAL, Some(project_id)) => Scope::ApplicationCredential {
                project_id,
                app_cred_id: read_id(&mut r)?,
            },
            _ => return Err(MALFORMED),
        };
        if !r.is_empty() {
            return Err(MALFORMED);
        }
        Ok(TokenPayload {
            user_id,
            methods,
            scope,
            expires_at,
            audit_ids,
        })
    }

    /// Keystone's `convert_method_list_to_integer`: the sum of `2^index`
    /// over the configured list (a method named twice counts once here).
    fn methods_to_int(&self, methods: &[String]) -> Result<u64, TokenError> {
        let mut bits = 0u64;
        for m in methods {
            let i = self
                .methods
                .iter()
                .position(|c| c == m)
                .ok_or_else(|| TokenError::UnknownMethod(m.clone()))?;
            bits |= 1 << i;
        }
        Ok(bits)
    }

    /// Keystone's `convert_integer_to_method_list`: highest bit first. A
    /// bitmask with bits beyond the configured list (for which Keystone's
    /// arithmetic would return no method at all) is rejected.
    fn int_to_methods(&self, bits: u64) -> Result<Vec<String>, TokenError> {
        let n = self.methods.len();
        if n < 64 && bits >> n != 0 {
            return Err(TokenError::Invalid(
                "methods bitmask names methods outside the configured list",
            ));
        }
        let mut out = Vec::with_capacity(bits.count_ones() as usize);
        for i in (0..n).rev() {
            if bits & (1 << i) != 0 {
                out.push(self.methods[i].clone());
            }
        }
        Ok(out)
    }

    /// `DomainScopedPayload`: 16 UUID bytes, or the default domain id as a
    /// string.
    fn read_domain_id(&self, r: &mut Reader<'_>) -> Result<String, TokenError> {
        let (is_bin, raw) = r.raw_with_kind()?;
        if is_bin && raw.len() == 16 {
            Ok(uuid_bytes_to_hex(raw))
        } else if raw == self.default_domain_id.as_bytes() {
            Ok(self.default_domain_id.clone())
        } else if raw.len() == 16 {
            // Pre-bin-type msgpack carried the UUID bytes in a str value.
            Ok(uuid_bytes_to_hex(raw))
        } else {
            Err(MALFORMED)
        }
    }
}

/// Keystone's `attempt_convert_uuid_hex_to_bytes`: `(True, 16 bytes)` for a
/// UUID, else `(False, str)`.
fn write_id(buf: &mut Vec<u8>, id: &str) {
    msgpack::write_array_len(buf, 2);
    match uuid_hex_to_bytes(id) {
        Some(b) => {
            msgpack::write_bool(buf, true);
            msgpack::write_bin(buf, &b);
        }
        None => {
            msgpack::write_bool(buf, false);
            msgpack::write_str(buf, id);
        }
    }
}

/// The `(is_stored_as_bytes, value)` pair written by [`write_id`].
fn read_id(r: &mut Reader<'_>) -> Result<String, TokenError> {
    if r.array_len()? != 2 {
        return Err(MALFORMED);
    }
    let is_uuid = r.boolean()?;
    let raw = r.raw()?;
    if is_uuid {
        if raw.len() != 16 {
            return Err(MALFORMED);
        }
        Ok(uuid_bytes_to_hex(raw))
    } else {
        utf8(raw)
    }
}

fn read_string(r: &mut Reader<'_>) -> Result<String, TokenError> {
    utf8(r.raw()?)
}

fn utf8(raw: &[u8]) -> Result<String, TokenError> {
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| MALFORMED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_hex_conversion() {
        let id = "0123456789abcdef0123456789abcdef";
        let b = uuid_hex_to_bytes(id).unwrap();
        assert_eq!(b[0], 0x01);
        assert_eq!(b[15], 0xef);
        assert_eq!(uuid_bytes_to_hex(&b), id);
        for not_packed in [
            "0123456789ABCDEF0123456789abcdef",
            "01234567-89ab-cdef-0123-456789abcdef",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdeg",
            "default",
            "",
        ] {
            assert!(uuid_hex_to_bytes(not_packed).is_none(), "{not_packed}");
        }
    }

    #[test]
    fn audit_id_shape() {
        let a = random_audit_id();
        assert_eq!(a.len(), 22);
        let raw = URL_SAFE_NO_PAD.decode(&a).unwrap();
        assert_eq!(raw.len(), 16);
        assert_eq!(raw[6] >> 4, 4, "uuid4 version nibble, as Keystone's");
        assert_ne!(random_audit_id(), a);
    }

    #[test]
    fn expiry_rule_truncates_to_seconds() {
        let p = TokenPayload {
            user_id: "u".into(),
            methods: vec![],
            scope: Scope::Unscoped,
            expires_at: 1000.75,
            audit_ids: vec![],
        };
        let at = |s: f64| UNIX_EPOCH + Duration::from_secs_f64(s);
        assert!(!p.is_expired(at(999.999)));
        assert!(p.is_expired(at(1000.0)));
        assert!(p.is_expired(at(1000.5)));
        assert_eq!(
            expires_at_from(at(1000.9), Duration::from_secs(3600)),
            4600.0
        );
    }
}
