//! The pure logic of Kong's `hmac-auth` plugin (`kong/plugins/hmac-auth/access.lua`, Kong 3.9):
//! parsing the `Authorization` / `Proxy-Authorization` value, the `Date` / `X-Date` clock-skew
//! check, the signing string, the HMAC check and the `Digest` body check, in Kong's order and
//! with Kong's statuses and messages.
//!
//! It owns no HTTP types, no store and no consumer loading: the plugin glue hands it an
//! [`HmacRequest`] (a header lookup, the request line parts, the buffered body, the clock) and a
//! credential finder, and turns the [`HmacSuccess`] / [`HmacFailure`] into Kong's side effects
//! (`kong.client.authenticate`, the `X-Consumer-*` and `X-Credential-Identifier` headers, the
//! anonymous fallback, `kong.response.error(401, message)` with `WWW-Authenticate`).
//!
//! The date parser ([`parse_http_date`]) and the base64 decoder are ports of nginx's
//! `ngx_parse_http_time` and `ngx_decode_base64`, because Kong calls `ngx.parse_http_time` and
//! `ngx.decode_base64` and their leniency is part of what a client can send.
//!
//! Must not depend on the proxy, the store or the Admin API.

use std::fmt;
use std::sync::OnceLock;

use base64::Engine as _;
use regex::bytes::Regex;
use ring::{digest, hmac};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// 401 body when neither `Authorization` nor `Proxy-Authorization` is sent.
pub const MSG_UNAUTHORIZED: &str = "Unauthorized";
/// 401 body when neither `X-Date` nor `Date` parses within `clock_skew` of now.
pub const MSG_DATE_REQUIRED: &str = "HMAC signature cannot be verified, a valid date or x-date \
                                     header is required for HMAC Authentication";
/// 401 body for an unparsable authorization value, an enforced header not signed, an algorithm
/// not allowed, or an unknown username (Kong's `SIGNATURE_NOT_VALID`).
pub const MSG_SIGNATURE_NOT_VALID: &str = "HMAC signature cannot be verified";
/// 401 body for a wrong signature (including a signature that is not base64) and for a failed
/// body digest check (Kong's `SIGNATURE_NOT_SAME`).
pub const MSG_SIGNATURE_NOT_SAME: &str = "HMAC signature does not match";

/// The algorithms Kong's schema allows (`one_of`), which are also the default of `algorithms`.
pub const ALGORITHMS: [&str; 4] = ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"];

/// Authorization values longer than this are not parsed (they count as carrying no hmac
/// parameters). nginx's default `large_client_header_buffers 4 8k`, which Kong keeps, already
/// rejects header lines above 8 KiB, so no request Kong accepts is lost.
pub const MAX_AUTHORIZATION_LEN: usize = 8192;

/// At most this many names in `headers="…"` (Kong has no limit; this bounds the signing string
/// a client can make us build). More is answered like any other invalid parameter set.
pub const MAX_SIGNED_HEADERS: usize = 100;

/// Pseudo header: `@request-target: <lowercased method> <request uri>`.
const REQUEST_TARGET: &str = "@request-target";
/// Pseudo header: `<METHOD> <request uri> HTTP/<x.y>`, without a `name:` prefix.
const REQUEST_LINE: &str = "request-line";

/// An HMAC digest Kong's hmac-auth supports, by its Kong name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HmacAlgorithm {
    /// `hmac-sha1`
    Sha1,
    /// `hmac-sha256`
    Sha256,
    /// `hmac-sha384`
    Sha384,
    /// `hmac-sha512`
    Sha512,
}

impl HmacAlgorithm {
    /// The algorithm for a Kong name (exact and case-sensitive, as Kong's table lookup).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "hmac-sha1" => Some(Self::Sha1),
            "hmac-sha256" => Some(Self::Sha256),
            "hmac-sha384" => Some(Self::Sha384),
            "hmac-sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The Kong name (`hmac-sha256`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "hmac-sha1",
            Self::Sha256 => "hmac-sha256",
            Self::Sha384 => "hmac-sha384",
            Self::Sha512 => "hmac-sha512",
        }
    }

    fn key(self, secret: &[u8]) -> hmac::Key {
        let alg = match self {
            Self::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha384 => hmac::HMAC_SHA384,
            Self::Sha512 => hmac::HMAC_SHA512,
        };
        hmac::Key::new(alg, secret)
    }
}

/// The `config` of an `hmac-auth` plugin instance (Kong's field names and defaults; an explicit
/// JSON `null` also means the default). Field validation and Kong's schema error messages belong
/// to the schema module, not here.
///
/// `hide_credentials`: Kong clears the header it *took the parameters from*, and it does so
/// before the signature is checked, so also on a failure that falls back to `anonymous`. When
/// `Proxy-Authorization` carried parseable parameters, only `Proxy-Authorization` is cleared and
/// `Authorization` goes upstream untouched; otherwise `Authorization` is cleared (even when it
/// did not parse). [`HmacSuccess::clear_header`] and [`HmacFailure::clear_header`] name that
/// header (lowercase) when `hide_credentials` is on.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct HmacConfig {
    /// Clear the credential header before proxying (default false).
    #[serde(default, deserialize_with = "null_as_default")]
    pub hide_credentials: bool,
    /// Allowed distance in seconds between `X-Date`/`Date` and now (default 300, schema `gt 0`).
    #[serde(default = "default_clock_skew", deserialize_with = "null_as_clock_skew")]
    pub clock_skew: f64,
    /// Consumer id or username used when authentication fails (the glue's "logical OR" flow).
    #[serde(default)]
    pub anonymous: Option<String>,
    /// Check `Digest: SHA-256=<base64>` against the body (default false).
    #[serde(default, deserialize_with = "null_as_default")]
    pub validate_request_body: bool,
    /// Header names (exact, case-sensitive) that must appear in `headers="…"` (default `[]`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub enforce_headers: Vec<String>,
    /// Allowed algorithm names (default: all four of [`ALGORITHMS`]).
    #[serde(default = "default_algorithms", deserialize_with = "null_as_algorithms")]
    pub algorithms: Vec<String>,
    /// Realm of the `WWW-Authenticate` header (default none: `hmac`).
    #[serde(default)]
    pub realm: Option<String>,
}

impl Default for HmacConfig {
    fn default() -> Self {
        Self {
            hide_credentials: false,
            clock_skew: default_clock_skew(),
            anonymous: None,
            validate_request_body: false,
            enforce_headers: Vec::new(),
            algorithms: default_algorithms(),
            realm: None,
        }
    }
}

fn default_clock_skew() -> f64 {
    300.0
}

fn default_algorithms() -> Vec<String> {
    ALGORITHMS.iter().map(|a| (*a).to_owned()).collect()
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn null_as_clock_skew<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or_else(default_clock_skew))
}

fn null_as_algorithms<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_else(default_algorithms))
}

/// One `hmacauth_credentials` row (Kong's DAO: `username` unique, it is also the cache key;
/// `secret` is generated by Kong when not given, so every stored row has one).
#[derive(Clone, PartialEq, Eq)]
pub struct HmacCredential {
    /// The credential's id.
    pub id: String,
    /// The username clients put in `username="…"` (also `X-Credential-Identifier`).
    pub username: String,
    /// The HMAC key, used as its UTF-8 bytes.
    pub secret: String,
    /// The owning consumer's id.
    pub consumer_id: String,
}

