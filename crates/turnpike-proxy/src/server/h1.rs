//! HTTP/1.x client connections: the keep-alive loop, strict request heads, bodies pulled on
//! demand, responses written with the framing the client understands, protocol switches
//! (WebSocket) tunnelled.
//!
//! An idle keep-alive connection holds no buffer: the loop waits for readability first and
//! only then takes memory to read into (nginx does the same), which is what keeps 10,000 idle
//! connections cheap.

use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{Method, Version};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout, Instant};

use crate::timer::Timer;
use crate::worker::ConnGuard;

use super::{ClientIo, ConnInfo};
use crate::body::{read_ahead, BodyError, H1Body};
use crate::errors::{nginx_error, reason_phrase, ErrCtx, Reply};
use crate::h1::{parse_request, Framing, HeadError, Known, ReqHead};
use crate::headers::{self, DownstreamHeaders, Edits, Headers};
use crate::proxy::{self, Decision, Req, Upstreamed};
use crate::transport::write_parts;
use crate::upstream::UpConn;
use crate::worker::Worker;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum Next {
    Request(ReqHead),
    /// The client spoke HTTP/2 (prior knowledge) on a cleartext `http2` listener.
    H2c,
    /// Nothing more: the client closed, went idle too long, or the worker is draining.
    Close,
    Bad(HeadError),
}

/// Serves one client connection until it closes.
pub(crate) async fn serve(
    guard: &ConnGuard,
    mut io: ClientIo,
    info: ConnInfo,
    mut buf: BytesMut,
    h2c: bool,
) {
    let worker = &guard.worker;
    let mut served: u64 = 0;
    let mut timer = Timer::default();
    loop {
        match next_request(guard, &mut io, &mut buf, &mut timer, served, h2c && served == 0).await {
            Next::Request(head) => {
                served += 1;
                let keep_alive = head.keep_alive
                    && (worker.settings.keepalive_requests == 0
                        || served < worker.settings.keepalive_requests);
                let mut conn = Conn { io: &mut io, buf: &mut buf, timer: &mut timer };
                // boxed: a request's state is large, an idle connection should not carry it
                if !Box::pin(handle(worker, &mut conn, head, &info, keep_alive)).await
                    || worker.draining.get()
                {
                    break;
                }
                if buf.is_empty() {
                    // an idle connection keeps no buffer
                    buf = BytesMut::new();
                }
            }
            Next::H2c => {
                let prefix = buf.split().freeze();
                return Box::pin(super::h2::serve_h2c(worker, io, info, prefix)).await;
            }
            Next::Close => break,
            Next::Bad(e) => {
                tracing::debug!(peer = %info.peer, reason = e.reason, status = e.status, "bad request");
                let rid = worker.request_id();
                let ctx = ErrCtx {
                    headers: None,
                    request_id: std::str::from_utf8(&rid).unwrap_or_default(),
                    h2: false,
                    error_default_type: &worker.settings.error_default_type,
                };
                let mut reply = nginx_error(e.status, &ctx);
                reply.close = true;
                let mut conn = Conn { io: &mut io, buf: &mut buf, timer: &mut timer };
                let _ =
                    write_reply(worker, &mut conn, reply, &rid, crate::timer::now(), false, false)
                        .await;
                break;
            }
        }
    }
    let _ = timeout(Duration::from_secs(1), io.shutdown()).await;
}

/// The client connection as a request handler uses it.
struct Conn<'a> {
    io: &'a mut ClientIo,
    buf: &'a mut BytesMut,
    timer: &'a mut Timer,
}

