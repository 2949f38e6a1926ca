//! The headers Kong sets, both ways (`kong/runloop/handler.lua` access and header_filter,
//! `kong/templates/nginx_kong.lua`; facts in docs/research/kong-proxy-behaviour.md §2.4, §3).
//!
//! Towards the upstream: hop-by-hop headers go, `Host`, `Connection`, `Upgrade`, `TE`, `Via`,
//! `X-Real-IP`, `X-Forwarded-*` and `X-Kong-Request-Id` are set. Towards the client: the
//! upstream's hop-by-hop headers go, `Via`, `Server`, `Date`, the latency headers and
//! `X-Kong-Request-Id` are added.
//!
//! The rules produce [`Edits`] (fields to drop, fields to add in wire format) rather than a
//! rewritten map, so that an HTTP/1 message is forwarded by copying its received fields and
//! appending the added ones, and the same rules serve HTTP/2 through [`Edits::apply_to_map`].

use std::net::{IpAddr, SocketAddr};

use bytes::{BufMut, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Version};

use crate::h1::{list_has, trim, Fields, Known, KnownSet};
use crate::settings::ProxySettings;

/// Request or response headers as received.
pub(crate) enum Headers {
    /// HTTP/1: the received fields.
    H1(Fields),
    /// HTTP/2 (from hyper).
    Map(HeaderMap),
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Headers")
    }
}

/// Values of one header.
pub(crate) enum Values<'a> {
    H1(crate::h1::KnownValues<'a>),
    Map(http::header::ValueIter<'a, HeaderValue>),
}

impl<'a> Iterator for Values<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            Self::H1(i) => i.next(),
            Self::Map(i) => i.next().map(HeaderValue::as_bytes),
        }
    }
}

impl Headers {
    /// The request's `Content-Length`, if it has a valid one.
    pub(crate) fn content_length(&self) -> Option<u64> {
        self.get(Known::ContentLength).and_then(crate::h1::parse_content_length)
    }

    /// The first value of a known header.
    pub(crate) fn get(&self, k: Known) -> Option<&[u8]> {
        match self {
            Self::H1(f) => f.get(k),
            Self::Map(m) => m.get(k.name()).map(HeaderValue::as_bytes),
        }
    }

    pub(crate) fn get_str(&self, k: Known) -> Option<&str> {
        self.get(k).and_then(|v| std::str::from_utf8(v).ok())
    }

    pub(crate) fn contains(&self, k: Known) -> bool {
        self.get(k).is_some()
    }

    /// Every value of a known header.
    pub(crate) fn get_all(&self, k: Known) -> Values<'_> {
        match self {
            Self::H1(f) => Values::H1(f.get_all(k)),
            Self::Map(m) => Values::Map(m.get_all(k.name()).iter()),
        }
    }

    /// Whether a comma-separated header lists `token`.
    pub(crate) fn has_token(&self, k: Known, token: &str) -> bool {
        self.get_all(k).any(|v| list_has(v, token))
    }

    /// Every received field: name, value, and what it is.
    fn each(&self, mut f: impl FnMut(&[u8], &[u8], Known)) {
        match self {
            Self::H1(fields) => {
                for (n, v, k) in fields.iter() {
                    f(n, v, k);
                }
            }
            Self::Map(m) => {
                for (n, v) in m {
                    f(n.as_str().as_bytes(), v.as_bytes(), Known::of(n.as_str().as_bytes()));
                }
            }
        }
    }
}

impl turnpike_router::RequestHeaders for Headers {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        match self {
            Self::H1(f) => f.get_all_named(name.as_bytes()).any(pred),
            Self::Map(m) => m.get_all(name).iter().any(|v| pred(v.as_bytes())),
        }
    }
}

/// Changes to a message's headers: received fields to drop, fields to add.
#[derive(Debug, Default)]
pub(crate) struct Edits {
    drop: KnownSet,
    /// Other names to drop (those a `Connection` header lists), lowercase.
    drop_named: Vec<Vec<u8>>,
    /// Fields to add, as `Name: value\r\n` lines.
    extra: BytesMut,
}

/// Writes a lowercase header name the way it is usually spelled (`X-Forwarded-For`).
pub(crate) fn put_title_case(out: &mut BytesMut, name: &str) {
    if name == "www-authenticate" {
        out.put_slice(b"WWW-Authenticate");
        return;
    }
    let mut up = true;
    for b in name.bytes() {
        out.put_u8(if up { b.to_ascii_uppercase() } else { b });
        up = b == b'-';
    }
}

