//! Admin API load: creates N services through the API with C concurrent clients, reads
//! them back by name, then lists them all, against a real `turnpike` binary.
//!
//! Run with `bench/admin.sh` (release build, SQLite and PostgreSQL side by side).
//! Usage: admin_bench [N] [CONCURRENCY] [sqlite|postgres]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Mutex;
use turnpike_test::{Db, Gateway};

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

async fn phase<F, Fut>(n: usize, c: usize, f: F) -> (Duration, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(Mutex::new(0usize));
    let lats = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (f, next, lats) = (f.clone(), next.clone(), lats.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = {
                    let mut g = next.lock().await;
                    if *g >= n {
                        break;
                    }
                    *g += 1;
                    *g - 1
                };
                let t = Instant::now();
                let status = f(i).await;
                assert!(status < 300, "request {i} failed with {status}");
                lats.lock().await.push(t.elapsed());
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    let total = start.elapsed();
    let mut l = Arc::try_unwrap(lats).expect("no more workers").into_inner();
    l.sort();
    (total, l)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let c: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(8);
    let db = match args.get(3).map(String::as_str) {
        Some("postgres") => Db::Postgres(
            std::env::var("TURNPIKE_TEST_PG_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
        ),
        _ => Db::Sqlite,
    };
    let name = db.name();
    let gw = Gateway::builder().db(db).conf("log_level", "warn").start().await;
    let admin = gw.admin();

    let a = admin.clone();
    let (create_total, create) = phase(n, c, move |i| {
        let a = a.clone();
        async move {
            a.post_json("/services", &json!({"name": format!("svc-{i:06}"), "url": "http://upstream.test:8080/x", "tags": ["bench"]}))
                .await
                .status
        }
    })
    .await;
    let a = admin.clone();
    let (read_total, read) = phase(n, c, move |i| {
        let a = a.clone();
        async move { a.get(&format!("/services/svc-{i:06}")).await.status }
    })
    .await;
    let start = Instant::now();
    let mut path = "/services?size=1000".to_owned();
    let mut seen = 0;
    loop {
        let page = admin.get(&path).await.json();
        seen += page["data"].as_array().map(Vec::len).unwrap_or(0);
        match page["next"].as_str() {
            Some(next) => path = next.to_owned(),
            None => break,
        }
    }
    let list_total = start.elapsed();
    assert_eq!(seen, n, "listing must return every service");

    println!(
        "| backend | operation | requests | concurrency | total s | req/s | p50 ms | p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (op, total, lats) in
        [("create (POST)", create_total, &create), ("read (GET by name)", read_total, &read)]
    {
        println!(
            "| {name} | {op} | {n} | {c} | {:.2} | {:.0} | {:.2} | {:.2} |",
            total.as_secs_f64(),
            n as f64 / total.as_secs_f64(),
            pct(lats, 0.5),
            pct(lats, 0.99)
        );
    }
    println!(
        "| {name} | list all (size=1000 pages) | {} | 1 | {:.2} | | | |",
        n.div_ceil(1000),
        list_total.as_secs_f64()
    );
}