/// Waits for and parses the next request head.
async fn next_request(
    guard: &ConnGuard,
    io: &mut ClientIo,
    buf: &mut BytesMut,
    timer: &mut Timer,
    served: u64,
    h2c: bool,
) -> Next {
    let worker = &guard.worker;
    let s = &worker.settings;
    if buf.is_empty() {
        if worker.draining.get() {
            return Next::Close;
        }
        let idle = if served == 0 { s.client_timeouts.header } else { s.client_timeouts.keepalive };
        // wait without a buffer; TLS may hold decrypted bytes, so it reads right away. While
        // idle, a drain may abort the connection.
        if let ClientIo::Plain(tcp) = io {
            guard.set_idle(true);
            let readable = timer.run(idle, tcp.readable()).await;
            guard.set_idle(false);
            if !matches!(readable, Some(Ok(()))) {
                return Next::Close;
            }
        }
    }
    let started = crate::timer::now();
    loop {
        if !buf.is_empty() {
            if h2c {
                let n = buf.len().min(H2_PREFACE.len());
                if buf[..n] == H2_PREFACE[..n] {
                    if n == H2_PREFACE.len() {
                        return Next::H2c;
                    }
                } else {
                    match parse_request(buf, &s.limits) {
                        Ok(Some(h)) => return Next::Request(h),
                        Ok(None) => {}
                        Err(e) => return Next::Bad(e),
                    }
                }
            } else {
                match parse_request(buf, &s.limits) {
                    Ok(Some(h)) => return Next::Request(h),
                    Ok(None) => {}
                    Err(e) => return Next::Bad(e),
                }
            }
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(if buf.capacity() == 0 { 4096 } else { buf.capacity() });
        }
        // an idle TLS connection waits here: the keep-alive timeout applies until a byte comes
        let limit = if buf.is_empty() && served > 0 {
            s.client_timeouts.keepalive
        } else {
            s.client_timeouts
                .header
                .saturating_sub(crate::timer::now().saturating_duration_since(started))
        };
        let idle = buf.is_empty();
        guard.set_idle(idle);
        let read = timer.run(limit, io.read_buf(buf)).await;
        guard.set_idle(false);
        match read {
            Some(Ok(n)) if n > 0 => {}
            // closed, failed, draining, or (nginx does the same) a head that does not arrive
            // in time: close without a response
            _ => return Next::Close,
        }
    }
}

fn host_of(head: &ReqHead) -> Option<Bytes> {
    head.fields.get_shared(Known::Host).or_else(|| head.authority.clone())
}

