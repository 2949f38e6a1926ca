//! The `turnpike` command line against the real binary: `version`, `check`, `start`,
//! `health`, `stop`, `migrations …` on SQLite and PostgreSQL, configuration from a `-c` file
//! and from `KONG_*`/`TURNPIKE_*` variables, JSON logs and secret redaction.
//!
//! Expectations follow Kong 3.9's `kong/cmd/*.lua` (`check.lua`, `health.lua`, `start.lua`,
//! `migrations.lua`, `utils/migrations.lua`) where Turnpike mirrors a Kong command.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use turnpike_store::PgConfig;
use turnpike_test::{binary, listeners, Client, Db, Gateway};

// ---- helpers -------------------------------------------------------------------------------

/// The output of a finished command.
#[derive(Debug)]
struct Out {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Out {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Environment for a command: only `PATH` and `env` (no inherited `KONG_*`/`TURNPIKE_*`).
fn command(args: &[&str], env: &[(String, String)], dir: &Path) -> (Command, PathBuf, PathBuf) {
    let mut cmd = Command::new(binary());
    cmd.args(args).env_clear().current_dir(dir);
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let n = uuid::Uuid::new_v4().simple().to_string();
    let out = dir.join(format!("out-{n}.txt"));
    let err = dir.join(format!("err-{n}.txt"));
    cmd.stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .stdin(Stdio::null());
    (cmd, out, err)
}

/// Runs a command to completion; fails the test if it does not finish within 60 s.
async fn run(args: &[&str], env: &[(String, String)], dir: &Path) -> Out {
    let (mut cmd, out, err) = command(args, env, dir);
    let mut child = cmd.spawn().expect("spawn turnpike");
    let status = wait(&mut child, Duration::from_secs(60)).await.unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("turnpike {args:?} did not finish within 60s");
    });
    Out {
        status,
        stdout: std::fs::read_to_string(out).unwrap_or_default(),
        stderr: std::fs::read_to_string(err).unwrap_or_default(),
    }
}

