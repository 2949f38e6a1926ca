//! The HTTP/1.x wire format, both sides: strict request-head parsing for clients, response-head
//! parsing for upstreams, message framing (RFC 9112 §6) and the chunked coding.
//!
//! Pure code over byte buffers, no I/O: the connection loops in `server` and `upstream` feed it.
//! Tokenizing is httparse's (the parser hyper uses); the framing and strictness rules on top
//! are ours, because the gateway must answer ambiguous framing with a 400 and a closed
//! connection (hyper accepts `Content-Length` + `Transfer-Encoding`, dropping the length), and
//! must answer oversized or malformed heads with Kong's statuses and bodies (hyper replies with
//! a bodiless 431/400 of its own).

mod chunked;
mod fields;
mod request;
mod response;
#[cfg(test)]
mod tests;

pub(crate) use chunked::{ChunkedDecoder, Decoded};
pub(crate) use fields::{Fields, Known, KnownSet, KnownValues};
pub use request::Limits;
pub(crate) use request::{parse_request, ReqHead};
pub(crate) use response::{parse_response, write_chunk_header, RespHead};

/// How a message body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (responses only).
    Close,
}

/// Why a head was refused: the status to answer with, and a reason for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeadError {
    pub(crate) status: u16,
    pub(crate) reason: &'static str,
}

impl HeadError {
    pub(crate) const fn bad(reason: &'static str) -> Self {
        Self { status: 400, reason }
    }
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
pub(crate) fn list_has(v: &[u8], token: &str) -> bool {
    v.split(|&b| b == b',').any(|t| trim(t).eq_ignore_ascii_case(token.as_bytes()))
}

pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Parses a `Content-Length` value: digits only, no sign, no overflow.
pub(crate) fn parse_content_length(v: &[u8]) -> Option<u64> {
    let v = trim(v);
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}
