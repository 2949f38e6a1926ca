//! Turnpike's Admin API: Kong's RESTful API on `admin_listen` (default `127.0.0.1:8001`).
//!
//! Endpoints are generated from the schema registry exactly as Kong generates them
//! (collections, entities, foreign and nested endpoints), then customised where Kong
//! customises them (certificates by SNI, targets under upstreams, consumers by `custom_id`,
//! plugin schemas). Every error answers with Kong's body; unknown paths get
//! `{"message":"Not found"}` and unsupported methods `{"message":"Method not allowed"}`.
//!
//! `router(app)` returns the service; `serve` runs it on a listener. The crate talks to the
//! datastore only through the `Store` trait and never to the data plane.

mod args;
mod config;
mod entity;
mod http;
mod info;
mod listener;
mod special;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use axum::Router;
use serde_json::Value;
use turnpike_core::stats::ServerStats;
use turnpike_plugin_api::PluginSelection;
use turnpike_store::Store;

pub use config::{invalid_body, Declarative, DeclarativeInput, LoadError, Loaded};
pub use listener::CountingListener;

/// Runtime control of the log level (`/debug/node/log-level`).
pub trait LogControl: Send + Sync {
    fn level(&self) -> String;
    /// Sets the level for `timeout_secs` seconds (0: until changed again), then reverts to the
    /// configured level.
    fn set_level(&self, level: &str, timeout_secs: u64) -> Result<(), String>;
}

/// What `GET /` tells about this node.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node_id: String,
    pub hostname: String,
    /// The sanitized configuration (secrets redacted).
    pub configuration: Value,
    /// `traditional`, `control_plane` or `data_plane`.
    pub role: String,
}

/// Shared state of the Admin API.
pub struct App {
    pub store: Arc<dyn Store>,
    pub node: NodeInfo,
    pub plugins: PluginSelection,
    pub stats: Arc<ServerStats>,
    pub log_control: Option<Arc<dyn LogControl>>,
    pub started: Instant,
    /// DB-less mode: the node's declarative configuration (`/config`).
    pub declarative: Option<Arc<dyn Declarative>>,
}

/// What a handler receives.
pub(crate) struct Ctx {
    pub(crate) app: Arc<App>,
    pub(crate) params: HashMap<String, String>,
    pub(crate) input: http::Input,
}

type BoxFut = Pin<Box<dyn Future<Output = Response> + Send>>;
pub(crate) type Handler = Arc<dyn Fn(Ctx) -> BoxFut + Send + Sync>;

/// Builds a handler from an async function returning `HResult<Response>`.
pub(crate) fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = http::HResult<Response>> + Send + 'static,
{
    Arc::new(move |ctx| {
        let fut = f(ctx);
        Box::pin(async move { fut.await.unwrap_or_else(|r| r) })
    })
}

/// One path template with its methods.
#[derive(Default, Clone)]
pub(crate) struct Route {
    methods: BTreeMap<String, (Method, Handler)>,
    accepts_yaml: bool,
}

/// The route table, keyed by Kong-style templates (`/services/{services}/routes`).
#[derive(Default)]
pub(crate) struct Routes {
    map: BTreeMap<String, Route>,
}

impl Routes {
    pub(crate) fn on(&mut self, path: &str, method: Method, h: Handler) {
        self.map
            .entry(path.to_owned())
            .or_default()
            .methods
            .insert(method.to_string(), (method, h));
    }

    /// Replaces a path with a handler answering every method with 404 (`endpoints.disable`).
    pub(crate) fn disable(&mut self, path: &str) {
        let h = handler(|_ctx| async { Ok(http::not_found()) });
        let mut r = Route::default();
        for m in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            r.methods.insert(m.to_string(), (m, h.clone()));
        }
        self.map.insert(path.to_owned(), r);
    }

    pub(crate) fn accept_yaml(&mut self, path: &str) {
        self.map.entry(path.to_owned()).or_default().accepts_yaml = true;
    }

    pub(crate) fn templates(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }
}