/// Polls a child until it exits or the deadline passes.
async fn wait(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until `f` holds or the deadline passes.
async fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn s(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

/// Listeners on port 0, so that tests never collide.
fn listen_env() -> Vec<(String, String)> {
    vec![
        s("TURNPIKE_ADMIN_LISTEN", "127.0.0.1:0"),
        s("TURNPIKE_STATUS_LISTEN", "127.0.0.1:0"),
        s("TURNPIKE_PROXY_LISTEN", "off"),
    ]
}

/// A `turnpike start` running in the foreground; killed when dropped.
struct Node {
    child: Child,
    prefix: PathBuf,
    log: PathBuf,
}

impl Node {
    /// Spawns `start -p prefix <extra>` and waits for its listeners; `None` if it exited.
    async fn start(prefix: &Path, extra: &[&str], env: &[(String, String)]) -> Result<Node, Out> {
        let mut args = vec!["start", "-p", prefix.to_str().unwrap()];
        args.extend_from_slice(extra);
        let dir = prefix.parent().unwrap();
        let (mut cmd, out, err) = command(&args, env, dir);
        let listeners = prefix.join("turnpike.listeners");
        let _ = std::fs::remove_file(&listeners);
        let mut child = cmd.spawn().expect("spawn turnpike start");
        let _ = std::fs::remove_file(&listeners);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if std::fs::read_to_string(&listeners)
                .is_ok_and(|t| serde_json::from_str::<Value>(&t).is_ok())
            {
                return Ok(Node { child, prefix: prefix.to_owned(), log: err });
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(Out {
                    status,
                    stdout: std::fs::read_to_string(out).unwrap_or_default(),
                    stderr: std::fs::read_to_string(err).unwrap_or_default(),
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("turnpike start did not come up within 60s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn listeners(&self) -> Value {
        listeners(&self.prefix)
    }

    fn admin(&self) -> Client {
        let l = self.listeners();
        Client::new(&format!("http://{}", l["admin"][0].as_str().expect("an admin listener")))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `turnpike <action> -p <prefix>` against a running node and reaps the node while the
/// command waits for it to exit (an unreaped child would stay a zombie, i.e. "alive").
/// Returns the command's output and the node's exit status.
async fn stop_node(
    node: &mut Node,
    action: &str,
    env: &[(String, String)],
    dir: &Path,
) -> (Out, Option<ExitStatus>) {
    let p = node.prefix.to_str().unwrap().to_owned();
    let (mut cmd, out, err) = command(&[action, "-p", &p], env, dir);
    let mut stopper = cmd.spawn().expect("spawn turnpike stop");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut node_status = None;
    loop {
        if node_status.is_none() {
            node_status = node.child.try_wait().ok().flatten();
        }
        if let Ok(Some(status)) = stopper.try_wait() {
            if node_status.is_none() {
                node_status = wait(&mut node.child, Duration::from_secs(30)).await;
            }
            let out = Out {
                status,
                stdout: std::fs::read_to_string(out).unwrap_or_default(),
                stderr: std::fs::read_to_string(err).unwrap_or_default(),
            };
            return (out, node_status);
        }
        if Instant::now() > deadline {
            let _ = stopper.kill();
            let _ = stopper.wait();
            panic!("turnpike {action} did not finish within 60s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get_root(c: &Client) -> Value {
    let res = c.get("/").await;
    assert_eq!(res.status, 200, "GET /: {}", res.text());
    res.json()
}

/// The environment that points the binary at a fresh PostgreSQL schema.
async fn pg_env(url: &str) -> (Vec<(String, String)>, PgConfig) {
    let cfg = turnpike_store::testing::scratch_schema(url).await;
    (turnpike_test::pg_env(&cfg), cfg)
}

// ---- version and check -----------------------------------------------------------------------

#[tokio::test]
async fn version() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["version"], &[], dir.path()).await;
    assert!(out.status.success(), "version: {out:?}");
    assert_eq!(out.stdout.lines().count(), 1, "version prints one line: {out:?}");
    assert!(out.stdout.contains(env!("CARGO_PKG_VERSION")), "version: {out:?}");
    let out = run(&["version", "--all"], &[], dir.path()).await;
    assert!(out.status.success(), "version --all: {out:?}");
    assert!(out.stdout.contains("3.9.1"), "version --all names the Kong version: {out:?}");
    let out = run(&["version", "-a"], &[], dir.path()).await;
    assert!(out.status.success() && out.stdout.contains("3.9.1"), "version -a: {out:?}");
}

#[tokio::test]
async fn check_configuration_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };

    // valid files
    for (name, text) in [
        ("empty.conf", ""),
        ("valid.conf", "# comment\nlog_level = debug\nadmin_listen = 127.0.0.1:9001, 127.0.0.1:9444 http2 ssl\nproxy_listen = off\nplugins = bundled\n"),
        ("postgres.conf", "database = postgres\npg_host = db.invalid\npg_port = 5433\npg_password = a\\#b\n"),
        ("unknown-key.conf", "log_level = info\nsome_future_setting = 1\n"),
        ("nginx.conf", "nginx_worker_processes = 2\nnginx_admin_client_max_body_size = 20m\n"),
    ] {
        let p = write(name, text);
        let out = run(&["check", &p], &[], d).await;
        assert!(out.status.success(), "check {name}: {out:?}");
        assert!(out.stdout.contains(&format!("configuration at {p} is valid")), "check {name}: {out:?}");
    }

    // invalid files: exit code 1, and the error names the problem
    for (name, text, needle) in [
        ("log-level.conf", "log_level = loud\n", "log_level"),
        ("database.conf", "database = cassandra\n", "database"),
        ("listen.conf", "admin_listen = nowhere\n", "admin_listen"),
        ("listen-flag.conf", "admin_listen = 127.0.0.1:8001 quic\n", "admin_listen"),
        ("syntax.conf", "this is not a setting\n", "line 1"),
        ("pg-port.conf", "database = postgres\npg_port = abc\n", "pg_port"),
        ("plugins.conf", "plugins = bundled,no-such-plugin\n", "no-such-plugin"),
        ("log-format.conf", "log_format = xml\n", "log_format"),
        ("pg-ssl.conf", "database = postgres\npg_ssl = maybe\n", "pg_ssl"),
    ] {
        let p = write(name, text);
        let out = run(&["check", &p], &[], d).await;
        assert_eq!(out.code(), Some(1), "check {name} fails: {out:?}");
        assert!(out.stderr.contains(needle), "check {name}: error mentions {needle}: {out:?}");
        assert!(!out.stdout.contains("is valid"), "check {name}: {out:?}");
    }

    // a missing file
    let missing = d.join("missing.conf");
    let out = run(&["check", missing.to_str().unwrap()], &[], d).await;
    assert_eq!(out.code(), Some(1), "check of a missing file: {out:?}");
    assert!(out.stderr.contains("missing.conf"), "check of a missing file: {out:?}");

    // the environment applies on top of the file (Kong's conf_loader reads KONG_* too)
    let p = write("env.conf", "log_level = info\n");
    let out = run(&["check", &p], &[s("KONG_LOG_LEVEL", "loud")], d).await;
    assert_eq!(out.code(), Some(1), "KONG_LOG_LEVEL=loud makes the configuration invalid: {out:?}");
    let out = run(&["check", &p], &[s("TURNPIKE_LOG_LEVEL", "loud")], d).await;
    assert_eq!(
        out.code(),
        Some(1),
        "TURNPIKE_LOG_LEVEL=loud makes the configuration invalid: {out:?}"
    );
    let out =
        run(&["check", &p], &[s("KONG_LOG_LEVEL", "loud"), s("TURNPIKE_LOG_LEVEL", "warn")], d)
            .await;
    assert!(out.status.success(), "TURNPIKE_ wins over KONG_: {out:?}");
    // check never starts anything nor connects to a database
    let p = write("unreachable.conf", "database = postgres\npg_host = 127.0.0.1\npg_port = 1\n");
    let out = run(&["check", &p], &[], d).await;
    assert!(out.status.success(), "check does not connect: {out:?}");
}

// ---- start, health, stop -----------------------------------------------------------------------

#[tokio::test]
async fn start_health_stop() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("prefix");
    std::fs::create_dir(&prefix).unwrap();
    let p = prefix.to_str().unwrap().to_owned();
    let env = listen_env();

    // health when not running: exit code 1
    let out = run(&["health", "-p", &p], &env, dir.path()).await;
    assert_eq!(out.code(), Some(1), "health before start: {out:?}");
    assert!(out.all().contains("not running"), "health before start: {out:?}");
    // stop when not running fails
    let out = run(&["stop", "-p", &p], &env, dir.path()).await;
    assert_eq!(out.code(), Some(1), "stop before start: {out:?}");
    assert!(out.all().contains("not running"), "stop before start: {out:?}");

    // start on an empty prefix
    let mut node = Node::start(&prefix, &[], &env).await.unwrap_or_else(|o| panic!("start: {o:?}"));
    let pid_file = prefix.join("turnpike.pid");
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    assert_eq!(pid.trim(), node.child.id().to_string(), "the pid file holds the pid");
    assert!(prefix.join("turnpike.db").exists(), "the SQLite database is in the prefix");
    let root = get_root(&node.admin()).await;
    assert_eq!(root["configuration"]["prefix"], p.as_str(), "configuration.prefix");

    // health: running
    let out = run(&["health", "-p", &p], &env, dir.path()).await;
    assert!(out.status.success(), "health while running: {out:?}");
    assert!(
        out.stdout.contains("running") && !out.stdout.contains("not running"),
        "health: {out:?}"
    );
    assert!(out.stdout.contains(&format!("healthy at {p}")), "health: {out:?}");

    // starting twice in one prefix fails, the first node keeps running
    let out = run(&["start", "-p", &p], &env, dir.path()).await;
    assert!(!out.status.success(), "second start: {out:?}");
    assert!(out.all().contains("already running"), "second start says why: {out:?}");
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid, "the pid file is untouched");
    get_root(&node.admin()).await;

    // stop: the node exits, the pid file is removed
    let (out, status) = stop_node(&mut node, "stop", &env, dir.path()).await;
    assert!(out.status.success(), "stop: {out:?}");
    let status = status.expect("the node exits after stop");
    assert!(status.success(), "graceful exit: {status:?}; log:\n{}", node.log());
    assert!(!pid_file.exists(), "the pid file is removed");
    assert!(!prefix.join("turnpike.listeners").exists(), "the listeners file is removed");
    let out = run(&["health", "-p", &p], &env, dir.path()).await;
    assert_eq!(out.code(), Some(1), "health after stop: {out:?}");
    let out = run(&["stop", "-p", &p], &env, dir.path()).await;
    assert_eq!(out.code(), Some(1), "stop after stop: {out:?}");

    // a stale pid file (dead process) does not prevent a start
    let mut dead = Command::new("true").spawn().expect("spawn true");
    let dead_pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(&pid_file, format!("{dead_pid}\n")).unwrap();
    let mut node = Node::start(&prefix, &[], &env)
        .await
        .unwrap_or_else(|o| panic!("start over a stale pid file: {o:?}"));
    get_root(&node.admin()).await;
    // data persists across restarts on the same prefix
    let res = node
        .admin()
        .post_json("/services", &serde_json::json!({ "name": "kept", "host": "kept.test" }))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let (out, status) = stop_node(&mut node, "stop", &env, dir.path()).await;
    assert!(out.status.success() && status.is_some(), "stop: {out:?}");
    let mut node =
        Node::start(&prefix, &[], &env).await.unwrap_or_else(|o| panic!("restart: {o:?}"));
    let res = node.admin().get("/services/kept").await;
    assert_eq!(res.status, 200, "the service survived the restart: {}", res.text());

    // `quit` stops gracefully too
    let (out, status) = stop_node(&mut node, "quit", &env, dir.path()).await;
    assert!(out.status.success(), "quit: {out:?}");
    let status = status.expect("the node exits after quit");
    assert!(status.success(), "graceful exit after quit: {status:?}");
    assert!(!pid_file.exists(), "the pid file is removed after quit");

    // a prefix that does not exist yet is created
    let fresh = dir.path().join("new").join("prefix");
    std::fs::create_dir(dir.path().join("new")).unwrap();
    let mut node = Node::start(&fresh, &[], &env)
        .await
        .unwrap_or_else(|o| panic!("start on a missing prefix: {o:?}"));
    get_root(&node.admin()).await;
    assert!(fresh.join("turnpike.pid").exists(), "the prefix was created with its pid file");
    let (out, status) = stop_node(&mut node, "stop", &env, dir.path()).await;
    assert!(out.status.success() && status.is_some(), "stop: {out:?}");
}

#[tokio::test]
async fn start_fails_cleanly_on_bad_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("prefix");
    std::fs::create_dir(&prefix).unwrap();
    for (name, extra) in [
        ("invalid log level", vec![s("TURNPIKE_LOG_LEVEL", "loud")]),
        ("admin port in use", vec![]),
    ] {
        let mut env = listen_env();
        env.extend(extra);
        let _holder;
        if name == "admin port in use" {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            env.push(s("TURNPIKE_ADMIN_LISTEN", &l.local_addr().unwrap().to_string()));
            _holder = l;
        }
        let out = Node::start(&prefix, &[], &env)
            .await
            .err()
            .unwrap_or_else(|| panic!("{name}: start must fail"));
        assert_eq!(out.code(), Some(1), "{name}: exit code: {out:?}");
        assert!(
            out.stderr.starts_with("Error:") || out.stderr.contains("Error:"),
            "{name}: {out:?}"
        );
        assert!(!prefix.join("turnpike.pid").exists(), "{name}: no pid file left");
    }
}

// ---- configuration sources -------------------------------------------------------------------

#[tokio::test]
async fn configuration_from_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("prefix");
    std::fs::create_dir(&prefix).unwrap();
    let conf = dir.path().join("kong.conf");
    let (a, b, c) = (
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
        "33333333-3333-4333-8333-333333333333",
    );
    std::fs::write(
        &conf,
        format!(
            "# a kong.conf\nadmin_listen = 127.0.0.1:0\nstatus_listen = off\nproxy_listen = off\n\
             node_id = {a}\nlog_level = warn\nreal_ip_header = X-From-File # trailing comment\n"
        ),
    )
    .unwrap();
    let conf_s = conf.to_str().unwrap();

    type Case<'a> = (&'a str, Vec<(String, String)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        ("file only", vec![], a, "warn"),
        (
            "KONG_ overrides the file",
            vec![s("KONG_NODE_ID", b), s("KONG_LOG_LEVEL", "error")],
            b,
            "error",
        ),
        (
            "TURNPIKE_ wins over KONG_",
            vec![
                s("KONG_NODE_ID", b),
                s("TURNPIKE_NODE_ID", c),
                s("KONG_LOG_LEVEL", "error"),
                s("TURNPIKE_LOG_LEVEL", "notice"),
            ],
            c,
            "notice",
        ),
    ];
    for (name, env, node_id, level) in cases {
        let mut node = Node::start(&prefix, &["-c", conf_s], &env)
            .await
            .unwrap_or_else(|o| panic!("{name}: {o:?}"));
        let l = node.listeners();
        assert_eq!(l["status"], serde_json::json!([]), "{name}: status_listen = off from the file");
        let root = get_root(&node.admin()).await;
        assert_eq!(root["node_id"], node_id, "{name}: node_id");
        assert_eq!(root["configuration"]["log_level"], level, "{name}: log_level");
        assert_eq!(
            root["configuration"]["real_ip_header"], "X-From-File",
            "{name}: value without its comment"
        );
        let (out, status) = stop_node(&mut node, "stop", &env, dir.path()).await;
        assert!(out.status.success() && status.is_some(), "{name}: stop: {out:?}");
    }

    // the prefix may come from the file too
    let other = dir.path().join("from-file");
    std::fs::create_dir(&other).unwrap();
    let conf2 = dir.path().join("prefix.conf");
    std::fs::write(
        &conf2,
        format!(
            "prefix = {}\nadmin_listen = 127.0.0.1:0\nstatus_listen = off\nproxy_listen = off\n",
            other.display()
        ),
    )
    .unwrap();
    let (mut cmd, _, _) = command(&["start", "-c", conf2.to_str().unwrap()], &[], dir.path());
    let mut child = cmd.spawn().unwrap();
    let up =
        eventually(Duration::from_secs(60), || other.join("turnpike.listeners").exists()).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "prefix from the configuration file is used");
    assert!(other.join("turnpike.db").exists(), "the SQLite file is in the configured prefix");
}

#[tokio::test]
async fn json_logs() {
    let mut gw =
        Gateway::builder().conf("log_format", "json").conf("log_level", "debug").start().await;
    let res = gw.admin().get("/").await;
    assert_eq!(res.status, 200);
    let res = gw
        .admin()
        .post_json("/services", &serde_json::json!({ "name": "s", "host": "s.test" }))
        .await;
    assert_eq!(res.status, 201);
    gw.stop().await;
    let log = gw.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "some log lines: {log}");
    let mut messages = Vec::new();
    for l in &lines {
        let v: Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
        assert!(v.is_object(), "a JSON object per line: {l}");
        assert!(v["level"].is_string(), "level in {l}");
        assert!(v["timestamp"].is_string(), "timestamp in {l}");
        messages.push(v["message"].as_str().unwrap_or_default().to_owned());
    }
    assert!(messages.iter().any(|m| m.contains("started")), "a start message: {messages:?}");
    assert!(messages.iter().any(|m| m.contains("stopped")), "a stop message: {messages:?}");
}