/// Handles one request; returns whether the connection may serve another.
async fn handle(
    worker: &Rc<Worker>,
    conn: &mut Conn<'_>,
    head: ReqHead,
    info: &ConnInfo,
    keep_alive: bool,
) -> bool {
    let started = crate::timer::now();
    worker.shared.stats.total_requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let request_id = worker.request_id();
    let head_request = head.method == Method::HEAD;
    let framing = head.framing;
    let expect_continue = head.expect_continue;
    let version = head.version;
    let path = head.target.slice(..head.path_len);
    let query = (head.path_len < head.target.len()).then(|| head.target.slice(head.path_len + 1..));
    let host = host_of(&head);
    let req = Req {
        method: head.method,
        version,
        path,
        query,
        host,
        headers: Headers::H1(head.fields),
        started,
        request_id,
        has_body: !matches!(framing, Framing::Empty | Framing::Close),
        body: None,
        body_read: false,
    };

    // a body larger than client_max_body_size is refused before anything else
    if let (Some(limit), Framing::Length(n)) = (worker.settings.client_max_body_size, framing) {
        if n > limit {
            let mut r = nginx_error(413, &req.err_ctx(worker));
            r.close = true;
            let _ = write_reply(worker, conn, r, &request_id, started, head_request, false).await;
            return false;
        }
    }

    let mut req = req;
    let mut decision = proxy::plan(worker, &req, info);
    // a plugin reads the body: read it ahead (up to client_body_buffer_size), then plan again
    let mut early: Option<(Bytes, crate::body::Suspended)> = None;
    let mut continued = false;
    if let Decision::NeedBody = decision {
        if expect_continue
            && write_parts(conn.io, &[b"HTTP/1.1 100 Continue\r\n\r\n"]).await.is_err()
        {
            return false;
        }
        continued = true;
        let mut body = H1Body::new(
            conn.io,
            conn.buf,
            conn.timer,
            framing,
            worker.settings.client_max_body_size,
            worker.settings.client_timeouts.body,
        );
        match read_ahead(&mut body, worker.settings.client_body_buffer_size).await {
            Ok((data, complete)) => {
                req.body = complete.then(|| data.clone());
                early = Some((data, body.suspend()));
            }
            Err(e) => {
                if matches!(e, BodyError::Closed | BodyError::Read(_) | BodyError::Timeout) {
                    return false;
                }
                let mut r = nginx_error(e.status(), &req.err_ctx(worker));
                r.close = true;
                let _ =
                    write_reply(worker, conn, r, &request_id, started, head_request, false).await;
                return false;
            }
        }
        req.body_read = true;
        decision = proxy::plan(worker, &req, info);
    }

    let mut plan = match decision {
        Decision::Reply(r) => {
            let pending_body = match &early {
                Some((_, s)) => !s.is_complete(),
                None => !matches!(framing, Framing::Empty),
            };
            let keep = keep_alive && !r.close;
            if write_reply(
                worker,
                conn,
                r,
                &request_id,
                started,
                head_request,
                keep && !pending_body,
            )
            .await
            .is_err()
            {
                return false;
            }
            if keep && pending_body && !expect_continue && early.is_none() {
                // read and drop the body so that the connection can go on
                let timeout = worker.settings.client_timeouts.body;
                let mut body =
                    H1Body::new(conn.io, conn.buf, conn.timer, framing, Some(1 << 20), timeout);
                return body.drain().await.is_ok();
            }
            return keep && !pending_body;
        }
        Decision::Proxy(plan) => plan,
        // planned with the body read: a plugin cannot ask again
        Decision::NeedBody => return false,
    };

    if expect_continue
        && !continued
        && !matches!(framing, Framing::Empty)
        && write_parts(conn.io, &[b"HTTP/1.1 100 Continue\r\n\r\n"]).await.is_err()
    {
        return false;
    }
    let (first, mut body) = match early {
        Some((data, suspended)) => {
            (Some(data), H1Body::resume(conn.io, conn.buf, conn.timer, suspended))
        }
        None => (
            None,
            H1Body::new(
                conn.io,
                conn.buf,
                conn.timer,
                framing,
                worker.settings.client_max_body_size,
                worker.settings.client_timeouts.body,
            ),
        ),
    };
    if let Some(limit) = plan.body_limit {
        body.limit_to(limit);
    }
    let (first, replaced) = plan.first_body(first);
    let result = if first.is_some() {
        let mut pre = crate::body::Prefetched { first, rest: &mut body, replaced };
        proxy::forward(worker, &mut plan, &req, &mut pre).await
    } else {
        proxy::forward(worker, &mut plan, &req, &mut body).await
    };
    let body_complete = body.is_complete();
    match result {
        Err(e) => {
            if let crate::upstream::UpError::Downstream(
                BodyError::Closed | BodyError::Read(_) | BodyError::Timeout,
            ) = &e
            {
                // the client is gone or stalled: nothing to answer
                tracing::debug!(peer = %info.peer, error = %e, "client request body failed");
                return false;
            }
            tracing::warn!(
                error = %e,
                service = %plan.service.name.as_deref().unwrap_or(&plan.service.id),
                request_id = %req.request_id(),
                "upstream request failed"
            );
            let mut r = proxy::failure_reply(&e, &req, worker, &plan);
            if !body_complete {
                r.close = true;
            }
            let keep = keep_alive && !r.close;
            plan.header_filter_reply(&req, &mut r);
            let _ = write_reply_proxied(worker, conn, r, &req, &plan, head_request, keep).await;
            keep
        }
        Ok(up) => {
            let keep = keep_alive && body_complete && !worker.draining.get();
            respond(worker, conn, &req, &mut plan, up, head_request, keep).await
        }
    }
}

/// Writes a status line.
fn status_line(out: &mut BytesMut, status: u16, reason: &[u8]) {
    out.put_slice(b"HTTP/1.1 ");
    let mut code = [0u8; 3];
    code[0] = b'0' + (status / 100 % 10) as u8;
    code[1] = b'0' + (status / 10 % 10) as u8;
    code[2] = b'0' + (status % 10) as u8;
    out.put_slice(&code);
    out.put_u8(b' ');
    out.put_slice(reason);
    out.put_slice(b"\r\n");
}

