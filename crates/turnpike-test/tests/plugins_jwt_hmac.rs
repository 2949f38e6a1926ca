//! The `jwt` and `hmac-auth` plugins end to end, through the real binary and the echo
//! upstream: where tokens are found, what the upstream is told about the consumer, every
//! refusal with Kong's status, body and `WWW-Authenticate`, and the credential endpoints
//! (`/consumers/{c}/jwt`, `/consumers/{c}/hmac-auth`).
//!
//! The expected values are Kong 3.9's: `kong/plugins/jwt/{handler,jwt_parser,daos}.lua`,
//! `kong/plugins/hmac-auth/access.lua` and the specs `spec/03-plugins/16-jwt/0{2,3}-*.lua`,
//! `spec/03-plugins/19-hmac-auth/03-access_spec.lua`. The jwt plugin answers with
//! `kong.response.exit(401, {message = …})` (plain JSON, no request id); hmac-auth with
//! `kong.response.error` (Kong's error template with the request id).
//!
//! Tokens and signatures are computed here with `ring`, independently of the gateway's code.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use turnpike_test::{
    create, expect, is_uuid, raw_exchange, s, settle, Client, Gateway, Resp, Upstream,
};

// ---- fixtures -------------------------------------------------------------------------------

/// A route `/<name>` on the service `svc`, with the plugin `plugin` configured by `config`.
async fn plugin_route(a: &Client, svc: &str, name: &str, plugin: &str, config: Value) {
    let route = json!({"name": name, "paths": [format!("/{name}")]});
    create(a, &format!("/services/{svc}/routes"), route, name).await;
    let body = json!({"name": plugin, "config": config});
    create(a, &format!("/routes/{name}/plugins"), body, name).await;
}

/// Seconds since the epoch.
fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs() as i64
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) for seconds since the epoch.
fn http_date(t: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[test]
fn http_date_is_rfc_7231() {
    assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
}

/// One request header as the upstream received it (`Null` when absent).
fn up<'a>(seen: &'a Value, name: &str) -> &'a Value {
    &seen["headers"][name]
}

/// Asserts a `kong.response.error` answer: the status, Kong's JSON error template with the
/// request id, its content type, and the `WWW-Authenticate` challenge (if any).
#[track_caller]
fn assert_error(res: &Resp, status: u16, message: &str, challenge: Option<&str>, case: &str) {
    assert_eq!(res.status, status, "{case}: status; body {}", res.text());
    let rid = res.header("x-kong-request-id").unwrap_or_default();
    assert_eq!(
        res.text(),
        format!("{{\n  \"message\":\"{message}\",\n  \"request_id\":\"{rid}\"\n}}"),
        "{case}: body"
    );
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("application/json; charset=utf-8"),
        "{case}: content type"
    );
    assert_eq!(res.header("www-authenticate").as_deref(), challenge, "{case}: challenge");
}

/// Asserts a jwt refusal: `kong.response.exit(401, body)` with the body JSON-encoded as is.
#[track_caller]
fn assert_jwt_refusal(res: &Resp, body: &str, challenge: &str, case: &str) {
    assert_eq!(res.status, 401, "{case}: status; body {}", res.text());
    assert_eq!(res.text(), body, "{case}: body");
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("application/json; charset=utf-8"),
        "{case}: content type"
    );
    assert_eq!(res.header("www-authenticate").as_deref(), Some(challenge), "{case}: challenge");
}

/// Asserts a proxied 200 and returns what the upstream saw.
#[track_caller]
fn proxied(res: &Resp, case: &str) -> Value {
    assert_eq!(res.status, 200, "{case}: status; body {}", res.text());
    res.json()
}

// ---- jwt ------------------------------------------------------------------------------------

/// A 2048-bit RSA key pair made for these tests with `openssl genpkey -algorithm RSA`
/// (PKCS#8) and `openssl pkey -pubout` (SPKI).
const RSA_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCySS/TsYk5c+Ys
nmHnwENlSC8dRnEk/u/zBP6jxwMTZ562Pegop32RuB0L0Gc6xIc1AHY77WkYI5LW
fNz4Z8lsqpE5t5UfWGxuTFKT7vm6P15jseJIvkH/8hmqQFk3LDMQM9+QeaLsk4Jk
nES4kRo84lWg82+wlmDnPmPJ/RrGcba4q+qCcxlDyEYauxFV4tUmB+qX4uv5IPQZ
xBj9XNyIp9RWgnsRrz5DHjFBKpa/TJlaluPpl6RzaLpbwT1zUmgiqhtGc+WATACg
NXWHEqrqF60taVK5jQJ5Q5+AwRfD6BK/5gjCYb8Fh8P3xHxU5+hlkXlMjZ1dGUYP
ZtW1MgGnAgMBAAECggEANF9zgUiB+zKkxy6vrBi6s6IE1SDAVBHgAw/QjeQEb0rd
QMPm0yqApLHlNnc+G/FnlpZQJUKUwNaSaBe+AerbLOTeTIo1cEPVdoFNMM/e5GuB
GuBCjQP292zzRSQqER8W0QesARD6X2zlvRB6z40wm/oRFXrtsH48cTHOtqN3nhuD
n4EDEDyVxmf4IeMDujhoU+egbQm8Bq47BOLrf2lrtMTO6UrKwyH4V8zIIaRz8Fpi
VnCHkRsNzH/doffbSkwzYfJsTArEA9n95sGGzbd50nvQwpOBz2Te78Udn0WOLZcV
ORk+Bf8w9HEuHIkZzY9pfhQZfpILQzTfBPLM1Q6wAQKBgQDm9gyWx2r5+tPEvaCI
ih0GJKjcAs0xHcyOWULz+O3GKdd4FPU6IBiTkqVs3nL0R3+qSsmPWvlkcnt4uN2d
/aDT3pqI/GIX9PyP5QSI2X8OezIaKQt9Asq7UlFf82yRewGrByHGizjM69cv6HF9
RdVAoIrk3hB6SZgwCMS4qpw6AQKBgQDFnTjMFNHlRNYZue4nLV+LgQa0hinEo1g0
WdLI+AdTqyI5Eey6S8mup645KDOLbSG8JgzdZDEDiImNJANOlVkaYXNTHvIMU29U
oyg74w4Bd33dgOEMMcADU8i9+lNxBTn7NpRmZPCUOeTh9ZdQPleMTdxMzaaMDiFe
cg0o54orpwKBgQCU8ag8tG3wuClJf2C/rRH6nDmpaMUbH7SDOF1NKQNuAB3MeveK
fJhc0v2LsAlCL7nNAF3r7SdX99xYhh+le6Lz/2J5ZQl9magmw/KgrmKZ3Cj7Zeza
uao0E2oXDsy9JS52NSs69x2ySYWEh8pol1hnTSFFZ1AJDNzwXTdAQAZwAQKBgQC8
Dj2BwQJp+1MAEnd3ou880+Gso8xVy9hhoWU9SQO39LDRvKQaOYtJgVsEG6TJt2YW
JeOyP+mA4kt8HFxlSS0NNNXJsTZI0pGs6sOcEhw++xa1VzNTJnkC8ZWkbPdBI+ck
kLEyrDZh6KJPAicn/tvTsjjGgiJPQBczSLgLSCSuGwKBgDE8vxPRkvqZ9uZq1jg/
TjhDf7Bq8pMb+MjzObCjv+zLhnpBWuvEkK4as7XdSIvvBxAEhSONgkv2V/kwwDt2
chX/EOrcT66HjunJF2ZOD24Zrb21V73itH0qE5MfNuRcQRlSQdxi3Kd4GNYe8G1A
oI+96soFdpjfhyPfvflGGqbN
-----END PRIVATE KEY-----
";