fn allowed_methods(route: &Route) -> String {
    let mut names: Vec<String> = route.methods.keys().cloned().collect();
    if names.iter().any(|m| m == "GET") && !names.iter().any(|m| m == "HEAD") {
        names.push("HEAD".into());
    }
    names.push("OPTIONS".into());
    names.sort();
    names.join(", ")
}

fn options_response(allow: &str, req_headers: Option<HeaderValue>) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(allow) {
        h.insert(header::ALLOW, v.clone());
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        req_headers.unwrap_or_else(|| HeaderValue::from_static("Content-Type")),
    );
    res
}

/// Kong's answer to a URL segment that is not valid UTF-8 once percent-decoded: the key is
/// validated like any other and fails with "invalid utf-8 character sequence".
fn invalid_utf8_param(app: &App, template: &str, path: &str) -> Response {
    for (t, raw) in template.split('/').zip(path.split('/')) {
        let Some(name) = t.strip_prefix('{').and_then(|n| n.strip_suffix('}')) else { continue };
        let bytes: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
        let Err(e) = std::str::from_utf8(&bytes) else { continue };
        let msg = format!(
            "invalid utf-8 character sequence detected at position {}",
            e.valid_up_to() + 1
        );
        let err = if name == "tags" {
            turnpike_core::errors::DaoError::invalid_unique(
                "tag",
                &turnpike_core::errors::ErrTree::msg(msg),
            )
        } else {
            match app.store.registry().get(name).and_then(|s| s.endpoint_key) {
                Some(key) => turnpike_core::errors::DaoError::invalid_unique(
                    key,
                    &turnpike_core::errors::ErrTree::msg(msg),
                ),
                None => {
                    let mut t = turnpike_core::errors::ErrTree::table();
                    t.set("id", turnpike_core::errors::ErrTree::msg("expected a valid UUID"));
                    turnpike_core::errors::DaoError::invalid_primary_key(&t)
                }
            }
        };
        return http::dao_error(&err);
    }
    http::message(StatusCode::BAD_REQUEST, "Bad request")
}

async fn dispatch(
    app: Arc<App>,
    template: &str,
    params: Result<RawPathParams, RawPathParamsRejection>,
    req: Request,
    h: Handler,
    yaml: bool,
) -> Response {
    let params = match params {
        Ok(p) => p.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        Err(RawPathParamsRejection::MissingPathParams(_)) => HashMap::new(),
        Err(_) => return invalid_utf8_param(&app, template, req.uri().path()),
    };
    let input = match http::read_input(req, yaml).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    h(Ctx { app, params, input }).await
}

fn method_router(template: &str, route: Route) -> MethodRouter<Arc<App>> {
    let template: Arc<str> = Arc::from(template);
    let allow = allowed_methods(&route);
    let yaml = route.accepts_yaml;
    let mut mr: MethodRouter<Arc<App>> = MethodRouter::new();
    for (_, (method, h)) in route.methods {
        let filter = match method {
            Method::GET => MethodFilter::GET,
            Method::POST => MethodFilter::POST,
            Method::PUT => MethodFilter::PUT,
            Method::PATCH => MethodFilter::PATCH,
            Method::DELETE => MethodFilter::DELETE,
            _ => continue,
        };
        mr = mr.on(filter, {
            let template = template.clone();
            move |State(app): State<Arc<App>>,
                  params: Result<RawPathParams, RawPathParamsRejection>,
                  req: Request| {
                let h = h.clone();
                let template = template.clone();
                async move { dispatch(app, &template, params, req, h, yaml).await }
            }
        });
    }
    mr.options(move |req: Request| {
        let allow = allow.clone();
        async move {
            options_response(&allow, req.headers().get("access-control-request-headers").cloned())
        }
    })
    .fallback(|| async { http::method_not_allowed() })
}

