//! Keypairs as Nova makes and checks them (`nova/crypto.py`): SSH keys — RSA 2048 generation
//! (private key in the traditional PEM form, public key as `ssh-rsa <base64> Generated-by-Nova`),
//! OpenSSH public key validation, the MD5 colon-hex fingerprint of the key blob — and x509
//! keypairs (type `x509`, ≥2.2): a self-signed WinRM client certificate as the public key, the
//! key and certificate as a password-less PKCS#12 in base64 as the private key, and the SHA-1
//! colon-hex fingerprint of the certificate.

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
    colon_hex(&digest)
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

/// Colon-separated lowercase hex.
fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Nova's `generate_x509_fingerprint`: SHA-1 of the certificate (DER) as colon hex, or its
/// InvalidKeypair message.
pub fn x509_fingerprint(pem: &str) -> Result<String, String> {
    let invalid = |e: &dyn std::fmt::Display| {
        format!("Keypair data is invalid: failed to generate X509 fingerprint. Error message: {e}")
    };
    let cert = openssl::x509::X509::from_pem(pem.trim().as_bytes()).map_err(|e| invalid(&e))?;
    let digest = cert
        .digest(openssl::hash::MessageDigest::sha1())
        .map_err(|e| invalid(&e))?;
    Ok(colon_hex(&digest))
}

/// Nova's `generate_winrm_x509_cert`: an RSA 2048 key and a self-signed certificate for
/// `CN=<user_id>`, valid 3650 days, for client authentication with the UPN
/// `<user_id>@localhost` as subject alternative name. The private key is the PKCS#12 bundle
/// (empty password) in base64; the public key is the certificate in PEM.
pub fn generate_x509(user_id: &str) -> Result<Generated, openssl::error::ErrorStack> {
    use openssl::x509::extension::{ExtendedKeyUsage, SubjectAlternativeName};
    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048)?)?;
    let mut name = openssl::x509::X509NameBuilder::new()?;
    name.append_entry_by_nid(openssl::nid::Nid::COMMONNAME, user_id)?;
    let name = name.build();
    let mut serial = openssl::bn::BigNum::new()?;
    serial.rand(159, openssl::bn::MsbOption::MAYBE_ZERO, false)?;
    let mut b = openssl::x509::X509::builder()?;
    b.set_version(2)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    let (not_before, not_after) = (
        openssl::asn1::Asn1Time::days_from_now(0)?,
        openssl::asn1::Asn1Time::days_from_now(3650)?,
    );
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    b.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
    // otherName UPN (1.3.6.1.4.1.311.20.2.3) as a DER UTF8String.
    let upn = format!("{user_id}@localhost");
    let mut der = vec![0x0c];
    if upn.len() < 0x80 {
        der.push(upn.len() as u8);
    } else {
        der.extend_from_slice(&[0x82, (upn.len() >> 8) as u8, upn.len() as u8]);
    }
    der.extend_from_slice(upn.as_bytes());
    let san = SubjectAlternativeName::new()
        .other_name2(
            openssl::asn1::Asn1Object::from_str("1.3.6.1.4.1.311.20.2.3")?,
            &der,
        )
        .build(&b.x509v3_context(None, None))?;
    b.append_extension(san)?;
    b.sign(&key, openssl::hash::MessageDigest::sha256())?;
    let cert = b.build();
    let bundle = openssl::pkcs12::Pkcs12::builder()
        .pkey(&key)
        .cert(&cert)
        .build2("")?;
    Ok(Generated {
        private_key: STANDARD.encode(bundle.to_der()?),
        public_key: String::from_utf8_lossy(&cert.to_pem()?).into_owned(),
        fingerprint: colon_hex(&cert.digest(openssl::hash::MessageDigest::sha1())?),
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
    fn x509_keypairs_have_nova_forms() {
        let key = generate_x509("a-user-id").unwrap();
        assert!(key.public_key.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(x509_fingerprint(&key.public_key).unwrap(), key.fingerprint);
        assert_eq!(key.fingerprint.len(), 59, "SHA-1 as colon hex");
        let der = STANDARD.decode(&key.private_key).unwrap();
        let parsed = openssl::pkcs12::Pkcs12::from_der(&der)
            .unwrap()
            .parse2("")
            .unwrap();
        let cert = parsed.cert.unwrap();
        assert_eq!(cert.to_pem().unwrap(), key.public_key.as_bytes());
        let cn = cert
            .subject_name()
            .entries_by_nid(openssl::nid::Nid::COMMONNAME)
            .next()
            .unwrap()
            .data()
            .to_string()
            .unwrap();
        assert_eq!(cn, "a-user-id");
        assert!(parsed.pkey.is_some());
        assert!(
            x509_fingerprint("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
                .unwrap_err()
                .starts_with("Keypair data is invalid: failed to generate X509 fingerprint.")
        );
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
