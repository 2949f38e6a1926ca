//! Kong's request phases as a trait, and what a plugin sees of a request while it runs.
//!
//! A [`Plugin`] is one configured plugin instance, built once from its validated config when a
//! configuration is compiled (never per request). Each phase method is a no-op by default; a
//! plugin implements the phases it needs. Phases are synchronous: a plugin that needs the
//! request body declares it with [`Plugin::needs_body`] and the proxy buffers the body (up to
//! `client_body_buffer_size`) before the access phase.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::Value;

use crate::consumer::{Consumer, Credential};

/// The outcome of a request phase: go on, or answer the client now
/// (`kong.response.exit` / `kong.response.error`).
pub type Phase = Result<(), Exit>;

/// One configured plugin instance.
pub trait Plugin: Send + Sync + 'static {
    /// `rewrite`: before the access phase (only global instances run it, as in Kong).
    fn rewrite(&self, _ctx: &mut Ctx<'_>) -> Phase {
        Ok(())
    }

    /// `access`: authentication, access control, request changes.
    fn access(&self, _ctx: &mut Ctx<'_>) -> Phase {
        Ok(())
    }

    /// `header_filter`: the response head on its way to the client (also for responses the
    /// gateway or a plugin generated).
    fn header_filter(&self, _ctx: &mut Ctx<'_>, _resp: &mut ResponseHead<'_>) {}

    /// `body_filter`: each chunk of the response body; `eof` on the last call.
    fn body_filter(&self, _ctx: &mut Ctx<'_>, _chunk: &mut Vec<u8>, _eof: bool) {}

    /// `log`: after the response was sent; must not block.
    fn log(&self, _ctx: &mut Ctx<'_>) {}

    /// Whether the access phase reads the request body (the proxy then buffers it).
    fn needs_body(&self) -> bool {
        false
    }
}

/// The client request, read-only. Header names are matched case-insensitively.
pub trait Request {
    fn method(&self) -> &str;
    /// The path as received (percent-encoded), without the query.
    fn path(&self) -> &str;
    /// The raw query string, without the `?`.
    fn query(&self) -> Option<&str>;
    /// `1.0`, `1.1` or `2`.
    fn http_version(&self) -> &str;
    /// The first value of a header.
    fn header(&self, name: &str) -> Option<&[u8]>;
    /// How many times a header was sent.
    fn header_count(&self, name: &str) -> usize;
    /// Every value of a header, in order.
    fn header_values(&self, name: &str, f: &mut dyn FnMut(&[u8]));
    /// The client's address as Kong's `kong.client.get_forwarded_ip` sees it (`real_ip_header`
    /// from `trusted_ips` honoured).
    fn client_ip(&self) -> IpAddr;
    /// The scheme the client used (`X-Forwarded-Proto` from trusted peers honoured).
    fn forwarded_scheme(&self) -> &str;
    /// The request body, when a plugin of the chain asked for it and it fit the buffer.
    fn body(&self) -> Option<&[u8]>;
    /// The host the client asked for, lowercase, without a port (`kong.request.get_host`).
    fn host(&self) -> &str;
    /// The port the client connected to (`kong.request.get_port`).
    fn port(&self) -> u16;
    /// Every header, in order, with its name as received.
    fn for_each_header(&self, f: &mut dyn FnMut(&str, &[u8]));
}

impl dyn Request + '_ {
    /// The first value of a header as text (a value that is not UTF-8 counts as absent).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The decoded query arguments, in order (`+` is a space, as in Kong).
    pub fn query_args(&self) -> Vec<(String, String)> {
        self.query().map(parse_args).unwrap_or_default()
    }
}

/// A field of a request body as `kong.request.get_body()` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyField {
    Text(String),
    /// Several values, or a JSON array/object: a Lua table.
    Table,
    /// A JSON number, boolean or null, or a form field without `=`.
    Other,
}

/// The kinds of bodies `kong.request.get_body()` decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Form,
    Json,
}

/// The body kind a `Content-Type` names (multipart bodies are not decoded).
pub fn body_kind(content_type: Option<&str>) -> Option<BodyKind> {
    let ct = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    match ct.as_str() {
        "application/x-www-form-urlencoded" => Some(BodyKind::Form),
        "application/json" => Some(BodyKind::Json),
        _ => None,
    }
}

/// A field of a form or JSON body.
pub fn body_field(kind: BodyKind, body: &[u8], name: &str) -> Option<BodyField> {
    match kind {
        BodyKind::Form => {
            let text = std::str::from_utf8(body).ok()?;
            let mut found = None;
            for part in text.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = part.split_once('=').map_or((part, None), |(k, v)| (k, Some(v)));
                if decode_form_component(k) != name {
                    continue;
                }
                found = Some(match (found, v) {
                    (None, Some(v)) => BodyField::Text(decode_form_component(v).into_owned()),
                    (None, None) => BodyField::Other,
                    (Some(_), _) => BodyField::Table,
                });
            }
            found
        }
        BodyKind::Json => {
            let v: Value = serde_json::from_slice(body).ok()?;
            Some(match v.get(name)? {
                Value::String(s) => BodyField::Text(s.clone()),
                Value::Array(_) | Value::Object(_) => BodyField::Table,
                _ => BodyField::Other,
            })
        }
    }
}

