//! Unit tests of the module's entry points (per-format tests live beside each extractor; the corpus
//! and hostile-input tests are in `tests/extract_corpus.rs`).

use super::*;

#[test]
fn formats_follow_elastic_allowlist_and_additions() {
    assert_eq!(format_for("a/b/Report.PDF"), Some(Format::Pdf));
    assert_eq!(format_for("x.docx"), Some(Format::Docx));
    assert_eq!(format_for("x.potx"), Some(Format::Pptx));
    assert_eq!(format_for("x.xlsm"), Some(Format::Xlsx));
    assert_eq!(format_for("x.vsdm"), Some(Format::Vsdx));
    assert_eq!(format_for("page.htm"), Some(Format::Html));
    assert_eq!(format_for("mail.eml"), Some(Format::Eml));
    assert_eq!(format_for("notes.txt.gz"), Some(Format::Gzip));
    assert_eq!(format_for("notes.TXT.GZ"), Some(Format::Gzip));
    assert_eq!(format_for("a.tar.gz"), None);
    assert_eq!(format_for("a.txt.gz.gz"), None);
    assert_eq!(format_for("a.gz"), None);
    assert_eq!(format_for(".bashrc"), None);
    assert_eq!(format_for("dir.txt/file"), None);
    assert_eq!(format_for("a.png"), None);
    assert_eq!(format_for("a."), None);
    assert_eq!(format_for("a.doc"), None);
}

#[test]
fn legacy_binaries_are_known_unsupported() {
    for key in ["a.doc", "b.PPT", "c.vsd", "d.doc.gz"] {
        assert!(is_known_unsupported(key), "{key}");
        assert_eq!(
            extract(key, b"whatever", &Limits::default()),
            Err(ExtractError::Unsupported)
        );
    }
    assert!(!is_known_unsupported("a.docx"));
    assert!(!is_known_unsupported("a.png"));
}

#[test]
fn reduce_whitespace_matches_the_default_pipeline() {
    assert_eq!(
        reduce_whitespace("  a \t\r\n b\u{FFFD}c \u{0B}\u{0C} d  "),
        "a bc d"
    );
    assert_eq!(reduce_whitespace("a \u{FFFD} b"), "a b");
    assert_eq!(reduce_whitespace("\u{1}x\u{A0}y\u{0}"), "x\u{A0}y");
    assert_eq!(reduce_whitespace(""), "");
}

/// The pipeline's steps one character at a time: what [`reduce_whitespace`] must equal.
fn reduce_whitespace_by_chars(text: &str) -> String {
    let mut result = String::new();
    let mut pending_space = false;
    for c in text.chars().filter(|&c| c != '\u{FFFD}') {
        if matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r') {
            pending_space = true;
        } else {
            if pending_space && !result.is_empty() {
                result.push(' ');
            }
            pending_space = false;
            result.push(c);
        }
    }
    result.trim_matches(|c: char| c <= ' ').to_string()
}

#[test]
fn reduce_whitespace_equals_the_steps_one_character_at_a_time() {
    // Characters whose encodings share bytes with U+FFFD (EF BF BD) or sit beside it, spaces of
    // every kind, controls, text of one to four bytes a character; words and single spaces too,
    // and texts of up to 60 pieces, so that runs of eight bytes and more (which it steps over eight
    // at a time) come up with every kind of byte at every place in them.
    let alphabet = [
        " ", "\t", "\n", "\u{0B}", "\u{0C}", "\r", "\u{1}", "\u{FFFD}", "\u{FFFC}", "\u{FFFF}",
        "\u{F8FF}", "\u{EFBF}", "\u{A0}", "\u{2003}", "a", "é", "€", "😀", "x", "word", "lorem ",
        " ipsum", "do re", "\u{7F}",
    ];
    let mut texts = crate::testing::RandomTexts::new(0x2545_f491_4f6c_dd1d, &alphabet);
    for round in 0..40_000 {
        let text = texts.next(if round % 2 == 0 { 13 } else { 61 });
        assert_eq!(
            reduce_whitespace(&text),
            reduce_whitespace_by_chars(&text),
            "{text:?}"
        );
    }
}

#[test]
fn output_is_capped_in_characters() {
    let limits = Limits {
        max_chars: 5,
        ..Limits::default()
    };
    assert_eq!(
        extract("a.txt", "ééééééé".as_bytes(), &limits).unwrap(),
        "ééééé"
    );
    assert_eq!(extract("a.txt", b"abcdefgh", &limits).unwrap(), "abcde");
}

#[test]
fn deadline_in_the_past_times_out() {
    let limits = Limits {
        deadline: std::time::Instant::now(),
        ..Limits::default()
    };
    assert_eq!(
        extract("a.txt", b"abc", &limits),
        Err(ExtractError::Timeout)
    );
}
