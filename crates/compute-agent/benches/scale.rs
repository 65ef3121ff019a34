//! Control-plane scale benchmark (issue 4): the real compute control plane in one process —
//! the Nova API router, the conductor and scheduler, Placement claims, one compute agent per
//! simulated host on the in-process bus, each with the fake virt driver — on a fresh database.
//!
//! It boots `BENCH_SERVERS` servers in batches of `BENCH_BATCH` through `POST /servers` with
//! `BENCH_CLIENTS` concurrent API clients and measures each batch from its first POST until
//! every server of it is ACTIVE (observed in the database), then measures API latency with
//! that many servers present. Prints a markdown section for docs/benchmarks.md (and writes it
//! to `BENCH_REPORT` when set). `make bench-compute` runs it and records the section.
//!
//! Knobs (environment): `BENCH_HOSTS` (1000), `BENCH_SERVERS` (10000), `BENCH_BATCH` (2000),
//! `BENCH_CLIENTS` (32), `BENCH_LATENCY_CLIENTS` (`1,32`), `BENCH_LATENCY_SECS` (10),
//! `BENCH_PROJECTS` (8), `BENCH_LIST_LIMIT` (100), `BENCH_HEARTBEAT_SECS` (10, Nova's
//! `report_interval`), `BENCH_DB_CONNECTIONS` (8, the server's default pool),
//! `BENCH_DATABASE_URL` (a PostgreSQL server URL: a fresh database is created on it and dropped
//! afterwards; default SQLite in a temporary directory), `BENCH_REPORT` (file for the section),
//! `BENCH_KEEP` (1 keeps the temporary directory), `BENCH_LOG` (a tracing filter, e.g. `warn`).

use axum::body::{Body, to_bytes};
use axum::http::Request;
use ferrostack_compute::{Compute, ImageCatalog, ImageInfo};
use ferrostack_compute_agent::{Agent, AgentConfig, AgentHandle, ImageSource};
use ferrostack_store::{Row, Store};
use ferrostack_virt::fake::FakeDriver;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// The one image every server boots (never downloaded: the fake driver has no disks).
const IMAGE: &str = "6a6e0b6e-4a53-4a8f-9a77-0a1d7c3b5f00";
/// The flavor: 1 vCPU, 64 MiB, 1 GiB root disk.
const FLAVOR: &str = "bench.nano";
/// The microversion of every call (what openstackclient 10.5 negotiates).
const MV: &str = "2.96";
/// Upstream Nova's boot rate that issue 4 quotes (200 nodes, fake driver).
const NOVA_SERVERS_PER_S: f64 = 1.5;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Settings {
    hosts: usize,
    servers: usize,
    batch: usize,
    clients: usize,
    latency_clients: Vec<usize>,
    latency_secs: u64,
    latency_creates: usize,
    projects: usize,
    list_limit: usize,
    heartbeat_secs: u64,
    db_connections: u32,
    database_url: Option<String>,
    report: Option<PathBuf>,
    keep: bool,
}

impl Settings {
    fn from_env() -> Settings {
        let latency_clients = std::env::var("BENCH_LATENCY_CLIENTS")
            .unwrap_or_else(|_| "1,32".into())
            .split(',')
            .filter_map(|c| c.trim().parse().ok())
            .filter(|c| *c > 0)
            .collect();
        Settings {
            hosts: env("BENCH_HOSTS", 1000),
            servers: env("BENCH_SERVERS", 10_000),
            batch: env("BENCH_BATCH", 2000usize).max(1),
            clients: env("BENCH_CLIENTS", 32usize).max(1),
            latency_clients,
            latency_secs: env("BENCH_LATENCY_SECS", 10),
            latency_creates: env("BENCH_LATENCY_CREATES", 500),
            projects: env("BENCH_PROJECTS", 8usize).max(1),
            list_limit: env("BENCH_LIST_LIMIT", 100),
            heartbeat_secs: env("BENCH_HEARTBEAT_SECS", 10u64).max(1),
            db_connections: env("BENCH_DB_CONNECTIONS", 8),
            database_url: std::env::var("BENCH_DATABASE_URL")
                .ok()
                .filter(|u| !u.is_empty()),
            report: std::env::var("BENCH_REPORT").ok().map(PathBuf::from),
            keep: env("BENCH_KEEP", 0) == 1,
        }
    }
}

