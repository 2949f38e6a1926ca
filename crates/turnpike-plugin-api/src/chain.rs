//! Plugin chains: which plugin instances run for a request, in which order.
//!
//! Compiled once per configuration. For each route (with its service) a [`Chain`] lists, in
//! descending priority, one entry per plugin name that has an enabled instance applying to
//! it. An entry knows its instance without a consumer (route+service > route > service >
//! global) and, when consumer-scoped instances exist, the instances by consumer id; the
//! consumer is only known once authentication ran, so the instance is picked when the entry's
//! turn comes (Kong's `plugins_iterator`), with Kong's precedence:
//! consumer+route+service > consumer+route > consumer+service > route+service > consumer >
//! route > service > global.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use turnpike_core::schema::Schema;

use crate::consumer::Consumers;
use crate::phase::{Ctx, Exit, Plugin, ResponseHead};

/// A plugin implementation: its metadata, config schema and how to build an instance.
pub trait PluginFactory: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Kong's `PRIORITY`: higher runs first.
    fn priority(&self) -> i64;
    fn version(&self) -> &'static str {
        turnpike_core::KONG_COMPAT_VERSION
    }
    /// The plugin's subschema (`consumer`/`route`/`service` restrictions, `protocols`,
    /// `config`), checked on every Admin API write and declarative load.
    fn schema(&self) -> Schema;
    /// Builds an instance from a validated config (defaults filled in).
    fn build(&self, config: &Value, env: &BuildEnv<'_>) -> Result<Arc<dyn Plugin>, String>;
}

/// Who this node is, for plugins that report it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub id: String,
    pub hostname: String,
}

/// The plugin implementations a node runs (those enabled by `plugins`).
#[derive(Clone, Default)]
pub struct Factories(pub Vec<Arc<dyn PluginFactory>>);

impl std::fmt::Debug for Factories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|p| p.name())).finish()
    }
}

/// What a plugin can use while it is built: the configuration's consumers and entity rows
/// (credentials), and tables shared by every instance of a build.
pub struct BuildEnv<'a> {
    pub consumers: &'a Arc<Consumers>,
    /// This node's id and host name (`kong.node.get_id`, `kong.node.get_hostname`).
    pub node: &'a NodeInfo,
    rows: &'a dyn Fn(&str) -> &'a [Value],
    shared: RefCell<HashMap<&'static str, Arc<dyn Any + Send + Sync>>>,
}

impl std::fmt::Debug for BuildEnv<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildEnv").field("consumers", &self.consumers.len()).finish()
    }
}

impl<'a> BuildEnv<'a> {
    pub fn new(
        consumers: &'a Arc<Consumers>,
        node: &'a NodeInfo,
        rows: &'a dyn Fn(&str) -> &'a [Value],
    ) -> Self {
        Self { consumers, node, rows, shared: RefCell::new(HashMap::new()) }
    }

    /// The rows of an entity (e.g. `keyauth_credentials`).
    pub fn rows(&self, entity: &str) -> &'a [Value] {
        (self.rows)(entity)
    }

    /// A table built once per configuration and shared by every instance that asks for the
    /// same `key` (a credential index, say).
    pub fn shared<T: Any + Send + Sync>(
        &self,
        key: &'static str,
        make: impl FnOnce(&Self) -> Result<T, String>,
    ) -> Result<Arc<T>, String> {
        if let Some(v) = self.shared.borrow().get(key) {
            return v.clone().downcast::<T>().map_err(|_| format!("shared table {key}: type"));
        }
        let v = Arc::new(make(self)?);
        self.shared.borrow_mut().insert(key, v.clone());
        Ok(v)
    }
}

/// Whether an instance with these `protocols` runs on HTTP requests. Kong runs an instance on
/// every request of the subsystem its protocols name (`should_process_plugin`): they are not
/// matched against the request's own scheme. Absent protocols mean the HTTP ones.
fn runs_on_http(protocols: Option<&Value>) -> bool {
    match protocols.and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|p| matches!(p, "http" | "https" | "grpc" | "grpcs" | "ws" | "wss")),
        None => true,
    }
}

/// One plugin instance, built.
#[derive(Clone)]
pub struct Instance {
    pub id: Arc<str>,
    pub name: &'static str,
    pub plugin: Arc<dyn Plugin>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance").field("id", &self.id).field("name", &self.name).finish()
    }
}

/// How specific an instance is; lower wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    ConsumerRouteService,
    ConsumerRoute,
    ConsumerService,
    RouteService,
    // consumer-only instances rank here; they live in `Entry::consumer_global`
    Route,
    Service,
    Global,
}

/// The instances of one plugin name for one route.
#[derive(Debug)]
pub struct Entry {
    pub name: &'static str,
    pub priority: i64,
    default: Option<(Instance, Rank)>,
    /// Consumer+route+service, consumer+route and consumer+service instances, resolved for
    /// this route.
    by_consumer: HashMap<String, Instance>,
    /// Consumer-only instances (shared by every route).
    consumer_global: Option<Arc<HashMap<String, Instance>>>,
}

