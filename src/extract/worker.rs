//! The extraction worker process, `content-sync extract-worker`, and the protocol it speaks.
//!
//! The service never runs a parser in its own process: [`super::pool`] starts workers (this binary,
//! re-executed with [`SUBCOMMAND`]) and hands them files over stdin; each answers on stdout. A worker
//! serves one file at a time, as many files as it lives, and knows nothing of S3 or Elasticsearch.
//!
//! Every message is a frame: a `u32` little-endian length, then that many bytes whose first byte
//! says what the frame is.
//!
//! | from | tag | rest of the frame |
//! |---|---|---|
//! | supervisor | `B` begin | `max_chars`, `max_decompressed_bytes`, `timeout_ms`, `max_input_bytes` (each `u64` LE), then the object key (UTF-8) |
//! | supervisor | `D` data | the next piece of the file (at most [`MAX_DATA_FRAME`] bytes) |
//! | supervisor | `E` end | nothing: extract now and answer |
//! | supervisor | `A` abort | nothing: forget the file (its download failed); no answer |
//! | worker | `T` text | the extracted text (UTF-8) |
//! | worker | `F` failure | one byte for the [`ExtractError`] kind, then its message (UTF-8) |
//!
//! A file longer than `max_input_bytes` is answered with [`ExtractError::TooLarge`] without being
//! kept. A frame the worker does not expect ends the worker (exit status 1): the supervisor sees a
//! dead worker and replaces it.

use super::{ExtractError, Limits, extract};
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The hidden subcommand that turns the binary into a worker.
pub const SUBCOMMAND: &str = "extract-worker";

/// Largest piece of a file in one data frame.
pub const MAX_DATA_FRAME: usize = 1 << 20;

/// Largest frame a worker reads: a data frame and its tag (a begin frame carries a key of at most
/// 1 KiB, S3's limit).
const MAX_REQUEST_FRAME: usize = MAX_DATA_FRAME + 1;

pub(crate) const BEGIN: u8 = b'B';
pub(crate) const DATA: u8 = b'D';
pub(crate) const END: u8 = b'E';
pub(crate) const ABORT: u8 = b'A';
const TEXT: u8 = b'T';
const FAILURE: u8 = b'F';

/// A frame that breaks the protocol, or a pipe that broke.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("the pipe: {0}")]
    Io(#[from] io::Error),
    #[error("a frame of {0} bytes is longer than the {1} allowed")]
    TooLong(usize, usize),
    #[error("an empty frame")]
    Empty,
    #[error("an unexpected frame {0:?}")]
    Unexpected(char),
    #[error("a malformed {0} frame")]
    Malformed(&'static str),
}

/// What a begin frame carries: the file's key and the bounds of its extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begin {
    pub key: String,
    pub max_chars: u64,
    pub max_decompressed_bytes: u64,
    /// The worker's own (cooperative) deadline, counted from the end frame.
    pub timeout_ms: u64,
    /// Files longer than this are refused as too large.
    pub max_input_bytes: u64,
}

