//! Request bodies, whatever they come from (an HTTP/1 client connection, an HTTP/2 stream, a
//! buffer), as one pull-based stream: the upstream writer asks for the next chunk only when it
//! has written the previous one, which is the back-pressure that keeps a large upload from
//! being buffered.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::Body;
use tokio::io::AsyncRead;

use crate::h1::{ChunkedDecoder, Decoded, Framing};

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("client prematurely closed the connection")]
    Closed,
    #[error("reading the request body failed: {0}")]
    Read(io::Error),
    #[error("client timed out sending the request body")]
    Timeout,
    #[error("invalid chunked body: {0}")]
    Chunked(&'static str),
    #[error("request body larger than client_max_body_size")]
    TooLarge,
    #[error("HTTP/2 request body: {0}")]
    H2(String),
}

impl BodyError {
    pub(crate) fn status(&self) -> u16 {
        match self {
            Self::Timeout => 408,
            Self::TooLarge => 413,
            _ => 400,
        }
    }
}

/// A request body, pulled chunk by chunk.
pub(crate) trait BodySource {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BodyError>>>;

    /// The body length if known in advance (`Content-Length`).
    fn length(&self) -> Option<u64>;

    /// Whether the body is known to be empty.
    fn is_empty(&self) -> bool {
        self.length() == Some(0)
    }

    /// Whether the request came without any body framing (an HTTP/1 request with neither
    /// `Content-Length` nor `Transfer-Encoding`): nginx then sends no `Content-Length` upstream.
    fn unframed(&self) -> bool {
        false
    }
}

/// The next chunk of a body source.
pub(crate) async fn next_chunk<B: BodySource + ?Sized>(
    b: &mut B,
) -> Option<Result<Bytes, BodyError>> {
    poll_fn(|cx| b.poll_chunk(cx)).await
}

/// Reads up to `limit` bytes of a body; returns them and whether the body ended within.
pub(crate) async fn read_ahead<B: BodySource + ?Sized>(
    body: &mut B,
    limit: usize,
) -> Result<(Bytes, bool), BodyError> {
    // the first chunk is kept as is (no copy for the common single-chunk body)
    let mut first: Option<Bytes> = None;
    let mut more = BytesMut::new();
    let mut len = 0;
    let complete = loop {
        if len >= limit {
            break false;
        }
        match next_chunk(body).await {
            None => break true,
            Some(Err(e)) => return Err(e),
            Some(Ok(chunk)) => {
                len += chunk.len();
                match &first {
                    None => first = Some(chunk),
                    Some(_) => more.extend_from_slice(&chunk),
                }
            }
        }
    };
    let data = match first {
        None => Bytes::new(),
        Some(f) if more.is_empty() => f,
        Some(f) => {
            let mut all = BytesMut::with_capacity(f.len() + more.len());
            all.extend_from_slice(&f);
            all.extend_from_slice(&more);
            all.freeze()
        }
    };
    Ok((data, complete))
}

/// A body whose first bytes were read ahead (for a plugin), followed by the rest.
pub(crate) struct Prefetched<'b, B: ?Sized> {
    pub(crate) first: Option<Bytes>,
    pub(crate) rest: &'b mut B,
    /// The length when a plugin replaced the (whole) body.
    pub(crate) replaced: Option<u64>,
}

impl<B: BodySource + ?Sized> BodySource for Prefetched<'_, B> {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BodyError>>> {
        match self.first.take() {
            Some(d) if !d.is_empty() => Poll::Ready(Some(Ok(d))),
            _ => self.rest.poll_chunk(cx),
        }
    }

    fn length(&self) -> Option<u64> {
        self.replaced.or_else(|| self.rest.length())
    }

    fn unframed(&self) -> bool {
        self.replaced.is_none() && self.rest.unframed()
    }
}

enum Left {
    Length(u64),
    Chunked(ChunkedDecoder),
    Done,
}

/// An [`H1Body`]'s progress while the connection is used for something else.
pub(crate) struct Suspended {
    left: Left,
    length: Option<u64>,
    unframed: bool,
    limit: Option<u64>,
    received: u64,
    timeout: Duration,
}

impl Suspended {
    pub(crate) fn is_complete(&self) -> bool {
        matches!(self.left, Left::Done)
    }
}

/// The body of a request on an HTTP/1 client connection, read from the connection's buffer
/// and socket as it is asked for.
pub(crate) struct H1Body<'a, IO> {
    io: &'a mut IO,
    buf: &'a mut BytesMut,
    timer: &'a mut crate::timer::Timer,
    armed: bool,
    left: Left,
    length: Option<u64>,
    unframed: bool,
    limit: Option<u64>,
    received: u64,
    timeout: Duration,
}

impl<'a, IO: AsyncRead + Unpin> H1Body<'a, IO> {
    pub(crate) fn new(
        io: &'a mut IO,
        buf: &'a mut BytesMut,
        timer: &'a mut crate::timer::Timer,
        framing: Framing,
        limit: Option<u64>,
        timeout: Duration,
    ) -> Self {
        let (left, length) = match framing {
            Framing::Length(n) => (Left::Length(n), Some(n)),
            Framing::Chunked => (Left::Chunked(ChunkedDecoder::default()), None),
            Framing::Empty | Framing::Close => (Left::Done, Some(0)),
        };
        let unframed = matches!(framing, Framing::Empty | Framing::Close);
        Self { io, buf, timer, armed: false, left, length, unframed, limit, received: 0, timeout }
    }

