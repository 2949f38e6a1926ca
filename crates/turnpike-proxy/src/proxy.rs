//! What happens to a request, whatever protocol it came in on: Kong's access phase (route,
//! protocol checks, service, upstream URI and headers), the balancer (peer, connection,
//! retries) and the upstream exchange up to the response head. The protocol layers in
//! `server` turn the outcome into bytes for their client.
//!
//! Plugin phases hook in here (rewrite and access before [`plan`] returns, header and body
//! filters on the way back).

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderName, CONTENT_TYPE, HOST};
use http::{HeaderMap, Method, Version};
use tokio::time::Instant;
use turnpike_router::RequestParts;

use crate::body::{next_chunk, read_ahead, BodySource};
use crate::config::{Destination, RouteRt, ServiceRt};
use crate::errors::{kong_error, nginx_error, ErrCtx, Reply};
use crate::h1::{Known, RespHead};
use crate::headers::{self, Client, Edits, Headers, UpstreamHeaders};
use crate::plugins::{Access, AccessInput, PluginRun};
use crate::server::ConnInfo;
use crate::upstream::{connect, Dial, PoolKey, UpConn, UpError, UpstreamBody};
use crate::worker::Worker;

/// A client request, as the proxy logic sees it.
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) version: Version,
    /// The path as received (percent-encoded), without the query.
    pub(crate) path: Bytes,
    /// The query without its `?`; `Some("")` for a target ending with `?`.
    pub(crate) query: Option<Bytes>,
    /// `Host` (HTTP/1) or `:authority` (HTTP/2), as sent.
    pub(crate) host: Option<Bytes>,
    pub(crate) headers: Headers,
    pub(crate) started: Instant,
    pub(crate) request_id: [u8; 32],
    /// Whether the request has a body to read (its framing says so).
    pub(crate) has_body: bool,
    /// The body, read before the access phase because a plugin asked for it; `None` when it
    /// was not read or did not fit `client_body_buffer_size`.
    pub(crate) body: Option<Bytes>,
    /// Whether the body was already read ahead (so the access phase does not ask again).
    pub(crate) body_read: bool,
}

impl Req {
    pub(crate) fn request_id(&self) -> &str {
        std::str::from_utf8(&self.request_id).unwrap_or_default()
    }

    pub(crate) fn err_ctx<'a>(&'a self, w: &'a Worker) -> ErrCtx<'a> {
        ErrCtx {
            headers: Some(&self.headers),
            request_id: self.request_id(),
            h2: self.version == Version::HTTP_2,
            error_default_type: &w.settings.error_default_type,
        }
    }

    /// Milliseconds since the request arrived.
    pub(crate) fn elapsed_ms(&self) -> u64 {
        crate::timer::ms_since(self.started)
    }
}

/// Everything decided about a request that goes upstream.
pub(crate) struct Plan {
    pub(crate) cfg: crate::worker::ConfigRef,
    pub(crate) route: usize,
    pub(crate) service: Arc<ServiceRt>,
    /// The request target sent upstream (escaped path and query).
    pub(crate) uri: String,
    /// The `Host` (or `:authority`) sent upstream; empty when it depends on the upstream
    /// target each try picks (see [`Peer`]).
    pub(crate) upstream_host: String,
    /// The server name for an upstream TLS handshake (unless the target sets it).
    pub(crate) sni: Option<rustls::pki_types::ServerName<'static>>,
    pub(crate) websocket: bool,
    pub(crate) request_buffering: bool,
    pub(crate) client_trailers: bool,
    pub(crate) debug: bool,
    /// Kong's changes to the request headers.
    pub(crate) edits: Edits,
    /// The plugins that ran, for the response phases.
    pub(crate) plugins: Option<PluginRun>,
    /// The request body a plugin set instead of the client's (read whole before).
    pub(crate) new_body: Option<Bytes>,
    /// A plugin's limit on the request body size (request-size-limiting on chunked bodies).
    pub(crate) body_limit: Option<u64>,
}

impl Plan {
    /// The body to send first: a plugin's replacement, else what was read ahead.
    pub(crate) fn first_body(&mut self, early: Option<Bytes>) -> (Option<Bytes>, Option<u64>) {
        match self.new_body.take() {
            Some(b) => {
                let n = b.len() as u64;
                (Some(b), Some(n))
            }
            None => (early, None),
        }
    }