const RSA_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAskkv07GJOXPmLJ5h58BD
ZUgvHUZxJP7v8wT+o8cDE2eetj3oKKd9kbgdC9BnOsSHNQB2O+1pGCOS1nzc+GfJ
bKqRObeVH1hsbkxSk+75uj9eY7HiSL5B//IZqkBZNywzEDPfkHmi7JOCZJxEuJEa
POJVoPNvsJZg5z5jyf0axnG2uKvqgnMZQ8hGGrsRVeLVJgfql+Lr+SD0GcQY/Vzc
iKfUVoJ7Ea8+Qx4xQSqWv0yZWpbj6Zekc2i6W8E9c1JoIqobRnPlgEwAoDV1hxKq
6hetLWlSuY0CeUOfgMEXw+gSv+YIwmG/BYfD98R8VOfoZZF5TI2dXRlGD2bVtTIB
pwIDAQAB
-----END PUBLIC KEY-----
";

/// `header.claims.signature`, each part base64url without padding, as Kong's `encode_token`.
fn jwt(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn hmac_with(alg: ring::hmac::Algorithm, secret: &str, data: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(alg, secret.as_bytes());
    ring::hmac::sign(&key, data).as_ref().to_vec()
}

/// An HS256 token for `claims` signed with `secret`.
fn hs256(claims: &Value, secret: &str) -> String {
    let header = json!({"typ": "JWT", "alg": "HS256"});
    jwt(&header, claims, |d| hmac_with(ring::hmac::HMAC_SHA256, secret, d))
}

/// An RS256 token for `claims` signed with [`RSA_PRIVATE_KEY`].
fn rs256(claims: &Value) -> String {
    use rustls_pki_types::pem::PemObject as _;
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(RSA_PRIVATE_KEY.as_bytes())
        .expect("PKCS#8 PEM");
    let pair = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).expect("RSA key");
    let header = json!({"typ": "JWT", "alg": "RS256"});
    jwt(&header, claims, |d| {
        let mut sig = vec![0; pair.public().modulus_len()];
        let rng = ring::rand::SystemRandom::new();
        pair.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, d, &mut sig).expect("RSA signature");
        sig
    })
}

/// `Bearer <token>`.
fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A gateway with the echo upstream behind the service `jwt` and these routes, each with a
/// jwt plugin:
/// - `/hs`: the default configuration;
/// - `/crumbs`: `cookie_names` `crumble` and `silly`, realm `test-jwt`;
/// - `/exp`: `claims_to_verify` `exp`;
/// - `/maxexp`: `claims_to_verify` `exp`, `maximum_expiration` 300;
/// - `/preflight`: `run_on_preflight` false;
///
/// the consumer `bob` (custom id `bob-custom`) with the HS256 secret `bob-key`/`bob-secret`,
/// and the consumer `rosa` with the RS256 secret `rosa-key` ([`RSA_PUBLIC_KEY`]). Returns the
/// gateway, the upstream and `bob`.
async fn jwt_gateway() -> (Gateway, Upstream, Value) {
    let upstream = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    let a = gw.admin();
    create(&a, "/services", json!({"name": "jwt", "url": upstream.url("http")}), "svc").await;
    plugin_route(&a, "jwt", "hs", "jwt", json!({})).await;
    let crumbs = json!({"cookie_names": ["crumble", "silly"], "realm": "test-jwt"});
    plugin_route(&a, "jwt", "crumbs", "jwt", crumbs).await;
    plugin_route(&a, "jwt", "exp", "jwt", json!({"claims_to_verify": ["exp"]})).await;
    let max = json!({"claims_to_verify": ["exp"], "maximum_expiration": 300});
    plugin_route(&a, "jwt", "maxexp", "jwt", max).await;
    plugin_route(&a, "jwt", "preflight", "jwt", json!({"run_on_preflight": false})).await;
    let bob = json!({"username": "bob", "custom_id": "bob-custom"});
    let bob = create(&a, "/consumers", bob, "bob").await;
    let secret = json!({"key": "bob-key", "secret": "bob-secret"});
    create(&a, "/consumers/bob/jwt", secret, "bob's secret").await;
    create(&a, "/consumers", json!({"username": "rosa"}), "rosa").await;
    let rsa = json!({"key": "rosa-key", "algorithm": "RS256", "rsa_public_key": RSA_PUBLIC_KEY});
    create(&a, "/consumers/rosa/jwt", rsa, "rosa's secret").await;
    settle(&gw).await;
    (gw, upstream, bob)
}