/// The image catalog: one public, active image.
struct OneImage;

#[async_trait::async_trait]
impl ImageCatalog for OneImage {
    async fn image(
        &self,
        id: &str,
        _project: Option<&str>,
        _admin: bool,
    ) -> anyhow::Result<Option<ImageInfo>> {
        Ok((id == IMAGE).then(|| ImageInfo {
            id: IMAGE.into(),
            name: Some("bench".into()),
            status: "active".into(),
            disk_format: Some("qcow2".into()),
            container_format: Some("bare".into()),
            size: Some(10 << 20),
            virtual_size: Some(64 << 20),
            ..Default::default()
        }))
    }
}

/// The agents' image source: never used, since the fake driver manages no disks.
struct NoDownloads;

#[async_trait::async_trait]
impl ImageSource for NoDownloads {
    async fn fetch(&self, image_id: &str, _dest: &Path) -> anyhow::Result<()> {
        anyhow::bail!("the scale benchmark downloads no images (asked for {image_id})")
    }
}

/// The database: a SQLite file in the run's directory, or a fresh PostgreSQL database.
struct Database {
    url: String,
    /// PostgreSQL: the server URL and the database to drop at the end.
    postgres: Option<(String, String)>,
}

impl Database {
    async fn create(settings: &Settings, dir: &Path) -> anyhow::Result<Database> {
        match &settings.database_url {
            Some(server) if server.starts_with("postgres") => {
                let name = format!(
                    "fsbench_{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                );
                let admin = Store::connect(server, 1).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(admin.pool())
                    .await?;
                admin.close().await;
                let (base, _) = server.rsplit_once('/').unwrap_or((server, ""));
                Ok(Database {
                    url: format!("{base}/{name}"),
                    postgres: Some((server.clone(), name)),
                })
            }
            Some(other) => anyhow::bail!("BENCH_DATABASE_URL must be a postgres:// URL: {other}"),
            None => Ok(Database {
                url: format!("sqlite://{}", dir.join("bench.db").display()),
                postgres: None,
            }),
        }
    }

    fn kind(&self) -> &'static str {
        if self.postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite (WAL)"
        }
    }

    async fn drop_database(&self) {
        if let Some((server, name)) = &self.postgres
            && let Ok(admin) = Store::connect(server, 1).await
        {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(admin.pool())
            .await;
            admin.close().await;
        }
    }
}

/// One API answer.
struct Reply {
    status: u16,
    body: Value,
    /// From the request to the last byte of the body.
    took: Duration,
}

struct Cloud {
    router: axum::Router,
    /// A connection of the benchmark's own for observing the database.
    observer: Store,
    agents: Vec<AgentHandle>,
    /// Each project's token.
    projects: Vec<String>,
    /// Each project's servers.
    created: std::sync::Mutex<Vec<Vec<String>>>,
}

