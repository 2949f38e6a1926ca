//! The data plane's settings from `kong.conf` keys (Kong's names and defaults, including the
//! `nginx_http_*` directives Kong users set to tune limits and timeouts), and the default TLS
//! certificate Kong generates when `ssl_cert` is not set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use turnpike_proxy::settings::{
    ClientTimeouts, HeaderFlags, Limits, ListenerSpec, PoolSettings, ProxySettings, RealIp,
    TrustedIps,
};

use crate::config::Listener;

/// Defaults of the keys read here (Kong's, from `kong_defaults.lua`, and nginx's for the
/// `nginx_http_*` directives Kong leaves unset).
pub(crate) const DEFAULTS: &[(&str, &str)] = &[
    ("headers_upstream", "x-kong-request-id"),
    ("error_default_type", "text/plain"),
    ("client_body_buffer_size", "8k"),
    ("upstream_keepalive_pool_size", "512"),
    ("upstream_keepalive_max_requests", "10000"),
    ("upstream_keepalive_idle_timeout", "60"),
    ("ssl_cert", ""),
    ("ssl_cert_key", ""),
    ("allow_debug_header", "off"),
    ("nginx_worker_processes", "auto"),
];

/// An nginx size: `8k`, `10m`, `1g`, or bytes.
pub(crate) fn parse_size(key: &str, v: &str) -> Result<u64> {
    let v = v.trim();
    let (num, mult) = match v.char_indices().last() {
        Some((i, 'k' | 'K')) => (&v[..i], 1024),
        Some((i, 'm' | 'M')) => (&v[..i], 1024 * 1024),
        Some((i, 'g' | 'G')) => (&v[..i], 1024 * 1024 * 1024),
        _ => (v, 1),
    };
    let n: u64 = num.parse().with_context(|| format!("{key}: invalid size '{v}'"))?;
    n.checked_mul(mult).with_context(|| format!("{key}: size too large '{v}'"))
}

/// An nginx time: `60s`, `500ms`, `1m`, `1h`, or seconds.
pub(crate) fn parse_time(key: &str, v: &str) -> Result<Duration> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().with_context(|| format!("{key}: invalid time '{v}'"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86400),
        _ => bail!("{key}: invalid time '{v}'"),
    })
}

fn list(v: &str) -> Vec<&str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
}

fn on_off(key: &str, v: &str) -> Result<bool> {
    match v.trim() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        other => bail!("{key} must be a boolean (on/off), got '{other}'"),
    }
}

