//! Token encoding and decoding.

use std::time::{Duration, UNIX_EPOCH};

use ferrostack_fernet::{
    DecodedToken, Scope, TokenError, TokenFormatter, TokenPayload, default_auth_methods,
    generate_key, random_audit_id,
};

const NOW: u64 = 1_767_225_600;
const USER: &str = "0123456789abcdef0123456789abcdef";
const PROJECT: &str = "fedcba9876543210fedcba9876543210";
const OTHER: &str = "00112233445566778899aabbccddeeff";

fn formatter() -> TokenFormatter {
    let keys = vec![generate_key().unwrap(), generate_key().unwrap()];
    TokenFormatter::new(&keys, default_auth_methods()).unwrap()
}

fn payload(user_id: &str, scope: Scope) -> TokenPayload {
    TokenPayload {
        user_id: user_id.to_owned(),
        methods: vec!["password".to_owned()],
        scope,
        expires_at: (NOW + 3600) as f64,
        audit_ids: vec![random_audit_id()],
    }
}

fn all_scopes(id: &str) -> Vec<Scope> {
    vec![
        Scope::Unscoped,
        Scope::Project(id.to_owned()),
        Scope::Domain(OTHER.to_owned()),
        Scope::Domain("default".to_owned()),
        Scope::System("all".to_owned()),
        Scope::Trust {
            project_id: id.to_owned(),
            trust_id: OTHER.to_owned(),
        },
        Scope::ApplicationCredential {
            project_id: id.to_owned(),
            app_cred_id: id.to_owned(),
        },
    ]
}

#[test]
fn every_scope_round_trips() {
    // Non-UUID ids make longer tokens than Keystone's 255-character default.
    let f = formatter().with_max_token_size(1024);
    for user in [USER, "admin", "01234567-89ab-cdef-0123-456789abcdef"] {
        for id in [PROJECT, "service", "FEDCBA9876543210FEDCBA9876543210"] {
            for scope in all_scopes(id) {
                let mut p = payload(user, scope);
                p.audit_ids.push(random_audit_id());
                let token = f.encode_at(&p, NOW).unwrap();
                let d = f.decode_at(&token, NOW).unwrap();
                assert_eq!(
                    d,
                    DecodedToken {
                        payload: p,
                        issued_at: NOW
                    }
                );
            }
        }
    }
}

#[test]
fn payload_versions_follow_keystone() {
    let versions: Vec<u8> = all_scopes(PROJECT)
        .iter()
        .map(Scope::payload_version)
        .collect();
    assert_eq!(versions, [0, 2, 1, 1, 8, 3, 9]);
    let f = formatter();
    for scope in all_scopes(PROJECT) {
        let v = scope.payload_version();
        let packed = f.pack_payload(&payload(USER, scope)).unwrap();
        assert_eq!(packed[1], v, "version is the first array element");
    }
}

#[test]
fn uuid_ids_pack_as_16_bytes_others_as_strings() {
    let f = formatter();
    let packed = f.pack_payload(&payload(USER, Scope::Unscoped)).unwrap();
    // [0, (True, bin16), ...]
    assert_eq!(&packed[..6], &[0x95, 0x00, 0x92, 0xc3, 0xc4, 0x10]);
    assert_eq!(packed[6], 0x01);
    assert_eq!(packed[21], 0xef);

    let packed = f.pack_payload(&payload("admin", Scope::Unscoped)).unwrap();
    assert_eq!(
        &packed[..10],
        &[0x95, 0x00, 0x92, 0xc2, 0xa5, b'a', b'd', b'm', b'i', b'n']
    );

    // Dashed and uppercase UUIDs stay strings, so they round-trip unchanged.
    for id in [
        "01234567-89ab-cdef-0123-456789abcdef",
        "0123456789ABCDEF0123456789ABCDEF",
    ] {
        let packed = f.pack_payload(&payload(id, Scope::Unscoped)).unwrap();
        // fixstr up to 31 bytes, str8 from 32
        let header: &[u8] = if id.len() < 32 {
            &[0xa0 | id.len() as u8]
        } else {
            &[0xd9, id.len() as u8]
        };
        assert_eq!(packed[3], 0xc2);
        assert_eq!(&packed[4..4 + header.len()], header);
        assert_eq!(f.unpack_payload(&packed).unwrap().user_id, id);
    }

    // Domain ids: raw 16 bytes (no flag) or the default domain id string.
    let packed = f
        .pack_payload(&payload("u", Scope::Domain(OTHER.into())))
        .unwrap();
    assert_eq!(
        &packed[..9],
        &[0x96, 0x01, 0x92, 0xc2, 0xa1, b'u', 0x02, 0xc4, 0x10]
    );
    let packed = f
        .pack_payload(&payload("u", Scope::Domain("default".into())))
        .unwrap();
    assert_eq!(
        &packed[6..14],
        &[0x02, 0xa7, b'd', b'e', b'f', b'a', b'u', b'l']
    );
}