impl Cloud {
    async fn call(&self, token: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("x-auth-token", token)
            .header("openstack-api-version", format!("compute {MV}"));
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let mut request = req.body(body).expect("a valid request");
        request
            .extensions_mut()
            .insert(ferrostack_api::RequestId(format!(
                "req-{}",
                uuid::Uuid::new_v4()
            )));
        let started = Instant::now();
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status().as_u16();
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        let took = started.elapsed();
        Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            took,
        }
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(self.observer.pool())
            .await
            .unwrap_or(-1)
    }

    /// Live instances per (vm state, task state).
    async fn states(&self) -> BTreeMap<String, i64> {
        let rows = sqlx::query(
            "SELECT vm_state, task_state, COUNT(*) AS n FROM instances WHERE deleted = 0 \
             GROUP BY vm_state, task_state",
        )
        .fetch_all(self.observer.pool())
        .await
        .unwrap_or_default();
        rows.iter()
            .map(|r| {
                let vm: String = r.try_get("vm_state").unwrap_or_default();
                let task: Option<String> = r.try_get("task_state").unwrap_or_default();
                let key = match task {
                    Some(t) => format!("{vm}/{t}"),
                    None => vm,
                };
                (key, r.try_get::<i64, _>("n").unwrap_or(0))
            })
            .collect()
    }

    /// Waits until `active` servers are ACTIVE; `Err` with the states when an ERROR appears or
    /// nothing moves for two minutes. Polls four times a second with one scan, so the
    /// benchmark's own reads stay a small share of the machine (batches are timed from the
    /// servers' `launched_at`, not from this poll).
    async fn wait_active(&self, active: i64) -> Result<(), String> {
        let mut last = -1;
        let mut moved = Instant::now();
        loop {
            let row = sqlx::query(
                "SELECT CAST(COALESCE(SUM(CASE WHEN vm_state = 'active' THEN 1 ELSE 0 END), 0) \
                 AS BIGINT) AS active, CAST(COALESCE(SUM(CASE WHEN vm_state = 'error' THEN 1 \
                 ELSE 0 END), 0) AS BIGINT) AS errors FROM instances WHERE deleted = 0",
            )
            .fetch_one(self.observer.pool())
            .await
            .map_err(|e| e.to_string())?;
            let now: i64 = row.try_get("active").map_err(|e| e.to_string())?;
            let errors: i64 = row.try_get("errors").map_err(|e| e.to_string())?;
            if now >= active {
                return Ok(());
            }
            if errors > 0 {
                return Err(format!(
                    "{errors} servers in ERROR: {:?}",
                    self.states().await
                ));
            }
            if now != last {
                last = now;
                moved = Instant::now();
            } else if moved.elapsed() > Duration::from_secs(120) {
                return Err(format!(
                    "stuck at {now} of {active} ACTIVE: {:?}",
                    self.states().await
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn server_body(n: usize) -> Value {
    json!({"server": {
        "name": format!("bench-{n}"),
        "imageRef": IMAGE,
        "flavorRef": FLAVOR,
        "networks": "none",
    }})
}

/// CPU seconds this process has used (user + system).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) / hz
}

/// `VmHWM` of this process, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The `p`-th percentile (nearest rank) of sorted `values`.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

fn thousands(n: f64) -> String {
    let whole = n.round() as i64;
    let s = whole.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if whole < 0 { format!("-{out}") } else { out }
}

fn rate(n: f64) -> String {
    if n >= 1000.0 {
        thousands(n)
    } else if n >= 100.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.1}")
    }
}

/// A tiny xorshift for picking servers (no dependency for it).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One boot batch.
struct Batch {
    before: usize,
    booted: usize,
    seconds: f64,
    post: Vec<Duration>,
    boot: Vec<Duration>,
    cpu: f64,
    failed_posts: usize,
}

/// Boots `count` servers with `clients` concurrent API clients, round-robin over the projects,
/// and waits until all are ACTIVE.
async fn boot(cloud: &Arc<Cloud>, first: usize, count: usize, clients: usize) -> Batch {
    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let cloud = cloud.clone();
        let next = next.clone();
        tasks.spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let n = first + i;
                let project = n % cloud.projects.len();
                let token = cloud.projects[project].clone();
                let reply = cloud
                    .call(&token, "POST", "/v2.1/servers", Some(&server_body(n)))
                    .await;
                let id = reply.body["server"]["id"].as_str().map(str::to_string);
                if reply.status != 202 || id.is_none() {
                    eprintln!("POST /servers: {} {}", reply.status, reply.body);
                }
                done.push((project, id, reply.took));
            }
            done
        });
    }
    let mut post = Vec::new();
    let mut created: Vec<(usize, String)> = Vec::new();
    let mut failed_posts = 0;
    while let Some(result) = tasks.join_next().await {
        for (project, id, took) in result.expect("a client task") {
            post.push(took);
            match id {
                Some(id) => created.push((project, id)),
                None => failed_posts += 1,
            }
        }
    }
    let posted = started.elapsed();
    let active = cloud
        .count("SELECT COUNT(*) FROM instances WHERE deleted = 0")
        .await;
    if let Err(e) = cloud.wait_active(active).await {
        panic!("the batch did not finish: {e}");
    }
    let cpu = cpu_seconds() - cpu0;
    let (boot, last) = boot_latencies(cloud, &created).await;
    let seconds = (last - started_at)
        .to_std()
        .unwrap_or_default()
        .as_secs_f64()
        .max(1e-3);
    eprintln!(
        "  {} servers: POSTs done in {:.1}s, all ACTIVE after {:.1}s ({:.1}/s), {:.1} CPU-s",
        created.len(),
        posted.as_secs_f64(),
        seconds,
        created.len() as f64 / seconds,
        cpu
    );
    post.sort();
    let booted = created.len();
    {
        let mut ids = cloud.created.lock().unwrap();
        for (project, id) in created {
            ids[project].push(id);
        }
    }
    Batch {
        before: first,
        booted,
        seconds,
        post,
        boot,
        cpu,
        failed_posts,
    }
}

