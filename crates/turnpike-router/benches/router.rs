//! Router benchmarks: building and matching with 1, 1,000 and 10,000 routes.
//!
//! Command: `cargo bench -p turnpike-router --bench router`
//! The route mix: 40% exact host + prefix path, 20% path only, 15% regex path on a host,
//! 15% wildcard host + prefix, 10% header + prefix. Requests hit each kind plus a miss.
//! Besides criterion's means, the bench prints the p50/p99/max of single matches measured
//! one by one (`p99` lines), which is the figure the issue asks for.
//! Results (2-core AMD EPYC, 2026-11-22) are in `bench/results/router.md`.

use std::time::{Duration, Instant};

use std::hint::black_box;

use criterion::{criterion_group, BenchmarkId, Criterion};
use turnpike_router::{RequestParts, RouteDef, Router};

fn routes(n: usize) -> Vec<RouteDef> {
    (0..n)
        .map(|i| {
            let id = format!("00000000-0000-4000-8000-{i:012}");
            let mut r = RouteDef { id, strip_path: true, ..RouteDef::default() };
            match i % 20 {
                0..=7 => {
                    r.hosts = vec![format!("svc-{}.example.com", i % 100)];
                    r.paths = vec![format!("/api/v{}/res-{i}", i % 3)];
                }
                8..=11 => r.paths = vec![format!("/path-{i}/items")],
                12..=14 => {
                    r.hosts = vec![format!("users-{}.test", i % 50)];
                    r.paths = vec![format!("~/users/{i}/(?<id>\\d+)$")];
                }
                15..=17 => {
                    r.hosts = vec![format!("*.tenant-{}.test", i % 100)];
                    r.paths = vec![format!("/t-{i}")];
                }
                _ => {
                    r.headers = vec![("x-version".into(), vec![format!("v{i}")])];
                    r.paths = vec![format!("/h-{i}")];
                }
            }
            r
        })
        .collect()
}

/// (name, method, host, path, headers).
type BenchRequest = (&'static str, String, String, Vec<(&'static str, String)>);

/// One request per route kind, for the last route of each kind.
fn requests(n: usize) -> Vec<BenchRequest> {
    let exact = (0..n).rev().find(|i| i % 20 <= 7).unwrap_or(0);
    let plain = (0..n).rev().find(|i| (8..=11).contains(&(i % 20))).unwrap_or(0);
    let regex = (0..n).rev().find(|i| (12..=14).contains(&(i % 20))).unwrap_or(0);
    let wild = (0..n).rev().find(|i| (15..=17).contains(&(i % 20))).unwrap_or(0);
    let header = (0..n).rev().find(|i| i % 20 >= 18).unwrap_or(0);
    vec![
        (
            "exact-host",
            format!("svc-{}.example.com", exact % 100),
            format!("/api/v{}/res-{exact}/x", exact % 3),
            vec![],
        ),
        ("path-only", "anything.test".into(), format!("/path-{plain}/items/1"), vec![]),
        ("regex", format!("users-{}.test", regex % 50), format!("/users/{regex}/12345"), vec![]),
        ("wildcard", format!("a.tenant-{}.test", wild % 100), format!("/t-{wild}"), vec![]),
        (
            "header",
            "h.test".into(),
            format!("/h-{header}"),
            vec![("x-version", format!("v{header}"))],
        ),
        ("miss", "nowhere.test".into(), "/nothing/here".into(), vec![]),
    ]
}

fn header_map(h: &[(&'static str, String)]) -> http::HeaderMap {
    let mut m = http::HeaderMap::new();
    for (k, v) in h {
        m.insert(*k, v.parse().unwrap());
    }
    m
}

fn bench_match(c: &mut Criterion) {
    let mut group = c.benchmark_group("match");
    for n in [1usize, 1_000, 10_000] {
        let router = Router::new(routes(n)).unwrap();
        for (name, host, path, headers) in requests(n) {
            let h = header_map(&headers);
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    let req = RequestParts {
                        method: "GET",
                        path: &path,
                        host: Some(&host),
                        scheme: "http",
                        sni: None,
                        headers: &h,
                        local: None,
                    };
                    black_box(router.select(black_box(&req)).map(|m| m.route_index))
                })
            });
        }
    }
    group.finish();
}

fn bench_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    for n in [1usize, 1_000, 10_000] {
        let defs = routes(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(Router::new(defs.clone()).unwrap()))
        });
    }
    group.finish();
}

/// Single-match latency distribution (what a p99 means for one request).
fn percentiles() {
    for n in [1usize, 1_000, 10_000] {
        let router = Router::new(routes(n)).unwrap();
        let t = Instant::now();
        let _ = Router::new(routes(n)).unwrap();
        let build = t.elapsed();
        let reqs = requests(n);
        let mut samples: Vec<Duration> = Vec::with_capacity(60_000);
        for round in 0..10_000 {
            let (_, host, path, headers) = &reqs[round % reqs.len()];
            let h = header_map(headers);
            let req = RequestParts {
                method: "GET",
                path,
                host: Some(host),
                scheme: "http",
                sni: None,
                headers: &h,
                local: None,
            };
            let t = Instant::now();
            black_box(router.select(&req).map(|m| m.route_index));
            samples.push(t.elapsed());
        }
        samples.sort();
        let p = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
        println!(
            "p99 routes={n} matchers={} build={:?} match p50={:?} p99={:?} max={:?}",
            router.matcher_count(),
            build,
            p(0.50),
            p(0.99),
            samples[samples.len() - 1]
        );
    }
}

criterion_group!(benches, bench_match, bench_build);

fn main() {
    percentiles();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
