//! Kong's reusable field types (`kong/db/schema/typedefs.lua`) and their validators.

use serde_json::{json, Value};

use crate::net::{self, HostType};
use crate::schema::{EntityCheck, Field, Schema};
use crate::uri;

/// The protocols Kong knows (`constants.PROTOCOLS`).
pub const PROTOCOLS: &[&str] =
    &["grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp"];

/// Protocols of the HTTP subsystem, sorted (`typedefs.protocols` default).
pub const HTTP_PROTOCOLS: &[&str] = &["grpc", "grpcs", "http", "https"];

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

pub fn validate_host(v: &Value) -> Result<(), String> {
    let host = s(v);
    match net::normalize_ip(host) {
        Err(e) if e == "invalid port number" => Err("must not have a port".into()),
        Err(_) => Err(format!("invalid value: {host}")),
        Ok(hp) if hp.port.is_some() => Err("must not have a port".into()),
        Ok(_) => Ok(()),
    }
}

pub fn validate_host_with_optional_port(v: &Value) -> Result<(), String> {
    net::normalize_ip(s(v)).map(|_| ())
}

fn validate_sni_str(host: &str, shown: &str) -> Result<(), String> {
    match net::normalize_ip(host) {
        Err(e) if e == "invalid port number" => Err("must not have a port".into()),
        Err(_) => Err(format!("invalid value: {shown}")),
        Ok(hp) if hp.ty != HostType::Name => Err("must not be an IP".into()),
        Ok(hp) if hp.port.is_some() => Err("must not have a port".into()),
        Ok(_) => Ok(()),
    }
}

pub fn validate_sni(v: &Value) -> Result<(), String> {
    validate_sni_str(s(v), s(v))
}

pub fn validate_wildcard_host(v: &Value) -> Result<(), String> {
    let host = s(v);
    if let Some(idx) = host.find('*') {
        if idx != 0 && idx + 1 != host.len() {
            return Err("wildcard must be leftmost or rightmost character".into());
        }
        if host.matches('*').count() > 1 {
            return Err("only one wildcard must be specified".into());
        }
        let mock = host.replace('*', "wildcard");
        return validate_sni_str(&mock, &mock);
    }
    validate_sni_str(host, host)
}

pub fn validate_ip(v: &Value) -> Result<(), String> {
    if net::is_valid_ip(s(v)) {
        Ok(())
    } else {
        Err(format!("not an ip address: {}", s(v)))
    }
}

pub fn validate_ip_or_cidr(v: &Value) -> Result<(), String> {
    if net::is_valid_ip_or_cidr(s(v)) {
        Ok(())
    } else {
        Err(format!("invalid ip or cidr range: '{}'", s(v)))
    }
}

pub fn validate_ip_or_cidr_v4(v: &Value) -> Result<(), String> {
    if net::is_valid_ip_or_cidr_v4(s(v)) {
        Ok(())
    } else {
        Err(format!("invalid ipv4 cidr range: '{}'", s(v)))
    }
}

/// Characters allowed in a path by RFC 3986 (unreserved, sub-delims, `:@/%`).
fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'.' | b'-'
                | b'_'
                | b'~'
                | b'/'
                | b'%'
                | b':'
                | b'@'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

/// Returns the error and whether it is a percent-encoding error (Kong's "percent" code).
fn path_error(path: &str) -> Option<(String, bool)> {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') || !b.iter().all(|c| is_path_char(*c)) {
        return Some((
            format!("invalid path: '{path}' (characters outside of the reserved list of RFC 3986 found)"),
            false,
        ));
    }
    // Kong replaces valid triplets with "___" and reports the first stray '%' with up to two
    // following characters of that rewritten string.
    let mut raw = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
        {
            raw.extend_from_slice(b"___");
            i += 3;
        } else {
            raw.push(b[i]);
            i += 1;
        }
    }
    let pos = raw.iter().position(|c| *c == b'%')?;
    let end = (pos + 3).min(raw.len());
    Some((
        format!("invalid url-encoded value: '{}'", String::from_utf8_lossy(&raw[pos..end])),
        true,
    ))
}

pub fn validate_path(v: &Value) -> Result<(), String> {
    match path_error(s(v)) {
        Some((e, _)) => Err(e),
        None => Ok(()),
    }
}

pub fn validate_name(v: &Value) -> Result<(), String> {
    let name = s(v);
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid value '{name}': it must only contain alphanumeric and '., -, _, ~' characters"
        ))
    }
}

