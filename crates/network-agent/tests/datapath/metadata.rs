//! The metadata proxy with real requests: guests reach 169.254.169.254 through the route DHCP
//! gives them; the proxy forwards to a stand-in metadata service (which checks the signature
//! with an independent HMAC) as the instance that owns the source address.

use crate::common::*;
use axum::http::{HeaderMap, StatusCode, Uri};
use ferrostack_network_agent::model::HostState;
use ferrostack_network_agent::{MetadataConfig, names};
use std::sync::{Arc, Mutex};

const SECRET: &str = "s3cr3t";

/// Hex HMAC-SHA256 through OpenSSL (not the agent's implementation).
fn openssl_signature(secret: &str, message: &str) -> String {
    let key = openssl::pkey::PKey::hmac(secret.as_bytes()).unwrap();
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    signer.update(message.as_bytes()).unwrap();
    signer
        .sign_to_vec()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

type Seen = Arc<Mutex<Vec<String>>>;

/// A stand-in for the compute metadata service on 127.0.0.1: answers
/// `<instance> <tenant> <forwarded-for> <path>` to correctly signed requests, 403 otherwise.
fn metadata_service(lab: &Lab) -> (String, Seen) {
    let seen = Seen::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, uri: Uri| {
        let log = log.clone();
        async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            let id = header("x-instance-id");
            let line = format!(
                "{id} {} {} {}",
                header("x-tenant-id"),
                header("x-forwarded-for"),
                uri.path()
            );
            log.lock().unwrap().push(line.clone());
            if id.is_empty() || header("x-instance-id-signature") != openssl_signature(SECRET, &id)
            {
                return (StatusCode::FORBIDDEN, "bad signature".to_string());
            }
            (StatusCode::OK, line)
        }
    });
    let listener = lab
        .runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    lab.runtime
        .spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), seen)
}

/// GETs a metadata path from inside the guest (busybox wget; its `-T` crashes in this build,
/// so `timeout` bounds it).
fn fetch(guest: &Guest, path: &str) -> Result<String, String> {
    let output = guest.run(&format!(
        "timeout 5 busybox wget -q -O - http://169.254.169.254{path} 2>&1"
    ));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

#[test]
fn guests_read_only_their_own_metadata() {
    crate::skip_unless_capable!();
    // The service must exist before the agent is configured with its URL.
    let mut lab = Lab::new(|_| {});
    let (url, seen) = metadata_service(&lab);
    lab.config.metadata = Some(MetadataConfig::new(url, SECRET));
    lab.restart_agent();
    let script = lab.udhcpc_script();

    let group = default_group();
    let (net, sub) = dhcp_network(vni(), "10.80.0");
    let a = port(&sub, "10.80.0.11", &[&group]);
    let b = port(&sub, "10.80.0.12", &[&group]);
    let mut c = port(&sub, "10.80.0.13", &[&group]);
    c.device_id.clear(); // a port no instance owns
    let state = HostState {
        networks: vec![net.clone()],
        subnets: vec![sub.clone()],
        ports: vec![a.clone(), b.clone(), c.clone()],
        security_groups: vec![group],
        routers: vec![],
    };
    let (ga, gb, gc) = (Guest::new(&a), Guest::new(&b), Guest::new(&c));
    let report = lab.converge(&state);
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.starts_with("started the metadata proxy")),
        "{:#?}",
        report.changes
    );
    let ns = names::dhcp_namespace(&net.id);
    assert!(sh(&format!("ip -n {ns} -br addr show")).contains("169.254.169.254/32"));

    let lease = ga.dhcp(&script).unwrap();
    assert_eq!(
        lease.staticroutes,
        "169.254.169.254/32 10.80.0.2 0.0.0.0/0 10.80.0.1"
    );
    gb.dhcp(&script).unwrap();
    gc.dhcp(&script).unwrap();

    let path = "/openstack/latest/meta_data.json";
    assert_eq!(
        fetch(&ga, path).unwrap(),
        format!("{} project-a 10.80.0.11 {path}", a.device_id)
    );
    assert_eq!(
        fetch(&gb, path).unwrap(),
        format!("{} project-a 10.80.0.12 {path}", b.device_id)
    );
    let unknown = fetch(&gc, path).unwrap_err();
    assert!(unknown.contains("404"), "{unknown}");

    // b borrowing a's address gets nowhere: anti-spoofing drops its packets.
    gb.set_address("10.80.0.11/24", None);
    gb.run("ip route replace 169.254.169.254/32 via 10.80.0.2");
    let requests_before = seen.lock().unwrap().len();
    assert!(fetch(&gb, path).is_err());
    assert_eq!(
        seen.lock().unwrap().len(),
        requests_before,
        "no forged request reached the service"
    );

    // After a restart the proxy is rebound and serves again.
    lab.restart_agent();
    lab.converge(&state);
    assert_eq!(
        fetch(&ga, path).unwrap(),
        format!("{} project-a 10.80.0.11 {path}", a.device_id)
    );
}