/// Writes the framing and connection fields and ends the head.
fn end_head(out: &mut BytesMut, chunked: bool, connection: &[u8]) {
    if chunked {
        out.put_slice(b"Transfer-Encoding: chunked\r\n");
    }
    if !connection.is_empty() {
        out.put_slice(b"Connection: ");
        out.put_slice(connection);
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
}

fn connection_value(keep: bool) -> &'static [u8] {
    if keep {
        b"keep-alive"
    } else {
        b"close"
    }
}

/// Writes a response the gateway generated.
async fn write_reply(
    worker: &Worker,
    conn: &mut Conn<'_>,
    reply: Reply,
    request_id: &[u8; 32],
    started: Instant,
    head_request: bool,
    keep: bool,
) -> std::io::Result<()> {
    let latency = crate::timer::ms_since(started);
    let rid = std::str::from_utf8(request_id).unwrap_or_default();
    let mut extra = Edits::new();
    headers::generated(&mut extra, &worker.settings, latency, rid, &worker.date());
    send_generated(worker, conn, &reply, &extra, head_request, keep).await
}

async fn send_generated(
    worker: &Worker,
    conn: &mut Conn<'_>,
    reply: &Reply,
    extra: &Edits,
    head_request: bool,
    keep: bool,
) -> std::io::Result<()> {
    let mut out = BytesMut::with_capacity(512 + reply.body.len());
    status_line(&mut out, reply.status, reason_phrase(reply.status).unwrap_or("").as_bytes());
    let _ = write!(crate::headers::FmtBytes(&mut out), "Content-Length: {}\r\n", reply.body.len());
    for (name, value) in &reply.headers {
        crate::headers::put_title_case(&mut out, name.as_str());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    extra.write(&mut out, &Headers::Map(http::HeaderMap::new()));
    end_head(&mut out, false, connection_value(keep));
    if !head_request {
        out.put_slice(&reply.body);
    }
    match conn.timer.run(worker.settings.client_timeouts.send, write_parts(conn.io, &[&out])).await
    {
        Some(r) => r,
        None => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// A generated error after the request was routed (latency headers of a proxied request).
async fn write_reply_proxied(
    worker: &Worker,
    conn: &mut Conn<'_>,
    reply: Reply,
    req: &Req,
    plan: &proxy::Plan,
    head_request: bool,
    keep: bool,
) -> std::io::Result<()> {
    let mut extra = Edits::new();
    headers::generated(
        &mut extra,
        &worker.settings,
        req.elapsed_ms(),
        req.request_id(),
        &worker.date(),
    );
    if let Some((rid, rname, sid, sname)) = plan.debug_info() {
        headers::debug_headers(&mut extra, rid, rname, Some(sid), sname);
    }
    send_generated(worker, conn, &reply, &extra, head_request, keep).await
}

/// Writes a proxied response; returns whether the connection may go on.
async fn respond(
    worker: &Rc<Worker>,
    conn: &mut Conn<'_>,
    req: &Req,
    plan: &mut proxy::Plan,
    up: Upstreamed,
    head_request: bool,
    keep: bool,
) -> bool {
    let Upstreamed { head: resp, mut body, upstream_latency, proxy_latency } = up;
    let status = resp.status.as_u16();
    let switching = status == 101;
    let date = worker.date();
    let fields = Headers::H1(resp.fields);
    let mut edits = headers::downstream_edits(
        &fields,
        &DownstreamHeaders {
            settings: &worker.settings,
            websocket: plan.websocket,
            client_wants_trailers: plan.client_trailers,
            grpc_upstream: false,
            upstream_status: status,
            upstream_latency,
            proxy_latency,
            request_id: req.request_id(),
            date: &date,
            debug: plan.debug_info(),
        },
    );
    plan.header_filter_edits(req, status, &fields, &mut edits);
    let reason: &[u8] = if resp.reason.is_empty() {
        reason_phrase(status).unwrap_or("").as_bytes()
    } else {
        &resp.reason
    };
    let send_timeout = worker.settings.client_timeouts.send;

    if switching {
        if !plan.websocket {
            // a protocol switch the client did not ask for: refuse it
            return false;
        }
        let mut out = BytesMut::with_capacity(512);
        status_line(&mut out, status, reason);
        edits.write(&mut out, &fields);
        end_head(&mut out, false, b"upgrade");
        if !send_all(conn, &[&out], send_timeout).await {
            return false;
        }
        if let Some(up) = body.into_conn() {
            // boxed: its buffers would otherwise bloat every request's future
            Box::pin(tunnel(conn.io, conn.buf, up, plan.service.read_timeout)).await;
        }
        return false;
    }

    let bodiless = head_request || status == 204 || status == 304 || (100..200).contains(&status);
    // HTTP/1.0 clients get close-delimited bodies of unknown length
    let known = body.known_length();
    let chunked = !bodiless && known.is_none() && req.version == Version::HTTP_11;
    let keep = keep && (bodiless || known.is_some() || chunked);
    let mut out = BytesMut::with_capacity(1024);
    status_line(&mut out, status, reason);
    edits.write(&mut out, &fields);
    end_head(&mut out, chunked, connection_value(keep));
    drop(fields);

    if bodiless {
        drop(body);
        return send_all(conn, &[&out], send_timeout).await && keep;
    }
    if let Some(all) = body.take_buffered() {
        // the common small response: one write for head and body
        if all.len() <= 16 * 1024 {
            out.put_slice(&all);
            return send_all(conn, &[&out], send_timeout).await && keep;
        }
        return send_all(conn, &[&out, &all], send_timeout).await && keep;
    }
    if !send_all(conn, &[&out], send_timeout).await {
        return false;
    }
    let mut size = BytesMut::with_capacity(20);
    loop {
        match body.frame().await {
            None => break,
            Some(Err(e)) => {
                tracing::warn!(error = %e, request_id = %req.request_id(), "upstream response body failed");
                // the head is out: the only signal left is closing without the end of body
                return false;
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else { continue };
                if data.is_empty() {
                    continue;
                }
                let ok = if chunked {
                    size.clear();
                    crate::h1::write_chunk_header(&mut size, data.len());
                    send_all(conn, &[&size, &data, b"\r\n"], send_timeout).await
                } else {
                    send_all(conn, &[&data], send_timeout).await
                };
                if !ok {
                    return false;
                }
            }
        }
    }
    if chunked && !send_all(conn, &[b"0\r\n\r\n"], send_timeout).await {
        return false;
    }
    keep
}

async fn send_all(conn: &mut Conn<'_>, parts: &[&[u8]], send_timeout: Duration) -> bool {
    matches!(conn.timer.run(send_timeout, write_parts(conn.io, parts)).await, Some(Ok(())))
}

/// Relays bytes both ways after a protocol switch, until either side closes or nothing moves
/// for `idle` (nginx applies `proxy_read_timeout` to upgraded connections the same way).
async fn tunnel(client: &mut ClientIo, client_buf: &mut BytesMut, mut up: UpConn, idle: Duration) {
    // bytes that arrived early go first
    if !client_buf.is_empty() {
        let early = client_buf.split();
        if up.io.write_all(&early).await.is_err() {
            return;
        }
    }
    if !up.buf.is_empty() {
        let early = up.buf.split();
        if client.write_all(&early).await.is_err() {
            return;
        }
    }
    let mut a = vec![0u8; 16 * 1024];
    let mut b = vec![0u8; 16 * 1024];
    let mut client_open = true;
    let mut up_open = true;
    while client_open || up_open {
        tokio::select! {
            r = client.read(&mut a), if client_open => match r {
                Ok(0) | Err(_) => {
                    client_open = false;
                    let _ = up.io.shutdown().await;
                }
                Ok(n) => if up.io.write_all(&a[..n]).await.is_err() { return },
            },
            r = up.io.read(&mut b), if up_open => match r {
                Ok(0) | Err(_) => {
                    up_open = false;
                    let _ = client.shutdown().await;
                }
                Ok(n) => if client.write_all(&b[..n]).await.is_err() { return },
            },
            _ = tokio::time::sleep(idle) => return,
        }
    }
}
