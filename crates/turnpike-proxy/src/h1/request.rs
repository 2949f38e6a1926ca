//! Request heads from clients: tokenized by httparse, then checked the way nginx checks them
//! (the behaviour Kong users know), and stricter where framing could be ambiguous.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::{Method, Version};

use super::fields::{Fields, Known};
use super::{list_has, parse_content_length, trim, Framing, HeadError};

/// Size limits of a request head (nginx's `large_client_header_buffers 4 8k` by default).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The longest request line; longer gets 414.
    pub request_line: usize,
    /// The longest header line; longer gets 494 (answered as 400).
    pub header_line: usize,
    /// The whole head; larger gets 494.
    pub head: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { request_line: 8192, header_line: 8192, head: 32768 }
    }
}

/// A parsed, validated request head.
#[derive(Debug)]
pub(crate) struct ReqHead {
    pub(crate) method: Method,
    pub(crate) version: Version,
    /// The request target in origin form (`/path?query`), bytes as received; an absolute-form
    /// target is reduced to its path and query (its authority goes to `authority`).
    pub(crate) target: Bytes,
    /// The length of the path part of `target` (up to the `?`).
    pub(crate) path_len: usize,
    pub(crate) fields: Fields,
    /// The authority of an absolute-form target, which takes precedence over `Host`.
    pub(crate) authority: Option<Bytes>,
    pub(crate) framing: Framing,
    pub(crate) keep_alive: bool,
    pub(crate) expect_continue: bool,
}

#[cfg(test)]
impl ReqHead {
    pub(crate) fn path(&self) -> &[u8] {
        &self.target[..self.path_len]
    }

    /// The query string without its `?`, if the target has one (possibly empty).
    pub(crate) fn query(&self) -> Option<&[u8]> {
        (self.path_len < self.target.len()).then(|| &self.target[self.path_len + 1..])
    }

    /// The host the client addressed: the absolute-form authority, else `Host`.
    pub(crate) fn host(&self) -> Option<&[u8]> {
        self.authority.as_deref().or_else(|| self.fields.get(Known::Host))
    }
}

const STACK_HEADERS: usize = 100;
const MAX_HEADERS: usize = 4096;

/// Parses a request head at the start of `buf`. On success the head's bytes are split off
/// `buf` (what remains is body or a pipelined request); `Ok(None)` means more bytes are needed.
pub(crate) fn parse_request(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<ReqHead>, HeadError> {
    // Most requests fit the stack slots; a head with more headers is parsed again with many.
    match parse_with(buf, limits, false) {
        Err(HeadError { reason: TOO_MANY, .. }) => match parse_with(buf, limits, true) {
            Err(HeadError { reason: TOO_MANY, .. }) => Err(TOO_LARGE),
            other => other,
        },
        other => other,
    }
}

const TOO_MANY: &str = "too many headers";
const TOO_LARGE: HeadError = HeadError { status: 494, reason: "request header too large" };
const URI_TOO_LONG: HeadError = HeadError { status: 414, reason: "request line too long" };

/// Where a header sits in the head buffer.
#[derive(Clone, Copy)]
struct Span {
    name: (usize, usize),
    value: (usize, usize),
}

fn offset(base: &[u8], part: &[u8]) -> (usize, usize) {
    (part.as_ptr() as usize - base.as_ptr() as usize, part.len())
}

fn parse_with(
    buf: &mut BytesMut,
    limits: &Limits,
    many: bool,
) -> Result<Option<ReqHead>, HeadError> {
    // Spans are collected while httparse borrows `buf`, then the head is split off and frozen
    // so that header values share its allocation.
    let mut spans: Vec<Span> = Vec::new();
    let (len, method, version, target) = {
        let base: &[u8] = buf;
        let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
        let mut heap: Vec<MaybeUninit<httparse::Header<'_>>> = Vec::new();
        let slots = if many {
            heap.resize_with(MAX_HEADERS, MaybeUninit::uninit);
            &mut heap[..]
        } else {
            &mut stack[..]
        };
        let mut req = httparse::Request::new(&mut []);
        let status = httparse::ParserConfig::default()
            .parse_request_with_uninit_headers(&mut req, base, slots);
        match status {
            Ok(httparse::Status::Partial) => {
                check_partial(base, limits)?;
                return Ok(None);
            }
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::bad(TOO_MANY)),
            Err(httparse::Error::Version) => return Err(HeadError::bad("invalid HTTP version")),
            Err(_) => {
                check_partial(base, limits)?;
                return Err(HeadError::bad("invalid request head"));
            }
            Ok(httparse::Status::Complete(len)) => {
                let method = req.method.unwrap_or_default();
                let path = req.path.unwrap_or_default();
                // The request line: method SP target SP HTTP/1.x
                if method.len() + path.len() + 10 > limits.request_line {
                    return Err(URI_TOO_LONG);
                }
                if len > limits.head {
                    return Err(TOO_LARGE);
                }
                spans.reserve_exact(req.headers.len());
                for h in req.headers.iter() {
                    if h.name.len() + h.value.len() + 2 > limits.header_line {
                        return Err(TOO_LARGE);
                    }
                    spans.push(Span {
                        name: offset(base, h.name.as_bytes()),
                        value: offset(base, h.value),
                    });
                }
                let version =
                    if req.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
                (len, Method::from_bytes(method.as_bytes()), version, offset(base, path.as_bytes()))
            }
        }
    };
    let method = method.map_err(|_| HeadError::bad("invalid method"))?;
    if !method.as_str().bytes().all(|b| b.is_ascii_uppercase() || b == b'_' || b == b'-') {
        return Err(HeadError::bad("invalid method"));
    }
    if method == Method::CONNECT {
        return Err(HeadError { status: 405, reason: "CONNECT is not supported" });
    }
    let head = buf.split_to(len).freeze();
    let raw_target = head.slice(target.0..target.0 + target.1);
    let mut fields = Fields::with_capacity(head, spans.len());
    for s in &spans {
        fields.push(s.name, s.value);
    }

    let (target, authority) = origin_form(&method, raw_target)?;
    let path_len = target.iter().position(|&b| b == b'?').unwrap_or(target.len());
    finish(method, version, target, path_len, fields, authority).map(Some)
}

