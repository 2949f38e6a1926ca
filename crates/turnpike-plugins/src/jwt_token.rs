//! The pure logic of Kong's `jwt` plugin (`kong/plugins/jwt/handler.lua` and `jwt_parser.lua`):
//! finding the token in a request, decoding it, picking the credential (`jwt_secrets` row) named
//! by the key claim, checking the algorithm and the signature, the registered claims and the
//! maximum expiration, with Kong's order of checks, messages and `WWW-Authenticate` values.
//!
//! It owns no HTTP types and no I/O: the plugin glue hands in the request pieces through
//! [`TokenSource`], the clock as a number, and the credential lookup as a closure, and turns a
//! [`JwtFailure`] into a response. Credentials are prepared once, when the configuration is
//! compiled ([`JwtSecret::from_row`]): PEM keys are parsed and HMAC keys built there, never on
//! the request path.
//!
//! Order of checks (Kong's `do_authentication`), every failure a 401 unless stated:
//! 1. token retrieval ([`find_token`]): no token → `Unauthorized` (plain `Bearer` challenge);
//!    several distinct tokens → `Multiple tokens provided`; only a bare `?jwt` → `Unrecognizable
//!    token`;
//! 2. decoding ([`decode`]) → `Bad token; <err>` with Kong's `invalid JSON`, `invalid alg` (also
//!    for `alg: none` and any name Kong does not know) or `invalid signature`;
//! 3. key claim, read from the claims and then from the JOSE header → `No mandatory '<claim>' in
//!    claims`, `Invalid '<claim>' in claims`;
//! 4. credential lookup → `No credentials found for given '<claim>'`;
//! 5. token `alg` equal to the credential's algorithm (default HS256) → `Invalid algorithm`;
//! 6. key material (secret, base64-decoded secret when `secret_is_base64`, or `rsa_public_key`)
//!    → `Invalid key/secret`;
//! 7. signature → `Invalid signature`;
//! 8. `claims_to_verify` → a body such as `{"exp":"token expired"}`, `{"nbf":"token not valid
//!    yet"}`, `{"exp":"must be a number"}`;
//! 9. `maximum_expiration` → `{"exp":"exceeds maximum allowed expiration"}`.
//!
//! Every failure after step 1's "no token" carries `error="invalid_token"` in the challenge.
//!
//! Where Kong raises a Lua error (a 500), Turnpike does the same only for what an operator
//! controls (a stored key OpenSSL cannot load); for what a client controls it answers 401:
//! a non-string key claim (`Invalid '<claim>' in claims`), an ES256/ES384 signature of the wrong
//! length (`Invalid signature`), a JOSE header that is not a JSON object (`Bad token; invalid
//! alg`). Kong also refuses PS256/384/512 signatures that are not 256 bytes long (2048-bit keys);
//! Turnpike verifies them for any key size ring accepts.
//!
//! Limitations (ring has no implementation): ES512 (ECDSA P-521) and EdDSA with Ed448 keys are
//! refused with `Invalid algorithm`, see [`JwtSecret::key_problem`]; RSA-PSS signatures must use
//! a salt as long as the digest (RFC 7518; OpenSSL also accepts other salt lengths); RS384 keys
//! need at least 2048 bits (RS256 and RS512 accept 1024-bit keys, as OpenSSL does); EC public
//! keys must be uncompressed points; `rsa_public_key` must be a `PUBLIC KEY` (SPKI) or `RSA
//! PUBLIC KEY` (PKCS#1) PEM block, not a private key or a certificate.
//!
//! Tokens longer than [`MAX_TOKEN_LEN`] are refused before any decoding (`Bad token; token too
//! large`); nginx never lets Kong see one (its header buffers stop at 8 KiB).

use std::fmt;

use base64::Engine as _;
use ring::{hmac, signature};
use serde::Deserialize;
use serde_json::{Map, Value};
use x509_parser::oid_registry::{
    Oid, OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_PKCS1_RSASSAPSS, OID_SIG_ED25519, OID_SIG_ED448,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::RSAPublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// The longest token [`decode`] looks at, in bytes. nginx's default header buffers (8 KiB per
/// line) keep longer tokens away from Kong; refusing them here bounds the work on garbage.
pub const MAX_TOKEN_LEN: usize = 8192;

/// The `decode` error for a token longer than [`MAX_TOKEN_LEN`] (Turnpike's own wording).
const TOO_LARGE: &str = "token too large";
const INVALID_JSON: &str = "invalid JSON";
const INVALID_ALG: &str = "invalid alg";
const INVALID_SIGNATURE: &str = "invalid signature";

/// A JWS algorithm Kong's `jwt` plugin knows (`alg_verify` in `jwt_parser.lua`, the `one_of` of
/// `jwt_secrets.algorithm`). Any other `alg`, `none` included, is refused while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC SHA-256.
    Hs256,
    /// HMAC SHA-384.
    Hs384,
    /// HMAC SHA-512.
    Hs512,
    /// RSASSA-PKCS1-v1_5 SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 SHA-512.
    Rs512,
    /// ECDSA P-256 SHA-256.
    Es256,
    /// ECDSA P-384 SHA-384.
    Es384,
    /// ECDSA P-521 SHA-512: accepted as a name, never verified (not in ring).
    Es512,
    /// RSASSA-PSS SHA-256.
    Ps256,
    /// RSASSA-PSS SHA-384.
    Ps384,
    /// RSASSA-PSS SHA-512.
    Ps512,
    /// EdDSA (Ed25519 keys; Ed448 is not in ring).
    EdDsa,
}

