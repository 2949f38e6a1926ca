//! HTTP/2 client connections (ALPN `h2`, or prior knowledge on a cleartext `http2` listener),
//! served by hyper's HTTP/2 server on the worker's event loop. Each stream goes through the
//! same access phase as an HTTP/1 request; gRPC services are reached over HTTP/2, the others
//! over HTTP/1.1.

use std::convert::Infallible;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Request, Response, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::{ClientIo, ConnInfo};
use crate::body::{read_ahead, H2Body};
use crate::errors::{nginx_error, Reply};
use crate::headers::{self, DownstreamHeaders, Edits, Headers};
use crate::proxy::{self, Decision, Plan, Req};
use crate::transport::Rewind;
use crate::upstream::{UpError, UpstreamBody};
use crate::upstream_h2::LocalExec;
use crate::worker::Worker;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body towards an HTTP/2 client.
pub(crate) enum ProxyBody {
    Full(Option<Bytes>),
    Upstream(UpstreamBody),
    Grpc(Incoming),
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Self::Upstream(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            Self::Grpc(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(b) => b.is_none(),
            Self::Upstream(b) => b.is_end_stream(),
            Self::Grpc(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Upstream(b) => b.size_hint(),
            Self::Grpc(b) => b.size_hint(),
        }
    }
}

/// Serves an HTTP/2 connection negotiated with ALPN.
pub(crate) async fn serve(worker: &Rc<Worker>, io: ClientIo, info: ConnInfo, _buf: BytesMut) {
    serve_io(worker, io, info).await;
}

/// Serves a cleartext HTTP/2 connection whose first bytes were already read.
pub(crate) async fn serve_h2c(worker: &Rc<Worker>, io: ClientIo, info: ConnInfo, prefix: Bytes) {
    serve_io(worker, Rewind { prefix, inner: io }, info).await;
}

async fn serve_io<I: AsyncRead + AsyncWrite + Unpin + 'static>(
    worker: &Rc<Worker>,
    io: I,
    info: ConnInfo,
) {
    let info = Rc::new(info);
    let w = worker.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let w = w.clone();
        let info = info.clone();
        async move { Ok::<_, Infallible>(handle(&w, &info, req).await) }
    });
    let mut builder = hyper::server::conn::http2::Builder::new(LocalExec);
    builder
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(worker.settings.limits.head).unwrap_or(u32::MAX))
        .keep_alive_interval(None);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    if worker.draining.get() {
        conn.as_mut().graceful_shutdown();
    }
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "HTTP/2 connection ended");
            }
            return;
        }
        _ = worker.drain_notify.notified() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

