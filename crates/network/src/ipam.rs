//! Address arithmetic for IPAM (Neutron's `ipam/utils.py` and the subnet validations): CIDRs
//! in canonical form, default gateways and allocation pools, pool validation, the next free
//! address of a subnet, EUI-64 addresses for SLAAC subnets and free prefixes of subnet pools.
//! Pure functions: the store decides what is taken, under the subnet's lock.

use ipnet::IpNet;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address as a number (IPv4 in the low 32 bits).
pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address `n` of the family `v6`.
pub fn from_u128(n: u128, v6: bool) -> IpAddr {
    match v6 {
        true => IpAddr::V6(Ipv6Addr::from(n)),
        false => IpAddr::V4(Ipv4Addr::from(n as u32)),
    }
}

/// 4 or 6.
pub fn version(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 6,
    }
}

/// Parses an address (canonical text form on output through `to_string`).
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    text.trim().parse().ok()
}

/// Parses a CIDR whose host bits are clear: `Err` carries the canonical form Neutron suggests
/// ("'10.0.0.1/24' isn't a recommended CIDR, use '10.0.0.0/24' instead"), or `None` when the
/// text is no CIDR at all. A bare address is a host prefix.
pub fn parse_cidr(text: &str) -> Result<IpNet, Option<String>> {
    let net: IpNet = match text.parse() {
        Ok(n) => n,
        Err(_) => match parse_ip(text) {
            Some(ip) => IpNet::from(ip),
            None => return Err(None),
        },
    };
    match net.trunc() == net {
        true => Ok(net),
        false => Err(Some(net.trunc().to_string())),
    }
}

/// The first and last address of `net` as numbers.
pub fn bounds(net: &IpNet) -> (u128, u128) {
    (to_u128(net.network()), to_u128(net.broadcast()))
}

/// A range of addresses, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub first: u128,
    pub last: u128,
}

impl Range {
    /// Whether the two ranges share an address.
    pub fn overlaps(&self, other: &Range) -> bool {
        self.first <= other.last && other.first <= self.last
    }
    /// Whether `n` is in the range.
    pub fn contains(&self, n: u128) -> bool {
        self.first <= n && n <= self.last
    }
}

/// The default gateway of a subnet: its first host address (none for a single address).
pub fn default_gateway(net: &IpNet) -> Option<IpAddr> {
    let (first, last) = bounds(net);
    (first < last).then(|| from_u128(first + 1, net.network().is_ipv6()))
}

/// The default allocation pools (Neutron's `generate_pools`): every host address except the
/// network address, the IPv4 broadcast and the gateway.
pub fn default_pools(net: &IpNet, gateway: Option<IpAddr>) -> Vec<Range> {
    let (first, last) = bounds(net);
    if first == last {
        return vec![Range { first, last }];
    }
    let v4 = !net.network().is_ipv6();
    let start = first + 1;
    let end = last - u128::from(v4);
    if start >= end {
        return Vec::new();
    }
    let mut pools = vec![Range {
        first: start,
        last: end,
    }];
    if let Some(gw) = gateway.map(to_u128) {
        pools = pools
            .into_iter()
            .flat_map(|r| {
                if !r.contains(gw) {
                    return vec![r];
                }
                let mut parts = Vec::new();
                if gw > r.first {
                    parts.push(Range {
                        first: r.first,
                        last: gw - 1,
                    });
                }
                if gw < r.last {
                    parts.push(Range {
                        first: gw + 1,
                        last: r.last,
                    });
                }
                parts
            })
            .collect();
    }
    pools
}

/// Why a set of allocation pools is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum PoolError {
    /// Start after end, or an address of the other family.
    Invalid(usize),
    /// Outside the subnet's usable addresses.
    OutOfBounds(usize),
    /// Two pools share addresses.
    Overlapping(usize, usize),
}

/// Checks pools against the subnet as Neutron's `validate_allocation_pools` does: ordered ends
/// of the subnet's family, within its usable addresses (no network address; no IPv4 broadcast
/// below /31), no overlaps.
pub fn validate_pools(net: &IpNet, pools: &[(IpAddr, IpAddr)]) -> Result<Vec<Range>, PoolError> {
    let v6 = net.network().is_ipv6();
    let (first, last) = bounds(net);
    let (usable_first, usable_last) = match (v6, net.prefix_len()) {
        (false, p) if p > 30 => (first, last),
        (false, _) => (first + 1, last - 1),
        (true, _) => (first + 1, last),
    };
    let mut ranges = Vec::new();
    for (i, (start, end)) in pools.iter().enumerate() {
        if start.is_ipv6() != v6 || end.is_ipv6() != v6 || to_u128(*start) > to_u128(*end) {
            return Err(PoolError::Invalid(i));
        }
        let range = Range {
            first: to_u128(*start),
            last: to_u128(*end),
        };
        if range.first < usable_first || range.last > usable_last {
            return Err(PoolError::OutOfBounds(i));
        }
        ranges.push(range);
    }
    for i in 0..ranges.len() {
        for j in i + 1..ranges.len() {
            if ranges[i].overlaps(&ranges[j]) {
                return Err(PoolError::Overlapping(i, j));
            }
        }
    }
    Ok(ranges)
}