impl fmt::Debug for HmacCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacCredential")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .field("consumer_id", &self.consumer_id)
            .finish()
    }
}

impl HmacCredential {
    /// Reads a row as the Admin API shows it:
    /// `{"id":…,"username":…,"secret":…,"consumer":{"id":…},…}` (a bare consumer id string is
    /// accepted too). Other fields (`created_at`, `tags`) are ignored.
    pub fn from_row(row: &Value) -> Result<Self, String> {
        let text = |field: &str| -> Result<String, String> {
            match row.get(field) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Null) | None => {
                    Err(format!("hmacauth_credentials row: '{field}' is missing"))
                }
                Some(_) => Err(format!("hmacauth_credentials row: '{field}' is not a string")),
            }
        };
        let consumer_id = match row.get("consumer") {
            Some(Value::Object(o)) => match o.get("id") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err("hmacauth_credentials row: 'consumer.id' is missing".to_owned()),
            },
            Some(Value::String(s)) => s.clone(),
            _ => return Err("hmacauth_credentials row: 'consumer' is missing".to_owned()),
        };
        Ok(Self {
            id: text("id")?,
            username: text("username")?,
            secret: text("secret")?,
            consumer_id,
        })
    }
}

/// What the plugin needs from the client request.
pub struct HmacRequest<'a> {
    /// The method as received (`GET`); used as is in `request-line`, lowercased in
    /// `@request-target`.
    pub method: &'a str,
    /// The path as received, percent-encoded, without the query (Kong signs
    /// `kong.request.get_path_with_query()`, i.e. nginx's raw `$request_uri`).
    pub path: &'a str,
    /// The raw query without the `?`; `Some("")` for a request target ending in a bare `?`
    /// (which Kong signs as `/path?`), `None` when there was no `?`.
    pub query: Option<&'a str>,
    /// The HTTP version: `1.0`, `1.1`, `2`, `2.0`, `3`… It is rendered as Kong's
    /// `string.format("HTTP/%.01f", version)`, so `2` becomes `HTTP/2.0`.
    pub http_version: &'a str,
    /// The value `kong.request.get_header(name)` gives: matched case-insensitively, the first
    /// value when the header is repeated, `Some("")` for a header sent empty. Names reach it
    /// lowercased and with `_` turned into `-` (nginx's `$http_*` rule, so a client listing
    /// `x_date` signs the `X-Date` header); pseudo names such as `@request-target` are asked
    /// too, and should find nothing.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// The whole request body, as `kong.request.get_raw_body()` gives it: `Some(b"")` when there
    /// is no body, `None` when it could not be read into memory (in Kong, a body larger than
    /// `client_body_buffer_size`, 8k by default, is spooled to a file and then always fails the
    /// digest check). Only read when `validate_request_body` is on.
    pub body: Option<&'a [u8]>,
    /// Now, in Unix seconds (`ngx.time()`).
    pub now_unix_secs: i64,
}

impl HmacRequest<'_> {
    fn get_header(&self, name: &str) -> Option<String> {
        if name.is_empty() {
            return None;
        }
        let key: String =
            name.chars().map(|c| if c == '_' { '-' } else { c.to_ascii_lowercase() }).collect();
        (self.header)(&key)
    }

    /// The request URI as Kong signs it: `path`, then `?query` when a `?` was sent.
    pub fn request_uri(&self) -> String {
        match self.query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.to_owned(),
        }
    }
}

/// The parameters of an `hmac username="…", algorithm="…", headers="…", signature="…"` value,
/// borrowed from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HmacParams<'v> {
    /// `username="…"` (never empty).
    pub username: &'v str,
    /// `algorithm="…"`, not checked here.
    pub algorithm: &'v str,
    /// `headers="…"` split on single spaces, empty names kept (Kong 3.9 uses penlight's
    /// `stringx.split(s, " ")`).
    pub headers: Vec<&'v str>,
    /// `signature="…"`, still base64.
    pub signature: &'v str,
}

fn hmac_regex() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        // Kong's PCRE pattern, run without the `u` flag: `.` is any byte but `\n` and `\s` is
        // ASCII whitespace. Not anchored and greedy: the first match in the value wins and each
        // group extends to the last position that still lets the rest match (leftmost-first
        // semantics, which the regex crate shares with PCRE).
        Regex::new(concat!(
            r#"(?-u)\s*[Hh]mac\s*username="(.+)",\s*algorithm="(.+)","#,
            r#"\s*headers="(.+)",\s*signature="(.+)""#
        ))
        .ok()
    })
    .as_ref()
}

/// Parses an authorization value the way Kong does (`retrieve_hmac_fields`): the pattern
/// `\s*[Hh]mac\s*username="(.+)",\s*algorithm="(.+)",\s*headers="(.+)",\s*signature="(.+)"`,
/// searched anywhere in the value, case-sensitive parameter names in this fixed order, each
/// value at least one character. So `Hmac`, `hmacusername=`, any whitespace after the commas
/// and text before `hmac` (even a stray `"`) are accepted; `HMAC`, a missing comma, other
/// parameter names or another order are not. Values longer than [`MAX_AUTHORIZATION_LEN`] are
/// not parsed.
pub fn parse_authorization(value: &str) -> Option<HmacParams<'_>> {
    if value.len() > MAX_AUTHORIZATION_LEN {
        return None;
    }
    let caps = hmac_regex()?.captures(value.as_bytes())?;
    let group = |i: usize| caps.get(i).and_then(|m| value.get(m.range()));
    Some(HmacParams {
        username: group(1)?,
        algorithm: group(2)?,
        headers: split_header_list(group(3)?),
        signature: group(4)?,
    })
}

/// penlight's `stringx.split(s, " ")` as Kong 3.9 uses it: plain split on each space, empty
/// pieces kept (`"a  b"` gives `a`, ``, `b`; a trailing space gives a trailing empty name),
/// except that a lone `" "` gives a single empty name. (Kong's later `splitn` gives two.)
fn split_header_list(s: &str) -> Vec<&str> {
    if s == " " {
        return vec![""];
    }
    s.split(' ').collect()
}

/// Builds the string Kong signs for `headers` (`create_hash`), lines joined by `\n`, no
/// trailing newline. For each name, in order:
/// - a header the request has (see [`HmacRequest::header`]): `name: value`, with the name as
///   the client wrote it;
/// - else `@request-target`: `@request-target: <lowercased method> <request uri>`;
/// - else `request-line`: `<METHOD> <request uri> HTTP/<version with one decimal>`;
/// - else `name:` (an absent header is signed as empty, with no space).
///
/// A real header named `request-line` or `@request-target` wins over the pseudo header, as in
/// Kong.
pub fn signing_string(req: &HmacRequest<'_>, headers: &[&str]) -> String {
    let mut out = String::new();
    for (i, name) in headers.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match req.get_header(name) {
            Some(value) => {
                out.push_str(name);
                out.push_str(": ");
                out.push_str(&value);
            }
            None if *name == REQUEST_TARGET => {
                out.push_str(REQUEST_TARGET);
                out.push_str(": ");
                out.push_str(&req.method.to_ascii_lowercase());
                out.push(' ');
                out.push_str(&req.request_uri());
            }
            None if *name == REQUEST_LINE => {
                out.push_str(req.method);
                out.push(' ');
                out.push_str(&req.request_uri());
                out.push_str(" HTTP/");
                out.push_str(&http_version_label(req.http_version));
            }
            None => {
                out.push_str(name);
                out.push(':');
            }
        }
    }
    out
}