#[test]
fn domain_and_trust_ids_must_be_uuids() {
    let f = formatter();
    let err = f
        .encode_at(&payload(USER, Scope::Domain("mydomain".into())), NOW)
        .unwrap_err();
    assert!(matches!(err, TokenError::InvalidPayload(_)), "{err:?}");
    let trust = Scope::Trust {
        project_id: PROJECT.into(),
        trust_id: "not-a-uuid".into(),
    };
    assert!(matches!(
        f.encode_at(&payload(USER, trust), NOW),
        Err(TokenError::InvalidPayload(_))
    ));

    // A different default domain id is configurable.
    let f = f.with_default_domain_id("mydomain");
    let p = payload(USER, Scope::Domain("mydomain".into()));
    let token = f.encode_at(&p, NOW).unwrap();
    assert_eq!(f.decode_at(&token, NOW).unwrap().payload, p);
    assert!(
        f.encode_at(&payload(USER, Scope::Domain("default".into())), NOW)
            .is_err()
    );
}

#[test]
fn methods_bitmask_matches_keystone() {
    let f = formatter();
    let methods_byte = |methods: &[&str]| {
        let mut p = payload("u", Scope::Unscoped);
        p.methods = methods.iter().map(|m| (*m).to_owned()).collect();
        // [0x95, 0, [0x92, 0xc2, 0xa1, 'u'], methods, ...]
        f.pack_payload(&p).unwrap()[6]
    };
    assert_eq!(methods_byte(&[]), 0);
    assert_eq!(methods_byte(&["external"]), 1);
    assert_eq!(methods_byte(&["password"]), 2);
    assert_eq!(methods_byte(&["token"]), 4);
    assert_eq!(methods_byte(&["oauth1"]), 8);
    assert_eq!(methods_byte(&["mapped"]), 16);
    assert_eq!(methods_byte(&["application_credential"]), 32);
    assert_eq!(methods_byte(&["password", "token"]), 6);
    assert_eq!(methods_byte(&["token", "password"]), 6);

    // Decoded highest bit first, as Keystone does.
    let mut p = payload(USER, Scope::Unscoped);
    p.methods = vec![
        "password".into(),
        "application_credential".into(),
        "external".into(),
    ];
    let token = f.encode_at(&p, NOW).unwrap();
    assert_eq!(
        f.decode_at(&token, NOW).unwrap().payload.methods,
        ["application_credential", "password", "external"]
    );

    p.methods = vec!["totp".into()];
    assert!(matches!(f.encode_at(&p, NOW), Err(TokenError::UnknownMethod(m)) if m == "totp"));
}

