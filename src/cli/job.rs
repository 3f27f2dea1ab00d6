//! `content-sync job start|list|show`.

use super::redact_configuration;
use crate::es::EsClient;
use crate::es::connector::ConnectorStore;
use crate::es::job::{JOBS_INDEX, JobStore};
use serde_json::{Value, json};

#[derive(Debug, clap::Subcommand)]
pub enum JobCommand {
    /// Queue an on-demand sync (a `pending` job the service picks up).
    Start {
        #[arg(long)]
        connector: String,
        #[arg(long = "type", default_value = "full", value_parser = ["full", "incremental"])]
        job_type: String,
    },
    /// List jobs, newest first.
    List {
        #[arg(long)]
        connector: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Show one job document (secrets redacted).
    Show { id: String },
}

pub async fn run(es: &EsClient, api: bool, command: JobCommand) -> anyhow::Result<()> {
    match command {
        JobCommand::Start {
            connector,
            job_type,
        } => {
            let Some(c) = ConnectorStore::new(es.clone(), api).get(&connector).await? else {
                anyhow::bail!("connector {connector} not found");
            };
            let id = JobStore::new(es.clone(), api)
                .create(&c, &job_type, "on_demand")
                .await?;
            println!("{id}");
        }
        JobCommand::List { connector, limit } => {
            let query = match connector {
                Some(c) => json!({"term": {"connector.id": c}}),
                None => json!({"match_all": {}}),
            };
            let hits = es
                .search(
                    JOBS_INDEX,
                    json!({"query": query, "size": limit, "sort": [{"created_at": "desc"}]}),
                )
                .await?;
            println!(
                "{:<24} {:<20} {:<12} {:<10} {:>8} {:>8} CREATED",
                "ID", "CONNECTOR", "STATUS", "TYPE", "INDEXED", "DELETED"
            );
            for hit in hits {
                let src = &hit.source;
                let s = |p: &str| {
                    src.pointer(p)
                        .and_then(Value::as_str)
                        .unwrap_or("-")
                        .to_string()
                };
                let n = |p: &str| src.pointer(p).and_then(Value::as_u64).unwrap_or(0);
                println!(
                    "{:<24} {:<20} {:<12} {:<10} {:>8} {:>8} {}",
                    hit.id,
                    s("/connector/id"),
                    s("/status"),
                    s("/job_type"),
                    n("/indexed_document_count"),
                    n("/deleted_document_count"),
                    s("/created_at")
                );
            }
        }
        JobCommand::Show { id } => {
            let Some(job) = JobStore::new(es.clone(), api).get(&id).await? else {
                anyhow::bail!("job {id} not found");
            };
            let mut doc = Value::Object(job.doc);
            if let Some(cfg) = doc.pointer("/connector/configuration").cloned() {
                doc["connector"]["configuration"] = redact_configuration(&cfg);
            }
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
    }
    Ok(())
}
