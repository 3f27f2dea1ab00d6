//! Management CLI: what Kibana does, for users without Kibana (and for our tests and demo).
//!
//! `content-sync connector create|list`, `content-sync job start|list|show`.

/// `println!` that does not panic when stdout is closed early (`content-sync job list | head`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod connector;
mod job;

use crate::config::Config;
use crate::es::{EsClient, protocol, system_indices};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create or list connectors.
    #[command(subcommand)]
    Connector(connector::ConnectorCommand),
    /// Start, list or inspect sync jobs.
    #[command(subcommand)]
    Job(job::JobCommand),
}

pub async fn run(config: Config, command: Command) -> anyhow::Result<()> {
    let es = EsClient::new(&config.elasticsearch, None, "cli")?;
    let cluster = es.cluster_info_once().await?;
    let probe = protocol::probe(&es).await;
    let api = protocol::decide(
        config.elasticsearch.feature_use_connectors_api,
        &cluster,
        &probe,
    )?;
    system_indices::ensure(&es, &cluster, &probe).await?;
    match command {
        Command::Connector(c) => connector::run(&es, c).await,
        Command::Job(j) => job::run(&es, api, j).await,
    }
}

/// A copy of a configuration with every sensitive value replaced by `***`.
pub fn redact_configuration(configuration: &serde_json::Value) -> serde_json::Value {
    let mut out = configuration.clone();
    if let Some(fields) = out.as_object_mut() {
        for field in fields.values_mut() {
            let sensitive = field
                .get("sensitive")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            let has_value = field.get("value").is_some_and(|v| !v.is_null() && v != "");
            if sensitive && has_value {
                field["value"] = serde_json::json!("***");
            }
        }
    }
    out
}