#[test]
fn method_list_is_configurable() {
    let keys = [generate_key().unwrap()];
    let methods: Vec<String> = ["password", "totp", "token"].map(String::from).to_vec();
    let f = TokenFormatter::new(&keys, methods.clone()).unwrap();
    assert_eq!(f.methods(), &methods[..]);
    let mut p = payload("u", Scope::Unscoped);
    p.methods = vec!["totp".into(), "token".into()];
    assert_eq!(f.pack_payload(&p).unwrap()[6], 6);
    let token = f.encode_at(&p, NOW).unwrap();
    assert_eq!(
        f.decode_at(&token, NOW).unwrap().payload.methods,
        ["token", "totp"]
    );

    // A bitmask naming methods beyond the list is rejected.
    let two = TokenFormatter::new(&keys, vec!["password".into(), "totp".into()]).unwrap();
    assert!(matches!(
        two.decode_at(&token, NOW),
        Err(TokenError::Invalid(_))
    ));

    let dup = TokenFormatter::new(&keys, vec!["password".into(), "password".into()]);
    assert!(matches!(dup, Err(TokenError::Config(_))));
    let many: Vec<String> = (0..65).map(|i| format!("m{i}")).collect();
    assert!(matches!(
        TokenFormatter::new(&keys, many),
        Err(TokenError::Config(_))
    ));
}

#[test]
fn padding_is_stripped_and_restored() {
    let f = formatter();
    let mut seen_mod = [false; 4];
    for n in 0..40 {
        let mut p = payload(&"x".repeat(n), Scope::Unscoped);
        p.audit_ids.clear();
        let token = f.encode_at(&p, NOW).unwrap();
        assert!(!token.contains('='));
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let m = token.len() % 4;
        seen_mod[m] = true;
        let mut padded = token.clone();
        if m != 0 {
            padded.push_str(&"=".repeat(4 - m));
        }
        assert_eq!(f.decode_at(&token, NOW).unwrap().payload, p);
        assert_eq!(f.decode_at(&padded, NOW).unwrap().payload, p);
    }
    // Fernet tokens are 1+8+16+16k+32 = 57+16k bytes: 1 or 2 '=' of padding.
    assert!(seen_mod[2] && seen_mod[3], "{seen_mod:?}");
}

#[test]
fn issued_at_is_the_fernet_timestamp() {
    let f = formatter();
    let p = payload(USER, Scope::Project(PROJECT.into()));
    let token = f.encode(&p).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let d = f.decode(&token).unwrap();
    assert!(d.issued_at.abs_diff(now) <= 2);
    assert_eq!(
        f.encode_at(&p, 42)
            .map(|t| f.decode_at(&t, 42).unwrap().issued_at)
            .unwrap(),
        42
    );
}

#[test]
fn expiry_is_checked_by_the_caller_not_by_fernet() {
    let f = formatter();
    let p = payload(USER, Scope::Project(PROJECT.into()));
    let token = f.encode_at(&p, NOW).unwrap();
    // Years later the token still decodes; is_expired tells.
    let d = f.decode_at(&token, NOW + 10 * 365 * 86400).unwrap();
    assert!(d.is_expired(UNIX_EPOCH + Duration::from_secs(NOW + 3600)));
    assert!(!d.is_expired(UNIX_EPOCH + Duration::from_secs(NOW + 3599)));
    // Tokens stamped more than 60 s in the future are refused.
    assert!(f.decode_at(&token, NOW - 60).is_ok());
    assert!(matches!(
        f.decode_at(&token, NOW - 61),
        Err(TokenError::Invalid(_))
    ));
}

#[test]
fn tokens_are_bounded_in_size() {
    let f = formatter();
    let mut p = payload(USER, Scope::Project(PROJECT.into()));
    p.audit_ids.push(random_audit_id());
    let token = f.encode_at(&p, NOW).unwrap();
    assert!(token.len() <= 255);

    let long = payload(&"u".repeat(200), Scope::Unscoped);
    assert!(matches!(
        f.encode_at(&long, NOW),
        Err(TokenError::TooLong { max: 255, .. })
    ));
    let roomy = f.clone().with_max_token_size(1024);
    let long_token = roomy.encode_at(&long, NOW).unwrap();
    assert!(long_token.len() > 255);
    assert_eq!(roomy.decode_at(&long_token, NOW).unwrap().payload, long);
    let err = f.decode_at(&long_token, NOW).unwrap_err();
    assert!(
        matches!(err, TokenError::Invalid("token too long")),
        "{err:?}"
    );
}

