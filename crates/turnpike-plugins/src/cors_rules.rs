//! The pure logic of Kong's `cors` plugin (`kong/plugins/cors/handler.lua`, Kong 3.10): which
//! requests are preflights Kong answers itself, the headers of that answer, and the header
//! edits of the `header_filter` phase. No HTTP types: the plugin glue feeds header values in
//! and applies the returned [`HeaderEdit`]s.
//!
//! Facts reproduced here:
//! - **Preflight** = method `OPTIONS` (exact, case-sensitive), a non-empty `Origin`, and an
//!   `Access-Control-Request-Method` header (present, even empty). Kong then answers `200` with
//!   an empty body, unless `preflight_continue`, in which case the request is proxied. Either
//!   way the `header_filter` part adds nothing for that request.
//! - **Origins**: none or exactly `["*"]` → `Access-Control-Allow-Origin: *` and no `Vary`.
//!   Otherwise `Vary: Origin` is always emitted (set in a preflight, *added* as one more header
//!   line on a proxied response, so an upstream `Vary: Accept-Encoding` stays), then:
//!   - a single entry made only of `[A-Za-z0-9.:/-]` is sent verbatim whatever the request's
//!     `Origin` (even without one);
//!   - otherwise, with a non-empty `Origin`: a `*` anywhere in the list → `*`; else each entry
//!     in order: a *literal* (only `[A-Za-z0-9.:/-]`) must equal the normalized `Origin`; any
//!     other entry is a *regex*, anchored at the start, with `$` appended unless it already
//!     ends with `$` (a leading `^` is dropped). A regex without `:` is matched against the
//!     Origin's host only, one with `:` against the normalized origin. The first match sends
//!     the **normalized** origin (`http://a.test:80` → `http://a.test`);
//!   - no match (or no `Origin`) removes `Access-Control-Allow-Origin`, even the upstream's.
//! - **Normalization** follows LuaSocket 3.0-rc1 `url.parse`: without a `//authority` the
//!   value is kept as is (`example.test`, `null`); otherwise `scheme://host[:port]`, dropping
//!   userinfo, path and fragment, and the port when it is `80` for `http` / `443` for `https`
//!   (case-sensitive). An IPv6 host loses its brackets (`http://[::1]:8080` → `http://::1:8080`).
//!   Kong never compares `Origin` with `Host`.
//! - **Credentials** (`credentials=true`): `Access-Control-Allow-Credentials: true` whenever
//!   the origin is not `*`, even if no origin matched. With `*` and a non-empty `Origin`, the
//!   raw `Origin` replaces `*`, credentials are sent, and `Vary: Origin` is set/added (again).
//! - **Preflight headers**: `Access-Control-Allow-Headers` is `headers` joined with `,`, or the
//!   request's `Access-Control-Request-Headers` echoed, or absent; `Access-Control-Allow-Methods`
//!   is `methods` joined with `,` (default all nine); `Access-Control-Max-Age` is `max_age` as
//!   Lua prints a number; `Access-Control-Allow-Private-Network: true` only when
//!   `private_network` and the request sent `Access-Control-Request-Private-Network: true`.
//! - **Proxied responses**: skipped entirely when `Origin` is absent/empty and
//!   `allow_origin_absent=false`; `Access-Control-Expose-Headers` is `exposed_headers` joined
//!   with `,` when non-empty.
//! - A header set to an empty value is removed (ngx_lua semantics), so an empty echoed
//!   `Access-Control-Request-Headers` yields no `Access-Control-Allow-Headers`.
//!
//! Regexes use the `regex` crate on bytes with Unicode off (PCRE's non-UTF mode, as
//! `ngx.re.find` runs them); PCRE-only syntax is rejected by [`Cors::new`].
//!
//! Depends on `regex` and `serde` only.

use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;

const ALLOW_ORIGIN: &str = "Access-Control-Allow-Origin";
const ALLOW_CREDENTIALS: &str = "Access-Control-Allow-Credentials";
const ALLOW_HEADERS: &str = "Access-Control-Allow-Headers";
const ALLOW_METHODS: &str = "Access-Control-Allow-Methods";
const ALLOW_PRIVATE_NETWORK: &str = "Access-Control-Allow-Private-Network";
const EXPOSE_HEADERS: &str = "Access-Control-Expose-Headers";
const MAX_AGE: &str = "Access-Control-Max-Age";
const VARY: &str = "Vary";

/// The methods Kong allows by default (the schema default of `config.methods`).
pub const DEFAULT_METHODS: [&str; 9] =
    ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT"];

/// The `cors` plugin's `config`, with Kong's field names and defaults. Validation (methods in
/// [`DEFAULT_METHODS`], origins `*` or a PCRE regex) belongs to the schema; [`Cors::new`] only
/// rejects what it cannot compile.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct CorsConfig {
    /// Allowed origins: `*`, literals or regexes. None or empty allows every origin (`*`).
    pub origins: Option<Vec<String>>,
    /// `Access-Control-Allow-Headers`; when unset or empty the request's
    /// `Access-Control-Request-Headers` is echoed.
    pub headers: Option<Vec<String>>,
    /// `Access-Control-Expose-Headers`.
    pub exposed_headers: Option<Vec<String>>,
    /// `Access-Control-Allow-Methods`; `None` (JSON `null`) means all of [`DEFAULT_METHODS`].
    pub methods: Option<Vec<String>>,
    /// `Access-Control-Max-Age`, in seconds (a Lua number: may be fractional).
    pub max_age: Option<f64>,
    /// Send `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
    /// Answer `Access-Control-Request-Private-Network: true` with
    /// `Access-Control-Allow-Private-Network: true`.
    pub private_network: bool,
    /// Proxy preflights to the upstream instead of answering them.
    pub preflight_continue: bool,
    /// Add the CORS headers to responses of requests without an `Origin` (default `true`).
    pub allow_origin_absent: bool,
}