impl Edits {
    pub(crate) fn new() -> Self {
        Self {
            drop: KnownSet::default(),
            drop_named: Vec::new(),
            extra: BytesMut::with_capacity(512),
        }
    }

    /// Drops every received field of a known name.
    pub(crate) fn drop(&mut self, k: Known) {
        self.drop.insert(k);
    }

    /// Drops every received field of a name (any case).
    pub(crate) fn drop_name(&mut self, name: &[u8]) {
        self.drop_named(name);
    }

    fn drop_named(&mut self, name: &[u8]) {
        let k = Known::of(name);
        if k == Known::Other {
            self.drop_named.push(name.to_ascii_lowercase());
        } else {
            self.drop.insert(k);
        }
    }

    /// Sets a header: received fields of that name go, this value is added.
    pub(crate) fn set(&mut self, k: Known, value: &[u8]) {
        self.drop.insert(k);
        self.add(k.name(), value);
    }

    /// Sets a header to a formatted value, written straight into the added fields.
    pub(crate) fn set_fmt(&mut self, k: Known, value: std::fmt::Arguments<'_>) {
        self.drop.insert(k);
        put_title_case(&mut self.extra, k.name());
        self.extra.put_slice(b": ");
        let _ = std::fmt::Write::write_fmt(&mut FmtBytes(&mut self.extra), value);
        self.extra.put_slice(b"\r\n");
    }

    /// Sets a header to the concatenation of `parts`.
    pub(crate) fn set_parts(&mut self, k: Known, parts: &[&[u8]]) {
        self.drop.insert(k);
        put_title_case(&mut self.extra, k.name());
        self.extra.put_slice(b": ");
        for p in parts {
            self.extra.put_slice(p);
        }
        self.extra.put_slice(b"\r\n");
    }

    /// Sets a header to a number.
    pub(crate) fn set_u64(&mut self, k: Known, n: u64) {
        let mut digits = [0u8; 20];
        let text = format_u64(n, &mut digits);
        self.set_parts(k, &[text]);
    }

    /// Sets a header to an IP address.
    pub(crate) fn set_ip(&mut self, k: Known, ip: IpAddr) {
        let mut text = [0u8; 45];
        let len = format_ip(ip, &mut text);
        self.set_parts(k, &[&text[..len]]);
    }

    /// Adds a field (lowercase name) without dropping received ones.
    pub(crate) fn add(&mut self, name: &str, value: &[u8]) {
        put_title_case(&mut self.extra, name);
        self.extra.put_slice(b": ");
        self.extra.put_slice(value);
        self.extra.put_slice(b"\r\n");
    }

    fn keeps(&self, name: &[u8], k: Known) -> bool {
        if k != Known::Other {
            return !self.drop.contains(k);
        }
        !self.drop_named.iter().any(|d| d.len() == name.len() && name.eq_ignore_ascii_case(d))
    }

    /// Writes the kept received fields and the added ones, as HTTP/1 header lines.
    pub(crate) fn write(&self, out: &mut BytesMut, src: &Headers) {
        src.each(|name, value, k| {
            if self.keeps(name, k) {
                out.put_slice(name);
                out.put_slice(b": ");
                out.put_slice(value);
                out.put_slice(b"\r\n");
            }
        });
        out.put_slice(&self.extra);
    }

    /// Applies the edits to a header map (HTTP/2 on either side).
    pub(crate) fn apply_to_map(self, src: Headers) -> HeaderMap {
        let mut map = match src {
            Headers::Map(m) => m,
            Headers::H1(f) => f.to_header_map(),
        };
        let drop: Vec<HeaderName> = map
            .keys()
            .filter(|n| !self.keeps(n.as_str().as_bytes(), Known::of(n.as_str().as_bytes())))
            .cloned()
            .collect();
        for n in drop {
            map.remove(n);
        }
        for line in self.extra[..].split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&line[..colon]),
                HeaderValue::from_bytes(trim(&line[colon + 1..])),
            ) else {
                continue;
            };
            map.append(name, value);
        }
        map
    }
}

