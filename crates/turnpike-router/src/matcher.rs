//! Routes compiled into matchers: Kong's route splitting and priority
//! (`transform.lua`: `split_routes_and_services_by_path`, `get_priority`), and the evaluation
//! of the expression Kong generates for a route (`get_expression`).

use std::fmt;
use std::sync::Arc;

use http::HeaderName;
use regex::Regex;
use uuid::Uuid;

use crate::{Captures, RequestParts, RouteDef};

/// The namespace of the ids Kong gives to the parts of a split route.
const SPLIT_NAMESPACE: Uuid = Uuid::from_u128(0x7f145bf9_0dce_4f91_98eb_debbce4b9f6b);

const MAX_HEADER_COUNT: u64 = 255;
const PLAIN_HOST_ONLY_BIT: u64 = 1 << 60;
const REGEX_URL_BIT: u64 = 1 << 51;

/// Why a set of routes could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    pub route_id: String,
    pub message: String,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "route {}: {}", self.route_id, self.message)
    }
}

impl std::error::Error for BuildError {}

/// A host or SNI pattern.
#[derive(Debug, Clone)]
pub(crate) enum Wild {
    Exact(String),
    /// `*.example.com`: the value ends with `.example.com`.
    Suffix(String),
    /// `example.*`: the value starts with `example.`.
    Prefix(String),
}

impl Wild {
    fn parse(pattern: &str) -> Self {
        if let Some(rest) = pattern.strip_prefix('*') {
            Wild::Suffix(rest.to_owned())
        } else if let Some(rest) = pattern.strip_suffix('*') {
            Wild::Prefix(rest.to_owned())
        } else {
            Wild::Exact(pattern.to_owned())
        }
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Wild::Exact(e) => value == e,
            Wild::Suffix(s) => value.ends_with(s.as_str()),
            Wild::Prefix(p) => value.starts_with(p.as_str()),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct HostPat {
    pub(crate) pat: Wild,
    pub(crate) port: Option<u32>,
}

#[derive(Debug, Clone)]
pub(crate) enum PathPat {
    Prefix(String),
    Regex(Regex),
}

#[derive(Debug, Clone)]
enum HeaderVal {
    /// Compared case-insensitively (Kong lower-cases both sides).
    Exact(String),
    /// A lower-cased `~*` regex, applied to the lower-cased value.
    Regex(Regex),
}

#[derive(Debug, Clone)]
struct HeaderCond {
    /// The header as sent (`x-foo`) and with Kong's underscore spelling (`x_foo`).
    names: Vec<HeaderName>,
    values: Vec<HeaderVal>,
}

/// One compiled matcher (a route, or one part of a split route).
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    pub(crate) route: usize,
    pub(crate) priority: u64,
    pub(crate) id: Uuid,
    methods: Vec<String>,
    pub(crate) hosts: Vec<HostPat>,
    pub(crate) paths: Vec<PathPat>,
    headers: Vec<HeaderCond>,
    snis: Vec<Wild>,
}

/// What the matcher needs from a request, computed once per request.
pub(crate) struct Ctx<'a> {
    pub(crate) req: &'a RequestParts<'a>,
    /// The normalized path.
    pub(crate) path: &'a str,
    /// `Host` without its port.
    pub(crate) host: Option<&'a str>,
    /// `net.dst.port`: the `Host` port, else the local port.
    pub(crate) port: Option<u32>,
}

/// The path part of a successful match.
pub(crate) struct Hit {
    pub(crate) matched_path: Option<String>,
    pub(crate) captures: Option<Captures>,
}

/// Kong's `split_host_port`: `example.com:8000` -> (`example.com`, 8000); a part after
/// the first colon that is not a number leaves the value whole.
pub(crate) fn split_host_port(host: Option<&str>) -> (Option<&str>, Option<u32>) {
    let Some(h) = host else { return (None, None) };
    match h.find(':') {
        Some(i) => match h[i + 1..].parse::<u32>() {
            Ok(p) => (Some(&h[..i]), Some(p)),
            Err(_) => (Some(h), None),
        },
        None => (Some(h), None),
    }
}

