//! Extraction throughput (MB/s of input) per format: `make bench` / `cargo bench --bench extract`.
//!
//! Two groups:
//! * `corpus/<file>`: every file of `tests/corpus` (small files; per-file overhead dominates), with
//!   the default limits (100 000 characters);
//! * `large/<kind>`: generated inputs — a 5 MB HTML page, a 300-page PDF, a 50 000-row xlsx, a 5 MB
//!   docx-sized Word body, a 5 MB text file — extracted without a character cap so the whole input is
//!   parsed;
//! * `text/reduce_whitespace`: Elastic's default pipeline steps, which the service runs on every
//!   extracted text, over the texts of the large HTML page and Word body.

use content_sync::extract::{Limits, extract, reduce_whitespace};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const FOX: &str = "The quick brown fox jumps over the lazy dog. Café naïve — “quotes” & <angle>. ";

fn limits(max_chars: usize) -> Limits {
    Limits {
        max_chars,
        max_decompressed_bytes: 256 << 20,
        deadline: Instant::now() + Duration::from_secs(3600),
    }
}

fn corpus(c: &mut Criterion) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/corpus")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "expected.json")
        .collect();
    names.sort();
    let mut group = c.benchmark_group("corpus");
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    for name in names {
        let bytes = std::fs::read(dir.join(&name)).expect("corpus file");
        if extract(&name, &bytes, &limits(100_000)).is_err() {
            continue; // encrypted / unsupported samples
        }
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(&name), &bytes, |b, bytes| {
            b.iter(|| black_box(extract(&name, bytes, &limits(100_000))))
        });
    }
    group.finish();
}

/// A 5 MB HTML page with head scripts and styles, entities, tables and nested blocks.
fn big_html() -> Vec<u8> {
    let mut html = String::from(
        "<!DOCTYPE html><html><head><title>Big</title><style>p{color:red}</style>\
         <script>for (var i = 0; i < 10; i++) { console.log('<p>' + i); }</script></head><body>",
    );
    let mut i = 0;
    while html.len() < 5_000_000 {
        html.push_str(&format!(
            "<section id=s{i}><h2>Section {i}</h2><p>{} &amp; more &eacute;</p>\
             <table><tr><td>cell {i}</td><td>value</td></tr></table><div><span>{FOX}</span></div></section>\n",
            FOX.repeat(3)
        ));
        i += 1;
    }
    html.push_str("</body></html>");
    html.into_bytes()
}

/// A 300-page PDF (Helvetica, 40 lines a page), written with lopdf.
fn big_pdf() -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut kids = Vec::new();
    for page in 0..300 {
        let mut ops = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 10.into()]),
            Operation::new("TL", vec![12.into()]),
            Operation::new("Td", vec![40.into(), 800.into()]),
        ];
        for line in 0..40 {
            let text = format!(
                "Page {page} line {line}: The quick brown fox jumps over the lazy dog again"
            );
            ops.push(Operation::new("Tj", vec![Object::string_literal(text)]));
            ops.push(Operation::new("T*", vec![]));
        }
        ops.push(Operation::new("ET", vec![]));
        let content = Content { operations: ops }.encode().expect("content");
        let content_id = doc.add_object(Stream::new(dictionary! {}, content));
        kids.push(
            doc.add_object(
                dictionary! { "Type" => "Page", "Parent" => pages_id, "Contents" => content_id },
            )
            .into(),
        );
    }
    let pages = dictionary! {
        "Type" => "Pages", "Kids" => kids, "Count" => 300, "Resources" => resources_id,
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
    };
    doc.objects.insert(pages_id, Object::Dictionary(pages));
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    doc.compress();
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save pdf");
    out
}

