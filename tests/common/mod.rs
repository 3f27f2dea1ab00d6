//! Integration-test harness: the "test world".
//!
//! A [`TestWorld`] is one Elasticsearch endpoint plus one S3 endpoint:
//!
//! * Elasticsearch: `ES_URL` (with optional `ES_USERNAME`/`ES_PASSWORD` or `ES_API_KEY`) when set,
//!   else a private osmem-server spawned from `OSMEM_BIN` (fallback: the venv in `.local/`).
//! * S3: `S3_ENDPOINT` when set, else a private moto server spawned from `MOTO_SERVER_BIN`.
//!
//! Spawned servers die with the world. Every world has a random suffix; build all index, bucket and
//! connector names with [`TestWorld::name`] so tests stay independent on a shared, real ES/S3.
//!
//! Helpers live in submodules: [`es`] (plain HTTP to ES), [`kibana`] (connector and job documents as
//! Kibana/ES would write them), [`s3`] (buckets and objects), [`service`] (the `content-sync` binary)
//! and [`proxy`] (a fault-injecting HTTP proxy).
//!
//! Use it from a `tests/*.rs` file with `mod common;`.
#![allow(dead_code, unused_imports)]

pub mod connector_api;
pub mod es;
pub mod hostile;
pub mod jobs;
pub mod kibana;
pub mod prom;
pub mod proxy;
pub mod s3;
pub mod service;
pub mod tls;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

pub use es::{EsAuth, EsResponse, doc_id};
pub use jobs::{TERMINAL, assert_recent, ts, wait_completed, wait_done, wait_job_done};
pub use kibana::{ELASTIC_S3_SCHEMA, s3_config, s3_configuration};
pub use proxy::{Fault, FaultProxy, Rule};
pub use s3::is_listing_of;
pub use service::{ServiceProcess, lines_with};

/// Message used whenever a stand-in binary cannot be found.
const INSTALL_HINT: &str = "run `make test` (it installs the stand-ins)";

/// One Elasticsearch + one S3 endpoint, with helpers. See the module docs.
pub struct TestWorld {
    /// Base URL of Elasticsearch, without a trailing slash.
    pub es_url: String,
    /// Base URL of the S3 endpoint, without a trailing slash.
    pub s3_endpoint: String,
    /// `ES_URL` was given: ES is shared, possibly real; do not assume stand-in quirks.
    pub external_es: bool,
    /// `S3_ENDPOINT` was given.
    pub external_s3: bool,
    /// ES answered `GET /` with an OpenSearch distribution (osmem): no `_connector` API, no ingest
    /// pipelines.
    pub es_stand_in: bool,
    /// 8 random lowercase letters, unique per world.
    pub suffix: String,
    pub(crate) es_auth: EsAuth,
    pub(crate) http: reqwest::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    /// Set once the system indices exist (creating them runs the binary; once per world is enough).
    pub(crate) system_indices: tokio::sync::OnceCell<()>,
    children: Vec<Child>,
    tmp: tempfile::TempDir,
}

impl TestWorld {
    /// Connects to (or spawns) Elasticsearch and S3 and waits until both answer.
    pub async fn start() -> TestWorld {
        let suffix: String = (0..8).map(|_| fastrand::lowercase()).collect();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("content-sync-world-{suffix}-"))
            .tempdir()
            .expect("create temp dir");
        let mut children = Vec::new();

        let (es_url, external_es) = match env_nonempty("ES_URL") {
            Some(url) => (url.trim_end_matches('/').to_string(), true),
            None => {
                let (child, url) = spawn_osmem(tmp.path()).await;
                children.push(child);
                (url, false)
            }
        };
        let (s3_endpoint, external_s3) = match env_nonempty("S3_ENDPOINT") {
            Some(url) => (url.trim_end_matches('/').to_string(), true),
            None => {
                let (child, url) = spawn_moto(tmp.path(), &[]).await;
                children.push(child);
                (url, false)
            }
        };

        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("build reqwest client");
        let s3 = s3::client(&s3_endpoint, "us-east-1");
        let mut world = TestWorld {
            es_url,
            s3_endpoint,
            external_es,
            external_s3,
            es_stand_in: false,
            suffix,
            es_auth: EsAuth::from_env(),
            http,
            s3,
            system_indices: tokio::sync::OnceCell::new(),
            children,
            tmp,
        };

