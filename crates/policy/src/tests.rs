//! Behaviour tests through the public API.

use serde_json::{Value, json};

use crate::{Enforcer, PolicyError, RuleDefault, token_scope};

const fn rule(name: &'static str, check_str: &'static str) -> RuleDefault {
    RuleDefault {
        name,
        check_str,
        description: "",
        scope_types: &[],
    }
}

const fn scoped(
    name: &'static str,
    check_str: &'static str,
    scope_types: &'static [&'static str],
) -> RuleDefault {
    RuleDefault {
        name,
        check_str,
        description: "",
        scope_types,
    }
}

fn enforcer(rules: &[RuleDefault]) -> Enforcer {
    let mut e = Enforcer::new(true);
    e.register(rules).unwrap();
    e
}

/// Evaluates a single check string.
fn eval(check: &'static str, target: &Value, creds: &Value) -> bool {
    let e = enforcer(&[rule("t", check)]);
    e.authorize("t", target, creds)
}

fn none() -> Value {
    json!({})
}

#[test]
fn enforcer_is_send_sync_and_shareable() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Enforcer>();
    let e = std::sync::Arc::new(enforcer(&[rule("a", "role:x")]));
    let e2 = e.clone();
    let creds = json!({"roles": ["x"]});
    let ok = std::thread::spawn(move || e2.authorize("a", &json!({}), &creds))
        .join()
        .unwrap();
    assert!(ok);
}

#[test]
fn constants_and_empty() {
    assert!(eval("@", &none(), &none()));
    assert!(!eval("!", &none(), &none()));
    assert!(eval("", &none(), &none()));
    assert!(eval("(@)", &none(), &none()));
    assert!(!eval("not @", &none(), &none()));
    assert!(eval("not !", &none(), &none()));
}

#[test]
fn precedence_and_parentheses_evaluate_like_oslo() {
    // not > and > or
    assert!(eval("@ or ! and !", &none(), &none())); // @ or (! and !)
    assert!(!eval("(@ or !) and !", &none(), &none()));
    assert!(eval("! and ! or @", &none(), &none())); // (! and !) or @
    assert!(!eval("! and (! or @)", &none(), &none()));
    assert!(eval("not ! and @", &none(), &none())); // (not !) and @
    assert!(!eval("not (! or @)", &none(), &none()));
    assert!(eval("not ! or !", &none(), &none()));
    assert!(!eval("not (@ and @) or ! and @", &none(), &none()));
    assert!(eval("((((@))))", &none(), &none()));
    let creds = json!({"roles": ["a", "b"]});
    assert!(eval("role:a and (role:c or role:b)", &none(), &creds));
    assert!(!eval("role:a and (role:c or not role:b)", &none(), &creds));
    assert!(eval("role:c or role:a and role:b", &none(), &creds));
    assert!(!eval("(role:c or role:a) and role:d", &none(), &creds));
    assert!(eval("role:a AND NOT role:c", &none(), &creds));
}

#[test]
fn roles_are_case_insensitive() {
    let creds = json!({"roles": ["Reader", "MEMBER"]});
    assert!(eval("role:reader", &none(), &creds));
    assert!(eval("role:READER", &none(), &creds));
    assert!(eval("role:Member", &none(), &creds));
    assert!(!eval("role:admin", &none(), &creds));
    // No roles at all, or roles not a list: denied.
    assert!(!eval("role:reader", &none(), &json!({})));
    assert!(!eval("role:reader", &none(), &json!({"roles": "reader"})));
    // Role name substituted from the target.
    let target = json!({"target.role.name": "member"});
    assert!(eval("role:%(target.role.name)s", &target, &creds));
    assert!(!eval(
        "role:%(target.role.name)s",
        &json!({"target": {"role": {}}}),
        &creds
    ));
}

