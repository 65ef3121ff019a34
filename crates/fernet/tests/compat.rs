//! Compatibility with tokens packed by Keystone's rules, from vectors made by
//! `tests/vectors/gen_keystone_vectors.py` with Python's `msgpack` and
//! `cryptography` (the libraries Keystone uses).

use ferrostack_fernet::{Scope, TokenError, TokenFormatter, TokenPayload};
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors/keystone_compat.json")).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn formatter(v: &Value) -> TokenFormatter {
    TokenFormatter::new(&strings(&v["keys"]), strings(&v["methods"]))
        .unwrap()
        .with_default_domain_id(v["default_domain_id"].as_str().unwrap())
}

fn scope(s: &Value) -> Scope {
    let f = |k: &str| s[k].as_str().unwrap().to_owned();
    match s["type"].as_str().unwrap() {
        "unscoped" => Scope::Unscoped,
        "project" => Scope::Project(f("project_id")),
        "domain" => Scope::Domain(f("domain_id")),
        "system" => Scope::System(f("system")),
        "trust" => Scope::Trust {
            project_id: f("project_id"),
            trust_id: f("trust_id"),
        },
        "application_credential" => Scope::ApplicationCredential {
            project_id: f("project_id"),
            app_cred_id: f("app_cred_id"),
        },
        other => panic!("no scope for {other}"),
    }
}

fn expires_at(case: &Value) -> f64 {
    let bits = u64::from_str_radix(case["expires_at_bits"].as_str().unwrap(), 16).unwrap();
    f64::from_bits(bits)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn supported(v: &Value) -> impl Iterator<Item = &Value> {
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("unsupported_version").is_none())
}

#[test]
fn decodes_keystone_tokens_to_the_same_fields() {
    let v = vectors();
    let f = formatter(&v);
    let mut n = 0;
    for case in supported(&v) {
        let name = case["name"].as_str().unwrap();
        let token = case["token"].as_str().unwrap();
        let issued_at = case["issued_at"].as_u64().unwrap();
        let d = f
            .decode_at(token, issued_at)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.issued_at, issued_at, "{name}");
        assert_eq!(
            d.payload.user_id,
            case["user_id"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            d.payload.methods,
            strings(&case["decoded_methods"]),
            "{name}"
        );
        assert_eq!(d.payload.scope, scope(&case["scope"]), "{name}");
        assert_eq!(
            d.payload.expires_at.to_bits(),
            expires_at(case).to_bits(),
            "{name}"
        );
        assert_eq!(d.payload.audit_ids, strings(&case["audit_ids"]), "{name}");
        assert_eq!(
            d.payload.scope.payload_version() as u64,
            case["version"].as_u64().unwrap()
        );
        n += 1;
    }
    assert!(n >= 10);
}

#[test]
fn packs_the_same_payload_bytes_as_python_msgpack() {
    let v = vectors();
    let f = formatter(&v);
    for case in supported(&v) {
        let name = case["name"].as_str().unwrap();
        let payload = TokenPayload {
            user_id: case["user_id"].as_str().unwrap().to_owned(),
            methods: strings(&case["methods"]),
            scope: scope(&case["scope"]),
            expires_at: expires_at(case),
            audit_ids: strings(&case["audit_ids"]),
        };
        let packed = f.pack_payload(&payload).unwrap();
        assert_eq!(
            hex(&packed),
            case["payload_hex"].as_str().unwrap(),
            "{name}"
        );
        // Same payload, same length: our tokens are as long as Keystone's.
        let issued_at = case["issued_at"].as_u64().unwrap();
        let ours = f.encode_at(&payload, issued_at).unwrap();
        assert_eq!(
            ours.len() as u64,
            case["token_len"].as_u64().unwrap(),
            "{name}"
        );
        let back = f.decode_at(&ours, issued_at).unwrap();
        assert_eq!(back.payload.scope, payload.scope);
        assert_eq!(back.issued_at, issued_at);
    }
}

#[test]
fn federated_and_oauth_payloads_are_reported_unsupported() {
    let v = vectors();
    let f = formatter(&v);
    let mut n = 0;
    for case in v["cases"].as_array().unwrap() {
        let Some(version) = case.get("unsupported_version") else {
            continue;
        };
        let token = case["token"].as_str().unwrap();
        let err = f
            .decode_at(token, case["issued_at"].as_u64().unwrap())
            .unwrap_err();
        assert!(
            matches!(err, TokenError::UnsupportedVersion(x) if x == version.as_u64().unwrap()),
            "{err:?}"
        );
        assert!(err.is_invalid_token());
        n += 1;
    }
    assert_eq!(n, 2);
}

#[test]
fn keystone_tokens_need_the_key_that_made_them() {
    let v = vectors();
    let keys = strings(&v["keys"]);
    let only_second = TokenFormatter::new(&keys[1..], strings(&v["methods"])).unwrap();
    for case in supported(&v) {
        let token = case["token"].as_str().unwrap();
        let issued_at = case["issued_at"].as_u64().unwrap();
        let result = only_second.decode_at(token, issued_at);
        if case["key_index"].as_u64() == Some(1) {
            assert!(result.is_ok());
        } else {
            assert!(matches!(result, Err(TokenError::Invalid(_))));
        }
    }
}

#[test]
fn keystone_tokens_decode_with_padding_restored() {
    let v = vectors();
    let f = formatter(&v);
    for case in supported(&v) {
        let mut token = case["token"].as_str().unwrap().to_owned();
        // Keystone's TokenFormatter.restore_padding
        let m = token.len() % 4;
        if m != 0 {
            token.push_str(&"=".repeat(4 - m));
        }
        assert!(
            f.decode_at(&token, case["issued_at"].as_u64().unwrap())
                .is_ok()
        );
    }
}
