//! `basic-auth` (`kong/plugins/basic-auth/access.lua`): `Authorization` (or
//! `Proxy-Authorization`) `Basic base64(user:pass)`, checked against the stored
//! `sha1(password .. consumer_id)`.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use turnpike_plugin_api::{
    BuildEnv, Consumer, Consumers, Credential, Ctx, Exit, Phase, Plugin, PluginFactory,
};

use crate::auth;

#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default)]
    anonymous: Option<String>,
    #[serde(default)]
    hide_credentials: bool,
    #[serde(default = "service")]
    realm: String,
}

fn service() -> String {
    "service".into()
}

struct BasicCred {
    id: String,
    username: String,
    /// Kong's stored hash: lowercase hex of `sha1(password .. consumer_id)`.
    password_hash: String,
    consumer: Option<Arc<Consumer>>,
}

#[derive(Default)]
pub(crate) struct BasicTable(HashMap<String, BasicCred>);

impl BasicTable {
    fn build(rows: &[Value], consumers: &Consumers) -> Self {
        let mut t = HashMap::with_capacity(rows.len());
        for r in rows {
            let (Some(id), Some(username)) =
                (auth::str_field(r, "id"), auth::str_field(r, "username"))
            else {
                continue;
            };
            t.insert(
                username.to_owned(),
                BasicCred {
                    id: id.to_owned(),
                    username: username.to_owned(),
                    password_hash: auth::str_field(r, "password").unwrap_or_default().to_owned(),
                    consumer: auth::row_consumer(r, consumers),
                },
            );
        }
        Self(t)
    }
}

pub(crate) struct Factory;

impl PluginFactory for Factory {
    bundled_meta!("basic-auth");
    fn build(&self, config: &Value, env: &BuildEnv<'_>) -> Result<Arc<dyn Plugin>, String> {
        let conf: Config = auth::config(config)?;
        let creds = env.shared("basicauth_credentials", |env| {
            Ok(BasicTable::build(env.rows("basicauth_credentials"), env.consumers))
        })?;
        Ok(Arc::new(BasicAuth { conf, creds, consumers: env.consumers.clone() }))
    }
}

struct BasicAuth {
    conf: Config,
    creds: Arc<BasicTable>,
    consumers: Arc<Consumers>,
}

/// Credentials in a header value: `\s*[Bb]asic\s*(.+)`, base64, then `([^:]+):(.*)`.
fn parse(value: &[u8]) -> Option<(String, String)> {
    let v = std::str::from_utf8(value).ok()?;
    let v = v.trim_start();
    let rest = v.strip_prefix("Basic").or_else(|| v.strip_prefix("basic"))?;
    let b64 = rest.trim_start();
    if b64.is_empty() || b64.len() > 8192 {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(b64.trim_end()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some((user.to_owned(), pass.to_owned()))
}

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl BasicAuth {
    fn unauthorized(&self) -> Exit {
        Exit::error(401, "Unauthorized")
            .header("www-authenticate", format!("Basic realm=\"{}\"", self.conf.realm))
    }

    fn retrieve(&self, ctx: &mut Ctx<'_>, header: &str) -> Option<(String, String)> {
        let parsed = ctx.request.header(header).and_then(parse);
        if self.conf.hide_credentials {
            ctx.state.upstream.clear_header(header);
        }
        parsed
    }

    fn authenticate(&self, ctx: &mut Ctx<'_>) -> Result<(), Exit> {
        let has_auth = ctx.request.header("authorization").is_some();
        let has_proxy_auth = ctx.request.header("proxy-authorization").is_some();
        if !has_auth && !has_proxy_auth {
            return Err(self.unauthorized());
        }
        let mut found = None;
        if has_proxy_auth {
            if let Some((user, pass)) = self.retrieve(ctx, "proxy-authorization") {
                found = self.creds.0.get(&user).map(|c| (c, pass));
            }
        }
        if found.is_none() {
            let Some((user, pass)) = self.retrieve(ctx, "authorization") else {
                return Err(self.unauthorized());
            };
            found = self.creds.0.get(&user).map(|c| (c, pass));
        }
        let Some((cred, pass)) = found else { return Err(self.unauthorized()) };
        let Some(consumer) = cred.consumer.clone() else { return Err(self.unauthorized()) };
        let digest = crate::daos::basicauth_hash(&pass, &consumer.id);
        if !constant_time_eq(digest.as_bytes(), cred.password_hash.as_bytes()) {
            return Err(self.unauthorized());
        }
        let credential = Credential::new(&cred.id, &cred.username, Some(&consumer.id));
        ctx.authenticate(consumer, Some(credential));
        Ok(())
    }
}

impl Plugin for BasicAuth {
    fn access(&self, ctx: &mut Ctx<'_>) -> Phase {
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
    fn header_parsing() {
        // "user:pa:ss"
        assert_eq!(parse(b"Basic dXNlcjpwYTpzcw=="), Some(("user".to_owned(), "pa:ss".to_owned())));
        assert_eq!(parse(b"  basic   dXNlcjo="), Some(("user".to_owned(), String::new())));
        assert_eq!(parse(b"Basic !!!"), None);
        assert_eq!(parse(b"Bearer dXNlcjo="), None);
        assert_eq!(parse(b"Basic OnBhc3M="), None, "empty user");
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
    }
}
