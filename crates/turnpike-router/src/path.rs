//! The path sent upstream (`kong/router/utils.lua get_upstream_uri_v0`, the `v1` branch of
//! `traditional.lua`, and `atc.lua set_upstream_uri`).

use crate::{Match, PathHandling};

/// `sanitize_uri_postfix`: a postfix made only of dot segments does not escape upward.
pub fn sanitize_uri_postfix(postfix: &str) -> &str {
    if postfix == "." || postfix == ".." {
        return "";
    }
    if let Some(rest) = postfix.strip_prefix("./") {
        return rest;
    }
    if let Some(rest) = postfix.strip_prefix("../") {
        return rest;
    }
    postfix
}

fn v0(strip_path: bool, postfix: &str, req_uri: &str, base: &str) -> String {
    if let Some(trimmed) = base.strip_suffix('/') {
        if strip_path {
            if postfix.is_empty() {
                if base == "/" {
                    return "/".into();
                }
                if req_uri.ends_with('/') {
                    return base.into();
                }
                return trimmed.into();
            }
            if postfix.starts_with('/') {
                return format!("{trimmed}{postfix}");
            }
            return format!("{base}{postfix}");
        }
        return format!("{base}{}", &req_uri[1.min(req_uri.len())..]);
    }
    if strip_path {
        if postfix.is_empty() {
            if req_uri.len() > 1 && req_uri.ends_with('/') {
                return format!("{base}/");
            }
            return base.into();
        }
        if postfix.starts_with('/') {
            return format!("{base}{postfix}");
        }
        return format!("{base}/{postfix}");
    }
    if req_uri == "/" {
        return base.into();
    }
    format!("{base}{req_uri}")
}

fn v1(strip_path: bool, postfix: &str, req_uri: &str, base: &str) -> String {
    if strip_path {
        if let (Some(trimmed), true) = (base.strip_suffix('/'), postfix.starts_with('/')) {
            return format!("{trimmed}{postfix}");
        }
        return format!("{base}{postfix}");
    }
    format!("{base}{}", &req_uri[1.min(req_uri.len())..])
}

/// The upstream path for a match: the service path (`/` when unset) combined with the
/// normalized request path, minus the matched part when `strip_path` is on.
pub fn upstream_path(m: &Match<'_>, service_path: Option<&str>) -> String {
    let route = m.route;
    let req_uri = m.path.as_str();
    let prefix = if route.strip_path { m.matched_path.as_deref().unwrap_or("/") } else { "/" };
    let postfix = sanitize_uri_postfix(req_uri.get(prefix.len()..).unwrap_or(""));
    let base = service_path.unwrap_or("/");
    match route.path_handling {
        PathHandling::V0 => v0(route.strip_path, postfix, req_uri, base),
        PathHandling::V1 => v1(route.strip_path, postfix, req_uri, base),
    }
}