/// POST-to-ACTIVE time of each server, from its `created_at` and `launched_at` rows, sorted,
/// and the last `launched_at`.
async fn boot_latencies(
    cloud: &Cloud,
    created: &[(usize, String)],
) -> (Vec<Duration>, chrono::DateTime<chrono::Utc>) {
    let mut out = Vec::new();
    let mut last = chrono::DateTime::<chrono::Utc>::MIN_UTC;
    for chunk in created.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT created_at, launched_at FROM instances WHERE uuid IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (_, id) in chunk {
            q = q.bind(id);
        }
        for row in q.fetch_all(cloud.observer.pool()).await.unwrap_or_default() {
            let created: String = row.try_get("created_at").unwrap_or_default();
            let launched: Option<String> = row.try_get("launched_at").unwrap_or_default();
            let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
            if let (Some(c), Some(l)) = (parse(&created), launched.as_deref().and_then(parse)) {
                out.push((l - c).to_std().unwrap_or_default());
                last = last.max(l.with_timezone(&chrono::Utc));
            }
        }
    }
    out.sort();
    (out, last)
}

/// One latency measurement.
struct Measured {
    op: &'static str,
    clients: usize,
    seconds: f64,
    lat: Vec<Duration>,
    errors: usize,
    servers: i64,
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Show,
    List,
    ListAll,
    Create,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Show => "show",
            Op::List => "list",
            Op::ListAll => "list-all",
            Op::Create => "create",
        }
    }
}

