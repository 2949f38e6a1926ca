//! The chunked transfer coding (RFC 9112 §7.1), decoded strictly: hex sizes without overflow,
//! CRLF line ends (a bare LF is refused: lenient parsers disagree on it, which is how request
//! smuggling starts), bounded extensions and trailers. Trailers are read and dropped, as nginx
//! does for proxied HTTP/1 messages.

use bytes::{Bytes, BytesMut};

/// The longest chunk-size line (size, extensions) accepted.
const MAX_LINE: usize = 4096;
/// The most trailer bytes accepted.
const MAX_TRAILERS: usize = 32 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    Size,
    /// After the size: optional whitespace, then `;` or CR.
    ExtBws,
    /// In extensions, until CR.
    Ext,
    /// Expecting the LF that ends the size line.
    SizeLf,
    /// Reading chunk data.
    Data,
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// Reading trailer lines after the last chunk.
    Trailer,
    /// Expecting the LF of a trailer line (or of the final empty line).
    TrailerLf,
    Done,
}

/// What [`ChunkedDecoder::decode`] produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// The last chunk and the trailers were read; the message is complete.
    Done,
    /// The buffer holds no complete unit: read more.
    NeedMore,
}

/// An incremental chunked decoder.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    state: State,
    remaining: u64,
    digits: u8,
    line: usize,
    trailers: usize,
    /// Whether the current trailer line is empty so far.
    empty_line: bool,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self { state: State::Size, remaining: 0, digits: 0, line: 0, trailers: 0, empty_line: true }
    }
}

impl ChunkedDecoder {
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes bytes from `buf` and returns the next piece of body, or what is missing.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, &'static str> {
        loop {
            if self.state == State::Done {
                return Ok(Decoded::Done);
            }
            if self.state == State::Data {
                if buf.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
                let n = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(buf.len());
                self.remaining -= n as u64;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                return Ok(Decoded::Data(buf.split_to(n).freeze()));
            }
            let Some(&b) = buf.first() else {
                return Ok(Decoded::NeedMore);
            };
            let _ = buf.split_to(1);
            self.step(b)?;
        }
    }

    fn step(&mut self, b: u8) -> Result<(), &'static str> {
        if matches!(self.state, State::ExtBws | State::Ext) {
            self.line += 1;
            if self.line > MAX_LINE {
                return Err("chunk size line too long");
            }
        }
        match self.state {
            State::Size => match hex(b) {
                Some(d) => {
                    if self.digits == 16 {
                        return Err("chunk size too large");
                    }
                    self.digits += 1;
                    self.remaining = (self.remaining << 4) | u64::from(d);
                }
                None if self.digits == 0 => return Err("invalid chunk size"),
                None => {
                    self.state = State::ExtBws;
                    return self.step(b);
                }
            },
            State::ExtBws => match b {
                b' ' | b'\t' => {}
                b';' => self.state = State::Ext,
                b'\r' => self.state = State::SizeLf,
                _ => return Err("invalid chunk size line"),
            },
            State::Ext => match b {
                b'\r' => self.state = State::SizeLf,
                b'\n' => return Err("bare LF in chunk size line"),
                b'\t' => {}
                b if b < 0x20 || b == 0x7f => return Err("control character in chunk extension"),
                _ => {}
            },
            State::SizeLf => {
                if b != b'\n' {
                    return Err("expected LF after chunk size");
                }
                self.digits = 0;
                self.line = 0;
                self.state = if self.remaining == 0 { State::Trailer } else { State::Data };
            }
            State::DataCr => {
                if b != b'\r' {
                    return Err("expected CRLF after chunk data");
                }
                self.state = State::DataLf;
            }
            State::DataLf => {
                if b != b'\n' {
                    return Err("expected CRLF after chunk data");
                }
                self.state = State::Size;
            }
            State::Trailer => {
                self.trailers += 1;
                if self.trailers > MAX_TRAILERS {
                    return Err("trailers too large");
                }
                match b {
                    b'\r' => self.state = State::TrailerLf,
                    b'\n' => return Err("bare LF in trailers"),
                    b'\t' => self.empty_line = false,
                    b if b < 0x20 || b == 0x7f => return Err("control character in trailers"),
                    _ => self.empty_line = false,
                }
            }
            State::TrailerLf => {
                if b != b'\n' {
                    return Err("expected LF in trailers");
                }
                if self.empty_line {
                    self.state = State::Done;
                } else {
                    self.empty_line = true;
                    self.state = State::Trailer;
                }
            }
            // `decode` handles these states itself
            State::Data | State::Done => return Err("chunked decoder misuse"),
        }
        Ok(())
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
