//! `content-sync connector create|list`.

use crate::es::EsClient;
use crate::es::connector::{CONNECTORS_INDEX, ConnectorStore, DEFAULT_PIPELINE};
use crate::es::protocol::ConnectorApi;
use crate::es::time::now_iso;
use crate::source::s3::configuration_schema;
use serde_json::{Map, Value, json};

#[derive(Debug, clap::Subcommand)]
pub enum ConnectorCommand {
    /// Create an S3 connector document and its content index, as Kibana does.
    Create(Box<CreateArgs>),
    /// List connectors.
    List,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Connector id (use it as `connectors[].connector_id` in config.yml).
    #[arg(long)]
    pub id: String,
    /// Content index name.
    #[arg(long)]
    pub index_name: String,
    #[arg(long)]
    pub name: Option<String>,
    /// Buckets, comma-separated (`*` for all). Giving it fills the configuration (status `configured`).
    #[arg(long)]
    pub buckets: Option<String>,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub aws_access_key_id: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub aws_secret_access_key: Option<String>,
    #[arg(long)]
    pub endpoint_url: Option<String>,
    #[arg(long)]
    pub region: Option<String>,
    /// Quartz cron for scheduled full syncs, e.g. "0 0 * * * ?".
    #[arg(long)]
    pub schedule: Option<String>,
    /// Ingest pipeline name.
    #[arg(long, default_value = DEFAULT_PIPELINE)]
    pub pipeline: String,
}

pub async fn run(es: &EsClient, command: ConnectorCommand) -> anyhow::Result<()> {
    match command {
        ConnectorCommand::Create(args) => create(es, *args).await,
        ConnectorCommand::List => list(es).await,
    }
}

async fn create(es: &EsClient, args: CreateArgs) -> anyhow::Result<()> {
    if ConnectorStore::new(es.clone(), ConnectorApi::default())
        .get(&args.id)
        .await?
        .is_some()
    {
        anyhow::bail!("connector {} already exists", args.id);
    }
    let (configuration, status) = match &args.buckets {
        None => (Value::Object(Map::new()), "created"),
        Some(buckets) => (filled_configuration(&args, buckets), "configured"),
    };
    let now = now_iso();
    let default_filter = json!({
        "rules": [{"id": "DEFAULT", "order": 0, "policy": "include", "field": "_", "rule": "regex", "value": ".*",
                   "created_at": now, "updated_at": now}],
        "advanced_snippet": {"value": {}, "created_at": now, "updated_at": now},
        "validation": {"state": "valid", "errors": []},
    });
    let schedule =
        |enabled: bool, interval: &str| json!({"enabled": enabled, "interval": interval});
    let doc = json!({
        "api_key_id": null, "api_key_secret_id": null,
        "configuration": configuration,
        "custom_scheduling": {},
        "description": null, "error": null, "features": null,
        "filtering": [{"domain": "DEFAULT", "active": default_filter, "draft": default_filter}],
        "index_name": args.index_name,
        "is_native": false, "language": null,
        "last_access_control_sync_error": null, "last_access_control_sync_scheduled_at": null,
        "last_access_control_sync_status": null, "last_deleted_document_count": 0,
        "last_incremental_sync_scheduled_at": null, "last_indexed_document_count": 0,
        "last_seen": null, "last_sync_error": null, "last_sync_scheduled_at": null,
        "last_sync_status": null, "last_synced": null,
        "name": args.name.clone().unwrap_or_else(|| args.id.clone()),
        "pipeline": {"name": args.pipeline, "extract_binary_content": true, "reduce_whitespace": true, "run_ml_inference": true},
        "scheduling": {
            "access_control": schedule(false, "0 0 0 * * ?"),
            "full": match &args.schedule { Some(s) => schedule(true, s), None => schedule(false, "0 0 0 * * ?") },
            "incremental": schedule(false, "0 0 0 * * ?"),
        },
        "service_type": "s3",
        "status": status,
        "sync_cursor": null,
    });
    es.index_doc(CONNECTORS_INDEX, Some(&args.id), doc, true)
        .await?;
    if !es.index_exists(&args.index_name).await? {
        es.create_index(&args.index_name, None).await?;
    }
    say!(
        "created connector {} (index {}, status {status})",
        args.id,
        args.index_name
    );
    Ok(())
}

fn filled_configuration(args: &CreateArgs, buckets: &str) -> Value {
    let mut configuration = configuration_schema();
    let mut set = |key: &str, value: Value| {
        if let Some(field) = configuration.get_mut(key) {
            field["value"] = value;
        }
    };
    set("buckets", json!(buckets));
    if let Some(v) = &args.aws_access_key_id {
        set("aws_access_key_id", json!(v));
    }
    if let Some(v) = &args.aws_secret_access_key {
        set("aws_secret_access_key", json!(v));
    }
    if let Some(v) = &args.endpoint_url {
        set("endpoint_url", json!(v));
    }
    if let Some(v) = &args.region {
        set("region", json!(v));
    }
    Value::Object(configuration)
}

async fn list(es: &EsClient) -> anyhow::Result<()> {
    let hits = es
        .search_all(CONNECTORS_INDEX, json!({"match_all": {}}), None)
        .await?;
    say!(
        "{:<24} {:<24} {:<20} {:<12} {:<12} LAST SYNCED",
        "ID",
        "INDEX",
        "STATUS",
        "LAST SYNC",
        "SERVICE"
    );
    for hit in hits {
        let s = |k: &str| {
            hit.source
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_string()
        };
        say!(
            "{:<24} {:<24} {:<20} {:<12} {:<12} {}",
            hit.id,
            s("index_name"),
            s("status"),
            s("last_sync_status"),
            s("service_type"),
            s("last_synced")
        );
    }
    Ok(())
}
