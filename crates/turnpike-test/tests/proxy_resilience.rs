//! The proxy under change and failure: requests in flight while the configuration changes,
//! the database going away and coming back, and bodies far larger than any buffer streaming
//! through with bounded memory.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use turnpike_test::{expect, route_to, until_routed, Db, Gateway, Upstream};

const GIB: u64 = 1 << 30;

/// Peak resident memory of a process (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM");
    kb * 1024
}

/// Reads an HTTP/1.1 response head; returns it as text.
async fn read_head(io: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = io.read(&mut byte).await.expect("read head");
        assert!(n == 1, "closed inside the head: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test]
async fn requests_in_flight_survive_configuration_changes() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    route_to(&gw, "slow", &up.url("http"), json!({"name": "slow-r", "paths": ["/slow"]})).await;
    until_routed(&gw, "/slow").await;

    let proxy = gw.proxy();
    let in_flight: Vec<_> = (0..4)
        .map(|_| {
            let p = proxy.clone();
            tokio::spawn(async move { p.get("/slow/delay/1500").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // the route goes away and the service changes while the requests wait for the upstream
    let admin = gw.admin();
    expect(&admin.delete("/routes/slow-r").await, 204, "delete route");
    expect(
        &admin.patch_json("/services/slow", &json!({"url": "http://127.0.0.1:9/gone"})).await,
        200,
        "patch service",
    );
    for h in in_flight {
        let res = h.await.expect("request task");
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(res.json()["path"], "/delay/1500");
    }
    // and the change did apply
    let res = proxy.get("/slow").await;
    assert_eq!(res.status, 404, "{}", res.text());
}

/// A TCP relay to PostgreSQL that the test can cut and restore: the database "goes away".
struct Relay {
    port: u16,
    target: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: Option<JoinHandle<()>>,
}

impl Relay {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let port = listener.local_addr().expect("addr").port();
        let mut r = Relay { port, target, tasks: Arc::default(), accept: None };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: TcpListener) {
        let (target, tasks) = (self.target.clone(), self.tasks.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                let t = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().expect("tasks").push(t);
            }
        }));
    }

    /// Closes every relayed connection and stops accepting.
    fn cut(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        for t in self.tasks.lock().expect("tasks").drain(..) {
            t.abort();
        }
    }

    async fn restore(&mut self) {
        let listener =
            TcpListener::bind(("127.0.0.1", self.port)).await.expect("rebind the relay port");
        self.serve(listener);
    }
}

#[tokio::test]
async fn the_node_keeps_serving_when_the_database_goes_away() {
    let Some(url) = turnpike_store::testing::pg_url() else { return };
    // host:port of the PostgreSQL URL (postgres://user@host:port/db)
    let authority = url.split('@').nth(1).and_then(|r| r.split('/').next()).expect("pg authority");
    let target =
        if authority.contains(':') { authority.to_owned() } else { format!("{authority}:5432") };
    let mut relay = Relay::start(target).await;

    let up = Upstream::http().start().await;
    let gw = Gateway::builder()
        .db(Db::Postgres(url))
        .conf("pg_host", "127.0.0.1")
        .conf("pg_port", &relay.port.to_string())
        .start()
        .await;
    route_to(&gw, "kept", &up.url("http"), json!({"paths": ["/kept"]})).await;
    until_routed(&gw, "/kept").await;

    relay.cut();
    // for longer than the watcher's polling interval, every request is still proxied
    let proxy = gw.proxy();
    let until = Instant::now() + Duration::from_secs(3);
    let mut served = 0;
    while Instant::now() < until {
        let res = proxy.get("/kept/x").await;
        assert_eq!(res.status, 200, "request {served} with the database away: {}", res.text());
        served += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // writes fail cleanly meanwhile
    let res =
        gw.admin().post_json("/services", &json!({"name": "new", "url": up.url("http")})).await;
    assert!(res.status >= 500, "a write without a database: {} {}", res.status, res.text());
    assert!(!res.text().contains("panicked"), "{}", res.text());

    // the database comes back: writes work again and reach the proxy
    relay.restore().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let res = gw
            .admin()
            .post_json("/services", &json!({"name": "again", "url": up.url("http")}))
            .await;
        if res.status == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "no write after the database came back: {}", res.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let res = gw.admin().post_json("/services/again/routes", &json!({"paths": ["/again"]})).await;
    expect(&res, 201, "route after recovery");
    until_routed(&gw, "/again").await;
    assert_eq!(proxy.get("/kept/x").await.status, 200);
}

#[tokio::test]
async fn a_gigabyte_upload_and_a_large_download_stream_in_bounded_memory() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    route_to(&gw, "big", &up.url("http"), json!({"paths": ["/big"]})).await;
    until_routed(&gw, "/big").await;
    let pid = gw.pid().expect("gateway pid");
    let before = peak_rss(pid);

    // upload: 1 GiB with a Content-Length, counted by the upstream as it streams in
    let mut io = TcpStream::connect(&gw.proxy_addrs()[0]).await.expect("connect");
    let head = format!("POST /big/count HTTP/1.1\r\nHost: big\r\nContent-Length: {GIB}\r\n\r\n");
    io.write_all(head.as_bytes()).await.expect("write head");
    let chunk = vec![b'u'; 1 << 20];
    let writer = tokio::spawn(async move {
        for _ in 0..(GIB >> 20) {
            io.write_all(&chunk).await.expect("write body");
        }
        io
    });
    let mut io = writer.await.expect("writer");
    let head = read_head(&mut io).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse().ok())
        .expect("content-length");
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await.expect("body");
    let seen: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(seen["count"], GIB, "the upstream got every byte");

    // download: 256 MiB from the upstream, read and dropped as it comes
    let down = GIB / 4;
    let req = format!("GET /big/bytes/{down} HTTP/1.1\r\nHost: big\r\n\r\n");
    io.write_all(req.as_bytes()).await.expect("write");
    let head = read_head(&mut io).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let mut left = down;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = io.read(&mut buf[..want]).await.expect("read body");
        assert!(n > 0, "closed with {left} bytes left");
        left -= n as u64;
    }

    let grown = peak_rss(pid).saturating_sub(before);
    assert!(grown < 64 << 20, "peak memory grew by {} MiB moving 1.25 GiB", grown >> 20);
}