pub fn validate_utf8_name(v: &Value) -> Result<(), String> {
    let name = s(v);
    let ok = !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'-' | b'_' | b'~')
                || (0x80..=0xF4).contains(&b)
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid value '{name}': the only accepted ascii characters are alphanumerics or ., -, _, and ~"
        ))
    }
}

pub fn validate_tag(v: &Value) -> Result<(), String> {
    let tag = s(v);
    let ok = !tag.is_empty()
        && tag.bytes().all(|b| {
            b == b' '
                || ((33..=126).contains(&b) && b != b',' && b != b'/')
                || (128..=244).contains(&b)
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid tag '{tag}': expected printable ascii (except `,` and `/`) or valid utf-8 sequences"
        ))
    }
}

pub fn validate_header_name(v: &Value) -> Result<(), String> {
    let name = s(v);
    if name.is_empty() {
        return Err("no header name provided".into());
    }
    if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Ok(())
    } else {
        Err(format!("bad header name '{name}', allowed characters are A-Z, a-z, 0-9, '_', and '-'"))
    }
}

pub fn validate_cookie_name(v: &Value) -> Result<(), String> {
    let token = s(v);
    if token.is_empty() {
        return Err("no token provided".into());
    }
    let bad = token.bytes().any(|b| b < 32 || b == 127 || b" \t()<>@,;:\\\"/?={}[]".contains(&b));
    if bad {
        Err("contains one or more invalid characters. ASCII control characters (0-31;127), space, tab and the characters ()<>@,;:\\\"/?={}[] are not allowed.".into())
    } else {
        Ok(())
    }
}

pub fn validate_url(v: &Value) -> Result<(), String> {
    let u = net::parse_url(s(v));
    if u.host.is_none() {
        return Err("missing host in url".into());
    }
    if u.scheme.is_none() {
        return Err("missing scheme in url".into());
    }
    Ok(())
}

fn validate_certificate(v: &Value) -> Result<(), String> {
    crate::pki::validate_certificate(s(v))
}

fn validate_key(v: &Value) -> Result<(), String> {
    crate::pki::validate_key(s(v))
}

/// Route paths: `/prefix` (already normalized) or `~/regex` (compilable).
pub fn validate_path_with_regexes(v: &Value) -> Result<(), String> {
    let path = s(v);
    if let Some((e, percent)) = path_error(path) {
        if percent {
            return Err(e);
        }
    }
    match path.strip_prefix('~') {
        None => {
            let normalized = uri::normalize(path, true);
            if normalized != path {
                return Err(format!("non-normalized path, consider use '{normalized}' instead"));
            }
            Ok(())
        }
        Some(re) => match regex::Regex::new(re) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "invalid regex: '{re}' (PCRE returned: {})",
                first_line(&e.to_string())
            )),
        },
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| s.lines().next().unwrap_or(s))
        .trim()
        .to_owned()
}

fn validate_host_with_wildcards(v: &Value) -> Result<(), String> {
    let host = s(v).replace('*', "abc");
    net::normalize_ip(&host).map(|_| ())
}

// ---- typedefs ---------------------------------------------------------------------------

pub fn uuid() -> Field {
    Field::string().uuid().auto()
}

pub fn auto_timestamp_s() -> Field {
    Field::integer().timestamp().auto()
}

pub fn auto_timestamp_ms() -> Field {
    Field::number().timestamp().auto()
}

pub fn http_method() -> Field {
    Field::string().matches("^%u+$")
}

pub fn protocol() -> Field {
    Field::string().one_of(PROTOCOLS.iter().copied())
}

pub fn host() -> Field {
    Field::string().custom(validate_host)
}

pub fn host_with_optional_port() -> Field {
    Field::string().custom(validate_host_with_optional_port)
}

pub fn wildcard_host() -> Field {
    Field::string().custom(validate_wildcard_host)
}

pub fn sni() -> Field {
    Field::string().custom(validate_sni)
}

pub fn ip() -> Field {
    Field::string().custom(validate_ip)
}

pub fn ip_or_cidr() -> Field {
    Field::string().custom(validate_ip_or_cidr)
}

pub fn cidr_v4() -> Field {
    Field::string().custom(validate_ip_or_cidr_v4)
}

pub fn port() -> Field {
    Field::integer().between(0.0, 65535.0)
}

pub fn path() -> Field {
    Field::string()
        .starts_with("/")
        .match_none("//", "must not have empty segments")
        .custom(validate_path)
}

