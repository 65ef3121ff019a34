#!/usr/bin/env python3
"""Generate keystone_compat.json: Fernet tokens packed by Keystone's rules.

This is an independent re-statement of the packing rules of Keystone's
Fernet token provider (keystone/token/token_formatters.py), written for
Ferrostack's tests; it does not import or copy Keystone. It uses the same
libraries Keystone uses -- `msgpack` (>= 1.0, use_bin_type=True) and
`cryptography`'s Fernet -- so the bytes are those a Keystone server makes.

Rules restated:
  * payload = msgpack.packb((version,) + fields)
  * ids: (True, uuid.UUID(id).bytes) if the id parses as a UUID, else
    (False, id)  [attempt_convert_uuid_hex_to_bytes]
  * domain-scoped domain id: raw UUID bytes, or the default domain id string
  * trust id: raw UUID bytes
  * methods: sum of 2**index over [auth] methods
  * expires_at: float seconds since the epoch of the ISO expiry
  * audit ids: urlsafe_b64decode(audit_id + '==')
  * token: Fernet(primary).encrypt(payload) with '=' padding stripped

Run:  python gen_keystone_vectors.py > keystone_compat.json
Deterministic: keys, IVs and audit ids derive from fixed seeds.
"""

import base64
import datetime
import hashlib
import json
import struct
import sys
import uuid

import cryptography
import msgpack
from cryptography.fernet import Fernet

METHODS = ["external", "password", "token", "oauth1", "mapped",
           "application_credential"]
DEFAULT_DOMAIN_ID = "default"


def seeded(label, n):
    return hashlib.sha256(b"ferrostack-fernet-vectors:" + label.encode()).digest()[:n]


def seeded_uuid(label):
    return uuid.UUID(bytes=seeded(label, 16), version=4).hex


def seeded_audit_id(label):
    raw = uuid.UUID(bytes=seeded("audit:" + label, 16), version=4).bytes
    return base64.urlsafe_b64encode(raw).decode()[:-2]


KEYS = [base64.urlsafe_b64encode(seeded("key%d" % i, 32)).decode() for i in range(2)]


def pack_id(value):
    try:
        return (True, uuid.UUID(value).bytes)
    except ValueError:
        return (False, value)


def pack_methods(methods):
    return sum(2 ** METHODS.index(m) for m in methods)


def unpack_methods(value):
    # Keystone's convert_integer_to_method_list arithmetic.
    out = []
    for bit in sorted((2 ** i for i in range(len(METHODS))), reverse=True):
        if int(value / bit) == 1:
            out.append(METHODS[bit.bit_length() - 1])
            value -= bit
    return out


def expires_float(iso):
    dt = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ")
    return (dt - datetime.datetime(1970, 1, 1)).total_seconds()


def pack_audit(audit_id):
    return base64.urlsafe_b64decode(audit_id + "==")


def fields_for(case):
    uid = pack_id(case["user_id"])
    m = pack_methods(case["methods"])
    exp = expires_float(case["expires_at_iso"])
    audits = [pack_audit(a) for a in case["audit_ids"]]
    scope = case["scope"]
    kind = scope["type"]
    if kind == "unscoped":
        return 0, (uid, m, exp, audits)
    if kind == "domain":
        d = scope["domain_id"]
        b_d = d if d == DEFAULT_DOMAIN_ID else uuid.UUID(d).bytes
        return 1, (uid, m, b_d, exp, audits)
    if kind == "project":
        return 2, (uid, m, pack_id(scope["project_id"]), exp, audits)
    if kind == "trust":
        return 3, (uid, m, pack_id(scope["project_id"]), exp, audits,
                   uuid.UUID(scope["trust_id"]).bytes)
    if kind == "federated_unscoped":
        groups = [pack_id(g) for g in scope["group_ids"]]
        return 4, (uid, m, groups, pack_id(scope["idp_id"]),
                   scope["protocol_id"], exp, audits)
    if kind == "oauth1":
        return 7, (uid, m, pack_id(scope["project_id"]),
                   pack_id(scope["access_token_id"]), exp, audits)
    if kind == "system":
        return 8, (uid, m, scope["system"], exp, audits)
    if kind == "application_credential":
        return 9, (uid, m, pack_id(scope["project_id"]), exp, audits,
                   pack_id(scope["app_cred_id"]))
    raise ValueError(kind)


