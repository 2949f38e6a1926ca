//! Kong's router, `traditional_compatible` flavor: routes with classic fields (hosts, paths,
//! methods, headers, SNIs) are turned into matchers with Kong's 64-bit priority
//! (`kong/router/transform.lua`) and evaluated the way Kong's ATC engine evaluates the
//! expressions it generates for them: highest priority first, ties broken by route id
//! (descending), first full match wins.
//!
//! The crate is pure and synchronous: [`Router::new`] compiles a set of [`RouteDef`]s (off the
//! request path), [`Router::select`] matches one request. An index keeps a match cheap with
//! many routes: matchers are bucketed by host (exact, wildcard suffix, wildcard prefix, any),
//! prefix paths live in a byte trie per bucket and regex paths in one `RegexSet` per bucket,
//! so that only the candidates whose host and path can match are tested, in priority order.
//!
//! [`upstream_path`] computes the path sent upstream (`strip_path`, `path_handling` v0/v1),
//! with Kong's rules (`kong/router/utils.lua`).

mod index;
mod matcher;
mod path;

use std::net::SocketAddr;
use std::sync::Arc;

pub use matcher::BuildError;
pub use path::{sanitize_uri_postfix, upstream_path};

/// Kong's `router_flavor`.
///
/// Both flavors route with the `traditional_compatible` priority rules (see the crate docs);
/// they differ in `path_handling`: Kong's ATC-based router always builds the upstream path
/// the `v0` way (`kong/router/atc.lua` `set_upstream_uri`), while the pre-3.0 `traditional`
/// router honours `v1`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flavor {
    #[default]
    TraditionalCompatible,
    Traditional,
}

/// `path_handling` of a route.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PathHandling {
    #[default]
    V0,
    V1,
}

/// A route as the router needs it (Kong's route entity, already validated).
#[derive(Clone, Debug, Default)]
pub struct RouteDef {
    /// The route id (a UUID, lower case): the tie-breaker between equal priorities.
    pub id: String,
    pub name: Option<String>,
    pub protocols: Vec<String>,
    pub methods: Vec<String>,
    pub hosts: Vec<String>,
    pub paths: Vec<String>,
    /// Header name -> accepted values (`~*regex` for a case-insensitive regex).
    pub headers: Vec<(String, Vec<String>)>,
    pub snis: Vec<String>,
    pub regex_priority: i64,
    pub strip_path: bool,
    pub preserve_host: bool,
    pub path_handling: PathHandling,
    pub https_redirect_status_code: u16,
    pub request_buffering: bool,
    pub response_buffering: bool,
    /// Index of the route's service in the caller's service table, if any.
    pub service: Option<usize>,
}

/// Access to a request's headers, for routes with header conditions.
pub trait RequestHeaders {
    /// Whether any value of header `name` (lowercase) satisfies `pred`.
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&[u8]) -> bool) -> bool;
}

impl RequestHeaders for http::HeaderMap {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.get_all(name).iter().any(|v| pred(v.as_bytes()))
    }
}

/// The parts of a request the router looks at.
#[derive(Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The request path, as received (percent-encoded, without the query string); it is
    /// normalized before matching.
    pub path: &'a str,
    /// The `Host` header (or `:authority`), as sent, possibly with a port.
    pub host: Option<&'a str>,
    /// `http` or `https`: how the request reached the gateway.
    pub scheme: &'a str,
    /// The TLS server name, for HTTPS.
    pub sni: Option<&'a str>,
    pub headers: &'a dyn RequestHeaders,
    /// The address the client connected to (its port is `net.dst.port` when `Host` has none).
    pub local: Option<SocketAddr>,
}

/// Regex captures of the matched path (`uri_captures`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captures {
    /// Positional captures; index 0 is the whole match.
    pub positional: Vec<Option<String>>,
    pub named: Vec<(String, Option<String>)>,
}

/// A successful match.
#[derive(Clone, Debug)]
pub struct Match<'r> {
    /// The index of the route in the list given to [`Router::new`].
    pub route_index: usize,
    pub route: &'r RouteDef,
    /// The normalized request path the route matched.
    pub path: String,
    /// The matched part of the path: the route's prefix, or the whole regex match; `None`
    /// when the route has no paths.
    pub matched_path: Option<String>,
    /// Captures, when a regex path with groups matched.
    pub captures: Option<Captures>,
}

/// Compiled routes.
#[derive(Debug)]
pub struct Router {
    routes: Vec<Arc<RouteDef>>,
    matchers: Vec<matcher::Matcher>,
    index: index::Index,
}

impl Router {
    /// Compiles `routes`. Routes are kept in the given order for [`Match::route_index`];
    /// the match order is Kong's priority order.
    pub fn new(routes: Vec<RouteDef>) -> Result<Self, BuildError> {
        Self::with_flavor(routes, Flavor::TraditionalCompatible)
    }

    /// Compiles `routes` for a router flavor: under `traditional_compatible`, a route's
    /// `path_handling = v1` acts as `v0`, as in Kong.
    pub fn with_flavor(routes: Vec<RouteDef>, flavor: Flavor) -> Result<Self, BuildError> {
        let routes: Vec<Arc<RouteDef>> = routes
            .into_iter()
            .map(|mut r| {
                if flavor == Flavor::TraditionalCompatible {
                    r.path_handling = PathHandling::V0;
                }
                Arc::new(r)
            })
            .collect();
        let matchers = matcher::compile(&routes)?;
        let index = index::Index::build(&matchers);
        Ok(Self { routes, matchers, index })
    }

    /// An empty router (matches nothing).
    pub fn empty() -> Self {
        Self { routes: Vec::new(), matchers: Vec::new(), index: index::Index::build(&[]) }
    }

    pub fn routes(&self) -> &[Arc<RouteDef>] {
        &self.routes
    }

    /// The number of compiled matchers (routes with paths of different kinds are split).
    pub fn matcher_count(&self) -> usize {
        self.matchers.len()
    }

    /// Finds the route for a request. A path whose normalized form is not valid UTF-8
    /// matches nothing (Kong's router refuses it too).
    pub fn select(&self, req: &RequestParts<'_>) -> Option<Match<'_>> {
        let path = if needs_normalizing(req.path) {
            String::from_utf8(turnpike_core::uri::normalize_bytes(req.path.as_bytes(), true))
                .ok()?
        } else {
            req.path.to_owned()
        };
        let (host, port) = matcher::split_host_port(req.host);
        let port = port.or_else(|| req.local.map(|a| u32::from(a.port())));
        let ctx = matcher::Ctx { req, path: &path, host, port };
        let (m, hit) = self.index.find(&self.matchers, &ctx)?;
        let route = &self.routes[m.route];
        Some(Match {
            route_index: m.route,
            route,
            matched_path: hit.matched_path,
            captures: hit.captures,
            path,
        })
    }
}

/// Whether `normalize` could change `path` (percent-escapes, dot segments, `//`).
fn needs_normalizing(path: &str) -> bool {
    path.bytes().any(|b| b == b'%' || b == b'.') || path.contains("//")
}