/// `%.01f` of the version number (`2` → `2.0`, `1.1` → `1.1`); a string that is not a number
/// is used as is (Kong would fail with a 500 there).
fn http_version_label(version: &str) -> String {
    match version.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => format!("{v:.1}"),
        _ => version.to_owned(),
    }
}

/// The base64 (standard alphabet, padded) HMAC of `signing_string` with `secret`, as clients
/// put it in `signature="…"`; `None` for an algorithm name Kong does not know.
pub fn sign(alg: &str, secret: &[u8], signing_string: &str) -> Option<String> {
    let alg = HmacAlgorithm::from_name(alg)?;
    let tag = hmac::sign(&alg.key(secret), signing_string.as_bytes());
    Some(base64::engine::general_purpose::STANDARD.encode(tag.as_ref()))
}

/// An authorization value in the form Kong's documentation shows:
/// `hmac username="…", algorithm="…", headers="a b", signature="…"`.
pub fn authorization_value(
    username: &str,
    algorithm: &str,
    headers: &[&str],
    signature: &str,
) -> String {
    format!(
        "hmac username=\"{username}\", algorithm=\"{algorithm}\", headers=\"{}\", \
         signature=\"{signature}\"",
        headers.join(" ")
    )
}

/// The `Digest` value Kong expects for a body: `SHA-256=` and the padded standard base64 of its
/// SHA-256 (compared as an exact, case-sensitive string).
pub fn body_digest(body: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, body);
    format!("SHA-256={}", base64::engine::general_purpose::STANDARD.encode(d.as_ref()))
}

/// The `WWW-Authenticate` value Kong 3.8+ sends with every hmac-auth 401: `hmac realm="<realm>"`
/// (realm inserted verbatim) or plain `hmac` without a realm.
pub fn www_authenticate(realm: Option<&str>) -> String {
    match realm {
        Some(r) => format!("hmac realm=\"{r}\""),
        None => "hmac".to_owned(),
    }
}

/// A successful authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HmacSuccess<'c> {
    /// The matching credential; the glue loads `consumer_id` and sets the consumer headers
    /// (`X-Credential-Identifier` is the credential's `username`).
    pub credential: &'c HmacCredential,
    /// With `hide_credentials`, the request header to clear upstream (`authorization` or
    /// `proxy-authorization`); `None` otherwise.
    pub clear_header: Option<&'static str>,
}

/// A failed authentication: Kong answers `status` with `{"message": message}` and the
/// `WWW-Authenticate` header, unless `anonymous` is set (then the glue falls back to it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HmacFailure {
    /// Always 401.
    pub status: u16,
    /// One of the `MSG_*` constants.
    pub message: &'static str,
    /// The `WWW-Authenticate` value ([`www_authenticate`] of the configured realm).
    pub www_authenticate: String,
    /// With `hide_credentials`, the request header Kong had already cleared when it failed
    /// (matters in the anonymous flow, where the request is still proxied); `None` when the
    /// failure came before the parameters were read or `hide_credentials` is off.
    pub clear_header: Option<&'static str>,
}

impl fmt::Display for HmacFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for HmacFailure {}

/// Runs Kong's `do_authentication` checks, in Kong's order:
/// 1. neither `Authorization` nor `Proxy-Authorization` present (an empty value counts as
///    present) → [`MSG_UNAUTHORIZED`];
/// 2. `X-Date`, else `Date`, must parse ([`parse_http_date`]) within `clock_skew` of now; the
///    other header is tried when the first is absent, unparsable or skewed →
///    [`MSG_DATE_REQUIRED`];
/// 3. parameters from `Proxy-Authorization` if it parses ([`parse_authorization`]), else from
///    `Authorization`; none → [`MSG_SIGNATURE_NOT_VALID`];
/// 4. every `enforce_headers` name listed in `headers` → else [`MSG_SIGNATURE_NOT_VALID`];
/// 5. `algorithm` one of `algorithms` → else [`MSG_SIGNATURE_NOT_VALID`];
/// 6. `find(username)` → else [`MSG_SIGNATURE_NOT_VALID`];
/// 7. the signature (nginx base64, see [`sign`]) equals the HMAC of [`signing_string`] →
///    else [`MSG_SIGNATURE_NOT_SAME`] (constant-time comparison);
/// 8. with `validate_request_body`: no `Digest` header requires an empty body, otherwise it
///    must equal [`body_digest`] of the body → else [`MSG_SIGNATURE_NOT_SAME`]. `Digest` does
///    not have to be among the signed headers.
///
/// `find` looks a credential up by username (Kong's cache key); a store error is the glue's
/// 500, not a `None`.
pub fn authenticate<'c>(
    req: &HmacRequest<'_>,
    conf: &HmacConfig,
    find: impl Fn(&str) -> Option<&'c HmacCredential>,
) -> Result<HmacSuccess<'c>, HmacFailure> {
    let fail = |message: &'static str, clear_header: Option<&'static str>| HmacFailure {
        status: 401,
        message,
        www_authenticate: www_authenticate(conf.realm.as_deref()),
        clear_header,
    };

    let authorization = req.get_header("authorization");
    let proxy_authorization = req.get_header("proxy-authorization");
    if authorization.is_none() && proxy_authorization.is_none() {
        return Err(fail(MSG_UNAUTHORIZED, None));
    }

    if !(clock_skew_ok(req, "x-date", conf.clock_skew)
        || clock_skew_ok(req, "date", conf.clock_skew))
    {
        return Err(fail(MSG_DATE_REQUIRED, None));
    }

    let (params, source) = match proxy_authorization.as_deref().and_then(parse_authorization) {
        Some(p) => (Some(p), "proxy-authorization"),
        None => (authorization.as_deref().and_then(parse_authorization), "authorization"),
    };
    let clear_header = conf.hide_credentials.then_some(source);

    let Some(params) = params else {
        return Err(fail(MSG_SIGNATURE_NOT_VALID, clear_header));
    };
    if params.headers.len() > MAX_SIGNED_HEADERS {
        return Err(fail(MSG_SIGNATURE_NOT_VALID, clear_header));
    }
    let all_enforced_signed =
        conf.enforce_headers.iter().all(|h| params.headers.contains(&h.as_str()));
    if !all_enforced_signed {
        return Err(fail(MSG_SIGNATURE_NOT_VALID, clear_header));
    }
    if !conf.algorithms.iter().any(|a| a == params.algorithm) {
        return Err(fail(MSG_SIGNATURE_NOT_VALID, clear_header));
    }
    // An allowed name Kong's table lacks would be a 500 in Kong; the schema rules it out.
    let Some(algorithm) = HmacAlgorithm::from_name(params.algorithm) else {
        return Err(fail(MSG_SIGNATURE_NOT_VALID, clear_header));
    };

    let Some(credential) = find(params.username) else {
        return Err(fail(MSG_SIGNATURE_NOT_VALID, clear_header));
    };

    let Some(given) = nginx_decode_base64(params.signature) else {
        return Err(fail(MSG_SIGNATURE_NOT_SAME, clear_header));
    };
    let data = signing_string(req, &params.headers);
    let key = algorithm.key(credential.secret.as_bytes());
    if hmac::verify(&key, data.as_bytes(), &given).is_err() {
        return Err(fail(MSG_SIGNATURE_NOT_SAME, clear_header));
    }

    if conf.validate_request_body && !body_ok(req) {
        return Err(fail(MSG_SIGNATURE_NOT_SAME, clear_header));
    }

    Ok(HmacSuccess { credential, clear_header })
}

