//! Response heads from upstreams, and the bits of HTTP/1 framing written to either side.

use std::mem::MaybeUninit;

use bytes::{BufMut, Bytes, BytesMut};
use http::{StatusCode, Version};

use super::fields::{Fields, Known};
use super::{list_has, parse_content_length, Framing};

/// A parsed upstream response head.
#[derive(Debug)]
pub(crate) struct RespHead {
    pub(crate) status: StatusCode,
    /// The reason phrase as the upstream sent it (passed on to HTTP/1 clients, as nginx does).
    pub(crate) reason: Bytes,
    pub(crate) fields: Fields,
    pub(crate) framing: Framing,
    /// Whether the upstream connection can carry another request after this response.
    pub(crate) keep_alive: bool,
}

const SLOTS: usize = 128;

/// Parses a response head at the start of `buf`, splitting it off on success; `Ok(None)`
/// means more bytes are needed. `head_request` tells that the request was `HEAD` (no body
/// follows whatever the headers say). Errors are reasons for the log: the caller answers 502.
pub(crate) fn parse_response(
    buf: &mut BytesMut,
    max_head: usize,
    head_request: bool,
) -> Result<Option<RespHead>, &'static str> {
    let mut spans: Vec<((usize, usize), (usize, usize))> = Vec::new();
    let (len, code, version, reason) = {
        let base: &[u8] = buf;
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; SLOTS];
        let mut resp = httparse::Response::new(&mut []);
        match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, base, &mut slots)
        {
            Ok(httparse::Status::Partial) => {
                if base.len() > max_head {
                    return Err("upstream sent too big header");
                }
                return Ok(None);
            }
            Err(httparse::Error::TooManyHeaders) => return Err("upstream sent too many headers"),
            Err(_) => return Err("upstream sent an invalid header"),
            Ok(httparse::Status::Complete(len)) => {
                if len > max_head {
                    return Err("upstream sent too big header");
                }
                let at =
                    |part: &[u8]| (part.as_ptr() as usize - base.as_ptr() as usize, part.len());
                spans.reserve_exact(resp.headers.len());
                for h in resp.headers.iter() {
                    spans.push((at(h.name.as_bytes()), at(h.value)));
                }
                let reason = resp.reason.map(|r| at(r.as_bytes()));
                let version =
                    if resp.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
                (len, resp.code.unwrap_or_default(), version, reason)
            }
        }
    };
    let status = StatusCode::from_u16(code).map_err(|_| "upstream sent an invalid status")?;
    let head = buf.split_to(len).freeze();
    let reason = reason.map_or_else(Bytes::new, |(o, l)| head.slice(o..o + l));
    let mut fields = Fields::with_capacity(head, spans.len());
    for &(name, value) in &spans {
        fields.push(name, value);
    }

    let connection_has =
        |token: &str| fields.get_all(Known::Connection).any(|v| list_has(v, token));
    let mut keep_alive = if version == Version::HTTP_11 {
        !connection_has("close")
    } else {
        connection_has("keep-alive")
    };
    let mut lengths = fields.get_all(Known::ContentLength);
    let length = lengths.next();
    if lengths.next().is_some() {
        return Err("upstream sent duplicate Content-Length");
    }
    let te = fields.get(Known::TransferEncoding);
    if te.is_some() && length.is_some() {
        return Err("upstream sent both Content-Length and Transfer-Encoding");
    }
    let bodiless = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if bodiless {
        Framing::Empty
    } else if let Some(te) = te {
        // only `chunked` is a coding a proxy can pass on re-framed
        if fields.get_all(Known::TransferEncoding).count() == 1
            && super::trim(te).eq_ignore_ascii_case(b"chunked")
        {
            Framing::Chunked
        } else {
            return Err("upstream sent an unsupported Transfer-Encoding");
        }
    } else if let Some(cl) = length {
        match parse_content_length(cl) {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => return Err("upstream sent an invalid Content-Length"),
        }
    } else {
        keep_alive = false;
        Framing::Close
    };
    Ok(Some(RespHead { status, reason, fields, framing, keep_alive }))
}

/// Writes the size line of a chunk of `len` bytes.
pub(crate) fn write_chunk_header(out: &mut BytesMut, len: usize) {
    let mut digits = [0u8; 16];
    let mut n = len;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
    out.put_slice(b"\r\n");
}
