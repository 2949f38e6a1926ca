//! `key-auth` (`kong/plugins/key-auth/handler.lua`): an API key in a header or the query
//! string, looked up in the configuration's key table.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use turnpike_plugin_api::phase::{
    body_field, body_kind, body_without, decode_form_component as decode_component, BodyField,
};
use turnpike_plugin_api::{
    BuildEnv, Consumer, Consumers, Credential, Ctx, Exit, Phase, Plugin, PluginFactory,
};

use crate::auth::{self, secret_digest, SecretDigest};

#[derive(Debug, Deserialize)]
struct Config {
    key_names: Vec<String>,
    #[serde(default)]
    hide_credentials: bool,
    #[serde(default)]
    anonymous: Option<String>,
    #[serde(default = "yes")]
    key_in_header: bool,
    #[serde(default = "yes")]
    key_in_query: bool,
    /// Keys in form or JSON bodies (multipart bodies are not decoded: no key found there).
    #[serde(default)]
    key_in_body: bool,
    #[serde(default = "yes")]
    run_on_preflight: bool,
    #[serde(default)]
    realm: Option<String>,
}

fn yes() -> bool {
    true
}

/// One key-auth credential, as the request path needs it.
struct KeyCred {
    /// Built once: a request clones it cheaply.
    credential: Credential,
    consumer: Option<Arc<Consumer>>,
    /// Unix seconds after which the key no longer authenticates (`ttl`).
    expires_at: Option<i64>,
}

/// Every key of the configuration, by the digest of the key.
#[derive(Default)]
pub(crate) struct KeyTable(HashMap<SecretDigest, KeyCred>);

impl KeyTable {
    pub(crate) fn build(rows: &[Value], consumers: &Consumers) -> Self {
        let mut t = HashMap::with_capacity(rows.len());
        for r in rows {
            let (Some(id), Some(key)) = (auth::str_field(r, "id"), auth::str_field(r, "key"))
            else {
                continue;
            };
            let expires_at = r
                .get("ttl")
                .and_then(Value::as_i64)
                .zip(r.get("created_at").and_then(Value::as_i64))
                .map(|(ttl, created)| created + ttl);
            t.insert(secret_digest(key.as_bytes()), {
                let consumer = auth::row_consumer(r, consumers);
                KeyCred {
                    credential: Credential::new(id, id, consumer.as_ref().map(|c| c.id.as_str())),
                    consumer,
                    expires_at,
                }
            });
        }
        Self(t)
    }
}

pub(crate) struct Factory;

impl PluginFactory for Factory {
    bundled_meta!("key-auth");
    fn build(&self, config: &Value, env: &BuildEnv<'_>) -> Result<Arc<dyn Plugin>, String> {
        let conf: Config = auth::config(config)?;
        let keys = env.shared("keyauth_credentials", |env| {
            Ok(KeyTable::build(env.rows("keyauth_credentials"), env.consumers))
        })?;
        Ok(Arc::new(KeyAuth { conf, keys, consumers: env.consumers.clone() }))
    }
}

struct KeyAuth {
    conf: Config,
    keys: Arc<KeyTable>,
    consumers: Arc<Consumers>,
}

/// What a name gave in one place: nothing, a value, or several (Kong's table → duplicate).
enum Found {
    None,
    One(String),
    /// Present without a value (`?apikey`): Kong sees `true`, not a string, and moves on.
    Flag,
    Many,
}

fn from_header(ctx: &Ctx<'_>, name: &str) -> Found {
    let lookup = |n: &str| {
        let mut found = Found::None;
        ctx.request.header_values(n, &mut |v| {
            found = match found {
                Found::None => Found::One(String::from_utf8_lossy(v).into_owned()),
                _ => Found::Many,
            };
        });
        found
    };
    match lookup(name) {
        // Kong's header table also finds `api-key` for a `api_key` name
        Found::None if name.contains('_') => lookup(&name.replace('_', "-")),
        f => f,
    }
}

fn from_query(query: Option<&str>, name: &str) -> Found {
    let Some(q) = query else { return Found::None };
    let mut found = Found::None;
    for part in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (part, None),
        };
        if decode_component(k) != name {
            continue;
        }
        found = match (found, v) {
            (Found::None, None) => Found::Flag,
            (Found::None, Some(v)) => Found::One(decode_component(v).into_owned()),
            _ => Found::Many,
        };
    }
    found
}

