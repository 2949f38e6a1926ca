//! Host, IP and URL parsing with Kong's rules and messages (`kong/tools/ip.lua`,
//! LuaSocket's `url.parse`).

use std::net::{Ipv4Addr, Ipv6Addr};

/// What an address string looks like (`hostname_type`): decided by exclusion, not validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostType {
    Ipv4,
    Ipv6,
    Name,
}

/// A normalized host with an optional port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub ty: HostType,
    pub host: String,
    pub port: Option<u16>,
}

pub fn hostname_type(name: &str) -> HostType {
    let colons = name.bytes().filter(|b| *b == b':').count();
    if colons > 1 {
        return HostType::Ipv6;
    }
    let remainder: String = name.chars().filter(|c| *c != ':').collect();
    if !remainder.is_empty() && remainder.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return HostType::Ipv4;
    }
    HostType::Name
}

fn parse_port(digits: &str) -> Result<u16, String> {
    let n: u64 = digits.parse().map_err(|_| "invalid port number".to_owned())?;
    if n > 65535 {
        return Err("invalid port number".into());
    }
    Ok(n as u16)
}

fn octet(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = s.parse().ok()?;
    u8::try_from(n).ok()
}

/// `normalize_ipv4`: `a.b.c.d[:port]`, with leading zeros dropped.
pub fn normalize_ipv4(address: &str) -> Result<(String, Option<u16>), String> {
    let err = || format!("invalid ipv4 address: {address}");
    let (ip, port) = match address.split_once(':') {
        Some((ip, port)) => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            (ip, Some(port))
        }
        None => (address, None),
    };
    let parts: Vec<&str> = ip.split('.').collect();
    if parts.len() != 4 {
        return Err(err());
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        octets[i] = octet(p).ok_or_else(err)?;
    }
    let port = match port {
        Some(p) => Some(parse_port(p)?),
        None => None,
    };
    Ok((format!("{}.{}.{}.{}", octets[0], octets[1], octets[2], octets[3]), port))
}

/// `normalize_ipv6`: `ipv6`, `[ipv6]` or `[ipv6]:port`, fully expanded and lower-cased.
pub fn normalize_ipv6(address: &str) -> Result<(String, Option<u16>), String> {
    let (check, port) = if let Some(rest) = address.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err(format!("invalid ipv6 address: {address}"));
        };
        let inner = &rest[..end];
        let tail = &rest[end + 1..];
        let port = if tail.is_empty() {
            None
        } else {
            match tail.strip_prefix(':') {
                Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => {
                    Some(parse_port(d)?)
                }
                _ => return Err("invalid ipv6 address".into()),
            }
        };
        (inner.to_owned(), port)
    } else {
        (address.to_owned(), None)
    };
    let mut check = check;
    if check.starts_with(':') {
        check.insert(0, '0');
    }
    if check.ends_with(':') {
        check.push('0');
    }
    if check.contains("::") {
        let count = check.bytes().filter(|b| *b == b':').count();
        let ins = format!(":{}", "0:".repeat(8usize.saturating_sub(count)));
        check = check.replacen("::", &ins, 1);
    }
    let groups: Vec<&str> = check.split(':').collect();
    let valid = groups.len() == 8
        && groups
            .iter()
            .all(|g| !g.is_empty() && g.len() <= 4 && g.bytes().all(|b| b.is_ascii_hexdigit()));
    if !valid {
        return Err(format!("invalid ipv6 address: {address}"));
    }
    let expanded: Vec<String> =
        groups.iter().map(|g| format!("{:0>4}", g.to_ascii_lowercase())).collect();
    Ok((expanded.join(":"), port))
}

/// `check_hostname`: a DNS name with an optional port.
pub fn check_hostname(address: &str) -> Result<(String, Option<u16>), String> {
    let mut name = address;
    let mut port = None;
    if let Some(idx) = address.rfind(':') {
        let digits = &address[idx + 1..];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            port = Some(parse_port(digits)?);
            name = &address[..idx];
        }
    }
    let ok_chars = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !ok_chars {
        return Err(format!("invalid hostname: {address}"));
    }
    let segments: Vec<&str> = name.split('.').collect();
    let count = segments.len();
    for (i, seg) in segments.iter().enumerate() {
        if seg.ends_with('-') || (seg.is_empty() && i + 1 != count) {
            return Err(format!("invalid hostname: {address}"));
        }
    }
    Ok((name.to_owned(), port))
}

/// `normalize_ip`: validates and normalizes an IPv4, IPv6 or name, with an optional port.
pub fn normalize_ip(address: &str) -> Result<HostPort, String> {
    let ty = hostname_type(address);
    let (host, port) = match ty {
        HostType::Ipv4 => normalize_ipv4(address)?,
        HostType::Ipv6 => normalize_ipv6(address)?,
        HostType::Name => check_hostname(address)?,
    };
    Ok(HostPort { ty, host, port })
}

