//! The extraction corpus (`tests/corpus/`, made by `scripts/make-corpus.py`) and hostile inputs.
//!
//! Every corpus file must yield each of its expected sentences (compared after whitespace reduction),
//! or the error `expected.json` names. Hostile inputs must never panic, never exceed the limits, and
//! end in an error or bounded text.

use content_sync::extract::{
    ExtractError, Format, Limits, extract, format_for, is_known_unsupported, reduce_whitespace,
};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn expected() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(corpus_dir().join("expected.json")).expect("expected.json");
    match serde_json::from_str(&text).expect("expected.json is JSON") {
        Value::Object(map) => map,
        _ => panic!("expected.json must be an object"),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn limits() -> Limits {
    Limits::with_timeout(Duration::from_secs(60))
}

#[test]
fn every_corpus_file_yields_its_sentences() {
    let mut failures = Vec::new();
    let map = expected();
    assert!(map.len() >= 30, "corpus too small: {}", map.len());
    for (name, spec) in &map {
        let bytes = std::fs::read(corpus_dir().join(name)).expect(name);
        let result = extract(name, &bytes, &limits());
        if let Some(error) = spec.get("error").and_then(Value::as_str) {
            match &result {
                Err(e) if format!("{e:?}").starts_with(error) => {}
                other => failures.push(format!("{name}: expected {error}, got {other:?}")),
            }
            if error == "Unsupported" {
                assert!(
                    is_known_unsupported(name),
                    "{name} should be known-unsupported"
                );
            }
            continue;
        }
        let text = match result {
            Ok(text) => reduce_whitespace(&text),
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        for sentence in strings(spec.get("sentences")) {
            if !text.contains(&reduce_whitespace(&sentence)) {
                failures.push(format!("{name}: missing {sentence:?} in {text:?}"));
            }
        }
        for absent in strings(spec.get("absent")) {
            if text.contains(&absent) {
                failures.push(format!("{name}: {absent:?} leaked into {text:?}"));
            }
        }
        let mut from = 0;
        for item in strings(spec.get("ordered")) {
            match text[from..].find(&item) {
                Some(at) => from += at + item.len(),
                None => failures.push(format!("{name}: {item:?} out of order in {text:?}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn corpus_covers_every_supported_extension() {
    let map = expected();
    let exts = [
        "txt", "md", "markdown", "rst", "py", "rb", "sh", "csv", "tsv", "json", "xml", "svg",
        "paper", "html", "htm", "aspx", "pdf", "docx", "xlsx", "xlsm", "xls", "pptx", "potx",
        "vsdx", "odt", "ods", "odp", "rtf", "msg", "eml", "gz",
    ];
    for ext in exts {
        assert!(
            map.keys().any(|k| k.ends_with(&format!(".{ext}"))),
            "no corpus file for .{ext}"
        );
    }
}

/// Runs `extract` and checks the invariants that hold for any input.
fn check_bounded(key: &str, bytes: &[u8], limits: &Limits) -> Result<String, ExtractError> {
    let result = extract(key, bytes, limits);
    match &result {
        Err(ExtractError::Panicked(msg)) => panic!("{key}: extractor panicked: {msg}"),
        Ok(text) => assert!(
            text.chars().count() <= limits.max_chars,
            "{key}: too much text"
        ),
        Err(_) => {}
    }
    result
}

#[test]
fn truncated_and_mutated_corpus_files_never_panic() {
    let limits = Limits {
        max_chars: 10_000,
        ..limits()
    };
    let mut rng = fastrand::Rng::with_seed(7);
    for name in expected().keys() {
        let bytes = std::fs::read(corpus_dir().join(name)).expect(name);
        for cut in [
            0,
            1,
            bytes.len() / 3,
            bytes.len() / 2,
            bytes.len().saturating_sub(10),
        ] {
            let _ = check_bounded(name, &bytes[..cut], &limits);
        }
        for _ in 0..20 {
            let mut mutant = bytes.clone();
            for _ in 0..rng.usize(1..16) {
                if !mutant.is_empty() {
                    let i = rng.usize(..mutant.len());
                    mutant[i] = rng.u8(..);
                }
            }
            let _ = check_bounded(name, &mutant, &limits);
        }
    }
}

#[test]
fn random_bytes_for_every_format_are_rejected_or_bounded() {
    let mut rng = fastrand::Rng::with_seed(42);
    let keys = [
        "a.txt", "a.xml", "a.html", "a.pdf", "a.docx", "a.xlsx", "a.xlsb", "a.xls", "a.pptx",
        "a.vsdx", "a.odt", "a.ods", "a.rtf", "a.msg", "a.eml", "a.txt.gz",
    ];
    for key in keys {
        for len in [0, 1, 7, 512, 100_000] {
            let blob: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let limits = Limits {
                max_chars: 1000,
                ..limits()
            };
            let _ = check_bounded(key, &blob, &limits);
        }
    }
}

#[test]
fn binary_named_txt_is_rejected() {
    let mut rng = fastrand::Rng::with_seed(1);
    let blob: Vec<u8> = (0..4_000_000).map(|_| rng.u8(..)).collect();
    let result = check_bounded("blob.txt", &blob, &limits());
    assert!(
        matches!(result, Err(ExtractError::Corrupt(_))),
        "{result:?}"
    );
    // An ELF-like header with NULs, then text: still binary.
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    elf.extend(b"some text ".repeat(1000));
    assert!(check_bounded("prog.sh", &elf, &limits()).is_err());
}

#[test]
fn truncated_pdf_is_recovered_or_rejected() {
    let bytes = std::fs::read(corpus_dir().join("sample.pdf")).unwrap();
    for cut in [100, bytes.len() * 6 / 10, bytes.len() - 30] {
        match check_bounded("t.pdf", &bytes[..cut], &limits()) {
            Ok(text) => assert!(!text.trim().is_empty()),
            Err(ExtractError::Corrupt(_)) => {}
            Err(e) => panic!("truncated pdf at {cut}: {e:?}"),
        }
    }
}

/// A small docx whose `word/document.xml` holds `body`.
fn docx_with(body: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("[Content_Types].xml", options).unwrap();
    zip.write_all(b"<Types/>").unwrap();
    zip.start_file("word/document.xml", options).unwrap();
    zip.write_all(body).unwrap();
    zip.finish().unwrap().into_inner()
}

/// Patches the uncompressed size of every central-directory entry to `size`.
fn patch_declared_sizes(zip: &mut [u8], size: u32) {
    let mut i = 0;
    while i + 46 <= zip.len() {
        if zip[i..i + 4] == [0x50, 0x4b, 0x01, 0x02] {
            zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
        }
        i += 1;
    }
}

#[test]
fn zip_bomb_docx_is_refused() {
    let doc = b"<w:document xmlns:w=\"w\"><w:body><w:p><w:r><w:t>bomb</w:t></w:r></w:p></w:body></w:document>";
    // Declared huge: refused before inflating.
    let mut declared = docx_with(doc);
    patch_declared_sizes(&mut declared, 2_000_000_000);
    let result = check_bounded("bomb.docx", &declared, &limits());
    assert!(
        matches!(result, Err(ExtractError::TooLarge(_))),
        "{result:?}"
    );
    // Declared small, inflates big: zip refuses to read past the declared size.
    let mut big = doc.to_vec();
    big.extend(std::iter::repeat_n(b' ', 5_000_000));
    let mut lying = docx_with(&big);
    patch_declared_sizes(&mut lying, 200);
    assert!(check_bounded("lying.docx", &lying, &limits()).is_err());
    // Honest but over the cap.
    let small_cap = Limits {
        max_decompressed_bytes: 1_000_000,
        ..limits()
    };
    let honest = docx_with(&big);
    let result = check_bounded("honest.docx", &honest, &small_cap);
    assert!(
        matches!(result, Err(ExtractError::TooLarge(_))),
        "{result:?}"
    );
    // The same for a workbook handed to calamine.
    let mut xlsx = std::fs::read(corpus_dir().join("sample.xlsx")).unwrap();
    patch_declared_sizes(&mut xlsx, 2_000_000_000);
    let result = check_bounded("bomb.xlsx", &xlsx, &limits());
    assert!(
        matches!(result, Err(ExtractError::TooLarge(_))),
        "{result:?}"
    );
}

#[test]
fn gzip_declaring_a_gigabyte_stops_at_the_cap() {
    // 1024 concatenated members of 1 MiB of zeros each: 1 GiB once inflated, ~1 MB compressed.
    let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    member.write_all(&vec![0u8; 1 << 20]).unwrap();
    let member = member.finish().unwrap();
    let bomb = member.repeat(1024);
    let started = Instant::now();
    let result = check_bounded("zeros.txt.gz", &bomb, &limits());
    assert!(
        matches!(result, Err(ExtractError::TooLarge(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // Under the cap the inner file is extracted (here: zeros are binary, so rejected as such).
    let small = member.repeat(2);
    assert!(matches!(
        check_bounded("zeros.txt.gz", &small, &limits()),
        Err(ExtractError::Corrupt(_))
    ));
}

#[test]
fn deeply_nested_markup_does_not_overflow() {
    let depth = 100_000;
    let xml = format!(
        "<?xml version=\"1.0\"?>{}deep{}",
        "<a>".repeat(depth),
        "</a>".repeat(depth)
    );
    assert_eq!(
        reduce_whitespace(&extract("deep.xml", xml.as_bytes(), &limits()).unwrap()),
        "deep"
    );
    let html = format!(
        "{}deep{}",
        "<div><span>".repeat(depth),
        "</span></div>".repeat(depth)
    );
    assert_eq!(
        reduce_whitespace(&extract("deep.html", html.as_bytes(), &limits()).unwrap()),
        "deep"
    );
    let docx = docx_with(
        format!(
            "{}<w:t>deep</w:t>{}",
            "<w:p>".repeat(depth),
            "</w:p>".repeat(depth)
        )
        .as_bytes(),
    );
    assert_eq!(
        reduce_whitespace(&extract("deep.docx", &docx, &limits()).unwrap()),
        "deep"
    );
    let rtf = format!("{{\\rtf1 {}deep{}}}", "{".repeat(depth), "}".repeat(depth));
    assert_eq!(
        reduce_whitespace(&extract("deep.rtf", rtf.as_bytes(), &limits()).unwrap()),
        "deep"
    );
    // 100 000 nested PDF arrays.
    let pdf = format!(
        "%PDF-1.4\n1 0 obj\n{}{}\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let _ = check_bounded("deep.pdf", pdf.as_bytes(), &limits());
}

/// A compound file whose `Workbook` stream holds the given BIFF records.
fn xls_with(records: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut stream = Vec::new();
    for (kind, body) in records {
        stream.extend(kind.to_le_bytes());
        stream.extend((body.len() as u16).to_le_bytes());
        stream.extend(body);
    }
    let mut file = cfb::CompoundFile::create(std::io::Cursor::new(Vec::new())).unwrap();
    file.create_stream("/Workbook")
        .unwrap()
        .write_all(&stream)
        .unwrap();
    file.flush().unwrap();
    file.into_inner().into_inner()
}

#[test]
fn huge_or_inverted_xls_areas_are_refused() {
    let bof = (0x0809, vec![0, 6, 0x10, 0, 0, 0, 0, 0]);
    let eof = (0x000A, vec![]);
    let number = |row: u16, col: u16| {
        let mut body = [row.to_le_bytes(), col.to_le_bytes()].concat();
        body.extend([0u8; 10]);
        (0x0203, body)
    };
    let dims = |rf: u32, rl: u32, cf: u16, cl: u16| {
        let body = [
            &rf.to_le_bytes()[..],
            &rl.to_le_bytes(),
            &cf.to_le_bytes(),
            &cl.to_le_bytes(),
            &[0, 0],
        ]
        .concat();
        (0x0200, body)
    };
    // Two cells far apart: calamine would allocate the dense 65 536 x 256 box.
    let sparse = xls_with(&[bof.clone(), number(0, 0), number(0xffff, 0xff), eof.clone()]);
    let result = check_bounded("sparse.xls", &sparse, &limits());
    assert!(
        matches!(result, Err(ExtractError::TooLarge(_))),
        "{result:?}"
    );
    // A declared area of 4 billion rows (calamine reserves it up front).
    let huge = xls_with(&[bof.clone(), dims(0, u32::MAX, 0, 10), eof.clone()]);
    let result = check_bounded("huge.xls", &huge, &limits());
    assert!(
        matches!(result, Err(ExtractError::TooLarge(_))),
        "{result:?}"
    );
    // Found by the fuzzer: last row before the first, which wraps around in calamine 0.38 and
    // aborted the process with a 342 GB allocation.
    let inverted = xls_with(&[bof, dims(5, 3, 0, 1), eof]);
    let result = check_bounded("inverted.xls", &inverted, &limits());
    assert!(
        matches!(result, Err(ExtractError::Corrupt(_))),
        "{result:?}"
    );
}

#[test]
fn gzip_inner_extension_decides() {
    assert_eq!(format_for("a.pdf.gz"), Some(Format::Gzip));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"hello from inside").unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(
        extract("x.md.gz", &gz, &limits()).unwrap(),
        "hello from inside"
    );
    assert_eq!(
        extract("x.bin.gz", &gz, &limits()),
        Err(ExtractError::Unsupported)
    );
    assert!(matches!(
        extract("x.txt.gz", b"not gzip", &limits()),
        Err(ExtractError::Corrupt(_))
    ));
}
