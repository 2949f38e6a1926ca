//! HTTP/2 towards upstreams, for gRPC services (`grpc`, `grpcs`): one multiplexed connection per
//! peer and TLS identity per worker, driven by hyper's HTTP/2 client.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::upstream::{connect, Dial, PoolKey, UpError};

/// Runs hyper's background futures on the worker's event loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LocalExec;

impl<F: Future + 'static> hyper::rt::Executor<F> for LocalExec {
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

/// The HTTP/2 upstream connections of one worker.
#[derive(Default)]
pub(crate) struct H2Clients {
    conns: RefCell<HashMap<PoolKey, SendRequest<Incoming>>>,
}

impl H2Clients {
    /// Sends a request on the connection to `dial`'s peer, opening one if needed, and waits
    /// for the response head within `read_timeout`.
    pub(crate) async fn send(
        &self,
        dial: Dial<'_>,
        req: Request<Incoming>,
        read_timeout: Duration,
    ) -> Result<Response<Incoming>, UpError> {
        let existing = {
            let mut conns = self.conns.borrow_mut();
            match conns.get(&dial.key) {
                Some(s) if !s.is_closed() => Some(s.clone()),
                Some(_) => {
                    conns.remove(&dial.key);
                    None
                }
                None => None,
            }
        };
        let mut sender = match existing {
            Some(s) => s,
            None => {
                let key = dial.key.clone();
                let conn = connect(dial).await?;
                let (sender, connection) = hyper::client::conn::http2::Builder::new(LocalExec)
                    .timer(TokioTimer::new())
                    .keep_alive_interval(Duration::from_secs(30))
                    .handshake(TokioIo::new(conn.io))
                    .await
                    .map_err(|e| UpError::Read(std::io::Error::other(e)))?;
                tokio::task::spawn_local(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "upstream HTTP/2 connection ended");
                    }
                });
                self.conns.borrow_mut().insert(key, sender.clone());
                sender
            }
        };
        sender.ready().await.map_err(|e| UpError::Write(std::io::Error::other(e)))?;
        match tokio::time::timeout(read_timeout, sender.send_request(req)).await {
            Err(_) => Err(UpError::ReadTimeout),
            Ok(Err(e)) => Err(UpError::Read(std::io::Error::other(e))),
            Ok(Ok(resp)) => Ok(resp),
        }
    }
}