fn clock_skew_ok(req: &HmacRequest<'_>, header: &str, allowed: f64) -> bool {
    let Some(value) = req.get_header(header) else {
        return false;
    };
    let Some(t) = parse_http_date(&value) else {
        return false;
    };
    let skew = (i128::from(req.now_unix_secs) - i128::from(t)).abs();
    // Kong fails when `abs(time() - t) > clock_skew`; the skew is whole seconds.
    skew as f64 <= allowed
}

fn body_ok(req: &HmacRequest<'_>) -> bool {
    let Some(body) = req.body else {
        return false;
    };
    match req.get_header("digest") {
        None => body.is_empty(),
        Some(given) => given == body_digest(body),
    }
}

/// nginx's `ngx_decode_base64` (what `ngx.decode_base64` runs): standard alphabet, decoding
/// stops at the first `=` and ignores everything after it, padding is optional, leftover bits
/// are dropped; a character outside the alphabet before the first `=`, or a length of 4n+1,
/// fails.
fn nginx_decode_base64(s: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u8> {
        match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let len = bytes.iter().position(|&c| c == b'=').unwrap_or(bytes.len());
    let vals: Vec<u8> = bytes[..len].iter().map(|&c| sextet(c)).collect::<Option<_>>()?;
    if vals.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(vals.len() * 3 / 4);
    for chunk in vals.chunks(4) {
        let v = |i: usize| chunk.get(i).copied().unwrap_or(0);
        if chunk.len() > 1 {
            out.push((v(0) << 2) | (v(1) >> 4));
        }
        if chunk.len() > 2 {
            out.push((v(1) << 4) | (v(2) >> 2));
        }
        if chunk.len() > 3 {
            out.push((v(2) << 6) | v(3));
        }
    }
    Some(out)
}

/// Parses an HTTP date exactly as nginx's `ngx_parse_http_time` (Kong's `ngx.parse_http_time`),
/// to Unix seconds:
/// - `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate / RFC 1123),
/// - `Sunday, 06-Nov-94 08:49:37 GMT` (RFC 850; two-digit years below 70 are 20xx),
/// - `Sun Nov  6 08:49:37 1994` (asctime).
///
/// Like nginx it is lenient: the weekday is not checked, nor anything after the seconds (or
/// after the year in asctime form), so the zone is ignored; months are recognised by a letter
/// or two (`Jxx` that is not `Ja?`/`J?n` is July); day 0 is accepted. Hours above 23, minutes or
/// seconds above 59, day numbers past the month's end and Feb 29 of non-leap years fail. A
/// result of -1 is `None`, as in Lua.
pub fn parse_http_date(value: &str) -> Option<i64> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Form {
        Unknown,
        Rfc822,
        Rfc850,
        Asctime,
    }
    const MDAY: [i64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

    let b = value.as_bytes();
    let end = b.len();
    // nginx reads through a pointer; past the end it meets the string's NUL, which no check
    // accepts, so 0 stands in for it.
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let digit = |i: usize| at(i).is_ascii_digit();
    let num = |i: usize| i64::from(at(i).wrapping_sub(b'0'));
    let left = |p: usize| end.saturating_sub(p);

    let mut form = Form::Unknown;
    let mut p = 0;
    while p < end {
        if b[p] == b',' {
            break;
        }
        if b[p] == b' ' {
            form = Form::Asctime;
            break;
        }
        p += 1;
    }
    p += 1;
    while p < end && b[p] == b' ' {
        p += 1;
    }
    if left(p) < 18 {
        return None;
    }

    let mut day = 0;
    if form != Form::Asctime {
        if !digit(p) || !digit(p + 1) {
            return None;
        }
        day = num(p) * 10 + num(p + 1);
        p += 2;
        match at(p) {
            b' ' => {
                if left(p) < 18 {
                    return None;
                }
                form = Form::Rfc822;
            }
            b'-' => form = Form::Rfc850,
            _ => return None,
        }
        p += 1;
    }

    let month: usize = match at(p) {
        b'J' if at(p + 1) == b'a' => 0,
        b'J' if at(p + 2) == b'n' => 5,
        b'J' => 6,
        b'F' => 1,
        b'M' if at(p + 2) == b'r' => 2,
        b'M' => 4,
        b'A' if at(p + 1) == b'p' => 3,
        b'A' => 7,
        b'S' => 8,
        b'O' => 9,
        b'N' => 10,
        b'D' => 11,
        _ => return None,
    };
    p += 3;
    if (form == Form::Rfc822 && at(p) != b' ') || (form == Form::Rfc850 && at(p) != b'-') {
        return None;
    }
    p += 1;

    let mut year = 0;
    match form {
        Form::Rfc822 => {
            if !(digit(p) && digit(p + 1) && digit(p + 2) && digit(p + 3)) {
                return None;
            }
            year = num(p) * 1000 + num(p + 1) * 100 + num(p + 2) * 10 + num(p + 3);
            p += 4;
        }
        Form::Rfc850 => {
            if !(digit(p) && digit(p + 1)) {
                return None;
            }
            year = num(p) * 10 + num(p + 1);
            year += if year < 70 { 2000 } else { 1900 };
            p += 2;
        }
        Form::Asctime | Form::Unknown => {}
    }

    if form == Form::Asctime {
        if at(p) == b' ' {
            p += 1;
        }
        if !digit(p) {
            return None;
        }
        day = num(p);
        p += 1;
        if at(p) != b' ' {
            if !digit(p) {
                return None;
            }
            day = day * 10 + num(p);
            p += 1;
        }
        if left(p) < 14 {
            return None;
        }
    }

    if at(p) != b' ' {
        return None;
    }
    p += 1;
    if !(digit(p) && digit(p + 1)) {
        return None;
    }
    let hour = num(p) * 10 + num(p + 1);
    p += 2;
    if at(p) != b':' {
        return None;
    }
    p += 1;
    if !(digit(p) && digit(p + 1)) {
        return None;
    }
    let min = num(p) * 10 + num(p + 1);
    p += 2;
    if at(p) != b':' {
        return None;
    }
    p += 1;
    if !(digit(p) && digit(p + 1)) {
        return None;
    }
    let sec = num(p) * 10 + num(p + 1);

    if form == Form::Asctime {
        p += 2;
        if at(p) != b' ' {
            return None;
        }
        p += 1;
        if !(digit(p) && digit(p + 1) && digit(p + 2) && digit(p + 3)) {
            return None;
        }
        year = num(p) * 1000 + num(p + 1) * 100 + num(p + 2) * 10 + num(p + 3);
    }

    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    if day == 29 && month == 1 {
        if year % 4 != 0 || (year % 100 == 0 && year % 400 != 0) {
            return None;
        }
    } else if day > MDAY[month] {
        return None;
    }

    // Gauss' formula on a year starting March 1st, months from 1, as nginx computes it.
    let mut m = month as i64 - 1;
    if m <= 0 {
        m += 12;
        year -= 1;
    }
    let days =
        365 * year + year / 4 - year / 100 + year / 400 + 367 * m / 12 - 30 + day - 1 - 719_527
            + 31
            + 28;
    let t = days * 86_400 + hour * 3_600 + min * 60 + sec;
    (t != -1).then_some(t)
}

/// Formats Unix seconds as an IMF-fixdate (`Tue, 14 Nov 2023 22:13:20 GMT`), the form Kong's
/// own tests send in `Date`; for tools and tests that build signed requests.
pub fn http_date(unix_secs: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = WEEKDAYS[days.rem_euclid(7) as usize];
    let month_name = MONTHS[(month - 1).clamp(0, 11) as usize];
    format!(
        "{weekday}, {day:02} {month_name} {year:04} {:02}:{:02}:{:02} GMT",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const NOW: i64 = 1_700_000_000;
    const DATE: &str = "Tue, 14 Nov 2023 22:13:20 GMT";
    /// Kong's spec signing string for `headers="date content-md5 request-line"`.
    const SPEC_SS: &str =
        "date: Tue, 14 Nov 2023 22:13:20 GMT\ncontent-md5: md5\nGET /request HTTP/1.1";
    const SPEC_HEADERS: &str = "date content-md5 request-line";

    fn bob() -> HmacCredential {
        HmacCredential {
            id: "c0a8d8d6-0000-4000-8000-000000000001".into(),
            username: "bob".into(),
            secret: "secret".into(),
            consumer_id: "c0a8d8d6-0000-4000-8000-0000000000aa".into(),
        }
    }

    /// A request under test: headers by lowercase name, the rest of `HmacRequest` as data.
    struct Req {
        method: &'static str,
        path: &'static str,
        query: Option<&'static str>,
        version: &'static str,
        headers: HashMap<String, String>,
        body: Option<Vec<u8>>,
        now: i64,
    }

    impl Req {
        fn get(path: &'static str) -> Self {
            Self {
                method: "GET",
                path,
                query: None,
                version: "1.1",
                headers: HashMap::new(),
                body: Some(Vec::new()),
                now: NOW,
            }
        }

        fn h(mut self, name: &str, value: &str) -> Self {
            self.headers.insert(name.to_ascii_lowercase(), value.to_owned());
            self
        }

        fn with<T>(&self, f: impl FnOnce(&HmacRequest<'_>) -> T) -> T {
            let lookup = |n: &str| self.headers.get(&n.to_ascii_lowercase()).cloned();
            let req = HmacRequest {
                method: self.method,
                path: self.path,
                query: self.query,
                http_version: self.version,
                header: &lookup,
                body: self.body.as_deref(),
                now_unix_secs: self.now,
            };
            f(&req)
        }

        fn run(&self, conf: &HmacConfig) -> Result<String, HmacFailure> {
            let cred = bob();
            self.with(|req| {
                authenticate(req, conf, |u| (u == cred.username).then_some(&cred))
                    .map(|s| s.credential.username.clone())
            })
        }

        fn ss(&self, headers: &[&str]) -> String {
            self.with(|req| signing_string(req, headers))
        }

        /// Signs `headers` with `alg` and the given secret into `Authorization`.
        fn signed(self, alg: &str, secret: &str, headers: &[&str]) -> Self {
            let sig = sign(alg, secret.as_bytes(), &self.ss(headers)).unwrap();
            let value = authorization_value("bob", alg, headers, &sig);
            self.h("authorization", &value)
        }
    }

    fn conf() -> HmacConfig {
        HmacConfig { clock_skew: 3000.0, ..HmacConfig::default() }
    }

    fn msg(r: Result<String, HmacFailure>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(f) => {
                assert_eq!(f.status, 401);
                f.message
            }
        }
    }

    fn spec_req() -> Req {
        Req::get("/request").h("date", DATE).h("content-md5", "md5")
    }

    #[test]
    fn signs_like_openssl_for_each_algorithm() {
        // Expected values computed independently (Python hmac) for Kong's spec signing string.
        let cases = [
            ("hmac-sha1", "2TEOKfUpqBKYv8Y2XRER5hRUhYQ="),
            ("hmac-sha256", "oJVF+jPnXy/vLV7r0ocRfxri9NZGWuoiW/upPiS/wXU="),
            ("hmac-sha384", "lKd4Qb9iS64aIvsyBbckpBWNApwVTEqb4U9l8XQDECBA6hrmO3m1xGRRstYZSRCn"),
            (
                "hmac-sha512",
                concat!(
                    "/vIXwGsL9lPpyr2LK8owTEXJd1RlP3vwPD5RAyCWY9bbKbYMYM+",
                    "Fr2MKAVh4c3JWP/G9xZuIaCYFMKKRVGBCcA=="
                ),
            ),
        ];
        let r = spec_req();
        assert_eq!(r.ss(&SPEC_HEADERS.split(' ').collect::<Vec<_>>()), SPEC_SS);
        for (alg, expected) in cases {
            assert_eq!(sign(alg, b"secret", SPEC_SS).as_deref(), Some(expected), "{alg}");
            let value = format!(
                "hmac username=\"bob\",  algorithm=\"{alg}\", headers=\"{SPEC_HEADERS}\", \
                 signature=\"{expected}\""
            );
            let r = spec_req().h("proxy-authorization", &value).h("authorization", "hello");
            assert_eq!(r.run(&conf()), Ok("bob".to_owned()), "{alg}");
        }
        assert_eq!(sign("hmac-md5", b"secret", SPEC_SS), None);
    }

    #[test]
    fn date_only_signature_passes_and_wrong_secret_fails() {
        let r = Req::get("/request").h("date", DATE).signed("hmac-sha1", "secret", &["date"]);
        assert_eq!(msg(r.run(&conf())), "ok");
        let r = Req::get("/request").h("date", DATE).signed("hmac-sha1", "other", &["date"]);
        assert_eq!(msg(r.run(&conf())), MSG_SIGNATURE_NOT_SAME);
    }

    #[test]
    fn tampered_signed_header_fails() {
        let r = spec_req().signed("hmac-sha256", "secret", &["date", "content-md5"]);
        assert_eq!(msg(r.run(&conf())), "ok");
        let r = r.h("content-md5", "md6");
        assert_eq!(msg(r.run(&conf())), MSG_SIGNATURE_NOT_SAME);
    }

    #[test]
    fn request_line_includes_raw_query_and_one_decimal_version() {
        let mut r = spec_req();
        r.path = "/request/some%20value/";
        r.query = Some("name=foo&name=bar");
        assert_eq!(
            r.ss(&["request-line"]),
            "GET /request/some%20value/?name=foo&name=bar HTTP/1.1"
        );
        r.query = Some("");
        r.version = "1.0";
        assert_eq!(r.ss(&["request-line"]), "GET /request/some%20value/? HTTP/1.0");
        r.version = "2";
        r.query = None;
        assert_eq!(r.ss(&["request-line"]), "GET /request/some%20value/ HTTP/2.0");
    }

    #[test]
    fn signed_without_query_fails_when_query_sent() {
        // Kong spec: "should fail with GET with request-line having query param but signed
        // without query param".
        let sig = sign("hmac-sha1", b"secret", SPEC_SS).unwrap();
        let value =
            authorization_value("bob", "hmac-sha1", &["date", "content-md5", "request-line"], &sig);
        let mut r = spec_req().h("proxy-authorization", &value);
        assert_eq!(msg(r.run(&conf())), "ok");
        r.query = Some("name=foo");
        assert_eq!(msg(r.run(&conf())), MSG_SIGNATURE_NOT_SAME);
    }

    #[test]
    fn request_target_pseudo_header_lowercases_method() {
        // Kong spec: gRPC call with @request-target over HTTP/2.
        let mut r = Req::get("/hello.HelloService/SayHello").h("date", DATE);
        r.method = "POST";
        r.version = "2";
        assert_eq!(
            r.ss(&["date", "@request-target"]),
            format!("date: {DATE}\n@request-target: post /hello.HelloService/SayHello")
        );
        let r = r.signed("hmac-sha1", "secret", &["date", "@request-target"]);
        assert_eq!(msg(r.run(&conf())), "ok");
    }

    #[test]
    fn absent_and_real_headers_in_signing_string() {
        let r = Req::get("/").h("date", DATE).h("request-line", "spoof").h("x-date", "xd");
        // An absent header is `name:`; a real `request-line` header wins; `x_date` finds X-Date
        // but keeps the client's spelling; empty names (from double spaces) are `:`.
        assert_eq!(
            r.ss(&["foo", "request-line", "x_date", "", "Date"]),
            format!("foo:\nrequest-line: spoof\nx_date: xd\n:\nDate: {DATE}")
        );
    }

    #[test]
    fn missing_credentials_is_unauthorized_with_realm() {
        let r = Req::get("/").h("date", DATE);
        let c = HmacConfig { realm: Some("test-realm".into()), ..conf() };
        let err = r.run(&c).unwrap_err();
        assert_eq!(err.message, MSG_UNAUTHORIZED);
        assert_eq!(err.www_authenticate, "hmac realm=\"test-realm\"");
        assert_eq!(err.clear_header, None);
        assert_eq!(www_authenticate(None), "hmac");
        // An empty Authorization counts as present: the date check comes next.
        let r = Req::get("/").h("authorization", "");
        assert_eq!(msg(r.run(&conf())), MSG_DATE_REQUIRED);
    }

    #[test]
    fn messages_are_kongs() {
        assert_eq!(
            MSG_DATE_REQUIRED,
            "HMAC signature cannot be verified, a valid date or x-date header is required for \
             HMAC Authentication"
        );
        assert_eq!(MSG_DATE_REQUIRED.matches("  ").count(), 0);
    }

    #[test]
    fn date_checks() {
        // Missing date.
        let r = Req::get("/").h("authorization", "asd");
        assert_eq!(msg(r.run(&conf())), MSG_DATE_REQUIRED);
        // Skewed date (default 300 s), checked before the authorization is parsed.
        let r = Req::get("/").h("date", &http_date(NOW - 301)).h("authorization", "asd");
        assert_eq!(msg(r.run(&HmacConfig::default())), MSG_DATE_REQUIRED);
        let r = Req::get("/").h("date", &http_date(NOW + 300)).h("authorization", "asd");
        assert_eq!(msg(r.run(&HmacConfig::default())), MSG_SIGNATURE_NOT_VALID);
        // Malformed x-date alone fails; malformed x-date with a good date passes, whichever is
        // signed; a malformed date with a good x-date passes too.
        let r = Req::get("/").h("x-date", "wrong date").h("authorization", "asd");
        assert_eq!(msg(r.run(&conf())), MSG_DATE_REQUIRED);
        let r = Req::get("/").h("x-date", "wrong date").h("date", DATE);
        assert_eq!(msg(r.signed("hmac-sha1", "secret", &["x-date"]).run(&conf())), "ok");
        let r = Req::get("/").h("x-date", DATE).h("date", "wrong date");
        assert_eq!(msg(r.signed("hmac-sha1", "secret", &["date"]).run(&conf())), "ok");
        let r = Req::get("/").h("x-date", DATE);
        assert_eq!(msg(r.signed("hmac-sha1", "secret", &["x-date"]).run(&conf())), "ok");
    }

    #[test]
    fn algorithm_must_be_allowed_and_known() {
        let c = HmacConfig { algorithms: vec!["hmac-sha1".into(), "hmac-sha256".into()], ..conf() };
        let r = spec_req().signed("hmac-sha512", "secret", &["date"]);
        assert_eq!(msg(r.run(&c)), MSG_SIGNATURE_NOT_VALID);
        let r = spec_req().signed("hmac-sha256", "secret", &["date"]);
        assert_eq!(msg(r.run(&c)), "ok");
        // Kong spec "wrong algorithm": hmac-sha.
        let sig = sign("hmac-sha256", b"secret", SPEC_SS).unwrap();
        let v = format!(
            "hmac username=\"bob\",algorithm=\"hmac-sha\",  headers=\"{SPEC_HEADERS}\",\
             signature=\"{sig}\""
        );
        assert_eq!(
            msg(spec_req().h("proxy-authorization", &v).run(&conf())),
            MSG_SIGNATURE_NOT_VALID
        );
    }

    #[test]
    fn enforced_headers_must_be_signed() {
        let c =
            HmacConfig { enforce_headers: vec!["date".into(), "request-line".into()], ..conf() };
        let r = spec_req().signed("hmac-sha1", "secret", &["date", "content-md5"]);
        assert_eq!(msg(r.run(&c)), MSG_SIGNATURE_NOT_VALID);
        let r = spec_req().signed("hmac-sha1", "secret", &["date", "content-md5", "request-line"]);
        assert_eq!(msg(r.run(&c)), "ok");
        // Exact, case-sensitive names.
        let r = spec_req().signed("hmac-sha1", "secret", &["Date", "request-line"]);
        assert_eq!(msg(r.run(&c)), MSG_SIGNATURE_NOT_VALID);
    }

    #[test]
    fn unknown_username_is_not_valid() {
        let sig = sign("hmac-sha1", b"secret", SPEC_SS).unwrap();
        let v = authorization_value("bobb", "hmac-sha1", &["date"], &sig);
        assert_eq!(msg(spec_req().h("authorization", &v).run(&conf())), MSG_SIGNATURE_NOT_VALID);
    }

    #[test]
    fn malformed_authorization_values_from_kongs_spec() {
        let sig = sign("hmac-sha1", b"secret", SPEC_SS).unwrap();
        let not_valid = [
            "asd".to_owned(),
            "hmac :dXNlcm5hbWU6cGFzc3dvcmQ=".to_owned(),
            "hmac username=,algorithm,headers,dXNlcm5hbWU6cGFzc3dvcmQ=".to_owned(),
            "hmac username".to_owned(),
            "this is no hmac token at all is it?".to_owned(),
            format!("hmac algorithm=\"hmac-sha1\",headers=\"date\",signature=\"{sig}\""),
            "hmac username=\"bob\",algorithm=\"hmac-sha1\",headers=\"date\"".to_owned(),
            format!(
                "hmac username=\"\",  algorithm=\"hmac-sha1\", headers=\"{SPEC_HEADERS}\", \
                 signature=\"{sig}\""
            ),
            format!(
                "hmac username=\"bob\",  algorithm=\"hmac-sha1\",   \
                 wrong_header=\"{SPEC_HEADERS}\", \
                 signature=\"{sig}\""
            ),
            format!(
                "hmac username=\"bob\",  algorithm=\"hmac-sha1\",   headers=\"{SPEC_HEADERS}\", \
                 wrong_signature=\"{sig}\""
            ),
            // Missing comma after algorithm.
            format!(
                "hmac username=\"bob\",  algorithm=\"hmac-sha1\" headers=\"{SPEC_HEADERS}\", \
                 signature=\"{sig}\""
            ),
            // Upper-case scheme and parameters in another order.
            format!(
                "HMAC username=\"bob\", algorithm=\"hmac-sha1\", headers=\"{SPEC_HEADERS}\", \
                 signature=\"{sig}\""
            ),
            format!(
                "hmac algorithm=\"hmac-sha1\", username=\"bob\", headers=\"{SPEC_HEADERS}\", \
                 signature=\"{sig}\""
            ),
        ];
        for v in &not_valid {
            let r = spec_req().h("authorization", v);
            assert_eq!(msg(r.run(&conf())), MSG_SIGNATURE_NOT_VALID, "{v}");
            let r = spec_req().h("proxy-authorization", v);
            assert_eq!(msg(r.run(&conf())), MSG_SIGNATURE_NOT_VALID, "{v}");
        }
        // Parsed, but the signature is not base64: "does not match".
        let v = "\"hmac username=\"bob\",algorithm=\"hmac-sha1\",headers=\"date\",\
                 signature=\"not really a base64 encoded value!!!\"";
        assert_eq!(msg(spec_req().h("authorization", v).run(&conf())), MSG_SIGNATURE_NOT_SAME);
    }

    #[test]
    fn accepted_alternative_forms() {
        let sig = sign("hmac-sha1", b"secret", SPEC_SS).unwrap();
        // (text before `username=`, separators after the three commas)
        let forms = [
            ("hmac ", ",", ",  ", ","),
            ("\"hmac ", ",", ",", ","),
            ("Hmac ", ",\t", ", ", ", "),
            ("hmac", ",", ",", ","),
            ("Signature hmac ", ", ", ", ", ", "),
        ];
        for (pre, a, b, c) in forms {
            let v = format!(
                "{pre}username=\"bob\"{a}algorithm=\"hmac-sha1\"{b}headers=\"{SPEC_HEADERS}\"{c}\
                 signature=\"{sig}\""
            );
            assert_eq!(msg(spec_req().h("authorization", &v).run(&conf())), "ok", "{v}");
        }
    }

    #[test]
    fn greedy_groups_and_header_splitting() {
        let p = parse_authorization(
            "hmac username=\"bob\", algorithm=\"hmac-sha1\", headers=\"a  b \", \
             signature=\"xyz\", extra=\"1\"",
        )
        .unwrap();
        assert_eq!(p.username, "bob");
        assert_eq!(p.algorithm, "hmac-sha1");
        assert_eq!(p.headers, vec!["a", "", "b", ""]);
        // The last group runs to the last quote.
        assert_eq!(p.signature, "xyz\", extra=\"1");
        let p = parse_authorization(
            "hmac username=\"bo\", b\", algorithm=\"x\", headers=\" \", signature=\"s\"",
        )
        .unwrap();
        assert_eq!(p.username, "bo\", b");
        assert_eq!(p.headers, vec![""]);
        // Leading spaces in the list give empty names, so the signature cannot match.
        let sig = sign("hmac-sha1", b"secret", SPEC_SS).unwrap();
        let v = format!(
            "hmac username=\"bob\", algorithm=\"hmac-sha1\", headers=\"  {SPEC_HEADERS}\", \
             signature=\"{sig}\""
        );
        assert_eq!(msg(spec_req().h("authorization", &v).run(&conf())), MSG_SIGNATURE_NOT_SAME);
    }

    #[test]
    fn proxy_authorization_is_read_first_and_hidden_header_follows_it() {
        let hide = HmacConfig { hide_credentials: true, ..conf() };
        let good = spec_req().signed("hmac-sha1", "secret", &["date"]);
        let good_value = good.headers["authorization"].clone();

        // Valid proxy-authorization, garbage authorization.
        let r = spec_req().h("proxy-authorization", &good_value).h("authorization", "hello");
        let cred = bob();
        let out = r.with(|req| authenticate(req, &hide, |_| Some(&cred)));
        assert_eq!(out.unwrap().clear_header, Some("proxy-authorization"));

        // Unparsable proxy-authorization, valid authorization.
        let r =
            spec_req().h("proxy-authorization", "hmac username").h("authorization", &good_value);
        let out = r.with(|req| authenticate(req, &hide, |_| Some(&cred)));
        assert_eq!(out.unwrap().clear_header, Some("authorization"));

        // A parsed proxy-authorization is used even when authorization is the valid one.
        let bad = authorization_value("bob", "hmac-sha1", &["date"], "AAAA");
        let r = spec_req().h("proxy-authorization", &bad).h("authorization", &good_value);
        let err = r.with(|req| authenticate(req, &hide, |_| Some(&cred))).unwrap_err();
        assert_eq!(err.message, MSG_SIGNATURE_NOT_SAME);
        assert_eq!(err.clear_header, Some("proxy-authorization"));

        // Nothing parsed: Kong still clears authorization; before parsing, nothing.
        let r = spec_req().h("proxy-authorization", "x");
        let err = r.with(|req| authenticate(req, &hide, |_| Some(&cred))).unwrap_err();
        assert_eq!(
            (err.message, err.clear_header),
            (MSG_SIGNATURE_NOT_VALID, Some("authorization"))
        );
        let r = Req::get("/").h("authorization", "x");
        let err = r.with(|req| authenticate(req, &hide, |_| Some(&cred))).unwrap_err();
        assert_eq!((err.message, err.clear_header), (MSG_DATE_REQUIRED, None));

        // Without hide_credentials nothing is cleared.
        let out = good.with(|req| authenticate(req, &conf(), |_| Some(&cred)));
        assert_eq!(out.unwrap().clear_header, None);
    }

    #[test]
    fn body_digest_validation() {
        let c = HmacConfig { validate_request_body: true, ..conf() };
        let post_body = br#"{"a":"apple","b":"ball"}"#.to_vec();
        let digest = body_digest(&post_body);
        assert_eq!(digest, "SHA-256=s1LCLQj3e+R2YI0RvxPX3m04itVjOmOt42CBkKLiHfI=");
        let post = |body: &[u8], digest: Option<&str>| {
            let mut r = Req::get("/request").h("date", DATE);
            r.method = "POST";
            r.body = Some(body.to_vec());
            if let Some(d) = digest {
                r = r.h("digest", d);
            }
            r
        };

        // Digest present and matching, signed or not.
        let r = post(&post_body, Some(&digest)).signed("hmac-sha1", "secret", &["date", "digest"]);
        assert_eq!(msg(r.run(&c)), "ok");
        let r = post(&post_body, Some(&digest)).signed("hmac-sha1", "secret", &["date"]);
        assert_eq!(msg(r.run(&c)), "ok");
        // Body without digest.
        let r = post(&post_body, None).signed("hmac-sha1", "secret", &["date"]);
        assert_eq!(msg(r.run(&c)), MSG_SIGNATURE_NOT_SAME);
        assert_eq!(msg(r.run(&conf())), "ok");
        // No body and no digest; no body and the empty body's digest.
        let r = post(b"", None).signed("hmac-sha1", "secret", &["date"]);
        assert_eq!(msg(r.run(&c)), "ok");
        let empty = "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        let r = post(b"", Some(empty)).signed("hmac-sha1", "secret", &["date", "digest"]);
        assert_eq!(msg(r.run(&c)), "ok");
        // Tampered body, tampered digest.
        let r = post(b"abc", Some(&digest)).signed("hmac-sha1", "secret", &["date", "digest"]);
        assert_eq!(msg(r.run(&c)), MSG_SIGNATURE_NOT_SAME);
        let spoofed = format!("{digest}spoofed");
        let r = post(&post_body, Some(&spoofed)).signed("hmac-sha1", "secret", &["date", "digest"]);
        assert_eq!(msg(r.run(&c)), MSG_SIGNATURE_NOT_SAME);
        // Body not readable (spooled to disk in Kong).
        let mut r = post(b"", None).signed("hmac-sha1", "secret", &["date"]);
        r.body = None;
        assert_eq!(msg(r.run(&c)), MSG_SIGNATURE_NOT_SAME);
        // A wrong signature is reported before the body.
        let r = post(b"abc", None).signed("hmac-sha1", "nope", &["date"]);
        assert_eq!(msg(r.run(&c)), MSG_SIGNATURE_NOT_SAME);
    }

    #[test]
    fn bounded_inputs() {
        let long = format!(
            "hmac username=\"bob\", algorithm=\"hmac-sha1\", headers=\"date\", signature=\"{}\"",
            "A".repeat(MAX_AUTHORIZATION_LEN)
        );
        assert_eq!(parse_authorization(&long), None);
        assert_eq!(msg(spec_req().h("authorization", &long).run(&conf())), MSG_SIGNATURE_NOT_VALID);
        let many = vec!["date"; MAX_SIGNED_HEADERS + 1];
        let r = spec_req().signed("hmac-sha1", "secret", &many);
        assert_eq!(msg(r.run(&conf())), MSG_SIGNATURE_NOT_VALID);
        let enough = vec!["date"; MAX_SIGNED_HEADERS];
        let r = spec_req().signed("hmac-sha1", "secret", &enough);
        assert_eq!(msg(r.run(&conf())), "ok");
        for garbage in
            ["", "\"", "hmac", "hmac username=\"", "\u{0}\u{ff}", "==========", "h\u{e9}mac"]
        {
            assert_eq!(parse_authorization(garbage), None);
            assert_eq!(parse_http_date(garbage), None);
        }
    }

    #[test]
    fn nginx_base64_leniency() {
        assert_eq!(nginx_decode_base64("aGk="), Some(b"hi".to_vec()));
        assert_eq!(nginx_decode_base64("aGk"), Some(b"hi".to_vec()));
        assert_eq!(nginx_decode_base64("aGk=garbage!"), Some(b"hi".to_vec()));
        assert_eq!(nginx_decode_base64("aGl="), Some(b"hi".to_vec()));
        assert_eq!(nginx_decode_base64(""), Some(Vec::new()));
        assert_eq!(nginx_decode_base64("aGk!"), None);
        assert_eq!(nginx_decode_base64("aGk_"), None);
        assert_eq!(nginx_decode_base64("aGlzb"), None);
        // A valid signature followed by junk after its padding still verifies, as in Kong.
        let sig = sign("hmac-sha1", b"secret", &format!("date: {DATE}")).unwrap();
        let v = authorization_value("bob", "hmac-sha1", &["date"], &format!("{sig}junk"));
        assert_eq!(msg(spec_req().h("authorization", &v).run(&conf())), "ok");
    }

    #[test]
    fn http_date_forms() {
        let cases: [(&str, Option<i64>); 16] = [
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(784_111_777)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", Some(784_111_777)),
            ("Sun Nov  6 08:49:37 1994", Some(784_111_777)),
            ("Sun Nov 06 08:49:37 1994", Some(784_111_777)),
            ("Xyz, 06 Nov 1994 08:49:37", Some(784_111_777)),
            ("Sun, 06 Nov 1994 08:49:37 PST", Some(784_111_777)),
            ("Tue, 29 Feb 2000 00:00:00 GMT", Some(951_782_400)),
            ("Fri, 31-Dec-69 23:59:59 GMT", Some(3_155_759_999)),
            ("Thu, 01-Jan-70 00:00:00 GMT", Some(0)),
            ("Tue, 29 Feb 2100 00:00:00 GMT", None),
            ("Sun, 31 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 24:00:00 GMT", None),
            ("Sun, 6 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Xov 1994 08:49:37 GMT", None),
            ("wrong date", None),
            ("Wed, 31 Dec 1969 23:59:59 GMT", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_http_date(s), want, "{s}");
        }
        assert_eq!(http_date(NOW), DATE);
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        for t in [0, 951_782_400, NOW, 4_102_444_800] {
            assert_eq!(parse_http_date(&http_date(t)), Some(t));
        }
    }

    #[test]
    fn config_and_credential_rows() {
        let c: HmacConfig = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(c, HmacConfig::default());
        assert_eq!(c.clock_skew, 300.0);
        assert_eq!(c.algorithms, ALGORITHMS.to_vec());
        let c: HmacConfig = serde_json::from_value(serde_json::json!({
            "hide_credentials": true, "clock_skew": null, "anonymous": null,
            "validate_request_body": null, "enforce_headers": null, "algorithms": null,
            "realm": "r"
        }))
        .unwrap();
        assert!(c.hide_credentials);
        assert_eq!(c.clock_skew, 300.0);
        assert_eq!(c.algorithms.len(), 4);
        assert_eq!(c.realm.as_deref(), Some("r"));

        let row = serde_json::json!({
            "id": "i", "username": "bob", "secret": "s3cr3t",
            "consumer": {"id": "c"}, "created_at": 1, "tags": null
        });
        let cred = HmacCredential::from_row(&row).unwrap();
        assert_eq!((cred.id.as_str(), cred.consumer_id.as_str()), ("i", "c"));
        assert!(!format!("{cred:?}").contains("s3cr3t"));
        let bad = serde_json::json!({"id": "i", "username": "bob", "consumer": {"id": "c"}});
        assert!(HmacCredential::from_row(&bad).unwrap_err().contains("secret"));
        let bad = serde_json::json!({"id": "i", "username": 1, "secret": "s", "consumer": "c"});
        assert!(HmacCredential::from_row(&bad).unwrap_err().contains("username"));
        assert!(HmacCredential::from_row(&serde_json::json!([])).is_err());
    }
}
