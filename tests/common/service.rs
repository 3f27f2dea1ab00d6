//! Running the `content-sync` binary under test.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

use super::es::EsAuth;
use super::{TestWorld, wait_for};

/// A running `content-sync -c <config>` process; stdout and stderr go to one log file in its
/// own temp dir, which is also its working directory. Killed on drop.
pub struct ServiceProcess {
    child: Child,
    pid: u32,
    dir: tempfile::TempDir,
    /// The config file the process was started with.
    pub config_path: PathBuf,
    log_path: PathBuf,
}

impl ServiceProcess {
    /// Writes `config_yaml` to `<tmp>/config.yml` and starts the binary with `-c <file>`.
    ///
    /// Environment: inherited, plus `ALLOW_ES_VERSION_MISMATCH=true` on the OpenSearch-API stand-in
    /// only (it reports version 3.8.0), `AWS_EC2_METADATA_DISABLED=true`, `RUST_BACKTRACE=1`, then
    /// `extra_env` (which wins).
    pub fn start(
        world: &TestWorld,
        config_yaml: &str,
        extra_env: &[(&str, &str)],
    ) -> ServiceProcess {
        Self::start_with_args(world, config_yaml, &[], extra_env)
    }

    /// Like [`Self::start`], with extra command-line arguments after `-c <file>` (e.g. `--debug`).
    pub fn start_with_args(
        world: &TestWorld,
        config_yaml: &str,
        args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> ServiceProcess {
        let dir = tempfile::Builder::new()
            .prefix(&format!("content-sync-svc-{}-", world.suffix))
            .tempdir()
            .expect("create temp dir");
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config_yaml).expect("write config");
        let log_path = dir.path().join("service.log");
        let log = std::fs::File::create(&log_path).expect("create log");
        let log2 = log.try_clone().expect("clone log fd");

        let mut cmd = Command::new(env!("CARGO_BIN_EXE_content-sync"));
        cmd.arg("-c")
            .arg(&config_path)
            .args(args)
            .current_dir(dir.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .kill_on_drop(true);
        if world.es_stand_in {
            // The stand-in reports an OpenSearch version; a real cluster passes the version check.
            cmd.env("ALLOW_ES_VERSION_MISMATCH", "true");
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn content-sync");
        let pid = child.id().expect("child has a pid");
        ServiceProcess {
            child,
            pid,
            dir,
            config_path,
            log_path,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The process's working directory (temp, removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`, ...) with `kill(1)`. Returns false (and
    /// sends nothing) if the process has already been reaped, e.g. by [`Self::wait_exit`].
    pub fn send_signal(&self, signal: &str) -> bool {
        let Some(pid) = self.child.id() else {
            return false;
        };
        std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status()
            .expect("run kill")
            .success()
    }

    pub fn send_sigterm(&self) -> bool {
        self.send_signal("TERM")
    }

    /// SIGINT is what Elastic's ftest monitor sends.
    pub fn send_sigint(&self) -> bool {
        self.send_signal("INT")
    }

    /// The exit status if the process has ended.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits for the process to end; panics with the logs after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.expect("wait for content-sync"),
            Err(_) => panic!(
                "content-sync (pid {}) did not exit within {timeout:?}; logs:\n{}",
                self.pid,
                self.logs()
            ),
        }
    }

    /// Waits until the logs contain `needle`; panics with the logs after `timeout`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) {
        wait_for(
            &format!("service log contains {needle:?}"),
            timeout,
            async || {
                let logs = self.logs();
                if logs.contains(needle) {
                    Ok(())
                } else {
                    Err(Tail(logs))
                }
            },
        )
        .await
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Debug-prints the last 4 KB of a log (for timeout messages).
struct Tail(String);

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.0;
        let mut start = s.len().saturating_sub(4096);
        while !s.is_char_boundary(start) {
            start += 1;
        }
        write!(f, "…\n{}", &s[start..])
    }
}

/// YAML double-quoted scalar (JSON strings are valid YAML), with `$` escaped as `$$` for the
/// loader's envyaml-style variable substitution.
fn q(s: &str) -> String {
    serde_json::to_string(&s.replace('$', "$$")).expect("string to JSON")
}

impl TestWorld {
    /// A service config for this world:
    ///
    /// ```yaml
    /// elasticsearch:
    ///   host: <es_url>
    ///   username/password or api_key      # only when given via ES_USERNAME/ES_PASSWORD/ES_API_KEY
    ///   feature_use_connectors_api: false # only on the stand-in (osmem has no _connector API)
    /// service:
    ///   idling: 0.5
    ///   heartbeat: 2
    /// connectors:
    ///   - connector_id: <id>
    ///     service_type: s3
    /// <extra>
    /// ```
    ///
    /// `extra` is appended verbatim; to add keys to the sections above use dotted keys
    /// (`elasticsearch.bulk.chunk_size: 10`), which the config loader merges.
    pub fn config_yaml(&self, connector_ids: &[&str], extra: &str) -> String {
        let mut y = String::from("elasticsearch:\n");
        y += &format!("  host: {}\n", q(&self.es_url));
        match &self.es_auth {
            EsAuth::None => {}
            EsAuth::Basic { username, password } => {
                y += &format!("  username: {}\n  password: {}\n", q(username), q(password));
            }
            EsAuth::ApiKey(key) => y += &format!("  api_key: {}\n", q(key)),
        }
        if self.es_stand_in {
            y += "  feature_use_connectors_api: false\n";
        }
        y += "service:\n  idling: 0.5\n  heartbeat: 2\n";
        if connector_ids.is_empty() {
            y += "connectors: []\n";
        } else {
            y += "connectors:\n";
            for id in connector_ids {
                y += &format!("  - connector_id: {}\n    service_type: s3\n", q(id));
            }
        }
        if !extra.is_empty() {
            y += extra;
            if !extra.ends_with('\n') {
                y.push('\n');
            }
        }
        y
    }

    /// [`Self::config_yaml`] with `elasticsearch.host` pointed at `host` (a proxy in front of ES).
    pub fn config_yaml_via(&self, connector_ids: &[&str], extra: &str, host: &str) -> String {
        self.with_es_host(&self.config_yaml(connector_ids, extra), host)
    }

    /// `yaml` (from [`Self::config_yaml`]) with `elasticsearch.host` replaced by `host`.
    pub fn with_es_host(&self, yaml: &str, host: &str) -> String {
        let from = format!("host: {}\n", q(&self.es_url));
        assert!(yaml.contains(&from), "config has no host line: {yaml}");
        yaml.replacen(&from, &format!("host: {}\n", q(host)), 1)
    }
}

/// Lines of `logs` that contain all of `needles`.
pub fn lines_with<'a>(logs: &'a str, needles: &[&str]) -> Vec<&'a str> {
    logs.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .collect()
}
