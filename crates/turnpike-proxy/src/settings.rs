//! Node settings of the data plane: what `kong.conf` says about listeners, limits, timeouts,
//! trusted addresses and headers. Fixed for the life of the process (entities, which change
//! at run time, live in [`crate::ProxyConfig`]).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use http::HeaderName;

pub use crate::h1::Limits;

/// One proxy listener (`proxy_listen` entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerSpec {
    pub addr: SocketAddr,
    pub ssl: bool,
    pub http2: bool,
    /// `backlog=` (Kong's default listeners ask for 16384).
    pub backlog: Option<u32>,
    /// `reuseport`: each worker gets its own socket and the kernel spreads connections.
    pub reuseport: bool,
}

/// The response headers the gateway adds (`headers`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderFlags {
    /// `Server` on responses the gateway generates.
    pub server: bool,
    /// `Via` on proxied responses.
    pub via: bool,
    pub upstream_latency: bool,
    pub proxy_latency: bool,
    pub response_latency: bool,
    pub upstream_status: bool,
    pub request_id: bool,
}

impl Default for HeaderFlags {
    /// Kong's default: `server_tokens, latency_tokens, X-Kong-Request-Id`.
    fn default() -> Self {
        Self {
            server: true,
            via: true,
            upstream_latency: true,
            proxy_latency: true,
            response_latency: true,
            upstream_status: false,
            request_id: true,
        }
    }
}

impl HeaderFlags {
    /// Parses Kong's `headers` / `headers_upstream` token list. Unknown tokens are an error
    /// naming the token.
    pub fn parse<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut f = Self {
            server: false,
            via: false,
            upstream_latency: false,
            proxy_latency: false,
            response_latency: false,
            upstream_status: false,
            request_id: false,
        };
        for t in tokens {
            match t.trim().to_ascii_lowercase().as_str() {
                "" | "off" => {}
                "server_tokens" => {
                    f.server = true;
                    f.via = true;
                }
                "latency_tokens" => {
                    f.upstream_latency = true;
                    f.proxy_latency = true;
                    f.response_latency = true;
                }
                "server" => f.server = true,
                "via" => f.via = true,
                "x-kong-upstream-latency" => f.upstream_latency = true,
                "x-kong-proxy-latency" => f.proxy_latency = true,
                "x-kong-response-latency" => f.response_latency = true,
                "x-kong-admin-latency" => {}
                "x-kong-upstream-status" => f.upstream_status = true,
                "x-kong-request-id" => f.request_id = true,
                other => return Err(format!("invalid header value: {other}")),
            }
        }
        Ok(f)
    }
}

/// An IP network (`10.0.0.0/8`, `::1`, `0.0.0.0/0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses an address or CIDR. (Matching a prefix is a few lines; not worth a crate.)
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| format!("invalid IP address or CIDR: {s}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("invalid IP address or CIDR: {s}"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `trusted_ips`: the addresses whose forwarding headers are believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedIps {
    nets: Vec<IpNet>,
    all: bool,
}

impl TrustedIps {
    /// Parses Kong's list; `unix:` trusts Unix-socket peers (which this proxy does not serve).
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut t = Self::default();
        for i in items.into_iter().map(str::trim).filter(|i| !i.is_empty() && *i != "unix:") {
            let net = IpNet::parse(i)?;
            if net.prefix == 0 {
                t.all = true;
            }
            t.nets.push(net);
        }
        Ok(t)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.all || self.nets.iter().any(|n| n.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

/// Where the client address comes from (`real_ip_header`, `real_ip_recursive`).
#[derive(Clone, Debug)]
pub struct RealIp {
    /// The header naming the client address; `None` for `proxy_protocol` (not supported yet).
    pub header: Option<HeaderName>,
    pub recursive: bool,
}

impl Default for RealIp {
    fn default() -> Self {
        Self { header: Some(HeaderName::from_static("x-real-ip")), recursive: false }
    }
}

/// The upstream keepalive pool (`upstream_keepalive_*`).
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    /// Idle connections kept per upstream address and worker; 0 disables keepalive.
    pub pool_size: usize,
    /// Requests per connection before it is closed; 0 means no limit.
    pub max_requests: u64,
    pub idle_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { pool_size: 512, max_requests: 10_000, idle_timeout: Duration::from_secs(60) }
    }
}

