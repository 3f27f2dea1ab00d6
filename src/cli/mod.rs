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

/// Whether a configuration field's name says it holds a secret. Kibana and older services do not
/// always mark such fields `sensitive` (our own `aws_session_token` was not), so the name decides too.
fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "secret",
        "password",
        "passwd",
        "token",
        "api_key",
        "apikey",
        "private_key",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// A copy of a configuration with every secret value replaced by `***`: fields marked `sensitive`
/// and fields named like a secret (see [`is_secret_name`]), rich (`{"value": …}`) or plain.
pub fn redact_configuration(configuration: &serde_json::Value) -> serde_json::Value {
    let is_set = |v: &serde_json::Value| !v.is_null() && v != "";
    let mut out = configuration.clone();
    if let Some(fields) = out.as_object_mut() {
        for (name, field) in fields.iter_mut() {
            let secret_name = is_secret_name(name);
            if let Some(rich) = field.as_object_mut() {
                let sensitive = rich
                    .get("sensitive")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false);
                if (sensitive || secret_name) && rich.get("value").is_some_and(is_set) {
                    rich.insert("value".into(), serde_json::json!("***"));
                }
            } else if secret_name && is_set(field) {
                *field = serde_json::json!("***");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_fields_are_redacted_whether_or_not_marked_sensitive() {
        let cfg = json!({
            "aws_access_key_id": {"value": "AKID", "sensitive": false},
            "aws_secret_access_key": {"value": "s1", "sensitive": false},
            "aws_session_token": {"value": "t1"},
            "db_password": {"value": "p1", "sensitive": false},
            "Client_Secret": "s2",
            "api_key": {"value": "k1"},
            "refresh_token": "t2",
            "marked": {"value": "m1", "sensitive": true},
            "buckets": {"value": "b", "sensitive": false},
            "empty_secret": {"value": ""},
        });
        let out = redact_configuration(&cfg);
        let text = out.to_string();
        for secret in ["s1", "t1", "p1", "s2", "k1", "t2", "m1"] {
            assert!(!text.contains(&format!("\"{secret}\"")), "{secret}: {text}");
        }
        assert_eq!(out["aws_access_key_id"]["value"], "AKID");
        assert_eq!(out["buckets"]["value"], "b");
        assert_eq!(out["aws_session_token"]["value"], "***");
        assert_eq!(out["Client_Secret"], "***");
        assert_eq!(out["empty_secret"]["value"], "");
    }
}