/// Formats a number without `core::fmt` (it is on every request).
pub(crate) fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Formats an IP address into `buf`, returning its length.
fn format_ip(ip: IpAddr, buf: &mut [u8; 45]) -> usize {
    match ip {
        IpAddr::V4(v4) => {
            let mut len = 0;
            for (i, octet) in v4.octets().iter().enumerate() {
                if i > 0 {
                    buf[len] = b'.';
                    len += 1;
                }
                let mut d = [0u8; 20];
                let t = format_u64(u64::from(*octet), &mut d);
                buf[len..len + t.len()].copy_from_slice(t);
                len += t.len();
            }
            len
        }
        IpAddr::V6(v6) => {
            let mut w = std::io::Cursor::new(&mut buf[..]);
            let _ = std::io::Write::write_fmt(&mut w, format_args!("{v6}"));
            w.position() as usize
        }
    }
}

/// `fmt::Write` into a `BytesMut` (numbers and addresses without a temporary `String`).
pub(crate) struct FmtBytes<'a>(pub(crate) &'a mut BytesMut);

impl std::fmt::Write for FmtBytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

/// Who the client is, after `trusted_ips` / `real_ip_header` (nginx's realip module).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Client {
    /// The TCP peer (`$realip_remote_addr`).
    pub(crate) peer: IpAddr,
    /// The client address (`$remote_addr` after realip).
    pub(crate) addr: IpAddr,
    /// Whether the peer is in `trusted_ips`.
    pub(crate) trusted: bool,
}

impl Client {
    pub(crate) fn of(peer: SocketAddr, headers: &Headers, settings: &ProxySettings) -> Self {
        let peer = peer.ip();
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        let trusted = !settings.trusted_ips.is_empty() && settings.trusted_ips.contains(peer);
        let mut addr = peer;
        if trusted {
            if let Some(name) = &settings.real_ip.header {
                let value = match headers {
                    Headers::H1(f) => f.get_all_named(name.as_str().as_bytes()).next(),
                    Headers::Map(m) => m.get(name).map(HeaderValue::as_bytes),
                };
                if let Some(v) = value.and_then(|v| std::str::from_utf8(v).ok()) {
                    addr = real_ip(v, settings).unwrap_or(peer);
                }
            }
        }
        Self { peer, addr, trusted }
    }
}

/// The client address in a trusted `real_ip_header` value: the last address of the list, or
/// with `real_ip_recursive` the last one that is not itself trusted.
fn real_ip(value: &str, settings: &ProxySettings) -> Option<IpAddr> {
    let addrs: Vec<IpAddr> = value.split(',').filter_map(|a| parse_ip(a.trim())).collect();
    if settings.real_ip.recursive {
        addrs.iter().rev().find(|a| !settings.trusted_ips.contains(**a)).or(addrs.first()).copied()
    } else {
        addrs.last().copied()
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse().ok().or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// The `X-Forwarded-Proto` the request counts as (a trusted client's value, else the scheme).
pub(crate) fn forwarded_proto<'h>(headers: &'h Headers, client: &Client, tls: bool) -> &'h str {
    if client.trusted {
        if let Some(v) = headers.get_str(Known::XForwardedProto) {
            return v;
        }
    }
    if tls {
        "https"
    } else {
        "http"
    }
}

/// What the upstream request headers are computed from.
pub(crate) struct UpstreamHeaders<'a> {
    pub(crate) settings: &'a ProxySettings,
    pub(crate) client: Client,
    pub(crate) version: Version,
    pub(crate) tls: bool,
    /// The listening port (`X-Forwarded-Port`).
    pub(crate) local_port: u16,
    /// `$host`: the request host, lowercased, without port.
    pub(crate) host: &'a str,
    /// The raw request path, as received (`X-Forwarded-Path`).
    pub(crate) raw_path: &'a [u8],
    /// The stripped prefix, if the route strips one (`X-Forwarded-Prefix`).
    pub(crate) prefix: Option<&'a str>,
    /// The `Host` to send.
    pub(crate) upstream_host: &'a str,
    pub(crate) websocket: bool,
    pub(crate) request_id: &'a str,
    /// gRPC requests go over HTTP/2: no `Host` (`:authority` instead), no `Connection`.
    pub(crate) grpc: bool,
}

/// The fields a request never takes upstream (hop-by-hop; nginx's defaults clear `Keep-Alive`,
/// `Expect` and `Upgrade`, Kong's access phase `Proxy` and `Proxy-Connection`).
const REQUEST_HOP: KnownSet = KnownSet::of(&[
    Known::Connection,
    Known::KeepAlive,
    Known::Proxy,
    Known::ProxyConnection,
    Known::Te,
    Known::Upgrade,
    Known::Expect,
    Known::TransferEncoding,
    Known::Host,
]);

