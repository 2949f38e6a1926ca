//! The plugin phases on the request path: the access phase of a route's chain (after the
//! route matched, before the balancer), the upstream changes it made, the responses plugins
//! send instead of proxying, and `header_filter` on every response of a routed request.
//!
//! Nothing here allocates when a route has no plugins: the chain is `None` and the request
//! goes straight on.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use turnpike_plugin_api::phase::UpstreamChanges;
use turnpike_plugin_api::{
    chain, Chain, Ctx, Exit, ExitBody, Instance, Request, RequestState, ResponseHead,
};

use crate::errors::{kong_error, ErrCtx, Reply};
use crate::headers::{Edits, Headers};
use crate::proxy::Req;

/// A request's plugin state between its phases.
pub(crate) struct PluginRun {
    /// The instances that ran in the access phase, in order: the later phases run these.
    pub(crate) ran: Vec<Instance>,
    pub(crate) state: RequestState,
    client_ip: IpAddr,
    scheme: &'static str,
    port: u16,
}

/// The request as plugins see it.
struct View<'a> {
    req: &'a Req,
    client_ip: IpAddr,
    scheme: &'static str,
    port: u16,
    /// The lowercase host, computed when a plugin asks.
    host: std::cell::OnceCell<String>,
}

impl Request for View<'_> {
    fn method(&self) -> &str {
        self.req.method.as_str()
    }

    fn path(&self) -> &str {
        std::str::from_utf8(&self.req.path).unwrap_or_default()
    }

    fn query(&self) -> Option<&str> {
        self.req.query.as_deref().and_then(|q| std::str::from_utf8(q).ok())
    }

    fn http_version(&self) -> &str {
        match self.req.version {
            http::Version::HTTP_10 => "1.0",
            http::Version::HTTP_2 => "2",
            _ => "1.1",
        }
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        match &self.req.headers {
            Headers::H1(f) => {
                f.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|f| f.1)
            }
            Headers::Map(m) => m.get(name).map(HeaderValue::as_bytes),
        }
    }

    fn header_count(&self, name: &str) -> usize {
        match &self.req.headers {
            Headers::H1(f) => f.get_all_named(name.as_bytes()).count(),
            Headers::Map(m) => m.get_all(name).iter().count(),
        }
    }

    fn header_values(&self, name: &str, f: &mut dyn FnMut(&[u8])) {
        match &self.req.headers {
            Headers::H1(fields) => fields.get_all_named(name.as_bytes()).for_each(f),
            Headers::Map(m) => m.get_all(name).iter().for_each(|v| f(v.as_bytes())),
        }
    }

    fn client_ip(&self) -> IpAddr {
        self.client_ip
    }

    fn forwarded_scheme(&self) -> &str {
        self.scheme
    }

    fn body(&self) -> Option<&[u8]> {
        if !self.req.has_body {
            return Some(&[]);
        }
        self.req.body.as_deref()
    }

    fn host(&self) -> &str {
        self.host.get_or_init(|| {
            let h = self.req.host.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            let name = if h.starts_with('[') {
                h.find(']').map_or(&h[..], |i| &h[..=i])
            } else {
                match h.rsplit_once(':') {
                    Some((n, p)) if p.bytes().all(|b| b.is_ascii_digit()) => n,
                    _ => &h[..],
                }
            };
            name.to_ascii_lowercase()
        })
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn for_each_header(&self, f: &mut dyn FnMut(&str, &[u8])) {
        match &self.req.headers {
            Headers::H1(fields) => {
                for (n, v, _) in fields.iter() {
                    f(std::str::from_utf8(n).unwrap_or_default(), v);
                }
            }
            Headers::Map(m) => {
                for (n, v) in m {
                    f(n.as_str(), v.as_bytes());
                }
            }
        }
    }
}

/// What the access phase of a route's chain decided.
pub(crate) struct Access {
    pub(crate) run: PluginRun,
    pub(crate) exit: Option<Exit>,
}

/// The request facts the access phase needs.
pub(crate) struct AccessInput<'a> {
    pub(crate) req: &'a Req,
    pub(crate) client_ip: IpAddr,
    pub(crate) scheme: &'a str,
    pub(crate) port: u16,
    pub(crate) route_id: &'a str,
    pub(crate) service_id: Option<&'a str>,
}

/// Runs the access phase of a chain.
pub(crate) fn access(chain: &Chain, input: &AccessInput<'_>) -> Access {
    let scheme: &'static str = if input.scheme == "https" { "https" } else { "http" };
    let mut run = PluginRun {
        ran: Vec::with_capacity(chain.entries.len()),
        state: RequestState::default(),
        client_ip: input.client_ip,
        scheme,
        port: input.port,
    };
    let view = View {
        req: input.req,
        client_ip: input.client_ip,
        scheme,
        port: input.port,
        host: std::cell::OnceCell::new(),
    };
    let PluginRun { ran, state, .. } = &mut run;
    let mut ctx =
        Ctx { request: &view, state, route_id: input.route_id, service_id: input.service_id };
    let exit = chain.access(&mut ctx, ran).err();
    Access { run, exit }
}

