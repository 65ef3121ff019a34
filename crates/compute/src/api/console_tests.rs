//! Remote consoles in process: the real API, conductor, token store and noVNC proxy, with a
//! scripted agent on the bus that reports a VNC server this test runs on 127.0.0.1 (it greets
//! like QEMU and echoes what it gets). The real VNC servers of QEMU guests are checked in
//! `ferrostack-virt` and end to end (`tests/e2e/test_console.py`).

use super::tests::{Harness, IMAGE, flavor};
use crate::conductor;
use crate::consoles;
use crate::db::console_tokens::{self, ConsoleToken};
use crate::novnc_proxy;
use crate::rpc::{
    self, AgentReply, AgentRequest, CONDUCTOR_QUEUE, ConductorReply, ConductorRequest,
    HostResources, StateUpdate, agent_queue,
};
use crate::service::Compute;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

const HOST: &str = "console-host";

/// What the scripted agent answers to `VncConsole`.
#[derive(Clone)]
enum Vnc {
    Port(u16),
    Unavailable,
}

type VncAnswer = Arc<Mutex<Vnc>>;

async fn conductor_call(c: &Compute, request: ConductorRequest) -> ConductorReply {
    let reply = c
        .bus
        .call(
            CONDUCTOR_QUEUE,
            rpc::encode(&request),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    rpc::decode(&reply).unwrap()
}

fn update(uuid: &str, expected: &str, vm: &str, power: i64, launched: bool) -> ConductorRequest {
    ConductorRequest::Update(StateUpdate {
        uuid: uuid.into(),
        expected_task_state: vec![Some(expected.into())],
        vm_state: Some(vm.into()),
        task_state: Some(None),
        power_state: Some(power),
        launched,
    })
}

/// Registers [`HOST`] and serves its queue: guests start, stop and are deleted at once, and
/// `VncConsole` is answered from `vnc`.
async fn scripted_agent(c: Arc<Compute>, vnc: VncAnswer) {
    let heartbeat = ConductorRequest::Heartbeat {
        host: HOST.into(),
        node_uuid: uuid::Uuid::new_v4().to_string(),
        resources: HostResources {
            vcpus: 4,
            memory_mb: 8192 + 512,
            disk_gb: 100,
        },
        guests: vec![],
        capabilities: Some(crate::db::nodes::testing::qemu()),
    };
    assert_eq!(conductor_call(&c, heartbeat).await, ConductorReply::Ok);
    let mut queue = c.bus.consume(&agent_queue(HOST)).await.unwrap();
    tokio::spawn(async move {
        while let Some(d) = queue.next().await {
            match rpc::decode::<AgentRequest>(&d.payload).unwrap() {
                AgentRequest::Build { build, .. } => {
                    let spawning = ConductorRequest::Update(StateUpdate {
                        uuid: build.uuid.clone(),
                        expected_task_state: vec![None],
                        vm_state: None,
                        task_state: Some(Some("spawning".into())),
                        power_state: None,
                        launched: false,
                    });
                    if conductor_call(&c, spawning).await == ConductorReply::Ok {
                        conductor_call(&c, update(&build.uuid, "spawning", "active", 1, true))
                            .await;
                    }
                }
                AgentRequest::Stop { uuid, .. } => {
                    conductor_call(&c, update(&uuid, "powering-off", "stopped", 4, false)).await;
                }
                AgentRequest::Delete { uuid, .. } => {
                    let deleted = ConductorRequest::Deleted {
                        uuid,
                        host: HOST.into(),
                    };
                    conductor_call(&c, deleted).await;
                }
                AgentRequest::VncConsole { .. } => {
                    let answer = vnc.lock().unwrap().clone();
                    let reply = match answer {
                        Vnc::Port(port) => AgentReply::VncConsole {
                            host: "127.0.0.1".into(),
                            port,
                        },
                        Vnc::Unavailable => AgentReply::ConsoleUnavailable {
                            reason: "the guest has no VNC display".into(),
                        },
                    };
                    d.reply(rpc::encode(&reply)).await.unwrap();
                }
                AgentRequest::ConsoleOutput { .. } | AgentRequest::Ping => {
                    d.reply(rpc::encode(&AgentReply::NotFound)).await.unwrap();
                }
                AgentRequest::Start { .. }
                | AgentRequest::Reboot { .. }
                | AgentRequest::ExternalEvents { .. }
                | AgentRequest::AttachVolume { .. }
                | AgentRequest::DetachVolume { .. } => {}
            }
        }
    });
}

/// A VNC server on 127.0.0.1: greets like QEMU (RFB 3.8), then echoes.
async fn fake_vnc() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                stream.write_all(b"RFB 003.008\n").await?;
                let mut buf = [0u8; 1024];
                loop {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<_, std::io::Error>(());
                    }
                    stream.write_all(&buf[..n]).await?;
                }
            });
        }
    });
    port
}