#[test]
fn invalid_tokens_are_rejected_without_echoing_them() {
    let f = formatter();
    let other = formatter();
    let token = f.encode_at(&payload(USER, Scope::Unscoped), NOW).unwrap();

    let mut bad = vec![
        String::new(),
        "x".into(),
        "not a token!".into(),
        "gAAAAA".into(),
        other
            .encode_at(&payload(USER, Scope::Unscoped), NOW)
            .unwrap(),
        token[..token.len() - 1].to_owned(),
        token[..token.len() - 4].to_owned(),
        format!("{token}AAAA"),
    ];
    for i in [0, 5, 20, 60, token.len() - 2] {
        let mut t = token.clone().into_bytes();
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        bad.push(String::from_utf8(t).unwrap());
    }
    for t in &bad {
        let err = f.decode_at(t, NOW).unwrap_err();
        assert!(matches!(err, TokenError::Invalid(_)), "{err:?}");
        assert!(err.is_invalid_token());
        let msg = format!("{err} {err:?}");
        assert!(t.len() < 8 || !msg.contains(&t[..8]), "{msg}");
    }
}

#[test]
fn malformed_payloads_never_panic() {
    let f = formatter();
    let mut p = payload(
        USER,
        Scope::Trust {
            project_id: PROJECT.into(),
            trust_id: OTHER.into(),
        },
    );
    p.audit_ids.push(random_audit_id());
    let packed = f.pack_payload(&p).unwrap();
    assert_eq!(f.unpack_payload(&packed).unwrap(), p);
    for n in 0..packed.len() {
        assert!(matches!(
            f.unpack_payload(&packed[..n]),
            Err(TokenError::Invalid(_))
        ));
    }
    let mut extra = packed.clone();
    extra.push(0xc0);
    assert!(matches!(
        f.unpack_payload(&extra),
        Err(TokenError::Invalid(_))
    ));
    for i in 0..packed.len() {
        for b in [0x00, 0x7f, 0xc0, 0xc4, 0xcb, 0xdd, 0xff] {
            let mut m = packed.clone();
            m[i] = b;
            let _ = f.unpack_payload(&m);
        }
    }
    // Versions Keystone defines but this crate does not decode.
    for v in [4u8, 5, 6, 7, 10, 11, 99] {
        let err = f.unpack_payload(&[0x95, v, 0xc0]).unwrap_err();
        assert!(matches!(err, TokenError::UnsupportedVersion(x) if x == v as u64));
    }
}

#[test]
fn bad_audit_ids_and_expiry_are_refused() {
    let f = formatter();
    let mut p = payload(USER, Scope::Unscoped);
    p.audit_ids = vec!["not base64!".into()];
    assert!(matches!(
        f.encode_at(&p, NOW),
        Err(TokenError::InvalidPayload(_))
    ));
    p.audit_ids = vec![random_audit_id()];
    p.expires_at = f64::NAN;
    assert!(matches!(
        f.encode_at(&p, NOW),
        Err(TokenError::InvalidPayload(_))
    ));
}

#[test]
fn formatter_construction_checks_keys() {
    let none: [&str; 0] = [];
    assert!(matches!(
        TokenFormatter::new(&none, default_auth_methods()),
        Err(TokenError::Config(_))
    ));
    let secret = "c2VjcmV0LWJ1dC13cm9uZy1sZW5ndGg=";
    let err = TokenFormatter::new(
        &[generate_key().unwrap().as_str(), secret],
        default_auth_methods(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("position 1"), "{msg}");
    assert!(!msg.contains(secret));
    let f = formatter();
    let dbg = format!("{f:?}");
    assert!(dbg.contains("keys: 2"), "{dbg}");
}

#[test]
fn formatter_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<TokenFormatter>();
    assert_send_sync::<TokenError>();
    let f = std::sync::Arc::new(formatter());
    let token = f.encode_at(&payload(USER, Scope::Unscoped), NOW).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (f, token) = (f.clone(), token.clone());
            std::thread::spawn(move || f.decode_at(&token, NOW).unwrap().issued_at)
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), NOW);
    }
}
