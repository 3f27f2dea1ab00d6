//! Request-body parsing the way Elasticsearch's x-content `ObjectParser` / `ConstructingObjectParser`
//! does it, so the double rejects what ES rejects with the same error type and reason.
//!
//! ES reports parse errors with a `[line:column]` prefix taken from the JSON token where parsing
//! stopped (1-based, column in bytes), so bodies are scanned into a tree that keeps token positions.

use serde_json::{Map, Value, json};

/// An ES exception as it appears in an error response (`error` object), with its cause chain.
#[derive(Clone, Debug, PartialEq)]
pub struct EsError {
    pub status: u16,
    pub kind: String,
    pub reason: String,
    /// Extra string fields ES adds for some exceptions (e.g. `index`, `index_uuid`).
    pub extra: Vec<(&'static str, String)>,
    pub caused_by: Option<Box<EsError>>,
}

impl EsError {
    pub fn new(status: u16, kind: &str, reason: impl Into<String>) -> EsError {
        EsError {
            status,
            kind: kind.to_string(),
            reason: reason.into(),
            extra: Vec::new(),
            caused_by: None,
        }
    }

    pub fn bad_request(kind: &str, reason: impl Into<String>) -> EsError {
        EsError::new(400, kind, reason)
    }

    /// `ResourceNotFoundException` (404).
    pub fn not_found(reason: impl Into<String>) -> EsError {
        EsError::new(404, "resource_not_found_exception", reason)
    }

    /// `ActionRequestValidationException`: `Validation Failed: 1: a;2: b;`.
    pub fn validation(errors: &[&str]) -> EsError {
        let mut reason = "Validation Failed: ".to_string();
        for (i, e) in errors.iter().enumerate() {
            reason += &format!("{}: {e};", i + 1);
        }
        EsError::bad_request("action_request_validation_exception", reason)
    }

    pub fn caused_by(mut self, cause: EsError) -> EsError {
        self.caused_by = Some(Box::new(cause));
        self
    }

    /// Plain Java exceptions (not `ElasticsearchException`s) never become the root cause of one.
    fn is_es_exception(&self) -> bool {
        !matches!(self.kind.as_str(), "illegal_argument_exception")
    }

    fn object(&self) -> Value {
        let mut o = Map::new();
        o.insert("type".into(), json!(self.kind));
        o.insert("reason".into(), json!(self.reason));
        for (k, v) in &self.extra {
            o.insert(k.to_string(), json!(v));
        }
        if let Some(c) = &self.caused_by {
            o.insert("caused_by".into(), c.object());
        }
        Value::Object(o)
    }

    /// The response body: `{"error":{"root_cause":[..],"type":..,"reason":..},"status":..}`.
    pub fn body(&self) -> Value {
        // ES reports the deepest ElasticsearchException of the chain as the root cause.
        let mut root = self;
        let mut cur = self;
        while let Some(c) = &cur.caused_by {
            cur = c;
            if cur.is_es_exception() {
                root = cur;
            }
        }
        let mut root_obj = root.object();
        root_obj.as_object_mut().map(|o| o.remove("caused_by"));
        let mut error = self.object();
        error["root_cause"] = json!([root_obj]);
        // root_cause comes first in ES's rendering; key order is irrelevant to JSON readers.
        json!({"error": error, "status": self.status})
    }

    pub fn answer(&self) -> (u16, String) {
        (self.status, self.body().to_string())
    }
}

/// `[line:column]` of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}:{}]", self.line, self.col)
    }
}

/// A JSON value with the position of its first token (and, for objects, of the closing brace).
#[derive(Clone, Debug)]
pub enum Node {
    Object(Vec<(String, Pos, Node)>, Pos, Pos),
    Array(Vec<Node>, Pos),
    Scalar(Value, Pos),
}

impl Node {
    pub fn pos(&self) -> Pos {
        match self {
            Node::Object(_, p, _) | Node::Array(_, p) | Node::Scalar(_, p) => *p,
        }
    }

