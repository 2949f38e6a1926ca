use bytes::BytesMut;
use http::{Method, StatusCode, Version};

use super::*;

fn req(raw: &[u8]) -> Result<Option<ReqHead>, HeadError> {
    let mut buf = BytesMut::from(raw);
    parse_request(&mut buf, &Limits::default())
}

fn status_of(raw: &[u8]) -> u16 {
    match req(raw) {
        Err(e) => e.status,
        Ok(Some(_)) => 200,
        Ok(None) => 0,
    }
}

#[test]
fn simple_get() {
    let mut buf = BytesMut::from(
        &b"GET /a/b?x=1&y HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nx-a: 2\r\n\r\nrest"[..],
    );
    let h = parse_request(&mut buf, &Limits::default()).unwrap().unwrap();
    assert_eq!(h.method, Method::GET);
    assert_eq!(h.version, Version::HTTP_11);
    assert_eq!(h.path(), b"/a/b");
    assert_eq!(h.query(), Some(&b"x=1&y"[..]));
    assert_eq!(h.host(), Some(&b"example.com"[..]));
    assert_eq!(h.fields.get_all_named(b"x-a").count(), 2);
    assert_eq!(h.framing, Framing::Empty);
    assert!(h.keep_alive);
    assert_eq!(&buf[..], b"rest", "the head is split off, the rest stays");
}