impl Algorithm {
    /// Every algorithm, in Kong's order.
    pub const ALL: [Algorithm; 13] = [
        Algorithm::Hs256,
        Algorithm::Hs384,
        Algorithm::Hs512,
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::Es512,
        Algorithm::Ps256,
        Algorithm::Ps384,
        Algorithm::Ps512,
        Algorithm::EdDsa,
    ];

    /// The algorithm with this exact (case-sensitive) JWS name, e.g. `HS256`, `EdDSA`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The JWS name, as in the `alg` header and in `jwt_secrets.algorithm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Hs256 => "HS256",
            Algorithm::Hs384 => "HS384",
            Algorithm::Hs512 => "HS512",
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::Es512 => "ES512",
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// Whether the algorithm is symmetric (Kong: the name starts with `HS`): the credential's
    /// `secret` is the key; otherwise its `rsa_public_key` is.
    pub fn is_hmac(self) -> bool {
        self.hmac_algorithm().is_some()
    }

    fn hmac_algorithm(self) -> Option<hmac::Algorithm> {
        match self {
            Algorithm::Hs256 => Some(hmac::HMAC_SHA256),
            Algorithm::Hs384 => Some(hmac::HMAC_SHA384),
            Algorithm::Hs512 => Some(hmac::HMAC_SHA512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `jwt` plugin's `config` record, with Kong's field names and defaults (`schema.lua`).
/// Validation (value ranges, `claims_to_verify` ⊂ {exp, nbf}, `maximum_expiration > 0` needing
/// `exp`) belongs to the plugin schema; a JSON `null` here means the default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "RawJwtConfig")]
pub struct JwtConfig {
    /// Query arguments searched for a token (default `["jwt"]`).
    pub uri_param_names: Vec<String>,
    /// Cookies searched for a token (default `[]`).
    pub cookie_names: Vec<String>,
    /// Headers searched for `Bearer <token>` (default `["authorization"]`).
    pub header_names: Vec<String>,
    /// The claim (then JOSE header field) naming the credential's `key` (default `iss`).
    pub key_claim_name: String,
    /// Whether HS credentials store their secret base64url-encoded (default false).
    pub secret_is_base64: bool,
    /// Registered claims to check: `exp`, `nbf` (default none).
    pub claims_to_verify: Option<Vec<String>>,
    /// Consumer id or username to fall back to when authentication fails (glue's business).
    pub anonymous: Option<String>,
    /// Whether `OPTIONS` requests are authenticated too (default true); see
    /// [`JwtConfig::skip_preflight`].
    pub run_on_preflight: bool,
    /// Largest allowed `exp - now`, in seconds; 0 disables the check (default 0).
    pub maximum_expiration: f64,
    /// `realm` of the `WWW-Authenticate` challenge (default none).
    pub realm: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawJwtConfig {
    uri_param_names: Option<Vec<String>>,
    cookie_names: Option<Vec<String>>,
    header_names: Option<Vec<String>>,
    key_claim_name: Option<String>,
    secret_is_base64: Option<bool>,
    claims_to_verify: Option<Vec<String>>,
    anonymous: Option<String>,
    run_on_preflight: Option<bool>,
    maximum_expiration: Option<f64>,
    realm: Option<String>,
}

impl From<RawJwtConfig> for JwtConfig {
    fn from(raw: RawJwtConfig) -> Self {
        let default = JwtConfig::default();
        JwtConfig {
            uri_param_names: raw.uri_param_names.unwrap_or(default.uri_param_names),
            cookie_names: raw.cookie_names.unwrap_or(default.cookie_names),
            header_names: raw.header_names.unwrap_or(default.header_names),
            key_claim_name: raw.key_claim_name.unwrap_or(default.key_claim_name),
            secret_is_base64: raw.secret_is_base64.unwrap_or(default.secret_is_base64),
            claims_to_verify: raw.claims_to_verify,
            anonymous: raw.anonymous,
            run_on_preflight: raw.run_on_preflight.unwrap_or(default.run_on_preflight),
            maximum_expiration: raw.maximum_expiration.unwrap_or(default.maximum_expiration),
            realm: raw.realm,
        }
    }
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            uri_param_names: vec!["jwt".to_owned()],
            cookie_names: Vec::new(),
            header_names: vec!["authorization".to_owned()],
            key_claim_name: "iss".to_owned(),
            secret_is_base64: false,
            claims_to_verify: None,
            anonymous: None,
            run_on_preflight: true,
            maximum_expiration: 0.0,
            realm: None,
        }
    }
}

impl JwtConfig {
    /// Whether the plugin lets this request through untouched: an `OPTIONS` request while
    /// `run_on_preflight` is false (Kong checks this first, before anything else).
    pub fn skip_preflight(&self, method: &str) -> bool {
        !self.run_on_preflight && method == "OPTIONS"
    }
}

/// The request pieces token retrieval reads. The glue implements it on its request type (or
/// uses [`RequestParts`]).
pub trait TokenSource {
    /// Every value of query argument `name` (exact name), in request order, as
    /// `kong.request.get_query()` yields them (percent-decoded, `+` as a space, at most the
    /// first 100 arguments): `Some(value)` for `name=value` (`Some("")` for `name=`), `None` for a
    /// bare `name` without `=` (Lua's `true`).
    fn query_values(&self, name: &str) -> Vec<Option<&str>>;

    /// The first value of request header `name`, matched case-insensitively.
    fn header_first(&self, name: &str) -> Option<&str>;

    /// The value of every `Cookie` header line, in request order.
    fn cookie_headers(&self) -> Vec<&str>;
}

/// A plain [`TokenSource`]: decoded query arguments and header lines, borrowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestParts<'a> {
    /// Decoded query arguments in order: `(name, Some(value))`, or `(name, None)` for a bare name.
    pub query: &'a [(&'a str, Option<&'a str>)],
    /// Header lines in order, `(name, value)`; names compare case-insensitively.
    pub headers: &'a [(&'a str, &'a str)],
}

impl TokenSource for RequestParts<'_> {
    fn query_values(&self, name: &str) -> Vec<Option<&str>> {
        self.query.iter().filter(|(n, _)| *n == name).map(|(_, v)| *v).collect()
    }

    fn header_first(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    fn cookie_headers(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .map(|(_, v)| *v)
            .collect()
    }
}

/// Why a request was refused: the status, the JSON body, and the `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtFailure {
    /// 401, or 500 for an unloadable stored key (Kong's Lua error).
    pub status: u16,
    /// `{"message": "..."}`, or the claim errors object such as `{"exp": "token expired"}`.
    pub body: Value,
    /// Whether the challenge carries `error="invalid_token"`.
    pub invalid_token: bool,
    /// Whether a `WWW-Authenticate` header is sent at all (not for the 500, nor for the glue's
    /// [`JwtFailure::consumer_not_found`]).
    pub challenge: bool,
}

impl JwtFailure {
    fn rejected(message: &str) -> Self {
        Self::rejected_with(serde_json::json!({ "message": message }))
    }