    /// The Jackson token name ES puts in `doesn't support values of type: ...`.
    pub fn token(&self) -> &'static str {
        match self {
            Node::Object(..) => "START_OBJECT",
            Node::Array(..) => "START_ARRAY",
            Node::Scalar(Value::String(_), _) => "VALUE_STRING",
            Node::Scalar(Value::Number(_), _) => "VALUE_NUMBER",
            Node::Scalar(Value::Bool(_), _) => "VALUE_BOOLEAN",
            Node::Scalar(..) => "VALUE_NULL",
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Node::Object(fields, ..) => Value::Object(
                fields
                    .iter()
                    .map(|(k, _, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
            Node::Array(items, _) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Scalar(v, _) => v.clone(),
        }
    }
}

/// Scans a body into a [`Node`]; `Err` carries ES's answer to malformed JSON (the reason text is
/// Jackson's in ES and only approximated here).
pub fn scan(body: &[u8]) -> Result<Node, EsError> {
    let mut s = Scanner { b: body, i: 0 };
    s.ws();
    let node = s.value()?;
    s.ws();
    if s.i < s.b.len() {
        return Err(s.syntax("Unexpected character after the value"));
    }
    Ok(node)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn pos(&self) -> Pos {
        let before = &self.b[..self.i.min(self.b.len())];
        let line = before.iter().filter(|c| **c == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|c| *c == b'\n')
            .map_or(0, |p| p + 1);
        Pos {
            line,
            col: self.i - line_start + 1,
        }
    }

    fn syntax(&self, what: &str) -> EsError {
        let reason = format!("{} {what}", self.pos());
        EsError::bad_request("x_content_parse_exception", reason.clone())
            .caused_by(EsError::bad_request("json_parse_exception", what))
    }

    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Result<Node, EsError> {
        let start = self.pos();
        match self.b.get(self.i) {
            None => Err(EsError::bad_request(
                "x_content_e_o_f_exception",
                format!("{start} Unexpected end of file"),
            )),
            Some(b'{') => self.object(start),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Node::Array(items, start));
                }
                loop {
                    self.ws();
                    items.push(self.value()?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Node::Array(items, start));
                        }
                        _ => return Err(self.syntax("Unexpected character in an array")),
                    }
                }
            }
            Some(_) => {
                // Scalars: let serde_json read exactly one value from here.
                let mut de = serde_json::Deserializer::from_slice(&self.b[self.i..]).into_iter();
                match de.next() {
                    Some(Ok(
                        v @ (Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null),
                    )) => {
                        self.i += de.byte_offset();
                        Ok(Node::Scalar(v, start))
                    }
                    _ => Err(self.syntax("Unrecognized token")),
                }
            }
        }
    }

    fn object(&mut self, start: Pos) -> Result<Node, EsError> {
        self.i += 1;
        let mut fields = Vec::new();
        loop {
            self.ws();
            match self.b.get(self.i) {
                Some(b'}') => {
                    let end = self.pos();
                    self.i += 1;
                    return Ok(Node::Object(fields, start, end));
                }
                Some(b',') if !fields.is_empty() => {
                    self.i += 1;
                    continue;
                }
                Some(b'"') => {}
                None => {
                    return Err(EsError::bad_request(
                        "x_content_e_o_f_exception",
                        format!("{} Unexpected end of file", self.pos()),
                    ));
                }
                _ => return Err(self.syntax("Unexpected character in an object")),
            }
            let key_pos = self.pos();
            let Node::Scalar(Value::String(key), _) = self.value()? else {
                return Err(self.syntax("Expected a field name"));
            };
            self.ws();
            if self.b.get(self.i) != Some(&b':') {
                return Err(self.syntax("Expected ':'"));
            }
            self.i += 1;
            self.ws();
            let v = self.value()?;
            fields.push((key, key_pos, v));
        }
    }
}

/// The value kinds ES declares fields with, and the tokens each accepts (`ObjectParser.ValueType`).
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// `declareString`: a string only (no null).
    Str,
    /// `declareLong`: a number or a numeric string.
    Long,
    /// `declareObject`: an object only.
    Object,
    /// `OBJECT_OR_STRING` (e.g. `last_seen`).
    ObjectOrString,
    /// `declareObjectArray`: an array (or a single object).
    ObjectArray,
    /// `declareStringArray`: an array (or a single string).
    StringArray,
}

impl Kind {
    fn accepts(self, node: &Node) -> bool {
        matches!(
            (self, node),
            (Kind::Str, Node::Scalar(Value::String(_), _))
                | (
                    Kind::Long,
                    Node::Scalar(Value::Number(_) | Value::String(_), _)
                )
                | (
                    Kind::Object | Kind::ObjectOrString | Kind::ObjectArray,
                    Node::Object(..)
                )
                | (
                    Kind::ObjectOrString | Kind::StringArray,
                    Node::Scalar(Value::String(_), _)
                )
                | (Kind::ObjectArray | Kind::StringArray, Node::Array(..))
        )
    }
}