#[tokio::test]
async fn text_logs_by_default() {
    let mut gw = Gateway::builder().start().await;
    gw.stop().await;
    let log = gw.log();
    assert!(log.contains("Turnpike started"), "text log: {log}");
    assert!(
        log.lines().filter(|l| !l.is_empty()).all(|l| serde_json::from_str::<Value>(l).is_err()),
        "text, not JSON: {log}"
    );
}

// ---- migrations ------------------------------------------------------------------------------

/// The migrations flow on one database (`env` selects it; `p` is the prefix).
async fn migrations_flow(label: &str, env: &[(String, String)], dir: &Path, prefix: &Path) {
    let p = prefix.to_str().unwrap();
    let m = |action: &'static str| {
        let mut args = vec!["migrations", action, "-p", p];
        if action == "reset" {
            args.push("--yes");
        }
        args
    };
    // fresh database: list says it needs bootstrapping (exit 3)
    let out = run(&m("list"), env, dir).await;
    assert_eq!(out.code(), Some(3), "{label}: list before bootstrap: {out:?}");
    assert!(out.all().contains("Database needs bootstrapping"), "{label}: {out:?}");
    assert!(out.all().contains("migrations bootstrap"), "{label}: tells to bootstrap: {out:?}");

    // bootstrap
    let out = run(&m("bootstrap"), env, dir).await;
    assert!(out.status.success(), "{label}: bootstrap: {out:?}");
    assert!(out.stdout.contains("Bootstrapping database..."), "{label}: {out:?}");
    assert!(out.stdout.contains("Database is up-to-date"), "{label}: {out:?}");

    // list: executed migrations, exit 0
    let out = run(&m("list"), env, dir).await;
    assert!(out.status.success(), "{label}: list after bootstrap: {out:?}");
    assert!(out.stdout.contains("Executed migrations:"), "{label}: {out:?}");
    assert!(out.stdout.contains("core: "), "{label}: {out:?}");

    // up: nothing to do
    let out = run(&m("up"), env, dir).await;
    assert!(out.status.success(), "{label}: up: {out:?}");
    assert!(out.stdout.contains("Database is already up-to-date"), "{label}: {out:?}");

    // the node starts on the bootstrapped database without --run-migrations
    let mut node =
        Node::start(prefix, &[], env).await.unwrap_or_else(|o| panic!("{label}: start: {o:?}"));
    let root = get_root(&node.admin()).await;
    let res = node
        .admin()
        .post_json("/services", &serde_json::json!({ "name": "s", "host": "s.test" }))
        .await;
    assert_eq!(res.status, 201, "{label}: {}", res.text());
    let _ = root;
    let (out, status) = stop_node(&mut node, "stop", env, dir).await;
    assert!(out.status.success() && status.is_some(), "{label}: stop: {out:?}");

    // reset --yes
    let out = run(&m("reset"), env, dir).await;
    assert!(out.status.success(), "{label}: reset: {out:?}");
    assert!(out.stdout.contains("Database successfully reset"), "{label}: {out:?}");
    let out = run(&m("list"), env, dir).await;
    assert_eq!(out.code(), Some(3), "{label}: list after reset: {out:?}");

    // bootstrap again: the data is gone
    let out = run(&m("bootstrap"), env, dir).await;
    assert!(out.status.success(), "{label}: bootstrap after reset: {out:?}");
    let mut node =
        Node::start(prefix, &[], env).await.unwrap_or_else(|o| panic!("{label}: start: {o:?}"));
    let res = node.admin().get("/services").await;
    assert_eq!(res.json()["data"], serde_json::json!([]), "{label}: reset dropped the data");
    let (out, status) = stop_node(&mut node, "stop", env, dir).await;
    assert!(out.status.success() && status.is_some(), "{label}: stop: {out:?}");
}

