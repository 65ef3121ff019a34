//! Security group rule semantics (Neutron's `securitygroups_db` checks): protocols by name or
//! number, port ranges for port protocols, ICMP type/code, ethertype against the remote prefix
//! and the protocol, and the key that makes two rules duplicates.

use crate::errors;
use crate::ipam;
use crate::model::SecurityGroupRule;
use ferrostack_api::ApiError;

/// Protocol names and numbers (`neutron_lib.constants.IP_PROTOCOL_MAP`).
pub const PROTOCOLS: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ip", 0),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

/// Protocols with ports.
const PORT_PROTOCOLS: &[u8] = &[33, 132, 6, 17, 136];

/// IPv6-only protocols (names and numbers).
const IPV6_ONLY: &[&str] = &[
    "ipv6-encap",
    "ipv6-frag",
    "ipv6-icmp",
    "icmpv6",
    "ipv6-nonxt",
    "ipv6-opts",
    "ipv6-route",
    "41",
    "44",
    "58",
    "59",
    "60",
    "43",
];

fn protocol_list() -> String {
    let names: Vec<String> = std::iter::once("None".to_string())
        .chain(std::iter::once("'any'".to_string()))
        .chain(PROTOCOLS.iter().map(|(n, _)| format!("'{n}'")))
        .collect();
    format!("({})", names.join(", "))
}

/// Neutron's `convert_protocol`: `None`/`any` → any; a number 0..=255 stays as given; a
/// known name in lower case. Anything else is a 400.
pub fn convert_protocol(value: &serde_json::Value) -> Result<Option<String>, ApiError> {
    let invalid = |shown: String| {
        errors::bad(
            "SecurityGroupRuleInvalidProtocol",
            format!(
                "Security group rule protocol {shown} not supported. Only protocol values {} and integer representations [0 to 255] are supported.",
                protocol_list()
            ),
        )
    };
    match value {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(v) if (0..=255).contains(&v) => Ok(Some(v.to_string())),
            _ => Err(invalid(n.to_string())),
        },
        serde_json::Value::String(s) if s == "any" => Ok(None),
        serde_json::Value::String(s) => {
            if let Ok(v) = s.parse::<i64>() {
                return match (0..=255).contains(&v) {
                    true => Ok(Some(s.clone())),
                    false => Err(invalid(s.clone())),
                };
            }
            let lower = s.to_ascii_lowercase();
            match PROTOCOLS.iter().any(|(n, _)| *n == lower) {
                true => Ok(Some(lower)),
                false => Err(invalid(s.clone())),
            }
        }
        other => Err(invalid(other.to_string())),
    }
}

/// The protocol's number (`None` for any).
pub fn protocol_number(protocol: Option<&str>) -> Option<u8> {
    let p = protocol?;
    if let Ok(n) = p.parse::<u8>() {
        return Some(n);
    }
    PROTOCOLS.iter().find(|(n, _)| *n == p).map(|(_, v)| *v)
}

/// `[name, number]` as Neutron compares protocols (IPv6 ICMP aliases folded).
fn name_and_number(protocol: &str, ethertype: &str) -> (String, String) {
    let mut p = protocol.to_string();
    if ethertype == "IPv6" {
        if p == "icmp" || p == "icmpv6" {
            p = "ipv6-icmp".into();
        } else if p == "1" {
            p = "58".into();
        }
    }
    if let Some((_, n)) = PROTOCOLS.iter().find(|(name, _)| *name == p) {
        return (p, n.to_string());
    }
    if let Ok(n) = p.parse::<u8>()
        && let Some((name, _)) = PROTOCOLS.iter().find(|(_, v)| *v == n)
    {
        return (name.to_string(), p);
    }
    (p.clone(), p)
}