    fn rejected_with(body: Value) -> Self {
        JwtFailure { status: 401, body, invalid_token: true, challenge: true }
    }

    /// No token anywhere: 401 `Unauthorized` with the plain challenge (no `error=`).
    pub fn no_token() -> Self {
        JwtFailure { invalid_token: false, ..Self::rejected("Unauthorized") }
    }

    /// A token [`decode`] refused: 401 `Bad token; <err>`.
    pub fn bad_token(err: &str) -> Self {
        Self::rejected(&format!("Bad token; {err}"))
    }

    /// The credential's consumer is gone (Kong: "should not happen"): 401 `Could not find
    /// consumer for '<claim>=<key>'`, without a `WWW-Authenticate` header. For the glue.
    pub fn consumer_not_found(key_claim_name: &str, key: &str) -> Self {
        JwtFailure {
            challenge: false,
            invalid_token: false,
            ..Self::rejected(&format!("Could not find consumer for '{key_claim_name}={key}'"))
        }
    }

    /// What Kong answers when the plugin raises a Lua error: 500 `An unexpected error
    /// occurred`, no challenge. Such a failure must not fall back to the anonymous consumer.
    pub fn internal() -> Self {
        JwtFailure {
            status: 500,
            body: serde_json::json!({ "message": "An unexpected error occurred" }),
            invalid_token: false,
            challenge: false,
        }
    }

    /// Whether this is the 500 (Kong's `error()`), which bypasses `anonymous`.
    pub fn is_internal(&self) -> bool {
        self.status >= 500
    }

    /// The body's `message`, when the body is a message.
    pub fn message(&self) -> Option<&str> {
        self.body.get("message").and_then(Value::as_str)
    }

    /// The `WWW-Authenticate` value to send with this failure, if any.
    pub fn www_authenticate(&self, realm: Option<&str>) -> Option<String> {
        self.challenge.then(|| www_authenticate(realm, self.invalid_token))
    }
}

impl fmt::Display for JwtFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

/// Kong's challenge: `Bearer`, `Bearer realm="<realm>"`, with `error="invalid_token"` appended
/// (`Bearer error="invalid_token"`, `Bearer realm="r", error="invalid_token"`). The realm is
/// inserted as configured, unescaped, as Kong does.
pub fn www_authenticate(realm: Option<&str>, invalid_token: bool) -> String {
    match (realm, invalid_token) {
        (Some(realm), false) => format!("Bearer realm=\"{realm}\""),
        (Some(realm), true) => format!("Bearer realm=\"{realm}\", error=\"invalid_token\""),
        (None, false) => "Bearer".to_owned(),
        (None, true) => "Bearer error=\"invalid_token\"".to_owned(),
    }
}

/// One distinct token candidate; Kong's `token_set` keys (a bare `?jwt` is Lua's `true`).
#[derive(PartialEq, Eq)]
enum Candidate<'a> {
    Bare,
    Text(&'a str),
}

fn add_candidate<'a>(set: &mut Vec<Candidate<'a>>, candidate: Candidate<'a>) {
    if !set.contains(&candidate) {
        set.push(candidate);
    }
}

