//! Scraping the service's HTTP listener and reading `/metrics` with a real Prometheus parser: the
//! `prometheus-client` Python package's text-format parser (`prom_parse.py`, run with the stand-ins'
//! venv).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

/// `GET http://<addr><path>`: status and body (status 0 when nothing answered).
pub async fn get(addr: &str, path: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("build reqwest client");
    match client.get(format!("http://{addr}{path}")).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

/// One sample: name, labels, value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// One parsed exposition.
#[derive(Debug)]
pub struct Scrape {
    /// Family name → type (`counter`, `gauge`, `histogram`, ...), as the parser read them.
    pub types: serde_json::Map<String, Value>,
    /// (sample name, labels, value).
    pub samples: Vec<Sample>,
    /// The exposition as served.
    pub text: String,
}

impl Scrape {
    /// The samples named `name` whose labels include every pair of `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
    }

    /// The sum of the matching samples (0 when none matches).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.2).sum()
    }

    /// The value of the one matching sample, if there is exactly one.
    pub fn one(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<f64> = self.matching(name, labels).map(|s| s.2).collect();
        (found.len() == 1).then(|| found[0])
    }
}

/// Parses `text` with the Prometheus parser; panics (showing the text) when it does not parse.
pub fn parse(text: &str) -> Scrape {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/prom_parse.py");
    let mut child = Command::new(super::python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the Prometheus parser (run `make test`: it installs the stand-ins' venv)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write exposition");
    let out = child.wait_with_output().expect("parser output");
    assert!(
        out.status.success(),
        "the Prometheus parser rejected the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("parser JSON");
    let samples = v["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| {
            let labels = s[1]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            (
                s[0].as_str().expect("name").to_owned(),
                labels,
                s[2].as_f64().expect("value"),
            )
        })
        .collect();
    Scrape {
        types: v["types"].as_object().cloned().unwrap_or_default(),
        samples,
        text: text.to_owned(),
    }
}

/// Scrapes `/metrics` and parses it; panics unless it answers 200.
pub async fn scrape(addr: &str) -> Scrape {
    let (status, text) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "GET /metrics: {status} {text}");
    parse(&text)
}