/// The lowest address of `pools` not in `used`.
pub fn next_free(pools: &[Range], used: &HashSet<u128>, v6: bool) -> Option<IpAddr> {
    for pool in pools {
        let mut n = pool.first;
        loop {
            if !used.contains(&n) {
                return Some(from_u128(n, v6));
            }
            if n == pool.last {
                break;
            }
            n += 1;
        }
    }
    None
}

/// How many addresses the pools hold (saturating).
pub fn pool_size(pools: &[Range]) -> u128 {
    pools
        .iter()
        .map(|p| p.last - p.first + 1)
        .fold(0u128, |a, b| a.saturating_add(b))
}

/// Whether `ip` may be a port's address on `net`: inside it, not the network address and, for
/// IPv4 below /31, not the broadcast (Neutron's `check_subnet_ip`; routers may take the IPv6
/// network address, the subnet-router anycast).
pub fn valid_host_ip(net: &IpNet, ip: IpAddr, router_port: bool) -> bool {
    if !net.contains(&ip) {
        return false;
    }
    let (first, last) = bounds(net);
    let n = to_u128(ip);
    match ip {
        IpAddr::V4(_) if net.prefix_len() < 31 => n != first && n != last,
        IpAddr::V4(_) => true,
        IpAddr::V6(_) => n != first || router_port,
    }
}

/// The EUI-64 address of `mac` in the /64 `net` (SLAAC, RFC 4291 appendix A).
pub fn eui64(net: &IpNet, mac: &str) -> Option<IpAddr> {
    let bytes: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    if bytes.len() != 6 || !net.network().is_ipv6() {
        return None;
    }
    let iid = [
        bytes[0] ^ 0x02,
        bytes[1],
        bytes[2],
        0xff,
        0xfe,
        bytes[3],
        bytes[4],
        bytes[5],
    ];
    let prefix = to_u128(net.network()) & !((1u128 << 64) - 1);
    Some(from_u128(prefix | u64::from_be_bytes(iid) as u128, true))
}

/// Whether two CIDRs share an address.
pub fn cidrs_overlap(a: &IpNet, b: &IpNet) -> bool {
    let (a0, a1) = bounds(a);
    let (b0, b1) = bounds(b);
    a.network().is_ipv6() == b.network().is_ipv6() && a0 <= b1 && b0 <= a1
}

/// The first prefix of length `prefixlen` inside one of `pool_prefixes` that overlaps none of
/// `taken` (subnet pools' allocation).
pub fn free_prefix(pool_prefixes: &[IpNet], taken: &[IpNet], prefixlen: u8) -> Option<IpNet> {
    for prefix in pool_prefixes {
        if prefixlen < prefix.prefix_len() || prefixlen > prefix.max_prefix_len() {
            continue;
        }
        let v6 = prefix.network().is_ipv6();
        let (first, last) = bounds(prefix);
        let step: u128 = match prefix.max_prefix_len() - prefixlen {
            128 => return None,
            bits => 1u128 << bits,
        };
        let mut n = first;
        while n <= last {
            let candidate = IpNet::new(from_u128(n, v6), prefixlen).ok()?;
            if let Some(blocker) = taken.iter().find(|t| cidrs_overlap(t, &candidate)) {
                // Skip past the blocking subnet.
                let (_, end) = bounds(blocker);
                let next = end.max(n).checked_add(1)?;
                n = next.div_ceil(step) * step;
                continue;
            }
            return Some(candidate);
        }
    }
    None
}

/// A random MAC on the base MAC's first three octets (Neutron's `base_mac`).
pub fn random_mac(base_mac: &str) -> String {
    let prefix: Vec<&str> = base_mac.split(':').take(3).collect();
    let tail: [u8; 3] = rand::random();
    format!(
        "{}:{:02x}:{:02x}:{:02x}",
        prefix.join(":").to_ascii_lowercase(),
        tail[0],
        tail[1],
        tail[2]
    )
}

