//! The plugin chain's cost per request: the access and header_filter phases of a route with 0,
//! 1 (key-auth) and 5 plugins (key-auth, acl, cors, ip-restriction, request-size-limiting),
//! with 100,000 consumers and their keys in the configuration.
//!
//! Command: `cargo bench -p turnpike-plugins --bench chain`
//! Machine and results: bench/results/plugins.md.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use turnpike_plugin_api::{
    chain, BuildEnv, Chains, Consumers, Ctx, NodeInfo, PluginSelection, Request, RequestState,
    ResponseHead,
};

const CONSUMERS: usize = 100_000;

struct Req {
    headers: Vec<(&'static str, String)>,
}

impl Request for Req {
    fn method(&self) -> &str {
        "GET"
    }
    fn path(&self) -> &str {
        "/bench"
    }
    fn query(&self) -> Option<&str> {
        None
    }
    fn http_version(&self) -> &str {
        "1.1"
    }
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_bytes())
    }
    fn header_count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).count()
    }
    fn header_values(&self, name: &str, f: &mut dyn FnMut(&[u8])) {
        for (n, v) in &self.headers {
            if n.eq_ignore_ascii_case(name) {
                f(v.as_bytes());
            }
        }
    }
    fn client_ip(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }
    fn forwarded_scheme(&self) -> &str {
        "http"
    }
    fn body(&self) -> Option<&[u8]> {
        Some(&[])
    }
    fn host(&self) -> &str {
        "example.com"
    }
    fn port(&self) -> u16 {
        8000
    }
    fn for_each_header(&self, f: &mut dyn FnMut(&str, &[u8])) {
        for (n, v) in &self.headers {
            f(n, v.as_bytes());
        }
    }
}

fn uuid(n: usize, kind: u8) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

fn plugin(name: &str, config: Value) -> Value {
    json!({ "id": uuid(name.len(), 9), "name": name, "enabled": true, "config": config,
            "route": null, "service": null, "consumer": null })
}

fn bench(c: &mut Criterion) {
    let consumers: Vec<Value> = (0..CONSUMERS)
        .map(|i| json!({ "id": uuid(i, 1), "username": format!("user{i}") }))
        .collect();
    let keys: Vec<Value> = (0..CONSUMERS)
        .map(|i| json!({ "id": uuid(i, 2), "key": format!("key-{i}"), "consumer": { "id": uuid(i, 1) } }))
        .collect();
    let acls: Vec<Value> = (0..CONSUMERS)
        .map(|i| json!({ "id": uuid(i, 3), "group": "gold", "consumer": { "id": uuid(i, 1) } }))
        .collect();
    let table = Arc::new(Consumers::from_rows(&consumers));
    let node = NodeInfo::default();
    let rows = |name: &str| -> &[Value] {
        match name {
            "keyauth_credentials" => &keys,
            "acls" => &acls,
            _ => &[],
        }
    };
    let factories = turnpike_plugins::enabled(&PluginSelection::bundled());
    let key_auth = plugin("key-auth", json!({ "key_names": ["apikey"] }));
    let sets: Vec<(&str, Vec<Value>)> = vec![
        ("0 plugins", vec![]),
        ("1 plugin (key-auth)", vec![key_auth.clone()]),
        (
            "5 plugins",
            vec![
                key_auth,
                plugin("acl", json!({ "allow": ["gold"] })),
                plugin("cors", json!({ "origins": ["https://example.com"] })),
                plugin("ip-restriction", json!({ "allow": ["127.0.0.0/8"] })),
                plugin("request-size-limiting", json!({ "allowed_payload_size": 10 })),
            ],
        ),
    ];
    let req = Req {
        headers: vec![
            ("host", "example.com".into()),
            ("apikey", format!("key-{}", CONSUMERS / 2)),
            ("origin", "https://example.com".into()),
            ("user-agent", "bench".into()),
        ],
    };
    let mut group = c.benchmark_group("plugin chain");
    for (label, plugins) in sets {
        let env = BuildEnv::new(&table, &node, &rows);
        let chains = Chains::build(&plugins, &factories.0, &env).expect("chains");
        let chain = chains.for_route("r", Some("s"));
        group.bench_function(label, |b| {
            b.iter(|| {
                let Some(chain) = &chain else { return 0 };
                let mut state = RequestState::default();
                let mut ran = Vec::with_capacity(chain.entries.len());
                let mut ctx =
                    Ctx { request: &req, state: &mut state, route_id: "r", service_id: Some("s") };
                assert!(chain.access(&mut ctx, &mut ran).is_ok());
                let get = |_: &str| None;
                let mut head = ResponseHead {
                    status: 200,
                    header: &get,
                    set: Vec::new(),
                    add: Vec::new(),
                    clear: Vec::new(),
                };
                chain::header_filter(&ran, &mut ctx, &mut head);
                head.set.len() + state.upstream.set.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