/// Drops the fields a `Connection` header names, except the connection options `keep`.
fn drop_connection_listed(edits: &mut Edits, headers: &Headers, keep: &[&str]) {
    for v in headers.get_all(Known::Connection) {
        for token in v.split(|&b| b == b',').map(trim) {
            if !token.is_empty() && !keep.iter().any(|k| token.eq_ignore_ascii_case(k.as_bytes())) {
                edits.drop_named(token);
            }
        }
    }
}

/// Kong's upstream request headers.
pub(crate) fn upstream_edits(headers: &Headers, u: &UpstreamHeaders<'_>) -> Edits {
    let c = &u.client;
    let mut e = Edits::new();
    e.drop.0 |= REQUEST_HOP.0;

    // a Connection header that is not just one connection option names hop-by-hop fields
    let mut connection = headers.get_all(Known::Connection);
    let plain_connection = match (connection.next(), connection.next()) {
        (Some(v), None) => {
            let v = trim(v);
            v.eq_ignore_ascii_case(b"keep-alive")
                || v.eq_ignore_ascii_case(b"close")
                || v.eq_ignore_ascii_case(b"upgrade")
        }
        _ => false,
    };
    if !plain_connection {
        let keep: &[&str] = if u.websocket {
            &["keep-alive", "close", "upgrade"]
        } else {
            &["keep-alive", "close"]
        };
        drop_connection_listed(&mut e, headers, keep);
    }
    if headers.has_token(Known::Te, "trailers") {
        e.set(Known::Te, b"trailers");
    }
    if !u.grpc {
        if u.upstream_host.is_empty() {
            // the upstream target's, written per try
            e.drop(Known::Host);
        } else {
            e.set(Known::Host, u.upstream_host.as_bytes());
        }
        if u.websocket {
            e.set(Known::Connection, b"keep-alive, Upgrade");
            e.set(Known::Upgrade, b"websocket");
        } else {
            e.set(Known::Connection, b"keep-alive");
        }
    }

    let version = match u.version {
        Version::HTTP_10 => "1",
        Version::HTTP_2 => "2",
        _ => "1.1",
    };
    let token = u.settings.server_token.as_bytes();
    match headers.get(Known::Via) {
        Some(prev) => e.set_parts(Known::Via, &[prev, b", ", version.as_bytes(), b" ", token]),
        None => e.set_parts(Known::Via, &[version.as_bytes(), b" ", token]),
    }
    match headers.get(Known::XForwardedFor) {
        Some(prev) => {
            let mut ip = [0u8; 45];
            let len = format_ip(c.peer, &mut ip);
            e.set_parts(Known::XForwardedFor, &[prev, b", ", &ip[..len]]);
        }
        None => e.set_ip(Known::XForwardedFor, c.addr),
    }
    let trusted = |k: Known| if c.trusted { headers.get(k) } else { None };
    // a trusted client's X-Forwarded-* are kept as they are; the others are computed
    if trusted(Known::XForwardedProto).is_none() {
        e.set(Known::XForwardedProto, if u.tls { b"https" } else { b"http" });
    }
    if trusted(Known::XForwardedHost).is_none() {
        e.set(Known::XForwardedHost, u.host.as_bytes());
    }
    if trusted(Known::XForwardedPort).is_none() {
        e.set_u64(Known::XForwardedPort, u64::from(u.local_port));
    }
    if trusted(Known::XForwardedPath).is_none() {
        e.set(Known::XForwardedPath, u.raw_path);
    }
    if trusted(Known::XForwardedPrefix).is_none() {
        e.drop(Known::XForwardedPrefix);
        if let Some(p) = u.prefix.filter(|p| *p != "/") {
            e.set(Known::XForwardedPrefix, p.as_bytes());
        }
    }
    e.set_ip(Known::XRealIp, c.addr);
    if u.settings.headers_upstream.request_id {
        e.set(Known::XKongRequestId, u.request_id.as_bytes());
    }
    e
}

/// The content types nginx's charset filter completes with `; charset=UTF-8`.
const CHARSET_TYPES: &[&str] = &[
    "text/html",
    "text/xml",
    "text/plain",
    "text/vnd.wap.wml",
    "application/javascript",
    "application/rss+xml",
];

/// The fields a response never takes to the client (nginx does not copy them; the gateway
/// frames the body itself).
const RESPONSE_HOP: KnownSet = KnownSet::of(&[
    Known::Connection,
    Known::KeepAlive,
    Known::TransferEncoding,
    Known::ProxyConnection,
]);