/// A MAC in Neutron's canonical form (lower case, colons), or `None` when invalid.
pub fn canonical_mac(text: &str) -> Option<String> {
    let hex: String = text.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    let separators = text.chars().filter(|c| *c == ':' || *c == '-').count();
    if hex.len() != 12 || text.len() != 12 + separators || !(separators == 0 || separators == 5) {
        return None;
    }
    let bytes: Vec<String> = (0..6)
        .map(|i| hex[2 * i..2 * i + 2].to_ascii_lowercase())
        .collect();
    let mac = bytes.join(":");
    // Neutron refuses the all-zero and multicast/broadcast addresses.
    let first = u8::from_str_radix(&bytes[0], 16).ok()?;
    if mac == "00:00:00:00:00:00" || first & 1 == 1 {
        return None;
    }
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_are_canonical() {
        assert_eq!(parse_cidr("10.0.0.0/24").unwrap(), net("10.0.0.0/24"));
        assert_eq!(parse_cidr("10.0.0.1/24"), Err(Some("10.0.0.0/24".into())));
        assert_eq!(parse_cidr("nope"), Err(None));
        assert_eq!(parse_cidr("10.1.2.3").unwrap(), net("10.1.2.3/32"));
    }

    #[test]
    fn default_pools_leave_out_gateway_network_and_broadcast() {
        let n = net("10.0.0.0/24");
        let gw = default_gateway(&n);
        assert_eq!(gw, Some(ip("10.0.0.1")));
        let pools = default_pools(&n, gw);
        assert_eq!(
            pools,
            vec![Range {
                first: to_u128(ip("10.0.0.2")),
                last: to_u128(ip("10.0.0.254"))
            }]
        );
        let mid = default_pools(&n, Some(ip("10.0.0.100")));
        assert_eq!(mid.len(), 2);
        assert_eq!(mid[0].last, to_u128(ip("10.0.0.99")));
        let v6 = net("2001:db8::/64");
        let p6 = default_pools(&v6, default_gateway(&v6));
        assert_eq!(p6[0].first, to_u128(ip("2001:db8::2")));
        assert_eq!(p6[0].last, to_u128(ip("2001:db8::ffff:ffff:ffff:ffff")));
        assert!(default_pools(&net("10.0.0.0/31"), None).is_empty());
    }

    #[test]
    fn pools_are_validated_like_neutron() {
        let n = net("10.0.0.0/24");
        assert!(validate_pools(&n, &[(ip("10.0.0.2"), ip("10.0.0.10"))]).is_ok());
        assert_eq!(
            validate_pools(&n, &[(ip("10.0.0.0"), ip("10.0.0.10"))]),
            Err(PoolError::OutOfBounds(0))
        );
        assert_eq!(
            validate_pools(&n, &[(ip("10.0.0.20"), ip("10.0.0.10"))]),
            Err(PoolError::Invalid(0))
        );
        assert_eq!(
            validate_pools(
                &n,
                &[
                    (ip("10.0.0.2"), ip("10.0.0.10")),
                    (ip("10.0.0.10"), ip("10.0.0.20"))
                ]
            ),
            Err(PoolError::Overlapping(0, 1))
        );
    }

    #[test]
    fn next_free_skips_used_addresses() {
        let n = net("10.0.0.0/29");
        let pools = default_pools(&n, default_gateway(&n));
        let mut used = HashSet::new();
        let mut got = Vec::new();
        while let Some(a) = next_free(&pools, &used, false) {
            used.insert(to_u128(a));
            got.push(a.to_string());
        }
        assert_eq!(
            got,
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
        );
        assert_eq!(pool_size(&pools), 5);
    }

    #[test]
    fn host_ips_exclude_network_and_broadcast() {
        let n = net("10.0.0.0/24");
        assert!(valid_host_ip(&n, ip("10.0.0.5"), false));
        assert!(!valid_host_ip(&n, ip("10.0.0.0"), false));
        assert!(!valid_host_ip(&n, ip("10.0.0.255"), false));
        assert!(!valid_host_ip(&n, ip("10.0.1.1"), false));
    }

    #[test]
    fn eui64_follows_rfc4291() {
        let n = net("2001:db8::/64");
        assert_eq!(
            eui64(&n, "fa:16:3e:12:34:56").unwrap(),
            ip("2001:db8::f816:3eff:fe12:3456")
        );
    }

    #[test]
    fn free_prefixes_skip_taken_subnets() {
        let pool = [net("10.10.0.0/16")];
        assert_eq!(free_prefix(&pool, &[], 24), Some(net("10.10.0.0/24")));
        let taken = [net("10.10.0.0/24"), net("10.10.1.0/25")];
        assert_eq!(free_prefix(&pool, &taken, 24), Some(net("10.10.2.0/24")));
        assert_eq!(free_prefix(&pool, &taken, 25), Some(net("10.10.1.128/25")));
        assert_eq!(free_prefix(&pool, &[net("10.0.0.0/8")], 24), None);
        assert_eq!(free_prefix(&pool, &[], 8), None);
    }

    #[test]
    fn macs() {
        let mac = random_mac("fa:16:3e:00:00:00");
        assert!(mac.starts_with("fa:16:3e:"), "{mac}");
        assert_eq!(canonical_mac(&mac).unwrap(), mac);
        assert_eq!(
            canonical_mac("FA-16-3E-AA-BB-CC").as_deref(),
            Some("fa:16:3e:aa:bb:cc")
        );
        assert_eq!(canonical_mac("ff:ff:ff:ff:ff:ff"), None);
        assert_eq!(canonical_mac("00:00:00:00:00:00"), None);
        assert_eq!(canonical_mac("zz:16:3e:aa:bb:cc"), None);
    }
}