    /// `header_filter` of the plugins that ran, on a proxied response head.
    pub(crate) fn header_filter_edits(
        &mut self,
        req: &Req,
        status: u16,
        received: &Headers,
        edits: &mut Edits,
    ) {
        if let Some(run) = self.plugins.as_mut() {
            let ids = (self.cfg.routes[self.route].id.as_str(), Some(self.service.id.as_str()));
            run.header_filter_edits(req, ids, status, received, edits);
        }
    }

    /// `header_filter` of the plugins that ran, on a response the gateway generated.
    pub(crate) fn header_filter_reply(&mut self, req: &Req, reply: &mut Reply) {
        if let Some(run) = self.plugins.as_mut() {
            let ids = (self.cfg.routes[self.route].id.as_str(), Some(self.service.id.as_str()));
            run.header_filter_reply(req, ids, reply);
        }
    }

    pub(crate) fn debug_info(&self) -> Option<(&str, Option<&str>, &str, Option<&str>)> {
        if !self.debug {
            return None;
        }
        let r = &self.cfg.routes[self.route];
        Some((&r.id, r.name.as_deref(), &self.service.id, self.service.name.as_deref()))
    }
}

/// Kong's `Kong-Route-*` / `Kong-Service-*` debug headers on a reply to a matched route.
fn with_debug_headers(mut r: Reply, route: &RouteRt) -> Reply {
    r = r.header(HeaderName::from_static("kong-route-id"), &route.id);
    if let Some(n) = &route.name {
        r = r.header(HeaderName::from_static("kong-route-name"), n);
    }
    if let Some(s) = &route.service {
        r = r.header(HeaderName::from_static("kong-service-id"), &s.id);
        if let Some(n) = &s.name {
            r = r.header(HeaderName::from_static("kong-service-name"), n);
        }
    }
    r
}

/// The outcome of the access phase.
pub(crate) enum Decision {
    /// The gateway answers itself.
    Reply(Reply),
    Proxy(Box<Plan>),
    /// A plugin of the matched route reads the request body: read it ahead, then plan again.
    NeedBody,
}

fn lower_host_without_port(host: &[u8]) -> String {
    let s = String::from_utf8_lossy(host);
    let h = if s.starts_with('[') {
        s.find(']').map_or(&s[..], |i| &s[..=i])
    } else {
        s.rsplit_once(':').map_or(&s[..], |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                &s[..]
            }
        })
    };
    h.to_ascii_lowercase()
}