/// 03-access_spec.lua "HS256": the token in `Authorization: Bearer`, in `?jwt=`, in a
/// configured cookie; the upstream is told the consumer and the credential (the secret's key).
#[tokio::test]
async fn jwt_token_in_header_query_or_cookie_authenticates() {
    let (gw, _up, bob) = jwt_gateway().await;
    let p = gw.proxy();
    let token = hs256(&json!({"iss": "bob-key", "name": "bob"}), "bob-secret");
    let auth = bearer(&token);
    let lower = format!("bearer {token}");
    let cookie = format!("crumble={token}; path=/;domain=.jwt9.test");
    let silly = format!("silly={token}");
    let query = format!("/hs/request?jwt={token}");
    let cases = [
        ("header", "/hs/request", Some(("authorization", auth.as_str()))),
        ("lower-case bearer", "/hs/request", Some(("authorization", lower.as_str()))),
        ("query", query.as_str(), None),
        ("cookie crumble", "/crumbs/request", Some(("cookie", cookie.as_str()))),
        ("cookie silly", "/crumbs/request", Some(("cookie", silly.as_str()))),
    ];
    for (case, path, header) in cases {
        let headers: Vec<(&str, &str)> = header.into_iter().collect();
        let res = p.request("GET", path, &headers, "").await;
        let seen = proxied(&res, case);
        assert_eq!(up(&seen, "x-consumer-id"), &bob["id"], "{case}");
        assert_eq!(up(&seen, "x-consumer-username"), "bob", "{case}");
        assert_eq!(up(&seen, "x-consumer-custom-id"), "bob-custom", "{case}");
        assert_eq!(up(&seen, "x-credential-identifier"), "bob-key", "{case}");
        assert_eq!(up(&seen, "x-anonymous-consumer"), &Value::Null, "{case}");
        // the jwt plugin has no hide_credentials: the token goes upstream as sent
        if let Some(("authorization", v)) = header {
            assert_eq!(up(&seen, "authorization"), v, "{case}");
        }
    }

    // the same token twice (query and header) is one token
    let res = p.request("GET", &format!("/hs?jwt={token}"), &[("authorization", &auth)], "").await;
    proxied(&res, "the same token twice");

    // a client cannot pose as another consumer through the headers the plugin sets
    let res = p
        .request(
            "GET",
            "/hs",
            &[
                ("authorization", &auth),
                ("x-consumer-username", "mallory"),
                ("x-credential-identifier", "mallory-key"),
                ("x-anonymous-consumer", "true"),
            ],
            "",
        )
        .await;
    let seen = proxied(&res, "spoofed consumer headers");
    assert_eq!(up(&seen, "x-consumer-username"), "bob");
    assert_eq!(up(&seen, "x-credential-identifier"), "bob-key");
    assert_eq!(up(&seen, "x-anonymous-consumer"), &Value::Null);
}