/// What the response headers are computed from.
pub(crate) struct DownstreamHeaders<'a> {
    pub(crate) settings: &'a ProxySettings,
    pub(crate) websocket: bool,
    pub(crate) client_wants_trailers: bool,
    pub(crate) grpc_upstream: bool,
    pub(crate) upstream_status: u16,
    /// Milliseconds: connect + send + wait for the response head (last try).
    pub(crate) upstream_latency: u64,
    /// Milliseconds: from the request's arrival until the upstream was picked.
    pub(crate) proxy_latency: u64,
    pub(crate) request_id: &'a str,
    pub(crate) date: &'a [u8; 29],
    pub(crate) debug: Option<(&'a str, Option<&'a str>, &'a str, Option<&'a str>)>,
}

/// Kong's header_filter for a proxied response.
pub(crate) fn downstream_edits(headers: &Headers, d: &DownstreamHeaders<'_>) -> Edits {
    let mut e = Edits::new();
    e.drop.0 |= RESPONSE_HOP.0;
    drop_connection_listed(&mut e, headers, &["close", "upgrade", "keep-alive"]);
    if !d.websocket
        || !headers.get(Known::Upgrade).is_some_and(|v| v.eq_ignore_ascii_case(b"websocket"))
    {
        e.drop(Known::Upgrade);
    }
    if !d.client_wants_trailers {
        e.drop(Known::Trailer);
    }
    if d.settings.charset_utf8 {
        if let Some(ct) = headers.get(Known::ContentType) {
            if !ct.contains(&b';')
                && CHARSET_TYPES.iter().any(|t| ct.eq_ignore_ascii_case(t.as_bytes()))
            {
                let ct = std::str::from_utf8(ct).unwrap_or_default().to_owned();
                e.set_fmt(Known::ContentType, format_args!("{ct}; charset=UTF-8"));
            }
        }
    }
    let s = &d.settings.headers;
    if !headers.contains(Known::Date) {
        e.add("date", d.date);
    }
    if s.server && !headers.contains(Known::Server) {
        e.add("server", d.settings.server_token.as_bytes());
    }
    if s.via {
        let version = if d.grpc_upstream { "2" } else { "1.1" };
        let token = d.settings.server_token.as_bytes();
        match headers.get(Known::Via) {
            Some(prev) => e.set_parts(Known::Via, &[prev, b", ", version.as_bytes(), b" ", token]),
            None => e.set_parts(Known::Via, &[version.as_bytes(), b" ", token]),
        }
    }
    if s.upstream_latency {
        e.set_u64(Known::XKongUpstreamLatency, d.upstream_latency);
    }
    if s.proxy_latency {
        e.set_u64(Known::XKongProxyLatency, d.proxy_latency);
    }
    if s.upstream_status {
        e.set_u64(Known::XKongUpstreamStatus, u64::from(d.upstream_status));
    }
    if let Some((route_id, route_name, service_id, service_name)) = d.debug {
        debug_headers(&mut e, route_id, route_name, Some(service_id), service_name);
    }
    if s.request_id {
        e.set(Known::XKongRequestId, d.request_id.as_bytes());
    }
    e
}

/// `allow_debug_header`: the matched route and service, for a request carrying `Kong-Debug`.
pub(crate) fn debug_headers(
    e: &mut Edits,
    route_id: &str,
    route_name: Option<&str>,
    service_id: Option<&str>,
    service_name: Option<&str>,
) {
    e.add("kong-route-id", route_id.as_bytes());
    if let Some(n) = route_name {
        e.add("kong-route-name", n.as_bytes());
    }
    if let Some(id) = service_id {
        e.add("kong-service-id", id.as_bytes());
    }
    if let Some(n) = service_name {
        e.add("kong-service-name", n.as_bytes());
    }
}