#[tokio::test]
async fn migrations_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("prefix");
    std::fs::create_dir(&prefix).unwrap();
    migrations_flow("sqlite", &listen_env(), dir.path(), &prefix).await;
}

#[tokio::test]
async fn migrations_on_postgres() {
    let Some(url) = turnpike_store::testing::pg_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("prefix");
    std::fs::create_dir(&prefix).unwrap();
    let (mut env, cfg) = pg_env(&url).await;
    env.extend(listen_env());
    let p = prefix.to_str().unwrap();

    // starting on a non-bootstrapped database without --run-migrations fails and says why
    let out =
        Node::start(&prefix, &[], &env).await.err().expect("start on an empty schema must fail");
    assert_eq!(out.code(), Some(1), "start on an empty schema: {out:?}");
    assert!(out.all().contains("migrations bootstrap"), "start tells to run migrations: {out:?}");
    assert!(!prefix.join("turnpike.pid").exists(), "no pid file after a failed start");

    migrations_flow("postgres", &env, dir.path(), &prefix).await;

    // --run-migrations on a fresh schema bootstraps it
    let out = run(&["migrations", "reset", "--yes", "-p", p], &env, dir.path()).await;
    assert!(out.status.success(), "reset: {out:?}");
    let mut node = Node::start(&prefix, &["--run-migrations"], &env)
        .await
        .unwrap_or_else(|o| panic!("start --run-migrations: {o:?}"));
    get_root(&node.admin()).await;
    let (out, status) = stop_node(&mut node, "stop", &env, dir.path()).await;
    assert!(out.status.success() && status.is_some(), "stop: {out:?}");
    let out = run(&["migrations", "list", "-p", p], &env, dir.path()).await;
    assert!(out.status.success(), "list after --run-migrations: {out:?}");

    turnpike_store::testing::drop_schema(&cfg).await;
}