/// Runs `op` with `clients` concurrent clients for `secs` seconds (creates: `creates` in all,
/// so the cloud does not grow by thousands of servers).
#[allow(clippy::too_many_arguments)]
async fn measure(
    cloud: &Arc<Cloud>,
    op: Op,
    clients: usize,
    secs: u64,
    creates: usize,
    list_limit: usize,
    serial: &Arc<AtomicUsize>,
) -> Measured {
    let creates_left = Arc::new(AtomicUsize::new(creates));
    let servers = cloud
        .count("SELECT COUNT(*) FROM instances WHERE deleted = 0")
        .await;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let cloud = cloud.clone();
        let serial = serial.clone();
        let creates_left = creates_left.clone();
        tasks.spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((c as u64 + 1) * 0x2545_f491));
            let project = c % cloud.projects.len();
            let token = cloud.projects[project].clone();
            let ids = cloud.created.lock().unwrap()[project].clone();
            let mut lat = Vec::new();
            let mut errors = 0;
            loop {
                let more = match op {
                    Op::Create => creates_left
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok(),
                    _ => Instant::now() < deadline,
                };
                if !more {
                    break;
                }
                let reply = match op {
                    Op::Show => {
                        let id = &ids[rng.below(ids.len())];
                        cloud
                            .call(&token, "GET", &format!("/v2.1/servers/{id}"), None)
                            .await
                    }
                    Op::List => {
                        let path = format!("/v2.1/servers/detail?limit={list_limit}");
                        cloud.call(&token, "GET", &path, None).await
                    }
                    Op::ListAll => {
                        let path = format!("/v2.1/servers/detail?all_tenants=1&limit={list_limit}");
                        cloud.call("admin", "GET", &path, None).await
                    }
                    Op::Create => {
                        let n = serial.fetch_add(1, Ordering::Relaxed);
                        let token = &cloud.projects[n % cloud.projects.len()];
                        cloud
                            .call(token, "POST", "/v2.1/servers", Some(&server_body(n)))
                            .await
                    }
                };
                let ok = match op {
                    Op::Create => reply.status == 202,
                    Op::List | Op::ListAll => {
                        reply.status == 200
                            && reply.body["servers"]
                                .as_array()
                                .is_some_and(|s| !s.is_empty() && s.len() <= list_limit)
                    }
                    Op::Show => reply.status == 200,
                };
                if !ok {
                    errors += 1;
                    if errors <= 3 {
                        eprintln!("{}: {} {}", op.label(), reply.status, reply.body);
                    }
                }
                lat.push(reply.took);
            }
            (lat, errors)
        });
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    while let Some(result) = tasks.join_next().await {
        let (l, e) = result.expect("a client task");
        lat.extend(l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    lat.sort();
    eprintln!(
        "  {:<8} × {clients:>2}: {:>7.1} req/s, p50 {}, p99 {}, errors {errors}",
        op.label(),
        lat.len() as f64 / seconds,
        ms(percentile(&lat, 50.0)),
        ms(percentile(&lat, 99.0)),
    );
    Measured {
        op: op.label(),
        clients,
        seconds,
        lat,
        errors,
        servers,
    }
}

/// The CPU the process uses, in cores, over one heartbeat interval with no API calls: what
/// the heartbeats of every host cost (and the conductor's power-state sync behind them).
async fn idle_cores(settings: &Settings) -> f64 {
    let period = Duration::from_secs(settings.heartbeat_secs);
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    tokio::time::sleep(period).await;
    (cpu_seconds() - cpu0) / t0.elapsed().as_secs_f64()
}

/// Starts the control plane and `hosts` agents (their starts spread over one heartbeat
/// interval, as a real cloud's hosts are not in phase), and waits until every host has
/// registered and has its inventory in Placement.
async fn start_cloud(
    settings: &Settings,
    db: &Database,
    dir: &Path,
) -> anyhow::Result<(Arc<Cloud>, f64)> {
    let store = Store::connect(&db.url, settings.db_connections).await?;
    let observer = Store::connect(&db.url, 1).await?;
    let placement = ferrostack_placement::Placement::open(store.clone(), "http://cloud").await?;
    let bus = ferrostack_bus::InProcessBus::new();
    let config = ferrostack_config::ComputeConfig {
        // Quotas off: the benchmark's projects hold thousands of servers.
        quota_instances: -1,
        quota_cores: -1,
        quota_ram: -1,
        // Every simulated host reports this machine's CPUs (2 here): Nova's former default
        // overcommit (16) gives 32 one-vCPU servers per host.
        cpu_allocation_ratio: 16.0,
        service_down_time: 6 * settings.heartbeat_secs,
        ..Default::default()
    };
    let compute = Compute::open(
        store,
        "http://cloud",
        placement,
        bus.clone(),
        Arc::new(OneImage),
        config,
    )
    .await?;
    ferrostack_compute::conductor::start(compute.clone()).await?;
    let mut callers = ferrostack_api::testing::standard_callers();
    let mut projects = Vec::new();
    for p in 0..settings.projects {
        let token = format!("bench-{p}");
        callers = callers.with(
            &token,
            ferrostack_api::testing::caller(
                &format!("u-bench-{p}"),
                &format!("p-bench-{p}"),
                &["member", "reader"],
            ),
        );
        projects.push(token);
    }
    let ctx = ferrostack_api::testing::context(callers, &ferrostack_compute::default_rules());
    let router = ferrostack_compute::api::router(compute.clone()).layer(axum::Extension(ctx));

    let started = Instant::now();
    let spread = Duration::from_secs(settings.heartbeat_secs);
    let mut starting = tokio::task::JoinSet::new();
    for i in 0..settings.hosts {
        let bus = bus.clone();
        let host = format!("sim-{i:04}");
        let path = dir.join("hosts").join(&host);
        let at = started + spread.mul_f64(i as f64 / settings.hosts as f64);
        let heartbeat = Duration::from_secs(settings.heartbeat_secs);
        starting.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let mut config = AgentConfig::new(&host, path);
            config.node_uuid = Some(uuid::Uuid::new_v4().to_string());
            config.heartbeat_interval = heartbeat;
            Agent::start(
                config,
                bus,
                Arc::new(FakeDriver::default()),
                Arc::new(NoDownloads),
            )
            .await
        });
    }
    let mut agents = Vec::new();
    while let Some(agent) = starting.join_next().await {
        agents.push(agent??);
    }
    let cloud = Arc::new(Cloud {
        router,
        observer,
        agents,
        created: std::sync::Mutex::new(vec![Vec::new(); projects.len()]),
        projects,
    });
    let hosts = settings.hosts as i64;
    loop {
        let nodes = cloud.count("SELECT COUNT(*) FROM compute_nodes").await;
        let inventories = cloud
            .count(
                "SELECT COUNT(DISTINCT provider_uuid) FROM placement_inventories \
                 WHERE resource_class = 'VCPU'",
            )
            .await;
        if nodes >= hosts && inventories >= hosts {
            break;
        }
        if started.elapsed() > spread + Duration::from_secs(300) {
            anyhow::bail!("only {nodes} nodes and {inventories} inventories registered");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((cloud, started.elapsed().as_secs_f64()))
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("PRETTY_NAME="))
        .map(|l| {
            l.trim_start_matches("PRETTY_NAME=")
                .trim_matches('"')
                .to_string()
        })
        .unwrap_or_default();
    format!("{cores} cores ({model}), {mem_gib:.0} GiB, {os}")
}

fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    match git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "../..",
    ]) {
        Some(s) if !s.is_empty() => format!("`{head}` + uncommitted changes"),
        _ => format!("`{head}`"),
    }
}

/// Everything a run measured, for the report.
struct Run {
    startup: f64,
    /// Idle CPU in cores: with no servers, and with all of them.
    idle: (f64, f64),
    batches: Vec<Batch>,
    measured: Vec<Measured>,
    check: Check,
    load_before: String,
    load_after: String,
    peak_rss: f64,
    total: f64,
}

/// The state at the end: where the servers are and what Placement holds for them.
struct Check {
    servers: i64,
    active: i64,
    hosts_used: i64,
    per_host_min: i64,
    per_host_max: i64,
    consumers: i64,
    vcpus_allocated: i64,
}

impl Check {
    async fn read(cloud: &Cloud) -> Check {
        let hosts = sqlx::query(
            "SELECT host, COUNT(*) AS n FROM instances WHERE deleted = 0 GROUP BY host",
        )
        .fetch_all(cloud.observer.pool())
        .await
        .unwrap_or_default();
        let per_host: Vec<i64> = hosts
            .iter()
            .map(|r| r.try_get::<i64, _>("n").unwrap_or(0))
            .collect();
        Check {
            servers: cloud
                .count("SELECT COUNT(*) FROM instances WHERE deleted = 0")
                .await,
            active: cloud
                .count("SELECT COUNT(*) FROM instances WHERE deleted = 0 AND vm_state = 'active'")
                .await,
            hosts_used: per_host.len() as i64,
            per_host_min: per_host.iter().copied().min().unwrap_or(0),
            per_host_max: per_host.iter().copied().max().unwrap_or(0),
            consumers: cloud
                .count("SELECT COUNT(*) FROM placement_consumers")
                .await,
            vcpus_allocated: cloud
                .count(
                    "SELECT CAST(COALESCE(SUM(used), 0) AS BIGINT) FROM placement_allocations \
                     WHERE resource_class = 'VCPU'",
                )
                .await,
        }
    }

    /// Every server ACTIVE, exactly one claim of one VCPU each in Placement.
    fn consistent(&self) -> bool {
        self.active == self.servers
            && self.consumers == self.servers
            && self.vcpus_allocated == self.servers
    }
}