def make(case, index):
    version, fields = fields_for(case)
    payload = msgpack.packb((version,) + fields, use_bin_type=True)
    key = Fernet(KEYS[case["key_index"]])
    issued_at = 1767225600 + 3600 * index
    iv = seeded("iv:" + case["name"], 16)
    if hasattr(key, "_encrypt_from_parts"):
        token = key._encrypt_from_parts(payload, issued_at, iv)
    else:  # pragma: no cover - older/newer cryptography
        token = key.encrypt_at_time(payload, issued_at)
    token = token.rstrip(b"=").decode()
    out = dict(case)
    out.update(
        version=version,
        decoded_methods=unpack_methods(pack_methods(case["methods"])),
        expires_at=expires_float(case["expires_at_iso"]),
        expires_at_bits=struct.pack(">d", expires_float(case["expires_at_iso"])).hex(),
        payload_hex=payload.hex(),
        issued_at=issued_at,
        token=token,
        token_len=len(token),
    )
    return out


U = seeded_uuid
A = seeded_audit_id
EXP = "2030-01-02T03:04:05.000000Z"

CASES = [
    dict(name="unscoped_uuid_user", user_id=U("user1"), methods=["password"],
         scope=dict(type="unscoped"), audit_ids=[A("1")]),
    dict(name="unscoped_string_user_two_methods_microseconds", user_id="admin",
         methods=["token", "password"], scope=dict(type="unscoped"),
         audit_ids=[A("2a"), A("2b")], expires_at_iso="2030-01-02T03:04:05.123456Z"),
    dict(name="unscoped_long_string_user_no_methods",
         user_id="cn=admin,ou=users,dc=example,dc=org", methods=[],
         scope=dict(type="unscoped"), audit_ids=[A("3")]),
    dict(name="project_uuid", user_id=U("user1"), methods=["password"],
         scope=dict(type="project", project_id=U("project1")), audit_ids=[A("4")]),
    dict(name="project_string_id_second_key", user_id=U("user2"),
         methods=["external", "mapped"],
         scope=dict(type="project", project_id="service-project"),
         audit_ids=[A("5a"), A("5b")], key_index=1),
    dict(name="domain_uuid", user_id=U("user1"), methods=["password"],
         scope=dict(type="domain", domain_id=U("domain1")), audit_ids=[A("6")]),
    dict(name="domain_default", user_id="admin", methods=["password", "token"],
         scope=dict(type="domain", domain_id=DEFAULT_DOMAIN_ID), audit_ids=[A("7")]),
    dict(name="trust", user_id=U("trustee"), methods=["token"],
         scope=dict(type="trust", project_id=U("project1"), trust_id=U("trust1")),
         audit_ids=[A("8a"), A("8b")]),
    dict(name="system_all", user_id=U("admin"), methods=["password"],
         scope=dict(type="system", system="all"), audit_ids=[A("9")]),
    dict(name="application_credential_uuid", user_id=U("user3"),
         methods=["application_credential"],
         scope=dict(type="application_credential", project_id=U("project2"),
                    app_cred_id=U("appcred1")),
         audit_ids=[A("10")]),
    dict(name="application_credential_string_ids_second_key", user_id="svc",
         methods=["application_credential"],
         scope=dict(type="application_credential", project_id="demo",
                    app_cred_id="my-app-cred"),
         audit_ids=[A("11")], key_index=1),
    dict(name="unsupported_federated_unscoped", user_id=U("feduser"),
         methods=["mapped"],
         scope=dict(type="federated_unscoped", group_ids=[U("group1")],
                    idp_id="myidp", protocol_id="saml2"),
         audit_ids=[A("12")], unsupported_version=4),
    dict(name="unsupported_oauth1", user_id=U("user1"), methods=["oauth1"],
         scope=dict(type="oauth1", project_id=U("project1"),
                    access_token_id=U("access1")),
         audit_ids=[A("13")], unsupported_version=7),
]


def main():
    cases = []
    for i, case in enumerate(CASES):
        case.setdefault("expires_at_iso", EXP)
        case.setdefault("key_index", 0)
        cases.append(make(case, i))
    doc = dict(
        generator="crates/fernet/tests/vectors/gen_keystone_vectors.py",
        msgpack_version=".".join(map(str, msgpack.version)),
        cryptography_version=cryptography.__version__,
        methods=METHODS,
        default_domain_id=DEFAULT_DOMAIN_ID,
        keys=KEYS,
        cases=cases,
    )
    json.dump(doc, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
