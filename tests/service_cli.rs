//! The command-line side, end to end: the management CLI creates a connector and starts a job that
//! the service runs, and `--action config` / `--action list` print what Elastic's service prints.

mod common;

use std::path::PathBuf;

use common::{ELASTIC_S3_SCHEMA, Raw, ServiceProcess, TestWorld, secs, wait_completed};
use serde_json::Value;

/// Writes a config file for `ids` into the world's temp dir and returns its path.
fn write_config(world: &TestWorld, ids: &[&str], name: &str) -> PathBuf {
    let path = world.tmp_dir().join(format!("{name}.yml"));
    std::fs::write(&path, world.config_yaml(ids, "")).expect("write config");
    path
}

/// Output of one run of the binary.
struct CliOutput {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `content-sync <args>` to completion (no config unless `args` has `-c`).
async fn cli(args: &[&str]) -> CliOutput {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_content-sync"))
        .args(args)
        .env("ALLOW_ES_VERSION_MISMATCH", "true")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .expect("run content-sync");
    CliOutput {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a CLI command and panics with its output unless it succeeds; returns stdout.
async fn cli_ok(args: &[&str]) -> String {
    let out = cli(args).await;
    assert!(
        out.success,
        "content-sync {args:?} failed\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    out.stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_creates_a_connector_and_starts_a_job_the_service_runs() {
    let world = TestWorld::start().await;
    let bucket = world.name("cli");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "c/", 3).await;
    let id = world.name("cli");
    let index = world.name("search-cli");
    let secret = format!("very-secret-{}", world.suffix);
    let config = write_config(&world, &[&id], "cli");
    let config = config.to_str().unwrap();

    let out = cli_ok(&[
        "-c",
        config,
        "connector",
        "create",
        "--id",
        &id,
        "--index-name",
        &index,
        "--buckets",
        &bucket,
        "--endpoint-url",
        &world.s3_endpoint,
        "--aws-access-key-id",
        "test",
        "--aws-secret-access-key",
        &secret,
    ])
    .await;
    assert!(out.contains(&id), "create output: {out}");
    assert!(
        !out.contains(&secret),
        "create output leaks the secret: {out}"
    );
    let c = world.connector(&id).await.expect("connector created");
    assert_eq!(c["status"], "configured");
    assert_eq!(c["index_name"], index.as_str());

    let out = cli_ok(&["-c", config, "job", "start", "--connector", &id]).await;
    let job_id = out.trim().to_string();
    let job = world
        .job(&job_id)
        .await
        .expect("job start prints the job id");
    assert_eq!(job["status"], "pending");
    assert_eq!(job["trigger_method"], "on_demand");

    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let job = wait_completed(&world, &svc, &job_id, secs(20)).await;
    assert_eq!(job["indexed_document_count"], 3);
    assert_eq!(world.count(&index).await, 3);
    world
        .wait_connector(&id, "sync recorded", secs(10), |c| {
            c["last_sync_status"] == "completed"
        })
        .await;

    let out = cli_ok(&["-c", config, "job", "show", &job_id]).await;
    assert!(!out.contains(&secret), "job show leaks the secret: {out}");
    let shown: Value = serde_json::from_str(&out).expect("job show prints JSON");
    assert_eq!(shown["status"], "completed");
    assert_eq!(
        shown["connector"]["configuration"]["aws_secret_access_key"]["value"],
        "***"
    );
    assert_eq!(
        shown["connector"]["configuration"]["buckets"]["value"],
        bucket.as_str()
    );

    // Elasticsearch-generated job ids may begin with `-`; `job show` must take them as they are.
    let out = cli(&["-c", config, "job", "show", "-NoSuchJob0123456789"]).await;
    assert!(!out.success);
    assert!(
        out.stderr.contains("job -NoSuchJob0123456789 not found"),
        "stderr: {}",
        out.stderr
    );

    let out = cli(&[
        "-c",
        config,
        "job",
        "start",
        "--connector",
        "-NoSuchConnector",
    ])
    .await;
    assert!(!out.success);
    assert!(
        out.stderr.contains("connector -NoSuchConnector not found"),
        "stderr: {}",
        out.stderr
    );

    // `connector list` searches, and a search sees an update once the index refreshes (within a
    // second on Elasticsearch).
    let line = world
        .wait_for("connector list shows the sync", secs(10), async || {
            let out = cli_ok(&["-c", config, "connector", "list"]).await;
            let line = out
                .lines()
                .find(|l| l.split_whitespace().next() == Some(id.as_str()))
                .map(str::to_string);
            match line {
                Some(l) if l.contains("completed") => Ok(l),
                _ => Err(Raw(out)),
            }
        })
        .await;
    assert!(line.contains(&index), "{line}");

    let out = cli_ok(&["-c", config, "job", "list", "--connector", &id]).await;
    assert!(out.contains(&job_id), "job list:\n{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn action_config_prints_the_schema_and_action_list_the_source() {
    let out = cli_ok(&["--action", "config", "--service-type", "s3"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"Getting default configuration for service type s3")
    );
    assert_eq!(lines.last(), Some(&"Bye"));
    let body = lines[1..lines.len() - 1].join("\n");
    assert!(body.starts_with("{\n  \"buckets\": {"), "indent 2:\n{body}");
    let schema: serde_json::Map<String, Value> =
        serde_json::from_str(&body).expect("schema is JSON");
    let elastic: serde_json::Map<String, Value> = serde_json::from_str(ELASTIC_S3_SCHEMA).unwrap();
    let first_eight: Vec<&String> = schema.keys().take(8).collect();
    assert_eq!(first_eight, elastic.keys().collect::<Vec<_>>());
    for (key, expected) in &elastic {
        assert_eq!(schema.get(key), Some(expected), "field {key}");
    }
    assert_eq!(schema.len(), 14);

    let out = cli_ok(&["--action", "list"]).await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["Registered connectors:", "- Amazon S3", "Bye"]
    );

    let out = cli(&["--action", "config", "--service-type", "dropbox"]).await;
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("Could not find a connector for service type dropbox"),
        "stderr: {}",
        out.stderr
    );
}