/// The body re-encoded without the field `name` (`hide_credentials` for body keys).
pub fn body_without(kind: BodyKind, body: &[u8], name: &str) -> Option<Vec<u8>> {
    match kind {
        BodyKind::Form => {
            let text = std::str::from_utf8(body).ok()?;
            let kept: Vec<&str> = text
                .split('&')
                .filter(|p| decode_form_component(p.split_once('=').map_or(*p, |(k, _)| k)) != name)
                .collect();
            Some(kept.join("&").into_bytes())
        }
        BodyKind::Json => {
            let mut v: Value = serde_json::from_slice(body).ok()?;
            v.as_object_mut()?.remove(name);
            serde_json::to_vec(&v).ok()
        }
    }
}

/// Decodes one form component (`%XX`, `+` as a space), without allocating when there is
/// nothing to decode.
pub fn decode_form_component(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return std::borrow::Cow::Borrowed(s);
    }
    // as the value of a one-pair form: a component holds no `&`, and `=` in it stays
    let pair = format!("x={s}");
    let decoded = form_urlencoded::parse(pair.as_bytes()).next().map(|(_, v)| v.into_owned());
    std::borrow::Cow::Owned(decoded.unwrap_or_default())
}

/// Decodes `a=1&b=2` (form encoding).
pub fn parse_args(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// What the plugins decided about a request so far (Kong's `ngx.ctx` as plugins share it).
#[derive(Debug, Default)]
pub struct RequestState {
    /// The authenticated consumer (`kong.client.get_consumer`).
    pub consumer: Option<Arc<Consumer>>,
    /// The credential it authenticated with (`kong.client.get_credential`).
    pub credential: Option<Credential>,
    /// Groups set by an authentication plugin (`authenticated_groups`).
    pub authenticated_groups: Option<Vec<String>>,
    /// Changes to the request sent upstream.
    pub upstream: UpstreamChanges,
    /// Headers to add to the client response (`kong.response.set_header` during access).
    pub response_headers: Vec<(String, String)>,
    /// A limit on the request body's size, enforced while it streams upstream: a body that
    /// goes over it is answered with 413 `Request size limit exceeded`.
    pub body_limit: Option<u64>,
}

/// A header name: most are constants, so they are not allocated per request.
pub type HeaderName = std::borrow::Cow<'static, str>;

fn lower_name(name: &str) -> HeaderName {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        HeaderName::Owned(name.to_ascii_lowercase())
    } else {
        HeaderName::Owned(name.to_owned())
    }
}

/// Changes to the upstream request, applied once the access phase is over.
#[derive(Debug, Default)]
pub struct UpstreamChanges {
    /// Headers to set (replacing what the client sent), lowercase names.
    pub set: Vec<(HeaderName, String)>,
    /// Headers to remove, lowercase names.
    pub clear: Vec<HeaderName>,
    /// A new query string (without `?`), `Some("")` for none.
    pub query: Option<String>,
    /// A new request body (`kong.service.request.set_body`); only possible when the body was
    /// read whole. `Content-Length` follows it.
    pub body: Option<Vec<u8>>,
}

impl UpstreamChanges {
    /// `kong.service.request.set_header`.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.set_named(lower_name(name), value.into());
    }

    /// `set_header` with a lowercase constant name (no allocation for the name).
    pub fn set_static(&mut self, name: &'static str, value: impl Into<String>) {
        self.set_named(HeaderName::Borrowed(name), value.into());
    }

    fn set_named(&mut self, name: HeaderName, value: String) {
        self.clear.retain(|n| *n != name);
        self.set.retain(|(n, _)| *n != name);
        self.set.push((name, value));
    }

    /// `kong.service.request.clear_header`.
    pub fn clear_header(&mut self, name: &str) {
        self.clear_named(lower_name(name));
    }

    /// `clear_header` with a lowercase constant name.
    pub fn clear_static(&mut self, name: &'static str) {
        self.clear_named(HeaderName::Borrowed(name));
    }

    fn clear_named(&mut self, name: HeaderName) {
        self.set.retain(|(n, _)| *n != name);
        if !self.clear.contains(&name) {
            self.clear.push(name);
        }
    }

    /// The value a header will have upstream, if a plugin set it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.set.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.clear.is_empty() && self.query.is_none() && self.body.is_none()
    }
}