/// Finds the token as Kong's `retrieve_tokens` does: every configured query argument (all its
/// values), then every configured cookie (nginx's `$cookie_<name>`: the first match across the
/// `Cookie` lines, name case-insensitive), then every configured header (its first value only,
/// searched for `[Bb]earer<space>+<token>` anywhere in the value). Empty values are ignored and
/// equal tokens count once.
///
/// `Ok(None)` when there is none (the caller answers [`JwtFailure::no_token`]); `Multiple tokens
/// provided` when the distinct candidates are several (even if one of them would verify);
/// `Unrecognizable token` when the only candidate is a bare `?jwt` without a value.
pub fn find_token<S: TokenSource + ?Sized>(
    source: &S,
    conf: &JwtConfig,
) -> Result<Option<String>, JwtFailure> {
    let mut set: Vec<Candidate<'_>> = Vec::new();

    for name in &conf.uri_param_names {
        for value in source.query_values(name) {
            match value {
                None => add_candidate(&mut set, Candidate::Bare),
                Some("") => {}
                Some(token) => add_candidate(&mut set, Candidate::Text(token)),
            }
        }
    }

    if !conf.cookie_names.is_empty() {
        let lines = source.cookie_headers();
        for name in &conf.cookie_names {
            if let Some(token) = nginx_cookie(&lines, name).filter(|t| !t.is_empty()) {
                add_candidate(&mut set, Candidate::Text(token));
            }
        }
    }

    for name in &conf.header_names {
        // Kong's header table is looked up raw first, then lower-cased with `_` turned to `-`.
        let value = match source.header_first(name) {
            Some(value) => Some(value),
            None if name.contains('_') => source.header_first(&name.replace('_', "-")),
            None => None,
        };
        if let Some(token) = value.and_then(bearer_token) {
            add_candidate(&mut set, Candidate::Text(token));
        }
    }

    match set.as_slice() {
        [] => Ok(None),
        [Candidate::Text(token)] => Ok(Some((*token).to_owned())),
        [Candidate::Bare] => Err(JwtFailure::rejected("Unrecognizable token")),
        _ => Err(JwtFailure::rejected("Multiple tokens provided")),
    }
}

/// PCRE's `\s` without UTF mode: space, `\t`, `\n`, `\v`, `\f`, `\r`.
fn is_pcre_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The first capture of Kong's unanchored `\s*[Bb]earer\s+(.+)` over `value`, with PCRE's
/// leftmost, backtracking semantics (`.` stops at `\n`). Linear: the whitespace runs examined
/// after distinct `earer` occurrences do not overlap.
fn bearer_token(value: &str) -> Option<&str> {
    let bytes = value.as_bytes();
    let len = bytes.len();
    let line_end = |from: usize| {
        bytes
            .get(from..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            .map_or(len, |i| from + i)
    };
    let mut p = 0;
    while p + 6 < len {
        if !matches!(bytes[p], b'B' | b'b') || bytes.get(p + 1..p + 6) != Some(b"earer".as_slice())
        {
            p += 1;
            continue;
        }
        let q = p + 6;
        let mut run_end = q;
        while run_end < len && is_pcre_space(bytes[run_end]) {
            run_end += 1;
        }
        if run_end > q {
            if run_end < len {
                // The run stops at a non-space byte, which `.` matches.
                return value.get(run_end..line_end(run_end));
            }
            // The run reaches the end: `\s+` gives back its last bytes until `.` can match one.
            if let Some(start) = (q + 1..len).rev().find(|&i| bytes[i] != b'\n') {
                return value.get(start..line_end(start));
            }
        }
        p += 1;
    }
    None
}

/// nginx's `ngx_http_parse_multi_header_lines` as used by `$cookie_<name>`: the first cookie
/// whose name matches case-insensitively (spaces allowed before `=`), its value after leading
/// spaces up to the next `;`. Pairs are separated by `;` or `,`.
fn nginx_cookie<'a>(lines: &[&'a str], name: &str) -> Option<&'a str> {
    let name = name.as_bytes();
    for line in lines {
        let bytes = line.as_bytes();
        if name.len() > bytes.len() {
            continue;
        }
        let end = bytes.len();
        let mut start = 0;
        while start < end {
            let matches_name =
                bytes.get(start..start + name.len()).is_some_and(|s| s.eq_ignore_ascii_case(name));
            if matches_name {
                let mut i = start + name.len();
                while i < end && bytes[i] == b' ' {
                    i += 1;
                }
                if i < end && bytes[i] == b'=' {
                    i += 1;
                    while i < end && bytes[i] == b' ' {
                        i += 1;
                    }
                    let last = bytes[i..].iter().position(|&b| b == b';').map_or(end, |n| i + n);
                    return line.get(i..last);
                }
                start = i;
            }
            // Skip to the next pair: past a `;` or `,`, then past spaces.
            while start < end {
                let ch = bytes[start];
                start += 1;
                if ch == b';' || ch == b',' {
                    break;
                }
            }
            while start < end && bytes[start] == b' ' {
                start += 1;
            }
        }
    }
    None
}

