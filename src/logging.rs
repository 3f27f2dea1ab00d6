//! Log output as Elastic's service writes it (docs/protocol.md#service-loops-and-logs): text lines by default, ECS JSON lines with
//! `--filebeat`. Fields of the enclosing spans (`connector_id`, `sync_job_id`, …) are carried into
//! each line: as Elastic's `[Connector id: …, index name: …, Sync job id: …]` prefix in text, as
//! `labels.*` in ECS.

use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::fmt::{Debug, Write as _};
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

/// Whether `c` could end a text line or drive a terminal: control characters (newline, carriage
/// return, ANSI escape…) and the Unicode line and paragraph separators.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `s` with [`needs_escape`] characters written as Rust escapes (`\n`, `\x1b`, `\u{2028}`): values
/// such as S3 keys come from whoever writes the bucket, and a raw newline in one would let them
/// append a forged line to the log (JSON lines are escaped by the encoder).
fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) && u32::from(c) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
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
    .filter_map(|(key, name)| {
        rest.remove(*key)
            .map(|v| format!("{name}: {}", escape(&plain(&v))))
    })
    .collect();
    if !context.is_empty() {
        line += &format!("[{}] ", context.join(", "));
    }
    line += &escape(&event.message);
    for (k, v) in rest.iter().chain(&event.fields) {
        line += &format!(" {k}={}", escape(&plain(v)));
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
    fn text_lines_escape_control_characters() {
        let mut labels = Map::new();
        labels.insert("connector_id".into(), json!("c\n1"));
        let forged = "a\n[FMWK][00:00:00][INFO] forged\r\x1b[2J\x1b[31mred\u{2028}x\t";
        let event = Collect {
            message: format!("key {forged}"),
            fields: [("key".to_string(), json!(forged))].into_iter().collect(),
        };
        let line = text_line(Level::WARN, &labels, &event);
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(line.ends_with('\n'));
        assert!(!line.contains('\x1b') && !line.contains('\r') && !line.contains('\u{2028}'));
        // Backslashes stay as they are: they cannot start a line, and doubling them would garble
        // Windows paths and Debug-formatted fields.
        let escaped = r"a\n[FMWK][00:00:00][INFO] forged\r\x1b[2J\x1b[31mred\u{2028}x\t";
        assert!(
            line.ends_with(&format!(
                "[Connector id: c\\n1] key {escaped} key={escaped}\n"
            )),
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
