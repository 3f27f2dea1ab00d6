//! Prints the text extracted from files: `cargo run --release --example extract -- FILE...`
//! (`--reduce` applies the pipeline's whitespace reduction).
//!
//! `--objects N FILE...`: the single-core reference of `make bench-extract` instead. Extracts N
//! objects on this one thread, object `i` being FILE `i % len` (give them in the synthetic bucket's
//! order: sorted by name), with the service's default limits, and prints one JSON line: objects,
//! bytes extracted, wall and CPU seconds, and what became of each file: `skipped` (no extractor for
//! its name: a sync does not download it), `text`, `empty` or `failed`.

use content_sync::extract::{Limits, extract, format_for, reduce_whitespace};
use std::time::Instant;

fn main() {
    let mut reduce = false;
    let mut objects: Option<u64> = None;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--reduce" => reduce = true,
            "--objects" => objects = args.next().and_then(|n| n.parse().ok()),
            _ => files.push(arg),
        }
    }
    match objects {
        Some(n) => throughput(n, &files, reduce),
        None => print_texts(&files, reduce),
    }
}

fn print_texts(files: &[String], reduce: bool) {
    for arg in files {
        let bytes = match std::fs::read(arg) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{arg}: {e}");
                continue;
            }
        };
        let started = Instant::now();
        let result = extract(arg, &bytes, &Limits::default());
        let took = started.elapsed();
        match result {
            Ok(text) => {
                let text = if reduce {
                    reduce_whitespace(&text)
                } else {
                    text
                };
                println!(
                    "== {arg} ({} bytes, {} chars, {took:?})\n{text}",
                    bytes.len(),
                    text.chars().count()
                );
            }
            Err(e) => println!("== {arg}: error: {e} ({took:?})"),
        }
    }
}

/// Utime + stime of this process, in seconds (`/proc/self/stat`, clock ticks of 10 ms).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

fn throughput(n: u64, files: &[String], reduce: bool) {
    let corpus: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| {
            (
                f.clone(),
                std::fs::read(f).unwrap_or_else(|e| panic!("{f}: {e}")),
            )
        })
        .collect();
    assert!(!corpus.is_empty(), "--objects needs files");
    // What a sync does with each file: not downloaded (no extractor for its name), or its text.
    let mut outcome = vec!["skipped"; corpus.len()];
    let mut bytes = 0u64;
    let (cpu_before, started) = (cpu_seconds(), Instant::now());
    for i in 0..n {
        let k = (i % corpus.len() as u64) as usize;
        let (name, data) = &corpus[k];
        if format_for(name).is_none() {
            continue;
        }
        bytes += data.len() as u64;
        // A fresh deadline per file, as the worker sets it.
        outcome[k] = match extract(name, data, &Limits::default()) {
            Ok(text) => {
                let text = if reduce {
                    reduce_whitespace(&text)
                } else {
                    text
                };
                if std::hint::black_box(text).is_empty() {
                    "empty"
                } else {
                    "text"
                }
            }
            Err(_) => "failed",
        };
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let names: Vec<String> = corpus
        .iter()
        .zip(&outcome)
        .map(|((f, _), o)| {
            let path = std::path::Path::new(f);
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(f);
            format!("\"{name}\":\"{o}\"")
        })
        .collect();
    println!(
        "{{\"objects\":{n},\"bytes\":{bytes},\"wall_seconds\":{wall:.3},\"cpu_seconds\":{cpu:.3},\"files\":{{{}}}}}",
        names.join(",")
    );
}
