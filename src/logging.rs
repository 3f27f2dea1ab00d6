//! Log output as Elastic's service writes it (§10.5): text lines by default, ECS JSON lines with
//! `--filebeat`. Fields of the enclosing spans (`connector_id`, `sync_job_id`, …) are carried into
//! each line: as Elastic's `[Connector id: …, index name: …, Sync job id: …]` prefix in text, as
//! `labels.*` in ECS.

use serde_json::{Map, Value, json};
use std::fmt::Debug;
use std::io::Write;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Which line format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `[FMWK][HH:MM:SS][LEVEL] [Connector id: x, index name: i, Sync job id: y] message key=value …`
    Text,
    /// One ECS JSON object per line (Filebeat-ready).
    Ecs,
}

/// A layer writing every event to stderr in `format`.
pub struct LineLayer {
    format: Format,
}

impl LineLayer {
    pub fn new(format: Format) -> Self {
        Self { format }
    }
}

/// Fields recorded on a span, kept in its extensions.
struct SpanFields(Map<String, Value>);

#[derive(Default)]
struct Collect {
    message: String,
    fields: Map<String, Value>,
}

impl Visit for Collect {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, json!(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, json!(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, json!(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

impl Collect {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.fields.insert(field.name().to_string(), value);
        }
    }
}

impl<S> Layer<S> for LineLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut collect = Collect::default();
        attrs.record(&mut collect);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(collect.fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut collect = Collect::default();
        values.record(&mut collect);
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            fields.0.extend(collect.fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut labels = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    labels.extend(fields.0.clone());
                }
            }
        }
        let mut collect = Collect::default();
        event.record(&mut collect);
        let level = *event.metadata().level();
        let line = match self.format {
            Format::Text => text_line(level, &labels, &collect),
            Format::Ecs => ecs_line(level, event.metadata().target(), labels, collect),
        };
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn text_line(level: Level, labels: &Map<String, Value>, event: &Collect) -> String {
    let mut line = format!(
        "[FMWK][{}][{}] ",
        chrono::Utc::now().format("%H:%M:%S"),
        level_name(level)
    );
    // Elastic's context prefix: `[Connector id: c, index name: i, Sync job id: j]`; other span
    // fields follow the message as `key=value`.
    let mut rest = labels.clone();
    let context: Vec<String> = [
        ("connector_id", "Connector id"),
        ("index_name", "index name"),
        ("sync_job_id", "Sync job id"),
    ]
    .iter()
    .filter_map(|(key, name)| rest.remove(*key).map(|v| format!("{name}: {}", plain(&v))))
    .collect();
    if !context.is_empty() {
        line += &format!("[{}] ", context.join(", "));
    }
    line += &event.message;
    for (k, v) in rest.iter().chain(&event.fields) {
        line += &format!(" {k}={}", plain(v));
    }
    line.push('\n');
    line
}

fn ecs_line(level: Level, target: &str, labels: Map<String, Value>, event: Collect) -> String {
    let mut labels = labels;
    labels.extend(event.fields);
    let doc = json!({
        "@timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "log.level": level_name(level).to_lowercase(),
        "message": event.message,
        "ecs.version": "1.6.0",
        "log.logger": target,
        "service.type": "connectors-python",
        "service.name": "content-sync",
        "service.version": env!("CARGO_PKG_VERSION"),
        "labels": labels,
    });
    let mut line = doc.to_string();
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_carry_span_context_and_fields() {
        let mut labels = Map::new();
        labels.insert("connector_id".into(), json!("c1"));
        let event = Collect {
            message: "sync ended".into(),
            fields: [("indexed".to_string(), json!(3))].into_iter().collect(),
        };
        let line = text_line(Level::INFO, &labels, &event);
        assert!(line.starts_with("[FMWK]["), "{line}");
        assert!(
            line.ends_with("[INFO] [Connector id: c1] sync ended indexed=3\n"),
            "{line}"
        );
    }

    #[test]
    fn ecs_lines_put_span_and_event_fields_in_labels() {
        let mut labels = Map::new();
        labels.insert("sync_job_id".into(), json!("j1"));
        let event = Collect {
            message: "hello".into(),
            fields: [("bucket".to_string(), json!("b"))].into_iter().collect(),
        };
        let v: Value = serde_json::from_str(&ecs_line(Level::WARN, "t", labels, event)).unwrap();
        assert_eq!(v["log.level"], "warning");
        assert_eq!(v["labels"]["sync_job_id"], "j1");
        assert_eq!(v["labels"]["bucket"], "b");
        assert_eq!(v["message"], "hello");
    }
}
