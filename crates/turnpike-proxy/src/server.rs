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
use crate::worker::{ActiveGuard, Worker};
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
        worker.drain_notify.notify_waiters();
        if graceful {
            let deadline = tokio::time::Instant::now() + worker.settings.drain_timeout;
            while worker.active.get() > 0 && tokio::time::Instant::now() < deadline {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = stop.changed() => {
                        if matches!(*stop.borrow(), crate::Stop::Immediate) {
                            break;
                        }
                    }
                }
            }
            if worker.active.get() > 0 {
                tracing::warn!(
                    worker = index,
                    connections = worker.active.get(),
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
        let guard = ActiveGuard::new(worker.clone());
        let tls = tls.clone();
        let http2 = spec.http2;
        tokio::task::spawn_local(async move {
            let _guard = guard;
            let worker = _guard.0.clone();
            worker
                .shared
                .stats
                .connections_active
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            serve_connection(&worker, tcp, peer, local, tls, http2).await;
            worker
                .shared
                .stats
                .connections_active
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        });
    }
}

async fn serve_connection(
    worker: &Rc<Worker>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    tls: Option<TlsAcceptor>,
    http2: bool,
) {
    let Some(acceptor) = tls else {
        let info = ConnInfo { peer, local, tls: false, sni: None };
        // a cleartext `http2` listener speaks both: the HTTP/2 preface picks h2c
        return h1::serve(worker, ClientIo::Plain(tcp), info, BytesMut::new(), http2).await;
    };
    let handshake =
        tokio::time::timeout(worker.settings.client_timeouts.header, acceptor.accept(tcp));
    let stream = match handshake.await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let (_, session) = stream.get_ref();
    let sni: Option<Rc<str>> = session.server_name().map(Rc::from);
    let is_h2 = session.alpn_protocol() == Some(b"h2");
    let info = ConnInfo { peer, local, tls: true, sni };
    let io = ClientIo::Tls(Box::new(stream));
    if is_h2 {
        h2::serve(worker, io, info, BytesMut::new()).await;
    } else {
        h1::serve(worker, io, info, BytesMut::new(), false).await;
    }
}
