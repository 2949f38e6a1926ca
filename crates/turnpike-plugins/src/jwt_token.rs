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
//! Every 401 but step 1's "no token" carries `error="invalid_token"` in the challenge; the 500
//! (see [`JwtFailure::internal`]) carries no challenge.
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
    /// `kong.request.get_query()` yields them (percent-decoded, `+` as a space; Kong reads at
    /// most 100 arguments): `Some(value)` for `name=value` (`Some("")` for `name=`), `None` for a
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
/// (`Bearer error="invalid_token"`, `Bearer realm="r" error="invalid_token"` as in Kong 3.9). The realm is
/// inserted as configured, unescaped, as Kong does.
pub fn www_authenticate(realm: Option<&str>, invalid_token: bool) -> String {
    match (realm, invalid_token) {
        (Some(realm), false) => format!("Bearer realm=\"{realm}\""),
        // Kong 3.9 joins them without a comma (later versions add one)
        (Some(realm), true) => format!("Bearer realm=\"{realm}\" error=\"invalid_token\""),
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
                // nginx consumes the byte that is not `=` before skipping to the next pair.
                start = if i < end { i + 1 } else { i };
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

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
    use serde_json::json;

    const NOW: f64 = 1_700_000_000.0;

    // Test keys generated with `openssl genpkey` for these tests only.
    const RSA_PRIVATE: &str = "\
    -----BEGIN PRIVATE KEY-----\n\
    MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC2mLRPYocoUjOh\n\
    rq35Ad/KBeTxlPeT4dU2xvD8Umzv2hFsZMCxG5eTOOhaO6U1iDKXS5IWMGq+gqMy\n\
    YTjzLs79+Xma6gmvcjY4StobCIRVlOr8BQ1HqhdzVaXlqthFs3uK3WbJyOkCHIRU\n\
    4DzVnnqmBadlSW1IRqULBna0DxS4lk6rUaUR8YLaGFOT/vG0ALXFM7RWBUq/xUMd\n\
    cHRwXACdzDhKKd0/KOTniMyu5plaqZ49kwm53hGtdB9w62e0lTac7KKFDHix6l38\n\
    vGwj62mj+9AWTcaI4bV4sDYhh3Xk+q9ywpUoCDhhQh8eJhxH/Flwcux3t7kv8Y2j\n\
    nWZehxr3AgMBAAECggEAFqSjH4EJX6+p5W/i9RENbmECvg6KERWdOhi7g565EZlK\n\
    NdXcq1nPlxskfSQOXbARDf/6ErRYWF2c3T9/L3DrjEUmllZVcyNHo/1sRJPuzSoV\n\
    ZcE+n1dxZwUE+JESFrqmJFdGStmWQ4PDyT6xbJAlh3cGBiJv4dmY1+AqUjPYjvcm\n\
    z22kAfmcballJkEouOWZPzBl7foW5cEE8W+PuYVpsvCOhPo/9kL+kExoojF8XBjY\n\
    f9H7KbDitTcUMOqk/7TY++GCQQk7JlLxauRjvzs3XdaGhIvDuDNw/DHVElcjk3Vb\n\
    XvwitPKEj6EjMhwVdv3XiWpTAcTMQ8+rigOWZQRFWQKBgQDvFhyuB0xHP2eNNPML\n\
    /Gek1Jx0qu2sFXtJHywSZTjGqQGFJOE6Za6wQzGeQVK1SyGMti4ZSytWa0X0rr3t\n\
    WGECH9AD30THM4ccHlhxRj8c+9bwzYcYikBcHWBnVrhhSgmLI8X7fwyEko5UdbNW\n\
    IdZ1MbqLyqn/L4rh6BaO9gfZCwKBgQDDg41/YqsUQJMjr2SiJeaNLqgpEjDi/lVb\n\
    iMGnNvsu220haPv/qenxAJrQWap9iqB2TsYV5Wt/X7vnaWp++seKPXdl9kdTQojw\n\
    emJigzzlllmXhnGvOWdyQMtnuA9Pvkl5GHnSe74CbTgw/lcBJWHh39jHHGFrvI1f\n\
    i0vcVauxRQKBgQDF+N5YsExWNsdNIsoaY6+CylafOKZDNyp1+uzoco6X2XwbvtUN\n\
    IQOMiqc8bsTIv+SQ+o2jfh3tmjg8CrHUJbl2I9eATVFLTXyUKQB9E3jRTCvIC7fQ\n\
    9zGh1OVtzF4ymTbb0wxuWt6HrD9U6n1MVgqZ0kqw1Gj9mGV8+EwtpsYKzwKBgHy3\n\
    2HVgLZ3Xq4TiB6Hf53g8QQ0iC4lhkHW5gT73tbeoRa9AVzA55X/VUOyDplw7KC0Q\n\
    BxBErxQrr6Po/QRPWSZ4G0gxmEImeVBd4ZDSAvC5viEIpFCQn8qkRpy9LxdBXYEf\n\
    +eYpBYZqwaOPO1UB0bTSpGgvVH3zY4OFSjkddU65AoGBAKimmk+XDpP8+Av9DzIS\n\
    FF5fgW8WN7CRYX6sU/Hq1SecOzJzBW9tuVF2Gcuk0DhlEbQC2pNQGCYKMeidD6pi\n\
    rhVoYRm6RxSX4NniwYjxY0kMFIt4Tdg2juZItAZXNVZEmv6QD4Xv6wYDsIiYMDPv\n\
    0aJ+RJ6amzaje0S1AP6uqem1\n\
    -----END PRIVATE KEY-----\n";
    const RSA_PUBLIC: &str = "\
    -----BEGIN PUBLIC KEY-----\n\
    MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtpi0T2KHKFIzoa6t+QHf\n\
    ygXk8ZT3k+HVNsbw/FJs79oRbGTAsRuXkzjoWjulNYgyl0uSFjBqvoKjMmE48y7O\n\
    /fl5muoJr3I2OEraGwiEVZTq/AUNR6oXc1Wl5arYRbN7it1mycjpAhyEVOA81Z56\n\
    pgWnZUltSEalCwZ2tA8UuJZOq1GlEfGC2hhTk/7xtAC1xTO0VgVKv8VDHXB0cFwA\n\
    ncw4SindPyjk54jMruaZWqmePZMJud4RrXQfcOtntJU2nOyihQx4sepd/LxsI+tp\n\
    o/vQFk3GiOG1eLA2IYd15PqvcsKVKAg4YUIfHiYcR/xZcHLsd7e5L/GNo51mXoca\n\
    9wIDAQAB\n\
    -----END PUBLIC KEY-----\n";
    const RSA_PUBLIC_PKCS1: &str = "\
    -----BEGIN RSA PUBLIC KEY-----\n\
    MIIBCgKCAQEAtpi0T2KHKFIzoa6t+QHfygXk8ZT3k+HVNsbw/FJs79oRbGTAsRuX\n\
    kzjoWjulNYgyl0uSFjBqvoKjMmE48y7O/fl5muoJr3I2OEraGwiEVZTq/AUNR6oX\n\
    c1Wl5arYRbN7it1mycjpAhyEVOA81Z56pgWnZUltSEalCwZ2tA8UuJZOq1GlEfGC\n\
    2hhTk/7xtAC1xTO0VgVKv8VDHXB0cFwAncw4SindPyjk54jMruaZWqmePZMJud4R\n\
    rXQfcOtntJU2nOyihQx4sepd/LxsI+tpo/vQFk3GiOG1eLA2IYd15PqvcsKVKAg4\n\
    YUIfHiYcR/xZcHLsd7e5L/GNo51mXoca9wIDAQAB\n\
    -----END RSA PUBLIC KEY-----\n";
    const RSA2_PUBLIC: &str = "\
    -----BEGIN PUBLIC KEY-----\n\
    MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA3rJX1XVL+DsT8+cUV5R2\n\
    YAKamhmbo7oXwx2i+fzB5WjbCAZX4GGrh3x6ACDUeS4h96bBsEYaO2tXzyoWotPV\n\
    Q2x5OTPsO4aB1qImDwMRU9a/KKkeVnXesbose+GsbaTqc2AY3+bYbSCL0hn4raXH\n\
    PLm66ymOwapa3m7+nsniU+NBPqOWNEkbKG2fkaswrHT/IEtjvo0bMUCEdCxvFZAi\n\
    dqOCIwub8r5GB9qikKDhUsUMjE+U851cbi+GQyUaPklwE6sQi5beMkmMp/876xOA\n\
    WHhwSaEGlZEMQXScN8+aI09sDCsdowAkYwnk1/OKSBHaJo/BAmI9oe4q5qgfIDVT\n\
    4QIDAQAB\n\
    -----END PUBLIC KEY-----\n";
    const RSA1024_PUBLIC: &str = "\
    -----BEGIN PUBLIC KEY-----\n\
    MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDDK41gjwh6zFwp6ltWwxv7oPTN\n\
    WPrikxxu9bRn/mcZAZYtBzOw1P1Lv0O022cFP5Pjj8ib2SM4TeWEXdFjbRFDDBXl\n\
    /pB50UPZIXX/Ibw7k2KUS5n07Xpp1oOoQOCIT7nCeIaIeSyXTtIZLnq2xjQcdWvx\n\
    6GxZhOZW6UP3viYo6wIDAQAB\n\
    -----END PUBLIC KEY-----\n";
    const P256_PRIVATE: &str = "\
    -----BEGIN PRIVATE KEY-----\n\
    MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgxfDNWOhPNRJfcSb1\n\
    haxH573WypADR5NnPcDQQNJEKWqhRANCAARm/lf+LsT0uzoeYrSDxRC73wsD3tfk\n\
    62HyqzF9BRcljxZKsuuo+jwTD7nY0Hd03RnbCETM6DENP/HN0WSfr17O\n\
    -----END PRIVATE KEY-----\n";
    const P256_PUBLIC: &str = "\
    -----BEGIN PUBLIC KEY-----\n\
    MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZv5X/i7E9Ls6HmK0g8UQu98LA97X\n\
    5Oth8qsxfQUXJY8WSrLrqPo8Ew+52NB3dN0Z2whEzOgxDT/xzdFkn69ezg==\n\
    -----END PUBLIC KEY-----\n";
    const P384_PRIVATE: &str = "\
    -----BEGIN PRIVATE KEY-----\n\
    MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDAGW8mPTJz7juDdsHo+\n\
    GOusYGq+UIuSPkWF2J5AzyHS5ATDLevDNsBpdKDFJ3yTeTOhZANiAASfAbIj0YZO\n\
    wOCwN8oj0OrRxhlWSj0HXvUQvEcbfSc9NOafF64DkpIlV82QcrB3KBFvcKMbfQgQ\n\
    BMTFwMbkh4b6ilCgvuqlmB1PU4/xbW5YTpsoAd2H8R31vgOm8C0y2ag=\n\
    -----END PRIVATE KEY-----\n";
    const P384_PUBLIC: &str = "\
    -----BEGIN PUBLIC KEY-----\n\
    MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEnwGyI9GGTsDgsDfKI9Dq0cYZVko9B171\n\
    ELxHG30nPTTmnxeuA5KSJVfNkHKwdygRb3CjG30IEATExcDG5IeG+opQoL7qpZgd\n\
    T1OP8W1uWE6bKAHdh/Ed9b4DpvAtMtmo\n\
    -----END PUBLIC KEY-----\n";
    const P521_PUBLIC: &str = "\
    -----BEGIN PUBLIC KEY-----\n\
    MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQAaCZWpCwoCqOE6mfScs4MFpJlJwG8\n\
    yi1OmoEJTsEQv11xS2Dp1gV4vBXlNwX3bpCNxMtTDSfVP3TE+VOfIT6QJuIBYJvq\n\
    S8k7IHpoeUHDsmM5pe607Oc4NskeEK3k3fdlX6D7wDHJ59WIk35898B8FNgbQbIT\n\
    C6jlM1KLLSAF54q1xe8=\n\
    -----END PUBLIC KEY-----\n";
    const ED25519_PRIVATE: &str = "\
    -----BEGIN PRIVATE KEY-----\n\
    MC4CAQAwBQYDK2VwBCIEIDyq+GTzwKwIllV35f/R2ieI2jKRCChKqffZ6bmsL/l4\n\
    -----END PRIVATE KEY-----\n";
    const ED25519_PUBLIC: &str = "\
    -----BEGIN PUBLIC KEY-----\n\
    MCowBQYDK2VwAyEAd+NiCuI7j25TebVeMZBl3XFkEonheGqsyaC/1GXV+JQ=\n\
    -----END PUBLIC KEY-----\n";
    const ED448_PUBLIC: &str = "\
    -----BEGIN PUBLIC KEY-----\n\
    MEMwBQYDK2VxAzoAexrjbOunZDcvQNTdAUVuRrLLgB346rkc6btWxcOeWqnu4p3p\n\
    cpxhFmuiyG5NKDSd699Ja9wFZ4yA\n\
    -----END PUBLIC KEY-----\n";
    const P256_OTHER_PUBLIC: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAEg35Zl/GsmtgYKRTRqKrpgy0neA\n\
4Sm6NwIdqC10twAnzwBaTC+FP+0EtbDMq4HQFSXotMuxrZaqrVPvLLYq7Q==\n\
-----END PUBLIC KEY-----\n";
    const ED25519_OTHER_PUBLIC: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MCowBQYDK2VwAyEAlMUVm1R7jyFr+8ZNz7SW+QgRw/5LDVE6RMS8whYVbiI=\n\
-----END PUBLIC KEY-----\n";

    /// Signed by `openssl dgst -sha256 -sign` with a 1024-bit key (RSA1024_PUBLIC), iss
    /// `rsa1024-key`.
    const RS256_1024_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJyc2ExMDI0LWtleSJ9.JXPZx-fYMTim3z-sKu0pehjHHCrcw_DFk-IOF8h4sWOHgREu2sMZrBRfvJrYyiGRpQcgGxqjPsYP7k5GscJKeezQzCaOxtxONCtUFs4pVXaCDx4lFkc7wfQ42VSmyi2TmQxCbAp_WEmCyJNLvFyRM5CnKG6IL3xuPV0j8RDvJho";
    /// Signed by `openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt
    /// rsa_pss_saltlen:digest` with RSA_PRIVATE, iss `ps-key`.
    const PS256_OPENSSL_TOKEN: &str = "eyJhbGciOiJQUzI1NiJ9.eyJpc3MiOiJwcy1rZXkifQ.Xwb88x3QeNl76tEa1PD40RrbMzJ0tUOxvfbVF1lMKLEPLBXZjyI0w-lF_DEfwdab-gM1r_T1KCJSOm67Dmf8twZncRa6s7mhi1_LwwXOASVO7Zs_NFX8LPlJ1s0v2q3W5-x1ksfGRy-m4WtfHba90n52I0oT1ssZBvjsn3X0eBCB84eNGCmUD3_uByqrbSxuad3vg-4ydFic8MioeGkcxKa5fReBksXcmWzP-7oZVcQo7A1Ls68itkCA2lrJzwnLXyyS20DG7WgU_QzTw4h0RrZVJZ26ghq_qkiYW6c90NLfTIsiIiPq4UMIJkBWfx1xES0MX8-3a0cfCeJC9Cuc9g";

    fn der(pem: &str) -> Vec<u8> {
        pem_decode(pem).expect("test PEM").1
    }

    fn token_with(header: &str, claims: &str, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
        let input =
            format!("{}.{}", b64url_encode(header.as_bytes()), b64url_encode(claims.as_bytes()));
        let signature = sign(input.as_bytes());
        format!("{input}.{}", b64url_encode(&signature))
    }

    fn sign_with(alg: Algorithm, private_pem: &str, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        let der = der(private_pem);
        let rsa: Option<&'static dyn signature::RsaEncoding> = match alg {
            Algorithm::Rs256 => Some(&signature::RSA_PKCS1_SHA256),
            Algorithm::Rs384 => Some(&signature::RSA_PKCS1_SHA384),
            Algorithm::Rs512 => Some(&signature::RSA_PKCS1_SHA512),
            Algorithm::Ps256 => Some(&signature::RSA_PSS_SHA256),
            Algorithm::Ps384 => Some(&signature::RSA_PSS_SHA384),
            Algorithm::Ps512 => Some(&signature::RSA_PSS_SHA512),
            _ => None,
        };
        if let Some(encoding) = rsa {
            let pair = RsaKeyPair::from_pkcs8(&der).expect("RSA key");
            let mut out = vec![0; pair.public().modulus_len()];
            pair.sign(encoding, &rng, message, &mut out).expect("RSA sign");
            return out;
        }
        let ecdsa = match alg {
            Algorithm::Es256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            Algorithm::Es384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            Algorithm::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).expect("Ed25519 key");
                return pair.sign(message).as_ref().to_vec();
            }
            other => panic!("no signer for {other}"),
        };
        let pair = EcdsaKeyPair::from_pkcs8(ecdsa, &der, &rng).expect("EC key");
        pair.sign(&rng, message).expect("EC sign").as_ref().to_vec()
    }

    fn credential(
        key: &str,
        alg: Option<&str>,
        secret: Option<&str>,
        public: Option<&str>,
    ) -> JwtSecret {
        JwtSecret::from_row(&json!({
            "id": format!("id-{key}"),
            "key": key,
            "algorithm": alg,
            "secret": secret,
            "rsa_public_key": public,
            "consumer": { "id": format!("consumer-{key}") },
        }))
        .expect("credential row")
    }

    /// Runs the whole flow with the token in `Authorization: Bearer`; the credential key on
    /// success.
    fn run(token: &str, conf: &JwtConfig, secrets: &[JwtSecret]) -> Result<String, JwtFailure> {
        run_at(token, conf, secrets, NOW)
    }

    fn run_at(
        token: &str,
        conf: &JwtConfig,
        secrets: &[JwtSecret],
        now: f64,
    ) -> Result<String, JwtFailure> {
        let auth = format!("Bearer {token}");
        let headers = [("Authorization", auth.as_str())];
        let source = RequestParts { query: &[], headers: &headers };
        authenticate_request(&source, conf, now, |key| secrets.iter().find(|s| s.key == key))
            .map(|ok| ok.secret.key.clone())
    }

    fn failure_message(result: Result<String, JwtFailure>) -> String {
        let failure = result.expect_err("a failure");
        failure.message().map(str::to_owned).unwrap_or_else(|| failure.body.to_string())
    }

    fn hs(claims: &str, secret: &str) -> String {
        sign_hs(Algorithm::Hs256, secret.as_bytes(), r#"{"typ":"JWT","alg":"HS256"}"#, claims)
            .expect("HS token")
    }

    fn hs_credential(key: &str, secret: &str) -> JwtSecret {
        credential(key, None, Some(secret), None)
    }

    const ASYMMETRIC: [(Algorithm, &str, &str, &str); 9] = [
        (Algorithm::Rs256, RSA_PRIVATE, RSA_PUBLIC, RSA2_PUBLIC),
        (Algorithm::Rs384, RSA_PRIVATE, RSA_PUBLIC, RSA2_PUBLIC),
        (Algorithm::Rs512, RSA_PRIVATE, RSA_PUBLIC, RSA2_PUBLIC),
        (Algorithm::Ps256, RSA_PRIVATE, RSA_PUBLIC, RSA2_PUBLIC),
        (Algorithm::Ps384, RSA_PRIVATE, RSA_PUBLIC, RSA2_PUBLIC),
        (Algorithm::Ps512, RSA_PRIVATE, RSA_PUBLIC, RSA2_PUBLIC),
        (Algorithm::Es256, P256_PRIVATE, P256_PUBLIC, P256_OTHER_PUBLIC),
        (Algorithm::Es384, P384_PRIVATE, P384_PUBLIC, P256_PUBLIC),
        (Algorithm::EdDsa, ED25519_PRIVATE, ED25519_PUBLIC, ED25519_OTHER_PUBLIC),
    ];

    #[test]
    fn every_supported_asymmetric_algorithm_verifies_and_rejects_a_wrong_key() {
        let conf = JwtConfig::default();
        for (alg, private, public, other) in ASYMMETRIC {
            let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
            let token = token_with(&header, r#"{"iss":"k"}"#, |m| sign_with(alg, private, m));
            let good = credential("k", Some(alg.as_str()), None, Some(public));
            assert_eq!(good.key_problem(), None, "{alg}");
            assert_eq!(run(&token, &conf, &[good]).as_deref(), Ok("k"), "{alg}");

            let wrong = credential("k", Some(alg.as_str()), None, Some(other));
            assert_eq!(failure_message(run(&token, &conf, &[wrong])), "Invalid signature", "{alg}");

            // Same signature over other claims.
            let sig = token.rsplit('.').next().unwrap_or_default();
            let forged = format!(
                "{}.{}.{sig}",
                b64url_encode(header.as_bytes()),
                b64url_encode(br#"{"iss":"k","admin":true}"#)
            );
            let good = credential("k", Some(alg.as_str()), None, Some(public));
            assert_eq!(failure_message(run(&forged, &conf, &[good])), "Invalid signature", "{alg}");
        }
    }

    #[test]
    fn every_hmac_algorithm_verifies_and_rejects_a_wrong_secret() {
        let conf = JwtConfig::default();
        for alg in [Algorithm::Hs256, Algorithm::Hs384, Algorithm::Hs512] {
            let header = format!(r#"{{"alg":"{alg}"}}"#);
            let token = sign_hs(alg, b"s3cr3t", &header, r#"{"iss":"k"}"#).expect("HS token");
            let good = credential("k", Some(alg.as_str()), Some("s3cr3t"), None);
            assert_eq!(run(&token, &conf, &[good]).as_deref(), Ok("k"), "{alg}");
            let wrong = credential("k", Some(alg.as_str()), Some("other"), None);
            assert_eq!(failure_message(run(&token, &conf, &[wrong])), "Invalid signature", "{alg}");
        }
        assert_eq!(sign_hs(Algorithm::Rs256, b"x", "{}", "{}"), None);
    }

    #[test]
    fn tokens_signed_by_openssl_verify() {
        let conf = JwtConfig::default();
        let rs = credential("rsa1024-key", Some("RS256"), None, Some(RSA1024_PUBLIC));
        assert_eq!(run(RS256_1024_TOKEN, &conf, &[rs]).as_deref(), Ok("rsa1024-key"));
        let ps = credential("ps-key", Some("PS256"), None, Some(RSA_PUBLIC));
        assert_eq!(run(PS256_OPENSSL_TOKEN, &conf, &[ps]).as_deref(), Ok("ps-key"));
    }

    #[test]
    fn pkcs1_rsa_public_key_pem_is_accepted() {
        let token = token_with(r#"{"alg":"RS256"}"#, r#"{"iss":"k"}"#, |m| {
            sign_with(Algorithm::Rs256, RSA_PRIVATE, m)
        });
        let cred = credential("k", Some("RS256"), None, Some(RSA_PUBLIC_PKCS1));
        assert_eq!(run(&token, &JwtConfig::default(), &[cred]).as_deref(), Ok("k"));
    }

    #[test]
    fn algorithm_must_match_the_credential() {
        let conf = JwtConfig::default();
        let token =
            sign_hs(Algorithm::Hs256, b"s", r#"{"alg":"HS256"}"#, r#"{"iss":"k"}"#).expect("token");
        let hs512 = credential("k", Some("HS512"), Some("s"), None);
        assert_eq!(failure_message(run(&token, &conf, &[hs512])), "Invalid algorithm");

        // A credential without algorithm is HS256: an RS256 token does not match it.
        let rs = token_with(r#"{"alg":"RS256"}"#, r#"{"iss":"k"}"#, |m| {
            sign_with(Algorithm::Rs256, RSA_PRIVATE, m)
        });
        let failure = run(&rs, &conf, &[hs_credential("k", "s")]).expect_err("mismatch");
        assert_eq!(failure.message(), Some("Invalid algorithm"));
        assert!(failure.invalid_token);
        assert_eq!(
            failure.www_authenticate(None).as_deref(),
            Some(r#"Bearer error="invalid_token""#)
        );
    }

    #[test]
    fn unknown_and_none_algorithms_are_bad_tokens() {
        let conf = JwtConfig::default();
        let secrets = [hs_credential("k", "s")];
        for header in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS1"}"#,
            r#"{"alg":"hs256"}"#,
            r#"{"typ":"JWT"}"#,
            r#"{"alg":256}"#,
            "[]",
            r#""HS256""#,
            "1",
            "null",
        ] {
            let token = format!(
                "{}.{}.",
                b64url_encode(header.as_bytes()),
                b64url_encode(br#"{"iss":"k"}"#)
            );
            assert_eq!(
                failure_message(run(&token, &conf, &secrets)),
                "Bad token; invalid alg",
                "{header}"
            );
        }
    }

    #[test]
    fn malformed_tokens_get_kongs_parser_errors() {
        let header = b64url_encode(br#"{"alg":"HS256"}"#);
        let claims = b64url_encode(br#"{"iss":"k"}"#);
        let bad_alg = b64url_encode(br#"{"alg":"none"}"#);
        let not_json = b64url_encode(b"not json");
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "invalid JSON"),
            ("abc".to_owned(), "invalid JSON"),
            (format!("{header}.{claims}"), "invalid JSON"),
            (header.clone(), "invalid JSON"),
            (format!("!!!.{claims}.sig"), "invalid JSON"),
            (format!("{header}.{not_json}.sig"), "invalid JSON"),
            (format!("{header}.{claims}a.sig"), "invalid JSON"),
            (format!("{header}..sig"), "invalid JSON"),
            (format!("{header}.{claims}.***"), "invalid signature"),
            (format!("{header}.{claims}.abc.def"), "invalid signature"),
            (format!("{header}.{claims}.A"), "invalid signature"),
            // Order: JSON first, then alg, then the signature.
            (format!("{bad_alg}.{claims}.***"), "invalid alg"),
            (format!("{bad_alg}.{not_json}.***"), "invalid JSON"),
            ("x".repeat(MAX_TOKEN_LEN + 1), "token too large"),
        ];
        for (token, err) in cases {
            assert_eq!(decode(&token).map(|_| ()), Err(err.to_owned()), "{token:.80}");
        }
        let conf = JwtConfig::default();
        let failure = run(&format!("{header}.{claims}.***"), &conf, &[]).expect_err("bad");
        assert_eq!(failure.message(), Some("Bad token; invalid signature"));
        assert!(failure.invalid_token);
    }

    #[test]
    fn base64_is_decoded_like_nginx() {
        assert_eq!(ngx_b64url_decode("c2VjcmV0"), Some(b"secret".to_vec()));
        assert_eq!(ngx_b64url_decode("c2VjcmV0=="), Some(b"secret".to_vec()));
        assert_eq!(ngx_b64url_decode("YQ"), Some(b"a".to_vec()));
        assert_eq!(ngx_b64url_decode("YR"), Some(b"a".to_vec())); // unused bits ignored
        assert_eq!(ngx_b64url_decode("YQ=!garbage"), Some(b"a".to_vec())); // all after '=' ignored
        assert_eq!(ngx_b64url_decode("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(ngx_b64url_decode("+/8"), None); // standard alphabet refused
        assert_eq!(ngx_b64url_decode("Y"), None);
        assert_eq!(ngx_b64url_decode(""), Some(Vec::new()));

        // Padded segments and trailing bytes after '=' are accepted in tokens too.
        let token = hs(r#"{"iss":"k"}"#, "s");
        let mut parts = token.split('.');
        let (h, c, s) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let padded = format!("{h}=.{c}=!junk.{s}");
        let jwt = decode(&padded).expect("decodes");
        assert_eq!(jwt.claims.get("iss"), Some(&json!("k")));
        // The signed input is the segments as received: this one no longer verifies.
        assert_eq!(
            failure_message(run(&padded, &JwtConfig::default(), &[hs_credential("k", "s")])),
            "Invalid signature"
        );
    }

    #[test]
    fn empty_signature_decodes_and_fails_verification() {
        let token = format!(
            "{}.{}.",
            b64url_encode(br#"{"alg":"HS256"}"#),
            b64url_encode(br#"{"iss":"k"}"#)
        );
        assert!(decode(&token).is_ok());
        assert_eq!(
            failure_message(run(&token, &JwtConfig::default(), &[hs_credential("k", "s")])),
            "Invalid signature"
        );
    }

    #[test]
    fn key_claim_rules() {
        let conf = JwtConfig::default();
        let secrets = [hs_credential("k", "s")];
        assert_eq!(
            failure_message(run(&hs(r#"{"sub":"x"}"#, "s"), &conf, &secrets)),
            "No mandatory 'iss' in claims"
        );
        assert_eq!(
            failure_message(run(&hs(r#"{"iss":""}"#, "s"), &conf, &secrets)),
            "Invalid 'iss' in claims"
        );
        for claim in ["123", "true", "null", "{}", r#"["k"]"#] {
            let claims = format!(r#"{{"iss":{claim}}}"#);
            assert_eq!(
                failure_message(run(&hs(&claims, "s"), &conf, &secrets)),
                "Invalid 'iss' in claims",
                "{claim}"
            );
        }
        assert_eq!(
            failure_message(run(&hs(r#"{"iss":"nope"}"#, "s"), &conf, &secrets)),
            "No credentials found for given 'iss'"
        );
        // Claims that are JSON but not an object hold no claim.
        assert_eq!(
            failure_message(run(&hs(r#"["k"]"#, "s"), &conf, &secrets)),
            "No mandatory 'iss' in claims"
        );

        // The JOSE header is the fallback, also when the claim is `false` (Lua's `or`).
        let conf = JwtConfig { key_claim_name: "kid".to_owned(), ..JwtConfig::default() };
        let by_header =
            sign_hs(Algorithm::Hs256, b"s", r#"{"alg":"HS256","kid":"k"}"#, r#"{"sub":"x"}"#)
                .expect("t");
        assert_eq!(run(&by_header, &conf, &secrets).as_deref(), Ok("k"));
        let false_claim =
            sign_hs(Algorithm::Hs256, b"s", r#"{"alg":"HS256","kid":"k"}"#, r#"{"kid":false}"#)
                .expect("t");
        assert_eq!(run(&false_claim, &conf, &secrets).as_deref(), Ok("k"));
        let claim_wins =
            sign_hs(Algorithm::Hs256, b"s", r#"{"alg":"HS256","kid":"nope"}"#, r#"{"kid":"k"}"#)
                .expect("t");
        assert_eq!(run(&claim_wins, &conf, &secrets).as_deref(), Ok("k"));
        assert_eq!(
            failure_message(run(&hs(r#"{"iss":"k"}"#, "s"), &conf, &secrets)),
            "No mandatory 'kid' in claims"
        );
    }

    #[test]
    fn base64_secrets() {
        let conf = JwtConfig { secret_is_base64: true, ..JwtConfig::default() };
        let token = hs(r#"{"iss":"k"}"#, "secret");
        assert_eq!(run(&token, &conf, &[hs_credential("k", "c2VjcmV0")]).as_deref(), Ok("k"));
        // The stored secret is not decoded without the flag.
        assert_eq!(
            failure_message(run(&token, &JwtConfig::default(), &[hs_credential("k", "c2VjcmV0")])),
            "Invalid signature"
        );
        // Kong decodes with the URL alphabet: '+' and '/' make the secret unusable.
        assert_eq!(
            failure_message(run(&token, &conf, &[hs_credential("k", "+/8=")])),
            "Invalid key/secret"
        );
        let binary =
            sign_hs(Algorithm::Hs256, &[0xfb, 0xff], r#"{"alg":"HS256"}"#, r#"{"iss":"k"}"#)
                .expect("t");
        assert_eq!(run(&binary, &conf, &[hs_credential("k", "-_8")]).as_deref(), Ok("k"));
    }

    #[test]
    fn missing_unloadable_and_unsupported_public_keys() {
        let conf = JwtConfig::default();
        let rs = token_with(r#"{"alg":"RS256"}"#, r#"{"iss":"k"}"#, |m| {
            sign_with(Algorithm::Rs256, RSA_PRIVATE, m)
        });

        let missing = credential("k", Some("RS256"), None, None);
        assert!(missing.key_problem().is_some());
        assert_eq!(failure_message(run(&rs, &conf, &[missing])), "Invalid key/secret");

        let garbage = credential("k", Some("RS256"), None, Some("not a pem"));
        assert!(garbage.key_problem().is_some());
        let failure = run(&rs, &conf, &[garbage]).expect_err("500");
        assert!(failure.is_internal());
        assert_eq!(failure.status, 500);
        assert_eq!(failure.www_authenticate(Some("r")), None);

        let private = credential("k", Some("RS256"), None, Some(RSA_PRIVATE));
        assert!(private.key_problem().is_some_and(|p| p.contains("PRIVATE KEY")));

        let wrong_type = credential("k", Some("RS256"), None, Some(P256_PUBLIC));
        assert!(wrong_type.key_problem().is_some());
        assert_eq!(failure_message(run(&rs, &conf, &[wrong_type])), "Invalid signature");

        let es512_token = token_with(r#"{"alg":"ES512"}"#, r#"{"iss":"k"}"#, |_| vec![0; 132]);
        let es512 = credential("k", Some("ES512"), None, Some(P521_PUBLIC));
        assert!(es512.key_problem().is_some_and(|p| p.contains("ES512")));
        assert_eq!(failure_message(run(&es512_token, &conf, &[es512])), "Invalid algorithm");

        let ed448_token = token_with(r#"{"alg":"EdDSA"}"#, r#"{"iss":"k"}"#, |_| vec![0; 114]);
        let ed448 = credential("k", Some("EdDSA"), None, Some(ED448_PUBLIC));
        assert!(ed448.key_problem().is_some_and(|p| p.contains("Ed448")));
        assert_eq!(failure_message(run(&ed448_token, &conf, &[ed448])), "Invalid algorithm");

        // A wrong-length ECDSA signature is a plain invalid signature (Kong raises a 500).
        let short = token_with(r#"{"alg":"ES256"}"#, r#"{"iss":"k"}"#, |_| vec![1; 10]);
        let es256 = credential("k", Some("ES256"), None, Some(P256_PUBLIC));
        assert_eq!(failure_message(run(&short, &conf, &[es256])), "Invalid signature");
    }

    #[test]
    fn registered_claims() {
        let conf = JwtConfig {
            claims_to_verify: Some(vec!["exp".into(), "nbf".into()]),
            ..JwtConfig::default()
        };
        let secrets = [hs_credential("k", "s")];
        let body = |claims: &str| run(&hs(claims, "s"), &conf, &secrets).expect_err("claims").body;
        assert_eq!(
            body(r#"{"iss":"k"}"#),
            json!({"exp":"must be a number","nbf":"must be a number"})
        );
        assert_eq!(
            body(r#"{"iss":"k","exp":"bar","nbf":"foo"}"#),
            json!({"exp":"must be a number","nbf":"must be a number"})
        );
        let expired = format!(r#"{{"iss":"k","exp":{},"nbf":{}}}"#, NOW - 10.0, NOW);
        assert_eq!(body(&expired).to_string(), r#"{"exp":"token expired"}"#);
        let at_now = format!(r#"{{"iss":"k","exp":{},"nbf":0}}"#, NOW);
        assert_eq!(body(&at_now), json!({"exp":"token expired"}));
        let early = format!(r#"{{"iss":"k","exp":{},"nbf":{}}}"#, NOW + 60.0, NOW + 10.0);
        assert_eq!(body(&early).to_string(), r#"{"nbf":"token not valid yet"}"#);
        let valid = format!(r#"{{"iss":"k","exp":{},"nbf":{}}}"#, NOW + 60.0, NOW);
        assert_eq!(run(&hs(&valid, "s"), &conf, &secrets).as_deref(), Ok("k"));

        // Whole seconds, as ngx.time(): exp NOW+0.5 is still valid at NOW+0.7.
        let fraction = format!(r#"{{"iss":"k","exp":{},"nbf":0}}"#, NOW + 0.5);
        assert_eq!(run_at(&hs(&fraction, "s"), &conf, &secrets, NOW + 0.7).as_deref(), Ok("k"));

        // Claims are not checked unless configured; a failure has the invalid_token challenge.
        assert_eq!(run(&hs(&expired, "s"), &JwtConfig::default(), &secrets).as_deref(), Ok("k"));
        let failure = run(&hs(&expired, "s"), &conf, &secrets).expect_err("expired");
        assert_eq!(failure.message(), None);
        assert_eq!(
            failure.www_authenticate(Some("api")).as_deref(),
            Some(r#"Bearer realm="api" error="invalid_token""#)
        );

        // Kong's add_error: a repeated name collects a list.
        let twice = JwtConfig {
            claims_to_verify: Some(vec!["exp".into(), "exp".into()]),
            ..JwtConfig::default()
        };
        let failure = run(&hs(&expired, "s"), &twice, &secrets).expect_err("expired");
        assert_eq!(failure.body, json!({"exp":["token expired","token expired"]}));
    }

    #[test]
    fn maximum_expiration() {
        let conf = JwtConfig {
            claims_to_verify: Some(vec!["exp".into()]),
            maximum_expiration: 300.0,
            ..JwtConfig::default()
        };
        let secrets = [hs_credential("k", "s")];
        let claims = |exp: f64| format!(r#"{{"iss":"k","exp":{exp}}}"#);
        let failure = run(&hs(&claims(NOW + 3600.0), "s"), &conf, &secrets).expect_err("too far");
        assert_eq!(failure.body.to_string(), r#"{"exp":"exceeds maximum allowed expiration"}"#);
        assert!(failure.invalid_token);
        assert_eq!(run(&hs(&claims(NOW + 270.0), "s"), &conf, &secrets).as_deref(), Ok("k"));
        assert_eq!(run(&hs(&claims(NOW + 300.0), "s"), &conf, &secrets).as_deref(), Ok("k"));
        // The claims check comes first.
        let failure = run(&hs(&claims(NOW - 1.0), "s"), &conf, &secrets).expect_err("expired");
        assert_eq!(failure.body, json!({"exp":"token expired"}));
        // Without exp (only possible when the schema check is bypassed) the limit is exceeded.
        let no_exp = JwtConfig { claims_to_verify: None, ..conf };
        let failure = run(&hs(r#"{"iss":"k"}"#, "s"), &no_exp, &secrets).expect_err("no exp");
        assert_eq!(failure.body, json!({"exp":"exceeds maximum allowed expiration"}));
    }

    fn find(
        query: &[(&str, Option<&str>)],
        headers: &[(&str, &str)],
        conf: &JwtConfig,
    ) -> Result<Option<String>, JwtFailure> {
        find_token(&RequestParts { query, headers }, conf)
    }

    #[test]
    fn token_retrieval_places() {
        let conf = JwtConfig::default();
        assert_eq!(find(&[("jwt", Some("t1"))], &[], &conf), Ok(Some("t1".into())));
        assert_eq!(find(&[("JWT", Some("t1"))], &[], &conf), Ok(None));
        assert_eq!(find(&[], &[("authorization", "Bearer t2")], &conf), Ok(Some("t2".into())));
        assert_eq!(find(&[], &[("AUTHORIZATION", "bearer t2")], &conf), Ok(Some("t2".into())));
        // Cookies are read only when configured.
        assert_eq!(find(&[], &[("cookie", "jwt=t3")], &conf), Ok(None));

        let conf = JwtConfig {
            uri_param_names: vec!["token".into()],
            cookie_names: vec!["crumble".into(), "silly".into()],
            header_names: vec!["custom_auth".into()],
            ..JwtConfig::default()
        };
        assert_eq!(find(&[("token", Some("t1"))], &[], &conf), Ok(Some("t1".into())));
        assert_eq!(find(&[("jwt", Some("t1"))], &[], &conf), Ok(None));
        assert_eq!(find(&[], &[("Cookie", "silly=t3")], &conf), Ok(Some("t3".into())));
        assert_eq!(
            find(&[], &[("Cookie", "a=1"), ("Cookie", "b=2; CRUMBLE=t4")], &conf),
            Ok(Some("t4".into()))
        );
        assert_eq!(find(&[], &[("Custom-Auth", "Bearer t5")], &conf), Ok(Some("t5".into())));
        assert_eq!(find(&[], &[("Authorization", "Bearer t5")], &conf), Ok(None));
    }

    #[test]
    fn token_retrieval_sets_and_duplicates() {
        let conf = JwtConfig::default();
        // Equal tokens count once; empty values are ignored.
        assert_eq!(
            find(
                &[("jwt", Some("t")), ("jwt", Some("t")), ("jwt", Some(""))],
                &[("Authorization", "Bearer t")],
                &conf
            ),
            Ok(Some("t".into()))
        );
        assert_eq!(find(&[("jwt", Some(""))], &[], &conf), Ok(None));
        let multiple =
            find(&[("jwt", Some("a"))], &[("Authorization", "Bearer invalid.jwt.token")], &conf)
                .expect_err("two");
        assert_eq!(multiple.message(), Some("Multiple tokens provided"));
        assert_eq!(
            multiple.www_authenticate(None).as_deref(),
            Some(r#"Bearer error="invalid_token""#)
        );
        assert_eq!(
            find(&[("jwt", Some("a")), ("jwt", Some("b"))], &[], &conf).expect_err("two").message(),
            Some("Multiple tokens provided")
        );
        // A bare `?jwt` is Lua's `true`.
        assert_eq!(
            find(&[("jwt", None)], &[], &conf).expect_err("bare").message(),
            Some("Unrecognizable token")
        );
        assert_eq!(
            find(&[("jwt", None), ("jwt", Some("a"))], &[], &conf).expect_err("two").message(),
            Some("Multiple tokens provided")
        );
        // Only the first value of a header counts.
        assert_eq!(
            find(&[], &[("Authorization", "Bearer a"), ("Authorization", "Bearer b")], &conf),
            Ok(Some("a".into()))
        );
    }

    #[test]
    fn bearer_pattern_is_kongs_unanchored_regex() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("  Bearer \t abc def "), Some("abc def "));
        assert_eq!(bearer_token("Basic Zm9v, Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("xBearer abc"), Some("abc"));
        assert_eq!(bearer_token("Bearerabc Bearer def"), Some("def"));
        assert_eq!(bearer_token("Bearer abc\ndef"), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token(""), None);
        // `\s+` backtracks so that `.+` matches one byte.
        assert_eq!(bearer_token("Bearer   "), Some(" "));
        assert_eq!(bearer_token("Bearer \t\n"), Some("\t"));
        assert_eq!(bearer_token("Bearer \n\n"), None);
        assert_eq!(bearer_token("Bearer \n\nBearer x"), Some("Bearer x"));
        assert_eq!(bearer_token("Bearer é"), Some("é"));
    }

    #[test]
    fn cookies_are_parsed_like_nginx() {
        let c = |lines: &[&str], name: &str| nginx_cookie(lines, name).map(str::to_owned);
        assert_eq!(c(&["a=1; jwt=tok; b=2"], "jwt"), Some("tok".into()));
        assert_eq!(c(&["JWT=tok"], "jwt"), Some("tok".into()));
        assert_eq!(c(&["jwtx=1; jwt = tok ;b"], "jwt"), Some("tok ".into()));
        assert_eq!(c(&["a=1, jwt=tok"], "jwt"), Some("tok".into()));
        assert_eq!(c(&["a=jwt=x; jwt=tok"], "jwt"), Some("tok".into()));
        assert_eq!(c(&["jwt"], "jwt"), None);
        // The byte after a name without `=` is consumed, whatever it is.
        assert_eq!(c(&["jwt;jwt=tok"], "jwt"), None);
        assert_eq!(c(&["jwt;x=1; jwt=tok"], "jwt"), Some("tok".into()));
        assert_eq!(c(&["jwtx; jwt=tok"], "jwt"), Some("tok".into()));
        assert_eq!(c(&["jw"], "jwt"), None);
        assert_eq!(c(&["jwt="], "jwt"), Some(String::new()));
        assert_eq!(c(&["x=1", "jwt=second"], "jwt"), Some("second".into()));
        assert_eq!(c(&["jwt=first", "jwt=second"], "jwt"), Some("first".into()));
        // An empty cookie value is ignored by the plugin.
        let conf = JwtConfig { cookie_names: vec!["jwt".into()], ..JwtConfig::default() };
        assert_eq!(find(&[], &[("Cookie", "jwt=")], &conf), Ok(None));
    }

    #[test]
    fn no_token_is_unauthorized_with_the_plain_challenge() {
        let conf = JwtConfig::default();
        let source = RequestParts::default();
        let failure = authenticate_request(&source, &conf, NOW, |_| None).expect_err("no token");
        assert_eq!(failure.status, 401);
        assert_eq!(failure.body.to_string(), r#"{"message":"Unauthorized"}"#);
        assert_eq!(failure.www_authenticate(None).as_deref(), Some("Bearer"));
        assert_eq!(
            failure.www_authenticate(Some("test-jwt")).as_deref(),
            Some(r#"Bearer realm="test-jwt""#)
        );
    }

    #[test]
    fn challenges() {
        assert_eq!(www_authenticate(None, false), "Bearer");
        assert_eq!(www_authenticate(None, true), r#"Bearer error="invalid_token""#);
        assert_eq!(www_authenticate(Some("r"), false), r#"Bearer realm="r""#);
        assert_eq!(www_authenticate(Some("r"), true), r#"Bearer realm="r" error="invalid_token""#);
        let gone = JwtFailure::consumer_not_found("iss", "k");
        assert_eq!(gone.message(), Some("Could not find consumer for 'iss=k'"));
        assert_eq!(gone.status, 401);
        assert_eq!(gone.www_authenticate(None), None);
        assert!(!gone.is_internal());
    }

    #[test]
    fn preflight() {
        let conf = JwtConfig { run_on_preflight: false, ..JwtConfig::default() };
        assert!(conf.skip_preflight("OPTIONS"));
        assert!(!conf.skip_preflight("GET"));
        assert!(!JwtConfig::default().skip_preflight("OPTIONS"));
    }

    #[test]
    fn config_defaults_and_nulls() {
        let defaults: JwtConfig = serde_json::from_value(json!({})).expect("config");
        assert_eq!(defaults, JwtConfig::default());
        let nulls: JwtConfig = serde_json::from_value(json!({
            "uri_param_names": null, "cookie_names": null, "header_names": null,
            "key_claim_name": null, "secret_is_base64": null, "claims_to_verify": null,
            "anonymous": null, "run_on_preflight": null, "maximum_expiration": null, "realm": null
        }))
        .expect("config");
        assert_eq!(nulls, JwtConfig::default());
        let full: JwtConfig = serde_json::from_value(json!({
            "uri_param_names": ["token"], "cookie_names": ["c"], "header_names": ["x-jwt"],
            "key_claim_name": "kid", "secret_is_base64": true, "claims_to_verify": ["exp", "nbf"],
            "anonymous": "anon", "run_on_preflight": false, "maximum_expiration": 60, "realm": "r"
        }))
        .expect("config");
        assert_eq!(full.uri_param_names, ["token"]);
        assert_eq!(
            full.claims_to_verify.as_deref(),
            Some(&["exp".to_owned(), "nbf".to_owned()][..])
        );
        assert_eq!(full.maximum_expiration, 60.0);
        assert_eq!(full.realm.as_deref(), Some("r"));
        assert!(full.secret_is_base64 && !full.run_on_preflight);
    }

    #[test]
    fn credential_rows() {
        let row = json!({"id": "i", "key": "k", "secret": "topsecret", "consumer": {"id": "c"}});
        let cred = JwtSecret::from_row(&row).expect("row");
        assert_eq!(
            (cred.id.as_str(), cred.key.as_str(), cred.consumer_id.as_str()),
            ("i", "k", "c")
        );
        assert_eq!(cred.algorithm, Algorithm::Hs256);
        assert!(!format!("{cred:?}").contains("topsecret"));
        assert_eq!(cred.key_problem(), None);

        for bad in [
            json!("row"),
            json!({"secret": "s", "consumer": {"id": "c"}}),
            json!({"key": 1, "consumer": {"id": "c"}}),
            json!({"key": "k"}),
            json!({"key": "k", "algorithm": "none", "consumer": {"id": "c"}}),
            json!({"key": "k", "algorithm": "ES256", "rsa_public_key": 5, "consumer": {"id": "c"}}),
        ] {
            assert!(JwtSecret::from_row(&bad).is_err(), "{bad}");
        }
        let no_secret = JwtSecret::from_row(&json!({"key": "k", "consumer": "c"})).expect("row");
        assert!(no_secret.key_problem().is_some());
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.as_str()), Some(alg));
        }
    }

    #[test]
    fn authenticated_carries_the_token_and_the_credential() {
        let token = hs(r#"{"iss":"k"}"#, "s");
        let secrets = [hs_credential("k", "s")];
        let query = [("jwt", Some(token.as_str()))];
        let source = RequestParts { query: &query, headers: &[] };
        let ok = authenticate_request(&source, &JwtConfig::default(), NOW, |k| {
            secrets.iter().find(|s| s.key == k)
        })
        .expect("ok");
        assert_eq!(ok.jwt.token(), token);
        assert_eq!(ok.secret.consumer_id, "consumer-k");
        assert!(!format!("{:?}", ok.jwt).contains(&token));
    }

    /// Deterministic garbage and mutations of valid tokens: never a panic.
    #[test]
    fn garbage_never_panics() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"AZaz09-_+/=.{}\"[]:, \t\nBearerx\xc3\xa9";
        let conf = JwtConfig {
            claims_to_verify: Some(vec!["exp".into(), "nbf".into()]),
            maximum_expiration: 10.0,
            ..JwtConfig::default()
        };
        let secrets = [
            hs_credential("k", "s"),
            credential("r", Some("RS256"), None, Some(RSA_PUBLIC)),
            credential("e", Some("ES256"), None, Some(P256_PUBLIC)),
        ];
        let valid = [
            hs(r#"{"iss":"k","exp":1,"nbf":2}"#, "s"),
            token_with(r#"{"alg":"RS256"}"#, r#"{"iss":"r"}"#, |m| {
                sign_with(Algorithm::Rs256, RSA_PRIVATE, m)
            }),
            token_with(r#"{"alg":"ES256"}"#, r#"{"iss":"e"}"#, |m| {
                sign_with(Algorithm::Es256, P256_PRIVATE, m)
            }),
        ];
        for round in 0..3000 {
            let text: String = if round % 2 == 0 {
                let len = (next() % 120) as usize;
                (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                    .collect()
            } else {
                let mut bytes = valid[round % valid.len()].clone().into_bytes();
                for _ in 0..(next() % 4 + 1) {
                    let i = (next() % bytes.len() as u64) as usize;
                    bytes[i] = alphabet[(next() % 14) as usize];
                }
                String::from_utf8_lossy(&bytes).into_owned()
            };
            let _ = bearer_token(&text);
            let _ = nginx_cookie(&[&text], "jwt");
            let _ = ngx_b64url_decode(&text);
            if let Ok(jwt) = decode(&text) {
                let _ = authenticate(&jwt, &conf, NOW, |k| secrets.iter().find(|s| s.key == k));
            }
            let _ = run(&text, &conf, &secrets);
        }
    }
}
