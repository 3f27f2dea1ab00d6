//! The bounded text collector every extractor writes into.

use super::{ExtractError, Limits, Result};
use std::time::Instant;

/// Collects extracted text up to `max_chars` characters and carries the limits.
///
/// Extractors push text and separators; once the character cap is reached [`Out::is_full`] turns true
/// and further pushes are ignored, so extractors may stop early.
pub(crate) struct Out {
    text: String,
    chars: usize,
    max_chars: usize,
    /// Decompression cap, for container formats.
    pub(crate) max_bytes: u64,
    deadline: Instant,
    /// Calls to [`Out::tick`] since the last clock read.
    ticks: u32,
}

impl Out {
    /// An empty collector bounded by `limits`.
    pub(crate) fn new(limits: &Limits) -> Self {
        Out {
            text: String::new(),
            chars: 0,
            max_chars: limits.max_chars,
            max_bytes: limits.max_decompressed_bytes,
            deadline: limits.deadline,
            ticks: 0,
        }
    }

    /// True once `max_chars` characters were collected.
    pub(crate) fn is_full(&self) -> bool {
        self.chars >= self.max_chars
    }

    /// Characters that can still be appended.
    pub(crate) fn remaining(&self) -> usize {
        self.max_chars - self.chars
    }

    /// Appends `s`, truncated to the remaining character budget.
    pub(crate) fn push_str(&mut self, s: &str) {
        if self.is_full() || s.is_empty() {
            return;
        }
        let room = self.max_chars - self.chars;
        // Fast path: a string of at most `room` bytes has at most `room` chars.
        if s.len() <= room {
            self.chars += s.chars().count();
            self.text.push_str(s);
            return;
        }
        match char_start(s, room) {
            Some(cut) => {
                self.text.push_str(&s[..cut]);
                self.chars = self.max_chars;
            }
            None => {
                self.chars += s.chars().count();
                self.text.push_str(s);
            }
        }
    }

    /// Appends one character.
    pub(crate) fn push(&mut self, c: char) {
        if !self.is_full() {
            self.text.push(c);
            self.chars += 1;
        }
    }

    /// Appends a line break unless the text is empty or already ends with one.
    pub(crate) fn newline(&mut self) {
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            self.push('\n');
        }
    }

    /// Appends `c` as a separator unless the text is empty or already ends with whitespace.
    pub(crate) fn separator(&mut self, c: char) {
        if self
            .text
            .chars()
            .next_back()
            .is_some_and(|last| !last.is_whitespace())
        {
            self.push(c);
        }
    }

    /// Fails with [`ExtractError::Timeout`] once the deadline has passed.
    pub(crate) fn check_deadline(&self) -> Result<()> {
        if Instant::now() >= self.deadline {
            Err(ExtractError::Timeout)
        } else {
            Ok(())
        }
    }

    /// Like [`Out::check_deadline`] but reads the clock only every 1024 calls, for tight loops.
    pub(crate) fn tick(&mut self) -> Result<()> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(1024) {
            self.check_deadline()
        } else {
            Ok(())
        }
    }

    /// True when no non-whitespace text was collected.
    pub(crate) fn is_blank(&self) -> bool {
        self.text.trim().is_empty()
    }

    /// The collected text.
    pub(crate) fn finish(self) -> String {
        self.text
    }
}

/// Where character `n` of `s` starts (counting from 0), if `s` has more than `n` characters. A
/// plain text file longer than the character cap is cut here: one character at a time
/// (`char_indices().nth`) that took 5 % of the service's CPU on files of 100 KB and more, so this
/// counts the bytes that start a character, a block at a time.
fn char_start(s: &str, n: usize) -> Option<usize> {
    const BLOCK: usize = 64;
    let bytes = s.as_bytes();
    // Each of the first `n` characters takes a byte at least: `n` ASCII bytes are all of them.
    if bytes.len() > n && bytes[..n].is_ascii() {
        return Some(n);
    }
    let starts = |block: &[u8]| block.iter().filter(|&&b| !is_continuation(b)).count();
    let mut seen = 0;
    for (i, block) in bytes.chunks(BLOCK).enumerate() {
        let here = starts(block);
        if seen + here > n {
            let (at, _) = block
                .iter()
                .enumerate()
                .filter(|&(_, &b)| !is_continuation(b))
                .nth(n - seen)
                .expect("the block holds the character");
            return Some(i * BLOCK + at);
        }
        seen += here;
    }
    None
}

/// A byte inside a UTF-8 character, not its first (`10xx_xxxx`).
fn is_continuation(b: u8) -> bool {
    (b as i8) < -0x40
}

#[cfg(test)]
mod tests {
    use super::char_start;

    #[test]
    fn char_start_agrees_with_counting_characters_one_by_one() {
        let texts = [
            String::new(),
            "a".into(),
            "plain words ".repeat(30),
            "é".repeat(100),
            format!("{}é{}", "a".repeat(63), "€😀".repeat(40)),
            "😀 ünï €".repeat(37),
        ];
        for text in &texts {
            for n in 0..text.len() + 2 {
                let expected = text.char_indices().nth(n).map(|(at, _)| at);
                assert_eq!(char_start(text, n), expected, "character {n} of {text:?}");
            }
        }
    }
}
