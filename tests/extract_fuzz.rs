//! Mutation fuzzing of the extractors on stable Rust (cargo-fuzz needs nightly's sanitizers).
//!
//! Ignored by default. Run per family for a while, in release mode:
//!
//! ```sh
//! FUZZ_SECS=120 cargo test --release --test extract_fuzz -- --ignored --nocapture
//! FUZZ_FAMILY=pdf FUZZ_SECS=300 cargo test --release --test extract_fuzz -- --ignored --nocapture
//! ```
//!
//! Seeds are the corpus files of the family. Mutations: byte flips and overwrites, truncation,
//! chunk duplication and deletion, random insertions, splicing with another seed, and — for zip and
//! gzip containers — the same mutations applied to an inner entry, re-packed, so the XML parsers
//! behind the container are reached. Every run is deterministic for a given `FUZZ_SEED`. A panic
//! (caught inside `extract`), an over-long result or an input taking more than `FUZZ_HANG_SECS`
//! (default 5) is a failure; the input is written to `target/fuzz-failures/`. With `FUZZ_SAVE_EACH=1`
//! every input is written to `target/fuzz-failures/<family>-0-current` before it runs, to catch aborts.

use content_sync::extract::{ExtractError, Limits, extract};
use std::io::{Cursor, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Families: (name, extensions fuzzed with that family's seeds).
const FAMILIES: &[(&str, &[&str])] = &[
    ("text", &["txt", "csv", "json", "md"]),
    ("xml", &["xml", "svg"]),
    ("html", &["html", "htm", "aspx"]),
    ("pdf", &["pdf"]),
    ("ooxml", &["docx", "pptx", "potx", "vsdx"]),
    ("spreadsheet", &["xlsx", "xlsm", "xls"]),
    ("odf", &["odt", "ods", "odp"]),
    ("rtf", &["rtf"]),
    ("mail", &["eml", "msg"]),
    ("gzip", &["gz"]),
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seeds(exts: &[&str]) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("tests/corpus")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let ext = name.rsplit('.').next()?.to_string();
            if !exts.contains(&ext.as_str()) || name == "encrypted.pdf" {
                return None;
            }
            Some((name, std::fs::read(e.path()).ok()?))
        })
        .collect();
    out.sort();
    out
}

/// One raw byte-level mutation of `data`.
fn mutate_bytes(rng: &mut fastrand::Rng, data: &mut Vec<u8>, other: &[u8]) {
    let len = data.len();
    match rng.u8(..8) {
        0 | 1 if len > 0 => {
            for _ in 0..rng.usize(1..8) {
                let i = rng.usize(..len);
                data[i] ^= 1 << rng.u8(..8);
            }
        }
        2 if len > 0 => {
            let i = rng.usize(..len);
            data[i] = *rng
                .choice(
                    [
                        0u8, 0xff, b'<', b'>', b'{', b'}', b'\\', b'(', b')', b'[', b'0', b'9',
                    ]
                    .iter(),
                )
                .unwrap_or(&0);
        }
        3 if len > 0 => data.truncate(rng.usize(..len)),
        4 if len > 1 => {
            let a = rng.usize(..len);
            let b = rng.usize(a..len.min(a + 4096) + 1).min(len);
            let chunk = data[a..b].to_vec();
            let at = rng.usize(..=len);
            for _ in 0..rng.usize(1..4) {
                data.splice(at..at, chunk.iter().copied());
            }
        }
        5 if len > 1 => {
            let a = rng.usize(..len);
            let b = rng.usize(a..len.min(a + 4096) + 1).min(len);
            data.drain(a..b);
        }
        6 => {
            let at = rng.usize(..=len);
            let junk: Vec<u8> = (0..rng.usize(1..64)).map(|_| rng.u8(..)).collect();
            data.splice(at..at, junk);
        }
        _ if !other.is_empty() && len > 0 => {
            let a = rng.usize(..other.len());
            let b = rng.usize(a..other.len().min(a + 8192) + 1).min(other.len());
            let at = rng.usize(..len);
            data.splice(at..len.min(at + (b - a)), other[a..b].iter().copied());
        }
        _ => data.push(rng.u8(..)),
    }
}

/// Mutates an entry of a zip archive and re-packs it; `None` if `data` is not a readable zip.
fn mutate_zip(rng: &mut fastrand::Rng, data: &[u8]) -> Option<Vec<u8>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(data)).ok()?;
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).ok()?;
        let mut content = Vec::new();
        f.read_to_end(&mut content).ok()?;
        entries.push((f.name().ok()?.to_string(), content));
    }
    if entries.is_empty() {
        return None;
    }
    let victim = rng.usize(..entries.len());
    let other = entries[rng.usize(..entries.len())].1.clone();
    for _ in 0..rng.usize(1..4) {
        mutate_bytes(rng, &mut entries[victim].1, &other);
    }
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in entries {
        zip.start_file(name, options).ok()?;
        zip.write_all(&content).ok()?;
    }
    Some(zip.finish().ok()?.into_inner())
}