/// Builds the data plane's settings from the configuration values.
pub(crate) fn settings(
    values: &BTreeMap<String, String>,
    listeners: &[Listener],
) -> Result<ProxySettings> {
    let g = |k: &str| values.get(k).map(String::as_str).unwrap_or_default();
    let opt = |k: &str| values.get(k).map(String::as_str).filter(|v| !v.trim().is_empty());
    let mut s = ProxySettings::default();

    // `http2 on` is server-wide in Kong's template: one listener with `http2` gives HTTP/2 to all
    let http2 = listeners.iter().any(|l| l.http2);
    s.listeners = listeners
        .iter()
        .map(|l| ListenerSpec {
            addr: l.addr,
            ssl: l.ssl,
            http2,
            backlog: l.backlog,
            reuseport: l.reuseport,
        })
        .collect();
    s.workers = match g("nginx_worker_processes").trim() {
        "" | "auto" => std::thread::available_parallelism().map_or(1, usize::from),
        n => n.parse::<usize>().ok().filter(|n| *n > 0).with_context(|| {
            format!("nginx_worker_processes must be 'auto' or a number, got '{n}'")
        })?,
    };

    let trusted = g("trusted_ips");
    s.trusted_ips =
        TrustedIps::parse(list(trusted)).map_err(|e| anyhow::anyhow!("trusted_ips: {e}"))?;
    s.real_ip = match g("real_ip_header").trim() {
        "proxy_protocol" => RealIp { header: None, recursive: false },
        name => RealIp {
            header: Some(
                http::HeaderName::from_bytes(name.as_bytes())
                    .with_context(|| format!("real_ip_header: invalid header name '{name}'"))?,
            ),
            recursive: false,
        },
    };
    s.real_ip.recursive = on_off("real_ip_recursive", g("real_ip_recursive"))?;

    let headers = list(g("headers"));
    s.headers = if headers.first().is_some_and(|h| h.eq_ignore_ascii_case("off")) {
        HeaderFlags::parse(["off"]).map_err(anyhow::Error::msg)?
    } else {
        HeaderFlags::parse(headers.into_iter().filter(|h| !h.eq_ignore_ascii_case("off")))
            .map_err(|e| anyhow::anyhow!("headers: {e}"))?
    };
    let upstream = list(g("headers_upstream"));
    for h in &upstream {
        if !h.eq_ignore_ascii_case("x-kong-request-id") && !h.eq_ignore_ascii_case("off") {
            bail!("headers_upstream: invalid entry '{h}'");
        }
    }
    s.headers_upstream = HeaderFlags::parse(upstream).map_err(anyhow::Error::msg)?;
    let edt = g("error_default_type").trim();
    if !matches!(edt, "application/json" | "application/xml" | "text/html" | "text/plain") {
        bail!("error_default_type must be one of application/json, application/xml, text/html, text/plain; got '{edt}'");
    }
    s.error_default_type = edt.to_owned();

    s.client_max_body_size = match opt("nginx_http_client_max_body_size") {
        Some(v) => Some(parse_size("nginx_http_client_max_body_size", v)?).filter(|n| *n > 0),
        None => None,
    };
    let buffer = opt("nginx_http_client_body_buffer_size").unwrap_or(g("client_body_buffer_size"));
    s.client_body_buffer_size =
        usize::try_from(parse_size("client_body_buffer_size", buffer)?).unwrap_or(usize::MAX);
    if let Some(v) = opt("nginx_http_large_client_header_buffers") {
        // `<number> <size>`: a line must fit one buffer, the head all of them
        let mut parts = v.split_whitespace();
        let n: usize = parts.next().and_then(|n| n.parse().ok()).with_context(|| {
            format!("nginx_http_large_client_header_buffers: invalid value '{v}'")
        })?;
        let size = parse_size("nginx_http_large_client_header_buffers", parts.next().unwrap_or(""))?
            as usize;
        s.limits = Limits { request_line: size, header_line: size, head: size.saturating_mul(n) };
    }
    let time = |k: &str, default: Duration| -> Result<Duration> {
        opt(k).map_or(Ok(default), |v| parse_time(k, v))
    };
    let d = ClientTimeouts::default();
    s.client_timeouts = ClientTimeouts {
        header: time("nginx_http_client_header_timeout", d.header)?,
        body: time("nginx_http_client_body_timeout", d.body)?,
        send: time("nginx_http_send_timeout", d.send)?,
        keepalive: time("nginx_http_keepalive_timeout", Duration::from_secs(75))?,
    };
    s.keepalive_requests = match opt("nginx_http_keepalive_requests") {
        Some(v) => v
            .trim()
            .parse()
            .with_context(|| format!("nginx_http_keepalive_requests: invalid value '{v}'"))?,
        None => 10_000,
    };
    let num = |k: &str| -> Result<u64> {
        g(k).trim().parse::<u64>().with_context(|| format!("{k} must be a number, got '{}'", g(k)))
    };
    s.upstream_keepalive = PoolSettings {
        pool_size: usize::try_from(num("upstream_keepalive_pool_size")?).unwrap_or(usize::MAX),
        max_requests: num("upstream_keepalive_max_requests")?,
        idle_timeout: match num("upstream_keepalive_idle_timeout")? {
            0 => Duration::from_secs(u64::from(u32::MAX)),
            n => Duration::from_secs(n),
        },
    };
    s.router_flavor = match g("router_flavor") {
        "traditional_compatible" => turnpike_router::Flavor::TraditionalCompatible,
        "traditional" => turnpike_router::Flavor::Traditional,
        other => bail!(
            "router_flavor has an unsupported value: '{other}' (traditional_compatible or traditional)"
        ),
    };
    s.allow_debug_header = on_off("allow_debug_header", g("allow_debug_header"))?;
    s.charset_utf8 =
        !opt("nginx_http_charset").is_some_and(|v| v.trim().eq_ignore_ascii_case("off"));
    if let Some(v) = opt("nginx_main_worker_shutdown_timeout") {
        s.drain_timeout = parse_time("nginx_main_worker_shutdown_timeout", v)?;
    }
    s.ssl_cert = match (opt("ssl_cert"), opt("ssl_cert_key")) {
        (Some(c), Some(k)) => {
            // Kong accepts lists (one RSA, one ECDSA); the first pair is the default here
            let c = list(c).first().copied().unwrap_or_default().to_owned();
            let k = list(k).first().copied().unwrap_or_default().to_owned();
            Some((PathBuf::from(c), PathBuf::from(k)))
        }
        (None, None) => None,
        _ => bail!("ssl_cert and ssl_cert_key must be set together"),
    };
    Ok(s)
}

/// Gives TLS listeners the default certificate when `ssl_cert` is not set (at start only:
/// checking a configuration must not write files).
pub(crate) fn ensure_certificate(s: &mut ProxySettings, prefix: &Path) -> Result<()> {
    if s.ssl_cert.is_none() && s.listeners.iter().any(|l| l.ssl) {
        s.ssl_cert = Some(default_certificate(prefix)?);
    }
    Ok(())
}

/// Kong's `kong-default.crt`: a self-signed certificate for `localhost`, generated once under
/// `<prefix>/ssl/` and kept across restarts.
fn default_certificate(prefix: &Path) -> Result<(PathBuf, PathBuf)> {
    let dir = prefix.join("ssl");
    let cert = dir.join("turnpike-default.crt");
    let key = dir.join("turnpike-default.key");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key_pair =
        rcgen::KeyPair::generate().context("cannot generate the default certificate key")?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .context("cannot build the default certificate")?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "localhost");
    dn.push(rcgen::DnType::OrganizationName, "Turnpike");
    params.distinguished_name = dn;
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2044, 1, 1);
    let c = params.self_signed(&key_pair).context("cannot sign the default certificate")?;
    std::fs::write(&cert, c.pem()).with_context(|| format!("cannot write {}", cert.display()))?;
    write_private(&key, key_pair.serialize_pem().as_bytes())?;
    tracing::info!(cert = %cert.display(), "generated the default TLS certificate");
    Ok((cert, key))
}

fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(data).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_units() {
        assert_eq!(parse_size("k", "8k").unwrap(), 8192);
        assert_eq!(parse_size("k", "10m").unwrap(), 10 << 20);
        assert_eq!(parse_size("k", "0").unwrap(), 0);
        assert!(parse_size("k", "x").is_err());
        assert_eq!(parse_time("k", "75s").unwrap(), Duration::from_secs(75));
        assert_eq!(parse_time("k", "500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_time("k", "2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_time("k", "60").unwrap(), Duration::from_secs(60));
        assert!(parse_time("k", "1y").is_err());
    }
}
