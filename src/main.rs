//! `content-sync`: the service (Elastic's `elastic-ingest` flags) and its management CLI.

use clap::{Parser, ValueEnum};
use content_sync::cli::{self, Command};
use content_sync::service::{self, Action};
use content_sync::{config, logging};
use std::path::PathBuf;
use std::process::ExitCode;

/// jemalloc for the service, glibc's allocator for extraction workers (src/allocator.rs).
#[global_allocator]
static ALLOCATOR: content_sync::allocator::PerProcess = content_sync::allocator::PerProcess::new();

/// jemalloc's options, read at its first allocation (before `main`, hence a linked symbol, defined
/// here so that it is always linked): two arenas rather than four per core (each thread keeps its
/// own cache of small blocks in front of them, and fewer arenas hold fewer half-used pages), and
/// freed pages handed back to the system after a second rather than ten, which keeps peak memory
/// near glibc's. `_RJEM_MALLOC_CONF` in the environment (jemalloc's symbols are prefixed, so it
/// never stands in for glibc's `malloc` in C code) still overrides them.
// SAFETY: the symbol jemalloc reads is a `const char *`; a reference to a static NUL-terminated
// byte string has that layout and lives as long as the process. Nothing else defines the symbol.
#[allow(unsafe_code, non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 47] = b"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

#[derive(Parser, Debug)]
#[command(
    name = "content-sync",
    version,
    about = "Keeps Elasticsearch indices in sync with Amazon S3 buckets"
)]
struct Args {
    /// Configuration file (Elastic's config.yml format).
    #[arg(
        short = 'c',
        long = "config-file",
        global = true,
        default_value = "config.yml"
    )]
    config_file: PathBuf,
    /// What to run; repeatable. Default: schedule, sync_content, sync_access_control, cleanup.
    #[arg(long = "action", value_enum)]
    action: Vec<CliAction>,
    /// Log level (wins over service.log_level).
    #[arg(long = "log-level", value_enum, ignore_case = true, global = true)]
    log_level: Option<LogLevel>,
    /// Same as --log-level DEBUG.
    #[arg(long, global = true)]
    debug: bool,
    /// Log ECS JSON lines instead of text.
    #[arg(long, global = true)]
    filebeat: bool,
    /// Service type for --action config.
    #[arg(long = "service-type")]
    service_type: Option<String>,
    /// Accepted for compatibility with elastic-ingest; has no effect.
    #[arg(long, hide = true)]
    uvloop: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
enum CliAction {
    Schedule,
    SyncContent,
    SyncAccessControl,
    Cleanup,
    List,
    Config,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

fn main() -> ExitCode {
    // Hidden: the extraction worker the service starts itself (src/extract/worker.rs). It reads
    // files on stdin and needs neither config nor logging.
    if std::env::args_os().nth(1).as_deref()
        == Some(content_sync::extract::worker::SUBCOMMAND.as_ref())
    {
        return content_sync::extract::worker::main();
    }
    let args = Args::parse();
    if let Some(code) = run_static_actions(&args) {
        return code;
    }
    let config = match config::load(&args.config_file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(&args, &config.service.log_level);
    tracing::debug!(allocator = ALLOCATOR.kind().name(), "memory allocator");
    // Panics (e.g. a parser caught by the extraction's catch_unwind) go through the log, as one line.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(location = %location, "panic: {info}");
    }));
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async move {
        match args.command {
            Some(command) => cli::run(config, command).await,
            None => service::run(config, &service_actions(&args.action)).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--action list` and `--action config` need no config file and exit at once.
fn run_static_actions(args: &Args) -> Option<ExitCode> {
    let statics = args
        .action
        .iter()
        .filter(|a| matches!(a, CliAction::List | CliAction::Config))
        .count();
    if statics == 0 {
        return None;
    }
    if statics != args.action.len() || statics > 1 {
        eprintln!("error: --action list and --action config cannot be combined with other actions");
        return Some(ExitCode::from(2));
    }
    if args.action[0] == CliAction::List {
        println!("Registered connectors:\n- Amazon S3\nBye");
        return Some(ExitCode::SUCCESS);
    }
    let sources = content_sync::source::Registry::new(&config::Config::default());
    match args.service_type.as_deref().and_then(|t| sources.get(t)) {
        Some(kind) => {
            println!(
                "Getting default configuration for service type {}",
                kind.service_type()
            );
            let schema = serde_json::Value::Object(kind.configuration_schema());
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("schema serializes")
            );
            println!("Bye");
            Some(ExitCode::SUCCESS)
        }
        None => {
            eprintln!(
                "error: Could not find a connector for service type {}",
                args.service_type.as_deref().unwrap_or("<none>")
            );
            Some(ExitCode::from(2))
        }
    }
}

fn service_actions(actions: &[CliAction]) -> Vec<Action> {
    if actions.is_empty() {
        return vec![
            Action::Schedule,
            Action::SyncContent,
            Action::SyncAccessControl,
            Action::Cleanup,
        ];
    }
    actions
        .iter()
        .filter_map(|a| match a {
            CliAction::Schedule => Some(Action::Schedule),
            CliAction::SyncContent => Some(Action::SyncContent),
            CliAction::SyncAccessControl => Some(Action::SyncAccessControl),
            CliAction::Cleanup => Some(Action::Cleanup),
            CliAction::List | CliAction::Config => None,
        })
        .collect()
}

fn init_logging(args: &Args, configured: &str) {
    let level = if args.debug {
        "debug".to_string()
    } else if let Some(l) = args.log_level {
        match l {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warn",
            LogLevel::Error | LogLevel::Critical => "error",
        }
        .to_string()
    } else {
        match configured.to_lowercase().as_str() {
            "warning" => "warn".to_string(),
            "critical" => "error".to_string(),
            other => other.to_string(),
        }
    };
    // Our crate logs at the chosen level; the HTTP and AWS stacks only from warnings up.
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("CONTENT_SYNC_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!("warn,content_sync={level}"))
        });
    let format = if args.filebeat {
        logging::Format::Ecs
    } else {
        logging::Format::Text
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(logging::LineLayer::new(format))
        .init();
}