/// Mutates the content of a gzip stream and recompresses it.
fn mutate_gzip(rng: &mut fastrand::Rng, data: &[u8]) -> Option<Vec<u8>> {
    let mut inner = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut inner)
        .ok()?;
    let copy = inner.clone();
    mutate_bytes(rng, &mut inner, &copy);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&inner).ok()?;
    enc.finish().ok()
}

fn save_failure(family: &str, iteration: u64, key: &str, data: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{family}-{iteration}-{}", key.replace('/', "_")));
    let _ = std::fs::write(&path, data);
    path
}

fn fuzz_family(family: &str, exts: &[&str], secs: u64, seed: u64) -> (u64, Vec<String>) {
    let seeds = seeds(exts);
    assert!(!seeds.is_empty(), "no seeds for {family}");
    let hang = Duration::from_secs(env_u64("FUZZ_HANG_SECS", 5));
    let mut rng = fastrand::Rng::with_seed(seed);
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut outcomes = std::collections::BTreeMap::<String, u64>::new();
    let mut iteration = 0u64;
    let save_each = std::env::var_os("FUZZ_SAVE_EACH").is_some();
    let current = save_failure(family, 0, "current", b"");
    while started.elapsed() < Duration::from_secs(secs) {
        iteration += 1;
        let (name, base) = &seeds[rng.usize(..seeds.len())];
        let (_, other) = &seeds[rng.usize(..seeds.len())];
        let container = base.starts_with(b"PK") || base.starts_with(&[0x1f, 0x8b]);
        let repacked = if container && rng.u8(..4) > 0 {
            if base.starts_with(b"PK") {
                mutate_zip(&mut rng, base)
            } else {
                mutate_gzip(&mut rng, base)
            }
        } else {
            None
        };
        // Raw mutations on top of a re-packed container only now and then: they mostly break
        // checksums and never reach the parsers inside.
        let raw_rounds = match repacked {
            Some(_) if rng.u8(..4) > 0 => 0,
            _ => rng.usize(1..5),
        };
        let mut data = repacked.unwrap_or_else(|| base.clone());
        for _ in 0..raw_rounds {
            mutate_bytes(&mut rng, &mut data, other);
        }
        let limits = Limits {
            max_chars: 50_000,
            max_decompressed_bytes: 32 << 20,
            deadline: Instant::now() + hang,
        };
        if save_each {
            // An abort (allocation failure, stack overflow) cannot be caught: keep the input first.
            let _ = std::fs::write(&current, &data);
        }
        let t = Instant::now();
        let result = extract(name, &data, &limits);
        let took = t.elapsed();
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("{e:?}").split('(').next().unwrap_or("").to_string(),
        };
        *outcomes.entry(outcome).or_default() += 1;
        let problem = match &result {
            Err(ExtractError::Panicked(msg)) => Some(format!("panic: {msg}")),
            Ok(text) if text.chars().count() > limits.max_chars => Some("over max_chars".into()),
            _ if took > hang + Duration::from_secs(1) => Some(format!("hang: {took:?}")),
            _ => None,
        };
        if let Some(problem) = problem {
            let path = save_failure(family, iteration, name, &data);
            failures.push(format!(
                "{family} #{iteration} {name}: {problem} (input {})",
                path.display()
            ));
        }
    }
    println!(
        "fuzz {family}: {iteration} inputs in {:.0?} from {} seeds, outcomes {outcomes:?}, {} failures",
        started.elapsed(),
        seeds.len(),
        failures.len()
    );
    (iteration, failures)
}

#[test]
#[ignore = "long-running fuzzer: run with --ignored (see module docs)"]
fn fuzz_extractors() {
    let secs = env_u64("FUZZ_SECS", 30);
    let seed = env_u64("FUZZ_SEED", 1);
    let only = std::env::var("FUZZ_FAMILY").ok();
    let mut all = Vec::new();
    for (family, exts) in FAMILIES {
        if only.as_deref().is_some_and(|f| f != *family) {
            continue;
        }
        let (_, failures) = fuzz_family(family, exts, secs, seed);
        all.extend(failures);
    }
    assert!(all.is_empty(), "{}", all.join("\n"));
}