/// Kong's access phase up to the balancer: finds the route and service, applies the protocol
/// rules, and works out the upstream request's URI and headers.
pub(crate) fn plan(w: &Worker, req: &Req, conn: &ConnInfo) -> Decision {
    let cfg = w.config();
    let ectx = req.err_ctx(w);
    let (Ok(path), host) = (
        std::str::from_utf8(&req.path),
        req.host.as_deref().and_then(|h| std::str::from_utf8(h).ok()),
    ) else {
        return Decision::Reply(kong_error(404, "no Route matched with those values", &ectx));
    };
    let scheme = if conn.tls { "https" } else { "http" };
    let parts = RequestParts {
        method: req.method.as_str(),
        path,
        host,
        scheme,
        sni: conn.sni.as_deref(),
        headers: &req.headers,
        local: Some(conn.local),
    };
    let Some(m) = cfg.router.select(&parts) else {
        return Decision::Reply(kong_error(404, "no Route matched with those values", &ectx));
    };
    let route_index = m.route_index;
    let route = &cfg.routes[route_index];
    // Kong adds the debug headers as soon as the route matched, before its protocol checks
    let debug = w.settings.allow_debug_header && req.headers.contains(Known::KongDebug);
    let reply = |r: Reply| Decision::Reply(if debug { with_debug_headers(r, route) } else { r });
    let client = Client::of(conn.peer, &req.headers, &w.settings);
    let forwarded_proto = headers::forwarded_proto(&req.headers, &client, conn.tls);
    let p = route.protocols;

    if p.https && !p.http && forwarded_proto != "https" {
        let code = m.route.https_redirect_status_code;
        if matches!(code, 301 | 302 | 307 | 308) {
            let host = if client.trusted { req.headers.get(Known::XForwardedHost) } else { None }
                .map(|h| String::from_utf8_lossy(h).into_owned())
                .unwrap_or_else(|| {
                    req.host
                        .as_deref()
                        .map(lower_host_without_port)
                        .unwrap_or_else(|| "kong".into())
                });
            let mut location = format!("https://{host}{}", String::from_utf8_lossy(&req.path));
            if let Some(q) = &req.query {
                location.push('?');
                location.push_str(&String::from_utf8_lossy(q));
            }
            return reply(crate::errors::redirect(code, &location));
        }
        if code == 426 {
            let r = kong_error(426, "Please use HTTPS protocol", &ectx)
                .header(http::header::CONNECTION, "Upgrade")
                .header(http::header::UPGRADE, "TLS/1.2, HTTP/1.1");
            return reply(r);
        }
    }

    if p.grpc || p.grpcs {
        let is_grpc_ct = req
            .headers
            .get(Known::ContentType)
            .is_some_and(|ct| ct.starts_with(b"application/grpc"));
        if is_grpc_ct && req.version != Version::HTTP_2 {
            let r = kong_error(426, "Please use HTTP2 protocol", &ectx)
                .header(http::header::CONNECTION, "Upgrade")
                .header(http::header::UPGRADE, "HTTP/2");
            return reply(r);
        }
        if !is_grpc_ct {
            return reply(kong_error(415, "Non-gRPC request matched gRPC route", &ectx));
        }
        if p.grpcs && !p.grpc && forwarded_proto != "https" {
            let r = Reply::new(200)
                .header(CONTENT_TYPE, "application/grpc")
                .header(HeaderName::from_static("grpc-status"), "1")
                .header(
                    HeaderName::from_static("grpc-message"),
                    "gRPC request matched gRPCs route",
                );
            return reply(r);
        }
    }

    let Some(service) = route.service.clone() else {
        return reply(kong_error(503, "no Service found with those values", &ectx));
    };
    if service.scheme.is_grpc() && req.version != Version::HTTP_2 {
        let r = kong_error(426, "Please use HTTP2 protocol", &ectx)
            .header(http::header::CONNECTION, "Upgrade")
            .header(http::header::UPGRADE, "HTTP/2");
        return reply(r);
    }

    // the upstream URI: path per strip_path / path_handling, escaped, then the query
    let mut uri = turnpike_core::uri::escape(
        turnpike_router::upstream_path(&m, service.path.as_deref()).as_bytes(),
    );
    if let Some(q) = &req.query {
        uri.push('?');
        uri.push_str(&String::from_utf8_lossy(q));
    }
    let prefix = if m.route.strip_path { m.matched_path.clone() } else { None };
    let preserve_host = m.route.preserve_host;
    let request_buffering = m.route.request_buffering;
    drop(m);

    let websocket =
        req.headers.get(Known::Upgrade).is_some_and(|v| v.eq_ignore_ascii_case(b"websocket"));
    let (upstream_host, sni) = if preserve_host {
        let h = req
            .host
            .as_deref()
            .map(|h| String::from_utf8_lossy(h).into_owned())
            .or_else(|| conn.sni.as_deref().map(str::to_owned))
            .unwrap_or_default();
        let sni = crate::tls::server_name(&lower_host_without_port(h.as_bytes()));
        (h, sni)
    } else if matches!(service.destination, Destination::Upstream(_)) {
        // Kong's balancer names the target (or the upstream's host_header) per try
        (String::new(), None)
    } else {
        (service.host_header.clone(), service.sni.clone())
    };
    let host_lower =
        req.host.as_deref().map(lower_host_without_port).unwrap_or_else(|| "kong".into());
    let mut plugins = None;
    let mut plugin_changes = None;
    let mut body_limit = None;
    if let Some(chain) = &route.plugins {
        if chain.needs_body && req.has_body && !req.body_read && !service.scheme.is_grpc() {
            return Decision::NeedBody;
        }
        let input = AccessInput {
            req,
            client_ip: client.addr,
            scheme: forwarded_proto,
            port: conn.local.port(),
            route_id: &route.id,
            service_id: Some(&service.id),
        };
        let Access { mut run, exit } = crate::plugins::access(chain, &input);
        if let Some(exit) = exit {
            let mut r = crate::plugins::exit_reply(exit, &ectx);
            run.header_filter_reply(req, (&route.id, Some(&service.id)), &mut r);
            return reply(r);
        }
        if !run.state.upstream.is_empty() {
            plugin_changes = Some(std::mem::take(&mut run.state.upstream));
        }
        body_limit = run.state.body_limit;
        plugins = Some(run);
    }
    let client_trailers = req.headers.has_token(Known::Te, "trailers");
    let edits = headers::upstream_edits(
        &req.headers,
        &UpstreamHeaders {
            settings: &w.settings,
            client,
            version: req.version,
            tls: conn.tls,
            local_port: conn.local.port(),
            host: &host_lower,
            raw_path: &req.path,
            prefix: prefix.as_deref(),
            upstream_host: &upstream_host,
            websocket,
            request_id: req.request_id(),
            grpc: service.scheme.is_grpc(),
        },
    );
    let mut edits = edits;
    let mut new_body = None;
    if let Some(changes) = &mut plugin_changes {
        crate::plugins::apply_upstream(changes, &req.headers, &mut edits, &mut uri);
        new_body = changes.body.take().filter(|_| req.body.is_some()).map(Bytes::from);
    }
    Decision::Proxy(Box::new(Plan {
        cfg,
        route: route_index,
        service,
        uri,
        upstream_host,
        sni,
        websocket,
        request_buffering,
        client_trailers,
        debug,
        edits,
        plugins,
        new_body,
        body_limit,
    }))
}

