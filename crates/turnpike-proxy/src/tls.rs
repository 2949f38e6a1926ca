//! TLS on both sides.
//!
//! Server side: the certificate for a handshake is chosen by SNI from the certificates/SNIs of
//! the current configuration, the way Kong's `kong/runloop/certificate.lua` does it: the exact
//! name, then `*.` + the name without its first label, then the name without its last label +
//! `.*`, then an SNI entity named `*`, then the node's default certificate. A certificate with
//! an alternate key (`cert_alt`/`key_alt`) serves whichever key type the client supports.
//!
//! Client side: one rustls client configuration per service (verification on or off, depth,
//! trusted CAs, client certificate), built with the configuration, off the request path.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The crypto provider used everywhere (ring, as in the rest of the workspace).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate and, optionally, one with the other key type.
#[derive(Clone)]
pub(crate) struct CertPair {
    primary: Arc<CertifiedKey>,
    alt: Option<Arc<CertifiedKey>>,
}

impl fmt::Debug for CertPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertPair").field("alt", &self.alt.is_some()).finish_non_exhaustive()
    }
}

/// Loads a PEM chain and key into a rustls certified key.
pub(crate) fn certified_key(cert_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>, String> {
    let chain = turnpike_core::pki::certificate_chain(cert_pem)?;
    let key = turnpike_core::pki::private_key(key_pem)?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("unsupported private key: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}

impl CertPair {
    pub(crate) fn load(cert: &str, key: &str, alt: Option<(&str, &str)>) -> Result<Self, String> {
        Ok(Self {
            primary: certified_key(cert, key)?,
            alt: alt.map(|(c, k)| certified_key(c, k)).transpose()?,
        })
    }

    pub(crate) fn primary_key(&self) -> Arc<CertifiedKey> {
        self.primary.clone()
    }

    fn choose(&self, hello: &ClientHello<'_>) -> Arc<CertifiedKey> {
        match &self.alt {
            Some(alt) if self.primary.key.choose_scheme(hello.signature_schemes()).is_none() => {
                alt.clone()
            }
            _ => self.primary.clone(),
        }
    }
}

/// The certificates by server name, compiled from the SNI entities.
#[derive(Debug, Default)]
pub(crate) struct CertStore {
    by_name: HashMap<String, CertPair>,
}

impl CertStore {
    pub(crate) fn insert(&mut self, name: &str, pair: CertPair) {
        self.by_name.insert(name.to_ascii_lowercase(), pair);
    }

    /// Kong's lookup order (see the module docs); `None` means "use the node default".
    /// A client without SNI always gets the node default, even when a `*` SNI exists.
    pub(crate) fn find(&self, sni: Option<&str>) -> Option<&CertPair> {
        let sni = sni?.to_ascii_lowercase();
        if let Some(p) = self.by_name.get(&sni) {
            return Some(p);
        }
        // `*.rest` for a name of three labels or more (first label replaced)
        if let Some((first, rest)) = sni.split_once('.') {
            let deep =
                rest.split_once('.').is_some_and(|(l, tail)| !l.is_empty() && !tail.is_empty());
            if !first.is_empty() && deep {
                if let Some(p) = self.by_name.get(&format!("*.{rest}")) {
                    return Some(p);
                }
            }
        }
        // `head.*` (last label replaced)
        if let Some((head, last)) = sni.rsplit_once('.') {
            if !last.is_empty() && !head.rsplit('.').next().unwrap_or_default().is_empty() {
                if let Some(p) = self.by_name.get(&format!("{head}.*")) {
                    return Some(p);
                }
            }
        }
        self.by_name.get("*")
    }
}

/// Gives rustls the certificate for a handshake from whatever configuration is current.
pub(crate) struct SniResolver<F> {
    pub(crate) current: F,
    pub(crate) default: CertPair,
}

impl<F> fmt::Debug for SniResolver<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SniResolver").finish_non_exhaustive()
    }
}

impl<F> ResolvesServerCert for SniResolver<F>
where
    F: Fn(Option<&str>) -> Option<CertPair> + Send + Sync,
{
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let pair = (self.current)(hello.server_name()).unwrap_or_else(|| self.default.clone());
        Some(pair.choose(&hello))
    }
}