/// Kong's CORS filter and server tokens, on every response.
async fn decorate(req: Request, next: axum::middleware::Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let started = Instant::now();
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        origin.unwrap_or_else(|| HeaderValue::from_static("*")),
    );
    h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    if let Ok(v) = HeaderValue::from_str(&format!("turnpike/{}", turnpike_core::TURNPIKE_VERSION)) {
        h.insert(header::SERVER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&started.elapsed().as_millis().to_string()) {
        h.insert("x-kong-admin-latency", v);
    }
    res
}

/// Kong answers `/services/` like `/services`.
fn strip_trailing_slash(mut req: Request) -> Request {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let new = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = new.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// The service type of the Admin and Status APIs.
pub trait ApiService:
    tower::Service<Request, Response = Response, Error = std::convert::Infallible, Future: Send>
    + Clone
    + Send
    + 'static
{
}

impl<T> ApiService for T where
    T: tower::Service<Request, Response = Response, Error = std::convert::Infallible, Future: Send>
        + Clone
        + Send
        + 'static
{
}

fn build(mut routes: Routes, app: Arc<App>) -> impl ApiService {
    let mut router: Router<Arc<App>> = Router::new();
    for (path, route) in std::mem::take(&mut routes.map) {
        router = router.route(&path, method_router(&path, route));
    }
    let router = router
        .route("/robots.txt", axum::routing::get(|| async { "User-agent: *\nDisallow: /" }))
        .fallback(|| async { http::not_found() })
        .layer(axum::middleware::from_fn(decorate))
        .layer(axum::middleware::from_fn_with_state(app.clone(), count_request))
        .with_state(app);
    tower::ServiceBuilder::new().map_request(strip_trailing_slash).service(router)
}

/// The Admin API as a service (trailing slashes normalized before routing).
pub fn router(app: Arc<App>) -> impl ApiService {
    let mut routes = Routes::default();
    let registry = app.store.registry().clone();
    for schema in registry.iter() {
        if !schema.generate_admin_api || schema.name == "tags" {
            continue;
        }
        for (path, ep) in entity::generate(schema, &registry) {
            let ep = Arc::new(ep);
            let get = ep.clone();
            routes.on(
                &path,
                Method::GET,
                handler(move |ctx| {
                    let ep = get.clone();
                    async move { ep.get(ctx).await }
                }),
            );
            let kind_is_collection =
                matches!(ep.kind, entity::Kind::Collection | entity::Kind::NestedCollection { .. });
            if kind_is_collection {
                let post = ep.clone();
                routes.on(
                    &path,
                    Method::POST,
                    handler(move |ctx| {
                        let ep = post.clone();
                        async move { ep.post(ctx).await }
                    }),
                );
            } else {
                let put = ep.clone();
                routes.on(
                    &path,
                    Method::PUT,
                    handler(move |ctx| {
                        let ep = put.clone();
                        async move { ep.put(ctx).await }
                    }),
                );
                let patch = ep.clone();
                routes.on(
                    &path,
                    Method::PATCH,
                    handler(move |ctx| {
                        let ep = patch.clone();
                        async move { ep.patch(ctx, None).await }
                    }),
                );
                let delete = ep.clone();
                routes.on(
                    &path,
                    Method::DELETE,
                    handler(move |ctx| {
                        let ep = delete.clone();
                        async move { ep.delete(ctx).await }
                    }),
                );
            }
        }
    }
    special::install(&mut routes, &registry);
    info::install(&mut routes);
    info::install_endpoints(&mut routes);
    build(routes, app)
}

/// The Status API (`status_listen`): `/status` and `/status/ready`.
pub fn status_router(app: Arc<App>) -> impl ApiService {
    let mut routes = Routes::default();
    info::install_status(&mut routes);
    build(routes, app)
}

async fn count_request(
    State(app): State<Arc<App>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    app.stats.total_requests.fetch_add(1, Ordering::Relaxed);
    next.run(req).await
}

/// Serves `svc` (from [`router`] or [`status_router`]) on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    stats: Arc<ServerStats>,
    svc: impl ApiService,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        CountingListener::new(listener, stats),
        axum::ServiceExt::<Request>::into_make_service(svc),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
