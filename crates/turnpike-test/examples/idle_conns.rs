//! Opens N keep-alive connections to a proxy, sends one request on each, then holds them
//! idle until stdin closes; prints `ready` when all are open. Used by `bench/idle.sh`.
//!
//! `cargo run --release -p turnpike-test --example idle_conns -- 127.0.0.1:8000 10000`

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().expect("address");
    let n: usize = args.next().and_then(|n| n.parse().ok()).expect("count");
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n").await.expect("write");
        let mut buf = [0u8; 4096];
        let got = s.read(&mut buf).await.expect("read");
        assert!(buf[..got].starts_with(b"HTTP/1.1 "), "not an HTTP response");
        conns.push(s);
    }
    println!("ready");
    // hold the connections until stdin closes
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
    })
    .await;
    drop(conns);
}
