//! The tricky routing cases of Kong's router tests (spec §3), written as data: a set of
//! routes, requests, and the route each request must select under `traditional_compatible`.

use turnpike_router::{RequestParts, RouteDef, Router};

#[derive(Default, Clone)]
struct R {
    name: &'static str,
    hosts: &'static [&'static str],
    paths: &'static [&'static str],
    methods: &'static [&'static str],
    headers: &'static [(&'static str, &'static [&'static str])],
    snis: &'static [&'static str],
    regex_priority: i64,
}

struct Q {
    method: &'static str,
    path: &'static str,
    host: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    scheme: &'static str,
    sni: Option<&'static str>,
    want: Option<&'static str>,
}

fn q(
    method: &'static str,
    host: Option<&'static str>,
    path: &'static str,
    want: Option<&'static str>,
) -> Q {
    Q { method, path, host, headers: &[], scheme: "http", sni: None, want }
}

struct Case {
    name: &'static str,
    routes: Vec<R>,
    requests: Vec<Q>,
}

fn build(routes: &[R]) -> Router {
    let defs = routes
        .iter()
        .enumerate()
        .map(|(i, r)| RouteDef {
            // ids in declaration order, so that ties are deterministic
            id: format!("00000000-0000-4000-8000-{:012}", i + 1),
            name: Some(r.name.to_owned()),
            hosts: r.hosts.iter().map(|s| (*s).to_owned()).collect(),
            paths: r.paths.iter().map(|s| (*s).to_owned()).collect(),
            methods: r.methods.iter().map(|s| (*s).to_owned()).collect(),
            headers: r
                .headers
                .iter()
                .map(|(n, vs)| ((*n).to_owned(), vs.iter().map(|v| (*v).to_owned()).collect()))
                .collect(),
            snis: r.snis.iter().map(|s| (*s).to_owned()).collect(),
            regex_priority: r.regex_priority,
            strip_path: true,
            ..RouteDef::default()
        })
        .collect();
    Router::new(defs).expect("router")
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "1. hosts with and without ports",
            routes: vec![
                R { name: "A", hosts: &["domain-1.org"], ..R::default() },
                R { name: "B", hosts: &["domain-1.org:321"], ..R::default() },
                R { name: "C", hosts: &["domain-3.org:321"], ..R::default() },
            ],
            requests: vec![
                q("GET", Some("domain-1.org:80"), "/", Some("A")),
                q("GET", Some("domain-1.org"), "/", Some("A")),
                q("GET", Some("domain-3.org:321"), "/", Some("C")),
                q("GET", Some("domain-3.org:123"), "/", None),
            ],
        },
        Case {
            name: "2. longer prefix wins",
            routes: vec![
                R { name: "hello", paths: &["/my-route/hello"], ..R::default() },
                R { name: "short", paths: &["/my-route"], ..R::default() },
            ],
            requests: vec![
                q("GET", None, "/my-route/hello/world", Some("hello")),
                q("GET", None, "/my-route/world", Some("short")),
            ],
        },
        Case {
            name: "3. prefixes are anchored",
            routes: vec![
                R { name: "R1", paths: &["/something/my-route"], ..R::default() },
                R { name: "R2", hosts: &["example.com"], paths: &["/my-route"], ..R::default() },
            ],
            requests: vec![q("GET", Some("example.com"), "/something/my-route", Some("R1"))],
        },
        Case {
            name: "4/5. regex beats prefix",
            routes: vec![
                R { name: "prefix", paths: &["/route/persons"], ..R::default() },
                R { name: "regex", paths: &["~/route/persons/\\d+/profile"], ..R::default() },
                R { name: "fixture-prefix", paths: &["/route/fixture"], ..R::default() },
                R { name: "fixture-regex", paths: &["~/route/(fixture)"], ..R::default() },
            ],
            requests: vec![
                q("GET", None, "/route/persons/123/profile", Some("regex")),
                q("GET", None, "/route/persons/abc", Some("prefix")),
                q("GET", None, "/route/fixture", Some("fixture-regex")),
            ],
        },
        Case {
            name: "6. regex path on a host",
            routes: vec![
                R { name: "pat", hosts: &["route.com"], paths: &["/pat"], ..R::default() },
                R {
                    name: "path-post",
                    hosts: &["route.com"],
                    paths: &["/path"],
                    methods: &["POST"],
                    ..R::default()
                },
                R { name: "regex", hosts: &["route.com"], paths: &["~/(path)"], ..R::default() },
            ],
            requests: vec![q("GET", Some("route.com"), "/path", Some("regex"))],
        },
        Case {
            name: "7. regexes are anchored at the start",
            routes: vec![R { name: "re", paths: &["~/prefix/[0-9]+"], ..R::default() }],
            requests: vec![
                q("GET", None, "/extra/prefix/123", None),
                q("GET", None, "/prefix/123", Some("re")),
            ],
        },
        Case {
            name: "8. wildcard hosts",
            routes: vec![
                R { name: "suffix", hosts: &["*.route.com"], ..R::default() },
                R { name: "prefix", hosts: &["route.*"], ..R::default() },
                R { name: "plain", hosts: &["plain.route.com"], ..R::default() },
                R { name: "apex", hosts: &["route.com"], ..R::default() },
            ],
            requests: vec![
                q("GET", Some("route.com"), "/", Some("apex")),
                q("GET", Some("route.org"), "/", Some("prefix")),
                q("GET", Some("plain.route.com"), "/", Some("plain")),
                q("GET", Some("foo.route.com"), "/", Some("suffix")),
                q("GET", Some("a.b.route.com"), "/", Some("suffix")),
            ],
        },
        Case {
            name: "9. wildcard hosts with ports",
            routes: vec![
                R { name: "any-port", hosts: &["route.*"], ..R::default() },
                R { name: "port", hosts: &["route.*:123"], ..R::default() },
                R { name: "net", hosts: &["*.route.net:123"], ..R::default() },
            ],
            requests: vec![
                q("GET", Some("route.org:123"), "/", Some("port")),
                q("GET", Some("foo.route.net:456"), "/", None),
                q("GET", Some("foo.route.net:123"), "/", Some("net")),
            ],
        },
        Case {
            name: "10. a wildcard host with a path beats a plain host without match",
            routes: vec![
                R { name: "wild", hosts: &["*.route.com"], paths: &["/path1"], ..R::default() },
                R {
                    name: "plain",
                    hosts: &["plain.route.com"],
                    paths: &["/path2"],
                    ..R::default()
                },
            ],
            requests: vec![q("GET", Some("plain.route.com"), "/path1", Some("wild"))],
        },
        Case {
            name: "11/13. more headers win",
            routes: vec![
                R {
                    name: "two",
                    headers: &[("version", &["v1"]), ("user-agent", &["foo"])],
                    ..R::default()
                },
                R {
                    name: "three",
                    headers: &[
                        ("version", &["v1"]),
                        ("user-agent", &["foo"]),
                        ("location", &["east"]),
                    ],
                    ..R::default()
                },
                R {
                    name: "long-path",
                    headers: &[("version", &["v2"])],
                    paths: &["/my-route/hello"],
                    ..R::default()
                },
                R {
                    name: "more-headers",
                    headers: &[("version", &["v2"]), ("location", &["us-east"])],
                    paths: &["/my-route"],
                    ..R::default()
                },
            ],
            requests: vec![
                Q {
                    headers: &[("version", "v1"), ("user-agent", "foo"), ("location", "east")],
                    ..q("GET", None, "/", Some("three"))
                },
                Q {
                    headers: &[("version", "v1"), ("user-agent", "foo")],
                    ..q("GET", None, "/", Some("two"))
                },
                Q {
                    headers: &[("version", "v2"), ("location", "us-east")],
                    ..q("GET", None, "/my-route/hello", Some("more-headers"))
                },
            ],
        },
        Case {
            name: "12. any value of a header, every header",
            routes: vec![
                R {
                    name: "R10",
                    headers: &[("location", &["l1"]), ("version", &["v1", "v2"])],
                    ..R::default()
                },
                R { name: "R9", headers: &[("location", &["l1", "l2"])], ..R::default() },
            ],
            requests: vec![
                Q {
                    headers: &[("location", "l3"), ("location", "l2"), ("version", "v2")],
                    ..q("GET", None, "/", Some("R9"))
                },
                Q {
                    headers: &[("location", "l1"), ("version", "v2")],
                    ..q("GET", None, "/", Some("R10"))
                },
            ],
        },
        Case {
            name: "14. methods vs paths vs hosts",
            routes: vec![
                R { name: "method", methods: &["GET"], ..R::default() },
                R { name: "path", paths: &["/example"], ..R::default() },
                R { name: "host", hosts: &["domain.*"], ..R::default() },
            ],
            requests: vec![
                q("GET", None, "/example/status/200", Some("path")),
                q("GET", Some("domain.com"), "/", Some("host")),
                q("GET", Some("nothing.com"), "/", Some("method")),
            ],
        },
        Case {
            name: "15. hosts vs methods",
            routes: vec![
                R { name: "hosts", hosts: &["domain-1.org", "domain-2.org"], ..R::default() },
                R { name: "trace", methods: &["TRACE"], ..R::default() },
            ],
            requests: vec![q("TRACE", Some("domain-2.org"), "/", Some("hosts"))],
        },
        Case {
            name: "16/17. / is a catch-all, regex_priority does not apply to prefixes",
            routes: vec![
                R {
                    name: "root",
                    hosts: &["h.test"],
                    paths: &["/"],
                    regex_priority: 5,
                    ..R::default()
                },
                R { name: "v1", hosts: &["h.test"], paths: &["/v1"], ..R::default() },
            ],
            requests: vec![
                q("GET", Some("h.test"), "/v1", Some("v1")),
                q("GET", Some("h.test"), "/v1/x", Some("v1")),
                q("GET", Some("h.test"), "/other", Some("root")),
            ],
        },
        Case {
            name: "18. each path is prioritized individually",
            routes: vec![
                R { name: "R1", paths: &["~/some/thing/else", "/foo"], ..R::default() },
                R { name: "R2", paths: &["/foo/bar"], ..R::default() },
                R { name: "R3", paths: &["/bar", "/bar/baz/qux"], ..R::default() },
                R { name: "R4", paths: &["/bar/baz"], ..R::default() },
            ],
            requests: vec![
                q("GET", None, "/foo/bar", Some("R2")),
                q("GET", None, "/foo", Some("R1")),
                q("GET", None, "/some/thing/else", Some("R1")),
                q("GET", None, "/bar", Some("R3")),
                q("GET", None, "/bar/baz", Some("R4")),
                q("GET", None, "/bar/baz/qux", Some("R3")),
            ],
        },
        Case {
            name: "19. header names are case-insensitive, ~* values are regexes",
            routes: vec![
                R {
                    name: "ua",
                    headers: &[(
                        "USER_AGENT",
                        &["~*windows|linux|os\\s+x\\s*[\\d\\._]+|solaris|bsd"],
                    )],
                    ..R::default()
                },
                R { name: "paths-only", paths: &["/"], ..R::default() },
            ],
            requests: vec![
                Q {
                    headers: &[(
                        "user-agent",
                        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0",
                    )],
                    ..q("GET", None, "/", Some("ua"))
                },
                Q {
                    headers: &[("user-agent", "curl/8.0")],
                    ..q("GET", None, "/", Some("paths-only"))
                },
                q("GET", None, "/", Some("paths-only")),
            ],
        },
        Case {
            name: "snis only count on https",
            routes: vec![R { name: "sni", snis: &["a.test"], paths: &["/s"], ..R::default() }],
            requests: vec![
                q("GET", None, "/s", Some("sni")),
                Q { scheme: "https", sni: Some("a.test"), ..q("GET", None, "/s", Some("sni")) },
                Q { scheme: "https", sni: Some("b.test"), ..q("GET", None, "/s", None) },
            ],
        },
        Case {
            name: "paths are normalized before matching",
            routes: vec![R { name: "n", paths: &["/a/b"], ..R::default() }],
            requests: vec![
                q("GET", None, "/a/./b", Some("n")),
                q("GET", None, "/a//b", Some("n")),
                q("GET", None, "/x/../a/b", Some("n")),
                q("GET", None, "/%61/b", Some("n")),
                q("GET", None, "/a%2Fb", None),
            ],
        },
    ]
}