#[test]
fn generic_checks_against_creds() {
    let creds = json!({
        "user_id": "u1",
        "is_admin": true,
        "count": 3,
        "token": {"domain": {"id": "d1"}, "roles": [{"name": "r1"}, {"name": "r2"}]},
        "groups": ["g1", "g2"],
        "nothing": null,
    });
    assert!(eval("user_id:u1", &none(), &creds));
    assert!(!eval("user_id:u2", &none(), &creds));
    assert!(eval("is_admin:True", &none(), &creds));
    assert!(!eval("is_admin:true", &none(), &creds));
    assert!(!eval("is_admin:1", &none(), &creds)); // str(True) != "1", as in oslo
    assert!(eval("count:3", &none(), &creds));
    assert!(eval("token.domain.id:d1", &none(), &creds));
    assert!(!eval("token.domain.name:d1", &none(), &creds));
    assert!(!eval("missing.key:x", &none(), &creds));
    assert!(!eval("user_id.deeper:u1", &none(), &creds));
    // Lists match if any element matches, also in the middle of a path.
    assert!(eval("groups:g2", &none(), &creds));
    assert!(!eval("groups:g3", &none(), &creds));
    assert!(eval("token.roles.name:r2", &none(), &creds));
    assert!(!eval("token.roles.name:r3", &none(), &creds));
    assert!(eval("nothing:None", &none(), &creds));
    // Match text containing colons belongs to the value.
    assert!(eval("url:http://x", &none(), &json!({"url": "http://x"})));
}

#[test]
fn generic_checks_with_target_substitution() {
    let creds = json!({"project_id": "p1", "user_id": "u1", "enabled_flag": true, "n": 7});
    // Flat key.
    assert!(eval(
        "project_id:%(project_id)s",
        &json!({"project_id": "p1"}),
        &creds
    ));
    assert!(!eval(
        "project_id:%(project_id)s",
        &json!({"project_id": "p2"}),
        &creds
    ));
    // Missing key in the target: false, not an error.
    assert!(!eval("project_id:%(project_id)s", &json!({}), &creds));
    assert!(!eval(
        "project_id:%(project_id)s",
        &json!("not an object"),
        &creds
    ));
    // Dotted key: flat first, then nested.
    let key = "user_id:%(target.user.id)s";
    assert!(eval(key, &json!({"target.user.id": "u1"}), &creds));
    assert!(eval(
        key,
        &json!({"target": {"user": {"id": "u1"}}}),
        &creds
    ));
    assert!(!eval(
        key,
        &json!({"target": {"user": {"id": "u2"}}}),
        &creds
    ));
    assert!(
        eval(
            key,
            &json!({"target.user.id": "u1", "target": {"user": {"id": "u2"}}}),
            &creds
        ),
        "the flat key wins"
    );
    assert!(!eval(key, &json!({"target": {"user": "u1"}}), &creds));
    // Values compare as Python str(): bools and numbers on both sides.
    assert!(eval(
        "enabled_flag:%(enabled)s",
        &json!({"enabled": true}),
        &creds
    ));
    assert!(eval(
        "enabled_flag:%(enabled)s",
        &json!({"enabled": "True"}),
        &creds
    ));
    assert!(eval("n:%(n)s", &json!({"n": 7}), &creds));
    assert!(eval("n:%(n)s", &json!({"n": "7"}), &creds));
    assert!(!eval("n:%(n)s", &json!({"n": 7.0}), &creds));
    // Templates mixing text and substitutions, and %% escapes.
    assert!(eval("user_id:u%(num)s", &json!({"num": 1}), &creds));
    assert!(eval("pct:50%%", &none(), &json!({"pct": "50%"})));
}

#[test]
fn literal_left_hand_sides() {
    assert!(eval("True:%(enabled)s", &json!({"enabled": true}), &none()));
    assert!(!eval(
        "True:%(enabled)s",
        &json!({"enabled": false}),
        &none()
    ));
    assert!(!eval("True:%(enabled)s", &json!({}), &none()));
    assert!(eval(
        "'member':%(role.name)s",
        &json!({"role.name": "member"}),
        &none()
    ));
    assert!(eval(
        "\"member\":%(role.name)s",
        &json!({"role": {"name": "member"}}),
        &none()
    ));
    assert!(!eval(
        "'member':%(role.name)s",
        &json!({"role.name": "admin"}),
        &none()
    ));
    assert!(eval("1:%(x)s", &json!({"x": 1}), &none()));
    assert!(eval("None:%(x)s", &json!({"x": null}), &none()));
    // A literal is not looked up in the creds.
    assert!(!eval(
        "True:%(x)s",
        &json!({"x": "y"}),
        &json!({"True": "y"})
    ));
}

#[test]
fn http_checks_are_denied() {
    assert!(!eval(
        "http://example.com/%(x)s",
        &json!({"x": "1"}),
        &none()
    ));
    assert!(!eval("https://example.com", &none(), &none()));
    assert!(eval("https://example.com or @", &none(), &none()));
}

