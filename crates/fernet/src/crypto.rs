//! The Fernet token format (<https://github.com/fernet/spec>) built from
//! RustCrypto primitives.
//!
//! Layout of the decoded token: `0x80 | timestamp (u64 BE) | IV (16) |
//! AES-128-CBC/PKCS7 ciphertext | HMAC-SHA256 (32)` over everything before
//! the HMAC. The 32-byte key is `signing key (16) | encryption key (16)`.
//!
//! Compared with a generic Fernet library, decryption here base64-decodes the
//! token once, checks the HMAC of every candidate key over the same buffer,
//! and decrypts in place.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE};
use base64::engine::{DecodePaddingMode, general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::TryRngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;
type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;
type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

const VERSION: u8 = 0x80;
/// Version byte, timestamp and IV.
pub(crate) const HEADER_LEN: usize = 1 + 8 + 16;
const TAG_LEN: usize = 32;
const BLOCK_LEN: usize = 16;
/// Tokens stamped further than this in the future are rejected, as the
/// Python `cryptography` Fernet implementation does even without a TTL.
pub(crate) const MAX_CLOCK_SKEW: u64 = 60;

/// Keys on disk are padded urlsafe base64; accept them without padding and
/// with non-canonical trailing bits too, as Python's decoder does.
const KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// One parsed Fernet key: the HMAC state keyed with the signing half
/// (cloned per use, which skips re-deriving the inner/outer pads) and the
/// AES-128 encryption half.
#[derive(Clone)]
pub(crate) struct FernetKey {
    mac: HmacSha256,
    encryption: [u8; 16],
}

impl FernetKey {
    /// Parse a urlsafe-base64 32-byte key (surrounding whitespace ignored).
    pub(crate) fn parse(key: &str) -> Option<Self> {
        let mut raw = [0u8; 32];
        // decode_slice errors if the input decodes to more than 32 bytes.
        let n = KEY_ENGINE.decode_slice(key.trim(), &mut raw).ok()?;
        if n != 32 {
            return None;
        }
        let mac = HmacSha256::new_from_slice(&raw[..16]).ok()?;
        let mut encryption = [0u8; 16];
        encryption.copy_from_slice(&raw[16..]);
        raw.fill(0);
        Some(Self { mac, encryption })
    }
}

/// Fill `buf` from the operating system's random number generator.
pub(crate) fn os_random(buf: &mut [u8]) -> Result<(), rand::rand_core::OsError> {
    rand::rngs::OsRng.try_fill_bytes(buf)
}

/// A new random key, urlsafe base64 with padding (44 characters), exactly
/// as `cryptography.fernet.Fernet.generate_key()` makes them.
pub(crate) fn generate_key() -> Result<String, rand::rand_core::OsError> {
    let mut raw = [0u8; 32];
    os_random(&mut raw)?;
    let key = URL_SAFE.encode(raw);
    raw.fill(0);
    Ok(key)
}

/// Encrypt and sign in place, returning the token without base64 padding
/// (as Keystone's `TokenFormatter.pack` strips it).
///
/// `buf` must hold [`HEADER_LEN`] bytes (any content; they are overwritten)
/// followed by the plaintext.
pub(crate) fn seal(key: &FernetKey, timestamp: u64, iv: &[u8; 16], mut buf: Vec<u8>) -> String {
    debug_assert!(buf.len() >= HEADER_LEN);
    buf[0] = VERSION;
    buf[1..9].copy_from_slice(&timestamp.to_be_bytes());
    buf[9..HEADER_LEN].copy_from_slice(iv);
    let msg_len = buf.len() - HEADER_LEN;
    let padded_len = (msg_len / BLOCK_LEN + 1) * BLOCK_LEN;
    buf.reserve_exact(padded_len - msg_len + TAG_LEN);
    buf.resize(HEADER_LEN + padded_len, 0);
    let encryptor = Aes128CbcEnc::new(&key.encryption.into(), &(*iv).into());
    // Cannot fail: the buffer has room for a full padding block.
    let ct_len = encryptor
        .encrypt_padded_mut::<Pkcs7>(&mut buf[HEADER_LEN..], msg_len)
        .map(|ct| ct.len())
        .unwrap_or(0);
    debug_assert_eq!(ct_len, padded_len);
    let mut mac = key.mac.clone();
    mac.update(&buf);
    let tag = mac.finalize().into_bytes();
    buf.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(&buf)
}

/// Base64-decode a token (padding optional).
pub(crate) fn decode_token(token: &str) -> Option<Vec<u8>> {
    let unpadded = token
        .strip_suffix("==")
        .or_else(|| token.strip_suffix('='))
        .unwrap_or(token);
    URL_SAFE_NO_PAD.decode(unpadded).ok()
}

/// The Fernet timestamp and IV of a decoded token, without authenticating it.
pub(crate) fn timestamp_and_iv(data: &[u8]) -> Option<(u64, [u8; 16])> {
    if data.len() < HEADER_LEN || data[0] != VERSION {
        return None;
    }
    let ts = u64::from_be_bytes(data[1..9].try_into().ok()?);
    let iv: [u8; 16] = data[9..HEADER_LEN].try_into().ok()?;
    Some((ts, iv))
}

/// Authenticate `data` (a base64-decoded token) with the first key whose
/// HMAC matches, decrypt it in place and return the Fernet timestamp and the
/// plaintext.
pub(crate) fn open<'a>(
    keys: &[FernetKey],
    data: &'a mut [u8],
    now: u64,
) -> Result<(u64, &'a [u8]), &'static str> {
    let len = data.len();
    if len < HEADER_LEN + BLOCK_LEN + TAG_LEN
        || !(len - HEADER_LEN - TAG_LEN).is_multiple_of(BLOCK_LEN)
    {
        return Err("malformed fernet token");
    }
    let (timestamp, iv) = timestamp_and_iv(data).ok_or("malformed fernet token")?;
    if timestamp > now.saturating_add(MAX_CLOCK_SKEW) {
        return Err("token issued in the future");
    }
    let (message, tag) = data.split_at_mut(len - TAG_LEN);
    let key = keys
        .iter()
        .find(|key| {
            let mut mac = key.mac.clone();
            mac.update(message);
            mac.verify_slice(tag).is_ok()
        })
        .ok_or("token not signed by any active key")?;
    let decryptor = Aes128CbcDec::new(&key.encryption.into(), &iv.into());
    let plaintext = decryptor
        .decrypt_padded_mut::<Pkcs7>(&mut message[HEADER_LEN..])
        .map_err(|_| "bad fernet padding")?;
    Ok((timestamp, plaintext))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FernetKey {
        FernetKey::parse(&generate_key().unwrap()).unwrap()
    }

    fn sealed(key: &FernetKey, ts: u64, plaintext: &[u8]) -> String {
        let mut buf = vec![0u8; HEADER_LEN];
        buf.extend_from_slice(plaintext);
        seal(key, ts, &[7u8; 16], buf)
    }

    #[test]
    fn seal_open_round_trip_all_lengths() {
        let k = key();
        for n in 0..70 {
            let pt: Vec<u8> = (0..n as u8).collect();
            let token = sealed(&k, 1_700_000_000, &pt);
            assert!(!token.contains('='));
            let mut data = decode_token(&token).unwrap();
            let (ts, out) = open(std::slice::from_ref(&k), &mut data, 1_700_000_000).unwrap();
            assert_eq!(ts, 1_700_000_000);
            assert_eq!(out, &pt[..]);
        }
    }

    #[test]
    fn open_rejects_wrong_key_tamper_and_future() {
        let (k1, k2) = (key(), key());
        let token = sealed(&k1, 1000, b"hello");
        let mut data = decode_token(&token).unwrap();
        assert!(open(std::slice::from_ref(&k2), &mut data.clone(), 1000).is_err());
        // second key in the list matches
        assert!(open(&[k2.clone(), k1.clone()], &mut data.clone(), 1000).is_ok());
        // issued more than the clock skew in the future
        assert!(open(std::slice::from_ref(&k1), &mut data.clone(), 1000 - 61).is_err());
        assert!(open(std::slice::from_ref(&k1), &mut data.clone(), 1000 - 60).is_ok());
        let last = data.len() - 40;
        data[last] ^= 1;
        assert!(open(std::slice::from_ref(&k1), &mut data, 1000).is_err());
    }

    #[test]
    fn key_parsing() {
        let k = generate_key().unwrap();
        assert_eq!(k.len(), 44);
        assert!(k.ends_with('='));
        assert!(FernetKey::parse(&k).is_some());
        assert!(FernetKey::parse(&format!("{k}\n")).is_some());
        assert!(FernetKey::parse(k.trim_end_matches('=')).is_some());
        assert!(FernetKey::parse("").is_none());
        assert!(FernetKey::parse("not a key").is_none());
        assert!(FernetKey::parse(&URL_SAFE.encode([1u8; 31])).is_none());
        assert!(FernetKey::parse(&URL_SAFE.encode([1u8; 33])).is_none());
    }

    /// Tokens made by Python's `cryptography` Fernet: re-sealing the same
    /// plaintext with the same key, timestamp and IV gives the same bytes.
    #[test]
    fn python_fernet_tokens_reseal_identically() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../tests/vectors/keystone_compat.json")).unwrap();
        let keys = v["keys"].as_array().unwrap();
        let cases = v["cases"].as_array().unwrap();
        assert!(!cases.is_empty());
        for case in cases {
            let key_index = case["key_index"].as_u64().unwrap() as usize;
            let key = FernetKey::parse(keys[key_index].as_str().unwrap()).unwrap();
            let token = case["token"].as_str().unwrap();
            let data = decode_token(token).unwrap();
            let (ts, iv) = timestamp_and_iv(&data).unwrap();
            assert_eq!(ts, case["issued_at"].as_u64().unwrap());
            let pt = hex_decode(case["payload_hex"].as_str().unwrap());
            let mut buf = vec![0u8; HEADER_LEN];
            buf.extend_from_slice(&pt);
            assert_eq!(seal(&key, ts, &iv, buf), token, "case {}", case["name"]);
        }
    }

    fn hex_decode(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
