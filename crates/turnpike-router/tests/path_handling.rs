//! Kong's path-handling fixture as a table: every row as a prefix route (or a host-only
//! route when the row has no route path), and every row with a route path again as a regex
//! route (`~/[0]?rest`), as Kong's router spec runs it.

#[path = "fixtures/path_handling_cases.rs"]
mod path_handling_cases;

use path_handling_cases::PATH_HANDLING;
use turnpike_router::{upstream_path, Flavor, PathHandling, RequestParts, RouteDef, Router};

fn run(
    route_path: Option<String>,
    row: usize,
    service_path: &str,
    strip: bool,
    handling: &str,
    request: &str,
) -> Option<String> {
    let host = format!("localbin-{row}.com");
    let route = RouteDef {
        id: format!("e8fb37f1-102d-461e-9c51-6608a6{row:06}"),
        strip_path: strip,
        path_handling: if handling == "v1" { PathHandling::V1 } else { PathHandling::V0 },
        hosts: vec![host.clone()],
        paths: route_path.into_iter().collect(),
        ..RouteDef::default()
    };
    // `traditional` honours v1; `traditional_compatible` turns v1 into v0 (kong_router_spec.rs).
    let router = Router::with_flavor(vec![route], Flavor::Traditional).expect("router");
    let headers = http::HeaderMap::new();
    let req = RequestParts {
        method: "GET",
        path: request,
        host: Some(&host),
        scheme: "http",
        sni: None,
        headers: &headers,
        local: None,
    };
    let m = router.select(&req)?;
    Some(upstream_path(&m, Some(service_path)))
}

#[test]
fn kong_path_handling_fixture() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (i, &(service_path, route_path, strip, handling, request, expected)) in
        PATH_HANDLING.iter().enumerate()
    {
        let mut variants = vec![("plain", route_path.map(str::to_owned))];
        if let Some(rp) = route_path {
            variants.push(("regex", Some(format!("~/[0]?{}", &rp[1..]))));
        }
        for (kind, path) in variants {
            count += 1;
            let got = run(path.clone(), i, service_path, strip, handling, request);
            if got.as_deref() != Some(expected) {
                failures.push(format!(
                    "row {i} {kind}: service {service_path} route {path:?} strip {strip} {handling} request {request}: expected {expected}, got {got:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(count > 300, "the whole fixture ran ({count} cases)");
}
