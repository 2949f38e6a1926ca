//! The compiled configuration: a [`Snapshot`] turned into what the request path reads (the
//! router, the service table with its upstream TLS settings, the certificates by SNI). Built off
//! the request path and published whole; requests keep the one they started with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use turnpike_core::snapshot::Snapshot;
use turnpike_plugin_api::{BuildEnv, Chain, Chains, Consumers};
use turnpike_router::{PathHandling, RouteDef, Router};

use crate::settings::ProxySettings;
use crate::tls::{self, CertPair, CertStore, ClientTlsKey};

/// The scheme a service is reached with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UpScheme {
    Http,
    Https,
    Grpc,
    Grpcs,
}

impl UpScheme {
    fn parse(protocol: &str) -> Option<Self> {
        match protocol {
            "http" | "ws" => Some(Self::Http),
            "https" | "wss" => Some(Self::Https),
            "grpc" => Some(Self::Grpc),
            "grpcs" => Some(Self::Grpcs),
            _ => None,
        }
    }

    pub(crate) fn is_tls(self) -> bool {
        matches!(self, Self::Https | Self::Grpcs)
    }

    pub(crate) fn is_grpc(self) -> bool {
        matches!(self, Self::Grpc | Self::Grpcs)
    }

    pub(crate) fn default_port(self) -> u16 {
        if self.is_tls() {
            443
        } else {
            80
        }
    }
}

/// One target of an upstream entity.
#[derive(Clone, Debug)]
pub(crate) struct TargetRt {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) weight: u32,
}

/// A service whose host names an upstream: its targets, picked in weighted round robin.
/// (Load balancing algorithms and health checks are the balancer's, which replaces this.)
#[derive(Debug)]
pub(crate) struct UpstreamRt {
    pub(crate) host_header: Option<String>,
    /// Targets repeated by weight (in units of the weights' gcd), for an even rotation.
    wheel: Vec<usize>,
    pub(crate) targets: Vec<TargetRt>,
    next: AtomicUsize,
}

impl UpstreamRt {
    /// The next target in the rotation, `None` when no target has weight.
    pub(crate) fn next_target(&self) -> Option<&TargetRt> {
        if self.wheel.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.wheel.len();
        self.targets.get(self.wheel[i])
    }
}

/// Where a service's requests go.
#[derive(Debug)]
pub(crate) enum Destination {
    /// `service.host` and `service.port` (a name is resolved with DNS).
    Host,
    Upstream(UpstreamRt),
}

/// A service as the request path needs it.
#[derive(Debug)]
pub(crate) struct ServiceRt {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) scheme: UpScheme,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: Option<String>,
    pub(crate) retries: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) tls: Option<Arc<ClientConfig>>,
    pub(crate) tls_key: Option<ClientTlsKey>,
    /// The `Host` sent upstream when the route does not preserve the client's.
    pub(crate) host_header: String,
    /// The SNI sent upstream when the route does not preserve the client's host.
    pub(crate) sni: Option<ServerName<'static>>,
    pub(crate) destination: Destination,
}

/// Per-route data the router does not keep.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Protocols {
    pub(crate) http: bool,
    pub(crate) https: bool,
    pub(crate) grpc: bool,
    pub(crate) grpcs: bool,
    pub(crate) ws: bool,
    pub(crate) wss: bool,
}

impl Protocols {
    fn of(list: &[String]) -> Self {
        let mut p = Self::default();
        for proto in list {
            match proto.as_str() {
                "http" => p.http = true,
                "https" => p.https = true,
                "grpc" => p.grpc = true,
                "grpcs" => p.grpcs = true,
                "ws" => p.ws = true,
                "wss" => p.wss = true,
                _ => {}
            }
        }
        p
    }

    fn is_http_family(self) -> bool {
        self.http || self.https || self.grpc || self.grpcs || self.ws || self.wss
    }
}

/// A route as the request path needs it, in router order.
#[derive(Debug)]
pub(crate) struct RouteRt {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) protocols: Protocols,
    pub(crate) service: Option<Arc<ServiceRt>>,
    /// The plugins that run for this route, `None` when none does.
    pub(crate) plugins: Option<Arc<Chain>>,
}

/// The compiled configuration.
#[derive(Debug)]
pub struct ProxyConfig {
    /// The snapshot version this was built from.
    pub version: u64,
    pub(crate) router: Router,
    pub(crate) routes: Vec<RouteRt>,
    pub(crate) certs: CertStore,
}