/// The query without the arguments named `name` (`clear_query_arg`: the raw query with those
/// pairs removed, then every `+` written as `%20`).
fn without_arg(query: &str, name: &str) -> String {
    let kept = query
        .split('&')
        .filter(|p| {
            let k = p.split_once('=').map_or(*p, |(k, _)| k);
            decode_component(k) != name
        })
        .collect::<Vec<_>>()
        .join("&");
    kept.replace('+', "%20")
}

impl KeyAuth {
    fn unauthorized(&self, message: &str) -> Exit {
        let www = match &self.conf.realm {
            Some(r) => format!("Key realm=\"{r}\""),
            None => "Key".to_owned(),
        };
        Exit::error(401, message).header("www-authenticate", www)
    }

    fn authenticate(&self, ctx: &mut Ctx<'_>) -> Result<(), Exit> {
        let mut key = None;
        for name in &self.conf.key_names {
            let mut found = Found::None;
            if self.conf.key_in_header {
                found = from_header(ctx, name);
            }
            if matches!(found, Found::None | Found::Flag) && self.conf.key_in_query {
                found = from_query(ctx.request.query(), name);
            }
            let mut in_body = None;
            if matches!(found, Found::None | Found::Flag) && self.conf.key_in_body {
                let kind = body_kind(ctx.request.header_str("content-type"));
                if let (Some(kind), Some(body)) = (kind, ctx.request.body()) {
                    found = match body_field(kind, body, name) {
                        Some(BodyField::Text(v)) => Found::One(v),
                        Some(BodyField::Table) => Found::Many,
                        Some(BodyField::Other) => Found::Flag,
                        None => Found::None,
                    };
                    in_body = Some((kind, body));
                }
            }
            match found {
                Found::One(v) => {
                    if self.conf.hide_credentials {
                        ctx.state.upstream.clear_header(name);
                        if let Some(q) = ctx.request.query() {
                            let current = ctx.state.upstream.query.as_deref().unwrap_or(q);
                            ctx.state.upstream.query = Some(without_arg(current, name));
                        }
                        if let Some((kind, body)) = in_body {
                            ctx.state.upstream.body = body_without(kind, body, name);
                        }
                    }
                    key = Some(v);
                    break;
                }
                Found::Many => return Err(self.unauthorized("Duplicate API key found")),
                Found::None | Found::Flag => {}
            }
        }
        let key = match key {
            Some(k) if !k.is_empty() => k,
            _ => return Err(self.unauthorized("No API key found in request")),
        };
        let Some(cred) = self.keys.0.get(&secret_digest(key.as_bytes())) else {
            return Err(self.unauthorized("Unauthorized"));
        };
        if cred.expires_at.is_some_and(|t| turnpike_core::time::now_s() >= t) {
            return Err(self.unauthorized("Unauthorized"));
        }
        let Some(consumer) = cred.consumer.clone() else {
            return Err(Exit::error(500, "An unexpected error occurred"));
        };
        let credential = cred.credential.clone();
        ctx.authenticate(consumer, Some(credential));
        Ok(())
    }
}

impl Plugin for KeyAuth {
    fn needs_body(&self) -> bool {
        self.conf.key_in_body
    }

    fn access(&self, ctx: &mut Ctx<'_>) -> Phase {
        if !self.conf.run_on_preflight && ctx.request.method() == "OPTIONS" {
            return Ok(());
        }
        let anonymous = self.conf.anonymous.as_deref();
        if auth::already_authenticated(ctx, anonymous) {
            return Ok(());
        }
        match self.authenticate(ctx) {
            Ok(()) => Ok(()),
            Err(e) => auth::fail(ctx, anonymous, &self.consumers, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_lookup_follows_kong() {
        assert!(matches!(from_query(Some("apikey=abc"), "apikey"), Found::One(v) if v == "abc"));
        assert!(
            matches!(from_query(Some("a=1&apikey=a%20b"), "apikey"), Found::One(v) if v == "a b")
        );
        assert!(matches!(from_query(Some("apikey"), "apikey"), Found::Flag));
        assert!(matches!(from_query(Some("apikey=1&apikey=2"), "apikey"), Found::Many));
        assert!(matches!(from_query(Some("other=1"), "apikey"), Found::None));
        assert_eq!(without_arg("a=1&apikey=x&b=2", "apikey"), "a=1&b=2");
        assert_eq!(without_arg("apikey=x", "apikey"), "");
        assert_eq!(without_arg("q=a+b&apikey=x", "apikey"), "q=a%20b");
    }
}
