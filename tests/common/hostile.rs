//! Hostile files, built in the test: bombs and deep nesting that a parser may not survive.

use std::io::Write;

/// A one-page PDF of about 40 KB whose content stream inflates to `mib` MiB of `0 0 m ` (moveto)
/// operators: harmless to look at, but a parser that turns every operand into an object needs
/// gigabytes for it.
pub fn pdf_bomb(mib: usize) -> Vec<u8> {
    let ops = b"0 0 m ".repeat(mib * 1_048_576 / 6);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&ops).unwrap();
    let content = z.finish().unwrap();
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    let objects: [Vec<u8>; 4] = [
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << >> >>"
            .to_vec(),
        [
            format!(
                "<< /Length {} /Filter /FlateDecode >>\nstream\n",
                content.len()
            )
            .into_bytes(),
            content,
            b"\nendstream".to_vec(),
        ]
        .concat(),
    ];
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        pdf.extend_from_slice(body);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(b"xref\n0 5\n0000000000 65535 f \n");
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    pdf
}

/// A docx whose `word/document.xml` is `body`, deflated.
pub fn docx_with(body: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(body.len() > u32::MAX as usize);
    zip.start_file("[Content_Types].xml", options).unwrap();
    zip.write_all(b"<Types/>").unwrap();
    zip.start_file("word/document.xml", options).unwrap();
    zip.write_all(body).unwrap();
    zip.finish().unwrap().into_inner()
}

/// A docx (zip) of a few hundred KB whose document inflates to `mib` MiB of spaces.
pub fn zip_bomb(mib: usize) -> Vec<u8> {
    let mut body = b"<w:document xmlns:w=\"w\"><w:body><w:p><w:r><w:t>".to_vec();
    body.resize(body.len() + mib * 1_048_576, b' ');
    body.extend_from_slice(b"</w:t></w:r></w:p></w:body></w:document>");
    docx_with(&body)
}

/// A `.txt.gz` of about 1 MB: `members` gzip members of 1 MiB of zeros each.
pub fn gzip_bomb(members: usize) -> Vec<u8> {
    let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    member.write_all(&vec![0u8; 1 << 20]).unwrap();
    member.finish().unwrap().repeat(members)
}

/// `depth` nested elements around one word, as XML.
pub fn deep_xml(depth: usize) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\"?>{}deep{}",
        "<a>".repeat(depth),
        "</a>".repeat(depth)
    )
    .into_bytes()
}

/// `depth` nested elements around one word, as HTML.
pub fn deep_html(depth: usize) -> Vec<u8> {
    format!(
        "<html><body>{}deep{}</body></html>",
        "<div><span>".repeat(depth),
        "</span></div>".repeat(depth)
    )
    .into_bytes()
}

/// `depth` nested arrays around one string, as JSON.
pub fn deep_json(depth: usize) -> Vec<u8> {
    format!("{}\"deep\"{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
}