fn is_regex(path: &str) -> bool {
    path.starts_with('~')
}

/// `path_val_transform`: `~/x(?<n>y)` -> `^/x(?P<n>y)` (anchored at the start).
fn path_regex(path: &str) -> String {
    format!("^{}", path[1..].replace("?<", "?P<"))
}

/// `get_priority` of Kong's `transform.lua` for an HTTP route with these paths.
fn priority(route: &RouteDef, paths: &[String]) -> u64 {
    let mut weight: u64 = 0;
    if !route.methods.is_empty() {
        weight += 1;
    }
    if !route.hosts.is_empty() {
        weight += 1;
    }
    let headers = (route.headers.len() as u64).min(MAX_HEADER_COUNT);
    if headers > 0 {
        weight += 1;
    }
    if !route.snis.is_empty() {
        weight += 1;
    }
    let plain_hosts_only = !route.hosts.is_empty() && route.hosts.iter().all(|h| !h.contains('*'));
    let mut uri_length: u64 = 0;
    let mut regex_url = false;
    if let Some(first) = paths.first() {
        weight += 1;
        if is_regex(first) {
            regex_url = true;
        } else {
            uri_length = first.len() as u64;
        }
    }
    // Kong shifts a signed value into an unsigned one; a negative regex_priority would set the
    // top bits and win over every route, so it counts as 0 here.
    let regex_priority = if regex_url { route.regex_priority.max(0) as u64 } else { 0 };
    (weight << 61)
        | if plain_hosts_only { PLAIN_HOST_ONLY_BIT } else { 0 }
        | (headers << 52)
        | if regex_url { REGEX_URL_BIT } else { 0 }
        | regex_priority.wrapping_shl(19)
        | (uri_length & 0x7FFFF)
}

/// `group_by_regex_or_length`: regex paths together, prefix paths by length, in order.
fn group_paths(paths: &[String]) -> Vec<Vec<String>> {
    let mut keys: Vec<usize> = Vec::new();
    let mut groups: Vec<Vec<String>> = Vec::new();
    for p in paths {
        let k = if is_regex(p) { 0 } else { p.len() };
        match keys.iter().position(|x| *x == k) {
            Some(i) => groups[i].push(p.clone()),
            None => {
                keys.push(k);
                groups.push(vec![p.clone()]);
            }
        }
    }
    groups
}

fn route_uuid(id: &str) -> Uuid {
    Uuid::parse_str(id).unwrap_or_else(|_| Uuid::new_v5(&SPLIT_NAMESPACE, id.as_bytes()))
}

