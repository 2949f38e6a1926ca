//! `jwt` (`kong/plugins/jwt/handler.lua`): a signed JSON Web Token from the query string, a
//! cookie or a header, verified with the secret its key claim names. Token handling is in
//! [`crate::jwt_token`]; this is the glue (secret table, consumer, anonymous fallback).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use turnpike_plugin_api::{
    BuildEnv, Consumers, Credential, Ctx, Exit, ExitBody, Phase, Plugin, PluginFactory, Request,
};

use crate::auth;
use crate::jwt_token::{self, JwtConfig, JwtFailure, JwtSecret, TokenSource};

/// jwt secrets by `key`.
#[derive(Default)]
pub(crate) struct SecretTable(HashMap<String, JwtSecret>);

impl SecretTable {
    fn build(rows: &[Value]) -> Self {
        let mut t = HashMap::with_capacity(rows.len());
        for r in rows {
            // a row that cannot be used stays out of the table: it cannot authenticate
            if let Ok(s) = JwtSecret::from_row(r) {
                t.insert(s.key.clone(), s);
            }
        }
        Self(t)
    }
}

pub(crate) struct Factory;

impl PluginFactory for Factory {
    bundled_meta!("jwt");
    fn build(&self, config: &Value, env: &BuildEnv<'_>) -> Result<Arc<dyn Plugin>, String> {
        let conf: JwtConfig = auth::config(config)?;
        let secrets =
            env.shared("jwt_secrets", |env| Ok(SecretTable::build(env.rows("jwt_secrets"))))?;
        Ok(Arc::new(Jwt { conf, secrets, consumers: env.consumers.clone() }))
    }
}

struct Jwt {
    conf: JwtConfig,
    secrets: Arc<SecretTable>,
    consumers: Arc<Consumers>,
}

/// The request as the token finder reads it.
struct Source<'r> {
    req: &'r dyn Request,
    query: Vec<(String, Option<String>)>,
    cookies: Vec<String>,
}

impl<'r> Source<'r> {
    fn new(req: &'r dyn Request) -> Self {
        let mut query = Vec::new();
        if let Some(q) = req.query() {
            for part in q.split('&').filter(|p| !p.is_empty()).take(100) {
                let (k, v) = part.split_once('=').map_or((part, None), |(k, v)| (k, Some(v)));
                let decode =
                    |s: &str| turnpike_plugin_api::phase::decode_form_component(s).into_owned();
                query.push((decode(k), v.map(decode)));
            }
        }
        let mut cookies = Vec::new();
        req.header_values("cookie", &mut |v| cookies.push(String::from_utf8_lossy(v).into_owned()));
        Self { req, query, cookies }
    }
}

impl TokenSource for Source<'_> {
    fn query_values(&self, name: &str) -> Vec<Option<&str>> {
        self.query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_deref()).collect()
    }

    fn header_first(&self, name: &str) -> Option<&str> {
        self.req.header_str(name)
    }

    fn cookie_headers(&self) -> Vec<&str> {
        self.cookies.iter().map(String::as_str).collect()
    }
}

impl Jwt {
    fn failure(&self, f: &JwtFailure) -> Exit {
        let mut exit = Exit {
            status: f.status,
            headers: Vec::new(),
            // Kong's jwt answers with `kong.response.exit(status, {message = …})`: plain JSON
            // (no request id), except for its internal errors
            body: match f.message() {
                Some(m) if f.is_internal() => ExitBody::Error(m.to_owned()),
                _ => ExitBody::Json(f.body.clone()),
            },
        };
        if let Some(www) = f.www_authenticate(self.conf.realm.as_deref()) {
            exit = exit.header("www-authenticate", www);
        }
        exit
    }
}

impl Plugin for Jwt {
    fn access(&self, ctx: &mut Ctx<'_>) -> Phase {
        if self.conf.skip_preflight(ctx.request.method()) {
            return Ok(());
        }
        let anonymous = self.conf.anonymous.as_deref();
        if auth::already_authenticated(ctx, anonymous) {
            return Ok(());
        }
        let source = Source::new(ctx.request);
        let now = turnpike_core::time::now_ms();
        let outcome =
            jwt_token::authenticate_request(&source, &self.conf, now, |k| self.secrets.0.get(k));
        let failure = match outcome {
            Ok(ok) => match self.consumers.get(&ok.secret.consumer_id).cloned() {
                Some(consumer) => {
                    let credential =
                        Credential::new(&ok.secret.id, &ok.secret.key, Some(&consumer.id));
                    ctx.authenticate(consumer, Some(credential));
                    return Ok(());
                }
                None => JwtFailure::consumer_not_found(&self.conf.key_claim_name, &ok.secret.key),
            },
            Err(f) => f,
        };
        if failure.is_internal() {
            return Err(self.failure(&failure));
        }
        auth::fail(ctx, anonymous, &self.consumers, self.failure(&failure))
    }
}
