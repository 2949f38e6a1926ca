//! Responses the gateway writes itself, with Kong's texts, templates and content negotiation
//! (`kong/error_handlers.lua`, `kong/tools/http.lua`, `kong/pdk/response.lua`; the facts are
//! collected in docs/research/kong-proxy-behaviour.md §4).
//!
//! Two paths, as in Kong:
//! - errors nginx raises itself (malformed requests, body too large, upstream failures) pick
//!   their format from `Accept`, else the request's `Content-Type`, else `error_default_type`;
//! - errors Kong's Lua raises (no route, HTTPS required, no service, name resolution) pick it
//!   from `Accept`, else JSON.
//!
//! gRPC requests get `grpc-status` / `grpc-message` headers instead of a body.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};

use crate::h1::Known;
use crate::headers::Headers;

/// The message of a status, for errors without a message of their own.
pub(crate) fn default_message(status: u16) -> Option<&'static str> {
    Some(match status {
        400 | 494 => "Bad request",
        401 => "Unauthorized",
        402 => "Payment required",
        403 => "Forbidden",
        404 => "Not found",
        405 => "Method not allowed",
        406 => "Not acceptable",
        407 => "Proxy authentication required",
        408 => "Request timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length required",
        412 => "Precondition failed",
        413 => "Payload too large",
        414 => "URI too long",
        415 => "Unsupported media type",
        416 => "Range not satisfiable",
        417 => "Expectation failed",
        418 => "I'm a teapot",
        421 => "Misdirected request",
        422 => "Unprocessable entity",
        423 => "Locked",
        424 => "Failed dependency",
        425 => "Too early",
        426 => "Upgrade required",
        428 => "Precondition required",
        429 => "Too many requests",
        431 => "Request header fields too large",
        451 => "Unavailable for legal reasons",
        500 => "An unexpected error occurred",
        501 => "Not implemented",
        502 => "An invalid response was received from the upstream server",
        503 => "The upstream server is currently unavailable",
        504 => "The upstream server is timing out",
        505 => "HTTP version not supported",
        506 => "Variant also negotiates",
        507 => "Insufficient storage",
        508 => "Loop detected",
        510 => "Not extended",
        511 => "Network authentication required",
        _ => return None,
    })
}

/// The message nginx-level errors carry (`error_handlers.lua`): a 494 says what it is about.
fn nginx_message(status: u16) -> String {
    match status {
        494 => "Request header or cookie too large".into(),
        400 | 404 | 405 | 408 | 411 | 412 | 413 | 414 | 417 | 500 | 502 | 503 | 504 => {
            default_message(status).unwrap_or_default().into()
        }
        _ => format!("The upstream server responded with {status}"),
    }
}

/// The reason phrase nginx writes for a status it generates (`ngx_http_header_filter_module.c`),
/// `None` for a status it has no phrase for (the status line then ends after the code).
pub(crate) fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Time-out",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Large",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        421 => "Misdirected Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Temporarily Unavailable",
        504 => "Gateway Time-out",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => return None,
    })
}

/// An error body format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Html,
    Xml,
    Plain,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json; charset=utf-8",
            Self::Html => "text/html; charset=utf-8",
            Self::Xml => "application/xml; charset=utf-8",
            Self::Plain => "text/plain; charset=utf-8",
        }
    }

    /// Kong's `MIME_TYPES` lookup of a media type (`get_mime_type`): exact, case-sensitive;
    /// `type/*` maps `text` and `application`; anything else is the default (JSON).
    fn of_media_type(media: &str) -> Self {
        match media.split_once('/') {
            Some(("*", "*")) => Self::Json,
            Some(("text", "*")) => Self::Plain,
            Some(("application", "*")) => Self::Json,
            _ => match media {
                "text/html" => Self::Html,
                "application/json" => Self::Json,
                "text/plain" => Self::Plain,
                "application/xml" => Self::Xml,
                _ => Self::Json,
            },
        }
    }

    fn render(self, message: &str, request_id: &str) -> String {
        match self {
            Self::Json => format!("{{\n  \"message\":\"{message}\",\n  \"request_id\":\"{request_id}\"\n}}"),
            Self::Html => format!(
                "<!doctype html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n    <p>{message}.</p>\n    <p>request_id: {request_id}</p>\n  </body>\n</html>\n"
            ),
            Self::Xml => format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n  <message>{message}</message>\n  <requestid>{request_id}</requestid>\n</error>\n"
            ),
            Self::Plain => format!("{message}\nrequest_id: {request_id}\n"),
        }
    }
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-!#$&^_+.".contains(&b)
}