fn report(settings: &Settings, db: &Database, run: &Run) -> String {
    let Run {
        startup,
        idle,
        batches,
        measured,
        check,
        load_before,
        load_after,
        peak_rss,
        total,
    } = run;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "{}", include_str!("scale.md").trim_end());
    let _ = writeln!(w, "\n### Latest results\n");
    let _ = writeln!(
        w,
        "Run of {} on {}; Ferrostack {}; {} database, pool of {} connections; load average \
         (1/5/15 min) {} before and {} after; whole run {:.0} s, peak RSS {:.0} MiB for the \
         process (API, conductor, Placement and all {} agents).\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine(),
        commit(),
        db.kind(),
        settings.db_connections,
        load_before,
        load_after,
        total,
        peak_rss,
        settings.hosts,
    );
    let _ = writeln!(
        w,
        "{} simulated hosts (agents started over {} s, registered after {:.1} s), heartbeat \
         every {} s each; {} projects; {} concurrent API clients while booting.\n",
        thousands(settings.hosts as f64),
        settings.heartbeat_secs,
        startup,
        settings.heartbeat_secs,
        settings.projects,
        settings.clients,
    );
    let _ = writeln!(
        w,
        "With no API calls, the heartbeats (each host's report, its Placement inventory check \
         and the power-state sync of its servers) keep {:.2} cores busy with no servers and \
         {:.2} cores with {} servers.\n",
        idle.0,
        idle.1,
        thousands(settings.servers as f64),
    );
    let _ = writeln!(
        w,
        "| servers before → after | servers/s (first POST → last ACTIVE) | POST → ACTIVE p50 | p99 \
         | `POST /servers` p50 | p99 | CPU per server | target |"
    );
    let _ = writeln!(w, "|---|--:|--:|--:|--:|--:|--:|---|");
    for b in batches {
        let per_s = b.booted as f64 / b.seconds;
        let _ = writeln!(
            w,
            "| {} → {} | **{}** | {} | {} | {} | {} | {:.1} ms | ≥ 100/s: {} |",
            thousands(b.before as f64),
            thousands((b.before + b.booted) as f64),
            rate(per_s),
            ms(percentile(&b.boot, 50.0)),
            ms(percentile(&b.boot, 99.0)),
            ms(percentile(&b.post, 50.0)),
            ms(percentile(&b.post, 99.0)),
            b.cpu * 1000.0 / b.booted.max(1) as f64,
            if per_s >= 100.0 { "met" } else { "missed" },
        );
    }
    let booted: usize = batches.iter().map(|b| b.booted).sum();
    let seconds: f64 = batches.iter().map(|b| b.seconds).sum();
    let failed: usize = batches.iter().map(|b| b.failed_posts).sum();
    let average = booted as f64 / seconds;
    let _ = writeln!(
        w,
        "\nAll {} servers: **{} servers/s** on average, {:.0}× the 1.5 servers/s the issue \
         quotes for Nova on 200 nodes; {} failed POSTs; every server reached ACTIVE (none in \
         ERROR).\n",
        thousands(booted as f64),
        rate(average),
        average / NOVA_SERVERS_PER_S,
        failed,
    );
    let _ = writeln!(
        w,
        "At the end, {} servers are on {} of the {} hosts ({} to {} per host), all {}; Placement \
         holds {} consumers and {} VCPU allocated: {}.\n",
        thousands(check.servers as f64),
        thousands(check.hosts_used as f64),
        thousands(settings.hosts as f64),
        check.per_host_min,
        check.per_host_max,
        if check.active == check.servers {
            "ACTIVE".to_string()
        } else {
            format!("but {} ACTIVE", check.servers - check.active)
        },
        thousands(check.consumers as f64),
        thousands(check.vcpus_allocated as f64),
        if check.consistent() {
            "one claim per server, nothing leaked"
        } else {
            "**inconsistent**"
        },
    );
    let _ = writeln!(
        w,
        "| API call (`limit={}`) | servers present | clients | requests/s | p50 | p99 | max | errors |",
        settings.list_limit
    );
    let _ = writeln!(w, "|---|--:|--:|--:|--:|--:|--:|--:|");
    for m in measured {
        let what = match m.op {
            "show" => "`GET /servers/{id}` (member)".to_string(),
            "list" => "`GET /servers/detail?limit=…` (member of a project)".to_string(),
            "list-all" => "`GET /servers/detail?all_tenants=1&limit=…` (admin)".to_string(),
            _ => "`POST /servers` (member)".to_string(),
        };
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            what,
            thousands(m.servers as f64),
            m.clients,
            rate(m.lat.len() as f64 / m.seconds),
            ms(percentile(&m.lat, 50.0)),
            ms(percentile(&m.lat, 99.0)),
            ms(m.lat.last().copied().unwrap_or_default()),
            m.errors,
        );
    }
    out
}

