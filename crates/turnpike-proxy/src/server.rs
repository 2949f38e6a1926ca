//! Listeners and client connections: binding `proxy_listen`, the worker threads, accepting,
//! the TLS handshake (certificate by SNI, ALPN), and the choice between HTTP/1.1 and HTTP/2
//! (ALPN `h2`, or the HTTP/2 preface on a cleartext `http2` listener).

mod h1;
mod h2;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A client connection's transport.
pub(crate) type ClientIo =
    crate::transport::Stream<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>;

use crate::settings::{ListenerSpec, ProxySettings};
use crate::worker::{ConnGuard, Worker};
use crate::Shared;

/// What a connection handler knows about its connection.
#[derive(Clone, Debug)]
pub(crate) struct ConnInfo {
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) tls: bool,
    pub(crate) sni: Option<Rc<str>>,
}

/// Binds one socket for a listener; `reuseport` lets every worker bind its own.
pub(crate) fn bind(
    addr: SocketAddr,
    backlog: u32,
    reuseport: bool,
) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuseport {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// One listening socket as a worker sees it.
pub(crate) struct WorkerListener {
    pub(crate) spec: ListenerSpec,
    pub(crate) socket: std::net::TcpListener,
    pub(crate) tls: Option<TlsAcceptor>,
}

/// The body of a worker thread.
pub(crate) fn run_worker(
    index: usize,
    settings: Arc<ProxySettings>,
    shared: Arc<Shared>,
    listeners: Vec<WorkerListener>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_unpark(crate::timer::refresh)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(worker = index, error = %e, "cannot start a worker event loop");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let worker = Rc::new(Worker::new(settings, shared.clone()));
        let mut accepting = Vec::new();
        for l in listeners {
            let listener = match TcpListener::from_std(l.socket) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(worker = index, error = %e, "cannot register a listener");
                    continue;
                }
            };
            accepting.push(tokio::task::spawn_local(accept_loop(
                worker.clone(),
                listener,
                l.spec,
                l.tls,
            )));
        }
        let housekeeping = tokio::task::spawn_local(worker.clone().housekeeping());

        let mut stop = shared.stop.subscribe();
        let graceful = loop {
            match *stop.borrow_and_update() {
                crate::Stop::Running => {}
                crate::Stop::Graceful => break true,
                crate::Stop::Immediate => break false,
            }
            if stop.changed().await.is_err() {
                break false;
            }
        };
        // stop accepting: the listening sockets close with their tasks
        for a in &accepting {
            a.abort();
        }
        worker.draining.set(true);
        worker.conns.abort_idle();
        worker.drain_notify.notify_waiters();
        if graceful {
            let deadline = tokio::time::Instant::now() + worker.settings.drain_timeout;
            while worker.conns.len() > 0 && tokio::time::Instant::now() < deadline {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = stop.changed() => {
                        if matches!(*stop.borrow(), crate::Stop::Immediate) {
                            break;
                        }
                    }
                }
            }
            if worker.conns.len() > 0 {
                tracing::warn!(
                    worker = index,
                    connections = worker.conns.len(),
                    "drain time over; closing connections"
                );
            }
        }
        housekeeping.abort();
        worker.pool.clear();
    });
    // dropping the LocalSet cancels what is left
}

async fn accept_loop(
    worker: Rc<Worker>,
    listener: TcpListener,
    spec: ListenerSpec,
    tls: Option<TlsAcceptor>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning
                tracing::warn!(error = %e, listener = %spec.addr, "accept() failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let stats = &worker.shared.stats;
        stats.connections_accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        stats.connections_handled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().unwrap_or(spec.addr);
        let guard = ConnGuard::new(worker.clone());
        let slot = guard.slot;
        let tls = tls.clone();
        let http2 = spec.http2;
        let task = tokio::task::spawn_local(async move {
            let stats = guard.worker.shared.stats.clone();
            stats.connections_active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // counted down however the task ends (an aborted idle connection included)
            let _active = ActiveStat(stats);
            serve_connection(&guard, tcp, peer, local, tls, http2).await;
        });
        worker.conns.set_abort(slot, task.abort_handle());
    }
}

/// Decrements the active-connection gauge when dropped.
struct ActiveStat(Arc<turnpike_core::stats::ServerStats>);

impl Drop for ActiveStat {
    fn drop(&mut self) {
        self.0.connections_active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn serve_connection(
    guard: &ConnGuard,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    tls: Option<TlsAcceptor>,
    http2: bool,
) {
    let worker = &guard.worker;
    let Some(acceptor) = tls else {
        let info = ConnInfo { peer, local, tls: false, sni: None };
        // a cleartext `http2` listener speaks both: the HTTP/2 preface picks h2c
        return h1::serve(guard, ClientIo::Plain(tcp), info, BytesMut::new(), http2).await;
    };
    // the handshake and HTTP/2 live in boxes: only connections that use them pay for their
    // (large) state, an idle HTTP/1 connection stays small
    let Some((io, info, is_h2)) = Box::pin(tls_handshake(worker, acceptor, tcp, peer, local)).await
    else {
        return;
    };
    if is_h2 {
        Box::pin(h2::serve(worker, io, info, BytesMut::new())).await;
    } else {
        h1::serve(guard, io, info, BytesMut::new(), false).await;
    }
}

async fn tls_handshake(
    worker: &Worker,
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
) -> Option<(ClientIo, ConnInfo, bool)> {
    let handshake =
        tokio::time::timeout(worker.settings.client_timeouts.header, acceptor.accept(tcp));
    let stream = match handshake.await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return None;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return None;
        }
    };
    let (_, session) = stream.get_ref();
    let sni: Option<Rc<str>> = session.server_name().map(Rc::from);
    let is_h2 = session.alpn_protocol() == Some(b"h2");
    Some((ClientIo::Tls(Box::new(stream)), ConnInfo { peer, local, tls: true, sni }, is_h2))
}
