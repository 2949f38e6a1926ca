//! Upstream connections: connecting (TCP, then TLS for https/grpcs), the keepalive pool, and the
//! HTTP/1.1 exchange: writing a request head and body, reading a response head, and the
//! response body as a stream that hands the connection back to the pool when it ends.
//!
//! Everything here belongs to one worker thread: pools and caches are `Rc`/`RefCell`, never
//! locked, and a connection never moves between threads.

mod dns;
mod pool;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::net::TcpStream;
use tokio::time::Instant;

pub(crate) use dns::DnsCache;
pub(crate) use pool::{Pool, PoolKey};

use crate::h1::{parse_response, ChunkedDecoder, Decoded, Framing, RespHead};

/// The largest upstream response head accepted (nginx's `proxy_buffer_size` plays this part).
pub(crate) const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// What went wrong talking to an upstream. The status a client gets for each is Kong's
/// (nginx's): refusals and protocol errors are 502, timeouts 504, name resolution 503.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpError {
    #[error("name resolution failed: {0}")]
    Dns(String),
    #[error("no upstream target available")]
    NoTarget,
    #[error("connect() failed: {0}")]
    Connect(io::Error),
    #[error("upstream timed out while connecting")]
    ConnectTimeout,
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
    #[error("writing to the upstream failed: {0}")]
    Write(io::Error),
    #[error("upstream timed out while sending the request")]
    WriteTimeout,
    #[error("reading from the upstream failed: {0}")]
    Read(io::Error),
    #[error("upstream timed out while reading the response")]
    ReadTimeout,
    #[error("upstream prematurely closed the connection")]
    Closed,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("client request body: {0}")]
    Downstream(#[from] crate::body::BodyError),
}

impl UpError {
    /// The status the client gets.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Self::Dns(_) | Self::NoTarget => 503,
            Self::ConnectTimeout | Self::WriteTimeout | Self::ReadTimeout => 504,
            Self::Downstream(e) => e.status(),
            _ => 502,
        }
    }
}

/// A connection's transport.
pub(crate) type UpIo = crate::transport::Stream<tokio_rustls::client::TlsStream<TcpStream>>;

/// An HTTP/1.1 connection to an upstream.
pub(crate) struct UpConn {
    pub(crate) io: UpIo,
    pub(crate) buf: BytesMut,
    pub(crate) key: PoolKey,
    /// Requests sent on this connection so far.
    pub(crate) served: u64,
    /// Whether the connection came from the pool (a failure on it may be a stale keepalive).
    pub(crate) reused: bool,
    pub(crate) idle_since: Instant,
    timer: crate::timer::Timer,
}

/// How to reach one peer.
pub(crate) struct Dial<'a> {
    pub(crate) addr: SocketAddr,
    pub(crate) tls:
        Option<(&'a std::sync::Arc<rustls::ClientConfig>, rustls::pki_types::ServerName<'static>)>,
    pub(crate) key: PoolKey,
    pub(crate) connect_timeout: Duration,
}