fn header_names(name: &str) -> Vec<HeaderName> {
    let lower = name.to_ascii_lowercase();
    let mut out = Vec::new();
    for candidate in [lower.replace('_', "-"), lower.replace('-', "_")] {
        if let Ok(h) = HeaderName::from_bytes(candidate.as_bytes()) {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    out
}

fn build(
    route_index: usize,
    route: &RouteDef,
    id: Uuid,
    paths: &[String],
) -> Result<Matcher, BuildError> {
    let err = |message: String| BuildError { route_id: route.id.clone(), message };
    let hosts = route
        .hosts
        .iter()
        .map(|h| {
            let (host, port) = split_host_port(Some(h));
            HostPat { pat: Wild::parse(host.unwrap_or_default()), port }
        })
        .collect();
    let mut compiled_paths = Vec::with_capacity(paths.len());
    for p in paths {
        if is_regex(p) {
            let re = Regex::new(&path_regex(p))
                .map_err(|e| err(format!("invalid regex path '{p}': {e}")))?;
            compiled_paths.push(PathPat::Regex(re));
        } else {
            compiled_paths.push(PathPat::Prefix(p.clone()));
        }
    }
    let mut headers = Vec::with_capacity(route.headers.len());
    for (name, values) in &route.headers {
        let mut vals = Vec::with_capacity(values.len());
        for v in values {
            match v.strip_prefix("~*") {
                Some(re) => {
                    let re = Regex::new(&re.to_ascii_lowercase())
                        .map_err(|e| err(format!("invalid header regex '{v}': {e}")))?;
                    vals.push(HeaderVal::Regex(re));
                }
                None => vals.push(HeaderVal::Exact(v.to_ascii_lowercase())),
            }
        }
        headers.push(HeaderCond { names: header_names(name), values: vals });
    }
    let snis = route
        .snis
        .iter()
        .map(|s| {
            let s = if s.len() > 1 && s.ends_with('.') && !s.ends_with("*") {
                &s[..s.len() - 1]
            } else {
                s
            };
            Wild::parse(s)
        })
        .collect();
    Ok(Matcher {
        route: route_index,
        priority: priority(route, paths),
        id,
        methods: route.methods.clone(),
        hosts,
        paths: compiled_paths,
        headers,
        snis,
    })
}

/// The matchers of one route (several when its paths differ in kind or length).
fn compile_route(i: usize, r: &RouteDef) -> Result<Vec<Matcher>, BuildError> {
    let groups = group_paths(&r.paths);
    if groups.len() <= 1 {
        return Ok(vec![build(i, r, route_uuid(&r.id), &r.paths)?]);
    }
    groups
        .iter()
        .enumerate()
        .map(|(gi, group)| {
            let id = Uuid::new_v5(&SPLIT_NAMESPACE, format!("{}#{}", r.id, gi + 1).as_bytes());
            build(i, r, id, group)
        })
        .collect()
}

/// Compiles routes into matchers sorted in match order (priority, then id, descending).
///
/// Compiling regexes dominates the cost of large route sets, so big sets are compiled on
/// every core (this runs off the request path, when a configuration is published).
pub(crate) fn compile(routes: &[Arc<RouteDef>]) -> Result<Vec<Matcher>, BuildError> {
    const PER_THREAD_MIN: usize = 256;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = routes.len().div_ceil(threads).max(PER_THREAD_MIN);
    let parts: Vec<Result<Vec<Matcher>, BuildError>> =
        if routes.len() <= PER_THREAD_MIN || threads == 1 {
            vec![compile_range(routes, 0)]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = routes
                    .chunks(chunk)
                    .enumerate()
                    .map(|(ci, part)| scope.spawn(move || compile_range(part, ci * chunk)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(BuildError {
                                route_id: String::new(),
                                message: "router build panicked".into(),
                            })
                        })
                    })
                    .collect()
            })
        };
    let mut out = Vec::with_capacity(routes.len());
    for p in parts {
        out.extend(p?);
    }
    out.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| b.id.cmp(&a.id)));
    Ok(out)
}

fn compile_range(routes: &[Arc<RouteDef>], offset: usize) -> Result<Vec<Matcher>, BuildError> {
    let mut out = Vec::with_capacity(routes.len());
    for (i, r) in routes.iter().enumerate() {
        out.extend(compile_route(offset + i, r)?);
    }
    Ok(out)
}

