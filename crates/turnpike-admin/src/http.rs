//! Request decoding and response helpers with Kong's rules (`api_helpers.lua`):
//! accepted content types, the 10 MB body limit, JSON/form/multipart bodies, and the JSON
//! bodies of errors.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use turnpike_core::errors::DaoError;
use turnpike_core::schema::Schema;

use crate::args::{decode_pairs, infer, MapSyntax};

/// Kong's `nginx_admin_client_max_body_size`.
pub(crate) const MAX_BODY: usize = 10 * 1024 * 1024;
/// The body limit of `/config` (a whole declarative configuration).
pub(crate) const MAX_CONFIG_BODY: usize = 32 * 1024 * 1024;

/// Kong's `max_uri_args` / `max_post_args`.
const MAX_ARGS: usize = 1000;

const JSON_CT: &str = "application/json; charset=utf-8";

/// A JSON response with Kong's content type.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut res = (status, bytes).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_CT));
    res
}

pub(crate) fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

pub(crate) fn created(body: &Value) -> Response {
    json_response(StatusCode::CREATED, body)
}

pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) fn message(status: StatusCode, msg: &str) -> Response {
    json_response(status, &json!({ "message": msg }))
}

pub(crate) fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not found")
}

pub(crate) fn method_not_allowed() -> Response {
    message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

pub(crate) fn unexpected() -> Response {
    message(StatusCode::INTERNAL_SERVER_ERROR, "An unexpected error occurred")
}

/// `handle_error(err_t)`: the DAO error body with its status (500s never show internals).
pub(crate) fn dao_error(e: &DaoError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return unexpected();
    }
    json_response(status, &e.to_json())
}

/// Result of handlers: an early response is an `Err`.
pub(crate) type HResult<T> = Result<T, Response>;

pub(crate) trait OrRespond<T> {
    fn or_respond(self) -> HResult<T>;
}

impl<T> OrRespond<T> for Result<T, DaoError> {
    fn or_respond(self) -> HResult<T> {
        self.map_err(|e| dao_error(&e))
    }
}

/// How the body was sent.
#[derive(Debug)]
pub(crate) enum BodyKind {
    Empty,
    Json(Value),
    /// `application/x-www-form-urlencoded` or `multipart/form-data`: flat pairs.
    Form(Vec<(String, Value)>),
    /// A YAML document (only accepted by `/config`).
    Yaml,
}

/// A decoded Admin API request.
#[derive(Debug)]
pub(crate) struct Input {
    pub(crate) method: Method,
    pub(crate) query: Vec<(String, Value)>,
    pub(crate) body: BodyKind,
    /// The body as received (`kong.request.get_raw_body`).
    pub(crate) raw: Bytes,
}

impl Input {
    /// A raw query argument (the first value of a key).
    pub(crate) fn query_arg(&self, key: &str) -> Option<String> {
        self.query.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.as_str().map(str::to_owned))
    }

    pub(crate) fn is_form(&self) -> bool {
        matches!(self.body, BodyKind::Form(_))
    }

    /// `self.args.post`: a JSON body as sent; form/multipart decoded and inferred by `schema`.
    pub(crate) fn post_args(&self, schema: Option<&Schema>) -> HResult<Map<String, Value>> {
        match &self.body {
            BodyKind::Empty | BodyKind::Yaml => Ok(Map::new()),
            BodyKind::Json(Value::Object(o)) => Ok(o.clone()),
            BodyKind::Json(Value::Array(a)) if a.is_empty() => Ok(Map::new()),
            BodyKind::Json(_) => Err(message(StatusCode::BAD_REQUEST, "Cannot parse JSON body")),
            BodyKind::Form(pairs) => {
                let map_syntax =
                    if matches!(self.method, Method::POST | Method::PUT | Method::PATCH) {
                        MapSyntax::Allowed
                    } else {
                        MapSyntax::Forbidden
                    };
                let decoded = decode_pairs(pairs.clone(), map_syntax);
                Ok(match schema {
                    Some(s) => infer(decoded, s),
                    None => decoded,
                })
            }
        }
    }

    /// `self.params` as Lapis builds it for `/schemas/…/validate`: the body, decoded but
    /// not coerced.
    pub(crate) fn params(&self) -> HResult<Map<String, Value>> {
        self.post_args(None)
    }
}

fn content_type(headers: &HeaderMap) -> HResult<Option<String>> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let first = values.next();
    if values.next().is_some() {
        let mut res =
            (StatusCode::BAD_REQUEST, "Multiple Content-Type headers not allowed").into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        return Err(res);
    }
    Ok(first.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()))
}

fn too_large() -> Response {
    let mut res = message(StatusCode::PAYLOAD_TOO_LARGE, "Payload too large");
    res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// Percent-decodes a query component (`+` is a space). Bytes that are not UTF-8 become NUL,
/// which no Kong validator accepts, so that such arguments are rejected instead of being
/// silently repaired into valid text.
fn decode_component(s: &str) -> String {
    let replaced = s.replace('+', " ");
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(&replaced).collect();
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).replace('\u{FFFD}', "\0"),
    }
}