/// Decides between "need more bytes" and "too large" for an incomplete head.
fn check_partial(base: &[u8], limits: &Limits) -> Result<(), HeadError> {
    match base.iter().position(|&b| b == b'\n') {
        None if base.len() > limits.request_line => Err(URI_TOO_LONG),
        Some(eol) if eol > limits.request_line => Err(URI_TOO_LONG),
        _ if base.len() > limits.head => Err(TOO_LARGE),
        _ => {
            // a header line still being received may already exceed its limit
            let last_line = base.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            if base.len() - last_line > limits.header_line {
                Err(TOO_LARGE)
            } else {
                Ok(())
            }
        }
    }
}

/// Reduces the request target to origin form; returns it and the absolute-form authority.
fn origin_form(method: &Method, target: Bytes) -> Result<(Bytes, Option<Bytes>), HeadError> {
    match target.first() {
        Some(b'/') => Ok((target, None)),
        Some(b'*') if target.len() == 1 && method == Method::OPTIONS => Ok((target, None)),
        _ => {
            let scheme_len = if starts_with_ci(&target, b"http://") {
                7
            } else if starts_with_ci(&target, b"https://") {
                8
            } else {
                return Err(HeadError::bad("invalid request target"));
            };
            let rest = target.slice(scheme_len..);
            let end = rest.iter().position(|&b| b == b'/' || b == b'?').unwrap_or(rest.len());
            let authority = rest.slice(..end);
            if authority.is_empty() || authority.contains(&b'@') {
                return Err(HeadError::bad("invalid request target"));
            }
            let path = rest.slice(end..);
            let path = match path.first() {
                Some(b'/') => path,
                Some(_) => {
                    let mut p = BytesMut::with_capacity(path.len() + 1);
                    p.extend_from_slice(b"/");
                    p.extend_from_slice(&path);
                    p.freeze()
                }
                None => Bytes::from_static(b"/"),
            };
            Ok((path, Some(authority)))
        }
    }
}

fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// nginx's host validation (`ngx_http_validate_host`): no empty host, no `..`, no `/` or `\`,
/// no control characters; a trailing dot is allowed.
pub(crate) fn valid_host(h: &[u8]) -> bool {
    let h = trim(h);
    if h.is_empty() || h.starts_with(b".") {
        return false;
    }
    let mut prev = 0u8;
    let mut in_brackets = false;
    for &b in h {
        match b {
            b'.' if prev == b'.' => return false,
            b'[' if prev == 0 => in_brackets = true,
            b']' => in_brackets = false,
            b'/' | b'\\' | b'\0' => return false,
            b if b < 0x20 || b == 0x7f => return false,
            b' ' if !in_brackets => return false,
            _ => {}
        }
        prev = b;
    }
    true
}

fn finish(
    method: Method,
    version: Version,
    target: Bytes,
    path_len: usize,
    fields: Fields,
    authority: Option<Bytes>,
) -> Result<ReqHead, HeadError> {
    if method == Method::TRACE {
        return Err(HeadError { status: 405, reason: "TRACE is not allowed" });
    }
    let mut hosts = fields.get_all(Known::Host);
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(HeadError::bad("duplicate Host header"));
    }
    match (&authority, host) {
        (Some(a), _) if !valid_host(a) => return Err(HeadError::bad("invalid host")),
        (None, Some(h)) if !valid_host(h) => return Err(HeadError::bad("invalid Host header")),
        (None, None) if version == Version::HTTP_11 => {
            return Err(HeadError::bad("HTTP/1.1 request without Host"))
        }
        _ => {}
    }

    let mut lengths = fields.get_all(Known::ContentLength);
    let length = lengths.next();
    if lengths.next().is_some() {
        return Err(HeadError::bad("duplicate Content-Length"));
    }
    let mut tes = fields.get_all(Known::TransferEncoding);
    let te = tes.next();
    let framing = match (te, length) {
        (Some(_), Some(_)) => {
            return Err(HeadError::bad("both Content-Length and Transfer-Encoding"))
        }
        (Some(te), None) => {
            if version == Version::HTTP_10 {
                return Err(HeadError::bad("Transfer-Encoding in an HTTP/1.0 request"));
            }
            if tes.next().is_some() || !trim(te).eq_ignore_ascii_case(b"chunked") {
                return Err(HeadError { status: 501, reason: "unsupported Transfer-Encoding" });
            }
            Framing::Chunked
        }
        (None, Some(cl)) => match parse_content_length(cl) {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => return Err(HeadError::bad("invalid Content-Length")),
        },
        (None, None) => Framing::Empty,
    };

    let connection_has =
        |token: &str| fields.get_all(Known::Connection).any(|v| list_has(v, token));
    let keep_alive = if version == Version::HTTP_11 {
        !connection_has("close")
    } else {
        connection_has("keep-alive")
    };
    let expect_continue = version == Version::HTTP_11
        && fields.get(Known::Expect).is_some_and(|v| trim(v).eq_ignore_ascii_case(b"100-continue"));
    Ok(ReqHead {
        method,
        version,
        target,
        path_len,
        fields,
        authority,
        framing,
        keep_alive,
        expect_continue,
    })
}