/// 03-access_spec.lua "refusals": every failure before the claims checks, with Kong's body and
/// challenge.
#[tokio::test]
async fn jwt_refusals() {
    let (gw, _up, _bob) = jwt_gateway().await;
    let p = gw.proxy();
    let invalid = r#"Bearer error="invalid_token""#;
    let good = hs256(&json!({"iss": "bob-key"}), "bob-secret");

    let res = p.get("/hs/request").await;
    assert_jwt_refusal(&res, r#"{"message":"Unauthorized"}"#, "Bearer", "no token");
    let res = p.request("GET", "/hs", &[("authorization", "Basic Ym9iOmJvYg==")], "").await;
    assert_jwt_refusal(&res, r#"{"message":"Unauthorized"}"#, "Bearer", "not a bearer");
    let res = p.request("OPTIONS", "/hs", &[], "").await;
    assert_jwt_refusal(&res, r#"{"message":"Unauthorized"}"#, "Bearer", "run_on_preflight");

    let corrupted = format!("no-way-this-works{good}");
    let res = p.request("GET", "/hs", &[("authorization", &bearer(&corrupted))], "").await;
    assert_jwt_refusal(&res, r#"{"message":"Bad token; invalid JSON"}"#, invalid, "bad token");
    let res = p.request("GET", "/hs", &[("authorization", "Bearer not-a-jwt")], "").await;
    assert_jwt_refusal(&res, r#"{"message":"Bad token; invalid JSON"}"#, invalid, "one part");

    let none =
        jwt(&json!({"typ": "JWT", "alg": "none"}), &json!({"iss": "bob-key"}), |_| Vec::new());
    let res = p.request("GET", "/hs", &[("authorization", &bearer(&none))], "").await;
    assert_jwt_refusal(&res, r#"{"message":"Bad token; invalid alg"}"#, invalid, "alg none");

    let no_iss = hs256(&json!({"sub": "bob"}), "bob-secret");
    let res = p.request("GET", "/hs", &[("authorization", &bearer(&no_iss))], "").await;
    let body = r#"{"message":"No mandatory 'iss' in claims"}"#;
    assert_jwt_refusal(&res, body, invalid, "no iss");

    let empty_iss = hs256(&json!({"iss": ""}), "bob-secret");
    let res = p.request("GET", "/hs", &[("authorization", &bearer(&empty_iss))], "").await;
    assert_jwt_refusal(&res, r#"{"message":"Invalid 'iss' in claims"}"#, invalid, "empty iss");

    let unknown = hs256(&json!({"iss": "123456789"}), "bob-secret");
    let res = p.request("GET", "/hs", &[("authorization", &bearer(&unknown))], "").await;
    let body = r#"{"message":"No credentials found for given 'iss'"}"#;
    assert_jwt_refusal(&res, body, invalid, "unknown iss");

    let wrong_secret = hs256(&json!({"iss": "bob-key"}), "foo");
    let res = p.request("GET", "/hs", &[("authorization", &bearer(&wrong_secret))], "").await;
    assert_jwt_refusal(&res, r#"{"message":"Invalid signature"}"#, invalid, "wrong signature");

    // a valid HS512 token for a secret whose algorithm is HS256
    let hs512 = jwt(&json!({"typ": "JWT", "alg": "HS512"}), &json!({"iss": "bob-key"}), |d| {
        hmac_with(ring::hmac::HMAC_SHA512, "bob-secret", d)
    });
    let res = p.request("GET", "/hs", &[("authorization", &bearer(&hs512))], "").await;
    assert_jwt_refusal(&res, r#"{"message":"Invalid algorithm"}"#, invalid, "alg mismatch");

    let res = p
        .request(
            "GET",
            &format!("/hs/request?jwt={good}"),
            &[("authorization", "Bearer invalid.jwt.token")],
            "",
        )
        .await;
    let body = r#"{"message":"Multiple tokens provided"}"#;
    assert_jwt_refusal(&res, body, invalid, "two different tokens");

    // with a realm and no token (or only cookies not in cookie_names)
    let realm = r#"Bearer realm="test-jwt""#;
    let res = p.get("/crumbs/request").await;
    assert_jwt_refusal(&res, r#"{"message":"Unauthorized"}"#, realm, "realm, no token");
    // a cookie that is not one of cookie_names is not looked at
    let cookie = format!("other={good}");
    let res = p.request("GET", "/crumbs", &[("cookie", &cookie)], "").await;
    assert_jwt_refusal(&res, r#"{"message":"Unauthorized"}"#, realm, "another cookie");

    // run_on_preflight=false lets OPTIONS through unauthenticated, and only OPTIONS
    let res = p.request("OPTIONS", "/preflight", &[], "").await;
    let seen = proxied(&res, "OPTIONS, run_on_preflight off");
    assert_eq!(seen["method"], "OPTIONS");
    assert_eq!(up(&seen, "x-consumer-id"), &Value::Null);
    let res = p.get("/preflight").await;
    assert_jwt_refusal(
        &res,
        r#"{"message":"Unauthorized"}"#,
        "Bearer",
        "GET, run_on_preflight off",
    );
}

/// 03-access_spec.lua, the cookie cases with `realm`: the challenge is
/// `Bearer realm="…" error="invalid_token"` (`www_authenticate_base .. ' error="invalid_token"'`
/// in Kong's handler: a space, no comma).
#[tokio::test]
async fn jwt_refusals_with_a_realm() {
    let (gw, _up, _bob) = jwt_gateway().await;
    let p = gw.proxy();
    let good = hs256(&json!({"iss": "bob-key"}), "bob-secret");
    let corrupted = format!("no-way-this-works{good}");
    let realm_invalid = r#"Bearer realm="test-jwt" error="invalid_token""#;
    let cookie = format!("silly={corrupted}; path=/;domain=.jwt9.test");
    let res = p.request("GET", "/crumbs", &[("cookie", &cookie)], "").await;
    let body = r#"{"message":"Bad token; invalid JSON"}"#;
    assert_jwt_refusal(&res, body, realm_invalid, "realm, corrupted cookie");
    let stranger = hs256(&json!({"iss": "incorrect-issuer"}), "bob-secret");
    let cookie = format!("silly={stranger}");
    let res = p.request("GET", "/crumbs", &[("cookie", &cookie)], "").await;
    let body = r#"{"message":"No credentials found for given 'iss'"}"#;
    assert_jwt_refusal(&res, body, realm_invalid, "realm, unknown iss in cookie");
}

/// 03-access_spec.lua "JWT private claims checks": `claims_to_verify` and
/// `maximum_expiration` refusals that do not depend on the clock being read right.
#[tokio::test]
async fn jwt_claims_checks() {
    let (gw, _up, _bob) = jwt_gateway().await;
    let p = gw.proxy();
    let invalid = r#"Bearer error="invalid_token""#;
    let t = now();
    let token = |claims: Value| hs256(&claims, "bob-secret");

    let res = p.get(&format!("/exp?jwt={}", token(json!({"iss": "bob-key"})))).await;
    assert_jwt_refusal(&res, r#"{"exp":"must be a number"}"#, invalid, "no exp");
    let res = p.get(&format!("/exp?jwt={}", token(json!({"iss": "bob-key", "exp": "soon"})))).await;
    assert_jwt_refusal(&res, r#"{"exp":"must be a number"}"#, invalid, "exp not a number");
    let res = p.get(&format!("/exp?jwt={}", token(json!({"iss": "bob-key", "exp": t + 60})))).await;
    proxied(&res, "not expired");
    // without claims_to_verify an expired token is fine
    let res = p.get(&format!("/hs?jwt={}", token(json!({"iss": "bob-key", "exp": t - 10})))).await;
    proxied(&res, "exp not verified");

    let claims = json!({"iss": "bob-key", "exp": t + 3600, "nbf": t - 30});
    let res = p.get(&format!("/maxexp?jwt={}", token(claims))).await;
    let body = r#"{"exp":"exceeds maximum allowed expiration"}"#;
    assert_jwt_refusal(&res, body, invalid, "beyond maximum_expiration");
}

/// 03-access_spec.lua "checks if the fields are valid: `exp` claim" and "accepts a JWT token
/// within the maximum allowed expiration limit": both compare with the current time.
#[tokio::test]
async fn jwt_expiry_is_checked_against_the_clock() {
    let (gw, _up, _bob) = jwt_gateway().await;
    let p = gw.proxy();
    let invalid = r#"Bearer error="invalid_token""#;
    let t = now();
    let token = |claims: Value| hs256(&claims, "bob-secret");

    let res = p.get(&format!("/exp?jwt={}", token(json!({"iss": "bob-key", "exp": t - 10})))).await;
    assert_jwt_refusal(&res, r#"{"exp":"token expired"}"#, invalid, "expired");
    let claims = json!({"iss": "bob-key", "exp": t + 270, "nbf": t - 30});
    let res = p.get(&format!("/maxexp?jwt={}", token(claims))).await;
    proxied(&res, "within maximum_expiration");
}

/// 03-access_spec.lua "RS256": a token signed with the private key of the secret's
/// `rsa_public_key`.
#[tokio::test]
async fn jwt_rs256_with_rsa_public_key() {
    let (gw, _up, _bob) = jwt_gateway().await;
    let p = gw.proxy();
    let invalid = r#"Bearer error="invalid_token""#;
    let token = rs256(&json!({"iss": "rosa-key", "sub": "rosa"}));

    let res = p.request("GET", "/hs/request", &[("authorization", &bearer(&token))], "").await;
    let seen = proxied(&res, "RS256");
    assert_eq!(up(&seen, "x-consumer-username"), "rosa");
    assert_eq!(up(&seen, "x-credential-identifier"), "rosa-key");
    assert_eq!(up(&seen, "x-consumer-custom-id"), &Value::Null);

    // the signature of other claims
    let other = rs256(&json!({"iss": "rosa-key", "sub": "someone else"}));
    let (input, _) = token.rsplit_once('.').expect("three parts");
    let (_, signature) = other.rsplit_once('.').expect("three parts");
    let forged = format!("{input}.{signature}");
    let res = p.request("GET", "/hs", &[("authorization", &bearer(&forged))], "").await;
    assert_jwt_refusal(&res, r#"{"message":"Invalid signature"}"#, invalid, "RS256 forged");

    // an HS256 token for the RS256 secret, "signed" with its public key
    let hs = hs256(&json!({"iss": "rosa-key"}), RSA_PUBLIC_KEY);
    let res = p.request("GET", "/hs", &[("authorization", &bearer(&hs))], "").await;
    assert_jwt_refusal(&res, r#"{"message":"Invalid algorithm"}"#, invalid, "HS256 for RS256");
}

/// 02-api_spec.lua: a bare `POST /consumers/{c}/jwt` generates the key and the secret (which
/// then authenticate), the RS256 checks of `jwt_secrets`, and the other endpoints.
#[tokio::test]
async fn jwt_credential_endpoints() {
    let upstream = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    let a = gw.admin();
    create(&a, "/services", json!({"name": "jwt", "url": upstream.url("http")}), "svc").await;
    plugin_route(&a, "jwt", "hs", "jwt", json!({})).await;
    let bob = create(&a, "/consumers", json!({"username": "bob"}), "bob").await;

    // no body at all (`curl -X POST …/consumers/bob/jwt`), then an empty JSON object
    let res = a.request("POST", "/consumers/bob/jwt", &[], "").await;
    let generated = expect(&res, 201, "POST without a body");
    let res = a.post_json(&format!("/consumers/{}/jwt", s(&bob["id"])), &json!({})).await;
    let other = expect(&res, 201, "POST {}");
    for (case, c) in [("no body", &generated), ("{}", &other)] {
        let mut keys: Vec<&str> =
            c.as_object().expect("object").keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "algorithm",
                "consumer",
                "created_at",
                "id",
                "key",
                "rsa_public_key",
                "secret",
                "tags"
            ],
            "{case}: {c}"
        );
        assert!(is_uuid(&c["id"]), "{case}: {c}");
        assert!(c["created_at"].is_i64(), "{case}: {c}");
        assert_eq!(c["consumer"], json!({"id": bob["id"]}), "{case}");
        assert_eq!(c["algorithm"], "HS256", "{case}");
        assert_eq!(c["rsa_public_key"], Value::Null, "{case}");
        assert_eq!(c["tags"], Value::Null, "{case}");
        for field in ["key", "secret"] {
            let v = s(&c[field]);
            assert_eq!(v.len(), 32, "{case}: {field} {v}");
            assert!(v.bytes().all(|b| b.is_ascii_alphanumeric()), "{case}: {field} {v}");
        }
        assert_ne!(c["key"], c["secret"], "{case}");
    }
    assert_ne!(generated["key"], other["key"]);
    assert_ne!(generated["secret"], other["secret"]);

    // the credential endpoints agree
    let key = s(&generated["key"]);
    let res = a.get(&format!("/consumers/bob/jwt/{key}")).await;
    assert_eq!(expect(&res, 200, "GET by key"), generated);
    let res = a.get(&format!("/jwts/{}", s(&generated["id"]))).await;
    assert_eq!(expect(&res, 200, "GET /jwts/{id}"), generated);
    let list = expect(&a.get("/consumers/bob/jwt").await, 200, "GET the consumer's list");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(2), "{list}");
    let res = a.get(&format!("/jwts/{key}/consumer")).await;
    assert_eq!(expect(&res, 200, "GET /jwts/{key}/consumer"), bob);

    // RS256 and friends need a loadable rsa_public_key
    let conditional = "failed conditional validation given value of field 'algorithm'";
    let res =
        a.post_json("/consumers/bob/jwt", &json!({"key": "bob5", "algorithm": "RS256"})).await;
    assert_eq!(
        expect(&res, 400, "RS256 without rsa_public_key"),
        json!({
            "code": 2,
            "name": "schema violation",
            "message": format!(
                "2 schema violations ({conditional}; rsa_public_key: required field missing)"
            ),
            "fields": {"@entity": [conditional], "rsa_public_key": "required field missing"},
        })
    );
    let body = json!({"key": "bob5", "algorithm": "RS256", "rsa_public_key": "test"});
    let res = a.post_json("/consumers/bob/jwt", &body).await;
    assert_eq!(
        expect(&res, 400, "RS256 with an invalid key"),
        json!({
            "code": 2,
            "name": "schema violation",
            "message": format!("2 schema violations ({conditional}; rsa_public_key: invalid key)"),
            "fields": {"@entity": [conditional], "rsa_public_key": "invalid key"},
        })
    );
    let body = json!({"key": "bob4", "algorithm": "RS256", "rsa_public_key": RSA_PUBLIC_KEY});
    let res = a.post_json("/consumers/bob/jwt", &body).await;
    let rsa = expect(&res, 201, "RS256 with a valid key");
    assert_eq!(rsa["key"], "bob4");
    assert_eq!(rsa["rsa_public_key"], RSA_PUBLIC_KEY);
    assert_eq!(rsa["algorithm"], "RS256");

    // the generated pair authenticates
    settle(&gw).await;
    let token = hs256(&json!({"iss": key}), s(&generated["secret"]));
    let res = gw.proxy().request("GET", "/hs", &[("authorization", &bearer(&token))], "").await;
    let seen = proxied(&res, "generated credential");
    assert_eq!(up(&seen, "x-credential-identifier"), key);
    assert_eq!(up(&seen, "x-consumer-username"), "bob");
}

// ---- hmac-auth ------------------------------------------------------------------------------

/// The `Authorization` value of hmac-auth for the signed `lines` (header name and value; a
/// `request-line` entry carries the whole request line as its value), as Kong's `create_hash`
/// builds the signing string.
fn hmac_authorization(user: &str, alg: &str, secret: &str, lines: &[(&str, &str)]) -> String {
    let names: Vec<&str> = lines.iter().map(|(n, _)| *n).collect();
    let signing: Vec<String> = lines
        .iter()
        .map(|(n, v)| if *n == "request-line" { (*v).to_owned() } else { format!("{n}: {v}") })
        .collect();
    let digest = match alg {
        "hmac-sha1" => ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        "hmac-sha256" => ring::hmac::HMAC_SHA256,
        "hmac-sha384" => ring::hmac::HMAC_SHA384,
        "hmac-sha512" => ring::hmac::HMAC_SHA512,
        other => panic!("no such algorithm {other}"),
    };
    let signature = STANDARD.encode(hmac_with(digest, secret, signing.join("\n").as_bytes()));
    format!(
        r#"hmac username="{user}", algorithm="{alg}", headers="{}", signature="{signature}""#,
        names.join(" ")
    )
}

/// `SHA-256=<base64 of the body's SHA-256>`.
fn body_digest(body: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
    format!("SHA-256={}", STANDARD.encode(d.as_ref()))
}

/// A gateway with the echo upstream behind the service `hmac` and these routes, each with an
/// hmac-auth plugin:
/// - `/signed`: the default configuration;
/// - `/realm`: realm `test-realm`;
/// - `/sha256`: `algorithms` `hmac-sha256` only;
/// - `/enforced`: `enforce_headers` `date` and `request-line`;
/// - `/digest`: `validate_request_body`;
/// - `/hidden`: `hide_credentials`;
///
/// and the consumer `alice` with the credential `alice-hmac`/`alice-secret`. Returns the
/// gateway, the upstream and `alice`.
async fn hmac_gateway() -> (Gateway, Upstream, Value) {
    let upstream = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    let a = gw.admin();
    create(&a, "/services", json!({"name": "hmac", "url": upstream.url("http")}), "svc").await;
    let routes = [
        ("signed", json!({})),
        ("realm", json!({"realm": "test-realm"})),
        ("sha256", json!({"algorithms": ["hmac-sha256"]})),
        ("enforced", json!({"enforce_headers": ["date", "request-line"]})),
        ("digest", json!({"validate_request_body": true})),
        ("hidden", json!({"hide_credentials": true})),
    ];
    for (name, config) in routes {
        plugin_route(&a, "hmac", name, "hmac-auth", config).await;
    }
    let alice = create(&a, "/consumers", json!({"username": "alice"}), "alice").await;
    let cred = json!({"username": "alice-hmac", "secret": "alice-secret"});
    let cred = create(&a, "/consumers/alice/hmac-auth", cred, "alice's credential").await;
    assert_eq!(cred["consumer"], json!({"id": alice["id"]}));
    settle(&gw).await;
    (gw, upstream, alice)
}

/// 03-access_spec.lua "should pass the right headers to the upstream server": a request signed
/// over `date` and `request-line` with hmac-sha256 (and the other algorithms, and `x-date`).
#[tokio::test]
async fn hmac_signed_request_authenticates() {
    let (gw, _up, alice) = hmac_gateway().await;
    let p = gw.proxy();
    let date = http_date(now());
    for alg in ["hmac-sha256", "hmac-sha1", "hmac-sha384", "hmac-sha512"] {
        let lines = [("date", date.as_str()), ("request-line", "GET /signed/request HTTP/1.1")];
        let auth = hmac_authorization("alice-hmac", alg, "alice-secret", &lines);
        let headers = [("date", date.as_str()), ("authorization", auth.as_str())];
        let res = p.request("GET", "/signed/request", &headers, "").await;
        let seen = proxied(&res, alg);
        assert_eq!(up(&seen, "x-consumer-id"), &alice["id"], "{alg}");
        assert_eq!(up(&seen, "x-consumer-username"), "alice", "{alg}");
        assert_eq!(up(&seen, "x-credential-identifier"), "alice-hmac", "{alg}");
        assert_eq!(up(&seen, "x-consumer-custom-id"), &Value::Null, "{alg}");
        assert_eq!(up(&seen, "x-anonymous-consumer"), &Value::Null, "{alg}");
        // hide_credentials is off
        assert_eq!(up(&seen, "authorization"), auth.as_str(), "{alg}");
    }

    // @request-target: the lower-case method and the path with the query
    let lines = [("date", date.as_str()), ("@request-target", "get /signed/request?x=1")];
    let auth = hmac_authorization("alice-hmac", "hmac-sha256", "alice-secret", &lines);
    let headers = [("date", date.as_str()), ("authorization", auth.as_str())];
    let res = p.request("GET", "/signed/request?x=1", &headers, "").await;
    proxied(&res, "@request-target");

    // x-date instead of date, the signature in Proxy-Authorization, a query in the request line
    let lines = [("x-date", date.as_str()), ("request-line", "GET /signed?a=1&b=2 HTTP/1.1")];
    let auth = hmac_authorization("alice-hmac", "hmac-sha256", "alice-secret", &lines);
    let headers = [("x-date", date.as_str()), ("proxy-authorization", auth.as_str())];
    let res = p.request("GET", "/signed?a=1&b=2", &headers, "").await;
    let seen = proxied(&res, "x-date and proxy-authorization");
    assert_eq!(up(&seen, "x-credential-identifier"), "alice-hmac");
}

/// 03-access_spec.lua "should encode http-1 requests as http/1.0": the request line of an
/// HTTP/1.0 request is signed with `HTTP/1.0`.
#[tokio::test]
async fn hmac_request_line_of_an_http_1_0_request() {
    let (gw, _up, _alice) = hmac_gateway().await;
    let date = http_date(now());
    let lines = [("date", date.as_str()), ("request-line", "GET /signed/request HTTP/1.0")];
    let auth = hmac_authorization("alice-hmac", "hmac-sha1", "alice-secret", &lines);
    let request = format!(
        "GET /signed/request HTTP/1.0\r\nHost: hmac.test\r\nDate: {date}\r\n\
         Authorization: {auth}\r\n\r\n"
    );
    let addr = gw.proxy_url().expect("proxy listener").to_owned();
    let (out, _closed) =
        raw_exchange(&addr, request.as_bytes(), std::time::Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&out);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{text}"));
    assert!(head.starts_with("HTTP/1.1 200 ") || head.starts_with("HTTP/1.0 200 "), "{text}");
    let seen: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(up(&seen, "x-credential-identifier"), "alice-hmac");

    // signed as HTTP/1.1, sent as HTTP/1.0
    let lines = [("date", date.as_str()), ("request-line", "GET /signed/request HTTP/1.1")];
    let auth = hmac_authorization("alice-hmac", "hmac-sha1", "alice-secret", &lines);
    let request = format!(
        "GET /signed/request HTTP/1.0\r\nHost: hmac.test\r\nDate: {date}\r\n\
         Authorization: {auth}\r\n\r\n"
    );
    let (out, _closed) =
        raw_exchange(&addr, request.as_bytes(), std::time::Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 401 ") || text.starts_with("HTTP/1.0 401 "), "{text}");
    assert!(text.contains("HMAC signature does not match"), "{text}");
}

/// 03-access_spec.lua: the refusals, each a 401 from `kong.response.error` with the `hmac`
/// challenge.
#[tokio::test]
async fn hmac_refusals() {
    let (gw, _up, _alice) = hmac_gateway().await;
    let p = gw.proxy();
    let not_valid = "HMAC signature cannot be verified";
    let no_date = "HMAC signature cannot be verified, a valid date or x-date header is required \
                   for HMAC Authentication";
    let not_same = "HMAC signature does not match";
    let t = now();
    let date = http_date(t);
    let sign = |user: &str, alg: &str, secret: &str, date: &str| {
        hmac_authorization(user, alg, secret, &[("date", date)])
    };
    let good = sign("alice-hmac", "hmac-sha256", "alice-secret", &date);

    let res = p.request("GET", "/signed", &[("date", &date)], "").await;
    assert_error(&res, 401, "Unauthorized", Some("hmac"), "no authorization");
    let res = p.request("POST", "/realm", &[("date", &date)], "").await;
    assert_error(&res, 401, "Unauthorized", Some(r#"hmac realm="test-realm""#), "realm");

    let res = p.request("GET", "/signed", &[("authorization", &good)], "").await;
    assert_error(&res, 401, no_date, Some("hmac"), "no date");
    let res = p.request("GET", "/signed", &[("authorization", "asd")], "").await;
    assert_error(&res, 401, no_date, Some("hmac"), "no date, not hmac either");
    let bad_date = [("date", "yesterday"), ("authorization", good.as_str())];
    let res = p.request("GET", "/signed", &bad_date, "").await;
    assert_error(&res, 401, no_date, Some("hmac"), "unparseable date");
    for (case, skewed) in [("10 minutes ago", t - 600), ("in 10 minutes", t + 600)] {
        let d = http_date(skewed);
        let auth = sign("alice-hmac", "hmac-sha256", "alice-secret", &d);
        let res = p.request("GET", "/signed", &[("date", &d), ("authorization", &auth)], "").await;
        assert_error(&res, 401, no_date, Some("hmac"), case);
    }

    let res = p.request("GET", "/signed", &[("date", &date), ("authorization", "asd")], "").await;
    assert_error(&res, 401, not_valid, Some("hmac"), "not an hmac authorization");
    let stranger = sign("nobody", "hmac-sha256", "alice-secret", &date);
    let res =
        p.request("GET", "/signed", &[("date", &date), ("authorization", &stranger)], "").await;
    assert_error(&res, 401, not_valid, Some("hmac"), "unknown username");
    let unknown_alg = good.replace("hmac-sha256", "hmac-sha");
    let headers = [("date", date.as_str()), ("authorization", unknown_alg.as_str())];
    let res = p.request("GET", "/signed", &headers, "").await;
    assert_error(&res, 401, not_valid, Some("hmac"), "unknown algorithm");

    let wrong = sign("alice-hmac", "hmac-sha256", "not-the-secret", &date);
    let res = p.request("GET", "/signed", &[("date", &date), ("authorization", &wrong)], "").await;
    assert_error(&res, 401, not_same, Some("hmac"), "wrong signature");
    // signed over another date than the one sent
    let other = sign("alice-hmac", "hmac-sha256", "alice-secret", &http_date(t - 1));
    let res = p.request("GET", "/signed", &[("date", &date), ("authorization", &other)], "").await;
    assert_error(&res, 401, not_same, Some("hmac"), "signed another date");
    // the request line signed is not the one sent
    let lines = [("date", date.as_str()), ("request-line", "GET /signed/other HTTP/1.1")];
    let auth = hmac_authorization("alice-hmac", "hmac-sha256", "alice-secret", &lines);
    let res =
        p.request("GET", "/signed/request", &[("date", &date), ("authorization", &auth)], "").await;
    assert_error(&res, 401, not_same, Some("hmac"), "another request line");
}

/// `algorithms` and `enforce_headers`: a signature that does not use them "cannot be verified".
#[tokio::test]
async fn hmac_algorithms_and_enforced_headers() {
    let (gw, _up, _alice) = hmac_gateway().await;
    let p = gw.proxy();
    let not_valid = "HMAC signature cannot be verified";
    let date = http_date(now());

    let sha1 = hmac_authorization("alice-hmac", "hmac-sha1", "alice-secret", &[("date", &date)]);
    let res = p.request("GET", "/sha256", &[("date", &date), ("authorization", &sha1)], "").await;
    assert_error(&res, 401, not_valid, Some("hmac"), "algorithm not allowed");
    let sha256 =
        hmac_authorization("alice-hmac", "hmac-sha256", "alice-secret", &[("date", &date)]);
    let res = p.request("GET", "/sha256", &[("date", &date), ("authorization", &sha256)], "").await;
    proxied(&res, "allowed algorithm");

    let res =
        p.request("GET", "/enforced", &[("date", &date), ("authorization", &sha256)], "").await;
    assert_error(&res, 401, not_valid, Some("hmac"), "enforced request-line missing");
    let lines = [("date", date.as_str()), ("request-line", "GET /enforced HTTP/1.1")];
    let auth = hmac_authorization("alice-hmac", "hmac-sha256", "alice-secret", &lines);
    let res = p.request("GET", "/enforced", &[("date", &date), ("authorization", &auth)], "").await;
    proxied(&res, "enforced headers signed");
}

/// 03-access_spec.lua "body validation": with `validate_request_body` the `Digest` header must
/// be the body's SHA-256, and the body still reaches the upstream whole.
#[tokio::test]
async fn hmac_validate_request_body() {
    let (gw, _up, _alice) = hmac_gateway().await;
    let p = gw.proxy();
    let not_same = "HMAC signature does not match";
    let date = http_date(now());
    let body = r#"{"a":"apple","b":"ball"}"#;
    let digest = body_digest(body);
    let lines = [("date", date.as_str()), ("digest", digest.as_str())];
    let auth = hmac_authorization("alice-hmac", "hmac-sha1", "alice-secret", &lines);
    let signed =
        [("date", date.as_str()), ("digest", digest.as_str()), ("authorization", auth.as_str())];

    let res = p.request("POST", "/digest/request", &signed, body).await;
    let seen = proxied(&res, "right digest");
    assert_eq!(seen["body"], body);
    assert_eq!(seen["method"], "POST");
    assert_eq!(up(&seen, "x-credential-identifier"), "alice-hmac");

    let res = p.request("POST", "/digest/request", &signed, "abc").await;
    assert_error(&res, 401, not_same, Some("hmac"), "tampered body");

    // the digest of another body, itself signed
    let other = body_digest("abc");
    let lines = [("date", date.as_str()), ("digest", other.as_str())];
    let auth = hmac_authorization("alice-hmac", "hmac-sha1", "alice-secret", &lines);
    let headers =
        [("date", date.as_str()), ("digest", other.as_str()), ("authorization", auth.as_str())];
    let res = p.request("POST", "/digest/request", &headers, body).await;
    assert_error(&res, 401, not_same, Some("hmac"), "digest of another body");

    // no digest with a body (signed over the date only), then without a body
    let auth = hmac_authorization("alice-hmac", "hmac-sha1", "alice-secret", &[("date", &date)]);
    let headers = [("date", date.as_str()), ("authorization", auth.as_str())];
    let res = p.request("POST", "/digest/request", &headers, body).await;
    assert_error(&res, 401, not_same, Some("hmac"), "no digest");
    let res = p.request("GET", "/digest/request", &headers, "").await;
    proxied(&res, "no digest, no body");

    // the digest of the empty body
    let empty = body_digest("");
    let lines = [("date", date.as_str()), ("digest", empty.as_str())];
    let auth = hmac_authorization("alice-hmac", "hmac-sha1", "alice-secret", &lines);
    let headers =
        [("date", date.as_str()), ("digest", empty.as_str()), ("authorization", auth.as_str())];
    let res = p.request("GET", "/digest/request", &headers, "").await;
    proxied(&res, "digest of no body");
}

/// `hide_credentials`: the header that carried the signature does not reach the upstream.
#[tokio::test]
async fn hmac_hide_credentials() {
    let (gw, _up, _alice) = hmac_gateway().await;
    let p = gw.proxy();
    let date = http_date(now());
    let auth = hmac_authorization("alice-hmac", "hmac-sha256", "alice-secret", &[("date", &date)]);

    let res = p.request("GET", "/hidden", &[("date", &date), ("authorization", &auth)], "").await;
    let seen = proxied(&res, "authorization");
    assert_eq!(up(&seen, "authorization"), &Value::Null, "{seen}");
    assert_eq!(up(&seen, "x-credential-identifier"), "alice-hmac");
    assert_eq!(up(&seen, "date"), date.as_str());

    // in Proxy-Authorization, that one is hidden and Authorization is left alone
    let headers = [
        ("date", date.as_str()),
        ("proxy-authorization", auth.as_str()),
        ("authorization", "Bearer something-else"),
    ];
    let res = p.request("GET", "/hidden", &headers, "").await;
    let seen = proxied(&res, "proxy-authorization");
    assert_eq!(up(&seen, "proxy-authorization"), &Value::Null, "{seen}");
    assert_eq!(up(&seen, "authorization"), "Bearer something-else", "{seen}");

    // without hide_credentials both go upstream
    let res = p.request("GET", "/signed", &headers, "").await;
    let seen = proxied(&res, "not hidden");
    assert_eq!(up(&seen, "authorization"), "Bearer something-else", "{seen}");
}