/// An upstream response head, with its body and the timings of the exchange.
pub(crate) struct Upstreamed {
    pub(crate) head: RespHead,
    pub(crate) body: UpstreamBody,
    pub(crate) upstream_latency: u64,
    pub(crate) proxy_latency: u64,
}

/// Whether a failed try may be repeated, and whether it counts against `retries`.
#[derive(Debug, PartialEq, Eq)]
enum Retry {
    No,
    /// A stale keepalive connection: try again on a new one, for free (nginx does not count
    /// errors on cached connections either).
    Free,
    Counted,
}

fn retry_kind(e: &UpError, reused: bool, replayable: bool, idempotent: bool) -> Retry {
    match e {
        UpError::Connect(_) | UpError::ConnectTimeout | UpError::Tls(_) => Retry::Counted,
        UpError::Write(_) | UpError::Read(_) | UpError::Closed if replayable && idempotent => {
            if reused {
                Retry::Free
            } else {
                Retry::Counted
            }
        }
        UpError::WriteTimeout | UpError::ReadTimeout if replayable && idempotent => Retry::Counted,
        _ => Retry::No,
    }
}

/// nginx retries a request once sent only if its method is idempotent.
fn is_idempotent(m: &Method) -> bool {
    !matches!(m.as_str(), "POST" | "PATCH" | "LOCK")
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The peer of one try.
pub(crate) struct Peer {
    pub(crate) addr: std::net::SocketAddr,
    /// When the service balances over an upstream entity (and the route does not preserve the
    /// client's host): the `Host` for this target, as Kong's balancer sets it (the upstream's
    /// `host_header` or the target's host, with the target's port unless it is the scheme's
    /// default).
    pub(crate) host: Option<String>,
    /// The TLS server name for this peer.
    pub(crate) sni: Option<rustls::pki_types::ServerName<'static>>,
}

/// The peer for a try: the service host or the next upstream target.
pub(crate) async fn pick_peer(w: &Worker, plan: &Plan) -> Result<Peer, UpError> {
    let svc = &plan.service;
    match &svc.destination {
        Destination::Host => {
            let addr = w.dns.resolve(&svc.host, svc.port).await?;
            Ok(Peer { addr, host: None, sni: plan.sni.clone() })
        }
        Destination::Upstream(u) => {
            let t = u.next_target().ok_or(UpError::NoTarget)?;
            let addr = w.dns.resolve(&t.host, t.port).await?;
            if !plan.upstream_host.is_empty() {
                return Ok(Peer { addr, host: None, sni: plan.sni.clone() });
            }
            let name = u.host_header.as_deref().unwrap_or(&t.host);
            let host = if t.port == svc.scheme.default_port() {
                name.to_owned()
            } else {
                format!("{name}:{}", t.port)
            };
            Ok(Peer { addr, host: Some(host), sni: crate::tls::server_name(name) })
        }
    }
}

/// The upstream TLS parameters of a peer: the pool key part and the dial part.
pub(crate) fn peer_dial<'a>(svc: &'a ServiceRt, peer: &Peer) -> Dial<'a> {
    let key = PoolKey {
        addr: peer.addr,
        tls: svc
            .tls_key
            .clone()
            .map(|k| (k, peer.sni.as_ref().map(|n| n.to_str().into_owned()).unwrap_or_default())),
    };
    Dial {
        addr: peer.addr,
        tls: svc.tls.as_ref().map(|c| {
            let name = peer
                .sni
                .clone()
                .unwrap_or_else(|| rustls::pki_types::ServerName::IpAddress(peer.addr.ip().into()));
            (c, name)
        }),
        key,
        connect_timeout: svc.connect_timeout,
    }
}