        world
            .wait_for(
                "Elasticsearch answers GET /_cluster/health",
                Duration::from_secs(60),
                async || {
                    let r = world.es_get("/_cluster/health").await;
                    if r.status == 200 { Ok(()) } else { Err(r) }
                },
            )
            .await;
        // A real node of Elasticsearch's minimal distribution has no `GET /` (405); the
        // OpenSearch-API stand-in says what it is there.
        let root = world.es_get("/").await;
        world.es_stand_in =
            root.status == 200 && root.body["version"]["distribution"] == "opensearch";
        world
    }

    /// A moto server of this world's own, whatever `S3_ENDPOINT` says, with `envs` in its
    /// environment (e.g. moto's `INITIAL_NO_AUTH_ACTION_COUNT`, after which it checks signatures);
    /// stopped with the world. Its URL.
    pub async fn private_moto(&mut self, envs: &[(&str, &str)]) -> String {
        let (child, url) = spawn_moto(self.tmp.path(), envs).await;
        self.children.push(child);
        url
    }

    /// `"<base>-<suffix>"`: a name unique to this world (valid as index, bucket and connector id).
    pub fn name(&self, base: &str) -> String {
        format!("{base}-{}", self.suffix)
    }

    /// A scratch directory that lives as long as the world (also holds spawned servers' logs).
    pub fn tmp_dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Polls `f` every 200 ms until it yields a value; see [`wait_for`].
    pub async fn wait_for<T, R, F>(&self, desc: &str, timeout: Duration, f: F) -> T
    where
        F: AsyncFnMut() -> R,
        R: Attempt<Output = T>,
    {
        wait_for(desc, timeout, f).await
    }
}

impl Drop for TestWorld {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.start_kill();
        }
    }
}