/// One declared field: name, kind, and whether it is a required constructor argument.
pub type Field = (&'static str, Kind, bool);

/// Checks an object against a parser declaration (named `parser`, as in ES's messages): unknown
/// fields and wrong value types → `x_content_parse_exception`, missing required fields →
/// `illegal_argument_exception` `Required [a, b]`. `lenient` parsers ignore unknown fields.
/// Returns the fields present, by name.
pub fn check_object<'n>(
    node: &'n Node,
    parser: &str,
    fields: &[Field],
    lenient: bool,
) -> Result<Vec<(&'n str, &'n Node)>, EsError> {
    let Node::Object(entries, ..) = node else {
        let reason = format!(
            "{} [{parser}] Expected START_OBJECT but was: {}",
            node.pos(),
            node.token()
        );
        return Err(EsError::bad_request("x_content_parse_exception", reason));
    };
    let mut present = Vec::new();
    for (key, key_pos, value) in entries {
        let Some((_, kind, _)) = fields.iter().find(|(name, ..)| name == key) else {
            if lenient {
                continue;
            }
            let names: Vec<&str> = fields.iter().map(|(n, ..)| *n).collect();
            let reason = format!(
                "{key_pos} [{parser}] unknown field [{key}]{}",
                did_you_mean(key, &names)
            );
            return Err(EsError::bad_request("x_content_parse_exception", reason));
        };
        if !kind.accepts(value) {
            let reason = format!(
                "{} [{parser}] {key} doesn't support values of type: {}",
                value.pos(),
                value.token()
            );
            return Err(EsError::bad_request("x_content_parse_exception", reason));
        }
        if matches!(kind, Kind::Long)
            && let Node::Scalar(Value::String(s), p) = value
            && s.trim().parse::<f64>().is_err()
        {
            return Err(
                failed_field(*p, parser, key).caused_by(EsError::bad_request(
                    "illegal_argument_exception",
                    format!("For input string: \"{s}\""),
                )),
            );
        }
        present.push((key.as_str(), value));
    }
    let missing: Vec<&str> = fields
        .iter()
        .filter(|(name, _, required)| *required && !present.iter().any(|(k, _)| k == name))
        .map(|(name, ..)| *name)
        .collect();
    if !missing.is_empty() {
        let reason = format!("Required [{}]", missing.join(", "));
        return Err(EsError::bad_request("illegal_argument_exception", reason));
    }
    Ok(present)
}

/// `[l:c] [parser] failed to parse field [f]`: how ES wraps an error raised while parsing a field's
/// value (`at` is where the inner parser stopped).
pub fn failed_field(at: Pos, parser: &str, field: &str) -> EsError {
    EsError::bad_request(
        "x_content_parse_exception",
        format!("{at} [{parser}] failed to parse field [{field}]"),
    )
}

/// Wraps an error from a nested object's parser the way ES's outer parser does.
pub fn nested(err: EsError, value: &Node, parser: &str, field: &str) -> EsError {
    // The inner parser stopped at the offending token, or at the closing brace when a required
    // field was missing.
    let at = match (err.reason.split_once(']'), value) {
        (Some((p, _)), _) if p.starts_with('[') && err.kind == "x_content_parse_exception" => {
            let mut it = p[1..].split(':').map(|n| n.parse().unwrap_or(0));
            Pos {
                line: it.next().unwrap_or(0),
                col: it.next().unwrap_or(0),
            }
        }
        (_, Node::Object(_, _, end)) => *end,
        _ => value.pos(),
    };
    failed_field(at, parser, field).caused_by(err)
}

/// The suggestion ES appends to an unknown field: names whose Lucene Levenshtein similarity to it
/// exceeds 0.5, best first (ties by name).
pub fn did_you_mean(unknown: &str, candidates: &[&str]) -> String {
    let mut scored: Vec<(f32, &str)> = candidates
        .iter()
        .map(|c| (similarity(unknown, c), *c))
        .filter(|(s, _)| *s > 0.5)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    match scored.as_slice() {
        [] => String::new(),
        [(_, one)] => format!(" did you mean [{one}]?"),
        many => {
            let names: Vec<&str> = many.iter().map(|(_, n)| *n).collect();
            format!(" did you mean any of [{}]?", names.join(", "))
        }
    }
}

/// `1 - edit distance / longer length`, as Lucene's `LevenshteinDistance` computes it.
fn similarity(a: &str, b: &str) -> f32 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    let longer = a.len().max(b.len()).max(1);
    1.0 - prev[b.len()] as f32 / longer as f32
}
