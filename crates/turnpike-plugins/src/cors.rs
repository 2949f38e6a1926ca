//! `cors` (`kong/plugins/cors/handler.lua`): preflight answers in the access phase,
//! `Access-Control-*` headers on every other response. The rules are in [`crate::cors_rules`].

use std::sync::Arc;

use serde_json::Value;
use turnpike_plugin_api::{
    BuildEnv, Ctx, Exit, ExitBody, Phase, Plugin, PluginFactory, ResponseHead,
};

use crate::auth;
use crate::cors_rules::{Cors, CorsConfig, CorsRequest, HeaderEdit, Preflight};

pub(crate) struct Factory;

impl PluginFactory for Factory {
    bundled_meta!("cors");
    fn build(&self, config: &Value, _env: &BuildEnv<'_>) -> Result<Arc<dyn Plugin>, String> {
        let conf: CorsConfig = auth::config(config)?;
        Ok(Arc::new(CorsPlugin(Cors::new(conf)?)))
    }
}

struct CorsPlugin(Cors);

fn preflight(cors: &Cors, ctx: &Ctx<'_>) -> Preflight {
    let r = ctx.request;
    cors.preflight(&CorsRequest {
        method: r.method(),
        origin: r.header_str("origin"),
        access_control_request_method: r.header_str("access-control-request-method"),
        access_control_request_headers: r.header_str("access-control-request-headers"),
        access_control_request_private_network: r
            .header_str("access-control-request-private-network"),
    })
}

impl Plugin for CorsPlugin {
    fn access(&self, ctx: &mut Ctx<'_>) -> Phase {
        match preflight(&self.0, ctx) {
            Preflight::Respond(headers) => Err(Exit {
                status: 200,
                headers: headers.into_iter().map(|(n, v)| (n.to_ascii_lowercase(), v)).collect(),
                body: ExitBody::Empty,
            }),
            Preflight::Continue | Preflight::NotPreflight => Ok(()),
        }
    }

    fn header_filter(&self, ctx: &mut Ctx<'_>, resp: &mut ResponseHead<'_>) {
        // a preflight was answered (or passed on) in access: no further CORS headers
        if preflight(&self.0, ctx) != Preflight::NotPreflight {
            return;
        }
        for edit in self.0.response_headers(ctx.request.header_str("origin")) {
            match edit {
                HeaderEdit::Set(n, v) => resp.set_header(n, v),
                HeaderEdit::Add(n, v) => resp.add_header(n, v),
                HeaderEdit::Remove(n) => resp.clear_header(n),
            }
        }
    }
}
