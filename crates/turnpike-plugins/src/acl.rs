//! `acl` (`kong/plugins/acl/handler.lua`): allow or deny by the groups of the authenticated
//! consumer (or the groups an authentication plugin set).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use turnpike_plugin_api::{BuildEnv, Ctx, Exit, Phase, Plugin, PluginFactory};

use crate::auth;

#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default)]
    allow: Option<Vec<String>>,
    #[serde(default)]
    deny: Option<Vec<String>>,
    #[serde(default)]
    hide_groups_header: bool,
    #[serde(default)]
    always_use_authenticated_groups: bool,
}

/// Groups by consumer id, in the order Kong's DAO returns them.
#[derive(Default)]
pub(crate) struct GroupTable(HashMap<String, Vec<String>>);

impl GroupTable {
    fn build(rows: &[Value]) -> Self {
        let mut t: HashMap<String, Vec<String>> = HashMap::new();
        for r in rows {
            let consumer = r.get("consumer").and_then(|c| c.get("id")).and_then(Value::as_str);
            if let (Some(c), Some(g)) = (consumer, auth::str_field(r, "group")) {
                t.entry(c.to_owned()).or_default().push(g.to_owned());
            }
        }
        Self(t)
    }
}

pub(crate) struct Factory;

impl PluginFactory for Factory {
    bundled_meta!("acl");
    fn build(&self, config: &Value, env: &BuildEnv<'_>) -> Result<Arc<dyn Plugin>, String> {
        let conf: Config = auth::config(config)?;
        let groups = env.shared("acls", |env| Ok(GroupTable::build(env.rows("acls"))))?;
        let deny = conf.deny.as_ref().is_some_and(|d| !d.is_empty());
        let list = if deny { conf.deny.clone() } else { conf.allow.clone() }.unwrap_or_default();
        Ok(Arc::new(Acl { conf, deny, list, groups }))
    }
}

struct Acl {
    conf: Config,
    deny: bool,
    list: Vec<String>,
    groups: Arc<GroupTable>,
}

const FORBIDDEN: &str = "You cannot consume this service";

impl Acl {
    /// `None`: blocked; `Some(header value)`: allowed.
    fn check(&self, groups: &[String]) -> Option<String> {
        let in_group = self.list.iter().any(|g| groups.contains(g));
        let blocked = if self.deny { in_group } else { !in_group };
        if blocked {
            None
        } else if self.conf.hide_groups_header {
            Some(String::new())
        } else {
            Some(groups.join(", "))
        }
    }
}

impl Plugin for Acl {
    fn access(&self, ctx: &mut Ctx<'_>) -> Phase {
        let consumer_id = ctx.state.consumer.as_ref().map(|c| c.id.clone()).or_else(|| {
            ctx.state.credential.as_ref().and_then(|c| c.consumer_id.as_deref().map(str::to_owned))
        });
        let has_credential = ctx.state.credential.is_some();
        let (allowed, header) = match consumer_id {
            None => {
                let Some(groups) = ctx.state.authenticated_groups.clone() else {
                    if has_credential {
                        return Err(Exit::error(403, FORBIDDEN));
                    }
                    return Err(Exit::error(401, "Unauthorized"));
                };
                (self.check(&groups), "x-authenticated-groups")
            }
            Some(id) => {
                let use_auth_groups = !has_credential || self.conf.always_use_authenticated_groups;
                match ctx.state.authenticated_groups.clone().filter(|_| use_auth_groups) {
                    Some(groups) => (self.check(&groups), "x-authenticated-groups"),
                    None => match self.groups.0.get(&id) {
                        Some(groups) => (self.check(groups), "x-consumer-groups"),
                        None if self.deny => (self.check(&[]), "x-consumer-groups"),
                        None if has_credential => return Err(Exit::error(403, FORBIDDEN)),
                        None => return Err(Exit::error(401, "Unauthorized")),
                    },
                }
            }
        };
        let Some(value) = allowed else { return Err(Exit::error(403, FORBIDDEN)) };
        if !self.conf.hide_groups_header {
            ctx.state.upstream.set_header(header, value);
        }
        Ok(())
    }
}