/// Kong's media-type token: `[a-z0-9][a-z0-9-!#$&^_+.]+` (two characters at least) or `*`.
fn token_len(s: &[u8]) -> usize {
    if s.first() == Some(&b'*') {
        return 1;
    }
    if !s.first().is_some_and(u8::is_ascii_alphanumeric) {
        return 0;
    }
    let n = 1 + s[1..].iter().take_while(|&&b| is_token_char(b)).count();
    if n >= 2 {
        n
    } else {
        0
    }
}

/// One `Accept` element: its media type and q, if it has Kong's shape.
fn parse_accept_element(el: &str) -> Option<(&str, f64)> {
    let b = el.as_bytes();
    let t = token_len(b);
    if t == 0 || b.get(t) != Some(&b'/') {
        return None;
    }
    let s = token_len(&b[t + 1..]);
    if s == 0 {
        return None;
    }
    let media_end = t + 1 + s;
    let media = &el[..media_end];
    let mut q = 1.0;
    let mut rest = &el[media_end..];
    // parameters, as many as parse; whatever follows is ignored (the pattern is not anchored
    // at the end)
    loop {
        let r = rest.trim_start_matches([' ', '\t']);
        let Some(r) = r.strip_prefix(';') else { break };
        let r = r.trim_start_matches([' ', '\t']);
        if let Some(v) = r.strip_prefix("q=").or_else(|| r.strip_prefix("Q=")) {
            let len = q_len(v.as_bytes());
            if len > 0 {
                q = v[..len].parse().unwrap_or(q);
                rest = &v[len..];
                continue;
            }
        }
        let n = token_len(r.as_bytes());
        if n == 0 || r.starts_with('*') {
            break;
        }
        let after = &r[n..];
        rest = match after.strip_prefix('=') {
            Some(v) => &v[v.find(';').unwrap_or(v.len())..],
            None => after,
        };
    }
    Some((media, q))
}

/// Length of a q value: `1`, `1.0{0,3}`, `0`, `0.\d{0,3}`.
fn q_len(v: &[u8]) -> usize {
    match v.first() {
        Some(b'1') => {
            if v.get(1) == Some(&b'.') {
                2 + v[2..].iter().take(3).take_while(|&&b| b == b'0').count()
            } else {
                1
            }
        }
        Some(b'0') => {
            if v.get(1) == Some(&b'.') {
                2 + v[2..].iter().take(3).take_while(|b| b.is_ascii_digit()).count()
            } else {
                1
            }
        }
        _ => 0,
    }
}

/// Kong's `get_response_type`: the best `Accept` element by q (the first of equal ones),
/// JSON when none fits.
pub(crate) fn negotiate(accept: &str) -> Format {
    let mut best = Format::Json;
    let mut max_q = 0.0;
    for el in accept.split(',') {
        if let Some((media, q)) = parse_accept_element(el.trim()) {
            if q > max_q {
                max_q = q;
                best = Format::of_media_type(media);
            }
        }
    }
    best
}

/// A response the gateway generates.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Bytes,
    /// Close the client connection after this response.
    pub(crate) close: bool,
}

impl Reply {
    pub(crate) fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Bytes::new(), close: false }
    }

    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }
}

/// What the error responder needs to know about the request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ErrCtx<'a> {
    /// The request headers, if they could be parsed.
    pub(crate) headers: Option<&'a Headers>,
    pub(crate) request_id: &'a str,
    /// The request arrived over HTTP/2 (a gRPC request needs it).
    pub(crate) h2: bool,
    pub(crate) error_default_type: &'a str,
}

fn first_header(headers: Option<&Headers>, k: Known) -> Option<&str> {
    headers.and_then(|h| h.get_str(k))
}

fn grpc_status(status: u16) -> u8 {
    match status {
        200 => 0,
        400 => 3,
        401 => 16,
        403 => 7,
        404 => 5,
        409 => 6,
        429 => 8,
        499 => 1,
        501 => 12,
        503 => 14,
        504 => 4,
        s if (500..600).contains(&s) => 13,
        s if (400..500).contains(&s) => 3,
        s if (200..300).contains(&s) => 0,
        _ => 2,
    }
}

fn grpc_reply(status: u16, message: &str) -> Reply {
    Reply::new(status)
        .header(CONTENT_TYPE, "application/grpc")
        .header(HeaderName::from_static("grpc-status"), &grpc_status(status).to_string())
        .header(HeaderName::from_static("grpc-message"), message)
}

fn templated(status: u16, format: Format, message: &str, request_id: &str) -> Reply {
    let mut r = Reply::new(status);
    r.body = Bytes::from(format.render(message, request_id));
    r.header(CONTENT_TYPE, format.content_type())
}

