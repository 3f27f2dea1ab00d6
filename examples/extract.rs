//! Prints the text extracted from files: `cargo run --release --example extract -- FILE...`
//! (`--reduce` applies the pipeline's whitespace reduction).

use content_sync::extract::{Limits, extract, reduce_whitespace};
use std::time::Instant;

fn main() {
    let mut reduce = false;
    for arg in std::env::args().skip(1) {
        if arg == "--reduce" {
            reduce = true;
            continue;
        }
        let bytes = match std::fs::read(&arg) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{arg}: {e}");
                continue;
            }
        };
        let started = Instant::now();
        let result = extract(&arg, &bytes, &Limits::default());
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