impl Default for CorsConfig {
    fn default() -> CorsConfig {
        CorsConfig {
            origins: None,
            headers: None,
            exposed_headers: None,
            methods: Some(DEFAULT_METHODS.iter().map(|m| m.to_string()).collect()),
            max_age: None,
            credentials: false,
            private_network: false,
            preflight_continue: false,
            allow_origin_absent: true,
        }
    }
}

/// One header change of the `header_filter` phase, applied in order to the response headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Replace every header of that name with this single value (`kong.response.set_header`).
    Set(&'static str, String),
    /// Append one more header line, keeping the existing ones (`kong.response.add_header`).
    Add(&'static str, String),
    /// Remove every header of that name (`kong.response.clear_header`).
    Remove(&'static str),
}

/// The request headers the plugin reads. Each is the first value of that header, if any.
#[derive(Debug, Clone, Copy, Default)]
pub struct CorsRequest<'a> {
    /// The request method as sent (Kong compares it with `OPTIONS` case-sensitively).
    pub method: &'a str,
    /// `Origin`.
    pub origin: Option<&'a str>,
    /// `Access-Control-Request-Method`.
    pub access_control_request_method: Option<&'a str>,
    /// `Access-Control-Request-Headers`.
    pub access_control_request_headers: Option<&'a str>,
    /// `Access-Control-Request-Private-Network`.
    pub access_control_request_private_network: Option<&'a str>,
}

/// What the `access` phase does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preflight {
    /// Not a preflight: proxy it and call [`Cors::response_headers`] in `header_filter`.
    NotPreflight,
    /// A preflight with `preflight_continue=true`: proxy it and add **no** CORS header to the
    /// response.
    Continue,
    /// A preflight Kong answers: `200`, empty body (`Content-Length: 0`), these headers; no
    /// further CORS header is added in `header_filter`.
    Respond(Vec<(&'static str, String)>),
}

#[derive(Debug)]
enum OriginEntry {
    /// A literal entry, stored normalized; compared with the normalized request origin.
    Literal(String),
    /// A regex entry, anchored; matched against the origin's host when `by_host`.
    Pattern { regex: Regex, by_host: bool },
}

#[derive(Debug)]
enum Origins {
    /// No entry, or exactly `["*"]`.
    Any,
    /// A single literal entry, sent verbatim.
    Fixed(String),
    /// Several entries, or a single regex. `wildcard` when `*` is one of them.
    Listed { wildcard: bool, entries: Vec<OriginEntry> },
}

/// A compiled `cors` configuration: origins classified and regexes compiled once, the joined
/// header values precomputed.
#[derive(Debug)]
pub struct Cors {
    origins: Origins,
    credentials: bool,
    private_network: bool,
    preflight_continue: bool,
    allow_origin_absent: bool,
    allow_headers: Option<String>,
    allow_methods: String,
    max_age: Option<String>,
    expose_headers: Option<String>,
}

/// Kong's "does this look like a regex" test: anything outside `[A-Za-z0-9.:/-]`.
fn is_plain(entry: &str) -> bool {
    !entry.is_empty()
        && entry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'/' | b'-'))
}

fn join_non_empty(values: Option<&Vec<String>>) -> Option<String> {
    values.filter(|v| !v.is_empty()).map(|v| v.join(","))
}

/// Compiles a regex origin entry the way the handler adjusts it: `$` appended unless present,
/// a leading `^` dropped, and the whole matched anchored at the start (`ngx.re.find` flag
/// `a`). The `$` binds to the last alternative only, exactly as in Kong.
fn compile_origin_regex(entry: &str) -> Result<OriginEntry, String> {
    let mut adjusted = entry.to_owned();
    if !adjusted.ends_with('$') {
        adjusted.push('$');
    }
    if let Some(rest) = adjusted.strip_prefix('^') {
        adjusted = rest.to_owned();
    }
    let by_host = !adjusted.contains(':');
    let regex = RegexBuilder::new(&format!("^(?:{adjusted})"))
        .unicode(false)
        .build()
        .map_err(|_| format!("'{entry}' is not a valid regex"))?;
    Ok(OriginEntry::Pattern { regex, by_host })
}

/// An origin as the handler's `normalize_origin` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NormalizedOrigin {
    domain: String,
    host: String,
}

/// `normalize_origin` over LuaSocket 3.0-rc1 `url.parse` (only scheme, host and port matter).
fn normalize_origin(origin: &str) -> NormalizedOrigin {
    let unparsed = || NormalizedOrigin { domain: origin.to_owned(), host: origin.to_owned() };
    // Fragment: from the first `#`.
    let rest = origin.split_once('#').map_or(origin, |(before, _)| before);
    // Scheme: `^([%w][%w%+%-%.]*)%:` (ASCII alphanumerics).
    let scheme_len = match rest.bytes().next() {
        Some(b) if b.is_ascii_alphanumeric() => rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            .count(),
        _ => 0,
    };
    let (scheme, rest) = match rest.as_bytes().get(scheme_len) {
        Some(b':') if scheme_len > 0 => (Some(&rest[..scheme_len]), &rest[scheme_len + 1..]),
        _ => (None, rest),
    };
    // Authority: `^//([^/]*)` (it keeps any `?` or `;`).
    let Some(after) = rest.strip_prefix("//") else {
        return unparsed();
    };
    let authority = after.split_once('/').map_or(after, |(a, _)| a);
    // Userinfo: up to the first `@`.
    let authority = authority.split_once('@').map_or(authority, |(_, a)| a);
    // Port: `:([^:%]]*)$`, i.e. after the last `:` unless a `]` follows it (may be empty).
    let (authority, port) = match authority.rfind(':') {
        Some(i) if !authority[i + 1..].contains(']') => {
            (&authority[..i], Some(&authority[i + 1..]))
        }
        _ => (authority, None),
    };
    if authority.is_empty() {
        return unparsed();
    }
    // IPv6 literal: `^%[(.+)%]$` loses its brackets.
    let host = authority
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .filter(|inner| !inner.is_empty())
        .unwrap_or(authority);
    let port = match (scheme, port) {
        (Some("http"), Some("80")) | (Some("https"), Some("443")) => None,
        (_, port) => port,
    };
    let mut domain = String::with_capacity(origin.len());
    if let Some(scheme) = scheme {
        domain.push_str(scheme);
        domain.push_str("://");
    }
    domain.push_str(host);
    if let Some(port) = port {
        domain.push(':');
        domain.push_str(port);
    }
    NormalizedOrigin { domain, host: host.to_owned() }
}