pub fn url() -> Field {
    Field::string().custom(validate_url)
}

pub fn header_name() -> Field {
    Field::string().custom(validate_header_name)
}

pub fn cookie_name() -> Field {
    Field::string().custom(validate_cookie_name)
}

pub fn timeout() -> Field {
    Field::integer().between(0.0, 2f64.powi(31) - 2.0)
}

pub fn name() -> Field {
    Field::string().unique().custom(validate_name)
}

pub fn utf8_name() -> Field {
    Field::string().unique().custom(validate_utf8_name)
}

pub fn certificate() -> Field {
    Field::string().custom(validate_certificate)
}

pub fn key() -> Field {
    Field::string().custom(validate_key)
}

pub fn tag() -> Field {
    Field::string().required().custom(validate_tag)
}

pub fn tags() -> Field {
    Field::set(tag())
}

pub fn protocols() -> Field {
    Field::set(protocol()).required().default(json!(HTTP_PROTOCOLS))
}

pub fn protocols_http() -> Field {
    Field::set(Field::string().one_of(HTTP_PROTOCOLS.iter().copied()))
        .required()
        .default(json!(HTTP_PROTOCOLS))
}

pub fn no_route() -> Field {
    Field::foreign("routes").eq_null()
}

pub fn no_service() -> Field {
    Field::foreign("services").eq_null()
}

pub fn no_consumer() -> Field {
    Field::foreign("consumers").eq_null()
}

fn ip_port_record() -> Schema {
    Schema::record()
        .field("ip", ip_or_cidr())
        .field("port", port())
        .check(EntityCheck::at_least_one_of(&["ip", "port"]))
}

pub fn sources() -> Field {
    Field::set(Field::record(ip_port_record()))
}

pub fn destinations() -> Field {
    Field::set(Field::record(ip_port_record()))
}

pub fn methods() -> Field {
    Field::set(http_method())
}

pub fn hosts() -> Field {
    Field::array(
        Field::string()
            .match_all("^[^*]*%*?[^*]*$", "invalid wildcard: must have at most one wildcard")
            .match_any(
                &["^%*%.", "%.%*$", "^[^*]*$"],
                "invalid wildcard: must be placed at leftmost or rightmost label",
            )
            .custom(validate_host_with_wildcards),
    )
}

pub fn router_path() -> Field {
    Field::string()
        .match_any(&["^/", "^~/"], "should start with: / (fixed path) or ~/ (regex path)")
        .match_none("//", "must not have empty segments")
        .custom(validate_path_with_regexes)
}

pub fn router_paths() -> Field {
    Field::array(router_path())
}

pub fn headers() -> Field {
    Field::map(header_name(), Field::array(Field::string()))
}

pub fn semantic_version() -> Field {
    Field::string()
        .match_any(
            &["^%d+[%.%d]*$", "^%d+[%.%d]*%-?.*$"],
            "invalid version number: must be in format of X.Y.Z",
        )
        .match_none("%.%.", "must not have empty version segments")
}

pub fn ttl() -> Field {
    Field::number().between(0.0, 100_000_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn host_messages() {
        assert_eq!(validate_host(&json!("example.com")), Ok(()));
        assert_eq!(validate_host(&json!("example.com:80")), Err("must not have a port".into()));
        assert_eq!(validate_host(&json!("exa mple")), Err("invalid value: exa mple".into()));
        assert_eq!(validate_wildcard_host(&json!("*.example.com")), Ok(()));
        assert_eq!(
            validate_wildcard_host(&json!("a.*.com")),
            Err("wildcard must be leftmost or rightmost character".into())
        );
        assert_eq!(validate_sni(&json!("1.2.3.4")), Err("must not be an IP".into()));
    }

    #[test]
    fn path_messages() {
        assert_eq!(validate_path(&json!("/ok/path")), Ok(()));
        assert_eq!(
            validate_path(&json!("/bad path")),
            Err("invalid path: '/bad path' (characters outside of the reserved list of RFC 3986 found)".into())
        );
        assert_eq!(validate_path(&json!("/a%zz")), Err("invalid url-encoded value: '%zz'".into()));
        assert_eq!(
            validate_path_with_regexes(&json!("/a/../b")),
            Err("non-normalized path, consider use '/b' instead".into())
        );
        assert!(validate_path_with_regexes(&json!("~/a/(b")).is_err());
        assert_eq!(validate_path_with_regexes(&json!("~/a/\\d+")), Ok(()));
    }
}