fn main() -> anyhow::Result<()> {
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(settings))
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let begun = Instant::now();
    let load_before = load_average();
    let dir = std::env::temp_dir().join(format!(
        "ferrostack-bench-compute-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::create_dir_all(&dir)?;
    let db = Database::create(&settings, &dir).await?;
    eprintln!(
        "compute scale: {} hosts, {} servers in batches of {}, {} clients, {} in {}",
        settings.hosts,
        settings.servers,
        settings.batch,
        settings.clients,
        db.kind(),
        dir.display()
    );
    let outcome = bench(&settings, &db, &dir, begun, &load_before).await;
    db.drop_database().await;
    if settings.keep {
        eprintln!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let text = outcome?;
    println!("{text}");
    if let Some(path) = &settings.report {
        std::fs::write(path, &text)?;
    }
    Ok(())
}

async fn bench(
    settings: &Settings,
    db: &Database,
    dir: &Path,
    begun: Instant,
    load_before: &str,
) -> anyhow::Result<String> {
    let (cloud, startup) = start_cloud(settings, db, dir).await?;
    eprintln!("{} hosts registered after {startup:.1}s", settings.hosts);
    let idle_empty = idle_cores(settings).await;
    eprintln!("idle with no servers: {idle_empty:.2} cores");
    let flavor =
        json!({"flavor": {"name": FLAVOR, "id": FLAVOR, "ram": 64, "vcpus": 1, "disk": 1}});
    let r = cloud
        .call("admin", "POST", "/v2.1/flavors", Some(&flavor))
        .await;
    anyhow::ensure!(r.status == 200, "flavor create: {} {}", r.status, r.body);

    let mut batches = Vec::new();
    let mut made = 0;
    while made < settings.servers {
        let count = settings.batch.min(settings.servers - made);
        eprintln!("booting servers {made}..{}", made + count);
        let batch = boot(&cloud, made, count, settings.clients).await;
        made += batch.booted;
        batches.push(batch);
    }

    let idle_full = idle_cores(settings).await;
    eprintln!("idle with {made} servers: {idle_full:.2} cores");
    let mut measured = Vec::new();
    let serial = Arc::new(AtomicUsize::new(made));
    for &clients in &settings.latency_clients {
        for op in [Op::Show, Op::List, Op::ListAll, Op::Create] {
            let m = measure(
                &cloud,
                op,
                clients,
                settings.latency_secs,
                settings.latency_creates,
                settings.list_limit,
                &serial,
            )
            .await;
            measured.push(m);
            if op == Op::Create {
                // The next measurement starts with every server built.
                let all = cloud
                    .count("SELECT COUNT(*) FROM instances WHERE deleted = 0")
                    .await;
                if let Err(e) = cloud.wait_active(all).await {
                    anyhow::bail!("servers created during the latency run: {e}");
                }
            }
        }
    }
    let check = Check::read(&cloud).await;
    let run = Run {
        startup,
        idle: (idle_empty, idle_full),
        batches,
        measured,
        check,
        load_before: load_before.to_string(),
        load_after: load_average(),
        peak_rss: peak_rss_mib(),
        total: begun.elapsed().as_secs_f64(),
    };
    let text = report(settings, db, &run);
    let cloud = Arc::try_unwrap(cloud).map_err(|_| anyhow::anyhow!("the cloud is still shared"))?;
    for agent in cloud.agents {
        agent.abort();
    }
    anyhow::ensure!(
        run.check.consistent(),
        "inconsistent end state (the report follows):\n{text}"
    );
    Ok(text)
}