/// A configuration that cannot be compiled; the previous one stays in service.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("route {id}: {message}")]
    Route { id: String, message: String },
    #[error("certificate {id}: {message}")]
    Certificate { id: String, message: String },
    #[error("service {id}: {message}")]
    Service { id: String, message: String },
    #[error(transparent)]
    Plugin(#[from] turnpike_plugin_api::chain::BuildError),
}

impl ProxyConfig {
    /// An empty configuration (every request gets "no Route matched").
    pub fn empty() -> Self {
        Self {
            version: 0,
            router: Router::empty(),
            routes: Vec::new(),
            certs: CertStore::default(),
        }
    }

    /// The number of HTTP routes in the router.
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    /// Compiles a snapshot. CPU-bound (the router compiles regexes in parallel): call it from
    /// a blocking-friendly context.
    pub fn compile(snap: &Snapshot, settings: &ProxySettings) -> Result<Self, CompileError> {
        let system_roots = Arc::new(tls::system_roots());
        let cas: HashMap<&str, &str> =
            snap.ca_certificates.iter().map(|c| (c.id.as_str(), c.cert.as_str())).collect();
        let certificates: HashMap<&str, &turnpike_core::snapshot::Certificate> =
            snap.certificates.iter().map(|c| (c.id.as_str(), c)).collect();
        let mut cert_pairs: HashMap<&str, CertPair> = HashMap::new();
        let mut pair_of = |id: &str| -> Result<CertPair, CompileError> {
            if let Some(p) = cert_pairs.get(id) {
                return Ok(p.clone());
            }
            let c = certificates.get(id).ok_or_else(|| CompileError::Certificate {
                id: id.to_owned(),
                message: "not found".into(),
            })?;
            let alt = c.cert_alt.as_deref().zip(c.key_alt.as_deref());
            let pair = CertPair::load(&c.cert, &c.key, alt)
                .map_err(|message| CompileError::Certificate { id: id.to_owned(), message })?;
            cert_pairs.insert(c.id.as_str(), pair.clone());
            Ok(pair)
        };

        let mut certs = CertStore::default();
        for sni in &snap.snis {
            certs.insert(&sni.name, pair_of(&sni.certificate.id)?);
        }

        let upstreams: HashMap<&str, &turnpike_core::snapshot::Upstream> =
            snap.upstreams.iter().map(|u| (u.name.as_str(), u)).collect();
        let mut tls_configs: HashMap<ClientTlsKey, Arc<ClientConfig>> = HashMap::new();
        let mut services: HashMap<&str, Arc<ServiceRt>> = HashMap::new();
        for s in snap.services.iter().filter(|s| s.enabled) {
            let Some(scheme) = UpScheme::parse(&s.protocol) else {
                continue; // stream services (tcp, tls, udp) are not HTTP
            };
            let upstream = upstreams.get(s.host.as_str()).copied();
            let client_cert = s
                .client_certificate
                .as_ref()
                .or(upstream.and_then(|u| u.client_certificate.as_ref()))
                .map(|r| r.id.clone());
            let (tls, tls_key) = if scheme.is_tls() {
                let key = ClientTlsKey {
                    verify: s.tls_verify.unwrap_or(false),
                    depth: s.tls_verify_depth,
                    ca_ids: s.ca_certificates.clone(),
                    client_cert: client_cert.clone(),
                    h2: scheme.is_grpc(),
                };
                let config = match tls_configs.get(&key) {
                    Some(c) => c.clone(),
                    None => {
                        let svc_err = |message| CompileError::Service { id: s.id.clone(), message };
                        let roots = if key.ca_ids.is_empty() {
                            system_roots.clone()
                        } else {
                            let pems: Vec<&str> = key
                                .ca_ids
                                .iter()
                                .map(|id| {
                                    cas.get(id.as_str()).copied().ok_or_else(|| {
                                        svc_err(format!("ca_certificate {id} not found"))
                                    })
                                })
                                .collect::<Result<_, _>>()?;
                            Arc::new(tls::roots_of(&pems).map_err(svc_err)?)
                        };
                        let ck = match &client_cert {
                            Some(id) => Some(pair_of(id)?.primary_key()),
                            None => None,
                        };
                        let c = tls::client_config(&key, roots, ck).map_err(svc_err)?;
                        tls_configs.insert(key.clone(), c.clone());
                        c
                    }
                };
                (Some(config), Some(key))
            } else {
                (None, None)
            };
            let destination = match upstream {
                Some(u) => Destination::Upstream(upstream_rt(u, snap)),
                None => Destination::Host,
            };
            let host_header = match &destination {
                Destination::Upstream(u) if u.host_header.is_some() => {
                    u.host_header.clone().unwrap_or_default()
                }
                _ if s.port == scheme.default_port() => s.host.clone(),
                _ => format!("{}:{}", s.host, s.port),
            };
            let rt = ServiceRt {
                id: s.id.clone(),
                name: s.name.clone(),
                scheme,
                sni: tls::server_name(&s.host),
                host: s.host.clone(),
                port: s.port,
                path: s.path.clone(),
                retries: s.retries,
                connect_timeout: Duration::from_millis(s.connect_timeout),
                write_timeout: Duration::from_millis(s.write_timeout),
                read_timeout: Duration::from_millis(s.read_timeout),
                tls,
                tls_key,
                host_header,
                destination,
            };
            services.insert(s.id.as_str(), Arc::new(rt));
        }

        let consumers = Arc::new(Consumers::from_rows(&snap.consumers));
        let rows = |name: &str| -> &[serde_json::Value] {
            snap.plugin_entities.get(name).map(Vec::as_slice).unwrap_or(&[])
        };
        let env = BuildEnv::new(&consumers, &settings.node, &rows);
        let chains = Chains::build(&snap.plugins, &settings.plugins.0, &env)?;

        let mut defs = Vec::new();
        let mut routes = Vec::new();
        for r in &snap.routes {
            let protocols = Protocols::of(&r.protocols);
            if !protocols.is_http_family() {
                continue; // stream routes
            }
            let service = match &r.service {
                Some(svc) => match services.get(svc.id.as_str()) {
                    Some(s) => Some(s.clone()),
                    // a disabled (or stream) service takes its routes out of the router
                    None => continue,
                },
                None => None,
            };
            defs.push(RouteDef {
                id: r.id.clone(),
                name: r.name.clone(),
                protocols: r.protocols.clone(),
                methods: r.methods.clone(),
                hosts: r.hosts.clone(),
                paths: r.paths.clone(),
                headers: r.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                snis: r.snis.clone(),
                regex_priority: r.regex_priority,
                strip_path: r.strip_path,
                preserve_host: r.preserve_host,
                path_handling: if r.path_handling == "v1" {
                    PathHandling::V1
                } else {
                    PathHandling::V0
                },
                https_redirect_status_code: r.https_redirect_status_code,
                request_buffering: r.request_buffering,
                response_buffering: r.response_buffering,
                service: None,
            });
            let plugins = chains.for_route(&r.id, r.service.as_ref().map(|s| s.id.as_str()));
            routes.push(RouteRt {
                id: r.id.clone(),
                name: r.name.clone(),
                protocols,
                service,
                plugins,
            });
        }
        let router = Router::with_flavor(defs, settings.router_flavor).map_err(|e| {
            CompileError::Route { id: e.route_id.clone(), message: e.message.clone() }
        })?;
        Ok(Self { version: snap.version, router, routes, certs })
    }
}

fn upstream_rt(u: &turnpike_core::snapshot::Upstream, snap: &Snapshot) -> UpstreamRt {
    let targets: Vec<TargetRt> = snap
        .targets
        .iter()
        .filter(|t| t.upstream.id == u.id && t.weight > 0)
        .filter_map(|t| {
            let (host, port) = split_target(&t.target)?;
            Some(TargetRt { host, port, weight: t.weight })
        })
        .collect();
    let gcd = targets.iter().fold(0, |g, t| gcd(g, t.weight)).max(1);
    let mut wheel = Vec::new();
    // interleave by weight so that heavy targets do not get long runs
    let mut credit: Vec<u32> = targets.iter().map(|t| t.weight / gcd).collect();
    while credit.iter().any(|&c| c > 0) {
        for (i, c) in credit.iter_mut().enumerate() {
            if *c > 0 {
                *c -= 1;
                wheel.push(i);
            }
        }
    }
    UpstreamRt { host_header: u.host_header.clone(), wheel, targets, next: AtomicUsize::new(0) }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// `host:port` of a target (Kong stores targets with their port, `[v6]:port` for IPv6).
fn split_target(t: &str) -> Option<(String, u16)> {
    let (host, port) = t.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), port.parse().ok()?))
}