#[test]
fn tricky_cases() {
    let mut failures = Vec::new();
    for case in cases() {
        let router = build(&case.routes);
        for req in &case.requests {
            let mut headers = http::HeaderMap::new();
            for (k, v) in req.headers {
                headers.append(
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            let parts = RequestParts {
                method: req.method,
                path: req.path,
                host: req.host,
                scheme: req.scheme,
                sni: req.sni,
                headers: &headers,
                local: None,
            };
            let got = router.select(&parts).and_then(|m| m.route.name.clone());
            if got.as_deref() != req.want {
                failures.push(format!(
                    "{}: {} {:?}{} -> expected {:?}, got {:?}",
                    case.name, req.method, req.host, req.path, req.want, got
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn regex_captures_and_matched_path() {
    let router =
        build(&[R { name: "caps", paths: &["~/users/(?<id>\\d+)/(\\w+)"], ..R::default() }]);
    let headers = http::HeaderMap::new();
    let parts = RequestParts {
        method: "GET",
        path: "/users/42/profile/extra",
        host: None,
        scheme: "http",
        sni: None,
        headers: &headers,
        local: None,
    };
    let m = router.select(&parts).expect("match");
    assert_eq!(m.matched_path.as_deref(), Some("/users/42/profile"));
    let caps = m.captures.expect("captures");
    assert_eq!(caps.positional[0].as_deref(), Some("/users/42/profile"));
    assert_eq!(caps.positional[1].as_deref(), Some("42"));
    assert_eq!(caps.positional[2].as_deref(), Some("profile"));
    assert_eq!(caps.named, vec![("id".to_owned(), Some("42".to_owned()))]);
}