/// A plugin's view of one request in one phase.
pub struct Ctx<'r> {
    pub request: &'r dyn Request,
    pub state: &'r mut RequestState,
    /// The matched route's id.
    pub route_id: &'r str,
    /// The route's service id, if it has one.
    pub service_id: Option<&'r str>,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("route_id", &self.route_id).finish_non_exhaustive()
    }
}

/// Kong's `X-Consumer-*` / `X-Credential-Identifier` / `X-Anonymous-Consumer` upstream headers.
pub const CONSUMER_ID: &str = "x-consumer-id";
pub const CONSUMER_CUSTOM_ID: &str = "x-consumer-custom-id";
pub const CONSUMER_USERNAME: &str = "x-consumer-username";
pub const CREDENTIAL_IDENTIFIER: &str = "x-credential-identifier";
pub const ANONYMOUS_CONSUMER: &str = "x-anonymous-consumer";

impl Ctx<'_> {
    /// What every Kong authentication plugin does on success (`set_consumer` in its
    /// handler): authenticate the request as `consumer` (with `credential`, or anonymously)
    /// and set or clear the consumer headers sent upstream.
    pub fn authenticate(&mut self, consumer: Arc<Consumer>, credential: Option<Credential>) {
        let up = &mut self.state.upstream;
        up.set_static(CONSUMER_ID, consumer.id.clone());
        match &consumer.custom_id {
            Some(c) => up.set_static(CONSUMER_CUSTOM_ID, c.clone()),
            None => up.clear_static(CONSUMER_CUSTOM_ID),
        }
        match &consumer.username {
            Some(u) => up.set_static(CONSUMER_USERNAME, u.clone()),
            None => up.clear_static(CONSUMER_USERNAME),
        }
        match &credential {
            Some(c) => {
                up.set_static(CREDENTIAL_IDENTIFIER, c.identifier.to_string());
                up.clear_static(ANONYMOUS_CONSUMER);
            }
            None => {
                up.clear_static(CREDENTIAL_IDENTIFIER);
                up.set_static(ANONYMOUS_CONSUMER, "true");
            }
        }
        self.state.consumer = Some(consumer);
        self.state.credential = credential;
    }

    /// Whether a credential already authenticated this request (an earlier authentication
    /// plugin): with `anonymous` set, Kong's auth plugins then step aside (logical OR).
    pub fn has_credential(&self) -> bool {
        self.state.credential.is_some()
    }
}

/// The response head in `header_filter`.
pub struct ResponseHead<'a> {
    pub status: u16,
    /// Reads a response header as it currently stands.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// Headers to set (replacing), lowercase names.
    pub set: Vec<(String, String)>,
    /// Headers to append.
    pub add: Vec<(String, String)>,
    /// Headers to remove.
    pub clear: Vec<String>,
}

impl std::fmt::Debug for ResponseHead<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseHead").field("status", &self.status).finish_non_exhaustive()
    }
}

impl ResponseHead<'_> {
    /// The value of a header, counting this phase's changes.
    pub fn get(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.set.iter().rev().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Some(v.clone());
        }
        if self.clear.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return None;
        }
        (self.header)(name)
    }

    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        let name = name.to_ascii_lowercase();
        self.add.retain(|(n, _)| *n != name);
        self.set.retain(|(n, _)| *n != name);
        self.set.push((name, value.into()));
    }

    pub fn add_header(&mut self, name: &str, value: impl Into<String>) {
        self.add.push((name.to_ascii_lowercase(), value.into()));
    }

    pub fn clear_header(&mut self, name: &str) {
        let name = name.to_ascii_lowercase();
        self.add.retain(|(n, _)| *n != name);
        self.set.retain(|(n, _)| *n != name);
        self.clear.push(name);
    }
}

/// A response a plugin sends instead of proxying.
#[derive(Debug, Clone)]
pub struct Exit {
    pub status: u16,
    /// Extra headers (lowercase names).
    pub headers: Vec<(String, String)>,
    pub body: ExitBody,
}

/// The body of an [`Exit`].
#[derive(Debug, Clone)]
pub enum ExitBody {
    /// No body.
    Empty,
    /// `kong.response.error(status, message)`: `{"message": …, "request_id": …}`, in the
    /// format the client's `Accept` asks for (JSON, HTML, XML or text).
    Error(String),
    /// `kong.response.exit(status, table)`: the table as JSON.
    Json(Value),
    /// `kong.response.exit(status, string)`: bytes as given (with a content type, if any).
    Raw { content_type: Option<String>, body: Vec<u8> },
}

impl Exit {
    /// `kong.response.error(status, message)`.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self { status, headers: Vec::new(), body: ExitBody::Error(message.into()) }
    }

    /// `kong.response.exit(status, json)`.
    pub fn json(status: u16, body: Value) -> Self {
        Self { status, headers: Vec::new(), body: ExitBody::Json(body) }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }
}