/// Runs `f` with a fresh SQLite prefix and, when configured, a fresh PostgreSQL schema.
async fn on_fresh_databases<F, Fut>(f: F)
where
    F: Fn(String, Vec<(String, String)>, PathBuf, PathBuf) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("sqlite");
    std::fs::create_dir(&prefix).unwrap();
    f("sqlite".into(), listen_env(), dir.path().to_owned(), prefix).await;
    if let Some(url) = turnpike_store::testing::pg_url() {
        let prefix = dir.path().join("postgres");
        std::fs::create_dir(&prefix).unwrap();
        let (env, cfg) = pg_env(&url).await;
        f("postgres".into(), env, dir.path().to_owned(), prefix).await;
        turnpike_store::testing::drop_schema(&cfg).await;
    }
}

#[tokio::test]
async fn migrations_up_before_bootstrap() {
    on_fresh_databases(|label, env, dir, prefix| async move {
        let out = run(&["migrations", "up", "-p", prefix.to_str().unwrap()], &env, &dir).await;
        assert_eq!(out.code(), Some(1), "{label}: up before bootstrap: {out:?}");
        assert!(
            out.all().contains("Cannot run migrations: Database needs bootstrapping"),
            "{label}: {out:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn migrations_reset_before_bootstrap() {
    on_fresh_databases(|label, env, dir, prefix| async move {
        let out =
            run(&["migrations", "reset", "--yes", "-p", prefix.to_str().unwrap()], &env, &dir)
                .await;
        assert_eq!(out.code(), Some(1), "{label}: reset before bootstrap: {out:?}");
        assert!(
            out.all().contains("Database not bootstrapped, nothing to reset"),
            "{label}: {out:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn migrations_bootstrap_twice() {
    on_fresh_databases(|label, env, dir, prefix| async move {
        let p = prefix.to_str().unwrap();
        let out = run(&["migrations", "bootstrap", "-p", p], &env, &dir).await;
        assert!(out.status.success(), "{label}: bootstrap: {out:?}");
        let out = run(&["migrations", "bootstrap", "-p", p], &env, &dir).await;
        assert!(out.status.success(), "{label}: second bootstrap: {out:?}");
        assert!(out.stdout.contains("Database already bootstrapped"), "{label}: {out:?}");
        assert!(
            !out.stdout.contains("Bootstrapping database..."),
            "{label}: nothing is bootstrapped: {out:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn reset_without_yes_is_refused_without_a_tty() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("prefix");
    std::fs::create_dir(&prefix).unwrap();
    let p = prefix.to_str().unwrap();
    let env = listen_env();
    let out = run(&["migrations", "bootstrap", "-p", p], &env, dir.path()).await;
    assert!(out.status.success(), "bootstrap: {out:?}");
    // stdin is /dev/null
    let out = run(&["migrations", "reset", "-p", p], &env, dir.path()).await;
    assert_eq!(out.code(), Some(1), "reset without --yes and without a tty: {out:?}");
    assert!(out.all().contains("not a tty"), "reset explains: {out:?}");
    let out = run(&["migrations", "list", "-p", p], &env, dir.path()).await;
    assert!(out.status.success(), "the database is still bootstrapped: {out:?}");
}

// ---- secrets ---------------------------------------------------------------------------------

#[tokio::test]
async fn pg_password_is_never_shown() {
    const SECRET: &str = "s3cr3t-Pa55word";
    // SQLite node with a pg_password set: GET / and the log
    let mut gw = Gateway::builder()
        .conf("pg_password", SECRET)
        .env("KONG_PG_RO_PASSWORD", SECRET)
        .start()
        .await;
    let res = gw.admin().get("/").await;
    assert!(!res.text().contains(SECRET), "GET / shows the password");
    assert_eq!(res.json()["configuration"]["pg_password"], "******", "pg_password redacted");
    gw.stop().await;
    assert!(!gw.log().contains(SECRET), "the log shows the password:\n{}", gw.log());

    // failures that involve the database never print it
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("prefix");
    std::fs::create_dir(&prefix).unwrap();
    let p = prefix.to_str().unwrap();
    let mut env = listen_env();
    env.extend([
        s("TURNPIKE_DATABASE", "postgres"),
        s("TURNPIKE_PG_HOST", "127.0.0.1"),
        s("TURNPIKE_PG_PORT", "1"),
        s("TURNPIKE_PG_PASSWORD", SECRET),
        s("TURNPIKE_LOG_LEVEL", "debug"),
        s("TURNPIKE_PG_TIMEOUT", "2000"),
    ]);
    for args in [
        vec!["migrations", "list", "-p", p],
        vec!["migrations", "bootstrap", "-p", p],
        vec!["start", "-p", p],
    ] {
        let out = run(&args, &env, dir.path()).await;
        assert!(!out.status.success(), "{args:?} on an unreachable database fails: {out:?}");
        assert!(!out.all().contains(SECRET), "{args:?} prints the password: {out:?}");
    }
    let out = run(&["check", "/dev/null"], &env, dir.path()).await;
    assert!(!out.all().contains(SECRET), "check prints the password: {out:?}");

    // on PostgreSQL, with the password in use
    if let Some(url) = turnpike_store::testing::pg_url() {
        let mut gw =
            Gateway::builder().db(Db::Postgres(url)).conf("pg_password", SECRET).start().await;
        // the scratch database accepts the connection (trust) or rejects the password: either
        // way, nothing may print it
        let res = gw.admin().get("/").await;
        assert!(!res.text().contains(SECRET), "GET / on postgres shows the password");
        let out = gw.command(&["migrations", "list"]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(SECRET), "migrations list prints the password: {all}");
        gw.stop().await;
        assert!(!gw.log().contains(SECRET), "the postgres node logs the password");
    }
}