/// `format_host`: `host[:port]`, with IPv6 in brackets.
pub fn format_host(p: &HostPort, default_port: Option<u16>) -> String {
    let port = p.port.or(default_port);
    let host = if p.ty == HostType::Ipv6 && !p.host.contains('[') {
        format!("[{}]", p.host)
    } else {
        p.host.clone()
    };
    match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

pub fn is_valid_ip(s: &str) -> bool {
    s.parse::<Ipv4Addr>().is_ok() || s.parse::<Ipv6Addr>().is_ok()
}

fn split_cidr(s: &str, max: u8) -> Option<&str> {
    let (ip, prefix) = s.split_once('/')?;
    let ok = !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && (prefix == "0" || !prefix.starts_with('0'))
        && prefix.parse::<u16>().is_ok_and(|p| p <= max as u16);
    ok.then_some(ip)
}

pub fn is_valid_cidr_v4(s: &str) -> bool {
    split_cidr(s, 32).is_some_and(|ip| ip.parse::<Ipv4Addr>().is_ok())
}

pub fn is_valid_cidr_v6(s: &str) -> bool {
    split_cidr(s, 128).is_some_and(|ip| ip.parse::<Ipv6Addr>().is_ok())
}

pub fn is_valid_ip_or_cidr(s: &str) -> bool {
    is_valid_ip(s) || is_valid_cidr_v4(s) || is_valid_cidr_v6(s)
}

pub fn is_valid_ip_or_cidr_v4(s: &str) -> bool {
    s.parse::<Ipv4Addr>().is_ok() || is_valid_cidr_v4(s)
}

/// The parts of a URL as LuaSocket's `url.parse` splits them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedUrl {
    pub scheme: Option<String>,
    pub authority: Option<String>,
    pub userinfo: Option<String>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub path: Option<String>,
    pub params: Option<String>,
    pub query: Option<String>,
    pub fragment: Option<String>,
}

/// LuaSocket's `url.parse`: lenient, never fails; absent parts are `None`.
pub fn parse_url(input: &str) -> ParsedUrl {
    let mut url: String = input.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut p = ParsedUrl::default();
    if let Some(i) = url.find('#') {
        p.fragment = Some(url[i + 1..].to_owned());
        url.truncate(i);
    }
    // scheme: ^([%w][%w%+%-%.]*)%:
    {
        let b = url.as_bytes();
        if b.first().is_some_and(|c| c.is_ascii_alphanumeric()) {
            let mut j = 1;
            while j < b.len()
                && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'+' | b'-' | b'.'))
            {
                j += 1;
            }
            if j < b.len() && b[j] == b':' {
                p.scheme = Some(url[..j].to_owned());
                url = url[j + 1..].to_owned();
            }
        }
    }
    if let Some(rest) = url.strip_prefix("//") {
        let end = rest.find('/').unwrap_or(rest.len());
        p.authority = Some(rest[..end].to_owned());
        url = rest[end..].to_owned();
    }
    if let Some(i) = url.find('?') {
        p.query = Some(url[i + 1..].to_owned());
        url.truncate(i);
    }
    if let Some(i) = url.find(';') {
        p.params = Some(url[i + 1..].to_owned());
        url.truncate(i);
    }
    if !url.is_empty() {
        p.path = Some(url);
    }
    let Some(mut authority) = p.authority.clone() else {
        return p;
    };
    if let Some(i) = authority.find('@') {
        p.userinfo = Some(authority[..i].to_owned());
        authority = authority[i + 1..].to_owned();
    }
    // port: :([^:%]]*)$
    if let Some(i) = authority.rfind(':') {
        let tail = &authority[i + 1..];
        if !tail.contains(']') {
            p.port = Some(tail.to_owned());
            authority.truncate(i);
        }
    }
    if !authority.is_empty() {
        let host = authority
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .unwrap_or(authority);
        p.host = Some(host);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_addresses() {
        assert_eq!(normalize_ipv4("001.002.003.004:123").unwrap(), ("1.2.3.4".into(), Some(123)));
        assert!(normalize_ipv4("1.2.3.256").is_err());
        assert_eq!(normalize_ipv6("::1").unwrap().0, "0000:0000:0000:0000:0000:0000:0000:0001");
        assert_eq!(normalize_ipv6("[::1]:80").unwrap().1, Some(80));
        assert_eq!(check_hostname("example.com:8080").unwrap(), ("example.com".into(), Some(8080)));
        assert!(check_hostname("exa mple.com").is_err());
        assert!(check_hostname("bad-.com").is_err());
        assert_eq!(check_hostname("x:70000").unwrap_err(), "invalid port number");
        let hp = normalize_ip("konghq.test").unwrap();
        assert_eq!(format_host(&hp, Some(8000)), "konghq.test:8000");
        let hp = normalize_ip("::1").unwrap();
        assert_eq!(format_host(&hp, Some(8000)), "[0000:0000:0000:0000:0000:0000:0000:0001]:8000");
    }

    #[test]
    fn cidrs() {
        assert!(is_valid_ip_or_cidr("10.0.0.0/8"));
        assert!(is_valid_ip_or_cidr("::1/128"));
        assert!(!is_valid_ip_or_cidr("10.0.0.0/33"));
        assert!(!is_valid_ip_or_cidr("10.0.0.0/08"));
        assert!(!is_valid_ip_or_cidr("nope"));
    }

    #[test]
    fn parses_urls_like_luasocket() {
        let u = parse_url("https://httpbin.konghq.com");
        assert_eq!(u.scheme.as_deref(), Some("https"));
        assert_eq!(u.host.as_deref(), Some("httpbin.konghq.com"));
        assert_eq!(u.port, None);
        assert_eq!(u.path, None);
        let u = parse_url("http://u:p@host:8080/a/b?x=1#f");
        assert_eq!(u.userinfo.as_deref(), Some("u:p"));
        assert_eq!(u.host.as_deref(), Some("host"));
        assert_eq!(u.port.as_deref(), Some("8080"));
        assert_eq!(u.path.as_deref(), Some("/a/b"));
        assert_eq!(u.query.as_deref(), Some("x=1"));
        let u = parse_url("httpbin.org");
        assert_eq!(u.host, None);
        assert_eq!(u.path.as_deref(), Some("httpbin.org"));
        let u = parse_url("http://[::1]:81/x");
        assert_eq!(u.host.as_deref(), Some("::1"));
        assert_eq!(u.port.as_deref(), Some("81"));
    }
}