/// Validates and normalises a new rule as Neutron does: IPv6 ICMP names, the full port range
/// dropped, ports only for port protocols and ICMP (type 0-255, code needs a type), the remote
/// prefix canonical and of the rule's ethertype, IPv6-only protocols refused for IPv4, one
/// remote at most.
pub fn validate(rule: &mut SecurityGroupRule) -> Result<(), ApiError> {
    if rule.ethertype == "IPv6" && matches!(rule.protocol.as_deref(), Some("icmp") | Some("icmpv6"))
    {
        rule.protocol = Some("ipv6-icmp".into());
    }
    if rule.port_range_min == Some(1) && rule.port_range_max == Some(65535) {
        rule.port_range_min = None;
        rule.port_range_max = None;
    }
    if rule.port_range_min.is_some() || rule.port_range_max.is_some() {
        let Some(number) = protocol_number(rule.protocol.as_deref()) else {
            return Err(errors::bad(
                "SecurityGroupProtocolRequiredWithPorts",
                "Must also specify protocol if port range is given.",
            ));
        };
        if PORT_PROTOCOLS.contains(&number) {
            if rule.port_range_min == Some(0) || rule.port_range_max == Some(0) {
                return Err(errors::bad(
                    "SecurityGroupInvalidPortValue",
                    "Invalid value for port 0",
                ));
            }
            match (rule.port_range_min, rule.port_range_max) {
                (Some(a), Some(b)) if a <= b => {}
                _ => {
                    return Err(errors::bad(
                        "SecurityGroupInvalidPortRange",
                        "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                    ));
                }
            }
        } else if number == 1 || number == 58 {
            for (value, attr, field) in [
                (rule.port_range_min, "port_range_min", "type"),
                (rule.port_range_max, "port_range_max", "code"),
            ] {
                if let Some(v) = value
                    && !(0..=255).contains(&v)
                {
                    return Err(errors::bad(
                        "SecurityGroupInvalidIcmpValue",
                        format!(
                            "Invalid value for ICMP {field} ({attr}) {v}. It must be 0 to 255."
                        ),
                    ));
                }
            }
            if rule.port_range_min.is_none()
                && let Some(code) = rule.port_range_max
            {
                return Err(errors::bad(
                    "SecurityGroupMissingIcmpType",
                    format!(
                        "ICMP code (port-range-max) {code} is provided but ICMP type (port-range-min) is missing."
                    ),
                ));
            }
        } else {
            return Err(errors::bad(
                "SecurityGroupInvalidProtocolForPort",
                format!(
                    "Ports cannot be specified for protocol {number}. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE."
                ),
            ));
        }
    }
    if let Some(prefix) = &rule.remote_ip_prefix {
        let net = match ipam::parse_cidr(prefix) {
            Ok(net) => net,
            Err(Some(_)) => prefix
                .parse::<ipnet::IpNet>()
                .map(|n| n.trunc())
                .map_err(|_| invalid_cidr(prefix))?,
            Err(None) => return Err(invalid_cidr(prefix)),
        };
        let version = if net.network().is_ipv6() {
            "IPv6"
        } else {
            "IPv4"
        };
        if version != rule.ethertype {
            return Err(errors::bad(
                "SecurityGroupRuleParameterConflict",
                format!(
                    "Conflicting value ethertype {} for CIDR {prefix}",
                    rule.ethertype
                ),
            ));
        }
        rule.remote_ip_prefix = Some(net.to_string());
    }
    if rule.ethertype == "IPv4"
        && rule
            .protocol
            .as_deref()
            .is_some_and(|p| IPV6_ONLY.contains(&p))
    {
        return Err(errors::bad(
            "SecurityGroupEthertypeConflictWithProtocol",
            format!(
                "Invalid ethertype {} for protocol {}.",
                rule.ethertype,
                rule.protocol.as_deref().unwrap_or_default()
            ),
        ));
    }
    if rule.remote_ip_prefix.is_some() && rule.remote_group_id.is_some() {
        return Err(errors::bad(
            "SecurityGroupMultipleRemoteEntites",
            "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.",
        ));
    }
    Ok(())
}

fn invalid_cidr(prefix: &str) -> ApiError {
    errors::bad(
        "InvalidCIDR",
        format!("Invalid CIDR {prefix} given as IP prefix."),
    )
}

/// The key under which two rules are the same rule (Neutron's `_rule_to_key`).
pub fn key(rule: &SecurityGroupRule) -> String {
    let none = "+".to_string();
    let prefix = match rule.remote_ip_prefix.as_deref() {
        None | Some("0.0.0.0/0") | Some("::/0") => none.clone(),
        Some(p) => p.to_string(),
    };
    let protocol = match &rule.protocol {
        None => none.clone(),
        Some(p) => format!("{:?}", name_and_number(p, &rule.ethertype)),
    };
    let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_else(|| none.clone());
    [
        rule.direction.clone(),
        rule.ethertype.clone(),
        opt(rule.port_range_max),
        opt(rule.port_range_min),
        protocol,
        rule.remote_group_id.clone().unwrap_or_else(|| none.clone()),
        none.clone(),
        prefix,
        rule.security_group_id.clone(),
    ]
    .join("_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(protocol: Option<&str>, min: Option<i64>, max: Option<i64>) -> SecurityGroupRule {
        SecurityGroupRule {
            id: "r".into(),
            project_id: "p".into(),
            security_group_id: "sg".into(),
            direction: "ingress".into(),
            ethertype: "IPv4".into(),
            protocol: protocol.map(Into::into),
            port_range_min: min,
            port_range_max: max,
            remote_ip_prefix: None,
            remote_group_id: None,
            description: String::new(),
            created_at: String::new(),
            updated_at: String::new(),
            revision_number: 1,
        }
    }

    #[test]
    fn protocols_by_name_or_number() {
        assert_eq!(
            convert_protocol(&json!("TCP")).unwrap().as_deref(),
            Some("tcp")
        );
        assert_eq!(convert_protocol(&json!("6")).unwrap().as_deref(), Some("6"));
        assert_eq!(convert_protocol(&json!(17)).unwrap().as_deref(), Some("17"));
        assert_eq!(convert_protocol(&json!("any")).unwrap(), None);
        assert!(convert_protocol(&json!("256")).is_err());
        assert!(convert_protocol(&json!("bogus")).is_err());
    }

    #[test]
    fn port_ranges_follow_neutron() {
        assert!(validate(&mut rule(Some("tcp"), Some(22), Some(22))).is_ok());
        assert!(validate(&mut rule(Some("tcp"), Some(80), Some(22))).is_err());
        assert!(validate(&mut rule(Some("tcp"), Some(0), Some(22))).is_err());
        assert!(validate(&mut rule(None, Some(22), Some(22))).is_err());
        assert!(validate(&mut rule(Some("gre"), Some(1), Some(2))).is_err());
        assert!(validate(&mut rule(Some("icmp"), Some(8), Some(0))).is_ok());
        assert!(validate(&mut rule(Some("icmp"), Some(256), None)).is_err());
        assert!(validate(&mut rule(Some("icmp"), None, Some(3))).is_err());
        let mut full = rule(Some("tcp"), Some(1), Some(65535));
        validate(&mut full).unwrap();
        assert_eq!((full.port_range_min, full.port_range_max), (None, None));
    }

    #[test]
    fn prefixes_match_the_ethertype() {
        let mut r = rule(None, None, None);
        r.remote_ip_prefix = Some("10.0.0.5/24".into());
        validate(&mut r).unwrap();
        assert_eq!(r.remote_ip_prefix.as_deref(), Some("10.0.0.0/24"));
        let mut r6 = rule(None, None, None);
        r6.remote_ip_prefix = Some("2001:db8::/64".into());
        assert!(validate(&mut r6).is_err());
        let mut v4icmp6 = rule(Some("ipv6-icmp"), None, None);
        assert!(validate(&mut v4icmp6).is_err());
    }

    #[test]
    fn duplicates_compare_normalised_values() {
        let a = rule(Some("tcp"), Some(22), Some(22));
        let b = rule(Some("6"), Some(22), Some(22));
        assert_eq!(key(&a), key(&b));
        let mut any = rule(None, None, None);
        let mut zero = rule(None, None, None);
        zero.remote_ip_prefix = Some("0.0.0.0/0".into());
        assert_eq!(key(&any), key(&zero));
        any.direction = "egress".into();
        assert_ne!(key(&any), key(&zero));
    }
}
