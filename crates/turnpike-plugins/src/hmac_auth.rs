//! `hmac-auth` (`kong/plugins/hmac-auth/access.lua`): HTTP signatures with a shared secret.
//! The checks are in [`crate::hmac_sig`]; this is the glue (credential table, consumer,
//! anonymous fallback, hidden credentials).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use turnpike_plugin_api::{
    BuildEnv, Consumers, Credential, Ctx, Exit, Phase, Plugin, PluginFactory,
};

use crate::auth;
use crate::hmac_sig::{self, HmacConfig, HmacCredential, HmacRequest};

/// hmac-auth credentials by username.
#[derive(Default)]
pub(crate) struct HmacTable(HashMap<String, HmacCredential>);

impl HmacTable {
    fn build(rows: &[Value]) -> Self {
        let creds = rows.iter().filter_map(|r| HmacCredential::from_row(r).ok());
        Self(creds.map(|c| (c.username.clone(), c)).collect())
    }
}

pub(crate) struct Factory;

impl PluginFactory for Factory {
    bundled_meta!("hmac-auth");
    fn build(&self, config: &Value, env: &BuildEnv<'_>) -> Result<Arc<dyn Plugin>, String> {
        let conf: HmacConfig = auth::config(config)?;
        let creds = env.shared("hmacauth_credentials", |env| {
            Ok(HmacTable::build(env.rows("hmacauth_credentials")))
        })?;
        Ok(Arc::new(HmacAuth { conf, creds, consumers: env.consumers.clone() }))
    }
}

struct HmacAuth {
    conf: HmacConfig,
    creds: Arc<HmacTable>,
    consumers: Arc<Consumers>,
}

impl Plugin for HmacAuth {
    fn needs_body(&self) -> bool {
        self.conf.validate_request_body
    }

    fn access(&self, ctx: &mut Ctx<'_>) -> Phase {
        let anonymous = self.conf.anonymous.as_deref();
        if auth::already_authenticated(ctx, anonymous) {
            return Ok(());
        }
        let r = ctx.request;
        let header = |name: &str| r.header(name).map(|v| String::from_utf8_lossy(v).into_owned());
        // no body framing at all counts as an empty body; a body too large to buffer as none
        let no_body =
            r.header("content-length").is_none() && r.header("transfer-encoding").is_none();
        let req = HmacRequest {
            method: r.method(),
            path: r.path(),
            query: r.query(),
            http_version: r.http_version(),
            header: &header,
            body: if no_body { Some(&[]) } else { r.body() },
            now_unix_secs: turnpike_core::time::now_s(),
        };
        let outcome = hmac_sig::authenticate(&req, &self.conf, |u| self.creds.0.get(u));
        let result = match outcome {
            Ok(ok) => {
                if let Some(h) = ok.clear_header {
                    ctx.state.upstream.clear_header(h);
                }
                let cred = ok.credential;
                match self.consumers.get(&cred.consumer_id).cloned() {
                    Some(consumer) => {
                        let credential =
                            Credential::new(&cred.id, &cred.username, Some(&consumer.id));
                        ctx.authenticate(consumer, Some(credential));
                        Ok(())
                    }
                    None => Err(Exit::error(500, "An unexpected error occurred")),
                }
            }
            Err(f) => {
                if let Some(h) = f.clear_header {
                    ctx.state.upstream.clear_header(h);
                }
                Err(Exit::error(f.status, f.message).header("www-authenticate", f.www_authenticate))
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) => auth::fail(ctx, anonymous, &self.consumers, e),
        }
    }
}