/// The headers of a response the gateway generates itself (Kong's header_filter, not
/// proxied), after the response's own.
pub(crate) fn generated(
    e: &mut Edits,
    settings: &ProxySettings,
    response_latency: u64,
    request_id: &str,
    date: &[u8; 29],
) {
    e.add("date", date);
    if settings.headers.server {
        e.add("server", settings.server_token.as_bytes());
    }
    if settings.headers.response_latency {
        let mut digits = [0u8; 20];
        e.add("x-kong-response-latency", format_u64(response_latency, &mut digits));
    }
    if settings.headers.request_id {
        e.add("x-kong-request-id", request_id.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(raw: &'static [u8]) -> Headers {
        let mut buf = BytesMut::from(raw);
        let head =
            crate::h1::parse_request(&mut buf, &crate::h1::Limits::default()).unwrap().unwrap();
        Headers::H1(head.fields)
    }

    fn upstream(raw: &'static [u8], settings: &ProxySettings, trusted: bool) -> String {
        let h = fields(raw);
        let client = Client {
            peer: "127.0.0.1".parse().unwrap(),
            addr: "127.0.0.1".parse().unwrap(),
            trusted,
        };
        let e = upstream_edits(
            &h,
            &UpstreamHeaders {
                settings,
                client,
                version: Version::HTTP_11,
                tls: false,
                local_port: 8000,
                host: "example.com",
                raw_path: b"/foo/bar",
                prefix: Some("/foo"),
                upstream_host: "up:8080",
                websocket: false,
                request_id: "rid",
                grpc: false,
            },
        );
        let mut out = BytesMut::new();
        e.write(&mut out, &h);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn upstream_headers_untrusted() {
        let s = ProxySettings::default();
        let out = upstream(
            b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, X-Foo\r\nX-Foo: 1\r\nX-Bar: 2\r\nKeep-Alive: 5\r\nTE: trailers, deflate;q=0.5\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Real-IP: 10.0.0.9\r\nProxy: evil\r\nProxy-Authorization: basic\r\nVia: 1.1 dev\r\n\r\n",
            &s,
            false,
        );
        let lines: Vec<&str> = out.lines().collect();
        let has = |l: &str| lines.contains(&l);
        assert!(has("X-Bar: 2") && has("Proxy-Authorization: basic"), "{out}");
        assert!(
            !out.contains("X-Foo") && !out.contains("Keep-Alive") && !out.contains("Proxy: evil"),
            "{out}"
        );
        assert!(
            has("Te: trailers") && has("Host: up:8080") && has("Connection: keep-alive"),
            "{out}"
        );
        assert!(has("X-Forwarded-For: 10.0.0.1, 127.0.0.1"), "{out}");
        assert!(
            has("X-Forwarded-Proto: http") && has("X-Real-Ip: 127.0.0.1"),
            "untrusted values are replaced: {out}"
        );
        assert!(has("X-Forwarded-Host: example.com") && has("X-Forwarded-Port: 8000"), "{out}");
        assert!(has("X-Forwarded-Path: /foo/bar") && has("X-Forwarded-Prefix: /foo"), "{out}");
        assert!(has(&format!("Via: 1.1 dev, 1.1 {}", s.server_token)), "{out}");
        assert!(has("X-Kong-Request-Id: rid"), "{out}");
        assert_eq!(lines.iter().filter(|l| l.starts_with("Host:")).count(), 1, "{out}");
    }

    #[test]
    fn upstream_headers_trusted_keep_forwarded() {
        let s = ProxySettings::default();
        let out = upstream(
            b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: ex.test\r\nX-Forwarded-Port: 80\r\nX-Forwarded-Path: /orig\r\nX-Forwarded-Prefix: /pre\r\n\r\n",
            &s,
            true,
        );
        for l in [
            "X-Forwarded-Proto: https",
            "X-Forwarded-Host: ex.test",
            "X-Forwarded-Port: 80",
            "X-Forwarded-Path: /orig",
            "X-Forwarded-Prefix: /pre",
        ] {
            assert!(out.lines().any(|x| x == l), "{l} in {out}");
        }
        assert_eq!(out.matches("X-Forwarded-Proto").count(), 1, "{out}");
    }

    #[test]
    fn edits_apply_to_maps() {
        let mut m = HeaderMap::new();
        m.insert("connection", HeaderValue::from_static("x-a"));
        m.insert("x-a", HeaderValue::from_static("1"));
        m.insert("x-b", HeaderValue::from_static("2"));
        let h = Headers::Map(m);
        let mut e = Edits::new();
        drop_connection_listed(&mut e, &h, &[]);
        e.drop(Known::Connection);
        e.set(Known::Via, b"2 x");
        let m = e.apply_to_map(h);
        assert!(m.get("x-a").is_none() && m.get("connection").is_none());
        assert_eq!(m.get("x-b").unwrap(), "2");
        assert_eq!(m.get("via").unwrap(), "2 x");
    }
}
