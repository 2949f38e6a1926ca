//! Certificate and key checks for the `certificates` and `ca_certificates` entities.
//!
//! PEM parsing comes from `rustls-pki-types`, X.509 details from `x509-parser`, and the
//! public key of a private key from rustls' ring provider — the same stack the data plane
//! terminates TLS with, so a key accepted here is a key the proxy can serve.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::*;

/// Key algorithms, used to require that `cert` and `cert_alt` differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    Ec,
    Ed25519,
    Other,
}

/// Parses the first certificate of a PEM bundle.
pub fn first_certificate(pem: &str) -> Result<CertificateDer<'static>, String> {
    let mut iter = CertificateDer::pem_slice_iter(pem.as_bytes());
    match iter.next() {
        Some(Ok(c)) => Ok(c),
        Some(Err(e)) => Err(format!("{e:?}")),
        None => Err("no certificate found in PEM data".into()),
    }
}

/// All certificates of a PEM bundle (the leaf first).
pub fn certificate_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let chain = chain.map_err(|e| format!("{e:?}"))?;
    if chain.is_empty() {
        return Err("no certificate found in PEM data".into());
    }
    Ok(chain)
}

/// Parses a PEM private key (PKCS#1, PKCS#8 or SEC1).
pub fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            "no private key found in PEM data".to_owned()
        }
        other => format!("{other:?}"),
    })
}

/// `typedefs.certificate`: the value must hold a parseable X.509 certificate.
pub fn validate_certificate(pem: &str) -> Result<(), String> {
    let der = first_certificate(pem).map_err(|e| format!("invalid certificate: {e}"))?;
    X509Certificate::from_der(&der).map_err(|e| format!("invalid certificate: {e}"))?;
    Ok(())
}

/// `typedefs.key`: the value must hold a key: a private key we can use, or a public key.
pub fn validate_key(pem: &str) -> Result<(), String> {
    if pem.contains("-----BEGIN PUBLIC KEY-----") {
        return public_key_spki(pem)
            .map(|_| ())
            .ok_or_else(|| "invalid key: could not parse public key".into());
    }
    let key = private_key(pem).map_err(|e| format!("invalid key: {e}"))?;
    rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("invalid key: {e}"))?;
    Ok(())
}

fn cert_spki(pem: &str) -> Option<(Vec<u8>, KeyType)> {
    let der = first_certificate(pem).ok()?;
    let (_, cert) = X509Certificate::from_der(&der).ok()?;
    let spki = cert.public_key();
    let ty = match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(_)) => KeyType::Rsa,
        Ok(x509_parser::public_key::PublicKey::EC(_)) => KeyType::Ec,
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => KeyType::Ed25519,
        _ => KeyType::Other,
    };
    Some((spki.raw.to_vec(), ty))
}

/// The key algorithm of a certificate's public key.
pub fn certificate_key_type(pem: &str) -> Option<KeyType> {
    cert_spki(pem).map(|(_, t)| t)
}

/// Whether the private key belongs to the certificate (their public keys are equal).
pub fn certificate_matches_key(cert_pem: &str, key_pem: &str) -> bool {
    let Some((spki, _)) = cert_spki(cert_pem) else { return false };
    let Ok(key) = private_key(key_pem) else { return false };
    let Ok(signing) = rustls::crypto::ring::sign::any_supported_type(&key) else { return false };
    match signing.public_key() {
        Some(pk) => pk.as_ref() == spki.as_slice(),
        None => false,
    }
}

/// Checks of a CA certificate: one certificate, not expired, with the CA basic constraint.
pub fn check_ca_certificate(pem: &str, now: i64) -> Result<(), String> {
    const TAG: &str = "-----BEGIN CERTIFICATE-----";
    if let Some(first) = pem.find(TAG) {
        if pem[first + TAG.len()..].contains(TAG) {
            return Err("please submit only one certificate at a time".into());
        }
    }
    let der = first_certificate(pem)?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| e.to_string())?;
    if cert.validity().not_after.timestamp() < now {
        return Err("certificate expired, \"Not After\" time is in the past".into());
    }
    let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    if !is_ca {
        return Err(
            "certificate does not appear to be a CA because it is missing the \"CA\" basic constraint"
                .into(),
        );
    }
    Ok(())
}

/// SHA-256 of the certificate's DER, as lowercase hex (`cert_digest`).
pub fn certificate_digest(pem: &str) -> Option<String> {
    let der = first_certificate(pem).ok()?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &der);
    Some(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

/// The SubjectPublicKeyInfo DER of a PEM public key (`BEGIN PUBLIC KEY`).
pub fn public_key_spki(pem: &str) -> Option<Vec<u8>> {
    use rustls::pki_types::SubjectPublicKeyInfoDer;
    SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes()).ok().map(|k| k.as_ref().to_vec())
}

/// The SubjectPublicKeyInfo DER derived from a PEM private key.
pub fn private_key_spki(pem: &str) -> Result<Vec<u8>, String> {
    let key = private_key(pem)?;
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| e.to_string())?;
    signing.public_key().map(|k| k.as_ref().to_vec()).ok_or_else(|| "unsupported key type".into())
}

/// A structural check of a JSON Web Key: the members its `kty` requires are present.
pub fn jwk_is_usable(jwk: &serde_json::Value) -> bool {
    let has =
        |k: &str| jwk.get(k).and_then(serde_json::Value::as_str).is_some_and(|s| !s.is_empty());
    match jwk.get("kty").and_then(serde_json::Value::as_str) {
        Some("RSA") => has("n") && has("e"),
        Some("EC") => has("crv") && has("x") && has("y"),
        Some("OKP") => has("crv") && has("x"),
        Some("oct") => has("k"),
        _ => false,
    }
}