/// Serializes the upstream request head (and a small buffered body after it); `host` is a
/// `Host` the edits do not carry (the upstream target's).
fn request_head(
    method: &Method,
    uri: &str,
    headers: &Headers,
    edits: &Edits,
    host: Option<&str>,
    body: &[u8],
) -> BytesMut {
    let mut out = BytesMut::with_capacity(1024 + body.len());
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(uri.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    if let Some(h) = host {
        out.put_slice(b"Host: ");
        out.put_slice(h.as_bytes());
        out.put_slice(b"\r\n");
    }
    edits.write(&mut out, headers);
    out.put_slice(b"\r\n");
    out.put_slice(body);
    out
}

/// The balancer and the HTTP/1.1 exchange: picks a peer, takes or opens a connection, sends
/// the request and reads the response head, retrying what is safe to retry.
pub(crate) async fn forward<B: BodySource + ?Sized>(
    w: &Rc<Worker>,
    plan: &mut Plan,
    req: &Req,
    body: &mut B,
) -> Result<Upstreamed, UpError> {
    let svc = &plan.service;
    let idempotent = is_idempotent(&req.method);
    // request_buffering: read a small body before going upstream, so a retry can resend it
    let (ahead, complete) = if body.is_empty() {
        (Bytes::new(), true)
    } else if plan.request_buffering {
        read_ahead(body, w.settings.client_body_buffer_size).await?
    } else {
        (Bytes::new(), false)
    };
    // the body's framing upstream: its length when known, else chunked
    let chunked = if complete {
        if (body.length().is_some() && !body.unframed()) || !ahead.is_empty() {
            plan.edits.set_fmt(Known::ContentLength, format_args!("{}", ahead.len()));
        }
        false
    } else if let Some(n) = body.length() {
        plan.edits.set_fmt(Known::ContentLength, format_args!("{n}"));
        false
    } else {
        plan.edits.drop(Known::ContentLength);
        plan.edits.add("transfer-encoding", b"chunked");
        true
    };
    let small = complete && ahead.len() <= 16 * 1024;
    let plan = &*plan;
    let build_head = |host: Option<&str>| {
        request_head(
            &req.method,
            &plan.uri,
            &req.headers,
            &plan.edits,
            host,
            if small { &ahead } else { &[] },
        )
    };
    // the head, and the target `Host` it was built for
    let mut built: Option<(BytesMut, Option<String>)> = None;
    let head_request = req.method == Method::HEAD;

    let tries = svc.retries.saturating_add(1);
    let mut counted = 0u32;
    let mut fresh_only = false;
    let mut streamed_ahead = Some(ahead.clone());
    loop {
        counted += 1;
        let peer = pick_peer(w, plan).await?;
        let addr = peer.addr;
        let balancer_end = crate::timer::now();
        if built.as_ref().is_some_and(|(_, host)| *host != peer.host) {
            built = None;
        }
        let (head, _) =
            built.get_or_insert_with(|| (build_head(peer.host.as_deref()), peer.host.clone()));
        let dial = peer_dial(svc, &peer);
        let pooled = if fresh_only { None } else { w.pool.take(&dial.key) };
        let mut conn = match pooled {
            Some(c) => c,
            None => {
                // boxed: the TLS handshake's state is large and rarely needed
                match Box::pin(connect(dial)).await {
                    Ok(c) => c,
                    Err(e) if counted < tries => {
                        tracing::debug!(error = %e, %addr, "upstream connect failed; retrying");
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        conn.served += 1;
        let reused = conn.reused;
        let result = if complete {
            exchange_buffered(&mut conn, head, if small { &[] } else { &ahead }, svc, head_request)
                .await
        } else {
            let first = streamed_ahead.take().unwrap_or_default();
            exchange_streaming(&mut conn, head, first, body, chunked, svc, head_request).await
        };
        match result {
            Ok(resp) => {
                let now = crate::timer::now();
                let body = UpstreamBody::new(conn, &resp, svc.read_timeout, w.pool.clone());
                return Ok(Upstreamed {
                    head: resp,
                    body,
                    upstream_latency: ms(now - balancer_end),
                    proxy_latency: ms(balancer_end - req.started),
                });
            }
            Err(e) => {
                let kind = retry_kind(&e, reused, complete, idempotent);
                match kind {
                    Retry::Free => {
                        fresh_only = true;
                        counted -= 1;
                    }
                    Retry::Counted if counted < tries => {}
                    _ => return Err(e),
                }
                tracing::debug!(error = %e, %addr, ?kind, "upstream request failed; retrying");
            }
        }
    }
}

async fn exchange_buffered(
    conn: &mut UpConn,
    head: &[u8],
    body: &[u8],
    svc: &ServiceRt,
    head_request: bool,
) -> Result<RespHead, UpError> {
    // a small body was written into `head`: one write for the request
    conn.write_all(&[head, body], svc.write_timeout).await?;
    conn.read_head(svc.read_timeout, head_request).await
}

async fn exchange_streaming<B: BodySource + ?Sized>(
    conn: &mut UpConn,
    head: &[u8],
    first: Bytes,
    body: &mut B,
    chunked: bool,
    svc: &ServiceRt,
    head_request: bool,
) -> Result<RespHead, UpError> {
    conn.write_all(&[head], svc.write_timeout).await?;
    let mut pending = (!first.is_empty()).then_some(first);
    loop {
        let chunk = match pending.take() {
            Some(c) => c,
            None => match next_chunk(body).await {
                None => break,
                Some(Err(e)) => return Err(UpError::Downstream(e)),
                Some(Ok(c)) => c,
            },
        };
        if chunk.is_empty() {
            continue;
        }
        if chunked {
            let mut size = BytesMut::with_capacity(18);
            crate::h1::write_chunk_header(&mut size, chunk.len());
            conn.write_all(&[&size, &chunk, b"\r\n"], svc.write_timeout).await?;
        } else {
            conn.write_all(&[&chunk], svc.write_timeout).await?;
        }
    }
    if chunked {
        conn.write_all(&[b"0\r\n\r\n"], svc.write_timeout).await?;
    }
    conn.read_head(svc.read_timeout, head_request).await
}

/// The client-facing response for a failed exchange.
pub(crate) fn failure_reply(e: &UpError, req: &Req, w: &Worker, plan: &Plan) -> Reply {
    let ctx = req.err_ctx(w);
    match e {
        UpError::Downstream(crate::body::BodyError::TooLarge)
            if plan
                .body_limit
                .is_some_and(|l| w.settings.client_max_body_size.is_none_or(|max| l < max)) =>
        {
            // request-size-limiting: 417 when the client asked for `100-continue`
            let expect = req
                .headers
                .get_str(Known::Expect)
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("100-continue"));
            let mut r =
                kong_error(if expect { 417 } else { 413 }, "Request size limit exceeded", &ctx);
            r.close = true;
            r
        }
        UpError::Dns(_) => kong_error(503, "name resolution failed", &ctx),
        UpError::NoTarget => kong_error(503, "failure to get a peer from the ring-balancer", &ctx),
        other => {
            let mut r = nginx_error(other.status(), &ctx);
            if matches!(other, UpError::Downstream(_)) {
                r.close = true;
            }
            r
        }
    }
}

/// `Host` of an HTTP/2 request, for the router: `:authority`, else a `Host` header.
pub(crate) fn h2_host(uri: &http::Uri, headers: &HeaderMap) -> Option<Bytes> {
    uri.authority()
        .map(|a| Bytes::copy_from_slice(a.as_str().as_bytes()))
        .or_else(|| headers.get(HOST).map(|h| Bytes::copy_from_slice(h.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_rules() {
        let io = || UpError::Read(std::io::Error::other("x"));
        assert_eq!(retry_kind(&UpError::ConnectTimeout, false, false, false), Retry::Counted);
        assert_eq!(retry_kind(&io(), true, true, true), Retry::Free);
        assert_eq!(retry_kind(&io(), false, true, true), Retry::Counted);
        assert_eq!(retry_kind(&io(), true, true, false), Retry::No, "POST once sent");
        assert_eq!(retry_kind(&io(), true, false, true), Retry::No, "a streamed body");
        assert_eq!(retry_kind(&UpError::ReadTimeout, false, true, true), Retry::Counted);
        assert_eq!(retry_kind(&UpError::Invalid("x"), false, true, true), Retry::No);
    }

    #[test]
    fn host_for_headers() {
        assert_eq!(lower_host_without_port(b"Example.COM:8000"), "example.com");
        assert_eq!(lower_host_without_port(b"[::1]:80"), "[::1]");
        assert_eq!(lower_host_without_port(b"a.b"), "a.b");
    }
}