/// `tostring(number)` in LuaJIT: integers without a fraction, otherwise `%.14g`.
fn lua_number_text(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.to_owned();
    }
    if n.is_infinite() {
        return if n < 0.0 { "-inf" } else { "inf" }.to_owned();
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // `%.14g`: 14 significant digits; scientific when the exponent is < -4 or >= 14.
    let sci = format!("{n:.13e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    if !(-4..14).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.unsigned_abs())
    } else {
        let decimals = usize::try_from(13 - exp).unwrap_or(0);
        trim(&format!("{n:.decimals$}"))
    }
}

/// Collects header edits the way the handler's helpers make them.
struct Edits {
    edits: Vec<HeaderEdit>,
    /// `header_filter` adds `Vary`; the preflight (access phase) sets it.
    header_filter: bool,
}

impl Edits {
    fn set(&mut self, name: &'static str, value: impl Into<String>) {
        let value = value.into();
        // ngx_lua: setting a header to an empty string clears it.
        if value.is_empty() {
            self.edits.push(HeaderEdit::Remove(name));
        } else {
            self.edits.push(HeaderEdit::Set(name, value));
        }
    }

    fn vary(&mut self) {
        if self.header_filter {
            self.edits.push(HeaderEdit::Add(VARY, "Origin".to_owned()));
        } else {
            self.set(VARY, "Origin");
        }
    }
}

fn origin_provided(origin: Option<&str>) -> Option<&str> {
    origin.filter(|o| !o.is_empty())
}

impl Cors {
    /// Compiles a configuration: classifies the origins (literal, regex, `*`), compiles the
    /// regexes and joins the header lists. Errors name the entry (`origins[i]: ...`, 1-based).
    pub fn new(config: CorsConfig) -> Result<Cors, String> {
        let origins = match config.origins.as_deref().unwrap_or_default() {
            [] => Origins::Any,
            [only] if only == "*" => Origins::Any,
            [only] if is_plain(only) => Origins::Fixed(only.clone()),
            list => {
                let mut wildcard = false;
                let mut entries = Vec::with_capacity(list.len());
                for (i, entry) in list.iter().enumerate() {
                    let index = i + 1;
                    if entry.is_empty() {
                        return Err(format!("origins[{index}]: length must be at least 1"));
                    }
                    if entry == "*" {
                        wildcard = true;
                    } else if is_plain(entry) {
                        entries.push(OriginEntry::Literal(normalize_origin(entry).domain));
                    } else {
                        entries.push(
                            compile_origin_regex(entry)
                                .map_err(|e| format!("origins[{index}]: {e}"))?,
                        );
                    }
                }
                Origins::Listed { wildcard, entries }
            }
        };
        Ok(Cors {
            origins,
            credentials: config.credentials,
            private_network: config.private_network,
            preflight_continue: config.preflight_continue,
            allow_origin_absent: config.allow_origin_absent,
            allow_headers: join_non_empty(config.headers.as_ref()),
            allow_methods: config
                .methods
                .as_ref()
                .map_or_else(|| DEFAULT_METHODS.join(","), |m| m.join(",")),
            max_age: config.max_age.map(lua_number_text),
            expose_headers: join_non_empty(config.exposed_headers.as_ref()),
        })
    }

    /// The handler's `configure_origin`: returns whether the origin ended up `*` (allow all).
    fn configure_origin(&self, edits: &mut Edits, origin: Option<&str>) -> bool {
        let entries = match &self.origins {
            Origins::Any => {
                edits.set(ALLOW_ORIGIN, "*");
                return true;
            }
            Origins::Fixed(value) => {
                edits.vary();
                edits.set(ALLOW_ORIGIN, value.as_str());
                return false;
            }
            Origins::Listed { wildcard, entries } => {
                edits.vary();
                if *wildcard && origin.is_some() {
                    edits.set(ALLOW_ORIGIN, "*");
                    return true;
                }
                entries
            }
        };
        if let Some(origin) = origin {
            let normalized = normalize_origin(origin);
            let found = entries.iter().any(|entry| match entry {
                OriginEntry::Literal(domain) => *domain == normalized.domain,
                OriginEntry::Pattern { regex, by_host } => {
                    let subject = if *by_host { &normalized.host } else { &normalized.domain };
                    regex.is_match(subject.as_bytes())
                }
            });
            if found {
                edits.set(ALLOW_ORIGIN, normalized.domain);
                return false;
            }
        }
        edits.edits.push(HeaderEdit::Remove(ALLOW_ORIGIN));
        false
    }

