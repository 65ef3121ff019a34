//! SSH keypairs as Nova makes and checks them: RSA 2048 generation (private key in the
//! traditional PEM form, public key as `ssh-rsa <base64> Generated-by-Nova`), OpenSSH public
//! key validation, and the MD5 colon-hex fingerprint of the key blob.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A generated keypair.
pub struct Generated {
    pub private_key: String,
    pub public_key: String,
    pub fingerprint: String,
}

/// Why a public key was refused (Nova's message).
pub const INVALID_KEY: &str = "Keypair data is invalid: failed to generate fingerprint";

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_mpint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let trimmed: &[u8] = {
        let start = magnitude
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(magnitude.len());
        &magnitude[start..]
    };
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        let mut padded = vec![0u8];
        padded.extend_from_slice(trimmed);
        put_string(out, &padded);
    } else {
        put_string(out, trimmed);
    }
}

/// MD5 of the key blob as colon-separated hex (`aa:bb:...`).
pub fn fingerprint(blob: &[u8]) -> String {
    let digest = openssl::hash::hash(openssl::hash::MessageDigest::md5(), blob)
        .map(|d| d.to_vec())
        .unwrap_or_default();
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Generates an RSA 2048 keypair.
pub fn generate() -> Result<Generated, openssl::error::ErrorStack> {
    let rsa = openssl::rsa::Rsa::generate(2048)?;
    let private_key = String::from_utf8_lossy(&rsa.private_key_to_pem()?).into_owned();
    let mut blob = Vec::new();
    put_string(&mut blob, b"ssh-rsa");
    put_mpint(&mut blob, &rsa.e().to_vec());
    put_mpint(&mut blob, &rsa.n().to_vec());
    Ok(Generated {
        private_key,
        public_key: format!("ssh-rsa {} Generated-by-Nova", STANDARD.encode(&blob)),
        fingerprint: fingerprint(&blob),
    })
}

/// Reads SSH wire-format strings from a key blob.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn string(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(self.0.get(..4)?.try_into().ok()?) as usize;
        let value = self.0.get(4..4 + len)?;
        self.0 = &self.0[4 + len..];
        Some(value)
    }
    fn nonempty(&mut self) -> Option<&'a [u8]> {
        self.string().filter(|s| !s.is_empty())
    }
}

/// Checks an OpenSSH public key line (`<type> <base64> [comment]`); returns its fingerprint.
pub fn validate_public_key(line: &str) -> Result<String, &'static str> {
    let mut parts = line.split_whitespace();
    let (Some(kind), Some(data)) = (parts.next(), parts.next()) else {
        return Err(INVALID_KEY);
    };
    let blob = STANDARD.decode(data).map_err(|_| INVALID_KEY)?;
    let mut r = Reader(&blob);
    if r.string() != Some(kind.as_bytes()) {
        return Err(INVALID_KEY);
    }
    let complete = match kind {
        "ssh-rsa" => {
            let e = r.nonempty();
            let n = r.nonempty();
            e.is_some() && n.is_some_and(|n| n.len() >= 64)
        }
        "ssh-dss" => (0..4).all(|_| r.nonempty().is_some()),
        "ssh-ed25519" => r.string().is_some_and(|k| k.len() == 32),
        k if k.starts_with("ecdsa-sha2-") => {
            r.string() == Some(&k.as_bytes()["ecdsa-sha2-".len()..]) && r.nonempty().is_some()
        }
        _ => false,
    };
    if !complete || !r.0.is_empty() {
        return Err(INVALID_KEY);
    }
    Ok(fingerprint(&blob))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_validate_and_have_nova_forms() {
        let key = generate().unwrap();
        assert!(
            key.private_key
                .starts_with("-----BEGIN RSA PRIVATE KEY-----")
        );
        assert!(key.public_key.starts_with("ssh-rsa AAAA"));
        assert!(key.public_key.ends_with(" Generated-by-Nova"));
        assert_eq!(
            validate_public_key(&key.public_key).unwrap(),
            key.fingerprint
        );
        assert_eq!(key.fingerprint.len(), 47);
    }

    #[test]
    fn malformed_keys_are_refused() {
        let as_2048 = format!("ssh-rsa {} openstack@ubuntu", "A".repeat(2048));
        for bad in [
            "",
            "ssh-rsa",
            "ssh-rsa !!!",
            as_2048.as_str(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
        ] {
            assert_eq!(validate_public_key(bad), Err(INVALID_KEY), "{bad}");
        }
        // A real ed25519 key (wire format built here) is accepted.
        let mut blob = Vec::new();
        put_string(&mut blob, b"ssh-ed25519");
        put_string(&mut blob, &[7u8; 32]);
        let line = format!("ssh-ed25519 {} me@host", STANDARD.encode(&blob));
        assert_eq!(validate_public_key(&line).unwrap(), fingerprint(&blob));
    }
}