/// Debug-prints a string as is: an `Err` payload for [`wait_for`] that keeps multi-line messages
/// (logs) readable.
pub struct Raw(pub String);

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The result of one polling attempt in [`wait_for`]: a value, or "not yet" (optionally with
/// what was observed, which is reported if the wait times out).
pub trait Attempt {
    type Output;
    fn into_result(self) -> Result<Self::Output, String>;
}

impl<T> Attempt for Option<T> {
    type Output = T;
    fn into_result(self) -> Result<T, String> {
        self.ok_or_else(|| "None".to_string())
    }
}

impl<T, E: std::fmt::Debug> Attempt for Result<T, E> {
    type Output = T;
    fn into_result(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// Polls `f` every 200 ms until it returns `Some(v)` / `Ok(v)` and returns `v`.
///
/// On timeout, panics with `desc` and the last observed value (the `Err` payload when `f` returns
/// a `Result`, so return `Err(observed)` to get useful failure messages).
///
/// ```ignore
/// let n = wait_for("3 docs indexed", secs(30), async || {
///     let n = world.count(&index).await;
///     if n == 3 { Ok(n) } else { Err(n) }
/// }).await;
/// ```
pub async fn wait_for<T, R, F>(desc: &str, timeout: Duration, mut f: F) -> T
where
    F: AsyncFnMut() -> R,
    R: Attempt<Output = T>,
{
    let start = Instant::now();
    loop {
        let last = match f().await.into_result() {
            Ok(v) => return v,
            Err(observed) => observed,
        };
        if start.elapsed() >= timeout {
            panic!("timed out after {timeout:?} waiting for: {desc}\nlast observed: {last}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Shorthand for `Duration::from_secs`.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The current time as ES/Kibana write it: RFC 3339, UTC, milliseconds, `Z`.
pub fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A free TCP port on 127.0.0.1 (the kernel picks it; there is a small race until it is bound).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

/// `<repo>/.local/venv`, where `scripts/stand-ins.sh install` puts the stand-ins.
/// The Python beside moto (`MOTO_SERVER_BIN`'s, else the stand-ins' venv): it holds boto3 and the
/// Prometheus parser, for helper scripts.
pub fn python() -> PathBuf {
    if let Some(moto) = env_nonempty("MOTO_SERVER_BIN") {
        let p = PathBuf::from(moto).with_file_name("python");
        if p.exists() {
            return p;
        }
    }
    venv_dir().join("bin/python")
}

fn venv_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".local")
        .join("venv")
}

/// Resolves a stand-in binary from `env_key`, else from `fallback`; panics with the install hint.
fn locate_bin(env_key: &str, fallback: Option<PathBuf>) -> PathBuf {
    let path = env_nonempty(env_key).map(PathBuf::from).or(fallback);
    match path {
        Some(p) if p.is_file() => p,
        Some(p) => panic!("{env_key}: {} does not exist; {INSTALL_HINT}", p.display()),
        None => {
            panic!("{env_key} is not set and no stand-in found under .local/venv; {INSTALL_HINT}")
        }
    }
}

fn osmem_fallback() -> Option<PathBuf> {
    let lib = venv_dir().join("lib");
    std::fs::read_dir(lib)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("python"))
        .map(|e| e.path().join("site-packages/osmem_server/bin/osmem-server"))
        .find(|p| p.is_file())
}

fn log_file(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(name)).expect("create log file")
}

fn read_log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

/// Spawns osmem-server on a kernel-chosen port and reads its URL from the first stdout line.
async fn spawn_osmem(dir: &Path) -> (Child, String) {
    let bin = locate_bin("OSMEM_BIN", osmem_fallback());
    let mut child = Command::new(&bin)
        .args(["-addr", "127.0.0.1:0", "-no-stdin-watch", "-no-ja"])
        .args(["-parent-pid", &std::process::id().to_string()])
        .stdin(Stdio::null())
        .stdout(log_file(dir, "osmem.out"))
        .stderr(log_file(dir, "osmem.err"))
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}; {INSTALL_HINT}", bin.display()));

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = read_log(dir, "osmem.out");
        if let Some(line) = out.lines().next().filter(|_| out.contains('\n')) {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("osmem first line is not JSON ({e}): {line}"));
            let url = v["url"]
                .as_str()
                .expect("osmem JSON has a url")
                .trim_end_matches('/');
            return (child, url.to_string());
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "osmem-server exited early ({status}): {}",
                read_log(dir, "osmem.err")
            );
        }
        if Instant::now() > deadline {
            panic!(
                "osmem-server printed no URL within 20 s: {}",
                read_log(dir, "osmem.err")
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Spawns `moto_server` on a free port, with `envs` in its environment, and waits until
/// `GET /moto-api/` answers. Retries with another port if the server dies at once (port race).
async fn spawn_moto(dir: &Path, envs: &[(&str, &str)]) -> (Child, String) {
    let bin = locate_bin("MOTO_SERVER_BIN", Some(venv_dir().join("bin/moto_server")));
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client");
    for attempt in 1..=3 {
        let port = free_port();
        let log = format!("moto-{attempt}.log");
        let out = log_file(dir, &log);
        let err = out.try_clone().expect("clone log fd");
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}; {INSTALL_HINT}", bin.display()));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let probe = http
                .get(format!("{url}/moto-api/"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if probe.is_ok() {
                return (child, url);
            }
            if let Ok(Some(_)) = child.try_wait() {
                break; // died (probably the port was taken); try another port
            }
            if Instant::now() > deadline {
                panic!(
                    "moto_server did not answer within 60 s: {}",
                    read_log(dir, &log)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!(
        "moto_server failed to start 3 times; logs in {}",
        dir.display()
    );
}

/// The last `n` bytes of a log (on a character boundary), for failure messages.
pub fn log_tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
