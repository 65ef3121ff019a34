//! Convergence time from a desired state to packets flowing, for 1, 100 and 1000 ports on one
//! host (`cargo bench -p ferrostack-network-agent`; needs root).
//!
//! For each size: the ports' tap devices exist beforehand (as libvirt creates them; two of them
//! are veths into guest namespaces, the rest tuntap devices), then the clock runs through one
//! convergence (bridge, VXLAN device, DHCP namespace and dnsmasq, security group tables, every
//! tap plugged) until the two guests have their DHCP leases and ping each other. Then: a second
//! convergence of the same state (nothing to do), and adding one port to the converged state.

#[path = "../tests/datapath/common.rs"]
#[allow(dead_code)]
mod common;

use common::*;
use ferrostack_network_agent::model::{HostState, Port};
use std::time::{Duration, Instant};

/// The address of port `i` (the guests are 0 and 1) in 10.100.0.0/20.
fn address(i: usize) -> String {
    let host = i + 10;
    format!("10.100.{}.{}", host / 256, host % 256)
}

struct Sample {
    ports: usize,
    converge: Duration,
    to_packets: Duration,
    again: Duration,
    one_more: Duration,
}

fn measure(ports: usize) -> Sample {
    let mut lab = Lab::new(|_| {});
    let script = lab.udhcpc_script();
    let group = default_group();
    let mut network = vxlan_network(vni(), 1450);
    let sub = subnet(&network, "10.100.0.0/20", Some("10.100.0.1"));
    network.dhcp_port = Some(service_port(&sub, "10.100.0.2"));
    let all: Vec<Port> = (0..ports.max(2))
        .map(|i| port(&sub, &address(i), &[&group]))
        .collect();
    let guests = [Guest::new(&all[0]), Guest::new(&all[1])];
    let taps: Vec<String> = all[2..].iter().map(Port::device_name).collect();
    let batch: String = taps
        .iter()
        .map(|t| format!("tuntap add dev {t} mode tap\n"))
        .collect();
    sh(&format!("ip -batch - <<'EOF'\n{batch}EOF"));
    let mut state = HostState {
        networks: vec![network],
        subnets: vec![sub.clone()],
        ports: all,
        security_groups: vec![group.clone()],
        routers: vec![],
    };

    let started = Instant::now();
    let report = lab.converge(&state);
    let converge = started.elapsed();
    assert_eq!(report.active_ports.len(), state.ports.len());
    let lease = guests[0].dhcp(&script).expect("a lease");
    assert_eq!(lease.ip, address(0));
    guests[1].dhcp(&script).expect("a lease");
    assert!(
        eventually(Duration::from_secs(10), || guests[0].ping_once(address(1))),
        "packets flow"
    );
    let to_packets = started.elapsed();

    let started = Instant::now();
    let report = lab.converge(&state);
    let again = started.elapsed();
    assert!(report.changes.is_empty(), "{:#?}", report.changes);

    let extra = port(&sub, &address(ports + 1), &[&group]);
    let extra_guest = Guest::new(&extra);
    state.ports.push(extra);
    let started = Instant::now();
    lab.converge(&state);
    let one_more = started.elapsed();

    drop(extra_guest);
    drop(lab);
    let batch: String = taps.iter().map(|t| format!("link del dev {t}\n")).collect();
    if !taps.is_empty() {
        sh(&format!("ip -batch - <<'EOF'\n{batch}EOF"));
    }
    drop(guests);
    Sample {
        ports,
        converge,
        to_packets,
        again,
        one_more,
    }
}

fn main() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    // `cargo bench` passes `--bench`; a size list may follow (`-- 1 100`).
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1, 100, 1000]
    } else {
        sizes
    };
    println!(
        "ports | converge (ms) | to packets flowing (ms) | re-converge, no change (ms) | add one port (ms)"
    );
    println!("---:|---:|---:|---:|---:");
    for size in sizes {
        let s = measure(size);
        println!(
            "{} | {:.0} | {:.0} | {:.0} | {:.0}",
            s.ports,
            s.converge.as_secs_f64() * 1e3,
            s.to_packets.as_secs_f64() * 1e3,
            s.again.as_secs_f64() * 1e3,
            s.one_more.as_secs_f64() * 1e3,
        );
    }
}