#[test]
fn empty_query_is_kept() {
    let h = req(b"GET /a? HTTP/1.1\r\nHost: h\r\n\r\n").unwrap().unwrap();
    assert_eq!(h.path(), b"/a");
    assert_eq!(h.query(), Some(&b""[..]));
    let h = req(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n").unwrap().unwrap();
    assert_eq!(h.query(), None);
}

#[test]
fn partial_heads_need_more() {
    assert!(req(b"GET / HTTP/1.1\r\nHost: h\r\n").unwrap().is_none());
    assert!(req(b"GE").unwrap().is_none());
}

#[test]
fn keep_alive_rules() {
    assert!(
        !req(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap()
            .keep_alive
    );
    assert!(!req(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap().keep_alive);
    assert!(req(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap().unwrap().keep_alive);
    let h = req(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(h.keep_alive);
}

#[test]
fn framing() {
    let h = req(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\n").unwrap().unwrap();
    assert_eq!(h.framing, Framing::Length(12));
    let h =
        req(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap().unwrap();
    assert_eq!(h.framing, Framing::Chunked);
    let h = req(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
    assert_eq!(h.framing, Framing::Empty);
    let h = req(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(h.expect_continue);
}

#[test]
fn ambiguous_framing_is_refused() {
    let cases: &[(&[u8], u16)] = &[
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5a\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", 400),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", 501),
    ];
    for (raw, status) in cases {
        assert_eq!(status_of(raw), *status, "{}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn malformed_heads_are_refused() {
    let cases: &[&[u8]] = &[
        // obs-fold
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  continued\r\n\r\n",
        // whitespace before the colon
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A : 1\r\n\r\n",
        // control characters in a value and a name
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX\x01A: a\r\n\r\n",
        // missing, duplicate and invalid hosts
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a..b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: \r\n\r\n",
        // request line
        b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
        b"GET relative HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: h\r\n\r\n",
        b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"get / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http://user@h/x HTTP/1.1\r\nHost: h\r\n\r\n",
    ];
    for raw in cases {
        assert_eq!(status_of(raw), 400, "{}", String::from_utf8_lossy(raw));
    }
    assert_eq!(status_of(b"CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n"), 405);
    assert_eq!(status_of(b"TRACE / HTTP/1.1\r\nHost: h\r\n\r\n"), 405);
    assert_eq!(status_of(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), 200);
}

#[test]
fn absolute_form_wins_over_host() {
    let h =
        req(b"GET http://Example.com:8000?q=1 HTTP/1.1\r\nHost: other\r\n\r\n").unwrap().unwrap();
    assert_eq!(h.host(), Some(&b"Example.com:8000"[..]));
    assert_eq!(&h.target[..], b"/?q=1");
    assert_eq!(h.path(), b"/");
    let h = req(b"GET HTTPS://a.b/x/y HTTP/1.1\r\nHost: other\r\n\r\n").unwrap().unwrap();
    assert_eq!(&h.target[..], b"/x/y");
}

#[test]
fn size_limits() {
    let limits = Limits { request_line: 64, header_line: 64, head: 256 };
    let parse = |raw: &[u8]| parse_request(&mut BytesMut::from(raw), &limits);
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(100));
    assert_eq!(parse(long_uri.as_bytes()).unwrap_err().status, 414);
    // still incomplete, but already too long
    assert_eq!(parse(format!("GET /{}", "a".repeat(100)).as_bytes()).unwrap_err().status, 414);
    let long_header = format!("GET / HTTP/1.1\r\nHost: h\r\nX-A: {}\r\n\r\n", "b".repeat(100));
    assert_eq!(parse(long_header.as_bytes()).unwrap_err().status, 494);
    assert_eq!(
        parse(format!("GET / HTTP/1.1\r\nX-A: {}", "b".repeat(100)).as_bytes()).unwrap_err().status,
        494
    );
    let many: String = (0..20).map(|i| format!("X-{i}: 1234567890\r\n")).collect();
    assert_eq!(
        parse(format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n").as_bytes()).unwrap_err().status,
        494
    );
    assert_eq!(
        parse(format!("GET / HTTP/1.1\r\nHost: h\r\n{many}").as_bytes()).unwrap_err().status,
        494
    );
}

#[test]
fn many_headers_fit_when_small() {
    let many: String = (0..300).map(|i| format!("X-{i}: v\r\n")).collect();
    let h = req(format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n").as_bytes()).unwrap().unwrap();
    assert_eq!(h.fields.iter().count(), 301);
}

fn decode_all(input: &[u8], byte_by_byte: bool) -> Result<Vec<u8>, &'static str> {
    let mut dec = ChunkedDecoder::default();
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    let feeds: Vec<&[u8]> = if byte_by_byte { input.chunks(1).collect() } else { vec![input] };
    for feed in feeds {
        buf.extend_from_slice(feed);
        loop {
            match dec.decode(&mut buf)? {
                Decoded::Data(d) => out.extend_from_slice(&d),
                Decoded::Done => return Ok(out),
                Decoded::NeedMore => break,
            }
        }
    }
    Err("incomplete")
}

#[test]
fn chunked_valid() {
    let body = b"5\r\nhello\r\n6;ext=1; other\r\n world\r\nA \t;x\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n";
    for bytewise in [false, true] {
        assert_eq!(decode_all(body, bytewise).unwrap(), b"hello world0123456789");
    }
    assert_eq!(decode_all(b"0\r\n\r\n", false).unwrap(), b"");
    let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\nNEXT"[..]);
    let mut dec = ChunkedDecoder::default();
    assert_eq!(dec.decode(&mut buf).unwrap(), Decoded::Data(bytes::Bytes::from_static(b"abc")));
    assert_eq!(dec.decode(&mut buf).unwrap(), Decoded::Done);
    assert_eq!(&buf[..], b"NEXT", "bytes after the message stay");
}

#[test]
fn chunked_invalid() {
    let cases: &[&[u8]] = &[
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"10000000000000000\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloX\r\n0\r\n\r\n",
        b"5\r\nhello\n0\r\n\r\n",
        b"5 x\r\nhello\r\n0\r\n\r\n",
        b"5;a\x01\r\nhello\r\n0\r\n\r\n",
        b"0\r\nTrailer: t\n\r\n",
    ];
    for c in cases {
        assert!(decode_all(c, false).is_err(), "{}", String::from_utf8_lossy(c));
    }
}

fn resp(raw: &[u8], head: bool) -> Result<Option<RespHead>, &'static str> {
    parse_response(&mut BytesMut::from(raw), 65536, head)
}

#[test]
fn response_framing() {
    let r = resp(b"HTTP/1.1 200 Fine\r\nContent-Length: 3\r\n\r\nabc", false).unwrap().unwrap();
    assert_eq!(
        (r.status, &r.reason[..], r.framing, r.keep_alive),
        (StatusCode::OK, &b"Fine"[..], Framing::Length(3), true)
    );
    let r = resp(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false).unwrap().unwrap();
    assert_eq!(r.framing, Framing::Chunked);
    let r = resp(b"HTTP/1.1 200 OK\r\n\r\n", false).unwrap().unwrap();
    assert_eq!((r.framing, r.keep_alive), (Framing::Close, false));
    let r = resp(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false).unwrap().unwrap();
    assert!(!r.keep_alive);
    let r = resp(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true).unwrap().unwrap();
    assert_eq!(r.framing, Framing::Empty);
    for code in [b"204", b"304", b"100"] {
        let raw = [&b"HTTP/1.1 "[..], code, b" X\r\nContent-Length: 10\r\n\r\n"].concat();
        assert_eq!(resp(&raw, false).unwrap().unwrap().framing, Framing::Empty);
    }
    assert!(
        resp(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", false).is_err()
    );
    assert!(resp(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        false
    )
    .is_err());
    assert!(resp(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false).is_err());
    assert!(resp(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
    assert!(resp(b"HTTP/1.1 200 OK\r\nContent-Len", false).unwrap().is_none());
    assert!(parse_response(
        &mut BytesMut::from(&b"HTTP/1.1 200 OK\r\nX: aaaaaaaaaaaa"[..]),
        16,
        false
    )
    .is_err());
}

#[test]
fn chunk_header_hex() {
    for (n, s) in
        [(0usize, "0\r\n"), (10, "a\r\n"), (4096, "1000\r\n"), (usize::MAX, "ffffffffffffffff\r\n")]
    {
        let mut out = BytesMut::new();
        write_chunk_header(&mut out, n);
        assert_eq!(&out[..], s.as_bytes());
    }
}