impl Entry {
    /// The instance that runs for this consumer (none if the plugin does not apply).
    pub fn select(&self, consumer: Option<&str>) -> Option<&Instance> {
        if let Some(c) = consumer {
            if let Some(i) = self.by_consumer.get(c) {
                return Some(i);
            }
            if let Some((i, Rank::RouteService)) = &self.default {
                return Some(i);
            }
            if let Some(i) = self.consumer_global.as_ref().and_then(|m| m.get(c)) {
                return Some(i);
            }
        }
        self.default.as_ref().map(|(i, _)| i)
    }
}

/// The plugins of one route, by descending priority.
#[derive(Debug, Default)]
pub struct Chain {
    pub entries: Vec<Entry>,
    /// Whether an instance of the chain reads the request body.
    pub needs_body: bool,
}

impl Chain {
    /// Runs the access phase: each entry's instance, picked with the consumer known at its
    /// turn. The instances that ran are collected for the later phases.
    pub fn access(&self, ctx: &mut Ctx<'_>, ran: &mut Vec<Instance>) -> Result<(), Exit> {
        for e in &self.entries {
            let consumer = ctx.state.consumer.clone();
            let Some(inst) = e.select(consumer.as_deref().map(|c| c.id.as_str())) else {
                continue;
            };
            ran.push(inst.clone());
            inst.plugin.access(ctx)?;
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `header_filter` over the instances that ran, in order.
pub fn header_filter(ran: &[Instance], ctx: &mut Ctx<'_>, resp: &mut ResponseHead<'_>) {
    for i in ran {
        i.plugin.header_filter(ctx, resp);
    }
}

/// A plugin row that cannot be built: the configuration is refused.
#[derive(Debug, thiserror::Error)]
#[error("plugin {name} ({id}): {message}")]
pub struct BuildError {
    pub id: String,
    pub name: String,
    pub message: String,
}

struct Row<'a> {
    inst: Instance,
    priority: i64,
    route: Option<&'a str>,
    service: Option<&'a str>,
    consumer: Option<&'a str>,
}

fn fk<'a>(row: &'a Value, k: &str) -> Option<&'a str> {
    row.get(k).and_then(|v| v.get("id")).and_then(Value::as_str)
}

/// Every chain of a configuration.
#[derive(Debug, Default)]
pub struct Chains {
    /// Plugin names in descending priority, each with its instances.
    names: Vec<NameSet>,
    memo: RefCell<HashMap<(String, String), Arc<Chain>>>,
}

#[derive(Debug, Default)]
struct NameSet {
    name: &'static str,
    priority: i64,
    global: Option<Instance>,
    by_route: HashMap<String, Instance>,
    by_service: HashMap<String, Instance>,
    by_route_service: HashMap<(String, String), Instance>,
    consumer_global: Option<Arc<HashMap<String, Instance>>>,
    by_consumer_route: HashMap<String, Vec<(String, Instance)>>,
    by_consumer_service: HashMap<String, Vec<(String, Instance)>>,
    by_consumer_route_service: HashMap<(String, String), Vec<(String, Instance)>>,
    routes_with_any: std::collections::HashSet<String>,
}