/// Opens a new connection (TCP, then TLS), within the connect timeout.
pub(crate) async fn connect(dial: Dial<'_>) -> Result<UpConn, UpError> {
    let deadline = Instant::now() + dial.connect_timeout;
    let tcp = match tokio::time::timeout_at(deadline, TcpStream::connect(dial.addr)).await {
        Err(_) => return Err(UpError::ConnectTimeout),
        Ok(Err(e)) => return Err(UpError::Connect(e)),
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    let io = match dial.tls {
        None => UpIo::Plain(tcp),
        Some((config, name)) => {
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            match tokio::time::timeout_at(deadline, connector.connect(name, tcp)).await {
                Err(_) => return Err(UpError::ConnectTimeout),
                Ok(Err(e)) => return Err(UpError::Tls(e)),
                Ok(Ok(s)) => UpIo::Tls(Box::new(s)),
            }
        }
    };
    Ok(UpConn {
        io,
        buf: BytesMut::new(),
        key: dial.key,
        served: 0,
        reused: false,
        idle_since: crate::timer::now(),
        timer: crate::timer::Timer::default(),
    })
}

impl UpConn {
    /// Writes all of `parts` (vectored), within `write_timeout` per call.
    pub(crate) async fn write_all(
        &mut self,
        parts: &[&[u8]],
        write_timeout: Duration,
    ) -> Result<(), UpError> {
        match self
            .timer
            .run(write_timeout, crate::transport::write_parts(&mut self.io, parts))
            .await
        {
            None => Err(UpError::WriteTimeout),
            Some(Err(e)) => Err(UpError::Write(e)),
            Some(Ok(())) => Ok(()),
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream.
    pub(crate) async fn read_more(&mut self, read_timeout: Duration) -> Result<usize, UpError> {
        if self.buf.capacity() - self.buf.len() < 2048 {
            self.buf.reserve(8192);
        }
        match self
            .timer
            .run(read_timeout, tokio::io::AsyncReadExt::read_buf(&mut self.io, &mut self.buf))
            .await
        {
            None => Err(UpError::ReadTimeout),
            Some(Err(e)) => Err(UpError::Read(e)),
            Some(Ok(n)) => Ok(n),
        }
    }

    /// Reads the response head (skipping interim 1xx responses other than 101).
    pub(crate) async fn read_head(
        &mut self,
        read_timeout: Duration,
        head_request: bool,
    ) -> Result<RespHead, UpError> {
        loop {
            if !self.buf.is_empty() {
                if let Some(head) = parse_response(&mut self.buf, MAX_RESPONSE_HEAD, head_request)
                    .map_err(UpError::Invalid)?
                {
                    if head.status.is_informational()
                        && head.status != http::StatusCode::SWITCHING_PROTOCOLS
                    {
                        continue;
                    }
                    return Ok(head);
                }
            }
            if self.read_more(read_timeout).await? == 0 {
                return Err(UpError::Closed);
            }
        }
    }
}

/// Reads into `buf` from `io` without an extra copy (tokio-util's helper does the
/// uninitialized-memory bookkeeping).
fn poll_fill(io: &mut UpIo, buf: &mut BytesMut, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < 2048 {
        buf.reserve(16 * 1024);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

enum Remaining {
    Length(u64),
    Chunked(ChunkedDecoder),
    Close,
    Done,
}

/// A response body read from an upstream connection. When the body ends and the connection
/// may carry another request, the connection goes back to the pool; a body dropped before
/// its end closes the connection.
pub(crate) struct UpstreamBody {
    conn: Option<UpConn>,
    remaining: Remaining,
    keep_alive: bool,
    read_timeout: Duration,
    /// Whether the read deadline is armed for the current wait.
    armed: bool,
    pool: Rc<Pool>,
    /// Bytes received so far (for logs and latency accounting).
    pub(crate) received: u64,
}

impl UpstreamBody {
    pub(crate) fn new(
        conn: UpConn,
        head: &RespHead,
        read_timeout: Duration,
        pool: Rc<Pool>,
    ) -> Self {
        let remaining = match head.framing {
            Framing::Empty => Remaining::Done,
            Framing::Length(n) => Remaining::Length(n),
            Framing::Chunked => Remaining::Chunked(ChunkedDecoder::default()),
            Framing::Close => Remaining::Close,
        };
        let mut body = Self {
            conn: Some(conn),
            remaining,
            keep_alive: head.keep_alive,
            read_timeout,
            armed: false,
            pool,
            received: 0,
        };
        // after a protocol switch the connection is the tunnel's (`into_conn`), not the pool's
        if matches!(body.remaining, Remaining::Done)
            && head.status != http::StatusCode::SWITCHING_PROTOCOLS
        {
            body.finish();
        }
        body
    }

    /// If the whole body is already buffered (a small response read with its head), takes it.
    pub(crate) fn take_buffered(&mut self) -> Option<Bytes> {
        match self.remaining {
            Remaining::Done => Some(Bytes::new()),
            Remaining::Length(n) => {
                let conn = self.conn.as_mut()?;
                if (conn.buf.len() as u64) < n {
                    return None;
                }
                let data = conn.buf.split_to(n as usize).freeze();
                self.received += n;
                self.remaining = Remaining::Done;
                self.finish();
                Some(data)
            }
            _ => None,
        }
    }

    /// The connection, for a protocol switch (`101`): the body is over, the stream goes on.
    pub(crate) fn into_conn(mut self) -> Option<UpConn> {
        self.remaining = Remaining::Done;
        self.conn.take()
    }

    pub(crate) fn known_length(&self) -> Option<u64> {
        match self.remaining {
            Remaining::Done => Some(0),
            Remaining::Length(n) => Some(n),
            _ => None,
        }
    }

    fn finish(&mut self) {
        self.remaining = Remaining::Done;
        if let Some(conn) = self.conn.take() {
            if self.keep_alive && conn.buf.is_empty() {
                self.pool.put(conn);
            }
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = UpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpError>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            // hand out what is buffered first
            let data = match &mut this.remaining {
                Remaining::Done => None,
                Remaining::Length(0) => None,
                Remaining::Length(n) if !conn.buf.is_empty() => {
                    let take = (*n).min(conn.buf.len() as u64);
                    *n -= take;
                    Some(conn.buf.split_to(take as usize).freeze())
                }
                Remaining::Chunked(dec) if !conn.buf.is_empty() || dec.is_done() => {
                    match dec.decode(&mut conn.buf).map_err(UpError::Invalid) {
                        Err(e) => {
                            this.conn = None;
                            return Poll::Ready(Some(Err(e)));
                        }
                        Ok(Decoded::Data(d)) => Some(d),
                        Ok(Decoded::Done) => {
                            this.finish();
                            return Poll::Ready(None);
                        }
                        Ok(Decoded::NeedMore) => None,
                    }
                }
                Remaining::Close if !conn.buf.is_empty() => Some(conn.buf.split().freeze()),
                _ => None,
            };
            if let Some(d) = data {
                this.received += d.len() as u64;
                if matches!(this.remaining, Remaining::Length(0)) {
                    this.finish();
                }
                return Poll::Ready(Some(Ok(Frame::data(d))));
            }
            if matches!(this.remaining, Remaining::Done | Remaining::Length(0)) {
                this.finish();
                return Poll::Ready(None);
            }
            match poll_fill(&mut conn.io, &mut conn.buf, cx) {
                Poll::Ready(Ok(0)) => {
                    if matches!(this.remaining, Remaining::Close) {
                        this.keep_alive = false;
                        this.finish();
                        return Poll::Ready(None);
                    }
                    this.conn = None;
                    return Poll::Ready(Some(Err(UpError::Closed)));
                }
                Poll::Ready(Ok(_)) => this.armed = false,
                Poll::Ready(Err(e)) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(UpError::Read(e))));
                }
                Poll::Pending => {
                    if !conn.timer.poll_expired(this.read_timeout, &mut this.armed, cx) {
                        return Poll::Pending;
                    }
                    this.conn = None;
                    return Poll::Ready(Some(Err(UpError::ReadTimeout)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none() && matches!(self.remaining, Remaining::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Remaining::Done => SizeHint::with_exact(0),
            Remaining::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}