/// A zip with the given (name, content) entries, deflated.
fn zip_of(entries: &[(&str, String)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        zip.start_file(*name, options).expect("zip entry");
        zip.write_all(content.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip finish").into_inner()
}

/// A 50 000-row xlsx (3 columns: inline string, number, shared string).
fn big_xlsx() -> Vec<u8> {
    let mut sheet = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    for r in 1..=50_000 {
        sheet.push_str(&format!(
            r#"<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>Row {r} caf&#233; &amp; co</t></is></c><c r="B{r}"><v>{}</v></c><c r="C{r}" t="s"><v>{}</v></c></row>"#,
            r as f64 * 1.5,
            r % 2
        ));
    }
    sheet.push_str("</sheetData></worksheet>");
    let ns = "http://schemas.openxmlformats.org";
    zip_of(&[
        (
            "[Content_Types].xml",
            format!(
                r#"<?xml version="1.0"?><Types xmlns="{ns}/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#
            ),
        ),
        (
            "_rels/.rels",
            format!(
                r#"<?xml version="1.0"?><Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
            ),
        ),
        (
            "xl/workbook.xml",
            format!(
                r#"<?xml version="1.0"?><workbook xmlns="{ns}/spreadsheetml/2006/main" xmlns:r="{ns}/officeDocument/2006/relationships"><sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>"#
            ),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            format!(
                r#"<?xml version="1.0"?><Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{ns}/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#
            ),
        ),
        (
            "xl/sharedStrings.xml",
            format!(
                r#"<?xml version="1.0"?><sst xmlns="{ns}/spreadsheetml/2006/main" count="2" uniqueCount="2"><si><t>even</t></si><si><t>odd</t></si></sst>"#
            ),
        ),
        ("xl/worksheets/sheet1.xml", sheet),
    ])
}

/// A docx with 5 MB of WordprocessingML body (paragraphs of several runs).
fn big_docx() -> Vec<u8> {
    let mut body = String::from(
        r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>"#,
    );
    let mut i = 0;
    while body.len() < 5_000_000 {
        body.push_str(&format!(
            "<w:p><w:pPr><w:pStyle w:val=\"Normal\"/></w:pPr><w:r><w:t>Paragraph {i}: </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t xml:space=\"preserve\">{} </w:t></w:r><w:r><w:t>caf&#233; &amp; na&#239;ve</w:t></w:r></w:p>",
            FOX.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
        ));
        i += 1;
    }
    body.push_str("</w:body></w:document>");
    zip_of(&[
        ("[Content_Types].xml", "<Types/>".into()),
        ("word/document.xml", body),
    ])
}

fn large(c: &mut Criterion) {
    let inputs: Vec<(&str, &str, Vec<u8>)> = vec![
        ("html-5MB", "big.html", big_html()),
        ("pdf-300-pages", "big.pdf", big_pdf()),
        ("xlsx-50k-rows", "big.xlsx", big_xlsx()),
        ("docx-5MB-xml", "big.docx", big_docx()),
        (
            "txt-5MB",
            "big.txt",
            FOX.repeat(5_000_000 / FOX.len()).into_bytes(),
        ),
    ];
    let mut group = c.benchmark_group("large");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10);
    for (id, key, bytes) in &inputs {
        let text = extract(key, bytes, &limits(usize::MAX)).expect("large input extracts");
        assert!(
            text.len() > 100_000,
            "{id}: only {} bytes of text",
            text.len()
        );
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(id), bytes, |b, bytes| {
            b.iter(|| black_box(extract(key, bytes, &limits(usize::MAX))))
        });
    }
    group.finish();
}

fn text(c: &mut Criterion) {
    let texts = [
        (
            "html-5MB",
            extract("big.html", &big_html(), &limits(usize::MAX)),
        ),
        (
            "docx-5MB-xml",
            extract("big.docx", &big_docx(), &limits(usize::MAX)),
        ),
    ];
    let mut group = c.benchmark_group("text/reduce_whitespace");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    for (id, text) in texts {
        let text = text.expect("large input extracts");
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(id), &text, |b, text| {
            b.iter(|| black_box(reduce_whitespace(text)))
        });
    }
    group.finish();
}

criterion_group!(benches, corpus, large, text);
criterion_main!(benches);