/// nginx's `ngx_decode_base64url` as Kong's `base64_decode` drives it: everything from the first
/// `=` on is ignored, the URL alphabet only (`-`, `_`), a lone trailing character is an error,
/// unused trailing bits are ignored.
fn ngx_b64url_decode(input: &str) -> Option<Vec<u8>> {
    fn value(b: u8) -> Option<u32> {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        Some(u32::from(v))
    }
    let bytes = input.as_bytes();
    let data = bytes.split(|&b| b == b'=').next().unwrap_or_default();
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 6) | value(b)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn b64url_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A decoded (not yet verified) token.
#[derive(Clone)]
pub struct Jwt {
    token: String,
    signing_input_len: usize,
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The claims; empty when the payload is valid JSON but not an object (Kong then finds no
    /// claim in it either).
    pub claims: Map<String, Value>,
    /// The header's `alg`.
    pub alg: Algorithm,
    signature: Vec<u8>,
}

impl Jwt {
    /// The token as received.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// `<header>.<claims>` as received: the signed bytes.
    pub fn signing_input(&self) -> &str {
        self.token.get(..self.signing_input_len).unwrap_or_default()
    }

    /// The decoded signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

impl fmt::Debug for Jwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a bearer credential: never printed.
        f.debug_struct("Jwt")
            .field("header", &self.header)
            .field("claims", &self.claims)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Decodes a token as Kong's `jwt_parser:new` does; the error is the text after `Bad token; `.
///
/// The token is cut at its first two dots (a third dot stays in the signature part). Header and
/// claims must be base64url (nginx's lenient decoder) of JSON, else `invalid JSON` (also for one
/// or two segments); the header's `alg` must be a known algorithm, else `invalid alg`; the
/// signature must be base64url, else `invalid signature` (an empty signature decodes, and fails
/// verification later).
pub fn decode(token: &str) -> Result<Jwt, String> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TOO_LARGE.to_owned());
    }
    let mut parts = token.splitn(3, '.');
    let (Some(header_64), Some(claims_64), Some(signature_64)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(INVALID_JSON.to_owned());
    };
    let json = |segment: &str| {
        ngx_b64url_decode(segment).and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
    };
    let (Some(header), Some(claims)) = (json(header_64), json(claims_64)) else {
        return Err(INVALID_JSON.to_owned());
    };
    let signature = ngx_b64url_decode(signature_64);

    let Value::Object(header) = header else {
        return Err(INVALID_ALG.to_owned());
    };
    let Some(alg) = header.get("alg").and_then(Value::as_str).and_then(Algorithm::from_name) else {
        return Err(INVALID_ALG.to_owned());
    };
    let claims = match claims {
        Value::Object(claims) => claims,
        _ => Map::new(),
    };
    let Some(signature) = signature else {
        return Err(INVALID_SIGNATURE.to_owned());
    };
    Ok(Jwt {
        token: token.to_owned(),
        signing_input_len: header_64.len() + 1 + claims_64.len(),
        header,
        claims,
        alg,
        signature,
    })
}

/// A parsed public key, ready for ring.
#[derive(Clone)]
enum PublicKey {
    /// PKCS#1 `RSAPublicKey` DER.
    Rsa(Vec<u8>),
    /// Uncompressed SEC1 point.
    P256(Vec<u8>),
    /// Uncompressed SEC1 point.
    P384(Vec<u8>),
    /// Not verifiable with ring.
    P521,
    /// Raw 32 bytes.
    Ed25519(Vec<u8>),
    /// Not verifiable with ring.
    Ed448,
}

impl PublicKey {
    fn kind(&self) -> &'static str {
        match self {
            PublicKey::Rsa(_) => "RSA",
            PublicKey::P256(_) => "EC P-256",
            PublicKey::P384(_) => "EC P-384",
            PublicKey::P521 => "EC P-521",
            PublicKey::Ed25519(_) => "Ed25519",
            PublicKey::Ed448 => "Ed448",
        }
    }
}

#[derive(Clone)]
enum Material {
    /// HS credentials: the secret as stored, and base64url-decoded (for `secret_is_base64`).
    Hmac { plain: Option<hmac::Key>, base64: Option<hmac::Key> },
    /// No `rsa_public_key`.
    NoPublicKey,
    /// `rsa_public_key` that could not be loaded (Kong's `assert` fails: a 500).
    Unloadable(String),
    /// A loaded public key.
    Public(PublicKey),
}

/// A `jwt_secrets` credential, prepared once when the configuration is compiled.
#[derive(Clone)]
pub struct JwtSecret {
    /// The credential id.
    pub id: String,
    /// The `key` the key claim must name (and `X-Credential-Identifier`).
    pub key: String,
    /// The credential's algorithm (`HS256` when the row has none).
    pub algorithm: Algorithm,
    /// The owning consumer's id.
    pub consumer_id: String,
    material: Material,
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let material = match &self.material {
            Material::Hmac { .. } => "<secret>".to_owned(),
            Material::NoPublicKey => "<no public key>".to_owned(),
            Material::Unloadable(_) => "<unloadable public key>".to_owned(),
            Material::Public(key) => format!("<{} public key>", key.kind()),
        };
        f.debug_struct("JwtSecret")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("algorithm", &self.algorithm)
            .field("consumer_id", &self.consumer_id)
            .field("material", &material)
            .finish()
    }
}