    /// The handler's `configure_credentials`.
    fn configure_credentials(&self, edits: &mut Edits, allow_all: bool, origin: Option<&str>) {
        if !self.credentials {
            return;
        }
        if !allow_all {
            edits.set(ALLOW_CREDENTIALS, "true");
            return;
        }
        // `*` cannot go with credentials: echo the request's Origin instead.
        if let Some(origin) = origin {
            edits.vary();
            edits.set(ALLOW_ORIGIN, origin);
            edits.set(ALLOW_CREDENTIALS, "true");
        }
    }

    /// The `access` phase: whether this is a preflight Kong answers, proxies, or not a
    /// preflight at all; for an answered one, the final headers of the `200`.
    pub fn preflight(&self, req: &CorsRequest<'_>) -> Preflight {
        let origin = origin_provided(req.origin);
        if req.method != "OPTIONS"
            || origin.is_none()
            || req.access_control_request_method.is_none()
        {
            return Preflight::NotPreflight;
        }
        if self.preflight_continue {
            return Preflight::Continue;
        }
        let mut edits = Edits { edits: Vec::new(), header_filter: false };
        let allow_all = self.configure_origin(&mut edits, origin);
        self.configure_credentials(&mut edits, allow_all, origin);
        match (&self.allow_headers, req.access_control_request_headers) {
            (Some(headers), _) => edits.set(ALLOW_HEADERS, headers.as_str()),
            (None, Some(requested)) => edits.set(ALLOW_HEADERS, requested),
            (None, None) => edits.edits.push(HeaderEdit::Remove(ALLOW_HEADERS)),
        }
        edits.set(ALLOW_METHODS, self.allow_methods.as_str());
        if let Some(max_age) = &self.max_age {
            edits.set(MAX_AGE, max_age.as_str());
        }
        if self.private_network && req.access_control_request_private_network == Some("true") {
            edits.set(ALLOW_PRIVATE_NETWORK, "true");
        }
        Preflight::Respond(apply(Vec::new(), &edits.edits))
    }

    /// The `header_filter` phase of a request that was not a preflight (see [`Preflight`]):
    /// the edits to apply, in order, to the response headers (upstream's or another plugin's
    /// exit). `origin` is the request's first `Origin` value.
    pub fn response_headers(&self, origin: Option<&str>) -> Vec<HeaderEdit> {
        let origin = origin_provided(origin);
        if origin.is_none() && !self.allow_origin_absent {
            return Vec::new();
        }
        let mut edits = Edits { edits: Vec::new(), header_filter: true };
        let allow_all = self.configure_origin(&mut edits, origin);
        self.configure_credentials(&mut edits, allow_all, origin);
        if let Some(exposed) = &self.expose_headers {
            edits.set(EXPOSE_HEADERS, exposed.as_str());
        }
        edits.edits
    }
}