/// Client-side timeouts.
#[derive(Clone, Copy, Debug)]
pub struct ClientTimeouts {
    /// Reading a request head (`client_header_timeout`).
    pub header: Duration,
    /// Between two reads of a request body (`client_body_timeout`).
    pub body: Duration,
    /// Between two writes of a response (`send_timeout`).
    pub send: Duration,
    /// An idle keep-alive connection (`keepalive_timeout`).
    pub keepalive: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        let s60 = Duration::from_secs(60);
        Self { header: s60, body: s60, send: s60, keepalive: s60 }
    }
}

/// The data plane's settings.
#[derive(Clone, Debug)]
pub struct ProxySettings {
    pub listeners: Vec<ListenerSpec>,
    /// Worker threads, each with its own event loop and listening sockets.
    pub workers: usize,
    pub trusted_ips: TrustedIps,
    pub real_ip: RealIp,
    /// Headers added to responses (`headers`).
    pub headers: HeaderFlags,
    /// Headers added to upstream requests (`headers_upstream`; only the request id applies).
    pub headers_upstream: HeaderFlags,
    /// `error_default_type`: the MIME type of error bodies when the client states none.
    pub error_default_type: String,
    /// `client_max_body_size`; `None` is unlimited (Kong's `0`).
    pub client_max_body_size: Option<u64>,
    /// `client_body_buffer_size`: request bodies up to this size are read before the upstream
    /// is contacted when `request_buffering` is on (and can then be retried); larger ones
    /// stream.
    pub client_body_buffer_size: usize,
    pub limits: Limits,
    pub client_timeouts: ClientTimeouts,
    /// Requests served on one client connection before it is closed (`keepalive_requests`).
    pub keepalive_requests: u64,
    pub upstream_keepalive: PoolSettings,
    pub router_flavor: turnpike_router::Flavor,
    /// The default certificate and key (PEM files, `ssl_cert` / `ssl_cert_key`); `None`
    /// generates a self-signed one at start.
    pub ssl_cert: Option<(PathBuf, PathBuf)>,
    /// How long in-flight requests may finish after a graceful stop.
    pub drain_timeout: Duration,
    /// Value of `Server` and `Via` tokens (`turnpike/<version>`).
    pub server_token: String,
    /// `allow_debug_header`.
    pub allow_debug_header: bool,
    /// `nginx_http_charset = UTF-8` (Kong's default): text responses without a charset get
    /// `; charset=UTF-8`.
    pub charset_utf8: bool,
    /// The plugin implementations this node runs.
    pub plugins: turnpike_plugin_api::Factories,
    /// This node's id and host name, for plugins.
    pub node: turnpike_plugin_api::NodeInfo,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            listeners: Vec::new(),
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            trusted_ips: TrustedIps::default(),
            real_ip: RealIp::default(),
            headers: HeaderFlags::default(),
            headers_upstream: HeaderFlags::parse(["X-Kong-Request-Id"]).unwrap_or_default(),
            error_default_type: "text/plain".into(),
            client_max_body_size: None,
            client_body_buffer_size: 8192,
            limits: Limits::default(),
            client_timeouts: ClientTimeouts::default(),
            keepalive_requests: 10_000,
            upstream_keepalive: PoolSettings::default(),
            router_flavor: turnpike_router::Flavor::default(),
            ssl_cert: None,
            drain_timeout: Duration::from_secs(10),
            server_token: format!("turnpike/{}", turnpike_core::TURNPIKE_VERSION),
            allow_debug_header: false,
            charset_utf8: true,
            plugins: turnpike_plugin_api::Factories::default(),
            node: turnpike_plugin_api::NodeInfo::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_matching() {
        let net = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.1".parse().unwrap()), "v4-mapped v6 addresses");
        let v6 = IpNet::parse("fe80::/10").unwrap();
        assert!(v6.contains("fe80::1".parse().unwrap()));
        assert!(!v6.contains("10.1.0.1".parse().unwrap()));
        assert!(IpNet::parse("1.2.3.4").unwrap().contains("1.2.3.4".parse().unwrap()));
        assert!(IpNet::parse("1.2.3.4/33").is_err());
        assert!(IpNet::parse("nope").is_err());
        let all = TrustedIps::parse(["0.0.0.0/0", "::/0"]).unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()) && all.contains("::1".parse().unwrap()));
        assert!(!TrustedIps::parse([]).unwrap().contains("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn header_tokens() {
        let f = HeaderFlags::parse(["off"]).unwrap();
        assert!(!f.server && !f.via && !f.request_id);
        let f = HeaderFlags::parse(["latency_tokens", "X-Kong-Upstream-Status"]).unwrap();
        assert!(f.upstream_latency && f.upstream_status && !f.server);
        assert!(HeaderFlags::parse(["bogus"]).is_err());
    }
}