fn query_pairs(query: Option<&str>) -> Vec<(String, Value)> {
    match query {
        None => Vec::new(),
        Some(q) => q
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode_component(k), Value::String(decode_component(v)))
            })
            .collect(),
    }
}

/// Decodes a multipart body. As in Kong, a body that cannot be parsed (no boundary, truncated
/// parts) is logged and treated as carrying no arguments.
async fn multipart_pairs(ct: &str, bytes: Bytes) -> Vec<(String, Value)> {
    let Ok(boundary) = multer::parse_boundary(ct) else {
        tracing::debug!("multipart body without a boundary: no arguments");
        return Vec::new();
    };
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(bytes) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let mut pairs = Vec::new();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "unparsable multipart body: remaining parts ignored");
                break;
            }
        };
        let Some(name) = field.name().map(str::to_owned) else { continue };
        let is_json = field
            .content_type()
            .is_some_and(|m| m.essence_str().eq_ignore_ascii_case("application/json"));
        let data = match field.bytes().await {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(error = %e, "unparsable multipart part: ignored");
                break;
            }
        };
        let value = if is_json {
            serde_json::from_slice(&data)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&data).into_owned()))
        } else {
            Value::String(String::from_utf8_lossy(&data).into_owned())
        };
        pairs.push((name, value));
    }
    pairs
}

/// Reads and decodes a request with Kong's content-type rules (`before_filter`).
/// `accepts_yaml` is true for `/config`.
pub(crate) async fn read_input(req: axum::extract::Request, accepts_yaml: bool) -> HResult<Input> {
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let query = query_pairs(parts.uri.query());
    if query.len() > MAX_ARGS {
        return Err(message(StatusCode::BAD_REQUEST, "Too many arguments"));
    }
    let needs_body = matches!(method, Method::POST | Method::PUT | Method::PATCH);
    let limit = if accepts_yaml { MAX_CONFIG_BODY } else { MAX_BODY };
    let declared_too_large = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.parse::<u64>().ok())
        .is_some_and(|l| l > limit as u64);
    if declared_too_large {
        drain(body).await;
        return Err(too_large());
    }
    let bytes = read_body(body, limit).await?;
    if !needs_body {
        return Ok(Input { method, query, body: BodyKind::Empty, raw: Bytes::new() });
    }
    // Kong's before_filter compares the media type prefix as sent (case-sensitively).
    let body = match content_type(&parts.headers)? {
        None if bytes.is_empty() => BodyKind::Empty,
        None => return Err(unsupported()),
        Some(ct) if ct.starts_with("application/json") => {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) => BodyKind::Json(v),
                Err(_) => return Err(message(StatusCode::BAD_REQUEST, "Cannot parse JSON body")),
            }
        }
        Some(ct) if ct.starts_with("application/x-www-form-urlencoded") => {
            let pairs: Vec<(String, Value)> = form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect();
            if pairs.len() > MAX_ARGS {
                return Err(message(StatusCode::BAD_REQUEST, "Too many arguments"));
            }
            BodyKind::Form(pairs)
        }
        Some(ct) if ct.starts_with("multipart/form-data") => {
            let pairs = multipart_pairs(&ct, bytes.clone()).await;
            if pairs.len() > MAX_ARGS {
                return Err(message(StatusCode::BAD_REQUEST, "Too many arguments"));
            }
            BodyKind::Form(pairs)
        }
        Some(ct)
            if accepts_yaml
                && (ct.starts_with("application/yaml") || ct.starts_with("text/yaml")) =>
        {
            BodyKind::Yaml
        }
        Some(_) => return Err(unsupported()),
    };
    Ok(Input { method, query, body, raw: bytes })
}

/// Reads and discards what the client still sends of a refused body (bounded in size and
/// time), so that it reads the 413 instead of a reset connection — nginx's lingering close.
async fn drain(body: Body) {
    use http_body_util::BodyExt;
    const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
    let mut body = body;
    let mut seen = 0usize;
    let work = async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                seen += data.len();
                if seen > DRAIN_LIMIT {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), work).await;
}

fn unsupported() -> Response {
    message(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type")
}

async fn read_body(body: Body, limit: usize) -> HResult<Bytes> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    loop {
        match body.frame().await {
            None => return Ok(buf.freeze()),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    if buf.len() + data.len() > limit {
                        drain(body).await;
                        return Err(too_large());
                    }
                    buf.extend_from_slice(data);
                }
            }
            Some(Err(_)) => return Err(message(StatusCode::BAD_REQUEST, "Bad request")),
        }
    }
}

/// `ngx.escape_uri`: percent-encodes everything but unreserved characters.
pub(crate) fn escape_uri(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