#[test]
fn rule_references_are_late_bound() {
    let mut e = enforcer(&[
        rule("admin_required", "role:admin"),
        rule("owner", "user_id:%(user_id)s"),
        rule("action", "rule:admin_required or rule:owner"),
        rule("dangling", "rule:does_not_exist"),
    ]);
    let admin = json!({"roles": ["admin"], "user_id": "a"});
    let root = json!({"roles": ["root"], "user_id": "r"});
    let target = json!({"user_id": "someone"});
    assert!(e.authorize("action", &target, &admin));
    assert!(!e.authorize("action", &target, &root));
    assert!(e.authorize("action", &json!({"user_id": "r"}), &root));
    assert!(!e.authorize("dangling", &target, &admin));

    // Overriding a referenced rule changes the referencing rule.
    e.load_overrides("admin_required: role:root\n").unwrap();
    assert!(!e.authorize("action", &target, &admin));
    assert!(e.authorize("action", &target, &root));

    // A later override that defines the missing rule is picked up too.
    e.load_overrides("does_not_exist: '@'\n").unwrap();
    assert!(e.authorize("dangling", &target, &admin));
}

#[test]
fn overrides_replace_defaults() {
    let mut e = enforcer(&[rule("a", "role:x"), rule("b", "role:y")]);
    let creds = json!({"roles": ["y"]});
    assert!(!e.authorize("a", &none(), &creds));
    e.load_overrides(r#"{"a": "role:y or role:z", "custom": "role:q"}"#)
        .unwrap();
    assert!(e.authorize("a", &none(), &creds));
    assert_eq!(e.check_str("a"), Some("role:y or role:z"));
    assert_eq!(e.default_rule("a").unwrap().check_str, "role:x");
    // Override-only names are kept but are not registered actions.
    assert_eq!(e.check_str("custom"), Some("role:q"));
    assert!(matches!(
        e.enforce("custom", &none(), &json!({"roles": ["q"]})),
        Err(PolicyError::NotRegistered(n)) if n == "custom"
    ));
    assert_eq!(e.rule_names().collect::<Vec<_>>(), ["a", "b", "custom"]);
    // null means the empty check string: always allowed.
    e.load_overrides("b: ~\n").unwrap();
    assert!(e.authorize("b", &none(), &json!({})));
    // Empty documents are fine and change nothing.
    e.load_overrides("").unwrap();
    e.load_overrides("# only a comment\n").unwrap();
    assert_eq!(e.check_str("b"), Some(""));
}

#[test]
fn overrides_loaded_before_registration_still_apply() {
    let mut e = Enforcer::new(false);
    e.load_overrides("a: role:y\n").unwrap();
    e.register(&[rule("a", "role:x")]).unwrap();
    assert!(e.authorize("a", &none(), &json!({"roles": ["y"]})));
    assert!(!e.authorize("a", &none(), &json!({"roles": ["x"]})));
}

#[test]
fn override_errors_name_the_rule_and_apply_nothing() {
    let mut e = enforcer(&[rule("a", "role:x")]);
    let err = e
        .load_overrides("a: role:y\nbroken: role:x and\n")
        .unwrap_err();
    match err {
        PolicyError::Parse { rule, message } => {
            assert_eq!(rule, "broken");
            assert!(!message.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(e.check_str("a"), Some("role:x"), "nothing applied");
    assert!(e.check_str("broken").is_none());

    let err = e.load_overrides("a: 5\n").unwrap_err();
    assert!(matches!(err, PolicyError::Parse { rule, .. } if rule == "a"));
    for bad in ["- a\n- b\n", "a: [\n", "a: x\n---\nb: y\n"] {
        assert!(
            matches!(e.load_overrides(bad), Err(PolicyError::Parse { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn overrides_from_file() {
    let dir = std::env::temp_dir().join(format!("ferrostack-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.yaml");
    std::fs::write(&path, "# operator policy\n\"a\": \"role:y\"\n").unwrap();
    let mut e = enforcer(&[rule("a", "role:x")]);
    e.load_overrides_file(&path).unwrap();
    assert!(e.authorize("a", &none(), &json!({"roles": ["y"]})));
    let missing = dir.join("missing.yaml");
    let err = e.load_overrides_file(&missing).unwrap_err();
    assert!(matches!(&err, PolicyError::Io(_)));
    assert!(err.to_string().contains("missing.yaml"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_action_is_not_registered() {
    let e = enforcer(&[rule("a", "@")]);
    let err = e.enforce("nope", &none(), &none()).unwrap_err();
    assert!(matches!(&err, PolicyError::NotRegistered(n) if n == "nope"));
    assert!(!err.is_denial());
    assert!(!e.authorize("nope", &none(), &none()));
    assert!(!Enforcer::new(false).authorize("a", &none(), &none()));
}

#[test]
fn forbidden_names_the_action() {
    let e = enforcer(&[rule("compute:delete", "!")]);
    let err = e.enforce("compute:delete", &none(), &none()).unwrap_err();
    assert!(matches!(&err, PolicyError::Forbidden { action } if action == "compute:delete"));
    assert!(err.is_denial());
}

#[test]
fn registration_errors() {
    let mut e = Enforcer::new(true);
    let err = e
        .register(&[
            rule("good", "@"),
            rule("identity:bad", "role:a or or role:b"),
        ])
        .unwrap_err();
    assert!(matches!(&err, PolicyError::Parse { rule, .. } if rule == "identity:bad"));
    assert!(err.to_string().contains("identity:bad"));
    assert!(!e.is_registered("good"), "registration is all-or-nothing");
    e.register(&[rule("good", "@")]).unwrap();
    assert!(matches!(
        e.register(&[rule("good", "!")]),
        Err(PolicyError::Parse { rule, .. }) if rule == "good"
    ));
    assert!(e.register(&[rule("x", "@"), rule("x", "@")]).is_err());
    // Another service registering the same base rule with the same check string is fine.
    e.register(&[rule("good", "@"), rule("other", "@")])
        .unwrap();
    assert!(e.is_registered("other"));
    for bad in ["admin", "(role:a", "role:a)", "'quoted'", "  ", "a:%(x)d"] {
        let mut e = Enforcer::new(true);
        assert!(
            matches!(e.register(&[rule("r", bad)]), Err(PolicyError::Parse { rule, .. }) if rule == "r"),
            "{bad:?}"
        );
    }
}

#[test]
fn token_scope_detection() {
    assert_eq!(token_scope(&json!({"system_scope": "all"})), Some("system"));
    assert_eq!(token_scope(&json!({"system": "all"})), Some("system"));
    assert_eq!(token_scope(&json!({"domain_id": "d"})), Some("domain"));
    assert_eq!(
        token_scope(&json!({"domain_id": "d", "project_id": null})),
        Some("domain")
    );
    assert_eq!(
        token_scope(&json!({"project_id": "p", "domain_id": null})),
        Some("project")
    );
    assert_eq!(
        token_scope(&json!({"project_id": "p", "project_domain_id": "d"})),
        Some("project")
    );
    assert_eq!(
        token_scope(&json!({"system_scope": null, "domain_id": null, "project_id": null})),
        None
    );
    assert_eq!(token_scope(&json!({"user_id": "u"})), None);
}

#[test]
fn scope_enforcement_on() {
    let rules = [
        scoped("sys", "@", &["system"]),
        scoped("proj", "@", &["project"]),
        scoped("any", "@", &[]),
        scoped("denied", "!", &["system"]),
    ];
    let e = enforcer(&rules);
    let system = json!({"system_scope": "all", "roles": []});
    let project = json!({"project_id": "p", "roles": []});
    let unscoped = json!({"user_id": "u", "roles": []});
    assert!(e.enforce("sys", &none(), &system).is_ok());
    match e.enforce("sys", &none(), &project).unwrap_err() {
        PolicyError::InvalidScope {
            action,
            required,
            token_scope,
        } => {
            assert_eq!(action, "sys");
            assert_eq!(required, ["system"]);
            assert_eq!(token_scope, "project");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(e.enforce("proj", &none(), &project).is_ok());
    assert!(matches!(
        e.enforce("proj", &none(), &unscoped),
        Err(PolicyError::InvalidScope { token_scope, .. }) if token_scope == "unscoped"
    ));
    assert!(e.enforce("any", &none(), &unscoped).is_ok());
    // Scope is checked before the rule itself.
    assert!(matches!(
        e.enforce("denied", &none(), &project),
        Err(PolicyError::InvalidScope { .. })
    ));
    assert!(matches!(
        e.enforce("denied", &none(), &system),
        Err(PolicyError::Forbidden { .. })
    ));
}

#[test]
fn scope_enforcement_off() {
    let mut e = Enforcer::new(false);
    assert!(!e.enforce_scope());
    e.register(&[scoped("sys", "role:admin", &["system"])])
        .unwrap();
    let project_admin = json!({"project_id": "p", "roles": ["admin"]});
    let project_member = json!({"project_id": "p", "roles": ["member"]});
    assert!(e.enforce("sys", &none(), &project_admin).is_ok());
    assert!(matches!(
        e.enforce("sys", &none(), &project_member),
        Err(PolicyError::Forbidden { .. })
    ));
}

const KEYSTONE_GET_USER: &str = "(role:reader and system_scope:all) or \
     (role:reader and token.domain.id:%(target.user.domain_id)s) or \
     user_id:%(target.user.id)s";

fn keystone() -> Enforcer {
    enforcer(&[
        rule("admin_required", "role:admin or is_admin:1"),
        scoped(
            "identity:get_user",
            KEYSTONE_GET_USER,
            &["system", "domain", "project"],
        ),
        scoped(
            "identity:delete_user",
            "rule:admin_required",
            &["system", "domain"],
        ),
    ])
}

#[test]
fn keystone_get_user() {
    let e = keystone();
    let target = json!({"target": {"user": {"id": "u2", "domain_id": "d1"}}});
    let flat_target = json!({"target.user.id": "u2", "target.user.domain_id": "d1"});
    let system_reader = json!({"user_id": "u1", "system_scope": "all", "roles": ["reader"]});
    let domain_reader = json!({
        "user_id": "u1", "domain_id": "d1", "roles": ["Reader"],
        "token": {"domain": {"id": "d1"}}
    });
    let other_domain_reader = json!({
        "user_id": "u1", "domain_id": "d9", "roles": ["reader"],
        "token": {"domain": {"id": "d9"}}
    });
    let self_user = json!({"user_id": "u2", "project_id": "p", "roles": ["member"]});
    let stranger = json!({"user_id": "u3", "project_id": "p", "roles": ["reader"]});
    for t in [&target, &flat_target] {
        assert!(e.authorize("identity:get_user", t, &system_reader));
        assert!(e.authorize("identity:get_user", t, &domain_reader));
        assert!(!e.authorize("identity:get_user", t, &other_domain_reader));
        assert!(e.authorize("identity:get_user", t, &self_user));
        assert!(!e.authorize("identity:get_user", t, &stranger));
    }
    // Unscoped tokens are rejected by scope enforcement.
    let unscoped = json!({"user_id": "u2", "roles": []});
    assert!(matches!(
        e.enforce("identity:get_user", &target, &unscoped),
        Err(PolicyError::InvalidScope { .. })
    ));
}

#[test]
fn keystone_admin_required() {
    let e = keystone();
    let t = json!({});
    let cases = [
        (json!({"system_scope": "all", "roles": ["admin"]}), true),
        (json!({"system_scope": "all", "roles": ["ADMIN"]}), true),
        (
            json!({"system_scope": "all", "roles": ["member"], "is_admin": 1}),
            true,
        ),
        (
            json!({"system_scope": "all", "roles": ["member"], "is_admin": "1"}),
            true,
        ),
        // str(True) == "True", not "1": oslo denies this too.
        (
            json!({"system_scope": "all", "roles": ["member"], "is_admin": true}),
            false,
        ),
        (
            json!({"system_scope": "all", "roles": ["member"], "is_admin": 0}),
            false,
        ),
        (json!({"system_scope": "all", "roles": []}), false),
    ];
    for (creds, expected) in cases {
        assert_eq!(
            e.authorize("identity:delete_user", &t, &creds),
            expected,
            "{creds}"
        );
    }
}

#[test]
fn system_alias_for_system_scope() {
    // oslo.policy copies creds["system_scope"] into creds["system"].
    let creds = json!({"system_scope": "all"});
    assert!(eval("system:all", &none(), &creds));
    assert!(eval("system_scope:all", &none(), &creds));
    assert!(!eval("system:all", &none(), &json!({"project_id": "p"})));
}

#[test]
fn cycles_are_denied_without_overflowing() {
    let mut e = enforcer(&[
        rule("a", "rule:b"),
        rule("b", "rule:a"),
        rule("self", "rule:self"),
        rule("fan", "rule:fan or rule:fan or rule:fan"),
        rule("guarded", "role:admin or rule:a"),
        rule("uses_guarded", "rule:guarded"),
        rule("not_self", "not rule:not_self"),
        rule("not_a", "not rule:a"),
        rule("p", "not rule:q"),
        rule("q", "rule:p"),
    ]);
    let admin = json!({"roles": ["admin"]});
    assert!(!e.authorize("a", &none(), &admin));
    assert!(!e.authorize("self", &none(), &admin));
    assert!(!e.authorize("fan", &none(), &admin));
    // `not` cannot turn a cycle into an allow.
    assert!(!e.authorize("not_self", &none(), &admin));
    assert!(!e.authorize("not_a", &none(), &admin));
    assert!(!e.authorize("p", &none(), &admin));
    assert!(!e.authorize("q", &none(), &admin));
    // Short-circuiting before the cycle still works.
    assert!(e.authorize("guarded", &none(), &admin));
    assert!(e.authorize("uses_guarded", &none(), &admin));
    assert!(!e.authorize("uses_guarded", &none(), &json!({"roles": []})));

    // A long (acyclic) chain deeper than the limit is denied, not a crash.
    let names: Vec<&'static str> = (0..100)
        .map(|i| &*Box::leak(format!("chain{i:03}").into_boxed_str()))
        .collect();
    let checks: Vec<&'static str> = (0..100)
        .map(|i| {
            if i == 99 {
                "@"
            } else {
                &*Box::leak(format!("rule:chain{:03}", i + 1).into_boxed_str())
            }
        })
        .collect();
    let defaults: Vec<RuleDefault> = names.iter().zip(&checks).map(|(n, c)| rule(n, c)).collect();
    e.register(&defaults).unwrap();
    assert!(!e.authorize("chain000", &none(), &none()));
    e.register(&[rule("not_chain", "not rule:chain000")])
        .unwrap();
    assert!(!e.authorize("not_chain", &none(), &none()));
    assert!(e.authorize("chain090", &none(), &none()));
}

#[test]
fn validate_reports_cycles_and_missing_rules() {
    let mut e = enforcer(&[
        rule("a", "rule:b"),
        rule("b", "rule:c or rule:a"),
        rule("c", "rule:missing"),
        rule("self", "not rule:self"),
        rule("fine", "rule:c"),
    ]);
    let problems = e.validate();
    assert!(
        problems.contains(&"cyclic rule reference: a -> b -> a".to_owned()),
        "{problems:?}"
    );
    assert!(
        problems.contains(&"cyclic rule reference: self -> self".to_owned()),
        "{problems:?}"
    );
    assert!(
        problems.contains(&"rule \"c\" references undefined rule \"missing\"".to_owned()),
        "{problems:?}"
    );
    assert_eq!(problems.len(), 3, "{problems:?}");

    e.load_overrides("b: rule:c\nmissing: '@'\nself: '@'\n")
        .unwrap();
    assert!(e.validate().is_empty(), "{:?}", e.validate());
    assert!(keystone().validate().is_empty());
}

#[test]
fn dump_is_sorted_yaml_that_round_trips() {
    let mut e = Enforcer::new(true);
    e.register(&[
        RuleDefault {
            name: "z:rule",
            check_str: "role:admin or user_id:%(user_id)s",
            description: "Last rule.\nSecond line.",
            scope_types: &["project"],
        },
        rule("a:rule", "\"quoted\":%(x)s or @"),
        rule("m:rule", ""),
    ])
    .unwrap();
    e.load_overrides("m:rule: '!'\nextra: role:q\n").unwrap();
    let text = e.dump();
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(
        keys,
        [
            r#""a:rule": "\"quoted\":%(x)s or @""#,
            r#""extra": "role:q""#,
            r#""m:rule": "!""#,
            r#""z:rule": "role:admin or user_id:%(user_id)s""#,
        ]
    );
    assert!(text.contains("# Last rule.\n# Second line.\n# scope_types: project\n"));
    assert!(text.contains("# default: \"\"\n\"m:rule\""));

    // Loading the dump as overrides reproduces the same effective rules.
    let mut copy = Enforcer::new(true);
    copy.load_overrides(&text).unwrap();
    for name in e.rule_names() {
        assert_eq!(copy.check_str(name), e.check_str(name), "{name}");
    }
}

#[test]
fn many_evaluations_stay_correct() {
    let e = keystone();
    let target = json!({"target": {"user": {"id": "u2", "domain_id": "d1"}}});
    let allowed = json!({
        "user_id": "u1", "domain_id": "d1", "roles": ["member", "reader"],
        "token": {"domain": {"id": "d1"}}
    });
    let denied = json!({
        "user_id": "u1", "domain_id": "d2", "roles": ["member", "reader"],
        "token": {"domain": {"id": "d2"}}
    });
    let mut granted = 0u32;
    for i in 0..100_000 {
        let (creds, expect) = if i % 2 == 0 {
            (&allowed, true)
        } else {
            (&denied, false)
        };
        let ok = e.enforce("identity:get_user", &target, creds).is_ok();
        assert_eq!(ok, expect);
        granted += u32::from(ok);
    }
    assert_eq!(granted, 50_000);
}
