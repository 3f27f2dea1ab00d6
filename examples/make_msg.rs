//! Writes a minimal Outlook `.msg` file (OLE compound file with MAPI property streams) for the
//! extraction corpus: `cargo run --example make_msg -- OUT.msg SUBJECT BODY [HTML_BODY]`.
//!
//! Used by `scripts/make-corpus.py`; the result is checked there with the `extract-msg` Python
//! package, an independent reader.

use std::io::Write;

/// Property tags written to `__properties_version1.0` (type PT_UNICODE 0x001F or PT_BINARY 0x0102).
const PROPS: [(u32, &str); 3] = [
    (0x0037_001F, "__substg1.0_0037001F"),
    (0x1000_001F, "__substg1.0_1000001F"),
    (0x0C1A_001F, "__substg1.0_0C1A001F"),
];

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, subject, body, rest @ ..] = args.as_slice() else {
        eprintln!("usage: make_msg OUT.msg SUBJECT BODY [HTML_BODY]");
        std::process::exit(2);
    };
    let mut file = cfb::create(path)?;
    let values = [subject.as_str(), body.as_str(), "Corpus Generator"];
    // Property stream of a top-level message: 32-byte header, then 16 bytes per property.
    let mut props = vec![0u8; 32];
    for ((tag, stream), value) in PROPS.iter().zip(values) {
        let data = utf16(value);
        file.create_stream(format!("/{stream}"))?.write_all(&data)?;
        props.extend(tag.to_le_bytes());
        props.extend(6u32.to_le_bytes()); // readable | writable
        props.extend((data.len() as u32 + 2).to_le_bytes());
        props.extend(0u32.to_le_bytes());
    }
    if let Some(html) = rest.first() {
        file.create_stream("/__substg1.0_10130102")?
            .write_all(html.as_bytes())?;
        props.extend(0x1013_0102u32.to_le_bytes());
        props.extend(6u32.to_le_bytes());
        props.extend((html.len() as u32).to_le_bytes());
        props.extend(0u32.to_le_bytes());
    }
    // Message class "IPM.Note".
    let class = utf16("IPM.Note");
    file.create_stream("/__substg1.0_001A001F")?
        .write_all(&class)?;
    props.extend(0x001A_001Fu32.to_le_bytes());
    props.extend(6u32.to_le_bytes());
    props.extend((class.len() as u32 + 2).to_le_bytes());
    props.extend(0u32.to_le_bytes());
    file.create_stream("/__properties_version1.0")?
        .write_all(&props)?;
    file.create_storage("/__nameid_version1.0")?;
    for s in [
        "__substg1.0_00020102",
        "__substg1.0_00030102",
        "__substg1.0_00040102",
    ] {
        file.create_stream(format!("/__nameid_version1.0/{s}"))?;
    }
    file.flush()
}
