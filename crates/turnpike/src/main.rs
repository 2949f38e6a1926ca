//! `turnpike`: the gateway binary. CLI (`start`, `stop`, `health`, `version`, `check`,
//! `migrations …`), configuration loading, logging, and the wiring of store, Admin API and
//! data plane.

mod config;
mod dataplane;
mod dbless;
mod export;
mod logging;
mod process;
mod proxy_conf;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use serde_json::json;
use turnpike_store::{migrations, DbConfig, SqlStore, Store as _, StoreError};

use crate::config::Config;

/// mimalloc: the request path allocates many small, short-lived objects, which glibc's malloc
/// serves markedly slower (measured: see docs/architecture.md, "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "turnpike", version, about = "Turnpike: a Kong-compatible API gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct ConfArgs {
    /// Configuration file (kong.conf format).
    #[arg(short = 'c', long = "conf")]
    conf: Option<PathBuf>,
    /// Working directory (SQLite file, pid file); overrides `prefix`.
    #[arg(short = 'p', long = "prefix")]
    prefix: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the gateway in the foreground.
    Start {
        #[command(flatten)]
        conf: ConfArgs,
        /// Bootstrap or upgrade the database schema before starting (PostgreSQL).
        #[arg(long)]
        run_migrations: bool,
    },
    /// Stop a running gateway (SIGTERM, graceful).
    Stop {
        #[command(flatten)]
        conf: ConfArgs,
    },
    /// Stop a running gateway after in-flight requests complete (SIGQUIT).
    Quit {
        #[command(flatten)]
        conf: ConfArgs,
    },
    /// Check that the gateway is running.
    Health {
        #[command(flatten)]
        conf: ConfArgs,
    },
    /// Print the version.
    Version {
        /// Also print the Kong version this build is compatible with.
        #[arg(short, long)]
        all: bool,
    },
    /// Validate a configuration file.
    Check {
        /// The configuration file.
        conf: PathBuf,
    },
    /// Manage the database schema.
    Migrations {
        #[command(subcommand)]
        action: MigrationsAction,
    },
    /// Declarative configuration files (kong.yml).
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Write a commented example declarative configuration (default: ./kong.yml).
    Init {
        /// The file to write.
        file: Option<PathBuf>,
        #[command(flatten)]
        _conf: ConfArgs,
    },
    /// Check a declarative configuration file; errors are printed and the exit code is 1.
    Parse {
        file: PathBuf,
        #[command(flatten)]
        conf: ConfArgs,
    },
    /// Load a declarative configuration file into the database, in one transaction.
    #[command(name = "db_import")]
    DbImport {
        file: PathBuf,
        #[command(flatten)]
        conf: ConfArgs,
    },
    /// Write the database's configuration as a declarative file (default: ./kong.yml; `-`
    /// for standard output).
    #[command(name = "db_export")]
    DbExport {
        file: Option<PathBuf>,
        #[command(flatten)]
        conf: ConfArgs,
    },
}