/// A cloud with one scripted host and an ACTIVE server of alice's: (harness, server id,
/// the agent's VNC answer).
async fn cloud_with_server(name: &str, vnc: Vnc) -> (Harness, String, VncAnswer) {
    let h = Harness::open(name).await;
    conductor::start(h.compute.clone()).await.unwrap();
    let answer = Arc::new(Mutex::new(vnc));
    scripted_agent(h.compute.clone(), answer.clone()).await;
    let f = flavor("m1.tiny", json!({"id": "1", "ram": 256, "disk": 1}));
    let r = h
        .call("admin", "POST", "/v2.1/flavors", "2.1", Some(f))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let body =
        json!({"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}});
    let r = h
        .call("alice", "POST", "/v2.1/servers", "2.96", Some(body))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    wait_for(&h, &id, |s| s["status"] == "ACTIVE").await;
    (h, id, answer)
}

async fn wait_for(h: &Harness, id: &str, done: impl Fn(&Value) -> bool) {
    for _ in 0..250 {
        let r = h
            .call("admin", "GET", &format!("/v2.1/servers/{id}"), "2.96", None)
            .await;
        if r.status == 404
            || (done(&r.body["server"]) && r.body["server"]["OS-EXT-STS:task_state"].is_null())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server {id} did not get there");
}

async fn remote_console(h: &Harness, who: &str, id: &str, mv: &str, body: Value) -> (u16, Value) {
    let r = h
        .call(
            who,
            "POST",
            &format!("/v2.1/servers/{id}/remote-consoles"),
            mv,
            Some(body),
        )
        .await;
    (r.status, r.body)
}

fn vnc_body(protocol: &str, kind: &str) -> Value {
    json!({"remote_console": {"protocol": protocol, "type": kind}})
}

/// The token of a console URL (`...?path=%3Ftoken%3D<token>`).
fn token_of(url: &str) -> String {
    url.split("%3Ftoken%3D").nth(1).unwrap().to_string()
}

fn message(body: &Value, kind: &str) -> String {
    body[kind]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn remote_console_urls_status_codes_and_tokens_follow_nova() {
    let vnc_port = fake_vnc().await;
    let (h, id, answer) = cloud_with_server("consoles-api", Vnc::Port(vnc_port)).await;

    // 2.6+: POST /servers/{id}/remote-consoles.
    let (status, body) = remote_console(&h, "alice", &id, "2.96", vnc_body("vnc", "novnc")).await;
    assert_eq!(status, 200, "{body}");
    let console = &body["remote_console"];
    assert_eq!(console["protocol"], "vnc");
    assert_eq!(console["type"], "novnc");
    let url = console["url"].as_str().unwrap();
    assert!(
        url.starts_with("http://cloud:6080/vnc_lite.html?path=%3Ftoken%3D"),
        "{url}"
    );
    let token = token_of(url);
    assert_eq!(token.len(), 36, "a uuid4 token");
    // Two URLs never share a token.
    let (_, again) = remote_console(&h, "alice", &id, "2.6", vnc_body("vnc", "novnc")).await;
    assert_ne!(
        token_of(again["remote_console"]["url"].as_str().unwrap()),
        token
    );
    // Stored hashed: the token itself is nowhere in the table.
    let row = console_tokens::find_valid(
        &h.compute.store,
        &consoles::token_hash(&token),
        chrono::Utc::now().timestamp(),
    )
    .await
    .unwrap()
    .expect("stored under its hash");
    assert_eq!(
        (row.instance_uuid.as_str(), row.port),
        (id.as_str(), i64::from(vnc_port))
    );
    let ttl = row.expires - chrono::Utc::now().timestamp();
    assert!((595..=600).contains(&ttl), "Nova's 600 s ttl: {ttl}");

    // The admin API shows what a token connects to (2.31+).
    let path = format!("/v2.1/os-console-auth-tokens/{token}");
    let r = h.call("admin", "GET", &path, "2.31", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"console": {"instance_uuid": id, "host": "127.0.0.1", "port": vnc_port,
                           "internal_access_path": null}})
    );
    assert_eq!(
        h.call("admin", "GET", &path, "2.30", None).await.status,
        400
    );
    assert_eq!(
        h.call("alice", "GET", &path, "2.96", None).await.status,
        403
    );
    let unknown = h
        .call(
            "admin",
            "GET",
            "/v2.1/os-console-auth-tokens/nope",
            "2.96",
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(message(&unknown.body, "itemNotFound"), "Token not found");

    // 2.1–2.5: the os-getVNCConsole action; neither form exists on the other side of 2.6.
    let act = format!("/v2.1/servers/{id}/action");
    let vnc = |t: &str| json!({"os-getVNCConsole": {"type": t}});
    let r = h
        .call("alice", "POST", &act, "2.5", Some(vnc("novnc")))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["console"]["type"], "novnc");
    assert!(
        r.body["console"]["url"]
            .as_str()
            .unwrap()
            .contains("%3Ftoken%3D")
    );
    assert_eq!(
        h.call("alice", "POST", &act, "2.6", Some(vnc("novnc")))
            .await
            .status,
        404
    );
    let (status, _) = remote_console(&h, "alice", &id, "2.5", vnc_body("vnc", "novnc")).await;
    assert_eq!(status, 404);

    // Bad bodies and types are 400s with Nova's words.
    let r = h
        .call("alice", "POST", &act, "2.1", Some(vnc("xvpvnc")))
        .await;
    assert_eq!(
        (r.status, message(&r.body, "badRequest")),
        (400, "Invalid console type xvpvnc".into())
    );
    for bad in [
        json!({"os-getVNCConsole": {}}),
        vnc("spice-html5"),
        json!({"os-getVNCConsole": {"type": "novnc", "x": 1}}),
    ] {
        assert_eq!(
            h.call("alice", "POST", &act, "2.1", Some(bad)).await.status,
            400
        );
    }
    let r = h
        .call(
            "alice",
            "POST",
            &act,
            "2.1",
            Some(json!({"os-getSPICEConsole": {"type": "spice-html5"}})),
        )
        .await;
    assert_eq!(
        (r.status, message(&r.body, "badRequest")),
        (400, "Unavailable console type spice-html5.".into())
    );
    let r = h
        .call(
            "alice",
            "POST",
            &act,
            "2.1",
            Some(json!({"os-getSerialConsole": {"type": "serial"}})),
        )
        .await;
    assert_eq!(r.status, 400);
    for (mv, protocol, kind, expected) in [
        ("2.96", "vnc", "xvpvnc", "Invalid console type xvpvnc"),
        (
            "2.96",
            "vnc",
            "spice-html5",
            "Invalid console type spice-html5",
        ),
        (
            "2.96",
            "spice",
            "spice-html5",
            "Unavailable console type spice-html5.",
        ),
        (
            "2.96",
            "serial",
            "serial",
            "Unavailable console type serial.",
        ),
        ("2.96", "rdp", "rdp-html5", "Unavailable console type rdp."),
        ("2.8", "mks", "webmks", "Unavailable console type webmks."),
    ] {
        let (status, body) = remote_console(&h, "alice", &id, mv, vnc_body(protocol, kind)).await;
        assert_eq!(
            (status, message(&body, "badRequest")),
            (400, expected.to_string())
        );
    }
    for (mv, body) in [
        ("2.7", vnc_body("mks", "webmks")),
        ("2.96", vnc_body("vnc", "bogus")),
        ("2.96", json!({"remote_console": {"protocol": "vnc"}})),
        (
            "2.96",
            json!({"remote_console": {"protocol": "vnc", "type": "novnc", "x": 1}}),
        ),
    ] {
        assert_eq!(remote_console(&h, "alice", &id, mv, body).await.0, 400);
    }

    // Who may: another project's member sees no server; a reader may not.
    let (status, _) = remote_console(&h, "bob", &id, "2.96", vnc_body("vnc", "novnc")).await;
    assert_eq!(status, 404);
    let (status, _) = remote_console(&h, "reader", &id, "2.96", vnc_body("vnc", "novnc")).await;
    assert_eq!(status, 403);
    let missing = uuid::Uuid::new_v4().to_string();
    let (status, _) = remote_console(&h, "alice", &missing, "2.96", vnc_body("vnc", "novnc")).await;
    assert_eq!(status, 404);

    // A guest without a display: unavailable, never a made-up port.
    *answer.lock().unwrap() = Vnc::Unavailable;
    let (status, body) = remote_console(&h, "alice", &id, "2.96", vnc_body("vnc", "novnc")).await;
    assert_eq!(
        (status, message(&body, "badRequest")),
        (400, "Unavailable console type novnc.".into())
    );
    *answer.lock().unwrap() = Vnc::Port(vnc_port);

    // A stopped server has no VNC server: 409.
    let r = h
        .call(
            "alice",
            "POST",
            &act,
            "2.96",
            Some(json!({"os-stop": null})),
        )
        .await;
    assert_eq!(r.status, 202);
    wait_for(&h, &id, |s| s["status"] == "SHUTOFF").await;
    let (status, body) = remote_console(&h, "alice", &id, "2.96", vnc_body("vnc", "novnc")).await;
    assert_eq!(status, 409);
    assert_eq!(
        message(&body, "conflictingRequest"),
        format!("Cannot 'get_vnc_console' instance {id} while it is in vm_state stopped")
    );

    // Deleting the server ends its tokens.
    let r = h
        .call(
            "alice",
            "DELETE",
            &format!("/v2.1/servers/{id}"),
            "2.96",
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    wait_for(&h, &id, |_| false).await;
    assert_eq!(
        h.call("admin", "GET", &path, "2.96", None).await.status,
        404
    );
}

#[tokio::test]
async fn expired_and_orphaned_tokens_are_refused_and_purged() {
    let (h, id, _) = cloud_with_server("consoles-tokens", Vnc::Unavailable).await;
    let store = &h.compute.store;
    let now = chrono::Utc::now().timestamp();
    let row = |token: &str, instance: &str, expires: i64| ConsoleToken {
        token_hash: consoles::token_hash(token),
        console_type: "novnc".into(),
        host: "127.0.0.1".into(),
        port: 5900,
        internal_access_path: None,
        instance_uuid: instance.into(),
        access_url_base: Some("http://cloud:6080/vnc_lite.html".into()),
        expires,
        created_at: ferrostack_store::now_rfc3339(),
    };
    console_tokens::insert(store, &row("live", &id, now + 600))
        .await
        .unwrap();
    console_tokens::insert(store, &row("expired", &id, now - 1))
        .await
        .unwrap();
    console_tokens::insert(
        store,
        &row("orphan", &uuid::Uuid::new_v4().to_string(), now + 600),
    )
    .await
    .unwrap();
    // The same token twice is refused by the store.
    assert!(
        console_tokens::insert(store, &row("live", &id, now + 600))
            .await
            .is_err()
    );
    let c = &h.compute;
    assert!(consoles::validate(c, "live").await.unwrap().is_some());
    assert!(consoles::validate(c, "expired").await.unwrap().is_none());
    assert!(consoles::validate(c, "orphan").await.unwrap().is_none());
    assert!(consoles::validate(c, "").await.unwrap().is_none());
    assert_eq!(consoles::purge(c).await.unwrap(), 2);
    assert_eq!(consoles::purge(c).await.unwrap(), 0);
    assert!(consoles::validate(c, "live").await.unwrap().is_some());
    // Once the server is deleted, its tokens are refused, then purged.
    let r = h
        .call(
            "alice",
            "DELETE",
            &format!("/v2.1/servers/{id}"),
            "2.96",
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    wait_for(&h, &id, |_| false).await;
    assert!(consoles::validate(c, "live").await.unwrap().is_none());
    assert_eq!(consoles::purge(c).await.unwrap(), 1);
}

/// A websocket client as Tempest's: `request` is the raw upgrade request's path and extra
/// headers. Returns the response head and the connection (with any bytes read past it).
async fn ws_open(addr: std::net::SocketAddr, path: &str, headers: &[&str]) -> (String, Ws) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: binary\r\n"
    );
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before the response head: {buffer:?}");
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
    (
        head,
        Ws {
            stream,
            buffer: buffer[end..].to_vec(),
        },
    )
}

struct Ws {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Ws {
    async fn fill(&mut self, n: usize) -> bool {
        let mut chunk = [0u8; 4096];
        while self.buffer.len() < n {
            let read = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
                .await
                .expect("data or end in time")
                .unwrap_or(0);
            if read == 0 {
                return false;
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
        true
    }

    /// The next frame (opcode, payload); `None` when the connection ended.
    async fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        if !self.fill(2).await {
            return None;
        }
        let (opcode, len) = (self.buffer[0] & 0x0f, (self.buffer[1] & 0x7f) as usize);
        assert_eq!(self.buffer[1] & 0x80, 0, "server frames are not masked");
        let (header, len) = match len {
            126 => {
                assert!(self.fill(4).await);
                (
                    4,
                    u16::from_be_bytes([self.buffer[2], self.buffer[3]]) as usize,
                )
            }
            n => (2, n),
        };
        assert!(self.fill(header + len).await);
        let payload = self.buffer[header..header + len].to_vec();
        self.buffer.drain(..header + len);
        Some((opcode, payload))
    }

    /// Sends a masked binary frame (payloads under 126 bytes).
    async fn send(&mut self, payload: &[u8]) {
        let mask = [7u8, 2, 1, 9];
        let mut frame = vec![0x82, payload.len() as u8 | 0x80];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await.unwrap();
    }

    /// Whether the server closes without sending a byte.
    async fn closes_silently(&mut self) -> bool {
        self.buffer.is_empty() && !self.fill(1).await
    }
}

async fn proxy_get(h: &Harness, web: &std::path::Path, path: &str) -> (u16, String, String) {
    let router = novnc_proxy::router(h.compute.clone(), web.to_path_buf());
    let request = axum::http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn the_proxy_relays_valid_tokens_to_the_vnc_server_and_refuses_the_rest() {
    let vnc_port = fake_vnc().await;
    let (h, id, answer) = cloud_with_server("consoles-proxy", Vnc::Port(vnc_port)).await;
    let web = std::env::temp_dir().join(format!("novnc-web-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&web).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let proxy = tokio::spawn(novnc_proxy::run(listener, h.compute.clone(), web.clone()));
    let (status, body) = remote_console(&h, "alice", &id, "2.96", vnc_body("vnc", "novnc")).await;
    assert_eq!(status, 200, "{body}");
    let token = token_of(body["remote_console"]["url"].as_str().unwrap());

    // noVNC's path: GET /?token=..., the binary subprotocol chosen, the RFB greeting relayed
    // as a binary frame, and what the client sends reaches the VNC server.
    let (head, mut ws) = ws_open(addr, &format!("/?token={token}"), &[]).await;
    assert!(
        head.starts_with("http/1.1 101 switching protocols"),
        "{head}"
    );
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    assert!(head.contains("sec-websocket-protocol: binary"), "{head}");
    assert_eq!(ws.frame().await, Some((2, b"RFB 003.008\n".to_vec())));
    ws.send(b"RFB 003.008\n").await;
    assert_eq!(ws.frame().await, Some((2, b"RFB 003.008\n".to_vec())));

    // Tempest's path: /websockify with the URL's query as a cookie.
    let cookie = format!("Cookie: path=%3Ftoken%3D{token}");
    let (head, mut ws) = ws_open(addr, "/websockify", &[&cookie]).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert_eq!(ws.frame().await, Some((2, b"RFB 003.008\n".to_vec())));

    // Refused, with no websocket and no data: a bad token, none, a foreign browser origin.
    for (path, headers) in [
        (format!("/?token=bad{token}"), vec![]),
        ("/websockify".to_string(), vec![]),
        (
            format!("/websockify?token={token}"),
            vec!["Origin: http://evil.example"],
        ),
    ] {
        let (head, mut ws) = ws_open(addr, &path, &headers).await;
        assert!(head.starts_with("http/1.1 403"), "{path}: {head}");
        assert!(ws.closes_silently().await, "{path}");
    }
    // A token whose port is no longer the guest's (the guest restarted elsewhere) is refused.
    *answer.lock().unwrap() = Vnc::Port(vnc_port.wrapping_add(1));
    let (head, _) = ws_open(addr, &format!("/?token={token}"), &[]).await;
    assert!(head.starts_with("http/1.1 403"), "{head}");
    *answer.lock().unwrap() = Vnc::Port(vnc_port);

    // The console page says what is missing without the noVNC files, and serves them once there.
    let (status, _, page) = proxy_get(&h, &web, "/vnc_lite.html?path=%3Ftoken%3Dx").await;
    assert_eq!(status, 503);
    assert!(
        page.contains("core/rfb.js") && page.contains("@novnc/novnc"),
        "{page}"
    );
    std::fs::create_dir_all(web.join("core")).unwrap();
    std::fs::write(web.join("core/rfb.js"), "export default class RFB {}\n").unwrap();
    let (status, content_type, page) = proxy_get(&h, &web, "/vnc_lite.html").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"));
    for needle in ["<html", "</html>", "noVNC", "<script", "./core/rfb.js"] {
        assert!(page.contains(needle), "{needle}");
    }
    let (status, content_type, js) = proxy_get(&h, &web, "/core/rfb.js").await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/javascript; charset=utf-8")
    );
    assert!(js.contains("class RFB"));
    assert_eq!(proxy_get(&h, &web, "/core/../../etc/passwd").await.0, 404);
    assert_eq!(proxy_get(&h, &web, "/").await.0, 404);

    // After the server is deleted, its token opens nothing.
    let r = h
        .call(
            "alice",
            "DELETE",
            &format!("/v2.1/servers/{id}"),
            "2.96",
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    wait_for(&h, &id, |_| false).await;
    let (head, mut ws) = ws_open(addr, &format!("/?token={token}"), &[]).await;
    assert!(head.starts_with("http/1.1 403"), "{head}");
    assert!(ws.closes_silently().await);
    proxy.abort();
    std::fs::remove_dir_all(&web).unwrap();
}