/// The server configuration of an `ssl` listener: certificates by SNI from the current
/// configuration, ALPN `h2` when the listener has `http2`.
pub(crate) fn server_config(
    shared: Arc<crate::Shared>,
    default: CertPair,
    http2: bool,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let resolver = SniResolver {
        current: move |sni: Option<&str>| shared.config.load().certs.find(sni).cloned(),
        default,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols =
        if http2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    Ok(Arc::new(config))
}

/// Upstream TLS settings of a service.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientTlsKey {
    pub(crate) verify: bool,
    pub(crate) depth: Option<u32>,
    pub(crate) ca_ids: Vec<String>,
    pub(crate) client_cert: Option<String>,
    pub(crate) h2: bool,
}

/// Builds a client configuration.
pub(crate) fn client_config(
    key: &ClientTlsKey,
    roots: Arc<RootCertStore>,
    client_cert: Option<Arc<CertifiedKey>>,
) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let verifier: Arc<dyn ServerCertVerifier> = if key.verify {
        let webpki = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| format!("cannot build the certificate verifier: {e}"))?;
        Arc::new(DepthLimited { inner: webpki, depth: key.depth, roots })
    } else {
        Arc::new(NoVerification { provider: provider.clone() })
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    let mut config = match client_cert {
        Some(ck) => builder.with_client_cert_resolver(Arc::new(FixedClientCert(ck))),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = if key.h2 { vec![b"h2".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    config.resumption = rustls::client::Resumption::in_memory_sessions(256);
    Ok(Arc::new(config))
}

/// `client_certificate`: always presented when the upstream asks for one.
#[derive(Debug)]
struct FixedClientCert(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for FixedClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A parsed server name for an upstream (a DNS name, or an IP address which sends no SNI).
pub(crate) fn server_name(host: &str) -> Option<ServerName<'static>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).ok()
}

/// `tls_verify_depth`: at most `depth` intermediate certificates between the upstream's
/// certificate and a trust anchor (OpenSSL's meaning of the verify depth), then the usual
/// WebPKI checks.
#[derive(Debug)]
struct DepthLimited {
    inner: Arc<WebPkiServerVerifier>,
    depth: Option<u32>,
    roots: Arc<RootCertStore>,
}

/// The contents of a DER TLV (a `Name` without its `SEQUENCE` header), as trust anchors keep
/// their subjects.
fn der_contents(tlv: &[u8]) -> &[u8] {
    let Some(&first) = tlv.get(1) else { return tlv };
    let header = if first < 0x80 { 2 } else { 2 + usize::from(first & 0x7f) };
    tlv.get(header..).unwrap_or(tlv)
}

/// How many of the sent intermediates the chain from `end_entity` to a trust anchor goes
/// through, looking the issuer up among the anchors first, as OpenSSL does by default
/// (`X509_V_FLAG_TRUSTED_FIRST`): a root sent along with the chain is no intermediate.
fn intermediates_used(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    roots: &RootCertStore,
) -> usize {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let Ok((_, leaf)) = X509Certificate::from_der(end_entity) else { return 0 };
    let sent: Vec<X509Certificate<'_>> = intermediates
        .iter()
        .filter_map(|c| X509Certificate::from_der(c).ok().map(|(_, c)| c))
        .collect();
    let mut issuer = leaf.issuer().as_raw();
    let mut used = 0;
    // bounded: each step uses one more sent certificate
    while used <= sent.len() {
        if roots.roots.iter().any(|a| a.subject.as_ref() == der_contents(issuer)) {
            return used;
        }
        match sent.iter().find(|c| c.subject().as_raw() == issuer) {
            Some(c) => {
                used += 1;
                issuer = c.issuer().as_raw();
            }
            // no path: the verifier reports it
            None => return used,
        }
    }
    used
}

impl ServerCertVerifier for DepthLimited {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(depth) = self.depth {
            let used = intermediates_used(end_entity, intermediates, &self.roots);
            if used > depth as usize {
                return Err(rustls::Error::General(format!(
                    "certificate chain too long ({used} intermediates, tls_verify_depth {depth})"
                )));
            }
        }
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `tls_verify = false` (Kong's default for services): the upstream's certificate is not
/// checked, but the handshake signatures still are.
#[derive(Debug)]
struct NoVerification {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The system's trusted CAs (Kong's `lua_ssl_trusted_certificate = system`), with the
/// Mozilla bundle as a fallback when the system has none.
pub(crate) fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

/// A root store of the given PEM CA certificates.
pub(crate) fn roots_of(pems: &[&str]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for pem in pems {
        for cert in turnpike_core::pki::certificate_chain(pem)? {
            roots.add(cert).map_err(|e| format!("invalid CA certificate: {e}"))?;
        }
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first certificate of a PEM text, decoded.
    fn der(pem: &str) -> CertificateDer<'static> {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("a PEM certificate")
    }

    #[test]
    fn depth_counts_the_intermediates_up_to_a_trusted_issuer() {
        let ca = der(include_str!("../../turnpike-test/fixtures/tls/ca.crt"));
        let inter = der(include_str!("../../turnpike-test/fixtures/tls/inter.crt"));
        let leaf = der(include_str!("../../turnpike-test/fixtures/tls/chain-leaf.crt"));
        let direct = der(include_str!("../../turnpike-test/fixtures/tls/leaf.crt"));
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone()).expect("CA");
        assert_eq!(intermediates_used(&direct, &[], &roots), 0);
        assert_eq!(
            intermediates_used(&direct, std::slice::from_ref(&ca), &roots),
            0,
            "a sent root is free"
        );
        assert_eq!(intermediates_used(&leaf, std::slice::from_ref(&inter), &roots), 1);
        assert_eq!(intermediates_used(&leaf, &[inter.clone(), ca.clone()], &roots), 1);
        let mut inter_root = RootCertStore::empty();
        inter_root.add(inter.clone()).expect("intermediate as anchor");
        assert_eq!(intermediates_used(&leaf, &[inter, ca], &inter_root), 0, "trusted first");
    }

    #[test]
    fn sni_lookup_order() {
        // the pairs are told apart by identity of the Arc; build distinct dummies
        let pair = || {
            let pem = include_str!("../../turnpike-test/fixtures/tls/ecdsa.crt");
            let key = include_str!("../../turnpike-test/fixtures/tls/ecdsa.key");
            CertPair::load(pem, key, None).expect("fixture certificate")
        };
        let mut store = CertStore::default();
        let names = ["a.example.com", "*.example.com", "example.*", "*"];
        let pairs: Vec<CertPair> = names.iter().map(|_| pair()).collect();
        for (n, p) in names.iter().zip(&pairs) {
            store.insert(n, p.clone());
        }
        let which = |sni: Option<&str>| {
            let got = store.find(sni).expect("a certificate");
            pairs.iter().position(|p| Arc::ptr_eq(&p.primary, &got.primary))
        };
        assert_eq!(which(Some("A.Example.com")), Some(0));
        assert_eq!(which(Some("b.example.com")), Some(1));
        assert_eq!(which(Some("x.b.example.com")), Some(3), "a wildcard covers one label");
        assert_eq!(which(Some("example.org")), Some(2));
        assert_eq!(which(Some("other.net")), Some(3));
        assert_eq!(which(Some("example.com")), Some(2), "no prefix wildcard for two labels");
        assert!(store.find(None).is_none(), "no SNI: the node default");
        assert!(CertStore::default().find(Some("x")).is_none());
    }
}