    /// Takes the body's progress apart from the connection it borrows, to go on later with
    /// [`H1Body::resume`].
    pub(crate) fn suspend(self) -> Suspended {
        Suspended {
            left: self.left,
            length: self.length,
            unframed: self.unframed,
            limit: self.limit,
            received: self.received,
            timeout: self.timeout,
        }
    }

    /// Goes on reading a suspended body.
    pub(crate) fn resume(
        io: &'a mut IO,
        buf: &'a mut BytesMut,
        timer: &'a mut crate::timer::Timer,
        s: Suspended,
    ) -> Self {
        Self {
            io,
            buf,
            timer,
            armed: false,
            left: s.left,
            length: s.length,
            unframed: s.unframed,
            limit: s.limit,
            received: s.received,
            timeout: s.timeout,
        }
    }

    /// Whether the whole body was read (the connection can then serve another request).
    pub(crate) fn is_complete(&self) -> bool {
        matches!(self.left, Left::Done)
    }

    /// Lowers the size limit (a plugin's).
    pub(crate) fn limit_to(&mut self, n: u64) {
        self.limit = Some(self.limit.map_or(n, |l| l.min(n)));
    }

    /// Reads and discards the rest of the body, so that the connection can be reused.
    pub(crate) async fn drain(&mut self) -> Result<(), BodyError> {
        while let Some(chunk) = next_chunk(self).await {
            chunk?;
        }
        Ok(())
    }

    fn account(&mut self, n: usize) -> Result<(), BodyError> {
        self.received += n as u64;
        match self.limit {
            Some(limit) if self.received > limit => Err(BodyError::TooLarge),
            _ => Ok(()),
        }
    }
}

impl<IO: AsyncRead + Unpin> BodySource for H1Body<'_, IO> {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BodyError>>> {
        loop {
            let data = match &mut self.left {
                Left::Done => return Poll::Ready(None),
                Left::Length(0) => {
                    self.left = Left::Done;
                    return Poll::Ready(None);
                }
                Left::Length(n) if !self.buf.is_empty() => {
                    let take = (*n).min(self.buf.len() as u64);
                    *n -= take;
                    let d = self.buf.split_to(take as usize).freeze();
                    if *n == 0 {
                        self.left = Left::Done;
                    }
                    Some(d)
                }
                Left::Chunked(dec) => match dec.decode(self.buf) {
                    Err(e) => return Poll::Ready(Some(Err(BodyError::Chunked(e)))),
                    Ok(Decoded::Data(d)) => Some(d),
                    Ok(Decoded::Done) => {
                        self.left = Left::Done;
                        return Poll::Ready(None);
                    }
                    Ok(Decoded::NeedMore) => None,
                },
                Left::Length(_) => None,
            };
            if let Some(d) = data {
                if let Err(e) = self.account(d.len()) {
                    return Poll::Ready(Some(Err(e)));
                }
                return Poll::Ready(Some(Ok(d)));
            }
            if self.buf.capacity() - self.buf.len() < 2048 {
                self.buf.reserve(16 * 1024);
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut *self.io), cx, self.buf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Some(Err(BodyError::Closed))),
                Poll::Ready(Ok(_)) => self.armed = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(BodyError::Read(e)))),
                Poll::Pending => {
                    if !self.timer.poll_expired(self.timeout, &mut self.armed, cx) {
                        return Poll::Pending;
                    }
                    return Poll::Ready(Some(Err(BodyError::Timeout)));
                }
            }
        }
    }

    fn length(&self) -> Option<u64> {
        self.length
    }

    fn unframed(&self) -> bool {
        self.unframed
    }
}

/// An HTTP/2 request body (hyper's stream), with the body size limit applied.
pub(crate) struct H2Body {
    pub(crate) inner: hyper::body::Incoming,
    pub(crate) length: Option<u64>,
    pub(crate) limit: Option<u64>,
    pub(crate) received: u64,
}

impl H2Body {
    /// Lowers the size limit (a plugin's).
    pub(crate) fn limit_to(&mut self, n: u64) {
        self.limit = Some(self.limit.map_or(n, |l| l.min(n)));
    }
}

impl BodySource for H2Body {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BodyError>>> {
        loop {
            match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(BodyError::H2(e.to_string())))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.received += data.len() as u64;
                        if self.limit.is_some_and(|l| self.received > l) {
                            return Poll::Ready(Some(Err(BodyError::TooLarge)));
                        }
                        return Poll::Ready(Some(Ok(data)));
                    }
                    // trailers have no HTTP/1 equivalent upstream; they are dropped
                }
            }
        }
    }

    fn length(&self) -> Option<u64> {
        if self.inner.is_end_stream() {
            return Some(0);
        }
        self.length
    }
}