impl Begin {
    /// The whole frame, length prefix included.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(33 + self.key.len());
        body.push(BEGIN);
        for n in [
            self.max_chars,
            self.max_decompressed_bytes,
            self.timeout_ms,
            self.max_input_bytes,
        ] {
            body.extend_from_slice(&n.to_le_bytes());
        }
        body.extend_from_slice(self.key.as_bytes());
        framed(&body)
    }

    /// Reads the frame's body after its tag.
    fn decode(rest: &[u8]) -> Result<Self, ProtocolError> {
        if rest.len() < 32 {
            return Err(ProtocolError::Malformed("begin"));
        }
        let n = |i: usize| u64::from_le_bytes(rest[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        let key =
            std::str::from_utf8(&rest[32..]).map_err(|_| ProtocolError::Malformed("begin"))?;
        Ok(Begin {
            key: key.to_owned(),
            max_chars: n(0),
            max_decompressed_bytes: n(1),
            timeout_ms: n(2),
            max_input_bytes: n(3),
        })
    }

    fn limits(&self) -> Limits {
        Limits {
            max_chars: usize::try_from(self.max_chars).unwrap_or(usize::MAX),
            max_decompressed_bytes: self.max_decompressed_bytes,
            deadline: Instant::now() + Duration::from_millis(self.timeout_ms),
        }
    }
}

/// `body` with its length prefix.
pub(crate) fn framed(body: &[u8]) -> Vec<u8> {
    let mut frame = header(body.len()).to_vec();
    frame.extend_from_slice(body);
    frame
}

/// The length prefix of a frame of `len` bytes (tag included).
pub(crate) fn header(len: usize) -> [u8; 4] {
    u32::try_from(len)
        .expect("frames are far below 4 GiB")
        .to_le_bytes()
}

/// The length announced by a prefix, checked against `max`.
pub(crate) fn announced(prefix: [u8; 4], max: usize) -> Result<usize, ProtocolError> {
    let len = u32::from_le_bytes(prefix) as usize;
    match len {
        0 => Err(ProtocolError::Empty),
        n if n > max => Err(ProtocolError::TooLong(n, max)),
        n => Ok(n),
    }
}

/// Writes the answer frame for one extraction: the text goes from the parser's string to `output`
/// without a copy into a frame of its own.
pub(crate) fn write_answer(
    output: &mut impl Write,
    result: &Result<String, ExtractError>,
) -> io::Result<()> {
    let failure: [u8; 2];
    let (head, rest): (&[u8], &str) = match result {
        Ok(text) => (&[TEXT], text),
        Err(e) => {
            let (kind, message) = match e {
                ExtractError::Corrupt(m) => (1, m.as_str()),
                ExtractError::Encrypted => (2, ""),
                ExtractError::TooLarge(m) => (3, m.as_str()),
                ExtractError::Timeout => (4, ""),
                ExtractError::Unsupported => (5, ""),
                ExtractError::Panicked(m) => (6, m.as_str()),
            };
            failure = [FAILURE, kind];
            (&failure, message)
        }
    };
    output.write_all(&header(head.len() + rest.len()))?;
    output.write_all(head)?;
    output.write_all(rest.as_bytes())
}

/// Reads an answer frame: its tag, and the rest of its body (which becomes the text, uncopied).
pub(crate) fn decode_answer(
    tag: u8,
    rest: Vec<u8>,
) -> Result<Result<String, ExtractError>, ProtocolError> {
    let text = |b: Vec<u8>| String::from_utf8(b).map_err(|_| ProtocolError::Malformed("answer"));
    match (tag, rest.split_first()) {
        (TEXT, _) => Ok(Ok(text(rest)?)),
        (FAILURE, Some((&kind, message))) => {
            let message = text(message.to_vec())?;
            Ok(Err(match kind {
                1 => ExtractError::Corrupt(message),
                2 => ExtractError::Encrypted,
                3 => ExtractError::TooLarge(message),
                4 => ExtractError::Timeout,
                5 => ExtractError::Unsupported,
                6 => ExtractError::Panicked(message),
                _ => return Err(ProtocolError::Malformed("failure")),
            }))
        }
        (FAILURE, None) => Err(ProtocolError::Malformed("failure")),
        (tag, _) => Err(ProtocolError::Unexpected(tag as char)),
    }
}

/// The next frame's tag and the length of the rest of its body, or `None` when the input ends
/// between frames.
fn read_head(input: &mut impl Read, max: usize) -> Result<Option<(u8, usize)>, ProtocolError> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut prefix[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = announced(prefix, max)?;
    let mut tag = [0u8];
    input.read_exact(&mut tag)?;
    Ok(Some((tag[0], len - 1)))
}

/// Appends the next `len` bytes of `input` to `into`, straight from the input's buffer.
fn read_rest(input: &mut impl Read, len: usize, into: &mut Vec<u8>) -> Result<(), ProtocolError> {
    into.reserve(len);
    let read = input.take(len as u64).read_to_end(into)?;
    if read < len {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    Ok(())
}

/// The next frame's body, tag first, or `None` when the input ends between frames.
#[cfg(test)]
fn read_frame(input: &mut impl Read, max: usize) -> Result<Option<Vec<u8>>, ProtocolError> {
    let Some((tag, len)) = read_head(input, max)? else {
        return Ok(None);
    };
    let mut body = vec![tag];
    read_rest(input, len, &mut body)?;
    Ok(Some(body))
}

/// A file being received.
struct Pending {
    begin: Begin,
    bytes: Vec<u8>,
    /// More than `max_input_bytes` arrived; the bytes were dropped.
    too_large: bool,
}

/// Serves requests from `input` until it ends, answering on `output`.
pub fn serve(input: &mut impl Read, output: &mut impl Write) -> Result<(), ProtocolError> {
    let mut pending: Option<Pending> = None;
    while let Some((tag, len)) = read_head(input, MAX_REQUEST_FRAME)? {
        match tag {
            BEGIN => {
                let mut rest = Vec::new();
                read_rest(input, len, &mut rest)?;
                pending = Some(Pending {
                    begin: Begin::decode(&rest)?,
                    bytes: Vec::new(),
                    too_large: false,
                })
            }
            DATA => {
                let p = pending.as_mut().ok_or(ProtocolError::Unexpected('D'))?;
                if !p.too_large && (p.bytes.len() + len) as u64 > p.begin.max_input_bytes {
                    p.too_large = true;
                    p.bytes = Vec::new();
                }
                if p.too_large {
                    io::copy(&mut input.take(len as u64), &mut io::sink())?;
                } else {
                    read_rest(input, len, &mut p.bytes)?;
                }
            }
            END | ABORT if len > 0 => return Err(ProtocolError::Malformed("end or abort")),
            END => {
                let p = pending.take().ok_or(ProtocolError::Unexpected('E'))?;
                let result = if p.too_large {
                    Err(ExtractError::TooLarge(format!(
                        "more than {} bytes",
                        p.begin.max_input_bytes
                    )))
                } else {
                    extract(&p.begin.key, &p.bytes, &p.begin.limits())
                };
                drop(p);
                write_answer(output, &result)?;
                output.flush()?;
            }
            ABORT => pending = None,
            other => return Err(ProtocolError::Unexpected(other as char)),
        }
    }
    Ok(())
}

/// `content-sync extract-worker`: serves stdin until it closes.
pub fn main() -> ExitCode {
    // A parser's panic is caught by `extract` and answered as `Panicked` with its message; the
    // default hook would only add noise to the stderr the supervisor reads when a worker dies.
    std::panic::set_hook(Box::new(|_| {}));
    // The supervisor writes a small file with its begin and end frames at once: read it at once.
    let mut input = io::BufReader::with_capacity(64 * 1024, io::stdin().lock());
    let mut output = io::BufWriter::new(io::stdout().lock());
    match serve(&mut input, &mut output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("extract-worker: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn begin(key: &str, max_input_bytes: u64) -> Begin {
        Begin {
            key: key.into(),
            max_chars: 1000,
            max_decompressed_bytes: 1 << 20,
            timeout_ms: 5000,
            max_input_bytes,
        }
    }

    fn data(piece: &[u8]) -> Vec<u8> {
        let mut body = vec![DATA];
        body.extend_from_slice(piece);
        framed(&body)
    }

    /// Runs `serve` over `input` and splits what it wrote into answers.
    fn answers(input: Vec<u8>) -> (Result<(), ProtocolError>, Vec<Result<String, ExtractError>>) {
        let mut output = Vec::new();
        let served = serve(&mut &input[..], &mut output);
        let mut rest = &output[..];
        let mut all = Vec::new();
        while let Some(body) = read_frame(&mut rest, usize::MAX).unwrap() {
            all.push(decode_answer(body[0], body[1..].to_vec()).unwrap());
        }
        (served, all)
    }

    #[test]
    fn a_begin_frame_reads_back_as_written() {
        let b = begin("dir/naïve file.pdf", 42);
        let frame = b.encode();
        assert_eq!(frame[..4], ((frame.len() - 4) as u32).to_le_bytes());
        let body = read_frame(&mut &frame[..], MAX_REQUEST_FRAME)
            .unwrap()
            .unwrap();
        assert_eq!(body[0], BEGIN);
        assert_eq!(Begin::decode(&body[1..]).unwrap(), b);
        assert!(matches!(
            Begin::decode(&body[1..20]),
            Err(ProtocolError::Malformed(_))
        ));
    }

    #[test]
    fn every_answer_reads_back_as_written() {
        for result in [
            Ok("text with\nlines ✓".to_string()),
            Ok(String::new()),
            Err(ExtractError::Corrupt("bad xref".into())),
            Err(ExtractError::Encrypted),
            Err(ExtractError::TooLarge("zip entry".into())),
            Err(ExtractError::Timeout),
            Err(ExtractError::Unsupported),
            Err(ExtractError::Panicked("index out of bounds".into())),
        ] {
            let mut frame = Vec::new();
            write_answer(&mut frame, &result).unwrap();
            let body = read_frame(&mut &frame[..], usize::MAX).unwrap().unwrap();
            assert_eq!(decode_answer(body[0], body[1..].to_vec()).unwrap(), result);
        }
        assert!(decode_answer(FAILURE, vec![99]).is_err());
        assert!(decode_answer(FAILURE, vec![]).is_err());
        assert!(decode_answer(b'Z', b"what".to_vec()).is_err());
    }

    #[test]
    fn frames_that_lie_about_their_length_are_refused() {
        let too_long = ((MAX_REQUEST_FRAME + 1) as u32).to_le_bytes();
        assert!(matches!(
            read_frame(&mut &too_long[..], MAX_REQUEST_FRAME),
            Err(ProtocolError::TooLong(..))
        ));
        assert!(matches!(
            read_frame(&mut &[0u8, 0, 0, 0][..], MAX_REQUEST_FRAME),
            Err(ProtocolError::Empty)
        ));
        // Cut inside the prefix or inside the body.
        let frame = data(b"0123456789");
        for cut in [2, 9] {
            assert!(matches!(
                read_frame(&mut &frame[..cut], MAX_REQUEST_FRAME),
                Err(ProtocolError::Io(_))
            ));
        }
        assert!(
            read_frame(&mut &[][..], MAX_REQUEST_FRAME)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_worker_extracts_files_sent_in_pieces_one_after_another() {
        let mut input = begin("a.txt", 100).encode();
        input.extend(data(b"first "));
        input.extend(data(b"file"));
        input.extend(framed(&[END]));
        // An aborted file is forgotten, without an answer.
        input.extend(begin("b.txt", 100).encode());
        input.extend(data(b"never finished"));
        input.extend(framed(&[ABORT]));
        input.extend(begin("c.txt", 100).encode());
        input.extend(data(b"second file"));
        input.extend(framed(&[END]));
        let (served, all) = answers(input);
        served.unwrap();
        assert_eq!(
            all,
            vec![Ok("first file".to_string()), Ok("second file".to_string())]
        );
    }

    #[test]
    fn a_worker_refuses_files_over_the_limit_and_formats_it_cannot_read() {
        let mut input = begin("a.txt", 5).encode();
        input.extend(data(b"abc"));
        input.extend(data(b"def"));
        input.extend(framed(&[END]));
        input.extend(begin("a.unknown", 100).encode());
        input.extend(data(b"abc"));
        input.extend(framed(&[END]));
        let (served, all) = answers(input);
        served.unwrap();
        assert!(matches!(all[0], Err(ExtractError::TooLarge(_))), "{all:?}");
        assert_eq!(all[1], Err(ExtractError::Unsupported));
    }

    #[test]
    fn a_worker_stops_at_a_frame_out_of_turn() {
        let (served, all) = answers(data(b"no begin"));
        assert!(matches!(served, Err(ProtocolError::Unexpected('D'))));
        assert!(all.is_empty());
        let (served, _) = answers(framed(b"?"));
        assert!(matches!(served, Err(ProtocolError::Unexpected('?'))));
        let mut input = begin("a.txt", 100).encode();
        input.extend(framed(b"Eextra"));
        let (served, _) = answers(input);
        assert!(matches!(served, Err(ProtocolError::Malformed(_))));
    }
}