impl JwtSecret {
    /// Prepares a credential from its Admin API JSON (`{"id","key","secret","algorithm",
    /// "rsa_public_key","consumer":{"id"}}`).
    ///
    /// Errors only for a row that is not a credential at all (no `key` string, no consumer id,
    /// an algorithm Kong does not know, a field of the wrong type). A key that cannot be used is
    /// kept and reported by [`JwtSecret::key_problem`], and requests meet Kong's outcome for it
    /// (`Invalid key/secret` when missing, a 500 when unloadable, `Invalid algorithm` when ring
    /// cannot verify it), so that a configuration Kong accepts is accepted here too.
    pub fn from_row(row: &Value) -> Result<Self, String> {
        let obj = row.as_object().ok_or("jwt_secrets row: not a JSON object")?;
        let opt_str = |field: &str| -> Result<Option<&str>, String> {
            match obj.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(format!("jwt_secrets row: '{field}' is not a string")),
            }
        };
        let key = opt_str("key")?.ok_or("jwt_secrets row: no 'key'")?.to_owned();
        let id = opt_str("id")?.unwrap_or_default().to_owned();
        let algorithm = match opt_str("algorithm")? {
            None => Algorithm::Hs256,
            Some(name) => Algorithm::from_name(name)
                .ok_or_else(|| format!("jwt_secrets row: unknown algorithm '{name}'"))?,
        };
        let consumer_id = match obj.get("consumer") {
            Some(Value::Object(consumer)) => consumer.get("id").and_then(Value::as_str),
            Some(Value::String(id)) => Some(id.as_str()),
            _ => None,
        }
        .ok_or("jwt_secrets row: no 'consumer.id'")?
        .to_owned();

        let material = match algorithm.hmac_algorithm() {
            Some(hash) => {
                let secret = opt_str("secret")?;
                Material::Hmac {
                    plain: secret.map(|s| hmac::Key::new(hash, s.as_bytes())),
                    base64: secret.and_then(ngx_b64url_decode).map(|b| hmac::Key::new(hash, &b)),
                }
            }
            None => match opt_str("rsa_public_key")? {
                None => Material::NoPublicKey,
                Some(pem) => match parse_public_key_pem(pem) {
                    Ok(key) => Material::Public(key),
                    Err(err) => Material::Unloadable(err),
                },
            },
        };
        Ok(JwtSecret { id, key, algorithm, consumer_id, material })
    }

    /// Why tokens for this credential can never verify, for a warning when the configuration
    /// is compiled: a missing or unloadable `rsa_public_key`, a key of the wrong type, or one
    /// ring cannot verify (ES512, Ed448). `None` when the credential is usable.
    pub fn key_problem(&self) -> Option<String> {
        let alg = self.algorithm;
        match &self.material {
            Material::Hmac { plain: None, .. } => Some(format!("{alg} credential without secret")),
            Material::Hmac { .. } => None,
            Material::NoPublicKey => Some(format!("{alg} credential without rsa_public_key")),
            Material::Unloadable(err) => Some(format!("rsa_public_key cannot be loaded: {err}")),
            Material::Public(key) => match (alg, key) {
                (Algorithm::Es512, _) => {
                    Some("ES512 (ECDSA P-521) is not supported by Turnpike".to_owned())
                }
                (Algorithm::EdDsa, PublicKey::Ed448) => {
                    Some("EdDSA with Ed448 keys is not supported by Turnpike".to_owned())
                }
                _ if verification_algorithm(alg, key).is_none() => {
                    Some(format!("{alg} credential with a {} public key", key.kind()))
                }
                _ => None,
            },
        }
    }
}

/// Reads the first PEM block of `text`: its label and its base64 body (whitespace ignored).
fn pem_decode(text: &str) -> Result<(&str, Vec<u8>), String> {
    const BEGIN: &str = "-----BEGIN ";
    let start = text.find(BEGIN).ok_or("no PEM block")? + BEGIN.len();
    let rest = text.get(start..).unwrap_or_default();
    let label_end = rest.find("-----").ok_or("bad PEM header")?;
    let label = rest.get(..label_end).unwrap_or_default();
    let body = rest.get(label_end + 5..).unwrap_or_default();
    let end = body.find("-----END ").ok_or("no PEM footer")?;
    let b64: Vec<u8> =
        body.get(..end).unwrap_or_default().bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("bad PEM base64: {e}"))?;
    Ok((label, der))
}

fn parse_public_key_pem(pem: &str) -> Result<PublicKey, String> {
    let (label, der) = pem_decode(pem)?;
    match label {
        "PUBLIC KEY" => parse_spki(&der),
        "RSA PUBLIC KEY" => {
            RSAPublicKey::from_der(&der).map_err(|e| format!("bad RSA public key: {e}"))?;
            Ok(PublicKey::Rsa(der))
        }
        other => Err(format!("unsupported PEM block '{other}' (expected 'PUBLIC KEY')")),
    }
}