/// Applies header edits to a header list (names compared case-insensitively), the way the
/// preflight response is built and the way the glue may apply [`Cors::response_headers`].
pub fn apply(
    mut headers: Vec<(&'static str, String)>,
    edits: &[HeaderEdit],
) -> Vec<(&'static str, String)> {
    for edit in edits {
        match edit {
            HeaderEdit::Set(name, value) => {
                headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                headers.push((name, value.clone()));
            }
            HeaderEdit::Add(name, value) => headers.push((name, value.clone())),
            HeaderEdit::Remove(name) => headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name)),
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_METHODS_JOINED: &str = "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT";

    fn cors(config: serde_json::Value) -> Cors {
        Cors::new(serde_json::from_value(config).unwrap()).unwrap()
    }

    fn preflight_req(origin: &str) -> CorsRequest<'_> {
        CorsRequest {
            method: "OPTIONS",
            origin: Some(origin),
            access_control_request_method: Some("GET"),
            ..CorsRequest::default()
        }
    }

    fn respond(cors: &Cors, req: &CorsRequest<'_>) -> Vec<(&'static str, String)> {
        match cors.preflight(req) {
            Preflight::Respond(headers) => headers,
            other => panic!("expected a preflight answer, got {other:?}"),
        }
    }

    fn get<'h>(headers: &'h [(&'static str, String)], name: &str) -> Option<&'h str> {
        headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn all<'h>(headers: &'h [(&'static str, String)], name: &str) -> Vec<&'h str> {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Applies the header_filter edits to an upstream response's headers.
    fn proxied(
        cors: &Cors,
        origin: Option<&str>,
        upstream: &[(&'static str, &str)],
    ) -> Vec<(&'static str, String)> {
        let upstream = upstream.iter().map(|(n, v)| (*n, v.to_string())).collect();
        apply(upstream, &cors.response_headers(origin))
    }

    /// Kong's `regex_testcases` (spec/03-plugins/13-cors/01-access_spec.lua): for each
    /// configuration, origin → expected `Access-Control-Allow-Origin` of the preflight
    /// (`None` = rejected; `Some("=")` = the origin itself).
    #[test]
    fn kong_regex_testcases() {
        type Case = (&'static [&'static str], &'static [(&'static str, Option<&'static str>)]);
        const SAME: Option<&str> = Some("=");
        let cases: &[Case] = &[
            (
                &["foo.test"],
                &[
                    ("http://evil.test", Some("foo.test")),
                    ("http://foo.test", Some("foo.test")),
                    ("http://foo.test.evil.test", Some("foo.test")),
                    ("http://something.foo.test", Some("foo.test")),
                    ("http://evilfoo.test", Some("foo.test")),
                    ("http://foo.test:80", Some("foo.test")),
                    ("http://foo.test:8000", Some("foo.test")),
                    ("https://foo.test:8000", Some("foo.test")),
                    ("http://foo.test:90", Some("foo.test")),
                    ("http://foobtest", Some("foo.test")),
                    ("https://bar.test:1234", Some("foo.test")),
                ],
            ),
            (
                &["https://bar.test:1234"],
                &[
                    ("http://evil.test", Some("https://bar.test:1234")),
                    ("http://foo.test:80", Some("https://bar.test:1234")),
                    ("https://bar.test:1234", Some("https://bar.test:1234")),
                ],
            ),
            (
                &["foo\\.test"],
                &[
                    ("http://evil.test", None),
                    ("http://foo.test", SAME),
                    ("http://foo.test.evil.test", None),
                    ("http://something.foo.test", None),
                    ("http://evilfoo.test", None),
                    ("http://foo.test:80", Some("http://foo.test")),
                    ("http://foo.test:8000", SAME),
                    ("https://foo.test:8000", SAME),
                    ("http://foo.test:90", SAME),
                    ("http://foobtest", None),
                    ("https://bar.test:1234", None),
                ],
            ),
            (
                &["(.*[./])?foo\\.test"],
                &[
                    ("http://evil.test", None),
                    ("http://foo.test", SAME),
                    ("http://foo.test.evil.test", None),
                    ("http://something.foo.test", SAME),
                    ("http://evilfoo.test", None),
                    ("http://foo.test:80", Some("http://foo.test")),
                    ("http://foo.test:8000", SAME),
                    ("https://foo.test:8000", SAME),
                    ("http://foo.test:90", SAME),
                    ("http://foobtest", None),
                    ("https://bar.test:1234", None),
                ],
            ),
            (
                &["(.*[./])?foo\\.test:8000"],
                &[
                    ("http://evil.test", None),
                    ("http://foo.test", None),
                    ("http://foo.test.evil.test", None),
                    ("http://something.foo.test", None),
                    ("http://evilfoo.test", None),
                    ("http://foo.test:80", None),
                    ("http://foo.test:8000", SAME),
                    ("https://foo.test:8000", SAME),
                    ("http://foo.test:90", None),
                    ("http://foobtest", None),
                    ("https://bar.test:1234", None),
                ],
            ),
            (
                &["https://(.*[.])?foo\\.test:8000"],
                &[
                    ("http://evil.test", None),
                    ("http://foo.test", None),
                    ("http://foo.test.evil.test", None),
                    ("http://something.foo.test", None),
                    ("http://foo.test:80", None),
                    ("http://foo.test:8000", None),
                    ("https://foo.test:8000", SAME),
                    ("http://foo.test:90", None),
                    ("http://foobtest", None),
                    ("https://bar.test:1234", None),
                ],
            ),
            (
                &["^http://(.*[.])?foo\\.test(:(80|90))?$"],
                &[
                    ("http://evil.test", None),
                    ("http://foo.test", SAME),
                    ("http://foo.test.evil.test", None),
                    ("http://something.foo.test", SAME),
                    ("http://foo.test:80", Some("http://foo.test")),
                    ("http://foo.test:8000", None),
                    ("https://foo.test:8000", None),
                    ("http://foo.test:90", SAME),
                    ("http://foobtest", None),
                    ("https://bar.test:1234", None),
                ],
            ),
            (
                &["foo.test", "bar.test"],
                &[
                    ("http://evil.test", None),
                    ("http://foo.test", None),
                    ("http://foo.test.evil.test", None),
                    ("http://foo.test:80", None),
                    ("http://foo.test:8000", None),
                    ("http://foo.test:90", None),
                    ("http://foobtest", None),
                    ("https://bar.test:1234", None),
                ],
            ),
            (
                &["http://foo.test", "https://bar.test:1234"],
                &[
                    ("http://evil.test", None),
                    ("http://foo.test", SAME),
                    ("http://foo.test.evil.test", None),
                    ("http://foo.test:80", Some("http://foo.test")),
                    ("http://foo.test:8000", None),
                    ("http://foo.test:90", None),
                    ("http://foobtest", None),
                    ("https://bar.test:1234", SAME),
                ],
            ),
            (
                &["bar.test", "foo\\.test"],
                &[
                    ("http://evil.test", None),
                    ("http://foo.test", SAME),
                    ("http://foo.test.evil.test", None),
                    ("http://something.foo.test", None),
                    ("http://foo.test:80", Some("http://foo.test")),
                    ("http://foo.test:8000", SAME),
                    ("http://foo.test:90", SAME),
                    ("http://foobtest", None),
                    ("https://bar.test:1234", None),
                ],
            ),
            (
                &["bar.test", "(.*\\.)?foo\\.test"],
                &[
                    ("http://evil.test", None),
                    ("http://foo.test", SAME),
                    ("http://foo.test.evil.test", None),
                    ("http://something.foo.test", SAME),
                    ("http://foo.test:80", Some("http://foo.test")),
                    ("http://foo.test:8000", SAME),
                    ("http://foo.test:90", SAME),
                    ("http://foobtest", None),
                    ("https://bar.test:1234", None),
                ],
            ),
            (
                &["bar.test", "(.*[./])?foo\\.test:8000"],
                &[
                    ("http://evil.test", None),
                    ("http://foo.test", None),
                    ("http://foo.test.evil.test", None),
                    ("http://something.foo.test", None),
                    ("http://foo.test:80", None),
                    ("http://foo.test:8000", SAME),
                    ("https://foo.test:8000", SAME),
                    ("http://foo.test:90", None),
                    ("http://foobtest", None),
                    ("https://bar.test:1234", None),
                ],
            ),
            (
                &["bar.test", "https://(.*\\.)?foo\\.test:8000"],
                &[
                    ("http://evil.test", None),
                    ("http://foo.test", None),
                    ("http://foo.test.evil.test", None),
                    ("http://something.foo.test", None),
                    ("http://foo.test:80", None),
                    ("http://foo.test:8000", None),
                    ("https://foo.test:8000", SAME),
                    ("http://foo.test:90", None),
                    ("http://foobtest", None),
                    ("https://bar.test:1234", None),
                ],
            ),
        ];
        for (origins, tests) in cases {
            let c = cors(serde_json::json!({ "origins": origins }));
            for (origin, expected) in *tests {
                let headers = respond(&c, &preflight_req(origin));
                let expected = expected.map(|e| if e == "=" { *origin } else { e });
                let what = format!("origins={origins:?} origin={origin}");
                assert_eq!(get(&headers, ALLOW_ORIGIN), expected, "{what}");
                assert_eq!(get(&headers, VARY), Some("Origin"), "{what}");
                if expected.is_some() {
                    assert_eq!(get(&headers, ALLOW_METHODS), Some(DEFAULT_METHODS_JOINED));
                    for absent in [ALLOW_HEADERS, EXPOSE_HEADERS, ALLOW_CREDENTIALS, MAX_AGE] {
                        assert_eq!(get(&headers, absent), None, "{what}: {absent}");
                    }
                }
            }
        }
    }

    #[test]
    fn preflight_defaults_and_wildcards() {
        // (config, origin, expected headers, sorted by name)
        type Case<'a> = (serde_json::Value, &'a str, &'a [(&'a str, &'a str)]);
        let cases: &[Case<'_>] = &[
            // Defaults and empty origins: `*`, no Vary.
            (
                serde_json::json!({}),
                "origin1.test",
                &[(ALLOW_METHODS, DEFAULT_METHODS_JOINED), (ALLOW_ORIGIN, "*")],
            ),
            (
                serde_json::json!({ "origins": [] }),
                "empty-origin.test",
                &[(ALLOW_METHODS, DEFAULT_METHODS_JOINED), (ALLOW_ORIGIN, "*")],
            ),
            // `*` with credentials: the raw Origin is echoed, with Vary.
            (
                serde_json::json!({ "origins": ["*"], "credentials": true }),
                "origin5.test",
                &[
                    (ALLOW_CREDENTIALS, "true"),
                    (ALLOW_METHODS, DEFAULT_METHODS_JOINED),
                    (ALLOW_ORIGIN, "origin5.test"),
                    (VARY, "Origin"),
                ],
            ),
            (
                serde_json::json!({ "origins": ["*"], "credentials": true }),
                "http://www.example.net:80",
                &[
                    (ALLOW_CREDENTIALS, "true"),
                    (ALLOW_METHODS, DEFAULT_METHODS_JOINED),
                    (ALLOW_ORIGIN, "http://www.example.net:80"),
                    (VARY, "Origin"),
                ],
            ),
            // `*` among other entries.
            (
                serde_json::json!({ "origins": ["foo.bar", "*"] }),
                "http://www.example.net",
                &[(ALLOW_METHODS, DEFAULT_METHODS_JOINED), (ALLOW_ORIGIN, "*"), (VARY, "Origin")],
            ),
            // Config options (route cors2 of Kong's spec).
            (
                serde_json::json!({
                    "origins": ["example.test"], "methods": ["GET"],
                    "headers": ["origin", "type", "accepts"],
                    "exposed_headers": ["x-auth-token"], "max_age": 23, "credentials": true
                }),
                "origin5.test",
                &[
                    (ALLOW_CREDENTIALS, "true"),
                    (ALLOW_HEADERS, "origin,type,accepts"),
                    (ALLOW_METHODS, "GET"),
                    (ALLOW_ORIGIN, "example.test"),
                    (MAX_AGE, "23"),
                    (VARY, "Origin"),
                ],
            ),
            // methods = null → the default list; credentials without a match.
            (
                serde_json::json!({
                    "origins": ["a.xxx.test", "allowed-domain.test"], "methods": null,
                    "credentials": true, "max_age": 1728000
                }),
                "disallowed-domain.test",
                &[
                    (ALLOW_CREDENTIALS, "true"),
                    (ALLOW_METHODS, DEFAULT_METHODS_JOINED),
                    (MAX_AGE, "1728000"),
                    (VARY, "Origin"),
                ],
            ),
        ];
        for (config, origin, expected) in cases {
            let mut headers = respond(&cors(config.clone()), &preflight_req(origin));
            headers.sort();
            let expected: Vec<(&str, String)> =
                expected.iter().map(|(n, v)| (*n, v.to_string())).collect();
            assert_eq!(headers, expected, "{config} origin={origin}");
        }
    }

    #[test]
    fn preflight_detection() {
        let c = cors(serde_json::json!({}));
        let base = preflight_req("http://a.test");
        let not = |req: CorsRequest<'_>| assert_eq!(c.preflight(&req), Preflight::NotPreflight);
        not(CorsRequest { method: "GET", ..base });
        not(CorsRequest { method: "options", ..base });
        not(CorsRequest { origin: None, ..base });
        not(CorsRequest { origin: Some(""), ..base });
        not(CorsRequest { access_control_request_method: None, ..base });
        // An empty Access-Control-Request-Method is still "present" for Kong.
        assert!(matches!(
            c.preflight(&CorsRequest { access_control_request_method: Some(""), ..base }),
            Preflight::Respond(_)
        ));

        let continued = cors(serde_json::json!({
            "origins": ["example.test"], "preflight_continue": true
        }));
        assert_eq!(continued.preflight(&base), Preflight::Continue);
        assert_eq!(
            continued.preflight(&CorsRequest { method: "GET", ..base }),
            Preflight::NotPreflight
        );
    }

    #[test]
    fn preflight_request_headers_and_private_network() {
        let c = cors(serde_json::json!({ "origins": ["*"], "credentials": true }));
        let req = CorsRequest {
            access_control_request_headers: Some("origin,accepts"),
            ..preflight_req("origin5.test")
        };
        assert_eq!(get(&respond(&c, &req), ALLOW_HEADERS), Some("origin,accepts"));
        let req = CorsRequest {
            access_control_request_headers: Some(""),
            ..preflight_req("origin5.test")
        };
        assert_eq!(get(&respond(&c, &req), ALLOW_HEADERS), None);

        let pna = cors(serde_json::json!({
            "private_network": true, "origins": ["allowed-domain.test"]
        }));
        let with = |value: Option<&'static str>| CorsRequest {
            method: "OPTIONS",
            origin: Some("allowed-domain.test"),
            access_control_request_method: Some("PUT"),
            access_control_request_private_network: value,
            ..CorsRequest::default()
        };
        assert_eq!(get(&respond(&pna, &with(Some("true"))), ALLOW_PRIVATE_NETWORK), Some("true"));
        assert_eq!(get(&respond(&pna, &with(Some("TRUE"))), ALLOW_PRIVATE_NETWORK), None);
        assert_eq!(get(&respond(&pna, &with(None)), ALLOW_PRIVATE_NETWORK), None);
        let off = cors(serde_json::json!({ "origins": ["allowed-domain.test"] }));
        assert_eq!(get(&respond(&off, &with(Some("true"))), ALLOW_PRIVATE_NETWORK), None);
    }

    #[test]
    fn proxied_response_headers() {
        // (config, origin, upstream headers, expected headers sorted)
        type Case = (
            serde_json::Value,
            Option<&'static str>,
            &'static [(&'static str, &'static str)],
            &'static [(&'static str, &'static str)],
        );
        let cases: &[Case] = &[
            // Defaults: `*`, nothing else (also for 404s and other plugins' exits).
            (serde_json::json!({}), None, &[], &[(ALLOW_ORIGIN, "*")]),
            // cors2: fixed origin, exposed headers, credentials, Vary.
            (
                serde_json::json!({
                    "origins": ["example.test"], "methods": ["GET"],
                    "headers": ["origin", "type", "accepts"],
                    "exposed_headers": ["x-auth-token"], "max_age": 23, "credentials": true
                }),
                None,
                &[],
                &[
                    (ALLOW_CREDENTIALS, "true"),
                    (ALLOW_ORIGIN, "example.test"),
                    (EXPOSE_HEADERS, "x-auth-token"),
                    (VARY, "Origin"),
                ],
            ),
            // cors6: literal list matched on the normalized origin.
            (
                serde_json::json!({ "origins": ["example.test", "example.org"] }),
                Some("example.test"),
                &[],
                &[(ALLOW_ORIGIN, "example.test"), (VARY, "Origin")],
            ),
            // "does not automatically parse the host".
            (
                serde_json::json!({ "origins": ["example.test", "example.org"] }),
                Some("http://example.test"),
                &[],
                &[(VARY, "Origin")],
            ),
            // Vary is appended to the upstream's.
            (
                serde_json::json!({ "origins": ["example.test"] }),
                Some("example.test"),
                &[(VARY, "Accept-Encoding")],
                &[(ALLOW_ORIGIN, "example.test"), (VARY, "Accept-Encoding"), (VARY, "Origin")],
            ),
            // cors12: the upstream's ACAO is replaced on a match, removed otherwise.
            (
                serde_json::json!({
                    "origins": ["a.xxx.test", "allowed-domain.test"], "credentials": true
                }),
                Some("allowed-domain.test"),
                &[(ALLOW_ORIGIN, "*")],
                &[
                    (ALLOW_CREDENTIALS, "true"),
                    (ALLOW_ORIGIN, "allowed-domain.test"),
                    (VARY, "Origin"),
                ],
            ),
            (
                serde_json::json!({
                    "origins": ["a.xxx.test", "allowed-domain.test"], "credentials": true
                }),
                Some("disallowed-domain.test"),
                &[(ALLOW_ORIGIN, "*")],
                &[(ALLOW_CREDENTIALS, "true"), (VARY, "Origin")],
            ),
            // cors5: `*` with credentials echoes the raw origin (port kept).
            (
                serde_json::json!({ "origins": ["*"], "credentials": true }),
                Some("http://www.example.net:3000"),
                &[],
                &[
                    (ALLOW_CREDENTIALS, "true"),
                    (ALLOW_ORIGIN, "http://www.example.net:3000"),
                    (VARY, "Origin"),
                ],
            ),
            // `*` with credentials and no Origin: `*` alone, no credentials.
            (
                serde_json::json!({ "origins": ["*"], "credentials": true }),
                None,
                &[],
                &[(ALLOW_ORIGIN, "*")],
            ),
            // cors7: `*` without credentials.
            (
                serde_json::json!({ "origins": ["*"] }),
                Some("http://www.example.net"),
                &[],
                &[(ALLOW_ORIGIN, "*")],
            ),
            // `*` among entries plus credentials: Vary is added twice, as in Kong.
            (
                serde_json::json!({ "origins": ["foo.bar", "*"], "credentials": true }),
                Some("http://www.example.net"),
                &[],
                &[
                    (ALLOW_CREDENTIALS, "true"),
                    (ALLOW_ORIGIN, "http://www.example.net"),
                    (VARY, "Origin"),
                    (VARY, "Origin"),
                ],
            ),
            // A list with `*` but no Origin: ACAO removed.
            (
                serde_json::json!({ "origins": ["foo.bar", "*"] }),
                None,
                &[(ALLOW_ORIGIN, "https://up.test")],
                &[(VARY, "Origin")],
            ),
            // cors15 / cors16: allow_origin_absent.
            (
                serde_json::json!({
                    "allow_origin_absent": false, "origins": ["foo.bar"],
                    "exposed_headers": ["x-auth-token"], "credentials": true
                }),
                Some(""),
                &[],
                &[],
            ),
            (
                serde_json::json!({
                    "allow_origin_absent": true, "origins": ["foo.bar"],
                    "exposed_headers": ["x-auth-token"], "credentials": true
                }),
                None,
                &[],
                &[
                    (ALLOW_CREDENTIALS, "true"),
                    (ALLOW_ORIGIN, "foo.bar"),
                    (EXPOSE_HEADERS, "x-auth-token"),
                    (VARY, "Origin"),
                ],
            ),
        ];
        for (config, origin, upstream, expected) in cases {
            let mut headers = proxied(&cors(config.clone()), *origin, upstream);
            headers.sort();
            let expected: Vec<(&str, String)> =
                expected.iter().map(|(n, v)| (*n, v.to_string())).collect();
            assert_eq!(headers, expected, "{config} origin={origin:?}");
        }
    }

    #[test]
    fn regex_origins_on_proxied_responses() {
        // cors9 of Kong's spec: unanchored-looking regex, matched on the whole host.
        let c = cors(serde_json::json!({ "origins": [r".*\.?example(?:-foo)?.test"] }));
        for (origin, accepted) in [
            ("example.test", true),
            ("www.example.test", true),
            ("example-foo.test", true),
            ("www.example-foo.test", true),
            ("www.example-fo0.test", false),
        ] {
            let headers = proxied(&c, Some(origin), &[]);
            assert_eq!(get(&headers, ALLOW_ORIGIN), accepted.then_some(origin), "{origin}");
            assert_eq!(all(&headers, VARY), ["Origin"]);
        }
        // cors11: scheme and port are part of a literal's identity.
        let c = cors(serde_json::json!({
            "origins": ["http://my-site.test", "https://my-other-site.test:9000"]
        }));
        for (origin, expected) in [
            ("http://my-site.test", Some("http://my-site.test")),
            ("http://my-site.test:80", Some("http://my-site.test")),
            ("http://my-site.test:8000", None),
            ("https://my-site.test", None),
            ("https://my-other-site.test:9000", Some("https://my-other-site.test:9000")),
            ("https://my-other-site.test:9001", None),
            ("http://my-site.test.bad-guys.test", None),
        ] {
            assert_eq!(get(&proxied(&c, Some(origin), &[]), ALLOW_ORIGIN), expected, "{origin}");
        }
    }

    #[test]
    fn kong_anchoring_quirk_binds_dollar_to_the_last_alternative() {
        // "https://a\.test|https://b\.test" becomes "https://a\.test|https://b\.test$",
        // anchored at the start only: the first alternative is a prefix match.
        let c = cors(serde_json::json!({ "origins": [r"https://a\.test|https://b\.test"] }));
        let acao = |o: &str| get(&proxied(&c, Some(o), &[]), ALLOW_ORIGIN).map(str::to_owned);
        assert_eq!(acao("https://a.test.evil.test"), Some("https://a.test.evil.test".into()));
        assert_eq!(acao("https://b.test.evil.test"), None);
        assert_eq!(acao("https://b.test"), Some("https://b.test".into()));
    }

    #[test]
    fn origin_normalization() {
        // (origin, domain, host)
        let cases: &[(&str, &str, &str)] = &[
            ("http://foo.test", "http://foo.test", "foo.test"),
            ("http://foo.test:80", "http://foo.test", "foo.test"),
            ("https://foo.test:443", "https://foo.test", "foo.test"),
            ("http://foo.test:443", "http://foo.test:443", "foo.test"),
            ("HTTP://foo.test:80", "HTTP://foo.test:80", "foo.test"),
            ("http://user:pw@foo.test:8080/path?q#frag", "http://foo.test:8080", "foo.test"),
            ("http://[::1]:8080", "http://::1:8080", "::1"),
            ("http://[::1]", "http://::1", "::1"),
            ("http://foo.test:", "http://foo.test:", "foo.test"),
            ("http://foo.test?x=1", "http://foo.test?x=1", "foo.test?x=1"),
            ("//foo.test", "foo.test", "foo.test"),
            ("foo.test", "foo.test", "foo.test"),
            ("localhost:8080", "localhost:8080", "localhost:8080"),
            ("null", "null", "null"),
            ("http://", "http://", "http://"),
            ("http://:8080", "http://:8080", "http://:8080"),
        ];
        for (origin, domain, host) in cases {
            let n = normalize_origin(origin);
            assert_eq!((n.domain.as_str(), n.host.as_str()), (*domain, *host), "{origin}");
        }
    }

    #[test]
    fn max_age_prints_like_lua() {
        let cases: &[(f64, &str)] = &[
            (23.0, "23"),
            (0.0, "0"),
            (1728000.0, "1728000"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (-5.0, "-5"),
            (1.0 / 3.0, "0.33333333333333"),
            (1e15, "1e+15"),
            (123456789012345.0, "1.2345678901234e+14"),
            (1e-5, "1e-05"),
        ];
        for (n, text) in cases {
            assert_eq!(lua_number_text(*n), *text, "{n}");
        }
    }

    #[test]
    fn config_defaults_and_errors() {
        let config: CorsConfig = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(config, CorsConfig::default());
        assert!(config.allow_origin_absent);
        assert_eq!(config.methods.as_ref().map(Vec::len), Some(9));

        let err = |origins: serde_json::Value| {
            Cors::new(serde_json::from_value(serde_json::json!({ "origins": origins })).unwrap())
                .unwrap_err()
        };
        assert_eq!(
            err(serde_json::json!(["ok.test", "("])),
            "origins[2]: '(' is not a valid regex"
        );
        assert_eq!(
            err(serde_json::json!(["(?<=a)b"])),
            "origins[1]: '(?<=a)b' is not a valid regex"
        );
        assert_eq!(err(serde_json::json!(["a.test", ""])), "origins[2]: length must be at least 1");
    }
}
