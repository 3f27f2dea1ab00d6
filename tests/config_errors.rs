//! Startup failures of the binary: bad config files, unreachable Elasticsearch, bad CLI usage.
//! Each must end the process with a non-zero status and say, on stderr, what is wrong and where.
//! No Elasticsearch or S3 is needed: every case fails before (or while) reaching them.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A config file in its own temp dir (kept alive by the returned guard).
fn config_file(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.yml");
    std::fs::write(&path, yaml).expect("write config");
    (dir, path)
}

fn content_sync(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_content-sync"));
    cmd.args(args)
        .env("ALLOW_ES_VERSION_MISMATCH", "true")
        .env_remove("CONTENT_SYNC_LOG");
    cmd
}

/// Runs the service on `yaml`; returns the output (after checking it failed) and the file path.
fn run_failing(yaml: &str) -> (Output, String) {
    let (dir, path) = config_file(yaml);
    let out = content_sync(&["-c", path.to_str().expect("utf-8 path")])
        .current_dir(dir.path())
        .output()
        .expect("run content-sync");
    assert!(
        !out.status.success(),
        "expected a failure, got {:?}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (out, path.display().to_string())
}

/// The one line a config error prints on stderr; checks it names `file` and every `needle`.
#[track_caller]
fn assert_one_line_error(out: &Output, file: &str, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected on stderr:\n{stderr}");
    assert!(
        lines[0].contains(file),
        "error must name the file {file}: {stderr}"
    );
    for n in needles {
        assert!(lines[0].contains(n), "error must mention {n:?}: {stderr}");
    }
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// An address where nothing listens.
fn dead_host() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("http://127.0.0.1:{}", l.local_addr().expect("addr").port())
}

#[test]
fn unknown_service_type() {
    let (out, file) =
        run_failing("connectors:\n  - connector_id: \"c1\"\n    service_type: \"gdrive\"\n");
    assert_one_line_error(&out, &file, &["connectors[0].service_type", "gdrive"]);
}

#[test]
fn connector_without_id() {
    let (out, file) = run_failing("connectors:\n  - service_type: \"s3\"\n");
    assert_one_line_error(&out, &file, &["connectors[0].connector_id"]);
}

#[test]
fn unmodified_default_connector_id() {
    let (out, file) =
        run_failing("connectors:\n  - connector_id: \"changeme\"\n    service_type: \"s3\"\n");
    assert_one_line_error(&out, &file, &["connectors[0].connector_id", "changeme"]);
}

#[test]
fn unparsable_yaml() {
    let (out, file) = run_failing("connectors: [\n  - connector_id: x\n");
    assert_one_line_error(&out, &file, &["YAML", "line 2"]);
}

#[test]
fn undefined_environment_variable() {
    let var = "CONTENT_SYNC_TEST_UNDEFINED_HOST";
    let (dir, path) = config_file(&format!(
        "elasticsearch.host: ${{{var}}}\nconnectors:\n  - connector_id: \"c1\"\n    service_type: \"s3\"\n"
    ));
    let out = content_sync(&["-c", path.to_str().unwrap()])
        .current_dir(dir.path())
        .env_remove(var)
        .env_remove("ENVYAML_STRICT_DISABLE")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert_one_line_error(&out, &path.display().to_string(), &[&format!("${var}")]);
}

#[test]
fn unknown_key() {
    let (out, file) = run_failing(
        "elasticsearch.hots: http://localhost:9200\nconnectors:\n  - connector_id: \"c1\"\n    service_type: \"s3\"\n",
    );
    assert_one_line_error(&out, &file, &["elasticsearch.hots"]);
}

#[test]
fn missing_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.yml");
    let out = content_sync(&["-c", path.to_str().unwrap()])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert_one_line_error(&out, &path.display().to_string(), &[]);
}

/// A skipped item (no `connector_id`) next to a valid one is not an error, but the warning must
/// reach the log (the service then fails on the unreachable cluster).
#[test]
fn skipped_connector_item_is_reported() {
    let host = dead_host();
    let (out, _) = run_failing(&format!(
        "elasticsearch.host: {host}\nelasticsearch.max_wait_duration: 1\nconnectors:\n  \
         - connector_id: \"c1\"\n    service_type: \"s3\"\n  - service_type: \"s3\"\n"
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("WARN") && l.contains("connectors[1].connector_id")),
        "{stderr}"
    );
}

#[test]
fn unreachable_elasticsearch() {
    let host = dead_host();
    let t0 = Instant::now();
    let (out, _) = run_failing(&format!(
        "elasticsearch.host: {host}\nelasticsearch.max_wait_duration: 1\nconnectors:\n  \
         - connector_id: \"c1\"\n    service_type: \"s3\"\n"
    ));
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "took {:?}",
        t0.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains(&host) && last.contains("unreachable"),
        "the last line must name the host: {stderr}"
    );
}

#[test]
fn config_action_with_unknown_service_type() {
    let out = content_sync(&["--action", "config", "--service-type", "nope"])
        .output()
        .expect("run");
    assert!(!out.status.success(), "{:?}", out.status);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nope"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The known type works (so the failure above is about the type).
    let ok = content_sync(&["--action", "config", "--service-type", "s3"])
        .output()
        .expect("run");
    assert!(ok.status.success(), "{:?}", ok.status);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(stdout.contains("\"aws_secret_access_key\""), "{stdout}");
}