/// Whether a header value can go on the wire as is (no line breaks or NULs).
fn safe_value(v: &str) -> bool {
    !v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// Whether a header name is an HTTP token (checked without allocating).
fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Applies the upstream changes of the access phase to the request sent upstream. Only
/// headers the client actually sent need dropping.
pub(crate) fn apply_upstream(
    changes: &UpstreamChanges,
    received: &Headers,
    edits: &mut Edits,
    uri: &mut String,
) {
    let sent = |name: &str| match received {
        Headers::H1(f) => f.iter().any(|(n, _, _)| n.eq_ignore_ascii_case(name.as_bytes())),
        Headers::Map(m) => m.contains_key(name),
    };
    for name in &changes.clear {
        if sent(name) {
            edits.drop_name(name.as_bytes());
        }
    }
    for (name, value) in &changes.set {
        if valid_name(name) && safe_value(value) {
            if sent(name) {
                edits.drop_name(name.as_bytes());
            }
            edits.add(name, value.as_bytes());
        }
    }
    if let Some(q) = &changes.query {
        if let Some(i) = uri.find('?') {
            uri.truncate(i);
        }
        if !q.is_empty() {
            uri.push('?');
            uri.push_str(q);
        }
    }
}

/// The reply for a plugin's [`Exit`].
pub(crate) fn exit_reply(exit: Exit, ctx: &ErrCtx<'_>) -> Reply {
    let mut reply = match exit.body {
        ExitBody::Error(message) => kong_error(exit.status, &message, ctx),
        ExitBody::Json(v) => {
            let mut r = Reply::new(exit.status);
            r.body = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
            r.header(CONTENT_TYPE, "application/json; charset=utf-8")
        }
        ExitBody::Raw { content_type, body } => {
            let mut r = Reply::new(exit.status);
            r.body = Bytes::from(body);
            match content_type {
                Some(ct) => r.header(CONTENT_TYPE, &ct),
                None => r,
            }
        }
        ExitBody::Empty => Reply::new(exit.status),
    };
    for (name, value) in exit.headers {
        set_reply_header(&mut reply, &name, &value);
    }
    reply
}

fn set_reply_header(reply: &mut Reply, name: &str, value: &str) {
    let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
    else {
        return;
    };
    reply.headers.retain(|(h, _)| *h != n);
    reply.headers.push((n, v));
}

impl PluginRun {
    fn head_phase(
        &mut self,
        req: &Req,
        ids: (&str, Option<&str>),
        status: u16,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> HeadChanges {
        let view = View {
            req,
            client_ip: self.client_ip,
            scheme: self.scheme,
            port: self.port,
            host: std::cell::OnceCell::new(),
        };
        let mut head = ResponseHead {
            status,
            header: get,
            set: Vec::new(),
            add: Vec::new(),
            clear: Vec::new(),
        };
        for (n, v) in &self.state.response_headers {
            head.set_header(n, v.clone());
        }
        let Self { ran, state, .. } = self;
        let mut ctx = Ctx { request: &view, state, route_id: ids.0, service_id: ids.1 };
        chain::header_filter(ran, &mut ctx, &mut head);
        HeadChanges { set: head.set, add: head.add, clear: head.clear }
    }

    /// `header_filter` on a proxied response: the changes go into its header edits.
    pub(crate) fn header_filter_edits(
        &mut self,
        req: &Req,
        ids: (&str, Option<&str>),
        status: u16,
        received: &Headers,
        edits: &mut Edits,
    ) {
        let get = |name: &str| -> Option<String> {
            let v = match received {
                Headers::H1(f) => f.get_all_named(name.as_bytes()).next(),
                Headers::Map(m) => m.get(name).map(HeaderValue::as_bytes),
            };
            v.map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let changes = self.head_phase(req, ids, status, &get);
        for name in &changes.clear {
            edits.drop_name(name.as_bytes());
        }
        for (name, value) in &changes.set {
            if valid_name(name) && safe_value(value) {
                edits.drop_name(name.as_bytes());
                edits.add(name, value.as_bytes());
            }
        }
        for (name, value) in &changes.add {
            if valid_name(name) && safe_value(value) {
                edits.add(name, value.as_bytes());
            }
        }
    }

    /// `header_filter` on a response the gateway or a plugin generated.
    pub(crate) fn header_filter_reply(
        &mut self,
        req: &Req,
        ids: (&str, Option<&str>),
        reply: &mut Reply,
    ) {
        let headers = reply.headers.clone();
        let get = move |name: &str| -> Option<String> {
            headers
                .iter()
                .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.to_str().ok().map(str::to_owned))
        };
        let changes = self.head_phase(req, ids, reply.status, &get);
        for name in &changes.clear {
            reply.headers.retain(|(n, _)| !n.as_str().eq_ignore_ascii_case(name));
        }
        for (name, value) in &changes.set {
            set_reply_header(reply, name, value);
        }
        for (name, value) in &changes.add {
            if let (Ok(n), Ok(v)) =
                (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
            {
                reply.headers.push((n, v));
            }
        }
    }
}

struct HeadChanges {
    set: Vec<(String, String)>,
    add: Vec<(String, String)>,
    clear: Vec<String>,
}