impl Chains {
    /// Builds every enabled plugin instance of `rows` with its factory. Rows whose plugin has
    /// no implementation on this node are skipped (they were accepted by a schema only).
    pub fn build(
        rows: &[Value],
        factories: &[Arc<dyn PluginFactory>],
        env: &BuildEnv<'_>,
    ) -> Result<Self, BuildError> {
        let mut by_name: HashMap<&'static str, NameSet> = HashMap::new();
        let mut built: Vec<Row<'_>> = Vec::new();
        for row in rows {
            if row.get("enabled").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let name = row.get("name").and_then(Value::as_str).unwrap_or_default();
            let Some(f) = factories.iter().find(|f| f.name() == name) else { continue };
            if !runs_on_http(row.get("protocols")) {
                continue; // a stream-only instance (tcp, tls, udp)
            }
            let id = row.get("id").and_then(Value::as_str).unwrap_or_default();
            let config = row.get("config").cloned().unwrap_or(Value::Object(Default::default()));
            let plugin = f.build(&config, env).map_err(|message| BuildError {
                id: id.to_owned(),
                name: name.to_owned(),
                message,
            })?;
            built.push(Row {
                inst: Instance { id: Arc::from(id), name: f.name(), plugin },
                priority: f.priority(),
                route: fk(row, "route"),
                service: fk(row, "service"),
                consumer: fk(row, "consumer"),
            });
        }
        let mut consumer_global: HashMap<&'static str, HashMap<String, Instance>> = HashMap::new();
        for r in built {
            let set = by_name.entry(r.inst.name).or_insert_with(|| NameSet {
                name: r.inst.name,
                priority: r.priority,
                ..NameSet::default()
            });
            if let Some(route) = r.route {
                set.routes_with_any.insert(route.to_owned());
            }
            let inst = r.inst;
            match (r.consumer, r.route, r.service) {
                (None, None, None) => set.global = Some(inst),
                (None, Some(rt), None) => {
                    set.by_route.insert(rt.to_owned(), inst);
                }
                (None, None, Some(s)) => {
                    set.by_service.insert(s.to_owned(), inst);
                }
                (None, Some(rt), Some(s)) => {
                    set.by_route_service.insert((rt.to_owned(), s.to_owned()), inst);
                }
                (Some(c), None, None) => {
                    consumer_global.entry(inst.name).or_default().insert(c.to_owned(), inst);
                }
                (Some(c), Some(rt), None) => {
                    set.by_consumer_route
                        .entry(rt.to_owned())
                        .or_default()
                        .push((c.to_owned(), inst));
                }
                (Some(c), None, Some(s)) => set
                    .by_consumer_service
                    .entry(s.to_owned())
                    .or_default()
                    .push((c.to_owned(), inst)),
                (Some(c), Some(rt), Some(s)) => set
                    .by_consumer_route_service
                    .entry((rt.to_owned(), s.to_owned()))
                    .or_default()
                    .push((c.to_owned(), inst)),
            }
        }
        for (name, m) in consumer_global {
            if let Some(set) = by_name.get_mut(name) {
                set.consumer_global = Some(Arc::new(m));
            }
        }
        let mut names: Vec<NameSet> = by_name.into_values().collect();
        // descending priority; the name breaks ties so that the order is stable
        names.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(b.name)));
        Ok(Self { names, memo: RefCell::new(HashMap::new()) })
    }

    /// Whether no plugin is configured at all.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The chain of a route (and its service); `None` when no plugin applies. Routes without
    /// route-level plugins share the chain of their service.
    pub fn for_route(&self, route: &str, service: Option<&str>) -> Option<Arc<Chain>> {
        if self.names.is_empty() {
            return None;
        }
        let route_key =
            if self.names.iter().any(|n| n.routes_with_any.contains(route)) { route } else { "" };
        let key = (route_key.to_owned(), service.unwrap_or_default().to_owned());
        if let Some(c) = self.memo.borrow().get(&key) {
            return (!c.is_empty()).then(|| c.clone());
        }
        let chain = Arc::new(self.resolve(route_key, service));
        self.memo.borrow_mut().insert(key, chain.clone());
        (!chain.is_empty()).then_some(chain)
    }

    fn resolve(&self, route: &str, service: Option<&str>) -> Chain {
        let mut entries = Vec::new();
        let mut needs_body = false;
        let rs = service.map(|s| (route.to_owned(), s.to_owned()));
        for n in &self.names {
            let default = rs
                .as_ref()
                .and_then(|k| n.by_route_service.get(k))
                .map(|i| (i.clone(), Rank::RouteService))
                .or_else(|| n.by_route.get(route).map(|i| (i.clone(), Rank::Route)))
                .or_else(|| {
                    service.and_then(|s| n.by_service.get(s)).map(|i| (i.clone(), Rank::Service))
                })
                .or_else(|| n.global.clone().map(|i| (i, Rank::Global)));
            let mut by_consumer: HashMap<String, (Instance, Rank)> = HashMap::new();
            let mut offer = |list: Option<&Vec<(String, Instance)>>, rank: Rank| {
                for (c, i) in list.into_iter().flatten() {
                    let better = by_consumer.get(c).is_none_or(|(_, r)| rank < *r);
                    if better {
                        by_consumer.insert(c.clone(), (i.clone(), rank));
                    }
                }
            };
            offer(
                rs.as_ref().and_then(|k| n.by_consumer_route_service.get(k)),
                Rank::ConsumerRouteService,
            );
            offer(n.by_consumer_route.get(route), Rank::ConsumerRoute);
            offer(service.and_then(|s| n.by_consumer_service.get(s)), Rank::ConsumerService);
            if default.is_none() && by_consumer.is_empty() && n.consumer_global.is_none() {
                continue;
            }
            let all = default
                .iter()
                .map(|(i, _)| i)
                .chain(by_consumer.values().map(|(i, _)| i))
                .chain(n.consumer_global.iter().flat_map(|m| m.values()));
            for i in all {
                needs_body |= i.plugin.needs_body();
            }
            entries.push(Entry {
                name: n.name,
                priority: n.priority,
                default,
                by_consumer: by_consumer.into_iter().map(|(c, (i, _))| (c, i)).collect(),
                consumer_global: n.consumer_global.clone(),
            });
        }
        Chain { entries, needs_body }
    }
}