#[derive(Subcommand)]
enum MigrationsAction {
    /// Create the schema on an empty database.
    Bootstrap {
        #[command(flatten)]
        conf: ConfArgs,
    },
    /// Run pending migrations.
    Up {
        #[command(flatten)]
        conf: ConfArgs,
    },
    /// List executed and pending migrations.
    List {
        #[command(flatten)]
        conf: ConfArgs,
    },
    /// Drop every table Turnpike created.
    Reset {
        #[command(flatten)]
        conf: ConfArgs,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
}

fn env_pairs() -> Vec<(String, String)> {
    std::env::vars().filter(|(k, _)| k.starts_with("KONG_") || k.starts_with("TURNPIKE_")).collect()
}

fn load(conf: &ConfArgs) -> Result<Config> {
    Config::load(conf.conf.as_deref(), &env_pairs(), conf.prefix.as_deref())
}

fn db_label(db: &DbConfig) -> String {
    match db {
        DbConfig::Sqlite { path } => path.display().to_string(),
        DbConfig::Postgres(pg) => pg.database.clone(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The runtime of a node's control side (Admin API, store, configuration loads). In DB-less
/// mode its threads run at a lower priority than the proxy's workers (which are started from
/// the main thread and keep the normal one), so that loading a large configuration takes CPU
/// from requests as little as possible; threads they start (the embedded database's) inherit
/// it. With a database the Admin API keeps the normal priority.
fn node_runtime(low_priority: bool) -> Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all();
    if low_priority {
        b.on_thread_start(|| {
            let _ = rustix::process::setpriority_process(None, 5);
        });
    }
    b.build().context("cannot start the async runtime")
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Version { all } => {
            if all {
                println!(
                    "Turnpike {}\nKong compatibility: {}",
                    turnpike_core::TURNPIKE_VERSION,
                    turnpike_core::KONG_COMPAT_VERSION
                );
            } else {
                println!("Turnpike {}", turnpike_core::TURNPIKE_VERSION);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { conf } => {
            Config::load(Some(&conf), &env_pairs(), None)?;
            println!("configuration at {} is valid", conf.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Start { conf, run_migrations } => {
            let cfg = load(&conf)?;
            let log = logging::init(&cfg)?;
            node_runtime(cfg.db_off)?.block_on(start(cfg, run_migrations, log))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Stop { conf } => process::stop(&load(&conf)?, process::Graceful::Term),
        Command::Quit { conf } => process::stop(&load(&conf)?, process::Graceful::Quit),
        Command::Health { conf } => process::health(&load(&conf)?),
        Command::Migrations { action } => runtime()?.block_on(migrations_cmd(action)),
        Command::Config { action } => runtime()?.block_on(config_cmd(action)),
    }
}

/// The example `turnpike config init` writes.
const KONG_YML_TEMPLATE: &str = include_str!("kong_yml_template.yml");

fn read_declarative(file: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

async fn config_cmd(action: ConfigAction) -> Result<ExitCode> {
    use turnpike_core::declarative;
    match action {
        ConfigAction::Init { file, .. } => {
            let file = file.unwrap_or_else(|| PathBuf::from("kong.yml"));
            if file.exists() {
                bail!("{} already exists", file.display());
            }
            std::fs::write(&file, KONG_YML_TEMPLATE)
                .with_context(|| format!("cannot write {}", file.display()))?;
            println!("Successfully written {}", file.display());
        }
        ConfigAction::Parse { file, conf } => {
            let cfg = load(&conf)?;
            let registry = turnpike_plugins::registry(&cfg.plugins);
            let text = read_declarative(&file)?;
            match declarative::load(&text, &registry, &Default::default()) {
                Ok(_) => println!("parse successful"),
                Err(e) => {
                    eprintln!("Error: Failed parsing:\n{e}");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        ConfigAction::DbImport { file, conf } => {
            let cfg = load(&conf)?;
            if cfg.db_off {
                bail!("'kong config db_import' is not available when database = off");
            }
            let text = read_declarative(&file)?;
            let store = open_store(&cfg, false).await?;
            let registry = store.registry().clone();
            let flat = match declarative::load(&text, &registry, &Default::default()) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("Error: Failed parsing:\n{e}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            match store.import(&flat, false).await {
                Ok(n) => {
                    println!("parse successful, beginning import");
                    println!("import successful ({n} entities)");
                }
                Err(e) => {
                    eprintln!("Error: Failed importing:\n{}", e.message);
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        ConfigAction::DbExport { file, conf } => {
            let cfg = load(&conf)?;
            if cfg.db_off {
                bail!("'kong config db_export' is not available when database = off");
            }
            let store = open_store(&cfg, false).await?;
            let yaml = export::export_yaml(&*store).await.map_err(anyhow::Error::msg)?;
            match file.as_deref().map(|p| p.to_str() == Some("-")) {
                Some(true) => print!("{yaml}"),
                _ => {
                    let file = file.unwrap_or_else(|| PathBuf::from("kong.yml"));
                    std::fs::write(&file, yaml)
                        .with_context(|| format!("cannot write {}", file.display()))?;
                    println!("Successfully exported to {}", file.display());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the configured database stands, without creating an embedded database file.
async fn db_state(db: &DbConfig) -> Result<migrations::State> {
    if let DbConfig::Sqlite { path } = db {
        if !path.exists() {
            return Ok(migrations::State::NeedsBootstrap);
        }
    }
    Ok(migrations::state(db).await?)
}

async fn migrations_cmd(action: MigrationsAction) -> Result<ExitCode> {
    match action {
        MigrationsAction::Bootstrap { conf } => {
            let cfg = load(&conf)?;
            std::fs::create_dir_all(&cfg.prefix).ok();
            if db_state(&cfg.database).await? != migrations::State::NeedsBootstrap {
                println!("Database already bootstrapped");
                return Ok(ExitCode::SUCCESS);
            }
            println!("Bootstrapping database...");
            let ran = migrations::bootstrap(&cfg.database).await?;
            print_ran(&cfg.database, &ran);
            println!("Database is up-to-date");
        }
        MigrationsAction::Up { conf } => {
            let cfg = load(&conf)?;
            if db_state(&cfg.database).await? == migrations::State::NeedsBootstrap {
                bail!("Cannot run migrations: {}", needs_bootstrap_text());
            }
            let ran = migrations::up(&cfg.database, false).await?;
            if ran.is_empty() {
                println!("Database is already up-to-date");
            } else {
                print_ran(&cfg.database, &ran);
                println!("Database is up-to-date");
            }
        }
        MigrationsAction::List { conf } => {
            let cfg = load(&conf)?;
            if db_state(&cfg.database).await? == migrations::State::NeedsBootstrap {
                println!("{}", needs_bootstrap_text());
                return Ok(ExitCode::from(3));
            }
            let (done, pending) = migrations::list(&cfg.database).await?;
            println!("Executed migrations:");
            let names: Vec<&str> = done.iter().map(|e| e.name.as_str()).collect();
            println!("  core: {}", names.join(", "));
            if pending.is_empty() {
                println!("\nDatabase is up-to-date");
            } else {
                println!(
                    "\nNew migrations available:\n  core: {}\n\nRun 'turnpike migrations up' to proceed",
                    pending.join(", ")
                );
                return Ok(ExitCode::from(5));
            }
        }
        MigrationsAction::Reset { conf, yes } => {
            let cfg = load(&conf)?;
            if !yes {
                use std::io::{BufRead, IsTerminal, Write};
                if !std::io::stdin().is_terminal() {
                    bail!("not a tty: invoke 'reset' non-interactively with the --yes flag");
                }
                print!("Are you sure? This operation is irreversible. [Y/n] ");
                std::io::stdout().flush().ok();
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer).ok();
                if !matches!(answer.trim(), "Y" | "y" | "") {
                    println!("Canceled");
                    return Ok(ExitCode::SUCCESS);
                }
            }
            if db_state(&cfg.database).await? == migrations::State::NeedsBootstrap {
                println!("Database not bootstrapped, nothing to reset");
                return Ok(ExitCode::FAILURE);
            }
            migrations::reset(&cfg.database).await?;
            println!("Database successfully reset");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_ran(db: &DbConfig, ran: &[String]) {
    println!("migrating core on database '{}'...", db_label(db));
    for m in ran {
        println!("core migrated up to: {m} (executed)");
    }
    println!(
        "{} migration{} processed\n{} executed",
        ran.len(),
        if ran.len() == 1 { "" } else { "s" },
        ran.len()
    );
}

fn needs_bootstrap_text() -> &'static str {
    "Database needs bootstrapping or is older than Kong 1.0.\n\n\
     To start a new installation from scratch, run 'turnpike migrations bootstrap'."
}

/// Opens the store, preparing the schema where that is safe to do automatically.
async fn open_store(cfg: &Config, run_migrations: bool) -> Result<Arc<SqlStore>> {
    let registry = Arc::new(turnpike_plugins::registry(&cfg.plugins));
    match &cfg.database {
        DbConfig::Sqlite { .. } => {
            // The embedded database belongs to this node: keep it bootstrapped and current.
            let ran = migrations::up(&cfg.database, true).await?;
            if !ran.is_empty() {
                tracing::info!(migrations = ?ran, "database migrated");
            }
        }
        DbConfig::Postgres(_) if run_migrations => {
            let ran = migrations::up(&cfg.database, true).await?;
            if !ran.is_empty() {
                tracing::info!(migrations = ?ran, "database migrated");
            }
        }
        DbConfig::Postgres(_) => {}
    }
    match SqlStore::open(&cfg.database, registry).await {
        Ok(s) => Ok(Arc::new(s)),
        Err(StoreError::NeedsBootstrap) => bail!("{}", needs_bootstrap_text()),
        Err(StoreError::PendingMigrations(p)) => {
            bail!("New migrations available ({p}); run 'turnpike migrations up' to proceed")
        }
        Err(e) => Err(e.into()),
    }
}

async fn start(cfg: Config, run_migrations: bool, log: Arc<logging::LogHandle>) -> Result<()> {
    std::fs::create_dir_all(&cfg.prefix)
        .with_context(|| format!("cannot create prefix {}", cfg.prefix.display()))?;
    let _pid = process::PidFile::acquire(&cfg.pid_file())?;
    let node_id = process::node_id(&cfg)?;
    let store = if cfg.db_off {
        let registry = Arc::new(turnpike_plugins::registry(&cfg.plugins));
        let path = cfg.prefix.join("dbless.db");
        // opened on a runtime thread: the embedded database's threads inherit its priority
        let store = tokio::spawn(async move { SqlStore::open_dbless(&path, registry).await })
            .await
            .context("opening the DB-less store panicked")??;
        Arc::new(store)
    } else {
        open_store(&cfg, run_migrations).await?
    };
    // the data plane's settings, and in DB-less mode the first configuration, before any
    // listener opens
    let mut proxy_settings = cfg.proxy.clone();
    proxy_settings.plugins = turnpike_plugins::enabled(&cfg.plugins);
    proxy_settings.node = turnpike_plugin_api::NodeInfo {
        id: node_id.clone(),
        hostname: gethostname::gethostname().to_string_lossy().into_owned(),
    };
    proxy_conf::ensure_certificate(&mut proxy_settings, &cfg.prefix)?;
    let proxy_settings = Arc::new(proxy_settings);
    let dbless = if cfg.db_off {
        let d = Arc::new(dbless::DbLess::new(
            store.clone(),
            store.registry().clone(),
            proxy_settings.clone(),
        ));
        Some(d)
    } else {
        None
    };
    let dbless_initial = match &dbless {
        Some(d) => {
            // a file read at start, off the runtime's workers
            let text = tokio::task::block_in_place(|| cfg.declarative_text())?;
            Some(d.initial(text).await?)
        }
        None => None,
    };
    let stats = Arc::new(turnpike_core::stats::ServerStats::default());
    let hostname = gethostname::gethostname().to_string_lossy().into_owned();
    let app = Arc::new(turnpike_admin::App {
        store: store.clone(),
        node: turnpike_admin::NodeInfo {
            node_id: node_id.clone(),
            hostname,
            configuration: cfg.sanitized(),
            role: cfg.role.clone(),
        },
        plugins: cfg.plugins.clone(),
        stats,
        log_control: Some(log),
        started: Instant::now(),
        declarative: dbless.clone().map(|d| d as Arc<dyn turnpike_admin::Declarative>),
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut bound = serde_json::Map::new();
    for (kind, listeners) in [("admin", &cfg.admin_listen), ("status", &cfg.status_listen)] {
        let mut addrs = Vec::new();
        for l in listeners {
            if l.ssl {
                tracing::warn!(listener = %l.raw, "TLS {kind} listeners are not available yet; skipped");
                continue;
            }
            let listener = tokio::net::TcpListener::bind(l.addr)
                .await
                .with_context(|| format!("cannot listen on {} ({kind}_listen)", l.addr))?;
            addrs.push(listener.local_addr()?.to_string());
            let app = app.clone();
            let mut rx = stop_rx.clone();
            tasks.spawn(async move {
                let shutdown = async move {
                    let _ = rx.wait_for(|v| *v).await;
                };
                let stats = app.stats.clone();
                let result = if kind == "admin" {
                    turnpike_admin::serve(listener, stats, turnpike_admin::router(app), shutdown)
                        .await
                } else {
                    turnpike_admin::serve(
                        listener,
                        stats,
                        turnpike_admin::status_router(app),
                        shutdown,
                    )
                    .await
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, "{kind} server failed");
                }
            });
        }
        bound.insert(kind.to_owned(), json!(addrs));
    }
    // the data plane: the first configuration is built before the listeners open, so that the
    // first request is routed
    let mut proxy = None;
    if let (Some(d), Some(initial), false) =
        (&dbless, dbless_initial, proxy_settings.listeners.is_empty())
    {
        let p =
            turnpike_proxy::Proxy::start((*proxy_settings).clone(), initial, app.stats.clone())?;
        bound.insert(
            "proxy".into(),
            json!(p.local_addrs().iter().map(ToString::to_string).collect::<Vec<_>>()),
        );
        d.set_publisher(p.publisher());
        proxy = Some((p, None));
    } else if dbless.is_none() && !proxy_settings.listeners.is_empty() {
        let watcher = store.spawn_change_watcher(turnpike_store::WatcherConfig::default());
        // subscribe before the first load: a change made while it runs triggers a rebuild
        let changes = store.changes();
        let initial = dataplane::build(&store, &proxy_settings, 1)
            .await
            .context("cannot build the initial proxy configuration")?;
        let p =
            turnpike_proxy::Proxy::start((*proxy_settings).clone(), initial, app.stats.clone())?;
        bound.insert(
            "proxy".into(),
            json!(p.local_addrs().iter().map(ToString::to_string).collect::<Vec<_>>()),
        );
        tasks.spawn(dataplane::run(
            store.clone(),
            proxy_settings.clone(),
            p.publisher(),
            changes,
            stop_rx.clone(),
        ));
        proxy = Some((p, Some(watcher)));
    } else {
        bound.insert("proxy".into(), json!([]));
    }
    let listeners = serde_json::Value::Object(bound);
    std::fs::write(cfg.listeners_file(), listeners.to_string())
        .with_context(|| format!("cannot write {}", cfg.listeners_file().display()))?;
    tracing::info!(
        node_id = %node_id,
        database = cfg.database_name(),
        listeners = %listeners,
        prefix = %cfg.prefix.display(),
        version = turnpike_core::TURNPIKE_VERSION,
        "Turnpike started"
    );

    let signal = process::wait_for_signal().await;
    tracing::info!(signal, "shutting down");
    let _ = stop_tx.send(true);
    if let Some((p, watcher)) = proxy {
        if let Some(w) = watcher {
            w.abort();
        }
        // in-flight requests get the drain time; a second signal stops at once
        let stopper = p.stopper();
        let mut drain = tokio::task::spawn_blocking(move || p.shutdown(true));
        tokio::select! {
            _ = &mut drain => {}
            signal = process::wait_for_signal() => {
                tracing::warn!(signal, "second signal: closing connections now");
                stopper.stop(false);
                let _ = drain.await;
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    store.close().await;
    let _ = std::fs::remove_file(cfg.listeners_file());
    tracing::info!("Turnpike stopped");
    Ok(())
}