fn parse_spki(der: &[u8]) -> Result<PublicKey, String> {
    let (_, spki) =
        SubjectPublicKeyInfo::from_der(der).map_err(|e| format!("bad public key: {e}"))?;
    let oid = &spki.algorithm.algorithm;
    let data: &[u8] = &spki.subject_public_key.data;
    if *oid == OID_PKCS1_RSAENCRYPTION || *oid == OID_PKCS1_RSASSAPSS {
        RSAPublicKey::from_der(data).map_err(|e| format!("bad RSA public key: {e}"))?;
        return Ok(PublicKey::Rsa(data.to_vec()));
    }
    if *oid == OID_SIG_ED25519 {
        return match data.len() {
            32 => Ok(PublicKey::Ed25519(data.to_vec())),
            n => Err(format!("bad Ed25519 public key length {n}")),
        };
    }
    if *oid == OID_SIG_ED448 {
        return Ok(PublicKey::Ed448);
    }
    if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki.algorithm.parameters.as_ref().and_then(|p| Oid::try_from(p).ok());
        let uncompressed = |size: usize| data.len() == 1 + 2 * size && data.first() == Some(&4);
        return match curve {
            Some(c) if c == OID_EC_P256 && uncompressed(32) => Ok(PublicKey::P256(data.to_vec())),
            Some(c) if c == OID_NIST_EC_P384 && uncompressed(48) => {
                Ok(PublicKey::P384(data.to_vec()))
            }
            Some(c) if c == OID_NIST_EC_P521 => Ok(PublicKey::P521),
            Some(c) if c == OID_EC_P256 || c == OID_NIST_EC_P384 => {
                Err("EC public key is not an uncompressed point".to_owned())
            }
            _ => Err("unsupported EC curve".to_owned()),
        };
    }
    Err(format!("unsupported public key algorithm {oid}"))
}

/// ring's verification algorithm for a JWS algorithm and a key of the right type.
fn verification_algorithm(
    alg: Algorithm,
    key: &PublicKey,
) -> Option<(&'static dyn signature::VerificationAlgorithm, &[u8])> {
    use signature as s;
    let pair: (&'static dyn s::VerificationAlgorithm, &[u8]) = match (alg, key) {
        // OpenSSL accepts 1024-bit RSA keys; ring does so for SHA-256 and SHA-512 only.
        (Algorithm::Rs256, PublicKey::Rsa(k)) => {
            (&s::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, k)
        }
        (Algorithm::Rs384, PublicKey::Rsa(k)) => (&s::RSA_PKCS1_2048_8192_SHA384, k),
        (Algorithm::Rs512, PublicKey::Rsa(k)) => {
            (&s::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY, k)
        }
        (Algorithm::Ps256, PublicKey::Rsa(k)) => (&s::RSA_PSS_2048_8192_SHA256, k),
        (Algorithm::Ps384, PublicKey::Rsa(k)) => (&s::RSA_PSS_2048_8192_SHA384, k),
        (Algorithm::Ps512, PublicKey::Rsa(k)) => (&s::RSA_PSS_2048_8192_SHA512, k),
        (Algorithm::Es256, PublicKey::P256(k)) => (&s::ECDSA_P256_SHA256_FIXED, k),
        (Algorithm::Es384, PublicKey::P384(k)) => (&s::ECDSA_P384_SHA384_FIXED, k),
        (Algorithm::EdDsa, PublicKey::Ed25519(k)) => (&s::ED25519, k),
        _ => return None,
    };
    Some(pair)
}

/// Step 7: the signature against the credential's key material.
fn verify_signature(jwt: &Jwt, secret: &JwtSecret, conf: &JwtConfig) -> Result<(), JwtFailure> {
    let message = jwt.signing_input().as_bytes();
    let invalid_signature = || JwtFailure::rejected("Invalid signature");
    match &secret.material {
        Material::Hmac { plain, base64 } => {
            let key = if conf.secret_is_base64 { base64 } else { plain };
            let key = key.as_ref().ok_or_else(|| JwtFailure::rejected("Invalid key/secret"))?;
            hmac::verify(key, message, jwt.signature()).map_err(|_| invalid_signature())
        }
        Material::NoPublicKey => Err(JwtFailure::rejected("Invalid key/secret")),
        Material::Unloadable(_) => Err(JwtFailure::internal()),
        Material::Public(key) => {
            if matches!(
                (jwt.alg, key),
                (Algorithm::Es512, _) | (Algorithm::EdDsa, PublicKey::Ed448)
            ) {
                return Err(JwtFailure::rejected("Invalid algorithm"));
            }
            let (algorithm, bytes) =
                verification_algorithm(jwt.alg, key).ok_or_else(invalid_signature)?;
            signature::UnparsedPublicKey::new(algorithm, bytes)
                .verify(message, jwt.signature())
                .map_err(|_| invalid_signature())
        }
    }
}

/// Kong's `add_error`: a second error for the same claim turns the value into a list.
fn add_error(errors: &mut Map<String, Value>, claim: &str, message: &str) {
    match errors.get_mut(claim) {
        Some(Value::Array(list)) => list.push(message.into()),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, message.into()]);
        }
        None => {
            errors.insert(claim.to_owned(), message.into());
        }
    }
}