/// An error nginx itself would raise. Kong's `error_page` directive sends the statuses it lists
/// to its error handler (the templates); any other status gets nginx's own page.
pub(crate) fn nginx_error(status: u16, ctx: &ErrCtx<'_>) -> Reply {
    if !matches!(
        status,
        400 | 404 | 405 | 408 | 411 | 412 | 413 | 414 | 417 | 494 | 500 | 502 | 503 | 504
    ) {
        return special_page(status);
    }
    let message = nginx_message(status);
    let status = if status == 494 { 400 } else { status };
    let accept = first_header(ctx.headers, Known::Accept)
        .or_else(|| first_header(ctx.headers, Known::ContentType))
        .unwrap_or(ctx.error_default_type);
    if accept.starts_with("application/grpc") {
        return grpc_reply(status, &message);
    }
    templated(status, negotiate(accept), &message, ctx.request_id)
}

/// An error Kong's own code raises (`kong.response.error`).
pub(crate) fn kong_error(status: u16, message: &str, ctx: &ErrCtx<'_>) -> Reply {
    let is_grpc = ctx.h2
        && first_header(ctx.headers, Known::ContentType)
            .is_some_and(|ct| ct.starts_with("application/grpc"));
    if is_grpc {
        return grpc_reply(status, message);
    }
    let format = first_header(ctx.headers, Known::Accept).map_or(Format::Json, negotiate);
    templated(status, format, message, ctx.request_id)
}

/// nginx's own page for a status (`ngx_http_send_special_response`), without the server footer
/// that Kong's OpenResty build patches out.
fn special_page(status: u16) -> Reply {
    // the page titles follow the status lines, except 302's
    let phrase = if status == 302 { "Found" } else { reason_phrase(status).unwrap_or_default() };
    let mut r = Reply::new(status);
    r.body = Bytes::from(format!(
        "<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n\
         <center><h1>{status} {phrase}</h1></center>\r\n</body>\r\n</html>\r\n"
    ));
    r.header(CONTENT_TYPE, "text/html")
}

/// nginx's page for a redirect it generates.
pub(crate) fn redirect(status: u16, location: &str) -> Reply {
    special_page(status).header(http::header::LOCATION, location)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_kong() {
        assert_eq!(negotiate("text/html"), Format::Html);
        assert_eq!(negotiate("application/json;q=0.9,text/html,text/plain;q=0.9"), Format::Html);
        assert_eq!(
            negotiate("text/plain;q=0.7,application/json;q=0.8,text/html;q=0.5"),
            Format::Json
        );
        assert_eq!(negotiate("application/xml"), Format::Xml);
        assert_eq!(negotiate("text/*"), Format::Plain);
        assert_eq!(negotiate("*/*"), Format::Json);
        assert_eq!(negotiate("image/png"), Format::Json);
        assert_eq!(negotiate("Text/HTML"), Format::Json, "the lookup is case-sensitive");
        assert_eq!(negotiate("text/html;q=0"), Format::Json, "q=0 is never chosen");
        assert_eq!(negotiate("text/html;q=0.5, text/plain;q=0.5"), Format::Html, "first of equals");
        assert_eq!(negotiate("text/html; level=1; q=0.2, text/plain;q=0.3"), Format::Plain);
        assert_eq!(negotiate("x/y, text/plain"), Format::Plain, "one-letter tokens do not match");
        assert_eq!(negotiate(""), Format::Json);
    }

    #[test]
    fn templates_are_kongs() {
        let ctx = ErrCtx {
            headers: None,
            request_id: "abc",
            h2: false,
            error_default_type: "text/plain",
        };
        let r = nginx_error(502, &ctx);
        assert_eq!(
            &r.body[..],
            b"An invalid response was received from the upstream server\nrequest_id: abc\n"
        );
        let r = nginx_error(494, &ctx);
        assert_eq!(r.status, 400);
        assert!(std::str::from_utf8(&r.body)
            .unwrap()
            .starts_with("Request header or cookie too large\n"));
        let r = kong_error(404, "no Route matched with those values", &ctx);
        assert_eq!(
            &r.body[..],
            b"{\n  \"message\":\"no Route matched with those values\",\n  \"request_id\":\"abc\"\n}"
        );
        assert_eq!(r.headers[0].1, "application/json; charset=utf-8");
        let mut h = http::HeaderMap::new();
        h.insert(http::header::ACCEPT, HeaderValue::from_static("text/html"));
        let h = Headers::Map(h);
        let ctx = ErrCtx { headers: Some(&h), ..ctx };
        let r = nginx_error(504, &ctx);
        assert!(std::str::from_utf8(&r.body)
            .unwrap()
            .contains("<p>The upstream server is timing out.</p>"));
        assert_eq!(nginx_error(599, &ctx).status, 599);
        let mut g = http::HeaderMap::new();
        g.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        let g = Headers::Map(g);
        let r = kong_error(
            503,
            "no Service found with those values",
            &ErrCtx { headers: Some(&g), h2: true, ..ctx },
        );
        assert!(r.body.is_empty());
        assert!(r.headers.iter().any(|(n, v)| n == "grpc-status" && v == "14"));
    }
}