fn generated(worker: &Worker, reply: Reply, req: &Req, plan: Option<&Plan>) -> Response<ProxyBody> {
    let mut map = HeaderMap::with_capacity(reply.headers.len() + 5);
    if !reply.body.is_empty() || !reply.headers.iter().any(|(k, _)| k == "grpc-status") {
        map.insert(CONTENT_LENGTH, HeaderValue::from(reply.body.len()));
    }
    // HTTP/2 has no connection-level headers
    for (k, v) in reply.headers {
        if k != http::header::CONNECTION && k != http::header::UPGRADE {
            map.append(k, v);
        }
    }
    let mut extra = Edits::new();
    headers::generated(
        &mut extra,
        &worker.settings,
        req.elapsed_ms(),
        req.request_id(),
        &worker.date(),
    );
    if let Some((rid, rname, sid, sname)) = plan.and_then(Plan::debug_info) {
        headers::debug_headers(&mut extra, rid, rname, Some(sid), sname);
    }
    let headers = extra.apply_to_map(Headers::Map(map));
    let body = if req.method == http::Method::HEAD || reply.body.is_empty() {
        None
    } else {
        Some(reply.body)
    };
    let mut resp = Response::new(ProxyBody::Full(body));
    *resp.status_mut() =
        http::StatusCode::from_u16(reply.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    *resp.headers_mut() = headers;
    resp
}

async fn handle(
    worker: &Rc<Worker>,
    info: &ConnInfo,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    worker.shared.stats.total_requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (parts, incoming) = req.into_parts();
    let (path, query) = match parts.uri.path_and_query() {
        Some(pq) => {
            let s = pq.as_str();
            match s.split_once('?') {
                Some((p, q)) => (
                    Bytes::copy_from_slice(p.as_bytes()),
                    Some(Bytes::copy_from_slice(q.as_bytes())),
                ),
                None => (Bytes::copy_from_slice(s.as_bytes()), None),
            }
        }
        None => (Bytes::from_static(b"/"), None),
    };
    let mut req = Req {
        method: parts.method,
        version: Version::HTTP_2,
        path,
        query,
        host: proxy::h2_host(&parts.uri, &parts.headers),
        headers: Headers::Map(parts.headers),
        started: Instant::now(),
        request_id: worker.request_id(),
        has_body: !incoming.is_end_stream(),
        body: None,
        body_read: false,
    };
    if let (Some(limit), Some(n)) =
        (worker.settings.client_max_body_size, req.headers.content_length())
    {
        if n > limit {
            return generated(worker, nginx_error(413, &req.err_ctx(worker)), &req, None);
        }
    }
    let length = req.headers.content_length();
    let mut body = H2Body {
        inner: incoming,
        length,
        limit: worker.settings.client_max_body_size,
        received: 0,
    };
    let mut decision = proxy::plan(worker, &req, info);
    let mut first = None;
    if let Decision::NeedBody = decision {
        // a plugin reads the body: read it ahead, then plan again
        match read_ahead(&mut body, worker.settings.client_body_buffer_size).await {
            Ok((data, complete)) => {
                req.body = complete.then(|| data.clone());
                first = Some(data);
            }
            Err(e) => {
                return generated(worker, nginx_error(e.status(), &req.err_ctx(worker)), &req, None)
            }
        }
        req.body_read = true;
        decision = proxy::plan(worker, &req, info);
    }
    let mut plan = match decision {
        Decision::Reply(r) => return generated(worker, r, &req, None),
        Decision::Proxy(p) => p,
        Decision::NeedBody => {
            return generated(worker, nginx_error(500, &req.err_ctx(worker)), &req, None)
        }
    };
    if plan.service.scheme.is_grpc() {
        return grpc(worker, *plan, req, body.inner).await;
    }
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
    match result {
        Err(e) => {
            tracing::warn!(error = %e, request_id = %req.request_id(), "upstream request failed");
            let mut r = proxy::failure_reply(&e, &req, worker, &plan);
            plan.header_filter_reply(&req, &mut r);
            generated(worker, r, &req, Some(&plan))
        }
        Ok(up) => {
            let proxy::Upstreamed { head, body, upstream_latency, proxy_latency } = up;
            let status = head.status;
            let fields = Headers::H1(head.fields);
            let date = worker.date();
            let mut edits = headers::downstream_edits(
                &fields,
                &DownstreamHeaders {
                    settings: &worker.settings,
                    websocket: false,
                    client_wants_trailers: plan.client_trailers,
                    grpc_upstream: false,
                    upstream_status: status.as_u16(),
                    upstream_latency,
                    proxy_latency,
                    request_id: req.request_id(),
                    date: &date,
                    debug: plan.debug_info(),
                },
            );
            plan.header_filter_edits(&req, status.as_u16(), &fields, &mut edits);
            let mut headers = edits.apply_to_map(fields);
            headers.remove(http::header::UPGRADE);
            let mut resp = Response::new(ProxyBody::Upstream(body));
            *resp.status_mut() = status;
            *resp.headers_mut() = headers;
            resp
        }
    }
}

/// A gRPC call: the stream goes upstream over HTTP/2, trailers and all.
async fn grpc(
    worker: &Rc<Worker>,
    mut plan: Plan,
    req: Req,
    incoming: Incoming,
) -> Response<ProxyBody> {
    let edits = std::mem::take(&mut plan.edits);
    let mut plugins = plan.plugins.take();
    let ids = (plan.cfg.routes[plan.route].id.clone(), plan.service.id.clone());
    let plan = &plan;
    let svc = &plan.service;
    // the request keeps its headers for error replies; the upstream gets an edited copy
    let received = match &req.headers {
        Headers::Map(m) => Headers::Map(m.clone()),
        Headers::H1(f) => Headers::Map(f.to_header_map()),
    };
    let mut headers = edits.apply_to_map(received);
    headers.remove(http::header::HOST);
    let scheme = if svc.scheme.is_tls() { "https" } else { "http" };
    let started = Instant::now();
    let result = async {
        let peer = proxy::pick_peer(worker, plan).await?;
        let authority = peer.host.as_deref().unwrap_or(&plan.upstream_host);
        let uri = http::Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query(plan.uri.as_str())
            .build()
            .map_err(|_| UpError::Invalid("invalid upstream host"))?;
        let mut upreq = Request::new(incoming);
        *upreq.method_mut() = req.method.clone();
        *upreq.uri_mut() = uri;
        *upreq.version_mut() = Version::HTTP_2;
        *upreq.headers_mut() = headers;
        let dial = proxy::peer_dial(svc, &peer);
        worker.h2.send(dial, upreq, svc.read_timeout).await
    }
    .await;
    let upstream_latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match result {
        Err(e) => {
            tracing::warn!(error = %e, request_id = %req.request_id(), "gRPC upstream request failed");
            let mut r = proxy::failure_reply(&e, &req, worker, plan);
            if let Some(run) = plugins.as_mut() {
                run.header_filter_reply(&req, (&ids.0, Some(&ids.1)), &mut r);
            }
            generated(worker, r, &req, Some(plan))
        }
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            let date = worker.date();
            let received = Headers::Map(std::mem::take(&mut parts.headers));
            let mut edits = headers::downstream_edits(
                &received,
                &DownstreamHeaders {
                    settings: &worker.settings,
                    websocket: false,
                    client_wants_trailers: true,
                    grpc_upstream: true,
                    upstream_status: parts.status.as_u16(),
                    upstream_latency,
                    proxy_latency: u64::try_from((started - req.started).as_millis()).unwrap_or(0),
                    request_id: req.request_id(),
                    date: &date,
                    debug: plan.debug_info(),
                },
            );
            if let Some(run) = plugins.as_mut() {
                let status = parts.status.as_u16();
                run.header_filter_edits(
                    &req,
                    (&ids.0, Some(&ids.1)),
                    status,
                    &received,
                    &mut edits,
                );
            }
            parts.headers = edits.apply_to_map(received);
            if !parts.headers.contains_key(CONTENT_TYPE) {
                parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            }
            Response::from_parts(parts, ProxyBody::Grpc(body))
        }
    }
}