impl Matcher {
    /// Evaluates the route's expression against the request.
    pub(crate) fn test(&self, ctx: &Ctx<'_>) -> Option<Hit> {
        if !self.snis.is_empty() && ctx.req.scheme == "https" {
            let sni = ctx.req.sni?;
            if !self.snis.iter().any(|w| w.matches(sni)) {
                return None;
            }
        }
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m == ctx.req.method) {
            return None;
        }
        if !self.hosts.is_empty() {
            let host = ctx.host?;
            let ok = self
                .hosts
                .iter()
                .any(|h| h.pat.matches(host) && h.port.is_none_or(|p| ctx.port == Some(p)));
            if !ok {
                return None;
            }
        }
        let hit = if self.paths.is_empty() {
            Hit { matched_path: None, captures: None }
        } else {
            self.match_path(ctx.path)?
        };
        for h in &self.headers {
            if !h.matches(ctx.req.headers) {
                return None;
            }
        }
        Some(hit)
    }

    fn match_path(&self, path: &str) -> Option<Hit> {
        for p in &self.paths {
            match p {
                PathPat::Prefix(prefix) => {
                    if path.starts_with(prefix.as_str()) {
                        return Some(Hit { matched_path: Some(prefix.clone()), captures: None });
                    }
                }
                PathPat::Regex(re) => {
                    if let Some(caps) = re.captures(path) {
                        let whole = caps.get(0).map(|m| m.as_str().to_owned());
                        let captures = (caps.len() > 1).then(|| Captures {
                            positional: caps
                                .iter()
                                .map(|c| c.map(|m| m.as_str().to_owned()))
                                .collect(),
                            named: re
                                .capture_names()
                                .flatten()
                                .map(|n| {
                                    (n.to_owned(), caps.name(n).map(|m| m.as_str().to_owned()))
                                })
                                .collect(),
                        });
                        return Some(Hit { matched_path: whole, captures });
                    }
                }
            }
        }
        None
    }
}

impl HeaderCond {
    fn matches(&self, headers: &dyn crate::RequestHeaders) -> bool {
        let values = &self.values;
        let mut pred = |v: &[u8]| {
            let Ok(v) = std::str::from_utf8(v) else { return false };
            values.iter().any(|want| match want {
                HeaderVal::Exact(e) => v.eq_ignore_ascii_case(e),
                HeaderVal::Regex(re) => re.is_match(&v.to_ascii_lowercase()),
            })
        };
        self.names.iter().any(|name| headers.any_value(name.as_str(), &mut pred))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(paths: &[&str], hosts: &[&str]) -> RouteDef {
        RouteDef {
            id: Uuid::new_v4().to_string(),
            paths: paths.iter().map(|s| (*s).to_owned()).collect(),
            hosts: hosts.iter().map(|s| (*s).to_owned()).collect(),
            ..RouteDef::default()
        }
    }

    #[test]
    fn priorities_follow_kong() {
        let plain = priority(&route(&["/abc"], &["example.com"]), &["/abc".into()]);
        assert_eq!(plain >> 61, 2, "two fields");
        assert_ne!(plain & PLAIN_HOST_ONLY_BIT, 0);
        assert_eq!(plain & 0x7FFFF, 4);
        let wild = priority(&route(&["/abc"], &["*.example.com"]), &["/abc".into()]);
        assert!(plain > wild, "plain hosts beat wildcards");
        let mut r = route(&["~/a"], &[]);
        r.regex_priority = 5;
        let re = priority(&r, &["~/a".into()]);
        assert_ne!(re & REGEX_URL_BIT, 0);
        assert_eq!((re >> 19) & 0xFF, 5);
        assert!(
            re > priority(&route(&["/abcdefgh"], &[]), &["/abcdefgh".into()]),
            "regex beats prefix"
        );
    }

    #[test]
    fn splits_mixed_paths() {
        let r = Arc::new(route(&["/a", "~/b", "/cc", "/d"], &[]));
        let m = compile(std::slice::from_ref(&r)).unwrap();
        assert_eq!(m.len(), 3, "regex, length 2, length 3");
        let ids: Vec<Uuid> = m.iter().map(|x| x.id).collect();
        let again: Vec<Uuid> = compile(&[r]).unwrap().iter().map(|x| x.id).collect();
        assert_eq!(ids, again, "split ids are deterministic");
    }

    #[test]
    fn split_host_port_like_kong() {
        assert_eq!(split_host_port(Some("a.com:80")), (Some("a.com"), Some(80)));
        assert_eq!(split_host_port(Some("a.com")), (Some("a.com"), None));
        assert_eq!(split_host_port(Some("a.com:x")), (Some("a.com:x"), None));
        assert_eq!(split_host_port(None), (None, None));
    }
}