/// Step 8: Kong's `verify_registered_claims` (unknown names are ignored; the schema allows
/// only `exp` and `nbf`).
fn verify_registered_claims(
    claims: &Map<String, Value>,
    claims_to_verify: &[String],
    now: f64,
) -> Result<(), Map<String, Value>> {
    let mut errors = Map::new();
    for name in claims_to_verify {
        let check: fn(f64, f64) -> Option<&'static str> = match name.as_str() {
            "exp" => |exp, now| (exp <= now).then_some("token expired"),
            "nbf" => |nbf, now| (nbf > now).then_some("token not valid yet"),
            _ => continue,
        };
        match claims.get(name).and_then(Value::as_f64) {
            None => add_error(&mut errors, name, "must be a number"),
            Some(value) => {
                if let Some(message) = check(value, now) {
                    add_error(&mut errors, name, message);
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Steps 3 to 9 on a decoded token: the key claim, the credential (`find_secret` looks a `key`
/// up), the algorithm, the key material, the signature, `claims_to_verify` and
/// `maximum_expiration`. `now_unix_secs` is truncated to whole seconds, as Kong compares with
/// `ngx.time()`.
pub fn authenticate<'s>(
    jwt: &Jwt,
    conf: &JwtConfig,
    now_unix_secs: f64,
    find_secret: impl FnOnce(&str) -> Option<&'s JwtSecret>,
) -> Result<&'s JwtSecret, JwtFailure> {
    let claim_name = conf.key_claim_name.as_str();
    // Lua's `claims[name] or header[name]`: `false` and absence fall through; JSON null is truthy.
    let lua_truthy = |v: &&Value| !matches!(v, Value::Bool(false));
    let value = jwt
        .claims
        .get(claim_name)
        .filter(lua_truthy)
        .or_else(|| jwt.header.get(claim_name).filter(lua_truthy));
    let key = match value {
        None => {
            return Err(JwtFailure::rejected(&format!("No mandatory '{claim_name}' in claims")));
        }
        Some(Value::String(key)) if !key.is_empty() => key,
        // Kong: `""` is invalid; other types make its credential lookup raise a 500.
        Some(_) => return Err(JwtFailure::rejected(&format!("Invalid '{claim_name}' in claims"))),
    };

    let secret = find_secret(key).ok_or_else(|| {
        JwtFailure::rejected(&format!("No credentials found for given '{claim_name}'"))
    })?;

    if jwt.alg != secret.algorithm {
        return Err(JwtFailure::rejected("Invalid algorithm"));
    }

    verify_signature(jwt, secret, conf)?;

    let now = now_unix_secs.floor();
    let claims_to_verify = conf.claims_to_verify.as_deref().unwrap_or_default();
    verify_registered_claims(&jwt.claims, claims_to_verify, now)
        .map_err(|errors| JwtFailure::rejected_with(Value::Object(errors)))?;

    if conf.maximum_expiration > 0.0 {
        let exceeds = match jwt.claims.get("exp").and_then(Value::as_f64) {
            Some(exp) => exp - now > conf.maximum_expiration,
            None => true,
        };
        if exceeds {
            return Err(JwtFailure::rejected_with(
                serde_json::json!({ "exp": "exceeds maximum allowed expiration" }),
            ));
        }
    }

    Ok(secret)
}

/// A successful authentication.
#[derive(Debug, Clone)]
pub struct Authenticated<'s> {
    /// The credential: `consumer_id` to load, `key` for `X-Credential-Identifier`.
    pub secret: &'s JwtSecret,
    /// The decoded token (`token()` goes to `kong.ctx.shared.authenticated_jwt_token`).
    pub jwt: Jwt,
}

/// The whole of Kong's `do_authentication` up to the consumer: [`find_token`], [`decode`],
/// [`authenticate`]. The caller checks [`JwtConfig::skip_preflight`] before, and loads the
/// consumer after (answering [`JwtFailure::consumer_not_found`] if it is gone). With
/// `anonymous` set, any failure but [`JwtFailure::is_internal`] falls back to that consumer.
pub fn authenticate_request<'s, S: TokenSource + ?Sized>(
    source: &S,
    conf: &JwtConfig,
    now_unix_secs: f64,
    find_secret: impl FnOnce(&str) -> Option<&'s JwtSecret>,
) -> Result<Authenticated<'s>, JwtFailure> {
    let token = find_token(source, conf)?.ok_or_else(JwtFailure::no_token)?;
    let jwt = decode(&token).map_err(|err| JwtFailure::bad_token(&err))?;
    let secret = authenticate(&jwt, conf, now_unix_secs, find_secret)?;
    Ok(Authenticated { secret, jwt })
}

/// Test and tooling helper: an HS256/384/512 token over the given header and claims JSON (used
/// verbatim, so tests can craft odd headers). `None` for a non-HMAC algorithm.
pub fn sign_hs(
    alg: Algorithm,
    secret: &[u8],
    header_json: &str,
    claims_json: &str,
) -> Option<String> {
    let hash = alg.hmac_algorithm()?;
    let input = format!(
        "{}.{}",
        b64url_encode(header_json.as_bytes()),
        b64url_encode(claims_json.as_bytes())
    );
    let tag = hmac::sign(&hmac::Key::new(hash, secret), input.as_bytes());
    Some(format!("{input}.{}", b64url_encode(tag.as_ref())))
}
